/*
 * wray's cross-language values in C: a writer of deterministic CBOR
 * (docs/abi.md, "Values across languages") and a bounds-checked reader.
 *
 * Portable C99: it builds for wasm32-wasi guests and natively, for the
 * test that checks it against tests/cbor-vectors.txt.
 */
#include "wray.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define REF_TAG 0x77726179u
#define MAX_DEPTH 128

/* ---- writer ---------------------------------------------------------- */

static void put(wray_writer *w, const void *bytes, size_t n) {
    if (w->err)
        return;
    if (w->len + n > w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        while (cap < w->len + n)
            cap *= 2;
        uint8_t *buf = realloc(w->buf, cap);
        if (!buf) {
            w->err = 1;
            return;
        }
        w->buf = buf;
        w->cap = cap;
    }
    memcpy(w->buf + w->len, bytes, n);
    w->len += n;
}

static void put_be(wray_writer *w, uint64_t v, int bytes) {
    uint8_t b[8];
    for (int i = 0; i < bytes; i++)
        b[i] = (uint8_t)(v >> (8 * (bytes - 1 - i)));
    put(w, b, (size_t)bytes);
}

/* A head of major type `major` and argument `n`, in its shortest form. */
static void head(wray_writer *w, uint8_t major, uint64_t n) {
    uint8_t m = (uint8_t)(major << 5);
    uint8_t first;
    if (n < 24) {
        first = m | (uint8_t)n;
        put(w, &first, 1);
    } else if (n <= 0xff) {
        first = m | 24;
        put(w, &first, 1);
        put_be(w, n, 1);
    } else if (n <= 0xffff) {
        first = m | 25;
        put(w, &first, 1);
        put_be(w, n, 2);
    } else if (n <= 0xffffffffu) {
        first = m | 26;
        put(w, &first, 1);
        put_be(w, n, 4);
    } else {
        first = m | 27;
        put(w, &first, 1);
        put_be(w, n, 8);
    }
}

void wray_write_null(wray_writer *w) { put(w, "\xf6", 1); }

void wray_write_bool(wray_writer *w, int b) { put(w, b ? "\xf5" : "\xf4", 1); }

void wray_write_int(wray_writer *w, int64_t i) {
    if (i >= 0)
        head(w, 0, (uint64_t)i);
    else
        head(w, 1, (uint64_t)(-1 - i));
}

/* The half-precision bits of `x` (not a NaN), if a half holds it exactly. */
static int half_exact(float x, uint16_t *out) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    uint16_t sign = (uint16_t)((bits >> 16) & 0x8000);
    int exp = (int)((bits >> 23) & 0xff);
    uint32_t mant = bits & 0x7fffff;
    if (exp == 0xff) { /* infinity */
        *out = sign | 0x7c00;
        return 1;
    }
    if (exp == 0) { /* zero; single subnormals are too small for a half */
        if (mant != 0)
            return 0;
        *out = sign;
        return 1;
    }
    int e = exp - 127;
    uint32_t significand = (1u << 23) | mant;
    if (e >= -14 && e <= 15) {
        if (mant & 0x1fff)
            return 0;
        *out = sign | (uint16_t)((e + 15) << 10) | (uint16_t)(mant >> 13);
        return 1;
    }
    if (e >= -24 && e < -14) {
        int shift = -(e + 1);
        if (significand & ((1u << shift) - 1))
            return 0;
        *out = sign | (uint16_t)(significand >> shift);
        return 1;
    }
    return 0;
}

void wray_write_float(wray_writer *w, double x) {
    if (x != x) {
        put(w, "\xf9\x7e\x00", 3);
        return;
    }
    float single = (float)x;
    uint16_t half;
    if ((double)single != x) {
        uint64_t bits;
        memcpy(&bits, &x, 8);
        put(w, "\xfb", 1);
        put_be(w, bits, 8);
    } else if (half_exact(single, &half)) {
        put(w, "\xf9", 1);
        put_be(w, half, 2);
    } else {
        uint32_t bits;
        memcpy(&bits, &single, 4);
        put(w, "\xfa", 1);
        put_be(w, bits, 4);
    }
}

void wray_write_str(wray_writer *w, const char *s, size_t len) {
    head(w, 3, len);
    put(w, s, len);
}

void wray_write_bytes(wray_writer *w, const void *b, size_t len) {
    head(w, 2, len);
    put(w, b, len);
}

void wray_write_list(wray_writer *w, size_t n) { head(w, 4, n); }

void wray_write_map(wray_writer *w, size_t n) { head(w, 5, n); }

void wray_write_ref(wray_writer *w, const uint8_t id[32]) {
    head(w, 6, REF_TAG);
    head(w, 2, 32);
    put(w, id, 32);
}

void wray_writer_free(wray_writer *w) {
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}

/* ---- reader ---------------------------------------------------------- */

/* Reads the head at `*at` without moving the reader; -1 if malformed. */
static int peek_head(const wray_reader *r, size_t *at, uint8_t *major,
                     uint8_t *info, uint64_t *n) {
    if (*at >= r->len)
        return -1;
    uint8_t first = r->p[(*at)++];
    *major = first >> 5;
    *info = first & 0x1f;
    int bytes;
    if (*info < 24) {
        *n = *info;
        return 0;
    } else if (*info == 24) {
        bytes = 1;
    } else if (*info == 25) {
        bytes = 2;
    } else if (*info == 26) {
        bytes = 4;
    } else if (*info == 27) {
        bytes = 8;
    } else {
        return -1; /* indefinite lengths and reserved values */
    }
    if (r->len - *at < (size_t)bytes)
        return -1;
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v = (v << 8) | r->p[(*at)++];
    *n = v;
    return 0;
}

