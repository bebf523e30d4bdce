//! Remote calls from host code: tasks, new actors, actor methods.
//!
//! One [`CallBuilder`] collects arguments and options for all three; the
//! kind of call (`Task`, `NewActor`, `Method`) decides which options exist
//! and how it finishes (`submit` for calls with a result, `create` for
//! actors). Arguments are held (`HeldRefs`) from the moment they are added,
//! so an `ObjectRef` dropped by the caller stays alive for the call. A value
//! argument is stored at once when the object store has room for it;
//! otherwise it waits in the builder and the submission makes room first,
//! blocking (`submit`, `create`) or not (`submit_async`, `create_async`):
//! building a call never blocks.

use crate::actor::actors;
use crate::actor::registry::Creation;
use crate::api::object_ref::ObjectRef;
use crate::api::parts::Parts;
use crate::error::{Error, Result};
use crate::exec::manifest::Signature;
use crate::exec::module::Module;
use crate::exec::request::Submission;
use crate::objects::arg::TaskArg;
use crate::objects::held::HeldRefs;
use crate::task::run;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;
use wray_abi::ActorId;
use wray_abi::codec::Encode;
use wray_abi::export::ACTOR_CONSTRUCTOR;
use wray_abi::value::Value;
use wray_abi::wire::Options;

/// A remote function of a module: what [`Runtime::task`](crate::Runtime::task) calls.
pub struct Task {
    module: Module,
    function: String,
}

impl Task {
    pub(crate) fn new(module: &Module, function: &str) -> Task {
        Task {
            module: module.clone(),
            function: function.into(),
        }
    }
}

/// An actor type of a module: what [`Runtime::actor`](crate::Runtime::actor) creates.
pub struct NewActor {
    module: Module,
    type_name: String,
}

impl NewActor {
    pub(crate) fn new(module: &Module, type_name: &str) -> NewActor {
        NewActor {
            module: module.clone(),
            type_name: type_name.into(),
        }
    }
}

/// A method of an actor: what [`Runtime::method`](crate::Runtime::method) calls.
pub struct Method {
    actor: ActorId,
    method: String,
    /// The actor's type and module, for its manifest.
    class: Arc<str>,
    module: Module,
}

impl Method {
    pub(crate) fn new(actor: &ActorRef, method: &str) -> Method {
        Method {
            actor: actor.id,
            method: method.into(),
            class: actor.type_name.clone(),
            module: actor.module.clone(),
        }
    }
}

/// A task call being built.
pub type TaskBuilder<'a> = CallBuilder<'a, Task>;
/// A new actor being built.
pub type ActorBuilder<'a> = CallBuilder<'a, NewActor>;
/// An actor method call being built.
pub type MethodBuilder<'a> = CallBuilder<'a, Method>;

/// A remote call being built: add arguments and options, then `submit()`
/// (or `create()` for an actor).
#[must_use = "a call does nothing until it is submitted"]
pub struct CallBuilder<'a, K> {
    rt: Parts<'a>,
    target: K,
    args: Vec<BuildArg>,
    held: HeldRefs,
    options: Options,
    error: Option<Error>,
    /// Whether an argument was given as a cross-language value
    /// (`arg_value`), which a function taking rkyv values cannot read.
    cbor_args: bool,
    /// Whether an argument was given as an rkyv value (`arg`), which a
    /// function taking cross-language values cannot read.
    rkyv_args: bool,
    /// The cross-language arguments' positions and kinds (`int`, `str`...),
    /// checked against the manifest.
    kinds: Vec<(usize, &'static str)>,
}

/// An argument of a call being built.
enum BuildArg {
    /// Ready to submit.
    Ready(TaskArg),
    /// A value the store had no room for yet: stored when the call is
    /// submitted, after room is made.
    Waiting(Vec<u8>),
}

impl<'a, K> CallBuilder<'a, K> {
    pub(crate) fn new(rt: Parts<'a>, target: K) -> Self {
        CallBuilder {
            rt,
            target,
            args: Vec::new(),
            held: HeldRefs::new(&rt.actors.env.objects),
            options: Options::default(),
            error: None,
            cbor_args: false,
            rkyv_args: false,
            kinds: Vec::new(),
        }
    }

    /// Adds an argument by value.
    pub fn arg<T: Encode>(mut self, value: &T) -> Self {
        self.rkyv_args = true;
        match wray_abi::codec::encode(value) {
            Ok(bytes) => return self.arg_bytes(&bytes),
            Err(e) => {
                self.error.get_or_insert(Error::InvalidArgument(format!(
                    "cannot encode a {}: {e}",
                    std::any::type_name::<T>()
                )));
            }
        }
        self
    }

    /// Adds an argument already encoded (the bytes of the parameter's type).
    pub fn arg_bytes(mut self, bytes: &[u8]) -> Self {
        if self.rt.actors.env.objects.fits(bytes.len()) {
            let blob = self.rt.actors.env.objects.blob(bytes, Vec::new());
            self.args.push(BuildArg::Ready(TaskArg::Value(blob)));
        } else {
            self.args.push(BuildArg::Waiting(bytes.to_vec()));
        }
        self
    }

