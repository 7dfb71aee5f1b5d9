/*
 * `tlsresume keys`: the fleet key, and the fleet's ticket key ring for every server, ours or
 * not (docs/KEYS.md).
 *
 *   init     makes the fleet key file every server of a fleet shares (mode 0600, never over an
 *            existing file)
 *   status   the fleet's keys: names (a prefix), states, ages, expiry, acknowledgements and use
 *            summed over the servers' reports; never key bytes
 *   rotate   asks the fleet to rotate now (the next key is promoted once every server holds it)
 *   export   writes the ring in nginx, HAProxy, Apache, Node or raw format
 *   import   adds another server's keys to the fleet as decrypt-only (a migration loses none of
 *            the tickets that server issued)
 *   sync     follows the ring beside nginx, HAProxy, Apache or Node and keeps their keys
 *            current; it is a member of the fleet, so a key encrypts anywhere only once sync
 *            has handed it to its server
 *
 * The fleet settings are serve's (the same flags or the same --config file), so a tool and
 * the servers it runs beside cannot disagree on Redis, the prefix, the fleet key or the
 * rotation period and ticket lifetime.
 */
#include "keys.h"

#include <errno.h>
#include <ev.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>

#include "../cli/cli.h"
#include "../cli/doc.h"
#include "../cli/opts.h"
#include "../cli/log.h"

int keys_main(int argc, char **argv);

#define MAX_IMPORT TLSR_KEYRING_MAX_IMPORTS
#define IMPORT_FILE_MAX (64 * 1024)

enum verb { V_STATUS, V_ROTATE, V_EXPORT, V_IMPORT, V_SYNC };

struct run {
    enum verb verb;
    struct serve_config cfg;
    struct tlsr_fleet_secret *secret;
    struct tlsr_keyring *ring;
    struct tlsr_fleet_ring *fr;
    struct tlsr_fleet_opts fo;
    const char *endpoints[CLI_LIST_MAX];
    char password[512];
    ev_timer deadline;
    ev_timer probe; /* one-shot verbs: Redis refused or dropped the connection */
    ev_signal sigterm;
    ev_signal sigint;
    int rc;
    /* Verb options and state. */
    bool is_json;
    bool is_wait;
    bool is_once;
    uint64_t timeout_s;
    uint64_t keep_s;
    char in[4096];
    struct keys_target target;
    struct tlsr_key_material imports[MAX_IMPORT];
    size_t n_imports;
    int phase;
    uint64_t gen0;
};

#define RUN_AT(F) CLI_AT(run, F)
static const struct cli_opt verb_options[] = {
    {.name = "json",
     .type = CLI_BOOL,
     .def = "no",
     .offset = RUN_AT(is_json),
     .help = "status: one JSON document"},
    {.name = "wait",
     .type = CLI_BOOL,
     .def = "no",
     .offset = RUN_AT(is_wait),
     .help = "rotate: wait until the new key is promoted"},
    {.name = "once",
     .type = CLI_BOOL,
     .def = "no",
     .offset = RUN_AT(is_once),
     .help = "sync: bring the targets up to date once, then exit"},
    {.name = "in",
     .type = CLI_STRING,
     .choices = "FILE",
     .offset = RUN_AT(in),
     .help = "import: the other server's key file (in --format)"},
    {.name = "keep",
     .type = CLI_DURATION,
     .min = 1,
     .max = 7 * 86400,
     .offset = RUN_AT(keep_s),
     .help = "import: how long imported keys decrypt (default: ticket_lifetime)"},
    {.name = "timeout",
     .type = CLI_DURATION,
     .def = "10s",
     .min = 1,
     .max = 3600,
     .offset = RUN_AT(timeout_s),
     .help = "give up when Redis does not answer within this"},
};

static const char keys_usage[] =
    "keys init --out FILE\n"
    "       tlsresume keys status [--json] FLEET\n"
    "       tlsresume keys rotate [--wait] FLEET\n"
    "       tlsresume keys export --format F --out PATH [--slots N] [--allow-disk] FLEET\n"
    "       tlsresume keys import --format F --in FILE [--keep DURATION] FLEET\n"
    "       tlsresume keys sync TARGET... [--once] FLEET";

