//! The handlers of the node's HTTP API (`docs/http-api.md`).

use super::cluster_jobs::Elsewhere;
use super::jobs::{DeleteRefused, parse_job_id};
use super::logs::job_name;
use super::metrics::{self, Scrape};
use super::state::{MAX_JSON, NodeState};
use super::types::{
    ActorCounts, ActorEntry, ActorKilled, ActorList, ActorStatus, ApiError, Config, CpuUse,
    ErrorInfo, FunctionSummary, JobCounts, JobDeleted, JobDetail, JobLogs, JobRequest, JobStatus,
    JobStopped, JobSubmitted, LogList, LogUse, MemoryUse, ModuleUploaded, NodeEntry, ObjectEntry,
    ObjectList, ResourceUse, SlotUse, StateCounts, Status, StoreUse, TaskCounts, TaskEntry,
    TaskList, TaskSummary, TraceArgs, TraceEvent, UploadUse,
};
use crate::actor::registry::{Actor, Actors, Life};
use crate::api::stats::MemoCounts;
use crate::cluster::place::ClusterUse;
use crate::cluster::{Ask, JobOp};
use crate::events::{STATES, TaskRecord, TaskState};
use crate::exec::env::FORWARDED_JOB;
use crate::exec::resources::as_units;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;
use wray_abi::wire::ErrorRecord;
use wray_abi::{ActorId, ObjectId};

type St = State<Arc<NodeState>>;
type Params = Query<HashMap<String, String>>;

/// Default and largest page of a list.
const PAGE: usize = 100;
const MAX_PAGE: usize = 10_000;

/// A JSON error response.
pub(crate) fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = ApiError {
        error: message.into(),
    };
    (status, axum::Json(body)).into_response()
}

pub(super) fn ok(v: impl Serialize) -> Response {
    let mut r = axum::Json(v).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn page(q: &HashMap<String, String>) -> (usize, usize) {
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<usize>().ok());
    (
        num("offset").unwrap_or(0),
        num("limit").unwrap_or(PAGE).min(MAX_PAGE),
    )
}

// ---- the dashboard ----------------------------------------------------------

const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn index() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_str!("dashboard/index.html"),
    )
}

pub(crate) async fn app_js() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    )
}

pub(crate) async fn style_css() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_str!("dashboard/style.css"),
    )
}

// ---- jobs -----------------------------------------------------------------------

/// Compiles (or finds) a module from uploaded bytes, off the async
/// threads; in a cluster, records that this node has it.
async fn load_module(st: &NodeState, name: &str, bytes: Bytes) -> Result<crate::Module, Response> {
    let actors = st.actors.clone();
    let name = name.to_string();
    let module = tokio::task::spawn_blocking(move || {
        actors
            .env
            .modules
            .load(&actors.env.engines.tasks, &name, &bytes)
    })
    .await
    .map_err(|e| error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| error(StatusCode::BAD_REQUEST, e.to_string()))?;
    if let Some(cluster) = &st.cluster {
        cluster.hold_module(&module).await;
    }
    Ok(module)
}

/// The request's media type, lower-cased, without parameters.
pub(super) fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn is_wasm(headers: &HeaderMap) -> bool {
    matches!(
        media_type(headers).as_str(),
        "application/wasm" | "application/octet-stream"
    )
}

pub(crate) async fn upload_module(State(st): St, body: Bytes) -> Response {
    if body.is_empty() {
        return error(StatusCode::BAD_REQUEST, "the body must be a wasm module");
    }
    let size = body.len();
    match load_module(&st, "module", body).await {
        Ok(m) => ok(ModuleUploaded {
            digest: m.id().to_string(),
            name: m.name().to_string(),
            size: size as u64,
        }),
        Err(r) => r,
    }
}

pub(crate) async fn submit_job(
    State(st): St,
    Query(q): Query<Vec<(String, String)>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (module, args, name, links) = if is_wasm(&headers) {
        let args: Vec<String> = q
            .iter()
            .filter(|(k, _)| k == "arg")
            .map(|(_, v)| v.clone())
            .collect();
        let name = q.iter().find(|(k, _)| k == "name").map(|(_, v)| v.clone());
        let pairs: Vec<(String, String)> = q
            .iter()
            .filter(|(k, _)| k == "link")
            .map(|(_, v)| {
                let (n, d) = v.split_once('=').unwrap_or((v, ""));
                (n.to_string(), d.to_string())
            })
            .collect();
        let links = match linked_modules(&st, pairs.into_iter()).await {
            Ok(l) => l,
            Err(r) => return r,
        };
        let label = name.clone().unwrap_or_else(|| "job".into());
        match load_module(&st, &label, body).await {
            Ok(m) => (m, args, name, links),
            Err(r) => return r,
        }
    } else {
        // Only a declared JSON body is read as JSON: a page elsewhere can
        // send `text/plain` without asking the browser first.
        if media_type(&headers) != "application/json" {
            return error(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send a wasm module (Content-Type: application/wasm) or JSON (Content-Type: application/json)",
            );
        }
        if body.len() > MAX_JSON {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "a JSON body may be at most 64 KiB (upload modules with Content-Type: application/wasm)",
            );
        }
        let req: JobRequest = match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "expected a wasm module (Content-Type: application/wasm) or JSON {{\"module\": \"<digest>\", \"args\": [...]}}: {e}"
                    ),
                );
            }
        };
        if ObjectId::parse(&req.module).is_none() {
            return error(
                StatusCode::BAD_REQUEST,
                "`module` must be a module's digest: 64 hex digits",
            );
        }
        let m = match find_module(&st, &req.module).await {
            Ok(m) => m,
            Err(r) => return r,
        };
        let links = match linked_modules(&st, req.links.into_iter()).await {
            Ok(l) => l,
            Err(r) => return r,
        };
        (m, req.args, req.name, links)
    };
    if !module.has_driver() {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "module `{}` has no driver: it exports neither `wray:main` (#[wray::main]) nor `_start`",
                module.name()
            ),
        );
    }
    let info = match start_job(&st, &module, name, args, &links).await {
        Ok(info) => info,
        Err(r) => return r,
    };
    ok(JobSubmitted {
        job_id: info.job_id,
        submission_id: info.submission_id,
        module: info.module,
    })
}

