/* --help and the CONFIG.md table, from the rows (see doc.h). */
#include "doc.h"

#include <ctype.h>
#include <stdbool.h>
#include <string.h>

static const char *default_text(const struct cli_opt *o)
{
    return o->def != NULL && o->def[0] != '\0' ? o->def : "none";
}

/* Prints text indented by 6 spaces, in lines of at most 100 columns (a longer word alone). */
static void wrapped(const char *text, FILE *out)
{
    enum { INDENT = 6, WIDTH = 100 };
    const char *p = text;
    while (*p != '\0') {
        size_t len = strlen(p);
        size_t take = len;
        if (len > WIDTH - INDENT) {
            take = WIDTH - INDENT;
            while (take > 0 && p[take] != ' ') {
                take--;
            }
            take = take == 0 ? strcspn(p, " ") : take;
        }
        fprintf(out, "%*s%.*s\n", INDENT, "", (int)take, p);
        p += take;
        p += strspn(p, " ");
    }
}

/* How a row is written in help and man: "--flag METAVAR, -a" (a long alias, like --tls1_2,
 * replaces the flag). */
static void tag_text(const struct cli_opt *o, char *out, size_t cap)
{
    char flag[64];
    cli_flag_name(o, flag, sizeof(flag));
    const char *metavar = cli_metavar(o);
    bool is_long_alias = o->alias != NULL && o->alias[1] == '-';
    bool has_short = o->alias != NULL && !is_long_alias;
    snprintf(out, cap, "%s%s%s%s%s", is_long_alias ? o->alias : flag,
             metavar != NULL || o->type == CLI_BOOL ? " " : "",
             metavar != NULL ? metavar : (o->type == CLI_BOOL ? "[yes|no]" : ""),
             has_short ? ", " : "", has_short ? o->alias : "");
}

/* "(type, range; default: X)", or false for a flag of no value. */
static bool type_text(const struct cli_opt *o, char *out, size_t cap)
{
    if (o->type == CLI_CUSTOM && o->choices == NULL) {
        return false;
    }
    char range[160];
    cli_range_text(o, range, sizeof(range));
    snprintf(out, cap, "(%s%s%s; default: %s)", cli_type_name(o), range[0] != '\0' ? ", " : "",
             range, default_text(o));
    return true;
}

static void help_row(const struct cli_opt *o, FILE *out)
{
    char tag[192];
    char type[256];
    tag_text(o, tag, sizeof(tag));
    fprintf(out, "  %s\n", tag);
    wrapped(o->help, out);
    if (type_text(o, type, sizeof(type))) {
        fprintf(out, "      %s\n", type);
    }
}

void cli_help(const struct cli_cmd *c, FILE *out)
{
    fprintf(out, "usage: tlsresume %s\n\n", c->usage);
    if (c->about != NULL) {
        fprintf(out, "%s\n\n", c->about);
    }
    for (size_t k = 0; k < c->n_tables; k++) {
        const struct cli_table *t = &c->tables[k];
        fprintf(out, "%s:\n", t->heading != NULL ? t->heading : "options");
        for (size_t i = 0; i < t->n; i++) {
            if (cli_is_flag(t, &t->opts[i])) {
                help_row(&t->opts[i], out);
            }
        }
        fprintf(out, "\n");
    }
    if (c->section != NULL) {
        fprintf(out,
                "  --config FILE\n      read options from FILE first (name = value lines, "
                "in no section or [%s]); flags override it\n\n",
                c->section);
    }
    if (c->notes != NULL) {
        fprintf(out, "%s\n", c->notes);
    }
}

/* Text as roff: backslashes and dashes escaped, a line never starting with a control
 * character; each newline a line break when is_breaks, else a space (filled text). */
static void roff_text(const char *text, bool is_breaks, FILE *out)
{
    bool is_line_start = true;
    for (const char *p = text; *p != '\0'; p++) {
        if (is_line_start && (*p == '.' || *p == '\'')) {
            fputs("\\&", out);
        }
        is_line_start = false;
        if (*p == '\\') {
            fputs("\\e", out);
        } else if (*p == '-') {
            fputs("\\-", out);
        } else if (*p == '\n' && !is_breaks) {
            fputc(' ', out);
        } else if (*p == '\n') {
            fputs("\n.br\n", out);
            p += strspn(p + 1, " ");
            is_line_start = true;
        } else {
            fputc(*p, out);
        }
    }
    fputc('\n', out);
}

static void roff(const char *text, FILE *out)
{
    roff_text(text, false, out);
}

static void man_row(const struct cli_opt *o, FILE *out)
{
    char tag[192];
    char type[256];
    tag_text(o, tag, sizeof(tag));
    fputs(".TP\n.B ", out);
    roff(tag, out);
    roff(o->help, out);
    if (type_text(o, type, sizeof(type))) {
        fputs(".br\n", out);
        roff(type, out);
    }
}

