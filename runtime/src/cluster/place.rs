//! Where calls run in a cluster: [`Cluster`] keeps the live nodes (from
//! the membership, refreshed), places each call (the task layer's
//! `Placement`) and runs calls on the others (`Peer`), over the cluster's
//! RPC service.
//!
//! Placement, as Ray's default: a call stays on this node while it has a
//! free CPU slot; past that it goes to the least-loaded node (the calls
//! this node has in flight there, or those it said it runs for every
//! caller on its last reply if more, per CPU), if that one is less loaded
//! than this node (calls running and waiting here per CPU). `node` pins a call to a node (Ray's
//! node affinity); `spread` deals calls to every node in turn (Ray's
//! `SPREAD`). Each node places the calls of its own drivers and tasks; a
//! call sent to a node runs there.

use super::Membership;
use super::rpc::{Large, Loans, Service, Shared};
use crate::actor::registry::Actors;
use crate::exec::remote::{
    ActorLine, ArgBytes, Forward, ForwardActor, ForwardMethod, Forwarded, Peer, Place, Placement,
};
use crate::exec::resources;
use futures_util::future::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, oneshot};
use wray_abi::wire::ErrorRecord;
use wray_abi::{ActorId, ErrorKind, TaskId};

use super::rpc::proto::node_client::NodeClient;
use super::rpc::proto::{
    ActorCallRequest, ActorCreateRequest, ActorKillRequest, Contained, Link, Output, RunReply,
    RunRequest, Value, outcome,
};
use crate::objects::arg::{ArgValue, REFS_TRAVEL_MAX, contained_in_args};
use crate::objects::held::HeldRefs;
use crate::output::{OutputSource, SourceKind, Stream};
use tonic::transport::Channel;

/// How often parked results are swept.
const REFRESH: Duration = Duration::from_millis(250);
/// How often the live nodes are read again without a change reported
/// (the membership's watch reports each change at once).
const REREAD: Duration = Duration::from_secs(5);
/// How long a node that could not be reached gets no calls.
const DOWN_FOR: Duration = Duration::from_secs(1);
/// Arguments this large together are placed by locality (`Cluster::near`):
/// past what rides inline in a call.
const LOCAL_ARGS: usize = super::rpc::INLINE_MAX;
/// How long a node's report of its load (on its replies) counts.
const REPORT_FRESH_MS: u64 = 1000;
/// How long a request of another node's API may take.
const ASK_TIMEOUT: Duration = Duration::from_secs(10);
/// Calls in flight to one node, per CPU it has, past which it gets no more.
const IN_FLIGHT_PER_CPU: usize = 4;

/// What a node's record in the membership says that placement needs
/// (the record holds more: `node::types::NodeEntry`).
#[derive(Deserialize)]
struct Record {
    #[serde(default)]
    rpc_address: Option<String>,
    #[serde(default)]
    cpus: u64,
    #[serde(default)]
    resources: BTreeMap<String, f64>,
}

/// A cluster node's view of the others, in `GET /api/v0/status`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterUse {
    /// The other live nodes it places calls on, by id.
    pub peers: Vec<String>,
    /// Its calls running on other nodes now.
    pub calls_out: u64,
    /// Objects it lends other nodes now (arguments of its calls running
    /// there, results they have not pulled yet).
    pub lent: u64,
    /// Objects it pulled from other nodes so far.
    #[serde(default)]
    pub pulled: u64,
    /// Pulls it served other nodes so far.
    #[serde(default)]
    pub served: u64,
    /// Copies of large objects it pulled, kept for reuse (memory pressure
    /// drops them first).
    #[serde(default)]
    pub copies: u64,
    /// Their bytes.
    #[serde(default)]
    pub copy_bytes: u64,
    /// The actors it made whose records in the cluster's metadata are
    /// up to date (the node above fills this in).
    #[serde(default)]
    pub actor_records: u64,
}

/// A node's load, as `GET /api/v0/nodes` shows it (asked of each node
/// when listed, over the `Load` call).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeLoad {
    /// CPU slots in use.
    pub cpus_in_use: u64,
    /// Calls running there now (any caller's).
    pub running: u64,
    /// Calls waiting to run there.
    pub pending: u64,
    /// Bytes of objects in its store.
    pub object_store_bytes: u64,
    /// Its process's resident memory.
    pub rss_bytes: u64,
}

impl From<super::rpc::proto::NodeLoad> for NodeLoad {
    fn from(l: super::rpc::proto::NodeLoad) -> NodeLoad {
        NodeLoad {
            cpus_in_use: l.cpus_in_use.into(),
            running: l.running,
            pending: l.pending,
            object_store_bytes: l.object_store_bytes,
            rss_bytes: l.rss_bytes,
        }
    }
}

/// This node's load now.
pub(crate) fn load_here(actors: &Actors) -> NodeLoad {
    super::rpc::load_here(actors).into()
}

/// How long asking a node its load may take before it is shown unknown.
const LOAD_TIMEOUT: Duration = Duration::from_secs(1);

