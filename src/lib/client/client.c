/*
 * Client-side session store (tlsresume/client.h).
 *
 * File format, version 1 (text, one session per line, fields separated by one space):
 *
 *     tlsresume-sessions 1
 *     <host> <port> <sni or -> <expires, Unix seconds> <base64 of i2d_SSL_SESSION>
 *
 * host and sni are 1 to 255 bytes of letters, digits and ".-_:[]"; port is 1 to 65535. Every
 * change happens under an exclusive flock() on PATH.lock: read the whole file, change it, write
 * PATH.tmp.<pid> (mode 0600), fsync, rename over PATH. Readers never see a half-written file
 * and two writers never lose each other's sessions.
 *
 * Threat: the file is untrusted input (another program, a truncated write of an older version,
 * a foreign file). The parser reads through the bounded reader, checks every field, requires
 * the DER to decode exactly, and rejects the whole file with file:line on the first error;
 * the file is then left untouched. Session secrets in buffers are wiped after use.
 */
#include "client_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../buf/tlsr_buf.h"
#include "../err/tlsr_err.h"
#include "../mem/tlsr_mem.h"

#define HEADER "tlsresume-sessions 1"
#define MAX_DER 16384

static bool is_name_char(uint8_t c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '-' || c == '_' || c == ':' || c == '[' || c == ']';
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    for (size_t i = 0; i < n; i++) {
        if (!is_name_char((uint8_t)s[i])) {
            return false;
        }
    }
    return n >= 1 && n <= CLIENT_HOST_MAX;
}

/* Reads one space-terminated (or last) field of a line. */
static tlsr_status field(struct tlsr_rd *line, bool is_last, const uint8_t **out, size_t *len)
{
    if (is_last) {
        tlsr_rd_rest(line, out, len);
        return TLSR_OK;
    }
    return tlsr_rd_until(line, ' ', out, len);
}

static tlsr_status parse_name(const uint8_t *p, size_t len, bool allow_dash, char *out)
{
    ENSURE(len >= 1 && len <= CLIENT_HOST_MAX, TLSR_E_FORMAT, "name of %zu bytes", len);
    for (size_t i = 0; i < len; i++) {
        ENSURE(is_name_char(p[i]) || (allow_dash && len == 1 && p[i] == '-'), TLSR_E_FORMAT,
               "byte 0x%02x not allowed in a name", p[i]);
        out[i] = (char)p[i];
    }
    out[len] = '\0';
    if (allow_dash && len == 1 && p[0] == '-') {
        out[0] = '\0';
    }
    return TLSR_OK;
}

static tlsr_status parse_number(const uint8_t *p, size_t len, uint64_t max, uint64_t *out)
{
    ENSURE(len >= 1 && len <= 20, TLSR_E_FORMAT, "number of %zu digits", len);
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        ENSURE(p[i] >= '0' && p[i] <= '9', TLSR_E_FORMAT, "not a number");
        ENSURE(v <= (max - (uint64_t)(p[i] - '0')) / 10, TLSR_E_FORMAT, "number too large");
        v = v * 10 + (uint64_t)(p[i] - '0');
    }
    *out = v;
    return TLSR_OK;
}

static tlsr_status parse_session(const uint8_t *b64, size_t len, SSL_SESSION **out)
{
    uint8_t der[MAX_DER];
    size_t der_len = 0;
    TRY(tlsr__b64_decode(b64, len, der, sizeof(der), &der_len));
    const unsigned char *p = der;
    SSL_SESSION *s = d2i_SSL_SESSION(NULL, &p, (long)der_len);
    size_t used = (size_t)(p - der);
    OPENSSL_cleanse(der, sizeof(der));
    if (s == NULL || used != der_len) {
        SSL_SESSION_free(s);
        return tlsr__err_set(TLSR_E_FORMAT, "session does not decode");
    }
    *out = s;
    return TLSR_OK;
}

static tlsr_status parse_line(struct tlsr_rd *line, struct client_entry *e)
{
    const uint8_t *p;
    size_t len;
    uint64_t v = 0;
    TRY(field(line, false, &p, &len));
    TRY(parse_name(p, len, false, e->host));
    TRY(field(line, false, &p, &len));
    TRY(parse_number(p, len, 65535, &v));
    ENSURE(v >= 1, TLSR_E_FORMAT, "port 0");
    e->port = (uint16_t)v;
    TRY(field(line, false, &p, &len));
    TRY(parse_name(p, len, true, e->sni));
    TRY(field(line, false, &p, &len));
    TRY(parse_number(p, len, UINT64_MAX, &e->expires_s));
    TRY(field(line, true, &p, &len));
    return parse_session(p, len, &e->sess);
}

