//! What nodes say to each other, over gRPC (`proto/wray.proto`): a call
//! placed on another node (`Run`), a module's bytes once per node
//! (`Module`); an object's bytes go on a connection of their own
//! (`pull.rs`).
//!
//! Values up to [`INLINE_MAX`] travel inside the call that carries them;
//! larger ones are *lent* by the node that holds them ([`Lent`], named by
//! digest) and pulled from it directly, checked against their
//! digest on arrival. A value holding references travels inline, with
//! the objects it refers to ([`contained`]), which the receiver
//! keeps under their ids while the call or its results hold them.
//! Nothing goes through the head or etcd.

use crate::actor::registry::Actors;
use crate::exec::env::FORWARDED_JOB;
use crate::exec::module::Module;
use crate::exec::request::{MAX_RETURNS, Submission};
use crate::objects::arg::{TaskArg, contained, travels};
use crate::objects::blob::{Blob, Encoding};
use crate::objects::held::HeldRefs;
use crate::objects::read::read;
use crate::objects::store::Resolved;
use crate::output::{self, OutputSink, OutputSource, SourceKind};
use dashmap::DashMap;
use futures_util::stream::BoxStream;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::transport::{Channel, Endpoint};
use tonic::{Request, Response, Status};
use wray_abi::wire::Options;
use wray_abi::{ActorId, ObjectId};

/// The code `tonic-prost-build` generates from `proto/wray.proto`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub(crate) mod proto {
    tonic::include_proto!("wray.cluster.v1");
}

use proto::node_client::NodeClient;
use proto::node_server::{Node as NodeRpc, NodeServer};
use proto::{
    ActorCallReply, ActorCallRequest, ActorCreateReply, ActorCreateRequest, ActorKillReply,
    ActorKillRequest, AskReply, AskRequest, Contained, Link, LoadRequest, ModuleReply,
    ModuleRequest, NodeLoad, Outcome, Output, Remote, RunReply, RunRequest, Value, outcome, value,
};

/// Values up to this size travel inline, inside the message that carries
/// them.
pub(crate) const INLINE_MAX: usize = 1 << 20;
/// Inline values of one message together stay under this; further ones
/// are lent.
pub(crate) const INLINE_TOTAL: usize = 8 << 20;
/// The largest message either side accepts.
const MAX_MESSAGE: usize = 16 << 20;
/// How long a result kept for a pull waits for it.
const PARKED_FOR: Duration = Duration::from_secs(60);

/// Objects this node lets others pull, by digest: the large arguments of
/// calls it placed elsewhere (while those run) and the large results of
/// calls it ran for others (until pulled, or [`PARKED_FOR`]).
#[derive(Default)]
pub(crate) struct Lent(Mutex<HashMap<[u8; 32], Loan>>);

struct Loan {
    blob: Arc<Blob>,
    /// Calls in flight that lent it.
    holds: usize,
    /// For a parked result: when it is dropped unpulled.
    expires: Option<Instant>,
}

impl Lent {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Loan>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lends `blob` for one call in flight (see [`unlend`](Self::unlend)).
    pub fn lend(&self, blob: &Arc<Blob>) -> [u8; 32] {
        let digest = blob.digest().0;
        self.lock()
            .entry(digest)
            .or_insert_with(|| Loan {
                blob: blob.clone(),
                holds: 0,
                expires: None,
            })
            .holds += 1;
        digest
    }

    /// Ends one call's loan of each of `digests`.
    pub fn unlend(&self, digests: &[[u8; 32]]) {
        let mut map = self.lock();
        for d in digests {
            if let Some(loan) = map.get_mut(d) {
                loan.holds = loan.holds.saturating_sub(1);
                if loan.holds == 0 && loan.expires.is_none() {
                    map.remove(d);
                }
            }
        }
    }

    /// Drops the parked results nobody pulled in time.
    pub fn sweep(&self) {
        let now = Instant::now();
        self.lock()
            .retain(|_, l| l.holds > 0 || l.expires.is_none_or(|e| e > now));
    }

    /// Keeps a result for one pull (see [`sweep`](Self::sweep)).
    pub fn park(&self, blob: &Arc<Blob>) -> [u8; 32] {
        self.park_until(blob, Instant::now() + PARKED_FOR)
    }

    fn park_until(&self, blob: &Arc<Blob>, until: Instant) -> [u8; 32] {
        let mut map = self.lock();
        let digest = blob.digest().0;
        let loan = map.entry(digest).or_insert_with(|| Loan {
            blob: blob.clone(),
            holds: 0,
            expires: None,
        });
        loan.expires = Some(until);
        digest
    }

    /// The blob lent under `digest`; a parked one is let go when
    /// `release` (its one pull).
    fn take(&self, digest: &[u8; 32], release: bool) -> Option<Arc<Blob>> {
        let mut map = self.lock();
        let loan = map.get_mut(digest)?;
        let blob = loan.blob.clone();
        if release && loan.expires.is_some() {
            loan.expires = None;
            if loan.holds == 0 {
                map.remove(digest);
            }
        }
        Some(blob)
    }

    /// How many objects are lent now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }
}

/// Ends a call's loans when it ends, however it ends.
pub(crate) struct Loans {
    shared: Arc<Shared>,
    digests: Vec<[u8; 32]>,
}

impl Loans {
    /// The objects lent.
    pub fn digests(&self) -> &[[u8; 32]] {
        &self.digests
    }
}

impl Drop for Loans {
    fn drop(&mut self) {
        self.shared.lent.unlend(&self.digests);
    }
}

