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

#include <errno.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <ini.h>
#include <openssl/crypto.h>

#include <tlsresume/fleet.h>

enum opt_type { T_BOOL, T_INT, T_SIZE, T_DURATION, T_STRING, T_ENUM, T_ADDR, T_LIST };

struct opt {
    const char *name;
    enum opt_type type;
    const char *def; /* NULL: no default */
    uint64_t min;
    uint64_t max;
    const char *choices; /* T_ENUM: "a|b" */
    size_t offset;
    const char *help;
};

#define F(field) offsetof(struct serve_config, field)
#define DAY (24ull * 3600)
#define NOLIMIT UINT64_MAX

static const struct opt opts[] = {
    {"listen", T_LIST, "127.0.0.1:8443", 0, 0, NULL, F(listen),
     "address:port to accept TLS on (IPv4, [IPv6]); repeatable"},
    {"backend", T_ADDR, NULL, 0, 0, NULL, F(backend),
     "address:port of the plain TCP backend (required)"},
    {"cert", T_LIST, NULL, 0, 0, NULL, F(cert),
     "certificate chain (PEM); repeatable, paired with --key; the first is the default, the "
     "others are chosen by SNI"},
    {"key", T_LIST, NULL, 0, 0, NULL, F(key), "private key (PEM) of the --cert at the same place"},
    {"self_signed", T_BOOL, "no", 0, 0, NULL, F(self_signed),
     "make an ephemeral self-signed certificate for localhost (demos and tests)"},
    {"workers", T_INT, "0", 0, 256, NULL, F(workers), "worker processes; 0 means one per core"},
    {"alpn", T_STRING, "", 0, 0, NULL, F(alpn),
     "ALPN protocols to offer, comma-separated (e.g. h2,http/1.1); empty: none"},
    {"ciphers", T_STRING, "ECDHE+AESGCM:ECDHE+CHACHA20", 0, 0, NULL, F(ciphers),
     "TLS 1.2 cipher list (OpenSSL syntax)"},
    {"ciphersuites", T_STRING,
     "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256", 0, 0, NULL,
     F(ciphersuites), "TLS 1.3 cipher suites (OpenSSL syntax)"},
    {"groups", T_STRING, "X25519:P-256:P-384", 0, 0, NULL, F(groups),
     "key exchange groups, in order of preference"},
    {"min_tls", T_ENUM, "1.2", 0, 0, "1.2|1.3", F(min_tls), "oldest TLS version accepted"},
    {"proxy_protocol", T_BOOL, "no", 0, 0, NULL, F(proxy_protocol),
     "send a PROXY protocol v2 header to the backend with the client's address"},
    {"tls13_tickets", T_ENUM, "stateless", 0, 0, "stateless|stateful", F(tls13_tickets),
     "TLS 1.3 tickets: stateless (sealed session) or stateful (single-use cache key; turns "
     "TLS 1.2 tickets off)"},
    {"session_context", T_STRING, "", 0, 0, NULL, F(session_context),
     "TLS session ID context: text or hex:BYTES, up to 32 bytes; servers resume each other's "
     "sessions only with the same one. Empty: derived from the certificate. 'haproxy' "
     "matches HAProxy; nginx's is in docs/KEYS.md"},
    {"session_timeout", T_DURATION, "1h", 1, 7 * DAY, NULL, F(session_timeout_s),
     "lifetime of a cached session (session IDs, stateful tickets)"},
    {"cache_size", T_SIZE, "64m", 64 * 1024, 64ull << 30, NULL, F(cache_size_bytes),
     "shared session cache size (128 bytes per session)"},
    {"ticket_rotate", T_DURATION, "1h", 10, 7 * DAY, NULL, F(ticket_rotate_s),
     "a new ticket key starts encrypting this often"},
    {"ticket_lifetime", T_DURATION, "12h", 1, 7 * DAY, NULL, F(ticket_lifetime_s),
     "how long a ticket resumes; old keys decrypt this long, then are wiped"},
    {"max_resumption_chain", T_DURATION, "1d", 10, 30 * DAY, NULL, F(max_resumption_chain_s),
     "a session resumes only this long after the full handshake it descends from, however "
     "often its tickets were renewed (TLS 1.3 resumptions issue new tickets)"},
    {"num_tickets", T_INT, "2", 0, 16, NULL, F(num_tickets),
     "TLS 1.3 tickets sent after a full handshake"},
    {"resume_tickets", T_INT, "1", 0, 1, NULL, F(resume_tickets),
     "TLS 1.3 tickets sent after each resumption (browsers, Java and curl use a ticket once; "
     "with 0 they run dry); OpenSSL sends at most 1"},
    {"no_tickets", T_BOOL, "no", 0, 0, NULL, F(no_tickets),
     "no stateless tickets (TLS 1.2 and 1.3); session IDs and stateful tickets still work"},
    {"handshake_timeout", T_DURATION, "10s", 1, 3600, NULL, F(handshake_timeout_s),
     "a client must finish its handshake within this"},
    {"idle_timeout", T_DURATION, "5m", 1, 7 * DAY, NULL, F(idle_timeout_s),
     "a connection with no byte either way for this long is closed"},
    {"backend_connect_timeout", T_DURATION, "5s", 1, 3600, NULL, F(backend_connect_timeout_s),
     "connecting to the backend must succeed within this"},
    {"max_connections", T_INT, "10000", 1, 1000000, NULL, F(max_connections),
     "open client connections over all workers; beyond it new ones are refused"},
    {"drain_timeout", T_DURATION, "30s", 1, DAY, NULL, F(drain_timeout_s),
     "on stop or reload, connections still open after this are closed"},
    {"admin", T_STRING, "127.0.0.1:9443", 0, 0, NULL, F(admin),
     "address:port of the admin endpoint (GET /metrics, GET /status); 'off' disables it"},
    {"access_log", T_BOOL, "no", 0, 0, NULL, F(access_log),
     "log one line per connection (client, SNI, protocol, cipher, resumption, what the client "
     "offered and why it missed, bytes, time)"},
    {"log_level", T_ENUM, "info", 0, 0, "error|warn|info|debug", F(log_level),
     "least severe level logged"},
    {"early_data", T_BOOL, "no", 0, 0, NULL, F(early_data),
     "accept TLS 1.3 early data (0-RTT), each flight at most once (see docs/EARLY_DATA.md)"},
    {"max_early_data", T_SIZE, "16k", 1, 16384, NULL, F(max_early_data),
     "most early data bytes accepted per connection"},
    {"early_data_window", T_DURATION, "10s", 10, 3600, NULL, F(early_data_window_s),
     "how long 0-RTT ClientHellos are remembered (at least OpenSSL's 10 s ticket age "
     "allowance); no early data this long after start"},
    {"early_data_anti_replay", T_BOOL, "yes", 0, 0, NULL, F(early_data_anti_replay),
     "refuse replayed 0-RTT flights; 'no' only to demonstrate a replay, never in production"},
    {"redis", T_LIST, NULL, 0, 0, NULL, F(redis),
     "fleet mode: Redis endpoint redis://HOST[:PORT][/DB], rediss:// (TLS), "
     "sentinel://HOST:PORT[,...]/MASTER, redis-cluster://HOST:PORT[,...] (rediss-cluster:// for "
     "TLS; the only endpoint) or unix:/PATH[?db=N]; repeatable (sessions are sharded over them; "
     "list them in the same order on every server)"},
    {"redis_password_file", T_STRING, "", 0, 0, NULL, F(redis_password_file),
     "file holding the Redis password (else $TLSR_REDIS_PASSWORD; never on the command line)"},
    {"redis_user", T_STRING, "", 0, 0, NULL, F(redis_user),
     "Redis ACL user: AUTH with this name and the password (empty: the default user)"},
    {"redis_tls_ca", T_STRING, "", 0, 0, NULL, F(redis_tls_ca),
     "rediss://: PEM CA certificates that Redis's certificate must chain to (empty: the "
     "system's); the certificate is always verified"},
    {"redis_tls_cert", T_STRING, "", 0, 0, NULL, F(redis_tls_cert),
     "rediss://: a client certificate (PEM) for Redis servers that require one"},
    {"redis_tls_key", T_STRING, "", 0, 0, NULL, F(redis_tls_key),
     "rediss://: the client certificate's key (empty: in redis_tls_cert)"},
    {"redis_tls_name", T_STRING, "", 0, 0, NULL, F(redis_tls_name),
     "rediss://: the name Redis's certificate must carry (empty: the endpoint's host)"},
    {"redis_prefix", T_STRING, "tlsr:", 0, 0, NULL, F(redis_prefix),
     "prefix of every Redis key (one per fleet)"},
    {"redis_timeout_ms", T_INT, "5", 1, 1000, NULL, F(redis_timeout_ms),
     "a session lookup slower than this many milliseconds counts as a miss"},
    {"fleet_key", T_STRING, "", 0, 0, NULL, F(fleet_key),
     "fleet key file (from `tlsresume keys init`), the same on every server; required with "
     "--redis"},
    {"fleet_member", T_STRING, "", 0, 0, NULL, F(fleet_member),
     "this server's name in the fleet; empty: hostname and a random suffix"},
    {"fleet_poll_ms", T_INT, "1000", 100, 60000, NULL, F(fleet_poll_ms),
     "how often (milliseconds) the ticket key ring follows the fleet"},
    {"fleet_ack_wait", T_DURATION, "30s", 1, 3600, NULL, F(fleet_ack_wait_s),
     "a new ticket key is promoted once every live server holds it, or after this (logged)"},
    {"fleet_clock_skew", T_DURATION, "30s", 0, 3600, NULL, F(fleet_clock_skew_s),
     "the most two servers' clocks may differ: no ticket is lost, and 0-RTT strike records "
     "outlive it (a server farther than half of it from Redis's clock refuses 0-RTT)"},
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

static const struct opt *find_opt(const char *name, bool is_flag)
{
    for (size_t i = 0; i < NOPTS; i++) {
        const char *a = opts[i].name;
        const char *b = name;
        while (*a != '\0' && (*a == *b || (is_flag && *a == '_' && *b == '-'))) {
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            return &opts[i];
        }
    }
    return NULL;
}

/* Parses an unsigned decimal number with an optional one-letter suffix from `units` (each with
 * its multiplier); the whole string must be consumed. */
static bool parse_scaled(const char *text, const char *units, const uint64_t *mult, uint64_t *out)
{
    char *end = NULL;
    if (text[0] < '0' || text[0] > '9') {
        return false;
    }
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text) {
        return false;
    }
    uint64_t m = 1;
    if (*end != '\0') {
        const char *u = end[1] == '\0' ? strchr(units, end[0]) : NULL;
        if (u == NULL || end[0] == '\0') {
            return false;
        }
        m = mult[u - units];
    }
    if (m != 0 && v > UINT64_MAX / m) {
        return false;
    }
    *out = (uint64_t)v * m;
    return true;
}

