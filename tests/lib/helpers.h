/* Helpers shared by the unit tests and bench/: a test clock, certificates, in-memory handshakes. */
#ifndef TLSR_TEST_HELPERS_H
#define TLSR_TEST_HELPERS_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include <tlsresume/tlsresume.h>

/* A clock the test moves by hand. */
struct th_clock {
    uint64_t now;
};
uint64_t th_clock_fn(void *arg);

/* A server SSL_CTX for TLS versions [min, max] with a fresh self-signed certificate for cn. */
SSL_CTX *th_server_ctx(int min_version, int max_version, const char *cn);
/* The same with an RSA-2048 key instead when is_rsa. */
SSL_CTX *th_server_ctx_key(int min_version, int max_version, const char *cn, bool is_rsa);
/* A client SSL_CTX for TLS versions [min, max] that verifies nothing (tests only). */
SSL_CTX *th_client_ctx(int min_version, int max_version);

struct th_result {
    bool is_ok;                  /* the handshake completed on both sides */
    bool is_reused;              /* the client says the session was reused */
    enum tlsr_resumption kind;   /* the server says how */
    SSL_SESSION *session;        /* the client's newest session (tickets read); caller frees */
    SSL_SESSION *server_session; /* the server's session; caller frees */
    int version;
    enum tlsr_offer offer; /* what the server saw offered */
    enum tlsr_miss miss;   /* and why it did not resume */
};

/* Runs one handshake over a memory BIO pair, offering `offer` (may be NULL), exchanges one
 * byte each way so TLS 1.3 tickets arrive, and shuts both sides down cleanly. */
struct th_result th_handshake(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer);
/* The same, but both sides are freed without close_notify, as most clients end a connection. */
struct th_result th_handshake_abrupt(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer);

void th_result_free(struct th_result *r);

/* Two ends over a memory BIO pair, the client offering offer (may be NULL), before any
 * handshake step: *s and *c (caller frees); *s_bio and *c_bio are their BIOs. */
void th_pair(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer, SSL **s, SSL **c, BIO **s_bio,
             BIO **c_bio);
/* A handshake over a memory BIO pair left open: *s and *c are the two ends (caller frees);
 * *s_bio is the server's BIO, where raw bytes for the server can be written. */
bool th_open(SSL_CTX *server, SSL_CTX *client, SSL_SESSION *offer, SSL **s, SSL **c, BIO **s_bio,
             BIO **c_bio);

/* Reads /proc/self/smaps and tells whether the mapping that contains p has VmFlags lo and dd. */
bool th_is_locked_nodump(const void *p);

#endif
