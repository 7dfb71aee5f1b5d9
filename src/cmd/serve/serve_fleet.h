/* serve's fleet mode (--redis): the fleet key, the options every worker's cache uses, and the
 * ticket key ring the master drives for all its workers. */
#ifndef TLSR_SERVE_FLEET_H
#define TLSR_SERVE_FLEET_H

#include <stdbool.h>
#include <stddef.h>

#include <tlsresume/fleet.h>
#include <tlsresume/tlsresume.h>

#include "../cli/cli.h"
#include "serve_config.h"

struct serve_fleet {
    struct tlsr_fleet_secret *secret;
    struct tlsr_fleet_opts opts;
    const char *endpoints[CLI_LIST_MAX];
    /* The settings of the start, which opts points into: a reload frees its old configuration,
     * and the fleet is not reloaded. */
    struct cli_list redis;
    char prefix[CLI_STR];
    char password[512];
    struct tlsr_fleet_ring *ring; /* NULL until joined, and without tickets */
};

/* Loads the fleet key and fills the options from cfg; true and nothing done without --redis. */
bool serve_fleet_setup(struct serve_fleet *f, const struct serve_config *cfg, char *err,
                       size_t cap);
/* Joins the fleet's key ring with the local ring (no-op without --redis or tickets). */
bool serve_fleet_join(struct serve_fleet *f, const struct serve_config *cfg,
                      struct tlsr_keyring *ring, char *err, size_t cap);
/* The options for the workers' fleet caches; NULL without --redis. */
const struct tlsr_fleet_opts *serve_fleet_opts(const struct serve_fleet *f);
/* Leaves the ring, frees the key and wipes the password. */
void serve_fleet_free(struct serve_fleet *f);

#endif
