/* Small command-line helpers shared by the subcommands. */
#ifndef TLSR_CMD_CLI_H
#define TLSR_CMD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parses a whole decimal number in [min, max]; false for anything else (sign, junk, range). */
bool cli_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* Prints "error CMD: FLAG VALUE: bad or missing value (see tlsresume CMD --help)". */
void cli_bad_value(const char *cmd, const char *flag, const char *value);

/* A duration: a whole number with an optional unit s, m, h or d (none: seconds), in
 * [min_s, max_s] seconds. */
bool cli_duration(const char *text, uint64_t min_s, uint64_t max_s, uint64_t *out);

/* One option of a command: its name ("--attempts"), an alias or NULL ("-C"), and the name of
 * its value in messages (NULL: a flag, which takes none). */
struct cli_opt {
    const char *name;
    const char *alias;
    const char *metavar;
    int id;
};
#define CLI_POSITIONAL (-1)
/*
 * Reads argv[1..argc-1] against opts: each option goes to set(arg, id, value) (value NULL for
 * a flag; "--name VALUE" and "--name=VALUE" alike), each other word to set(arg,
 * CLI_POSITIONAL, word); set returns false for a bad value. --help and -h print help(stdout).
 * Errors are printed as "error CMD: ..." naming the option: unknown (and the option it may
 * have meant), a missing value, a value given to a flag, a bad value.
 * Returns 0 after --help, 2 on an error, -1 when every word was taken.
 */
int cli_parse(const char *cmd, const struct cli_opt *opts, size_t n, int argc, char **argv,
              bool (*set)(void *arg, int id, const char *value), void *arg, void (*help)(FILE *));

#endif