/// What a node's cluster side shares: its identity, the runtime, the
/// objects it lends and its connections to the others.
pub(crate) struct Shared {
    /// This node's id.
    pub id: String,
    /// The address other nodes reach this one's RPC service at.
    pub address: String,
    pub actors: Arc<Actors>,
    pub lent: Lent,
    channels: DashMap<String, Channel>,
    /// Objects being pulled, one pull per digest.
    pulling: Pulling,
    /// Modules being fetched, one fetch per digest.
    fetching: DashMap<ObjectId, Arc<tokio::sync::Mutex<()>>>,
    /// The secret every node of the cluster presents (none: nodes on
    /// loopback only).
    token: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    /// Counts the jobs of calls placed here.
    forwarded: AtomicU64,
    /// The actors other nodes placed here, by their id here.
    hosted: DashMap<ActorId, Hosted>,
    /// The large objects this node pulled, kept for reuse.
    pub copies: super::copies::Copies,
    /// Which nodes took the objects this node lent.
    pub holders: super::copies::Holders,
    /// Objects this node pulled.
    pub pulled: AtomicU64,
    /// Pulls it served.
    pub served: AtomicU64,
    /// TLS to and from other nodes, if the cluster uses it.
    pub tls: Option<Arc<super::tls::Tls>>,
    /// What answers other nodes' requests of this node's API, once the
    /// node set it.
    pub desk: std::sync::OnceLock<std::sync::Weak<dyn super::Desk>>,
}

/// The job of a call another node placed here, while it runs: when it
/// ends, its output stops being collected, and the actors it left and
/// its links go (as a driver's when it ends). An actor's job is kept
/// once the actor is made: it ends when the actor is killed.
struct ForwardedJob<'a> {
    s: &'a Shared,
    job: Option<u64>,
}

impl ForwardedJob<'_> {
    /// Keeps the job past this guard; its number.
    fn keep(mut self) -> u64 {
        self.job.take().expect("kept once")
    }
}

impl Drop for ForwardedJob<'_> {
    fn drop(&mut self) {
        if let Some(job) = self.job {
            end_forwarded_job(&self.s.actors, job);
        }
    }
}

/// The pulls in progress, by digest: a turn each.
type Pulling = DashMap<[u8; 32], Arc<tokio::sync::Mutex<()>>>;

/// The turn of the one pull of a digest; its entry goes with the last.
struct OnePull<'a> {
    pulls: &'a Pulling,
    digest: [u8; 32],
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for OnePull<'_> {
    fn drop(&mut self) {
        // Only the map and this turn hold it: nobody waits.
        self.pulls
            .remove_if(&self.digest, |_, turn| Arc::strong_count(turn) <= 2);
    }
}

/// The results of a call placed here until its reply is made: if the
/// request is dropped first (its caller gave up: the call cancelled
/// there, or that node gone), the call making them (and what it
/// started) is cancelled, and they are released.
struct Answer<'a> {
    s: &'a Arc<Shared>,
    ids: Vec<ObjectId>,
    answered: bool,
}

impl Answer<'_> {
    /// The reply: the results (released once read), and the output
    /// `collect` kept meanwhile, if any.
    async fn reply(mut self, collect: Option<&Collect>) -> RunReply {
        let mut reply = reply_with(self.s, &self.ids).await;
        self.answered = true;
        self.s.actors.env.objects.release_all(&self.ids);
        reply.output = collect.map(Collect::take).unwrap_or_default();
        reply
    }
}

impl Drop for Answer<'_> {
    fn drop(&mut self) {
        if !self.answered {
            if let Some(id) = self.ids.first() {
                crate::task::table::cancel(&self.s.actors.tasks, id, true);
            }
            self.s.actors.env.objects.release_all(&self.ids);
        }
    }
}

/// Ends the job of a call or actor another node placed here: its output
/// is no longer collected, and its actors and links go.
fn end_forwarded_job(actors: &Arc<Actors>, job: u64) {
    actors.env.events.stand_for(job, 0);
    actors.env.diverted.remove(&job);
    actors.env.links.end_job(job);
    if actors.registry.has_forwarded_actors(job) {
        let actors = actors.clone();
        let tokio = actors.env.spawner.clone();
        tokio.spawn(async move { crate::actor::actors::end_job(&actors, job).await });
    }
}

/// An actor another node placed here: the job it runs under, and its
/// output, sent back with its calls' results.
struct Hosted {
    job: u64,
    collect: Arc<Collect>,
}

/// The metadata key carrying the cluster token.
const TOKEN_KEY: &str = "x-wray-cluster-token";
/// The metadata naming the node a request is for: its id, which is its
/// incarnation (ids are never reused), so a node that took the address
/// of one that left refuses what was meant for that one.
const TO_KEY: &str = "x-wray-to-node";

impl Shared {
    pub fn new(
        id: String,
        address: String,
        actors: Arc<Actors>,
        token: Option<&str>,
        tls: Option<Arc<super::tls::Tls>>,
    ) -> Result<Shared, String> {
        let token = token
            .map(|t| {
                t.parse()
                    .map_err(|_| "the cluster token must be printable ASCII".to_string())
            })
            .transpose()?;
        // Copies of others' objects may take a quarter of the store
        // (memory pressure drops them first).
        let copies = super::copies::Copies::new(actors.env.objects.memory_limit() / 4);
        Ok(Shared {
            token,
            tls,
            copies,
            holders: Default::default(),
            pulled: AtomicU64::new(0),
            served: AtomicU64::new(0),
            id,
            address,
            actors,
            lent: Lent::default(),
            channels: DashMap::new(),
            fetching: DashMap::new(),
            pulling: DashMap::new(),
            forwarded: AtomicU64::new(1),
            hosted: DashMap::new(),
            desk: std::sync::OnceLock::new(),
        })
    }

