//! A wray node's HTTP face: the dashboard, jobs, the state API and metrics,
//! served from the runtime's own tokio threads.
//!
//! The API is specified in `docs/http-api.md`. Every request passes one
//! guard before any handler: the `Host` header must name the
//! node (DNS rebinding), a token is required when the node listens beyond
//! loopback, and state-changing requests from another browser origin are
//! refused. Bodies are size-limited before they are read.

mod api;
mod calls;
mod cluster_actors;
mod cluster_jobs;
mod jobs;
mod logs;
mod metrics;
mod state;
pub mod types;

pub use logs::LogStore;
pub use types::{JobInfo, JobStatus, LogLine};

use crate::api::runtime::Runtime;
use crate::error::{Error, Result};
use crate::exec::module::MAX_MODULE_SIZE;
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use state::{MAX_BATCH, MAX_JSON, NodeState, Uploads};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio::sync::oneshot;

/// How a node listens.
#[derive(Clone, Debug)]
pub struct NodeOptions {
    /// The address to bind (default 127.0.0.1).
    pub host: IpAddr,
    /// The port (default 8265, Ray's; 0 picks a free one).
    pub port: u16,
    /// The token clients must present; required when `host` is not a
    /// loopback address.
    pub token: Option<String>,
    /// How many module uploads are read at once (default 2); the others
    /// wait their turn before a byte of their body is read, so memory
    /// holds at most this many bodies (of up to 256 MiB each).
    pub max_uploads: usize,
    /// The etcd endpoints of the cluster to join (empty: a node alone).
    /// The runtime must have been built with a node number the cluster
    /// handed out (`cluster::etcd::allocate_node_number`,
    /// `Builder::node_id`).
    pub etcd: Vec<String>,
    /// Seconds without renewing its lease after which the cluster counts
    /// this node dead (default 10).
    pub lease_ttl: u64,
    /// In a cluster, the port of the service other nodes call (0, the
    /// default: any free port), on `host`.
    pub rpc_port: u16,
    /// In a cluster, the secret its nodes share, which every call between
    /// nodes carries (this, or `cluster_tls`, is required when `host` is
    /// not a loopback address).
    pub cluster_token: Option<String>,
    /// In a cluster, TLS between its nodes: this node's certificate and
    /// key, and the cluster's CA (`cluster::tls`).
    pub cluster_tls: Option<crate::cluster::tls::TlsFiles>,
    /// With `etcd`: how to talk TLS to etcd, if it talks TLS.
    pub etcd_tls: Option<crate::cluster::etcd::EtcdTls>,
    /// In a cluster, the address other nodes reach this one at, when
    /// `host` is a wildcard (`0.0.0.0`); `None`: the address of the
    /// interface this machine reaches etcd through.
    pub node_ip: Option<IpAddr>,
}

impl Default for NodeOptions {
    fn default() -> Self {
        NodeOptions {
            host: IpAddr::from([127, 0, 0, 1]),
            port: 8265,
            token: None,
            max_uploads: 2,
            etcd: Vec::new(),
            lease_ttl: 10,
            rpc_port: 0,
            cluster_token: None,
            cluster_tls: None,
            etcd_tls: None,
            node_ip: None,
        }
    }
}

/// The address of the interface this machine reaches the first of
/// `endpoints` (`http://host:port` URLs) through: what a route lookup
/// gives (no packet is sent).
fn route_to(endpoints: &[String]) -> Option<IpAddr> {
    let url = endpoints.first()?;
    let rest = url.split_once("://").map_or(url.as_str(), |(_, r)| r);
    let authority = rest.split('/').next()?;
    let socket = std::net::UdpSocket::bind(("0.0.0.0", 0)).ok()?;
    socket.connect(authority).ok()?;
    Some(socket.local_addr().ok()?.ip()).filter(|ip| !ip.is_unspecified())
}

/// A running node's server. Dropping it stops the server (not the
/// runtime).
pub struct Node {
    addr: SocketAddr,
    state: Arc<NodeState>,
    stop: Option<oneshot::Sender<()>>,
}

