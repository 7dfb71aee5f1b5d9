/*
 * Hand-over between masters (the parts and the two ways they travel: serve_handover.h).
 *
 * Threat: descriptors from the environment are trusted only as far as they check out: a
 * number that is not open, a socket that is not listening, or a memory file that does not hold
 * a cache or ring of the expected layout and size is dropped (logged) and made afresh; nothing
 * inherited is ever used unchecked, and nothing is written to disk on the way.
 */
#include "serve_handover.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "../cli/log.h"

static const char *const part_names[HO_NPARTS] = {"cache", "ring", "keys", "register", "upstream"};

#define ENV_NAME "TLSRESUME_HANDOVER"

void handover_init(struct handover *h)
{
    memset(h, 0, sizeof(*h));
    for (int p = 0; p < HO_NPARTS; p++) {
        h->part_fd[p] = -1;
    }
    h->ready_fd = -1;
    h->is_layout_known = true;
    h->layout = HANDOVER_LAYOUT;
}

/* fd as a number in text, when it is open; made close-on-exec. */
static int open_fd(const char *text)
{
    char *end = NULL;
    errno = 0;
    long v = strtol(text, &end, 10);
    if (errno != 0 || end == text || v < 3 || v > 1 << 20 || fcntl((int)v, F_GETFD) < 0) {
        return -1;
    }
    (void)fcntl((int)v, F_SETFD, FD_CLOEXEC);
    return (int)v;
}

/* True when fd is a listening stream socket. */
static bool is_listening(int fd)
{
    int type = 0;
    int acc = 0;
    socklen_t tl = sizeof(type);
    socklen_t al = sizeof(acc);
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tl) == 0 && type == SOCK_STREAM &&
           getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &al) == 0 && acc == 1;
}

static int part_of(const char *name, size_t len)
{
    for (int p = 0; p < HO_NPARTS; p++) {
        if (strlen(part_names[p]) == len && memcmp(part_names[p], name, len) == 0) {
            return p;
        }
    }
    return -1;
}

/* Records one named descriptor (a part, or "sock" with its address). */
static void take(struct handover *h, const char *name, size_t name_len, const char *addr, int fd)
{
    int p = part_of(name, name_len);
    if (p >= 0 && h->part_fd[p] < 0) {
        h->part_fd[p] = fd;
        return;
    }
    bool is_sock = name_len == 4 && memcmp(name, "sock", 4) == 0 && addr != NULL &&
                   addr[0] != '\0' && strlen(addr) < CLI_STR;
    if (is_sock && h->n_socks < HO_MAX_SOCKS && is_listening(fd)) {
        struct ho_sock *s = &h->socks[h->n_socks++];
        snprintf(s->addr, sizeof(s->addr), "%s", addr);
        s->fd = fd;
        return;
    }
    log_msg(LOG_WARN, "serve", "event=handover_dropped name=\"%.*s\" fd=%d note=\"not usable\"",
            (int)name_len, name, fd);
    close(fd);
}

/* TLSRESUME_HANDOVER from an upgrading master. */
static void receive_upgrade(struct handover *h, const char *env)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", env);
    h->source = "upgrade";
    char *save = NULL;
    for (char *tok = strtok_r(buf, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(tok, '=');
        if (eq == NULL) {
            continue;
        }
        *eq = '\0';
        const char *val = eq + 1;
        if (strcmp(tok, "layout") == 0) {
            h->layout = (unsigned)strtoul(val, NULL, 10);
            h->is_layout_known = h->layout == HANDOVER_LAYOUT;
        } else if (strcmp(tok, "from") == 0) {
            h->from = (pid_t)strtol(val, NULL, 10);
        } else if (strcmp(tok, "ready") == 0) {
            h->ready_fd = open_fd(val);
        } else {
            char *at = strchr(eq + 1, '@');
            if (at != NULL) {
                *at = '\0';
            }
            int fd = open_fd(val);
            if (fd < 0) {
                log_msg(LOG_WARN, "serve",
                        "event=handover_dropped name=%s fd=\"%s\" "
                        "note=\"not open\"",
                        tok, val);
                continue;
            }
            take(h, tok, strlen(tok), at != NULL ? at + 1 : NULL, fd);
        }
    }
}

