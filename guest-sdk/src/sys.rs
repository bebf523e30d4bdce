//! The raw host functions of `wray:host/v1`.
//!
//! This is the only place the SDK declares imports. On `wasm32` they link to
//! the host; on any other target they exist so that guest crates still
//! type-check natively (for rust-analyzer, unit tests of pure logic and the
//! SDK's compile-fail tests), and calling one panics with an explanation.
//! Signatures and semantics: `docs/abi.md`.

macro_rules! host_functions {
    ($(
        $(#[$doc:meta])*
        fn $name:ident = $link:literal ($($arg:ident: $ty:ty),* $(,)?) -> i32;
    )*) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = "wray:host/v1")]
        unsafe extern "C" {
            $(
                $(#[$doc])*
                #[link_name = $link]
                pub fn $name($($arg: $ty),*) -> i32;
            )*
        }

        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// Never safe to call outside wasm: it panics.
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(unused_variables)]
            pub unsafe fn $name($($arg: $ty),*) -> i32 {
                outside_wray($link)
            }
        )*

        /// Every import name declared here, to check them against `wray_abi`.
        #[cfg(test)]
        pub(crate) const LINK_NAMES: &[&str] = &[$($link),*];
    };
}

#[cfg(not(target_arch = "wasm32"))]
#[cold]
fn outside_wray(name: &str) -> ! {
    panic!(
        "wray host function `{name}` called outside the wray runtime: build the guest with \
         `cargo build --target wasm32-wasip1` and run it with `wray run`"
    )
}

host_functions! {
    /// Stores `len` bytes at `data` as an immutable object; `refs` points at
    /// `nrefs` 32-byte ids the value contains. Writes the object's id.
    fn object_put = "object_put"(data: *const u8, len: usize, refs: *const u8, nrefs: usize, out_id: *mut u8) -> i32;
    /// Starts a put of `len` bytes that come in pieces (a streamed put).
    fn object_put_begin = "object_put_begin"(len: usize) -> i32;
    /// Appends `len` bytes at `data` to the streamed put.
    fn object_put_write = "object_put_write"(data: *const u8, len: usize) -> i32;
    /// Stores the streamed put as an object, like `object_put`.
    fn object_put_end = "object_put_end"(refs: *const u8, nrefs: usize, out_id: *mut u8) -> i32;
    /// Waits up to `timeout_ms` for the object, then copies its bytes (or its
    /// error record) into `buf` when they fit in `cap`, or maps a large value
    /// into a fresh region of memory; writes where the bytes are (the region,
    /// or `buf`) to `out_addr` and their length to `out_len`. (The SDK never
    /// needs `object_get`, which only copies.)
    fn object_map = "object_map"(id: *const u8, timeout_ms: i64, buf: *mut u8, cap: usize, out_addr: *mut u32, out_len: *mut u32) -> i32;
    /// Gives back a region `object_map` or `task_arg_map` mapped.
    fn object_unmap = "object_unmap"(addr: *const u8) -> i32;
    /// Waits until `num_returns` of the `n` ids are ready or the timeout
    /// passes; marks ready ones in `out_ready`; returns how many are ready.
    fn object_wait = "object_wait"(ids: *const u8, n: usize, num_returns: usize, timeout_ms: i64, out_ready: *mut u8) -> i32;
    /// Records one more reference to the object held by this instance.
    fn object_retain = "object_retain"(id: *const u8) -> i32;
    /// Drops one reference held by this instance.
    fn object_release = "object_release"(id: *const u8) -> i32;
    /// Submits a task or actor method; writes the ids of its return values.
    fn task_submit = "task_submit"(spec: *const u8, len: usize, out_ids: *mut u8, out_cap: usize) -> i32;
    /// Copies the current call's argument buffer into `buf` when it fits.
    fn task_args = "task_args"(buf: *mut u8, cap: usize, out_len: *mut u32) -> i32;
    /// Maps argument `index`, which `task_args` left out of its buffer, into
    /// a fresh region of memory; writes where and how long it is.
    fn task_arg_map = "task_arg_map"(index: u32, out_addr: *mut u32, out_len: *mut u32) -> i32;
    /// Sets return value `index` of the current call.
    fn task_return = "task_return"(index: u32, data: *const u8, len: usize, refs: *const u8, nrefs: usize) -> i32;
    /// Sets return value `index` of the current call to the streamed put's
    /// bytes, like `task_return`.
    fn task_return_end = "task_return_end"(index: u32, refs: *const u8, nrefs: usize) -> i32;
    /// Records why the current call fails (an `ErrorKind` and a message).
    fn task_fail = "task_fail"(kind: u32, msg: *const u8, len: usize) -> i32;
    /// Cancels the task that makes the object `id`.
    fn task_cancel = "task_cancel"(id: *const u8, flags: i32) -> i32;
    /// Creates an actor; writes its 16-byte id.
    fn actor_create = "actor_create"(spec: *const u8, len: usize, out_actor: *mut u8) -> i32;
    /// Finds a named actor; writes its id and its type name.
    fn actor_lookup = "actor_lookup"(name: *const u8, len: usize, out_actor: *mut u8, out_type: *mut u8, type_cap: usize, out_type_len: *mut u32) -> i32;
    /// Kills an actor.
    fn actor_kill = "actor_kill"(actor: *const u8, flags: i32) -> i32;
    /// Writes the id of the actor this instance is, if it is one.
    fn actor_self = "actor_self"(out_actor: *mut u8) -> i32;
    /// Copies why the host last answered `STORE_FULL` (UTF-8, possibly
    /// empty) into `buf` when it fits in `cap`; writes the length.
    fn last_error = "last_error"(buf: *mut u8, cap: usize, out_len: *mut u32) -> i32;
}

#[cfg(test)]
mod tests {
    use wray_abi::import;

    #[test]
    fn import_names_match_the_abi_crate() {
        let abi = [
            import::OBJECT_PUT,
            import::OBJECT_PUT_BEGIN,
            import::OBJECT_PUT_WRITE,
            import::OBJECT_PUT_END,
            import::OBJECT_MAP,
            import::OBJECT_UNMAP,
            import::OBJECT_WAIT,
            import::OBJECT_RETAIN,
            import::OBJECT_RELEASE,
            import::TASK_SUBMIT,
            import::TASK_ARGS,
            import::TASK_ARG_MAP,
            import::TASK_RETURN,
            import::TASK_RETURN_END,
            import::TASK_FAIL,
            import::TASK_CANCEL,
            import::ACTOR_CREATE,
            import::ACTOR_LOOKUP,
            import::ACTOR_KILL,
            import::ACTOR_SELF,
            import::LAST_ERROR,
        ];
        assert_eq!(super::LINK_NAMES, abi);
        // `#[link(wasm_import_module)]` needs a literal; keep it in step.
        assert_eq!(wray_abi::HOST_MODULE, "wray:host/v1");
    }
}
