/*
 * The option table of `tlsresume serve` and everything derived from it: defaults, the INI file
 * parser (inih), the command-line flags, validation, --help and the table in docs/CONFIG.md.
 *
 * Each option is one row: its name (flag --name-with-dashes, file key name_with_underscores),
 * type, default (as text, parsed like user input, so defaults obey the same rules), range,
 * unit, where it is stored, and its help text. Errors name where (file:line or the flag) and
 * what was expected; a bad value stops start-up before anything is bound.
 */
#include "serve_config.h"
#include "serve_context.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include <tlsresume/fleet.h>

#include "../cli/cli.h"
#include "../cli/conf.h"
#include "../cli/log.h"
#include "../cli/doc.h"

#define DAY (24ull * 3600)
#define OPT(name, type, def, min, max, choices, field, help)                                       \
    {                                                                                              \
        name, type, def, min, max, choices, CLI_AT(serve_config, field), help, NULL, 0, 0          \
    }
/* A fleet setting: `tlsresume keys` takes it as a flag too. */
#define FLEET(name, type, def, min, max, choices, field, help)                                     \
    {                                                                                              \
        name, type, def, min, max, choices, CLI_AT(serve_config, field), help, NULL, 0,            \
            CLI_TAG_FLEET                                                                          \
    }

