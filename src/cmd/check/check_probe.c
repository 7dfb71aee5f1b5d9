/*
 * One probe connection of `tlsresume check`: a non-blocking TCP connect and TLS handshake, each
 * bounded by the target's timeout, then a short wait for TLS 1.3 NewSessionTicket messages
 * (servers send them right after the handshake). It decides "resumed" from SSL_session_reused()
 * on the handshake actually made, never from what the client offered.
 */
#include "check_probe.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "../cli/cli.h"
#include "check_trace.h"

static int ticket_count_index = -1;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

/* Counts tickets and keeps the newest session on the probe result. */
/* The server asked for a client certificate: noted, and none given (check has none). */
static int on_client_cert(SSL *ssl, X509 **x509, EVP_PKEY **pkey)
{
    (void)x509;
    (void)pkey;
    struct probe_result *r = SSL_get_ex_data(ssl, ticket_count_index);
    if (r != NULL) {
        r->is_client_cert_requested = true;
    }
    return 0;
}

/* The key of the certificate a full handshake presented, and whether a staple came with it. */
static void note_presented(SSL *ssl, struct probe_result *out)
{
    const unsigned char *staple = NULL;
    out->has_staple = SSL_get_tlsext_status_ocsp_resp(ssl, &staple) > 0 && staple != NULL;
    X509 *peer = SSL_get0_peer_certificate(ssl);
    EVP_PKEY *pk = peer != NULL ? X509_get0_pubkey(peer) : NULL;
    if (pk == NULL) {
        return;
    }
    char group[32] = "";
    size_t len = 0;
    if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_EC &&
        EVP_PKEY_get_group_name(pk, group, sizeof(group), &len) == 1) {
        snprintf(out->key, sizeof(out->key), "EC %s", group);
    } else {
        const char *type = EVP_PKEY_get0_type_name(pk);
        snprintf(out->key, sizeof(out->key), "%s %d", type != NULL ? type : "unknown",
                 EVP_PKEY_get_bits(pk));
    }
}

static int on_new_session(SSL *ssl, SSL_SESSION *sess)
{
    struct probe_result *r = SSL_get_ex_data(ssl, ticket_count_index);
    if (r == NULL) {
        return 0;
    }
    if (SSL_version(ssl) == TLS1_3_VERSION) {
        r->tickets++;
    }
    if (r->first == NULL && r->session != NULL) {
        r->first = r->session; /* keep the first ticket unused, for later */
    } else {
        SSL_SESSION_free(r->session);
    }
    r->session = sess;
    return 1; /* we keep the reference */
}

SSL_CTX *probe_ctx(int version, bool has_tickets, const char *ca_file, bool insecure, char *err,
                   size_t cap)
{
    if (ticket_count_index < 0) {
        ticket_count_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL || SSL_CTX_set_min_proto_version(ctx, version) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, version) != 1) {
        snprintf(err, cap, "cannot make a client context");
        SSL_CTX_free(ctx);
        return NULL;
    }
    if (!has_tickets) {
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, on_new_session);
    SSL_CTX_set_client_cert_cb(ctx, on_client_cert);
    if (insecure) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        int ok = ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                                 : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            snprintf(err, cap, "ca: cannot load %s", ca_file != NULL ? ca_file : "system CAs");
            SSL_CTX_free(ctx);
            return NULL;
        }
    }
    return ctx;
}

