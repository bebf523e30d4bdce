//! What the node's handlers share ([`NodeState`]).

use crate::actor::registry::Actors;
use crate::node::jobs;
use crate::node::logs::LogStore;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Instant;

/// Largest JSON body.
pub(super) const MAX_JSON: usize = 64 << 10;

/// Uploads being read, and waiting for their turn.
pub(crate) struct Uploads {
    pub(super) turns: tokio::sync::Semaphore,
    pub reading: AtomicUsize,
    pub waiting: AtomicUsize,
}

/// What the handlers share.
pub(crate) struct NodeState {
    pub actors: Arc<Actors>,
    pub handle: tokio::runtime::Handle,
    pub logs: Arc<LogStore>,
    pub jobs: jobs::Jobs,
    pub addr: SocketAddr,
    pub(super) token: Option<String>,
    /// `Host` header values that name this node; `None` when it listens on
    /// every address (it then requires a token, and any name may reach it).
    pub(super) hosts: Option<Vec<String>>,
    /// The last tasks/s sample: (when, tasks ended by then, rate).
    pub rate: std::sync::Mutex<(Instant, u64, f64)>,
    pub uploads: Uploads,
}
