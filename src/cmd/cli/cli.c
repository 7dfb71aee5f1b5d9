/* Command-line reading shared by the commands (see cli.h): options, numbers, durations. */
#include "cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

bool cli_duration(const char *text, uint64_t min_s, uint64_t max_s, uint64_t *out)
{
    static const char units[] = "smhd";
    static const uint64_t mult[] = {1, 60, 3600, 86400};
    char num[24];
    size_t n = text != NULL ? strlen(text) : 0;
    if (n == 0 || n >= sizeof(num)) {
        return false;
    }
    memcpy(num, text, n + 1);
    uint64_t m = 1;
    const char *u = strchr(units, num[n - 1]);
    if (u != NULL && num[n - 1] != '\0') {
        m = mult[u - units];
        num[n - 1] = '\0';
    }
    uint64_t v = 0;
    if (!cli_uint(num, 0, UINT64_MAX / m, &v) || v * m < min_s || v * m > max_s) {
        return false;
    }
    *out = v * m;
    return true;
}

/* The option name (or alias) that matches word up to len bytes. */
static const struct cli_opt *find(const struct cli_opt *opts, size_t n, const char *word,
                                  size_t len)
{
    for (size_t i = 0; i < n; i++) {
        if ((strlen(opts[i].name) == len && strncmp(opts[i].name, word, len) == 0) ||
            (opts[i].alias != NULL && strlen(opts[i].alias) == len &&
             strncmp(opts[i].alias, word, len) == 0)) {
            return &opts[i];
        }
    }
    return NULL;
}

/* Edit distance of two short names (for "did you mean"), capped at 9. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a);
    size_t lb = strlen(b);
    if (la > 40 || lb > 40) {
        return 9;
    }
    size_t row[41];
    for (size_t j = 0; j <= lb; j++) {
        row[j] = j;
    }
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            best = up + 1 < best ? up + 1 : best;
            best = row[j - 1] + 1 < best ? row[j - 1] + 1 : best;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] < 9 ? row[lb] : 9;
}

static void unknown(const char *cmd, const struct cli_opt *opts, size_t n, const char *word,
                    size_t len)
{
    char name[64];
    snprintf(name, sizeof(name), "%.*s", (int)(len < 60 ? len : 60), word);
    const char *near = NULL;
    size_t best = 3; /* at most 2 edits away */
    for (size_t i = 0; i < n; i++) {
        size_t d = distance(name, opts[i].name);
        if (d < best) {
            best = d;
            near = opts[i].name;
        }
    }
    fprintf(stderr, "error %s: unknown option %s%s%s%s (see tlsresume %s --help)\n", cmd, name,
            near != NULL ? "; did you mean " : "", near != NULL ? near : "",
            near != NULL ? "?" : "", cmd);
}

int cli_parse(const char *cmd, const struct cli_opt *opts, size_t n, int argc, char **argv,
              bool (*set)(void *arg, int id, const char *value), void *arg, void (*help)(FILE *))
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return 0;
        }
        if (a[0] != '-' || a[1] == '\0') {
            if (!set(arg, CLI_POSITIONAL, a)) {
                fprintf(stderr,
                        "error %s: %s: not a valid argument here (see tlsresume %s --help)\n", cmd,
                        a, cmd);
                return 2;
            }
            continue;
        }
        const char *eq = strchr(a, '=');
        size_t len = eq != NULL ? (size_t)(eq - a) : strlen(a);
        const struct cli_opt *o = find(opts, n, a, len);
        if (o == NULL) {
            unknown(cmd, opts, n, a, len);
            return 2;
        }
        const char *v = eq != NULL ? eq + 1 : NULL;
        if (o->metavar == NULL && v != NULL) {
            fprintf(stderr, "error %s: %s takes no value\n", cmd, o->name);
            return 2;
        }
        if (o->metavar != NULL && v == NULL) {
            if (i + 1 >= argc) {
                fprintf(stderr, "error %s: %s needs a value (%s)\n", cmd, o->name, o->metavar);
                return 2;
            }
            v = argv[++i];
        }
        if (!set(arg, o->id, v)) {
            cli_bad_value(cmd, o->name, v);
            return 2;
        }
    }
    return -1;
}
