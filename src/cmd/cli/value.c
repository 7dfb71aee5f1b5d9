/*
 * Rows of an option table (see value.h): reading one value into its field, defaults, finding
 * a row by its name or flag, and the words help and docs use for each type.
 *
 * A value is stored only once it has read whole and within range; integers go into fields of
 * 4 or 8 bytes (a row whose maximum does not fit its field is a bug, caught at defaults).
 */
#include "value.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static bool in_choices(const char *choices, const char *text)
{
    size_t n = strlen(text);
    for (const char *p = choices; p != NULL && *p != '\0';) {
        const char *bar = strchr(p, '|');
        size_t len = bar != NULL ? (size_t)(bar - p) : strlen(p);
        if (len == n && strncmp(p, text, n) == 0) {
            return true;
        }
        p = bar != NULL ? bar + 1 : NULL;
    }
    return false;
}

static bool is_number(enum cli_type type)
{
    return type == CLI_INT || type == CLI_SIZE || type == CLI_DURATION;
}

static bool store_number(const struct cli_opt *o, void *field, const char *text, char *why,
                         size_t cap)
{
    static const uint64_t size_mult[] = {1024, 1024 * 1024, 1024 * 1024 * 1024};
    static const uint64_t time_mult[] = {1, 60, 3600, 86400};
    uint64_t v = 0;
    bool is_read = o->type == CLI_SIZE       ? cli_scaled(text, "kmg", size_mult, &v)
                   : o->type == CLI_DURATION ? cli_scaled(text, "smhd", time_mult, &v)
                                             : cli_uint(text, 0, UINT64_MAX, &v);
    if (!is_read) {
        snprintf(why, cap, "expected %s, got '%.64s'", cli_expected(o), text);
        return false;
    }
    if (v < o->min || v > o->max) {
        snprintf(why, cap, "%llu is outside %llu to %llu", (unsigned long long)v,
                 (unsigned long long)o->min, (unsigned long long)o->max);
        return false;
    }
    if (o->size == sizeof(uint32_t)) {
        *(uint32_t *)field = (uint32_t)v;
    } else {
        *(uint64_t *)field = v;
    }
    return true;
}

static bool store_text(const struct cli_opt *o, void *field, const char *text, char *why,
                       size_t cap)
{
    if (o->type == CLI_CHOICE && !in_choices(o->choices, text)) {
        snprintf(why, cap, "expected one of %s, got '%.64s'", o->choices, text);
        return false;
    }
    if (strlen(text) >= o->size) {
        snprintf(why, cap, "longer than %zu bytes", o->size - 1);
        return false;
    }
    char reason[192];
    if (o->type == CLI_ADDR && !cli_resolve(text, NULL, NULL, reason, sizeof(reason))) {
        snprintf(why, cap, "%.64s: %s", text, reason);
        return false;
    }
    memcpy(field, text, strlen(text) + 1);
    return true;
}

bool cli_set(struct cli_table *t, const struct cli_opt *o, const char *text, enum cli_source src,
             char *why, size_t cap)
{
    void *field = (char *)t->dst + o->offset;
    size_t row = (size_t)(o - t->opts);
    bool is_replaced = t->source[row] < (unsigned char)src;
    t->source[row] = (unsigned char)src;
    switch (o->type) {
    case CLI_BOOL:
        if (!cli_bool(text, (bool *)field)) {
            snprintf(why, cap, "expected yes or no, got '%.64s'", text);
            return false;
        }
        return true;
    case CLI_INT:
    case CLI_SIZE:
    case CLI_DURATION:
        return store_number(o, field, text, why, cap);
    case CLI_STRING:
    case CLI_CHOICE:
    case CLI_ADDR:
        return store_text(o, field, text, why, cap);
    case CLI_LIST: {
        struct cli_list *l = field;
        if (is_replaced) {
            l->n = 0;
        }
        if (l->n >= CLI_LIST_MAX || strlen(text) >= CLI_STR) {
            snprintf(why, cap, "at most %d values of %d bytes", CLI_LIST_MAX, CLI_STR - 1);
            return false;
        }
        char reason[192];
        if ((o->tags & CLI_TAG_ADDR) != 0 &&
            !cli_resolve(text, NULL, NULL, reason, sizeof(reason))) {
            snprintf(why, cap, "%.64s: %s", text, reason);
            return false;
        }
        memcpy(l->v[l->n++], text, strlen(text) + 1);
        return true;
    }
    case CLI_CUSTOM:
        why[0] = '\0';
        if (!t->custom(t->dst, o, text, why, cap)) {
            if (why[0] == '\0') {
                snprintf(why, cap, "expected %s, got '%.64s'", cli_expected(o),
                         text != NULL ? text : "");
            }
            return false;
        }
        return true;
    }
    return false;
}

