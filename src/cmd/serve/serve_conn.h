/*
 * `tlsresume serve`'s worker inside: what the master gives a worker (worker_args), the worker,
 * a connection and its buffers. serve_conn.c keeps a connection's life (buffers, watchers,
 * close); serve_worker.c the loop, accepting, handshakes and timers; serve_proxy.c the
 * backend connection, relaying both ways and the PROXY header.
 */
#ifndef TLSR_SERVE_CONN_H
#define TLSR_SERVE_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <ev.h>
#include <openssl/ssl.h>

#include "serve_config.h"
#include "serve_metrics.h"
#include "serve_tls.h"

#define BUF_SIZE (16 * 1024)
/* Most bytes proxy_header() writes: the v2 header with IPv6 addresses, the early data TLV and
 * the client certificate's TLVs (each bounded by serve_client_auth.c). */
#define PROXY_HEADER_MAX 2048

/* A backend, resolved when serve starts (and again on reload). */
struct backend_addr {
    struct sockaddr_storage addr;
    socklen_t len;
    char name[CLI_STR]; /* as configured, for logs and counters */
    /* --backend-tls (serve_upstream.c): the name its certificate must carry, sent as SNI
     * unless it is an IP address, and the key of its sessions in the upstream store. */
    char tls_name[CLI_STR];
    bool is_tls_name_ip;
    uint8_t session_key[32];
};

struct upstream;
struct upstream_held;

struct worker_args {
    const struct serve_config *cfg;
    struct tls_set *tls;
    const int *listen_fds;
    size_t n_listen;
    struct backend_addr backends[CLI_LIST_MAX];
    size_t n_backends;
    struct metrics_slot *metrics;
    uint64_t *open_total;                /* connections open over all workers (shared, atomic) */
    const struct tlsr_fleet_opts *fleet; /* NULL without --redis */
    const struct upstream *up;           /* NULL without --backend-tls */
    int id;
};

/* A direction's buffer. Its 16 KiB are allocated only while bytes are in flight and released
 * (wiped) as soon as it drains, so an idle connection holds no buffer at all. */
struct buf {
    size_t start;
    size_t end;
    size_t high; /* highest end reached: the bytes to wipe */
    uint8_t *data;
};

/* ST_UPSTREAM: --backend-tls, the TLS handshake with the backend (after the TCP connect). */
enum conn_state { ST_PROXY_IN, ST_HANDSHAKE, ST_CONNECTING, ST_UPSTREAM, ST_PROXY };

/* What the backend leg's TLS handshake did (--backend-tls), for the counters and the log. */
enum upstream_result { UP_NONE, UP_FULL, UP_RESUMED };
/* Why a full one: nothing stored to offer, the backend refused what was offered, what was
 * stored did not decode, or reuse is off. */
enum upstream_miss {
    UP_MISS_NONE,
    UP_MISS_NO_SESSION,
    UP_MISS_REFUSED,
    UP_MISS_UNREADABLE,
    UP_MISS_DISABLED /* --backend-session-reuse=no */
};

struct worker;

struct conn {
    struct worker *w;
    struct conn *prev;
    struct conn *next;
    int cfd;
    int bfd;
    SSL *ssl;
    SSL *bssl; /* --backend-tls: the backend leg, NULL before its TCP connect finished */
    ev_io cio;
    ev_io bio;
    ev_timer timer;
    enum conn_state state;
    bool is_handshake_done; /* the TLS handshake finished (the state may still say so) */
    struct buf c2b;
    struct buf b2c;
    bool is_client_eof;   /* no more bytes from the client */
    bool is_backend_eof;  /* no more bytes from the backend */
    bool is_backend_shut; /* SHUT_WR sent to the backend */
    bool is_client_shut;  /* close_notify sent to the client */
    int read_wants;       /* last SSL_read want: 0, SSL_ERROR_WANT_READ/WRITE */
    int write_wants;      /* last SSL_write want */
    int b_read_wants;     /* the same for the backend leg (--backend-tls) */
    int b_write_wants;
    SSL_SESSION *offered; /* the stored session offered to the backend, until it answered */
    enum upstream_result upstream;
    enum upstream_miss upstream_miss;
    bool is_backend_blocked; /* send() would block */
    bool is_upload_dropped;  /* the backend stopped taking bytes; the client's are discarded */
    bool is_reading_early;   /* 0-RTT on: SSL_read_early_data() until it reports the end */
    bool is_backend_up;      /* connected (a connect started for early data may finish first) */
    bool is_header_sent;     /* the PROXY header is in c2b */
    bool is_early_counted;   /* the 0-RTT outcome went to the counters */
    bool is_early_blocked;   /* early data waits for c2b to drain to the backend */
    bool is_client_full;     /* the last client read stopped at a full c2b, not at EAGAIN */
    bool is_backend_full;    /* the last backend read stopped at a full b2c, not at EAGAIN */
    bool is_client_reset;    /* the client's socket reported a reset: nothing left to linger on */
    bool is_backend_no_close_notify; /* --backend-tls: its stream ended without close_notify */
    bool is_backend_failed;          /* --backend-tls: a fatal TLS error after the handshake */
    uint64_t early_bytes;
    uint64_t bytes_in;
    uint64_t bytes_out;
    ev_tstamp started;
    struct sockaddr_storage peer; /* the client: accepted, or named by the balancer's header */
    socklen_t peer_len;
    struct sockaddr_storage local; /* accept_proxy: the address the client connected to */
    bool has_local;
    int backend;             /* the backend chosen (index), -1 before one is */
    uint32_t backends_tried; /* bit i: backend i was tried for this connection */
};