/* The command line of a verb: its options, the targets and serve's fleet settings. */
static void keys_cmd(struct run *r, struct cli_table t[3], struct cli_cmd *c)
{
    memset(t, 0, 3 * sizeof(*t));
    t[0].opts = verb_options;
    t[0].n = sizeof(verb_options) / sizeof(verb_options[0]);
    t[0].dst = r;
    t[0].heading = "options";
    keys_target_rows(&r->target, &t[1]);
    serve_config_rows(&r->cfg, CLI_TAG_FLEET, &t[2]);
    memset(c, 0, sizeof(*c));
    c->name = "keys";
    c->summary = "the fleet key and ticket keys: init, status, rotate, export, import, sync";
    c->usage = keys_usage;
    c->about = "The fleet key, and the fleet's ticket key ring for every server, ours or not.\n"
               "FLEET: serve's fleet settings, --config FILE (serve's file) or the flags below; "
               "they\nmust match the servers'. TARGET: --format F --out PATH [--slots N] "
               "[--reload COMMAND],\n--haproxy-socket PATH... --haproxy-ref REF, or --format "
               "node --stdout.";
    c->tables = t;
    c->n_tables = 3;
    c->section = "serve";
}

static void usage(FILE *out, bool is_man)
{
    struct run *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        return;
    }
    struct cli_table t[3];
    struct cli_cmd c;
    keys_cmd(r, t, &c);
    (is_man ? cli_man : cli_help)(&c, out);
    free(r);
}

static void lib_log(void *arg, enum tlsr_log_level level, const char *component, const char *msg)
{
    (void)arg;
    log_msg((enum log_level)level, component, "%s", msg);
}

static void finish(struct run *r, int rc)
{
    r->rc = rc;
    ev_break(EV_DEFAULT, EVBREAK_ALL);
}

static const char *state_name(const struct tlsr_fleet_key_status *k)
{
    if (k->generation == 0) {
        return "imported";
    }
    return k->state == TLSR_KEY_NEXT      ? "next"
           : k->state == TLSR_KEY_CURRENT ? "current"
                                          : "decrypt-only";
}

static void print_status(struct run *r)
{
    struct tlsr_fleet_ring_stats st;
    tlsr_fleet_ring_get_stats(r->fr, &st);
    const struct tlsr_fleet_key_status *keys;
    size_t n = 0;
    tlsr_fleet_ring_keys(r->fr, &keys, &n);
    if (r->is_json) {
        printf("{\"redis\":\"%s\",\"prefix\":\"%s\",\"generation\":%llu,\"members\":%llu,"
               "\"unacked\":%llu,\"rotation_asked\":%s,\"imported\":%llu,\"keys\":[",
               r->endpoints[0], r->cfg.redis_prefix, (unsigned long long)st.generation,
               (unsigned long long)st.members, (unsigned long long)st.unacked,
               st.is_rotation_asked ? "true" : "false", (unsigned long long)st.imported);
        for (size_t i = 0; i < n; i++) {
            const struct tlsr_fleet_key_status *k = &keys[i];
            printf("%s{\"generation\":%llu,\"name\":\"%02x%02x%02x%02x\",\"state\":\"%s\","
                   "\"bytes\":%u,\"age_s\":%llu,\"expires_s\":%llu,\"acks\":%llu,"
                   "\"issued\":%llu,\"presented\":%llu}",
                   i > 0 ? "," : "", (unsigned long long)k->generation, k->name_prefix[0],
                   k->name_prefix[1], k->name_prefix[2], k->name_prefix[3], state_name(k), k->size,
                   (unsigned long long)k->age_s, (unsigned long long)k->expires_s,
                   (unsigned long long)k->acks, (unsigned long long)k->issued,
                   (unsigned long long)k->presented);
        }
        printf("]}\n");
        return;
    }
    printf("fleet redis=%s prefix=%s generation=%llu members=%llu unacked=%llu "
           "rotation_asked=%s imported=%llu\n",
           r->endpoints[0], r->cfg.redis_prefix, (unsigned long long)st.generation,
           (unsigned long long)st.members, (unsigned long long)st.unacked,
           st.is_rotation_asked ? "yes" : "no", (unsigned long long)st.imported);
    printf("%-10s %-8s %-12s %5s %9s %10s %5s %10s %10s\n", "generation", "key", "state", "bytes",
           "age_s", "expires_s", "acks", "issued", "presented");
    for (size_t i = 0; i < n; i++) {
        const struct tlsr_fleet_key_status *k = &keys[i];
        printf("%-10llu %02x%02x%02x%02x %-12s %5u %9llu %10llu %5llu %10llu %10llu\n",
               (unsigned long long)k->generation, k->name_prefix[0], k->name_prefix[1],
               k->name_prefix[2], k->name_prefix[3], state_name(k), k->size,
               (unsigned long long)k->age_s, (unsigned long long)k->expires_s,
               (unsigned long long)k->acks, (unsigned long long)k->issued,
               (unsigned long long)k->presented);
    }
}

