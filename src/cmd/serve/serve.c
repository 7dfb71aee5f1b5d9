/*
 * `tlsresume serve`: the master process. It loads and validates the configuration, creates
 * the shared session cache and ticket key ring (kept for the life of the process, so reloads
 * lose neither), binds the listeners, forks the workers (serve_worker.c), and then runs a small
 * event loop for signals, worker exits and the admin endpoint:
 *
 *   SIGTERM, SIGINT  workers drain (finish their connections) and the master exits after them
 *   SIGHUP           reload: a new configuration and new certificates go to a new generation
 *                    of workers; the old generation drains; a reload that fails keeps the old
 *   SIGUSR1          rotate the ticket keys now
 *   SIGUSR2          upgrade: exec the binary at our path, handing it the sockets and the
 *                    memory of the cache and keys (serve_handover.h); once it serves, drain and
 *                    exit
 *
 * A worker that dies unexpectedly is replaced and logged.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <ev.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include <tlsresume/fleet.h>
#include <tlsresume/tlsresume.h>

#include "../cli/cli.h"
#include "../cli/log.h"
#include "serve_admin.h"
#include "serve_config.h"
#include "serve_handover.h"
#include "serve_metrics.h"
#include "serve_tls.h"
#include "serve_upgrade.h"
#include "serve_upstream.h"
#include "serve_worker.h"

#define MAX_WORKERS (2 * 256)

struct listener {
    char addr[CLI_STR];
    int fd;
};

struct worker_proc {
    pid_t pid;
    int slot;
    int id;
    bool is_draining;
    double kill_at; /* monotonic deadline of a draining worker, then SIGKILL */
};

#define MAX_ADMIN_CONNS 16

struct admin_conn {
    struct master *m;
    int fd;
    ev_io io;
    ev_timer timer;
    char req[1024];
    size_t req_len;
    char *resp; /* owned; NULL until the request line is complete */
    size_t resp_len;
    size_t resp_sent;
};

/* The 0-RTT strike register: 64 Ki records of 128 bytes, enough for 6,500 early-data
 * handshakes a second with the default 10 s window; when full, early data is refused. */
#define EARLY_REGISTER_BYTES ((size_t)8 * 1024 * 1024)

struct master {
    int argc;
    char **argv;
    struct serve_config *cfg;
    struct tls_set *tls;
    struct tlsr_cache *cache;
    struct tlsr_cache *early_register; /* 0-RTT strike register; NULL without early data */
    struct upstream *up;               /* --backend-tls; NULL without */
    struct tlsr_cache *up_store;       /* backend sessions, made when first needed */
    struct tlsr_keyring *ring;
    struct listener listeners[CLI_LIST_MAX];
    size_t n_listeners;
    struct backend_addr backends[CLI_LIST_MAX];
    size_t n_backends;
    int admin_fd;
    struct metrics *metrics;
    struct worker_proc workers[MAX_WORKERS];
    size_t n_workers;
    bool is_stopping;
    unsigned long reloads;
    double started;
    struct ev_loop *loop;
    ev_signal sig[5];
    ev_child child;
    ev_io admin_io;
    ev_timer respawn; /* replaces dead workers a second later, never in a tight loop */
    int pending_ids[MAX_WORKERS];
    unsigned pending_respawns;
    ev_timer reaper;     /* kills draining workers past their deadline */
    ev_timer keys_ahead; /* makes the next ticket keys here, never in a worker's handshake */
    ev_timer sampler;    /* the status page's history, every HISTORY_INTERVAL_S */
    struct history *history;
    int exit_code; /* set when the master stops on an error found after start */
    bool is_prepare_failing;
    unsigned admin_open;
    /* Fleet mode (--redis): the fleet key, the options every worker's cache uses, the ring. */
    struct tlsr_fleet_secret *fleet_secret;
    struct tlsr_fleet_opts fleet_opts;
    const char *redis_endpoints[CLI_LIST_MAX];
    /* The fleet settings of the start, which fleet_opts points into: a reload frees its old
     * configuration, and the fleet is not reloaded. */
    struct cli_list fleet_redis;
    char fleet_prefix[CLI_STR];
    char redis_password[512];
    struct tlsr_fleet_ring *fleet_ring;
    ev_timer join_wait; /* workers start once the ring has joined the fleet */
    ev_tstamp join_deadline;
    /* Hand-over: what this master received, whether it announced itself, and an upgrade it
     * started (the new master's pid, its ready pipe, the deadline). */
    struct handover ho;
    bool is_announced;
    char exe[PATH_MAX];
    struct upgrade upgrade;
    bool disowned[HO_NPARTS]; /* parts a new master adopted: left unwiped at exit */
};

/* Resolves an address, prefixing the reason with the address. */
static bool resolve(const char *text, struct sockaddr_storage *out, socklen_t *out_len, char *err,
                    size_t cap)
{
    char why[200];
    if (!cli_resolve(text, out, out_len, why, sizeof(why))) {
        snprintf(err, cap, "%.200s: %s", text, why);
        return false;
    }
    return true;
}

/* Every backend of cfg, resolved into out (with its TLS name and session key when up is
 * not NULL); false (err says which) when one does not resolve. */
static bool resolve_backends(const struct serve_config *cfg, const struct upstream *up,
                             struct backend_addr *out, size_t *n, char *err, size_t cap)
{
    for (size_t i = 0; i < cfg->backend.n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        if (!resolve(cfg->backend.v[i], &out[i].addr, &out[i].len, err, cap)) {
            return false;
        }
        snprintf(out[i].name, sizeof(out[i].name), "%s", cfg->backend.v[i]);
        if (up != NULL) {
            upstream_endpoint(up, cfg, &out[i]);
        }
    }
    *n = cfg->backend.n;
    return true;
}