    /// Adds an argument in wray's cross-language format (deterministic
    /// CBOR, `docs/abi.md`): for functions written in C, Go or any language
    /// other than Rust. The objects the value refers to are held for the
    /// call.
    pub fn arg_value(mut self, value: &Value) -> Self {
        self.cbor_args = true;
        let bytes = match value.encode() {
            Ok(bytes) => bytes,
            Err(e) => {
                self.error.get_or_insert(Error::InvalidArgument(format!(
                    "cannot encode the value: {e}"
                )));
                return self;
            }
        };
        let at = self.args.len();
        let refs = value.refs();
        if refs.is_empty() {
            self.kinds.push((at, value.kind()));
            return self.arg_bytes(&bytes);
        }
        for id in &refs {
            if !self.held.retain(*id) {
                self.error.get_or_insert(Error::ObjectNotFound(*id));
                return self;
            }
        }
        let blob = self.rt.actors.env.objects.blob(&bytes, refs);
        self.kinds.push((at, value.kind()));
        self.args.push(BuildArg::Ready(TaskArg::Value(blob)));
        self
    }

    /// Adds an object as an argument: the call receives its value, once
    /// ready; if it failed, the call fails without running.
    pub fn arg_ref(mut self, r: &ObjectRef) -> Self {
        if self.held.retain(r.id()) {
            self.args.push(BuildArg::Ready(TaskArg::Ref(r.id())));
        } else {
            self.error.get_or_insert(Error::ObjectNotFound(r.id()));
        }
        self
    }

    /// Adds an object reference as an argument without resolving it: the
    /// call receives the reference (its parameter must be an `ObjectRef`)
    /// and may fetch the value itself, when and if it needs it.
    pub fn arg_ref_unresolved(mut self, r: &ObjectRef) -> Self {
        if self.held.retain(r.id()) {
            // An ObjectRef is encoded as its 32-byte id.
            let blob = self.rt.actors.env.objects.blob(&r.id().0, vec![r.id()]);
            self.args.push(BuildArg::Ready(TaskArg::Value(blob)));
        } else {
            self.error.get_or_insert(Error::ObjectNotFound(r.id()));
        }
        self
    }

    /// Linear memory limit, in bytes (for an actor: of its instance).
    pub fn memory_limit(mut self, bytes: u64) -> Self {
        self.options.memory_limit = Some(bytes);
        self
    }

    /// Bytes of the values that wait for room.
    fn waiting(&self) -> usize {
        self.args
            .iter()
            .map(|a| match a {
                BuildArg::Waiting(b) => b.len(),
                BuildArg::Ready(_) => 0,
            })
            .sum()
    }

    /// Makes room for the values that wait, blocking.
    fn admitted(self) -> Result<Self> {
        let len = self.waiting();
        if len > 0 && self.error.is_none() {
            self.rt.admit(len)?;
        }
        Ok(self)
    }

    /// Makes room for the values that wait, without blocking.
    async fn admitted_async(self) -> Result<Self> {
        let len = self.waiting();
        if len > 0 && self.error.is_none() {
            self.rt.admit_async(len).await?;
        }
        Ok(self)
    }

    /// The submission (room made for every value), or the first error met
    /// while building.
    fn finish(self, function: &str) -> Result<(Parts<'a>, K, Submission)> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let objects = &self.rt.actors.env.objects;
        let args = self
            .args
            .into_iter()
            .map(|a| match a {
                BuildArg::Ready(a) => a,
                BuildArg::Waiting(bytes) => TaskArg::Value(objects.blob(&bytes, Vec::new())),
            })
            .collect();
        let sub = Submission::host(function.into(), args, self.held, self.options);
        Ok((self.rt, self.target, sub))
    }
}

impl<K> CallBuilder<'_, K> {
    /// Checks the call against the function's declared signature, if its
    /// module has a manifest: the arity, and that a function taking rkyv
    /// values is not handed cross-language ones.
    fn check(&self, sig: Option<&Signature>) -> Result<()> {
        let Some(sig) = sig else {
            return Ok(());
        };
        sig.check_arity(self.args.len())
            .map_err(Error::InvalidArgument)?;
        if sig.encoding == "rkyv" && self.cbor_args {
            return Err(Error::InvalidArgument(format!(
                "`{}` is a Rust guest's function: it takes rkyv values, which only Rust \
                 writes, not cross-language values",
                sig.describe()
            )));
        }
        if sig.encoding == "cbor" && self.rkyv_args {
            return Err(Error::InvalidArgument(format!(
                "`{}` takes cross-language values (CBOR: `arg_value`), not rkyv ones",
                sig.describe()
            )));
        }
        for &(at, kind) in &self.kinds {
            sig.check_kind(at, kind).map_err(Error::InvalidArgument)?;
        }
        Ok(())
    }
}

