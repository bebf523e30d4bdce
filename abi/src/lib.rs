//! The wray guest ABI, defined once for the host and for guests.
//!
//! A wray guest is a core WebAssembly module. It talks to the host through
//! functions imported from one versioned namespace, [`HOST_MODULE`], and offers
//! work through exports with fixed names ([`export`]). Every value that crosses
//! the boundary is a byte string in guest memory, named by a pointer and a
//! length; every host function returns an integer [`Status`] (or a count, when
//! non-negative).
//!
//! This crate holds the names, the status codes, the identifiers and the byte
//! formats ([`wire`]) with their encoders and decoders. The host decodes what
//! guests send with the same code the Rust SDK uses to encode it, so the two
//! cannot drift apart. `docs/abi.md` is the prose specification; the test
//! vectors in this crate's tests pin the byte formats down.
//!
//! With the `codec` feature, [`codec`] holds the rkyv encoding of user
//! values shared by the SDK and the host's typed API.

#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "codec")]
pub mod codec;
pub mod ids;
pub mod wire;

pub use ids::{ActorId, ObjectId, TaskId};

/// The import module every wray host function lives in. The version is part of
/// the name: a module built for another ABI version fails to link with an
/// "unknown import" error instead of misbehaving.
pub const HOST_MODULE: &str = "wray:host/v1";

/// The ABI version carried by [`HOST_MODULE`].
pub const ABI_VERSION: u32 = 1;

/// Alignment, in bytes, that every value payload handed to a guest has
/// (rkyv's archived data needs it). Guests must pass buffers aligned to at
/// least this much when they ask the host to copy values in.
pub const VALUE_ALIGN: usize = 16;

/// Names of the functions a guest exports.
///
/// Every export whose name starts with `wray:` must have the signature
/// `() -> i32` and return [`export::OK`] on success or [`export::FAILED`] after
/// reporting the failure with `task_fail`.
pub mod export {
    /// The driver entry point run by `wray run`.
    pub const MAIN: &str = "wray:main";
    /// Prefix of a stateless task: `wray:task/<function>`.
    pub const TASK_PREFIX: &str = "wray:task/";
    /// Prefix of actor exports: `wray:actor/<Type>/new` (the constructor) and
    /// `wray:actor/<Type>/<method>`.
    pub const ACTOR_PREFIX: &str = "wray:actor/";
    /// The constructor's method name within [`ACTOR_PREFIX`].
    pub const ACTOR_CONSTRUCTOR: &str = "new";
    /// Prefix shared by every wray export.
    pub const PREFIX: &str = "wray:";
    /// The linear memory every wray guest exports.
    pub const MEMORY: &str = "memory";
    /// The WASI command entry point; a module exporting it can run as a driver.
    pub const WASI_START: &str = "_start";
    /// Return value of an export that finished normally.
    pub const OK: i32 = 0;
    /// Return value of an export that failed (after `task_fail`).
    pub const FAILED: i32 = 1;
}

