/*
 * One option of a command, as a row of its table: the name (the config file's key with
 * underscores, the flag --with-dashes), the type, the default (text, read like user input, so
 * defaults obey the same rules), the range, where the value is stored in the command's struct,
 * and the help text. Flags, the config file, --help, the man page and docs/CONFIG.md all come
 * from the rows (opts.h, conf.h, doc.h).
 */
#ifndef TLSR_CMD_CLI_VALUE_H
#define TLSR_CMD_CLI_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CLI_STR 256
#define CLI_LIST_MAX 16
#define CLI_MAX_ROWS 96

/* The storage of a CLI_LIST row: each value given, in order. */
struct cli_list {
    char v[CLI_LIST_MAX][CLI_STR];
    size_t n;
};

/*
 * Types and their storage: BOOL a bool (a flag alone means yes; it takes a following yes/no
 * word); INT, SIZE (k, m, g) and DURATION (s, m, h, d; stored in seconds) an unsigned integer
 * of 4 or 8 bytes within [min, max]; STRING and ADDR (host:port, resolved to check it) a char
 * array; CHOICE a char array holding one of choices ("a|b"); LIST a struct cli_list; CUSTOM
 * whatever the table's custom reader makes of it (choices names its value; NULL: a flag).
 */
enum cli_type {
    CLI_BOOL,
    CLI_INT,
    CLI_SIZE,
    CLI_DURATION,
    CLI_STRING,
    CLI_CHOICE,
    CLI_ADDR,
    CLI_LIST,
    CLI_CUSTOM
};

/* Row tags: NO_FILE rows are flags only (never in a file, nor in CONFIG.md); a table may
 * take as flags only the rows of some tags (struct cli_table.flag_tags). */
#define CLI_TAG_NO_FILE 1u
#define CLI_TAG_FLEET 2u
#define CLI_TAG_ADDR 4u /* a CLI_LIST of addresses: each checked as it is read */

struct cli_opt {
    const char *name;
    enum cli_type type;
    const char *def; /* NULL: none */
    uint64_t min;
    uint64_t max;
    const char *choices; /* CHOICE: "a|b"; other types: the value's name in help ("FILE") */
    size_t offset;
    size_t size;
    const char *help;
    const char *alias; /* another flag for it ("-C"), or NULL */
    int id;            /* CUSTOM: passed to the table's reader */
    unsigned tags;
};

/* A row stored in struct S's field F. */
#define CLI_AT(S, F) offsetof(struct S, F), sizeof(((struct S *)0)->F)

/* The rows of one struct, and what reading them has done so far. */
struct cli_table {
    const struct cli_opt *opts;
    size_t n;
    void *dst;
    const char *heading; /* a section of --help, or NULL */
    unsigned flag_tags;  /* 0: every row is a flag; else only rows with one of these tags */
    /* CUSTOM rows: stores value (NULL for a flag) or writes why it is refused. */
    bool (*custom)(void *dst, const struct cli_opt *o, const char *value, char *why, size_t cap);
    unsigned char source[CLI_MAX_ROWS]; /* per row: 0 default, 1 file, 2 command line */
};

/* Where a value comes from: a list given by a later source replaces the earlier one. */
enum cli_source { CLI_FROM_DEFAULT, CLI_FROM_FILE, CLI_FROM_FLAG };

/* Stores every row's default (the caller zeroes t->dst first). A default that does not read is a
 * bug: it aborts. */
void cli_defaults(struct cli_table *t);
/*
 * Stores text as row o of t (from source src). On error writes why, without naming the row
 * or the place ("expected a size like 64m (k, m, g), got '12x'", "9 is outside 1 to 5").
 */
bool cli_set(struct cli_table *t, const struct cli_opt *o, const char *text, enum cli_source src,
             char *why, size_t cap);
/* The row named name ("cache_size") in the tables, or, for a flag ("cache-size"), with dashes
 * for underscores; *table gets its table. NULL when there is none. */
const struct cli_opt *cli_find(struct cli_table *tables, size_t n, const char *name, bool is_flag,
                               struct cli_table **table);
/* Whether t takes row o as a flag. */
bool cli_is_flag(const struct cli_table *t, const struct cli_opt *o);

/* What a value of o looks like ("a size like 64m (k, m, g)"). */
const char *cli_expected(const struct cli_opt *o);
/* "bool", "integer", ...: the type's name in help and docs. */
const char *cli_type_name(const struct cli_opt *o);
/* The flag ("--cache-size"). */
void cli_flag_name(const struct cli_opt *o, char *out, size_t cap);
/* The range ("1 to 604800 s") or the choices; empty when neither applies. */
void cli_range_text(const struct cli_opt *o, char *out, size_t cap);
/* The value's name in a usage line ("SIZE", "FILE"); NULL for a flag. */
const char *cli_metavar(const struct cli_opt *o);

#endif