static const struct cli_opt opts[] = {
    OPT("listen", CLI_LIST, "127.0.0.1:8443", 0, 0, "HOST:PORT", listen,
        "address:port to accept TLS on (IPv4, [IPv6]); repeatable"),
    {"backend", CLI_LIST, NULL, 0, 0, "HOST:PORT", CLI_AT(serve_config, backend),
     "address:port of a backend (required), plain TCP unless --backend-tls; repeatable: each "
     "connection goes to one, "
     "as --backend-balance says, and to the next when its connect fails",
     NULL, 0, CLI_TAG_ADDR},
    OPT("backend_balance", CLI_CHOICE, "round-robin", 0, 0, "round-robin|least-connections",
        backend_balance,
        "how connections are spread over several backends (each worker counts its own)"),
    OPT("backend_down", CLI_DURATION, "5s", 1, 3600, NULL, backend_down_s,
        "a backend whose connect failed or timed out is skipped for this long (then tried "
        "again); when every backend is down, the one that failed longest ago is tried"),
    OPT("backend_tls", CLI_BOOL, "no", 0, 0, NULL, backend_tls,
        "speak TLS to the backends, verifying their certificates, and resume those sessions "
        "(see docs/UPSTREAM.md)"),
    OPT("backend_ca", CLI_STRING, "", 0, 0, "FILE", backend_ca,
        "--backend-tls: PEM CA certificates a backend's certificate must chain to (empty: the "
        "system's)"),
    OPT("backend_servername", CLI_STRING, "", 0, 0, "NAME", backend_servername,
        "--backend-tls: the name sent as SNI and required in every backend's certificate "
        "(empty: each --backend's host; an IP address is checked against the certificate's IP "
        "addresses and sends no SNI)"),
    OPT("backend_insecure", CLI_BOOL, "no", 0, 0, NULL, backend_insecure,
        "--backend-tls: do not verify the backends' certificates (anyone on the path could read "
        "and change the traffic; logged as a warning at every start)"),
    OPT("backend_cert", CLI_STRING, "", 0, 0, "FILE", backend_cert,
        "--backend-tls: a client certificate chain (PEM) for backends that require one"),
    OPT("backend_key", CLI_STRING, "", 0, 0, "FILE", backend_key,
        "--backend-tls: the client certificate's key (empty: in --backend-cert); encrypted keys "
        "take their pass phrase from --key-password-file"),
    OPT("backend_session_reuse", CLI_BOOL, "yes", 0, 0, NULL, backend_session_reuse,
        "--backend-tls: resume sessions with each backend (a TLS 1.2 session, TLS 1.3 tickets "
        "each used once), kept in shared locked memory for all workers"),
    OPT("backend_session_cache", CLI_SIZE, "1m", 64 * 1024, 1ull << 30, NULL,
        backend_session_cache_bytes,
        "--backend-tls: size of the shared cache of backend sessions (about 2 KiB per session; "
        "each backend holds one TLS 1.2 session or up to 8 TLS 1.3 tickets)"),
    OPT("cert", CLI_LIST, NULL, 0, 0, "FILE", cert,
        "certificate chain (PEM); repeatable, paired with --key; the first is the default, the "
        "others are chosen by SNI; an RSA and an ECDSA one for the same names are served side by "
        "side, each client getting the one it can verify"),
    OPT("key", CLI_LIST, NULL, 0, 0, "FILE", key,
        "private key (PEM) of the --cert at the same place"),
    OPT("ocsp", CLI_LIST, NULL, 0, 0, "FILE", ocsp,
        "a DER OCSP response (as `openssl ocsp -respout` writes it) stapled to full handshakes "
        "that present the certificate it covers; repeatable. Checked at start and reload: good, "
        "current and signed by the certificate's issuer; one past half its life is warned of, "
        "and none is stapled once its nextUpdate has passed (fetch a new one and reload)"),
    OPT("client_verify", CLI_CHOICE, "off", 0, 0, "off|optional|require", client_verify,
        "ask clients for a certificate and verify it against --client-ca: optional (a client "
        "without one is served, one with a bad one refused) or require; sessions resume only "
        "under the trust that verified them (a reload with other CAs or CRLs resumes none)"),
    OPT("client_ca", CLI_STRING, "", 0, 0, "FILE", client_ca,
        "PEM CA certificates that client certificates must chain to (their names are sent to "
        "the client); required with --client-verify"),
    OPT("client_crl", CLI_STRING, "", 0, 0, "FILE", client_crl,
        "PEM CRLs of the --client-ca CAs: a revoked client certificate is refused"),
    OPT("client_verify_depth", CLI_INT, "2", 1, 16, NULL, client_verify_depth,
        "most intermediate CA certificates between a client certificate and --client-ca"),
    OPT("key_password_file", CLI_STRING, "", 0, 0, "FILE", key_password_file,
        "pass phrases of encrypted --key files, one a line, each tried in turn; without it an "
        "encrypted key is refused (never asked for on a terminal)"),
    OPT("self_signed", CLI_BOOL, "no", 0, 0, NULL, self_signed,
        "make an ephemeral self-signed certificate for localhost (demos and tests)"),
    OPT("workers", CLI_INT, "0", 0, 256, NULL, workers, "worker processes; 0 means one per core"),
    OPT("alpn", CLI_STRING, "", 0, 0, "LIST", alpn,
        "ALPN protocols to offer, comma-separated (e.g. h2,http/1.1); empty: none"),
    OPT("ciphers", CLI_STRING, "ECDHE+AESGCM:ECDHE+CHACHA20", 0, 0, "LIST", ciphers,
        "TLS 1.2 cipher list (OpenSSL syntax)"),
    OPT("ciphersuites", CLI_STRING,
        "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", 0, 0, "LIST",
        ciphersuites, "TLS 1.3 cipher suites (OpenSSL syntax)"),
    OPT("groups", CLI_STRING, "X25519:P-256:P-384", 0, 0, "LIST", groups,
        "key exchange groups, in order of preference"),
    OPT("min_tls", CLI_CHOICE, "1.2", 0, 0, "1.2|1.3", min_tls, "oldest TLS version accepted"),
    OPT("accept_proxy", CLI_BOOL, "no", 0, 0, NULL, accept_proxy,
        "expect a PROXY protocol header (v1 or v2) from a balancer before the TLS bytes; the "
        "client it names goes to the backend's PROXY header and the logs. Only behind a "
        "balancer: a client could claim any address"),
    OPT("proxy_protocol", CLI_BOOL, "no", 0, 0, NULL, proxy_protocol,
        "send a PROXY protocol v2 header to the backend with the client's address (and, with "
        "--client-verify, its certificate's identity: docs/DEPLOY.md)"),
    OPT("tls13_tickets", CLI_CHOICE, "stateless", 0, 0, "stateless|stateful", tls13_tickets,
        "TLS 1.3 tickets: stateless (sealed session) or stateful (single-use cache key; turns "
        "TLS 1.2 tickets off)"),
    OPT("session_context", CLI_STRING, "", 0, 0, "TEXT", session_context,
        "TLS session ID context sessions are issued in (servers resume each other's sessions "
        "only in the same one): another server's (nginx-stream, nginx-http, apache:NAME:PORT, "
        "haproxy, nghttpx), text:STRING or hex:BYTES, up to 32 bytes. Empty: derived from the "
        "certificate; docs/KEYS.md"),
    OPT("accept_session_context", CLI_LIST, NULL, 0, 0, "SPEC", accept_session_context,
        "another server's session ID context whose tickets resume here when they open under a "
        "key of the ring (nginx-stream, nginx-http, apache:NAME:PORT, haproxy, nghttpx, none "
        "(h2o), text:STRING (Node), hex:BYTES); repeatable, up to 8; docs/KEYS.md"),
    OPT("session_timeout", CLI_DURATION, "1h", 1, 7 * DAY, NULL, session_timeout_s,
        "lifetime of a cached session (session IDs, stateful tickets)"),
    OPT("cache_size", CLI_SIZE, "64m", 64 * 1024, 64ull << 30, NULL, cache_size_bytes,
        "shared session cache size (128 bytes per session)"),
    FLEET("ticket_rotate", CLI_DURATION, "1h", 10, 7 * DAY, NULL, ticket_rotate_s,
          "a new ticket key starts encrypting this often"),
    FLEET("ticket_lifetime", CLI_DURATION, "12h", 1, 7 * DAY, NULL, ticket_lifetime_s,
          "how long a ticket resumes; old keys decrypt this long, then are wiped"),
    OPT("max_resumption_chain", CLI_DURATION, "1d", 10, 30 * DAY, NULL, max_resumption_chain_s,
        "a session resumes only this long after the full handshake it descends from, however "
        "often its tickets were renewed (TLS 1.3 resumptions issue new tickets)"),
    OPT("num_tickets", CLI_INT, "2", 0, 16, NULL, num_tickets,
        "TLS 1.3 tickets sent after a full handshake"),
    OPT("resume_tickets", CLI_INT, "1", 0, 1, NULL, resume_tickets,
        "TLS 1.3 tickets sent after each resumption (browsers, Java and curl use a ticket once; "
        "with 0 they run dry); OpenSSL sends at most 1"),
    OPT("no_tickets", CLI_BOOL, "no", 0, 0, NULL, no_tickets,
        "no stateless tickets (TLS 1.2 and 1.3); session IDs and stateful tickets still work"),
    OPT("key_memory", CLI_CHOICE, "auto", 0, 0, "auto|secret|locked", key_memory,
        "memory for ticket keys and the fleet key: secret (memfd_secret: unreadable through "
        "/proc/PID/mem, ptrace and core dumps; start fails without it), locked (mlock, left out "
        "of core dumps), or auto (secret where the kernel offers it, else locked, logged)"),
    OPT("handshake_timeout", CLI_DURATION, "10s", 1, 3600, NULL, handshake_timeout_s,
        "a client must finish its handshake within this"),
    OPT("idle_timeout", CLI_DURATION, "5m", 1, 7 * DAY, NULL, idle_timeout_s,
        "a connection with no byte either way for this long is closed"),
    OPT("backend_connect_timeout", CLI_DURATION, "5s", 1, 3600, NULL, backend_connect_timeout_s,
        "connecting to the backend must succeed within this"),
    OPT("max_connections", CLI_INT, "10000", 1, 1000000, NULL, max_connections,
        "open client connections over all workers; beyond it new ones are refused"),
    OPT("drain_timeout", CLI_DURATION, "30s", 1, DAY, NULL, drain_timeout_s,
        "on stop or reload, connections still open after this are closed"),
    OPT("admin", CLI_STRING, "127.0.0.1:9443", 0, 0, "HOST:PORT", admin,
        "address:port of the admin endpoint (GET /metrics, GET /status); 'off' disables it"),
    OPT("access_log", CLI_BOOL, "no", 0, 0, NULL, access_log,
        "log one line per connection (client, SNI, protocol, cipher, resumption, what the client "
        "offered and why it missed, bytes, time)"),
    OPT("log_level", CLI_CHOICE, "info", 0, 0, "error|warn|info|debug", log_level,
        "least severe level logged"),
    OPT("early_data", CLI_BOOL, "no", 0, 0, NULL, early_data,
        "accept TLS 1.3 early data (0-RTT), each flight at most once (see docs/EARLY_DATA.md)"),
    OPT("max_early_data", CLI_SIZE, "16k", 1, 16384, NULL, max_early_data,
        "most early data bytes accepted per connection"),
    OPT("early_data_window", CLI_DURATION, "10s", 10, 3600, NULL, early_data_window_s,
        "how long 0-RTT ClientHellos are remembered (at least OpenSSL's 10 s ticket age "
        "allowance); no early data this long after start"),
    OPT("early_data_anti_replay", CLI_BOOL, "yes", 0, 0, NULL, early_data_anti_replay,
        "refuse replayed 0-RTT flights; 'no' only to demonstrate a replay, never in production"),
    FLEET(
        "redis", CLI_LIST, NULL, 0, 0, "URL", redis,
        "fleet mode: Redis endpoint redis://HOST[:PORT][/DB], rediss:// (TLS), "
        "sentinel://HOST:PORT[,...]/MASTER, redis-cluster://HOST:PORT[,...] (rediss-cluster:// for "
        "TLS; the only endpoint) or unix:/PATH[?db=N]; repeatable (sessions are sharded over them; "
        "list them in the same order on every server)"),
    FLEET("redis_password_file", CLI_STRING, "", 0, 0, "FILE", redis_password_file,
          "file holding the Redis password (else $TLSR_REDIS_PASSWORD; never on the command line)"),
    FLEET("redis_user", CLI_STRING, "", 0, 0, "NAME", redis_user,
          "Redis ACL user: AUTH with this name and the password (empty: the default user)"),
    FLEET("redis_tls_ca", CLI_STRING, "", 0, 0, "FILE", redis_tls_ca,
          "rediss://: PEM CA certificates that Redis's certificate must chain to (empty: the "
          "system's); the certificate is always verified"),
    FLEET("redis_tls_cert", CLI_STRING, "", 0, 0, "FILE", redis_tls_cert,
          "rediss://: a client certificate (PEM) for Redis servers that require one"),
    FLEET("redis_tls_key", CLI_STRING, "", 0, 0, "FILE", redis_tls_key,
          "rediss://: the client certificate's key (empty: in redis_tls_cert)"),
    FLEET("redis_tls_name", CLI_STRING, "", 0, 0, "NAME", redis_tls_name,
          "rediss://: the name Redis's certificate must carry (empty: the endpoint's host)"),
    FLEET("redis_prefix", CLI_STRING, "tlsr:", 0, 0, "PREFIX", redis_prefix,
          "prefix of every Redis key (one per fleet)"),
    FLEET("redis_timeout_ms", CLI_INT, "5", 1, 1000, NULL, redis_timeout_ms,
          "a session lookup slower than this many milliseconds counts as a miss"),
    FLEET("fleet_key", CLI_STRING, "", 0, 0, "FILE", fleet_key,
          "fleet key file (from `tlsresume keys init`), the same on every server; required with "
          "--redis"),
    FLEET("fleet_member", CLI_STRING, "", 0, 0, "NAME", fleet_member,
          "this server's name in the fleet; empty: hostname and a random suffix"),
    FLEET("fleet_poll_ms", CLI_INT, "1000", 100, 60000, NULL, fleet_poll_ms,
          "how often (milliseconds) the ticket key ring follows the fleet"),
    FLEET("fleet_ack_wait", CLI_DURATION, "30s", 1, 3600, NULL, fleet_ack_wait_s,
          "a new ticket key is promoted once every live server holds it, or after this (logged)"),
    FLEET("fleet_clock_skew", CLI_DURATION, "30s", 0, 3600, NULL, fleet_clock_skew_s,
          "the most two servers' clocks may differ: no ticket is lost, and 0-RTT strike records "
          "outlive it (a server farther than half of it from Redis's clock refuses 0-RTT)"),
    {"check_config", CLI_BOOL, "no", 0, 0, NULL, CLI_AT(serve_config, check_config),
     "validate everything (config, certificates), then exit", NULL, 0, CLI_TAG_NO_FILE},
    {"config_table", CLI_BOOL, "no", 0, 0, NULL, CLI_AT(serve_config, config_table),
     "print the options table of docs/CONFIG.md, then exit", NULL, 0, CLI_TAG_NO_FILE},
    {"config_man", CLI_BOOL, "no", 0, 0, NULL, CLI_AT(serve_config, config_man),
     "print the man page of the config file, tlsresume.ini(5), then exit", NULL, 0,
     CLI_TAG_NO_FILE},
};

