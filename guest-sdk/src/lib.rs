//! Write wray guests: Ray's tasks, actors and objects in plain Rust.
//!
//! ```no_run
//! use wray::prelude::*;
//!
//! #[wray::remote]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! #[wray::main]
//! fn main() -> wray::Result<()> {
//!     let refs: Vec<_> = (0..4).map(square::remote).collect(); // [f.remote(i) for i in range(4)]
//!     println!("{:?}", wray::get(&refs)?); // [0, 1, 4, 9]
//!     Ok(())
//! }
//! ```
//!
//! Build the crate as a `cdylib` with `cargo build --release --target
//! wasm32-wasip1` and run it with `wray run target/wasm32-wasip1/release/<crate>.wasm`.
//! Each `remote` call runs in its own sandboxed instance, in parallel.
//!
//! - [`#[wray::remote]`](remote) on a function makes it a task:
//!   `f::remote(args..)` returns an [`ObjectRef`] at once;
//!   `f::options().max_retries(5).remote(args..)` sets options.
//! - `#[wray::remote]` on a struct and its `impl` block makes an actor:
//!   `Counter::remote(args)` returns an [`ActorHandle`] whose methods
//!   (`handle.incr(1)`) run one at a time, in order, in the actor's own
//!   instance. See [`ActorHandle`], [`get_actor`], [`kill`].
//! - [`put`], [`get`], [`wait`] work as in Ray; [`get_view`] (and a
//!   parameter typed [`View<T>`](View)) reads a value in place, undecoded,
//!   as Ray's `get` of a numpy array does.
//! - [`#[wray::main]`](main) marks the driver that `wray run` starts.
//! - [`#[wray::value]`](value) makes your own types passable.
//!
//! Values travel encoded with [rkyv](https://rkyv.org); the ABI the SDK
//! speaks is specified in `docs/abi.md`.

mod actor;
mod codec;
pub mod cross;
mod error;
mod object;
mod sys;
mod task;
mod view;

pub use actor::{
    Actor, ActorHandle, ActorOptions, ActorRef, current_actor, get_actor, kill,
    kill_allowing_restart,
};
pub use codec::{Decode, Encode};
pub use cross::{Cbor, Value};
pub use error::{Error, ErrorKind, Result};
pub use object::{Get, ObjectRef, Readable, Ready, cancel, get, get_timeout, put, wait};
pub use task::{Arg, IntoArg, MainResult, RemoteOptions};
pub use view::{Plain, View, get_view};
pub use wray_abi::{ActorId, ObjectId};

/// Makes a function a remote task.
///
/// ```no_run
/// use std::time::Duration;
/// use wray::prelude::*; // RemoteOptions: `.timeout(..)` and the others
///
/// #[wray::remote]
/// fn add(a: i32, b: i32) -> i32 { a + b }
///
/// # fn main() {
/// let r: wray::ObjectRef<i32> = add::remote(1, 2);
/// let r = add::options().timeout(Duration::from_secs(1)).remote(1, &r);
/// # }
/// ```
///
/// The function stays callable locally. Parameters must be owned types the
/// SDK can encode; each accepts a value, a reference to one, or an
/// [`ObjectRef`] to one. A function returning `Result<T, E>` (with `E:
/// Display`) gives an `ObjectRef<T>`, and an `Err` becomes the task's error.
/// The export is named `wray:task/<name>`, so a module cannot have two remote
/// functions of the same name.
pub use wray_macros::remote;

/// Marks the driver: the function `wray run` calls. It takes no parameters
/// (read `std::env::args()`) and returns `()` or `Result<(), E: Display>`.
pub use wray_macros::main;

/// Derives what a type needs to be passed to and returned from remote
/// functions (rkyv's `Archive`, `Serialize` and `Deserialize`).
///
/// ```no_run
/// #[wray::value]
/// struct Point { x: f64, y: f64 }
/// ```
pub use wray_macros::value;

/// The encoding library, re-exported for `#[wray::value]` and for zero-copy
/// access to values.
pub use rkyv;

/// What a guest usually needs: `use wray::prelude::*;`.
pub mod prelude {
    pub use crate::{ActorHandle, ActorOptions, ObjectRef, RemoteOptions, View};
}

/// Support for the code `#[wray::remote]` generates. Not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::actor::{create as create_actor, set_state, with_state};
    pub use crate::task::{Args, FromArg, Return, application_error, run_call, run_main, submit};
    pub use wray_abi::wire::{Options, SpecKind};
}