/* Connects with a deadline; returns the socket or -1 with out->error set. */
int probe_connect(const struct probe_target *t, struct probe_result *out)
{
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(t->host, t->port, &hints, &res);
    if (rc != 0) {
        snprintf(out->error, sizeof(out->error), "cannot resolve %.100s: %s", t->host,
                 gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    int last = 0;
    double deadline = now_ms() + t->timeout_ms;
    for (struct addrinfo *ai = res; ai != NULL && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            last = errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno != EINPROGRESS) {
            last = errno;
            close(fd);
            fd = -1;
            continue;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof(err);
        int ready = 0;
        double left;
        while ((left = deadline - now_ms()) > 0 && (ready = poll(&p, 1, (int)left + 1)) < 0 &&
               errno == EINTR) {
        }
        if (ready != 1) {
            last = ETIMEDOUT;
        } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) {
            break;
        } else {
            last = err;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(out->error, sizeof(out->error), "cannot connect to %.100s:%s: %s", t->host,
                 t->port, last == ETIMEDOUT ? "timed out" : strerror(last));
    }
    return fd;
}

/* Waits for the socket as SSL wants; false at the deadline. */
static bool wait_for(int fd, SSL *ssl, int rc, double deadline)
{
    int e = SSL_get_error(ssl, rc);
    short ev = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
    double left = deadline - now_ms();
    struct pollfd p = {fd, ev, 0};
    return left > 0 && poll(&p, 1, (int)left + 1) == 1;
}

static void describe_failure(SSL *ssl, int rc, struct probe_result *out)
{
    long verify = SSL_get_verify_result(ssl);
    unsigned long code = ERR_peek_error();
    if (verify != X509_V_OK) {
        snprintf(out->error, sizeof(out->error),
                 "certificate verify failed: %s (use --ca FILE or --insecure)",
                 X509_verify_cert_error_string(verify));
    } else if (code != 0) {
        char buf[200];
        ERR_error_string_n(code, buf, sizeof(buf));
        snprintf(out->error, sizeof(out->error), "TLS handshake failed: %s", buf);
    } else if (SSL_get_error(ssl, rc) == SSL_ERROR_SYSCALL) {
        snprintf(out->error, sizeof(out->error), "TLS handshake failed: connection closed by peer");
    } else {
        snprintf(out->error, sizeof(out->error), "TLS handshake failed");
    }
}

/* Reads what the server sends right after the handshake (TLS 1.3 tickets). */
static void collect_tickets(SSL *ssl, int fd, unsigned timeout_ms, struct probe_result *out)
{
    double deadline = now_ms() + (timeout_ms < 500 ? timeout_ms : 500);
    char buf[512];
    while (now_ms() < deadline) {
        int n = SSL_read(ssl, buf, sizeof(buf));
        if (n > 0) {
            continue;
        }
        int e = SSL_get_error(ssl, n);
        if (e != SSL_ERROR_WANT_READ) {
            break;
        }
        /* Once a ticket arrived, only what is already on its way. */
        double left = out->tickets > 0 ? 30 : deadline - now_ms();
        struct pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || poll(&p, 1, (int)left) != 1) {
            break;
        }
    }
}

void probe_run(SSL_CTX *ctx, const struct probe_target *t, SSL_SESSION *offer,
               struct probe_result *out)
{
    memset(out, 0, sizeof(*out));
    double start = now_ms();
    int fd = probe_connect(t, out);
    if (fd < 0) {
        return;
    }
    ERR_clear_error();
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1) {
        snprintf(out->error, sizeof(out->error), "out of memory");
        SSL_free(ssl);
        close(fd);
        return;
    }
    SSL_set_ex_data(ssl, ticket_count_index, out);
    /* The name the certificate must match: a failure to set it would leave the check
     * without hostname verification, so the probe stops (fail closed). */
    const char *name = t->servername[0] != '\0' ? t->servername : t->host;
    if ((t->servername[0] != '\0' && SSL_set_tlsext_host_name(ssl, t->servername) != 1) ||
        SSL_set1_host(ssl, name) != 1) {
        snprintf(out->error, sizeof(out->error),
                 "cannot set the name to verify (%.180s): not connecting unverified", name);
        SSL_free(ssl);
        close(fd);
        return;
    }
    if (offer != NULL) {
        /* Offer a copy: with a client cache mode set, OpenSSL marks a TLS 1.3 session it has
         * used as not resumable, and the check must be free to offer the same ticket again. */
        SSL_SESSION *copy = SSL_SESSION_dup(offer);
        bool is_offered = copy != NULL && SSL_set_session(ssl, copy) == 1;
        SSL_SESSION_free(copy);
        if (!is_offered) {
            snprintf(out->error, sizeof(out->error), "cannot offer the session");
            SSL_free(ssl);
            close(fd);
            return;
        }
    }
    SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp); /* to see a staple if one comes */
    trace_attach(ssl, start);
    double deadline = now_ms() + t->timeout_ms;
    int rc;
    while ((rc = SSL_connect(ssl)) != 1) {
        int e = SSL_get_error(ssl, rc);
        if ((e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) ||
            !wait_for(fd, ssl, rc, deadline)) {
            if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                snprintf(out->error, sizeof(out->error), "TLS handshake timed out after %u ms",
                         t->timeout_ms);
            } else {
                describe_failure(ssl, rc, out);
            }
            break;
        }
    }
    if (rc == 1) {
        trace_handshake_done(ssl);
        out->is_ok = true;
        out->handshake_ms = now_ms() - start;
        out->is_reused = SSL_session_reused(ssl) == 1;
        out->version = SSL_version(ssl);
        out->has_group = SSL_get_negotiated_group(ssl) != 0;
        if (!out->is_reused) {
            note_presented(ssl, out);
        }
        if (out->version == TLS1_3_VERSION) {
            collect_tickets(ssl, fd, t->timeout_ms, out);
        }
        if (out->session == NULL) {
            out->session = SSL_get1_session(ssl);
        }
        unsigned int id_len = 0;
        SSL_SESSION_get_id(out->session, &id_len);
        out->session_id_len = id_len;
        SSL_shutdown(ssl);
    }
    trace_end(ssl, rc == 1);
    SSL_set_ex_data(ssl, ticket_count_index, NULL);
    ERR_clear_error();
    SSL_free(ssl);
    close(fd);
}

bool probe_ticket_name(SSL_SESSION *s, char out[17])
{
    const unsigned char *tick = NULL;
    size_t len = 0;
    SSL_SESSION_get0_ticket(s, &tick, &len);
    if (tick == NULL || len < 16 + 16 + 32 + 16) {
        return false;
    }
    cli_hex(tick, 8, out);
    return true;
}

void probe_result_free(struct probe_result *r)
{
    SSL_SESSION_free(r->session);
    SSL_SESSION_free(r->first);
    r->session = NULL;
    r->first = NULL;
}