/// The modules a job links, from (name, digest) pairs: each uploaded
/// before (`POST /api/modules`), here or, in a cluster, to any node.
async fn linked_modules(
    st: &NodeState,
    pairs: impl Iterator<Item = (String, String)>,
) -> Result<Vec<(String, crate::Module)>, Response> {
    let mut links = Vec::new();
    for (name, digest) in pairs {
        if name.is_empty() {
            return Err(error(
                StatusCode::BAD_REQUEST,
                "a linked module needs a name: link=NAME=DIGEST",
            ));
        }
        let module = module_by_digest(st, &digest)
            .await
            .map_err(|(status, why)| error(status, format!("module `{name}`: {why}")))?;
        links.push((name, module));
    }
    Ok(links)
}

/// The module whose digest is `digest`: loaded here or, in a cluster,
/// fetched from a node it was uploaded to.
pub(super) async fn find_module(st: &NodeState, digest: &str) -> Result<crate::Module, Response> {
    module_by_digest(st, digest)
        .await
        .map_err(|(status, why)| error(status, why))
}

/// [`find_module`]; the status and why not, if not.
async fn module_by_digest(
    st: &NodeState,
    digest: &str,
) -> Result<crate::Module, (StatusCode, String)> {
    let id = ObjectId::parse(digest);
    if let Some(m) = id.and_then(|id| st.actors.env.modules.get(&id)) {
        return Ok(m);
    }
    if let (Some(id), Some(cluster)) = (id, &st.cluster) {
        match cluster.find_module(id).await {
            Ok(Some(m)) => return Ok(m),
            Ok(None) => {}
            Err(e) => return Err((StatusCode::BAD_GATEWAY, e)),
        }
    }
    let whole = if st.cluster.is_some() {
        " or its cluster"
    } else {
        ""
    };
    Err((
        StatusCode::NOT_FOUND,
        format!("no module {digest} on this node{whole}: upload it first (POST /api/modules)"),
    ))
}

/// Starts `module`'s driver as a job on the node and records it (in a
/// cluster, under the cluster's next job number, its record written
/// before this returns).
pub(crate) async fn start_job(
    st: &Arc<NodeState>,
    module: &crate::Module,
    name: Option<String>,
    args: Vec<String>,
    links: &[(String, crate::Module)],
) -> Result<super::types::JobInfo, Response> {
    let id = match &st.cluster_jobs {
        Some(cj) => cj.next_job().await.map_err(|e| {
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot number the job: {e:#}"),
            )
        })?,
        None => st.actors.env.ids.next_job(),
    };
    let job = crate::job::handle::start_job(&st.actors, &st.handle, id, module, &args, links);
    let control = job.control();
    let info = st
        .jobs
        .add(control.clone(), module, name, args, &st.node_id);
    let node = st.clone();
    st.handle.spawn(async move {
        let wait = job.wait();
        tokio::pin!(wait);
        let outcome = tokio::select! {
            outcome = &mut wait => outcome,
            () = control.wait_started() => {
                node.publish_job(id);
                wait.await
            }
        };
        node.jobs.finish(id, &outcome);
        node.logs.job_ended(id);
        node.publish_job(id);
    });
    if let Some(cj) = &st.cluster_jobs {
        cj.publish_now(id).await;
    }
    Ok(info)
}

fn job_id(id: &str) -> Result<u64, Response> {
    parse_job_id(id).ok_or_else(|| error(StatusCode::NOT_FOUND, format!("no job {id}")))
}

/// This node's jobs, or in a cluster every node's, newest first.
async fn all_jobs(st: &NodeState) -> anyhow::Result<Vec<super::types::JobInfo>> {
    match &st.cluster_jobs {
        None => Ok(st.jobs.list()),
        Some(cj) => cj.list(&st.jobs).await,
    }
}

/// `GET /api/jobs/`: this node's jobs, or in a cluster every node's.
pub(crate) async fn list_jobs(State(st): St) -> Response {
    match all_jobs(&st).await {
        Ok(jobs) => ok(jobs),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

/// Request `op` about job `n` (named `id`) answered here, if it is this
/// node's job.
async fn job_here(st: &NodeState, id: &str, n: u64, op: JobOp) -> Option<Response> {
    let info = st.jobs.get(n)?;
    Some(match op {
        JobOp::Get => {
            let mut counts = [0u64; STATES];
            for r in st.actors.env.events.records().iter().filter(|r| r.job == n) {
                counts[r.state as usize] += 1;
            }
            ok(JobDetail {
                info,
                tasks: StateCounts::from_array(counts),
            })
        }
        JobOp::Logs { offset } => {
            let offset = usize::try_from(offset).unwrap_or(usize::MAX);
            let (logs, next) = st.logs.job_log(n, offset);
            ok(JobLogs {
                logs,
                offset: next as u64,
                done: info.status.ended(),
            })
        }
        JobOp::Stop => {
            let stopped = st.jobs.stop(n);
            st.record_job(n).await;
            ok(JobStopped { stopped })
        }
        JobOp::Delete => match st.jobs.delete_ended(n).await {
            Ok(()) => {
                st.logs.forget_job(n);
                st.record_job(n).await;
                ok(JobDeleted { deleted: true })
            }
            Err(DeleteRefused::Unknown) => error(StatusCode::NOT_FOUND, format!("no job {id}")),
            Err(DeleteRefused::NotEnded) => not_ended(id),
        },
    })
}

fn not_ended(id: &str) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        format!("job {id} has not ended: stop it, and delete it once it has"),
    )
}

