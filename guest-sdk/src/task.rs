//! Submitting tasks, and the glue that runs a guest function when the host
//! calls one of its exports.
//!
//! `#[wray::remote]` expands to calls into this module; nothing here is
//! needed by hand except [`RemoteOptions`] and [`IntoArg`].

use crate::codec::{self, Decode, Encode, Encoded, Scratch};
use crate::cross::{Cbor, FromValue, IntoValue};
use crate::error::{Error, ErrorKind, Result};
use crate::object::{Held, Mapping, ObjectRef, check, read_buffer};
use crate::sys;
use crate::view::View;
use rkyv::util::AlignedVec;
use std::fmt::Display;
use std::sync::Once;
use std::time::Duration;
use wray_abi::wire::{self, Options, SpecKind, TaskSpec};
use wray_abi::{ActorId, ObjectId, Status, export};

/// Options of one remote call, set with chained methods before `.remote(..)`:
/// `f::options().max_retries(5).timeout(Duration::from_secs(1)).remote(x)`.
pub trait RemoteOptions: Sized {
    /// The options being built (used by the provided methods).
    #[doc(hidden)]
    fn options_mut(&mut self) -> &mut Options;

    /// How often to retry after a system failure (a worker that failed); -1
    /// retries without limit. Default 3, as in Ray.
    fn max_retries(mut self, n: i32) -> Self {
        self.options_mut().max_retries = Some(n);
        self
    }

    /// Retry guest errors, panics and traps too (within `max_retries`).
    fn retry_exceptions(mut self, yes: bool) -> Self {
        self.options_mut().retry_exceptions = Some(yes);
        self
    }

    /// Wall-clock limit of one attempt; past it the call fails with a
    /// timeout error.
    fn timeout(mut self, limit: Duration) -> Self {
        let ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX).max(1);
        self.options_mut().timeout_ms = Some(ms);
        self
    }

    /// Limit of the instance's linear memory, in bytes; growing past it
    /// fails the call with an out-of-memory error.
    fn memory_limit(mut self, bytes: u64) -> Self {
        self.options_mut().memory_limit = Some(bytes);
        self
    }

    /// Allow the runtime to rebuild a lost result by running the task
    /// again even though it read the clock or random numbers (and so may
    /// produce a different value). Tasks that read neither are
    /// re-executed without asking.
    fn allow_recompute(mut self, yes: bool) -> Self {
        self.options_mut().allow_recompute = Some(yes);
        self
    }

    /// Memoize this call: a call of the same module, function and
    /// arguments answered before is answered from the runtime's memo table
    /// without running (`docs/memo.md`). On by default for a function
    /// declared `#[wray::remote(pure)]`; `memo(false)` turns it off for
    /// one call. Only for functions whose result depends on nothing but
    /// their arguments.
    fn memo(mut self, yes: bool) -> Self {
        self.options_mut().memo = Some(yes);
        self
    }

    /// Run on the cluster node with this id (`wray list nodes` shows
    /// them), as Ray's node affinity; the call fails if no live node has
    /// it. On a node alone, its own id is `0`.
    fn node(mut self, id: &str) -> Self {
        self.options_mut().node = Some(id.into());
        self
    }

    /// Spread calls over the cluster's nodes in turn, as Ray's `SPREAD`
    /// strategy, rather than keeping them on this node while it has room.
    fn spread(mut self) -> Self {
        self.options_mut().spread = Some(true);
        self
    }

    /// Needs `amount` of the custom resource `name` while it runs (an
    /// actor: while it lives), as Ray's `resources={"gpu": 1}`: it runs
    /// only on a node started with that resource (`wray start --resources
    /// '{"gpu": 1}'`), once that much of it is free there. Amounts count
    /// in thousandths; a call asking for more than any node has fails.
    /// Called again for the same name, the last amount counts.
    fn resource(mut self, name: &str, amount: f64) -> Self {
        // Rounded to thousandths; not a positive finite number: 0, which
        // the host refuses with a clear error.
        let milli = if amount.is_finite() && amount > 0.0 {
            (amount * 1000.0).round() as u64
        } else {
            0
        };
        let resources = &mut self.options_mut().resources;
        resources.retain(|(n, _)| n != name);
        resources.push((name.into(), milli));
        self
    }
}

/// One argument of a remote call, ready to send.
pub struct Arg(ArgKind);

enum ArgKind {
    /// An encoded value, and references to the objects it contains, held
    /// until the host has counted them for the task (the value itself may
    /// be gone: `f::remote(r)` moves and drops `r`).
    Value {
        enc: Encoded,
        _keep: Vec<ObjectRef<()>>,
    },
    /// Keeps the reference alive until the host has counted it for the task.
    Ref(ObjectRef<()>),
}

