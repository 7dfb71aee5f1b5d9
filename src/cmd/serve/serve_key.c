/*
 * Private keys (see serve_key.h). OpenSSL asks for a pass phrase through a callback, and its
 * default callback reads the terminal: the master would block there (at start and at every
 * reload, losing signals meanwhile). Every read here passes a callback of its own, which hands
 * over the pass phrases of key_password_file one by one (each line, as nginx's
 * ssl_password_file) and otherwise answers "none", so an encrypted key without its pass phrase
 * fails at once with a message naming the file.
 *
 * The pass phrases live in locked memory kept out of core dumps, wiped before it is unmapped.
 */
#include "serve_key.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>

enum { PHRASES_MAX = 16 * 1024, KEY_FILE_MAX = 1024 * 1024 };

struct phrases {
    char text[PHRASES_MAX]; /* the file, lines ended by NUL instead of newline */
    size_t len;
    const char *next; /* the pass phrase the callback hands out, or NULL: none */
    bool was_asked;   /* the key is encrypted */
};

static int on_password(char *buf, int size, int rwflag, void *arg)
{
    (void)rwflag;
    struct phrases *p = arg;
    p->was_asked = true;
    if (p->next == NULL) {
        return -1;
    }
    size_t n = strlen(p->next);
    if (n > (size_t)size) {
        return -1;
    }
    memcpy(buf, p->next, n);
    return (int)n;
}

static bool read_phrases(const char *path, struct phrases *p, char *err, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, cap, "key_password_file: %s: %s", path, strerror(errno));
        return false;
    }
    p->len = fread(p->text, 1, sizeof(p->text) - 1, f);
    bool is_long = p->len == sizeof(p->text) - 1;
    bool is_error = ferror(f) != 0;
    fclose(f);
    if (is_long || is_error) {
        snprintf(err, cap, "key_password_file: %s: %s", path,
                 is_long ? "larger than 16 KiB" : "cannot read");
        return false;
    }
    for (size_t i = 0; i < p->len; i++) {
        if (p->text[i] == '\n' || p->text[i] == '\r') {
            p->text[i] = '\0';
        }
    }
    p->text[p->len] = '\0';
    return true;
}

/* One attempt to read the key from the file's bytes with the pass phrase p->next. */
static EVP_PKEY *try_read(const void *pem, size_t len, struct phrases *p)
{
    BIO *bio = BIO_new_mem_buf(pem, (int)len);
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, on_password, p) : NULL;
    BIO_free(bio);
    return key;
}

static bool read_file(const char *path, char *buf, size_t cap, size_t *len, char *err,
                      size_t err_cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        snprintf(err, err_cap, "key: %s: %s", path, strerror(errno));
        return false;
    }
    *len = fread(buf, 1, cap, f);
    bool is_bad = ferror(f) != 0 || *len == cap;
    fclose(f);
    if (is_bad) {
        snprintf(err, err_cap, "key: %s: cannot read (or larger than 1 MiB)", path);
        return false;
    }
    return true;
}

static bool open_key(const char *path, const char *password_file, const char *pem, size_t len,
                     struct phrases *p, EVP_PKEY **out, char *err, size_t cap)
{
    p->next = NULL;
    *out = try_read(pem, len, p);
    if (*out == NULL && p->was_asked && password_file != NULL) {
        if (!read_phrases(password_file, p, err, cap)) {
            return false;
        }
        for (size_t at = 0; at <= p->len && *out == NULL; at += strlen(p->text + at) + 1) {
            p->next = p->text + at;
            ERR_clear_error();
            *out = try_read(pem, len, p);
        }
    }
    if (*out != NULL) {
        ERR_clear_error();
        return true;
    }
    char why[256] = "not a PEM private key";
    unsigned long e = ERR_peek_last_error();
    if (e != 0 && !p->was_asked) {
        ERR_error_string_n(e, why, sizeof(why));
    }
    ERR_clear_error();
    if (p->was_asked && password_file == NULL) {
        snprintf(err, cap,
                 "key: %s: encrypted, and no key_password_file gives its pass phrase (it is never "
                 "asked for on a terminal)",
                 path);
    } else if (p->was_asked) {
        snprintf(err, cap, "key: %s: encrypted, and no line of key_password_file %s opens it", path,
                 password_file);
    } else {
        snprintf(err, cap, "key: %s: %s", path, why);
    }
    return false;
}

bool serve_key_load(const char *path, const char *password_file, EVP_PKEY **out, char *err,
                    size_t cap)
{
    *out = NULL;
    size_t size = sizeof(struct phrases) + KEY_FILE_MAX;
    void *mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED || mlock(mem, size) != 0 || madvise(mem, size, MADV_DONTDUMP) != 0) {
        snprintf(err, cap, "key: %s: no locked memory for it (RLIMIT_MEMLOCK?): %s", path,
                 strerror(errno));
        if (mem != MAP_FAILED) {
            munmap(mem, size);
        }
        return false;
    }
    struct phrases *p = mem;
    char *pem = (char *)mem + sizeof(*p);
    size_t len = 0;
    bool is_ok = read_file(path, pem, KEY_FILE_MAX, &len, err, cap) &&
                 open_key(path, password_file, pem, len, p, out, err, cap);
    OPENSSL_cleanse(mem, size);
    munmap(mem, size);
    return is_ok;
}
