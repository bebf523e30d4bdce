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
//! values shared by the SDK and the host's typed API. [`value`] holds the
//! values that cross languages and their deterministic CBOR encoding; the
//! `json` feature adds their JSON form.

#![warn(missing_docs)]

extern crate alloc;

#[cfg(feature = "codec")]
pub mod codec;
pub mod ids;
pub mod value;
#[cfg(feature = "json")]
mod value_json;
#[cfg(feature = "json")]
pub use value_json::JsonError;
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
    /// The custom section that describes a module's functions: a CBOR
    /// sequence of records (`docs/abi.md`, "Manifest"). Several sections
    /// of this name (one per function, as linkers concatenate them) read
    /// as one sequence.
    pub const MANIFEST_SECTION: &str = "wray:manifest";
    /// The WASI reactor initializer (C and Go guests have one): the host
    /// calls it once per instance, before any other export.
    pub const WASI_INITIALIZE: &str = "_initialize";
    /// Return value of an export that finished normally.
    pub const OK: i32 = 0;
    /// Return value of an export that failed (after `task_fail`).
    pub const FAILED: i32 = 1;
}

/// Calls `$m!` with every host function of [`HOST_MODULE`], once: the one
/// table of the ABI's imports. Each entry is the function's documentation,
/// the name of its constant in [`import`], its import name, and its
/// parameters and result as a Rust guest declares them (pointers are 32-bit
/// offsets into the guest's memory: `i32` in wasm, as are `usize` and
/// `u32`; `i64` is `i64`). The SDK's `extern` block and the constants of
/// [`import`] and [`SIGNATURES`] are all expanded from it, and the host
/// checks its linker against [`SIGNATURES`], so a name or a signature
/// cannot drift between them. `docs/abi.md` describes each function.
#[macro_export]
macro_rules! for_each_import {
    ($m:ident) => {
        $m! {
            /// Stores `len` bytes at `data` as an immutable object; `refs` points at
            /// `nrefs` 32-byte ids the value contains. Writes the object's id.
            OBJECT_PUT object_put(data: *const u8, len: usize, refs: *const u8, nrefs: usize, out_id: *mut u8) -> i32;
            /// Stores `len` bytes at `data`, a cross-language value (deterministic
            /// CBOR, checked), as an object recorded as one; writes its id, the
            /// same whichever language puts the value.
            OBJECT_PUT_VALUE object_put_value(data: *const u8, len: usize, refs: *const u8, nrefs: usize, out_id: *mut u8) -> i32;
            /// Starts a put of `len` bytes that come in pieces (a streamed put).
            OBJECT_PUT_BEGIN object_put_begin(len: usize) -> i32;
            /// Appends `len` bytes at `data` to the streamed put.
            OBJECT_PUT_WRITE object_put_write(data: *const u8, len: usize) -> i32;
            /// Stores the streamed put as an object, like `object_put`.
            OBJECT_PUT_END object_put_end(refs: *const u8, nrefs: usize, out_id: *mut u8) -> i32;
            /// Waits up to `timeout_ms` for the object, then copies its bytes (or its
            /// error record) into `buf` when they fit in `cap`; writes the length.
            OBJECT_GET object_get(id: *const u8, timeout_ms: i64, buf: *mut u8, cap: usize, out_len: *mut u32) -> i32;
            /// As `object_get`, except that a large value is mapped into a fresh
            /// region of memory instead of copied to `buf`; writes where the bytes
            /// are (the region, or `buf`) to `out_addr`.
            OBJECT_MAP object_map(id: *const u8, timeout_ms: i64, buf: *mut u8, cap: usize, out_addr: *mut u32, out_len: *mut u32) -> i32;
            /// Gives back a region `object_map` or `task_arg_map` mapped.
            OBJECT_UNMAP object_unmap(addr: *const u8) -> i32;
            /// Waits until `num_returns` of the `n` ids are ready or the timeout
            /// passes; marks ready ones in `out_ready`; returns how many are ready.
            OBJECT_WAIT object_wait(ids: *const u8, n: usize, num_returns: usize, timeout_ms: i64, out_ready: *mut u8) -> i32;
            /// Records one more reference to the object held by this instance.
            OBJECT_RETAIN object_retain(id: *const u8) -> i32;
            /// Drops one reference held by this instance.
            OBJECT_RELEASE object_release(id: *const u8) -> i32;
            /// Submits a task or actor method; writes the ids of its return values.
            TASK_SUBMIT task_submit(spec: *const u8, len: usize, out_ids: *mut u8, out_cap: usize) -> i32;
            /// Copies the current call's argument buffer into `buf` when it fits.
            TASK_ARGS task_args(buf: *mut u8, cap: usize, out_len: *mut u32) -> i32;
            /// Maps argument `index`, which `task_args` left out of its buffer, into
            /// a fresh region of memory; writes where and how long it is.
            TASK_ARG_MAP task_arg_map(index: u32, out_addr: *mut u32, out_len: *mut u32) -> i32;
            /// Sets return value `index` of the current call.
            TASK_RETURN task_return(index: u32, data: *const u8, len: usize, refs: *const u8, nrefs: usize) -> i32;
            /// Sets return value `index` of the current call to the streamed put's
            /// bytes, like `task_return`.
            TASK_RETURN_END task_return_end(index: u32, refs: *const u8, nrefs: usize) -> i32;
            /// Records why the current call fails (an `ErrorKind` and a message).
            TASK_FAIL task_fail(kind: u32, msg: *const u8, len: usize) -> i32;
            /// Cancels the task that makes the object `id`.
            TASK_CANCEL task_cancel(id: *const u8, flags: i32) -> i32;
            /// Creates an actor; writes its 16-byte id.
            ACTOR_CREATE actor_create(spec: *const u8, len: usize, out_actor: *mut u8) -> i32;
            /// Finds a named actor; writes its id and its type name.
            ACTOR_LOOKUP actor_lookup(name: *const u8, len: usize, out_actor: *mut u8, out_type: *mut u8, type_cap: usize, out_type_len: *mut u32) -> i32;
            /// Kills an actor.
            ACTOR_KILL actor_kill(actor: *const u8, flags: i32) -> i32;
            /// Writes the id of the actor this instance is, if it is one.
            ACTOR_SELF actor_self(out_actor: *mut u8) -> i32;
            /// Copies why the host last answered `STORE_FULL` (UTF-8, possibly
            /// empty) into `buf` when it fits in `cap`; writes the length.
            LAST_ERROR last_error(buf: *mut u8, cap: usize, out_len: *mut u32) -> i32;
        }
    };
}