    /// Options of a call or actor another node placed here, which runs
    /// here.
    fn options_here(&self, bytes: &[u8]) -> Result<Options, Status> {
        let mut options = Options::from_bytes(bytes)
            .map_err(|e| Status::invalid_argument(format!("bad options: {e}")))?;
        options.node = Some(self.id.clone());
        options.spread = None;
        Ok(options)
    }

    /// Sets up `job`, standing here for the program of a call or actor
    /// another node placed here (its job `program`, under which the calls
    /// it makes here are listed): the modules that program links (fetched
    /// from `origin`), and its output collected to be sent back.
    async fn enter_job(
        &self,
        job: u64,
        program: u64,
        links: &[Link],
        origin: &str,
    ) -> Result<Arc<Collect>, Status> {
        let env = &self.actors.env;
        env.events.stand_for(job, program);
        for link in links {
            let id = id_of(&link.module, "a module digest")?;
            let linked = self
                .module(id, &link.name, origin)
                .await
                .map_err(Status::unavailable)?;
            env.links.link(job, &link.name, linked);
        }
        let collect = Arc::new(Collect {
            next: env.sink.clone(),
            node: self.id.clone(),
            kept: Mutex::new((Vec::new(), 0)),
        });
        env.diverted.insert(job, collect.clone());
        Ok(collect)
    }

    /// The submission of a call (or an actor) another node placed here,
    /// for `job`.
    fn placed(
        &self,
        function: Arc<str>,
        (args, held): Received,
        num_returns: u32,
        options: Options,
        depth: u32,
        job: u64,
    ) -> Submission {
        Submission {
            function,
            args,
            _held: held,
            num_returns,
            options,
            parent: None,
            depth: depth.max(1),
            job,
            // Checked by the node that placed it.
            checked: true,
        }
    }

