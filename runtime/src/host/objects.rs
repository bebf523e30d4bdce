//! `object_put` (and its streamed form, `object_put_begin`, `_write` and
//! `_end`), `object_get` and `object_map`, `object_unmap`, `object_wait`,
//! `object_retain`, `object_release`.

use super::wait::{Waited, status, timeout_of, wait_released};
use crate::exec::guest::Guest;
use crate::exec::mapping::Mappings;
use crate::exec::state::InstanceState;
use crate::objects::blob::{Blob, Bytes};
use crate::objects::read::read;
use crate::objects::store::{Entry, Resolved};
use std::sync::Arc;
use wasmtime::{Caller, Linker};
use wray_abi::{HOST_MODULE, ObjectId, Status, import};

pub(super) fn add_to_linker(linker: &mut Linker<InstanceState>) -> wasmtime::Result<()> {
    super::wait::admitting!(
        linker,
        import::OBJECT_PUT,
        object_put,
        (data, len, refs, nrefs, out_id),
        len
    )?;
    super::wait::admitting!(
        linker,
        import::OBJECT_PUT_VALUE,
        object_put_value,
        (data, len, refs, nrefs, out_id),
        len
    )?;
    linker.func_wrap_async(
        HOST_MODULE,
        import::OBJECT_PUT_BEGIN,
        |caller, (len,): (u32,)| Box::new(object_put_begin(caller, len)),
    )?;
    linker.func_wrap(HOST_MODULE, import::OBJECT_PUT_WRITE, object_put_write)?;
    linker.func_wrap(HOST_MODULE, import::OBJECT_PUT_END, object_put_end)?;
    linker.func_wrap_async(
        HOST_MODULE,
        import::OBJECT_GET,
        |caller, (id, timeout, buf, cap, out_len): (u32, i64, u32, u32, u32)| {
            Box::new(read_object(
                caller,
                import::OBJECT_GET,
                id,
                timeout,
                buf,
                cap,
                None,
                out_len,
            ))
        },
    )?;
    linker.func_wrap_async(
        HOST_MODULE,
        import::OBJECT_MAP,
        |caller, (id, timeout, buf, cap, out_addr, out_len): (u32, i64, u32, u32, u32, u32)| {
            Box::new(read_object(
                caller,
                import::OBJECT_MAP,
                id,
                timeout,
                buf,
                cap,
                Some(out_addr),
                out_len,
            ))
        },
    )?;
    linker.func_wrap(HOST_MODULE, import::OBJECT_UNMAP, object_unmap)?;
    linker.func_wrap_async(
        HOST_MODULE,
        import::OBJECT_WAIT,
        |caller, (ids, n, num_returns, timeout, out): (u32, u32, u32, i64, u32)| {
            Box::new(object_wait(caller, ids, n, num_returns, timeout, out))
        },
    )?;
    linker.func_wrap(HOST_MODULE, import::OBJECT_RETAIN, object_retain)?;
    linker.func_wrap(HOST_MODULE, import::OBJECT_RELEASE, object_release)?;
    Ok(())
}

/// `object_put(data, len, refs, nrefs, out_id) -> status`
fn object_put(
    mut caller: Caller<'_, InstanceState>,
    data: u32,
    len: u32,
    refs: u32,
    nrefs: u32,
    out_id: u32,
) -> wasmtime::Result<i32> {
    put(
        &mut caller,
        import::OBJECT_PUT,
        false,
        (data, len, refs, nrefs, out_id),
    )
}

/// `object_put_value(data, len, refs, nrefs, out_id) -> status`: as
/// `object_put`, for a cross-language value: checked (it decodes, and every
/// object it names is among `refs`), recorded as `cbor` and named as the
/// host names values ([`ObjectStore::put_cbor`](crate::objects::store::ObjectStore::put_cbor)).
fn object_put_value(
    mut caller: Caller<'_, InstanceState>,
    data: u32,
    len: u32,
    refs: u32,
    nrefs: u32,
    out_id: u32,
) -> wasmtime::Result<i32> {
    put(
        &mut caller,
        import::OBJECT_PUT_VALUE,
        true,
        (data, len, refs, nrefs, out_id),
    )
}

