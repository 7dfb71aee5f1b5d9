/* Small command-line helpers (see cli.h): the one checked wrapper around strtoull. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

bool cli_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    if (text == NULL || text[0] < '0' || text[0] > '9') {
        return false;
    }
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max) {
        return false;
    }
    *out = v;
    return true;
}

void cli_bad_value(const char *cmd, const char *flag, const char *value)
{
    bool has_value = value != NULL && flag[0] == '-';
    fprintf(stderr, "error %s: %s%s%s: bad or missing value (see tlsresume %s --help)\n", cmd, flag,
            has_value ? " " : "", has_value ? value : "", cmd);
}
