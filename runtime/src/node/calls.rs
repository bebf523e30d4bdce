//! Calls and values over HTTP: `POST /api/tasks` runs a function of an
//! uploaded module, `POST /api/actors` creates an actor and `POST
//! /api/actors/{id}/methods/{name}` calls it, `POST /api/objects` stores a
//! value, `GET` and `DELETE /api/objects/{id}` read and let go of one. Values are wray's
//! cross-language values: their JSON form, or deterministic CBOR
//! (`Content-Type`/`Accept: application/cbor`).
//!
//! An object a client is given (a call's result not awaited, a put value)
//! is held by the node until the client deletes it, at most [`MAX_HELD`]
//! at once; a result returned in the answer (`?wait=`) is not held.

use super::api::{error, error_info, find_module, media_type, ok};
use super::state::{MAX_HELD, NodeState};
use super::types::{
    ActorCall, ActorCreated, CallFailed, ErrorInfo, MethodCall, ObjectAnswer, ObjectIds,
    ObjectValue, ObjectValues, ObjectsReady, ObjectsReleased, TaskCall,
};
use crate::api::call::{ActorRef, CallBuilder, Method, NewActor, Task};
use crate::api::object_ref::ObjectRef;
use crate::api::parts::{Parts, read_value};
use crate::error::Error;
use crate::objects::blob::Encoding;
use crate::objects::store::{Entry, resolved_enough};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use wray_abi::value::Value;
use wray_abi::{ActorId, ObjectId};

type St = State<Arc<NodeState>>;
type Params = Query<HashMap<String, String>>;

const CBOR: &str = "application/cbor";
/// The longest `?wait=` or `?timeout=`, in seconds.
const MAX_WAIT_S: f64 = 3600.0;

fn parts(st: &NodeState) -> Parts<'_> {
    Parts {
        actors: &st.actors,
        handle: &st.handle,
    }
}

/// Whether the client asks for CBOR.
fn wants_cbor(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim().starts_with(CBOR)))
}

/// A duration in seconds from query parameter `key`, if given.
fn seconds(q: &HashMap<String, String>, key: &str) -> Result<Option<Duration>, Response> {
    q.get(key)
        .map(|v| duration(key, v.parse::<f64>().ok(), v))
        .transpose()
}

/// `s` seconds, for the parameter `key` (given as `text`), if it is a
/// number from 0 to [`MAX_WAIT_S`].
fn duration(key: &str, s: Option<f64>, text: &str) -> Result<Duration, Response> {
    match s {
        Some(s) if (0.0..=MAX_WAIT_S).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err(error(
            StatusCode::BAD_REQUEST,
            format!("`{key}` is a number of seconds from 0 to {MAX_WAIT_S}, not {text:?}"),
        )),
    }
}

/// The refusal for an error of the host API.
fn refusal(e: Error) -> Response {
    let status = match &e {
        Error::ObjectNotFound(_) => StatusCode::NOT_FOUND,
        Error::ObjectStoreFull(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

/// Keeps `r` for a client; refuses when the node holds too many.
fn hold(st: &NodeState, r: ObjectRef) -> Result<(), Response> {
    let mut held = st.held.lock().unwrap_or_else(|e| e.into_inner());
    if held.len() >= MAX_HELD && !held.contains_key(&r.id()) {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the node holds {MAX_HELD} objects for clients: delete some \
                 (DELETE /api/objects/ID) before making more"
            ),
        ));
    }
    held.insert(r.id(), r);
    Ok(())
}

/// The answer for object `id` once read: its value, or why there is none.
fn answer(id: ObjectId, read: Result<(crate::Bytes, Encoding), Error>, cbor: bool) -> Response {
    let object_id = id.to_string();
    match read {
        Ok(read) => match read_value(&id, &read) {
            Ok(_) if cbor => {
                let mut r = (
                    [(header::CONTENT_TYPE, HeaderValue::from_static(CBOR))],
                    read.0.to_vec(),
                )
                    .into_response();
                if let Ok(v) = HeaderValue::from_str(&object_id) {
                    r.headers_mut().insert("x-wray-object-id", v);
                }
                r
            }
            Ok(value) => ok(ObjectAnswer {
                object_id,
                result: Some(value.to_json()),
                pending: false,
            }),
            Err(e) => error(
                StatusCode::UNPROCESSABLE_ENTITY,
                format!(
                    "object {object_id} is not a cross-language value ({e}): a Rust \
                     guest's values are rkyv, which only Rust reads"
                ),
            ),
        },
        Err(Error::Timeout(_)) => (
            StatusCode::ACCEPTED,
            axum::Json(ObjectAnswer {
                object_id,
                result: None,
                pending: true,
            }),
        )
            .into_response(),
        Err(Error::Task(e)) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(CallFailed {
                error: e.to_string(),
                object_id,
                failure: error_info(e.record()),
            }),
        )
            .into_response(),
        Err(e) => refusal(e),
    }
}