/// Request `op` about job `id`: answered here if it is this node's job,
/// else (in a cluster) by its node, or by its record if its node left.
async fn job_request(st: &NodeState, id: &str, op: JobOp) -> Response {
    let n = match job_id(id) {
        Ok(n) => n,
        Err(r) => return r,
    };
    if let Some(r) = job_here(st, id, n, op).await {
        return r;
    }
    let Some(cj) = &st.cluster_jobs else {
        return error(StatusCode::NOT_FOUND, format!("no job {id}"));
    };
    let info = match cj.elsewhere(id, n, op).await {
        Elsewhere::Answered(status, body) => return relayed(status, body),
        Elsewhere::Failed(status, why) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            return error(status, why);
        }
        Elsewhere::Orphan(info) => info,
    };
    // Its node left the cluster, and what it knew of the job with it.
    match op {
        JobOp::Get => ok(JobDetail {
            info,
            tasks: StateCounts::from_array([0; STATES]),
        }),
        JobOp::Logs { .. } => error(
            StatusCode::GONE,
            format!(
                "job {id}'s logs were on node {}, which left the cluster",
                info.node_id
            ),
        ),
        JobOp::Stop => ok(JobStopped { stopped: false }),
        JobOp::Delete if !info.status.ended() => not_ended(id),
        JobOp::Delete => match cj.forget(n).await {
            Ok(()) => ok(JobDeleted { deleted: true }),
            Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
        },
    }
}

pub(crate) async fn job(State(st): St, Path(id): Path<String>) -> Response {
    job_request(&st, &id, JobOp::Get).await
}

pub(crate) async fn job_logs(State(st): St, Path(id): Path<String>, Query(q): Params) -> Response {
    let offset = q.get("offset").and_then(|v| v.parse().ok()).unwrap_or(0);
    job_request(&st, &id, JobOp::Logs { offset }).await
}

pub(crate) async fn stop_job(State(st): St, Path(id): Path<String>) -> Response {
    job_request(&st, &id, JobOp::Stop).await
}

pub(crate) async fn delete_job(State(st): St, Path(id): Path<String>) -> Response {
    job_request(&st, &id, JobOp::Delete).await
}

impl crate::cluster::Desk for NodeState {
    fn answer(&self, ask: Ask) -> futures_util::future::BoxFuture<'_, (u16, Vec<u8>)> {
        Box::pin(async move {
            let r = match ask {
                Ask::Job { job, op } => {
                    let id = job_name(job);
                    job_here(self, &id, job, op)
                        .await
                        .unwrap_or_else(|| error(StatusCode::NOT_FOUND, format!("no job {id}")))
                }
                Ask::Actors { query } => ok(actors_here(self, &query)),
                Ask::TaskSummary { query } => match summary_here(self, &query, true) {
                    Ok(summary) => ok(summary),
                    Err(r) => r,
                },
                Ask::Tasks { query } => match tasks_here(self, &query, true) {
                    Ok((total, tasks)) => ok(TaskList {
                        total,
                        tasks,
                        unanswered: BTreeMap::new(),
                    }),
                    Err(r) => r,
                },
                Ask::Kill {
                    actor,
                    allow_restart,
                } => kill_here(self, actor, allow_restart),
            };
            let status = r.status().as_u16();
            match axum::body::to_bytes(r.into_body(), usize::MAX).await {
                Ok(body) => (status, body.to_vec()),
                Err(e) => (500, format!("{{\"error\":\"{e}\"}}").into_bytes()),
            }
        })
    }
}

/// What another node answered to a listing: its JSON body if it answered
/// 200, else why not.
fn answer_of<T: serde::de::DeserializeOwned>(
    answer: Result<(u16, Vec<u8>), String>,
) -> Result<T, String> {
    answer.and_then(|(status, body)| match status {
        200 => serde_json::from_slice(&body).map_err(|e| e.to_string()),
        _ => Err(String::from_utf8_lossy(&body).into_owned()),
    })
}

