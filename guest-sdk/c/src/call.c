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

enum { STATUS_OK = 0, STATUS_BUFFER_TOO_SMALL = -1, KIND_APPLICATION = 1 };

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
