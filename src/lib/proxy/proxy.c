/*
 * The PROXY protocol header (see tlsresume/proxy.h; HAProxy's proxy-protocol.txt).
 *
 *     v1   "PROXY " ("TCP4" | "TCP6") " " src " " dst " " sport " " dport "\r\n", or
 *          "PROXY UNKNOWN" ... "\r\n"; at most 107 bytes in all (§2.1)
 *     v2   sig(12) = 0D 0A 0D 0A 00 0D 0A 51 55 49 54 0A | ver_cmd(1): 0x20 LOCAL, 0x21 PROXY |
 *          fam(1): 0x11 TCP/IPv4, 0x21 TCP/IPv6, others without addresses we use | len(u16) |
 *          addresses (IPv4: src(4) dst(4) sport(2) dport(2); IPv6: 16, 16, 2, 2) | TLVs,
 *          skipped (§2.2)
 *
 * Every byte goes through the bounded reader; the text form is checked token by token (one
 * space between them, addresses by inet_pton, ports 0 to 65535 in decimal). Threat: a peer
 * that sends anything: a header cut anywhere (more bytes are asked for, never guessed), a
 * length that runs past what was received, a v1 line without its end (refused at 107 bytes),
 * bytes that are TLS instead (refused at once: accept_proxy without a balancer).
 */
#include <tlsresume/proxy.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"

#define V1_MAX 107
#define V2_HEAD 16

static const uint8_t v2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                   0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* The next space-separated token of a v1 line (into out, NUL-terminated). */
static tlsr_status token(struct tlsr_rd *rd, char *out, size_t cap, bool is_last)
{
    const uint8_t *p = NULL;
    size_t n = 0;
    if (is_last) {
        tlsr_rd_rest(rd, &p, &n);
    } else {
        ENSURE(tlsr_rd_until(rd, ' ', &p, &n) == TLSR_OK, TLSR_E_FORMAT,
               "PROXY v1: too few fields");
    }
    ENSURE(n > 0 && n < cap && memchr(p, ' ', n) == NULL, TLSR_E_FORMAT,
           "PROXY v1: an empty or overlong field");
    memcpy(out, p, n);
    out[n] = '\0';
    return TLSR_OK;
}

static tlsr_status port_of(const char *text, uint16_t *out)
{
    size_t n = strlen(text);
    ENSURE(n >= 1 && n <= 5 && strspn(text, "0123456789") == n && (text[0] != '0' || n == 1),
           TLSR_E_FORMAT, "PROXY v1: port '%s'", text);
    unsigned long v = 0;
    for (size_t i = 0; i < n; i++) {
        v = v * 10 + (unsigned long)(text[i] - '0');
    }
    ENSURE(v <= 65535, TLSR_E_FORMAT, "PROXY v1: port %lu", v);
    *out = htons((uint16_t)v);
    return TLSR_OK;
}

static tlsr_status v1_addresses(struct tlsr_rd *rd, bool is_v6, struct tlsr_proxy_addr *out)
{
    char src[INET6_ADDRSTRLEN];
    char dst[INET6_ADDRSTRLEN];
    char sport[8];
    char dport[8];
    TRY(token(rd, src, sizeof(src), false));
    TRY(token(rd, dst, sizeof(dst), false));
    TRY(token(rd, sport, sizeof(sport), false));
    TRY(token(rd, dport, sizeof(dport), true));
    memset(out, 0, sizeof(*out));
    if (is_v6) {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        ENSURE(inet_pton(AF_INET6, src, &s->sin6_addr) == 1 &&
                   inet_pton(AF_INET6, dst, &d->sin6_addr) == 1,
               TLSR_E_FORMAT, "PROXY v1: not IPv6 addresses");
        TRY(port_of(sport, &s->sin6_port));
        TRY(port_of(dport, &d->sin6_port));
        out->len = sizeof(struct sockaddr_in6);
    } else {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        ENSURE(inet_pton(AF_INET, src, &s->sin_addr) == 1 &&
                   inet_pton(AF_INET, dst, &d->sin_addr) == 1,
               TLSR_E_FORMAT, "PROXY v1: not IPv4 addresses");
        TRY(port_of(sport, &s->sin_port));
        TRY(port_of(dport, &d->sin_port));
        out->len = sizeof(struct sockaddr_in);
    }
    return TLSR_OK;
}

static tlsr_status parse_v1(const uint8_t *data, size_t len, struct tlsr_proxy_addr *out,
                            size_t *used, size_t *want)
{
    size_t scan = len < V1_MAX ? len : V1_MAX;
    const uint8_t *lf = memchr(data, '\n', scan);
    if (lf == NULL) {
        ENSURE(len < V1_MAX, TLSR_E_FORMAT, "PROXY v1: no line end within %d bytes", V1_MAX);
        *want = len + 1;
        return TLSR_OK;
    }
    size_t line_len = (size_t)(lf - data) + 1;
    ENSURE(line_len >= 8 && data[line_len - 2] == '\r', TLSR_E_FORMAT,
           "PROXY v1: the line does not end with CRLF");
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, data + 6, line_len - 8); /* after "PROXY ", before CRLF */
    char proto[8];
    const uint8_t *p = NULL;
    size_t n = 0;
    if (tlsr_rd_until(&rd, ' ', &p, &n) != TLSR_OK) {
        tlsr_rd_rest(&rd, &p, &n);
    }
    ENSURE(n > 0 && n < sizeof(proto), TLSR_E_FORMAT, "PROXY v1: no protocol");
    memcpy(proto, p, n);
    proto[n] = '\0';
    if (strcmp(proto, "UNKNOWN") == 0) {
        memset(out, 0, sizeof(*out));
        out->is_local = true;
    } else {
        ENSURE(strcmp(proto, "TCP4") == 0 || strcmp(proto, "TCP6") == 0, TLSR_E_FORMAT,
               "PROXY v1: protocol '%s'", proto);
        TRY(v1_addresses(&rd, proto[3] == '6', out));
    }
    *used = line_len;
    return TLSR_OK;
}