static bool parse_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

static bool in_choices(const char *choices, const char *text)
{
    size_t n = strlen(text);
    for (const char *p = choices; p != NULL && *p != '\0';) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, text, n) == 0) {
            return true;
        }
        p = bar != NULL ? bar + 1 : NULL;
    }
    return false;
}

bool serve_resolve(const char *text, struct sockaddr_storage *out, socklen_t *out_len, char *why,
                   size_t cap)
{
    char host[CFG_STR];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0') {
        snprintf(why, cap, "expected host:port, like 127.0.0.1:8443 or [::1]:8443");
        return false;
    }
    size_t hlen = (size_t)(colon - text);
    if (text[0] == '[' && hlen >= 2 && text[hlen - 1] == ']') {
        text++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        snprintf(why, cap, "host too long");
        return false;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(why, cap, "cannot resolve '%.100s' port '%.16s': %s", host, colon + 1,
                 gai_strerror(rc));
        return false;
    }
    if (out != NULL) {
        memcpy(out, res->ai_addr, res->ai_addrlen);
        *out_len = res->ai_addrlen;
    }
    freeaddrinfo(res);
    return true;
}

static bool check_addr(const char *text, char *why, size_t cap)
{
    return serve_resolve(text, NULL, NULL, why, cap);
}

static const char *expected(const struct opt *o)
{
    switch (o->type) {
    case T_BOOL:
        return "yes or no";
    case T_INT:
        return "a whole number";
    case T_SIZE:
        return "a size like 64m (k, m, g)";
    case T_DURATION:
        return "a duration like 30s, 5m, 1h, 7d";
    case T_ADDR:
        return "host:port";
    case T_ENUM:
        return o->choices;
    default:
        return "a value";
    }
}

