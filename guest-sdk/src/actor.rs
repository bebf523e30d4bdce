//! Actors: stateful workers whose methods run one at a time, in order.
//!
//! `#[wray::remote]` on a struct and on its `impl` block makes the struct an
//! actor. `Counter::remote(args)` creates one and returns an
//! [`ActorHandle<Counter>`] at once; the handle dereferences to a generated
//! type with one method per actor method, each returning an `ObjectRef` to
//! the method's result:
//!
//! ```no_run
//! #[wray::remote]
//! struct Counter { n: u64 }
//!
//! #[wray::remote]
//! impl Counter {
//!     fn new(start: u64) -> Self { Counter { n: start } }
//!     fn incr(&mut self, by: u64) -> u64 { self.n += by; self.n }
//! }
//!
//! # fn main() -> wray::Result<()> {
//! let c = Counter::remote(10);
//! assert_eq!(wray::get(&c.incr(5))?, 15);
//! # Ok(())
//! # }
//! ```
//!
//! The actor's state lives in its own instance; a method that traps (or
//! panics) fails its call and the actor restarts from its constructor while
//! `max_restarts` allows, else it is dead and every call fails with
//! [`ErrorKind::ActorDied`](crate::ErrorKind::ActorDied).

use crate::error::{Error, ErrorKind, Result};
use crate::object::{ObjectRef, check, read_buffer};
use crate::sys;
use crate::task::{Arg, RemoteOptions, encode_spec, submit};
use rkyv::rancor::Fallible;
use rkyv::{Archive, Deserialize, Place, Serialize};
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::thread::LocalKey;
use wray_abi::wire::{Options, SpecKind};
use wray_abi::{ActorId, Status, kill_flags};

/// A type that runs as an actor. Implemented by `#[wray::remote]` on the
/// struct; not by hand.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an actor",
    note = "put #[wray::remote] on the struct `{Self}` as well as on its impl block"
)]
pub trait Actor: Sized + 'static {
    /// The name the host knows the actor type by.
    const TYPE: &'static str;
    /// The generated type whose methods call the actor's methods remotely.
    type Methods: From<ActorRef>;

    /// The options of `#[wray::remote(..)]` on the struct.
    #[doc(hidden)]
    fn default_options() -> Options {
        Options::default()
    }
}

/// An actor's id, untyped: what the generated method wrappers call through.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct ActorRef {
    id: ActorId,
}

impl ActorRef {
    /// A reference to the actor `id` (created by this instance).
    pub(crate) fn from_id(id: ActorId) -> Self {
        ActorRef { id }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.id
    }

    /// Calls `method` with `args`; returns a reference to the result.
    #[doc(hidden)]
    pub fn call<R>(&self, method: &str, args: Vec<Arg>) -> ObjectRef<R> {
        submit(
            SpecKind::ActorMethod,
            method,
            Some(self.id),
            &Options::default(),
            args,
        )
    }
}

/// A handle to an actor of type `T`: call its methods on it
/// (`handle.incr(5)`), pass it to tasks and other actors, look it up by
/// name with [`get_actor`], end it with [`kill`].
pub struct ActorHandle<T: Actor> {
    actor: ActorRef,
    methods: T::Methods,
    _type: PhantomData<fn() -> T>,
}

impl<T: Actor> ActorHandle<T> {
    fn from_id(id: ActorId) -> Self {
        let actor = ActorRef { id };
        ActorHandle {
            actor,
            methods: T::Methods::from(actor),
            _type: PhantomData,
        }
    }

    /// The actor's id.
    pub fn id(&self) -> ActorId {
        self.actor.id
    }
}

impl<T: Actor> Deref for ActorHandle<T> {
    type Target = T::Methods;
    fn deref(&self) -> &T::Methods {
        &self.methods
    }
}

impl<T: Actor> Clone for ActorHandle<T> {
    fn clone(&self) -> Self {
        ActorHandle::from_id(self.actor.id)
    }
}

impl<T: Actor> PartialEq for ActorHandle<T> {
    fn eq(&self, other: &Self) -> bool {
        self.actor == other.actor
    }
}

impl<T: Actor> fmt::Debug for ActorHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ActorHandle<{}>({:?})", T::TYPE, self.actor.id)
    }
}

// A handle inside a value is archived as the actor's 16-byte id.
impl<T: Actor> Archive for ActorHandle<T> {
    type Archived = [u8; 16];
    type Resolver = ();

    fn resolve(&self, _: (), out: Place<[u8; 16]>) {
        out.write(self.actor.id.0);
    }
}

impl<T: Actor, S: Fallible + ?Sized> Serialize<S> for ActorHandle<T> {
    fn serialize(&self, _: &mut S) -> std::result::Result<(), S::Error> {
        Ok(())
    }
}

