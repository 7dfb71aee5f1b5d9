/* The status page's history of handshake counters (serve_history.h). */
#include "serve_history.h"

const char *const HISTORY_COLUMNS[H_COUNT] = {"tls12_full", "tls12_id", "tls12_ticket",
                                              "tls13_full", "tls13_psk"};

void history_add(struct history *h, int64_t time_s, const struct metrics_slot *sum)
{
    struct history_sample *s = &h->s[h->next];
    s->time_s = time_s;
    s->v[H_TLS12_FULL] = sum->v[metrics_handshake(TLS1_2_VERSION, TLSR_RESUMED_NONE)];
    s->v[H_TLS12_ID] = sum->v[metrics_handshake(TLS1_2_VERSION, TLSR_RESUMED_ID)];
    s->v[H_TLS12_TICKET] = sum->v[metrics_handshake(TLS1_2_VERSION, TLSR_RESUMED_TICKET)];
    s->v[H_TLS13_FULL] = sum->v[metrics_handshake(TLS1_3_VERSION, TLSR_RESUMED_NONE)];
    s->v[H_TLS13_PSK] = sum->v[metrics_handshake(TLS1_3_VERSION, TLSR_RESUMED_PSK)];
    h->next = (h->next + 1) % HISTORY_SAMPLES;
    if (h->n < HISTORY_SAMPLES) {
        h->n++;
    }
}

const struct history_sample *history_at(const struct history *h, size_t i)
{
    size_t oldest = (h->next + HISTORY_SAMPLES - h->n) % HISTORY_SAMPLES;
    return &h->s[(oldest + i) % HISTORY_SAMPLES];
}