static bool check_range(const struct opt *o, uint64_t v, const char *where, char *err, size_t cap)
{
    if (v < o->min || v > o->max) {
        set_err(err, cap, "%s: %s: %llu is outside %llu to %llu", where, o->name,
                (unsigned long long)v, (unsigned long long)o->min, (unsigned long long)o->max);
        return false;
    }
    return true;
}

/* Stores text into the option's field; on error writes "where: name: why". */
static bool set_value(struct serve_config *cfg, const struct opt *o, const char *text,
                      const char *where, char *err, size_t cap)
{
    static const uint64_t size_mult[] = {1024, 1024 * 1024, 1024 * 1024 * 1024};
    static const uint64_t time_mult[] = {1, 60, 3600, 86400};
    void *field = (char *)cfg + o->offset;
    uint64_t v = 0;
    char why[CFG_STR];
    switch (o->type) {
    case T_BOOL:
        if (!parse_bool(text, (bool *)field)) {
            break;
        }
        return true;
    case T_INT:
        if (!parse_scaled(text, "", NULL, &v)) {
            break;
        }
        *(uint64_t *)field = v;
        return check_range(o, v, where, err, cap);
    case T_SIZE:
        if (!parse_scaled(text, "kmg", size_mult, &v)) {
            break;
        }
        *(uint64_t *)field = v;
        return check_range(o, v, where, err, cap);
    case T_DURATION:
        if (!parse_scaled(text, "smhd", time_mult, &v)) {
            break;
        }
        *(uint64_t *)field = v;
        return check_range(o, v, where, err, cap);
    case T_ENUM:
        if (!in_choices(o->choices, text)) {
            set_err(err, cap, "%s: %s: expected one of %s, got '%s'", where, o->name, o->choices,
                    text);
            return false;
        }
        /* fall through */
    case T_STRING:
    case T_ADDR:
        if (strlen(text) >= CFG_STR) {
            set_err(err, cap, "%s: %s: longer than %d bytes", where, o->name, CFG_STR - 1);
            return false;
        }
        if (o->type == T_ADDR && !check_addr(text, why, sizeof(why))) {
            set_err(err, cap, "%s: %s: %s", where, o->name, why);
            return false;
        }
        snprintf((char *)field, CFG_STR, "%s", text);
        return true;
    case T_LIST: {
        struct str_list *l = field;
        if (l->n >= CFG_LIST_MAX || strlen(text) >= CFG_STR) {
            set_err(err, cap, "%s: %s: at most %d values of %d bytes", where, o->name, CFG_LIST_MAX,
                    CFG_STR - 1);
            return false;
        }
        snprintf(l->v[l->n++], CFG_STR, "%s", text);
        return true;
    }
    }
    set_err(err, cap, "%s: %s: expected %s, got '%s'", where, o->name, expected(o), text);
    return false;
}