/// An answer another node gave, as this node's.
fn relayed(status: u16, body: Vec<u8>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut r = (status, body).into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

impl NodeState {
    /// Writes job `job`'s record to the cluster's, if in one.
    pub(crate) fn publish_job(&self, job: u64) {
        if let Some(cj) = &self.cluster_jobs {
            cj.publish(job);
        }
    }

    /// [`publish_job`](Self::publish_job), resolving once written (what a
    /// user changed shows in every node's list when they are answered).
    async fn record_job(&self, job: u64) {
        if let Some(cj) = &self.cluster_jobs {
            cj.publish_now(job).await;
        }
    }
}

// ---- state ------------------------------------------------------------------------

pub(super) fn error_info(e: &ErrorRecord) -> ErrorInfo {
    let mut chain = Vec::new();
    let mut c = e.cause.as_deref();
    while let Some(x) = c {
        chain.push(format!(
            "{} in {}: {}",
            x.kind.name(),
            x.function,
            x.message
        ));
        c = x.cause.as_deref();
    }
    ErrorInfo {
        kind: e.kind.name().to_string(),
        function: e.function.clone(),
        message: e.message.clone(),
        chain,
    }
}

fn task_entry(st: &NodeState, r: &TaskRecord) -> TaskEntry {
    let ev = &st.actors.env.events;
    let now = ev.now_us();
    let duration_ms = match (r.started_us, r.ended_us) {
        (0, _) => None,
        (s, 0) => Some((now.saturating_sub(s)) as f64 / 1000.0),
        (s, e) => Some(e.saturating_sub(s) as f64 / 1000.0),
    };
    TaskEntry {
        task_id: r.id.seq().to_string(),
        function: r.function.to_string(),
        kind: r.kind,
        job_id: job_name(r.job),
        parent_id: r.parent.map(|p| p.seq().to_string()),
        actor_id: r.actor.map(|a| a.seq().to_string()),
        state: r.state,
        attempts: r.attempts,
        submitted_ms: ev.unix_ms(r.submitted_us),
        started_ms: (r.started_us > 0).then(|| ev.unix_ms(r.started_us)),
        ended_ms: (r.ended_us > 0).then(|| ev.unix_ms(r.ended_us)),
        duration_ms,
        worker: r.worker,
        node_id: r.node.map(|n| n.to_string()),
        error: r.error.as_deref().map(error_info),
        retried_error: r.retried.as_deref().map(error_info),
        memo: r.memo.map(|m| m.as_str().to_string()),
    }
}

/// The filter of the task listings: `state`, `job`, `function`, `actor`.
fn task_filter(
    q: &HashMap<String, String>,
) -> Result<impl Fn(&TaskRecord) -> bool + use<>, Response> {
    let state =
        match q.get("state") {
            Some(s) => Some(TaskState::parse(s).ok_or_else(|| {
                error(StatusCode::BAD_REQUEST, format!("unknown task state `{s}`"))
            })?),
            None => None,
        };
    let job = match q.get("job").or_else(|| q.get("job_id")) {
        Some(j) => Some(
            parse_job_id(j)
                .ok_or_else(|| error(StatusCode::BAD_REQUEST, format!("not a job id: `{j}`")))?,
        ),
        None => None,
    };
    let actor = match q.get("actor").or_else(|| q.get("actor_id")) {
        Some(a) => Some(
            a.parse::<u64>()
                .map_err(|_| error(StatusCode::BAD_REQUEST, format!("not an actor id: `{a}`")))?,
        ),
        None => None,
    };
    let function = q.get("function").cloned();
    Ok(move |r: &TaskRecord| {
        state.is_none_or(|s| r.state == s)
            && job.is_none_or(|j| r.job == j)
            && actor.is_none_or(|a| r.actor.is_some_and(|x| x.seq() == a))
            && function.as_deref().is_none_or(|f| &*r.function == f)
    })
}

/// The cluster, if this node is in one and `q` asks for its whole view
/// (`scope=cluster`).
fn cluster_scope<'a>(
    st: &'a NodeState,
    q: &HashMap<String, String>,
) -> Option<&'a Arc<crate::cluster::place::Cluster>> {
    let whole = q.get("scope").is_some_and(|s| s == "cluster");
    st.cluster.as_ref().filter(|_| whole)
}

/// Whether another node lists call `r` in the cluster's list: another
/// node placed it here, or it is a call of another node's actor (through
/// a handle that came here), which that node lists by the actor's name.
fn listed_elsewhere(st: &NodeState, r: &TaskRecord) -> bool {
    let placed_here = r.job & FORWARDED_JOB != 0 && r.parent.is_none();
    let foreign = r
        .actor
        .is_some_and(|a| a.node() != st.actors.env.config.node_id);
    placed_here || foreign
}

/// The calls this node placed or ran that match `q`, newest first: how
/// many match, and the page `offset`, `limit` of them. For a listing of
/// the whole cluster (`cluster`), without those another node lists
/// ([`listed_elsewhere`]), each naming the node it ran on.
fn tasks_here(
    st: &NodeState,
    q: &HashMap<String, String>,
    cluster: bool,
) -> Result<(u64, Vec<TaskEntry>), Response> {
    let keep = task_filter(q)?;
    let keep = move |r: &TaskRecord| keep(r) && !(cluster && listed_elsewhere(st, r));
    let (offset, limit) = page(q);
    let (total, recs) = st.actors.env.events.tasks(keep, offset, limit);
    let mut tasks: Vec<TaskEntry> = recs.iter().map(|r| task_entry(st, r)).collect();
    if cluster {
        for t in &mut tasks {
            t.node_id.get_or_insert_with(|| st.node_id.clone());
        }
    }
    Ok((total as u64, tasks))
}

/// `GET /api/v0/tasks`: the calls this node placed or ran; with
/// `scope=cluster`, in a cluster, every node's (each other node asked at
/// once, its calls named `<node>:<number>`; the page is of them all,
/// newest first).
pub(crate) async fn tasks(State(st): St, Query(q): Params) -> Response {
    let cluster = cluster_scope(&st, &q);
    let Some(cluster) = cluster else {
        return match tasks_here(&st, &q, false) {
            Ok((total, tasks)) => ok(TaskList {
                total,
                tasks,
                unanswered: BTreeMap::new(),
            }),
            Err(r) => r,
        };
    };
    // Each node's first offset + limit: the page is among them.
    let (offset, limit) = page(&q);
    let mut first = q.clone();
    first.insert("offset".into(), "0".into());
    first.insert("limit".into(), (offset + limit).to_string());
    let (mut total, mut all) = match tasks_here(&st, &first, true) {
        Ok(here) => here,
        Err(r) => return r,
    };
    let mut unanswered = BTreeMap::new();
    for (node, answer) in cluster.ask_all(&Ask::Tasks { query: first }).await {
        let list = answer_of::<TaskList>(answer);
        match list {
            Ok(list) => {
                total += list.total;
                let named = |id: &mut String| *id = format!("{node}:{id}");
                all.extend(list.tasks.into_iter().map(|mut t| {
                    named(&mut t.task_id);
                    t.parent_id.as_mut().map(named);
                    t.actor_id.as_mut().map(named);
                    t
                }));
            }
            Err(why) => {
                unanswered.insert(node, why);
            }
        }
    }
    all.sort_by_key(|t| std::cmp::Reverse(t.submitted_ms));
    ok(TaskList {
        total,
        tasks: all.into_iter().skip(offset).take(limit).collect(),
        unanswered,
    })
}