tlsr_status tlsr__client_parse(const uint8_t *data, size_t len, const char *name,
                               struct client_file *f)
{
    struct tlsr_rd rd;
    tlsr_rd_init(&rd, data, len);
    const uint8_t *p;
    size_t n;
    if (tlsr_rd_until(&rd, '\n', &p, &n) != TLSR_OK || n != strlen(HEADER) ||
        memcmp(p, HEADER, n) != 0) {
        return tlsr__err_set(TLSR_E_FORMAT, "%s:1: not a tlsresume session file", name);
    }
    for (unsigned line_no = 2; tlsr_rd_left(&rd) > 0; line_no++) {
        struct tlsr_rd line;
        tlsr_status rc = TLSR_E_FORMAT;
        if (f->n >= TLSR_CLIENT_MAX_ENTRIES) {
            tlsr__err_set(rc, "more than %d sessions", TLSR_CLIENT_MAX_ENTRIES);
        } else if ((rc = tlsr_rd_until(&rd, '\n', &p, &n)) == TLSR_OK) {
            tlsr_rd_init(&line, p, n);
            memset(&f->e[f->n], 0, sizeof(f->e[f->n]));
            rc = parse_line(&line, &f->e[f->n]);
        }
        if (rc != TLSR_OK) {
            char why[256];
            snprintf(why, sizeof(why), "%s", tlsr_last_error());
            tlsr__client_file_clear(f);
            return tlsr__err_set(TLSR_E_FORMAT, "%s:%u: %s", name, line_no, why);
        }
        f->n++;
    }
    return TLSR_OK;
}

void tlsr__client_file_clear(struct client_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        SSL_SESSION_free(f->e[i].sess);
    }
    f->n = 0;
}

/* Takes the lock on path.lock; returns its descriptor. */
static tlsr_status lock_file(const char *path, int *fd_out)
{
    char lock[4096];
    int n = snprintf(lock, sizeof(lock), "%s.lock", path);
    ENSURE(n > 0 && (size_t)n < sizeof(lock), TLSR_E_INVALID, "%s: path too long", path);
    int fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        return tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s", lock);
    }
    if (flock(fd, LOCK_EX) != 0) {
        int e = errno;
        close(fd);
        return tlsr__err_sys(TLSR_E_SYSTEM, e, "%s: lock", lock);
    }
    *fd_out = fd;
    return TLSR_OK;
}

/* Reads and parses path (a missing file is empty). */
static tlsr_status read_file(const char *path, struct client_file *f)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return errno == ENOENT ? TLSR_OK : tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s", path);
    }
    struct stat st;
    tlsr_status rc = TLSR_OK;
    uint8_t *buf = NULL;
    if (fstat(fd, &st) != 0 || st.st_size < 0 || st.st_size > TLSR_CLIENT_MAX_FILE) {
        rc = tlsr__err_set(TLSR_E_FORMAT, "%s: not a file of at most %d bytes", path,
                           TLSR_CLIENT_MAX_FILE);
        goto out;
    }
    size_t size = (size_t)st.st_size;
    buf = tlsr__malloc(size + 1);
    if (buf == NULL) {
        rc = tlsr__err_set(TLSR_E_NOMEM, "%s: out of memory", path);
        goto out;
    }
    size_t got = 0;
    while (got < size) {
        ssize_t r = read(fd, buf + got, size - got);
        if (r <= 0) {
            rc = tlsr__err_sys(TLSR_E_SYSTEM, r < 0 ? errno : EIO, "%s: read", path);
            goto out;
        }
        got += (size_t)r;
    }
    rc = tlsr__client_parse(buf, size, path, f);
out:
    if (buf != NULL) {
        OPENSSL_cleanse(buf, st.st_size > 0 ? (size_t)st.st_size : 0);
        tlsr__free(buf);
    }
    close(fd);
    return rc;
}