impl Node {
    /// Serves the dashboard and the API for `rt`, whose output sink is
    /// `logs`. Returns once the port is bound.
    pub fn serve(rt: &Runtime, logs: Arc<LogStore>, options: NodeOptions) -> Result<Node> {
        if !options.host.is_loopback() && options.token.is_none() {
            return Err(Error::Config(format!(
                "listening on {} needs a token: a node reachable from other machines must not be open",
                options.host
            )));
        }
        let listener = std::net::TcpListener::bind((options.host, options.port)).map_err(|e| {
            Error::Config(format!(
                "cannot listen on {}:{}: {e}",
                options.host, options.port
            ))
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|e| Error::Config(format!("cannot configure the listener: {e}")))?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Config(format!("cannot read the bound address: {e}")))?;
        let port = addr.port();
        let hosts = (!addr.ip().is_unspecified()).then(|| {
            let mut hosts = vec![format!("127.0.0.1:{port}"), format!("localhost:{port}")];
            let own = match addr.ip() {
                IpAddr::V6(ip) => format!("[{ip}]:{port}"),
                IpAddr::V4(ip) => format!("{ip}:{port}"),
            };
            if !hosts.contains(&own) {
                hosts.push(own);
            }
            hosts
        });
        // The runtime's node number: 0 alone, the one the cluster handed
        // out in one (`cluster::etcd::allocate_node_number`).
        let node_id = rt.actors.env.config.node_id.to_string();
        let (membership, cluster) = if options.etcd.is_empty() {
            (None, None)
        } else {
            if !options.host.is_loopback()
                && options.cluster_token.is_none()
                && options.cluster_tls.is_none()
            {
                return Err(Error::Config(format!(
                    "a cluster node listening on {} needs a cluster token, the same on every \
                     node (set WRAY_CLUSTER_TOKEN), or TLS between nodes (--tls-cert, \
                     --tls-key, --tls-ca)",
                    options.host
                )));
            }
            let tls = match &options.cluster_tls {
                Some(files) => Some(Arc::new(
                    crate::cluster::tls::Tls::load(files).map_err(Error::Config)?,
                )),
                None => None,
            };
            // The service other nodes call, on a port of its own.
            let rpc =
                std::net::TcpListener::bind((options.host, options.rpc_port)).map_err(|e| {
                    Error::Config(format!(
                        "cannot listen on {}:{} for other nodes: {e}",
                        options.host, options.rpc_port
                    ))
                })?;
            let rpc_address = rpc
                .local_addr()
                .map_err(|e| Error::Config(format!("cannot read the bound address: {e}")))?;
            // Bound to a wildcard, a node names itself to the others by
            // an address they can reach.
            let public = match (options.host.is_unspecified(), options.node_ip) {
                (false, _) => options.host,
                (true, Some(ip)) => ip,
                (true, None) => route_to(&options.etcd).ok_or_else(|| {
                    Error::Config(
                        "cannot tell the address other nodes reach this one at: pass --node-ip"
                            .into(),
                    )
                })?,
            };
            let rpc_address = SocketAddr::new(public, rpc_address.port()).to_string();
            let mut entry =
                api::node_record(&rt.actors, &node_id, SocketAddr::new(public, addr.port()));
            entry.rpc_address = Some(rpc_address.clone());
            entry.tls = tls.is_some();
            let record = serde_json::to_vec(&entry).expect("a node record serializes");
            let ttl = i64::try_from(options.lease_ttl.max(1)).unwrap_or(i64::MAX);
            let joined = rt.block_on(crate::cluster::etcd::EtcdMembership::join(
                &options.etcd,
                options.etcd_tls.as_ref(),
                &node_id,
                record,
                ttl,
            ));
            let joined = joined.map_err(|e| Error::Config(format!("{e:#}")))?;
            // Nodes with TLS and nodes without cannot reach each other:
            // refuse to join a cluster of the other kind (and leave it at
            // once).
            use crate::cluster::Membership as _;
            let members = rt
                .block_on(joined.members())
                .map_err(|e| Error::Config(format!("{e:#}")))?;
            let other = members.iter().find_map(|(id, record)| {
                let n: types::NodeEntry = serde_json::from_slice(record).ok()?;
                (*id != node_id && n.tls != tls.is_some()).then(|| id.clone())
            });
            if let Some(other) = other {
                rt.block_on(joined.leave());
                let (this, that) = match tls.is_some() {
                    true => ("talks TLS to other nodes", "does not"),
                    false => ("does not talk TLS to other nodes", "does"),
                };
                return Err(Error::Config(format!(
                    "this node {this} and node {other} of the cluster {that}: every node of a \
                     cluster needs the same --tls-cert/--tls-key/--tls-ca, or none"
                )));
            }
            let membership: Arc<dyn crate::cluster::Membership> = Arc::new(joined);
            let cluster = crate::cluster::place::Cluster::start(
                &rt.actors,
                rt.handle(),
                membership.clone(),
                rpc,
                rpc_address,
                options.cluster_token.as_deref(),
                tls,
            )
            .map_err(Error::Config)?;
            (Some(membership), Some(cluster))
        };
        let jobs = Arc::new(jobs::Jobs::default());
        let cluster_jobs = match (&membership, &cluster) {
            (Some(m), Some(c)) => Some(cluster_jobs::ClusterJobs::start(
                m.clone(),
                c.clone(),
                jobs.clone(),
                rt.handle(),
            )),
            _ => None,
        };
        let cluster_actors = membership.as_ref().map(|m| {
            let (actors, id) = (Arc::downgrade(&rt.actors), node_id.clone());
            let made = move || Some(api::made_here(&*actors.upgrade()?, &id));
            cluster_actors::ClusterActors::start(m.clone(), made, node_id.clone(), rt.handle())
        });
        let state = Arc::new(NodeState {
            node_id,
            membership,
            cluster,
            actors: rt.actors.clone(),
            handle: rt.handle().clone(),
            logs,
            jobs,
            cluster_jobs,
            cluster_actors,
            addr,
            token: options.token,
            hosts,
            rate: std::sync::Mutex::new((Instant::now(), 0, 0.0)),
            uploads: Uploads {
                turns: tokio::sync::Semaphore::new(options.max_uploads.max(1)),
                reading: AtomicUsize::new(0),
                waiting: AtomicUsize::new(0),
            },
            held: Default::default(),
        });
        if let Some(cluster) = &state.cluster {
            let desk = Arc::downgrade(&state);
            let desk: std::sync::Weak<dyn crate::cluster::Desk> = desk;
            cluster.set_desk(desk);
        }
        let app = router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let _guard = rt.handle().enter();
        let listener = tokio::net::TcpListener::from_std(listener)
            .map_err(|e| Error::Config(format!("cannot serve: {e}")))?;
        rt.handle().spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Node {
            addr,
            state,
            stop: Some(stop),
        })
    }

    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Resolves when the node has lost its cluster membership (its lease
    /// ran out: the other nodes count it dead, so it must stop); never
    /// for a node alone.
    pub async fn membership_lost(&self) {
        match &self.state.membership {
            Some(m) => m.lost().await,
            None => std::future::pending().await,
        }
    }

    /// Leaves its cluster now, as it stops (see `Membership::leave`): the
    /// other nodes drop it at once. Nothing for a node alone.
    pub async fn leave(&self) {
        if let Some(m) = &self.state.membership {
            m.leave().await;
        }
    }

    /// The id this node is known by (in a cluster, the one it registered).
    pub fn node_id(&self) -> &str {
        &self.state.node_id
    }

    /// The dashboard's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Jobs the node ran, newest first.
    pub fn jobs(&self) -> Vec<JobInfo> {
        self.state.jobs.list()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn router(state: Arc<NodeState>) -> Router {
    use axum::routing::{get, post};
    let uploads = Router::new()
        .route("/api/jobs", post(api::submit_job))
        .route("/api/jobs/", post(api::submit_job))
        .route("/api/modules", post(api::upload_module))
        .layer(DefaultBodyLimit::max(MAX_MODULE_SIZE))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            upload_turn,
        ));
    // Lists of object ids: far more than a JSON body otherwise.
    let batches = Router::new()
        .route("/api/objects/values", post(calls::object_values))
        .route("/api/objects/wait", post(calls::wait_objects))
        .route("/api/objects/release", post(calls::release_objects))
        .layer(DefaultBodyLimit::max(MAX_BATCH));
    Router::new()
        .route("/", get(api::index))
        .route("/app.js", get(api::app_js))
        .route("/style.css", get(api::style_css))
        .route("/api/jobs", get(api::list_jobs))
        .route("/api/jobs/", get(api::list_jobs))
        .route("/api/jobs/{id}", get(api::job).delete(api::delete_job))
        .route("/api/jobs/{id}/logs", get(api::job_logs))
        .route("/api/jobs/{id}/stop", post(api::stop_job))
        .route("/api/tasks", post(calls::post_task))
        .route("/api/objects", post(calls::post_object))
        .route("/api/actors", post(calls::post_actor))
        .route(
            "/api/actors/{id}/methods/{method}",
            post(calls::post_method),
        )
        .route(
            "/api/objects/{id}",
            get(calls::get_object).delete(calls::delete_object),
        )
        .route("/api/v0/jobs", get(api::list_jobs))
        .route("/api/v0/tasks", get(api::tasks))
        .route("/api/v0/tasks/summary", get(api::task_summary))
        .route("/api/v0/actors", get(api::actors))
        .route("/api/v0/actors/{id}/kill", post(api::kill_actor))
        .route("/api/v0/objects", get(api::objects))
        .route("/api/v0/nodes", get(api::nodes))
        .route("/api/v0/head", get(api::head))
        .route("/api/v0/status", get(api::status))
        .route("/api/v0/logs", get(api::logs))
        .route("/api/v0/config", get(api::config))
        .route("/api/v0/timeline", get(api::timeline))
        .route("/metrics", get(api::metrics))
        .layer(DefaultBodyLimit::max(MAX_JSON))
        .merge(uploads)
        .merge(batches)
        .fallback(|| async { api::error(StatusCode::NOT_FOUND, "no such endpoint") })
        .layer(axum::middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// Waits for an upload's turn before its body is read (see
/// [`NodeOptions::max_uploads`]).
async fn upload_turn(State(st): State<Arc<NodeState>>, req: Request, next: Next) -> Response {
    /// Counts one in `count` while alive (a request whose client goes
    /// away is dropped mid-wait).
    struct Counted<'a>(&'a AtomicUsize);
    impl<'a> Counted<'a> {
        fn new(count: &'a AtomicUsize) -> Self {
            count.fetch_add(1, Ordering::Relaxed);
            Counted(count)
        }
    }
    impl Drop for Counted<'_> {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::Relaxed);
        }
    }
    let u = &st.uploads;
    let waiting = Counted::new(&u.waiting);
    let _turn = u.turns.acquire().await;
    drop(waiting);
    let _reading = Counted::new(&u.reading);
    next.run(req).await
}

