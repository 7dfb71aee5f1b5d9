/*
 * The two outputs of `tlsresume check`: a readable table (colours only on a terminal) and one
 * JSON object whose schema is docs/check-json.md. Timing is the median and 90th percentile of
 * TCP connect plus handshake, full against resumed, and the saving in percent.
 */
#include "check.h"

#include "check_trace.h"
#include "../cli/cli.h"

#include <stdlib.h>
#include <string.h>

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of n values; -1 when there are none. */
static double percentile(const double *v, size_t n, double p)
{
    if (n == 0) {
        return -1;
    }
    double sorted[3 * CHECK_MAX_ATTEMPTS];
    memcpy(sorted, v, n * sizeof(*v));
    qsort(sorted, n, sizeof(*sorted), cmp_double);
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999);
    rank = rank < 1 ? 1 : (rank > n ? n : rank);
    return sorted[rank - 1];
}

static double saving(const struct check_report *r)
{
    double full = percentile(r->full_ms, r->n_full, 50);
    double resumed = percentile(r->resumed_ms, r->n_resumed, 50);
    if (full <= 0 || resumed < 0) {
        return -1;
    }
    return (full - resumed) / full * 100.0;
}

static const char *mark(const struct mechanism *m, bool has_color)
{
    if (!m->is_supported) {
        return has_color ? "\033[2mno\033[0m" : "no";
    }
    if (m->resumed == m->attempts) {
        return has_color ? "\033[32myes\033[0m" : "yes";
    }
    return has_color ? "\033[33mpartial\033[0m" : "partial";
}

static void names_text(const struct key_names *k, char *out, size_t cap)
{
    cli_join(k->v[0], sizeof(k->v[0]), k->n, out, cap);
}