/* The fleet's keys from this process's ring, applied to the target. */
static tlsr_status export_to_target(struct run *r)
{
    struct tlsr_key_material keys[KEYS_MAX_EXPORT];
    size_t n = 0;
    bool has_next = false;
    tlsr_status rc = tlsr_keyring_export(r->ring, true, keys, KEYS_MAX_EXPORT, &n, &has_next);
    if (rc == TLSR_OK && !keys_target_apply(&r->target, keys, n, has_next)) {
        rc = TLSR_E_SYSTEM;
    }
    OPENSSL_cleanse(keys, sizeof(keys));
    return rc;
}

/* keys sync: called by the ring after each poll's installs; the fleet waits for success. */
static tlsr_status sync_apply(void *arg, struct tlsr_keyring *ring)
{
    (void)ring;
    struct run *r = arg;
    tlsr_status rc = export_to_target(r);
    if (rc == TLSR_E_NOTFOUND) {
        /* No fleet key encrypts yet: nothing issued under one, nothing to hand over. */
        return TLSR_OK;
    }
    if (rc == TLSR_OK) {
        r->phase = 1;
    }
    return rc;
}

static void import_all(struct run *r)
{
    uint32_t keep = (uint32_t)r->keep_s;
    for (size_t i = 0; i < r->n_imports; i++) {
        if (tlsr_fleet_ring_import(r->fr, &r->imports[i], keep) != TLSR_OK) {
            fprintf(stderr, "error keys: import: %s\n", tlsr_last_error());
            finish(r, 1);
            return;
        }
    }
}

/* Whether every key of this import shows in the fleet's imported keys (by name prefix). */
static bool imports_confirmed(const struct run *r)
{
    const struct tlsr_fleet_key_status *keys;
    size_t n = 0;
    tlsr_fleet_ring_keys(r->fr, &keys, &n);
    for (size_t i = 0; i < r->n_imports; i++) {
        bool is_seen = false;
        for (size_t j = 0; j < n && !is_seen; j++) {
            is_seen =
                keys[j].generation == 0 && memcmp(keys[j].name_prefix, r->imports[i].bytes, 4) == 0;
        }
        if (!is_seen) {
            return false;
        }
    }
    return true;
}