static int bind_listener(const char *addr, int backlog, char *err, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!resolve(addr, &ss, &len, err, cap)) {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        /* Accepted sockets inherit it: no setsockopt per connection. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
        snprintf(err, cap, "%s: %s", addr, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* Binds the listeners of cfg, reusing the sockets of addresses already bound. */
static bool bind_all(struct master *m, const struct serve_config *cfg, struct listener *out,
                     char *err, size_t cap)
{
    for (size_t i = 0; i < cfg->listen.n; i++) {
        snprintf(out[i].addr, CLI_STR, "%s", cfg->listen.v[i]);
        out[i].fd = -1;
        for (size_t j = 0; j < m->n_listeners; j++) {
            if (strcmp(m->listeners[j].addr, cfg->listen.v[i]) == 0) {
                out[i].fd = m->listeners[j].fd;
            }
        }
        if (out[i].fd < 0) {
            out[i].fd = handover_take_socket(&m->ho, cfg->listen.v[i]);
        }
        if (out[i].fd < 0) {
            char why[512];
            out[i].fd = bind_listener(cfg->listen.v[i], 1024, why, sizeof(why));
            if (out[i].fd < 0) {
                snprintf(err, cap, "listen: %s", why);
                for (size_t k = 0; k < i; k++) {
                    bool is_old = false;
                    for (size_t j = 0; j < m->n_listeners; j++) {
                        is_old = is_old || m->listeners[j].fd == out[k].fd;
                    }
                    if (!is_old) {
                        close(out[k].fd);
                    }
                }
                return false;
            }
        }
    }
    return true;
}

static void spawn_worker(struct master *m, int id)
{
    if (m->n_workers >= MAX_WORKERS) {
        log_msg(LOG_ERROR, "serve", "error=\"no room for another worker\"");
        return;
    }
    int slot = metrics_claim(m->metrics);
    if (slot < 0) {
        log_msg(LOG_ERROR, "serve", "error=\"no counter slot for another worker\"");
        return;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_msg(LOG_ERROR, "serve", "error=\"fork: %s\"", strerror(errno));
        metrics_retire(m->metrics, slot);
        return;
    }
    if (pid == 0) {
        /* The child leaves the master's loop and signal handling behind. */
        sigset_t all;
        sigfillset(&all);
        sigprocmask(SIG_SETMASK, &all, NULL);
        /* Keep libev's default loop (signals belong to it) but drop the master's watchers. */
        ev_loop_fork(EV_DEFAULT);
        for (int i = 0; i < 5; i++) {
            ev_signal_stop(EV_DEFAULT, &m->sig[i]);
        }
        upgrade_stop(&m->upgrade);
        ev_child_stop(EV_DEFAULT, &m->child);
        ev_io_stop(EV_DEFAULT, &m->admin_io);
        ev_timer_stop(EV_DEFAULT, &m->respawn);
        ev_timer_stop(EV_DEFAULT, &m->reaper);
        ev_timer_stop(EV_DEFAULT, &m->join_wait);
        ev_timer_stop(EV_DEFAULT, &m->keys_ahead);
        ev_timer_stop(EV_DEFAULT, &m->sampler);
        tlsr_fleet_ring_free(m->fleet_ring); /* the master's; this closes only our copy */
        m->fleet_ring = NULL;
        if (m->admin_fd >= 0) {
            close(m->admin_fd);
        }
        if (m->ho.ready_fd >= 0) {
            close(m->ho.ready_fd); /* the old master hears only from this master */
        }
        int fds[CLI_LIST_MAX];
        for (size_t i = 0; i < m->n_listeners; i++) {
            fds[i] = m->listeners[i].fd;
        }
        struct worker_args a = {
            .cfg = m->cfg,
            .tls = m->tls,
            .listen_fds = fds,
            .n_listen = m->n_listeners,
            .n_backends = m->n_backends,
            .metrics = &m->metrics->slots[slot],
            .open_total = &m->metrics->open_total,
            .fleet = m->fleet_redis.n > 0 ? &m->fleet_opts : NULL,
            .up = m->up,
            .id = id,
        };
        memcpy(a.backends, m->backends, sizeof(a.backends));
        _exit(worker_run(&a));
    }
    m->workers[m->n_workers++] = (struct worker_proc){pid, slot, id, false, 0};
}

static void spawn_generation(struct master *m)
{
    for (uint64_t i = 0; i < m->cfg->workers; i++) {
        spawn_worker(m, (int)i);
    }
}

/* Raises the descriptor limit toward what max_connections needs in one worker (two per
 * connection); says so when the hard limit is lower. */
static void raise_nofile(const struct serve_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t need = (rlim_t)(2 * cfg->max_connections + 64);
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need) {
        return;
    }
    /* A worker may hold every connection, but connections are spread over the workers: warn
     * only when the workers together cannot hold max_connections. */
    uint64_t per_worker = rl.rlim_cur > 64 ? (uint64_t)(rl.rlim_cur - 64) / 2 : 0;
    bool is_enough = per_worker * cfg->workers >= cfg->max_connections;
    log_msg(is_enough ? LOG_INFO : LOG_WARN, "serve",
            "event=fd_limit rlimit_nofile=%llu connections_per_worker=%llu max_connections=%llu "
            "note=\"%s\"",
            (unsigned long long)rl.rlim_cur, (unsigned long long)per_worker,
            (unsigned long long)cfg->max_connections,
            is_enough ? "the workers together hold max_connections"
                      : "RLIMIT_NOFILE is too low for max_connections: beyond it accepting pauses "
                        "(raise LimitNOFILE= or ulimit -n, or lower max_connections)");
}

