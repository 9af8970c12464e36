/* SPDX-License-Identifier: MIT */
/*
 * Runs a libFuzzer harness over files without libFuzzer: each argument is a
 * file or a directory of files (a seed corpus), each file is passed once to
 * LLVMFuzzerTestOneInput. The meson test suite uses it to replay every
 * harness's corpus in the normal and sanitizer builds.
 */
#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Runs the harness on one file; false when it cannot be read. */
static bool replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    uint8_t *data = NULL;
    long n;
    bool ok = false;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
        goto out;
    /* An exact-size copy, so reading past the input is caught. */
    data = malloc(n > 0 ? (size_t)n : 1);
    if (data == NULL || fread(data, 1, (size_t)n, f) != (size_t)n)
        goto out;
    LLVMFuzzerTestOneInput(data, (size_t)n);
    ok = true;
out:
    if (!ok)
        fprintf(stderr, "cannot read %s\n", path);
    free(data);
    if (f != NULL)
        fclose(f);
    return ok;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Every regular file of dir, in name order; the number run, or -1. */
static int replay_dir(const char *dir)
{
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name), run = 0;

    if (n < 0)
        return -1;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;

        snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            if (!replay_file(path))
                run = -1;
            else if (run >= 0)
                run++;
        }
        free(names[i]);
    }
    free(names);
    return run;
}

int main(int argc, char **argv)
{
    int total = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        int n = stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode) ? replay_dir(argv[i])
                                                               : (replay_file(argv[i]) ? 1 : -1);

        if (n < 0)
            return 1;
        total += n;
    }
    printf("%d inputs replayed\n", total);
    return total > 0 ? 0 : 1;
}