/// The calls of this node matching `q`, by function. For a summary of
/// the whole cluster (`cluster`), without those another node counts
/// ([`listed_elsewhere`]).
fn summary_here(
    st: &NodeState,
    q: &HashMap<String, String>,
    cluster: bool,
) -> Result<TaskSummary, Response> {
    let keep = task_filter(q)?;
    // function -> counts by state, time run, runs timed
    let mut by: HashMap<Arc<str>, ([u64; STATES], u64, u64)> = HashMap::new();
    let mut total = 0;
    let records = st.actors.env.events.records();
    for r in records
        .iter()
        .filter(|r| keep(r) && !(cluster && listed_elsewhere(st, r)))
    {
        total += 1;
        let e = by.entry(r.function.clone()).or_default();
        e.0[r.state as usize] += 1;
        if r.state == TaskState::Finished && r.started_us > 0 {
            e.1 += r.ended_us.saturating_sub(r.started_us);
            e.2 += 1;
        }
    }
    let mut functions: Vec<FunctionSummary> = by
        .into_iter()
        .map(|(f, (counts, us, n))| FunctionSummary {
            function: f.to_string(),
            counts: StateCounts::from_array(counts),
            mean_ms: (n > 0).then(|| us as f64 / n as f64 / 1000.0),
        })
        .collect();
    functions.sort_by(|a, b| a.function.cmp(&b.function));
    Ok(TaskSummary {
        total,
        functions,
        unanswered: BTreeMap::new(),
    })
}

/// Summaries of several nodes as one: counts added, mean times weighed
/// by the calls finished.
fn merged(summaries: impl IntoIterator<Item = TaskSummary>) -> TaskSummary {
    // function -> counts by state, time run (ms) times calls timed, timed
    let mut by: BTreeMap<String, ([u64; STATES], f64, u64)> = BTreeMap::new();
    let mut total = 0;
    for s in summaries {
        total += s.total;
        for f in s.functions {
            let e = by.entry(f.function).or_default();
            let counts = f.counts.to_array();
            for (sum, n) in e.0.iter_mut().zip(counts) {
                *sum += n;
            }
            if let Some(ms) = f.mean_ms {
                e.1 += ms * f.counts.finished as f64;
                e.2 += f.counts.finished;
            }
        }
    }
    let functions = by
        .into_iter()
        .map(|(function, (counts, ms, n))| FunctionSummary {
            function,
            counts: StateCounts::from_array(counts),
            mean_ms: (n > 0).then(|| ms / n as f64),
        })
        .collect();
    TaskSummary {
        total,
        functions,
        unanswered: BTreeMap::new(),
    }
}

/// `GET /api/v0/tasks/summary`: this node's calls by function; with
/// `scope=cluster`, in a cluster, every node's (each other node asked at
/// once).
pub(crate) async fn task_summary(State(st): St, Query(q): Params) -> Response {
    let cluster = cluster_scope(&st, &q);
    let here = match summary_here(&st, &q, cluster.is_some()) {
        Ok(s) => s,
        Err(r) => return r,
    };
    let Some(cluster) = cluster else {
        return ok(here);
    };
    let mut all = vec![here];
    let mut unanswered = BTreeMap::new();
    for (node, answer) in cluster
        .ask_all(&Ask::TaskSummary { query: q.clone() })
        .await
    {
        let summary = answer_of::<TaskSummary>(answer);
        match summary {
            Ok(s) => all.push(s),
            Err(why) => {
                unanswered.insert(node, why);
            }
        }
    }
    ok(TaskSummary {
        unanswered,
        ..merged(all)
    })
}

fn actor_state(a: &Actor) -> ActorStatus {
    match a.life() {
        Life::Starting if a.restarts() > 0 => ActorStatus::Restarting,
        Life::Starting => ActorStatus::Starting,
        Life::Alive => ActorStatus::Alive,
        Life::Dead(_) => ActorStatus::Dead,
    }
}

fn actor_entry(node_id: &str, a: &Actor) -> ActorEntry {
    let cause = match a.life() {
        Life::Dead(c) => Some(error_info(&c)),
        _ => None,
    };
    ActorEntry {
        actor_id: a.id.seq().to_string(),
        class: a.type_name.to_string(),
        name: a.name.clone(),
        job_id: job_name(a.job),
        state: actor_state(a),
        restarts: a.restarts(),
        calls: a.calls.load(Ordering::Relaxed),
        death_cause: cause,
        node_id: a
            .node()
            .map_or_else(|| node_id.to_string(), |n| n.to_string()),
    }
}

/// The actors node `node_id` made, newest first, wherever they live (not
/// those it hosts for another node, which lists them), with the recently
/// dead.
pub(super) fn made_here(actors: &Actors, node_id: &str) -> Vec<ActorEntry> {
    let mut all: Vec<Arc<Actor>> = Vec::new();
    actors.registry.for_each(|a| all.push(a.clone()));
    all.extend(actors.registry.dead());
    // Newest first; an actor may be in both lists while it dies.
    all.sort_by_key(|a| std::cmp::Reverse(a.id.seq()));
    all.dedup_by_key(|a| a.id);
    all.iter()
        .filter(|a| a.placed_for.is_none())
        .map(|a| actor_entry(node_id, a))
        .collect()
}

/// Whether an actor's entry matches the state API's query `q` (`state`,
/// `job`, `class`, `name`, `node`).
fn wanted(q: &HashMap<String, String>) -> impl Fn(&ActorEntry) -> bool {
    let job = q.get("job").or_else(|| q.get("job_id")).cloned();
    let job = job.map(|j| parse_job_id(&j).map(job_name).unwrap_or(j));
    let q = q.clone();
    move |e| {
        let is = |k: &str, v: &str| q.get(k).is_none_or(|want| want == v);
        q.get("state")
            .is_none_or(|s| e.state.as_str().eq_ignore_ascii_case(s))
            && job.as_ref().is_none_or(|j| *j == e.job_id)
            && is("class", &e.class)
            && q.get("name")
                .is_none_or(|n| e.name.as_deref() == Some(n.as_str()))
            && is("node", &e.node_id)
    }
}

/// The actors this node made that match `q`, newest first.
fn actors_here(st: &NodeState, q: &HashMap<String, String>) -> Vec<ActorEntry> {
    let keep = wanted(q);
    let mut all = made_here(&st.actors, &st.node_id);
    all.retain(|e| keep(e));
    all
}