/// This node's side of a cluster: the RPC service it serves, the live
/// other nodes, and the placement of calls. Dropping it stops the service
/// and the refresh.
pub struct Cluster {
    pub(super) shared: Arc<Shared>,
    /// The membership, whose metadata holds the actors' names.
    pub(super) membership: Arc<dyn Membership>,
    peers: RwLock<Arc<Vec<Arc<RemoteNode>>>>,
    /// The next turn of `spread` calls.
    turn: AtomicUsize,
    /// The modules this node is recorded as holding.
    pub(super) held_modules: dashmap::DashSet<wray_abi::ObjectId>,
    _stop: oneshot::Sender<()>,
}

impl Cluster {
    /// Serves this node's RPC service on `listener`, follows the live nodes
    /// of `membership`, and places the calls of `actors`' runtime. With
    /// `token`, it serves only requests that present it, and presents it;
    /// with `tls`, only peers with a certificate of the cluster's CA, and
    /// talks to them over TLS.
    pub(crate) fn start(
        actors: &Arc<Actors>,
        handle: &tokio::runtime::Handle,
        membership: Arc<dyn Membership>,
        listener: std::net::TcpListener,
        address: String,
        token: Option<&str>,
        tls: Option<Arc<super::tls::Tls>>,
    ) -> Result<Arc<Cluster>, String> {
        let shared = Arc::new(Shared::new(
            membership.id().to_string(),
            address,
            actors.clone(),
            token,
            tls.clone(),
        )?);
        let (stop, stopped) = oneshot::channel::<()>();
        let cluster = Arc::new(Cluster {
            shared: shared.clone(),
            membership: membership.clone(),
            peers: RwLock::new(Arc::new(Vec::new())),
            turn: AtomicUsize::new(0),
            held_modules: Default::default(),
            _stop: stop,
        });
        let _guard = handle.enter();
        let serve = |e: std::io::Error| format!("cannot serve other nodes: {e}");
        listener.set_nonblocking(true).map_err(serve)?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(serve)?;
        // Pulls are served beside the gRPC service, on its port.
        let incoming = super::pull::incoming(listener, shared.clone(), tls);
        let server = tonic::transport::Server::builder()
            .initial_stream_window_size(Some(8 << 20))
            .initial_connection_window_size(Some(16 << 20))
            .add_service(Service(shared).server())
            .serve_with_incoming_shutdown(incoming, async {
                let _ = stopped.await;
            });
        handle.spawn(server);
        handle.spawn(refresh(Arc::downgrade(&cluster), membership));
        // Copies of others' objects go first when memory is short.
        let kept = Arc::downgrade(&cluster.shared);
        actors.env.objects.on_pressure(move || {
            if let Some(s) = kept.upgrade() {
                s.copies.clear();
            }
        });
        let placement: Weak<dyn Placement> =
            Arc::downgrade(&(cluster.clone() as Arc<dyn Placement>));
        actors.env.set_placement(placement);
        Ok(cluster)
    }

    /// Whether it talks to the other nodes over TLS.
    pub fn tls(&self) -> bool {
        self.shared.tls.is_some()
    }

    /// The address other nodes reach this node's RPC service at.
    pub fn rpc_address(&self) -> &str {
        &self.shared.address
    }

    /// Its view of the others now: the live nodes, its calls on them, the
    /// objects it lends them.
    pub fn usage(&self) -> ClusterUse {
        let peers = self.snapshot();
        let (copies, copy_bytes) = self.shared.copies.usage();
        ClusterUse {
            peers: peers.iter().map(|p| p.id.clone()).collect(),
            calls_out: peers
                .iter()
                .map(|p| p.in_flight.load(Ordering::Relaxed) as u64)
                .sum(),
            lent: self.shared.lent.len() as u64,
            pulled: self.shared.pulled.load(Ordering::Relaxed),
            served: self.shared.served.load(Ordering::Relaxed),
            copies,
            copy_bytes,
            actor_records: 0,
        }
    }

    /// The load of every other live node, by id, asked of each at once
    /// (a node that does not answer within a second is left out).
    pub async fn loads(&self) -> BTreeMap<String, NodeLoad> {
        self.each_peer(LOAD_TIMEOUT, |p| async move {
            let mut client = self.shared.client(&p.address)?;
            let ask = client.load(
                self.shared
                    .request_to(&p.id, super::rpc::proto::LoadRequest {}),
            );
            let load = ask.await.map_err(|e| e.message().to_string())?;
            Ok(NodeLoad::from(load.into_inner()))
        })
        .await
        .into_iter()
        .filter_map(|(id, load)| Some((id, load.ok()?)))
        .collect()
    }