/// Arguments whose encoding is larger than this are put as objects and
/// passed by reference, as Ray does with large arguments: the put streams
/// the value from where it lies, where an inline argument would be copied
/// into an encoding and then into the call's spec, growing the caller's
/// memory by twice its size.
const PUT_ARG_MIN: usize = 64 << 10;

impl Arg {
    /// A cross-language value (CBOR), inline however large (the host
    /// stores large inline values as objects).
    pub(crate) fn cbor(value: crate::cross::Value) -> Arg {
        let (bytes, refs) = Cbor::encode(value);
        let mut aligned = AlignedVec::with_capacity(bytes.len());
        aligned.extend_from_slice(&bytes);
        let _keep = refs.iter().map(|id| ObjectRef::retain(*id)).collect();
        Arg(ArgKind::Value {
            enc: Encoded {
                bytes: aligned,
                refs,
            },
            _keep,
        })
    }

    fn value<T: Encode>(value: &T) -> Arg {
        let len = codec::encoded_len(value);
        if len > PUT_ARG_MIN {
            return Arg(ArgKind::Ref(erase(crate::object::put_measured(value, len))));
        }
        let enc = codec::encode(value);
        let _keep = enc.refs.iter().map(|id| ObjectRef::retain(*id)).collect();
        Arg(ArgKind::Value { enc, _keep })
    }
}

/// What can be passed where a remote function takes a `T`: a `T`, a `&T`,
/// or an [`ObjectRef<T>`] (by value or by reference), whose value the host
/// resolves before the task starts. A parameter typed `ObjectRef<U>` takes
/// the reference itself.
pub trait IntoArg<T> {
    /// Encodes the argument.
    fn into_arg(self) -> Arg;
}

impl<T: Encode> IntoArg<T> for T {
    fn into_arg(self) -> Arg {
        Arg::value(&self)
    }
}

impl<T: Encode> IntoArg<T> for &T {
    fn into_arg(self) -> Arg {
        Arg::value(self)
    }
}

impl<T> IntoArg<T> for ObjectRef<T> {
    fn into_arg(self) -> Arg {
        Arg(ArgKind::Ref(erase(self)))
    }
}

impl<T> IntoArg<T> for &ObjectRef<T> {
    fn into_arg(self) -> Arg {
        Arg(ArgKind::Ref(erase(self.clone())))
    }
}

// A parameter typed `View<T>` is passed what a `T` parameter is.
impl<T: Encode + Decode> IntoArg<View<T>> for T {
    fn into_arg(self) -> Arg {
        Arg::value(&self)
    }
}

impl<T: Encode + Decode> IntoArg<View<T>> for &T {
    fn into_arg(self) -> Arg {
        Arg::value(self)
    }
}

impl<T: Decode> IntoArg<View<T>> for ObjectRef<T> {
    fn into_arg(self) -> Arg {
        Arg(ArgKind::Ref(erase(self)))
    }
}

impl<T: Decode> IntoArg<View<T>> for &ObjectRef<T> {
    fn into_arg(self) -> Arg {
        Arg(ArgKind::Ref(erase(self.clone())))
    }
}

impl IntoArg<String> for &str {
    fn into_arg(self) -> Arg {
        Arg::value(&String::from(self))
    }
}

fn erase<T>(r: ObjectRef<T>) -> ObjectRef<()> {
    let id = r.id();
    std::mem::forget(r);
    ObjectRef::from_held(id)
}

/// Encodes and submits a call; returns the reference to its result.
///
/// Problems the host can only find out itself (an unknown function, an
/// argument too large) come back as an error stored in the result, like any
/// task failure. A spec the host cannot decode is an SDK bug and panics.
#[doc(hidden)]
pub fn submit<R>(
    kind: SpecKind,
    function: &str,
    actor: Option<ActorId>,
    options: &Options,
    args: Vec<Arg>,
) -> ObjectRef<R> {
    let spec = encode_spec(kind, function, actor, options, &args);
    let mut out = [0u8; 32];
    // SAFETY: `spec` is readable and `out` writable for the call's duration.
    let status =
        unsafe { sys::task_submit(spec.as_ptr(), spec.len(), out.as_mut_ptr(), out.len()) };
    if let Err(e) = check(status, "submit") {
        panic!("wray: submitting `{function}` failed: {e}");
    }
    ObjectRef::from_held(ObjectId(out))
}