#define NOPTS (sizeof(opts) / sizeof(opts[0]))

static void set_err(char *err, size_t cap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
}

void serve_config_rows(struct serve_config *cfg, unsigned flag_tags, struct cli_table *out)
{
    memset(out, 0, sizeof(*out));
    out->opts = opts;
    out->n = NOPTS;
    out->dst = cfg;
    out->flag_tags = flag_tags;
    out->heading =
        flag_tags == CLI_TAG_FLEET ? "fleet settings (as tlsresume serve has them)" : "options";
}

static void serve_cmd(struct serve_config *cfg, struct cli_table *table, struct cli_cmd *c)
{
    memset(cfg, 0, sizeof(*cfg));
    serve_config_rows(cfg, 0, table);
    memset(c, 0, sizeof(*c));
    c->name = "serve";
    c->summary = "terminate TLS in front of a TCP backend, resuming sessions";
    c->usage = "serve [--config FILE] [--check-config] [options]";
    c->about = "Accepts TLS 1.2 and 1.3 connections, terminates them and proxies the bytes "
               "both ways to a\nplain TCP backend. Its workers share one session cache and "
               "one ticket key ring that\nrotates itself, so a client resumes on whichever "
               "worker it lands; with --redis, on\nwhichever server of the fleet. Keys live in "
               "locked memory and never touch disk.\nEvery option can also be set in the config "
               "file as name = value (underscores for dashes).";
    c->notes = "Signals: SIGTERM/SIGINT stop accepting, finish open connections (at most "
               "drain_timeout)\nand exit; SIGHUP reloads the config and certificates (a reload "
               "that fails keeps the\nrunning configuration; sessions and keys survive); "
               "SIGUSR1 rotates the ticket keys now\n(in a fleet: asks the fleet to); SIGUSR2 "
               "upgrades: starts the binary at the same path,\nhanding it the sockets, the "
               "session cache and the keys (docs/DEPLOY.md).\n"
               "Exit: 0 after a clean stop or a good --check-config, 1 when start-up fails (a "
               "port in\nuse), 2 for a bad configuration. Every option with its range: "
               "docs/CONFIG.md.";
    c->tables = table;
    c->n_tables = 1;
    c->section = "serve";
}

