//! Cluster membership: which nodes are alive, kept in etcd.
//!
//! Each node registers a record under `/wray/nodes/<id>`, tied to a lease
//! it keeps alive; a node that dies (or hangs) stops renewing it, so its
//! key disappears for everyone within the lease's time to live, as Ray's
//! GCS learns of a dead raylet. Nothing per task goes here: membership and
//! cluster metadata only (`docs/cluster.md`).
//!
//! [`Membership`] is the small seam the node sees; [`etcd`] implements it
//! on etcd's v3 API, so another store could replace it.

mod copies;
pub mod etcd;
mod modules;
mod names;
pub mod place;
mod pull;
pub(crate) mod rpc;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

/// The prefix of every node's key.
pub const NODES_PREFIX: &str = "/wray/nodes/";
/// The key naming the head node, held under the head's lease.
pub const HEAD_KEY: &str = "/wray/head";
/// The prefix of named actors' keys (`/wray/names/<name>`), each held
/// under the lease of the node that made the actor.
pub const NAMES_PREFIX: &str = "/wray/names/";

/// The prefix of jobs' records (`/wray/jobs/<n>`), which outlive the
/// node that ran them: the cluster's job history.
pub const JOBS_PREFIX: &str = "/wray/jobs/";
/// The key counting the cluster's jobs: each takes the next number.
pub const NEXT_JOB_KEY: &str = "/wray/next-job";
/// The prefix of actors' records (`/wray/actors/<node>:<number>`, kept
/// by the node that made each), which outlive their node.
pub const ACTORS_PREFIX: &str = "/wray/actors/";
/// The nodes that left whose actors' records are kept
/// (`/wray/departed/<node>`, written by the head), so that a listing reads
/// the records of those nodes only.
pub const DEPARTED_PREFIX: &str = "/wray/departed/";
/// The prefix of the nodes holding each module
/// (`/wray/modules/<digest>/<node>`, under each holder's lease).
pub const MODULES_PREFIX: &str = "/wray/modules/";

/// A future, boxed (the trait stays object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A key of the cluster's metadata and its value; a live member: its id
/// and the record it registered.
pub type Member = (String, Vec<u8>);

/// A request about a job, answered by the node that runs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobOp {
    /// The job and its calls by state.
    Get,
    /// Its log from a byte offset.
    Logs {
        /// The byte to read from.
        offset: u64,
    },
    /// Stop it.
    Stop,
    /// Forget it, once ended.
    Delete,
}

impl JobOp {
    /// Its name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            JobOp::Get => "get",
            JobOp::Logs { .. } => "logs",
            JobOp::Stop => "stop",
            JobOp::Delete => "delete",
        }
    }

    /// The op named `name` (with `offset` for logs).
    pub fn parse(name: &str, offset: u64) -> Option<JobOp> {
        Some(match name {
            "get" => JobOp::Get,
            "logs" => JobOp::Logs { offset },
            "stop" => JobOp::Stop,
            "delete" => JobOp::Delete,
            _ => return None,
        })
    }
}

/// A request of another node's HTTP API that this node answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// About job `job`, which this node runs.
    Job {
        /// The job's number.
        job: u64,
        /// What is asked.
        op: JobOp,
    },
    /// The actors this node made that match `query` (the state API's
    /// query parameters).
    Actors {
        /// `state` → `ALIVE`, `class` → `Counter`, say.
        query: std::collections::HashMap<String, String>,
    },
    /// The calls this node placed or ran that match `query` (the state
    /// API's query parameters), without those other nodes placed here.
    Tasks {
        /// `state` → `FAILED`, `offset` → `0`, `limit` → `100`, say.
        query: std::collections::HashMap<String, String>,
    },
    /// The summary by function of the calls [`Ask::Tasks`] lists.
    TaskSummary {
        /// The state API's query parameters (`job`, say).
        query: std::collections::HashMap<String, String>,
    },
    /// Kill actor number `actor` this node made.
    Kill {
        /// Its number on this node.
        actor: u64,
        /// Whether it may restart.
        allow_restart: bool,
    },
}

