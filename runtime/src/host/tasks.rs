//! `task_submit`, `task_args`, `task_arg_map`, `task_return`, `task_fail`,
//! `task_cancel`.

use super::wait::status;
use crate::exec::guest::Guest;
use crate::exec::request;
use crate::exec::state::InstanceState;
use crate::objects::blob::Blob;
use std::sync::Arc;
use wasmtime::{Caller, Linker};
use wray_abi::wire::{MAPPED_ARG, SpecKind, TaskSpec};
use wray_abi::{ErrorKind, HOST_MODULE, ObjectId, Status, cancel_flags, import};

/// Longest failure message kept from a guest.
const MAX_FAIL_MESSAGE: u32 = 64 << 10;

pub(super) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    // A spec's inline values become objects: make room for its length.
    super::wait::admitting!(
        linker,
        import::TASK_SUBMIT,
        task_submit,
        (spec, len, out_ids, out_cap),
        len
    )?;
    linker.func_wrap(HOST_MODULE, import::TASK_ARGS, task_args)?;
    linker.func_wrap(HOST_MODULE, import::TASK_ARG_MAP, task_arg_map)?;
    super::wait::admitting!(
        linker,
        import::TASK_RETURN,
        task_return,
        (index, data, len, refs, nrefs),
        len
    )?;
    linker.func_wrap(HOST_MODULE, import::TASK_RETURN_END, task_return_end)?;
    linker.func_wrap(HOST_MODULE, import::TASK_FAIL, task_fail)?;
    linker.func_wrap(HOST_MODULE, import::TASK_CANCEL, task_cancel)?;
    Ok(())
}

/// `task_submit(spec, len, out_ids, out_cap) -> count | status`
fn task_submit(
    mut caller: Caller<'_, InstanceState>,
    spec: u32,
    len: u32,
    out_ids: u32,
    out_cap: u32,
) -> wasmtime::Result<i32> {
    let (mut g, st) = Guest::of(&mut caller, import::TASK_SUBMIT)?;
    g.check(out_ids, u64::from(out_cap))?;
    let bytes = g.bytes(spec, len)?;
    if bytes.len() > request::max_spec_len(&st.env.config) {
        return status(Status::TooLarge);
    }
    let Ok(spec) = TaskSpec::decode(bytes) else {
        return status(Status::InvalidArgument);
    };
    let needed = u64::from(spec.num_returns) * ObjectId::LEN as u64;
    if spec.num_returns == 0
        || spec.num_returns > request::MAX_RETURNS
        || needed > u64::from(out_cap)
    {
        return status(Status::InvalidArgument);
    }
    let submission = match super::spec::submission(&spec, st) {
        Ok(s) => s,
        Err(code) => return status(code),
    };
    let Some(up) = st.env.upcalls() else {
        return status(Status::InvalidState);
    };
    let returns = match (spec.kind, spec.actor) {
        (SpecKind::Task, _) => up.submit_task(st.module.clone(), submission),
        (SpecKind::ActorMethod, Some(actor)) => up.call_actor(actor, spec.function, submission),
        _ => return status(Status::InvalidArgument),
    };
    let mut out = Vec::with_capacity(returns.len() * ObjectId::LEN);
    for id in &returns {
        st.refs.adopt(&st.env.objects, *id);
        out.extend_from_slice(&id.0);
    }
    g.write(out_ids, &out)?;
    Ok(returns.len() as i32)
}

/// `task_args(buf, cap, out_len) -> status`
fn task_args(
    mut caller: Caller<'_, InstanceState>,
    buf: u32,
    cap: u32,
    out_len: u32,
) -> wasmtime::Result<i32> {
    let (mut g, st) = Guest::of(&mut caller, import::TASK_ARGS)?;
    g.check(out_len, 4)?;
    let Some(call) = &st.call else {
        return status(Status::InvalidState);
    };
    let total = call.layout.total as u32;
    g.write_u32(out_len, total)?;
    if total > cap {
        return status(Status::BufferTooSmall);
    }
    let dst = g.bytes_mut(buf, total)?;
    call.layout.write_header(dst);
    for (arg, &(at, len)) in call.args.iter().zip(&call.layout.slots) {
        if at != MAPPED_ARG {
            dst[at as usize..(at + len) as usize].copy_from_slice(&arg.bytes);
        }
    }
    status(Status::Ok)
}

