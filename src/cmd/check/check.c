/*
 * `tlsresume check HOST[:PORT]`: tells whether a server resumes sessions, by which mechanisms,
 * how often, and what it saves.
 *
 * TLS 1.2: a full handshake with tickets off, then N attempts by session ID; a full handshake
 * with tickets on, then N attempts by ticket. Every attempt offers the session of the first
 * full handshake (as sslyze does), so behind a balancer whose servers share nothing the rate
 * shows the share of servers that can resume it, not 0. TLS 1.3: a full handshake, then N
 * attempts made as browsers, Java and curl make them: each ticket used once, the newest first,
 * and a full handshake when none is left (RFC 8446 Appendix C.4), so a server that sends no
 * ticket after a resumption resumes k of N; then one ticket used twice to see whether tickets
 * are single use. Resumption is decided from
 * SSL_session_reused() on the handshake made.
 *
 * Exit codes: 0 every supported mechanism resumed every time (and --expect is met); 1 some
 * supported (or expected) mechanism did not, or none is supported; 2 bad arguments or no TLS
 * handshake at all.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include <tlsresume/client.h>

#include "check.h"
#include "../cli/cli.h"
#include "../cli/opts.h"
#include "check_keylog.h"
#include "check_probe.h"
#include "check_trace.h"
#include "check_watch.h"

struct check_opts {
    struct probe_target target;
    unsigned attempts;
    bool is_json;
    bool is_insecure;
    char ca_file[4096];
    char session_file[4096];
    unsigned watch_s;
    unsigned interval_s;
    bool expect_id;
    bool expect_ticket;
    bool expect_tls13;
    bool is_early;
    struct probe_target replay_to[EARLY_MAX_TARGETS];
    size_t n_replay_to;
    bool is_trace;
    char keylog[4096];
};

static bool parse_target(const char *arg, struct probe_target *t)
{
    const char *host = arg;
    size_t hlen;
    const char *port = "443";
    if (arg[0] == '[') {
        const char *close = strchr(arg, ']');
        if (close == NULL || (close[1] != '\0' && close[1] != ':')) {
            return false;
        }
        host = arg + 1;
        hlen = (size_t)(close - host);
        port = close[1] == ':' ? close + 2 : port;
    } else {
        const char *colon = strrchr(arg, ':');
        if (colon != NULL && strchr(arg, ':') != colon) {
            colon = NULL; /* a bare IPv6 address */
        }
        hlen = colon != NULL ? (size_t)(colon - arg) : strlen(arg);
        port = colon != NULL ? colon + 1 : port;
    }
    uint64_t p = 0;
    if (hlen == 0 || hlen >= sizeof(t->host) || !cli_uint(port, 1, 65535, &p)) {
        return false;
    }
    memcpy(t->host, host, hlen);
    t->host[hlen] = '\0';
    snprintf(t->port, sizeof(t->port), "%u", (unsigned)p);
    return true;
}

static bool parse_expect(const char *list, struct check_opts *o)
{
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", list);
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok != NULL;
         tok = strtok_r(NULL, ",", &save)) {
        if (strcmp(tok, "id") == 0) {
            o->expect_id = true;
        } else if (strcmp(tok, "ticket") == 0) {
            o->expect_ticket = true;
        } else if (strcmp(tok, "tls13") == 0) {
            o->expect_tls13 = true;
        } else {
            return false;
        }
    }
    return true;
}

enum { O_REPLAY_TO = 1, O_EXPECT };

