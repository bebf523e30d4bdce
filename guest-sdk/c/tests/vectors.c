/*
 * Checks the C codec against the shared vectors (tests/cbor-vectors.txt):
 * every value's bytes, read with the reader and written again with the
 * writer, come out the same. Built natively by the integration tests:
 *
 *     cc -Iinclude src/cbor.c tests/vectors.c -lm -o vectors
 *     ./vectors ../../tests/cbor-vectors.txt
 *
 * Integers past int64_t are left out (the C API reads int64_t).
 */
#include "wray.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int copy(wray_reader *r, wray_writer *w, int depth) {
    if (depth > 128)
        return -1;
    size_t n;
    switch (wray_peek(r)) {
    case WRAY_NULL:
        if (wray_read_null(r)) return -1;
        wray_write_null(w);
        return 0;
    case WRAY_BOOL: {
        int b;
        if (wray_read_bool(r, &b)) return -1;
        wray_write_bool(w, b);
        return 0;
    }
    case WRAY_INT: {
        int64_t i;
        if (wray_read_int(r, &i)) return 1; /* past int64_t: left out */
        wray_write_int(w, i);
        return 0;
    }
    case WRAY_FLOAT: {
        double x;
        if (wray_read_float(r, &x)) return -1;
        wray_write_float(w, x);
        return 0;
    }
    case WRAY_STR: {
        const char *s;
        if (wray_read_str(r, &s, &n)) return -1;
        wray_write_str(w, s, n);
        return 0;
    }
    case WRAY_BYTES: {
        const uint8_t *b;
        if (wray_read_bytes(r, &b, &n)) return -1;
        wray_write_bytes(w, b, n);
        return 0;
    }
    case WRAY_REF: {
        const uint8_t *id;
        if (wray_read_ref(r, &id)) return -1;
        wray_write_ref(w, id);
        return 0;
    }
    case WRAY_LIST:
    case WRAY_MAP: {
        int map = wray_peek(r) == WRAY_MAP;
        if (map ? wray_read_map(r, &n) : wray_read_list(r, &n)) return -1;
        if (map) wray_write_map(w, n); else wray_write_list(w, n);
        for (size_t i = 0; i < (map ? 2 * n : n); i++) {
            int e = copy(r, w, depth + 1);
            if (e) return e;
        }
        return 0;
    }
    default:
        return -1;
    }
}

static size_t unhex(const char *s, uint8_t *out) {
    size_t n = 0;
    while (s[0] && s[1] && s[0] != '\t') {
        unsigned b;
        sscanf(s, "%2x", &b);
        out[n++] = (uint8_t)b;
        s += 2;
    }
    return n;
}

int main(int argc, char **argv) {
    FILE *f = fopen(argc > 1 ? argv[1] : "tests/cbor-vectors.txt", "r");
    if (!f) {
        perror("vectors");
        return 2;
    }
    static char line[8192];
    static uint8_t bytes[4096];
    int checked = 0, skipped = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#' || line[0] == '!' || line[0] == '\n')
            continue;
        size_t n = unhex(line, bytes);
        wray_reader r = {bytes, n, 0};
        wray_writer w = {0};
        int e = copy(&r, &w, 0);
        if (e == 1) {
            skipped++;
        } else if (e || r.at != n || w.len != n || memcmp(w.buf, bytes, n)) {
            fprintf(stderr, "mismatch: %s", line);
            failed++;
        } else {
            checked++;
        }
        wray_writer_free(&w);
    }
    printf("%d vectors checked, %d left out, %d failed\n", checked, skipped, failed);
    return failed ? 1 : 0;
}