    /// `f` of every other live node at once, by id: its answer, or why
    /// there is none (it failed, or took longer than `limit`).
    async fn each_peer<'a, T, F, Fut>(
        &'a self,
        limit: Duration,
        f: F,
    ) -> BTreeMap<String, Result<T, String>>
    where
        F: Fn(Arc<RemoteNode>) -> Fut,
        Fut: Future<Output = Result<T, String>> + 'a,
    {
        let peers = self.snapshot();
        let asks = peers.iter().map(|p| {
            let asked = tokio::time::timeout(limit, f(p.clone()));
            async move {
                let answer = asked
                    .await
                    .unwrap_or_else(|_| Err(format!("no answer within {limit:?}")));
                (p.id.clone(), answer)
            }
        });
        futures_util::future::join_all(asks)
            .await
            .into_iter()
            .collect()
    }

    /// Sets what answers other nodes' requests of this node's API.
    pub fn set_desk(&self, desk: Weak<dyn super::Desk>) {
        let _ = self.shared.desk.set(desk);
    }

    /// Whether node `node` is a live member (read again if this node has
    /// not seen it join).
    pub async fn is_live(&self, node: &str) -> bool {
        self.live(node).await.is_some()
    }

    /// Asks node `node`'s API `ask`: the HTTP status and JSON body it
    /// gives.
    pub async fn ask(&self, node: &str, ask: &super::Ask) -> Result<(u16, Vec<u8>), String> {
        let peer = self
            .live(node)
            .await
            .ok_or_else(|| format!("node {node} is not in the cluster"))?;
        let answer = tokio::time::timeout(ASK_TIMEOUT, self.ask_peer(&peer, ask)).await;
        answer.map_err(|_| format!("node {node} did not answer within {ASK_TIMEOUT:?}"))?
    }

    /// Asks every other live node `ask` at once: each one's answer, or
    /// why there is none, by id.
    pub async fn ask_all(
        &self,
        ask: &super::Ask,
    ) -> BTreeMap<String, Result<(u16, Vec<u8>), String>> {
        self.each_peer(ASK_TIMEOUT, |p| async move { self.ask_peer(&p, ask).await })
            .await
    }

    async fn ask_peer(
        &self,
        peer: &RemoteNode,
        ask: &super::Ask,
    ) -> Result<(u16, Vec<u8>), String> {
        let mut client = self.shared.client(&peer.address)?;
        let reply = client
            .ask(
                self.shared
                    .request_to(&peer.id, super::rpc::ask_request(ask)),
            )
            .await
            .map_err(|e| format!("node {}: {}", peer.id, e.message()))?
            .into_inner();
        let status = u16::try_from(reply.status).unwrap_or(502);
        Ok((status, reply.body.to_vec()))
    }

    /// Live node `node`, as last read.
    fn remote(&self, node: &str) -> Option<Arc<RemoteNode>> {
        self.snapshot().iter().find(|p| p.id == node).cloned()
    }

    /// Live node `node`: as last read, or after reading the members again
    /// (it may have joined since).
    pub(super) async fn live(&self, node: &str) -> Option<Arc<RemoteNode>> {
        if let Some(p) = self.remote(node) {
            return Some(p);
        }
        let members = self.membership.members().await.ok()?;
        self.update(records(members));
        self.remote(node)
    }

    fn snapshot(&self) -> Arc<Vec<Arc<RemoteNode>>> {
        self.peers.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Makes the live nodes `members` (other than this one): those that
    /// left are told, so calls in flight to them fail now.
    fn update(&self, members: Vec<(String, Record)>) {
        let old = self.snapshot();
        let mut next = Vec::with_capacity(members.len());
        for (id, record) in members {
            if id == self.shared.id {
                continue;
            }
            let Some(address) = record.rpc_address else {
                continue;
            };
            let kept = old
                .iter()
                .find(|p| p.id == id && p.address == address)
                .cloned();
            next.push(kept.unwrap_or_else(|| {
                Arc::new(RemoteNode {
                    id,
                    address,
                    cpus: record.cpus.max(1) as usize,
                    // A node that says something unreadable has none.
                    resources: resources::from_units(record.resources).unwrap_or_default(),
                    in_flight: AtomicUsize::new(0),
                    reported: AtomicUsize::new(0),
                    reported_at: AtomicU64::new(0),
                    since: Instant::now(),
                    down_until: Mutex::new(None),
                    gone: AtomicBool::new(false),
                    left: Notify::new(),
                    shared: self.shared.clone(),
                })
            }));
        }
        for p in old.iter() {
            if !next.iter().any(|n| Arc::ptr_eq(n, p)) {
                p.gone.store(true, Ordering::SeqCst);
                p.left.notify_waiters();
                self.shared.forget_node(&p.id);
                self.shared.holders.forget(&p.address);
            }
        }
        *self.peers.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Calls in flight to others fail rather than wait on a node that
        // is going away.
        for p in self.snapshot().iter() {
            p.gone.store(true, Ordering::SeqCst);
            p.left.notify_waiters();
        }
    }
}

/// The members whose records are readable, with them.
fn records(members: Vec<super::Member>) -> Vec<(String, Record)> {
    members
        .into_iter()
        .filter_map(|(id, record)| Some((id, serde_json::from_slice(&record).ok()?)))
        .collect()
}