    /// The results `ids` of a call placed here, to answer with.
    fn answer(self: &Arc<Self>, ids: Vec<ObjectId>) -> Answer<'_> {
        Answer {
            s: self,
            ids,
            answered: false,
        }
    }

    /// Arguments sent by another node, their bytes here, and the objects
    /// they refer to (`contained`), kept here and held for the call.
    async fn receive_args(
        &self,
        contained: Vec<Contained>,
        values: Vec<Value>,
    ) -> Result<Received, Status> {
        let mut held = HeldRefs::new(&self.actors.env.objects);
        self.receive_contained(contained, &mut held, false)
            .await
            .map_err(Status::unavailable)?;
        let mut args = Vec::with_capacity(values.len());
        for v in values {
            args.push(TaskArg::Value(
                self.receive(v, false).await.map_err(Status::unavailable)?,
            ));
        }
        Ok((args, held))
    }

    /// A call of an actor that came on a line, sent to the actor's
    /// mailbox: its results' ids, where its output goes (for an actor
    /// placed here) and the actor.
    async fn take_call(
        &self,
        req: ActorCallRequest,
    ) -> Result<(Vec<ObjectId>, Option<Arc<Collect>>, ActorId), Status> {
        let actor = ActorId::from_slice(&req.actor)
            .ok_or_else(|| Status::invalid_argument("an actor id is 16 bytes"))?;
        // An actor placed here (its output goes back), or one of this
        // node's own whose handle travelled (its output stays with its
        // job here); a dead one fails the call.
        let (job, collect) = match self.hosted.get(&actor) {
            Some(h) => (h.job, Some(h.collect.clone())),
            None => (self.actors.registry.get(&actor).map_or(0, |a| a.job), None),
        };
        if req.num_returns > MAX_RETURNS {
            return Err(Status::invalid_argument("too many return values"));
        }
        let args = self.receive_args(req.contained, req.args).await?;
        let (method, n) = (req.method.as_str(), req.num_returns);
        let sub = self.placed(method.into(), args, n, Options::default(), req.depth, job);
        let ids = crate::actor::actors::call(&self.actors, actor, method, sub);
        Ok((ids, collect, actor))
    }

    /// Kills the actors node `node` placed here: it left the cluster, so
    /// nobody can call them any more.
    pub fn forget_node(&self, node: &str) {
        let Ok(n) = node.parse::<u64>() else { return };
        let orphans: Vec<ActorId> = self
            .hosted
            .iter()
            .filter(|h| (h.job & !FORWARDED_JOB) >> 32 == n)
            .map(|h| *h.key())
            .collect();
        for id in orphans {
            crate::actor::actors::kill(&self.actors, &id, false);
            if let Some((_, hosted)) = self.hosted.remove(&id) {
                end_forwarded_job(&self.actors, hosted.job);
            }
        }
    }

    /// A job of its own for a call node `caller` placed here (see
    /// [`FORWARDED_JOB`]).
    fn forwarded_job(&self, caller: u32) -> u64 {
        let n = self.forwarded.fetch_add(1, Ordering::Relaxed) & 0xffff_ffff;
        FORWARDED_JOB | (u64::from(caller & 0x7fff_ffff) << 32) | n
    }

    /// A request to another node, with the cluster token.
    pub fn request<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        if let Some(t) = &self.token {
            r.metadata_mut().insert(TOKEN_KEY, t.clone());
        }
        r
    }

    /// [`request`](Self::request) for node `node` only: another node that
    /// answers at its address refuses it.
    pub fn request_to<T>(&self, node: &str, message: T) -> Request<T> {
        let mut r = self.request(message);
        if let Ok(v) = node.parse() {
            r.metadata_mut().insert(TO_KEY, v);
        }
        r
    }

    /// The cluster token this node presents, if it has one.
    pub(super) fn token(&self) -> Option<&[u8]> {
        self.token.as_ref().map(|t| t.as_bytes())
    }

    /// Whether `got` is this cluster's token (anything is, without one).
    fn token_ok(&self, got: Option<&[u8]>) -> bool {
        let Some(want) = &self.token else {
            return true;
        };
        got.is_some_and(|g| {
            let w = want.as_bytes();
            // Compared in time independent of where they differ.
            g.len() == w.len() && g.iter().zip(w).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
        })
    }

    /// Refuses a request without this cluster's token, or, if this node
    /// talks TLS, one that did not come over TLS.
    fn check<T>(&self, r: &Request<T>) -> Result<(), Status> {
        let over_tls = r
            .extensions()
            .get::<super::pull::OverTls>()
            .is_some_and(|t| t.0);
        if self.tls.is_some() && !over_tls {
            return Err(Status::unauthenticated(
                "this node talks to other nodes over TLS only: every node of a cluster needs \
                 the same --tls-cert/--tls-key/--tls-ca",
            ));
        }
        let got = r.metadata().get(TOKEN_KEY).map(|v| v.as_bytes());
        if !self.token_ok(got) {
            return Err(Status::unauthenticated(
                "this node serves only nodes of its cluster (a wrong or missing cluster token)",
            ));
        }
        addressed_to(r, &self.id)
    }

    /// A client of the node at `address` (one connection per node, made
    /// on first use and kept).
    pub fn client(&self, address: &str) -> Result<NodeClient<Channel>, String> {
        let channel = match self.channels.get(address) {
            Some(c) => c.clone(),
            None => {
                let endpoint = Endpoint::from_shared(format!("http://{address}"))
                    .map_err(|e| format!("bad node address {address}: {e}"))?
                    .tcp_nodelay(true)
                    .connect_timeout(Duration::from_secs(5))
                    .initial_stream_window_size(Some(8 << 20))
                    .initial_connection_window_size(Some(16 << 20));
                let c = match &self.tls {
                    Some(tls) => {
                        endpoint.connect_with_connector_lazy(super::tls::GrpcConnector(tls.clone()))
                    }
                    None => endpoint.connect_lazy(),
                };
                self.channels.insert(address.to_string(), c.clone());
                c
            }
        };
        Ok(NodeClient::new(channel)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE))
    }

    /// A value to send: inline if small (and `inline` has room), else lent
    /// for a call in flight or parked for a result (`large`), for the
    /// receiver to pull; `to` is the node it goes to (it is not named as a
    /// copy). A value holding references always travels inline: its
    /// references name the objects that travel with it ([`contained`]).
    pub fn send(
        self: &Arc<Self>,
        blob: &Arc<Blob>,
        bytes: &crate::objects::blob::Bytes,
        to: &str,
        inline: &mut usize,
        large: Large<'_>,
    ) -> Value {
        let encoding = blob.encoding() as u32;
        let refs = blob
            .refs()
            .iter()
            .map(|id| bytes::Bytes::copy_from_slice(&id.0))
            .collect::<Vec<_>>();
        let fits = bytes.len() <= INLINE_MAX && *inline + bytes.len() <= INLINE_TOTAL;
        if fits || !refs.is_empty() {
            *inline += bytes.len();
            return Value {
                r#where: Some(value::Where::Inline(shared_bytes(bytes.clone()))),
                encoding,
                refs,
            };
        }
        let (digest, copies) = match large {
            Large::Lend(loans) => {
                let digest = self.lent.lend(blob);
                loans
                    .get_or_insert_with(|| Loans {
                        shared: self.clone(),
                        digests: Vec::new(),
                    })
                    .digests
                    .push(digest);
                (digest, self.holders.of(&digest, to))
            }
            Large::Park => (self.lent.park(blob), Vec::new()),
        };
        Value {
            r#where: Some(value::Where::Remote(Remote {
                digest: bytes::Bytes::copy_from_slice(&digest),
                len: bytes.len() as u64,
                holder: self.address.clone(),
                copies,
            })),
            encoding,
            refs,
        }
    }

    /// Objects sent with a message ([`contained`]), kept
    /// here under their ids, each held once in `held`; `release`: large
    /// ones are results parked for this one pull.
    pub async fn receive_contained(
        &self,
        contained: Vec<Contained>,
        held: &mut HeldRefs,
        release: bool,
    ) -> Result<(), String> {
        let objects = &self.actors.env.objects;
        for c in contained {
            let id = ObjectId::from_slice(&c.id).ok_or("an object id is not 32 bytes")?;
            let value = c.value.ok_or("an object with no value")?;
            let blob = self.receive(value, release).await?;
            // Each refers only to objects that came before it, kept now.
            objects.put_as(id, blob);
            held.adopt(id);
        }
        Ok(())
    }

    /// A received value, its bytes here: copied from the message, or
    /// pulled from the node that lends it (`release`: a result parked for
    /// this one pull).
    pub async fn receive(&self, v: Value, release: bool) -> Result<Arc<Blob>, String> {
        let objects = &self.actors.env.objects;
        let encoding = Encoding::from_u8(u8::try_from(v.encoding).unwrap_or(0));
        let refs = v
            .refs
            .iter()
            .map(|r| ObjectId::from_slice(r).ok_or("a reference is not 32 bytes"))
            .collect::<Result<Vec<_>, _>>()?;
        let blob = match v.r#where {
            Some(value::Where::Inline(bytes)) => {
                objects
                    .admit(bytes.len())
                    .await
                    .map_err(|e| format!("no room for a value: {e}"))?;
                objects.blob(&bytes, refs)
            }
            Some(value::Where::Remote(_)) if !refs.is_empty() => {
                return Err("a value holding references travels inline".into());
            }
            Some(value::Where::Remote(r)) => self.pull(&r, release).await?,
            None => return Err("a value with no bytes".into()),
        };
        blob.mark(encoding);
        Ok(blob)
    }

    /// Pulls the object `r` names from its holder and checks
    /// it against its digest.
    async fn pull(&self, r: &Remote, release: bool) -> Result<Arc<Blob>, String> {
        let digest: [u8; 32] = r.digest[..]
            .try_into()
            .map_err(|_| "a digest is not 32 bytes".to_string())?;
        let len = usize::try_from(r.len).map_err(|_| "an object too large".to_string())?;
        let objects = &self.actors.env.objects;
        // Bytes this node holds already (the same large argument sent to
        // many calls here at once, or kept from an earlier call) are not
        // pulled again. (A result parked for this pull is pulled, which
        // lets its holder drop it.)
        let held = || {
            self.copies
                .get(&digest)
                .or_else(|| objects.with_digest(&ObjectId(digest)))
                .filter(|b| b.len() == len)
        };
        let _one_pull = match release {
            true => None,
            false => {
                if let Some(b) = held() {
                    return Ok(b);
                }
                let turn = self.pulling.entry(digest).or_default().clone();
                let guard = turn.lock_owned().await;
                if let Some(b) = held() {
                    return Ok(b);
                }
                Some(OnePull {
                    pulls: &self.pulling,
                    digest,
                    _turn: guard,
                })
            }
        };
        let max = self.actors.env.config.max_object_size;
        if len > max {
            return Err(format!(
                "object of {len} bytes exceeds the limit of {max} bytes"
            ));
        }
        objects
            .admit(len)
            .await
            .map_err(|e| format!("no room for an object of {len} bytes: {e}"))?;
        // From a node that took a copy before, if one still serves it (a
        // large object sent to many nodes spreads from node to node; one
        // picked by this node's address, so they spread over the copies),
        // else from its holder.
        let mut copies: Vec<&str> = r
            .copies
            .iter()
            .map(String::as_str)
            .filter(|c| *c != self.address)
            .collect();
        if !copies.is_empty() {
            let start = self.address.bytes().map(usize::from).sum::<usize>() % copies.len();
            copies.rotate_left(start);
        }
        let mut pulled = None;
        for from in copies {
            // A copy that is gone (memory was short there), or whose node
            // is: the next.
            if let Ok(b) = self.pull_from(from, digest, len, release).await {
                pulled = Some(b);
                break;
            }
        }
        let blob = match pulled {
            Some(b) => b,
            None => self.pull_from(&r.holder, digest, len, release).await?,
        };
        let blob = objects.intern(Arc::new(blob));
        self.pulled.fetch_add(1, Ordering::Relaxed);
        if !release {
            // An argument: kept for the next call here that takes it, and
            // for other nodes to pull from here.
            self.copies.keep(&blob);
        }
        Ok(blob)
    }

    /// Pulls the object `digest` (of `len` bytes) from `from` and checks
    /// it against its digest. The bytes go from the socket straight into
    /// the object's memory (on a thread: the reads block), digested as
    /// they come.
    async fn pull_from(
        &self,
        from: &str,
        digest: [u8; 32],
        len: usize,
        release: bool,
    ) -> Result<Blob, String> {
        let mut filling = self.actors.env.objects.filling(len, None);
        let (holder, token) = (from.to_string(), self.token().map(<[u8]>::to_vec));
        let tls = self.tls.clone();
        let blob = tokio::task::spawn_blocking(move || {
            let (tls, token) = (tls.as_deref(), token.as_deref());
            let digested =
                super::pull::pull_into(&holder, tls, token, &digest, release, &mut filling)?;
            filling
                .finish_digested(Vec::new(), digested)
                .ok_or_else(|| "a pull ended short".to_string())
        })
        .await
        .map_err(|e| format!("pulling an object: {e}"))??;
        if blob.digest().0 != digest {
            return Err(format!(
                "the bytes pulled from {from} do not match their digest"
            ));
        }
        Ok(blob)
    }

    /// The module with digest `id`: loaded here, or fetched from `origin`
    /// (once, however many calls ask at once) and compiled.
    pub(super) async fn module(
        &self,
        id: ObjectId,
        name: &str,
        origin: &str,
    ) -> Result<Module, String> {
        let env = &self.actors.env;
        if let Some(m) = env.modules.get(&id) {
            return Ok(m);
        }
        let turn = self.fetching.entry(id).or_default().clone();
        let _one_fetch = turn.lock().await;
        if let Some(m) = env.modules.get(&id) {
            return Ok(m);
        }
        let reply = self
            .client(origin)?
            .module(self.request(ModuleRequest {
                digest: bytes::Bytes::copy_from_slice(&id.0),
            }))
            .await
            .map_err(|e| format!("fetching module {name} from {origin}: {}", e.message()))?
            .into_inner();
        if blake3::hash(&reply.wasm).as_bytes() != &id.0 {
            return Err(format!(
                "module {name} from {origin} does not match its digest"
            ));
        }
        let actors = self.actors.clone();
        let name = name.to_string();
        let loaded = tokio::task::spawn_blocking(move || {
            let env = &actors.env;
            env.modules.load(&env.engines.tasks, &name, &reply.wasm)
        })
        .await
        .map_err(|e| format!("compiling a module: {e}"))?
        .map_err(|e| e.to_string());
        self.fetching.remove(&id);
        loaded
    }
}

