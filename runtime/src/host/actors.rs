//! `actor_create`, `actor_lookup`, `actor_kill`, `actor_self`, and actor
//! method calls through `task_submit`.

use super::status;
use crate::instance::InstanceState;
use wasmtime::{Caller, Linker};
use wray_abi::wire::TaskSpec;
use wray_abi::{HOST_MODULE, Status, import};

pub(super) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.func_wrap(
        HOST_MODULE,
        import::ACTOR_CREATE,
        |_: Caller<'_, InstanceState>, _spec: u32, _len: u32, _out: u32| {
            status(Status::InvalidState)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        import::ACTOR_LOOKUP,
        |_: Caller<'_, InstanceState>, _: u32, _: u32, _: u32, _: u32, _: u32, _: u32| {
            status(Status::InvalidState)
        },
    )?;
    linker.func_wrap(
        HOST_MODULE,
        import::ACTOR_KILL,
        |_: Caller<'_, InstanceState>, _: u32, _: i32| status(Status::InvalidState),
    )?;
    linker.func_wrap(
        HOST_MODULE,
        import::ACTOR_SELF,
        |_: Caller<'_, InstanceState>, _: u32| status(Status::InvalidState),
    )?;
    Ok(())
}

/// A method call submitted through `task_submit`; returns the ids of its
/// return values, each held once for the caller.
pub(super) fn submit_method(
    _rt: &std::sync::Arc<crate::runtime::Shared>,
    _spec: &TaskSpec<'_>,
    _sub: crate::scheduler::Submission,
) -> Result<Vec<wray_abi::ObjectId>, Status> {
    Err(Status::InvalidState)
}