void cli_man(const struct cli_cmd *c, FILE *out)
{
    char page[64];
    snprintf(page, sizeof(page), "tlsresume-%s", c->name);
    for (char *p = page; *p != '\0'; p++) {
        *p = *p == ' ' ? '-' : (char)toupper((unsigned char)*p);
    }
    fprintf(out, ".TH %s 1 \"\" \"tlsresume\" \"tlsresume manual\"\n.SH NAME\n", page);
    for (char *p = page; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
    }
    char name[160];
    snprintf(name, sizeof(name), "%s - %s", page, c->summary != NULL ? c->summary : c->name);
    roff(name, out);
    fputs(".SH SYNOPSIS\n", out);
    fputs("tlsresume ", out);
    roff_text(c->usage, true, out);
    if (c->about != NULL) {
        fputs(".SH DESCRIPTION\n", out);
        roff(c->about, out);
    }
    fputs(".SH OPTIONS\n", out);
    for (size_t k = 0; k < c->n_tables; k++) {
        const struct cli_table *t = &c->tables[k];
        if (t->heading != NULL && c->n_tables > 1) {
            fputs(".SS ", out);
            roff(t->heading, out);
        }
        for (size_t i = 0; i < t->n; i++) {
            if (cli_is_flag(t, &t->opts[i])) {
                man_row(&t->opts[i], out);
            }
        }
    }
    if (c->section != NULL) {
        char line[160];
        snprintf(line, sizeof(line),
                 "read options from FILE first (name = value lines, in no section or [%s]); "
                 "flags override it",
                 c->section);
        fputs(".TP\n.B \\-\\-config\n.I FILE\n", out);
        roff(line, out);
    }
    if (c->notes != NULL) {
        fputs(".SH NOTES\n", out);
        roff(c->notes, out);
    }
    fputs(".SH SEE ALSO\ntlsresume\\-serve(1), tlsresume\\-check(1), tlsresume\\-bench(1), "
          "tlsresume\\-keys(1)\n",
          out);
}

void cli_man_index(size_t n, const char *const *names, const char *const *summaries, FILE *out)
{
    fputs(".TH TLSRESUME 1 \"\" \"tlsresume\" \"tlsresume manual\"\n.SH NAME\n", out);
    roff("tlsresume - TLS session resumption across workers and hosts: a terminating proxy and "
         "its tools",
         out);
    fputs(".SH SYNOPSIS\ntlsresume \\fICOMMAND\\fR [\\fIoptions\\fR]\n.br\n"
          "tlsresume \\-\\-version\n.SH COMMANDS\n",
          out);
    for (size_t i = 0; i < n; i++) {
        fputs(".TP\n.B ", out);
        roff(names[i], out);
        roff(summaries[i], out);
    }
    fputs(".SH FILES\n/etc/tlsresume/serve.ini: the configuration of tlsresume.service "
          "(tlsresume.ini(5)).\n.SH SEE ALSO\n",
          out);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(names[i], "version") != 0) {
            fprintf(out, "tlsresume\\-%s(1), ", names[i]);
        }
    }
    fputs("tlsresume.ini(5), libtlsresume(3)\n", out);
}

void cli_man_file(const struct cli_table *t, const char *section, FILE *out)
{
    fputs(".TH TLSRESUME.INI 5 \"\" \"tlsresume\" \"tlsresume manual\"\n.SH NAME\n", out);
    roff("tlsresume.ini - the configuration file of tlsresume serve", out);
    fputs(".SH DESCRIPTION\n", out);
    char text[640];
    snprintf(text, sizeof(text),
             "tlsresume serve --config FILE reads FILE before its flags, which override it; the "
             "package's service reads /etc/tlsresume/serve.ini. Each line is name = value, in no "
             "section or under [%s]; a line starting with # or ; is a comment, and so is a # or "
             "; after a value that follows a space. Sizes take k, m, g (powers of 1024), "
             "durations s, m, h, d; booleans are yes or no (true/false, on/off, 1/0). A list "
             "option is repeated, one value a line. A mistake stops start-up (and a reload) with "
             "the file, the line and the reason; a reload that fails keeps the running "
             "configuration.",
             section);
    roff(text, out);
    fputs(".SH OPTIONS\n", out);
    for (size_t i = 0; i < t->n; i++) {
        const struct cli_opt *o = &t->opts[i];
        char type[256];
        if ((o->tags & CLI_TAG_NO_FILE) != 0) {
            continue;
        }
        fputs(".TP\n.B ", out);
        roff(o->name, out);
        roff(o->help, out);
        if (type_text(o, type, sizeof(type))) {
            fputs(".br\n", out);
            roff(type, out);
        }
    }
    fputs(".SH SEE ALSO\ntlsresume\\-serve(1), tlsresume(1)\n", out);
}

/* A table cell's text: a | would end the cell, so it is escaped. */
static void md_cell(FILE *out, const char *text)
{
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == '|') {
            fputc('\\', out);
        }
        fputc(*p, out);
    }
}

void cli_markdown(const struct cli_table *t, FILE *out)
{
    fprintf(out, "| option (file) | flag | type | default | range | help |\n");
    fprintf(out, "|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < t->n; i++) {
        const struct cli_opt *o = &t->opts[i];
        if ((o->tags & CLI_TAG_NO_FILE) != 0) {
            continue;
        }
        char flag[64];
        char range[96];
        cli_flag_name(o, flag, sizeof(flag));
        cli_range_text(o, range, sizeof(range));
        fprintf(out, "| `%s` | `%s` | %s | %s | ", o->name, flag, cli_type_name(o),
                default_text(o));
        md_cell(out, range);
        fputs(" | ", out);
        md_cell(out, o->help);
        fputs(" |\n", out);
    }
}
