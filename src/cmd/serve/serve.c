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
#include "serve_fleet.h"
#include "serve_handover.h"
#include "serve_listen.h"
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
    struct admin_server admin;
    ev_timer respawn; /* replaces dead workers a second later, never in a tight loop */
    int pending_ids[MAX_WORKERS];
    unsigned pending_respawns;
    ev_timer reaper;     /* kills draining workers past their deadline */
    ev_timer keys_ahead; /* makes the next ticket keys here, never in a worker's handshake */
    ev_timer sampler;    /* the status page's history, every HISTORY_INTERVAL_S */
    struct history *history;
    int exit_code; /* set when the master stops on an error found after start */
    bool is_prepare_failing;
    struct serve_fleet fleet; /* --redis */
    ev_timer join_wait;       /* workers start once the ring has joined the fleet */
    ev_tstamp join_deadline;
    /* Hand-over: what this master received, whether it announced itself, and an upgrade it
     * started (the new master's pid, its ready pipe, the deadline). */
    struct handover ho;
    bool is_announced;
    char exe[PATH_MAX];
    struct upgrade upgrade;
    bool disowned[HO_NPARTS]; /* parts a new master adopted: left unwiped at exit */
};

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
        admin_server_forget(&m->admin);
        ev_timer_stop(EV_DEFAULT, &m->respawn);
        ev_timer_stop(EV_DEFAULT, &m->reaper);
        ev_timer_stop(EV_DEFAULT, &m->join_wait);
        ev_timer_stop(EV_DEFAULT, &m->keys_ahead);
        ev_timer_stop(EV_DEFAULT, &m->sampler);
        tlsr_fleet_ring_free(m->fleet.ring); /* the master's; this closes only our copy */
        m->fleet.ring = NULL;
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
            .fleet = serve_fleet_opts(&m->fleet),
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
    serve_config_log(m->cfg, m->ring != NULL, "reloaded");
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
        admin_server_stop(&m->admin);
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
        if (m->fleet.ring != NULL) {
            tlsr_fleet_ring_rotate(m->fleet.ring);
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

static void admin_view_of(void *arg, struct admin_view *v)
{
    const struct master *m = arg;
    *v = (struct admin_view){
        m->metrics, m->cache,         ring_for(m, m->cfg), (unsigned)m->cfg->workers,
        m->started, m->reloads,       m->fleet.ring,       m->cfg->redis.n > 0,
        m->history, &m->cfg->backend, m->cfg->backend_tls};
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
        !serve_fleet_setup(&m->fleet, m->cfg, err, cap) ||
        !upstream_new(m->cfg, &m->up_store, &m->up, err, cap)) {
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
    return serve_fleet_join(&m->fleet, m->cfg, m->ring, err, cap);
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
    tlsr_fleet_ring_get_stats(m->fleet.ring, &st);
    if (st.is_foreign_key) {
        /* A configuration error, found only once Redis answered: stop before any worker. */
        ev_timer_stop(loop, t);
        log_msg(LOG_ERROR, "config",
                "fleet_key: %s is not this fleet's key: none of the fleet's keys in Redis "
                "(prefix %s) opens with it; give every server the same fleet key file",
                m->cfg->fleet_key, m->fleet.prefix);
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
    if (m->fleet.ring == NULL) {
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
        admin_server_start(&m->admin, m->loop, m->admin_fd, admin_view_of, m);
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile(m->cfg);
    start_workers(m);
    serve_config_log(m->cfg, m->ring != NULL, "started");
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
    admin_server_stop(&m->admin);
    if (m->admin_fd >= 0) {
        close(m->admin_fd);
    }
    metrics_free(m->metrics);
    free(m->history);
    serve_fleet_free(&m->fleet);
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