/// Refuses request `r` if it is for another node than `me` (one that
/// left, whose address this node took).
fn addressed_to<T>(r: &Request<T>, me: &str) -> Result<(), Status> {
    match r.metadata().get(TO_KEY).map(|v| v.to_str()) {
        Some(Ok(to)) if to != me => Err(Status::failed_precondition(format!(
            "this is node {me}, not node {to}: that node is gone and this one took its address"
        ))),
        _ => Ok(()),
    }
}

/// A call's arguments as received, and the references held for it.
type Received = (Vec<TaskArg>, HeldRefs);

/// How a value too large to travel inline goes.
pub(crate) enum Large<'a> {
    /// Lent for a call in flight, until `loans` end.
    Lend(&'a mut Option<Loans>),
    /// Parked for one pull: a result.
    Park,
}

/// Bytes pinned in the object store, as `bytes::Bytes` (no copy).
fn shared_bytes(b: crate::objects::blob::Bytes) -> bytes::Bytes {
    struct Pinned(crate::objects::blob::Bytes);
    impl AsRef<[u8]> for Pinned {
        fn as_ref(&self) -> &[u8] {
            &self.0
        }
    }
    bytes::Bytes::from_owner(Pinned(b))
}

impl super::pull::Lender for Shared {
    fn token_ok(&self, got: Option<&[u8]>) -> bool {
        Shared::token_ok(self, got)
    }