/// A request body's call: JSON, or a CBOR map with the same keys.
fn task_call(headers: &HeaderMap, body: &[u8]) -> Result<(String, String, Vec<Value>), Response> {
    let bad = |why: String| error(StatusCode::BAD_REQUEST, why);
    match media_type(headers).as_str() {
        "application/json" => {
            let call: TaskCall = serde_json::from_slice(body)
                .map_err(|e| bad(format!("the body is not a task call: {e}")))?;
            Ok((call.module, call.function, values(&call.args)?))
        }
        CBOR => {
            let v = Value::decode(body).map_err(|e| bad(format!("the body: {e}")))?;
            let Value::Map(entries) = v else {
                return Err(bad("the body is a map: module, function, args".into()));
            };
            let field = |k: &str| entries.iter().find(|(key, _)| *key == Value::Str(k.into()));
            let text = |k: &str| match field(k) {
                Some((_, Value::Str(s))) => Ok(s.clone()),
                _ => Err(bad(format!("the body's `{k}` is a string"))),
            };
            let args = match field("args") {
                Some((_, Value::List(items))) => items.clone(),
                None => Vec::new(),
                _ => return Err(bad("the body's `args` is a list".into())),
            };
            Ok((text("module")?, text("function")?, args))
        }
        _ => Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the call as JSON (Content-Type: application/json) or CBOR (application/cbor)",
        )),
    }
}

/// `POST /api/tasks[?wait=SECONDS]`
pub(crate) async fn post_task(
    State(st): St,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (module, function, args) = match task_call(&headers, &body) {
        Ok(c) => c,
        Err(r) => return r,
    };
    let wait = match seconds(&q, "wait") {
        Ok(w) => w,
        Err(r) => return r,
    };
    let m = match find_module(&st, &module).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    if m.task(&function).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("module `{}` has no remote function `{function}`", m.name()),
        );
    }
    let call = args.iter().fold(
        CallBuilder::new(parts(&st), Task::new(&m, &function)),
        |b, a| b.arg_value(a),
    );
    finish(&st, call.submit_async().await, wait, &headers).await
}

/// The answer to a submitted call (`r`): held without `wait`, else its
/// result once ready.
async fn finish(
    st: &NodeState,
    r: Result<ObjectRef, Error>,
    wait: Option<Duration>,
    headers: &HeaderMap,
) -> Response {
    let r = match r {
        Ok(r) => r,
        Err(e) => return refusal(e),
    };
    let Some(wait) = wait else {
        let id = r.id();
        return match hold(st, r) {
            Ok(()) => ok(ObjectAnswer {
                object_id: id.to_string(),
                result: None,
                pending: true,
            }),
            Err(refused) => refused,
        };
    };
    let read = parts(st).read(r.id(), Some(wait)).await;
    if matches!(read, Err(Error::Timeout(_))) {
        // Not ready: held for a later GET.
        if let Err(refused) = hold(st, r.clone()) {
            return refused;
        }
    }
    answer(r.id(), read, wants_cbor(headers))
}

/// The JSON arguments of a call, as values.
fn values(args: &[serde_json::Value]) -> Result<Vec<Value>, Response> {
    args.iter()
        .enumerate()
        .map(|(i, a)| {
            Value::from_json(a)
                .map_err(|e| error(StatusCode::BAD_REQUEST, format!("argument {i}: {e}")))
        })
        .collect()
}

/// The body of a JSON request as a `T`.
fn json_body<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: &[u8],
    what: &str,
) -> Result<T, Response> {
    if media_type(headers) != "application/json" {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the call as JSON (Content-Type: application/json)",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        error(
            StatusCode::BAD_REQUEST,
            format!("the body is not {what}: {e}"),
        )
    })
}

