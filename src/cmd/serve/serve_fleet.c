/*
 * serve's fleet mode: the fleet key loaded once at start, the Redis options every worker's
 * fleet cache is made from, and the master's membership in the fleet's key ring.
 */
#include "serve_fleet.h"

#include <stdio.h>
#include <string.h>

#include <ev.h>
#include <openssl/crypto.h>

#include "../cli/log.h"

static void lib_log(void *arg, enum tlsr_log_level level, const char *component, const char *msg)
{
    (void)arg;
    log_msg((enum log_level)level, component, "%s", msg);
}

bool serve_fleet_setup(struct serve_fleet *f, const struct serve_config *cfg, char *err, size_t cap)
{
    if (cfg->redis.n == 0) {
        return true;
    }
    if (tlsr_fleet_secret_load(cfg->fleet_key, &f->secret) != TLSR_OK) {
        snprintf(err, cap, "fleet_key: %s", tlsr_last_error());
        return false;
    }
    tlsr_fleet_opts_init(&f->opts);
    f->redis = cfg->redis;
    memcpy(f->prefix, cfg->redis_prefix, sizeof(f->prefix));
    for (size_t i = 0; i < f->redis.n; i++) {
        f->endpoints[i] = f->redis.v[i];
    }
    f->opts.endpoints = f->endpoints;
    f->opts.n_endpoints = f->redis.n;
    f->opts.prefix = f->prefix;
    f->opts.secret = f->secret;
    f->opts.lookup_timeout_ms = (uint32_t)cfg->redis_timeout_ms;
    f->opts.is_early_data = cfg->early_data && cfg->early_data_anti_replay;
    f->opts.early_window_s = (uint32_t)cfg->early_data_window_s;
    f->opts.early_clock_skew_s = (uint32_t)cfg->fleet_clock_skew_s;
    serve_redis_tls(cfg, &f->opts.tls);
    f->opts.log = lib_log;
    return serve_redis_auth(cfg, f->password, sizeof(f->password), &f->opts.username,
                            &f->opts.password, err, cap);
}

bool serve_fleet_join(struct serve_fleet *f, const struct serve_config *cfg,
                      struct tlsr_keyring *ring, char *err, size_t cap)
{
    if (cfg->redis.n == 0 || cfg->no_tickets) {
        return true;
    }
    struct tlsr_fleet_ring_opts ro;
    tlsr_fleet_ring_opts_init(&ro);
    ro.member = cfg->fleet_member[0] != '\0' ? cfg->fleet_member : NULL;
    ro.poll_ms = (uint32_t)cfg->fleet_poll_ms;
    ro.ack_wait_s = (uint32_t)cfg->fleet_ack_wait_s;
    ro.clock_skew_s = (uint32_t)cfg->fleet_clock_skew_s;
    if (tlsr_fleet_ring_new(EV_DEFAULT, &f->opts, &ro, ring, &f->ring) != TLSR_OK) {
        snprintf(err, cap, "fleet: %s", tlsr_last_error());
        return false;
    }
    return true;
}

const struct tlsr_fleet_opts *serve_fleet_opts(const struct serve_fleet *f)
{
    return f->redis.n > 0 ? &f->opts : NULL;
}

void serve_fleet_free(struct serve_fleet *f)
{
    tlsr_fleet_ring_free(f->ring);
    f->ring = NULL;
    tlsr_fleet_secret_free(f->secret);
    f->secret = NULL;
    OPENSSL_cleanse(f->password, sizeof(f->password));
}
