/*
 * The ladders of `check --trace`. OpenSSL's message callback reports every record header and
 * every handshake message, change_cipher_spec and alert in both directions, as it writes or
 * reads them (TLS 1.3 messages after decryption, inside their application_data records); this
 * file timestamps them per connection and prints them the way a packet analyser lays out a
 * handshake. Round trips are the server flights the client waited for before its handshake
 * completed (the TCP connect's own round trip is shown apart); bytes are wire bytes, record
 * headers included.
 */
#include "check_trace.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define TRACE_MAX_CONNS 600
#define TRACE_MAX_EVENTS 96

enum kind { K_RECORD, K_MESSAGE, K_DONE };

struct event {
    double t_ms;
    enum kind kind;
    bool is_sent;
    bool is_after;
    int content; /* record or message content type */
    int hs_type; /* handshake type, -1 for others; 0x100: HelloRetryRequest */
    int alert;   /* level << 8 | description */
    size_t bytes;
};

struct conn {
    const char *phase;
    unsigned index;
    double start_ms;
    double tcp_ms;
    double done_ms;
    bool is_ok;
    bool is_done;
    bool is_reused;
    const char *version;
    const char *early; /* "none", "accepted", "rejected" */
    size_t n;
    bool is_truncated;
    struct event ev[TRACE_MAX_EVENTS];
};

/* What one connection's handshake cost, before it completed. */
struct cost {
    unsigned round_trips;
    unsigned messages;
    size_t sent;
    size_t received;
    unsigned records_sent;
    unsigned records_received;
};

static bool is_on;
static const char *phase = "check";
static unsigned phase_count;
static struct conn *conns;
static size_t n_conns;
static bool is_conns_truncated;
static int conn_index = -1; /* the SSL's ex_data slot for its struct conn */

double trace_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

void trace_enable(void)
{
    if (conns == NULL) {
        conns = calloc(TRACE_MAX_CONNS, sizeof(*conns));
    }
    if (conn_index < 0) {
        conn_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    }
    is_on = conns != NULL && conn_index >= 0;
}

void trace_phase(const char *p)
{
    phase = p;
    phase_count = 0;
}

/* The random of a HelloRetryRequest (RFC 8446 section 4.1.3): SHA-256 of the string. */
static const uint8_t hrr_random[32] = {
    0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
    0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c};

static void add(struct conn *c, const struct event *e)
{
    if (c->n < TRACE_MAX_EVENTS) {
        c->ev[c->n++] = *e;
    } else {
        c->is_truncated = true;
    }
}

static void on_message(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
    (void)version;
    (void)ssl;
    struct conn *c = arg;
    const uint8_t *p = buf;
    struct event e = {trace_now_ms() - c->start_ms,
                      K_MESSAGE,
                      write_p != 0,
                      c->is_done,
                      content_type,
                      -1,
                      0,
                      len};
    if (content_type == SSL3_RT_HEADER) {
        if (len < 5) {
            return;
        }
        e.kind = K_RECORD;
        e.content = p[0];
        e.bytes = 5 + (((size_t)p[3] << 8) | p[4]);
        add(c, &e);
        if (p[0] == SSL3_RT_CHANGE_CIPHER_SPEC) {
            /* OpenSSL reports a received ChangeCipherSpec only as its record: the message is
             * drawn from the record, both ways, so that both sides count alike. */
            e.kind = K_MESSAGE;
            e.bytes -= 5;
            add(c, &e);
        }
        return;
    }
    if (content_type == SSL3_RT_CHANGE_CIPHER_SPEC) {
        return; /* drawn from its record */
    }
    if (content_type == SSL3_RT_HANDSHAKE) {
        if (len < 1) {
            return;
        }
        e.hs_type = p[0];
        if (p[0] == SSL3_MT_SERVER_HELLO && len >= 38 && memcmp(p + 6, hrr_random, 32) == 0) {
            e.hs_type = 0x100;
        }
    } else if (content_type == SSL3_RT_ALERT) {
        e.alert = len >= 2 ? (p[0] << 8) | p[1] : 0;
    } else {
        return; /* the inner content type of TLS 1.3 records: the record says it */
    }
    add(c, &e);
}

