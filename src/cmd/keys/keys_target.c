/*
 * Where `keys export` and `keys sync` put ticket keys: files in a server's format (nginx,
 * Apache, HAProxy, Node, raw, nghttpx, h2o, Go, Envoy SDS, a Kubernetes Secret), HAProxy's
 * runtime API, or a stream on stdout for Node.
 *
 * Files are written atomically (a new file in the same directory, mode 0600, then rename) and
 * only to a memory-backed file system (tmpfs, ramfs) unless --allow-disk: ticket keys on disk
 * outlive the process and its backups. nginx and nghttpx read one key a file, so their target
 * is a directory of slot files 0.key (encrypting), 1.key (next), 2.key... (older), padded with
 * the encrypting key. HAProxy holds three keys and encrypts with the penultimate: a push appends
 * one (`set ssl tls-key`), so the target pushes the shortest suffix that makes its three
 * [previous, encrypting, next]. Every intermediate state encrypts with a key the fleet holds.
 */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/magic.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "../cli/cli.h"

/* The largest file: h2o's YAML with every key the ring may export (about 330 bytes a key; raw
 * records and slot files fit too). */
#define RELOAD_TIMEOUT_S 30
#define FILE_MAX (512 * KEYS_MAX_EXPORT)
_Static_assert(FILE_MAX >= 80 * KEYS_MAX_SLOTS, "nginx slot files fit");

extern char **environ;

static bool is_nginx(const struct keys_target *t);
static bool dir_of(const char *path, char *out, size_t cap);
static bool dir_is_fit(const struct keys_target *t, const char *dir);

static bool set_format(void *dst, const struct cli_opt *o, const char *v, char *why, size_t cap)
{
    (void)o;
    struct keys_target *t = dst;
    if (tlsr_key_format_from_name(v, &t->format) != TLSR_OK) {
        snprintf(why, cap, "%s", tlsr_last_error());
        return false;
    }
    t->has_format = true;
    return true;
}

#define TARGET_AT(F) CLI_AT(keys_target, F)
static const struct cli_opt target_options[] = {
    {.name = "format",
     .type = CLI_CUSTOM,
     .choices = "nginx48|nginx80|haproxy|apache|node|raw|nghttpx|h2o|go|envoy|k8s-secret",
     .help = "the server's key file format (docs/KEYS.md)"},
    {.name = "out",
     .type = CLI_STRING,
     .choices = "PATH",
     .offset = TARGET_AT(out),
     .help = "a file (a directory of slot files 0.key, 1.key... for nginx and nghttpx); on tmpfs "
             "(such as /run) unless --allow-disk; - is stdout (export)"},
    {.name = "slots",
     .type = CLI_INT,
     .min = 2,
     .max = KEYS_MAX_SLOTS,
     .offset = TARGET_AT(slots),
     .help = "nginx, nghttpx: how many key files (the encrypting key, the next, older); "
             "default: 3"},
    {.name = "reload",
     .type = CLI_STRING,
     .choices = "COMMAND",
     .offset = TARGET_AT(reload),
     .help = "sync: run with /bin/sh -c after the files change (e.g. systemctl reload nginx)"},
    {.name = "allow_disk",
     .type = CLI_BOOL,
     .def = "no",
     .offset = TARGET_AT(allow_disk),
     .help = "write keys to a disk-backed file system (they outlive the process and its "
             "backups)"},
    {.name = "stdout",
     .type = CLI_BOOL,
     .def = "no",
     .offset = TARGET_AT(is_stdout),
     .help = "sync with --format node: a base64 line for setTicketKeys at each change"},
    {.name = "haproxy_socket",
     .type = CLI_LIST,
     .choices = "PATH",
     .offset = TARGET_AT(sockets),
     .help = "sync: HAProxy's runtime API socket (stats socket ... level admin); repeatable"},
    {.name = "haproxy_ref",
     .type = CLI_STRING,
     .choices = "KEYFILE_OR_ID",
     .offset = TARGET_AT(haproxy_ref),
     .help = "sync: the tls-ticket-keys file as HAProxy's configuration names it, or its id "
             "from `show tls-keys`"},
    {.name = "resource_name",
     .type = CLI_STRING,
     .choices = "NAME",
     .offset = TARGET_AT(resource_name),
     .help = "envoy: the SDS Secret's name (default session_ticket_keys); k8s-secret: the "
             "Secret's name (default tlsresume-ticket-keys)"},
};