/// The body of `object_put` and, for a checked cross-language value
/// (`value`), `object_put_value`.
fn put(
    caller: &mut Caller<'_, InstanceState>,
    function: &'static str,
    value: bool,
    (data, len, refs, nrefs, out_id): (u32, u32, u32, u32, u32),
) -> wasmtime::Result<i32> {
    let (mut g, st) = Guest::of(caller, function)?;
    g.check(out_id, ObjectId::LEN as u64)?;
    let Some(contained) = g.object_ids(refs, nrefs)? else {
        return status(Status::TooLarge);
    };
    let bytes = g.bytes(data, len)?;
    if bytes.len() > st.env.config.max_object_size {
        return status(Status::TooLarge);
    }
    if value {
        let Ok(v) = wray_abi::value::Value::decode(bytes) else {
            return status(Status::InvalidArgument);
        };
        if !v.refs().iter().all(|id| contained.contains(id)) {
            return status(Status::InvalidArgument);
        }
    }
    if !contained.iter().all(|id| st.refs.knows(id)) {
        return status(Status::NotFound);
    }
    let blob = st.env.objects.blob(bytes, contained);
    hand_over(&mut g, st, blob, value, out_id)
}

/// Stores `blob` (a cross-language value if `value`) as an object the
/// guest holds, and writes its id.
fn hand_over(
    g: &mut Guest<'_>,
    st: &mut InstanceState,
    blob: Arc<Blob>,
    value: bool,
    out_id: u32,
) -> wasmtime::Result<i32> {
    note_put(st, &blob);
    let id = if value {
        st.env.objects.put_cbor(blob)
    } else {
        st.env.objects.put(blob)
    };
    st.refs.adopt(&st.env.objects, id);
    g.write(out_id, &id.0)?;
    status(Status::Ok)
}

/// Remembers a large put's bytes for the guest's next put (see
/// [`InstanceState::last_put`]).
pub(super) fn note_put(st: &mut InstanceState, blob: &Blob) {
    if blob.len() >= crate::objects::blob::MAP_MIN {
        st.last_put = blob.loaded().map(|bytes| (bytes, blob.digest()));
        st.last_put_ticks = 0;
    }
}

/// `object_put_begin(len) -> status`: a put whose bytes come in pieces, so
/// a guest can stream a value as it encodes it instead of first copying it
/// whole into a buffer of its own. Drops any streamed put left unfinished,
/// then makes room for `len` bytes, as `object_put` does.
async fn object_put_begin(
    mut caller: Caller<'_, InstanceState>,
    len: u32,
) -> wasmtime::Result<i32> {
    caller.data_mut().put_stream = None;
    if len as usize > caller.data().env.config.max_object_size {
        return status(Status::TooLarge);
    }
    if !super::wait::admitted(&mut caller, len).await? {
        return status(Status::StoreFull);
    }
    let like = caller.data_mut().last_put.take();
    let filling = caller.data().env.objects.filling(len as usize, like);
    caller.data_mut().put_stream = Some(filling);
    status(Status::Ok)
}

/// `object_put_write(data, len) -> status`: appends `len` bytes at `data` to
/// the streamed put.
fn object_put_write(
    mut caller: Caller<'_, InstanceState>,
    data: u32,
    len: u32,
) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::OBJECT_PUT_WRITE)?;
    let bytes = g.bytes(data, len)?;
    let Some(filling) = st.put_stream.as_mut() else {
        return status(Status::InvalidState);
    };
    if !filling.append(bytes) {
        // Past the announced length: the put is void.
        st.put_stream = None;
        return status(Status::InvalidArgument);
    }
    status(Status::Ok)
}