static void on_polled(void *arg, bool is_ok)
{
    struct run *r = arg;
    struct tlsr_fleet_ring_stats st;
    tlsr_fleet_ring_get_stats(r->fr, &st);
    if (!is_ok) {
        return;
    }
    if (st.is_foreign_key) {
        fprintf(stderr,
                "error keys: fleet_key: %s is not this fleet's key: none of the fleet's keys in "
                "Redis (prefix %s) opens with it; use the file the servers use\n",
                r->cfg.fleet_key, r->cfg.redis_prefix);
        finish(r, 1);
        return;
    }
    switch (r->verb) {
    case V_STATUS:
        print_status(r);
        finish(r, 0);
        return;
    case V_EXPORT: {
        tlsr_status rc = export_to_target(r);
        if (rc == TLSR_E_NOTFOUND) {
            fprintf(stderr, "error keys: the fleet has no encrypting key yet (is any server or "
                            "keys sync running?)\n");
        } else if (rc != TLSR_OK && rc != TLSR_E_SYSTEM) {
            fprintf(stderr, "error keys: %s\n", tlsr_last_error());
        }
        finish(r, rc == TLSR_OK ? 0 : 1);
        return;
    }
    case V_ROTATE:
        if (r->phase == 0) {
            r->gen0 = st.generation;
            r->phase = 1; /* this poll sent the request; the next one shows it */
        } else if (st.generation > r->gen0 || (!r->is_wait && st.is_rotation_asked)) {
            fprintf(stderr, "info keys event=%s generation=%llu members=%llu unacked=%llu\n",
                    st.generation > r->gen0 ? "rotated" : "rotation_asked",
                    (unsigned long long)st.generation, (unsigned long long)st.members,
                    (unsigned long long)st.unacked);
            finish(r, 0);
        }
        return;
    case V_IMPORT:
        if (r->phase == 0) {
            r->phase = 1;
            import_all(r);
        } else if (imports_confirmed(r)) {
            fprintf(stderr,
                    "info keys event=imported keys=%zu keep_s=%llu note=\"every server holds "
                    "them as decrypt-only from its next poll\"\n",
                    r->n_imports, (unsigned long long)r->keep_s);
            finish(r, 0);
        }
        return;
    case V_SYNC:
        if (r->is_once && r->phase == 1) {
            finish(r, 0);
        }
        return;
    }
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct run *r = w->data;
    fprintf(stderr, "error keys: no %s from Redis at %s within %llu s\n",
            r->verb == V_ROTATE && r->is_wait ? "rotation" : "answer", r->endpoints[0],
            (unsigned long long)r->timeout_s);
    finish(r, 1);
}

/* A one-shot verb stops at the first failed connect, as redis-cli does, rather than wait for a
 * Redis that refuses (the ring's warning line above says why). */
static void on_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    struct run *r = w->data;
    struct tlsr_fleet_ring_stats st;
    tlsr_fleet_ring_get_stats(r->fr, &st);
    if (st.redis_downs > 0 && !st.is_redis_up) {
        fprintf(stderr,
                "error keys: cannot reach Redis at %s (why: the line above); nothing "
                "was changed\n",
                r->endpoints[0]);
        finish(r, 1);
    }
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)loop;
    (void)revents;
    struct run *r = w->data;
    fprintf(stderr, "info keys event=stopping signal=%d\n", w->signum);
    finish(r, 0);
}