pub(crate) fn encode_spec(
    kind: SpecKind,
    function: &str,
    actor: Option<ActorId>,
    options: &Options,
    args: &[Arg],
) -> Vec<u8> {
    TaskSpec {
        kind,
        function,
        actor,
        num_returns: 1,
        options: options.clone(),
        args: args
            .iter()
            .map(|a| match &a.0 {
                ArgKind::Value { enc, .. } => wire::Arg::Value {
                    bytes: &enc.bytes,
                    refs: enc.refs_bytes(),
                },
                ArgKind::Ref(r) => wire::Arg::Ref(r.id()),
            })
            .collect(),
    }
    .encode()
}

/// Where a call's argument buffer lives.
enum ArgsBuf<'s> {
    /// In the caller's stack scratch (small arguments).
    Stack(&'s [u8]),
    /// On the heap (arguments larger than the scratch).
    Heap(AlignedVec),
}

/// The arguments of the current call, decoded one at a time.
#[doc(hidden)]
pub struct Args<'s> {
    buf: ArgsBuf<'s>,
    count: usize,
    next: usize,
}

impl<'s> Args<'s> {
    /// Fetches the current call's arguments from the host, into `scratch`
    /// when they fit.
    fn fetch<const N: usize>(scratch: &'s mut Scratch<N>) -> Result<Args<'s>> {
        let mut len = 0u32;
        let ptr = scratch.0.as_mut_ptr().cast::<u8>();
        // SAFETY: `ptr` has N writable bytes and `len` is writable for the
        // call's duration.
        let status = unsafe { sys::task_args(ptr, N, &mut len) };
        let buf = if status == Status::BufferTooSmall as i32 {
            let (status, heap) = read_buffer(|ptr, cap, len| {
                // SAFETY: as above, for the heap buffer.
                unsafe { sys::task_args(ptr, cap, len) }
            });
            check(status, "task_args")?;
            ArgsBuf::Heap(heap)
        } else {
            check(status, "task_args")?;
            // SAFETY: the host wrote `len` (at most N) bytes to the scratch,
            // which stays borrowed for 's.
            ArgsBuf::Stack(unsafe { std::slice::from_raw_parts(ptr, (len as usize).min(N)) })
        };
        let bytes = match &buf {
            ArgsBuf::Stack(b) => b,
            ArgsBuf::Heap(v) => v.as_slice(),
        };
        // Validate every slot once; `next` then slices without checks failing.
        let count = wire::decode_args_count(bytes)
            .map_err(|e| Error::invalid_argument(format!("malformed argument buffer: {e}")))?;
        Ok(Args {
            buf,
            count,
            next: 0,
        })
    }

    fn bytes(&self) -> &[u8] {
        match &self.buf {
            ArgsBuf::Stack(b) => b,
            ArgsBuf::Heap(v) => v.as_slice(),
        }
    }

    /// Decodes the next argument as a `T` (a value, or a view of one).
    pub fn next<T: FromArg>(&mut self, param: &str) -> Result<T> {
        if self.next >= self.count {
            return Err(Error::invalid_argument(format!(
                "missing argument `{param}`: the call has {} arguments",
                self.count
            )));
        }
        let i = self.next;
        self.next += 1;
        let slot = match wire::arg_slot(self.bytes(), i).expect("slots were validated") {
            wire::ArgSlot::Inline(bytes) => ArgBytes::Inline(bytes),
            wire::ArgSlot::Mapped { .. } => ArgBytes::Mapped(i as u32),
        };
        T::from_arg(slot)
            .map_err(|e| Error::invalid_argument(format!("argument `{param}`: {}", e.message())))
    }

    /// Fails when the call had more arguments than the function takes.
    pub fn finish(&self) -> Result<()> {
        if self.next != self.count {
            return Err(Error::invalid_argument(format!(
                "the function takes {} arguments but the call has {}",
                self.next, self.count
            )));
        }
        Ok(())
    }
}

/// Where an argument's bytes are.
#[doc(hidden)]
pub enum ArgBytes<'a> {
    /// In the argument buffer.
    Inline(&'a [u8]),
    /// Left out of it (a large argument): the host maps argument `n` on
    /// request (`task_arg_map`).
    Mapped(u32),
}

impl ArgBytes<'_> {
    /// The argument's bytes: borrowed from the buffer, or mapped.
    fn held(self) -> Result<Held> {
        match self {
            ArgBytes::Inline(slot) => {
                let mut bytes = AlignedVec::with_capacity(slot.len());
                bytes.extend_from_slice(slot);
                Ok(Held::Owned(bytes))
            }
            ArgBytes::Mapped(index) => {
                let (mut addr, mut len) = (0u32, 0u32);
                // SAFETY: `addr` and `len` are writable for the call.
                let status = unsafe { sys::task_arg_map(index, &mut addr, &mut len) };
                check(status, "task_arg_map")?;
                // SAFETY: the host mapped `len` bytes at `addr` for us alone.
                Ok(Held::Mapped(unsafe { Mapping::new(addr, len) }))
            }
        }
    }
}