#define CHECK_AT(F) CLI_AT(check_opts, F)
static const struct cli_opt check_options[] = {
    {.name = "servername",
     .type = CLI_STRING,
     .choices = "NAME",
     .offset = CHECK_AT(target.servername),
     .help = "the name sent as SNI and verified in the certificate (default: HOST)"},
    {.name = "attempts",
     .type = CLI_INT,
     .def = "5",
     .min = 1,
     .max = CHECK_MAX_ATTEMPTS,
     .offset = CHECK_AT(attempts),
     .help = "resumptions tried per mechanism"},
    {.name = "json",
     .type = CLI_BOOL,
     .def = "no",
     .offset = CHECK_AT(is_json),
     .help = "one JSON document (schema in docs/check-json.md) instead of text"},
    {.name = "ca",
     .type = CLI_STRING,
     .choices = "FILE",
     .offset = CHECK_AT(ca_file),
     .help = "PEM CA certificates to verify the server with (default: the system's)"},
    {.name = "insecure",
     .type = CLI_BOOL,
     .def = "no",
     .offset = CHECK_AT(is_insecure),
     .help = "do not verify the server's certificate"},
    {.name = "expect",
     .type = CLI_CUSTOM,
     .choices = "id,ticket,tls13",
     .id = O_EXPECT,
     .help = "exit 1 unless these mechanisms resume (comma-separated)"},
    {.name = "timeout",
     .type = CLI_INT,
     .def = "5000",
     .min = 100,
     .max = 60000,
     .choices = "MS",
     .offset = CHECK_AT(target.timeout_ms),
     .help = "milliseconds for each connect and each handshake"},
    {.name = "session_file",
     .type = CLI_STRING,
     .choices = "FILE",
     .offset = CHECK_AT(session_file),
     .help = "resume a session saved by an earlier run and save a fresh one (the file holds "
             "session secrets; it is created with mode 0600)"},
    {.name = "watch",
     .type = CLI_DURATION,
     .def = "0",
     .min = 0,
     .max = 7 * 86400,
     .offset = CHECK_AT(watch_s),
     .help = "repeat for this long every --interval and report ticket key rotations and "
             "whether tickets of older keys still resume"},
    {.name = "interval",
     .type = CLI_DURATION,
     .def = "30s",
     .min = 1,
     .max = 7 * 86400,
     .offset = CHECK_AT(interval_s),
     .help = "time between the rounds of --watch"},
    {.name = "early_data",
     .type = CLI_BOOL,
     .def = "no",
     .offset = CHECK_AT(is_early),
     .help = "resume with TLS 1.3 early data (an HTTP HEAD request), then send the same first "
             "flight again; a replay accepted is a security failure (exit 1)"},
    {.name = "trace",
     .type = CLI_BOOL,
     .def = "no",
     .offset = CHECK_AT(is_trace),
     .help = "show every connection as a ladder of its TLS records and handshake messages each "
             "way (sizes, times, round trips) and what resumption saved; with --json, in its "
             "\"trace\" member"},
    {.name = "keylog",
     .type = CLI_STRING,
     .choices = "FILE",
     .offset = CHECK_AT(keylog),
     .help = "append the connections' TLS secrets to FILE in the NSS key log format "
             "(SSLKEYLOGFILE), to decrypt a capture of the check in Wireshark or tshark; FILE is "
             "created with mode 0600 and holds secrets"},
    {.name = "replay_to",
     .type = CLI_CUSTOM,
     .choices = "HOST:PORT",
     .id = O_REPLAY_TO,
     .help = "with --early-data, send the first flight to this server too (say, the other "
             "servers of a fleet); repeatable"},
};

static bool set_custom(void *dst, const struct cli_opt *opt, const char *v, char *why, size_t cap)
{
    struct check_opts *o = dst;
    if (opt->id == O_EXPECT) {
        return parse_expect(v, o);
    }
    if (o->n_replay_to >= EARLY_MAX_TARGETS) {
        snprintf(why, cap, "at most %d", EARLY_MAX_TARGETS);
        return false;
    }
    return parse_target(v, &o->replay_to[o->n_replay_to++]);
}

static bool set_target(void *arg, const char *word, char *why, size_t cap)
{
    struct check_opts *o = arg;
    if (o->target.host[0] != '\0') {
        snprintf(why, cap, "one server at a time (the target is %s)", o->target.host);
        return false;
    }
    if (!parse_target(word, &o->target)) {
        snprintf(why, cap, "expected HOST[:PORT], a port of 1 to 65535");
        return false;
    }
    return true;
}