static void drain_all(struct master *m)
{
    /* Workers close what is left at drain_timeout; the master kills any still there later. */
    double kill_at = ev_now(m->loop) + (double)m->cfg->drain_timeout_s + 5.0;
    for (size_t i = 0; i < m->n_workers; i++) {
        if (!m->workers[i].is_draining) {
            m->workers[i].is_draining = true;
            m->workers[i].kill_at = kill_at;
            kill(m->workers[i].pid, SIGTERM);
        }
    }
}

/* Every second: the keys of the next two periods made in the master, ahead of their time, so
 * that no worker makes one under the ring's lock in a handshake (a fleet makes its own). */
static void on_keys_ahead(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct master *m = t->data;
    bool is_failing = m->ring != NULL && tlsr_keyring_prepare(m->ring) != TLSR_OK;
    if (is_failing && !m->is_prepare_failing) {
        log_msg(LOG_WARN, "tickets",
                "event=keys_ahead_failed error=\"%s\" note=\"the next key "
                "is made when a handshake needs it\"",
                tlsr_last_error());
    }
    m->is_prepare_failing = is_failing;
}

static void on_sample(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct master *m = t->data;
    struct metrics_slot sum;
    metrics_sum(m->metrics, &sum);
    history_add(m->history, (int64_t)time(NULL), &sum);
}

static void on_reaper(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct master *m = t->data;
    for (size_t i = 0; i < m->n_workers; i++) {
        struct worker_proc *w = &m->workers[i];
        if (w->is_draining && w->kill_at > 0 && ev_now(loop) > w->kill_at) {
            log_msg(LOG_WARN, "serve", "event=worker_killed pid=%d reason=drain_timeout",
                    (int)w->pid);
            kill(w->pid, SIGKILL);
            w->kill_at = 0;
        }
    }
}

/* A list as one comma-separated text (truncated at cap). */
static void join_list(const struct cli_list *l, char *out, size_t cap)
{
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < l->n && used < cap; i++) {
        int n = snprintf(out + used, cap - used, "%s%s", i ? "," : "", l->v[i]);
        used += n > 0 ? (size_t)n : 0;
    }
}

static void log_summary(const struct master *m, const char *event)
{
    const struct serve_config *c = m->cfg;
    char listen[512];
    char backends[1024];
    join_list(&c->listen, listen, sizeof(listen));
    join_list(&c->backend, backends, sizeof(backends));
    const char *tickets = m->ring == NULL ? "off" : "stateless";
    const char *backend_tls = !c->backend_tls            ? "off"
                              : c->backend_insecure      ? "unverified"
                              : c->backend_session_reuse ? "resumed"
                                                         : "not_resumed";
    log_msg(LOG_INFO, "serve",
            "event=%s listen=%s backend=%s backend_tls=%s workers=%llu certificates=%zu "
            "cache_bytes=%llu "
            "session_timeout_s=%llu tickets=%s tls13_tickets=%s ticket_rotate_s=%llu "
            "ticket_lifetime_s=%llu admin=%s accept_proxy=%s proxy_protocol=%s early_data=%s "
            "fleet=%s",
            event, listen, backends, backend_tls, (unsigned long long)c->workers,
            c->self_signed ? (size_t)1 : c->cert.n, (unsigned long long)c->cache_size_bytes,
            (unsigned long long)c->session_timeout_s, tickets, c->tls13_tickets,
            (unsigned long long)c->ticket_rotate_s, (unsigned long long)c->ticket_lifetime_s,
            c->admin, c->accept_proxy ? "v1,v2" : "off", c->proxy_protocol ? "v2" : "off",
            c->early_data ? (c->early_data_anti_replay ? "on" : "on_without_anti_replay") : "off",
            c->redis.n > 0 ? "redis" : "off");
}

/* The ring to attach for cfg: none when stateless tickets are off. */
static struct tlsr_keyring *ring_for(const struct master *m, const struct serve_config *cfg)
{
    bool is_stateless = !cfg->no_tickets && strcmp(cfg->tls13_tickets, "stateless") == 0;
    return is_stateless ? m->ring : NULL;
}