static tlsr_status v2_addresses(struct tlsr_rd *rd, uint8_t fam, struct tlsr_proxy_addr *out)
{
    memset(out, 0, sizeof(*out));
    const uint8_t *src = NULL;
    const uint8_t *dst = NULL;
    const uint8_t *sport = NULL;
    const uint8_t *dport = NULL;
    size_t alen = fam == 0x11 ? 4 : 16;
    ENSURE(tlsr_rd_bytes(rd, alen, &src) == TLSR_OK && tlsr_rd_bytes(rd, alen, &dst) == TLSR_OK &&
               tlsr_rd_bytes(rd, 2, &sport) == TLSR_OK && tlsr_rd_bytes(rd, 2, &dport) == TLSR_OK,
           TLSR_E_FORMAT, "PROXY v2: the address block is shorter than its family's");
    if (fam == 0x11) {
        struct sockaddr_in *s = (struct sockaddr_in *)&out->src;
        struct sockaddr_in *d = (struct sockaddr_in *)&out->dst;
        s->sin_family = d->sin_family = AF_INET;
        memcpy(&s->sin_addr, src, 4);
        memcpy(&d->sin_addr, dst, 4);
        memcpy(&s->sin_port, sport, 2);
        memcpy(&d->sin_port, dport, 2);
        out->len = sizeof(struct sockaddr_in);
    } else {
        struct sockaddr_in6 *s = (struct sockaddr_in6 *)&out->src;
        struct sockaddr_in6 *d = (struct sockaddr_in6 *)&out->dst;
        s->sin6_family = d->sin6_family = AF_INET6;
        memcpy(&s->sin6_addr, src, 16);
        memcpy(&d->sin6_addr, dst, 16);
        memcpy(&s->sin6_port, sport, 2);
        memcpy(&d->sin6_port, dport, 2);
        out->len = sizeof(struct sockaddr_in6);
    }
    return TLSR_OK;
}

static tlsr_status parse_v2(const uint8_t *data, size_t len, struct tlsr_proxy_addr *out,
                            size_t *used, size_t *want)
{
    if (len < V2_HEAD) {
        *want = V2_HEAD;
        return TLSR_OK;
    }
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, data + sizeof(v2_sig), len - sizeof(v2_sig));
    uint8_t ver_cmd = 0;
    uint8_t fam = 0;
    uint16_t body = 0;
    ENSURE(tlsr_rd_u8(&rd, &ver_cmd) == TLSR_OK && tlsr_rd_u8(&rd, &fam) == TLSR_OK &&
               tlsr_rd_u16(&rd, &body) == TLSR_OK,
           TLSR_E_FORMAT, "PROXY v2: short header");
    ENSURE((ver_cmd & 0xF0) == 0x20, TLSR_E_FORMAT, "PROXY v2: version %u", ver_cmd >> 4);
    ENSURE((ver_cmd & 0x0F) <= 1, TLSR_E_FORMAT, "PROXY v2: command %u", ver_cmd & 0x0F);
    ENSURE((size_t)body <= TLSR_PROXY_MAX - V2_HEAD, TLSR_E_TOOBIG,
           "PROXY v2: a header of %u bytes (at most %d)", (unsigned)body + V2_HEAD, TLSR_PROXY_MAX);
    size_t total = V2_HEAD + (size_t)body;
    if (len < total) {
        *want = total;
        return TLSR_OK;
    }
    struct tlsr_rd block;
    tlsr_rd_init(&block, data + V2_HEAD, body);
    bool is_proxy = (ver_cmd & 0x0F) == 1;
    if (is_proxy && (fam == 0x11 || fam == 0x21)) {
        TRY(v2_addresses(&block, fam, out));
    } else {
        /* LOCAL, or a family whose addresses a TCP proxy cannot use: the TLVs are skipped. */
        memset(out, 0, sizeof(*out));
        out->is_local = true;
    }
    *used = total;
    return TLSR_OK;
}

tlsr_status tlsr_proxy_parse(const uint8_t *data, size_t len, struct tlsr_proxy_addr *out,
                             size_t *used, size_t *want)
{
    ENSURE(data != NULL && out != NULL && used != NULL && want != NULL, TLSR_E_INVALID,
           "PROXY: NULL argument");
    *used = 0;
    *want = 0;
    if (len == 0) {
        *want = 8; /* no header is shorter */
        return TLSR_OK;
    }
    size_t n = len < sizeof(v2_sig) ? len : sizeof(v2_sig);
    if (n > 0 && memcmp(data, v2_sig, n) == 0) {
        if (len < sizeof(v2_sig)) {
            *want = V2_HEAD;
            return TLSR_OK;
        }
        return parse_v2(data, len, out, used, want);
    }
    static const char v1_sig[] = "PROXY ";
    n = len < 6 ? len : 6;
    ENSURE(n > 0 && memcmp(data, v1_sig, n) == 0, TLSR_E_FORMAT,
           "no PROXY header (the first byte is 0x%02x%s)", len > 0 ? data[0] : 0,
           len > 0 && data[0] == 0x16 ? ": TLS, from a client that is not the balancer" : "");
    if (len < 6) {
        *want = 6;
        return TLSR_OK;
    }
    return parse_v1(data, len, out, used, want);
}