void keys_target_rows(struct keys_target *t, struct cli_table *out)
{
    memset(out, 0, sizeof(*out));
    out->opts = target_options;
    out->n = sizeof(target_options) / sizeof(target_options[0]);
    out->dst = t;
    out->heading = "targets (export, import's --format, sync)";
    out->custom = set_format;
}

bool keys_target_check(const struct keys_target *t, bool is_sync)
{
    const char *why = NULL;
    bool has_file = t->out[0] != '\0';
    if (t->sockets.n > 0 && t->haproxy_ref[0] == '\0') {
        why = "--haproxy-socket needs --haproxy-ref (the tls-ticket-keys file as HAProxy's "
              "configuration names it, or its id from `show tls-keys`)";
    } else if (has_file && !t->has_format) {
        why = "--out needs --format "
              "nginx48|nginx80|haproxy|apache|node|raw|nghttpx|h2o|go|envoy|k8s-secret";
    } else if (t->is_stdout && (!t->has_format || t->format != TLSR_KEYFMT_NODE || has_file)) {
        why = "--stdout streams Node keys: use it with --format node and without --out";
    } else if (!has_file && !t->is_stdout && t->sockets.n == 0) {
        why = is_sync ? "nothing to sync: give --format F --out PATH, --haproxy-socket PATH "
                        "--haproxy-ref REF, or --format node --stdout"
                      : "export needs --format F --out PATH (- for stdout)";
    } else if (!is_sync && (t->sockets.n > 0 || t->is_stdout || t->reload[0] != '\0')) {
        why = "--haproxy-socket, --stdout and --reload belong to keys sync";
    } else if (t->slots != 0 && (!t->has_format || !is_nginx(t))) {
        why = "--slots is for nginx48, nginx80 and nghttpx (one key a file)";
    } else if (t->resource_name[0] != '\0' &&
               (!t->has_format ||
                (t->format != TLSR_KEYFMT_ENVOY && t->format != TLSR_KEYFMT_K8S_SECRET))) {
        why = "--resource-name is for --format envoy and k8s-secret";
    } else if (has_file && strcmp(t->out, "-") == 0 && is_sync) {
        why = "keys sync writes files (--out PATH); for a stream use --format node --stdout";
    }
    if (why != NULL) {
        fprintf(stderr, "error keys: %s\n", why);
        return false;
    }
    /* The directory is checked now, before Redis is asked anything. */
    char dir[PATH_MAX];
    if (has_file && strcmp(t->out, "-") != 0) {
        int n = is_nginx(t) ? snprintf(dir, sizeof(dir), "%s", t->out)
                            : (dir_of(t->out, dir, sizeof(dir)) ? 1 : -1);
        if (n < 0 || (size_t)n >= sizeof(dir)) {
            fprintf(stderr, "error keys: %s: path too long\n", t->out);
            return false;
        }
        return dir_is_fit(t, dir);
    }
    return true;
}

/* Whether the target is a directory of slot files, one key a file (nginx, nghttpx). */
static bool is_nginx(const struct keys_target *t)
{
    return t->format == TLSR_KEYFMT_NGINX48 || t->format == TLSR_KEYFMT_NGINX80 ||
           t->format == TLSR_KEYFMT_NGHTTPX;
}

/* Whether path (a directory) is memory-backed; sets *fs_type. */
static bool is_memory_backed(const char *dir, long *fs_type)
{
    struct statfs st;
    if (statfs(dir, &st) != 0) {
        *fs_type = 0;
        return false;
    }
    *fs_type = (long)st.f_type;
    return st.f_type == TMPFS_MAGIC || st.f_type == RAMFS_MAGIC;
}

static bool dir_of(const char *path, char *out, size_t cap)
{
    const char *slash = strrchr(path, '/');
    int n = slash == NULL   ? snprintf(out, cap, ".")
            : slash == path ? snprintf(out, cap, "/")
                            : snprintf(out, cap, "%.*s", (int)(slash - path), path);
    return n > 0 && (size_t)n < cap;
}