/// `GET /api/v0/actors`: this node's actors, or in a cluster every
/// node's: each other node is asked at once (those that do not answer are
/// named in `unanswered`), and the records of the nodes that did not
/// answer, or left, fill in for them. Another node's actor is named
/// `<node>:<number>`.
pub(crate) async fn actors(State(st): St, Query(q): Params) -> Response {
    let (offset, limit) = page(&q);
    let mut all = actors_here(&st, &q);
    let mut unanswered = BTreeMap::new();
    if let (Some(cluster), Some(records)) = (&st.cluster, &st.cluster_actors) {
        // The others page nothing: the whole list is paged here.
        let answers = cluster.ask_all(&Ask::Actors { query: q.clone() }).await;
        for (node, answer) in answers {
            let entries = answer_of::<Vec<ActorEntry>>(answer);
            match entries {
                Ok(entries) => {
                    all.extend(entries.into_iter().map(|mut e| {
                        e.actor_id = format!("{node}:{}", e.actor_id);
                        e
                    }));
                }
                Err(why) => {
                    unanswered.insert(node, why);
                }
            }
        }
        match records.others(unanswered.keys()).await {
            Ok(mut entries) => {
                let keep = wanted(&q);
                entries.retain(|e| keep(e));
                all.extend(entries);
            }
            Err(e) => {
                unanswered.insert("records".to_string(), format!("{e:#}"));
            }
        }
    }
    ok(ActorList {
        total: all.len() as u64,
        actors: all.into_iter().skip(offset).take(limit).collect(),
        unanswered,
    })
}

/// Kills actor number `seq` of this node.
fn kill_here(st: &NodeState, seq: u64, allow_restart: bool) -> Response {
    let actor = ActorId::new(st.actors.env.config.node_id, seq);
    let known =
        st.actors.registry.get(&actor).is_some() || st.actors.registry.cause_of(&actor).is_some();
    if !known {
        return error(StatusCode::NOT_FOUND, format!("no actor {seq}"));
    }
    ok(ActorKilled {
        killed: crate::actor::actors::kill(&st.actors, &actor, allow_restart),
    })
}

/// `POST /api/v0/actors/{id}/kill`: an actor of this node (`16`), or of
/// another node of its cluster (`2:16`, asked of that node).
pub(crate) async fn kill_actor(
    State(st): St,
    Path(id): Path<String>,
    Query(q): Params,
) -> Response {
    let allow_restart = q.get("no_restart").is_some_and(|v| v == "false");
    let (node, seq) = match id.split_once(':') {
        Some((node, seq)) => (Some(node), seq),
        None => (None, id.as_str()),
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return error(StatusCode::NOT_FOUND, format!("no actor {id}"));
    };
    match (node, &st.cluster) {
        (None, _) => kill_here(&st, seq, allow_restart),
        (Some(n), _) if n == st.node_id => kill_here(&st, seq, allow_restart),
        (Some(n), Some(cluster)) => {
            let ask = Ask::Kill {
                actor: seq,
                allow_restart,
            };
            match cluster.ask(n, &ask).await {
                Ok((status, body)) => relayed(status, body),
                Err(e) => error(StatusCode::NOT_FOUND, format!("no actor {id}: {e}")),
            }
        }
        (Some(_), None) => error(StatusCode::NOT_FOUND, format!("no actor {id}")),
    }
}

pub(crate) async fn objects(State(st): St, Query(q): Params) -> Response {
    let (offset, limit) = page(&q);
    // Without the objects whose release is already under way.
    st.actors.env.objects.reaped().await;
    let mut all = Vec::new();
    let mut bytes = 0u64;
    st.actors
        .env
        .objects
        .for_each(|id, refs, size, place, encoding| {
            bytes += size.unwrap_or(0) as u64;
            all.push((*id, refs, size, place, encoding));
        });
    all.sort_by_key(|o| std::cmp::Reverse(o.2.unwrap_or(0)));
    let objects = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(|(id, refs, size, place, encoding)| ObjectEntry {
            object_id: id.to_string(),
            size: size.map(|s| s as u64),
            refs: *refs,
            place: (*place).into(),
            encoding: encoding.map(|e| e.name().to_string()),
            task_id: id.task_return().map(|(t, _)| t.seq().to_string()),
        })
        .collect();
    ok(ObjectList {
        total: all.len() as u64,
        bytes,
        objects,
    })
}

fn node_entry(st: &NodeState) -> NodeEntry {
    let mut entry = node_record(&st.actors, &st.node_id, st.addr);
    entry.rpc_address = st.cluster.as_ref().map(|c| c.rpc_address().to_string());
    entry.tls = st.cluster.as_ref().is_some_and(|c| c.tls());
    entry
}

/// What a node says of itself (and registers in its cluster).
pub(crate) fn node_record(actors: &Actors, node_id: &str, addr: std::net::SocketAddr) -> NodeEntry {
    let st = actors;
    NodeEntry {
        node_id: node_id.to_string(),
        address: addr.to_string(),
        state: "ALIVE".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        pid: std::process::id(),
        cpus: st.env.config.num_cpus as u64,
        memory_bytes: total_memory(),
        started_ms: st.env.events.started_unix_ms(),
        is_head: true,
        rpc_address: None,
        load: None,
        tls: false,
        resources: st
            .env
            .resources
            .usage()
            .into_iter()
            .map(|(name, (total, _))| (name, as_units(total)))
            .collect(),
    }
}

