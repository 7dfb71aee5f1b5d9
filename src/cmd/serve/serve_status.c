/*
 * GET /status (one JSON object, schema in docs/status-json.md; "schema" says its version, fields
 * are only ever added) and GET / (the status page, src/cmd/serve/status.html, with the status of
 * the moment written into it so that it shows numbers before its first refresh). Every name and
 * label value comes from the program's own tables: nothing from a client is echoed.
 */
#include "serve_status.h"

#include <string.h>
#include <time.h>

#include "serve_out.h"
#include "serve_page.h"

#define STATUS_SCHEMA 2
#define STATUS_KEYS_MAX 32 /* the newest keys, as in /metrics */

static unsigned long long u(uint64_t v)
{
    return (unsigned long long)v;
}

/* "name":{"label":n,...} from one labelled family. */
static void rows_object(struct out *o, const char *name, const struct metric_rows *rows,
                        const struct metrics_slot *s)
{
    out_put(o, ",\"%s\":{", name);
    for (size_t i = 0; i < rows->n; i++) {
        out_put(o, "%s\"%s\":%llu", i ? "," : "", rows->v[i].value, u(s->v[rows->v[i].m]));
    }
    out_put(o, "}");
}

static void handshakes(struct out *o, const struct metrics_slot *s)
{
    uint64_t f12 = s->v[metrics_handshake(TLS1_2_VERSION, TLSR_RESUMED_NONE)];
    uint64_t id = s->v[metrics_handshake(TLS1_2_VERSION, TLSR_RESUMED_ID)];
    uint64_t tk = s->v[metrics_handshake(TLS1_2_VERSION, TLSR_RESUMED_TICKET)];
    uint64_t f13 = s->v[metrics_handshake(TLS1_3_VERSION, TLSR_RESUMED_NONE)];
    uint64_t psk = s->v[metrics_handshake(TLS1_3_VERSION, TLSR_RESUMED_PSK)];
    out_put(o,
            ",\"handshakes\":{\"full\":%llu,\"resumed\":%llu},\"handshakes_by\":{\"TLSv1.2\":{"
            "\"full\":%llu,\"id\":%llu,\"ticket\":%llu},\"TLSv1.3\":{\"full\":%llu,\"psk\":%llu}}",
            u(f12 + f13), u(id + tk + psk), u(f12), u(id), u(tk), u(f13), u(psk));
    rows_object(o, "offered", &METRIC_OFFERS, s);
    rows_object(o, "failures", metric_reasons(), s);
    rows_object(o, "errors", &METRIC_ERRORS, s);
}

static void cache(struct out *o, const struct admin_view *v)
{
    struct tlsr_cache_stats c;
    memset(&c, 0, sizeof(c));
    if (tlsr_cache_get_stats(v->cache, &c) != TLSR_OK) {
        out_put(o, ",\"cache\":null");
        return;
    }
    out_put(o,
            ",\"cache\":{\"entries\":%llu,\"bytes_total\":%llu,\"bytes_used\":%llu,\"hits\":%llu,"
            "\"misses\":%llu,\"inserts\":%llu,\"evictions\":%llu,\"expirations\":%llu}",
            u(c.entries), u(c.bytes_total), u(c.bytes_used), u(c.hits), u(c.misses), u(c.inserts),
            u(c.evictions), u(c.expirations));
}

static void tickets(struct out *o, const struct admin_view *v)
{
    struct tlsr_keyring_stats k;
    if (v->ring == NULL || tlsr_keyring_get_stats(v->ring, &k) != TLSR_OK) {
        out_put(o, ",\"tickets\":{\"enabled\":false}");
        return;
    }
    out_put(o,
            ",\"tickets\":{\"enabled\":true,\"keys\":%llu,\"key_age_s\":%llu,\"rotations\":%llu,"
            "\"fleet\":%s,\"overdue_s\":%llu,\"issued\":%llu,\"decrypted\":%llu,\"renewed\":%llu,"
            "\"variants_opened\":%llu,\"rejected\":{\"unknown_key\":%llu,\"bad_mac\":%llu,"
            "\"expired\":%llu},\"key_list\":[",
            u(k.keys_held), u(k.current_key_age_s), u(k.rotations), k.is_fleet ? "true" : "false",
            u(k.current_overdue_s), u(k.issued), u(k.decrypted), u(k.renewed), u(k.variants_opened),
            u(k.rejected_unknown_key), u(k.rejected_bad_mac), u(k.rejected_expired));
    struct tlsr_key_info keys[TLSR_KEYRING_MAX_KEYS];
    size_t n = 0;
    if (tlsr_keyring_list(v->ring, keys, TLSR_KEYRING_MAX_KEYS, &n) != TLSR_OK) {
        n = 0;
    }
    size_t first = n > STATUS_KEYS_MAX ? n - STATUS_KEYS_MAX : 0;
    for (size_t i = first; i < n; i++) {
        const struct tlsr_key_info *x = &keys[i];
        out_put(o,
                "%s{\"generation\":%llu,\"name\":\"%02x%02x%02x%02x\",\"state\":\"%s\","
                "\"origin\":\"%s\",\"age_s\":%llu,\"expires_s\":%llu,\"issued\":%llu,"
                "\"presented\":%llu}",
                i > first ? "," : "", u(x->generation), x->name_prefix[0], x->name_prefix[1],
                x->name_prefix[2], x->name_prefix[3], metric_key_state(x->state),
                x->is_fleet ? "fleet" : "local", u(x->age_s), u(x->expires_s), u(x->issued),
                u(x->presented));
    }
    out_put(o, "]}");
}