/// What answers other nodes' requests ([`Ask`]): the node's HTTP API, a
/// layer above this one.
pub trait Desk: Send + Sync {
    /// The HTTP status and JSON body of `ask`, answered here.
    fn answer(&self, ask: Ask) -> BoxFuture<'_, (u16, Vec<u8>)>;
}

/// The most writes [`Membership::write_all`] takes at once (etcd's
/// default `--max-txn-ops`).
pub const MAX_WRITES: usize = 128;

/// A node's membership of a cluster.
pub trait Membership: Send + Sync {
    /// This node's id in the cluster.
    fn id(&self) -> &str;

    /// Every live node: its id and the record it registered.
    fn members(&self) -> BoxFuture<'_, anyhow::Result<Vec<Member>>>;

    /// The id of the head node (the one that holds the head key), if one
    /// is elected now.
    fn head(&self) -> BoxFuture<'_, anyhow::Result<Option<String>>>;

    /// Claims `key` of the cluster's metadata for this node, holding
    /// `value`, if no node holds it: `None` once claimed, else the
    /// holder's value. A claimed key goes with this node's membership.
    fn claim(&self, key: String, value: Vec<u8>) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>>;

    /// The value of `key` of the cluster's metadata, if a node holds it.
    fn read(&self, key: String) -> BoxFuture<'_, anyhow::Result<Option<Vec<u8>>>>;

    /// Gives up `key` if it still holds `value` (this node's claim).
    fn release(&self, key: String, value: Vec<u8>) -> BoxFuture<'_, anyhow::Result<()>>;

    /// Takes the next number (from 1) of the counter `key`: no two
    /// callers anywhere get the same one.
    fn count(&self, key: String) -> BoxFuture<'_, anyhow::Result<u64>>;

    /// Writes `key` of the cluster's metadata: it outlives this node's
    /// membership.
    fn put(&self, key: String, value: Vec<u8>) -> BoxFuture<'_, anyhow::Result<()>>;

    /// Writes `new` to `key` if it still holds `old`; whether it did.
    fn replace(
        &self,
        key: String,
        old: Vec<u8>,
        new: Vec<u8>,
    ) -> BoxFuture<'_, anyhow::Result<bool>>;

    /// Removes `key` of the cluster's metadata.
    fn delete(&self, key: String) -> BoxFuture<'_, anyhow::Result<()>>;

    /// Writes each of `writes` (a value, or `None` to remove the key) in
    /// one request, all or none; at most [`MAX_WRITES`] of them.
    fn write_all(
        &self,
        writes: Vec<(String, Option<Vec<u8>>)>,
    ) -> BoxFuture<'_, anyhow::Result<()>>;

    /// Every key under `prefix` (without it) and its value, by key.
    fn list(&self, prefix: String) -> BoxFuture<'_, anyhow::Result<Vec<Member>>>;

    /// Follows changes of the member list: the value changes (a count)
    /// whenever a node may have joined or left, so a reader that marks it
    /// seen before reading the members misses none.
    fn member_changes(&self) -> tokio::sync::watch::Receiver<u64>;

    /// Whether this node is the cluster's head now, as far as it knows
    /// (it won the head key and has not lost its membership).
    fn leads(&self) -> bool;

    /// Resolves when this node has lost its membership (its lease expired:
    /// it was cut off, or stopped, for longer than the lease's time to
    /// live). The node must stop: the others count it dead.
    fn lost(&self) -> BoxFuture<'_, ()>;

    /// Leaves the cluster now (the node stops): its keys under its lease
    /// go at once, so the others drop it at once, not when the lease runs
    /// out. Best effort: what it cannot reach goes with the lease.
    fn leave(&self) -> BoxFuture<'_, ()>;
}