    fn lent(&self, digest: &[u8; 32], release: bool) -> Option<Arc<Blob>> {
        let blob = self
            .lent
            .take(digest, release)
            .or_else(|| self.copies.get(digest))?;
        self.served.fetch_add(1, Ordering::Relaxed);
        Some(blob)
    }
}

/// The RPC service a node serves to the others.
pub(crate) struct Service(pub Arc<Shared>);

impl Service {
    /// The service, ready to add to a server.
    pub fn server(self) -> NodeServer<Service> {
        NodeServer::new(self)
            .max_decoding_message_size(MAX_MESSAGE)
            .max_encoding_message_size(MAX_MESSAGE)
    }
}

/// A request as it travels.
pub(super) fn ask_request(ask: &super::Ask) -> AskRequest {
    use proto::ask_request::What;
    let what = match ask {
        super::Ask::Job { job, op } => What::Job(proto::JobAsk {
            op: op.name().into(),
            job: *job,
            offset: match op {
                super::JobOp::Logs { offset } => *offset,
                _ => 0,
            },
        }),
        super::Ask::Actors { query } => What::Actors(proto::ListAsk {
            query: query.clone().into_iter().collect(),
        }),
        super::Ask::Tasks { query } => What::Tasks(proto::ListAsk {
            query: query.clone().into_iter().collect(),
        }),
        super::Ask::TaskSummary { query } => What::TaskSummary(proto::ListAsk {
            query: query.clone().into_iter().collect(),
        }),
        super::Ask::Kill {
            actor,
            allow_restart,
        } => What::Kill(proto::KillAsk {
            actor: *actor,
            allow_restart: *allow_restart,
        }),
    };
    AskRequest { what: Some(what) }
}

/// A request as it arrived.
fn ask_from(r: AskRequest) -> Result<super::Ask, Status> {
    use proto::ask_request::What;
    Ok(match r.what {
        Some(What::Job(j)) => super::Ask::Job {
            job: j.job,
            op: super::JobOp::parse(&j.op, j.offset)
                .ok_or_else(|| Status::invalid_argument(format!("no job request `{}`", j.op)))?,
        },
        Some(What::Actors(a)) => super::Ask::Actors {
            query: a.query.into_iter().collect(),
        },
        Some(What::Tasks(t)) => super::Ask::Tasks {
            query: t.query.into_iter().collect(),
        },
        Some(What::TaskSummary(t)) => super::Ask::TaskSummary {
            query: t.query.into_iter().collect(),
        },
        Some(What::Kill(k)) => super::Ask::Kill {
            actor: k.actor,
            allow_restart: k.allow_restart,
        },
        None => return Err(Status::invalid_argument("an empty request")),
    })
}

fn id_of(bytes: &[u8], what: &str) -> Result<ObjectId, Status> {
    let b: [u8; 32] = bytes
        .try_into()
        .map_err(|_| Status::invalid_argument(format!("{what} is not 32 bytes")))?;
    Ok(ObjectId(b))
}

#[tonic::async_trait]
impl NodeRpc for Service {
    async fn run(&self, request: Request<RunRequest>) -> Result<Response<RunReply>, Status> {
        let s = &self.0;
        s.check(&request)?;
        let req = request.into_inner();
        let id = id_of(&req.module, "a module digest")?;
        let module = s
            .module(id, &req.module_name, &req.origin)
            .await
            .map_err(Status::unavailable)?;
        let options = s.options_here(&req.options)?;
        let caller = wray_abi::TaskId::from_slice(&req.task)
            .ok_or_else(|| Status::invalid_argument("a task id is 16 bytes"))?;
        // It runs under a job of its own here, standing for its program's.
        let job = s.forwarded_job(caller.node());
        let _job = ForwardedJob { s, job: Some(job) };
        let collect = s.enter_job(job, req.job, &req.links, &req.origin).await?;
        if req.num_returns > MAX_RETURNS {
            return Err(Status::invalid_argument("too many return values"));
        }
        let args = s.receive_args(req.contained, req.args).await?;
        let sub = s.placed(
            req.function.into(),
            args,
            req.num_returns,
            options,
            req.depth,
            job,
        );
        let ids = crate::task::run::submit_task(&s.actors.tasks, module, sub);
        Ok(Response::new(s.answer(ids).reply(Some(&collect)).await))
    }