static void check_cmd(struct check_opts *o, struct cli_table *t, struct cli_cmd *c)
{
    memset(t, 0, sizeof(*t));
    t->opts = check_options;
    t->n = sizeof(check_options) / sizeof(check_options[0]);
    t->dst = o;
    t->custom = set_custom;
    memset(c, 0, sizeof(*c));
    c->name = "check";
    c->summary = "tell whether a TLS server resumes sessions, how, and what it saves";
    c->usage = "check HOST[:PORT] [options]";
    c->about = "Checks TLS 1.2 session IDs, TLS 1.2 tickets and TLS 1.3 tickets: supported or "
               "not,\nresumed k of N, ticket lifetime, renewal, single use, key names, and the "
               "time a\nresumption saves. PORT defaults to 443.";
    c->notes = "Exit: 0 all supported mechanisms resumed, 1 some did not (or --expect missed,\n"
               "or the server supports none), 2 bad arguments or no connection.";
    c->tables = t;
    c->n_tables = 1;
    c->positional = set_target;
    c->arg = o;
}

static int parse_args(int argc, char **argv, struct check_opts *o)
{
    memset(o, 0, sizeof(*o));
    struct cli_table t;
    struct cli_cmd c;
    check_cmd(o, &t, &c);
    int rc = cli_read(&c, argc, argv);
    if (rc >= 0) {
        return rc;
    }
    if (o->target.host[0] == '\0') {
        fprintf(stderr, "error check: which server? (tlsresume check HOST[:PORT]; see tlsresume "
                        "check --help)\n");
        return 2;
    }
    for (size_t i = 0; i < o->n_replay_to; i++) {
        o->replay_to[i].timeout_ms = o->target.timeout_ms;
        snprintf(o->replay_to[i].servername, sizeof(o->replay_to[i].servername), "%s",
                 o->target.servername);
    }
    if (o->n_replay_to > 0 && !o->is_early) {
        fprintf(stderr, "error check: --replay-to needs --early-data\n");
        return 2;
    }
    if (o->watch_s > 0 && o->is_trace) {
        fprintf(stderr, "error check: --trace shows the connections of one check, not of "
                        "--watch\n");
        return 2;
    }
    if (o->ca_file[0] != '\0' && o->is_insecure) {
        fprintf(stderr, "error check: --ca and --insecure exclude each other\n");
        return 2;
    }
    return -1;
}

static unsigned long atoi_port(const struct check_opts *o)
{
    return strtoul(o->target.port, NULL, 10);
}

static void save_session(const struct check_opts *o, struct check_report *r, SSL_SESSION *s);

static void add_name(struct key_names *k, SSL_SESSION *sess)
{
    char hex[17];
    if (!probe_ticket_name(sess, hex)) {
        return;
    }
    for (size_t i = 0; i < k->n; i++) {
        if (strcmp(k->v[i], hex) == 0) {
            return;
        }
    }
    if (k->n < CHECK_MAX_NAMES) {
        memcpy(k->v[k->n++], hex, sizeof(hex));
    }
}

static void record(struct check_report *r, const struct probe_result *p)
{
    if (!p->is_reused && !r->presented.is_seen) {
        r->presented.is_seen = true;
        snprintf(r->presented.key, sizeof(r->presented.key), "%s", p->key);
        r->presented.has_staple = p->has_staple;
        r->presented.is_client_cert_requested = p->is_client_cert_requested;
    }
    if (p->is_reused && r->n_resumed < sizeof(r->resumed_ms) / sizeof(r->resumed_ms[0])) {
        r->resumed_ms[r->n_resumed++] = p->handshake_ms;
    } else if (!p->is_reused && r->n_full < sizeof(r->full_ms) / sizeof(r->full_ms[0])) {
        r->full_ms[r->n_full++] = p->handshake_ms;
    }
}

