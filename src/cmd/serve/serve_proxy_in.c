/*
 * The PROXY header a balancer in front of serve sends (accept_proxy): read before the TLS
 * handshake, parsed by tlsr_proxy_parse (tlsresume/proxy.h), and the client it names becomes
 * the connection's peer: the backend's PROXY header, the access log and the logs carry it.
 *
 * Bytes are read only up to the header's end, never into the TLS bytes behind it: each read
 * first peeks, and then takes at most what the parser says the header has at least. Every byte
 * taken belongs to the header, so a header that arrives in pieces waits for the next readable
 * event without spinning, and OpenSSL then reads the ClientHello from the socket as usual. The
 * handshake timeout covers the header too.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <tlsresume/proxy.h>

#include "../cli/log.h"
#include "serve_conn.h"

static int refuse(struct conn *c, const char *why)
{
    char peer[INET6_ADDRSTRLEN + 8];
    conn_peer_text(&c->peer, peer, sizeof(peer));
    log_msg(LOG_INFO, "serve", "client=%s event=proxy_header_refused error=\"%s\"", peer, why);
    metrics_add(c->w->a->metrics, M_PROXY_IN_BAD, 1);
    return -1;
}

int proxy_in_read(struct conn *c)
{
    if (!buf_ensure(&c->c2b)) {
        return refuse(c, "out of memory");
    }
    for (;;) {
        size_t have = c->c2b.end;
        size_t room = TLSR_PROXY_MAX - have;
        ssize_t n = recv(c->cfd, c->c2b.data + have, room, MSG_PEEK);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
            return 0;
        }
        if (n <= 0) {
            return refuse(c, n == 0 ? "closed before the PROXY header ended" : strerror(errno));
        }
        struct tlsr_proxy_addr addr;
        size_t used = 0;
        size_t want = 0;
        if (tlsr_proxy_parse(c->c2b.data, have + (size_t)n, &addr, &used, &want) != TLSR_OK) {
            return refuse(c, tlsr_last_error());
        }
        size_t take = used > 0 ? used - have : (want > have ? want - have : 0);
        take = take < (size_t)n ? take : (size_t)n;
        if (take == 0) {
            return refuse(c, "PROXY header: no progress");
        }
        ssize_t got = recv(c->cfd, c->c2b.data + have, take, 0);
        if (got != (ssize_t)take) {
            return refuse(c, "the header's bytes went missing between peek and read");
        }
        c->c2b.end += take;
        if (c->c2b.end > c->c2b.high) {
            c->c2b.high = c->c2b.end;
        }
        if (used == 0) {
            continue; /* more of the header may be there already; else EAGAIN above */
        }
        if (!addr.is_local) {
            c->peer = addr.src;
            c->peer_len = addr.len;
            c->local = addr.dst;
            c->has_local = true;
        }
        c->c2b.start = c->c2b.end = 0;
        buf_release(&c->c2b, false);
        return 1;
    }
}