    async fn actor_create(
        &self,
        request: Request<ActorCreateRequest>,
    ) -> Result<Response<ActorCreateReply>, Status> {
        let s = &self.0;
        s.check(&request)?;
        let req = request.into_inner();
        let id = id_of(&req.module, "a module digest")?;
        let module = s
            .module(id, &req.module_name, &req.origin)
            .await
            .map_err(Status::unavailable)?;
        let mut options = s.options_here(&req.options)?;
        // Its name is registered on the node that placed it.
        options.name = None;
        let caller = ActorId::from_slice(&req.actor)
            .ok_or_else(|| Status::invalid_argument("an actor id is 16 bytes"))?;
        // It lives under a job of its own here, until it is killed.
        let job = s.forwarded_job(caller.node());
        let guard = ForwardedJob { s, job: Some(job) };
        let collect = s.enter_job(job, req.job, &req.links, &req.origin).await?;
        let args = s.receive_args(req.contained, req.args).await?;
        guard.keep();
        let function = format!("{}.new", req.type_name).into();
        let sub = s.placed(function, args, 1, options, req.depth, job);
        let creation = crate::actor::registry::Creation {
            module,
            type_name: req.type_name,
            sub,
            job,
            placed_for: Some(caller),
        };
        let actor = crate::actor::actors::create(&s.actors, creation);
        s.hosted.insert(actor, Hosted { job, collect });
        Ok(Response::new(ActorCreateReply {
            actor: bytes::Bytes::copy_from_slice(&actor.0),
        }))
    }

    type ActorCallsStream = BoxStream<'static, Result<ActorCallReply, Status>>;

    async fn actor_calls(
        &self,
        request: Request<tonic::Streaming<ActorCallRequest>>,
    ) -> Result<Response<Self::ActorCallsStream>, Status> {
        self.0.check(&request)?;
        let mut calls = request.into_inner();
        let s = self.0.clone();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            // Each call into its actor's mailbox before the next is read:
            // the line's order is the actor's.
            loop {
                let req = tokio::select! {
                    m = calls.message() => match m {
                        Ok(Some(req)) => req,
                        _ => return,
                    },
                    () = tx.closed() => return,
                };
                let task = req.task.clone();
                let (ids, collect, actor) = match s.take_call(req).await {
                    Ok(call) => call,
                    Err(status) => {
                        let _ = tx.send(Err(status));
                        return;
                    }
                };
                let (s, tx) = (s.clone(), tx.clone());
                tokio::spawn(async move {
                    let answer = s.answer(ids);
                    let mut reply = tokio::select! {
                        r = answer.reply(collect.as_deref()) => r,
                        // The line closed: the call is given up (and
                        // cancelled, as `Answer` goes).
                        () = tx.closed() => return,
                    };
                    reply.restarts = s.actors.registry.get(&actor).map_or(0, |a| a.restarts());
                    let reply = ActorCallReply {
                        task,
                        reply: Some(reply),
                    };
                    let _ = tx.send(Ok(reply));
                });
            }
        });
        let replies = futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx));
        Ok(Response::new(Box::pin(replies)))
    }

    async fn actor_kill(
        &self,
        request: Request<ActorKillRequest>,
    ) -> Result<Response<ActorKillReply>, Status> {
        let s = &self.0;
        s.check(&request)?;
        let req = request.into_inner();
        let actor = ActorId::from_slice(&req.actor)
            .ok_or_else(|| Status::invalid_argument("an actor id is 16 bytes"))?;
        crate::actor::actors::kill(&s.actors, &actor, req.allow_restart);
        if !req.allow_restart
            && let Some((_, hosted)) = s.hosted.remove(&actor)
        {
            end_forwarded_job(&s.actors, hosted.job);
        }
        Ok(Response::new(ActorKillReply {}))
    }

    async fn load(&self, request: Request<LoadRequest>) -> Result<Response<NodeLoad>, Status> {
        self.0.check(&request)?;
        Ok(Response::new(load_here(&self.0.actors)))
    }

    async fn ask(&self, request: Request<AskRequest>) -> Result<Response<AskReply>, Status> {
        self.0.check(&request)?;
        let ask = ask_from(request.into_inner())?;
        let desk = self.0.desk.get().and_then(std::sync::Weak::upgrade);
        let desk = desk.ok_or_else(|| Status::unavailable("this node answers no requests"))?;
        let (status, body) = desk.answer(ask).await;
        Ok(Response::new(AskReply {
            status: status.into(),
            body: body.into(),
        }))
    }

    async fn module(
        &self,
        request: Request<ModuleRequest>,
    ) -> Result<Response<ModuleReply>, Status> {
        self.0.check(&request)?;
        let id = id_of(&request.get_ref().digest, "a module digest")?;
        let module = self
            .0
            .actors
            .env
            .modules
            .get(&id)
            .ok_or_else(|| Status::not_found(format!("no module {id} here")))?;
        Ok(Response::new(ModuleReply {
            name: module.name().to_string(),
            wasm: bytes::Bytes::from_owner(module.bytes().clone()),
        }))
    }
}

/// This node's load now.
pub(crate) fn load_here(actors: &Actors) -> NodeLoad {
    let env = &actors.env;
    let counts = env.events.counts();
    let free_cpus = env.slots.free().0;
    NodeLoad {
        cpus_in_use: env.config.num_cpus.saturating_sub(free_cpus) as u32,
        pending: counts[0],
        running: counts[1],
        object_store_bytes: env.objects.stats().bytes.load(Ordering::Relaxed),
        rss_bytes: crate::config::rss_bytes(),
    }
}