/// `GET /api/v0/head`: 200 with this node's entry while it is its
/// cluster's head (a node alone always is), 503 otherwise: a readiness
/// probe that routes the head's traffic to whichever node leads.
pub(crate) async fn head(State(st): St) -> Response {
    match leads(&st).await {
        Ok(()) => ok(node_entry(&st)),
        Err(why) => error(StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

/// `GET /api/v0/head` without the node's token: `{"head": true}` (200)
/// on the head, `{"head": false}` (503) elsewhere.
pub(crate) async fn head_probe(st: &NodeState) -> Response {
    let head = leads(st).await.is_ok();
    let status = match head {
        true => StatusCode::OK,
        false => StatusCode::SERVICE_UNAVAILABLE,
    };
    (status, axum::Json(serde_json::json!({ "head": head }))).into_response()
}

/// Whether this node is its cluster's head now (a node alone is); if
/// not, why.
async fn leads(st: &NodeState) -> Result<(), String> {
    let Some(m) = &st.membership else {
        return Ok(());
    };
    match m.head().await {
        Ok(Some(h)) if h == st.node_id => Ok(()),
        Ok(Some(h)) => Err(format!(
            "node {h} is the head, not this one ({})",
            st.node_id
        )),
        Ok(None) => Err("no node is the head now".to_string()),
        Err(e) => Err(format!("{e:#}")),
    }
}

/// `GET /api/v0/nodes`: this node, or every live node of its cluster,
/// each with its load now.
pub(crate) async fn nodes(State(st): St) -> Response {
    let here = crate::cluster::place::load_here(&st.actors);
    let (Some(m), Some(cluster)) = (&st.membership, &st.cluster) else {
        let mut entry = node_entry(&st);
        entry.load = Some(here);
        return ok([entry]);
    };
    let listed = futures_util::future::try_join(m.members(), m.head());
    match futures_util::future::join(listed, cluster.loads()).await {
        (Ok((members, head)), mut loads) => {
            loads.insert(st.node_id.clone(), here);
            let mut nodes: Vec<NodeEntry> = members
                .iter()
                .filter_map(|(id, record)| {
                    let mut n: NodeEntry = serde_json::from_slice(record).ok()?;
                    n.is_head = head.as_deref() == Some(id.as_str());
                    n.load = loads.remove(id);
                    Some(n)
                })
                .collect();
            nodes.sort_by(|a, b| (a.started_ms, &a.node_id).cmp(&(b.started_ms, &b.node_id)));
            ok(nodes)
        }
        (Err(e), _) => error(StatusCode::SERVICE_UNAVAILABLE, format!("{e:#}")),
    }
}

pub(crate) async fn status(State(st): St) -> Response {
    let s = &st.actors;
    let counts = s.env.events.counts();
    let ended = counts[2] + counts[3] + counts[4];
    let per_second = {
        let mut r = st.rate.lock().unwrap_or_else(|e| e.into_inner());
        let dt = r.0.elapsed().as_secs_f64();
        if dt >= 0.5 {
            r.2 = (ended.saturating_sub(r.1)) as f64 / dt;
            *r = (Instant::now(), ended, r.2);
        }
        r.2
    };
    let actors = actor_counts(s);
    // The jobs page's: in a cluster, every node's (this node's if etcd
    // cannot be read).
    let mut jobs = JobCounts::default();
    for j in all_jobs(&st).await.unwrap_or_else(|_| st.jobs.list()) {
        jobs.add(j.status);
    }
    let stats = s.env.objects.stats();
    let free = s.env.slots.free();
    ok(Status {
        node: node_entry(&st),
        cpus: CpuUse {
            total: s.env.config.num_cpus as u64,
            in_use: (s.env.config.num_cpus - free.0) as u64,
        },
        memory: MemoryUse {
            rss_bytes: crate::config::rss_bytes(),
            total_bytes: total_memory(),
        },
        object_store: StoreUse {
            objects: s.env.objects.len() as u64,
            bytes: stats.bytes.load(Ordering::Relaxed),
            capacity: s.env.config.object_store_memory,
            spilled_bytes: stats.spilled_bytes.load(Ordering::Relaxed),
        },
        tasks: TaskCounts {
            counts: StateCounts::from_array(counts),
            per_second,
        },
        actors,
        jobs,
        slots: SlotUse {
            call_free: free.1 as u64,
            actor_free: s.slots.available_permits() as u64,
        },
        uploads: UploadUse {
            reading: st.uploads.reading.load(Ordering::Relaxed) as u64,
            waiting: st.uploads.waiting.load(Ordering::Relaxed) as u64,
        },
        logs: LogUse {
            bytes: st.logs.total_bytes() as u64,
        },
        cluster: st.cluster.as_ref().map(|c| ClusterUse {
            actor_records: st.cluster_actors.as_ref().map_or(0, |r| r.recorded()),
            ..c.usage()
        }),
        resources: s
            .env
            .resources
            .usage()
            .into_iter()
            .map(|(name, (total, free))| {
                let (total, available) = (as_units(total), as_units(free));
                (name, ResourceUse { total, available })
            })
            .collect(),
    })
}

/// Actors in each state: the live ones in the table, and the dead.
fn actor_counts(s: &crate::actor::registry::Actors) -> ActorCounts {
    let mut c = ActorCounts::default();
    s.registry.for_each(|a| {
        *match actor_state(a) {
            ActorStatus::Starting => &mut c.starting,
            ActorStatus::Alive => &mut c.alive,
            ActorStatus::Restarting => &mut c.restarting,
            ActorStatus::Dead => &mut c.dead,
        } += 1;
    });
    c.dead += s.registry.dead_len() as u64;
    c
}

pub(crate) async fn logs(State(st): St, Query(q): Params) -> Response {
    let (_, limit) = page(&q);
    let limit = if q.contains_key("limit") { limit } else { 1000 };
    let job = q
        .get("job")
        .or_else(|| q.get("job_id"))
        .and_then(|j| parse_job_id(j));
    // An id as the API writes it (`17`); any other spelling names nothing.
    let seq = |v: &String| v.parse::<u64>().ok().filter(|n| n.to_string() == *v);
    let task = q.get("task").map(seq);
    let actor = q.get("actor").map(seq);
    let (total, lines) = st.logs.lines(
        |l| {
            job.is_none_or(|j| l.job() == j)
                && task.is_none_or(|t| t.is_some() && t == l.task().map(|t| t.seq()))
                && actor.is_none_or(|a| a.is_some() && a == l.actor().map(|a| a.seq()))
                && q.get("q")
                    .is_none_or(|needle| l.text().contains(needle.as_str()))
        },
        limit,
    );
    ok(LogList {
        total: total as u64,
        lines,
    })
}

pub(crate) async fn config(State(st): St) -> Response {
    let c = &st.actors.env.config;
    ok(Config {
        num_cpus: c.num_cpus as u64,
        call_slots: c.call_slots,
        actor_slots: c.actor_slots,
        memory_limit: c.memory_limit,
        task_timeout_ms: c.task_timeout.map(|t| t.as_millis() as u64),
        max_object_size: c.max_object_size as u64,
        output_limit: c.output_limit as u64,
        max_retries: c.max_retries,
        max_wasm_stack: c.max_wasm_stack as u64,
        object_store_memory: c.object_store_memory,
        spilling: c.spilling,
        object_store_wait_ms: c.store_wait.as_millis() as u64,
        history: c.history as u64,
        cache_dir: c.cache_dir.as_ref().map(|d| d.display().to_string()),
        address: st.addr.to_string(),
        token_required: st.token.is_some(),
    })
}

/// A Chrome trace: one complete event per task attempt, by worker thread,
/// and an instant event per memo hit.
pub(crate) async fn timeline(State(st): St) -> Response {
    let ev = &st.actors.env.events;
    let now = ev.now_us();
    let records = ev.records();
    let mut events: Vec<TraceEvent> = Vec::new();
    for r in records.iter() {
        let (cat, ph, ts, dur) = if r.state == TaskState::Memoized && r.started_us == 0 {
            // A memo hit did not run: an instant on its row, when answered.
            ("memo", "i", r.ended_us, 0)
        } else if r.started_us == 0 {
            continue;
        } else {
            let end = if r.ended_us > 0 { r.ended_us } else { now };
            let cat = if r.actor.is_some() { "actor" } else { "task" };
            (cat, "X", r.started_us, end.saturating_sub(r.started_us))
        };
        events.push(TraceEvent {
            name: r.function.to_string(),
            cat: cat.into(),
            ph: ph.into(),
            ts,
            dur,
            pid: 0,
            tid: r.worker,
            args: TraceArgs {
                task_id: r.id.seq(),
                state: r.state,
                job: job_name(r.job),
            },
        });
    }
    let mut resp = ok(events);
    resp.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"timeline.json\""),
    );
    resp
}

/// Prometheus text format (see `metrics.rs`).
pub(crate) async fn metrics(State(st): St) -> Response {
    let s = &st.actors;
    let actors = actor_counts(s);
    let jobs = st.jobs.list();
    let jobs = JobStatus::ALL.map(|j| {
        let n = jobs.iter().filter(|x| x.status == j).count();
        (j.as_str(), n as u64)
    });
    let stats = s.env.objects.stats();
    let free = s.env.slots.free();
    let scrape = Scrape {
        tasks: s.env.events.counts(),
        actors: [
            ("STARTING", actors.starting),
            ("ALIVE", actors.alive),
            ("RESTARTING", actors.restarting),
            // As before: the dead that left the table, not the dying in it.
            ("DEAD", s.registry.dead_len() as u64),
        ],
        jobs,
        gauges: vec![
            (
                "wray_object_store_bytes",
                "Bytes of objects in memory.",
                stats.bytes.load(Ordering::Relaxed),
            ),
            (
                "wray_object_store_spilled_bytes",
                "Bytes of objects spilled to disk.",
                stats.spilled_bytes.load(Ordering::Relaxed),
            ),
            (
                "wray_object_store_objects",
                "Objects in the store.",
                s.env.objects.len() as u64,
            ),
            (
                "wray_object_store_capacity_bytes",
                "The store's memory cap.",
                s.env.config.object_store_memory,
            ),
            ("wray_cpus", "CPU slots.", s.env.config.num_cpus as u64),
            (
                "wray_cpus_in_use",
                "CPU slots in use.",
                (s.env.config.num_cpus - free.0) as u64,
            ),
            (
                "wray_queue_length",
                "Calls waiting for a slot.",
                free.2 as u64,
            ),
            (
                "wray_resident_memory_bytes",
                "Resident memory of the node process.",
                crate::config::rss_bytes(),
            ),
        ],
        latency: s.env.events.latency(),
        memo: MemoCounts::of(&s.tasks),
    };
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        scrape.encode(),
    )
        .into_response()
}

