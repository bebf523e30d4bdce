//! Calling a guest's export on a store, and reading the call's outcome
//! (its results, or its failure classified) off the store afterwards.

use crate::exec::instance;
use crate::exec::module::Code;
use crate::exec::state::InstanceState;
use crate::objects::blob::Blob;
use crate::objects::held::HeldRefs;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use wasmtime::{ModuleExport, Store};
use wray_abi::export;
use wray_abi::wire::ErrorRecord;

/// A successful attempt: its return values, and references to the objects
/// they refer to, held until the values are stored.
pub(crate) struct Finished {
    pub values: Vec<Arc<Blob>>,
    pub held: HeldRefs,
    /// Whether the attempt read no clock and no random numbers.
    pub deterministic: bool,
}

/// Instantiates `code` in `store`: binds the instance for host functions
/// and runs the reactor initializer (`_initialize`), if the module has one,
/// as the WASI application ABI asks before any other export.
pub(crate) async fn instantiate(
    store: &mut Store<InstanceState>,
    code: &Code,
) -> wasmtime::Result<wasmtime::Instance> {
    let instance = code.pre().instantiate_async(&mut *store).await?;
    bind_instance(store, code, &instance);
    if let Some(init) = code.initialize_export() {
        instance
            .get_module_export(&mut *store, init)
            .and_then(|e| e.into_func())
            .ok_or_else(|| wasmtime::format_err!("the validated export is missing"))?
            .typed::<(), ()>(&*store)?
            .call_async(&mut *store, ())
            .await?;
    }
    Ok(instance)
}

/// Instantiates `module` in `store` and calls the `() -> i32` export.
pub(crate) async fn call_export(
    store: &mut Store<InstanceState>,
    code: &Code,
    export: &ModuleExport,
) -> wasmtime::Result<i32> {
    let instance = instantiate(store, code).await?;
    let func = instance
        .get_module_export(&mut *store, export)
        .and_then(|e| e.into_func())
        .ok_or_else(|| wasmtime::format_err!("the validated export is missing"))?
        .typed::<(), i32>(&*store)?;
    func.call_async(&mut *store, ()).await
}

/// Remembers the instance and its memory for host functions.
fn bind_instance(store: &mut Store<InstanceState>, code: &Code, instance: &wasmtime::Instance) {
    let memory = code
        .memory_export()
        .and_then(|m| instance.get_module_export(&mut *store, m))
        .and_then(|e| e.into_memory());
    let st = store.data_mut();
    st.memory = memory;
    st.instance = Some(*instance);
}

/// Reads a finished call's results (or failure) off its store.
pub(crate) fn finish_call(
    store: &mut Store<InstanceState>,
    result: wasmtime::Result<i32>,
    function: &str,
) -> Result<Finished, ErrorRecord> {
    let st = store.data_mut();
    st.flush_output();
    match result {
        Ok(export::OK) => {
            let call = st.call.take().expect("a call is set before running");
            let objects = &st.env.objects;
            let values = call
                .returns
                .into_iter()
                // An export that returns OK without `task_return` returns the
                // empty value (what `()` encodes to).
                .map(|r| r.unwrap_or_else(|| objects.blob(&[], Vec::new())))
                .collect();
            Ok(Finished {
                values,
                held: call.returned_refs,
                deterministic: !st.nondeterministic.load(Ordering::Relaxed),
            })
        }
        Ok(code) => Err(instance::failed_return(st, function, code)),
        Err(e) => Err(instance::classify(&e, st, function)),
    }
}