wray_kind wray_peek(const wray_reader *r) {
    size_t at = r->at;
    uint8_t major, info;
    uint64_t n;
    if (peek_head(r, &at, &major, &info, &n))
        return WRAY_INVALID;
    switch (major) {
    case 0:
    case 1:
        return WRAY_INT;
    case 2:
        return WRAY_BYTES;
    case 3:
        return WRAY_STR;
    case 4:
        return WRAY_LIST;
    case 5:
        return WRAY_MAP;
    case 6:
        return n == REF_TAG ? WRAY_REF : WRAY_INVALID;
    default:
        if (info == 20 || info == 21)
            return WRAY_BOOL;
        if (info == 22)
            return WRAY_NULL;
        if (info >= 25 && info <= 27)
            return WRAY_FLOAT;
        return WRAY_INVALID;
    }
}

int wray_read_null(wray_reader *r) {
    if (wray_peek(r) != WRAY_NULL)
        return -1;
    r->at++;
    return 0;
}

int wray_read_bool(wray_reader *r, int *b) {
    if (wray_peek(r) != WRAY_BOOL)
        return -1;
    *b = r->p[r->at++] == 0xf5;
    return 0;
}

int wray_read_int(wray_reader *r, int64_t *i) {
    size_t at = r->at;
    uint8_t major, info;
    uint64_t n;
    if (peek_head(r, &at, &major, &info, &n) || major > 1 || n > (uint64_t)INT64_MAX)
        return -1;
    *i = major == 0 ? (int64_t)n : -1 - (int64_t)n;
    r->at = at;
    return 0;
}

static double from_half(uint16_t bits) {
    double sign = (bits & 0x8000) ? -1.0 : 1.0;
    int exp = (bits >> 10) & 0x1f;
    double mant = bits & 0x3ff;
    if (exp == 0)
        return sign * ldexp(mant, -24);
    if (exp == 0x1f)
        return mant == 0 ? sign * INFINITY : NAN;
    return sign * ldexp(1.0 + mant / 1024.0, exp - 15);
}

int wray_read_float(wray_reader *r, double *x) {
    wray_kind k = wray_peek(r);
    if (k == WRAY_INT) {
        int64_t i;
        if (wray_read_int(r, &i))
            return -1;
        *x = (double)i;
        return 0;
    }
    if (k != WRAY_FLOAT)
        return -1;
    size_t at = r->at;
    uint8_t major, info;
    uint64_t n;
    peek_head(r, &at, &major, &info, &n);
    if (info == 25) {
        *x = from_half((uint16_t)n);
    } else if (info == 26) {
        uint32_t bits = (uint32_t)n;
        float f;
        memcpy(&f, &bits, 4);
        *x = f;
    } else {
        memcpy(x, &n, 8);
    }
    r->at = at;
    return 0;
}

/* A string or byte string of major type `major`. */
static int read_string(wray_reader *r, uint8_t want, const uint8_t **s, size_t *len) {
    size_t at = r->at;
    uint8_t major, info;
    uint64_t n;
    if (peek_head(r, &at, &major, &info, &n) || major != want || n > r->len - at)
        return -1;
    *s = r->p + at;
    *len = (size_t)n;
    r->at = at + (size_t)n;
    return 0;
}

int wray_read_str(wray_reader *r, const char **s, size_t *len) {
    return read_string(r, 3, (const uint8_t **)s, len);
}

int wray_read_bytes(wray_reader *r, const uint8_t **b, size_t *len) {
    return read_string(r, 2, b, len);
}

int wray_read_ref(wray_reader *r, const uint8_t **id) {
    size_t at = r->at;
    uint8_t major, info;
    uint64_t n;
    if (peek_head(r, &at, &major, &info, &n) || major != 6 || n != REF_TAG)
        return -1;
    if (peek_head(r, &at, &major, &info, &n) || major != 2 || n != 32 || r->len - at < 32)
        return -1;
    *id = r->p + at;
    r->at = at + 32;
    return 0;
}

static int read_count(wray_reader *r, uint8_t want, size_t *count) {
    size_t at = r->at;
    uint8_t major, info;
    uint64_t n;
    /* Every item takes at least a byte: a longer count cannot fit. */
    if (peek_head(r, &at, &major, &info, &n) || major != want || n > r->len - at)
        return -1;
    *count = (size_t)n;
    r->at = at;
    return 0;
}

int wray_read_list(wray_reader *r, size_t *n) { return read_count(r, 4, n); }

int wray_read_map(wray_reader *r, size_t *n) { return read_count(r, 5, n); }

static int skip(wray_reader *r, int depth) {
    if (depth > MAX_DEPTH)
        return -1;
    size_t at = r->at;
    uint8_t major, info;
    uint64_t n;
    if (peek_head(r, &at, &major, &info, &n))
        return -1;
    switch (major) {
    case 2:
    case 3:
        if (n > r->len - at)
            return -1;
        r->at = at + (size_t)n;
        return 0;
    case 4:
    case 5: {
        uint64_t items = major == 5 ? n * 2 : n;
        if (n > r->len - at)
            return -1;
        r->at = at;
        for (uint64_t i = 0; i < items; i++)
            if (skip(r, depth + 1))
                return -1;
        return 0;
    }
    case 6:
        r->at = at;
        return skip(r, depth + 1);
    default:
        r->at = at;
        return 0;
    }
}

int wray_skip(wray_reader *r) {
    size_t at = r->at;
    if (skip(r, 0)) {
        r->at = at;
        return -1;
    }
    return 0;
}

/* Bytes already encoded, and the SDK's own formats (call.c). */
void wray_write_encoded(wray_writer *w, const void *bytes, size_t n) { put(w, bytes, n); }
