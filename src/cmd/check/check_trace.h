/* `check --trace`: every connection of a check as a ladder of the TLS records and handshake
 * messages each way, with sizes and times, and what resumption saved against a full handshake. */
#ifndef TLSR_CHECK_TRACE_H
#define TLSR_CHECK_TRACE_H

#include <stdbool.h>
#include <stdio.h>

#include <openssl/ssl.h>

/* Turns tracing on for the connections that follow (off by default). */
void trace_enable(void);
/* What the next connections are for, as the report names them ("TLS 1.2 session ID"). */
void trace_phase(const char *phase);
/* A new connection: its messages and records are recorded from now on. start_ms is when its
 * TCP connect began (the same clock as trace_now_ms). */
void trace_attach(SSL *ssl, double start_ms);
/* The handshake completed: what follows is after it (tickets, data, closing). */
void trace_handshake_done(SSL *ssl);
/* The connection is over; is_ok: the handshake completed. */
void trace_end(SSL *ssl, bool is_ok);
double trace_now_ms(void);

void trace_print_text(FILE *out);
/* The "trace" member of check's JSON (docs/check-json.md): null when tracing was off. */
void trace_print_json(FILE *out);
void trace_free(void);

#endif
