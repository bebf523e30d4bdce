//! The raw host functions of `wray:host/v1`.
//!
//! This is the only place the SDK declares imports, expanded from the ABI's
//! one table (`wray_abi::for_each_import!`). On `wasm32` they link to the
//! host; on any other target they exist so that guest crates still
//! type-check natively (for rust-analyzer, unit tests of pure logic and the
//! SDK's compile-fail tests), and calling one panics with an explanation.
//! Signatures and semantics: `docs/abi.md`.

macro_rules! host_functions {
    ($(
        $(#[$doc:meta])*
        $konst:ident $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;
    )*) => {
        #[cfg(target_arch = "wasm32")]
        #[link(wasm_import_module = "wray:host/v1")]
        #[allow(dead_code)] // the SDK needs every function but `object_get`
        unsafe extern "C" {
            $(
                $(#[$doc])*
                pub fn $name($($arg: $ty),*) -> $ret;
            )*
        }

        $(
            $(#[$doc])*
            ///
            /// # Safety
            /// Never safe to call outside wasm: it panics.
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(unused_variables, dead_code)]
            pub unsafe fn $name($($arg: $ty),*) -> $ret {
                outside_wray(stringify!($name))
            }
        )*
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

// Every import, from the ABI's one table: names and signatures cannot
// drift from the host's (which checks its linker against the same table).
wray_abi::for_each_import!(host_functions);

#[cfg(test)]
mod tests {
    #[test]
    fn the_import_module_matches_the_abi_crate() {
        // `#[link(wasm_import_module)]` needs a literal; keep it in step.
        assert_eq!(wray_abi::HOST_MODULE, "wray:host/v1");
    }
}