/// `POST /api/actors`
pub(crate) async fn post_actor(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let call: ActorCall = match json_body(&headers, &body, "an actor to create") {
        Ok(c) => c,
        Err(r) => return r,
    };
    let args = match values(&call.args) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let m = match find_module(&st, &call.module).await {
        Ok(m) => m,
        Err(r) => return r,
    };
    if m.method(&call.class, wray_abi::export::ACTOR_CONSTRUCTOR)
        .is_none()
    {
        return error(
            StatusCode::NOT_FOUND,
            format!("module `{}` has no actor type `{}`", m.name(), call.class),
        );
    }
    if let Some(name) = &call.name
        && st.actors.registry.lookup(name).is_some()
    {
        return error(
            StatusCode::CONFLICT,
            format!("an actor named {name:?} exists already"),
        );
    }
    let mut b = args.iter().fold(
        CallBuilder::new(parts(&st), NewActor::new(&m, &call.class)),
        |b, a| b.arg_value(a),
    );
    if let Some(name) = call.name {
        b = b.name(name);
    }
    match b.create_async().await {
        Ok(a) => ok(ActorCreated {
            actor_id: a.id().seq().to_string(),
        }),
        Err(e) => refusal(e),
    }
}

/// `POST /api/actors/{id}/methods/{method}[?wait=SECONDS]`
pub(crate) async fn post_method(
    State(st): St,
    Path((id, method)): Path<(String, String)>,
    Query(q): Params,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let call: MethodCall = if body.is_empty() {
        MethodCall::default()
    } else {
        match json_body(&headers, &body, "a method call") {
            Ok(c) => c,
            Err(r) => return r,
        }
    };
    let args = match values(&call.args) {
        Ok(a) => a,
        Err(r) => return r,
    };
    let wait = match seconds(&q, "wait") {
        Ok(w) => w,
        Err(r) => return r,
    };
    let actor = id
        .parse::<u64>()
        .ok()
        .map(|seq| ActorId::new(st.actors.env.config.node_id, seq))
        .and_then(|a| st.actors.registry.get(&a));
    let Some(actor) = actor else {
        return error(StatusCode::NOT_FOUND, format!("no live actor {id}"));
    };
    if actor.module.method(&actor.type_name, &method).is_none() {
        return error(
            StatusCode::NOT_FOUND,
            format!("actor type `{}` has no method `{method}`", actor.type_name),
        );
    }
    let target = ActorRef::new(actor.id, actor.type_name.clone(), actor.module.clone());
    let call = args.iter().fold(
        CallBuilder::new(parts(&st), Method::new(&target, &method)),
        |b, a| b.arg_value(a),
    );
    finish(&st, call.submit_async().await, wait, &headers).await
}

/// `GET /api/objects/{id}[?timeout=SECONDS]`
pub(crate) async fn get_object(
    State(st): St,
    Path(id): Path<String>,
    Query(q): Params,
    headers: HeaderMap,
) -> Response {
    let Some(id) = ObjectId::parse(&id) else {
        return error(
            StatusCode::BAD_REQUEST,
            format!("{id:?} is not an object id (64 hex digits)"),
        );
    };
    let timeout = match seconds(&q, "timeout") {
        Ok(t) => t.unwrap_or(Duration::ZERO),
        Err(r) => return r,
    };
    answer(
        id,
        parts(&st).read(id, Some(timeout)).await,
        wants_cbor(&headers),
    )
}

/// `POST /api/objects`: the body is a value, as JSON or CBOR.
pub(crate) async fn post_object(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let value = match media_type(&headers).as_str() {
        "application/json" => serde_json::from_slice::<serde_json::Value>(&body)
            .map_err(|e| e.to_string())
            .and_then(|j| Value::from_json(&j).map_err(|e| e.to_string())),
        CBOR => Value::decode(&body).map_err(|e| e.to_string()),
        _ => {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the value as JSON (Content-Type: application/json) or CBOR (application/cbor)",
            );
        }
    };
    let value = match value {
        Ok(v) => v,
        Err(why) => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("the body is not a value: {why}"),
            );
        }
    };
    match parts(&st).put_value(&value).await {
        Ok(r) => {
            let id = r.id();
            match hold(&st, r) {
                Ok(()) => ok(ObjectAnswer {
                    object_id: id.to_string(),
                    result: None,
                    pending: false,
                }),
                Err(refused) => refused,
            }
        }
        Err(e) => refusal(e),
    }
}

