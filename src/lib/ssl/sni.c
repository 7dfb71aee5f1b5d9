/*
 * server_name extension parser (RFC 6066 §3), for choosing a certificate in the client-hello
 * callback, before OpenSSL decides whether to resume.
 *
 *     struct { NameType name_type; select (name_type) { case host_name: HostName; } name; }
 *         ServerName;                                  NameType: u8, host_name = 0
 *     HostName: opaque <1..2^16-1>                     u16 length, bytes
 *     ServerNameList: ServerName server_name_list<1..2^16-1>   u16 length, entries
 *
 * Threat: the bytes come straight from an unauthenticated peer. The parser reads through the
 * bounded reader, requires the list length to match the extension exactly, accepts only
 * letters, digits, hyphens and dots (no NUL, no trailing dot, 1 to 255 bytes), and takes the
 * first host_name entry; anything else is TLSR_E_FORMAT and the connection gets the default
 * certificate.
 */
#include "sni.h"

#include <stdbool.h>

#include <openssl/ssl.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"

static bool is_host_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

static tlsr_status copy_host(const uint8_t *name, uint16_t len, char out[TLSR_SNI_MAX + 1])
{
    ENSURE(len >= 1 && len <= TLSR_SNI_MAX, TLSR_E_FORMAT, "server_name: %u-byte host name", len);
    ENSURE(name[len - 1] != '.' && name[0] != '.', TLSR_E_FORMAT,
           "server_name: host name starts or ends with a dot");
    for (uint16_t i = 0; i < len; i++) {
        ENSURE(is_host_char(name[i]), TLSR_E_FORMAT,
               "server_name: byte 0x%02x at %u is not allowed in a host name", name[i], i);
        uint8_t c = name[i];
        out[i] = (char)((c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c);
    }
    out[len] = '\0';
    return TLSR_OK;
}

tlsr_status tlsr__sni_parse(const uint8_t *ext, size_t len, char out[TLSR_SNI_MAX + 1])
{
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, ext, len);
    uint16_t list_len;
    TRY(tlsr_rd_u16(&rd, &list_len));
    ENSURE(list_len == tlsr_rd_left(&rd) && list_len > 0, TLSR_E_FORMAT,
           "server_name: list of %u bytes in %zu", list_len, tlsr_rd_left(&rd));
    while (tlsr_rd_left(&rd) > 0) {
        uint8_t type;
        uint16_t name_len;
        const uint8_t *name;
        TRY(tlsr_rd_u8(&rd, &type));
        TRY(tlsr_rd_u16(&rd, &name_len));
        TRY(tlsr_rd_bytes(&rd, name_len, &name));
        if (type == TLSEXT_NAMETYPE_host_name) {
            return copy_host(name, name_len, out);
        }
    }
    return tlsr__err_set(TLSR_E_FORMAT, "server_name: no host_name entry");
}

tlsr_status tlsr_ssl_client_hello_servername(SSL *ssl, char out[TLSR_SNI_MAX + 1])
{
    const unsigned char *ext = NULL;
    size_t len = 0;
    if (SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &ext, &len) != 1) {
        return TLSR_E_NOTFOUND;
    }
    return tlsr__sni_parse(ext, len, out);
}