void check_print_table(FILE *out, const struct check_report *r, bool has_color)
{
    char names[CHECK_MAX_NAMES * 18 + 1];
    fprintf(out, "tlsresume check %s%s%s, %u attempts per mechanism\n\n", r->target,
            r->servername[0] ? " servername " : "", r->servername, r->attempts);
    fprintf(out, "%-22s %-9s %-9s %s\n", "mechanism", "resumes", "resumed", "detail");
    if (!r->tls12.is_supported) {
        fprintf(out, "%-22s %-9s %-9s %s\n", "TLS 1.2", "no", "-", r->tls12.error);
    } else {
        fprintf(out, "%-22s %-9s %u/%-7u session ID length %zu\n", "TLS 1.2 session ID",
                mark(&r->tls12.id, has_color), r->tls12.id.resumed, r->tls12.id.attempts,
                r->tls12.session_id_len);
        names_text(&r->tls12.names, names, sizeof(names));
        if (r->tls12.ticket.is_supported) {
            fprintf(out, "%-22s %-9s %u/%-7u lifetime hint %ld s, renewed %s, key names %s\n",
                    "TLS 1.2 ticket", mark(&r->tls12.ticket, has_color), r->tls12.ticket.resumed,
                    r->tls12.ticket.attempts, r->tls12.lifetime_hint_s,
                    r->tls12.is_renewed ? "yes" : "no", names[0] ? names : "-");
        } else {
            fprintf(out, "%-22s %-9s %-9s %s\n", "TLS 1.2 ticket",
                    mark(&r->tls12.ticket, has_color), "-", "the server sends no tickets");
        }
    }
    if (!r->tls13.is_supported) {
        fprintf(out, "%-22s %-9s %-9s %s\n", "TLS 1.3", "no", "-", r->tls13.error);
    } else if (!r->tls13.ticket.is_supported) {
        fprintf(out, "%-22s %-9s %-9s %s\n", "TLS 1.3 ticket (PSK)",
                mark(&r->tls13.ticket, has_color), "-", "the server sends no tickets");
    } else {
        names_text(&r->tls13.names, names, sizeof(names));
        char after[32] = "-";
        if (r->tls13.tickets_after_resumption >= 0) {
            snprintf(after, sizeof(after), "%ld", r->tls13.tickets_after_resumption);
        }
        fprintf(out,
                "%-22s %-9s %u/%-7u %u tickets per handshake, %s after a resumption, lifetime "
                "%ld s, single use %s, mode %s, early data %lu bytes, key names %s\n",
                "TLS 1.3 ticket (PSK)", mark(&r->tls13.ticket, has_color), r->tls13.ticket.resumed,
                r->tls13.ticket.attempts, r->tls13.tickets_per_handshake, after,
                r->tls13.lifetime_s,
                r->tls13.is_single_use < 0 ? "unknown" : (r->tls13.is_single_use ? "yes" : "no"),
                r->tls13.psk_mode != NULL ? r->tls13.psk_mode : "-", r->tls13.max_early_data,
                names[0] ? names : "-");
    }
    double s = saving(r);
    fprintf(
        out, "\nhandshake time: full median %.1f ms (p90 %.1f), resumed median %.1f ms (p90 %.1f)",
        percentile(r->full_ms, r->n_full, 50), percentile(r->full_ms, r->n_full, 90),
        percentile(r->resumed_ms, r->n_resumed, 50), percentile(r->resumed_ms, r->n_resumed, 90));
    if (s >= 0) {
        fprintf(out, ", resumption saves %.0f%%", s);
    }
    fprintf(out, "\n");
    if (r->presented.is_seen) {
        fprintf(out, "presented: certificate %s, OCSP staple %s, client certificate %s\n",
                r->presented.key[0] ? r->presented.key : "-",
                r->presented.has_staple ? "yes" : "no",
                r->presented.is_client_cert_requested ? "requested" : "not requested");
    }
    if (r->has_session_file) {
        fprintf(out, "session file: %s\n",
                r->file_error[0] ? r->file_error
                                 : (!r->is_file_offered
                                        ? "no saved session for this server"
                                        : (r->is_file_resumed ? "saved session resumed"
                                                              : "saved session did not resume")));
    }
    const struct early_report *e = &r->early;
    if (e->is_tested) {
        if (!e->is_offered) {
            fprintf(out, "early data: not offered%s%s\n", e->error[0] ? ": " : "", e->error);
        } else {
            fprintf(out,
                    "early data: up to %lu bytes, %s; replays: %u sent, %u accepted, %u refused, "
                    "%u without answer%s%s%s\n",
                    e->max_early_data, e->is_accepted ? "accepted" : "refused", e->replays,
                    e->replays_accepted, e->replays_refused, e->replays_unknown,
                    strcmp(e->probe, "ran") == 0 ? "" : " (replay probe not run)",
                    e->error[0] ? "; " : "", e->error);
        }
    }
    for (size_t i = 0; i < r->n_hints; i++) {
        fprintf(out, "hint: %s\n", r->hints[i]);
    }
    if (r->expect_failed[0] != '\0') {
        fprintf(out, "expected but not resuming: %s\n", r->expect_failed);
    }
    fprintf(out, "result: %s\n",
            r->exit_code == 0 ? "every supported mechanism resumed"
                              : "some mechanism did not resume every time");
}

static void json_string(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            fprintf(out, "\\%c", c);
        } else if (c < 0x20) {
            fprintf(out, "\\u%04x", c);
        } else {
            fputc(c, out);
        }
    }
    fputc('"', out);
}

static void json_mech(FILE *out, const char *name, const struct mechanism *m)
{
    fprintf(out, "\"%s\":{\"supported\":%s,\"attempts\":%u,\"resumed\":%u", name,
            m->is_supported ? "true" : "false", m->attempts, m->resumed);
}

static void json_names(FILE *out, const struct key_names *k)
{
    fprintf(out, ",\"key_names\":[");
    for (size_t i = 0; i < k->n; i++) {
        fprintf(out, "%s\"%s\"", i ? "," : "", k->v[i]);
    }
    fprintf(out, "]");
}

static void json_ms(FILE *out, const char *name, const double *v, size_t n)
{
    if (n == 0) {
        fprintf(out, "\"%s\":null", name);
        return;
    }
    fprintf(out, "\"%s\":{\"count\":%zu,\"median\":%.3f,\"p90\":%.3f}", name, n,
            percentile(v, n, 50), percentile(v, n, 90));
}