/* Whether keys may go into dir: it exists, and is memory-backed unless --allow-disk (printed
 * when not). */
static bool dir_is_fit(const struct keys_target *t, const char *dir)
{
    struct stat st;
    int stat_rc = stat(dir, &st);
    if (stat_rc != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "error keys: %s: %s (the directory --out writes into must exist)\n", dir,
                stat_rc != 0 ? strerror(errno) : "not a directory");
        return false;
    }
    long fs_type = 0;
    if (!t->allow_disk && !is_memory_backed(dir, &fs_type)) {
        fprintf(stderr,
                "error keys: %s: not memory-backed (file system type 0x%lx); ticket keys belong "
                "on a memory-backed file system such as /run (tmpfs); --allow-disk writes there "
                "anyway\n",
                dir, fs_type);
        return false;
    }
    return true;
}

/* Writes data to path atomically, mode 0600, refusing a disk-backed file system. */
static bool write_atomic(const struct keys_target *t, const char *path, const uint8_t *data,
                         size_t len)
{
    char dir[PATH_MAX];
    char tmp[PATH_MAX];
    if (!dir_of(path, dir, sizeof(dir)) ||
        snprintf(tmp, sizeof(tmp), "%s.tmp.%ld", path, (long)getpid()) >= (int)sizeof(tmp)) {
        fprintf(stderr, "error keys: %s: path too long\n", path);
        return false;
    }
    if (!dir_is_fit(t, dir)) {
        return false;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "error keys: %s: %s\n", tmp, strerror(errno));
        return false;
    }
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, data + done, len - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            break;
        }
        done += (size_t)w;
    }
    bool is_ok = done == len && fsync(fd) == 0;
    is_ok = close(fd) == 0 && is_ok;
    if (!is_ok || rename(tmp, path) != 0) {
        fprintf(stderr, "error keys: %s: %s\n", path, strerror(errno));
        (void)unlink(tmp);
        return false;
    }
    return true;
}

/* Runs the reload command; true when it exits 0. */
static bool run_reload(const char *cmd)
{
    pid_t pid;
    char *const argv[] = {(char *)"/bin/sh", (char *)"-c", (char *)cmd, NULL};
    int err = posix_spawn(&pid, "/bin/sh", NULL, NULL, argv, environ);
    if (err != 0) {
        fprintf(stderr, "error keys event=reload_failed error=\"%s\"\n", strerror(err));
        return false;
    }
    /* Bounded: a reload that hangs is killed after RELOAD_TIMEOUT_S, and counts as failed. */
    int status = 0;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid || (got < 0 && errno != EINTR)) {
            break;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= RELOAD_TIMEOUT_S) {
            kill(pid, SIGKILL);
            (void)waitpid(pid, &status, 0);
            fprintf(stderr, "error keys event=reload_failed error=\"timed out after %d s\"\n",
                    RELOAD_TIMEOUT_S);
            return false;
        }
        struct timespec tick = {0, 20 * 1000 * 1000};
        nanosleep(&tick, NULL);
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "error keys event=reload_failed status=%d command=\"%s\"\n",
                WIFEXITED(status) ? WEXITSTATUS(status) : -1, cmd);
        return false;
    }
    return true;
}

/* The file contents of the target, and their paths: one file, or nginx's slot files. */
static bool render_files(struct keys_target *t, const struct tlsr_key_material *keys, size_t n,
                         bool has_next, uint8_t *buf, size_t cap, size_t *lens, size_t *n_files)
{
    if (!is_nginx(t)) {
        *n_files = 1;
        const char *name = t->resource_name[0] != '\0' ? t->resource_name : NULL;
        if (tlsr_keyfile_write_named(t->format, name, keys, n, has_next, buf, cap, &lens[0]) !=
            TLSR_OK) {
            fprintf(stderr, "error keys: %s\n", tlsr_last_error());
            return false;
        }
        return true;
    }
    uint64_t slots = t->slots != 0 ? t->slots : 3;
    if (slots > cap / 80) {
        fprintf(stderr, "error keys: %llu slots do not fit\n", (unsigned long long)slots);
        return false;
    }
    for (size_t i = 0; i < slots; i++) {
        /* Past the keys held, repeat the encrypting key: nginx needs every file it names. */
        const struct tlsr_key_material *k = i < n ? &keys[i] : &keys[0];
        if (tlsr_keyfile_key_bytes(t->format, k, buf + 80 * i, &lens[i]) != TLSR_OK) {
            fprintf(stderr, "error keys: %s\n", tlsr_last_error());
            return false;
        }
    }
    *n_files = (size_t)slots;
    return true;
}