static void reload(struct master *m)
{
    char err[1024] = "out of memory";
    struct serve_config *cfg = malloc(sizeof(*cfg));
    struct tls_set *tls = malloc(sizeof(*tls));
    enum cfg_action action;
    struct listener fresh[CLI_LIST_MAX];
    struct upstream *up = NULL;
    if (cfg == NULL || tls == NULL ||
        !serve_config_load(m->argc, m->argv, cfg, &action, err, sizeof(err)) ||
        !tls_set_build(cfg, m->cache, ring_for(m, cfg), m->early_register, tls, err, sizeof(err))) {
        log_msg(LOG_ERROR, "serve", "event=reload_failed error=\"%s\" keeping=old_config", err);
        free(cfg);
        free(tls);
        return;
    }
    if (!upstream_new(cfg, &m->up_store, &up, err, sizeof(err))) {
        log_msg(LOG_ERROR, "serve", "event=reload_failed error=\"%s\" keeping=old_config", err);
        tls_set_free(tls);
        free(tls);
        free(cfg);
        return;
    }
    if (m->n_workers + cfg->workers > MAX_WORKERS) {
        log_msg(LOG_ERROR, "serve",
                "event=reload_failed error=\"%zu workers still draining; no room for %llu more\" "
                "keeping=old_config",
                m->n_workers, (unsigned long long)cfg->workers);
        upstream_delete(up);
        tls_set_free(tls);
        free(tls);
        free(cfg);
        return;
    }
    if (strcmp(cfg->admin, m->cfg->admin) != 0) {
        log_msg(LOG_WARN, "serve", "event=reload note=\"admin takes effect at restart\"");
    }
    if (cfg->cache_size_bytes != m->cfg->cache_size_bytes ||
        cfg->ticket_rotate_s != m->cfg->ticket_rotate_s ||
        cfg->ticket_lifetime_s != m->cfg->ticket_lifetime_s ||
        (m->up_store != NULL &&
         cfg->backend_session_cache_bytes != m->cfg->backend_session_cache_bytes)) {
        log_msg(LOG_WARN, "serve",
                "event=reload note=\"cache_size, ticket_rotate, ticket_lifetime and "
                "backend_session_cache take effect at restart\"");
    }
    if (!bind_all(m, cfg, fresh, err, sizeof(err))) {
        log_msg(LOG_ERROR, "serve", "event=reload_failed error=\"%s\" keeping=old_config", err);
        upstream_delete(up);
        tls_set_free(tls);
        free(tls);
        free(cfg);
        return;
    }
    for (size_t j = 0; j < m->n_listeners; j++) {
        bool is_kept = false;
        for (size_t i = 0; i < cfg->listen.n; i++) {
            is_kept = is_kept || fresh[i].fd == m->listeners[j].fd;
        }
        if (!is_kept) {
            close(m->listeners[j].fd);
        }
    }
    memcpy(m->listeners, fresh, sizeof(fresh[0]) * cfg->listen.n);
    m->n_listeners = cfg->listen.n;
    char why[512];
    struct backend_addr fresh_backends[CLI_LIST_MAX];
    size_t n_fresh = 0;
    if (resolve_backends(cfg, up, fresh_backends, &n_fresh, why, sizeof(why))) {
        memcpy(m->backends, fresh_backends, sizeof(fresh_backends[0]) * n_fresh);
        m->n_backends = n_fresh;
    } else if (up != NULL) {
        /* The old addresses with the new trust: their session keys follow it. */
        for (size_t i = 0; i < m->n_backends; i++) {
            upstream_endpoint(up, cfg, &m->backends[i]);
        }
        log_msg(LOG_WARN, "serve", "event=reload backend=\"%s\" note=\"the backends stay\"", why);
    } else {
        log_msg(LOG_WARN, "serve", "event=reload backend=\"%s\" note=\"the backends stay\"", why);
    }
    /* Cache sizes and rotation stay; the new cache_size etc. are kept for the log only. */
    cfg->cache_size_bytes = m->cfg->cache_size_bytes;
    cfg->ticket_rotate_s = m->cfg->ticket_rotate_s;
    cfg->ticket_lifetime_s = m->cfg->ticket_lifetime_s;
    /* Replacements due for the old generation are moot: the new one starts whole. */
    m->pending_respawns = 0;
    ev_timer_stop(m->loop, &m->respawn);
    drain_all(m);
    tls_set_free(m->tls);
    free(m->tls);
    upstream_delete(m->up);
    m->up = up;
    free(m->cfg);
    m->cfg = cfg;
    m->tls = tls;
    log_set_level(cfg->log_level);
    if (!ev_is_active(&m->join_wait)) {
        spawn_generation(m); /* else the join wait starts the workers, on the new config */
    }
    m->reloads++;
    log_summary(m, "reloaded");
}

/* The parts this master holds, to hand to a new one or to systemd's store. */
static void parts_out(const struct master *m, struct ho_out *out)
{
    memset(out, 0, sizeof(*out));
    out->part_fd[HO_CACHE] = tlsr_cache_fd(m->cache);
    int ring_fds[2];
    tlsr_keyring_fds(m->ring, ring_fds);
    out->part_fd[HO_RING] = ring_fds[0];
    out->part_fd[HO_KEYS] = ring_fds[1];
    out->part_fd[HO_REGISTER] = tlsr_cache_fd(m->early_register);
    out->part_fd[HO_UPSTREAM] = tlsr_cache_fd(m->up_store);
    for (size_t i = 0; i < m->n_listeners; i++) {
        snprintf(out->socks[out->n_socks].addr, CLI_STR, "%s", m->listeners[i].addr);
        out->socks[out->n_socks++].fd = m->listeners[i].fd;
    }
    if (m->admin_fd >= 0) {
        snprintf(out->socks[out->n_socks].addr, CLI_STR, "%s", m->cfg->admin);
        out->socks[out->n_socks++].fd = m->admin_fd;
    }
}

/* Once the first generation of workers runs: the hand-over is over (serve_handover.h). */
static void announce(struct master *m)
{
    if (m->is_announced) {
        return;
    }
    m->is_announced = true;
    struct ho_out out;
    parts_out(m, &out);
    handover_done(&m->ho, &out);
}