impl<T: Actor, D: Fallible + ?Sized> Deserialize<ActorHandle<T>, D> for [u8; 16] {
    fn deserialize(&self, _: &mut D) -> std::result::Result<ActorHandle<T>, D::Error> {
        Ok(ActorHandle::from_id(ActorId(*self)))
    }
}

/// Options of a new actor, set with chained methods before `.remote(..)`:
/// `Counter::options().name("c").max_restarts(2).remote(0)`.
pub trait ActorOptions: RemoteOptions {
    /// Registers the actor under `name`, for [`get_actor`]. A named actor
    /// outlives the driver that created it (until killed). A name already
    /// taken (on any node of a cluster) makes the new actor dead from the
    /// start: its calls fail saying so.
    fn name(mut self, name: impl Into<String>) -> Self {
        self.options_mut().name = Some(name.into());
        self
    }

    /// How often the actor is restarted (from its constructor) after it
    /// dies; -1 without limit. Default 0.
    fn max_restarts(mut self, n: i32) -> Self {
        self.options_mut().max_restarts = Some(n);
        self
    }

    /// How often a call interrupted by the actor's death is run again on the
    /// restarted actor (at-least-once); -1 without limit. Default 0.
    fn max_task_retries(mut self, n: i32) -> Self {
        self.options_mut().max_task_retries = Some(n);
        self
    }
}

/// Creates an actor of type `T`; called by the generated `T::remote`.
#[doc(hidden)]
pub fn create<T: Actor>(options: &Options, args: Vec<Arg>) -> ActorHandle<T> {
    let spec = encode_spec(SpecKind::ActorCreate, T::TYPE, None, options, &args);
    let mut id = [0u8; 16];
    // SAFETY: `spec` is readable and `id` writable for the call's duration.
    let status = unsafe { sys::actor_create(spec.as_ptr(), spec.len(), id.as_mut_ptr()) };
    if let Err(e) = check(status, "actor_create") {
        panic!("wray: creating a {} actor failed: {e}", T::TYPE);
    }
    ActorHandle::from_id(ActorId(id))
}

/// Finds the actor registered under `name` (made on any node, in a
/// cluster). Fails when there is none, or when it is not a `T`.
pub fn get_actor<T: Actor>(name: &str) -> Result<ActorHandle<T>> {
    let mut id = [0u8; 16];
    let (status, ty) = read_buffer(|ptr, cap, len| {
        // SAFETY: every pointer is valid for its length for the call.
        unsafe { sys::actor_lookup(name.as_ptr(), name.len(), id.as_mut_ptr(), ptr, cap, len) }
    });
    if status == Status::NotFound as i32 {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "",
            format!("no actor is named `{name}`"),
        ));
    }
    check(status, "actor_lookup")?;
    if &ty[..] != T::TYPE.as_bytes() {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "",
            format!(
                "the actor named `{name}` is a {}, not a {}",
                String::from_utf8_lossy(&ty),
                T::TYPE
            ),
        ));
    }
    Ok(ActorHandle::from_id(ActorId(id)))
}

/// Kills an actor: its running call is interrupted, and that call, every
/// pending call and every later call fail with an actor-died error. It is
/// not restarted (see [`kill_allowing_restart`]).
pub fn kill<T: Actor>(handle: &ActorHandle<T>) {
    kill_with(handle.actor.id, 0);
}

/// Kills an actor, letting it restart from its constructor if it has
/// restarts left (its pending calls then run on the new instance).
pub fn kill_allowing_restart<T: Actor>(handle: &ActorHandle<T>) {
    kill_with(handle.actor.id, kill_flags::ALLOW_RESTART);
}

fn kill_with(id: ActorId, flags: i32) {
    // SAFETY: the pointer is to 16 readable bytes for the call's duration.
    unsafe { sys::actor_kill(id.0.as_ptr(), flags) };
}

/// The handle of the actor this code runs in, if it runs in a `T`.
pub fn current_actor<T: Actor>() -> Option<ActorHandle<T>> {
    let mut id = [0u8; 16];
    // SAFETY: `id` is 16 writable bytes for the call's duration.
    let status = unsafe { sys::actor_self(id.as_mut_ptr()) };
    (status == 0).then(|| ActorHandle::from_id(ActorId(id)))
}

/// Runs `f` on the actor's state; called by generated method exports.
#[doc(hidden)]
pub fn with_state<T: 'static, R>(
    state: &'static LocalKey<RefCell<Option<T>>>,
    f: impl FnOnce(&mut T) -> R,
) -> Result<R> {
    state.with(|cell| match cell.borrow_mut().as_mut() {
        Some(actor) => Ok(f(actor)),
        None => Err(Error::new(
            ErrorKind::ActorDied,
            "",
            "the actor's constructor has not run in this instance",
        )),
    })
}

/// Stores a newly constructed actor; called by the generated constructor.
#[doc(hidden)]
pub fn set_state<T: 'static>(state: &'static LocalKey<RefCell<Option<T>>>, actor: T) {
    state.with(|cell| *cell.borrow_mut() = Some(actor));
}
