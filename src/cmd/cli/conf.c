/*
 * The config file (see conf.h). inih reads the lines; each `name = value` goes to the row of
 * that name, as the command line's --name would, and the first error stops the file with its
 * line. Each line is checked and cleaned first, keeping the numbering: inih reads at most 200
 * bytes a line and would split a longer one silently, would stop at a NUL, would take ':' as a
 * separator and a '#' after a value as part of it; those are refused (or the comment dropped)
 * here, naming the line.
 */
#include "conf.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

struct file_ctx {
    struct cli_table *tables;
    size_t n;
    const char *section;
    char *msg;
    size_t cap;
    bool has_error;
};

static int on_ini(void *user, const char *section, const char *name, const char *value)
{
    struct file_ctx *f = user;
    if (f->has_error) {
        return 1;
    }
    struct cli_table *t = NULL;
    const struct cli_opt *o = cli_find(f->tables, f->n, name, false, &t);
    char why[320];
    if (section[0] != '\0' && strcmp(section, f->section) != 0) {
        snprintf(f->msg, f->cap, "unknown section [%.64s] (only [%s])", section, f->section);
    } else if (o == NULL || (o->tags & CLI_TAG_NO_FILE) != 0) {
        snprintf(f->msg, f->cap, "unknown option '%.64s'", name);
    } else if (!cli_set(t, o, value, CLI_FROM_FILE, why, sizeof(why))) {
        snprintf(f->msg, f->cap, "%s: %s", o->name, why);
    } else {
        return 1;
    }
    f->has_error = true;
    return 0;
}

/*
 * Copies one line into out (cap bytes), as inih is to read it: without a CR, and without an
 * inline comment (a '#' or ';' after a space or tab: values hold neither). A setting line must
 * be `name = value`; false with why otherwise.
 */
static bool clean_line(const char *line, size_t len, char *out, size_t cap, char *why,
                       size_t why_cap)
{
    if (len > 0 && line[len - 1] == '\r') {
        len--;
    }
    if (len >= cap) {
        snprintf(why, why_cap, "line longer than %zu characters", cap - 1);
        return false;
    }
    memcpy(out, line, len);
    out[len] = '\0';
    size_t lead = strspn(out, " \t");
    if (out[lead] == '\0' || out[lead] == '#' || out[lead] == ';' || out[lead] == '[') {
        return true;
    }
    for (char *p = out + lead; *p != '\0'; p++) {
        if ((*p == '#' || *p == ';') && (p[-1] == ' ' || p[-1] == '\t')) {
            *p = '\0';
            break;
        }
    }
    const char *eq = strchr(out, '=');
    const char *colon = strchr(out, ':');
    if (eq == NULL || (colon != NULL && colon < eq)) {
        snprintf(why, why_cap, "expected name = value%s",
                 colon != NULL && (eq == NULL || colon < eq) ? " (':' is not a separator)" : "");
        return false;
    }
    return true;
}

/* The text as inih is to read it (see clean_line), line for line; NULL with err on a bad line. */
static char *clean_text(const char *what, const char *text, size_t len, char *err, size_t cap)
{
    enum { WIDTH = 199 };        /* inih reads 200 bytes a line, and would split a longer one */
    char *out = malloc(len + 2); /* each line and its newline, one added at the end */
    if (out == NULL) {
        snprintf(err, cap, "%s: out of memory", what);
        return NULL;
    }
    size_t used = 0;
    unsigned line = 1;
    for (size_t at = 0; at < len; line++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t n = nl != NULL ? (size_t)(nl - (text + at)) : len - at;
        char why[96];
        if (memchr(text + at, '\0', n) != NULL) {
            snprintf(err, cap, "%s:%u: a NUL byte in the file", what, line);
            free(out);
            return NULL;
        }
        if (!clean_line(text + at, n, out + used, WIDTH, why, sizeof(why))) {
            snprintf(err, cap, "%s:%u: %s", what, line,
                     n >= WIDTH ? "line longer than 198 characters" : why);
            free(out);
            return NULL;
        }
        used += strlen(out + used);
        out[used++] = '\n';
        at += n + 1;
    }
    out[used] = '\0';
    return out;
}

bool cli_conf_text(struct cli_table *tables, size_t n, const char *section, const char *what,
                   const char *text, size_t len, char *err, size_t cap)
{
    char *clean = clean_text(what, text, len, err, cap);
    if (clean == NULL) {
        return false;
    }
    char msg[512] = "";
    struct file_ctx f = {tables, n, section, msg, sizeof(msg), false};
    int line = ini_parse_string(clean, on_ini, &f);
    free(clean);
    if (line != 0) {
        snprintf(err, cap, "%s:%d: %s", what, line, f.has_error ? msg : "syntax error");
        return false;
    }
    return true;
}

bool cli_conf_file(struct cli_table *tables, size_t n, const char *section, const char *path,
                   char *err, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) {
        snprintf(err, cap, "%s: cannot open: %s", path, strerror(errno));
        return false;
    }
    enum { MAX_FILE = 1024 * 1024 };
    char *text = malloc(MAX_FILE + 1);
    size_t len = text != NULL ? fread(text, 1, MAX_FILE + 1, fp) : 0;
    bool is_error = ferror(fp) != 0;
    fclose(fp);
    bool is_ok = false;
    if (text == NULL || is_error) {
        snprintf(err, cap, "%s: cannot read", path);
    } else if (len > MAX_FILE) {
        snprintf(err, cap, "%s: larger than 1 MiB", path);
    } else {
        text[len] = '\0';
        is_ok = cli_conf_text(tables, n, section, path, text, len, err, cap);
    }
    free(text);
    return is_ok;
}