/// `object_put_end(refs, nrefs, out_id) -> status`: stores the streamed put,
/// all of whose bytes were written, as an object, like `object_put`.
fn object_put_end(
    mut caller: Caller<'_, InstanceState>,
    refs: u32,
    nrefs: u32,
    out_id: u32,
) -> wasmtime::Result<i32> {
    let (mut g, st) = Guest::of(&mut caller, import::OBJECT_PUT_END)?;
    // Over whatever the status.
    let filling = st.put_stream.take();
    g.check(out_id, ObjectId::LEN as u64)?;
    let Some(contained) = g.object_ids(refs, nrefs)? else {
        return status(Status::TooLarge);
    };
    let Some(filling) = filling else {
        return status(Status::InvalidState);
    };
    if !contained.iter().all(|id| st.refs.knows(id)) {
        return status(Status::NotFound);
    }
    let Some(blob) = filling.finish(contained) else {
        return status(Status::InvalidState);
    };
    hand_over(&mut g, st, Arc::new(blob), false, out_id)
}

/// `object_get(id, timeout_ms, buf, cap, out_len) -> status` and, with
/// `out_addr`, `object_map(id, timeout_ms, buf, cap, out_addr, out_len) ->
/// status`: `object_get`, except that a value held in a file (a large one)
/// is mapped into a fresh region of the guest's memory rather than copied
/// to `buf`, and where the bytes are (the region, or `buf`) is written to
/// `out_addr`.
#[allow(clippy::too_many_arguments)]
async fn read_object(
    mut caller: Caller<'_, InstanceState>,
    function: &'static str,
    id: u32,
    timeout_ms: i64,
    buf: u32,
    cap: u32,
    out_addr: Option<u32>,
    out_len: u32,
) -> wasmtime::Result<i32> {
    let (id, entry) = {
        let (g, st) = Guest::of(&mut caller, function)?;
        let id = g.object_id(id)?;
        g.check(buf, u64::from(cap))?;
        g.check(out_len, 4)?;
        if let Some(out_addr) = out_addr {
            g.check(out_addr, 4)?;
        }
        match st
            .refs
            .knows(&id)
            .then(|| st.env.objects.get(&id))
            .flatten()
        {
            Some(e) => (id, e),
            None => return status(Status::NotFound),
        }
    };
    let resolved = match entry.state() {
        Some(r) => r.clone(),
        None => match wait_released(&mut caller, timeout_of(timeout_ms), entry.resolved()).await? {
            Waited::Done(r) => r,
            Waited::TimedOut => return status(Status::Timeout),
        },
    };
    // The value's bytes (read back from disk, or made again, if need be),
    // or the encoded error.
    let objects = caller.data().env.objects.clone();
    let (code, payload) = match &resolved {
        Resolved::Ready(blob) => match read(&objects, &id, &entry, blob).await {
            Ok(bytes) => (Status::Ok, Payload::Value(bytes)),
            Err(rec) => (Status::ErrorValue, Payload::Error(rec.encode())),
        },
        Resolved::Failed(rec) => (Status::ErrorValue, Payload::Error(rec.encode())),
    };
    if let (Status::Ok, Resolved::Ready(blob)) = (code, &resolved) {
        caller.data_mut().refs.lend(blob.refs());
    }
    if let (Some(out_addr), Payload::Value(bytes)) = (out_addr, &payload)
        && bytes.file().is_some()
    {
        return map_for(&mut caller, function, bytes.clone(), out_addr, out_len);
    }
    let (mut g, _) = Guest::of(&mut caller, function)?;
    let bytes: &[u8] = match &payload {
        Payload::Value(b) => b,
        Payload::Error(e) => e,
    };
    if let Some(out_addr) = out_addr {
        g.write_u32(out_addr, buf)?;
    }
    match g.write_sized(buf, cap, out_len, bytes)? {
        Status::Ok => status(code),
        short => status(short),
    }
}

