/*
 * Corpus replay driver for builds without libFuzzer (gcc): runs LLVMFuzzerTestOneInput on every
 * file of the directories (or files) named on the command line, so `make test` replays each
 * corpus under ASan+UBSan. Prints one line per run and exits non-zero on a usage error; a
 * finding aborts through the sanitizer or the target.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "fuzz driver: cannot open %s\n", path);
        return -1;
    }
    static uint8_t buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    return 0;
}

int main(int argc, char **argv)
{
    int files = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "fuzz driver: no such path %s\n", argv[i]);
            return 2;
        }
        if (!S_ISDIR(st.st_mode)) {
            files += run_file(argv[i]) == 0;
            continue;
        }
        DIR *d = opendir(argv[i]);
        struct dirent *e;
        while (d != NULL && (e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }
            char path[4096];
            int len = snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name);
            if (len > 0 && (size_t)len < sizeof(path) && run_file(path) == 0) {
                files++;
            }
        }
        if (d != NULL) {
            closedir(d);
        }
    }
    if (files == 0) {
        fprintf(stderr, "fuzz driver: no input files\n");
        return 2;
    }
    printf("fuzz driver: %d inputs replayed\n", files);
    return 0;
}