/* TLS 1.2 by session ID (tickets off in the client) and by ticket. */
static void check_tls12(const struct check_opts *o, SSL_CTX *no_tickets, SSL_CTX *tickets,
                        struct check_report *r)
{
    struct probe_result full;
    trace_phase("TLS 1.2 full handshake, tickets off");
    probe_run(no_tickets, &o->target, NULL, &full);
    if (!full.is_ok) {
        snprintf(r->tls12.error, sizeof(r->tls12.error), "%s", full.error);
        return;
    }
    r->tls12.is_supported = true;
    record(r, &full);
    r->tls12.session_id_len = full.session_id_len;
    r->tls12.id.is_supported = full.session_id_len > 0;
    trace_phase("TLS 1.2 session ID");
    for (unsigned i = 0; r->tls12.id.is_supported && i < o->attempts; i++) {
        struct probe_result p;
        probe_run(no_tickets, &o->target, full.session, &p);
        r->tls12.id.attempts++;
        r->tls12.id.resumed += p.is_ok && p.is_reused;
        if (p.is_ok) {
            record(r, &p);
        }
        probe_result_free(&p);
    }
    probe_result_free(&full);

    trace_phase("TLS 1.2 full handshake, tickets on");
    probe_run(tickets, &o->target, NULL, &full);
    if (!full.is_ok) {
        return;
    }
    record(r, &full);
    r->tls12.ticket.is_supported = SSL_SESSION_has_ticket(full.session) == 1;
    r->tls12.lifetime_hint_s = r->tls12.ticket.is_supported
                                   ? (long)SSL_SESSION_get_ticket_lifetime_hint(full.session)
                                   : -1;
    add_name(&r->tls12.names, full.session);
    if (o->session_file[0] != '\0' && SSL_SESSION_is_resumable(full.session)) {
        save_session(o, r, full.session);
    }
    trace_phase("TLS 1.2 ticket");
    for (unsigned i = 0; r->tls12.ticket.is_supported && i < o->attempts; i++) {
        struct probe_result p;
        probe_run(tickets, &o->target, full.session, &p);
        r->tls12.ticket.attempts++;
        if (p.is_ok) {
            r->tls12.ticket.resumed += p.is_reused;
            r->tls12.is_renewed |= p.is_reused && !tlsr_client_same_ticket(p.session, full.session);
            add_name(&r->tls12.names, p.session);
            record(r, &p);
        }
        probe_result_free(&p);
    }
    probe_result_free(&full);
}

static void save_session(const struct check_opts *o, struct check_report *r, SSL_SESSION *s)
{
    const char *sni = o->target.servername[0] != '\0' ? o->target.servername : NULL;
    if (tlsr_client_session_save(o->session_file, o->target.host, (uint16_t)atoi_port(o), sni, s) !=
            TLSR_OK &&
        r->file_error[0] == '\0') {
        snprintf(r->file_error, sizeof(r->file_error), "%s", tlsr_last_error());
    }
}

/* Offers the session saved by an earlier run, if any, before anything else. */
static void resume_from_file(const struct check_opts *o, SSL_CTX *c12, SSL_CTX *c13,
                             struct check_report *r)
{
    r->has_session_file = true;
    const char *sni = o->target.servername[0] != '\0' ? o->target.servername : NULL;
    SSL_SESSION *saved = NULL;
    tlsr_status rc = tlsr_client_session_load(o->session_file, o->target.host,
                                              (uint16_t)atoi_port(o), sni, &saved);
    if (rc != TLSR_OK) {
        if (rc != TLSR_E_NOTFOUND) {
            snprintf(r->file_error, sizeof(r->file_error), "%s", tlsr_last_error());
        }
        return;
    }
    bool is13 = SSL_SESSION_get_protocol_version(saved) == TLS1_3_VERSION;
    struct probe_result p;
    trace_phase("session from --session-file");
    probe_run(is13 ? c13 : c12, &o->target, saved, &p);
    r->is_file_offered = true;
    r->is_file_resumed = p.is_ok && p.is_reused;
    probe_result_free(&p);
    SSL_SESSION_free(saved);
}