impl CallBuilder<'_, Task> {
    /// Retries after system failures (default 3; -1: no limit).
    pub fn max_retries(mut self, n: i32) -> Self {
        self.options.max_retries = Some(n);
        self
    }

    /// Retries guest errors, panics and traps too.
    pub fn retry_exceptions(mut self, yes: bool) -> Self {
        self.options.retry_exceptions = Some(yes);
        self
    }

    /// Wall-clock limit of one attempt.
    pub fn timeout(mut self, limit: Duration) -> Self {
        self.options.timeout_ms = Some(u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1));
        self
    }

    /// Lets the runtime run the task again to rebuild a lost result even
    /// though it read the clock or random numbers.
    pub fn allow_recompute(mut self, yes: bool) -> Self {
        self.options.allow_recompute = Some(yes);
        self
    }

    /// Memoizes the call, or not (default: as the function's manifest
    /// declares it, `pure` or not; `docs/memo.md`).
    pub fn memo(mut self, yes: bool) -> Self {
        self.options.memo = Some(yes);
        self
    }

    /// Submits the task; returns a reference to its result at once (after
    /// waiting for room in the object store, if an argument needs it).
    pub fn submit(self) -> Result<ObjectRef> {
        self.admitted()?.submit_now()
    }

    /// [`submit`](Self::submit), for async callers (on any tokio runtime).
    pub async fn submit_async(self) -> Result<ObjectRef> {
        self.admitted_async().await?.submit_now()
    }

    fn submit_now(self) -> Result<ObjectRef> {
        let function = self.target.function.clone();
        self.check(self.target.module.signature("task", None, &function))?;
        let (rt, task, sub) = self.finish(&function)?;
        let ids = { run::submit_task(&rt.actors.tasks, task.module, sub) };
        Ok(ObjectRef::adopt(&rt.actors.env.objects, ids[0]))
    }
}

impl CallBuilder<'_, NewActor> {
    /// Registers the actor under `name` (see [`Runtime::get_actor`](crate::Runtime::get_actor)). A name
    /// already taken makes the actor dead from the start.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options.name = Some(name.into());
        self
    }

    /// Restarts allowed after the actor dies (default 0; -1: no limit).
    pub fn max_restarts(mut self, n: i32) -> Self {
        self.options.max_restarts = Some(n);
        self
    }

    /// Retries of a call interrupted by the actor's death (default 0).
    pub fn max_task_retries(mut self, n: i32) -> Self {
        self.options.max_task_retries = Some(n);
        self
    }

    /// Creates the actor; returns its handle at once (after waiting for
    /// room in the object store, if an argument needs it).
    pub fn create(self) -> Result<ActorRef> {
        let rt = self.rt;
        let actor = self.admitted()?.create_now()?;
        // In a cluster, its name is the cluster's once this returns.
        if let Some(named) = actors::name_settled(rt.actors, &actor.id()) {
            rt.block_on(named);
        }
        Ok(actor)
    }

    /// [`create`](Self::create), for async callers (on any tokio runtime).
    pub async fn create_async(self) -> Result<ActorRef> {
        let actors = self.rt.actors.clone();
        let actor = self.admitted_async().await?.create_now()?;
        // In a cluster, its name is the cluster's once this returns.
        if let Some(named) = actors::name_settled(&actors, &actor.id()) {
            named.await;
        }
        Ok(actor)
    }

    fn create_now(self) -> Result<ActorRef> {
        let type_name = self.target.type_name.clone();
        let module = &self.target.module;
        self.check(module.signature("actor", Some(&type_name), ACTOR_CONSTRUCTOR))?;
        let (rt, new, sub) = self.finish(&type_name)?;
        let id = actors::create(
            rt.actors,
            Creation {
                module: new.module.clone(),
                type_name: type_name.clone(),
                job: 0,
                sub,
                placed_for: None,
            },
        );
        Ok(ActorRef::new(id, type_name.into(), new.module))
    }
}

impl CallBuilder<'_, Method> {
    /// Submits the call; returns a reference to its result at once (after
    /// waiting for room in the object store, if an argument needs it).
    pub fn submit(self) -> Result<ObjectRef> {
        self.admitted()?.submit_now()
    }

    /// [`submit`](Self::submit), for async callers (on any tokio runtime).
    pub async fn submit_async(self) -> Result<ObjectRef> {
        self.admitted_async().await?.submit_now()
    }

    fn submit_now(self) -> Result<ObjectRef> {
        let method = self.target.method.clone();
        let m = &self.target;
        self.check(m.module.signature("method", Some(&m.class), &method))?;
        let (rt, m, sub) = self.finish(&method)?;
        let ids = { actors::call(rt.actors, m.actor, &m.method, sub) };
        Ok(ObjectRef::adopt(&rt.actors.env.objects, ids[0]))
    }
}

/// A handle to an actor, for host code.
#[derive(Clone)]
pub struct ActorRef {
    id: ActorId,
    type_name: Arc<str>,
    /// Its module: calls are checked against the module's manifest.
    module: Module,
}

impl PartialEq for ActorRef {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for ActorRef {}

impl ActorRef {
    pub(crate) fn new(id: ActorId, type_name: Arc<str>, module: Module) -> ActorRef {
        ActorRef {
            id,
            type_name,
            module,
        }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// The actor's type.
    pub fn type_name(&self) -> &str {
        &self.type_name
    }
}

impl fmt::Debug for ActorRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorRef<{}>({:?})", self.type_name, self.id)
    }
}