fn total_memory() -> u64 {
    crate::config::total_memory().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(functions: &[(&str, u64, u64, Option<f64>)]) -> TaskSummary {
        let functions: Vec<FunctionSummary> = functions
            .iter()
            .map(|&(f, finished, failed, mean_ms)| FunctionSummary {
                function: f.into(),
                counts: StateCounts::from_array([0, 0, finished, failed, 0, 0]),
                mean_ms,
            })
            .collect();
        TaskSummary {
            total: functions
                .iter()
                .map(|f| f.counts.finished + f.counts.failed)
                .sum(),
            functions,
            unanswered: BTreeMap::new(),
        }
    }

    #[test]
    fn nodes_summaries_add_up_and_their_means_weigh_by_calls_finished() {
        let a = summary(&[("f", 2, 1, Some(1.0)), ("g", 0, 3, None)]);
        let b = summary(&[("f", 6, 0, Some(3.0))]);
        let m = merged([a, b]);
        assert_eq!(m.total, 12);
        let f = &m.functions[0];
        assert_eq!(
            (f.function.as_str(), f.counts.finished, f.counts.failed),
            ("f", 8, 1)
        );
        assert_eq!(f.mean_ms, Some(2.5));
        let g = &m.functions[1];
        assert_eq!(
            (g.function.as_str(), g.counts.failed, g.mean_ms),
            ("g", 3, None)
        );
    }
}