static bool apply_files(struct keys_target *t, const struct tlsr_key_material *keys, size_t n,
                        bool has_next)
{
    uint8_t buf[FILE_MAX];
    size_t lens[KEYS_MAX_SLOTS];
    size_t n_files = 0;
    memset(buf, 0, sizeof(buf));
    bool is_ok = render_files(t, keys, n, has_next, buf, sizeof(buf), lens, &n_files);
    uint8_t digest[32];
    size_t total = is_nginx(t) ? 80 * n_files : lens[0];
    is_ok = is_ok && EVP_Digest(buf, total, digest, NULL, EVP_sha256(), NULL) == 1;
    bool is_same = is_ok && t->is_written && CRYPTO_memcmp(digest, t->written, 32) == 0;
    if (is_ok && !is_same) {
        if (strcmp(t->out, "-") == 0) {
            is_ok = fwrite(buf, 1, lens[0], stdout) == lens[0] && fflush(stdout) == 0;
        }
        for (size_t i = 0; is_ok && strcmp(t->out, "-") != 0 && i < n_files; i++) {
            char path[PATH_MAX];
            if (is_nginx(t)) {
                snprintf(path, sizeof(path), "%s/%zu.key", t->out, i);
            } else {
                snprintf(path, sizeof(path), "%s", t->out);
            }
            is_ok = write_atomic(t, path, is_nginx(t) ? buf + 80 * i : buf, lens[i]);
        }
        if (is_ok) {
            memcpy(t->written, digest, 32);
            t->is_written = true;
            t->is_reload_due = t->reload[0] != '\0';
            fprintf(stderr, "info keys event=keys_written format=%s out=%s files=%zu\n",
                    tlsr_key_format_name(t->format), t->out, n_files);
        }
    }
    OPENSSL_cleanse(buf, sizeof(buf));
    if (is_ok && t->is_reload_due) {
        t->is_reload_due = !run_reload(t->reload);
        is_ok = !t->is_reload_due;
        if (is_ok) {
            fprintf(stderr, "info keys event=reloaded command=\"%s\"\n", t->reload);
        }
    }
    return is_ok;
}