/// Names of the host functions in [`HOST_MODULE`]. See `docs/abi.md` for each
/// signature, its bounds checks and its errors.
pub mod import {
    /// `object_put(data, len, refs, nrefs, out_id) -> status`
    pub const OBJECT_PUT: &str = "object_put";
    /// `object_put_begin(len) -> status`: starts a streamed put of `len` bytes
    pub const OBJECT_PUT_BEGIN: &str = "object_put_begin";
    /// `object_put_write(data, len) -> status`: appends to the streamed put
    pub const OBJECT_PUT_WRITE: &str = "object_put_write";
    /// `object_put_end(refs, nrefs, out_id) -> status`: stores the streamed put
    pub const OBJECT_PUT_END: &str = "object_put_end";
    /// `object_get(id, timeout_ms: i64, buf, cap, out_len) -> status`
    pub const OBJECT_GET: &str = "object_get";
    /// `object_wait(ids, n, num_returns, timeout_ms: i64, out_ready) -> count | status`
    pub const OBJECT_WAIT: &str = "object_wait";
    /// `object_map(id, timeout_ms: i64, buf, cap, out_addr, out_len) -> status`:
    /// `object_get`, with a large value mapped into memory instead of copied
    pub const OBJECT_MAP: &str = "object_map";
    /// `object_unmap(addr) -> status`: gives back a region `object_map` or
    /// `task_arg_map` mapped
    pub const OBJECT_UNMAP: &str = "object_unmap";
    /// `object_retain(id) -> status`
    pub const OBJECT_RETAIN: &str = "object_retain";
    /// `object_release(id) -> status`
    pub const OBJECT_RELEASE: &str = "object_release";
    /// `task_submit(spec, len, out_ids, out_cap) -> count | status`
    pub const TASK_SUBMIT: &str = "task_submit";
    /// `task_args(buf, cap, out_len) -> status`
    pub const TASK_ARGS: &str = "task_args";
    /// `task_arg_map(index, out_addr, out_len) -> status`: maps a large
    /// argument that `task_args` left out
    pub const TASK_ARG_MAP: &str = "task_arg_map";
    /// `task_return(index, data, len, refs, nrefs) -> status`
    pub const TASK_RETURN: &str = "task_return";
    /// `task_return_end(index, refs, nrefs) -> status`: sets return value
    /// `index` to the streamed put's bytes
    pub const TASK_RETURN_END: &str = "task_return_end";
    /// `task_fail(kind, msg, len) -> status`
    pub const TASK_FAIL: &str = "task_fail";
    /// `task_cancel(id, flags) -> status`
    pub const TASK_CANCEL: &str = "task_cancel";
    /// `actor_create(spec, len, out_actor) -> status`
    pub const ACTOR_CREATE: &str = "actor_create";
    /// `actor_lookup(name, len, out_actor, out_type, type_cap, out_type_len) -> status`
    pub const ACTOR_LOOKUP: &str = "actor_lookup";
    /// `actor_kill(actor, flags) -> status`
    pub const ACTOR_KILL: &str = "actor_kill";
    /// `actor_self(out_actor) -> status`
    pub const ACTOR_SELF: &str = "actor_self";
    /// `last_error(buf, cap, out_len) -> status`
    pub const LAST_ERROR: &str = "last_error";
}

/// Flags of `task_cancel`.
pub mod cancel_flags {
    /// Interrupt the task even while it runs (at its next yield point).
    pub const FORCE: i32 = 1;
    /// Cancel the tasks the cancelled task submitted, recursively.
    pub const RECURSIVE: i32 = 2;
}

/// Flags of `actor_kill`.
pub mod kill_flags {
    /// Allow the actor to be restarted if it has restarts left.
    pub const ALLOW_RESTART: i32 = 1;
}

/// Timeout value meaning "wait without a time limit".
pub const TIMEOUT_FOREVER: i64 = -1;

/// Status codes returned by host functions. Zero is success; errors are
/// negative, so that functions returning a count can share the channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(i32)]
pub enum Status {
    /// The call succeeded.
    Ok = 0,
    /// The output buffer is too small; the needed length was written to the
    /// call's `out_len` and nothing else was written. Call again with a larger
    /// buffer.
    BufferTooSmall = -1,
    /// The object holds an error, not a value: the buffer received an encoded
    /// [`wire::ErrorRecord`] instead of the value's bytes.
    ErrorValue = -2,
    /// The wait ended because its timeout passed; the object may still become
    /// ready later.
    Timeout = -3,
    /// The object, actor, function or name is unknown to this host.
    NotFound = -4,
    /// An argument is malformed: a spec that does not decode, a bad flag, an
    /// out-of-range index.
    InvalidArgument = -5,
    /// A value exceeds a size limit (object size, spec size, name length).
    TooLarge = -6,
    /// The call is not allowed here (for example `task_args` in a driver, or
    /// a second `task_return` for the same slot).
    InvalidState = -7,
    /// A name is already taken (a named actor).
    AlreadyExists = -8,
    /// The calling task was cancelled while it waited.
    Cancelled = -9,
    /// The object store has no room for the object, even after spilling.
    StoreFull = -10,
}

impl Status {
    /// Every status, for decoding and documentation.
    pub const ALL: [Status; 11] = [
        Status::Ok,
        Status::BufferTooSmall,
        Status::ErrorValue,
        Status::Timeout,
        Status::NotFound,
        Status::InvalidArgument,
        Status::TooLarge,
        Status::InvalidState,
        Status::AlreadyExists,
        Status::Cancelled,
        Status::StoreFull,
    ];

    /// The status a raw return value stands for, if it is one.
    pub fn from_code(code: i32) -> Option<Status> {
        Status::ALL.into_iter().find(|s| *s as i32 == code)
    }

