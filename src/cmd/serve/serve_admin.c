/*
 * Admin responses: the routing of one request line (read by the master, bounded), and the
 * Prometheus text exposition of the counters summed over workers plus the library's cache and
 * key ring counters. / and /status are serve_status.c's; anything else gets 404, a non-GET 405.
 */
#include "serve_admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve_out.h"
#include "serve_status.h"

static void metric(struct out *o, const char *name, const char *type, const char *help,
                   unsigned long long v)
{
    out_put(o, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name, v);
}

static void handshakes(struct out *o, const struct metrics_slot *s)
{
    static const char *const versions[] = {"TLSv1.2", "TLSv1.3"};
    static const char *const kinds[] = {"full", "id", "ticket", "psk"};
    out_put(o, "# HELP tlsresume_handshakes_total Completed handshakes by TLS version and how they "
               "resumed.\n# TYPE tlsresume_handshakes_total counter\n");
    for (int v = 0; v < 2; v++) {
        for (int k = 0; k < 4; k++) {
            /* Only the combinations that exist: IDs and tickets in 1.2, PSK in 1.3. */
            if ((v == 0 && k == 3) || (v == 1 && (k == 1 || k == 2))) {
                continue;
            }
            out_put(o, "tlsresume_handshakes_total{version=\"%s\",resumed=\"%s\"} %llu\n",
                    versions[v], kinds[k], (unsigned long long)s->v[M_HS + v * 4 + k]);
        }
    }
}

