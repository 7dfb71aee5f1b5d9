/* A bounded text buffer for the admin endpoint's responses: writes stop (and say so) at the
 * capacity instead of truncating a line silently. */
#ifndef TLSR_SERVE_OUT_H
#define TLSR_SERVE_OUT_H

#include <stdbool.h>
#include <stddef.h>

struct out {
    char *p;
    size_t cap;
    size_t used;
    bool is_full;
};

void out_put(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void out_bytes(struct out *o, const void *p, size_t n);

#endif