struct file_ctx {
    struct serve_config *cfg;
    char *err;
    size_t cap;
    bool has_error;
    const char *path;
};

/* inih calls this per `name = value`; the first error is kept and its line reported. */
static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *f = user;
    if (f->has_error) {
        return 1;
    }
    char msg[512];
    const struct opt *o = find_opt(name, false);
    if (section[0] != '\0' && strcmp(section, "serve") != 0) {
        snprintf(msg, sizeof(msg), "unknown section [%s] (only [serve])", section);
    } else if (o == NULL) {
        snprintf(msg, sizeof(msg), "unknown option '%s'", name);
    } else if (set_value(f->cfg, o, value, "", msg, sizeof(msg))) {
        return 1;
    }
    /* Drop the leading ": " that set_value wrote for an empty where. */
    set_err(f->err, f->cap, "%s", msg[0] == ':' ? msg + 2 : msg);
    f->has_error = true;
    return 0;
}

/* inih reads at most INI_MAX_LINE (200) bytes a line and reports a longer one at the wrong
 * place; refuse such lines first, naming them. */
static void defaults(struct serve_config *cfg);
static bool validate(struct serve_config *cfg, char *err, size_t cap);

/* Lines longer than inih's buffer would be split silently: refuse them instead. */
static bool check_text_lines(const char *what, const char *text, size_t len, char *err, size_t cap)
{
    unsigned line = 1;
    size_t width = 0;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == '\n') {
            line++;
            width = 0;
        } else if (++width >= 199) {
            set_err(err, cap, "%s:%u: line longer than 198 characters", what, line);
            return false;
        }
    }
    return true;
}

