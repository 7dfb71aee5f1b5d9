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

#include <openssl/ssl.h>
#include <tlsresume/ssl.h>

#include "../cli/value.h"

struct serve_config {
    struct cli_list listen;
    struct cli_list backend;
    char backend_balance[CLI_STR];
    uint64_t backend_down_s;
    bool backend_tls;
    char backend_ca[CLI_STR];
    char backend_servername[CLI_STR];
    bool backend_insecure;
    char backend_cert[CLI_STR];
    char backend_key[CLI_STR];
    bool backend_session_reuse;
    uint64_t backend_session_cache_bytes;
    struct cli_list cert;
    struct cli_list key;
    struct cli_list ocsp;
    char client_verify[CLI_STR];
    char client_ca[CLI_STR];
    char client_crl[CLI_STR];
    uint64_t client_verify_depth;
    char key_password_file[CLI_STR];
    bool self_signed;
    uint64_t workers;
    char alpn[CLI_STR];
    char ciphers[CLI_STR];
    char ciphersuites[CLI_STR];
    char groups[CLI_STR];
    char min_tls[CLI_STR];
    bool accept_proxy;
    bool proxy_protocol;
    char tls13_tickets[CLI_STR];
    char key_memory[CLI_STR];
    char session_context[CLI_STR];
    struct cli_list accept_session_context;
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
    char admin[CLI_STR];
    bool access_log;
    char log_level[CLI_STR];
    bool early_data;
    uint64_t max_early_data;
    uint64_t early_data_window_s;
    bool early_data_anti_replay;
    struct cli_list redis;
    char redis_password_file[CLI_STR];
    char redis_user[CLI_STR];
    char redis_tls_ca[CLI_STR];
    char redis_tls_cert[CLI_STR];
    char redis_tls_key[CLI_STR];
    char redis_tls_name[CLI_STR];
    char redis_prefix[CLI_STR];
    uint64_t redis_timeout_ms;
    char fleet_key[CLI_STR];
    char fleet_member[CLI_STR];
    uint64_t fleet_poll_ms;
    uint64_t fleet_ack_wait_s;
    uint64_t fleet_clock_skew_s;
    bool check_config;
    bool config_table;
    bool config_man;
    char config_file[CLI_STR]; /* --config, empty when none */
};

/* The outcome of parsing the command line. */
enum cfg_action { CFG_SERVE, CFG_CHECK, CFG_HELP, CFG_MAN, CFG_TABLE, CFG_FILE_MAN };

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
/* Checks a loaded configuration (required options, pairs, files, addresses) and fills in
 * what follows from it (workers 0: one per core); "name: why" into err. */
bool serve_config_validate(struct serve_config *cfg, char *err, size_t cap);
/* The option table over cfg (NULL only to print it), for a command that reads serve's
 * settings too: flag_tags CLI_TAG_FLEET takes only the fleet settings as flags (`tlsresume
 * keys`; the config file may hold every option). */
struct cli_table;
void serve_config_rows(struct serve_config *cfg, unsigned flag_tags, struct cli_table *out);
/* Checks the fleet settings alone, for `tlsresume keys`: Redis required, the fleet key, the
 * password and TLS files, the prefix. */
bool serve_config_check_fleet(const struct serve_config *cfg, char *err, size_t cap);
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
/* The session ID context session_context gives (serve_context.h's specs; ctx NULL: the spec
 * checked alone) into out; out->len 0 when empty (derived from the certificate). On error
 * writes "session_context: why" into err. */
bool serve_session_context(const struct serve_config *cfg, SSL_CTX *ctx, struct tlsr_sid_ctx *out,
                           char *err, size_t cap);
/* The accept_session_context list, read the same way, into out (*n of them). */
bool serve_accepted_contexts(const struct serve_config *cfg, SSL_CTX *ctx,
                             struct tlsr_sid_ctx out[TLSR_ACCEPT_CONTEXTS_MAX], size_t *n,
                             char *err, size_t cap);
/* Prints --help (or the man page): every option with its type, default and help text. */
void serve_config_help(FILE *out, bool is_man);
/* Prints the Markdown table of docs/CONFIG.md, or (is_man) the man page tlsresume.ini(5). */
void serve_config_table(FILE *out, bool is_man);

/* One line naming what this configuration serves: event is "started" or "reloaded". */
void serve_config_log(const struct serve_config *c, bool has_ring, const char *event);

#endif
