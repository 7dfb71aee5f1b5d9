/* Words of a command line or config file (see cli.h): numbers, units, yes/no, addresses. */
#include "cli.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

bool cli_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

bool cli_scaled(const char *text, const char *units, const uint64_t *mult, uint64_t *out)
{
    char num[24];
    size_t n = text != NULL ? strlen(text) : 0;
    if (n == 0 || n >= sizeof(num)) {
        return false;
    }
    memcpy(num, text, n + 1);
    uint64_t m = 1;
    const char *u = strchr(units, num[n - 1]);
    if (u != NULL && num[n - 1] != '\0') {
        m = mult[u - units];
        num[n - 1] = '\0';
    }
    uint64_t v = 0;
    if (!cli_uint(num, 0, UINT64_MAX / m, &v)) {
        return false;
    }
    *out = v * m;
    return true;
}

bool cli_duration(const char *text, uint64_t min_s, uint64_t max_s, uint64_t *out)
{
    static const uint64_t mult[] = {1, 60, 3600, 86400};
    uint64_t v = 0;
    if (!cli_scaled(text, "smhd", mult, &v) || v < min_s || v > max_s) {
        return false;
    }
    *out = v;
    return true;
}

bool cli_bool(const char *text, bool *out)
{
    static const char *const yes[] = {"yes", "true", "on", "1"};
    static const char *const no[] = {"no", "false", "off", "0"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(text, yes[i]) == 0) {
            *out = true;
            return true;
        }
        if (strcasecmp(text, no[i]) == 0) {
            *out = false;
            return true;
        }
    }
    return false;
}

bool cli_resolve(const char *text, struct sockaddr_storage *out, socklen_t *out_len, char *why,
                 size_t cap)
{
    char host[256];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon == text || colon[1] == '\0') {
        snprintf(why, cap, "expected host:port, like 127.0.0.1:8443 or [::1]:8443");
        return false;
    }
    uint64_t port = 0;
    if (!cli_uint(colon + 1, 1, 65535, &port)) {
        snprintf(why, cap, "port '%.16s': expected 1 to 65535", colon + 1);
        return false;
    }
    size_t hlen = (size_t)(colon - text);
    if (text[0] == '[' && hlen >= 2 && text[hlen - 1] == ']') {
        text++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host)) {
        snprintf(why, cap, "host too long");
        return false;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    struct addrinfo hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(host, colon + 1, &hints, &res);
    if (rc != 0) {
        snprintf(why, cap, "cannot resolve '%.100s' port '%.16s': %s", host, colon + 1,
                 gai_strerror(rc));
        return false;
    }
    if (out != NULL) {
        memcpy(out, res->ai_addr, res->ai_addrlen);
        *out_len = res->ai_addrlen;
    }
    freeaddrinfo(res);
    return true;
}

void cli_hex(const uint8_t *in, size_t n, char *out)
{
    out[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        snprintf(out + 2 * i, 3, "%02x", in[i]);
    }
}

void cli_join(const char *first, size_t stride, size_t n, char *out, size_t cap)
{
    out[0] = '\0';
    size_t used = 0;
    for (size_t i = 0; i < n && used < cap; i++) {
        int w = snprintf(out + used, cap - used, "%s%s", i ? "," : "", first + i * stride);
        used += w > 0 ? (size_t)w : 0;
    }
}
