/*
 * The current call of a C guest: its arguments (fetched with task_args on
 * first use, once per call), its result (task_return) and its failure
 * (task_fail). The host functions are declared here, from docs/abi.md.
 */
#include "wray.h"

#include <stdlib.h>
#include <string.h>

#define HOST(name) __attribute__((import_module("wray:host/v1"), import_name(#name)))

HOST(task_args) int32_t wray__task_args(uint8_t *buf, uint32_t cap, uint32_t *out_len);
HOST(task_return) int32_t wray__task_return(uint32_t index, const uint8_t *data, uint32_t len,
                                            const uint8_t *refs, uint32_t nrefs);
HOST(task_fail) int32_t wray__task_fail(uint32_t kind, const char *msg, uint32_t len);
HOST(task_submit) int32_t wray__task_submit(const uint8_t *spec, uint32_t len, uint8_t *out_ids,
                                            uint32_t out_cap);
HOST(object_get) int32_t wray__object_get(const uint8_t *id, int64_t timeout_ms, uint8_t *buf,
                                          uint32_t cap, uint32_t *out_len);
HOST(object_release) int32_t wray__object_release(const uint8_t *id);
HOST(object_put_value) int32_t wray__object_put_value(const uint8_t *data, uint32_t len,
                                                      const uint8_t *refs, uint32_t nrefs,
                                                      uint8_t *out_id);

enum { STATUS_OK = 0, STATUS_BUFFER_TOO_SMALL = -1, KIND_APPLICATION = 1 };
enum { SPEC_VERSION = 1, SPEC_TASK = 0, OPTION_MODULE = 9, ARG_VALUE = 0 };

/* The argument buffer: a u32 count, then (offset, length) per argument. */
static uint8_t *args;
static uint32_t args_len;
static int args_fetched;

void wray__begin_call(void) {
    free(args);
    args = NULL;
    args_len = 0;
    args_fetched = 0;
}