/* Parses INI text (what names it in messages) into cfg. */
static bool parse_text(struct serve_config *cfg, const char *what, const char *text, size_t len,
                       char *err, size_t cap)
{
    if (!check_text_lines(what, text, len, err, cap)) {
        return false;
    }
    if (memchr(text, '\0', len) != NULL) {
        set_err(err, cap, "%s: a NUL byte in the file", what);
        return false;
    }
    char msg[512] = "";
    struct file_ctx f = {cfg, msg, sizeof(msg), false, what};
    int line = ini_parse_string(text, on_ini, &f);
    if (line != 0) {
        set_err(err, cap, "%s:%d: %s", what, line, f.has_error ? msg : "syntax error");
        return false;
    }
    return true;
}

static bool load_file(struct serve_config *cfg, const char *path, char *err, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        set_err(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    /* A configuration is small: read it whole (bounded), then parse the text. */
    enum { MAX_FILE = 1024 * 1024 };
    char *text = malloc(MAX_FILE + 1);
    size_t len = text != NULL ? fread(text, 1, MAX_FILE + 1, fp) : 0;
    bool is_error = ferror(fp) != 0;
    fclose(fp);
    bool is_ok = false;
    if (text == NULL || is_error) {
        set_err(err, cap, "%s: cannot read", path);
    } else if (len > MAX_FILE) {
        set_err(err, cap, "%s: larger than 1 MiB", path);
    } else {
        text[len] = '\0';
        is_ok = parse_text(cfg, path, text, len, err, cap);
    }
    free(text);
    return is_ok;
}

bool serve_config_parse_text(const char *what, const char *text, size_t len,
                             struct serve_config *cfg, char *err, size_t cap)
{
    defaults(cfg);
    return parse_text(cfg, what, text, len, err, cap) && validate(cfg, err, cap);
}

static void defaults(struct serve_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    char err[256];
    for (size_t i = 0; i < NOPTS; i++) {
        if (opts[i].def != NULL &&
            !set_value(cfg, &opts[i], opts[i].def, "default", err, sizeof(err))) {
            fprintf(stderr, "bug: %s\n", err);
            abort();
        }
    }
}

/* Clears a list the first time the command line sets it, so flags replace the file's list. */
static void reset_list_once(struct serve_config *cfg, const struct opt *o, bool *seen)
{
    size_t i = (size_t)(o - opts);
    if (o->type == T_LIST && !seen[i]) {
        ((struct str_list *)((char *)cfg + o->offset))->n = 0;
    }
    seen[i] = true;
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

static bool validate(struct serve_config *cfg, char *err, size_t cap)
{
    if (cfg->backend[0] == '\0') {
        set_err(err, cap, "backend: required (--backend host:port)");
        return false;
    }
    uint8_t sid_ctx[32];
    size_t sid_ctx_len = 0;
    if (!serve_session_context(cfg, sid_ctx, &sid_ctx_len, err, cap)) {
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
    if (cfg->cert.n > 0 && cfg->self_signed) {
        set_err(err, cap, "self_signed: conflicts with --cert; choose one");
        return false;
    }
    char why[CFG_STR];
    for (size_t i = 0; i < cfg->listen.n; i++) {
        if (!check_addr(cfg->listen.v[i], why, sizeof(why))) {
            set_err(err, cap, "listen: %s: %s", cfg->listen.v[i], why);
            return false;
        }
    }
    if (strcmp(cfg->admin, "off") != 0 && !check_addr(cfg->admin, why, sizeof(why))) {
        set_err(err, cap, "admin: %s: %s", cfg->admin, why);
        return false;
    }
    if (!validate_fleet(cfg, err, cap)) {
        return false;
    }
    if (cfg->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg->workers = n > 0 ? (uint64_t)n : 1;
    }
    return true;
}

/* cmd: the command whose help an unknown option points at ("serve", "keys"). */
static bool load_all(const char *cmd, int argc, char **argv, struct serve_config *cfg,
                     enum cfg_action *action, char *err, size_t cap)
{
    defaults(cfg);
    *action = CFG_SERVE;
    /* First pass: actions and --config, so the file loads before the flags that override it. */
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            *action = CFG_HELP;
            return true;
        }
        if (strcmp(argv[i], "--config-table") == 0) {
            *action = CFG_TABLE;
            return true;
        }
        if (strcmp(argv[i], "--check-config") == 0) {
            *action = CFG_CHECK;
        }
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= argc) {
                set_err(err, cap, "--config: needs a file name");
                return false;
            }
            snprintf(cfg->config_file, sizeof(cfg->config_file), "%s", argv[++i]);
        }
    }
    if (cfg->config_file[0] != '\0') {
        struct str_list listen_default = cfg->listen;
        cfg->listen.n = 0;
        if (!load_file(cfg, cfg->config_file, err, cap)) {
            return false;
        }
        if (cfg->listen.n == 0) {
            cfg->listen = listen_default;
        }
    }
    bool seen[NOPTS] = {false};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--check-config") == 0) {
            continue;
        }
        if (strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        /* --name value, or --name=value; a boolean flag alone means yes, and takes a following
         * yes/no word (true/false, on/off, 1/0) as its value. */
        char name[64];
        const char *eq = strchr(a, '=');
        size_t name_len = eq != NULL ? (size_t)(eq - a) : strlen(a);
        const struct opt *o = NULL;
        if (strncmp(a, "--", 2) == 0 && name_len - 2 < sizeof(name)) {
            memcpy(name, a + 2, name_len - 2);
            name[name_len - 2] = '\0';
            o = find_opt(name, true);
        }
        if (o == NULL) {
            set_err(err, cap, "%s: unknown option (see tlsresume %s --help)", a, cmd);
            return false;
        }
        reset_list_once(cfg, o, seen);
        const char *value = eq != NULL ? eq + 1 : "yes";
        bool word = false;
        if (o->type == T_BOOL && eq == NULL && i + 1 < argc && parse_bool(argv[i + 1], &word)) {
            value = argv[++i];
        }
        if (o->type != T_BOOL && eq == NULL) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                set_err(err, cap, "%s: needs a value (%s)", a, expected(o));
                return false;
            }
            value = argv[++i];
        }
        if (!set_value(cfg, o, value, a, err, cap)) {
            return false;
        }
    }
    return true;
}

