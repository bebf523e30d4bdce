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

pub mod etcd;
mod names;
pub mod place;
mod pull;
pub(crate) mod rpc;

use std::future::Future;
use std::pin::Pin;

/// The prefix of every node's key.
pub const NODES_PREFIX: &str = "/wray/nodes/";
/// The key naming the head node, held under the head's lease.
pub const HEAD_KEY: &str = "/wray/head";
/// The prefix of named actors' keys (`/wray/names/<name>`), each held
/// under the lease of the node that made the actor.
pub const NAMES_PREFIX: &str = "/wray/names/";

/// A future, boxed (the trait stays object-safe).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A live member: its id and the record it registered.
pub type Member = (String, Vec<u8>);

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

    /// Resolves when this node has lost its membership (its lease expired:
    /// it was cut off, or stopped, for longer than the lease's time to
    /// live). The node must stop: the others count it dead.
    fn lost(&self) -> BoxFuture<'_, ()>;
}
