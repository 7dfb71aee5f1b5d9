/*
 * Reading the words of a command line and a config file: whole numbers, numbers with a unit,
 * yes/no words and host:port addresses. Every reader takes the whole text or refuses it.
 */
#ifndef TLSR_CMD_CLI_H
#define TLSR_CMD_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* A whole decimal number in [min, max]; false for anything else (sign, junk, range). */
bool cli_uint(const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* A whole decimal number with an optional one-letter unit from units, each with its
 * multiplier in mult (no unit: 1); false on junk or overflow. */
bool cli_scaled(const char *text, const char *units, const uint64_t *mult, uint64_t *out);

/* A duration: a whole number with an optional unit s, m, h or d (none: seconds), in
 * [min_s, max_s] seconds. */
bool cli_duration(const char *text, uint64_t min_s, uint64_t max_s, uint64_t *out);

/* yes, true, on, 1 or no, false, off, 0 (any case). */
bool cli_bool(const char *text, bool *out);

/*
 * Resolves "host:port" or "[v6]:port" with a numeric port of 1 to 65535 into out (which may
 * be NULL to only check). On failure writes the reason into why and returns false.
 */
bool cli_resolve(const char *text, struct sockaddr_storage *out, socklen_t *out_len, char *why,
                 size_t cap);

/* n bytes as 2n lower-case hex digits and a NUL into out (2n + 1 bytes). */
void cli_hex(const uint8_t *in, size_t n, char *out);

/* The n strings stored stride bytes apart from first, joined by commas into out (cut at cap). */
void cli_join(const char *first, size_t stride, size_t n, char *out, size_t cap);

#endif
