/* The admin endpoint's /status (JSON) and / (the status page that shows it). */
#ifndef TLSR_SERVE_STATUS_H
#define TLSR_SERVE_STATUS_H

#include "serve_admin.h"
#include "serve_out.h"

void status_json(struct out *o, const struct admin_view *v);
void status_page(struct out *o, const struct admin_view *v);

#endif
