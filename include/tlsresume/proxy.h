/*
 * The PROXY protocol header a balancer (HAProxy `send-proxy`, nginx `proxy_protocol on`, AWS
 * NLB, ...) sends before the TLS bytes of a connection, naming the client it accepted: version 1
 * (a text line) and version 2 (binary), as HAProxy's proxy-protocol.txt defines them.
 *
 * Accept it only from balancers: anyone who can connect directly can claim any address.
 */
#ifndef TLSRESUME_PROXY_H
#define TLSRESUME_PROXY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <tlsresume/error.h>

/* The longest header read: a v1 line is at most 107 bytes; a v2 header with TLVs longer than
 * this is refused. */
#define TLSR_PROXY_MAX 2048

struct tlsr_proxy_addr {
    /* No addresses to use: a v2 LOCAL command (the balancer's own health check), v1 UNKNOWN,
     * or a family other than TCP over IPv4 or IPv6. The connection's own addresses stand. */
    bool is_local;
    struct sockaddr_storage src; /* the client */
    struct sockaddr_storage dst; /* the address the client connected to */
    socklen_t len;               /* of each */
};

/*
 * Reads the header at the start of data (len bytes, the first bytes of a connection). Returns
 * TLSR_OK with *used its length (1 to TLSR_PROXY_MAX) and *out filled when the header is whole;
 * TLSR_OK with *used 0 when more bytes are needed, and *want the length the header has at least
 * (so a reader may take up to *want bytes without reading past the header); TLSR_E_FORMAT (the
 * reason in tlsr_last_error()) when the bytes are no valid header, TLSR_E_TOOBIG when it is
 * longer than TLSR_PROXY_MAX. Never reads past len.
 */
TLSR_MUST_CHECK tlsr_status tlsr_proxy_parse(const uint8_t *data, size_t len,
                                             struct tlsr_proxy_addr *out, size_t *used,
                                             size_t *want);

#endif