static tlsr_status write_all(int fd, const char *data, size_t len, const char *tmp)
{
    while (len > 0) {
        ssize_t w = write(fd, data, len);
        if (w <= 0) {
            return tlsr__err_sys(TLSR_E_SYSTEM, w < 0 ? errno : EIO, "%s: write", tmp);
        }
        data += w;
        len -= (size_t)w;
    }
    return TLSR_OK;
}

/* Writes one entry as a line into fd. */
static tlsr_status write_entry(int fd, const struct client_entry *e, const char *tmp)
{
    char b64[MAX_DER / 3 * 4 + 8];
    uint8_t der[MAX_DER];
    int der_len = i2d_SSL_SESSION(e->sess, NULL);
    ENSURE(der_len > 0 && der_len <= MAX_DER, TLSR_E_INVALID, "session of %d bytes", der_len);
    unsigned char *p = der;
    i2d_SSL_SESSION(e->sess, &p);
    int n = EVP_EncodeBlock((unsigned char *)b64, der, der_len);
    OPENSSL_cleanse(der, sizeof(der));
    char head[CLIENT_HOST_MAX * 2 + 64];
    int h = snprintf(head, sizeof(head), "%s %u %s %llu ", e->host, e->port,
                     e->sni[0] ? e->sni : "-", (unsigned long long)e->expires_s);
    tlsr_status rc = write_all(fd, head, (size_t)h, tmp);
    if (rc == TLSR_OK) {
        rc = write_all(fd, b64, (size_t)n, tmp);
    }
    if (rc == TLSR_OK) {
        rc = write_all(fd, "\n", 1, tmp);
    }
    OPENSSL_cleanse(b64, sizeof(b64));
    return rc;
}

/* Writes f to path atomically: a temporary file, fsync, rename. */
static tlsr_status write_file(const char *path, const struct client_file *f)
{
    char tmp[4096];
    int n = snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid());
    ENSURE(n > 0 && (size_t)n < sizeof(tmp), TLSR_E_INVALID, "%s: path too long", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
        return tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s", tmp);
    }
    tlsr_status rc = write_all(fd, HEADER "\n", strlen(HEADER) + 1, tmp);
    for (size_t i = 0; i < f->n && rc == TLSR_OK; i++) {
        rc = write_entry(fd, &f->e[i], tmp);
    }
    if (rc == TLSR_OK && fsync(fd) != 0) {
        rc = tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s: fsync", tmp);
    }
    close(fd);
    if (rc == TLSR_OK && rename(tmp, path) != 0) {
        rc = tlsr__err_sys(TLSR_E_SYSTEM, errno, "%s: rename", path);
    }
    if (rc != TLSR_OK) {
        unlink(tmp);
    }
    return rc;
}

static bool same_key(const struct client_entry *e, const char *host, uint16_t port, const char *sni)
{
    return e->port == port && strcmp(e->host, host) == 0 && strcmp(e->sni, sni) == 0;
}

static void drop(struct client_file *f, size_t i)
{
    SSL_SESSION_free(f->e[i].sess);
    memmove(&f->e[i], &f->e[i + 1], (f->n - i - 1) * sizeof(f->e[0]));
    f->n--;
}

/* Drops expired entries; true when any went. */
static bool drop_expired(struct client_file *f, uint64_t now)
{
    bool is_changed = false;
    for (size_t i = f->n; i-- > 0;) {
        if (f->e[i].expires_s <= now) {
            drop(f, i);
            is_changed = true;
        }
    }
    return is_changed;
}

static uint64_t expiry_of(const SSL_SESSION *s)
{
    uint64_t t = (uint64_t)SSL_SESSION_get_time(s);
    unsigned long hint = SSL_SESSION_get_ticket_lifetime_hint(s);
    long timeout = SSL_SESSION_get_timeout(s);
    uint64_t life = hint > 0 ? hint : (timeout > 0 ? (uint64_t)timeout : 0);
    return t + life;
}

/* Opens the store: lock, then read. On success the caller unlocks with close(*lock_fd). */
static tlsr_status open_store(const char *path, int *lock_fd, struct client_file *f)
{
    f->n = 0;
    f->e = tlsr__calloc(TLSR_CLIENT_MAX_ENTRIES + 1, sizeof(*f->e));
    ENSURE(f->e != NULL, TLSR_E_NOMEM, "session store: out of memory");
    tlsr_status rc = lock_file(path, lock_fd);
    if (rc == TLSR_OK) {
        rc = read_file(path, f);
        if (rc != TLSR_OK) {
            close(*lock_fd);
        }
    }
    if (rc != TLSR_OK) {
        tlsr__free(f->e);
        f->e = NULL;
    }
    return rc;
}