bool serve_config_load(int argc, char **argv, struct serve_config *cfg, enum cfg_action *action,
                       char *err, size_t cap)
{
    if (!load_all("serve", argc, argv, cfg, action, err, cap)) {
        return false;
    }
    return *action == CFG_HELP || *action == CFG_TABLE || validate(cfg, err, cap);
}

bool serve_config_load_fleet(int argc, char **argv, struct serve_config *cfg, char *err, size_t cap)
{
    enum cfg_action action;
    if (!load_all("keys", argc, argv, cfg, &action, err, cap) || !validate_fleet(cfg, err, cap)) {
        return false;
    }
    if (cfg->redis.n == 0) {
        set_err(err, cap, "redis: required (--redis redis://HOST:PORT, as the servers have it)");
        return false;
    }
    return true;
}

static const char *type_name(const struct opt *o)
{
    static const char *const names[] = {"bool",   "integer", "size",    "duration",
                                        "string", "choice",  "address", "list"};
    return names[o->type];
}

static void flag_name(const struct opt *o, char *out, size_t cap)
{
    snprintf(out, cap, "--%s", o->name);
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '_' ? '-' : *p;
    }
}

static void range_text(const struct opt *o, char *out, size_t cap)
{
    out[0] = '\0';
    if (o->type == T_INT || o->type == T_SIZE || o->type == T_DURATION) {
        snprintf(out, cap, "%llu to %llu%s", (unsigned long long)o->min, (unsigned long long)o->max,
                 o->type == T_SIZE ? " bytes" : (o->type == T_DURATION ? " s" : ""));
    } else if (o->type == T_ENUM) {
        snprintf(out, cap, "%s", o->choices);
    }
}

