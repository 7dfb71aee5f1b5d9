/* One TLS connection of `tlsresume check`, with what it observed. */
#ifndef TLSR_CHECK_PROBE_H
#define TLSR_CHECK_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define PROBE_MAX_TICKETS 8

struct probe_target {
    char host[256];
    char port[16];
    char servername[256]; /* SNI; empty: none */
    unsigned timeout_ms;  /* connect and handshake, each */
};

struct probe_result {
    bool is_ok;            /* handshake completed */
    char error[256];       /* why not */
    bool is_reused;        /* SSL_session_reused */
    int version;           /* TLS1_2_VERSION / TLS1_3_VERSION */
    double handshake_ms;   /* TCP connect + TLS handshake */
    SSL_SESSION *session;  /* newest session (TLS 1.2: the session; TLS 1.3: last ticket); owned */
    SSL_SESSION *first;    /* TLS 1.3: the first ticket when more than one came; owned */
    unsigned tickets;      /* TLS 1.3 NewSessionTicket messages received */
    size_t session_id_len; /* TLS 1.2 session ID length */
    bool has_group;        /* a key exchange group was negotiated (TLS 1.3 psk_dhe_ke) */
    /* What a full handshake presented: the certificate's key ("RSA 2048", "EC prime256v1"),
     * whether an OCSP staple came, whether the server asked for a client certificate. */
    char key[48];
    bool has_staple;
    bool is_client_cert_requested;
};

/* Client SSL_CTX for exactly `version`, with tickets on or off, verifying against ca_file
 * (NULL: the system store) unless insecure. NULL on error (message in err). */
SSL_CTX *probe_ctx(int version, bool has_tickets, const char *ca_file, bool insecure, char *err,
                   size_t cap);

/* One connection offering `offer` (may be NULL). Bounded by the target's timeouts. */
void probe_run(SSL_CTX *ctx, const struct probe_target *t, SSL_SESSION *offer,
               struct probe_result *out);
void probe_result_free(struct probe_result *r);
/* The first 8 bytes of the ticket's key name, in hex, when the ticket has RFC 5077's layout
 * (name(16) | IV(16) | ciphertext | MAC(32)); false for none or an opaque one. */
bool probe_ticket_name(SSL_SESSION *s, char out[17]);
/* A non-blocking TCP connection to t within its timeout (every address tried); -1 with
 * out->error set when none worked. */
int probe_connect(const struct probe_target *t, struct probe_result *out);

#endif