/* The new master serves: leave it the parts it adopted, drain and exit. */
static void on_upgraded(void *arg, pid_t new_pid, const bool adopted[HO_NPARTS], const char *parts)
{
    (void)new_pid;
    (void)parts;
    struct master *m = arg;
    memcpy(m->disowned, adopted, sizeof(m->disowned));
    if (m->admin_fd >= 0) {
        ev_io_stop(m->loop, &m->admin_io);
        close(m->admin_fd); /* the new master answers there now */
        m->admin_fd = -1;
    }
    ev_timer_stop(m->loop, &m->keys_ahead);
    m->is_stopping = true;
    m->pending_respawns = 0;
    ev_timer_stop(m->loop, &m->respawn);
    drain_all(m);
    if (m->n_workers == 0) {
        ev_break(m->loop, EVBREAK_ALL);
    }
}

static void upgrade(struct master *m)
{
    struct ho_out out;
    parts_out(m, &out);
    /* serve_main has main's argv past the program's name: the whole command line is one back. */
    upgrade_start(&m->upgrade, m->exe, m->argv - 1, &out);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct master *m = w->data;
    if (w->signum == SIGHUP) {
        if (!m->is_stopping) {
            reload(m);
        }
        return;
    }
    if (w->signum == SIGUSR2) {
        if (!m->is_stopping) {
            upgrade(m);
        }
        return;
    }
    if (w->signum == SIGUSR1) {
        if (m->fleet_ring != NULL) {
            tlsr_fleet_ring_rotate(m->fleet_ring);
            log_msg(LOG_INFO, "tickets",
                    "event=rotate_requested scope=fleet note=\"the next key encrypts once every "
                    "server holds it\"");
        } else if (m->ring == NULL) {
            log_msg(LOG_WARN, "tickets", "event=rotate note=\"no ticket keys in use\"");
        } else if (tlsr_keyring_rotate(m->ring) != TLSR_OK) {
            log_msg(LOG_WARN, "tickets", "event=rotate_refused error=\"%s\"", tlsr_last_error());
        } else {
            log_msg(LOG_INFO, "tickets", "event=rotated reason=signal");
        }
        return;
    }
    if (!m->is_stopping) {
        log_msg(LOG_INFO, "serve", "event=stopping signal=%d open_workers=%zu", w->signum,
                m->n_workers);
    }
    m->is_stopping = true;
    drain_all(m);
    if (m->n_workers == 0) {
        ev_break(m->loop, EVBREAK_ALL);
    }
}

static void on_child(struct ev_loop *loop, ev_child *w, int revents)
{
    (void)loop;
    (void)revents;
    struct master *m = w->data;
    if (upgrade_child_exited(&m->upgrade, w->rpid, w->rstatus)) {
        return;
    }
    for (size_t i = 0; i < m->n_workers; i++) {
        if (m->workers[i].pid != w->rpid) {
            continue;
        }
        struct worker_proc dead = m->workers[i];
        m->workers[i] = m->workers[--m->n_workers];
        metrics_retire(m->metrics, dead.slot);
        if (!dead.is_draining && !m->is_stopping) {
            log_msg(LOG_ERROR, "serve", "event=worker_died pid=%d status=%d action=respawn_in_1s",
                    (int)dead.pid, w->rstatus);
            m->pending_ids[m->pending_respawns++ % MAX_WORKERS] = dead.id;
            if (!ev_is_active(&m->respawn)) {
                ev_timer_set(&m->respawn, 1.0, 0.0);
                ev_timer_start(m->loop, &m->respawn);
            }
        }
        break;
    }
    if (m->is_stopping && m->n_workers == 0) {
        ev_break(m->loop, EVBREAK_ALL);
    }
}

static void on_respawn(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    struct master *m = t->data;
    while (m->pending_respawns > 0 && !m->is_stopping) {
        m->pending_respawns--;
        spawn_worker(m, m->pending_ids[m->pending_respawns % MAX_WORKERS]);
    }
    m->pending_respawns = 0;
}

static void admin_close(struct admin_conn *a)
{
    ev_io_stop(a->m->loop, &a->io);
    ev_timer_stop(a->m->loop, &a->timer);
    close(a->fd);
    a->m->admin_open--;
    free(a->resp);
    free(a);
}

static void on_admin_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    admin_close(t->data);
}

/* Reads the request line, then writes the response, never blocking the master. */
static void on_admin_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct admin_conn *a = io->data;
    struct master *m = a->m;
    if (a->resp == NULL) {
        ssize_t n = recv(a->fd, a->req + a->req_len, sizeof(a->req) - 1 - a->req_len, 0);
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
                return;
            }
            admin_close(a);
            return;
        }
        a->req_len += (size_t)n;
        a->req[a->req_len] = '\0';
        char *eol = strpbrk(a->req, "\r\n");
        if (eol == NULL && a->req_len < sizeof(a->req) - 1) {
            return;
        }
        if (eol != NULL) {
            *eol = '\0';
        }
        struct admin_view v = {
            m->metrics, m->cache,         ring_for(m, m->cfg), (unsigned)m->cfg->workers,
            m->started, m->reloads,       m->fleet_ring,       m->cfg->redis.n > 0,
            m->history, &m->cfg->backend, m->cfg->backend_tls};
        a->resp = admin_respond(&v, a->req, &a->resp_len);
        if (a->resp == NULL) {
            admin_close(a);
            return;
        }
        ev_io_stop(loop, &a->io);
        ev_io_set(&a->io, a->fd, EV_WRITE);
        ev_io_start(loop, &a->io);
        return;
    }
    ssize_t w = send(a->fd, a->resp + a->resp_sent, a->resp_len - a->resp_sent, MSG_NOSIGNAL);
    if (w > 0) {
        a->resp_sent += (size_t)w;
    }
    if ((w < 0 && errno != EAGAIN && errno != EINTR) || a->resp_sent == a->resp_len) {
        admin_close(a);
    }
}