static void fleet(struct out *o, const struct admin_view *v, const struct metrics_slot *s)
{
    if (v->is_fleet) {
        out_put(o, ",\"fleet_cache\":{\"redis_down\":%llu,\"stored\":%llu", u(s->v[M_FLEET_DOWN]),
                u(s->v[M_FLEET_STORED]));
        rows_object(o, "lookups", &METRIC_FLEET_LOOKUPS, s);
        out_put(o, "}");
    } else {
        out_put(o, ",\"fleet_cache\":null");
    }
    if (v->fleet_ring == NULL) {
        return;
    }
    struct tlsr_fleet_ring_stats f;
    tlsr_fleet_ring_get_stats(v->fleet_ring, &f);
    out_put(o,
            ",\"fleet\":{\"redis_up\":%s,\"joined\":%s,\"members\":%llu,"
            "\"generation\":%llu,\"unacked\":%llu,\"polls\":%llu,\"polls_failed\":%llu,"
            "\"key_list\":[",
            f.is_redis_up ? "true" : "false", f.is_joined ? "true" : "false", u(f.members),
            u(f.generation), u(f.unacked), u(f.polls), u(f.polls_failed));
    const struct tlsr_fleet_key_status *keys = NULL;
    size_t n = 0;
    tlsr_fleet_ring_keys(v->fleet_ring, &keys, &n);
    for (size_t i = 0; i < n && i < STATUS_KEYS_MAX; i++) {
        const struct tlsr_fleet_key_status *x = &keys[i];
        out_put(o,
                "%s{\"generation\":%llu,\"name\":\"%02x%02x%02x%02x\",\"state\":\"%s\","
                "\"acks\":%llu,\"age_s\":%llu,\"expires_s\":%llu,\"issued\":%llu,"
                "\"presented\":%llu}",
                i ? "," : "", u(x->generation), x->name_prefix[0], x->name_prefix[1],
                x->name_prefix[2], x->name_prefix[3], metric_key_state(x->state), u(x->acks),
                u(x->age_s), u(x->expires_s), u(x->issued), u(x->presented));
    }
    out_put(o, "]}");
}

static void history(struct out *o, const struct history *h)
{
    out_put(o, ",\"history\":{\"interval_s\":%d,\"columns\":[\"time_s\"", HISTORY_INTERVAL_S);
    for (int c = 0; c < H_COUNT; c++) {
        out_put(o, ",\"%s\"", HISTORY_COLUMNS[c]);
    }
    out_put(o, "],\"samples\":[");
    for (size_t i = 0; h != NULL && i < h->n; i++) {
        const struct history_sample *s = history_at(h, i);
        out_put(o, "%s[%lld", i ? "," : "", (long long)s->time_s);
        for (int c = 0; c < H_COUNT; c++) {
            out_put(o, ",%llu", u(s->v[c]));
        }
        out_put(o, "]");
    }
    out_put(o, "]}");
}

void status_json(struct out *o, const struct admin_view *v)
{
    struct metrics_slot s;
    metrics_sum(v->metrics, &s);
    time_t now = time(NULL);
    out_put(o,
            "{\"schema\":%d,\"version\":\"%s\",\"time_s\":%lld,\"uptime_s\":%.0f,\"workers\":%u,"
            "\"reloads\":%lu,\"connections_open\":%llu,\"connections\":%llu",
            STATUS_SCHEMA, TLSR_VERSION, (long long)now, (double)now - v->started, v->workers,
            v->reloads, u(s.v[M_CONN_OPEN]), u(s.v[M_CONN_TOTAL]));
    handshakes(o, &s);
    cache(o, v);
    tickets(o, v);
    fleet(o, v, &s);
    rows_object(o, "early_data", &METRIC_EARLY, &s);
    out_put(o, ",\"backends\":[");
    for (size_t i = 0; v->backends != NULL && i < v->backends->n; i++) {
        out_put(o, "%s{\"address\":\"%s\",\"connects\":%llu,\"connect_failures\":%llu}",
                i ? "," : "", v->backends->v[i], u(s.v[M_BK_CONNECTS + i]),
                u(s.v[M_BK_FAILURES + i]));
    }
    out_put(o, "],\"upstream\":{\"tls\":%s", v->is_backend_tls ? "true" : "false");
    rows_object(o, "handshakes", &METRIC_UPSTREAM, &s);
    rows_object(o, "misses", &METRIC_UPSTREAM_MISS, &s);
    rows_object(o, "failures", &METRIC_UPSTREAM_FAIL, &s);
    out_put(o, "}");
    history(o, v->history);
    out_put(o, "}\n");
}

void status_page(struct out *o, const struct admin_view *v)
{
    static const char marker[] = "/*STATUS*/null";
    const char *page = (const char *)status_html;
    const char *at = memmem(page, status_html_len, marker, sizeof(marker) - 1);
    if (at == NULL) {
        out_bytes(o, page, status_html_len);
        return;
    }
    out_bytes(o, page, (size_t)(at - page));
    status_json(o, v);
    size_t after = (size_t)(at - page) + sizeof(marker) - 1;
    out_bytes(o, page + after, status_html_len - after);
}
