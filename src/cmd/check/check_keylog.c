/*
 * The key log of `check --keylog`. OpenSSL hands each secret as one line of the NSS key log
 * format (CLIENT_RANDOM for TLS 1.2; the CLIENT_HANDSHAKE_TRAFFIC_SECRET family for TLS 1.3);
 * the line is written and flushed at once, so a capture made while the check runs can be read
 * with what is already in the file. The file holds session secrets: it is created with mode
 * 0600, never followed through a symbolic link, and an existing one that others may read is
 * refused rather than written to.
 */
#include "check_keylog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static FILE *keylog;

static void on_keylog_line(const SSL *ssl, const char *line)
{
    (void)ssl;
    if (keylog != NULL) {
        fprintf(keylog, "%s\n", line);
        fflush(keylog);
    }
}

bool keylog_open(const char *path, char *err, size_t cap)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, cap, "--keylog %s: %s", path,
                 errno == ELOOP ? "is a symbolic link (not followed: the file holds secrets)"
                                : strerror(errno));
        return false;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, cap, "--keylog %s: not a regular file", path);
        close(fd);
        return false;
    }
    if ((st.st_mode & 077) != 0 || st.st_uid != geteuid()) {
        snprintf(err, cap,
                 "--keylog %s: mode %03o, owner %u: others could read the secrets it will hold "
                 "(chmod 600 it, or name a new file)",
                 path, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid);
        close(fd);
        return false;
    }
    keylog = fdopen(fd, "a");
    if (keylog == NULL) {
        snprintf(err, cap, "--keylog %s: %s", path, strerror(errno));
        close(fd);
        return false;
    }
    return true;
}

void keylog_attach(SSL_CTX *ctx)
{
    if (keylog != NULL && ctx != NULL) {
        SSL_CTX_set_keylog_callback(ctx, on_keylog_line);
    }
}

void keylog_close(void)
{
    if (keylog != NULL) {
        fclose(keylog);
        keylog = NULL;
    }
}