static void on_admin(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)revents;
    struct master *m = io->data;
    int fd = accept4(io->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        return;
    }
    struct admin_conn *a = m->admin_open < MAX_ADMIN_CONNS ? calloc(1, sizeof(*a)) : NULL;
    if (a == NULL) {
        close(fd);
        return;
    }
    m->admin_open++;
    a->m = m;
    a->fd = fd;
    ev_io_init(&a->io, on_admin_io, fd, EV_READ);
    a->io.data = a;
    ev_io_start(loop, &a->io);
    ev_timer_init(&a->timer, on_admin_timeout, 2.0, 0.0);
    a->timer.data = a;
    ev_timer_start(loop, &a->timer);
}

static void lib_log(void *arg, enum tlsr_log_level level, const char *component, const char *msg)
{
    (void)arg;
    log_msg((enum log_level)level, component, "%s", msg);
}

static bool redis_password(struct master *m, char *err, size_t cap)
{
    return serve_redis_auth(m->cfg, m->redis_password, sizeof(m->redis_password),
                            &m->fleet_opts.username, &m->fleet_opts.password, err, cap);
}

static bool setup_fleet(struct master *m, char *err, size_t cap)
{
    const struct serve_config *cfg = m->cfg;
    if (cfg->redis.n == 0) {
        return true;
    }
    if (tlsr_fleet_secret_load(cfg->fleet_key, &m->fleet_secret) != TLSR_OK) {
        snprintf(err, cap, "fleet_key: %s", tlsr_last_error());
        return false;
    }
    tlsr_fleet_opts_init(&m->fleet_opts);
    m->fleet_redis = cfg->redis;
    memcpy(m->fleet_prefix, cfg->redis_prefix, sizeof(m->fleet_prefix));
    for (size_t i = 0; i < m->fleet_redis.n; i++) {
        m->redis_endpoints[i] = m->fleet_redis.v[i];
    }
    m->fleet_opts.endpoints = m->redis_endpoints;
    m->fleet_opts.n_endpoints = m->fleet_redis.n;
    m->fleet_opts.prefix = m->fleet_prefix;
    m->fleet_opts.secret = m->fleet_secret;
    m->fleet_opts.lookup_timeout_ms = (uint32_t)cfg->redis_timeout_ms;
    m->fleet_opts.is_early_data = cfg->early_data && cfg->early_data_anti_replay;
    m->fleet_opts.early_window_s = (uint32_t)cfg->early_data_window_s;
    m->fleet_opts.early_clock_skew_s = (uint32_t)cfg->fleet_clock_skew_s;
    serve_redis_tls(cfg, &m->fleet_opts.tls);
    m->fleet_opts.log = lib_log;
    return redis_password(m, err, cap);
}

/* Joins the fleet's ticket key ring (the master drives the ring every worker shares). */
static bool start_fleet_ring(struct master *m, char *err, size_t cap)
{
    const struct serve_config *cfg = m->cfg;
    if (cfg->redis.n == 0 || cfg->no_tickets) {
        return true;
    }
    struct tlsr_fleet_ring_opts ro;
    tlsr_fleet_ring_opts_init(&ro);
    ro.member = cfg->fleet_member[0] != '\0' ? cfg->fleet_member : NULL;
    ro.poll_ms = (uint32_t)cfg->fleet_poll_ms;
    ro.ack_wait_s = (uint32_t)cfg->fleet_ack_wait_s;
    ro.clock_skew_s = (uint32_t)cfg->fleet_clock_skew_s;
    if (tlsr_fleet_ring_new(EV_DEFAULT, &m->fleet_opts, &ro, m->ring, &m->fleet_ring) != TLSR_OK) {
        snprintf(err, cap, "fleet: %s", tlsr_last_error());
        return false;
    }
    return true;
}

static enum tlsr_key_memory key_memory_of(const char *name)
{
    return strcmp(name, "secret") == 0   ? TLSR_KEY_MEMORY_SECRET
           : strcmp(name, "locked") == 0 ? TLSR_KEY_MEMORY_LOCKED
                                         : TLSR_KEY_MEMORY_AUTO;
}

/* Says which memory holds the keys (secret memory refused falls back, logged as a warning). */
static void log_key_memory(const struct master *m)
{
    int refused = 0;
    enum tlsr_key_memory used = tlsr_key_memory_used(&refused);
    if (used == TLSR_KEY_MEMORY_SECRET || strcmp(m->cfg->key_memory, "locked") == 0) {
        log_msg(LOG_INFO, "tickets", "event=key_memory kind=%s", tlsr_key_memory_name(used));
        return;
    }
    log_msg(LOG_WARN, "tickets",
            "event=key_memory kind=locked reason=\"%s%s\" note=\"keys are in locked "
            "memory left out of core dumps, but readable through /proc/PID/mem by root and the "
            "same user (secret memory needs Linux 5.14 or later, enabled)\"",
            refused != 0 ? "memfd_secret: " : "",
            refused != 0 ? strerror(refused) : "the keys handed over were in locked memory");
}

