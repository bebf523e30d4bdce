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

// The layers, lowest first (`tests/layers.rs` checks that imports only
// point down; ARCHITECTURE.md tells what each holds).
mod actor;
mod api;
#[cfg(feature = "node")]
pub mod cluster;
mod config;
mod error;
pub mod events;
mod exec;
mod host;
mod ids;
mod job;
#[cfg(feature = "node")]
pub mod node;
mod objects;
mod output;
mod task;

pub use api::builder::Builder;
pub use api::call::{
    ActorBuilder, ActorRef, CallBuilder, Method, MethodBuilder, NewActor, Task, TaskBuilder,
};
pub use api::object_ref::ObjectRef;
pub use api::runtime::Runtime;
pub use api::stats::{ActorInfo, ActorState, MemoCounts, Stats, StatsSource};
pub use error::{Error, ErrorKind, Result, TaskError};
pub use exec::manifest::{Signature, embed as embed_manifest, read as read_manifest};
pub use exec::module::{MAX_MODULE_SIZE, Module};
pub use job::handle::{Job, JobControl};
pub use objects::blob::{Bytes, Place};
pub use output::{NullSink, OutputSink, OutputSource, SourceKind, Stream, TerminalSink};
pub use wray_abi::codec::{Decode, Encode};
pub use wray_abi::value::Value;
pub use wray_abi::wire::ErrorRecord;
pub use wray_abi::{ActorId, ObjectId, TaskId};
