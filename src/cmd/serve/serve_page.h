/* The status page's HTML (src/cmd/serve/status.html), built in by cmake/embed.cmake. */
#ifndef TLSR_SERVE_PAGE_H
#define TLSR_SERVE_PAGE_H

#include <stddef.h>

extern const unsigned char status_html[];
extern const size_t status_html_len;

#endif