static bool open_fleet(struct run *r, char *err, size_t cap)
{
    if (tlsr_fleet_secret_load(r->cfg.fleet_key, &r->secret) != TLSR_OK) {
        snprintf(err, cap, "fleet_key: %s", tlsr_last_error());
        return false;
    }
    const char *username = NULL;
    const char *password = NULL;
    if (!serve_redis_auth(&r->cfg, r->password, sizeof(r->password), &username, &password, err,
                          cap)) {
        return false;
    }
    if (tlsr_keyring_new((uint32_t)r->cfg.ticket_rotate_s, (uint32_t)r->cfg.ticket_lifetime_s,
                         &r->ring) != TLSR_OK) {
        snprintf(err, cap, "ticket_rotate/ticket_lifetime: %s", tlsr_last_error());
        return false;
    }
    tlsr_fleet_opts_init(&r->fo);
    for (size_t i = 0; i < r->cfg.redis.n; i++) {
        r->endpoints[i] = r->cfg.redis.v[i];
    }
    r->fo.endpoints = r->endpoints;
    r->fo.n_endpoints = r->cfg.redis.n;
    r->fo.prefix = r->cfg.redis_prefix;
    r->fo.secret = r->secret;
    r->fo.password = password;
    r->fo.username = username;
    serve_redis_tls(&r->cfg, &r->fo.tls);
    r->fo.log = lib_log;
    struct tlsr_fleet_ring_opts ro;
    tlsr_fleet_ring_opts_init(&ro);
    ro.is_observer = r->verb != V_SYNC;
    ro.member = r->cfg.fleet_member[0] != '\0' ? r->cfg.fleet_member : NULL;
    ro.poll_ms = ro.is_observer ? 200 : (uint32_t)r->cfg.fleet_poll_ms;
    ro.ack_wait_s = (uint32_t)r->cfg.fleet_ack_wait_s;
    ro.clock_skew_s = (uint32_t)r->cfg.fleet_clock_skew_s;
    ro.polled = on_polled;
    ro.polled_arg = r;
    if (r->verb == V_SYNC) {
        ro.apply = sync_apply;
        ro.apply_arg = r;
    }
    if (tlsr_fleet_ring_new(EV_DEFAULT, &r->fo, &ro, r->ring, &r->fr) != TLSR_OK) {
        snprintf(err, cap, "fleet: %s", tlsr_last_error());
        return false;
    }
    return true;
}

static bool read_imports(struct run *r)
{
    FILE *f = fopen(r->in, "rb");
    if (f == NULL) {
        fprintf(stderr, "error keys: --in %s: %s\n", r->in, strerror(errno));
        return false;
    }
    uint8_t *buf = malloc(IMPORT_FILE_MAX + 1);
    size_t len = buf != NULL ? fread(buf, 1, IMPORT_FILE_MAX + 1, f) : 0;
    fclose(f);
    bool is_ok = buf != NULL && len <= IMPORT_FILE_MAX;
    if (!is_ok) {
        fprintf(stderr, "error keys: --in %s: larger than 64 KiB\n", r->in);
    } else if (tlsr_keyfile_read(r->target.format, r->in, buf, len, r->imports, MAX_IMPORT,
                                 &r->n_imports) != TLSR_OK) {
        fprintf(stderr, "error keys: %s\n", tlsr_last_error());
        is_ok = false;
    }
    if (buf != NULL) {
        OPENSSL_cleanse(buf, IMPORT_FILE_MAX + 1);
    }
    free(buf);
    return is_ok;
}

static bool check_verb(struct run *r)
{
    if (r->verb == V_EXPORT || r->verb == V_SYNC) {
        return keys_target_check(&r->target, r->verb == V_SYNC);
    }
    if (r->verb == V_IMPORT && (r->in[0] == '\0' || !r->target.has_format)) {
        fprintf(stderr, "error keys: import needs --format F --in FILE\n");
        return false;
    }
    bool has_target = r->target.out[0] != '\0' || r->target.sockets.n > 0 || r->target.is_stdout;
    if (has_target || (r->target.has_format && r->verb != V_IMPORT)) {
        fprintf(stderr, "error keys: --format, --out and the sync targets belong to export, "
                        "import and sync\n");
        return false;
    }
    return true;
}

