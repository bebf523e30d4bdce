//! The wray host: Ray's tasks, actors and objects on sandboxed WebAssembly.
//!
//! A [`Runtime`] loads guest [`Module`]s (built from Rust with the `wray`
//! SDK, or from any language that speaks the ABI in `docs/abi.md`), runs
//! their drivers, and runs every remote call in a fresh wasm instance on a
//! pool of worker threads, with results stored as immutable,
//! content-addressed objects.
//!
//! ```no_run
//! use wray_runtime::Runtime;
//!
//! let rt = Runtime::builder().num_cpus(4).build()?;
//! let module = rt.load_file("app.wasm")?;
//! let status = rt.run_driver(&module, &[])?; // like `wray run app.wasm`
//! # Ok::<(), wray_runtime::Error>(())
//! ```
//!
//! `ARCHITECTURE.md` at the repository root maps the modules of this crate.
//!
//! The feature `node` adds the module `node`: the HTTP API and dashboard of `wray
//! start` (the `wray` command, package `wray-cli`, turns it on).

mod actor;
mod blob;
mod call;
mod config;
mod driver;
mod engine;
mod error;
pub mod events;
mod host;
mod instance;
mod module;
#[cfg(feature = "node")]
pub mod node;
mod object_store;
mod output;
mod runtime;
mod scheduler;
mod slots;
mod spill_dir;

pub use blob::{Bytes, Place};
pub use call::{
    ActorBuilder, ActorRef, CallBuilder, Method, MethodBuilder, NewActor, Task, TaskBuilder,
};
pub use error::{Error, ErrorKind, Result, TaskError};
pub use module::{MAX_MODULE_SIZE, Module};
pub use output::{NullSink, OutputSink, OutputSource, SourceKind, Stream, TerminalSink};
pub use runtime::{
    ActorInfo, ActorState, Builder, Job, JobControl, ObjectRef, Runtime, Stats, StatsSource,
};
pub use wray_abi::codec::{Decode, Encode};
pub use wray_abi::wire::ErrorRecord;
pub use wray_abi::{ActorId, ObjectId, TaskId};