void trace_attach(SSL *ssl, double start_ms)
{
    if (!is_on) {
        return;
    }
    if (n_conns >= TRACE_MAX_CONNS) {
        is_conns_truncated = true;
        return;
    }
    struct conn *c = &conns[n_conns++];
    memset(c, 0, sizeof(*c));
    c->phase = phase;
    c->index = ++phase_count;
    c->start_ms = start_ms;
    c->tcp_ms = trace_now_ms() - start_ms;
    c->version = "";
    c->early = "none";
    if (SSL_set_ex_data(ssl, conn_index, c) != 1) {
        n_conns--;
        return;
    }
    SSL_set_msg_callback(ssl, on_message);
    SSL_set_msg_callback_arg(ssl, c);
}

static struct conn *of(SSL *ssl)
{
    return is_on && conn_index >= 0 ? SSL_get_ex_data(ssl, conn_index) : NULL;
}

void trace_handshake_done(SSL *ssl)
{
    struct conn *c = of(ssl);
    if (c == NULL || c->is_done) {
        return;
    }
    c->is_done = true;
    c->done_ms = trace_now_ms() - c->start_ms;
    add(c, &(struct event){c->done_ms, K_DONE, false, false, 0, -1, 0, 0});
}

void trace_end(SSL *ssl, bool is_ok)
{
    struct conn *c = of(ssl);
    if (c == NULL) {
        return;
    }
    SSL_set_msg_callback(ssl, NULL);
    SSL_set_ex_data(ssl, conn_index, NULL);
    c->is_ok = is_ok && c->is_done;
    c->is_reused = SSL_session_reused(ssl) == 1;
    c->version = SSL_get_version(ssl);
    int early = SSL_get_early_data_status(ssl);
    c->early = early == SSL_EARLY_DATA_ACCEPTED   ? "accepted"
               : early == SSL_EARLY_DATA_REJECTED ? "rejected"
                                                  : "none";
}

static struct cost cost_of(const struct conn *c)
{
    struct cost k = {0, 0, 0, 0, 0, 0};
    bool was_sent = true; /* the client speaks first */
    for (size_t i = 0; i < c->n && !c->ev[i].is_after && c->ev[i].kind != K_DONE; i++) {
        const struct event *e = &c->ev[i];
        if (e->kind == K_RECORD) {
            *(e->is_sent ? &k.sent : &k.received) += e->bytes;
            (*(e->is_sent ? &k.records_sent : &k.records_received))++;
            continue;
        }
        k.messages++;
        if (was_sent && !e->is_sent) {
            k.round_trips++;
        }
        was_sent = e->is_sent;
    }
    return k;
}

static const char *hs_name(int t)
{
    switch (t) {
    case 0x100:
        return "HelloRetryRequest";
    case SSL3_MT_HELLO_REQUEST:
        return "HelloRequest";
    case SSL3_MT_CLIENT_HELLO:
        return "ClientHello";
    case SSL3_MT_SERVER_HELLO:
        return "ServerHello";
    case SSL3_MT_NEWSESSION_TICKET:
        return "NewSessionTicket";
    case SSL3_MT_END_OF_EARLY_DATA:
        return "EndOfEarlyData";
    case SSL3_MT_ENCRYPTED_EXTENSIONS:
        return "EncryptedExtensions";
    case SSL3_MT_CERTIFICATE:
        return "Certificate";
    case SSL3_MT_SERVER_KEY_EXCHANGE:
        return "ServerKeyExchange";
    case SSL3_MT_CERTIFICATE_REQUEST:
        return "CertificateRequest";
    case SSL3_MT_SERVER_DONE:
        return "ServerHelloDone";
    case SSL3_MT_CERTIFICATE_VERIFY:
        return "CertificateVerify";
    case SSL3_MT_CLIENT_KEY_EXCHANGE:
        return "ClientKeyExchange";
    case SSL3_MT_FINISHED:
        return "Finished";
    case SSL3_MT_CERTIFICATE_STATUS:
        return "CertificateStatus";
    case SSL3_MT_KEY_UPDATE:
        return "KeyUpdate";
    default:
        return "unknown_handshake_message";
    }
}

static const char *content_name(int t)
{
    switch (t) {
    case SSL3_RT_CHANGE_CIPHER_SPEC:
        return "change_cipher_spec";
    case SSL3_RT_ALERT:
        return "alert";
    case SSL3_RT_HANDSHAKE:
        return "handshake";
    case SSL3_RT_APPLICATION_DATA:
        return "application_data";
    default:
        return "unknown_record";
    }
}