/// Reads the live nodes when the membership reports a change (and every
/// [`REREAD`] anyway), and every [`REFRESH`] drops results parked too long,
/// while the cluster side lives.
async fn refresh(cluster: Weak<Cluster>, membership: Arc<dyn Membership>) {
    let mut changes = membership.member_changes();
    let mut read_at = Instant::now();
    let mut read = true;
    loop {
        if read {
            changes.borrow_and_update();
            read_at = Instant::now();
            if let Ok(members) = membership.members().await {
                let Some(c) = cluster.upgrade() else { return };
                c.update(records(members));
            }
        }
        {
            let Some(c) = cluster.upgrade() else { return };
            c.shared.lent.sweep();
        }
        // Read again when the list changed, and every so often anyway.
        read = tokio::select! {
            Ok(()) = changes.changed() => true,
            () = tokio::time::sleep(REFRESH) => read_at.elapsed() >= REREAD,
        };
    }
}

impl Placement for Cluster {
    fn claim_name(
        &self,
        name: &str,
        actor: ActorId,
        type_name: &str,
    ) -> BoxFuture<'static, Result<(), String>> {
        let (m, actors) = (self.membership.clone(), self.shared.actors.clone());
        let (name, type_name) = (name.to_string(), type_name.to_string());
        let node = actors.env.config.node_id;
        Box::pin(async move {
            let alive = |id: &ActorId| actors.registry.get(id).is_some();
            super::names::claim(&*m, node, &name, actor, &type_name, alive).await
        })
    }

    fn find_name(&self, name: &str) -> BoxFuture<'static, Option<(ActorId, Arc<str>)>> {
        let (m, name) = (self.membership.clone(), name.to_string());
        Box::pin(async move { super::names::find(&*m, &name).await })
    }

    fn release_name(&self, name: &str, actor: ActorId, type_name: &str) {
        let (m, name, type_name) = (
            self.membership.clone(),
            name.to_string(),
            type_name.to_string(),
        );
        self.shared
            .actors
            .env
            .spawner
            .spawn(async move { super::names::release(&*m, &name, actor, &type_name).await });
    }

    fn find_peer<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Option<Arc<dyn Peer>>> {
        Box::pin(async move { Some(self.live(node).await? as Arc<dyn Peer>) })
    }

    fn place(
        &self,
        options: &wray_abi::wire::Options,
        forwardable: bool,
        args: &ArgBytes,
    ) -> Place {
        let peers = self.snapshot();
        let request = &options.resources;
        let here = &self.shared.actors.env.resources;
        if let Some(node) = &options.node {
            if *node == self.shared.id {
                return match here.check(request) {
                    Ok(()) => Place::Here,
                    Err(why) => Place::Nowhere(why),
                };
            }
            return match peers.iter().find(|p| p.id == *node) {
                Some(p) if !p.fits(request) => Place::Nowhere(format!(
                    "the call must run on node {node}, which has not the resources it needs ({})",
                    describe(request)
                )),
                Some(p) if forwardable => Place::There(p.clone()),
                Some(_) => Place::Nowhere(format!(
                    "the call must run on node {node}, but an argument holding references to \
                     objects is larger than the {REFS_TRAVEL_MAX} bytes such a value may be to \
                     leave its node"
                )),
                None => Place::Nowhere(format!(
                    "the call must run on node {node}, which is not in the cluster"
                )),
            };
        }
        if !request.is_empty() {
            return self.place_needing(request, &peers, options.spread == Some(true), forwardable);
        }
        let spread = options.spread == Some(true);
        if !forwardable || peers.is_empty() {
            return Place::Here;
        }
        let now = Instant::now();
        let up: Vec<&Arc<RemoteNode>> = peers.iter().filter(|p| p.up(now)).collect();
        if spread {
            return self.deal(true, &up);
        }
        if self.shared.actors.env.slots.free().0 > 0 {
            return Place::Here;
        }
        if args.total >= LOCAL_ARGS {
            return self.near(args, &up);
        }
        self.least_loaded(true, &up)
    }
}

impl Cluster {
    /// Places a call with large arguments while this node has no free
    /// slot, by locality (as Ray's scheduler prefers the nodes holding
    /// the most argument bytes, and spills over to others): on the least
    /// loaded node that took them all before (which may keep copies), if
    /// less loaded than this one; else on an idle node, which pulls them
    /// once and keeps them for the next; else here, where they are.
    fn near(&self, args: &ArgBytes, up: &[&Arc<RemoteNode>]) -> Place {
        let holders = &self.shared.holders;
        let holding: Vec<&Arc<RemoteNode>> = up
            .iter()
            .filter(|p| args.large.iter().all(|d| holders.has(d, &p.address)))
            .copied()
            .collect();
        if let Place::There(p) = self.least_loaded(true, &holding) {
            return Place::There(p);
        }
        let idle: Vec<&Arc<RemoteNode>> = up
            .iter()
            .filter(|p| p.load() == 0.0 && !p.full())
            .copied()
            .collect();
        self.least_loaded(true, &idle)
    }

