/*
 * Reading a command line against a command's tables (see opts.h). Two passes: the first finds
 * --help and --config, so that the file loads before the flags that override it; the second
 * reads each word in order.
 */
#include "opts.h"

#include <string.h>

#include "cli.h"
#include "conf.h"
#include "doc.h"

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

/* "; did you mean --json?" for the nearest flag at most 2 edits away, else "". */
static void near_flag(const struct cli_cmd *c, const char *word, char *out, size_t cap)
{
    size_t best = 3;
    out[0] = '\0';
    for (size_t k = 0; k < c->n_tables; k++) {
        const struct cli_table *t = &c->tables[k];
        for (size_t i = 0; i < t->n; i++) {
            char flag[64];
            cli_flag_name(&t->opts[i], flag, sizeof(flag));
            size_t d = distance(word, flag);
            if (cli_is_flag(t, &t->opts[i]) && d < best) {
                best = d;
                snprintf(out, cap, "; did you mean %s?", flag);
            }
        }
    }
}

/* The row a word names: "--name" (dashes), or a row's alias. */
static const struct cli_opt *find_flag(struct cli_cmd *c, const char *word, size_t len,
                                       struct cli_table **table)
{
    char name[64];
    if (len >= sizeof(name)) {
        return NULL;
    }
    memcpy(name, word, len);
    name[len] = '\0';
    for (size_t k = 0; k < c->n_tables; k++) {
        for (size_t i = 0; i < c->tables[k].n; i++) {
            const char *alias = c->tables[k].opts[i].alias;
            if (alias != NULL && strcmp(alias, name) == 0) {
                *table = &c->tables[k];
                return &c->tables[k].opts[i];
            }
        }
    }
    if (strncmp(name, "--", 2) != 0) {
        return NULL;
    }
    return cli_find(c->tables, c->n_tables, name + 2, true, table);
}

static bool is_help(const char *word)
{
    return strcmp(word, "--help") == 0 || strcmp(word, "-h") == 0;
}

/* First pass: --help anywhere, and --config FILE. */
static enum cli_result find_config(struct cli_cmd *c, int argc, char **argv, char *err, size_t cap)
{
    c->config_file[0] = '\0';
    for (int i = 1; i < argc; i++) {
        if (is_help(argv[i])) {
            return CLI_HELP;
        }
        if (strcmp(argv[i], "--man") == 0) {
            return CLI_MAN;
        }
        if (c->section == NULL) {
            continue;
        }
        const char *v = NULL;
        if (strcmp(argv[i], "--config") == 0) {
            v = i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0 ? argv[++i] : "";
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            v = argv[i] + 9;
        }
        if (v != NULL && (v[0] == '\0' || strlen(v) >= sizeof(c->config_file))) {
            snprintf(err, cap, "--config: needs a file name");
            return CLI_ERROR;
        }
        if (v != NULL) {
            snprintf(c->config_file, sizeof(c->config_file), "%s", v);
        }
    }
    return CLI_RUN;
}

/* Reads the option at argv[*i] (advancing past its value); false with err on a problem. */
static bool read_option(struct cli_cmd *c, int argc, char **argv, int *i, char *err, size_t cap)
{
    const char *a = argv[*i];
    const char *eq = strchr(a, '=');
    size_t len = eq != NULL ? (size_t)(eq - a) : strlen(a);
    struct cli_table *t = NULL;
    const struct cli_opt *o = find_flag(c, a, len, &t);
    if (o == NULL || !cli_is_flag(t, o)) {
        char name[64];
        char near[96];
        snprintf(name, sizeof(name), "%.*s", (int)(len < 63 ? len : 63), a);
        near_flag(c, name, near, sizeof(near));
        snprintf(err, cap, "%.*s: %s%s", (int)(len < 64 ? len : 64), a,
                 o == NULL ? "unknown option"
                           : "not an option of this command (a config file "
                             "setting of tlsresume serve)",
                 near);
        return false;
    }
    const char *value = eq != NULL ? eq + 1 : NULL;
    const char *metavar = cli_metavar(o);
    bool word = false;
    if (o->type == CLI_BOOL && value == NULL) {
        value = *i + 1 < argc && cli_bool(argv[*i + 1], &word) ? argv[++*i] : "yes";
    } else if (o->type == CLI_CUSTOM && metavar == NULL && value != NULL) {
        snprintf(err, cap, "%.*s: takes no value", (int)(len < 64 ? len : 64), a);
        return false;
    } else if (metavar != NULL && value == NULL) {
        if (*i + 1 >= argc || strncmp(argv[*i + 1], "--", 2) == 0) {
            snprintf(err, cap, "%s: needs a value (%s)", a, cli_expected(o));
            return false;
        }
        value = argv[++*i];
    }
    char why[320];
    if (!cli_set(t, o, value, CLI_FROM_FLAG, why, sizeof(why))) {
        snprintf(err, cap, "%.*s: %s", (int)(len < 64 ? len : 64), a, why);
        return false;
    }
    return true;
}

static enum cli_result fail(const struct cli_cmd *c, char *err, size_t cap)
{
    size_t n = strlen(err);
    if (n < cap) {
        snprintf(err + n, cap - n, " (see tlsresume %s --help)", c->name);
    }
    return CLI_ERROR;
}

enum cli_result cli_parse(struct cli_cmd *c, int argc, char **argv, char *err, size_t cap)
{
    for (size_t k = 0; k < c->n_tables; k++) {
        cli_defaults(&c->tables[k]);
    }
    enum cli_result first = find_config(c, argc, argv, err, cap);
    if (first != CLI_RUN) {
        return first == CLI_ERROR ? fail(c, err, cap) : first;
    }
    if (c->config_file[0] != '\0' &&
        !cli_conf_file(c->tables, c->n_tables, c->section, c->config_file, err, cap)) {
        return CLI_ERROR;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (c->section != NULL && strcmp(a, "--config") == 0) {
            i++;
            continue;
        }
        if (c->section != NULL && strncmp(a, "--config=", 9) == 0) {
            continue;
        }
        if (a[0] == '-' && a[1] != '\0') {
            if (!read_option(c, argc, argv, &i, err, cap)) {
                return fail(c, err, cap);
            }
            continue;
        }
        char why[256] = "not a valid argument here";
        if (c->positional == NULL || !c->positional(c->arg, a, why, sizeof(why))) {
            snprintf(err, cap, "%.64s: %s", a, why);
            return fail(c, err, cap);
        }
    }
    return CLI_RUN;
}

int cli_read(struct cli_cmd *c, int argc, char **argv)
{
    char err[512];
    enum cli_result r = cli_parse(c, argc, argv, err, sizeof(err));
    if (r == CLI_HELP || r == CLI_MAN) {
        (r == CLI_HELP ? cli_help : cli_man)(c, stdout);
        return 0;
    }
    if (r == CLI_ERROR) {
        fprintf(stderr, "error %s: %s\n", c->name, err);
        return 2;
    }
    return -1;
}
