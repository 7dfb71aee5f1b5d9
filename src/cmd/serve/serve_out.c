/* The admin endpoint's bounded output buffer (serve_out.h). */
#include "serve_out.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void out_put(struct out *o, const char *fmt, ...)
{
    if (o->is_full) {
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->p + o->used, o->cap - o->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->used) {
        o->is_full = true;
        return;
    }
    o->used += (size_t)n;
}

void out_bytes(struct out *o, const void *p, size_t n)
{
    if (o->is_full || n > o->cap - o->used) {
        o->is_full = true;
        return;
    }
    memcpy(o->p + o->used, p, n);
    o->used += n;
}
