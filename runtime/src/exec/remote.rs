//! Calls placed on another node of a cluster: what the task layer asks of
//! the layer that knows the cluster ([`Placement`], registered on [`Env`]
//! by the cluster layer, which sits above it), and what it hands over
//! ([`Forward`]).
//!
//! [`Env`]: crate::exec::env::Env

use crate::exec::module::Module;
use crate::objects::arg::{ArgValue, Contained};
use crate::objects::blob::Blob;
use crate::output::{OutputSource, Stream};
use bytes::Bytes;
use futures_util::future::BoxFuture;
use std::sync::Arc;
use wray_abi::wire::{ErrorRecord, Options};
use wray_abi::{ActorId, TaskId};

/// What placement weighs of a call's arguments: their bytes together,
/// and the digests of those too large to travel inside the call.
#[derive(Debug, Default)]
pub(crate) struct ArgBytes {
    /// Bytes of every argument.
    pub total: usize,
    /// The digests of the arguments of [`LARGE_ARG`] bytes or more.
    pub large: Vec<[u8; 32]>,
}

/// An argument this large travels by pull, not inside its call.
pub(crate) const LARGE_ARG: usize = 1 << 20;

impl ArgBytes {
    /// Counts argument `blob`.
    pub fn add(&mut self, blob: &Blob) {
        self.total += blob.len();
        if blob.len() > LARGE_ARG {
            self.large.push(blob.digest().0);
        }
    }
}

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
    /// can travel (a value holding references travels inside its call
    /// with the objects it refers to, so up to
    /// [`REFS_TRAVEL_MAX`](crate::objects::arg::REFS_TRAVEL_MAX) bytes);
    /// `args`: their size, and which are large (those keep a call near
    /// the nodes that hold them).
    fn place(&self, options: &Options, forwardable: bool, args: &ArgBytes) -> Place;

    /// Live node `node`, if it is another node of the cluster, reading
    /// the live nodes again first if it is not among them (it joined
    /// since they were last read).
    fn find_peer<'a>(&'a self, node: &'a str) -> BoxFuture<'a, Option<Arc<dyn Peer>>>;

    /// Claims `name` across the cluster for `actor`, of type `type_name`,
    /// made here (its name already claimed on this node); why not, if an
    /// actor of another node holds it or the cluster could not be asked.
    fn claim_name(
        &self,
        name: &str,
        actor: ActorId,
        type_name: &str,
    ) -> BoxFuture<'static, Result<(), String>>;

    /// The actor holding `name` across the cluster (its id and type), if
    /// one does.
    fn find_name(&self, name: &str) -> BoxFuture<'static, Option<(ActorId, Arc<str>)>>;

    /// Gives up `name`, which `actor` (of type `type_name`, dead now)
    /// held; in the background.
    fn release_name(&self, name: &str, actor: ActorId, type_name: &str);
}

/// Another node, to run calls on.
pub(crate) trait Peer: Send + Sync {
    /// Its node id.
    fn id(&self) -> &str;

    /// Runs `call` there (one attempt); its results (as many as it has
    /// return values), or why it failed.
    /// The node's own failure (unreachable, gone) is a
    /// [`wray_abi::ErrorKind::WorkerFailure`], which retries.
    fn run(self: Arc<Self>, call: Forward) -> BoxFuture<'static, Result<Forwarded, ErrorRecord>>;

    /// Creates an actor there; its id there. The constructor runs on
    /// after the reply: its failure shows in the actor's calls.
    fn create_actor(
        self: Arc<Self>,
        actor: ForwardActor,
    ) -> BoxFuture<'static, Result<ActorId, ErrorRecord>>;

    /// Opens a line of calls to actor `actor` there (its id there): the
    /// calls sent on it reach the actor in the order sent, without
    /// waiting for each other's replies. Dropping the line gives up the
    /// calls on it not answered yet.
    fn actor_line(self: Arc<Self>, actor: ActorId) -> Box<dyn ActorLine>;

    /// Kills actor `actor` there (restarting it there if `allow_restart`
    /// and it has restarts left); best effort.
    fn kill_actor(self: Arc<Self>, actor: ActorId, allow_restart: bool) -> BoxFuture<'static, ()>;
}

/// A line of calls to an actor on another node ([`Peer::actor_line`]).
pub(crate) trait ActorLine: Send + Sync {
    /// Sends `call` now, after the calls sent before it; its results, or
    /// why it failed (the node's failure, or the line's, is a
    /// [`wray_abi::ErrorKind::WorkerFailure`]).
    fn send(&self, call: ForwardMethod) -> BoxFuture<'static, Result<Forwarded, ErrorRecord>>;
}

/// A call of an actor's method, handed to the node the actor is on.
pub(crate) struct ForwardMethod {
    /// The method's name.
    pub method: Arc<str>,
    pub num_returns: u32,
    pub args: Vec<ArgValue>,
    /// The objects its arguments refer to, which travel with them.
    pub contained: Vec<Contained>,
    pub depth: u32,
    /// Its id on this node.
    pub task: TaskId,
}

/// An actor's creation, handed to another node.
pub(crate) struct ForwardActor {
    pub module: Module,
    pub type_name: Arc<str>,
    /// Its options (its name stays with the node that placed it).
    pub options: Options,
    /// The constructor's arguments.
    pub args: Vec<ArgValue>,
    /// The objects its arguments refer to, which travel with them.
    pub contained: Vec<Contained>,
    pub depth: u32,
    /// Its id on the node that placed it.
    pub actor: ActorId,
    /// The modules its program calls by name.
    pub links: Vec<(String, Module)>,
    /// Its program's job (see [`Forward::job`]).
    pub job: u64,
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
    /// Its program's job, under which the calls it makes there are
    /// listed ([`Events::program`](crate::events::Events::program)).
    pub job: u64,
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
    pub output: Vec<Written>,
    /// For a call of an actor: how many times it restarted there.
    pub restarts: u32,
    /// The objects its values refer to, sent with them: held until the
    /// values are stored (which holds them in turn).
    pub held: crate::objects::held::HeldRefs,
}

/// A piece of output written on another node, with its writer.
pub(crate) type Written = (OutputSource, Stream, Bytes);
