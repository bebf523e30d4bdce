//! Host calls that wait (for objects, for room in the store, for time):
//! they give the caller's CPU slot back while they wait, and end at the
//! call's deadline or cancellation, which epochs cannot interrupt inside a
//! host call. And [`status`], how every host function returns a status.

use crate::exec::state::{InstanceState, Interrupted};
use std::future::Future;
use std::time::{Duration, Instant};
use wasmtime::Caller;
use wray_abi::Status;

/// The status code a host function returns.
pub(super) fn status(s: Status) -> wasmtime::Result<i32> {
    Ok(s as i32)
}

/// A guest timeout in milliseconds: negative waits forever.
pub(super) fn timeout_of(ms: i64) -> Option<Duration> {
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
            |mut caller: wasmtime::Caller<'_, InstanceState>, ($($a),*): ($(crate::host::wait::admitting!(@u32 $a)),*)| {
                Box::new(async move {
                    if !crate::host::wait::admitted(&mut caller, $len).await? {
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