static bool setup_library(struct master *m, char *err, size_t cap)
{
    tlsr_key_memory_set(key_memory_of(m->cfg->key_memory));
    m->cache = handover_cache(&m->ho, HO_CACHE, (size_t)m->cfg->cache_size_bytes);
    if (m->cache == NULL &&
        tlsr_cache_new((size_t)m->cfg->cache_size_bytes, &m->cache) != TLSR_OK) {
        snprintf(err, cap, "cache_size: %s", tlsr_last_error());
        return false;
    }
    m->ring = handover_keys(&m->ho, (uint32_t)m->cfg->ticket_rotate_s,
                            (uint32_t)m->cfg->ticket_lifetime_s);
    if (m->ring == NULL &&
        tlsr_keyring_new((uint32_t)m->cfg->ticket_rotate_s, (uint32_t)m->cfg->ticket_lifetime_s,
                         &m->ring) != TLSR_OK) {
        snprintf(err, cap, "ticket_rotate/ticket_lifetime: %s%s", tlsr_last_error(),
                 strcmp(m->cfg->key_memory, "secret") == 0 ? " (key_memory = secret)" : "");
        return false;
    }
    if (m->cfg->early_data) {
        m->early_register = handover_cache(&m->ho, HO_REGISTER, EARLY_REGISTER_BYTES);
    }
    if (m->cfg->backend_tls && m->cfg->backend_session_reuse) {
        m->up_store =
            handover_cache(&m->ho, HO_UPSTREAM, (size_t)m->cfg->backend_session_cache_bytes);
    }
    m->tls = calloc(1, sizeof(*m->tls));
    if (m->tls == NULL) {
        snprintf(err, cap, "out of memory");
        return false;
    }
    if (m->cfg->early_data && m->early_register == NULL &&
        tlsr_cache_new(EARLY_REGISTER_BYTES, &m->early_register) != TLSR_OK) {
        snprintf(err, cap, "early_data: strike register: %s", tlsr_last_error());
        return false;
    }
    if (!tls_set_build(m->cfg, m->cache, ring_for(m, m->cfg), m->early_register, m->tls, err,
                       cap) ||
        !setup_fleet(m, err, cap) || !upstream_new(m->cfg, &m->up_store, &m->up, err, cap)) {
        return false;
    }
    return resolve_backends(m->cfg, m->up, m->backends, &m->n_backends, err, cap);
}

static bool start(struct master *m, char *err, size_t cap)
{
    if (!bind_all(m, m->cfg, m->listeners, err, cap)) {
        return false;
    }
    m->n_listeners = m->cfg->listen.n;
    m->admin_fd = -1;
    if (strcmp(m->cfg->admin, "off") != 0) {
        char why[512];
        m->admin_fd = handover_take_socket(&m->ho, m->cfg->admin);
        if (m->admin_fd < 0) {
            m->admin_fd = bind_listener(m->cfg->admin, 64, why, sizeof(why));
        }
        if (m->admin_fd < 0) {
            snprintf(err, cap, "admin: %s%s", why,
                     strstr(why, "in use") != NULL
                         ? " (another serve on this host? give each its own --admin "
                           "HOST:PORT, or --admin off)"
                         : "");
            return false;
        }
    }
    m->metrics = metrics_new();
    m->history = calloc(1, sizeof(*m->history)); /* NULL: the page shows no graphs */
    if (m->metrics == NULL) {
        snprintf(err, cap, "cannot map the shared counters");
        return false;
    }
    return start_fleet_ring(m, err, cap);
}

/* How long workers wait for the fleet's key ring before they start on local keys. */
#define JOIN_WAIT_S 3.0

/* In a fleet, workers start once the ring holds the fleet's keys (a fraction of a second when
 * Redis answers), so that no ticket is sealed under a key that only this server has: other
 * servers could not open it. Without an answer by JOIN_WAIT_S they start on local keys, as
 * with Redis down (misses, never failures). Clients that connect meanwhile wait in the
 * listen backlog. */
static void on_join_wait(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)revents;
    struct master *m = t->data;
    struct tlsr_fleet_ring_stats st;
    tlsr_fleet_ring_get_stats(m->fleet_ring, &st);
    if (st.is_foreign_key) {
        /* A configuration error, found only once Redis answered: stop before any worker. */
        ev_timer_stop(loop, t);
        log_msg(LOG_ERROR, "config",
                "fleet_key: %s is not this fleet's key: none of the fleet's keys in Redis "
                "(prefix %s) opens with it; give every server the same fleet key file",
                m->cfg->fleet_key, m->fleet_prefix);
        m->exit_code = 2;
        m->is_stopping = true;
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    if (!st.is_joined && ev_now(loop) < m->join_deadline) {
        return;
    }
    ev_timer_stop(loop, t);
    if (!st.is_joined) {
        log_msg(LOG_WARN, "fleet",
                "event=join_timeout after_s=%.0f note=\"workers start on local ticket keys "
                "until the fleet's key ring is reached\"",
                JOIN_WAIT_S);
    }
    if (!m->is_stopping && m->n_workers == 0) {
        spawn_generation(m);
        announce(m);
    }
}

static void start_workers(struct master *m)
{
    handover_close_untaken(&m->ho); /* before any worker could inherit them */
    if (m->fleet_ring == NULL) {
        spawn_generation(m);
        announce(m);
        return;
    }
    ev_timer_init(&m->join_wait, on_join_wait, 0.02, 0.02);
    m->join_wait.data = m;
    m->join_deadline = ev_now(m->loop) + JOIN_WAIT_S;
    ev_timer_start(m->loop, &m->join_wait);
}