void check_print_json(FILE *out, const struct check_report *r)
{
    fprintf(out, "{\"target\":");
    json_string(out, r->target);
    fprintf(out, ",\"servername\":");
    json_string(out, r->servername);
    fprintf(out, ",\"attempts\":%u,\"tls12\":{\"supported\":%s,\"error\":", r->attempts,
            r->tls12.is_supported ? "true" : "false");
    json_string(out, r->tls12.error);
    fprintf(out, ",");
    json_mech(out, "session_id", &r->tls12.id);
    fprintf(out, ",\"session_id_length\":%zu},", r->tls12.session_id_len);
    json_mech(out, "ticket", &r->tls12.ticket);
    fprintf(out, ",\"lifetime_hint_s\":%ld,\"renewed\":%s", r->tls12.lifetime_hint_s,
            r->tls12.is_renewed ? "true" : "false");
    json_names(out, &r->tls12.names);
    fprintf(out,
            "}},\"tls13\":{\"supported\":%s,\"error\":", r->tls13.is_supported ? "true" : "false");
    json_string(out, r->tls13.error);
    fprintf(out, ",");
    json_mech(out, "ticket", &r->tls13.ticket);
    fprintf(out,
            ",\"tickets_per_handshake\":%u,\"tickets_after_resumption\":%ld,\"lifetime_s\":%ld,"
            "\"single_use\":%s,\"psk_mode\":",
            r->tls13.tickets_per_handshake, r->tls13.tickets_after_resumption, r->tls13.lifetime_s,
            r->tls13.is_single_use < 0 ? "null" : (r->tls13.is_single_use ? "true" : "false"));
    if (r->tls13.psk_mode != NULL) {
        json_string(out, r->tls13.psk_mode);
    } else {
        fprintf(out, "null");
    }
    fprintf(out, ",\"max_early_data\":%lu", r->tls13.max_early_data);
    json_names(out, &r->tls13.names);
    fprintf(out, "}},\"presented\":");
    if (r->presented.is_seen) {
        fprintf(out, "{\"key\":");
        json_string(out, r->presented.key);
        fprintf(out, ",\"ocsp_staple\":%s,\"client_certificate_requested\":%s}",
                r->presented.has_staple ? "true" : "false",
                r->presented.is_client_cert_requested ? "true" : "false");
    } else {
        fprintf(out, "null");
    }
    fprintf(out, ",\"timing_ms\":{");
    json_ms(out, "full", r->full_ms, r->n_full);
    fprintf(out, ",");
    json_ms(out, "resumed", r->resumed_ms, r->n_resumed);
    double s = saving(r);
    if (s >= 0) {
        fprintf(out, ",\"saving_percent\":%.1f}", s);
    } else {
        fprintf(out, ",\"saving_percent\":null}");
    }
    fprintf(out, ",\"hints\":[");
    for (size_t i = 0; i < r->n_hints; i++) {
        if (i > 0) {
            fprintf(out, ",");
        }
        json_string(out, r->hints[i]);
    }
    fprintf(out, "],\"session_file\":");
    if (r->has_session_file) {
        fprintf(out,
                "{\"offered\":%s,\"resumed\":%s,\"error\":", r->is_file_offered ? "true" : "false",
                r->is_file_resumed ? "true" : "false");
        json_string(out, r->file_error);
        fprintf(out, "}");
    } else {
        fprintf(out, "null");
    }
    fprintf(out, ",\"early_data\":");
    const struct early_report *e = &r->early;
    if (e->is_tested) {
        fprintf(out,
                "{\"offered\":%s,\"max_early_data\":%lu,\"accepted\":%s,\"replays\":%u,"
                "\"replays_accepted\":%u,\"replays_refused\":%u,\"replays_unknown\":%u,"
                "\"replay_probe\":\"%s\",\"error\":",
                e->is_offered ? "true" : "false", e->max_early_data,
                e->is_accepted ? "true" : "false", e->replays, e->replays_accepted,
                e->replays_refused, e->replays_unknown, e->probe);
        json_string(out, e->error);
        fprintf(out, "}");
    } else {
        fprintf(out, "null");
    }
    fprintf(out, ",\"trace\":");
    trace_print_json(out);
    fprintf(out, ",\"expect_failed\":");
    json_string(out, r->expect_failed);
    fprintf(out, ",\"exit_code\":%d}\n", r->exit_code);
}
