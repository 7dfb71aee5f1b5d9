/*
 * Hand-over: what one master passes to the next so that a new process keeps every session and
 * key without a disk. The parts are the listening sockets (and the admin socket) and four
 * memory files: the session cache, the ticket key ring (two files), the 0-RTT strike register
 * and the backend session store (tlsr_cache_fd, tlsr_keyring_fds). Two ways carry them:
 *
 *   upgrade  SIGUSR2: the old master forks and execs the binary at its path with the
 *            descriptors open and TLSRESUME_HANDOVER naming them (format below); the new
 *            master adopts them, starts its workers and writes one line to the ready pipe,
 *            naming the parts it adopted; the old master then leaves those unwiped, drains
 *            its workers and exits. Both generations serve from the same sockets and memory
 *            meanwhile, so no connection is refused.
 *   systemd  where NOTIFY_SOCKET is set, every part goes to systemd's file descriptor store
 *            (FDSTORE=1, named by FDNAME); after a restart (systemctl restart, or Restart= after
 *            a crash) systemd passes them back in LISTEN_FDS / LISTEN_FDNAMES.
 *
 * TLSRESUME_HANDOVER = "layout=1 from=PID ready=FD" then "NAME=FD" for each memory part
 * (cache, ring, keys, register, upstream) and "sock=FD@ADDR" for each socket (ADDR as configured).
 * The layout number is this format's; each memory file's header carries the library's own
 * version, checked at adoption (tlsr_cache_adopt). A part that is missing, of another layout
 * or of another size is made afresh, and one log line says which and why; sockets are taken
 * whatever the layout. FDNAMEs in systemd's store: the part names, and "sock=ADDR" with ':'
 * written as %3A (':' separates LISTEN_FDNAMES).
 */
#ifndef SERVE_HANDOVER_H
#define SERVE_HANDOVER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <tlsresume/cache.h>
#include <tlsresume/tickets.h>

#include "../cli/value.h"

/* The key ring is two files: its head (ring) and its key slots (keys, in secret memory where
 * the kernel offers it; absent where one file holds both). */
enum ho_part { HO_CACHE, HO_RING, HO_KEYS, HO_REGISTER, HO_UPSTREAM, HO_NPARTS };

#define HO_MAX_SOCKS (CLI_LIST_MAX + 1)

struct ho_sock {
    char addr[CLI_STR];
    int fd; /* -1 once taken */
};

/* What a new master received. */
struct handover {
    const char *source; /* "upgrade", "systemd", or NULL when nothing came */
    bool is_layout_known;
    unsigned layout;
    int part_fd[HO_NPARTS];         /* -1 when absent (or taken) */
    const char *outcome[HO_NPARTS]; /* "adopted", "fresh", or NULL (not used here) */
    char why[HO_NPARTS][160];       /* for "fresh": the reason */
    struct ho_sock socks[HO_MAX_SOCKS];
    size_t n_socks;
    int ready_fd; /* upgrade: the old master waits on it; -1 otherwise */
    pid_t from;
    bool is_systemd; /* NOTIFY_SOCKET is set: store the parts there */
};

/* What an old master hands on (or stores in systemd). */
struct ho_out {
    int part_fd[HO_NPARTS];
    struct ho_sock socks[HO_MAX_SOCKS];
    size_t n_socks;
};

/* Nothing received (the state before handover_receive, and for --check-config). */
void handover_init(struct handover *h);
/* Closes the sockets and parts that came and were not taken (call before forking workers;
 * systemd's store drops them too). */
void handover_close_untaken(struct handover *h);

/* Reads what came (TLSRESUME_HANDOVER, else systemd's LISTEN_FDS) into h and removes it from
 * the environment; logs each descriptor that is unusable and drops it. */
void handover_receive(struct handover *h);

/* The inherited listening socket for addr (now the caller's, close-on-exec), or -1. */
int handover_take_socket(struct handover *h, const char *addr);

/* The session cache handed over as part p when it has size_bytes, or NULL: then the caller
 * makes a fresh one; the outcome and the reason are recorded for the log. */
struct tlsr_cache *handover_cache(struct handover *h, enum ho_part p, size_t size_bytes);
/* The key ring handed over, when its schedule is rotate_s/lifetime_s, or NULL (as above). */
struct tlsr_keyring *handover_keys(struct handover *h, uint32_t rotate_s, uint32_t lifetime_s);

/* After the workers started: logs what was adopted, tells the old master (the ready line) or
 * systemd (READY=1, and MAINPID after an upgrade), stores the parts of out in systemd's store
 * where it runs us, and closes every descriptor that came and was not taken. */
void handover_done(struct handover *h, const struct ho_out *out);

/* Forks and execs exe (argv as given) with out's descriptors open and named in the
 * environment; returns the child's pid and *ready_fd, the pipe on which its ready line comes,
 * or -1 with err set. layout is the format number written (HANDOVER_LAYOUT but for tests). */
pid_t handover_exec(const char *exe, char **argv, const struct ho_out *out, unsigned layout,
                    int *ready_fd, char *err, size_t cap);

/* Parses a ready line: sets adopted[p] for each part the new master adopted. False when the
 * line is not one. */
bool handover_parse_ready(const char *line, bool adopted[HO_NPARTS]);

/* The hand-over format this build writes and reads. */
#define HANDOVER_LAYOUT 1u

#endif