bool serve_config_parse_text(const char *what, const char *text, size_t len,
                             struct serve_config *cfg, char *err, size_t cap)
{
    struct cli_table table;
    struct cli_cmd c;
    serve_cmd(cfg, &table, &c);
    cli_defaults(&table);
    return cli_conf_text(&table, 1, "serve", what, text, len, err, cap) &&
           serve_config_validate(cfg, err, cap);
}

static bool validate_fleet(const struct serve_config *cfg, char *err, size_t cap)
{
    for (size_t i = 0; i < cfg->redis.n; i++) {
        if (tlsr_fleet_endpoint_check(cfg->redis.v[i]) != TLSR_OK) {
            set_err(err, cap, "redis: %s", tlsr_last_error());
            return false;
        }
    }
    if (cfg->redis.n > 0 && cfg->fleet_key[0] == '\0') {
        set_err(err, cap,
                "fleet_key: required with --redis (make one with `tlsresume keys init "
                "--out FILE` and give every server the same file)");
        return false;
    }
    if (cfg->redis.n == 0 && (cfg->fleet_key[0] != '\0' || cfg->redis_password_file[0] != '\0' ||
                              cfg->redis_user[0] != '\0')) {
        set_err(err, cap, "%s: needs --redis",
                cfg->fleet_key[0] != '\0'             ? "fleet_key"
                : cfg->redis_password_file[0] != '\0' ? "redis_password_file"
                                                      : "redis_user");
        return false;
    }
    bool has_tls_endpoint = false;
    for (size_t i = 0; i < cfg->redis.n; i++) {
        has_tls_endpoint |= strncmp(cfg->redis.v[i], "rediss://", 9) == 0 ||
                            strncmp(cfg->redis.v[i], "rediss-cluster://", 17) == 0;
    }
    const struct {
        const char *name;
        const char *value;
        bool is_file;
    } tls[] = {{"redis_tls_ca", cfg->redis_tls_ca, true},
               {"redis_tls_cert", cfg->redis_tls_cert, true},
               {"redis_tls_key", cfg->redis_tls_key, true},
               {"redis_tls_name", cfg->redis_tls_name, false}};
    for (size_t i = 0; i < sizeof(tls) / sizeof(tls[0]); i++) {
        if (tls[i].value[0] == '\0') {
            continue;
        }
        if (!has_tls_endpoint) {
            set_err(err, cap, "%s: needs a rediss:// endpoint (TLS to Redis)", tls[i].name);
            return false;
        }
        if (tls[i].is_file && access(tls[i].value, R_OK) != 0) {
            set_err(err, cap, "%s: %s: %s", tls[i].name, tls[i].value, strerror(errno));
            return false;
        }
    }
    if (cfg->redis_tls_key[0] != '\0' && cfg->redis_tls_cert[0] == '\0') {
        set_err(err, cap, "redis_tls_key: needs redis_tls_cert");
        return false;
    }
    if (cfg->redis_user[0] != '\0' && strpbrk(cfg->redis_user, " \t") != NULL) {
        set_err(err, cap, "redis_user: '%s': a name without spaces", cfg->redis_user);
        return false;
    }
    if (cfg->redis.n > 0 && cfg->self_signed && cfg->session_context[0] == '\0') {
        set_err(err, cap,
                "self_signed: with --redis every server would make its own certificate, so its "
                "own session ID context, and no server could resume another's sessions; give "
                "every server the same --cert and --key (or the same --session-context)");
        return false;
    }
    if (strlen(cfg->redis_prefix) == 0 || strlen(cfg->redis_prefix) > 39) {
        set_err(err, cap, "redis_prefix: 1 to 39 bytes");
        return false;
    }
    return true;
}