/// The checks every request passes (see the module docs).
async fn guard(State(st): State<Arc<NodeState>>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    if let Some(hosts) = &st.hosts
        && !hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    {
        return api::error(
            StatusCode::MISDIRECTED_REQUEST,
            "the Host header does not name this node",
        );
    }
    let mut set_cookie = None;
    if let Some(token) = &st.token {
        let from_query = (req.uri().path() == "/")
            .then(|| query_token(req.uri().query().unwrap_or("")))
            .flatten();
        let presented = bearer(headers)
            .or_else(|| cookie(headers, "wray_token"))
            .or(from_query.as_deref());
        if !presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
            // Whether this node leads its cluster, and nothing more, for
            // probes that hold no token (Kubernetes' readiness probe).
            if req.uri().path() == "/api/v0/head" && req.method() == Method::GET {
                return api::head_probe(&st).await;
            }
            return api::error(StatusCode::UNAUTHORIZED, "a valid token is required");
        }
        if from_query.is_some() {
            set_cookie = Some(format!(
                "wray_token={token}; Path=/; HttpOnly; SameSite=Strict"
            ));
        }
    }
    // A body announced past its limit is refused before a byte is read.
    let limit = match req.uri().path() {
        "/api/jobs" | "/api/jobs/" | "/api/modules" => MAX_MODULE_SIZE,
        "/api/objects/values" | "/api/objects/wait" | "/api/objects/release" => MAX_BATCH,
        _ => MAX_JSON,
    };
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if announced.is_some_and(|n| n > limit as u64) {
        return api::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than this endpoint's limit of {limit} bytes"),
        );
    }
    // A browser names the page's origin; the dashboard's own is the node
    // as the browser reached it.
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe
        && let Some(origin) = headers.get(header::ORIGIN)
        && !origin
            .to_str()
            .ok()
            .and_then(|o| o.strip_prefix("http://"))
            .is_some_and(|o| o.eq_ignore_ascii_case(host))
    {
        return api::error(
            StatusCode::FORBIDDEN,
            "requests that change state are refused from other origins",
        );
    }
    let mut resp = next.run(req).await;
    // A body past its limit without a length announced (chunked) is cut
    // off by axum with a plain-text 413: answer in JSON, like every error.
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE
        && !resp
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"))
    {
        resp = api::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than this endpoint's limit of {limit} bytes"),
        );
    }
    let h = resp.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Some(c) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    resp.into_response()
}

/// The token of an `Authorization: Bearer <token>` header (the scheme's
/// name is case-insensitive, RFC 9110).
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start())
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
}

fn query_token(query: &str) -> Option<String> {
    query
        .split('&')
        .find_map(|kv| kv.strip_prefix("token="))
        .map(str::to_string)
}

/// Compares without stopping at the first difference, so the time taken
/// does not tell how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A new random token: 32 bytes, hex.
pub fn new_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, new_token());
    }

    #[test]
    fn cookies_and_bearers_are_read() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; wray_token=xyz"),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer t0k"),
        );
        assert_eq!(cookie(&h, "wray_token"), Some("xyz"));
        assert_eq!(bearer(&h), Some("t0k"));
        for scheme in ["bearer", "BEARER", "BeArEr"] {
            h.insert(
                header::AUTHORIZATION,
                HeaderValue::from_str(&format!("{scheme} t0k")).unwrap(),
            );
            assert_eq!(bearer(&h), Some("t0k"), "{scheme}");
        }
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic t0k"));
        assert_eq!(bearer(&h), None);
        assert_eq!(query_token("x=1&token=abc"), Some("abc".into()));
    }
}