/// A wasm value type in a host function's signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmType {
    /// `i32`: pointers, lengths, counts, flags, statuses.
    I32,
    /// `i64`: timeouts.
    I64,
}

/// What a Rust parameter type of [`for_each_import!`] is in wasm.
pub trait AbiType {
    /// Its wasm type.
    const WASM: WasmType;
}

macro_rules! abi_types {
    ($($t:ty => $w:ident),* $(,)?) => {$(
        impl AbiType for $t {
            const WASM: WasmType = WasmType::$w;
        }
    )*};
}
abi_types!(
    *const u8 => I32,
    *mut u8 => I32,
    *mut u32 => I32,
    usize => I32,
    u32 => I32,
    i32 => I32,
    i64 => I64,
);

/// A host function's import name, wasm parameter types and result type.
pub type Signature = (&'static str, &'static [WasmType], WasmType);

macro_rules! import_items {
    ($(
        $(#[$doc:meta])*
        $konst:ident $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty;
    )*) => {
        /// Names of the host functions in [`HOST_MODULE`], from
        /// [`for_each_import!`]. See `docs/abi.md` for each signature, its
        /// bounds checks and its errors.
        pub mod import {
            $(
                $(#[$doc])*
                pub const $konst: &str = stringify!($name);
            )*
        }

        /// Every host function's signature, from [`for_each_import!`].
        pub const SIGNATURES: &[Signature] = &[$(
            (
                stringify!($name),
                &[$(<$ty as AbiType>::WASM),*],
                <$ret as AbiType>::WASM,
            ),
        )*];
    };
}
for_each_import!(import_items);

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
