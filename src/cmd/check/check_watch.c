/*
 * `tlsresume check --watch DURATION`: watches a server's ticket keys over time. Every interval
 * it makes a TLS 1.2 handshake that asks for a new ticket, notes the ticket's key name, and
 * offers one kept ticket of every key name seen so far. A new name is a rotation observed; an
 * old ticket that still resumes after it shows the server keeps decrypting with retired keys,
 * as it should while their tickets are valid. Bounded by DURATION.
 */
#include "check_watch.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define WATCH_MAX_KEYS 32

struct seen_key {
    char name[17];
    SSL_SESSION *ticket; /* the first ticket seen under this name */
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int check_watch(SSL_CTX *tickets12, const struct probe_target *t, unsigned duration_s,
                unsigned interval_s, bool is_json)
{
    struct seen_key keys[WATCH_MAX_KEYS];
    size_t n_keys = 0;
    unsigned rounds = 0;
    unsigned rotations = 0;
    unsigned old_tried = 0;
    unsigned old_resumed = 0;
    unsigned errors = 0;
    double start = now_s();
    double end = start + duration_s;
    while (now_s() < end) {
        double round_start = now_s();
        struct probe_result full;
        probe_run(tickets12, t, NULL, &full);
        rounds++;
        char name[17] = "-";
        if (!full.is_ok || full.session == NULL || !probe_ticket_name(full.session, name)) {
            errors++;
            if (!is_json) {
                printf("t=%.0fs error: %s\n", round_start - start,
                       full.is_ok ? "no ticket" : full.error);
            }
        } else {
            bool is_new = true;
            for (size_t i = 0; i < n_keys; i++) {
                is_new = is_new && strcmp(keys[i].name, name) != 0;
            }
            if (is_new && n_keys < WATCH_MAX_KEYS) {
                rotations += n_keys > 0;
                memcpy(keys[n_keys].name, name, sizeof(name));
                keys[n_keys].ticket = full.session;
                full.session = NULL;
                n_keys++;
            }
            if (!is_json) {
                printf("t=%.0fs key=%s%s", round_start - start, name,
                       is_new && n_keys > 1 ? " (rotation observed)" : "");
            }
            for (size_t i = 0; i < n_keys; i++) {
                if (strcmp(keys[i].name, name) == 0) {
                    continue;
                }
                struct probe_result p;
                probe_run(tickets12, t, keys[i].ticket, &p);
                old_tried++;
                old_resumed += p.is_ok && p.is_reused;
                if (!is_json) {
                    printf(" old=%s:%s", keys[i].name, p.is_ok && p.is_reused ? "resumed" : "full");
                }
                probe_result_free(&p);
            }
            if (!is_json) {
                printf("\n");
                fflush(stdout);
            }
        }
        probe_result_free(&full);
        double next = round_start + interval_s;
        while (now_s() < next && now_s() < end) {
            usleep(100 * 1000);
        }
    }
    int rc = errors == rounds ? 2 : (old_resumed < old_tried ? 1 : 0);
    if (is_json) {
        printf("{\"watch\":{\"duration_s\":%u,\"interval_s\":%u,\"rounds\":%u,\"errors\":%u,"
               "\"rotations_observed\":%u,\"old_tickets_tried\":%u,\"old_tickets_resumed\":%u,"
               "\"key_names\":[",
               duration_s, interval_s, rounds, errors, rotations, old_tried, old_resumed);
        for (size_t i = 0; i < n_keys; i++) {
            printf("%s\"%s\"", i ? "," : "", keys[i].name);
        }
        printf("]},\"exit_code\":%d}\n", rc);
    } else {
        printf("watched %u rounds: %u rotations observed, old tickets resumed %u of %u%s\n", rounds,
               rotations, old_resumed, old_tried,
               old_resumed < old_tried ? " (the server dropped a key while its tickets were "
                                         "still valid)"
                                       : "");
    }
    for (size_t i = 0; i < n_keys; i++) {
        SSL_SESSION_free(keys[i].ticket);
    }
    return rc;
}