    /// Places a call that needs custom resources: on a node that has
    /// them (this one first while they are free here), else the least
    /// loaded that has them; with `spread`, on those nodes in turn.
    fn place_needing(
        &self,
        request: &[(String, u64)],
        peers: &[Arc<RemoteNode>],
        spread: bool,
        forwardable: bool,
    ) -> Place {
        let here = &self.shared.actors.env.resources;
        if let Err(why) = resources::check_request(request) {
            return Place::Nowhere(why);
        }
        let here_fits = here.check(request).is_ok();
        let now = Instant::now();
        let able: Vec<&Arc<RemoteNode>> = match forwardable {
            true => peers.iter().filter(|p| p.fits(request)).collect(),
            false => Vec::new(),
        };
        if !here_fits && able.is_empty() {
            let why = match forwardable || !peers.iter().any(|p| p.fits(request)) {
                true => format!("no node of the cluster has {}", describe(request)),
                false => format!(
                    "only other nodes have {}, and an argument holding references to objects \
                     is larger than the {REFS_TRAVEL_MAX} bytes such a value may be to leave \
                     its node",
                    describe(request)
                ),
            };
            return Place::Nowhere(why);
        }
        // Nodes that could not be reached lately are tried only when no
        // other has the resources (their failure is retried).
        let up: Vec<&Arc<RemoteNode>> = match able.iter().any(|p| p.up(now)) {
            true => able.into_iter().filter(|p| p.up(now)).collect(),
            false => able,
        };
        if spread {
            return self.deal(here_fits, &up);
        }
        if here_fits && here.free_now(request) {
            return Place::Here;
        }
        self.least_loaded(here_fits, &up)
    }

    /// The next of this node (if `here`) and `nodes`, in turn (`spread`).
    fn deal(&self, here: bool, nodes: &[&Arc<RemoteNode>]) -> Place {
        let n = nodes.len() + usize::from(here);
        let turn = self.turn.fetch_add(1, Ordering::Relaxed) % n.max(1);
        let other = match here {
            true => turn.checked_sub(1),
            false => Some(turn),
        };
        match other.and_then(|i| nodes.get(i)) {
            Some(p) => Place::There((*p).clone()),
            None => Place::Here,
        }
    }

    /// The least loaded of `nodes` (see [`per_cpu`]; those
    /// at their cap only if this node may not take the call), if it is
    /// less loaded than this node (calls running and waiting here per
    /// CPU); else this node.
    fn least_loaded(&self, here: bool, nodes: &[&Arc<RemoteNode>]) -> Place {
        let by_load = |a: &&&Arc<RemoteNode>, b: &&&Arc<RemoteNode>| a.load().total_cmp(&b.load());
        let open = nodes.iter().filter(|p| !p.full()).min_by(by_load);
        let best = match (open, here) {
            (Some(p), _) => Some(p),
            (None, true) => None,
            (None, false) => nodes.iter().min_by(by_load),
        };
        let Some(p) = best else {
            return Place::Here;
        };
        if here {
            let env = &self.shared.actors.env;
            let cpus = env.config.num_cpus.max(1);
            let waiting = env.slots.free().2;
            if p.load() >= (cpus + waiting) as f64 / cpus as f64 {
                return Place::Here;
            }
        }
        Place::There((*p).clone())
    }
}

/// A piece of output another node sent back, with its writer (the job
/// is the caller's to fill in); `None` if its writer's id is unreadable.
fn written(o: Output) -> Option<(OutputSource, Stream, bytes::Bytes)> {
    let kind = match o.actor {
        false => SourceKind::Task(wray_abi::TaskId::from_slice(&o.id)?),
        true => SourceKind::Actor(wray_abi::ActorId::from_slice(&o.id)?),
    };
    let stream = match o.stderr {
        true => Stream::Stderr,
        false => Stream::Stdout,
    };
    let source = OutputSource {
        name: o.name.into(),
        kind,
        job: 0,
    };
    Some((source, stream, o.text))
}

/// A resource request for messages: "1 of resource `gpu` and 0.5 of
/// resource `disk`".
fn describe(request: &[(String, u64)]) -> String {
    let parts: Vec<String> = request
        .iter()
        .map(|(name, amount)| format!("{} of resource `{name}`", resources::units(*amount)))
        .collect();
    parts.join(" and ")
}

/// Another live node.
pub(super) struct RemoteNode {
    id: String,
    pub(super) address: String,
    cpus: usize,
    /// Its custom resources, in thousandths.
    resources: BTreeMap<String, u64>,
    /// Calls placed on it that have not ended.
    in_flight: AtomicUsize,
    /// Its calls running and waiting (every caller's), as its last reply
    /// said, and when (milliseconds since `since`).
    reported: AtomicUsize,
    reported_at: AtomicU64,
    since: Instant,
    /// Until when it gets no calls (it could not be reached).
    down_until: Mutex<Option<Instant>>,
    /// Whether it left the cluster; `left` wakes the calls in flight.
    gone: AtomicBool,
    left: Notify,
    shared: Arc<Shared>,
}

impl RemoteNode {
    fn up(&self, now: Instant) -> bool {
        let down = lock(&self.down_until);
        !self.gone.load(Ordering::Relaxed) && down.is_none_or(|t| t <= now)
    }

    /// Whether it has `request` (not necessarily free now).
    fn fits(&self, request: &[(String, u64)]) -> bool {
        request
            .iter()
            .all(|(name, amount)| self.resources.get(name).is_some_and(|t| t >= amount))
    }

