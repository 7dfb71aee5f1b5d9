/* Small command-line helpers shared by the subcommands. */
#ifndef TLSR_CMD_CLI_H
#define TLSR_CMD_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* Parses a whole decimal number in [min, max]; false for anything else (sign, junk, range). */
bool cli_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* Prints "error CMD: FLAG VALUE: bad or missing value (see tlsresume CMD --help)". */
void cli_bad_value(const char *cmd, const char *flag, const char *value);

#endif