/* Uses one ticket twice: single use when the first resumes and the second does not. */
static void check_single_use(const struct check_opts *o, SSL_CTX *ctx, SSL_SESSION *ticket,
                             struct check_report *r)
{
    struct probe_result a;
    struct probe_result b;
    trace_phase("TLS 1.3 one ticket twice (single use?)");
    probe_run(ctx, &o->target, ticket, &a);
    probe_run(ctx, &o->target, ticket, &b);
    if (a.is_ok && b.is_ok && a.is_reused) {
        r->tls13.is_single_use = b.is_reused ? 0 : 1;
    }
    probe_result_free(&a);
    probe_result_free(&b);
}

/* The tickets a browser-like client holds: each is used once, newest first. */
struct ticket_pool {
    SSL_SESSION *v[8];
    size_t n;
};

/* Takes the tickets of a handshake (the first and the newest, when they differ) into the pool;
 * when it is full the oldest is dropped, as clients cap their caches. */
static void pool_take(struct ticket_pool *pool, struct probe_result *p)
{
    if (p->tickets == 0) {
        return; /* no new ticket: the session is the one offered */
    }
    SSL_SESSION *got[2] = {p->first, p->session};
    p->first = NULL;
    p->session = NULL;
    for (size_t i = 0; i < 2; i++) {
        if (got[i] == NULL) {
            continue;
        }
        if (pool->n == sizeof(pool->v) / sizeof(pool->v[0])) {
            SSL_SESSION_free(pool->v[0]);
            memmove(pool->v, pool->v + 1, (pool->n - 1) * sizeof(pool->v[0]));
            pool->n--;
        }
        pool->v[pool->n++] = got[i];
    }
}

/* One attempt as a browser makes it: the newest unused ticket, once; none left, a full
 * handshake (which restocks the pool). */
static void browser_attempt(const struct check_opts *o, SSL_CTX *ctx, struct ticket_pool *pool,
                            struct check_report *r)
{
    SSL_SESSION *ticket = pool->n > 0 ? pool->v[--pool->n] : NULL;
    struct probe_result p;
    probe_run(ctx, &o->target, ticket, &p);
    SSL_SESSION_free(ticket);
    r->tls13.ticket.attempts++;
    if (p.is_ok) {
        r->tls13.ticket.resumed += p.is_reused;
        if (p.is_reused) {
            r->tls13.psk_mode = p.has_group ? "psk_dhe_ke" : "psk_ke";
            if (r->tls13.tickets_after_resumption < 0 ||
                (long)p.tickets < r->tls13.tickets_after_resumption) {
                r->tls13.tickets_after_resumption = (long)p.tickets;
            }
        }
        record(r, &p);
        if (p.session != NULL && p.tickets > 0) {
            add_name(&r->tls13.names, p.session);
        }
        pool_take(pool, &p);
    }
    probe_result_free(&p);
}

static void check_tls13(const struct check_opts *o, SSL_CTX *ctx, struct check_report *r)
{
    r->tls13.is_single_use = -1;
    r->tls13.lifetime_s = -1;
    r->tls13.tickets_after_resumption = -1;
    struct probe_result full;
    trace_phase("TLS 1.3 full handshake");
    probe_run(ctx, &o->target, NULL, &full);
    if (!full.is_ok) {
        snprintf(r->tls13.error, sizeof(r->tls13.error), "%s", full.error);
        return;
    }
    r->tls13.is_supported = true;
    record(r, &full);
    r->tls13.tickets_per_handshake = full.tickets;
    r->tls13.ticket.is_supported = full.tickets > 0;
    if (!r->tls13.ticket.is_supported) {
        probe_result_free(&full);
        return;
    }
    r->tls13.lifetime_s = (long)SSL_SESSION_get_ticket_lifetime_hint(full.session);
    r->tls13.max_early_data = SSL_SESSION_get_max_early_data(full.session);
    add_name(&r->tls13.names, full.session);
    /* An unused ticket of the full handshake is the one worth saving; it stays unused (a
     * server with single-use tickets would refuse it next time). */
    if (o->session_file[0] != '\0' && full.first != NULL) {
        save_session(o, r, full.first);
        SSL_SESSION_free(full.first);
        full.first = NULL;
    }
    struct ticket_pool pool = {{NULL}, 0};
    pool_take(&pool, &full);
    trace_phase("TLS 1.3 ticket, each once as browsers use them");
    for (unsigned i = 0; i < o->attempts; i++) {
        browser_attempt(o, ctx, &pool, r);
    }
    /* The single-use test needs a ticket: a server that does not renew may have left none. */
    struct probe_result extra;
    memset(&extra, 0, sizeof(extra));
    if (pool.n == 0) {
        trace_phase("TLS 1.3 full handshake, for a ticket");
        probe_run(ctx, &o->target, NULL, &extra);
        if (extra.is_ok) {
            pool_take(&pool, &extra);
        }
    }
    if (pool.n > 0) {
        check_single_use(o, ctx, pool.v[pool.n - 1], r);
    }
    for (size_t i = 0; i < pool.n; i++) {
        SSL_SESSION_free(pool.v[i]);
    }
    probe_result_free(&extra);
    probe_result_free(&full);
}

