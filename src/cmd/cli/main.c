/*
 * The tlsresume program: one binary, subcommands like git. Each subcommand lives in its own
 * file (serve.c, check.c, ...) as it lands; this file only dispatches.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include <openssl/opensslv.h>

#include <tlsresume/tlsresume.h>

#include "doc.h"

int serve_main(int argc, char **argv);
int check_main(int argc, char **argv);
int bench_main(int argc, char **argv);
int keys_main(int argc, char **argv);

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

static int cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("tlsresume %s (built with %s)\n", TLSR_VERSION, OPENSSL_VERSION_TEXT);
    return 0;
}

static const struct command commands[] = {
    {"serve", "terminate TLS in front of a TCP backend, resuming sessions", serve_main},
    {"check", "tell whether a TLS server resumes sessions, how, and what it saves", check_main},
    {"bench", "load a TLS server with full or resumed handshakes, bounded", bench_main},
    {"keys", "the fleet key and ticket keys: init, status, rotate, export, import, sync",
     keys_main},
    {"version", "print the version (also --version, -V)", cmd_version},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: tlsresume <command> [options]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    }
}

/* tlsresume(1), from the commands above. */
static void man_page(void)
{
    enum { N = sizeof(commands) / sizeof(commands[0]) };
    const char *names[N];
    const char *summaries[N];
    for (size_t i = 0; i < N; i++) {
        names[i] = commands[i].name;
        summaries[i] = commands[i].summary;
    }
    cli_man_index(N, names, summaries, stdout);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--man") == 0) {
        man_page();
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0) {
        return cmd_version(argc - 1, argv + 1);
    }
    /* A peer that resets a connection must cost that connection only (EPIPE), never the
     * process: bench and check write to servers that may vanish mid-handshake. */
    signal(SIGPIPE, SIG_IGN);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) == 0) {
            return commands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "error tlsresume: unknown command '%s' (try 'tlsresume help')\n", argv[1]);
    return 2;
}
