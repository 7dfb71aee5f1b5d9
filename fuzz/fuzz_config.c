/* Fuzz target: the serve configuration file parser (src/cmd/serve/serve_config.c, on inih): any
 * bytes either load into a valid configuration or give a message naming the line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../src/cmd/serve/serve_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) {
        return 0;
    }
    char *text = malloc(size + 1);
    struct serve_config *cfg = malloc(sizeof(*cfg));
    if (text == NULL || cfg == NULL) {
        abort();
    }
    memcpy(text, data, size);
    text[size] = '\0';
    char err[512] = "";
    bool is_ok = serve_config_parse_text("fuzz.ini", text, size, cfg, err, sizeof(err));
    /* A refusal always says where: the file name leads every message. */
    if (!is_ok && strncmp(err, "fuzz.ini", 8) != 0 && strchr(err, ':') == NULL) {
        abort();
    }
    free(cfg);
    free(text);
    return 0;
}
