/*
 * c-math: wray tasks and an actor in C.
 *
 *   add(a: int, b: int) -> int
 *   sum(xs: list of float) -> float
 *   fails() -> never: an application error with a message
 *   Counter(start: int), Counter.incr() -> int
 *
 * Built by `make guests` (clang, wasm32-wasi) to
 * target/wasm32-wasip1/release/c_math.wasm. Arguments and results are
 * wray's cross-language values (deterministic CBOR).
 */
#include <wray.h>

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