void serve_config_help(FILE *out)
{
    fprintf(out, "usage: tlsresume serve [--config FILE] [--check-config] [options]\n\n"
                 "Terminates TLS and proxies to a TCP backend, resuming sessions across its "
                 "workers.\nEvery option can also be set in the config file as name = value.\n\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char flag[64];
        flag_name(&opts[i], flag, sizeof(flag));
        const char *arg = opts[i].type == T_BOOL ? " [yes|no]" : " VALUE";
        char range[160];
        range_text(&opts[i], range, sizeof(range));
        fprintf(out, "  %s%s\n      %s\n      (%s%s%s; default: %s)\n", flag, arg, opts[i].help,
                type_name(&opts[i]), range[0] != '\0' ? ", " : "", range,
                opts[i].def != NULL && opts[i].def[0] != '\0' ? opts[i].def : "none");
    }
    fprintf(out, "  --config FILE\n      read options from FILE first; flags override it\n"
                 "  --check-config\n      validate everything (config, certificates), then exit\n"
                 "\nSignals: SIGTERM/SIGINT drain and exit, SIGHUP reloads the config and "
                 "certificates,\nSIGUSR1 rotates the ticket keys now.\n");
}

void serve_config_table(FILE *out)
{
    fprintf(out, "| option (file) | flag | type | default | range | help |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < NOPTS; i++) {
        char flag[64];
        char range[96];
        flag_name(&opts[i], flag, sizeof(flag));
        range_text(&opts[i], range, sizeof(range));
        fprintf(out, "| `%s` | `%s` | %s | %s | %s | %s |\n", opts[i].name, flag,
                type_name(&opts[i]),
                opts[i].def != NULL && opts[i].def[0] != '\0' ? opts[i].def : "none", range,
                opts[i].help);
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

bool serve_session_context(const struct serve_config *cfg, uint8_t out[32], size_t *len, char *err,
                           size_t cap)
{
    const char *v = cfg->session_context;
    if (strncmp(v, "hex:", 4) != 0) {
        *len = strlen(v);
        if (*len > 32) {
            set_err(err, cap, "session_context: %zu bytes (at most 32)", *len);
            return false;
        }
        memcpy(out, v, *len);
        return true;
    }
    const char *hex = v + 4;
    size_t n = strlen(hex);
    if (n == 0 || n % 2 != 0 || n > 64 || strspn(hex, "0123456789abcdefABCDEF") != n) {
        set_err(err, cap, "session_context: hex:%s: expected 2 to 64 hex digits, in pairs", hex);
        return false;
    }
    for (size_t i = 0; i < n / 2; i++) {
        char byte[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        out[i] = (uint8_t)strtoul(byte, NULL, 16);
    }
    *len = n / 2;
    return true;
}

bool serve_parse_duration(const char *text, uint64_t min_s, uint64_t max_s, uint64_t *out)
{
    static const uint64_t mult[] = {1, 60, 3600, 86400};
    uint64_t v = 0;
    if (!parse_scaled(text, "smhd", mult, &v) || v < min_s || v > max_s) {
        return false;
    }
    *out = v;
    return true;
}