struct worker {
    struct ev_loop *loop;
    const struct worker_args *a;
    ev_io accept_w[CLI_LIST_MAX];
    ev_signal sig_term;
    ev_signal sig_int;
    ev_timer accept_pause; /* accepting stops briefly when descriptors run out */
    ev_timer drain_timer;  /* draining connections are closed when it fires */
    struct conn *conns;
    unsigned long open;
    bool is_draining;
    ev_tstamp last_refusal_log;
    ev_tstamp last_accept_error_log;
    struct tlsr_fleet_cache *fleet; /* NULL without --redis */
    ev_timer fleet_stats;
    /* This worker's view of the backends (serve_backend.c). */
    ev_tstamp backend_down_until[CLI_LIST_MAX];
    unsigned long backend_open[CLI_LIST_MAX];
    size_t backend_next;                 /* round-robin: where the next pick starts */
    struct upstream_held *upstream_held; /* --backend-tls: sessions this worker stored */
};

/* serve_backend.c: which backend a connection goes to. The pick skips backends tried for it
 * and those down (a failed connect within backend_down); -1 when every backend was tried. */
int backend_pick(struct worker *w, uint32_t tried);
/* c goes to backend i now (counted open); c leaves its backend (on close or a retry). */
void backend_attach(struct conn *c, int i);
void backend_detach(struct conn *c);
/* The connect to c's backend failed or timed out (error says how): logged, counted, and the
 * backend skipped for backend_down (its going down logged once). */
void backend_mark_down(struct conn *c, const char *error);

/* serve_proxy_in.c: reads the balancer's PROXY header (accept_proxy) from c's socket into c2b,
 * never past it. 1 once it is whole (c->peer, c->local set; c2b empty again), 0 to wait for
 * more bytes, -1 when c must close (logged and counted). */
int proxy_in_read(struct conn *c);

/* serve_conn.c */
size_t buf_len(const struct buf *b);
/* Allocates the buffer's memory if it has none; false when out of memory. */
bool buf_ensure(struct buf *b);
/* Gives the memory back once the buffer is empty (or unconditionally when closing). */
void buf_release(struct buf *b, bool is_final);
size_t buf_room(struct buf *b);

/* Watches fd for events on io (0 stops it). */
void set_events(struct worker *w, ev_io *io, int fd, int events);
/* Closes and frees c: the access log line, close_notify, lingering, the counters. */
void conn_close(struct conn *c, const char *why);
/* Counts what became of early data on c, once. */
void count_early(struct conn *c);
/* A peer's address as text ("host:port", "[v6]:port"). */
void conn_peer_text(const struct sockaddr_storage *ss, char *out, size_t cap);
/* Ends the worker's loop once it drains and holds no connection. */
void maybe_exit(struct worker *w);

/* serve_proxy.c */
/* Reads decrypted client bytes into c2b; false on a fatal error. *progress tells whether any
 * byte moved. */
bool client_read(struct conn *c, bool *progress);
/* The libev events for an SSL want (SSL_ERROR_WANT_READ/WRITE), or dflt when none. */
int want_events(int wants, int dflt);
/* The sides proxy() reads first: those whose watcher reported them readable. */
enum { PUMP_CLIENT = 1, PUMP_BACKEND = 2 };
/* Pumps both directions until nothing moves, then sets the watchers. A side is read when
 * `sides` names it, or while its last read stopped at a full buffer; one that answered EAGAIN
 * is left to its watcher (level-triggered: nothing is missed, and no read finds nothing). */
void proxy(struct conn *c, int sides);
/* Puts the PROXY v2 header into c2b once; with the early data TLV when is_early. */
void proxy_header(struct conn *c, bool is_early);
/* Starts connecting to the backend; false when that failed and the connection is closed. */
bool backend_connect(struct conn *c, bool is_early);
/* The connect to c's backend failed (error says how): logged, counted, the backend marked down,
 * and c connects to the next untried backend; false when none is left and c is closed. */
bool backend_retry(struct conn *c, const char *error);
/* After backend_connect() for a finished handshake: sends the client's first bytes at once
 * (a backend on this host has often accepted within connect()), which also tells that the
 * connect is done; otherwise waits for it as before. */
void backend_first_send(struct conn *c);
/* Sends what c2b holds (early data) to the backend while the handshake goes on. */
void early_flush(struct conn *c);

#endif
