/*
 * The config file: INI text (inih) of `name = value` lines, in no section or in the command's
 * own ([serve]), read into the rows of option tables (value.h).
 */
#ifndef TLSR_CMD_CLI_CONF_H
#define TLSR_CMD_CLI_CONF_H

#include <stdbool.h>
#include <stddef.h>

#include "value.h"

/*
 * Reads len bytes of INI text at text (NUL-terminated; what names it in messages) into the
 * tables: every key must be a row that may come from a file. On error writes
 * "WHAT:LINE: name: why" into err and returns false; rows read before it keep their values.
 */
bool cli_conf_text(struct cli_table *tables, size_t n, const char *section, const char *what,
                   const char *text, size_t len, char *err, size_t cap);
/* As cli_conf_text, for the file at path (at most 1 MiB). */
bool cli_conf_file(struct cli_table *tables, size_t n, const char *section, const char *path,
                   char *err, size_t cap);

#endif
