/*
 * The old master's side of a binary upgrade (SIGUSR2; serve_handover.h has the hand-over
 * itself): exec the binary at serve's path with the parts, then wait, bounded, for the new
 * master's ready line. on_ready hears which parts it adopted; a new master that exits, closes
 * its pipe or stays silent for UPGRADE_WAIT_S calls the upgrade off (logged; the running master
 * goes on, and a silent new master is told to stop).
 */
#ifndef SERVE_UPGRADE_H
#define SERVE_UPGRADE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <ev.h>

#include "serve_handover.h"

/* How long a new master may take to serve before the upgrade is called off. */
#define UPGRADE_WAIT_S 30.0

typedef void (*upgrade_ready_fn)(void *arg, pid_t new_pid, const bool adopted[HO_NPARTS],
                                 const char *parts);

struct upgrade {
    struct ev_loop *loop;
    upgrade_ready_fn on_ready;
    void *arg;
    pid_t pid; /* the new master while an upgrade is under way, else 0 */
    int fd;    /* its ready pipe, or -1 */
    ev_io io;
    ev_timer timer;
    char line[512];
    size_t len;
};

void upgrade_init(struct upgrade *u, struct ev_loop *loop, upgrade_ready_fn on_ready, void *arg);
/* Starts one (logged); an upgrade already under way is not started twice. exe is the path the
 * running binary was started from; argv the whole command line. */
void upgrade_start(struct upgrade *u, const char *exe, char **argv, const struct ho_out *out);
/* A child exited: true when it was the new master, before it was ready (the upgrade failed). */
bool upgrade_child_exited(struct upgrade *u, pid_t pid, int status);
/* Stops the watchers and closes the pipe (a forked worker, the master's cleanup). */
void upgrade_stop(struct upgrade *u);

#endif
