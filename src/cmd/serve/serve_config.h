/*
 * Configuration of `tlsresume serve`: one table of options (serve_config.c) from which the
 * command-line flags, the INI file parser, --help, --check-config and docs/CONFIG.md all derive.
 */
#ifndef TLSR_SERVE_CONFIG_H
#define TLSR_SERVE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#define CFG_STR 256
#define CFG_LIST_MAX 16

struct str_list {
    char v[CFG_LIST_MAX][CFG_STR];
    size_t n;
};

struct serve_config {
    struct str_list listen;
    char backend[CFG_STR];
    struct str_list cert;
    struct str_list key;
    bool self_signed;
    uint64_t workers;
    char alpn[CFG_STR];
    char ciphers[CFG_STR];
    char ciphersuites[CFG_STR];
    char groups[CFG_STR];
    char min_tls[CFG_STR];
    bool proxy_protocol;
    char tls13_tickets[CFG_STR];
    char session_context[CFG_STR];
    uint64_t session_timeout_s;
    uint64_t cache_size_bytes;
    uint64_t ticket_rotate_s;
    uint64_t ticket_lifetime_s;
    uint64_t max_resumption_chain_s;
    uint64_t num_tickets;
    uint64_t resume_tickets;
    bool no_tickets;
    uint64_t handshake_timeout_s;
    uint64_t idle_timeout_s;
    uint64_t backend_connect_timeout_s;
    uint64_t max_connections;
    uint64_t drain_timeout_s;
    char admin[CFG_STR];
    bool access_log;
    char log_level[CFG_STR];
    bool early_data;
    uint64_t max_early_data;
    uint64_t early_data_window_s;
    bool early_data_anti_replay;
    struct str_list redis;
    char redis_password_file[CFG_STR];
    char redis_user[CFG_STR];
    char redis_tls_ca[CFG_STR];
    char redis_tls_cert[CFG_STR];
    char redis_tls_key[CFG_STR];
    char redis_tls_name[CFG_STR];
    char redis_prefix[CFG_STR];
    uint64_t redis_timeout_ms;
    char fleet_key[CFG_STR];
    char fleet_member[CFG_STR];
    uint64_t fleet_poll_ms;
    uint64_t fleet_ack_wait_s;
    uint64_t fleet_clock_skew_s;
    char config_file[CFG_STR]; /* --config, empty when none */
};

/* The outcome of parsing the command line. */
enum cfg_action { CFG_SERVE, CFG_CHECK, CFG_HELP, CFG_TABLE };

/*
 * Loads defaults, then the file named by --config (if any), then the command-line flags (which
 * win; a repeated flag replaces the file's list), then validates everything. On error writes
 * "where: what" into err (file:line, or the flag) and returns false.
 */
bool serve_config_load(int argc, char **argv, struct serve_config *cfg, enum cfg_action *action,
                       char *err, size_t err_cap);

/* Defaults, then the INI text (len bytes at text, NUL-terminated; what names it in messages),
 * then validation: the config file parser alone (its fuzz target uses it). */
bool serve_config_parse_text(const char *what, const char *text, size_t len,
                             struct serve_config *cfg, char *err, size_t cap);
/* As serve_config_load, for `tlsresume keys`: the same flags and file, but only the fleet's
 * settings are checked (redis required, fleet_key, prefix, timing); no action flags. */
bool serve_config_load_fleet(int argc, char **argv, struct serve_config *cfg, char *err,
                             size_t cap);
/* How to authenticate to Redis: reads the password from the file named by
 * redis_password_file, else from $TLSR_REDIS_PASSWORD (the trailing newline of a file is
 * dropped) into out; *password points to it, or is NULL when there is none; *username is
 * redis_user, or NULL. On error ("redis_password_file: PATH: why", or an ACL user without a
 * password) writes it into err. */
/* The TLS settings for rediss:// endpoints (pointers into cfg; NULL where not set). */
struct tlsr_fleet_tls;
void serve_redis_tls(const struct serve_config *cfg, struct tlsr_fleet_tls *out);
bool serve_redis_auth(const struct serve_config *cfg, char *out, size_t out_cap,
                      const char **username, const char **password, char *err, size_t cap);
/* The session ID context session_context gives (text, or hex:BYTES) into out; *len 0 when
 * empty. On error writes "session_context: why" into err. */
bool serve_session_context(const struct serve_config *cfg, uint8_t out[32], size_t *len, char *err,
                           size_t cap);
/* Parses a duration as the configuration does ("90", "30s", "5m", "2h", "1d") within
 * [min_s, max_s]; false for anything else. */
bool serve_parse_duration(const char *text, uint64_t min_s, uint64_t max_s, uint64_t *out);
/* Resolves "host:port" or "[v6]:port" (numeric port) into out (may be NULL to only check).
 * On failure writes the reason into why and returns false. */
bool serve_resolve(const char *text, struct sockaddr_storage *out, socklen_t *out_len, char *why,
                   size_t cap);

/* Prints --help: every option with its type, default and help text. */
void serve_config_help(FILE *out);
/* Prints the Markdown table of docs/CONFIG.md. */
void serve_config_table(FILE *out);

#endif