/// `task_arg_map(index, out_addr, out_len) -> status`: maps argument
/// `index`, which `task_args` left out of the buffer (its slot's offset is
/// `MAPPED_ARG`), into a fresh region of the guest's memory, as
/// `object_map` does, and writes where and how long it is.
fn task_arg_map(
    mut caller: Caller<'_, InstanceState>,
    index: u32,
    out_addr: u32,
    out_len: u32,
) -> wasmtime::Result<i32> {
    let bytes = {
        let (g, st) = Guest::of(&mut caller, import::TASK_ARG_MAP)?;
        g.check(out_addr, 4)?;
        g.check(out_len, 4)?;
        let Some(call) = &st.call else {
            return status(Status::InvalidState);
        };
        let i = index as usize;
        match call.layout.slots.get(i) {
            Some(&(MAPPED_ARG, _)) => call.args[i].bytes.clone(),
            _ => return status(Status::InvalidArgument),
        }
    };
    super::objects::map_for(&mut caller, import::TASK_ARG_MAP, bytes, out_addr, out_len)
}

/// `task_return(index, data, len, refs, nrefs) -> status`
fn task_return(
    mut caller: Caller<'_, InstanceState>,
    index: u32,
    data: u32,
    len: u32,
    refs: u32,
    nrefs: u32,
) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::TASK_RETURN)?;
    let Some(contained) = g.object_ids(refs, nrefs)? else {
        return status(Status::TooLarge);
    };
    let bytes = g.bytes(data, len)?;
    if let Err(code) = settable(st, index, &contained) {
        return status(code);
    }
    if bytes.len() > st.env.config.max_object_size {
        return status(Status::TooLarge);
    }
    let blob = st.env.objects.blob(bytes, contained);
    set_return(st, index, blob)
}

/// `task_return_end(index, refs, nrefs) -> status`: sets return value
/// `index` to the bytes of the streamed put (`object_put_begin`, `_write`),
/// as `task_return` does, so a large result goes from the guest's value
/// straight into the store. The streamed put is over whatever the status.
fn task_return_end(
    mut caller: Caller<'_, InstanceState>,
    index: u32,
    refs: u32,
    nrefs: u32,
) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::TASK_RETURN_END)?;
    // Over whatever the status.
    let filling = st.put_stream.take();
    let Some(contained) = g.object_ids(refs, nrefs)? else {
        return status(Status::TooLarge);
    };
    let Some(filling) = filling else {
        return status(Status::InvalidState);
    };
    if let Err(code) = settable(st, index, &contained) {
        return status(code);
    }
    let Some(blob) = filling.finish(contained) else {
        return status(Status::InvalidState);
    };
    super::objects::note_put(st, &blob);
    set_return(st, index, Arc::new(blob))
}

/// Whether return value `index` of the current call can be set to a value
/// referring to `contained`.
fn settable(st: &InstanceState, index: u32, contained: &[ObjectId]) -> Result<(), Status> {
    let call = st.call.as_ref().ok_or(Status::InvalidState)?;
    match call.returns.get(index as usize) {
        None => Err(Status::InvalidArgument),
        Some(Some(_)) => Err(Status::InvalidState),
        Some(None) if !contained.iter().all(|id| st.refs.knows(id)) => Err(Status::NotFound),
        Some(None) => Ok(()),
    }
}

/// Sets return value `index` (checked with [`settable`]) to `blob`, holding
/// the objects it refers to until it is stored.
fn set_return(st: &mut InstanceState, index: u32, blob: Arc<Blob>) -> wasmtime::Result<i32> {
    let call = st.call.as_mut().expect("checked by settable");
    for id in blob.refs() {
        if !call.returned_refs.retain(*id) {
            return status(Status::NotFound);
        }
    }
    call.returns[index as usize] = Some(blob);
    status(Status::Ok)
}

/// `task_fail(kind, msg, len) -> status`
fn task_fail(
    mut caller: Caller<'_, InstanceState>,
    kind: u32,
    msg: u32,
    len: u32,
) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::TASK_FAIL)?;
    g.check(msg, u64::from(len))?;
    let text = g.bytes(msg, len.min(MAX_FAIL_MESSAGE))?;
    let mut message = String::from_utf8_lossy(text).into_owned();
    if len > MAX_FAIL_MESSAGE {
        message.push_str("… (truncated)");
    }
    let kind = ErrorKind::from_code(kind).unwrap_or(ErrorKind::Application);
    st.failure = Some((kind, message));
    status(Status::Ok)
}

/// `task_cancel(id, flags) -> status`
fn task_cancel(
    mut caller: Caller<'_, InstanceState>,
    id: u32,
    flags: i32,
) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::TASK_CANCEL)?;
    let id = g.object_id(id)?;
    if flags & !(cancel_flags::FORCE | cancel_flags::RECURSIVE) != 0 {
        return status(Status::InvalidArgument);
    }
    if !st.refs.knows(&id) {
        return status(Status::NotFound);
    }
    let Some(up) = st.env.upcalls() else {
        return status(Status::InvalidState);
    };
    if up.cancel(&id, flags & cancel_flags::RECURSIVE != 0) {
        status(Status::Ok)
    } else {
        status(Status::NotFound)
    }
}
