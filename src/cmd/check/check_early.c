/*
 * `tlsresume check --early-data`: whether a server accepts TLS 1.3 early data, and whether it
 * accepts the same first flight twice (RFC 8446 §8: it must not).
 *
 * The early handshake runs over memory BIOs so that every byte the client sends before the
 * server answers (ClientHello and early data) is kept: that is what an attacker on the path can
 * record. The replay sends those bytes, unchanged, on new connections. The replayer holds no
 * keys, so it cannot read the server's answer; but when the server accepts early data its
 * EncryptedExtensions carries an early_data extension, and that record is 4 bytes longer. The
 * original handshake, which can read it, tells which length means "accepted".
 */
#include "check_early.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>

#include "check_trace.h"

#define FLIGHT_MAX 16384
#define ANSWER_MAX 16384

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static bool send_all(int fd, const uint8_t *p, size_t n, double deadline)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return false;
        }
        struct pollfd pf = {fd, POLLOUT, 0};
        double left = deadline - now_ms();
        if (left <= 0 || poll(&pf, 1, (int)left + 1) < 0) {
            return false;
        }
    }
    return true;
}

/* Reads what is there (waiting until the deadline for the first byte); false at EOF/error. */
static bool recv_some(int fd, uint8_t *buf, size_t cap, size_t *len, double deadline)
{
    struct pollfd pf = {fd, POLLIN, 0};
    double left = deadline - now_ms();
    if (left <= 0 || poll(&pf, 1, (int)left + 1) != 1) {
        return false;
    }
    ssize_t r = recv(fd, buf, cap, 0);
    if (r <= 0) {
        return false;
    }
    *len = (size_t)r;
    return true;
}

/* Moves what OpenSSL wrote to the socket, keeping a copy in flight when asked. */
static bool flush_out(BIO *wbio, int fd, uint8_t *flight, size_t *flight_len, double deadline)
{
    uint8_t buf[4096];
    int n;
    while ((n = BIO_read(wbio, buf, sizeof(buf))) > 0) {
        if (flight != NULL && (size_t)n <= FLIGHT_MAX - *flight_len) {
            memcpy(flight + *flight_len, buf, (size_t)n);
            *flight_len += (size_t)n;
        }
        if (!send_all(fd, buf, (size_t)n, deadline)) {
            return false;
        }
    }
    return true;
}

/* The resumption with early data; fills flight and the EncryptedExtensions record length. */
static void early_attempt(SSL_CTX *ctx, const struct probe_target *t, SSL_SESSION *sess,
                          uint8_t *flight, size_t *flight_len, long *ee_len,
                          struct early_report *out)
{
    struct probe_result pr;
    memset(&pr, 0, sizeof(pr));
    double start = trace_now_ms();
    int rc = 0;
    int fd = probe_connect(t, &pr);
    if (fd < 0) {
        snprintf(out->error, sizeof(out->error), "%.250s", pr.error);
        return;
    }
    SSL *ssl = SSL_new(ctx);
    BIO *rbio = BIO_new(BIO_s_mem());
    BIO *wbio = BIO_new(BIO_s_mem());
    SSL_SESSION *copy = SSL_SESSION_dup(sess);
    if (ssl == NULL || rbio == NULL || wbio == NULL || copy == NULL ||
        SSL_set_session(ssl, copy) != 1) {
        snprintf(out->error, sizeof(out->error), "out of memory");
        BIO_free(rbio);
        BIO_free(wbio);
        goto out;
    }
    SSL_set_bio(ssl, rbio, wbio);
    SSL_set_connect_state(ssl);
    trace_attach(ssl, start);
    const char *name = t->servername[0] != '\0' ? t->servername : t->host;
    SSL_set_tlsext_host_name(ssl, name);
    char request[512];
    int req_len = snprintf(request, sizeof(request),
                           "HEAD / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", name);
    size_t written = 0;
    double deadline = now_ms() + t->timeout_ms;
    ERR_clear_error();
    if (SSL_write_early_data(ssl, request, (size_t)req_len, &written) != 1 ||
        !flush_out(wbio, fd, flight, flight_len, deadline)) {
        snprintf(out->error, sizeof(out->error), "could not send early data");
        goto out;
    }
    uint8_t answer[ANSWER_MAX];
    size_t answer_len = 0;
    while ((rc = SSL_do_handshake(ssl)) != 1) {
        if (SSL_get_error(ssl, rc) != SSL_ERROR_WANT_READ ||
            !flush_out(wbio, fd, NULL, NULL, deadline)) {
            break;
        }
        uint8_t buf[4096];
        size_t n = 0;
        if (!recv_some(fd, buf, sizeof(buf), &n, deadline)) {
            break;
        }
        if (n <= sizeof(answer) - answer_len) {
            memcpy(answer + answer_len, buf, n);
            answer_len += n;
        }
        BIO_write(rbio, buf, (int)n);
    }
    if (rc != 1) {
        snprintf(out->error, sizeof(out->error), "the 0-RTT handshake did not complete");
        goto out;
    }
    trace_handshake_done(ssl);
    (void)flush_out(wbio, fd, NULL, NULL, deadline);
    out->is_accepted = SSL_get_early_data_status(ssl) == SSL_EARLY_DATA_ACCEPTED;
    *ee_len = early_first_app_record(answer, answer_len);
out:
    if (ssl != NULL) {
        trace_end(ssl, rc == 1);
    }
    ERR_clear_error();
    SSL_SESSION_free(copy);
    SSL_free(ssl);
    close(fd);
}