/* A message's name; alerts with their level and description. */
static const char *message_name(const struct event *e, char *buf, size_t cap)
{
    if (e->content == SSL3_RT_HANDSHAKE) {
        return hs_name(e->hs_type);
    }
    if (e->content == SSL3_RT_CHANGE_CIPHER_SPEC) {
        return "ChangeCipherSpec";
    }
    snprintf(buf, cap, "Alert %s %s", SSL_alert_type_string_long(e->alert),
             SSL_alert_desc_string_long(e->alert));
    return buf;
}

static const char *outcome(const struct conn *c)
{
    if (!c->is_ok) {
        return "no handshake";
    }
    return c->is_reused ? "resumed" : "full";
}

static void print_saved(FILE *out);

void trace_print_text(FILE *out)
{
    if (!is_on) {
        return;
    }
    fprintf(out, "\nHandshake ladders (--trace): ms from the start of the TCP connect; -> the "
                 "client sends, <- it\nreceives; records in wire bytes (header included), "
                 "messages as OpenSSL reports them\n");
    for (size_t i = 0; i < n_conns; i++) {
        const struct conn *c = &conns[i];
        struct cost k = cost_of(c);
        fprintf(out, "\n%s #%u: %s %s", c->phase, c->index, c->version, outcome(c));
        if (strcmp(c->early, "none") != 0) {
            fprintf(out, ", early data %s", c->early);
        }
        fprintf(out, "\n  %8.2f ms     TCP connected (1 round trip)\n", c->tcp_ms);
        for (size_t j = 0; j < c->n; j++) {
            const struct event *e = &c->ev[j];
            const char *dir = e->is_sent ? "->" : "<-";
            char name[96];
            if (e->kind == K_DONE) {
                fprintf(out,
                        "  %8.2f ms  == handshake complete: %u round trip%s, %u messages, %zu B "
                        "sent, %zu B received\n",
                        e->t_ms, k.round_trips, k.round_trips == 1 ? "" : "s", k.messages, k.sent,
                        k.received);
            } else if (e->kind == K_RECORD) {
                fprintf(out, "  %8.2f ms  %s record %-18s %6zu B\n", e->t_ms, dir,
                        content_name(e->content), e->bytes);
            } else {
                fprintf(out, "  %8.2f ms  %s   %-25s %6zu B\n", e->t_ms, dir,
                        message_name(e, name, sizeof(name)), e->bytes);
            }
        }
        if (c->is_truncated) {
            fprintf(out, "  (more events than %d: the rest not shown)\n", TRACE_MAX_EVENTS);
        }
    }
    if (is_conns_truncated) {
        fprintf(out, "\n(more connections than %d: the rest not traced)\n", TRACE_MAX_CONNS);
    }
    print_saved(out);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Medians over a version's full or resumed handshakes. */
struct summary {
    size_t n;
    double round_trips;
    double messages;
    double bytes;
    double ms;
};

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n == 0 ? 0 : (n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2);
}

static struct summary summarise(const char *version, bool is_reused)
{
    static double rt[TRACE_MAX_CONNS], msg[TRACE_MAX_CONNS], by[TRACE_MAX_CONNS],
        ms[TRACE_MAX_CONNS];
    struct summary s = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < n_conns; i++) {
        const struct conn *c = &conns[i];
        if (!c->is_ok || c->is_reused != is_reused || strcmp(c->version, version) != 0) {
            continue;
        }
        struct cost k = cost_of(c);
        rt[s.n] = k.round_trips;
        msg[s.n] = k.messages;
        by[s.n] = (double)(k.sent + k.received);
        ms[s.n] = c->done_ms;
        s.n++;
    }
    s.round_trips = median(rt, s.n);
    s.messages = median(msg, s.n);
    s.bytes = median(by, s.n);
    s.ms = median(ms, s.n);
    return s;
}

static const char *const versions[] = {"TLSv1.2", "TLSv1.3"};

