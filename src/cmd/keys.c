/*
 * `tlsresume keys`: the fleet key and, later, the ticket keys of servers we do not replace.
 *
 * `keys init --out FILE` makes the fleet key every server of a fleet shares (`serve
 * --fleet-key FILE`): 32 random bytes, written once with mode 0600, never over an existing
 * file. Status, rotation, export and import of the ticket key ring are not built yet.
 */
#include <stdio.h>
#include <string.h>

#include <tlsresume/fleet.h>

int keys_main(int argc, char **argv);

static void usage(FILE *out)
{
    fprintf(out, "usage: tlsresume keys init --out FILE\n\n"
                 "  init    make a fleet key file (mode 0600; an existing file is never "
                 "replaced)\n\n"
                 "not yet available: keys status, rotate, export, import, sync\n");
}

static int init(int argc, char **argv)
{
    const char *out = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--out") == 0 && i + 1 < argc) {
            out = argv[++i];
        } else if (strncmp(argv[i], "--out=", 6) == 0) {
            out = argv[i] + 6;
        } else {
            fprintf(stderr, "error keys: unknown argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (out == NULL || out[0] == '\0') {
        fprintf(stderr, "error keys: init needs --out FILE\n");
        return 2;
    }
    if (tlsr_fleet_secret_generate(out) != TLSR_OK) {
        fprintf(stderr, "error keys: %s\n", tlsr_last_error());
        return 1;
    }
    fprintf(stderr,
            "info keys event=fleet_key_created file=%s mode=0600 note=\"give every "
            "server of the fleet this file, as you would a certificate key\"\n",
            out);
    return 0;
}

int keys_main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "init") == 0) {
        return init(argc - 1, argv + 1);
    }
    fprintf(stderr, "error keys: '%s' is not built yet in this version (only 'init')\n", argv[1]);
    return 2;
}
