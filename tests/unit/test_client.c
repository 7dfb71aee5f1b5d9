/* Unit tests of the client-side session store (src/lib/client), with real sessions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <tlsresume/client.h>

#include "../../src/lib/client/client_int.h"
#include "../lib/helpers.h"

static char dir[] = "/tmp/tlsr-client-XXXXXX";
static char path[256];
static SSL_SESSION *sess12;
static SSL_SESSION *sess13;

static SSL_SESSION *client_session(int version)
{
    SSL_CTX *s = th_server_ctx(version, version, "localhost");
    SSL_CTX *c = th_client_ctx(version, version);
    struct th_result r = th_handshake(s, c, NULL);
    SSL_SESSION *out = r.session;
    r.session = NULL;
    th_result_free(&r);
    SSL_CTX_free(s);
    SSL_CTX_free(c);
    return out;
}

static int setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL) {
        return -1;
    }
    snprintf(path, sizeof(path), "%s/sessions", dir);
    sess12 = client_session(TLS1_2_VERSION);
    sess13 = client_session(TLS1_3_VERSION);
    return sess12 != NULL && sess13 != NULL ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    SSL_SESSION_free(sess12);
    SSL_SESSION_free(sess13);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_text(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_tls12_session_stays_tls13_ticket_is_taken(void **state)
{
    (void)state;
    unlink(path);
    SSL_SESSION *got = NULL;
    assert_int_equal(tlsr_client_session_load(path, "example.com", 443, NULL, &got),
                     TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_client_session_save(path, "example.com", 443, NULL, sess12), TLSR_OK);
    assert_int_equal(tlsr_client_session_save(path, "example.com", 8443, "a.test", sess13),
                     TLSR_OK);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(tlsr_client_session_load(path, "example.com", 443, NULL, &got), TLSR_OK);
        unsigned int n1 = 0;
        unsigned int n2 = 0;
        const unsigned char *id1 = SSL_SESSION_get_id(got, &n1);
        const unsigned char *id2 = SSL_SESSION_get_id(sess12, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(id1, id2, n1);
        SSL_SESSION_free(got);
    }
    /* Keyed by SNI and port too. */
    assert_int_equal(tlsr_client_session_load(path, "example.com", 8443, NULL, &got),
                     TLSR_E_NOTFOUND);
    assert_int_equal(tlsr_client_session_load(path, "example.com", 8443, "a.test", &got), TLSR_OK);
    assert_int_equal(SSL_SESSION_get_protocol_version(got), TLS1_3_VERSION);
    SSL_SESSION_free(got);
    assert_int_equal(tlsr_client_session_load(path, "example.com", 8443, "a.test", &got),
                     TLSR_E_NOTFOUND);
}

static void test_expired_sessions_are_dropped(void **state)
{
    (void)state;
    unlink(path);
    SSL_SESSION *old = SSL_SESSION_dup(sess12);
    SSL_SESSION_set_time(old, (long)time(NULL) - 100000);
    SSL_SESSION_set_timeout(old, 10);
    assert_int_equal(tlsr_client_session_save(path, "old.test", 443, NULL, old), TLSR_OK);
    SSL_SESSION *got = NULL;
    assert_int_equal(tlsr_client_session_load(path, "old.test", 443, NULL, &got), TLSR_E_NOTFOUND);
    SSL_SESSION_free(old);
}

static void test_corrupt_and_foreign_files_are_errors(void **state)
{
    (void)state;
    SSL_SESSION *got = NULL;
    write_text("not ours\n");
    assert_int_equal(tlsr_client_session_load(path, "example.com", 443, NULL, &got), TLSR_E_FORMAT);
    assert_non_null(strstr(tlsr_last_error(), ":1: not a tlsresume session file"));
    write_text("tlsresume-sessions 1\nexample.com 443 - 99999999999 AAAA\n");
    assert_int_equal(tlsr_client_session_load(path, "example.com", 443, NULL, &got), TLSR_E_FORMAT);
    assert_non_null(strstr(tlsr_last_error(), ":2: session does not decode"));
    write_text("tlsresume-sessions 1\nexample.com 99999 - 1 AAAA\n");
    assert_int_equal(tlsr_client_session_save(path, "x.test", 1, NULL, sess12), TLSR_E_FORMAT);
    assert_non_null(strstr(tlsr_last_error(), ":2: number too large"));
    write_text("tlsresume-sessions 1\nexample.com 443 - 5");
    assert_int_equal(tlsr_client_session_load(path, "example.com", 443, NULL, &got), TLSR_E_FORMAT);
    assert_null(got);
    assert_int_equal(tlsr_client_session_save(path, "bad host", 443, NULL, sess12), TLSR_E_INVALID);
}

static void test_parser_rejects_every_truncation(void **state)
{
    (void)state;
    unlink(path);
    assert_int_equal(tlsr_client_session_save(path, "example.com", 443, NULL, sess12), TLSR_OK);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static uint8_t buf[8192];
    size_t len = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    struct client_file cf = {calloc(TLSR_CLIENT_MAX_ENTRIES, sizeof(struct client_entry)), 0};
    assert_int_equal(tlsr__client_parse(buf, len, "f", &cf), TLSR_OK);
    assert_int_equal(cf.n, 1);
    tlsr__client_file_clear(&cf);
    for (size_t cut = 1; cut < len - 1; cut++) {
        tlsr_status rc = tlsr__client_parse(buf, cut, "f", &cf);
        /* A cut right after the header line is an empty, valid file. */
        assert_true(rc == TLSR_E_FORMAT || (rc == TLSR_OK && cf.n == 0));
    }
    free(cf.e);
}

static void test_two_processes_never_lose_sessions(void **state)
{
    (void)state;
    unlink(path);
    enum { PROCS = 3, EACH = 30 };
    pid_t pids[PROCS];
    for (int p = 0; p < PROCS; p++) {
        pids[p] = fork();
        assert_true(pids[p] >= 0);
        if (pids[p] == 0) {
            for (int i = 0; i < EACH; i++) {
                char host[64];
                snprintf(host, sizeof(host), "h%d-%d.test", p, i);
                if (tlsr_client_session_save(path, host, 443, NULL, sess12) != TLSR_OK) {
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    for (int p = 0; p < PROCS; p++) {
        int status = 0;
        assert_int_equal(waitpid(pids[p], &status, 0), pids[p]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    for (int p = 0; p < PROCS; p++) {
        for (int i = 0; i < EACH; i++) {
            char host[64];
            snprintf(host, sizeof(host), "h%d-%d.test", p, i);
            SSL_SESSION *got = NULL;
            assert_int_equal(tlsr_client_session_load(path, host, 443, NULL, &got), TLSR_OK);
            SSL_SESSION_free(got);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls12_session_stays_tls13_ticket_is_taken),
        cmocka_unit_test(test_expired_sessions_are_dropped),
        cmocka_unit_test(test_corrupt_and_foreign_files_are_errors),
        cmocka_unit_test(test_parser_rejects_every_truncation),
        cmocka_unit_test(test_two_processes_never_lose_sessions),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
