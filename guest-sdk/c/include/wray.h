/*
 * wray.h: write wray tasks and actors in C.
 *
 * A C guest is a WASI reactor built with clang for wasm32-wasi (see
 * guest-sdk/c/README.md). Its tasks and actor methods are exported
 * functions with fixed names, declared with the macros below. Each takes
 * its arguments as values in wray's cross-language format (deterministic
 * CBOR, docs/abi.md "Values across languages"), one per argument, and
 * returns one value, or fails with a message:
 *
 *     #include <wray.h>
 *
 *     WRAY_TASK(add) {
 *         int64_t a, b;
 *         if (wray_arg_int(0, &a) || wray_arg_int(1, &b))
 *             return wray_fail("add takes two integers");
 *         return wray_return_int(a + b);
 *     }
 *
 * An actor's state lives in the instance's globals: each actor has an
 * instance of its own, and its constructor runs first.
 */
#ifndef WRAY_H
#define WRAY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- exports --------------------------------------------------------- */

/* Starts a call: forgets the previous call's arguments. The export macros
 * call it; code that exports functions by hand must too. */
void wray__begin_call(void);

/* A task `name`: `WRAY_TASK(add) { ... }`. Return what the wray_return_*
 * and wray_fail functions return. */
#define WRAY_TASK(name)                                                      \
    static int wray__task_##name(void);                                      \
    __attribute__((export_name("wray:task/" #name))) int wray_task_##name(void) { \
        wray__begin_call();                                                  \
        return wray__task_##name();                                          \
    }                                                                        \
    static int wray__task_##name(void)

/* The constructor of actor type `Type`. */
#define WRAY_ACTOR_NEW(Type) WRAY__EXPORT(Type, new, "wray:actor/" #Type "/new")

/* Method `method` of actor type `Type`. */
#define WRAY_METHOD(Type, method)                                            \
    WRAY__EXPORT(Type, method, "wray:actor/" #Type "/" #method)

#define WRAY__EXPORT(Type, method, export)                                   \
    static int wray__actor_##Type##_##method(void);                          \
    __attribute__((export_name(export))) int wray_actor_##Type##_##method(void) { \
        wray__begin_call();                                                  \
        return wray__actor_##Type##_##method();                              \
    }                                                                        \
    static int wray__actor_##Type##_##method(void)

/* ---- writing values (deterministic CBOR) ----------------------------- */

/* A growable buffer of encoded values. `err` is set when memory ran out. */
typedef struct {
    uint8_t *buf;
    size_t len;
    size_t cap;
    int err;
} wray_writer;

void wray_write_null(wray_writer *w);
void wray_write_bool(wray_writer *w, int b);
void wray_write_int(wray_writer *w, int64_t i);
/* In the narrowest float that holds it exactly; every NaN alike. */
void wray_write_float(wray_writer *w, double x);
void wray_write_str(wray_writer *w, const char *s, size_t len);
void wray_write_bytes(wray_writer *w, const void *b, size_t len);
/* A list of `n` items: write them next. */
void wray_write_list(wray_writer *w, size_t n);
/* A map of `n` entries: write key, value, key, value... with the keys in
 * the bytewise order of their encodings (for string keys of one length:
 * alphabetical; a shorter string key first). */
void wray_write_map(wray_writer *w, size_t n);
/* A reference to the object whose 32-byte id is `id`. */
void wray_write_ref(wray_writer *w, const uint8_t id[32]);
/* Bytes that are already encoded values (read from an argument, say). */
void wray_write_encoded(wray_writer *w, const void *bytes, size_t n);
void wray_writer_free(wray_writer *w);

/* ---- reading values ---------------------------------------------------- */

/* A cursor over encoded values. Every read returns 0 on success and -1 when
 * the next item is not of the asked kind (nothing is consumed then) or the
 * input is malformed. */
typedef struct {
    const uint8_t *p;
    size_t len;
    size_t at;
} wray_reader;

/* What the next item is. */
typedef enum {
    WRAY_NULL, WRAY_BOOL, WRAY_INT, WRAY_FLOAT, WRAY_STR, WRAY_BYTES,
    WRAY_LIST, WRAY_MAP, WRAY_REF, WRAY_INVALID
} wray_kind;

wray_kind wray_peek(const wray_reader *r);
int wray_read_null(wray_reader *r);
int wray_read_bool(wray_reader *r, int *b);
/* An integer that fits int64_t. */
int wray_read_int(wray_reader *r, int64_t *i);
/* A float, or an integer (converted). */
int wray_read_float(wray_reader *r, double *x);
/* A string: `*s` points into the input, not NUL-terminated. */
int wray_read_str(wray_reader *r, const char **s, size_t *len);
int wray_read_bytes(wray_reader *r, const uint8_t **b, size_t *len);
/* A list: its item count; read the items next. */
int wray_read_list(wray_reader *r, size_t *n);
/* A map: its entry count; read key, value... next. */
int wray_read_map(wray_reader *r, size_t *n);
/* An object reference: `*id` points at its 32-byte id in the input. */
int wray_read_ref(wray_reader *r, const uint8_t **id);
/* Skips one item, whatever it is. */
int wray_skip(wray_reader *r);

/* ---- the current call ------------------------------------------------ */

/* How many arguments the call has (fetched on first use). */
size_t wray_arg_count(void);
/* A reader over argument `i`; returns -1 if there is no such argument. */
int wray_arg(size_t i, wray_reader *r);
/* Argument `i` as one value of a kind: -1 if it is not. */
int wray_arg_int(size_t i, int64_t *out);
int wray_arg_float(size_t i, double *out);

/* Sets the call's result to the value in `w`, frees it, and returns what
 * the export returns (0, or 1 if the result could not be set). */
int wray_return(wray_writer *w);
int wray_return_int(int64_t i);
int wray_return_float(double x);
int wray_return_null(void);
/* Fails the call with `message` (an application error); returns 1, what
 * the export returns. */
int wray_fail(const char *message);

/* ---- calling other functions ------------------------------------------ */

/* An object: its 32-byte id. */
typedef struct {
    uint8_t id[32];
} wray_object;

/* Submits a call of task `function` of the module linked to the program as
 * `module` (NULL: this module), whatever its language, with `nargs`
 * arguments: the first `nargs` values written to `args` (NULL when there
 * are none). The call runs in parallel; `*out` names its result, held
 * until wray_release. Returns 0, or -1 if the host refused the spec.
 * Problems found later (no such module or function) are the result's
 * error, as for any failed task. */
int wray_call(const char *module, const char *function, const wray_writer *args, size_t nargs,
              wray_object *out);
/* Waits for `o` and reads its value: `*bytes` (malloc'ed: free it) and
 * `*len`; read it with a wray_reader. Returns 0, or -1 if the object holds
 * an error (the task failed) or cannot be read. */
int wray_get(const wray_object *o, uint8_t **bytes, size_t *len);
/* wray_get of one integer. */
int wray_get_int(const wray_object *o, int64_t *out);
/* Drops this instance's hold on `o`. */
void wray_release(const wray_object *o);
/* Puts the first value written to `w` as an object (held until
 * wray_release): the same value put from any language is the same object.
 * Returns 0, or -1 if the host refused it (values holding object
 * references cannot be put from C yet). */
int wray_put(const wray_writer *w, wray_object *out);
/* Sets the call's result to a reference to `o`. */
int wray_return_ref(const wray_object *o);

#ifdef __cplusplus
}
#endif

#endif /* WRAY_H */
