/* What a command's option tables say to people: --help, the man page, and the options table
 * of docs/CONFIG.md. Both are printed from the rows (value.h), so they cannot drift. */
#ifndef TLSR_CMD_CLI_DOC_H
#define TLSR_CMD_CLI_DOC_H

#include <stdio.h>

#include <stddef.h>

#include "opts.h"

/* --help: the usage, the about text, every flag of every table with its value, help text,
 * type, range or choices and default, then the notes. */
void cli_help(const struct cli_cmd *c, FILE *out);
/* The man page tlsresume-CMD(1) in roff (man macros): the same text as --help. */
void cli_man(const struct cli_cmd *c, FILE *out);
/* The man page tlsresume(1): the commands (names[i] does summaries[i]). */
void cli_man_index(size_t n, const char *const *names, const char *const *summaries, FILE *out);
/* The man page tlsresume.ini(5): the config file's format and every row a file may hold. */
void cli_man_file(const struct cli_table *t, const char *section, FILE *out);
/* The Markdown table of the rows that a config file may hold. */
void cli_markdown(const struct cli_table *t, FILE *out);

#endif
