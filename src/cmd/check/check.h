/* What `tlsresume check` found, for the report writers. */
#ifndef TLSR_CHECK_H
#define TLSR_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "check_early.h"

#define CHECK_MAX_ATTEMPTS 100
#define CHECK_MAX_NAMES 16
#define CHECK_MAX_HINTS 8

struct key_names {
    char v[CHECK_MAX_NAMES][17]; /* first 8 bytes of the key name, hex */
    size_t n;
};

struct mechanism {
    bool is_supported;
    unsigned attempts;
    unsigned resumed;
};

struct check_report {
    char target[300];
    char servername[256];
    unsigned attempts;
    struct {
        bool is_supported;
        char error[256];
        struct mechanism id;
        size_t session_id_len;
        struct mechanism ticket;
        long lifetime_hint_s; /* -1: no ticket */
        bool is_renewed;
        struct key_names names;
    } tls12;
    struct {
        bool is_supported;
        char error[256];
        struct mechanism ticket;
        unsigned tickets_per_handshake;
        long tickets_after_resumption; /* fewest seen after a resumption; -1: none resumed */
        long lifetime_s;               /* -1: no ticket */
        int is_single_use;             /* -1 unknown, 0, 1 */
        const char *psk_mode;          /* "psk_dhe_ke", "psk_ke" or NULL */
        unsigned long max_early_data;
        struct key_names names;
    } tls13;
    struct {
        bool is_seen;                  /* a full handshake completed */
        char key[48];                  /* its certificate's key, e.g. "EC prime256v1" */
        bool has_staple;               /* an OCSP staple came with it */
        bool is_client_cert_requested; /* the server asked for a client certificate */
    } presented;
    double full_ms[3 * CHECK_MAX_ATTEMPTS];
    size_t n_full;
    double resumed_ms[3 * CHECK_MAX_ATTEMPTS];
    size_t n_resumed;
    const char *hints[CHECK_MAX_HINTS];
    char dry_hint[400]; /* the TLS 1.3 renewal hint, with its figures */
    size_t n_hints;
    bool has_session_file;
    bool is_file_offered; /* a session from --session-file was offered */
    bool is_file_resumed; /* and resumed */
    char file_error[300];
    struct early_report early; /* --early-data */
    int exit_code;
    char expect_failed[128]; /* mechanisms --expect wanted but did not get */
};

void check_print_table(FILE *out, const struct check_report *r, bool has_color);
void check_print_json(FILE *out, const struct check_report *r);

#endif