/* Sends the flight on a new connection; the server's EncryptedExtensions length, or -1. */
static long replay_once(const struct probe_target *t, const uint8_t *flight, size_t len)
{
    struct probe_result pr;
    memset(&pr, 0, sizeof(pr));
    int fd = probe_connect(t, &pr);
    if (fd < 0) {
        return -1;
    }
    double deadline = now_ms() + t->timeout_ms;
    long ee = -1;
    uint8_t answer[ANSWER_MAX];
    size_t answer_len = 0;
    if (send_all(fd, flight, len, deadline)) {
        while (ee < 0 && answer_len < sizeof(answer)) {
            size_t n = 0;
            if (!recv_some(fd, answer + answer_len, sizeof(answer) - answer_len, &n, deadline)) {
                break;
            }
            answer_len += n;
            ee = early_first_app_record(answer, answer_len);
        }
    }
    close(fd);
    return ee;
}

void check_early(SSL_CTX *ctx13, const struct probe_target *t, const struct probe_target *others,
                 size_t n, struct early_report *out)
{
    memset(out, 0, sizeof(*out));
    out->is_tested = true;
    out->probe = "failed";
    struct probe_result full;
    trace_phase("TLS 1.3 full handshake, for early data");
    probe_run(ctx13, t, NULL, &full);
    if (!full.is_ok || full.session == NULL) {
        snprintf(out->error, sizeof(out->error), "no TLS 1.3 session: %.200s",
                 full.error[0] ? full.error : "no ticket");
        probe_result_free(&full);
        return;
    }
    out->max_early_data = SSL_SESSION_get_max_early_data(full.session);
    out->is_offered = out->max_early_data > 0;
    if (!out->is_offered) {
        out->probe = "not_offered";
        probe_result_free(&full);
        return;
    }
    static uint8_t flight[FLIGHT_MAX];
    size_t flight_len = 0;
    long ee_len = -1;
    trace_phase("TLS 1.3 resumption with early data");
    early_attempt(ctx13, t, full.session, flight, &flight_len, &ee_len, out);
    probe_result_free(&full);
    if (!out->is_accepted || flight_len == 0 || ee_len < 0) {
        if (!out->is_accepted && out->error[0] == '\0') {
            out->probe = "refused";
        }
        return; /* nothing accepted, nothing to replay */
    }
    out->probe = "ran";
    for (size_t i = 0; i <= n; i++) {
        const struct probe_target *to = i == 0 ? t : &others[i - 1];
        for (unsigned k = 0; k < EARLY_REPLAYS_PER_TARGET; k++) {
            long len = replay_once(to, flight, flight_len);
            out->replays++;
            if (len < 0) {
                out->replays_unknown++;
            } else if (len == ee_len) {
                out->replays_accepted++;
            } else {
                out->replays_refused++;
            }
        }
    }
}
