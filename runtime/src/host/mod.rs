//! The host functions of `wray:host/v1`, one module per area.
//!
//! [`add_to_linker`] registers WASI preview 1 (async) and every wray host
//! function. Each function documents its parameters and statuses in
//! `docs/abi.md`; the conventions are:
//!
//! - pointers and lengths are `u32` offsets into the guest's memory, checked
//!   by [`Guest`](crate::exec::guest::Guest); a bad one traps the guest with an
//!   [`AbiViolation`](crate::exec::guest::AbiViolation);
//! - expected outcomes (not found, too large, timed out, buffer too small)
//!   are returned as a negative [`Status`]; success is zero or a count;
//! - a guest may only name objects it holds or was handed
//!   ([`RefTable`](crate::exec::state::RefTable));
//! - functions that wait are async: they release the caller's CPU slot while
//!   waiting, so nested tasks never deadlock a full pool, and they respect
//!   the call's deadline and cancellation (epochs do not interrupt host
//!   calls).

mod actors;
mod objects;
mod spec;
mod tasks;
mod wait;
mod wasi;

use crate::exec::engine::Linked;
use crate::exec::state::InstanceState;
use wait::status;
use wasmtime::{Caller, Engine, Linker};
use wray_abi::{HOST_MODULE, import};

/// The host functions linked for `engine`, for the engine layer, which
/// does not name the store's data type.
pub(crate) fn linker(engine: &Engine) -> wasmtime::Result<Box<dyn Linked>> {
    let mut linker = Linker::new(engine);
    add_to_linker(&mut linker)?;
    Ok(Box::new(linker))
}

/// Registers WASI and every wray host function in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p1::add_to_linker_async(linker, InstanceState::wasi)?;
    wasi::add_to_linker(linker)?;
    objects::add_to_linker(linker)?;
    tasks::add_to_linker(linker)?;
    actors::add_to_linker(linker)?;
    linker.func_wrap(HOST_MODULE, import::LAST_ERROR, last_error)?;
    Ok(())
}

/// `last_error(buf, cap, out_len) -> status`: why the host last answered
/// this instance `STORE_FULL` (empty if it never did).
fn last_error(
    mut caller: Caller<'_, InstanceState>,
    buf: u32,
    cap: u32,
    out_len: u32,
) -> wasmtime::Result<i32> {
    let (mut g, st) = crate::exec::guest::Guest::of(&mut caller, import::LAST_ERROR)?;
    let why = st.last_error.as_deref().unwrap_or_default();
    status(g.write_sized(buf, cap, out_len, why.as_bytes())?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use wray_abi::{SIGNATURES, WasmType};

    /// A module importing every function of the ABI's table with the
    /// table's signature instantiates against the host's linker only if the
    /// host defines each of them with exactly that signature.
    #[test]
    fn the_linker_defines_every_import_of_the_abi_table_with_its_signature() {
        let wasm = |t: &WasmType| match t {
            WasmType::I32 => "i32",
            WasmType::I64 => "i64",
        };
        let imports: String = SIGNATURES
            .iter()
            .map(|(name, params, result)| {
                let params: Vec<&str> = params.iter().map(wasm).collect();
                format!(
                    "(import \"{HOST_MODULE}\" \"{name}\" (func (param {}) (result {})))\n",
                    params.join(" "),
                    wasm(result)
                )
            })
            .collect();
        let text = format!("(module {imports} (memory (export \"memory\") 1))");
        let engine = wasmtime::Engine::default();
        let module =
            wasmtime::Module::from_binary(&engine, &wat::parse_str(&text).unwrap()).unwrap();
        let mut linker = Linker::new(&engine);
        add_to_linker(&mut linker).unwrap();
        if let Err(e) = linker.instantiate_pre(&module) {
            panic!("the host's imports differ from wray_abi's table: {e:#}");
        }
        // And a wrong signature is caught.
        let wrong = format!(
            "(module (import \"{HOST_MODULE}\" \"object_put\" (func (param i32) (result i32))))"
        );
        let module =
            wasmtime::Module::from_binary(&engine, &wat::parse_str(&wrong).unwrap()).unwrap();
        assert!(linker.instantiate_pre(&module).is_err());
    }
}