/* The TLS settings of the backend leg: each needs --backend-tls, files must be readable, and
 * what does not combine with it yet is refused. */
static bool validate_upstream(const struct serve_config *cfg, char *err, size_t cap)
{
    const struct {
        const char *name;
        bool is_set;
    } needs_tls[] = {{"backend_ca", cfg->backend_ca[0] != '\0'},
                     {"backend_servername", cfg->backend_servername[0] != '\0'},
                     {"backend_insecure", cfg->backend_insecure},
                     {"backend_cert", cfg->backend_cert[0] != '\0'},
                     {"backend_key", cfg->backend_key[0] != '\0'}};
    for (size_t i = 0; i < sizeof(needs_tls) / sizeof(needs_tls[0]); i++) {
        if (needs_tls[i].is_set && !cfg->backend_tls) {
            set_err(err, cap, "%s: needs --backend-tls", needs_tls[i].name);
            return false;
        }
    }
    if (!cfg->backend_tls) {
        return true;
    }
    const char *files[][2] = {{"backend_ca", cfg->backend_ca},
                              {"backend_cert", cfg->backend_cert},
                              {"backend_key", cfg->backend_key}};
    for (size_t i = 0; i < 3; i++) {
        if (files[i][1][0] != '\0' && access(files[i][1], R_OK) != 0) {
            set_err(err, cap, "%s: %s: %s", files[i][0], files[i][1], strerror(errno));
            return false;
        }
    }
    if (cfg->backend_insecure && cfg->backend_ca[0] != '\0') {
        set_err(err, cap, "backend_insecure: conflicts with --backend-ca (nothing is verified)");
        return false;
    }
    if (cfg->backend_key[0] != '\0' && cfg->backend_cert[0] == '\0') {
        set_err(err, cap, "backend_key: needs --backend-cert");
        return false;
    }
    if (cfg->early_data) {
        set_err(err, cap,
                "early_data: not yet with --backend-tls (early data is not forwarded "
                "over TLS)");
        return false;
    }
    if (cfg->proxy_protocol) {
        set_err(err, cap, "proxy_protocol: not yet with --backend-tls");
        return false;
    }
    return true;
}

