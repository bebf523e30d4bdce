//! Making an instance's store ([`new_store`]), dropping it, and reading
//! why a call on it failed ([`classify`]).

use crate::exec::env::Env;
use crate::exec::mapping::Mappings;
use crate::exec::module::Module;
use crate::exec::state::{
    CancelToken, InstanceState, Interrupted, Limiter, MemoryLimitExceeded, Origin, RefTable,
};
use crate::output::{OutputLimitExceeded, OutputSource};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::{Engine, Store, UpdateDeadline};
use wray_abi::ErrorKind;
use wray_abi::wire::ErrorRecord;

/// Drops a store, then the CPU and call slots it held. wasmtime drops a
/// store's data before it gives the instance back to the pool: slots
/// released with the data could grant a start, on another thread, that
/// finds the pool still full.
pub fn drop_store(mut store: Store<InstanceState>) {
    let st = store.data_mut();
    let slots = (st.slot.take(), st.call_slot.take());
    drop(store);
    drop(slots);
}

/// What a new instance is for.
pub(crate) struct InstanceSpec {
    pub module: Module,
    pub source: OutputSource,
    pub memory_limit: u64,
    pub deadline: Option<Instant>,
    pub origin: Origin,
    /// Raised to interrupt the instance.
    pub cancel: Arc<CancelToken>,
    /// The actor slot, for an actor's instance.
    pub actor_slot: Option<OwnedSemaphorePermit>,
    /// WASI arguments (drivers only; tasks get none).
    pub args: Vec<String>,
}

/// Creates a store of `engine` ready to instantiate `spec.module` in.
pub(crate) fn new_store(
    env: &Arc<Env>,
    engine: &Engine,
    spec: InstanceSpec,
) -> Store<InstanceState> {
    let state = InstanceState {
        wasi: None,
        wasi_args: spec.args,
        source: spec.source,
        capture: None,
        env: env.clone(),
        module: spec.module,
        instance: None,
        memory: None,
        limiter: Limiter {
            memory_limit: spec.memory_limit,
        },
        refs: RefTable::default(),
        call: None,
        failure: None,
        last_error: None,
        put_stream: None,
        last_put: None,
        last_put_ticks: 0,
        maps: Mappings::default(),
        nondeterministic: Arc::new(AtomicBool::new(false)),
        monotonic_base: None,
        slot: None,
        call_slot: None,
        origin: spec.origin,
        deadline: spec.deadline,
        cancel: spec.cancel,
        actor_slot: spec.actor_slot,
    };
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.limiter);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|mut ctx| {
        // A guest that computes after dropping references calls no host
        // function that would settle them: they are released here, at the
        // next tick, rather than at its next call or its end.
        let s = ctx.data_mut();
        s.refs.settle(&s.env.objects);
        if s.last_put.is_some() {
            s.last_put_ticks += 1;
            if s.last_put_ticks > 1 {
                s.last_put = None;
            }
        }
        if let Some(why) = s.cancel.interruption() {
            return Err(wasmtime::Error::new(why));
        }
        if s.deadline.is_some_and(|d| Instant::now() >= d) {
            return Err(wasmtime::Error::new(Interrupted::Timeout));
        }
        Ok(UpdateDeadline::Yield(1))
    });
    store
}

/// Turns a failed wasm call into an error record, reading what the guest
/// reported and what the host saw.
pub(crate) fn classify(
    err: &wasmtime::Error,
    state: &InstanceState,
    function: &str,
) -> ErrorRecord {
    let (kind, message) = if let Some(e) = err.downcast_ref::<MemoryLimitExceeded>() {
        (ErrorKind::OutOfMemory, e.to_string())
    } else if let Some(i) = err.downcast_ref::<Interrupted>() {
        match i {
            Interrupted::Timeout => (ErrorKind::Timeout, timeout_message(state)),
            Interrupted::Cancelled => (ErrorKind::Cancelled, "the task was cancelled".to_string()),
            Interrupted::Fault => (
                ErrorKind::WorkerFailure,
                "the worker failed (an injected fault)".to_string(),
            ),
        }
    } else if let Some(v) = err.downcast_ref::<crate::exec::guest::AbiViolation>() {
        (ErrorKind::AbiViolation, v.to_string())
    } else if let Some(e) = err.downcast_ref::<OutputLimitExceeded>() {
        (ErrorKind::OutputLimit, e.to_string())
    } else if let Some(exit) = err.downcast_ref::<wasmtime_wasi::I32Exit>() {
        (
            ErrorKind::Trap,
            format!("the guest exited with status {}", exit.0),
        )
    } else if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
        match (trap, &state.failure) {
            (wasmtime::Trap::StackOverflow, _) => (
                ErrorKind::StackOverflow,
                format!(
                    "wasm stack exhausted (limit {} bytes)",
                    state.env.config.max_wasm_stack
                ),
            ),
            (_, Some((kind, msg))) => (*kind, msg.clone()),
            // A trap names itself: "wasm trap: ...".
            (t, None) => (ErrorKind::Trap, t.to_string()),
        }
    } else if let Some((kind, msg)) = &state.failure {
        (*kind, msg.clone())
    } else {
        (ErrorKind::WorkerFailure, format!("{err:#}"))
    };
    let mut rec = ErrorRecord::new(kind, function, message);
    if let Some(bt) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
        rec.backtrace = format_backtrace(bt);
    }
    rec.stderr_tail = state.stderr_tail();
    rec
}

fn timeout_message(state: &InstanceState) -> String {
    match state.deadline {
        Some(_) => "the call exceeded its time limit".to_string(),
        None => "timed out".to_string(),
    }
}

/// One demangled frame a line, innermost first, without the frames of
/// Rust's panic machinery (they sit above the frame that panicked).
fn format_backtrace(bt: &wasmtime::WasmBacktrace) -> String {
    let names: Vec<String> = bt
        .frames()
        .iter()
        .map(|f| match f.func_name() {
            Some(n) => format!("{:#}", rustc_demangle::demangle(n)),
            None => format!("<function {}>", f.func_index()),
        })
        .collect();
    let is_panic_machinery = |n: &str| {
        n.starts_with("core::panicking::")
            || n.starts_with("std::panicking::")
            || n.starts_with("__rustc::")
            || n.starts_with("std::sys::backtrace::")
    };
    let skip = names
        .iter()
        .rposition(|n| is_panic_machinery(n))
        .map_or(0, |i| i + 1);
    let mut out = String::new();
    for (i, name) in names[skip..].iter().enumerate() {
        out.push_str(&format!("{i:>4}: {name}\n"));
    }
    out
}

/// The error of a call that returned `status` after reporting `failure`
/// (or not).
pub(crate) fn failed_return(state: &InstanceState, function: &str, status: i32) -> ErrorRecord {
    let (kind, message) = match &state.failure {
        Some((k, m)) => (*k, m.clone()),
        None => (
            ErrorKind::Application,
            format!("the export returned {status} without reporting an error"),
        ),
    };
    let mut rec = ErrorRecord::new(kind, function, message);
    rec.stderr_tail = state.stderr_tail();
    rec
}