static void print_saved(FILE *out)
{
    fprintf(out, "\nWhat resumption saved (medians of the traced handshakes, TCP connect "
                 "included in ms):\n");
    fprintf(out, "  %-8s %-8s %11s %9s %7s %9s\n", "version", "", "round trips", "messages",
            "bytes", "ms");
    for (size_t v = 0; v < 2; v++) {
        struct summary f = summarise(versions[v], false);
        struct summary r = summarise(versions[v], true);
        if (f.n == 0 && r.n == 0) {
            continue;
        }
        const struct {
            const char *name;
            const struct summary *s;
        } rows[] = {{"full", &f}, {"resumed", &r}};
        for (size_t i = 0; i < 2; i++) {
            if (rows[i].s->n == 0) {
                fprintf(out, "  %-8s %-8s %11s\n", versions[v], rows[i].name, "none traced");
                continue;
            }
            fprintf(out, "  %-8s %-8s %11.4g %9.4g %7.4g %9.2f\n", versions[v], rows[i].name,
                    rows[i].s->round_trips, rows[i].s->messages, rows[i].s->bytes, rows[i].s->ms);
        }
        if (f.n > 0 && r.n > 0) {
            fprintf(out, "  %-8s %-8s %11.4g %9.4g %7.4g %9.2f\n", versions[v], "saved",
                    f.round_trips - r.round_trips, f.messages - r.messages, f.bytes - r.bytes,
                    f.ms - r.ms);
        }
    }
}

static void json_summary(FILE *out, const char *name, const struct summary *s)
{
    fprintf(out,
            "\"%s\":{\"connections\":%zu,\"round_trips\":%.1f,\"messages\":%.1f,\"bytes\":%.1f,"
            "\"ms\":%.3f}",
            name, s->n, s->round_trips, s->messages, s->bytes, s->ms);
}

void trace_print_json(FILE *out)
{
    if (!is_on) {
        fprintf(out, "null");
        return;
    }
    fprintf(out, "{\"connections\":[");
    for (size_t i = 0; i < n_conns; i++) {
        const struct conn *c = &conns[i];
        struct cost k = cost_of(c);
        fprintf(out,
                "%s{\"phase\":\"%s\",\"index\":%u,\"handshake\":%s,\"version\":\"%s\","
                "\"resumed\":%s,\"early_data\":\"%s\",\"tcp_ms\":%.3f,\"handshake_ms\":%.3f,"
                "\"round_trips\":%u,\"messages\":%u,\"bytes_sent\":%zu,\"bytes_received\":%zu,"
                "\"records_sent\":%u,\"records_received\":%u,\"truncated\":%s,\"events\":[",
                i ? "," : "", c->phase, c->index, c->is_ok ? "true" : "false", c->version,
                c->is_ok && c->is_reused ? "true" : "false", c->early, c->tcp_ms,
                c->is_ok ? c->done_ms : 0.0, k.round_trips, k.messages, k.sent, k.received,
                k.records_sent, k.records_received, c->is_truncated ? "true" : "false");
        size_t shown = 0;
        for (size_t j = 0; j < c->n; j++) {
            const struct event *e = &c->ev[j];
            if (e->kind == K_DONE) {
                continue;
            }
            char name[96];
            fprintf(out,
                    "%s{\"t_ms\":%.3f,\"dir\":\"%s\",\"kind\":\"%s\",\"type\":\"%s\","
                    "\"bytes\":%zu,\"after_handshake\":%s}",
                    shown++ ? "," : "", e->t_ms, e->is_sent ? "sent" : "received",
                    e->kind == K_RECORD ? "record" : "message",
                    e->kind == K_RECORD ? content_name(e->content)
                                        : message_name(e, name, sizeof(name)),
                    e->bytes, e->is_after ? "true" : "false");
        }
        fprintf(out, "]}");
    }
    fprintf(out, "],\"connections_truncated\":%s,\"saved\":[",
            is_conns_truncated ? "true" : "false");
    bool any = false;
    for (size_t v = 0; v < 2; v++) {
        struct summary f = summarise(versions[v], false);
        struct summary r = summarise(versions[v], true);
        if (f.n == 0 && r.n == 0) {
            continue;
        }
        fprintf(out, "%s{\"version\":\"%s\",", any ? "," : "", versions[v]);
        any = true;
        json_summary(out, "full", &f);
        fprintf(out, ",");
        json_summary(out, "resumed", &r);
        if (f.n > 0 && r.n > 0) {
            struct summary d = {0, f.round_trips - r.round_trips, f.messages - r.messages,
                                f.bytes - r.bytes, f.ms - r.ms};
            fprintf(out, ",");
            json_summary(out, "saved", &d);
        } else {
            fprintf(out, ",\"saved\":null");
        }
        fprintf(out, "}");
    }
    fprintf(out, "]}");
}

void trace_free(void)
{
    free(conns);
    conns = NULL;
    n_conns = 0;
    is_on = false;
}