/* Client certificates: the CA file with any mode but off, the CRL only with it. */
static bool validate_client_auth(const struct serve_config *cfg, char *err, size_t cap)
{
    bool is_on = strcmp(cfg->client_verify, "off") != 0;
    if (is_on && cfg->client_ca[0] == '\0') {
        set_err(err, cap, "client_ca: required with --client-verify %s", cfg->client_verify);
        return false;
    }
    if (!is_on && (cfg->client_ca[0] != '\0' || cfg->client_crl[0] != '\0')) {
        set_err(err, cap, "%s: needs --client-verify optional or require",
                cfg->client_ca[0] != '\0' ? "client_ca" : "client_crl");
        return false;
    }
    const char *files[][2] = {{"client_ca", cfg->client_ca}, {"client_crl", cfg->client_crl}};
    for (size_t i = 0; i < 2; i++) {
        if (files[i][1][0] != '\0' && access(files[i][1], R_OK) != 0) {
            set_err(err, cap, "%s: %s: %s", files[i][0], files[i][1], strerror(errno));
            return false;
        }
    }
    return true;
}

bool serve_config_validate(struct serve_config *cfg, char *err, size_t cap)
{
    if (cfg->backend.n == 0) {
        set_err(err, cap, "backend: required (--backend host:port)");
        return false;
    }
    for (size_t i = 0; i < cfg->backend.n; i++) {
        char why[256];
        if (!cli_resolve(cfg->backend.v[i], NULL, NULL, why, sizeof(why))) {
            set_err(err, cap, "backend: %s: %s", cfg->backend.v[i], why);
            return false;
        }
    }
    struct tlsr_sid_ctx sid_ctx;
    struct tlsr_sid_ctx accepted[TLSR_ACCEPT_CONTEXTS_MAX];
    size_t n_accepted = 0;
    if (!serve_session_context(cfg, NULL, &sid_ctx, err, cap) ||
        !serve_accepted_contexts(cfg, NULL, accepted, &n_accepted, err, cap)) {
        return false;
    }
    if (n_accepted > 0 && cfg->no_tickets) {
        set_err(err, cap, "accept_session_context: applies to tickets, which no_tickets turns off");
        return false;
    }
    if (n_accepted > 0 && strcmp(cfg->client_verify, "off") != 0) {
        set_err(err, cap,
                "accept_session_context: not with client_verify: a session from another server "
                "would skip the client-certificate trust its context binds (docs/SECURITY.md)");
        return false;
    }
    if (cfg->cert.n != cfg->key.n) {
        set_err(err, cap, "cert/key: %zu certificates but %zu keys; give them in pairs",
                cfg->cert.n, cfg->key.n);
        return false;
    }
    if (cfg->cert.n == 0 && !cfg->self_signed) {
        set_err(err, cap, "cert: no certificate (--cert FILE --key FILE, or --self-signed)");
        return false;
    }
    if (cfg->key_password_file[0] != '\0' && access(cfg->key_password_file, R_OK) != 0) {
        set_err(err, cap, "key_password_file: %s: %s", cfg->key_password_file, strerror(errno));
        return false;
    }
    if (cfg->cert.n > 0 && cfg->self_signed) {
        set_err(err, cap, "self_signed: conflicts with --cert; choose one");
        return false;
    }
    char why[CLI_STR];
    for (size_t i = 0; i < cfg->listen.n; i++) {
        if (!cli_resolve(cfg->listen.v[i], NULL, NULL, why, sizeof(why))) {
            set_err(err, cap, "listen: %s: %s", cfg->listen.v[i], why);
            return false;
        }
    }
    if (strcmp(cfg->admin, "off") != 0 && !cli_resolve(cfg->admin, NULL, NULL, why, sizeof(why))) {
        set_err(err, cap, "admin: %s: %s", cfg->admin, why);
        return false;
    }
    if (!validate_fleet(cfg, err, cap) || !validate_upstream(cfg, err, cap) ||
        !validate_client_auth(cfg, err, cap)) {
        return false;
    }
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (uint64_t)n : 1;
    }
    return true;
}

