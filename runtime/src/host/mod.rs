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
//!   ([`RefTable`](crate::exec::instance::RefTable));
//! - functions that wait are async: they release the caller's CPU slot while
//!   waiting, so nested tasks never deadlock a full pool, and they respect
//!   the call's deadline and cancellation (epochs do not interrupt host
//!   calls).

mod actors;
mod objects;
mod tasks;
mod wasi;

use crate::exec::instance::{InstanceState, Interrupted};
use std::future::Future;
use std::time::{Duration, Instant};
use wasmtime::{Caller, Linker};
use wray_abi::{HOST_MODULE, Status, import};

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

/// The status code a host function returns.
fn status(s: Status) -> wasmtime::Result<i32> {
    Ok(s as i32)
}

/// A guest timeout in milliseconds: negative waits forever.
fn timeout_of(ms: i64) -> Option<Duration> {
    u64::try_from(ms).ok().map(Duration::from_millis)
}

/// How a wait inside a host call ended.
pub(crate) enum Waited<T> {
    /// The awaited thing happened.
    Done(T),
    /// The guest's own timeout passed first.
    TimedOut,
}

/// Awaits `fut` for a guest, with its CPU slot released meanwhile.
///
/// The wait ends early when the guest's `timeout` passes
/// ([`Waited::TimedOut`]), and traps the guest when its call's deadline
/// passes or it is cancelled.
pub(crate) async fn wait_released<T>(
    caller: &mut Caller<'_, InstanceState>,
    timeout: Option<Duration>,
    fut: impl Future<Output = T>,
) -> wasmtime::Result<Waited<T>> {
    wait(caller, timeout, fut, true).await
}

/// [`wait_released`], releasing the CPU slot only if `release`.
async fn wait<T>(
    caller: &mut Caller<'_, InstanceState>,
    timeout: Option<Duration>,
    fut: impl Future<Output = T>,
    release: bool,
) -> wasmtime::Result<Waited<T>> {
    let env = caller.data().env.clone();
    let cancel = caller.data().cancel.clone();
    let deadline = caller.data().deadline;
    caller.data_mut().last_put = None;
    let had_slot = release && caller.data_mut().slot.take().is_some();
    let give_up = timeout.map(|t| Instant::now() + t);
    let outcome = tokio::select! {
        v = fut => Ok(Waited::Done(v)),
        () = sleep_until(give_up) => Ok(Waited::TimedOut),
        () = sleep_until(deadline) => Err(Interrupted::Timeout),
        why = cancel.raised() => Err(why),
    };
    if had_slot {
        // Back at the front of the line: this call holds an instance and a
        // fiber stack, and finishing it frees them.
        let grant = env.slots.resume().grant().await;
        caller.data_mut().slot = grant.cpu;
    }
    outcome.map_err(wasmtime::Error::new)
}

/// Makes room for `len` bytes of objects, waiting while the store spills.
/// False when there is no room; the reason is kept for `last_error`.
///
/// The caller keeps its CPU slot meanwhile: a task that waits here still
/// pins its arguments, and handing its slot to the next task would pin
/// that one's too, pushing the store further past its cap with every
/// task that starts (all then wait, and none gets room).
pub(crate) async fn admitted(
    caller: &mut Caller<'_, InstanceState>,
    len: u32,
) -> wasmtime::Result<bool> {
    let env = caller.data().env.clone();
    if env.objects.fits(len as usize) {
        return Ok(true);
    }
    match wait(caller, None, env.objects.admit(len as usize), false).await? {
        Waited::Done(Ok(())) => Ok(true),
        Waited::Done(Err(full)) => {
            caller.data_mut().last_error = Some(full.0);
            Ok(false)
        }
        Waited::TimedOut => Ok(false),
    }
}

/// Registers `f` (a synchronous host function whose call stores `len`
/// bytes of objects) as an async one that first makes room for them.
macro_rules! admitting {
    ($linker:expr, $name:expr, $f:path, ($($a:ident),*), $len:ident) => {
        $linker.func_wrap_async(
            wray_abi::HOST_MODULE,
            $name,
            |mut caller: wasmtime::Caller<'_, InstanceState>, ($($a),*): ($(crate::host::admitting!(@u32 $a)),*)| {
                Box::new(async move {
                    if !crate::host::admitted(&mut caller, $len).await? {
                        return Ok(wray_abi::Status::StoreFull as i32);
                    }
                    $f(caller, $($a),*)
                })
            },
        )
    };
    (@u32 $a:ident) => { u32 };
}
pub(crate) use admitting;

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
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