/* Sends one runtime API command and checks HAProxy's answer. */
static bool haproxy_command(const char *sock_path, const char *cmd, const char *expect)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "error keys: %s: socket path too long\n", sock_path);
        return false;
    }
    memcpy(sa.sun_path, sock_path, strlen(sock_path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = 5};
    if (fd >= 0) {
        /* Every step bounded: a wedged HAProxy must not stall the sync loop. */
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
        (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
        fprintf(stderr, "error keys event=haproxy_unreachable socket=%s error=\"%s\"\n", sock_path,
                strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return false;
    }
    size_t len = strlen(cmd);
    bool is_ok = write(fd, cmd, len) == (ssize_t)len;
    char answer[512];
    size_t got = 0;
    while (is_ok && got < sizeof(answer) - 1) {
        ssize_t r = read(fd, answer + got, sizeof(answer) - 1 - got);
        if (r <= 0) {
            break;
        }
        got += (size_t)r;
    }
    answer[got] = '\0';
    close(fd);
    if (!is_ok || strstr(answer, expect) == NULL) {
        answer[strcspn(answer, "\r\n")] = '\0';
        fprintf(stderr, "error keys event=haproxy_refused socket=%s answer=\"%.200s\"\n", sock_path,
                answer);
        return false;
    }
    return true;
}

static bool haproxy_push(const struct keys_target *t, const struct tlsr_key_material *k)
{
    uint8_t bin[80];
    size_t len = 0;
    char b64[112];
    char cmd[PATH_MAX + 160];
    if (tlsr_keyfile_key_bytes(TLSR_KEYFMT_HAPROXY, k, bin, &len) != TLSR_OK) {
        return false;
    }
    EVP_EncodeBlock((unsigned char *)b64, bin, (int)len);
    OPENSSL_cleanse(bin, sizeof(bin));
    snprintf(cmd, sizeof(cmd), "set ssl tls-key %s %s\n", t->haproxy_ref, b64);
    OPENSSL_cleanse(b64, sizeof(b64));
    bool is_ok = true;
    for (size_t i = 0; i < t->sockets.n; i++) {
        is_ok = haproxy_command(t->sockets.v[i], cmd, "TLS ticket key updated") && is_ok;
    }
    OPENSSL_cleanse(cmd, sizeof(cmd));
    return is_ok;
}

static bool apply_haproxy(struct keys_target *t, const struct tlsr_key_material *keys, size_t n,
                          bool has_next)
{
    /* Want [previous, encrypting, next]; without a next key yet, [previous, encrypting,
     * encrypting] would drop a key: leave HAProxy as it is if it already encrypts right. */
    size_t order[3];
    tlsr_keyfile_haproxy_order(keys, n, has_next, order);
    const struct tlsr_key_material *want[3] = {&keys[order[0]], &keys[0], &keys[order[2]]};
    if (t->is_pushed && order[2] == 0 && memcmp(t->pushed[1], keys[0].bytes, 16) == 0) {
        return true;
    }
    size_t keep = 0;
    for (size_t k = 3; t->is_pushed && k > 0 && keep == 0; k--) {
        /* The longest suffix of what HAProxy holds that is a prefix of what we want. */
        bool is_match = true;
        for (size_t j = 0; j < k; j++) {
            is_match = is_match && memcmp(t->pushed[3 - k + j], want[j]->bytes, 16) == 0;
        }
        keep = is_match ? k : 0;
    }
    for (size_t j = keep; j < 3; j++) {
        if (!haproxy_push(t, want[j])) {
            t->is_pushed = false; /* unknown now: push all three next time */
            return false;
        }
        memmove(t->pushed[0], t->pushed[1], 2 * sizeof(t->pushed[0]));
        memcpy(t->pushed[2], want[j]->bytes, 16);
    }
    if (keep < 3) {
        fprintf(stderr, "info keys event=haproxy_updated pushed=%zu key=%02x%02x%02x%02x\n",
                3 - keep, keys[0].bytes[0], keys[0].bytes[1], keys[0].bytes[2], keys[0].bytes[3]);
    }
    t->is_pushed = true;
    return true;
}

static bool apply_stream(struct keys_target *t, const struct tlsr_key_material *keys)
{
    if (t->is_streamed && memcmp(t->streamed, keys[0].bytes, 16) == 0) {
        return true;
    }
    uint8_t bin[80];
    size_t len = 0;
    char b64[112];
    if (tlsr_keyfile_key_bytes(TLSR_KEYFMT_NODE, &keys[0], bin, &len) != TLSR_OK) {
        return false;
    }
    EVP_EncodeBlock((unsigned char *)b64, bin, (int)len);
    OPENSSL_cleanse(bin, sizeof(bin));
    bool is_ok = printf("%s\n", b64) > 0 && fflush(stdout) == 0;
    OPENSSL_cleanse(b64, sizeof(b64));
    if (is_ok) {
        memcpy(t->streamed, keys[0].bytes, 16);
        t->is_streamed = true;
    }
    return is_ok;
}

bool keys_target_apply(struct keys_target *t, const struct tlsr_key_material *keys, size_t n,
                       bool has_next)
{
    bool is_ok = true;
    if (t->out[0] != '\0') {
        is_ok = apply_files(t, keys, n, has_next) && is_ok;
    }
    if (t->sockets.n > 0) {
        is_ok = apply_haproxy(t, keys, n, has_next) && is_ok;
    }
    if (t->is_stdout) {
        is_ok = apply_stream(t, keys) && is_ok;
    }
    return is_ok;
}