bool serve_config_load(int argc, char **argv, struct serve_config *cfg, enum cfg_action *action,
                       char *err, size_t cap)
{
    struct cli_table table;
    struct cli_cmd c;
    serve_cmd(cfg, &table, &c);
    enum cli_result r = cli_parse(&c, argc, argv, err, cap);
    if (r == CLI_ERROR) {
        return false;
    }
    snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", c.config_file);
    *action = r == CLI_HELP       ? CFG_HELP
              : r == CLI_MAN      ? CFG_MAN
              : cfg->config_table ? CFG_TABLE
              : cfg->config_man   ? CFG_FILE_MAN
              : cfg->check_config ? CFG_CHECK
                                  : CFG_SERVE;
    return *action == CFG_HELP || *action == CFG_MAN || *action == CFG_TABLE ||
           *action == CFG_FILE_MAN || serve_config_validate(cfg, err, cap);
}

bool serve_config_check_fleet(const struct serve_config *cfg, char *err, size_t cap)
{
    if (!validate_fleet(cfg, err, cap)) {
        return false;
    }
    if (cfg->redis.n == 0) {
        set_err(err, cap, "redis: required (--redis redis://HOST:PORT, as the servers have it)");
        return false;
    }
    return true;
}

void serve_config_help(FILE *out, bool is_man)
{
    struct serve_config *cfg = calloc(1, sizeof(*cfg));
    struct cli_table table;
    struct cli_cmd c;
    if (cfg == NULL) {
        return;
    }
    serve_cmd(cfg, &table, &c);
    (is_man ? cli_man : cli_help)(&c, out);
    free(cfg);
}