/// What `object_get` copies out.
enum Payload {
    Value(Bytes),
    Error(Vec<u8>),
}

/// `object_unmap(addr) -> status`: gives back the region at `addr` that
/// `object_map` or `task_arg_map` mapped; it reads as zeros afterwards.
fn object_unmap(mut caller: Caller<'_, InstanceState>, addr: u32) -> wasmtime::Result<i32> {
    let (_, st) = Guest::of(&mut caller, import::OBJECT_UNMAP)?;
    if st.maps.unmap(addr) {
        status(Status::Ok)
    } else {
        status(Status::NotFound)
    }
}

/// `object_wait(ids, n, num_returns, timeout_ms, out_ready) -> count | status`
async fn object_wait(
    mut caller: Caller<'_, InstanceState>,
    ids: u32,
    n: u32,
    num_returns: u32,
    timeout_ms: i64,
    out_ready: u32,
) -> wasmtime::Result<i32> {
    let entries: Vec<Arc<Entry>> = {
        let (g, st) = Guest::of(&mut caller, import::OBJECT_WAIT)?;
        let Some(ids) = g.object_ids(ids, n)? else {
            return status(Status::TooLarge);
        };
        g.check(out_ready, u64::from(n))?;
        if num_returns > n {
            return status(Status::InvalidArgument);
        }
        let mut entries = Vec::with_capacity(ids.len());
        for id in &ids {
            match st.refs.knows(id).then(|| st.env.objects.get(id)).flatten() {
                Some(e) => entries.push(e),
                None => return status(Status::NotFound),
            }
        }
        entries
    };
    let count_ready =
        |entries: &[Arc<Entry>]| entries.iter().filter(|e| e.state().is_some()).count();
    // A zero timeout only looks.
    if timeout_ms != 0 && count_ready(&entries) < num_returns as usize {
        let enough = crate::objects::store::resolved_enough(&entries, num_returns as usize);
        // A timeout only ends the wait early: the result is what is ready.
        let _ = wait_released(&mut caller, timeout_of(timeout_ms), enough).await?;
    }
    let (mut g, _) = Guest::of(&mut caller, import::OBJECT_WAIT)?;
    let flags = g.bytes_mut(out_ready, n)?;
    let mut ready = 0;
    for (flag, e) in flags.iter_mut().zip(&entries) {
        *flag = u8::from(e.state().is_some());
        ready += i32::from(*flag);
    }
    Ok(ready)
}

/// `object_retain(id) -> status`
fn object_retain(mut caller: Caller<'_, InstanceState>, id: u32) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::OBJECT_RETAIN)?;
    let id = g.object_id(id)?;
    let objects = st.env.objects.clone();
    if st.refs.retain(&objects, id) {
        status(Status::Ok)
    } else {
        status(Status::NotFound)
    }
}

/// `object_release(id) -> status`
fn object_release(mut caller: Caller<'_, InstanceState>, id: u32) -> wasmtime::Result<i32> {
    let (g, st) = Guest::of(&mut caller, import::OBJECT_RELEASE)?;
    let id = g.object_id(id)?;
    let objects = st.env.objects.clone();
    if st.refs.release(&objects, id) {
        status(Status::Ok)
    } else {
        status(Status::NotFound)
    }
}

/// [`Mappings::map`] for the host function `function`: writes the
/// region's offset to `out_addr` and the bytes' length to `out_len` in
/// the guest's memory, and returns the `OK` status.
pub(super) fn map_for(
    caller: &mut Caller<'_, InstanceState>,
    function: &'static str,
    bytes: Bytes,
    out_addr: u32,
    out_len: u32,
) -> wasmtime::Result<i32> {
    let len = bytes.len() as u32;
    let at = Mappings::map(caller, bytes)?;
    let (mut g, _) = Guest::of(caller, function)?;
    g.write_u32(out_addr, at)?;
    g.write_u32(out_len, len)?;
    Ok(wray_abi::Status::Ok as i32)
}
