//! `actor_create`, `actor_lookup`, `actor_kill`, `actor_self`, and actor
//! method calls through `task_submit`.

use super::wait::{Waited, status, wait_released};
use crate::exec::guest::Guest;
use crate::exec::request::max_spec_len;
use crate::exec::state::InstanceState;

use wasmtime::{Caller, Linker};
use wray_abi::wire::{SpecKind, TaskSpec};
use wray_abi::{ActorId, HOST_MODULE, Status, import, kill_flags};

/// Longest actor name.
const MAX_NAME: u32 = 1024;

pub(super) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    linker.func_wrap_async(
        HOST_MODULE,
        import::ACTOR_CREATE,
        |mut caller: Caller<'_, InstanceState>, (spec, len, out): (u32, u32, u32)| {
            Box::new(async move {
                if !super::wait::admitted(&mut caller, len).await? {
                    return status(Status::StoreFull);
                }
                let (code, named) = actor_create(&mut caller, spec, len, out)?;
                // In a cluster, a named actor is found from any node once
                // its creation returns.
                if let Some(named) = named {
                    wait_released(&mut caller, None, named).await?;
                }
                status(code)
            })
        },
    )?;
    linker.func_wrap_async(
        HOST_MODULE,
        import::ACTOR_LOOKUP,
        |caller, (name, len, out_actor, out_type, type_cap, out_type_len)| {
            Box::new(actor_lookup(
                caller,
                name,
                len,
                out_actor,
                out_type,
                type_cap,
                out_type_len,
            ))
        },
    )?;
    linker.func_wrap(HOST_MODULE, import::ACTOR_KILL, actor_kill)?;
    linker.func_wrap(HOST_MODULE, import::ACTOR_SELF, actor_self)?;
    Ok(())
}

/// What [`actor_create`] leaves to wait for: a name's claim across the
/// cluster.
type Named = Option<futures_util::future::BoxFuture<'static, ()>>;

/// `actor_create(spec, len, out_actor) -> status`, and what to wait for
/// before returning.
fn actor_create(
    caller: &mut Caller<'_, InstanceState>,
    spec: u32,
    len: u32,
    out: u32,
) -> wasmtime::Result<(Status, Named)> {
    let (mut g, st) = Guest::of(caller, import::ACTOR_CREATE)?;
    g.check(out, ActorId::LEN as u64)?;
    let bytes = g.bytes(spec, len)?;
    if bytes.len() > max_spec_len(&st.env.config) {
        return Ok((Status::TooLarge, None));
    }
    let Ok(spec) = TaskSpec::decode(bytes) else {
        return Ok((Status::InvalidArgument, None));
    };
    if spec.kind != SpecKind::ActorCreate
        || spec
            .options
            .name
            .as_ref()
            .is_some_and(|n| n.len() > MAX_NAME as usize)
    {
        return Ok((Status::InvalidArgument, None));
    }
    let type_name = spec.function.to_string();
    let sub = match super::spec::submission(&spec, st) {
        Ok(s) => s,
        Err(code) => return Ok((code, None)),
    };
    let Some(up) = st.env.upcalls() else {
        return Ok((Status::InvalidState, None));
    };
    let id = up.clone().create_actor(st.module.clone(), type_name, sub);
    g.write(out, &id.0)?;
    Ok((Status::Ok, up.actor_named(&id)))
}

/// `actor_lookup(name, len, out_actor, out_type, type_cap, out_type_len) -> status`
///
/// Looks in this node's registry, then (in a cluster) in the cluster's
/// names, with the caller's CPU slot released while it asks.
async fn actor_lookup(
    mut caller: Caller<'_, InstanceState>,
    name: u32,
    len: u32,
    out_actor: u32,
    out_type: u32,
    type_cap: u32,
    out_type_len: u32,
) -> wasmtime::Result<i32> {
    let (name, local, cluster) = {
        let (g, st) = Guest::of(&mut caller, import::ACTOR_LOOKUP)?;
        g.check(out_actor, ActorId::LEN as u64)?;
        g.check(out_type, u64::from(type_cap))?;
        g.check(out_type_len, 4)?;
        if len > MAX_NAME {
            return status(Status::TooLarge);
        }
        let Ok(name) = std::str::from_utf8(g.bytes(name, len)?) else {
            return status(Status::InvalidArgument);
        };
        let local = st.env.upcalls().and_then(|up| up.lookup_actor(name));
        (name.to_string(), local, st.env.cluster())
    };
    let found = match (local, cluster) {
        (Some(found), _) => Some(found),
        (None, Some(cluster)) => {
            match wait_released(&mut caller, None, cluster.find_name(&name)).await? {
                Waited::Done(found) => found,
                Waited::TimedOut => None,
            }
        }
        (None, None) => None,
    };
    let Some((id, type_name)) = found else {
        return status(Status::NotFound);
    };
    let (mut g, _) = Guest::of(&mut caller, import::ACTOR_LOOKUP)?;
    let written = g.write_sized(out_type, type_cap, out_type_len, type_name.as_bytes())?;
    if written == Status::Ok {
        g.write(out_actor, &id.0)?;
    }
    status(written)
}

/// `actor_kill(actor, flags) -> status`
fn actor_kill(
    mut caller: Caller<'_, InstanceState>,
    actor: u32,
    flags: i32,
) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::ACTOR_KILL)?;
    let b = g.bytes(actor, ActorId::LEN as u32)?;
    let id = ActorId::from_slice(b).expect("the slice has the id's length");
    if flags & !kill_flags::ALLOW_RESTART != 0 {
        return status(Status::InvalidArgument);
    }
    let Some(up) = st.env.upcalls() else {
        return status(Status::InvalidState);
    };
    if up.kill_actor(&id, flags & kill_flags::ALLOW_RESTART != 0) {
        status(Status::Ok)
    } else {
        status(Status::NotFound)
    }
}

/// `actor_self(out_actor) -> status`
fn actor_self(mut caller: Caller<'_, InstanceState>, out: u32) -> wasmtime::Result<i32> {
    let (mut g, st) = Guest::of(&mut caller, import::ACTOR_SELF)?;
    g.check(out, ActorId::LEN as u64)?;
    match st.origin.actor {
        Some(id) => {
            g.write(out, &id.0)?;
            status(Status::Ok)
        }
        None => status(Status::NotFound),
    }
}
