/* The old master's side of a binary upgrade (serve_upgrade.h). */
#include "serve_upgrade.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/log.h"

void upgrade_init(struct upgrade *u, struct ev_loop *loop, upgrade_ready_fn on_ready, void *arg)
{
    memset(u, 0, sizeof(*u));
    u->loop = loop;
    u->on_ready = on_ready;
    u->arg = arg;
    u->fd = -1;
    ev_init(&u->io, NULL);
    ev_init(&u->timer, NULL);
}

void upgrade_stop(struct upgrade *u)
{
    if (u->loop != NULL) {
        ev_io_stop(u->loop, &u->io);
        ev_timer_stop(u->loop, &u->timer);
    }
    if (u->fd >= 0) {
        close(u->fd);
        u->fd = -1;
    }
    u->len = 0;
}

static void failed(struct upgrade *u, const char *why)
{
    log_msg(LOG_ERROR, "serve", "event=upgrade_failed new_pid=%d error=\"%s\" keeping=running",
            (int)u->pid, why);
    upgrade_stop(u);
    if (u->pid > 0) {
        kill(u->pid, SIGTERM); /* a new master that never got ready drains what it has */
    }
    u->pid = 0;
}

static void ready(struct upgrade *u)
{
    bool adopted[HO_NPARTS];
    if (!handover_parse_ready(u->line, adopted)) {
        failed(u, "the new master's ready line is garbled");
        return;
    }
    pid_t pid = u->pid;
    char parts[sizeof(u->line)];
    snprintf(parts, sizeof(parts), "%s", u->line + 5); /* after "ready" */
    upgrade_stop(u);
    u->pid = 0;
    log_msg(LOG_INFO, "serve", "event=upgraded new_pid=%d%s note=\"this master drains and exits\"",
            (int)pid, parts);
    u->on_ready(u->arg, pid, adopted, parts);
}

static void on_io(struct ev_loop *loop, ev_io *io, int revents)
{
    (void)loop;
    (void)revents;
    struct upgrade *u = io->data;
    ssize_t n = read(u->fd, u->line + u->len, sizeof(u->line) - 1 - u->len);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        return;
    }
    if (n <= 0) {
        failed(u, "the new master exited or closed its ready pipe before serving");
        return;
    }
    u->len += (size_t)n;
    u->line[u->len] = '\0';
    char *nl = strchr(u->line, '\n');
    if (nl != NULL) {
        *nl = '\0';
        ready(u);
    } else if (u->len >= sizeof(u->line) - 1) {
        failed(u, "the new master's ready line is too long");
    }
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    failed(t->data, "the new master did not serve within 30 s");
}

void upgrade_start(struct upgrade *u, const char *exe_at_start, char **argv,
                   const struct ho_out *out)
{
    if (u->pid > 0) {
        log_msg(LOG_WARN, "serve", "event=upgrade note=\"an upgrade is under way (new_pid=%d)\"",
                (int)u->pid);
        return;
    }
    char exe[PATH_MAX + 16];
    snprintf(exe, sizeof(exe), "%s", exe_at_start);
    char *deleted = strstr(exe, " (deleted)");
    if (deleted != NULL) {
        *deleted = '\0'; /* the file was replaced: the new one is at the same path */
    }
    /* The layout written can be changed for tests only, to make a new master refuse it. */
    const char *test_layout = getenv("TLSRESUME_TEST_HANDOVER_LAYOUT");
    unsigned layout =
        test_layout != NULL ? (unsigned)strtoul(test_layout, NULL, 10) : HANDOVER_LAYOUT;
    char err[512];
    int fd = -1;
    pid_t pid = handover_exec(exe, argv, out, layout, &fd, err, sizeof(err));
    if (pid < 0) {
        log_msg(LOG_ERROR, "serve", "event=upgrade_failed error=\"%s\" keeping=running", err);
        return;
    }
    u->pid = pid;
    u->fd = fd;
    u->len = 0;
    (void)fcntl(fd, F_SETFL, O_NONBLOCK);
    ev_io_init(&u->io, on_io, fd, EV_READ);
    u->io.data = u;
    ev_io_start(u->loop, &u->io);
    ev_timer_init(&u->timer, on_timeout, UPGRADE_WAIT_S, 0.0);
    u->timer.data = u;
    ev_timer_start(u->loop, &u->timer);
    log_msg(LOG_INFO, "serve", "event=upgrade_started new_pid=%d exe=%s", (int)pid, exe);
}

bool upgrade_child_exited(struct upgrade *u, pid_t pid, int status)
{
    if (u->pid <= 0 || pid != u->pid) {
        return false;
    }
    char why[96];
    snprintf(why, sizeof(why), "the new master exited (status %d) before serving", status);
    log_msg(LOG_ERROR, "serve", "event=upgrade_failed new_pid=%d error=\"%s\" keeping=running",
            (int)u->pid, why);
    upgrade_stop(u); /* reaped already: nothing to stop */
    u->pid = 0;
    return true;
}
