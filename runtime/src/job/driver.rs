//! Drivers: the program `wray run` starts.
//!
//! A driver is a module's `wray:main` export, or a WASI command's `_start`.
//! It runs in its own sandboxed instance like any task, with the WASI
//! arguments the user gave, but holds no CPU slot (as in Ray, the driver is
//! not a task) and has no time limit. Its output is passed through as
//! written. Each run is a job: when the driver ends, the unnamed actors it
//! (or its tasks) created end too. Stopping a job interrupts its driver
//! and cancels its tasks.

use crate::actor::registry::Actors;
use crate::exec::instance::{self, InstanceSpec};
use crate::exec::invoke::{call_export, instantiate};
use crate::exec::module::Module;
use crate::exec::slots::Need;
use crate::exec::state::{CancelToken, InstanceState, Origin};
use crate::output::{OutputSource, SourceKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::Notify;
use wasmtime::Store;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ErrorKind, export};

/// Whether a job's driver has started, and a way to wait for it.
#[derive(Default)]
pub(crate) struct Started {
    flag: AtomicBool,
    notify: Notify,
}

impl Started {
    /// Marks the driver started.
    pub fn set(&self) {
        self.flag.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }

    /// Whether the driver has started.
    pub fn get(&self) -> bool {
        self.flag.load(Ordering::Acquire)
    }

    /// Resolves once the driver has started.
    pub async fn wait(&self) {
        loop {
            let notified = self.notify.notified();
            if self.get() {
                return;
            }
            notified.await;
        }
    }
}

/// Runs the driver of `module` with WASI arguments `args` (the program name
/// first), setting `started` once it holds its call slot. Returns the exit
/// status, or the failure.
pub(crate) async fn run(
    rt: &Arc<Actors>,
    module: &Module,
    args: Vec<String>,
    job: u64,
    cancel: Arc<CancelToken>,
    started: &Started,
) -> Result<i32, ErrorRecord> {
    let outcome = run_job(rt, module, args, job, cancel, started).await;
    // The job's unnamed actors end with their driver. Its last releases
    // may still be in the reaper's hands: the job does not wait for them
    // (`Runtime::stats` and the API's object listing do; the API's status
    // and metrics show them until they are done).
    crate::actor::actors::end_job(rt, job).await;
    rt.env.links.end_job(job);
    outcome
}

async fn run_job(
    rt: &Arc<Actors>,
    module: &Module,
    args: Vec<String>,
    job: u64,
    cancel: Arc<CancelToken>,
    started: &Started,
) -> Result<i32, ErrorRecord> {
    let name = module.name().to_string();
    let source = OutputSource {
        name: name.clone().into(),
        kind: SourceKind::Driver,
        job,
    };
    // Drivers go first: every top-level task waits for its driver. A job
    // stopped while it waits (pending) never starts.
    let call_slot = tokio::select! {
        grant = rt.env.slots.enqueue(Need::DRIVER, u32::MAX).grant() => grant.call,
        _ = cancel.raised() => {
            return Err(ErrorRecord::new(
                ErrorKind::Cancelled,
                &name,
                "the job was stopped before its driver started",
            ));
        }
    };
    started.set();
    let mut store = instance::new_store(
        &rt.env,
        &rt.env.engines.tasks.engine,
        InstanceSpec {
            module: module.clone(),
            source,
            memory_limit: rt.env.config.memory_limit,
            deadline: None,
            origin: Origin {
                task: None,
                actor: None,
                job,
                depth: 0,
            },
            cancel,
            actor_slot: None,
            args,
        },
    );
    store.data_mut().call_slot = call_slot;
    let result = drive(&mut store, module, &name).await;
    instance::drop_store(store);
    result
}

/// Runs the driver's entry point, `wray:main` or `_start`, in `store`.
async fn drive(
    store: &mut Store<InstanceState>,
    module: &Module,
    name: &str,
) -> Result<i32, ErrorRecord> {
    if let Some(main) = module.export(export::MAIN).copied() {
        store.data_mut().call = None;
        let result = call_export(store, module.code(), &main).await;
        let st = store.data_mut();
        st.flush_output();
        return match result {
            Ok(export::OK) => Ok(0),
            Ok(code) => Err(instance::failed_return(st, name, code)),
            Err(e) => exit_status(&e).ok_or_else(|| instance::classify(&e, st, name)),
        };
    }
    let Some(start) = module.start_export() else {
        return Err(ErrorRecord::new(
            ErrorKind::InvalidModule,
            name,
            "the module has no driver: it exports neither `wray:main` (#[wray::main]) nor `_start`",
        ));
    };
    let result = async {
        let instance = instantiate(store, module.code()).await?;
        let func = instance
            .get_module_export(&mut *store, &start)
            .and_then(|e| e.into_func())
            .ok_or_else(|| wasmtime::format_err!("the validated export is missing"))?
            .typed::<(), ()>(&*store)?;
        func.call_async(&mut *store, ()).await
    }
    .await;
    let st = store.data_mut();
    st.flush_output();
    match result {
        Ok(()) => Ok(0),
        Err(e) => exit_status(&e).ok_or_else(|| instance::classify(&e, st, name)),
    }
}

/// Stops job `job`: interrupts its driver (through `cancel`) and cancels
/// every unfinished task and actor call of the job. Its unnamed actors end
/// when the driver does.
pub(crate) fn stop(rt: &Arc<Actors>, job: u64, cancel: &CancelToken) {
    cancel.cancel();
    // Collected first: cancelling may spawn a queued task, which removes
    // itself from the table.
    let doomed: Vec<_> = rt
        .tasks
        .table
        .iter()
        .filter(|t| t.job == job)
        .map(|t| t.value().clone())
        .collect();
    for t in doomed {
        t.cancel_task(&rt.tasks);
    }
}

/// The status of a driver that called WASI `proc_exit` (`std::process::exit`).
fn exit_status(e: &wasmtime::Error) -> Option<i32> {
    e.downcast_ref::<wasmtime_wasi::I32Exit>()
        .map(|exit| exit.0)
}
