/*
 * c-math: wray tasks and an actor in C.
 *
 *   add(a: int, b: int) -> int
 *   sum(xs: list of float) -> float
 *   fails() -> never: an application error with a message
 *   apply(module: str, function: str, x: int) -> int: calls
 *       function(x) of the module linked as `module`, in any language
 *   store(x: any) -> ref: puts x as an object, returns a reference to it
 *   Counter(start: int), Counter.incr() -> int
 *
 * Built by `make guests` (clang, wasm32-wasi) to
 * target/wasm32-wasip1/release/c_math.wasm. Arguments and results are
 * wray's cross-language values (deterministic CBOR).
 */
#include <wray.h>
#include <string.h>

WRAY_TASK(add) {
    int64_t a, b;
    if (wray_arg_count() != 2 || wray_arg_int(0, &a) || wray_arg_int(1, &b))
        return wray_fail("add takes two integers");
    return wray_return_int(a + b);
}

WRAY_TASK(sum) {
    wray_reader r;
    size_t n;
    if (wray_arg_count() != 1 || wray_arg(0, &r) || wray_read_list(&r, &n))
        return wray_fail("sum takes a list of numbers");
    double total = 0;
    for (size_t i = 0; i < n; i++) {
        double x;
        if (wray_read_float(&r, &x))
            return wray_fail("sum takes a list of numbers");
        total += x;
    }
    return wray_return_float(total);
}

WRAY_TASK(fails) {
    return wray_fail("fails always fails: this is its message");
}

WRAY_TASK(apply) {
    wray_reader r;
    const char *m, *f;
    size_t mlen, flen;
    int64_t x;
    if (wray_arg_count() != 3 || wray_arg(0, &r) || wray_read_str(&r, &m, &mlen) ||
        wray_arg(1, &r) || wray_read_str(&r, &f, &flen) || wray_arg_int(2, &x))
        return wray_fail("apply takes a module name, a function name and an integer");
    char module[64], function[64];
    if (mlen >= sizeof module || flen >= sizeof function)
        return wray_fail("apply: a name is too long");
    memcpy(module, m, mlen);
    module[mlen] = 0;
    memcpy(function, f, flen);
    function[flen] = 0;
    wray_writer args = {0};
    wray_write_int(&args, x);
    wray_object result;
    int refused = wray_call(module, function, &args, 1, &result);
    wray_writer_free(&args);
    if (refused)
        return wray_fail("apply: the host refused the call");
    int64_t y;
    int failed = wray_get_int(&result, &y);
    wray_release(&result);
    if (failed)
        return wray_fail("apply: the call failed, or did not return an integer");
    return wray_return_int(y);
}

WRAY_TASK(store) {
    wray_reader r;
    if (wray_arg_count() != 1 || wray_arg(0, &r))
        return wray_fail("store takes one value");
    wray_writer w = {0};
    wray_write_encoded(&w, r.p, r.len);
    wray_object o;
    int refused = wray_put(&w, &o);
    wray_writer_free(&w);
    if (refused)
        return wray_fail("store: the host refused the value");
    int status = wray_return_ref(&o);
    wray_release(&o);
    return status;
}

/* Counter's state: each actor has an instance of its own. */
static int64_t count;

WRAY_ACTOR_NEW(Counter) {
    if (wray_arg_count() != 1 || wray_arg_int(0, &count))
        return wray_fail("Counter takes a start value, an integer");
    return wray_return_null();
}

WRAY_METHOD(Counter, incr) {
    return wray_return_int(++count);
}
