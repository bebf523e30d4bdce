//! Calls placed on another node of a cluster: what the task layer asks of
//! the layer that knows the cluster ([`Placement`], registered on [`Env`]
//! by the cluster layer, which sits above it), and what it hands over
//! ([`Forward`]).
//!
//! [`Env`]: crate::exec::env::Env

use crate::exec::module::Module;
use crate::objects::arg::ArgValue;
use crate::objects::blob::Blob;
use crate::output::{OutputSource, Stream};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use wray_abi::TaskId;
use wray_abi::wire::{ErrorRecord, Options};

/// Where a call runs.
pub(crate) enum Place {
    /// On this node.
    Here,
    /// On another node.
    There(Arc<dyn Peer>),
    /// Nowhere: why (its options name a node that is not in the cluster).
    Nowhere(String),
}

/// The scheduler's view of the cluster: where a call should run now.
pub(crate) trait Placement: Send + Sync {
    /// Where a call with `options` runs, decided now (from this node's
    /// load and the other nodes'). `forwardable`: whether its arguments
    /// can travel (values holding references to objects of this node do
    /// not, yet).
    fn place(&self, options: &Options, forwardable: bool) -> Place;
}

/// Another node, to run calls on.
pub(crate) trait Peer: Send + Sync {
    /// Its node id.
    fn id(&self) -> &str;

    /// Runs `call` there (one attempt); its results, or why it failed.
    /// The node's own failure (unreachable, gone) is a
    /// [`wray_abi::ErrorKind::WorkerFailure`], which retries.
    fn run(self: Arc<Self>, call: Forward) -> BoxFuture<'static, Result<Forwarded, ErrorRecord>>;
}

/// One attempt of a call, handed to another node.
pub(crate) struct Forward {
    pub module: Module,
    pub function: Arc<str>,
    pub num_returns: u32,
    /// Its options, the attempt's policy filled in (the node that runs it
    /// makes one attempt; retries stay with the caller).
    pub options: Options,
    pub args: Vec<ArgValue>,
    pub depth: u32,
    pub task: TaskId,
    /// The modules its program calls by name, which it may call there.
    pub links: Vec<(String, Module)>,
}

/// A forwarded call's results, with their bytes here.
pub(crate) struct Forwarded {
    /// One blob per return value.
    pub values: Vec<Arc<Blob>>,
    /// Whether the attempt read no clock and no random numbers.
    pub deterministic: bool,
    /// What it (and what it started there) wrote, in order: each piece
    /// with its writer (a task or actor of that node), for this node's
    /// sink.
    pub output: Vec<(OutputSource, Stream, Bytes)>,
}