/// The reply to a call this node ran: each result inline, or parked for
/// the caller to pull; or the call's error.
async fn reply_with(s: &Arc<Shared>, ids: &[ObjectId]) -> RunReply {
    let objects = &s.actors.env.objects;
    let mut results = Vec::with_capacity(ids.len());
    // The results holding references (their index and value): the
    // objects they refer to travel with them.
    let mut holding = Vec::new();
    let mut deterministic = true;
    let mut inline = 0usize;
    let error = |rec: &wray_abi::wire::ErrorRecord| Outcome {
        what: Some(outcome::What::Error(rec.encode().into())),
    };
    for id in ids {
        let Some(entry) = objects.get(id) else {
            let rec = wray_abi::wire::ErrorRecord::new(
                wray_abi::ErrorKind::ObjectLost,
                "",
                "the result went missing",
            );
            results.push(error(&rec));
            continue;
        };
        let outcome = match entry.resolved().await {
            Resolved::Failed(rec) => error(&rec),
            Resolved::Ready(blob) => {
                deterministic &= entry.lineage().is_none_or(|l| l.repeatable());
                let read = match read(objects, id, &entry, &blob).await {
                    Ok(bytes) => travels(&blob).map(|()| bytes),
                    Err(rec) => Err(rec),
                };
                match read {
                    Err(rec) => error(&rec),
                    Ok(bytes) => {
                        let v = s.send(&blob, &bytes, "", &mut inline, Large::Park);
                        if !blob.refs().is_empty() {
                            holding.push((results.len(), blob));
                        }
                        Outcome {
                            what: Some(outcome::What::Value(v)),
                        }
                    }
                }
            }
        };
        results.push(outcome);
    }
    let contained = match contained(objects, holding.iter().map(|(_, b)| b)).await {
        Ok(objects) => objects
            .into_iter()
            .map(|(id, blob, bytes)| Contained {
                id: bytes::Bytes::copy_from_slice(&id.0),
                value: Some(s.send(&blob, &bytes, "", &mut inline, Large::Park)),
            })
            .collect(),
        Err(rec) => {
            // The results holding references fail with it.
            for (i, _) in &holding {
                results[*i] = error(&rec);
            }
            Vec::new()
        }
    };
    let counts = s.actors.env.events.counts();
    RunReply {
        results,
        deterministic,
        output: Vec::new(),
        busy: counts[0] + counts[1],
        restarts: 0,
        contained,
    }
}

/// How much output of a call placed here travels back with its results.
const OUTPUT_BACK: usize = 1 << 20;

/// The output of a call another node placed here (and of what it started
/// here): kept to travel back with its results, and in this node's own
/// logs as the host's work.
struct Collect {
    next: Arc<dyn OutputSink>,
    node: String,
    kept: Mutex<(Vec<Output>, usize)>,
}

impl Collect {
    /// What was kept, taken (and the count of bytes started again).
    fn take(&self) -> Vec<Output> {
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.1 = 0;
        std::mem::take(&mut kept.0)
    }
}

impl OutputSink for Collect {
    fn write(&self, source: &OutputSource, stream: output::Stream, bytes: &[u8]) {
        let local = OutputSource {
            job: 0,
            ..source.clone()
        };
        self.next.write(&local, stream, bytes);
        let (id, actor) = match source.kind {
            SourceKind::Task(t) => (t.0, false),
            SourceKind::Actor(a) => (a.0, true),
            SourceKind::Driver => return,
        };
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        let (out, size) = &mut *kept;
        if *size > OUTPUT_BACK {
            return;
        }
        *size += bytes.len();
        let text = match *size > OUTPUT_BACK {
            false => bytes::Bytes::copy_from_slice(bytes),
            true => format!("[output past 1 MiB: see node {}'s logs]\n", self.node).into(),
        };
        out.push(Output {
            name: source.name.to_string(),
            id: bytes::Bytes::copy_from_slice(&id),
            actor,
            stderr: stream == output::Stream::Stderr,
            text,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::objects::store::{ObjectStore, StoreLimits};

    fn blob(store: &ObjectStore, fill: u8) -> Arc<Blob> {
        store.blob(&[fill; 100], Vec::new())
    }

    #[test]
    fn a_request_for_another_node_is_refused() {
        let mut r = Request::new(());
        assert!(addressed_to(&r, "7").is_ok(), "one for any node");
        r.metadata_mut().insert(TO_KEY, "7".parse().unwrap());
        assert!(addressed_to(&r, "7").is_ok());
        let refused = addressed_to(&r, "9").unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition);
        assert!(
            refused.message().contains("this is node 9, not node 7"),
            "{}",
            refused.message()
        );
    }

    #[test]
    fn a_loan_lasts_while_a_call_holds_it_and_a_parked_result_for_one_pull() {
        let store = ObjectStore::new(StoreLimits::unlimited());
        let lent = Lent::default();
        let (a, b) = (blob(&store, 1), blob(&store, 2));
        // Two calls lend the same argument: it stays until both end.
        let da = lent.lend(&a);
        assert_eq!(lent.lend(&a), da);
        lent.unlend(&[da]);
        assert!(lent.take(&da, false).is_some());
        lent.unlend(&[da]);
        assert!(lent.take(&da, false).is_none());
        assert_eq!(lent.len(), 0);
        // A parked result goes with its pull (that says so).
        let db = lent.park(&b);
        assert!(lent.take(&db, false).is_some(), "a pull that keeps it");
        assert!(lent.take(&db, true).is_some());
        assert!(lent.take(&db, true).is_none(), "gone after its pull");
        // Parked while lent: it stays until the loan ends too.
        let da = lent.lend(&a);
        lent.park(&a);
        assert!(lent.take(&da, true).is_some());
        assert!(lent.take(&da, false).is_some(), "still lent");
        lent.unlend(&[da]);
        assert_eq!(lent.len(), 0);
        // A result nobody pulled in time is swept; one still lent stays.
        let past = Instant::now() - Duration::from_secs(1);
        lent.park_until(&b, past);
        let da = lent.lend(&a);
        lent.park_until(&a, past);
        lent.sweep();
        assert!(lent.take(&db, false).is_none(), "expired");
        assert!(lent.take(&da, false).is_some(), "still lent");
        lent.unlend(&[da]);
    }
}
