/* Shared by the `tlsresume keys` files: a connection to the fleet's ticket key ring, and the
 * targets `keys export` and `keys sync` write keys to. */
#ifndef TLSR_CMD_KEYS_H
#define TLSR_CMD_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <tlsresume/fleet.h>
#include <tlsresume/tickets.h>

#include "../serve/serve_config.h"

#define KEYS_MAX_EXPORT 64
#define KEYS_MAX_SLOTS 32

/* Where keys go: a file or directory in a server's format, HAProxy's runtime API, stdout. */
struct keys_target {
    bool has_format;
    enum tlsr_key_format format;
    char out[2048];          /* a file; for nginx formats a directory of slot files; "-": stdout */
    uint64_t slots;          /* nginx: how many key files (the encrypting key, the next, older) */
    char reload[4096];       /* run with /bin/sh -c after the files change; empty: none */
    bool allow_disk;         /* write to a disk-backed file system */
    bool is_stdout;          /* node: a base64 line on stdout at each change */
    struct cli_list sockets; /* HAProxy runtime API sockets */
    char haproxy_ref[CLI_STR];   /* the tls-ticket-keys file as HAProxy knows it, or its id */
    char resource_name[CLI_STR]; /* envoy, k8s-secret: the Secret's name; empty: the default */
    /* State between polls. */
    uint8_t written[32]; /* SHA-256 of what the files hold now */
    bool is_written;
    bool is_reload_due;
    uint8_t pushed[3][TLSR_TICKET_NAME_LEN]; /* HAProxy's three keys, oldest first */
    bool is_pushed;
    uint8_t streamed[TLSR_TICKET_NAME_LEN];
    bool is_streamed;
};

/* The target's option table (--format, --out, --slots, --reload, --allow-disk, --stdout,
 * --haproxy-socket, --haproxy-ref, --resource-name) over t. */
struct cli_table;
void keys_target_rows(struct keys_target *t, struct cli_table *out);
/* Checks a target's flags belong together; prints the problem and returns false. */
bool keys_target_check(const struct keys_target *t, bool is_sync);
/*
 * Brings the target up to date with keys (ordered as tlsr_keyring_export gives them):
 * writes files atomically (mode 0600) and runs the reload command, or pushes to HAProxy.
 * Logs what it did; false when some part failed (retried on the next call).
 */
bool keys_target_apply(struct keys_target *t, const struct tlsr_key_material *keys, size_t n,
                       bool has_next);

#endif