/// What a parameter can be: any value that decodes, or a [`View`] of one.
#[doc(hidden)]
pub trait FromArg: Sized {
    /// The parameter from its argument's bytes (aligned).
    fn from_arg(arg: ArgBytes<'_>) -> Result<Self>;
}

impl<T: Decode> FromArg for T {
    fn from_arg(arg: ArgBytes<'_>) -> Result<T> {
        match arg {
            ArgBytes::Inline(slot) => codec::decode(slot),
            // Decoded straight from the mapping, which then goes.
            mapped => codec::decode(&mapped.held()?),
        }
    }
}

impl<T: FromValue> FromArg for Cbor<T> {
    fn from_arg(arg: ArgBytes<'_>) -> Result<Cbor<T>> {
        match arg {
            ArgBytes::Inline(slot) => Cbor::decode(slot).map(Cbor),
            mapped => Cbor::decode(&mapped.held()?).map(Cbor),
        }
    }
}

impl<T: Decode> FromArg for View<T> {
    fn from_arg(arg: ArgBytes<'_>) -> Result<View<T>> {
        View::new(arg.held()?)
    }
}

/// Turns a function's `Err` into the call's error.
#[doc(hidden)]
pub fn application_error(function: &str, e: &dyn Display) -> Error {
    Error::new(ErrorKind::Application, function, e.to_string())
}

/// Reports panics to the host, so the failure carries the panic message.
fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let msg = info.to_string();
            report_failure(ErrorKind::Panic, &msg);
        }));
    });
}

fn report_failure(kind: ErrorKind, msg: &str) {
    // SAFETY: `msg` is readable for the call's duration.
    unsafe { sys::task_fail(kind as u32, msg.as_ptr(), msg.len()) };
}

/// Runs the body of a task or actor method export: fetches the arguments,
/// runs `body`, hands the result (or failure) to the host.
#[doc(hidden)]
pub fn run_call<T: Return>(body: impl FnOnce(&mut Args<'_>) -> Result<T>) -> i32 {
    install_panic_hook();
    let mut scratch = Scratch::<256>::new();
    let result = Args::fetch(&mut scratch).and_then(|mut args| body(&mut args));
    finish_call(result)
}

/// What a remote function or method may return: an rkyv value, or a
/// cross-language one ([`Cbor`]).
#[doc(hidden)]
pub trait Return {
    /// Hands the value to the host as the call's result; the host's status.
    fn set_return(self) -> i32;
}

impl<T: Encode> Return for T {
    fn set_return(self) -> i32 {
        codec::set_return(&self)
    }
}

impl<T: IntoValue> Return for Cbor<T> {
    fn set_return(self) -> i32 {
        let (bytes, refs) = Cbor::encode(self.0.into_value());
        let ids = codec::id_bytes(&refs);
        // SAFETY: the pointers are readable for their lengths for the call.
        unsafe { sys::task_return(0, bytes.as_ptr(), bytes.len(), ids.as_ptr(), refs.len()) }
    }
}

/// Hands a call's result to the host; returns the export's return code.
pub(crate) fn finish_call<T: Return>(result: Result<T>) -> i32 {
    let value = match result {
        Ok(v) => v,
        Err(e) => {
            report_failure(e.kind(), e.message());
            return export::FAILED;
        }
    };
    let status = value.set_return();
    match check(status, "return") {
        Ok(_) => export::OK,
        Err(e) => {
            report_failure(e.kind(), e.message());
            export::FAILED
        }
    }
}

/// What a `#[wray::main]` function may return: `()` or `Result<(), E>`.
pub trait MainResult {
    /// The failure message, if the driver failed.
    fn into_failure(self) -> Option<String>;
}

impl MainResult for () {
    fn into_failure(self) -> Option<String> {
        None
    }
}

impl<E: Display> MainResult for std::result::Result<(), E> {
    fn into_failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

/// Runs a `#[wray::main]` driver.
#[doc(hidden)]
pub fn run_main<R: MainResult>(main: impl FnOnce() -> R) -> i32 {
    install_panic_hook();
    match main().into_failure() {
        None => export::OK,
        Some(msg) => {
            report_failure(ErrorKind::Application, &msg);
            export::FAILED
        }
    }
}