    /// Whether it has as many calls in flight as it gets.
    fn full(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) >= self.cpus * IN_FLIGHT_PER_CPU
    }

    /// Calls in flight per CPU.
    fn load(&self) -> f64 {
        // Its own count of calls it placed there, or what the node said it
        // runs for every caller, if it said so lately: other nodes place
        // calls there too.
        let now = self.since.elapsed().as_millis() as u64;
        let age = now.saturating_sub(self.reported_at.load(Ordering::Relaxed));
        per_cpu(
            self.in_flight.load(Ordering::Relaxed),
            self.reported.load(Ordering::Relaxed),
            age,
            self.cpus,
        )
    }

    /// Resolves once the node has left the cluster.
    async fn gone(&self) {
        loop {
            let notified = self.left.notified();
            let mut notified = std::pin::pin!(notified);
            notified.as_mut().enable();
            if self.gone.load(Ordering::SeqCst) {
                return;
            }
            notified.await;
        }
    }
}

/// Counts a call in flight to a node while it lives.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl RemoteNode {
    /// A failure of this node (unreachable, gone), for a call of `what`:
    /// retried elsewhere.
    fn failure(&self, what: &str, why: &str) -> ErrorRecord {
        ErrorRecord::new(
            ErrorKind::WorkerFailure,
            what,
            format!("node {} failed: {why}", self.id),
        )
    }

    /// Awaits `rpc`, a request to this node for a call of `what`, unless
    /// the node leaves the cluster first; a node that cannot be reached
    /// gets no calls for a while.
    async fn ask<T>(
        &self,
        what: &str,
        rpc: impl Future<Output = RpcResult<T>>,
    ) -> Result<T, ErrorRecord> {
        let reply = tokio::select! {
            r = rpc => r,
            () = self.gone() => return Err(self.failure(what, "it left the cluster")),
        };
        reply
            .map(tonic::Response::into_inner)
            .map_err(|status| self.refused(what, &status))
    }

    /// The failure of a request to this node for a call of `what`, which
    /// answered `status`; a node that cannot be reached gets no calls for
    /// a while.
    fn refused(&self, what: &str, status: &tonic::Status) -> ErrorRecord {
        if matches!(
            status.code(),
            tonic::Code::Unavailable
                | tonic::Code::Unknown
                | tonic::Code::Cancelled
                | tonic::Code::FailedPrecondition
        ) {
            *lock(&self.down_until) = Some(Instant::now() + DOWN_FOR);
        }
        self.failure(what, status.message())
    }

    /// Sends a call of `what` with `args` (`request` builds the message
    /// around them, `rpc` sends it) and waits for its `num_returns`
    /// results, their bytes here. Large arguments stay lent until the
    /// reply comes.
    async fn exchange<R>(
        &self,
        what: &str,
        num_returns: u32,
        args: &[ArgValue],
        request: impl FnOnce(Vec<Value>, Vec<Contained>) -> R,
        rpc: impl AsyncFnOnce(NodeClient<Channel>, tonic::Request<R>) -> RpcResult<RunReply>,
    ) -> Result<Forwarded, ErrorRecord> {
        let s = &self.shared;
        // The objects its arguments refer to travel with them.
        let contained = contained_in_args(&s.actors.env.objects, args, what).await?;
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let _in_flight = InFlight(&self.in_flight);
        let mut loans: Option<Loans> = None;
        let (values, contained) = send_all(s, args, &contained, &self.address, &mut loans);
        let message = request(values, contained);
        let client = s
            .client(&self.address)
            .map_err(|e| self.failure(what, &e))?;
        let reply = self
            .ask(what, rpc(client, s.request_to(&self.id, message)))
            .await;
        self.took(&reply, loans);
        self.results(what, num_returns, reply?).await
    }

    /// Ends a call's `loans` once `reply` came: if it came, the node took
    /// the large arguments, and may keep them.
    fn took<T>(&self, reply: &Result<T, ErrorRecord>, loans: Option<Loans>) {
        if let (Ok(_), Some(loans)) = (reply, &loans) {
            for digest in loans.digests() {
                self.shared.holders.add(*digest, &self.address);
            }
        }
    }

    /// A call's `num_returns` results from its reply, their bytes here.
    async fn results(
        &self,
        what: &str,
        num_returns: u32,
        reply: RunReply,
    ) -> Result<Forwarded, ErrorRecord> {
        let s = &*self.shared;
        if reply.results.len() != num_returns as usize {
            return Err(self.failure(
                what,
                &format!(
                    "it answered with {} results for {num_returns} return values",
                    reply.results.len()
                ),
            ));
        }
        self.reported.store(reply.busy as usize, Ordering::Relaxed);
        let now = self.since.elapsed().as_millis() as u64;
        self.reported_at.store(now.max(1), Ordering::Relaxed);
        // The objects its results refer to, kept here from now.
        let mut held = HeldRefs::new(&s.actors.env.objects);
        s.receive_contained(reply.contained, &mut held, true)
            .await
            .map_err(|e| self.failure(what, &e))?;
        let mut values = Vec::with_capacity(reply.results.len());
        for result in reply.results {
            match result.what {
                Some(outcome::What::Value(v)) => {
                    values.push(
                        s.receive(v, true)
                            .await
                            .map_err(|e| self.failure(what, &e))?,
                    );
                }
                Some(outcome::What::Error(bytes)) => {
                    return Err(ErrorRecord::decode(&bytes).unwrap_or_else(|e| {
                        self.failure(what, &format!("an unreadable error: {e}"))
                    }));
                }
                None => return Err(self.failure(what, "an empty result")),
            }
        }
        Ok(Forwarded {
            values,
            deterministic: reply.deterministic,
            output: reply.output.into_iter().filter_map(written).collect(),
            restarts: reply.restarts,
            held,
        })
    }
}