static void run_loop(struct master *m)
{
    m->loop = EV_DEFAULT;
    int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGUSR1, SIGUSR2};
    for (int i = 0; i < 5; i++) {
        ev_signal_init(&m->sig[i], on_signal, sigs[i]);
        m->sig[i].data = m;
        ev_signal_start(m->loop, &m->sig[i]);
    }
    ev_init(&m->respawn, on_respawn);
    m->respawn.data = m;
    ev_timer_init(&m->reaper, on_reaper, 1.0, 1.0);
    m->reaper.data = m;
    ev_timer_start(m->loop, &m->reaper);
    ev_timer_init(&m->keys_ahead, on_keys_ahead, 0.0, 1.0);
    m->keys_ahead.data = m;
    ev_timer_start(m->loop, &m->keys_ahead);
    if (m->admin_fd >= 0 && m->history != NULL) {
        ev_timer_init(&m->sampler, on_sample, 0.0, HISTORY_INTERVAL_S);
        m->sampler.data = m;
        ev_timer_start(m->loop, &m->sampler);
    }
    ev_child_init(&m->child, on_child, 0, 0);
    m->child.data = m;
    ev_child_start(m->loop, &m->child);
    if (m->admin_fd >= 0) {
        ev_io_init(&m->admin_io, on_admin, m->admin_fd, EV_READ);
        m->admin_io.data = m;
        ev_io_start(m->loop, &m->admin_io);
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(m->cfg);
    start_workers(m);
    log_summary(m, "started");
    ev_run(m->loop, 0);
    log_msg(LOG_INFO, "serve", "event=stopped");
}

static void cleanup(struct master *m)
{
    /* Memory another master may still map is left unwiped: what a new master adopted (or may
     * be adopting: an upgrade under way), what this one adopted while the master it came from
     * still runs (it is our parent until it exits: a new master that fails to start must not
     * wipe what the old one serves from), and what systemd's store holds. */
    bool is_shared_all =
        m->ho.is_systemd || m->upgrade.pid > 0 || (m->ho.from > 0 && getppid() == m->ho.from);
    upgrade_stop(&m->upgrade);
    bool *gone = m->disowned;
    if (is_shared_all || gone[HO_CACHE]) {
        tlsr_cache_disown(m->cache);
    }
    if (is_shared_all || gone[HO_KEYS]) {
        tlsr_keyring_disown(m->ring);
    }
    if (is_shared_all || gone[HO_REGISTER]) {
        tlsr_cache_disown(m->early_register);
    }
    if (is_shared_all || gone[HO_UPSTREAM]) {
        tlsr_cache_disown(m->up_store);
    }
    if (m->tls != NULL) {
        tls_set_free(m->tls);
        free(m->tls);
    }
    for (size_t i = 0; i < m->n_listeners; i++) {
        close(m->listeners[i].fd);
    }
    if (m->admin_fd >= 0) {
        close(m->admin_fd);
    }
    metrics_free(m->metrics);
    free(m->history);
    tlsr_fleet_ring_free(m->fleet_ring);
    tlsr_fleet_secret_free(m->fleet_secret);
    OPENSSL_cleanse(m->redis_password, sizeof(m->redis_password));
    tlsr_keyring_free(m->ring);
    tlsr_cache_free(m->cache);
    tlsr_cache_free(m->early_register);
    upstream_delete(m->up);
    tlsr_cache_free(m->up_store);
    free(m->cfg);
}

int serve_main(int argc, char **argv)
{
    struct master m;
    memset(&m, 0, sizeof(m));
    m.argc = argc;
    m.argv = argv;
    m.admin_fd = -1;
    upgrade_init(&m.upgrade, EV_DEFAULT, on_upgraded, &m);
    m.started = (double)time(NULL);
    ssize_t exe_len = readlink("/proc/self/exe", m.exe, sizeof(m.exe) - 1);
    m.exe[exe_len > 0 ? exe_len : 0] = '\0';
    m.cfg = malloc(sizeof(*m.cfg));
    char err[1024] = "";
    enum cfg_action action = CFG_SERVE;
    if (m.cfg == NULL || !serve_config_load(argc, argv, m.cfg, &action, err, sizeof(err))) {
        log_msg(LOG_ERROR, "config", "%s", err);
        free(m.cfg);
        return 2;
    }
    if (action == CFG_HELP || action == CFG_MAN || action == CFG_TABLE || action == CFG_FILE_MAN) {
        if (action == CFG_TABLE || action == CFG_FILE_MAN) {
            serve_config_table(stdout, action == CFG_FILE_MAN);
        } else {
            serve_config_help(stdout, action == CFG_MAN);
        }
        free(m.cfg);
        return 0;
    }
    log_set_level(m.cfg->log_level);
    int rc = 0;
    if (action == CFG_SERVE) {
        handover_receive(&m.ho);
    } else {
        handover_init(&m.ho);
    }
    if (!setup_library(&m, err, sizeof(err))) {
        log_msg(LOG_ERROR, "config", "%s", err);
        rc = 2;
    } else if (action == CFG_CHECK) {
        log_msg(LOG_INFO, "config", "result=ok certificates=%zu", m.tls->n);
    } else if (!start(&m, err, sizeof(err))) {
        log_msg(LOG_ERROR, "serve", "%s", err);
        rc = 1;
    } else {
        if (m.cfg->early_data && !m.cfg->early_data_anti_replay) {
            log_msg(LOG_WARN, "tls",
                    "early_data_anti_replay=no note=\"replayed 0-RTT flights are accepted: for "
                    "demonstrations only, never in production\"");
        }
        if (m.cfg->self_signed) {
            log_msg(LOG_WARN, "tls",
                    "certificate=self-signed names=localhost,127.0.0.1,::1 "
                    "note=\"ephemeral, for demos and tests only\"");
        }
        log_key_memory(&m);
        run_loop(&m);
        rc = m.exit_code;
    }
    cleanup(&m);
    return rc;
}