    /// A short description, used in error messages on both sides.
    pub fn describe(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::BufferTooSmall => "buffer too small",
            Status::ErrorValue => "the object holds an error",
            Status::Timeout => "timed out",
            Status::NotFound => "not found",
            Status::InvalidArgument => "invalid argument",
            Status::TooLarge => "too large",
            Status::InvalidState => "not allowed in this state",
            Status::AlreadyExists => "already exists",
            Status::Cancelled => "cancelled",
            Status::StoreFull => "the object store is full",
        }
    }
}

/// What went wrong with a task, an actor call or an object. Carried in
/// [`wire::ErrorRecord`]; the numbers are part of the ABI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum ErrorKind {
    /// The guest function returned an error value (`Err(..)` in Rust).
    Application = 1,
    /// The guest panicked; the message says where and why.
    Panic = 2,
    /// The guest trapped (unreachable, out-of-bounds access, division by
    /// zero...).
    Trap = 3,
    /// The task exceeded its wall-clock limit.
    Timeout = 4,
    /// The guest tried to grow its memory past its limit.
    OutOfMemory = 5,
    /// The guest exhausted its wasm stack.
    StackOverflow = 6,
    /// The task was cancelled.
    Cancelled = 7,
    /// The actor died before or while running the call.
    ActorDied = 8,
    /// The host failed to run the task (instantiation failure, no instance
    /// slot...). Retried under `max_retries`.
    WorkerFailure = 9,
    /// The module is not valid wray wasm, or lacks the export.
    InvalidModule = 10,
    /// An argument of the task failed, so the task never ran; the cause is
    /// chained.
    DependencyFailed = 11,
    /// The guest wrote more output than its limit allows.
    OutputLimit = 12,
    /// A value exceeded the object size limit.
    ObjectTooLarge = 13,
    /// The object is gone and cannot be recomputed.
    ObjectLost = 14,
    /// The guest broke the ABI (bad pointer, bad length, bad encoding).
    AbiViolation = 15,
    /// An argument could not be decoded by the guest.
    InvalidArgument = 16,
    /// The object store had no room for a value, even after spilling.
    ObjectStoreFull = 17,
    /// A task nested deeper than the runtime allows (half its call slots,
    /// so a chain of waiting parents cannot take every slot); it never ran.
    CallDepth = 18,
}

impl ErrorKind {
    /// Every kind, for decoding and documentation.
    pub const ALL: [ErrorKind; 18] = [
        ErrorKind::Application,
        ErrorKind::Panic,
        ErrorKind::Trap,
        ErrorKind::Timeout,
        ErrorKind::OutOfMemory,
        ErrorKind::StackOverflow,
        ErrorKind::Cancelled,
        ErrorKind::ActorDied,
        ErrorKind::WorkerFailure,
        ErrorKind::InvalidModule,
        ErrorKind::DependencyFailed,
        ErrorKind::OutputLimit,
        ErrorKind::ObjectTooLarge,
        ErrorKind::ObjectLost,
        ErrorKind::AbiViolation,
        ErrorKind::InvalidArgument,
        ErrorKind::ObjectStoreFull,
        ErrorKind::CallDepth,
    ];

    /// The kind a raw code stands for, if any.
    pub fn from_code(code: u32) -> Option<ErrorKind> {
        ErrorKind::ALL.into_iter().find(|k| *k as u32 == code)
    }

    /// A short lower-case name, as shown by the CLI and the dashboard.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::Application => "application error",
            ErrorKind::Panic => "panic",
            ErrorKind::Trap => "trap",
            ErrorKind::Timeout => "timeout",
            ErrorKind::OutOfMemory => "out of memory",
            ErrorKind::StackOverflow => "stack overflow",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::ActorDied => "actor died",
            ErrorKind::WorkerFailure => "worker failure",
            ErrorKind::InvalidModule => "invalid module",
            ErrorKind::DependencyFailed => "dependency failed",
            ErrorKind::OutputLimit => "output limit exceeded",
            ErrorKind::ObjectTooLarge => "object too large",
            ErrorKind::ObjectLost => "object lost",
            ErrorKind::AbiViolation => "ABI violation",
            ErrorKind::InvalidArgument => "invalid argument",
            ErrorKind::ObjectStoreFull => "object store full",
            ErrorKind::CallDepth => "call depth exceeded",
        }
    }

    /// Whether the kind is a failure of the system rather than of the guest's
    /// own code: these are retried under `max_retries`, the others only with
    /// `retry_exceptions`.
    pub fn is_system_failure(self) -> bool {
        matches!(self, ErrorKind::WorkerFailure | ErrorKind::ObjectLost)
    }
}