static void add_hint(struct check_report *r, const char *hint)
{
    if (r->n_hints < CHECK_MAX_HINTS) {
        r->hints[r->n_hints++] = hint;
    }
}

static bool is_partial(const struct mechanism *m)
{
    return m->is_supported && m->resumed > 0 && m->resumed < m->attempts;
}

static void conclude(const struct check_opts *o, struct check_report *r)
{
    const struct mechanism *all[] = {&r->tls12.id, &r->tls12.ticket, &r->tls13.ticket};
    r->exit_code = 0;
    /* A server that does not renew TLS 1.3 tickets resumes part of the attempts for its own
     * reason, not because of a balancer. */
    bool is_dry = r->tls13.ticket.is_supported &&
                  r->tls13.ticket.resumed < r->tls13.ticket.attempts &&
                  r->tls13.tickets_after_resumption == 0;
    bool has_partial = false;
    for (size_t i = 0; i < 3; i++) {
        if (all[i]->is_supported && all[i]->resumed < all[i]->attempts) {
            r->exit_code = 1;
        }
        has_partial = has_partial || (is_partial(all[i]) && !(i == 2 && is_dry));
    }
    if (!all[0]->is_supported && !all[1]->is_supported && !all[2]->is_supported) {
        add_hint(r, "the server offers no resumption at all: no session IDs, no TLS 1.2 tickets, "
                    "no TLS 1.3 tickets; every connection pays a full handshake");
        r->exit_code = 1;
    }
    if (has_partial) {
        add_hint(r, "some attempts resumed and others did not: servers behind a load balancer "
                    "probably do not share their session cache or ticket keys");
    }
    if (r->tls12.names.n > 1 || r->tls13.names.n > 1) {
        add_hint(r, "tickets came under more than one key name: several servers with their own "
                    "ticket keys, or a key rotation during the check");
    }
    if (is_dry) {
        snprintf(r->dry_hint, sizeof(r->dry_hint),
                 "TLS 1.3: resumes %u of %u like a browser: the server sends no new ticket after "
                 "a resumption, so clients that use each ticket once (browsers, Java, curl; RFC "
                 "8446 Appendix C.4) run dry and pay full handshakes (an OpenSSL server whose "
                 "ticket callback answers SSL_TICKET_RETURN_USE does this)",
                 r->tls13.ticket.resumed, r->tls13.ticket.attempts);
        add_hint(r, r->dry_hint);
    }
    if (r->tls12.id.is_supported && r->tls12.id.resumed == 0) {
        add_hint(r, "the server sends session IDs but never resumes them: its session cache is "
                    "off, too small, or per process");
    }
    size_t used = 0;
    const struct {
        bool want;
        const struct mechanism *m;
        const char *name;
    } expect[] = {{o->expect_id, &r->tls12.id, "id"},
                  {o->expect_ticket, &r->tls12.ticket, "ticket"},
                  {o->expect_tls13, &r->tls13.ticket, "tls13"}};
    for (size_t i = 0; i < 3; i++) {
        if (expect[i].want && (!expect[i].m->is_supported || expect[i].m->resumed == 0 ||
                               expect[i].m->resumed < expect[i].m->attempts)) {
            int n = snprintf(r->expect_failed + used, sizeof(r->expect_failed) - used, "%s%s",
                             used ? "," : "", expect[i].name);
            used += n > 0 ? (size_t)n : 0;
            r->exit_code = 1;
        }
    }
    const struct early_report *e = &r->early;
    if (e->is_tested && strcmp(e->probe, "ran") != 0) {
        add_hint(r, strcmp(e->probe, "refused") == 0
                        ? "0-RTT replays not tested: the server refused the early data they would "
                          "repeat (a server refuses 0-RTT for a while after it starts, or while "
                          "its anti-replay register cannot answer); run the check again later"
                    : strcmp(e->probe, "not_offered") == 0
                        ? "0-RTT replays not tested: the server's tickets allow no early data"
                        : "0-RTT replays not tested: the early data attempt failed");
        r->exit_code = 1;
    }
    if (r->early.replays_accepted > 0) {
        add_hint(r, "SECURITY: a replayed 0-RTT flight was accepted again; an attacker who records "
                    "a client's first flight can repeat its request (RFC 8446 section 8)");
        r->exit_code = 1;
    }
}