static uint32_t u32_at(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Fetches the argument buffer once per call; 0 on success. */
static int fetch(void) {
    if (args_fetched)
        return args ? 0 : -1;
    args_fetched = 1;
    uint32_t len = 0;
    uint8_t probe[16] __attribute__((aligned(16)));
    int32_t status = wray__task_args(probe, 0, &len);
    if (status != STATUS_OK && status != STATUS_BUFFER_TOO_SMALL)
        return -1;
    /* Payloads are 16-aligned from the buffer's start. */
    args = aligned_alloc(16, (len + 15) & ~15u);
    if (!args || wray__task_args(args, len, &len) != STATUS_OK || len < 4) {
        free(args);
        args = NULL;
        return -1;
    }
    args_len = len;
    return 0;
}

size_t wray_arg_count(void) {
    return fetch() ? 0 : u32_at(args);
}

int wray_arg(size_t i, wray_reader *r) {
    if (fetch() || i >= u32_at(args))
        return -1;
    const uint8_t *slot = args + 4 + 8 * i;
    if ((size_t)(slot - args) + 8 > args_len)
        return -1;
    uint32_t at = u32_at(slot), len = u32_at(slot + 4);
    if (at > args_len || len > args_len - at)
        return -1; /* a mapped argument (wray maps only for modules importing task_arg_map) */
    r->p = args + at;
    r->len = len;
    r->at = 0;
    return 0;
}

int wray_arg_int(size_t i, int64_t *out) {
    wray_reader r;
    return wray_arg(i, &r) || wray_read_int(&r, out) || r.at != r.len ? -1 : 0;
}

int wray_arg_float(size_t i, double *out) {
    wray_reader r;
    return wray_arg(i, &r) || wray_read_float(&r, out) || r.at != r.len ? -1 : 0;
}

int wray_return(wray_writer *w) {
    int failed = w->err || wray__task_return(0, w->buf, (uint32_t)w->len, NULL, 0) != STATUS_OK;
    wray_writer_free(w);
    if (failed)
        return wray_fail("the result could not be set (out of memory, or too large)");
    return 0;
}

int wray_return_int(int64_t i) {
    wray_writer w = {0};
    wray_write_int(&w, i);
    return wray_return(&w);
}

int wray_return_float(double x) {
    wray_writer w = {0};
    wray_write_float(&w, x);
    return wray_return(&w);
}

int wray_return_null(void) {
    wray_writer w = {0};
    wray_write_null(&w);
    return wray_return(&w);
}

int wray_fail(const char *message) {
    wray__task_fail(KIND_APPLICATION, message, (uint32_t)strlen(message));
    return 1;
}

/* Appends `n` little-endian bytes of `v`. */

static void put_le(wray_writer *w, uint64_t v, int n) {
    uint8_t b[8];
    for (int i = 0; i < n; i++)
        b[i] = (uint8_t)(v >> (8 * i));
    wray_write_encoded(w, b, (size_t)n);
}

static void put_blob(wray_writer *w, const void *p, size_t len) {
    put_le(w, len, 4);
    wray_write_encoded(w, p, len);
}

int wray_call(const char *module, const char *function, const wray_writer *args, size_t nargs,
              wray_object *out) {
    /* The task spec (docs/abi.md, "Task spec"). */
    wray_writer spec = {0};
    put_le(&spec, SPEC_VERSION, 1);
    put_le(&spec, SPEC_TASK, 1);
    put_le(&spec, 0, 2);
    put_blob(&spec, function, strlen(function));
    put_le(&spec, 1, 4); /* num_returns */
    put_le(&spec, module ? 1 : 0, 4);
    if (module) {
        put_le(&spec, OPTION_MODULE, 2);
        put_blob(&spec, module, strlen(module));
    }
    put_le(&spec, nargs, 4);
    wray_reader r = {args ? args->buf : NULL, args ? args->len : 0, 0};
    for (size_t i = 0; i < nargs; i++) {
        size_t from = r.at;
        if (wray_skip(&r)) {
            wray_writer_free(&spec);
            return -1;
        }
        put_le(&spec, ARG_VALUE, 1);
        put_blob(&spec, r.p + from, r.at - from);
        put_le(&spec, 0, 4); /* the objects the value refers to: none */
    }
    int32_t n = spec.err ? -1 : wray__task_submit(spec.buf, (uint32_t)spec.len, out->id, 32);
    wray_writer_free(&spec);
    return n == 1 ? 0 : -1;
}

int wray_get(const wray_object *o, uint8_t **bytes, size_t *len) {
    uint32_t need = 0;
    uint8_t probe[16];
    int32_t status = wray__object_get(o->id, -1, probe, 0, &need);
    if (status != STATUS_OK && status != STATUS_BUFFER_TOO_SMALL)
        return -1;
    uint8_t *buf = malloc(need ? need : 1);
    if (!buf || wray__object_get(o->id, -1, buf, need, &need) != STATUS_OK) {
        free(buf);
        return -1;
    }
    *bytes = buf;
    *len = need;
    return 0;
}

int wray_get_int(const wray_object *o, int64_t *out) {
    uint8_t *bytes;
    size_t len;
    if (wray_get(o, &bytes, &len))
        return -1;
    wray_reader r = {bytes, len, 0};
    int bad = wray_read_int(&r, out) || r.at != r.len;
    free(bytes);
    return bad ? -1 : 0;
}

void wray_release(const wray_object *o) {
    wray__object_release(o->id);
}

int wray_put(const wray_writer *w, wray_object *out) {
    wray_reader r = {w->buf, w->len, 0};
    if (w->err || wray_skip(&r))
        return -1;
    return wray__object_put_value(w->buf, (uint32_t)r.at, NULL, 0, out->id) == STATUS_OK ? 0 : -1;
}

int wray_return_ref(const wray_object *o) {
    wray_writer w = {0};
    wray_write_ref(&w, o->id);
    int failed = w.err || wray__task_return(0, w.buf, (uint32_t)w.len, o->id, 1) != STATUS_OK;
    wray_writer_free(&w);
    return failed ? wray_fail("the result could not be set") : 0;
}