/// What a call to another node answers.
type RpcResult<T> = Result<tonic::Response<T>, tonic::Status>;

/// Values to send, inline or lent (the loans last while `loans` lives).
/// And the objects they refer to (`contained`), as they travel.
fn send_all(
    s: &Arc<Shared>,
    args: &[ArgValue],
    contained: &[crate::objects::arg::Contained],
    to: &str,
    loans: &mut Option<Loans>,
) -> (Vec<Value>, Vec<Contained>) {
    let mut inline = 0;
    let mut send = |blob, bytes| s.send(blob, bytes, to, &mut inline, Large::Lend(loans));
    let values = args.iter().map(|a| send(&a.blob, &a.bytes)).collect();
    let contained = contained
        .iter()
        .map(|(id, blob, bytes)| Contained {
            id: bytes::Bytes::copy_from_slice(&id.0),
            value: Some(send(blob, bytes)),
        })
        .collect();
    (values, contained)
}

/// Links as they travel: each module by digest.
fn links(links: &[(String, crate::exec::module::Module)]) -> Vec<Link> {
    links
        .iter()
        .map(|(name, m)| Link {
            name: name.clone(),
            module: bytes::Bytes::copy_from_slice(&m.id().0),
        })
        .collect()
}

impl Peer for RemoteNode {
    fn id(&self) -> &str {
        &self.id
    }

    fn run(self: Arc<Self>, call: Forward) -> BoxFuture<'static, Result<Forwarded, ErrorRecord>> {
        Box::pin(async move {
            let origin = self.shared.address.clone();
            let request = |args, contained| RunRequest {
                module: bytes::Bytes::copy_from_slice(&call.module.id().0),
                module_name: call.module.name().to_string(),
                origin,
                function: call.function.to_string(),
                num_returns: call.num_returns,
                options: call.options.to_bytes().into(),
                args,
                depth: call.depth,
                task: bytes::Bytes::copy_from_slice(&call.task.0),
                links: links(&call.links),
                job: call.job,
                contained,
            };
            let rpc = async |mut c: NodeClient<Channel>, r| c.run(r).await;
            (self.exchange(&call.function, call.num_returns, &call.args, request, rpc)).await
        })
    }

    fn create_actor(
        self: Arc<Self>,
        actor: ForwardActor,
    ) -> BoxFuture<'static, Result<ActorId, ErrorRecord>> {
        Box::pin(async move {
            let node = &*self;
            let what = format!("{}.new", actor.type_name);
            let s = &node.shared;
            let mut loans: Option<Loans> = None;
            let (args, contained) =
                send_all(s, &actor.args, &actor.contained, &self.address, &mut loans);
            let request = ActorCreateRequest {
                module: bytes::Bytes::copy_from_slice(&actor.module.id().0),
                module_name: actor.module.name().to_string(),
                origin: s.address.clone(),
                type_name: actor.type_name.to_string(),
                options: actor.options.to_bytes().into(),
                args,
                depth: actor.depth,
                actor: bytes::Bytes::copy_from_slice(&actor.actor.0),
                links: links(&actor.links),
                job: actor.job,
                contained,
            };
            let mut client = s
                .client(&node.address)
                .map_err(|e| node.failure(&what, &e))?;
            // The constructor's large arguments stay lent until the actor
            // is made there, which pulls them first.
            let reply = node
                .ask(&what, client.actor_create(s.request_to(&node.id, request)))
                .await?;
            drop(loans);
            ActorId::from_slice(&reply.actor)
                .ok_or_else(|| node.failure(&what, "it answered with no actor id"))
        })
    }

    fn actor_line(self: Arc<Self>, actor: ActorId) -> Box<dyn ActorLine> {
        let (requests, sent) = mpsc::unbounded_channel();
        let waiting: Arc<Waiting> = Arc::new(Mutex::new(Some(HashMap::new())));
        let reader = tokio::spawn(read_line(self.clone(), sent, waiting.clone()));
        Box::new(RpcLine {
            node: self,
            actor,
            requests,
            waiting,
            reader: reader.abort_handle(),
        })
    }

    fn kill_actor(self: Arc<Self>, actor: ActorId, allow_restart: bool) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let node = &*self;
            let s = &*node.shared;
            let Ok(mut client) = s.client(&node.address) else {
                return;
            };
            let request = ActorKillRequest {
                actor: bytes::Bytes::copy_from_slice(&actor.0),
                allow_restart,
            };
            let _ = node
                .ask("kill", client.actor_kill(s.request_to(&node.id, request)))
                .await;
        })
    }
}