static void close_store(int lock_fd, struct client_file *f)
{
    tlsr__client_file_clear(f);
    tlsr__free(f->e);
    close(lock_fd);
}

tlsr_status tlsr_client_session_save(const char *path, const char *host, uint16_t port,
                                     const char *sni, const SSL_SESSION *sess)
{
    sni = sni != NULL ? sni : "";
    ENSURE(path != NULL && host != NULL && sess != NULL && name_ok(host) &&
               (sni[0] == '\0' || name_ok(sni)) && port != 0,
           TLSR_E_INVALID, "session store: bad host, port or SNI");
    ENSURE(SSL_SESSION_is_resumable(sess) == 1, TLSR_E_INVALID,
           "session store: the session is not resumable");
    int lock_fd = -1;
    struct client_file f;
    TRY(open_store(path, &lock_fd, &f));
    uint64_t now = (uint64_t)time(NULL);
    drop_expired(&f, now);
    size_t same = 0;
    for (size_t i = f.n; i-- > 0;) {
        if (same_key(&f.e[i], host, port, sni) && ++same >= TLSR_CLIENT_MAX_PER_KEY) {
            drop(&f, i);
        }
    }
    if (f.n >= TLSR_CLIENT_MAX_ENTRIES) {
        drop(&f, 0);
    }
    struct client_entry *e = &f.e[f.n];
    memset(e, 0, sizeof(*e));
    snprintf(e->host, sizeof(e->host), "%s", host);
    snprintf(e->sni, sizeof(e->sni), "%s", sni);
    e->port = port;
    e->expires_s = expiry_of(sess);
    e->sess = (SSL_SESSION *)sess;
    SSL_SESSION_up_ref(e->sess);
    f.n++;
    tlsr_status rc = write_file(path, &f);
    close_store(lock_fd, &f);
    return rc;
}

tlsr_status tlsr_client_session_load(const char *path, const char *host, uint16_t port,
                                     const char *sni, SSL_SESSION **out)
{
    sni = sni != NULL ? sni : "";
    ENSURE(path != NULL && host != NULL && out != NULL, TLSR_E_INVALID,
           "session store: NULL argument");
    *out = NULL;
    if (access(path, F_OK) != 0) {
        return TLSR_E_NOTFOUND;
    }
    int lock_fd = -1;
    struct client_file f;
    TRY(open_store(path, &lock_fd, &f));
    bool is_changed = drop_expired(&f, (uint64_t)time(NULL));
    size_t best = f.n;
    for (size_t i = 0; i < f.n; i++) {
        if (same_key(&f.e[i], host, port, sni) &&
            (best == f.n ||
             SSL_SESSION_get_time(f.e[i].sess) >= SSL_SESSION_get_time(f.e[best].sess))) {
            best = i;
        }
    }
    tlsr_status rc = TLSR_E_NOTFOUND;
    if (best < f.n) {
        *out = f.e[best].sess;
        SSL_SESSION_up_ref(*out);
        rc = TLSR_OK;
        if (SSL_SESSION_get_protocol_version(*out) == TLS1_3_VERSION) {
            drop(&f, best);
            is_changed = true;
        }
    }
    if (is_changed) {
        tlsr_status wrc = write_file(path, &f);
        if (wrc != TLSR_OK && rc == TLSR_OK) {
            SSL_SESSION_free(*out);
            *out = NULL;
            rc = wrc;
        }
    }
    close_store(lock_fd, &f);
    return rc;
}

bool tlsr_client_same_ticket(const SSL_SESSION *a, const SSL_SESSION *b)
{
    const unsigned char *ta = NULL;
    const unsigned char *tb = NULL;
    size_t la = 0;
    size_t lb = 0;
    if (a == NULL || b == NULL) {
        return false;
    }
    SSL_SESSION_get0_ticket(a, &ta, &la);
    SSL_SESSION_get0_ticket(b, &tb, &lb);
    return la == lb && la > 0 && CRYPTO_memcmp(ta, tb, la) == 0;
}