/* ':' is not allowed in a file descriptor name; it is written %3A, and '%' as %25. */
static void fdname_encode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in != '\0' && o + 4 < cap; in++) {
        if (*in == ':' || *in == '%') {
            o += (size_t)snprintf(out + o, cap - o, "%%%02X", (unsigned char)*in);
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

static void fdname_decode(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    for (; *in != '\0' && o + 1 < cap; in++) {
        unsigned v = 0;
        if (in[0] == '%' && sscanf(in + 1, "%2x", &v) == 1 && in[1] != '\0' && in[2] != '\0') {
            out[o++] = (char)v;
            in += 2;
        } else {
            out[o++] = *in;
        }
    }
    out[o] = '\0';
}

/* The descriptors systemd kept for us in its store. */
static void receive_systemd(struct handover *h)
{
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (n <= 0) {
        return;
    }
    h->source = "systemd";
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        const char *name = names != NULL && names[i] != NULL ? names[i] : "";
        const char *eq = strchr(name, '=');
        char addr[CLI_STR] = "";
        if (eq != NULL) {
            fdname_decode(eq + 1, addr, sizeof(addr));
        }
        take(h, name, eq != NULL ? (size_t)(eq - name) : strlen(name), addr, fd);
        free(names != NULL ? names[i] : NULL);
    }
    free(names);
}

void handover_receive(struct handover *h)
{
    handover_init(h);
    h->is_systemd = getenv("NOTIFY_SOCKET") != NULL;
    const char *env = getenv(ENV_NAME);
    if (env != NULL) {
        receive_upgrade(h, env);
        unsetenv(ENV_NAME);
        unsetenv("LISTEN_FDS"); /* not ours to read as well */
    } else {
        receive_systemd(h);
    }
    if (h->source == NULL) {
        return;
    }
    if (!h->is_layout_known) {
        log_msg(LOG_WARN, "serve",
                "event=handover result=fresh reason=\"hand-over layout %u, this build reads %u\" "
                "kept=sockets note=\"sessions and ticket keys start afresh\"",
                h->layout, HANDOVER_LAYOUT);
        for (int p = 0; p < HO_NPARTS; p++) {
            if (h->part_fd[p] >= 0) {
                close(h->part_fd[p]);
                h->part_fd[p] = -1;
            }
        }
    }
}

int handover_take_socket(struct handover *h, const char *addr)
{
    for (size_t i = 0; i < h->n_socks; i++) {
        if (h->socks[i].fd >= 0 && strcmp(h->socks[i].addr, addr) == 0) {
            int fd = h->socks[i].fd;
            h->socks[i].fd = -1;
            return fd;
        }
    }
    return -1;
}

/* Records that part p starts afresh, and why. */
static void fresh(struct handover *h, enum ho_part p, const char *why)
{
    h->outcome[p] = "fresh";
    snprintf(h->why[p], sizeof(h->why[p]), "%s", why);
}

struct tlsr_cache *handover_cache(struct handover *h, enum ho_part p, size_t size_bytes)
{
    if (h->source == NULL) {
        return NULL;
    }
    if (h->part_fd[p] < 0) {
        fresh(h, p, h->is_layout_known ? "not handed over" : "another layout");
        return NULL;
    }
    struct tlsr_cache *c = NULL;
    char why[160];
    if (tlsr_cache_adopt(h->part_fd[p], &c) != TLSR_OK) {
        snprintf(why, sizeof(why), "%s", tlsr_last_error());
        c = NULL;
    } else if (tlsr_cache_size(c) != size_bytes) {
        snprintf(why, sizeof(why), "size %zu bytes, configured %zu", tlsr_cache_size(c),
                 size_bytes);
        tlsr_cache_disown(c); /* the old master's still */
        tlsr_cache_free(c);
        c = NULL;
    }
    close(h->part_fd[p]);
    h->part_fd[p] = -1;
    if (c == NULL) {
        fresh(h, p, why);
        return NULL;
    }
    h->outcome[p] = "adopted";
    return c;
}

struct tlsr_keyring *handover_keys(struct handover *h, uint32_t rotate_s, uint32_t lifetime_s)
{
    if (h->source == NULL) {
        return NULL;
    }
    if (h->part_fd[HO_RING] < 0) {
        fresh(h, HO_KEYS, h->is_layout_known ? "not handed over" : "another layout");
        return NULL;
    }
    struct tlsr_keyring *ring = NULL;
    char why[160];
    uint32_t r = 0;
    uint32_t l = 0;
    int fds[2] = {h->part_fd[HO_RING], h->part_fd[HO_KEYS]};
    if (tlsr_keyring_adopt(fds, &ring) != TLSR_OK) {
        snprintf(why, sizeof(why), "%s", tlsr_last_error());
        ring = NULL;
    } else if (tlsr_keyring_schedule(ring, &r, &l), r != rotate_s || l != lifetime_s) {
        snprintf(why, sizeof(why), "schedule %us/%us, configured %us/%us", r, l, rotate_s,
                 lifetime_s);
        tlsr_keyring_disown(ring);
        tlsr_keyring_free(ring);
        ring = NULL;
    }
    for (int p = HO_RING; p <= HO_KEYS; p++) {
        if (h->part_fd[p] >= 0) {
            close(h->part_fd[p]);
            h->part_fd[p] = -1;
        }
    }
    if (ring == NULL) {
        fresh(h, HO_KEYS, why);
        return NULL;
    }
    h->outcome[HO_KEYS] = "adopted";
    return ring;
}

/* Stores one descriptor in systemd's store under name (replacing what was there). */
#define FDNAME_CAP (CLI_STR * 3 + 8)

/* The store's name of a socket: "sock=" and its address, encoded. */
static void sock_name(const char *addr, char name[FDNAME_CAP])
{
    memcpy(name, "sock=", 6);
    fdname_encode(addr, name + 5, FDNAME_CAP - 5);
}

/* Drops what systemd's store holds under name. */
static void unstore(const char *name)
{
    char msg[FDNAME_CAP + 64];
    snprintf(msg, sizeof(msg), "FDSTOREREMOVE=1\nFDNAME=%s", name);
    (void)sd_notify(0, msg);
}

static void store(const char *name, int fd)
{
    char msg[FDNAME_CAP + 64];
    unstore(name);
    snprintf(msg, sizeof(msg), "FDSTORE=1\nFDNAME=%s", name);
    int r = sd_pid_notify_with_fds(0, 0, msg, &fd, 1);
    if (r <= 0) {
        log_msg(LOG_WARN, "serve", "event=fdstore_failed name=\"%s\" error=\"%s\"", name,
                r < 0 ? strerror(-r) : "no NOTIFY_SOCKET");
    }
}

void handover_close_untaken(struct handover *h)
{
    for (size_t i = 0; i < h->n_socks; i++) {
        if (h->socks[i].fd >= 0) {
            close(h->socks[i].fd); /* an address no longer configured */
            h->socks[i].fd = -1;
            if (h->is_systemd) {
                char name[FDNAME_CAP];
                sock_name(h->socks[i].addr, name);
                unstore(name); /* or systemd would keep the port bound */
            }
            h->socks[i].addr[0] = '\0'; /* closed: not counted as kept */
        }
    }
    for (int p = 0; p < HO_NPARTS; p++) {
        if (h->part_fd[p] >= 0) {
            close(h->part_fd[p]);
            h->part_fd[p] = -1;
        }
    }
}

void handover_done(struct handover *h, const struct ho_out *out)
{
    char parts[512] = "";
    size_t used = 0;
    for (int p = 0; p < HO_NPARTS && h->source != NULL; p++) {
        if (h->outcome[p] == NULL) {
            continue;
        }
        int n =
            snprintf(parts + used, sizeof(parts) - used, " %s=%s", part_names[p], h->outcome[p]);
        used += n > 0 && (size_t)n < sizeof(parts) - used ? (size_t)n : 0;
        if (strcmp(h->outcome[p], "fresh") == 0 && h->is_layout_known) {
            log_msg(LOG_WARN, "serve", "event=handover part=%s result=fresh reason=\"%s\"",
                    part_names[p], h->why[p]);
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < h->n_socks; i++) {
        kept += h->socks[i].fd < 0 && h->socks[i].addr[0] != '\0';
    }
    handover_close_untaken(h);
    if (h->source != NULL) {
        log_msg(LOG_INFO, "serve", "event=handover source=%s from=%d sockets=%zu%s", h->source,
                (int)h->from, kept, parts);
    }
    if (h->ready_fd >= 0) {
        char line[600];
        int n = snprintf(line, sizeof(line), "ready%s\n", parts);
        if (n > 0 && write(h->ready_fd, line, (size_t)n) != n) {
            log_msg(LOG_WARN, "serve", "event=handover_ready_lost error=\"%s\"", strerror(errno));
        }
        close(h->ready_fd);
        h->ready_fd = -1;
    }
    if (!h->is_systemd) {
        return;
    }
    for (int p = 0; p < HO_NPARTS; p++) {
        if (out->part_fd[p] >= 0) {
            store(part_names[p], out->part_fd[p]);
        } else {
            unstore(part_names[p]); /* a part no longer used frees its memory */
        }
    }
    for (size_t i = 0; i < out->n_socks; i++) {
        char name[FDNAME_CAP];
        sock_name(out->socks[i].addr, name);
        store(name, out->socks[i].fd);
    }
    char msg[64];
    snprintf(msg, sizeof(msg), "READY=1\nMAINPID=%d", (int)getpid());
    (void)sd_pid_notify(0, 0, msg);
}

/* In the child before exec: every descriptor but stdio and keep[] closed. */
static void close_others(const int *keep, size_t n)
{
    struct rlimit rl;
    int max =
        getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1u << 20 ? (int)rl.rlim_cur : 1 << 16;
    for (int fd = 3; fd < max; fd++) {
        bool is_kept = false;
        for (size_t i = 0; i < n && !is_kept; i++) {
            is_kept = keep[i] == fd;
        }
        if (!is_kept) {
            (void)close(fd);
        }
    }
}

pid_t handover_exec(const char *exe, char **argv, const struct ho_out *out, unsigned layout,
                    int *ready_fd, char *err, size_t cap)
{
    int pipefd[2];
    if (pipe2(pipefd, O_CLOEXEC) != 0) {
        snprintf(err, cap, "pipe: %s", strerror(errno));
        return -1;
    }
    char env[4096];
    size_t used = 0;
    int n =
        snprintf(env, sizeof(env), "layout=%u from=%d ready=%d", layout, (int)getpid(), pipefd[1]);
    used = n > 0 ? (size_t)n : 0;
    bool is_cut = false;
    int keep[HO_NPARTS + HO_MAX_SOCKS + 1];
    size_t n_keep = 0;
    keep[n_keep++] = pipefd[1];
    for (int p = 0; p < HO_NPARTS; p++) {
        if (out->part_fd[p] >= 0) {
            n = is_cut ? 0
                       : snprintf(env + used, sizeof(env) - used, " %s=%d", part_names[p],
                                  out->part_fd[p]);
            is_cut = is_cut || n < 0 || (size_t)n >= sizeof(env) - used;
            used += is_cut ? 0 : (size_t)n;
            keep[n_keep++] = out->part_fd[p];
        }
    }
    for (size_t i = 0; i < out->n_socks; i++) {
        n = is_cut ? 0
                   : snprintf(env + used, sizeof(env) - used, " sock=%d@%s", out->socks[i].fd,
                              out->socks[i].addr);
        is_cut = is_cut || n < 0 || (size_t)n >= sizeof(env) - used;
        used += is_cut ? 0 : (size_t)n;
        keep[n_keep++] = out->socks[i].fd;
    }
    if (is_cut) {
        snprintf(err, cap, "hand-over list too long");
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, cap, "fork: %s", strerror(errno));
        close(pipefd[0]);
        close(pipefd[1]);
        return -1;
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        for (size_t i = 0; i < n_keep; i++) {
            int flags = fcntl(keep[i], F_GETFD);
            (void)fcntl(keep[i], F_SETFD, flags & ~FD_CLOEXEC);
        }
        close_others(keep, n_keep);
        setenv(ENV_NAME, env, 1);
        signal(SIGPIPE, SIG_DFL);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(exe, argv);
        fprintf(stderr, "error serve event=upgrade_failed error=\"exec %s: %s\"\n", exe,
                strerror(errno));
        _exit(127);
    }
    close(pipefd[1]);
    *ready_fd = pipefd[0];
    return pid;
}

bool handover_parse_ready(const char *line, bool adopted[HO_NPARTS])
{
    for (int p = 0; p < HO_NPARTS; p++) {
        adopted[p] = false;
    }
    if (strncmp(line, "ready", 5) != 0) {
        return false;
    }
    for (int p = 0; p < HO_NPARTS; p++) {
        char want[32];
        snprintf(want, sizeof(want), " %s=adopted", part_names[p]);
        adopted[p] = strstr(line, want) != NULL;
    }
    return true;
}