/// The calls of a line waiting for their replies, by id; `None` once the
/// line ended.
type Waiting = Mutex<Option<HashMap<TaskId, oneshot::Sender<Result<RunReply, ErrorRecord>>>>>;

/// A line of calls to an actor on another node, on one stream of the
/// `ActorCalls` RPC: the requests go down the stream in order, and each
/// reply finds its call by id. Dropped, it closes the stream, which
/// gives up the calls on it there.
struct RpcLine {
    node: Arc<RemoteNode>,
    /// The actor's id there.
    actor: ActorId,
    requests: mpsc::UnboundedSender<ActorCallRequest>,
    waiting: Arc<Waiting>,
    reader: tokio::task::AbortHandle,
}

impl Drop for RpcLine {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

impl ActorLine for RpcLine {
    fn send(&self, call: ForwardMethod) -> BoxFuture<'static, Result<Forwarded, ErrorRecord>> {
        let node = self.node.clone();
        let mut loans: Option<Loans> = None;
        let (args, contained) = send_all(
            &node.shared,
            &call.args,
            &call.contained,
            &node.address,
            &mut loans,
        );
        let request = ActorCallRequest {
            actor: bytes::Bytes::copy_from_slice(&self.actor.0),
            method: call.method.to_string(),
            num_returns: call.num_returns,
            args,
            depth: call.depth,
            task: bytes::Bytes::copy_from_slice(&call.task.0),
            contained,
        };
        let (tx, rx) = oneshot::channel();
        let sent = match lock(&self.waiting).as_mut() {
            Some(waiting) => {
                waiting.insert(call.task, tx);
                self.requests.send(request).is_ok()
            }
            None => false,
        };
        Box::pin(async move {
            node.in_flight.fetch_add(1, Ordering::Relaxed);
            let _in_flight = InFlight(&node.in_flight);
            let what = &*call.method;
            let reply = match (sent, rx.await) {
                // The line's failure, named for this call.
                (true, Ok(reply)) => reply.map_err(|rec| ErrorRecord {
                    function: what.to_string(),
                    ..rec
                }),
                _ => Err(node.failure(what, "the line of calls to its actor closed")),
            };
            node.took(&reply, loans);
            node.results(what, call.num_returns, reply?).await
        })
    }
}

/// A line's stream: opened, then each reply handed to its call, until
/// the stream ends or breaks, or the node leaves the cluster; then the
/// calls still waiting, and any sent later, fail.
async fn read_line(
    node: Arc<RemoteNode>,
    mut sent: mpsc::UnboundedReceiver<ActorCallRequest>,
    waiting: Arc<Waiting>,
) {
    const WHAT: &str = "a line of actor calls";
    let ended: Result<std::convert::Infallible, ErrorRecord> = async {
        let s = &node.shared;
        let mut client = s
            .client(&node.address)
            .map_err(|e| node.failure(WHAT, &e))?;
        let requests = futures_util::stream::poll_fn(move |cx| sent.poll_recv(cx));
        let opened = client.actor_calls(s.request_to(&node.id, requests));
        let mut replies = node.ask(WHAT, opened).await?;
        loop {
            let next = tokio::select! {
                m = replies.message() => m,
                () = node.gone() => return Err(node.failure(WHAT, "it left the cluster")),
            };
            let Some(r) = next.map_err(|status| node.refused(WHAT, &status))? else {
                return Err(node.failure(WHAT, "it closed the line"));
            };
            let to = TaskId::from_slice(&r.task).and_then(|t| lock(&waiting).as_mut()?.remove(&t));
            if let Some(to) = to {
                let reply = r.reply.ok_or_else(|| node.failure(WHAT, "an empty reply"));
                let _ = to.send(reply);
            }
        }
    }
    .await;
    let Err(rec) = ended;
    for (_, to) in lock(&waiting).take().into_iter().flatten() {
        let _ = to.send(Err(rec.clone()));
    }
}

/// Locks `m`, whatever a panic left in it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A node's load per CPU: the calls this node placed there (`own`), or
/// the calls it said it runs for every caller (`said`, `age` ms ago), if
/// it said so lately and that is more.
fn per_cpu(own: usize, said: usize, age: u64, cpus: usize) -> f64 {
    let said = if age <= REPORT_FRESH_MS { said } else { 0 };
    own.max(said) as f64 / cpus.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_busy_with_others_calls_counts_as_loaded_while_its_report_is_fresh() {
        assert_eq!(per_cpu(2, 0, 0, 2), 1.0, "its own calls there");
        assert_eq!(per_cpu(2, 8, 10, 2), 4.0, "the node runs others' calls too");
        assert_eq!(per_cpu(2, 8, REPORT_FRESH_MS + 1, 2), 1.0, "an old report");
        assert_eq!(per_cpu(6, 1, 0, 2), 3.0, "calls not started there yet");
        assert_eq!(per_cpu(1, 0, 0, 0), 1.0, "no CPUs said: one");
    }
}