void serve_config_table(FILE *out, bool is_man)
{
    struct cli_table table;
    serve_config_rows(NULL, 0, &table);
    if (is_man) {
        cli_man_file(&table, "serve", out);
    } else {
        cli_markdown(&table, out);
    }
}

static bool serve_redis_password(const struct serve_config *cfg, char *out, size_t out_cap,
                                 bool *is_set, char *err, size_t cap)
{
    const char *path = cfg->redis_password_file;
    *is_set = false;
    out[0] = '\0';
    if (path[0] == '\0') {
        const char *env = getenv("TLSR_REDIS_PASSWORD");
        if (env != NULL && env[0] != '\0') {
            snprintf(out, out_cap, "%s", env);
            *is_set = true;
        }
        return true;
    }
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        set_err(err, cap, "redis_password_file: %s: %s", path, strerror(errno));
        return false;
    }
    size_t n = fread(out, 1, out_cap - 1, f);
    bool is_long = n == out_cap - 1;
    fclose(f);
    out[n] = '\0';
    out[strcspn(out, "\r\n")] = '\0';
    if (is_long || out[0] == '\0') {
        set_err(err, cap, "redis_password_file: %s: %s", path, is_long ? "too long" : "empty");
        OPENSSL_cleanse(out, out_cap);
        return false;
    }
    *is_set = true;
    return true;
}

void serve_redis_tls(const struct serve_config *cfg, struct tlsr_fleet_tls *out)
{
    out->ca_file = cfg->redis_tls_ca[0] != '\0' ? cfg->redis_tls_ca : NULL;
    out->cert_file = cfg->redis_tls_cert[0] != '\0' ? cfg->redis_tls_cert : NULL;
    out->key_file = cfg->redis_tls_key[0] != '\0' ? cfg->redis_tls_key : NULL;
    out->server_name = cfg->redis_tls_name[0] != '\0' ? cfg->redis_tls_name : NULL;
}

bool serve_redis_auth(const struct serve_config *cfg, char *out, size_t out_cap,
                      const char **username, const char **password, char *err, size_t cap)
{
    bool is_set = false;
    if (!serve_redis_password(cfg, out, out_cap, &is_set, err, cap)) {
        return false;
    }
    *password = is_set ? out : NULL;
    *username = cfg->redis_user[0] != '\0' ? cfg->redis_user : NULL;
    if (*username != NULL && !is_set) {
        set_err(err, cap,
                "redis_user: %s needs a password (redis_password_file, or $TLSR_REDIS_PASSWORD)",
                cfg->redis_user);
        return false;
    }
    return true;
}

bool serve_session_context(const struct serve_config *cfg, SSL_CTX *ctx, struct tlsr_sid_ctx *out,
                           char *err, size_t cap)
{
    memset(out, 0, sizeof(*out));
    if (cfg->session_context[0] == '\0') {
        return true;
    }
    if (strcmp(cfg->session_context, "none") == 0) {
        set_err(err, cap,
                "session_context: 'none' is for --accept-session-context (serve's own context "
                "is never empty: leave it out to derive one from the certificate)");
        return false;
    }
    return session_context_read("session_context", cfg->session_context, ctx, out, err, cap);
}

bool serve_accepted_contexts(const struct serve_config *cfg, SSL_CTX *ctx,
                             struct tlsr_sid_ctx out[TLSR_ACCEPT_CONTEXTS_MAX], size_t *n,
                             char *err, size_t cap)
{
    *n = 0;
    if (cfg->accept_session_context.n > TLSR_ACCEPT_CONTEXTS_MAX) {
        set_err(err, cap, "accept_session_context: %zu contexts (at most %u)",
                cfg->accept_session_context.n, TLSR_ACCEPT_CONTEXTS_MAX);
        return false;
    }
    for (size_t i = 0; i < cfg->accept_session_context.n; i++) {
        if (!session_context_read("accept_session_context", cfg->accept_session_context.v[i], ctx,
                                  &out[i], err, cap)) {
            return false;
        }
    }
    *n = cfg->accept_session_context.n;
    return true;
}

void serve_config_log(const struct serve_config *c, bool has_ring, const char *event)
{
    char listen[512];
    char backends[1024];
    cli_join(c->listen.v[0], sizeof(c->listen.v[0]), c->listen.n, listen, sizeof(listen));
    cli_join(c->backend.v[0], sizeof(c->backend.v[0]), c->backend.n, backends, sizeof(backends));
    const char *tickets = !has_ring ? "off" : "stateless";
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
