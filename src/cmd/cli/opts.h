/*
 * A command's command line: its option tables (value.h), its positional words, and with a
 * section its --config FILE (conf.h), read the same way for every command.
 *
 * Flags are --name VALUE or --name=VALUE; a boolean flag alone means yes and takes a
 * following yes/no word; the file loads first and flags override it (a list given as flags
 * replaces the file's). Errors name the flag: unknown (with the option it may mean), a
 * missing value, a value given to a flag, a bad value.
 */
#ifndef TLSR_CMD_CLI_OPTS_H
#define TLSR_CMD_CLI_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "value.h"

struct cli_cmd {
    const char *name;    /* "check", "keys status": in messages and help */
    const char *usage;   /* the usage line(s) after "usage: tlsresume " */
    const char *summary; /* one line: what the command does (the man page's NAME) */
    const char *about;   /* a paragraph after the usage, or NULL */
    const char *notes;   /* a paragraph after the options, or NULL */
    struct cli_table *tables;
    size_t n_tables;
    const char *section; /* non-NULL: --config FILE reads this INI section */
    /* Each word that is not an option, or NULL when there must be none; false refuses it
     * with why. */
    bool (*positional)(void *arg, const char *word, char *why, size_t cap);
    void *arg;
    char config_file[CLI_STR]; /* set by cli_parse: --config FILE, or empty */
};

enum cli_result { CLI_RUN, CLI_HELP, CLI_MAN, CLI_ERROR };

/*
 * Stores every table's defaults, then --config FILE (when the command has a section), then
 * argv[1..argc-1]. CLI_HELP when --help or -h is among the words, CLI_MAN for --man
 * (nothing else is read);
 * CLI_ERROR with "WHERE: why (see tlsresume CMD --help)" in err.
 */
enum cli_result cli_parse(struct cli_cmd *c, int argc, char **argv, char *err, size_t cap);
/* cli_parse for a command that acts on its own: prints --help or --man to stdout (returns 0) or
 * "error CMD: why" to stderr (returns 2); -1 when the command should run. */
int cli_read(struct cli_cmd *c, int argc, char **argv);

#endif
