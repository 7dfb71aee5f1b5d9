/*
 * The master's sockets and descriptors: addresses resolved (with the address in every error),
 * listeners bound, the backends resolved once per configuration, and the descriptor limit
 * raised toward what max_connections needs.
 */
#include "serve_listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../cli/cli.h"
#include "../cli/log.h"

/* Resolves an address, prefixing the reason with the address. */
static bool resolve(const char *text, struct sockaddr_storage *out, socklen_t *out_len, char *err,
                    size_t cap)
{
    char why[200];
    if (!cli_resolve(text, out, out_len, why, sizeof(why))) {
        snprintf(err, cap, "%.200s: %s", text, why);
        return false;
    }
    return true;
}

/* Every backend of cfg, resolved into out (with its TLS name and session key when up is
 * not NULL); false (err says which) when one does not resolve. */
bool resolve_backends(const struct serve_config *cfg, const struct upstream *up,
                      struct backend_addr *out, size_t *n, char *err, size_t cap)
{
    for (size_t i = 0; i < cfg->backend.n; i++) {
        memset(&out[i], 0, sizeof(out[i]));
        if (!resolve(cfg->backend.v[i], &out[i].addr, &out[i].len, err, cap)) {
            return false;
        }
        snprintf(out[i].name, sizeof(out[i].name), "%s", cfg->backend.v[i]);
        if (up != NULL) {
            upstream_endpoint(up, cfg, &out[i]);
        }
    }
    *n = cfg->backend.n;
    return true;
}

int bind_listener(const char *addr, int backlog, char *err, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    if (!resolve(addr, &ss, &len, err, cap)) {
        return -1;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        (ss.ss_family == AF_INET6 &&
         setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) != 0) ||
        /* Accepted sockets inherit it: no setsockopt per connection. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, backlog) != 0) {
        snprintf(err, cap, "%s: %s", addr, strerror(errno));
        if (fd >= 0) {
            close(fd);
        }
        return -1;
    }
    return fd;
}

/* Raises the descriptor limit toward what max_connections needs in one worker (two per
 * connection); says so when the hard limit is lower. */
void raise_nofile(const struct serve_config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return;
    }
    rlim_t need = (rlim_t)(2 * cfg->max_connections + 64);
    if (rl.rlim_cur < need) {
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need) {
        return;
    }
    /* A worker may hold every connection, but connections are spread over the workers: warn
     * only when the workers together cannot hold max_connections. */
    uint64_t per_worker = rl.rlim_cur > 64 ? (uint64_t)(rl.rlim_cur - 64) / 2 : 0;
    bool is_enough = per_worker * cfg->workers >= cfg->max_connections;
    log_msg(is_enough ? LOG_INFO : LOG_WARN, "serve",
            "event=fd_limit rlimit_nofile=%llu connections_per_worker=%llu max_connections=%llu "
            "note=\"%s\"",
            (unsigned long long)rl.rlim_cur, (unsigned long long)per_worker,
            (unsigned long long)cfg->max_connections,
            is_enough ? "the workers together hold max_connections"
                      : "RLIMIT_NOFILE is too low for max_connections: beyond it accepting pauses "
                        "(raise LimitNOFILE= or ulimit -n, or lower max_connections)");
}