int check_main(int argc, char **argv)
{
    struct check_opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) {
        return rc;
    }
    static struct check_report r;
    memset(&r, 0, sizeof(r));
    snprintf(r.target, sizeof(r.target), "%s:%s", o.target.host, o.target.port);
    snprintf(r.servername, sizeof(r.servername), "%s", o.target.servername);
    r.attempts = o.attempts;
    r.tls12.lifetime_hint_s = -1;
    char err[256];
    const char *ca = o.ca_file[0] != '\0' ? o.ca_file : NULL;
    if (o.is_trace) {
        trace_enable();
    }
    if (o.keylog[0] != '\0' && !keylog_open(o.keylog, err, sizeof(err))) {
        fprintf(stderr, "error check: %s\n", err);
        return 2;
    }
    SSL_CTX *c12 = probe_ctx(TLS1_2_VERSION, false, ca, o.is_insecure, err, sizeof(err));
    SSL_CTX *t12 = probe_ctx(TLS1_2_VERSION, true, ca, o.is_insecure, err, sizeof(err));
    SSL_CTX *c13 = probe_ctx(TLS1_3_VERSION, true, ca, o.is_insecure, err, sizeof(err));
    if (c12 == NULL || t12 == NULL || c13 == NULL) {
        fprintf(stderr, "error check: %s\n", err);
        rc = 2;
        goto out;
    }
    keylog_attach(c12);
    keylog_attach(t12);
    keylog_attach(c13);
    if (o.watch_s > 0) {
        rc = check_watch(t12, &o.target, o.watch_s, o.interval_s, o.is_json);
        goto out;
    }
    if (o.session_file[0] != '\0') {
        resume_from_file(&o, t12, c13, &r);
    }
    check_tls12(&o, c12, t12, &r);
    check_tls13(&o, c13, &r);
    if (o.is_early && r.tls13.is_supported) {
        check_early(c13, &o.target, o.replay_to, o.n_replay_to, &r.early);
    }
    if (!r.tls12.is_supported && !r.tls13.is_supported) {
        fprintf(stderr, "error check: %s: %s\n", r.target,
                r.tls13.error[0] ? r.tls13.error : r.tls12.error);
        rc = 2;
        goto out;
    }
    conclude(&o, &r);
    if (o.is_json) {
        check_print_json(stdout, &r);
    } else {
        check_print_table(stdout, &r, isatty(STDOUT_FILENO) == 1);
        trace_print_text(stdout);
    }
    rc = r.exit_code;
out:
    SSL_CTX_free(c12);
    SSL_CTX_free(t12);
    SSL_CTX_free(c13);
    keylog_close();
    trace_free();
    return rc;
}