void cli_defaults(struct cli_table *t)
{
    memset(t->source, 0, sizeof(t->source));
    if (t->n > CLI_MAX_ROWS) {
        fprintf(stderr, "bug: %zu rows in an option table (at most %d)\n", t->n, CLI_MAX_ROWS);
        abort();
    }
    for (size_t i = 0; i < t->n; i++) {
        const struct cli_opt *o = &t->opts[i];
        char why[256];
        bool is_narrow = is_number(o->type) && o->size == sizeof(uint32_t) && o->max > UINT32_MAX;
        bool is_bad_size =
            is_number(o->type) && o->size != sizeof(uint32_t) && o->size != sizeof(uint64_t);
        if (is_narrow || is_bad_size) {
            fprintf(stderr, "bug: option %s: a field of %zu bytes\n", o->name, o->size);
            abort();
        }
        if (o->def != NULL && !cli_set(t, o, o->def, CLI_FROM_DEFAULT, why, sizeof(why))) {
            fprintf(stderr, "bug: option %s: default: %s\n", o->name, why);
            abort();
        }
    }
}

static bool same_name(const char *row, const char *name, bool is_flag)
{
    while (*row != '\0' && (*row == *name || (is_flag && *row == '_' && *name == '-'))) {
        row++;
        name++;
    }
    return *row == '\0' && *name == '\0';
}

const struct cli_opt *cli_find(struct cli_table *tables, size_t n, const char *name, bool is_flag,
                               struct cli_table **table)
{
    for (size_t k = 0; k < n; k++) {
        for (size_t i = 0; i < tables[k].n; i++) {
            if (same_name(tables[k].opts[i].name, name, is_flag)) {
                *table = &tables[k];
                return &tables[k].opts[i];
            }
        }
    }
    return NULL;
}

bool cli_is_flag(const struct cli_table *t, const struct cli_opt *o)
{
    return t->flag_tags == 0 || (o->tags & t->flag_tags) != 0;
}

const char *cli_expected(const struct cli_opt *o)
{
    switch (o->type) {
    case CLI_BOOL:
        return "yes or no";
    case CLI_INT:
        return "a whole number";
    case CLI_SIZE:
        return "a size like 64m (k, m, g)";
    case CLI_DURATION:
        return "a duration like 30s, 5m, 1h, 7d";
    case CLI_ADDR:
        return "host:port";
    case CLI_CHOICE:
        return o->choices;
    default:
        return o->choices != NULL ? o->choices : "a value";
    }
}

const char *cli_type_name(const struct cli_opt *o)
{
    static const char *const names[] = {"bool",   "integer", "size", "duration", "string",
                                        "choice", "address", "list", "value"};
    return o->type == CLI_CUSTOM && o->choices == NULL ? "flag" : names[o->type];
}

void cli_flag_name(const struct cli_opt *o, char *out, size_t cap)
{
    snprintf(out, cap, "--%s", o->name);
    for (char *p = out; *p != '\0'; p++) {
        *p = *p == '_' ? '-' : *p;
    }
}

void cli_range_text(const struct cli_opt *o, char *out, size_t cap)
{
    out[0] = '\0';
    if (is_number(o->type)) {
        snprintf(out, cap, "%llu to %llu%s", (unsigned long long)o->min, (unsigned long long)o->max,
                 o->type == CLI_SIZE ? " bytes" : (o->type == CLI_DURATION ? " s" : ""));
    } else if (o->type == CLI_CHOICE) {
        snprintf(out, cap, "%s", o->choices);
    }
}

const char *cli_metavar(const struct cli_opt *o)
{
    switch (o->type) {
    case CLI_BOOL:
        return NULL;
    case CLI_INT:
        return o->choices != NULL ? o->choices : "N";
    case CLI_SIZE:
        return "SIZE";
    case CLI_DURATION:
        return "DURATION";
    case CLI_ADDR:
        return "HOST:PORT";
    case CLI_CHOICE:
        return o->choices;
    default:
        return o->type == CLI_CUSTOM ? o->choices : (o->choices != NULL ? o->choices : "VALUE");
    }
}
