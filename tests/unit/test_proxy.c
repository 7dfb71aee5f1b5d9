/* Unit tests of the PROXY protocol header parser (src/lib/proxy/proxy.c): both versions as
 * HAProxy's proxy-protocol.txt writes them, headers arriving in pieces, and bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <tlsresume/proxy.h>

static const uint8_t v2_ipv4[] = {0x0D,
                                  0x0A,
                                  0x0D,
                                  0x0A,
                                  0x00,
                                  0x0D,
                                  0x0A,
                                  0x51,
                                  0x55,
                                  0x49,
                                  0x54,
                                  0x0A,
                                  0x21,
                                  0x11,
                                  0x00,
                                  0x10,
                                  192,
                                  0,
                                  2,
                                  1,
                                  198,
                                  51,
                                  100,
                                  2,
                                  0xDC,
                                  0x04,
                                  0x01,
                                  0xBB,
                                  /* a TLV (type 0x03, 1 byte) to skip */ 0x03,
                                  0x00,
                                  0x01,
                                  0x7F};

static void test_v1(void **state)
{
    (void)state;
    static const char line[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n\x16\x03";
    struct tlsr_proxy_addr a;
    size_t used = 0;
    size_t want = 0;
    assert_int_equal(tlsr_proxy_parse((const uint8_t *)line, sizeof(line) - 1, &a, &used, &want),
                     TLSR_OK);
    assert_int_equal(used, sizeof(line) - 1 - 2); /* the TLS bytes behind it are not taken */
    assert_false(a.is_local);
    const struct sockaddr_in *s = (const struct sockaddr_in *)&a.src;
    const struct sockaddr_in *d = (const struct sockaddr_in *)&a.dst;
    assert_int_equal(s->sin_family, AF_INET);
    assert_int_equal(ntohs(s->sin_port), 56324);
    assert_int_equal(ntohs(d->sin_port), 443);
    assert_int_equal(ntohl(s->sin_addr.s_addr), 0xC0000201u);

    static const char six[] = "PROXY TCP6 2001:db8::1 2001:db8::2 1 65535\r\n";
    assert_int_equal(tlsr_proxy_parse((const uint8_t *)six, sizeof(six) - 1, &a, &used, &want),
                     TLSR_OK);
    assert_int_equal(used, sizeof(six) - 1);
    assert_int_equal(a.src.ss_family, AF_INET6);
    assert_int_equal(ntohs(((const struct sockaddr_in6 *)&a.dst)->sin6_port), 65535);

    static const char unknown[] = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    assert_int_equal(
        tlsr_proxy_parse((const uint8_t *)unknown, sizeof(unknown) - 1, &a, &used, &want), TLSR_OK);
    assert_true(a.is_local);
}

static void test_v2(void **state)
{
    (void)state;
    struct tlsr_proxy_addr a;
    size_t used = 0;
    size_t want = 0;
    assert_int_equal(tlsr_proxy_parse(v2_ipv4, sizeof(v2_ipv4), &a, &used, &want), TLSR_OK);
    assert_int_equal(used, sizeof(v2_ipv4));
    assert_false(a.is_local);
    assert_int_equal(ntohs(((const struct sockaddr_in *)&a.src)->sin_port), 56324);
    /* LOCAL (a health check), and AF_UNIX: no addresses to use. */
    uint8_t local[16];
    memcpy(local, v2_ipv4, 12);
    local[12] = 0x20;
    local[13] = 0x00;
    local[14] = 0;
    local[15] = 0;
    assert_int_equal(tlsr_proxy_parse(local, sizeof(local), &a, &used, &want), TLSR_OK);
    assert_int_equal(used, 16);
    assert_true(a.is_local);
}

/* Every prefix asks for more, and never for more than the header: a reader that takes up to
 * `want` bytes never eats the TLS bytes behind it. */
static void test_pieces(void **state)
{
    (void)state;
    static const char line[] = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    const uint8_t *inputs[] = {v2_ipv4, (const uint8_t *)line};
    size_t lens[] = {sizeof(v2_ipv4), sizeof(line) - 1};
    for (size_t k = 0; k < 2; k++) {
        for (size_t n = 0; n < lens[k]; n++) {
            struct tlsr_proxy_addr a;
            size_t used = 1;
            size_t want = 0;
            assert_int_equal(tlsr_proxy_parse(inputs[k], n, &a, &used, &want), TLSR_OK);
            assert_int_equal(used, 0);
            assert_true(want > n && want <= lens[k]);
        }
    }
}

static void test_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "\x16\x03\x01\x02\x00\x01\x00",           /* TLS: no balancer */
        "PROXY TCP5 1.2.3.4 1.2.3.5 1 2\r\n",     /* protocol */
        "PROXY TCP4 1.2.3.4 1.2.3.5 1 65536\r\n", /* port range */
        "PROXY TCP4 1.2.3.4 1.2.3.5 01 2\r\n",    /* leading zero */
        "PROXY TCP4 1.2.3.4  1.2.3.5 1 2\r\n",    /* two spaces */
        "PROXY TCP4 1.2.3.4 1.2.3.5 1 2\n",       /* no CR */
        "PROXY TCP4 1.2.3.4 1.2.3.5 1\r\n",       /* a field short */
        "PROXY TCP6 1.2.3.4 1.2.3.5 1 2\r\n",     /* family and addresses */
        "GET / HTTP/1.1\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct tlsr_proxy_addr a;
        size_t used = 0;
        size_t want = 0;
        assert_int_equal(
            tlsr_proxy_parse((const uint8_t *)bad[i], strlen(bad[i]), &a, &used, &want),
            TLSR_E_FORMAT);
    }
    /* A v1 line that never ends: refused at 107 bytes, not waited for. */
    char endless[200];
    memset(endless, 'x', sizeof(endless));
    memcpy(endless, "PROXY ", 6);
    struct tlsr_proxy_addr a;
    size_t used = 0;
    size_t want = 0;
    assert_int_equal(tlsr_proxy_parse((const uint8_t *)endless, sizeof(endless), &a, &used, &want),
                     TLSR_E_FORMAT);
    /* v2: a version other than 2, a command other than LOCAL or PROXY, a length too long. */
    uint8_t v2[sizeof(v2_ipv4)];
    memcpy(v2, v2_ipv4, sizeof(v2));
    v2[12] = 0x11;
    assert_int_equal(tlsr_proxy_parse(v2, sizeof(v2), &a, &used, &want), TLSR_E_FORMAT);
    v2[12] = 0x22;
    assert_int_equal(tlsr_proxy_parse(v2, sizeof(v2), &a, &used, &want), TLSR_E_FORMAT);
    v2[12] = 0x21;
    v2[14] = 0xFF;
    assert_int_equal(tlsr_proxy_parse(v2, sizeof(v2), &a, &used, &want), TLSR_E_TOOBIG);
    /* An address block shorter than its family's. */
    memcpy(v2, v2_ipv4, sizeof(v2));
    v2[15] = 4;
    assert_int_equal(tlsr_proxy_parse(v2, 20, &a, &used, &want), TLSR_E_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v1),
        cmocka_unit_test(test_v2),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_bad),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