static int run_verb(struct run *r, int argc, char **argv)
{
    struct cli_table t[3];
    struct cli_cmd c;
    keys_cmd(r, t, &c);
    int rc = cli_read(&c, argc, argv);
    if (rc >= 0) {
        return rc;
    }
    char err[512];
    if (!check_verb(r)) {
        return 2;
    }
    if (!serve_config_check_fleet(&r->cfg, err, sizeof(err))) {
        fprintf(stderr, "error keys: %s\n", err);
        return 2;
    }
    if (r->keep_s == 0) {
        r->keep_s = r->cfg.ticket_lifetime_s;
    }
    if (r->verb == V_IMPORT && !read_imports(r)) {
        return 1;
    }
    if (r->verb != V_SYNC) {
        log_set_level("warn"); /* one-shot commands: the library's progress lines are noise */
    }
    if (!open_fleet(r, err, sizeof(err))) {
        fprintf(stderr, "error keys: %s\n", err);
        return 1;
    }
    if (r->verb == V_ROTATE) {
        tlsr_fleet_ring_rotate(r->fr);
    }
    if (r->verb != V_SYNC || r->is_once) {
        ev_timer_init(&r->deadline, on_deadline, (double)r->timeout_s, 0);
        r->deadline.data = r;
        ev_timer_start(EV_DEFAULT, &r->deadline);
    }
    if (r->verb != V_SYNC) {
        ev_timer_init(&r->probe, on_probe, 0.1, 0.1);
        r->probe.data = r;
        ev_timer_start(EV_DEFAULT, &r->probe);
    }
    ev_signal_init(&r->sigterm, on_signal, SIGTERM);
    ev_signal_init(&r->sigint, on_signal, SIGINT);
    r->sigterm.data = r;
    r->sigint.data = r;
    ev_signal_start(EV_DEFAULT, &r->sigterm);
    ev_signal_start(EV_DEFAULT, &r->sigint);
    ev_run(EV_DEFAULT, 0);
    return r->rc;
}

struct init_opts {
    char out[4096];
};

static int init(int argc, char **argv)
{
    static const struct cli_opt init_options[] = {
        {.name = "out",
         .type = CLI_STRING,
         .choices = "FILE",
         .offset = CLI_AT(init_opts, out),
         .help = "the new fleet key file (mode 0600; never over an existing file)"},
    };
    struct init_opts o;
    memset(&o, 0, sizeof(o));
    struct cli_table t;
    memset(&t, 0, sizeof(t));
    t.opts = init_options;
    t.n = 1;
    t.dst = &o;
    struct cli_cmd c;
    memset(&c, 0, sizeof(c));
    c.name = "keys init";
    c.usage = "keys init --out FILE";
    c.about = "Makes the fleet key file every server of a fleet shares.";
    c.tables = &t;
    c.n_tables = 1;
    int rc = cli_read(&c, argc, argv);
    if (rc >= 0) {
        return rc;
    }
    const char *out = o.out;
    if (out[0] == '\0') {
        fprintf(stderr, "error keys: init needs --out FILE\n");
        return 2;
    }
    if (tlsr_fleet_secret_generate(out) != TLSR_OK) {
        fprintf(stderr, "error keys: %s\n", tlsr_last_error());
        return 1;
    }
    fprintf(stderr,
            "info keys event=fleet_key_created file=%s mode=0600 note=\"give every "
            "server of the fleet this file, as you would a certificate key\"\n",
            out);
    return 0;
}

int keys_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout, false);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--man") == 0) {
        usage(stdout, true);
        return 0;
    }
    if (strcmp(argv[1], "init") == 0) {
        return init(argc - 1, argv + 1);
    }
    static const char *const verbs[] = {"status", "rotate", "export", "import", "sync"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        if (strcmp(argv[1], verbs[i]) != 0) {
            continue;
        }
        /* Locked and out of core dumps: it holds imported keys and the Redis password. */
        struct run *r =
            mmap(NULL, sizeof(*r), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (r == MAP_FAILED || mlock(r, sizeof(*r)) != 0 ||
            madvise(r, sizeof(*r), MADV_DONTDUMP) != 0) {
            fprintf(stderr, "error keys: no locked memory (RLIMIT_MEMLOCK?): %s\n",
                    strerror(errno));
            return 1;
        }
        r->verb = (enum verb)i;
        int rc = run_verb(r, argc - 1, argv + 1);
        tlsr_fleet_ring_free(r->fr);
        tlsr_keyring_free(r->ring);
        tlsr_fleet_secret_free(r->secret);
        OPENSSL_cleanse(r->password, sizeof(r->password));
        OPENSSL_cleanse(r, sizeof(*r));
        munmap(r, sizeof(*r));
        return rc;
    }
    fprintf(stderr, "error keys: unknown command '%s' (try tlsresume keys --help)\n", argv[1]);
    return 2;
}