/* One labelled counter family from the summed worker counters. */
static void family(struct out *o, const char *name, const char *help, const char *label,
                   const struct metric_rows *rows, const struct metrics_slot *s)
{
    out_put(o, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (size_t i = 0; i < rows->n; i++) {
        out_put(o, "%s{%s=\"%s\"} %llu\n", name, label, rows->v[i].value,
                (unsigned long long)s->v[rows->v[i].m]);
    }
}

static void errors(struct out *o, const struct metrics_slot *s)
{
    family(o, "tlsresume_errors_total", "Connections ended by an error, by kind.", "kind",
           &METRIC_ERRORS, s);
}

static void library(struct out *o, const struct admin_view *v)
{
    struct tlsr_cache_stats c;
    if (tlsr_cache_get_stats(v->cache, &c) == TLSR_OK) {
        metric(o, "tlsresume_cache_entries", "gauge", "Sessions in the shared cache.", c.entries);
        metric(o, "tlsresume_cache_bytes_used", "gauge", "Cache bytes in use.", c.bytes_used);
        metric(o, "tlsresume_cache_bytes_total", "gauge", "Cache size.", c.bytes_total);
        metric(o, "tlsresume_cache_hits_total", "counter", "Cache lookups that found a session.",
               c.hits);
        metric(o, "tlsresume_cache_misses_total", "counter", "Cache lookups that found none.",
               c.misses);
        metric(o, "tlsresume_cache_inserts_total", "counter", "Sessions stored.", c.inserts);
        metric(o, "tlsresume_cache_evictions_total", "counter", "Live sessions evicted.",
               c.evictions);
        metric(o, "tlsresume_cache_expirations_total", "counter", "Sessions expired.",
               c.expirations);
        metric(o, "tlsresume_cache_taken_total", "counter", "Single-use tickets consumed.",
               c.taken);
    }
    struct tlsr_keyring_stats k;
    if (v->ring != NULL && tlsr_keyring_get_stats(v->ring, &k) == TLSR_OK) {
        metric(o, "tlsresume_ticket_keys", "gauge", "Ticket keys held.", k.keys_held);
        metric(o, "tlsresume_ticket_key_age_seconds", "gauge",
               "Seconds since the current key started encrypting.", k.current_key_age_s);
        metric(o, "tlsresume_ticket_key_rotations_total", "counter", "Key rotations.", k.rotations);
        metric(o, "tlsresume_ticket_key_rotations_refused_total", "counter",
               "Rotations on demand refused: the ring had no room without wiping a key whose "
               "tickets are still valid.",
               k.rotations_refused);
        metric(o, "tlsresume_ticket_keys_made_inline_total", "counter",
               "Ticket keys a handshake had to make (none while the master makes them ahead).",
               k.keys_made_inline);
        metric(o, "tlsresume_tickets_issued_total", "counter", "Tickets sealed.", k.issued);
        metric(o, "tlsresume_tickets_decrypted_total", "counter", "Tickets that resumed.",
               k.decrypted);
        metric(o, "tlsresume_tickets_renewed_total", "counter", "Tickets renewed.", k.renewed);
        metric(o, "tlsresume_tickets_variant_opened_total", "counter",
               "Tickets opened under the 48-byte variant of a ring key (issued by nginx48, Apache "
               "or Node).",
               k.variants_opened);
        out_put(o,
                "# HELP tlsresume_tickets_rejected_total Tickets refused, by reason.\n"
                "# TYPE tlsresume_tickets_rejected_total counter\n"
                "tlsresume_tickets_rejected_total{reason=\"unknown_key\"} %llu\n"
                "tlsresume_tickets_rejected_total{reason=\"bad_mac\"} %llu\n"
                "tlsresume_tickets_rejected_total{reason=\"expired\"} %llu\n",
                (unsigned long long)k.rejected_unknown_key, (unsigned long long)k.rejected_bad_mac,
                (unsigned long long)k.rejected_expired);
    }
}

#define KEYS_SHOWN 32

/* Per ticket key: tickets issued under it and tickets that came back naming it. */
static void per_key(struct out *o, struct tlsr_keyring *ring)
{
    struct tlsr_key_info keys[TLSR_KEYRING_MAX_KEYS];
    size_t n = 0;
    if (tlsr_keyring_list(ring, keys, TLSR_KEYRING_MAX_KEYS, &n) != TLSR_OK) {
        return;
    }
    size_t first = n > KEYS_SHOWN ? n - KEYS_SHOWN : 0;
    static const char *const what[] = {"issued", "presented"};
    for (int w = 0; w < 2; w++) {
        out_put(o,
                "# HELP tlsresume_ticket_key_%s_total Tickets %s, per key (the %d newest keys).\n"
                "# TYPE tlsresume_ticket_key_%s_total counter\n",
                what[w], w == 0 ? "sealed" : "presented for resumption", KEYS_SHOWN, what[w]);
        for (size_t i = first; i < n; i++) {
            const struct tlsr_key_info *k = &keys[i];
            out_put(o,
                    "tlsresume_ticket_key_%s_total{generation=\"%llu\",key=\"%02x%02x%02x%02x\","
                    "state=\"%s\",origin=\"%s\"} %llu\n",
                    what[w], (unsigned long long)k->generation, k->name_prefix[0],
                    k->name_prefix[1], k->name_prefix[2], k->name_prefix[3],
                    metric_key_state(k->state), k->is_fleet ? "fleet" : "local",
                    (unsigned long long)(w == 0 ? k->issued : k->presented));
        }
    }
}

static void fleet_metrics(struct out *o, const struct admin_view *v, const struct metrics_slot *s)
{
    if (!v->is_fleet) {
        return;
    }
    family(o, "tlsresume_fleet_cache_lookups_total", "Handshakes that asked Redis, by result.",
           "result", &METRIC_FLEET_LOOKUPS, s);
    metric(o, "tlsresume_fleet_cache_stored_total", "counter", "Sessions written to Redis.",
           s->v[M_FLEET_STORED]);
    metric(o, "tlsresume_fleet_cache_removed_total", "counter",
           "Single-use tickets deleted from Redis.", s->v[M_FLEET_REMOVED]);
    family(o, "tlsresume_fleet_early_register_total",
           "0-RTT ClientHellos recorded in Redis, by answer.", "answer", &METRIC_FLEET_EARLY, s);
    metric(o, "tlsresume_fleet_redis_down", "gauge",
           "Redis endpoints unreachable, summed over workers.", s->v[M_FLEET_DOWN]);
    if (v->fleet_ring == NULL) {
        return; /* no tickets: no key ring to follow */
    }
    struct tlsr_fleet_ring_stats f;
    tlsr_fleet_ring_get_stats(v->fleet_ring, &f);
    metric(o, "tlsresume_fleet_redis_up", "gauge", "The key ring reaches Redis (1) or not (0).",
           f.is_redis_up);
    metric(o, "tlsresume_fleet_joined", "gauge",
           "Ticket keys come from the fleet (1) or are local.", f.is_joined);
    metric(o, "tlsresume_fleet_members", "gauge", "Live servers seen in the fleet.", f.members);
    metric(o, "tlsresume_fleet_unacked", "gauge", "Live servers not yet holding the next key.",
           f.unacked);
    metric(o, "tlsresume_fleet_generation", "gauge", "The fleet's encrypting key generation.",
           f.generation);
    metric(o, "tlsresume_fleet_keys_created_total", "counter", "Keys this server made.",
           f.keys_created);
    metric(o, "tlsresume_fleet_promotions_total", "counter", "Promotions this server made.",
           f.promotions);
    metric(o, "tlsresume_fleet_promotions_unacked_total", "counter",
           "Promotions made after the wait without every acknowledgement.", f.promotions_early);
    metric(o, "tlsresume_fleet_keys_rejected_total", "counter",
           "Fleet key blobs that did not unseal.", f.rejected);
    metric(o, "tlsresume_fleet_polls_failed_total", "counter", "Key ring polls that failed.",
           f.polls_failed);
    metric(o, "tlsresume_fleet_rotations_refused_total", "counter",
           "Fleet rotations on demand this server refused (no room in its key ring).",
           f.rotations_refused);
}

/* Every handshake whose client offered a session: by what it offered, and, for those that got a
 * full handshake, by the one reason the library gave (offered = resumed + failures). */
static void failures(struct out *o, const struct metrics_slot *s)
{
    family(o, "tlsresume_resumption_offered_total",
           "Finished handshakes whose client offered a session, by what it offered.", "kind",
           &METRIC_OFFERS, s);
    family(o, "tlsresume_resumption_failures_total",
           "Offered sessions that got a full handshake, by reason (one per handshake).", "reason",
           metric_reasons(), s);
}

static void early_metrics(struct out *o, const struct metrics_slot *s)
{
    family(o, "tlsresume_early_data_total",
           "TLS 1.3 early data (0-RTT) offered, and what became of it.", "result", &METRIC_EARLY,
           s);
    metric(o, "tlsresume_early_data_bytes_total", "counter", "Early data bytes accepted.",
           s->v[M_EARLY_BYTES]);
}

static void metrics_text(struct out *o, const struct admin_view *v)
{
    struct metrics_slot s;
    metrics_sum(v->metrics, &s);
    handshakes(o, &s);
    metric(o, "tlsresume_connections_open", "gauge", "Client connections open.", s.v[M_CONN_OPEN]);
    metric(o, "tlsresume_connections_total", "counter", "Client connections accepted.",
           s.v[M_CONN_TOTAL]);
    out_put(o,
            "# HELP tlsresume_bytes_total Bytes proxied, by direction.\n"
            "# TYPE tlsresume_bytes_total counter\n"
            "tlsresume_bytes_total{direction=\"client_to_backend\"} %llu\n"
            "tlsresume_bytes_total{direction=\"backend_to_client\"} %llu\n",
            (unsigned long long)s.v[M_BYTES_C2B], (unsigned long long)s.v[M_BYTES_B2C]);
    errors(o, &s);
    library(o, v);
    struct tlsr_keyring_stats k;
    memset(&k, 0, sizeof(k));
    if (v->ring != NULL && tlsr_keyring_get_stats(v->ring, &k) == TLSR_OK) {
        metric(o, "tlsresume_ticket_key_overdue_seconds", "gauge",
               "Seconds the fleet key has encrypted past its period (the fleet cannot rotate).",
               k.current_overdue_s);
        per_key(o, v->ring);
    }
    failures(o, &s);
    early_metrics(o, &s);
    fleet_metrics(o, v, &s);
    static const char *const bk[] = {"connects", "connect_failures"};
    static const char *const bk_help[] = {
        "Connects started to each backend.",
        "Connects to each backend that failed or timed out (the connection went on to the next "
        "backend when one was left)."};
    for (int f = 0; f < 2; f++) {
        out_put(o,
                "# HELP tlsresume_backend_%s_total %s\n# TYPE tlsresume_backend_%s_total counter\n",
                bk[f], bk_help[f], bk[f]);
        for (size_t i = 0; v->backends != NULL && i < v->backends->n; i++) {
            out_put(o, "tlsresume_backend_%s_total{backend=\"%s\"} %llu\n", bk[f],
                    v->backends->v[i],
                    (unsigned long long)s.v[(f == 0 ? M_BK_CONNECTS : M_BK_FAILURES) + i]);
        }
    }
    family(o, "tlsresume_upstream_handshakes_total",
           "TLS handshakes with the backends (--backend-tls), by result.", "result",
           &METRIC_UPSTREAM, &s);
    family(o, "tlsresume_upstream_resumption_misses_total",
           "Backend handshakes that were full, by reason (no_session: nothing stored to offer; "
           "refused: the backend did not resume what was offered; unreadable: stored bytes did "
           "not decode).",
           "reason", &METRIC_UPSTREAM_MISS, &s);
    family(o, "tlsresume_upstream_handshake_failures_total",
           "Backend handshakes that failed, by reason (verify: the certificate was refused).",
           "reason", &METRIC_UPSTREAM_FAIL, &s);
    metric(o, "tlsresume_workers", "gauge", "Worker processes.", v->workers);
    metric(o, "tlsresume_reloads_total", "counter", "Successful reloads.", v->reloads);
}

char *admin_respond(const struct admin_view *v, const char *request, size_t *len)
{
    static char body[ADMIN_BODY_MAX];
    struct out b = {body, sizeof(body), 0, false};
    const char *status = "200 OK";
    const char *type = "text/plain; version=0.0.4";
    const char *path = strncmp(request, "GET ", 4) == 0 ? request + 4 : NULL;
    size_t plen = path != NULL ? strcspn(path, " ?") : 0;
    if (path == NULL) {
        status = "405 Method Not Allowed";
        out_put(&b, "only GET\n");
    } else if (plen == 8 && strncmp(path, "/metrics", 8) == 0) {
        metrics_text(&b, v);
    } else if (plen == 7 && strncmp(path, "/status", 7) == 0) {
        type = "application/json";
        status_json(&b, v);
    } else if (plen == 1 && path[0] == '/') {
        type = "text/html; charset=utf-8";
        status_page(&b, v);
    } else {
        status = "404 Not Found";
        out_put(&b, "try / (the status page), /metrics or /status\n");
    }
    if (b.is_full) {
        return NULL;
    }
    char head[256];
    struct out h = {head, sizeof(head), 0, false};
    out_put(&h,
            "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nCache-Control: "
            "no-store\r\nConnection: close\r\n\r\n",
            status, type, b.used);
    char *resp = h.is_full ? NULL : malloc(h.used + b.used);
    if (resp == NULL) {
        return NULL;
    }
    memcpy(resp, head, h.used);
    memcpy(resp + h.used, body, b.used);
    *len = h.used + b.used;
    return resp;
}
