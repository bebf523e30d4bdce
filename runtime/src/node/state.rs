//! What the node's handlers share ([`NodeState`]).

use crate::actor::registry::Actors;
use crate::api::object_ref::ObjectRef;
use crate::node::jobs;
use crate::node::logs::LogStore;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use wray_abi::ObjectId;

/// Largest JSON body.
pub(super) const MAX_JSON: usize = 64 << 10;
/// Largest body of a request naming objects by the list (about 200,000).
pub(super) const MAX_BATCH: usize = 16 << 20;

/// Uploads being read, and waiting for their turn.
pub(crate) struct Uploads {
    pub(super) turns: tokio::sync::Semaphore,
    pub reading: AtomicUsize,
    pub waiting: AtomicUsize,
}

/// What the handlers share.
pub(crate) struct NodeState {
    /// Its id: in a cluster, the one it is registered under.
    pub node_id: String,
    /// Its membership of a cluster, if it joined one.
    pub membership: Option<Arc<dyn crate::cluster::Membership>>,
    /// Its side of the cluster (the service other nodes call, placement).
    pub cluster: Option<Arc<crate::cluster::place::Cluster>>,
    pub actors: Arc<Actors>,
    pub handle: tokio::runtime::Handle,
    pub logs: Arc<LogStore>,
    pub jobs: Arc<jobs::Jobs>,
    /// In a cluster, the records of every node's jobs.
    pub cluster_jobs: Option<crate::node::cluster_jobs::ClusterJobs>,
    /// In a cluster, the records of the actors it made.
    pub cluster_actors: Option<crate::node::cluster_actors::ClusterActors>,
    pub addr: SocketAddr,
    pub(super) token: Option<String>,
    /// `Host` header values that name this node; `None` when it listens on
    /// every address (it then requires a token, and any name may reach it).
    pub(super) hosts: Option<Vec<String>>,
    /// The last tasks/s sample: (when, tasks ended by then, rate).
    pub rate: std::sync::Mutex<(Instant, u64, f64)>,
    pub uploads: Uploads,
    /// Objects made for HTTP clients (`POST /api/tasks`, `/api/objects`),
    /// held until a client deletes them or the node ends.
    pub held: Mutex<HashMap<ObjectId, ObjectRef>>,
}

/// Most objects the node holds for HTTP clients at once.
pub(super) const MAX_HELD: usize = 100_000;