/// `DELETE /api/objects/{id}`: the node stops holding it.
pub(crate) async fn delete_object(State(st): St, Path(id): Path<String>) -> Response {
    let gone = ObjectId::parse(&id).and_then(|id| {
        st.held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id)
    });
    match gone {
        Some(_) => StatusCode::NO_CONTENT.into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("the node holds no object {id}"),
        ),
    }
}

/// The objects of a batch request, parsed; and its timeout.
fn batch(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(ObjectIds, Vec<ObjectId>, Duration), Response> {
    let req: ObjectIds = json_body(headers, body, "a list of object ids")?;
    let ids = req
        .ids
        .iter()
        .map(|s| {
            ObjectId::parse(s).ok_or_else(|| {
                error(
                    StatusCode::BAD_REQUEST,
                    format!("{s:?} is not an object id (64 hex digits)"),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let timeout = match req.timeout {
        None => Duration::ZERO,
        Some(s) => duration("timeout", Some(s), &s.to_string())?,
    };
    Ok((req, ids, timeout))
}

/// A failure record for an object without a value.
fn no_value(kind: &str, message: String) -> Option<ErrorInfo> {
    Some(ErrorInfo {
        kind: kind.into(),
        function: String::new(),
        message,
        chain: Vec::new(),
    })
}

/// `POST /api/objects/values`: `{"ids": [...], "timeout": SECONDS}`, the
/// value (or failure) of each; waits up to `timeout` for all of them
/// together, and reports those still pending then.
pub(crate) async fn object_values(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let (_, ids, timeout) = match batch(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let p = parts(&st);
    let mut objects = Vec::with_capacity(ids.len());
    for id in ids {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let object_id = id.to_string();
        let mut v = ObjectValue {
            object_id,
            result: None,
            failure: None,
            pending: false,
        };
        match p.read(id, Some(left)).await {
            Ok(read) => match read_value(&id, &read) {
                Ok(value) => v.result = Some(value.to_json()),
                Err(e) => v.failure = no_value("not a cross-language value", e),
            },
            Err(Error::Timeout(_)) => v.pending = true,
            Err(Error::Task(e)) => v.failure = Some(error_info(e.record())),
            Err(e) => v.failure = no_value("unknown object", e.to_string()),
        }
        objects.push(v);
    }
    ok(ObjectValues { objects })
}

/// `POST /api/objects/wait`: `{"ids": [...], "num_returns": K, "timeout":
/// SECONDS}`: the first K ready (or failed) in the order asked, once K are
/// or the timeout passes.
pub(crate) async fn wait_objects(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let (req, ids, timeout) = match batch(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let want = req.num_returns.unwrap_or(ids.len());
    if want > ids.len() {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "num_returns ({want}) exceeds the number of ids ({})",
                ids.len()
            ),
        );
    }
    let objects = &st.actors.env.objects;
    let mut entries = Vec::with_capacity(ids.len());
    for id in &ids {
        match objects.get(id) {
            Some(e) => entries.push(e),
            None => return error(StatusCode::NOT_FOUND, format!("no object {id}")),
        }
    }
    let ready = |entries: &[Arc<Entry>]| -> Vec<String> {
        ids.iter()
            .zip(entries)
            .filter(|(_, e)| e.state().is_some())
            .take(want)
            .map(|(id, _)| id.to_string())
            .collect()
    };
    let _ = tokio::time::timeout(timeout, resolved_enough(&entries, want)).await;
    ok(ObjectsReady {
        ready: ready(&entries),
    })
}

/// `POST /api/objects/release`: `{"ids": [...]}`: the node lets go of
/// those it holds for clients.
pub(crate) async fn release_objects(State(st): St, headers: HeaderMap, body: Bytes) -> Response {
    let (_, ids, _) = match batch(&headers, &body) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let mut held = st.held.lock().unwrap_or_else(|e| e.into_inner());
    let released = ids.iter().filter(|id| held.remove(id).is_some()).count();
    drop(held);
    ok(ObjectsReleased { released })
}
