//! Byte formats that cross the guest boundary.
//!
//! Three structures are not user values and so are not rkyv-encoded; they
//! have small, fixed, little-endian formats that a C guest can produce by
//! hand (`docs/abi.md` gives each byte):
//!
//! - a **task spec** ([`TaskSpec`]), sent by `task_submit` and `actor_create`:
//!   what to run, its options and its arguments;
//! - the **argument buffer** ([`ArgsLayout`], [`decode_args`]), filled by
//!   `task_args`: the resolved arguments, each aligned to [`VALUE_ALIGN`];
//! - an **error record** ([`ErrorRecord`]), what `object_get` hands back for a
//!   failed object.
//!
//! Decoders never panic and never allocate more than a constant times the
//! input length, whatever the input: the host runs them on guest bytes.
//!
//! [`VALUE_ALIGN`]: crate::VALUE_ALIGN

use crate::{ActorId, ErrorKind, ObjectId, TaskId, VALUE_ALIGN};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

/// Version byte that starts a task spec and an error record.
pub const WIRE_VERSION: u8 = 1;

/// Deepest cause chain an error record may carry; deeper chains are cut when
/// encoding and refused when decoding.
pub const MAX_CAUSE_DEPTH: usize = 16;

/// Why bytes did not decode.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodeError {
    /// Byte offset at which decoding stopped.
    pub offset: usize,
    /// What was wrong there.
    pub what: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.offset)
    }
}

/// A bounds-checked little-endian reader.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0 }
    }

    fn err(&self, what: &'static str) -> DecodeError {
        DecodeError {
            offset: self.pos,
            what,
        }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn bytes(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.err(what));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let s = self.bytes(N, what)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        Ok(u16::from_le_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    /// A `u32` length followed by that many bytes.
    fn blob(&mut self, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let n = self.u32(what)? as usize;
        self.bytes(n, what)
    }

    fn str(&mut self, what: &'static str) -> Result<&'a str, DecodeError> {
        let start = self.pos;
        let b = self.blob(what)?;
        core::str::from_utf8(b).map_err(|_| DecodeError {
            offset: start,
            what: "string is not UTF-8",
        })
    }

    fn finish(&self) -> Result<(), DecodeError> {
        if self.remaining() != 0 {
            return Err(self.err("trailing bytes"));
        }
        Ok(())
    }
}

/// Little-endian writing helpers over a `Vec<u8>`.
trait Put {
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_blob(&mut self, b: &[u8]);
}

impl Put for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_le_bytes());
    }
    fn put_blob(&mut self, b: &[u8]) {
        // Lengths above u32::MAX cannot occur in a 32-bit guest; saturate
        // rather than wrap so a host-side misuse fails decoding loudly.
        self.put_u32(u32::try_from(b.len()).unwrap_or(u32::MAX));
        self.extend_from_slice(b);
    }
}

/// What a task spec asks the host to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum SpecKind {
    /// Run a stateless task: `function` names `wray:task/<function>`.
    Task = 0,
    /// Create an actor: `function` is the actor type; the args go to its
    /// constructor.
    ActorCreate = 1,
    /// Call a method of an existing actor: `function` is the method name.
    ActorMethod = 2,
}

/// Options of a task, an actor call or an actor; every field is optional and
/// unset fields take the runtime's defaults.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Options {
    /// Retries after system failures (`-1`: without limit).
    pub max_retries: Option<i32>,
    /// Whether guest errors and traps are retried too.
    pub retry_exceptions: Option<bool>,
    /// Wall-clock limit of one attempt, in milliseconds.
    pub timeout_ms: Option<u64>,
    /// Linear memory limit, in bytes.
    pub memory_limit: Option<u64>,
    /// Name under which an actor is registered.
    pub name: Option<String>,
    /// Restarts an actor is allowed after it dies (`-1`: without limit).
    pub max_restarts: Option<i32>,
    /// Retries of an actor method when the actor dies under it.
    pub max_task_retries: Option<i32>,
    /// Whether the task's results may be made again from lineage even if it
    /// reads the clock or random numbers.
    pub allow_recompute: Option<bool>,
    /// The module, linked into the program by name, whose function or
    /// actor type this is (unset: the caller's own module).
    pub module: Option<String>,
    /// Whether a pure call's result may be answered from, and stored in,
    /// the runtime's memo table (`docs/memo.md`).
    pub memo: Option<bool>,
    /// The cluster node the call must run on (its id; Ray's node
    /// affinity). Unset: wherever the scheduler places it.
    pub node: Option<String>,
    /// Spread calls over the cluster's nodes in turn rather than keeping
    /// them local while the local node has room (Ray's `SPREAD`).
    pub spread: Option<bool>,
    /// Custom resources the call needs while it runs (an actor: while it
    /// lives), by name, in thousandths of a unit (`("gpu", 1000)` is one
    /// GPU): it runs only on a node that has them, once they are free
    /// there (Ray's `resources`). Empty: none.
    pub resources: Vec<(String, u64)>,
}

/// Option keys of the spec format.
mod key {
    pub const MAX_RETRIES: u16 = 1;
    pub const RETRY_EXCEPTIONS: u16 = 2;
    pub const TIMEOUT_MS: u16 = 3;
    pub const MEMORY_LIMIT: u16 = 4;
    pub const NAME: u16 = 5;
    pub const MAX_RESTARTS: u16 = 6;
    pub const MAX_TASK_RETRIES: u16 = 7;
    pub const ALLOW_RECOMPUTE: u16 = 8;
    pub const MODULE: u16 = 9;
    pub const MEMO: u16 = 10;
    pub const NODE: u16 = 11;
    pub const SPREAD: u16 = 12;
    pub const RESOURCES: u16 = 13;
}

impl Options {
    /// The options alone, in the spec's format (how they travel between
    /// nodes).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// Options encoded by [`to_bytes`](Self::to_bytes).
    pub fn from_bytes(buf: &[u8]) -> Result<Options, DecodeError> {
        let mut r = Reader { buf, pos: 0 };
        let o = Options::decode(&mut r)?;
        if r.pos != buf.len() {
            return Err(DecodeError {
                offset: r.pos,
                what: "bytes after the options",
            });
        }
        Ok(o)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let mut entries: Vec<(u16, Vec<u8>)> = Vec::new();
        if let Some(v) = self.max_retries {
            entries.push((key::MAX_RETRIES, v.to_le_bytes().to_vec()));
        }
        if let Some(v) = self.retry_exceptions {
            entries.push((key::RETRY_EXCEPTIONS, alloc::vec![v as u8]));
        }
        if let Some(v) = self.timeout_ms {
            entries.push((key::TIMEOUT_MS, v.to_le_bytes().to_vec()));
        }
        if let Some(v) = self.memory_limit {
            entries.push((key::MEMORY_LIMIT, v.to_le_bytes().to_vec()));
        }
        if let Some(v) = &self.name {
            entries.push((key::NAME, v.as_bytes().to_vec()));
        }
        if let Some(v) = self.max_restarts {
            entries.push((key::MAX_RESTARTS, v.to_le_bytes().to_vec()));
        }
        if let Some(v) = self.max_task_retries {
            entries.push((key::MAX_TASK_RETRIES, v.to_le_bytes().to_vec()));
        }
        if let Some(v) = self.allow_recompute {
            entries.push((key::ALLOW_RECOMPUTE, alloc::vec![v as u8]));
        }
        if let Some(v) = &self.module {
            entries.push((key::MODULE, v.as_bytes().to_vec()));
        }
        if let Some(v) = self.memo {
            entries.push((key::MEMO, alloc::vec![v as u8]));
        }
        if let Some(v) = &self.node {
            entries.push((key::NODE, v.as_bytes().to_vec()));
        }
        if let Some(v) = self.spread {
            entries.push((key::SPREAD, alloc::vec![v as u8]));
        }
        if !self.resources.is_empty() {
            let mut v = Vec::new();
            v.put_u32(self.resources.len() as u32);
            for (name, amount) in &self.resources {
                v.put_blob(name.as_bytes());
                v.extend_from_slice(&amount.to_le_bytes());
            }
            entries.push((key::RESOURCES, v));
        }
        out.put_u32(entries.len() as u32);
        for (k, v) in entries {
            out.put_u16(k);
            out.put_blob(&v);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Options, DecodeError> {
        let n = r.u32("option count")?;
        let mut o = Options::default();
        for _ in 0..n {
            let k = r.u16("option key")?;
            let start = r.pos;
            let v = r.blob("option value")?;
            let bad = |what| DecodeError {
                offset: start,
                what,
            };
            let i32v = || -> Result<i32, DecodeError> {
                Ok(i32::from_le_bytes(
                    v.try_into().map_err(|_| bad("option is not 4 bytes"))?,
                ))
            };
            let u64v = || -> Result<u64, DecodeError> {
                Ok(u64::from_le_bytes(
                    v.try_into().map_err(|_| bad("option is not 8 bytes"))?,
                ))
            };
            match k {
                key::MAX_RETRIES => o.max_retries = Some(i32v()?),
                key::RETRY_EXCEPTIONS | key::ALLOW_RECOMPUTE | key::MEMO | key::SPREAD => {
                    let b = match v {
                        [0] => false,
                        [1] => true,
                        _ => return Err(bad("a flag option is not one byte 0 or 1")),
                    };
                    match k {
                        key::RETRY_EXCEPTIONS => o.retry_exceptions = Some(b),
                        key::ALLOW_RECOMPUTE => o.allow_recompute = Some(b),
                        key::MEMO => o.memo = Some(b),
                        _ => o.spread = Some(b),
                    }
                }
                key::TIMEOUT_MS => o.timeout_ms = Some(u64v()?),
                key::MEMORY_LIMIT => o.memory_limit = Some(u64v()?),
                key::NAME => {
                    let s = core::str::from_utf8(v).map_err(|_| bad("name is not UTF-8"))?;
                    o.name = Some(String::from(s));
                }
                key::MODULE => {
                    let s = core::str::from_utf8(v).map_err(|_| bad("module is not UTF-8"))?;
                    o.module = Some(String::from(s));
                }
                key::NODE => {
                    let s = core::str::from_utf8(v).map_err(|_| bad("node is not UTF-8"))?;
                    o.node = Some(String::from(s));
                }
                key::MAX_RESTARTS => o.max_restarts = Some(i32v()?),
                key::MAX_TASK_RETRIES => o.max_task_retries = Some(i32v()?),
                key::RESOURCES => {
                    let mut r = Reader { buf: v, pos: 0 };
                    let n = r.u32("resource count")?;
                    for _ in 0..n {
                        let name = r.blob("resource name")?;
                        let name = core::str::from_utf8(name)
                            .map_err(|_| bad("a resource name is not UTF-8"))?;
                        let amount = u64::from_le_bytes(r.array("resource amount")?);
                        o.resources.push((String::from(name), amount));
                    }
                    if r.pos != v.len() {
                        return Err(bad("bytes after the resources"));
                    }
                }
                _ => return Err(bad("unknown option key")),
            }
        }
        Ok(o)
    }
}

/// One argument of a task spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arg<'a> {
    /// A value passed inline: its encoded bytes, and the ids of the objects
    /// referenced from inside it (32 bytes each), which the host keeps alive
    /// for as long as the value exists.
    Value {
        /// The value's encoded bytes.
        bytes: &'a [u8],
        /// Concatenated 32-byte ids of objects referenced inside the value.
        refs: &'a [u8],
    },
    /// An object whose value is the argument: the host waits until it is
    /// ready and passes its bytes; if it failed, the task fails without
    /// running.
    Ref(ObjectId),
}

/// Tag bytes of [`Arg`] in the spec format.
const ARG_VALUE: u8 = 0;
const ARG_REF: u8 = 1;

/// A decoded task spec, borrowing from the bytes it was decoded from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaskSpec<'a> {
    /// What to do.
    pub kind: SpecKind,
    /// The task function, the actor type or the method.
    pub function: &'a str,
    /// The actor, for [`SpecKind::ActorMethod`].
    pub actor: Option<ActorId>,
    /// How many return values the call has.
    pub num_returns: u32,
    /// Options; unset ones take defaults.
    pub options: Options,
    /// The arguments, in order.
    pub args: Vec<Arg<'a>>,
}

impl<'a> TaskSpec<'a> {
    /// Encodes the spec in the v1 format.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.function.len());
        out.push(WIRE_VERSION);
        out.push(self.kind as u8);
        out.put_u16(0);
        out.put_blob(self.function.as_bytes());
        if let Some(a) = self.actor {
            out.extend_from_slice(&a.0);
        }
        out.put_u32(self.num_returns);
        self.options.encode(&mut out);
        out.put_u32(self.args.len() as u32);
        for a in &self.args {
            match a {
                Arg::Value { bytes, refs } => {
                    out.push(ARG_VALUE);
                    out.put_blob(bytes);
                    out.put_u32((refs.len() / ObjectId::LEN) as u32);
                    out.extend_from_slice(refs);
                }
                Arg::Ref(id) => {
                    out.push(ARG_REF);
                    out.extend_from_slice(&id.0);
                }
            }
        }
        out
    }

    /// Decodes a v1 spec. Fails on anything malformed, including trailing
    /// bytes and a method call without an actor id.
    pub fn decode(buf: &'a [u8]) -> Result<TaskSpec<'a>, DecodeError> {
        let mut r = Reader::new(buf);
        if r.u8("version")? != WIRE_VERSION {
            return Err(DecodeError {
                offset: 0,
                what: "unsupported spec version",
            });
        }
        let kind = match r.u8("kind")? {
            0 => SpecKind::Task,
            1 => SpecKind::ActorCreate,
            2 => SpecKind::ActorMethod,
            _ => {
                return Err(DecodeError {
                    offset: 1,
                    what: "unknown spec kind",
                });
            }
        };
        if r.u16("reserved")? != 0 {
            return Err(DecodeError {
                offset: 2,
                what: "reserved bytes are not zero",
            });
        }
        let function = r.str("function name")?;
        let actor = match kind {
            SpecKind::ActorMethod => Some(ActorId(r.array("actor id")?)),
            _ => None,
        };
        let num_returns = r.u32("num_returns")?;
        let options = Options::decode(&mut r)?;
        let n = r.u32("arg count")? as usize;
        // Every argument takes at least 5 bytes: never reserve more than the
        // input could hold, whatever count it claims.
        let mut args = Vec::with_capacity(n.min(r.remaining() / 5));
        for _ in 0..n {
            match r.u8("arg tag")? {
                ARG_VALUE => {
                    let bytes = r.blob("arg value")?;
                    let nrefs = r.u32("arg ref count")? as usize;
                    let len = nrefs
                        .checked_mul(ObjectId::LEN)
                        .ok_or_else(|| r.err("arg ref count overflows"))?;
                    let refs = r.bytes(len, "arg refs")?;
                    args.push(Arg::Value { bytes, refs });
                }
                ARG_REF => args.push(Arg::Ref(ObjectId(r.array("arg object id")?))),
                _ => return Err(r.err("unknown arg tag")),
            }
        }
        r.finish()?;
        Ok(TaskSpec {
            kind,
            function,
            actor,
            num_returns,
            options,
            args,
        })
    }
}

/// Where each argument sits in the buffer `task_args` fills.
///
/// The buffer starts with a `u32` count, then `count` pairs of `u32` (offset,
/// length), then the payloads. Every payload starts at an offset that is a
/// multiple of [`VALUE_ALIGN`] from the start of the buffer, so a guest that
/// passes an aligned buffer gets aligned values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgsLayout {
    /// (offset, length) of each payload.
    pub slots: Vec<(u32, u32)>,
    /// Total size of the buffer.
    pub total: usize,
}

/// The offset a slot of an argument buffer has when its argument is not
/// in the buffer: it is large, and the guest maps it with `task_arg_map`.
pub const MAPPED_ARG: u32 = u32::MAX;

impl ArgsLayout {
    /// Lays out payloads of the given lengths, each in the buffer (`false`)
    /// or left out to be mapped (`true`, a [`MAPPED_ARG`] slot). `None` when
    /// the buffer would not fit in a 32-bit address space.
    pub fn new(args: impl ExactSizeIterator<Item = (usize, bool)>) -> Option<ArgsLayout> {
        let n = args.len();
        let header = 4usize.checked_add(n.checked_mul(8)?)?;
        let mut at = align_up(header)?;
        let mut total = header;
        let mut slots = Vec::with_capacity(n);
        for (len, mapped) in args {
            let len32 = u32::try_from(len).ok()?;
            if mapped {
                slots.push((MAPPED_ARG, len32));
                continue;
            }
            slots.push((u32::try_from(at).ok()?, len32));
            total = at.checked_add(len)?;
            at = align_up(total)?;
        }
        u32::try_from(total).ok()?;
        Some(ArgsLayout { slots, total })
    }

    /// Writes the header (count and slots) into the start of `buf`, which
    /// must be at least `self.total` bytes long.
    pub fn write_header(&self, buf: &mut [u8]) {
        buf[..4].copy_from_slice(&(self.slots.len() as u32).to_le_bytes());
        for (i, &(o, l)) in self.slots.iter().enumerate() {
            let at = 4 + i * 8;
            buf[at..at + 4].copy_from_slice(&o.to_le_bytes());
            buf[at + 4..at + 8].copy_from_slice(&l.to_le_bytes());
        }
    }
}

/// One argument of an argument buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArgSlot<'a> {
    /// Its bytes, in the buffer.
    Inline(&'a [u8]),
    /// Left out: `len` bytes to map with `task_arg_map`.
    Mapped {
        /// The argument's length in bytes.
        len: u32,
    },
}

fn align_up(n: usize) -> Option<usize> {
    Some(n.checked_add(VALUE_ALIGN - 1)? & !(VALUE_ALIGN - 1))
}

/// Checks every slot of an argument buffer and returns how many there are.
pub fn decode_args_count(buf: &[u8]) -> Result<usize, DecodeError> {
    let mut r = Reader::new(buf);
    let n = r.u32("arg count")? as usize;
    for _ in 0..n {
        let o = r.u32("arg offset")?;
        let l = r.u32("arg length")? as usize;
        let end = (o as usize).checked_add(l);
        if o != MAPPED_ARG && end.is_none_or(|e| e > buf.len()) {
            return Err(r.err("arg slot out of bounds"));
        }
    }
    Ok(n)
}

/// Slot `i` of an argument buffer, if it is in bounds.
pub fn arg_slot(buf: &[u8], i: usize) -> Option<ArgSlot<'_>> {
    let at = 4usize.checked_add(i.checked_mul(8)?)?;
    let word = |at: usize| Some(u32::from_le_bytes(buf.get(at..at + 4)?.try_into().ok()?));
    let (o, l) = (word(at)?, word(at + 4)?);
    if o == MAPPED_ARG {
        return Some(ArgSlot::Mapped { len: l });
    }
    let o = o as usize;
    buf.get(o..o.checked_add(l as usize)?).map(ArgSlot::Inline)
}

/// Splits an argument buffer into its slots.
pub fn decode_args(buf: &[u8]) -> Result<Vec<ArgSlot<'_>>, DecodeError> {
    let n = decode_args_count(buf)?;
    Ok((0..n)
        .map(|i| arg_slot(buf, i).expect("decode_args_count checked every slot"))
        .collect())
}

/// A failure, as the host hands it to a guest and as it is shown to users.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErrorRecord {
    /// What went wrong.
    pub kind: ErrorKind,
    /// The task that failed (all zero when no task is involved).
    pub task: TaskId,
    /// How many attempts were made.
    pub attempts: u32,
    /// The function, `Type.method` or driver that failed.
    pub function: String,
    /// The message: the guest's error, panic message or trap description.
    pub message: String,
    /// The wasm backtrace, one frame a line (may be empty).
    pub backtrace: String,
    /// The last lines the guest wrote to stderr (may be empty).
    pub stderr_tail: String,
    /// The failure that caused this one (for a failed dependency), shared
    /// with every other failure it caused. Set it with
    /// [`caused_by`](Self::caused_by), which keeps chains bounded.
    pub cause: Option<Arc<ErrorRecord>>,
}

impl ErrorRecord {
    /// A record with only a kind, a function and a message.
    pub fn new(kind: ErrorKind, function: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorRecord {
            kind,
            task: TaskId([0; 16]),
            attempts: 1,
            function: function.into(),
            message: message.into(),
            backtrace: String::new(),
            stderr_tail: String::new(),
            cause: None,
        }
    }

    /// This record, caused by `cause`: the chain is shared, not copied, and
    /// cut to [`MAX_CAUSE_DEPTH`] records (the innermost beyond are
    /// dropped), so a failure that spreads through N dependents costs O(N),
    /// however they chain.
    pub fn caused_by(mut self, cause: Arc<ErrorRecord>) -> Self {
        self.cause = Some(cut(cause, MAX_CAUSE_DEPTH - 1));
        self
    }

    /// The innermost cause of the chain.
    pub fn root_cause(&self) -> &ErrorRecord {
        let mut e = self;
        while let Some(c) = &e.cause {
            e = c;
        }
        e
    }

    /// Encodes the record (its cause chain cut at [`MAX_CAUSE_DEPTH`]).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.message.len() + self.backtrace.len());
        let mut e = Some(self);
        let mut depth = 0;
        while let Some(rec) = e {
            out.push(WIRE_VERSION);
            out.put_u32(rec.kind as u32);
            out.extend_from_slice(&rec.task.0);
            out.put_u32(rec.attempts);
            out.put_blob(rec.function.as_bytes());
            out.put_blob(rec.message.as_bytes());
            out.put_blob(rec.backtrace.as_bytes());
            out.put_blob(rec.stderr_tail.as_bytes());
            depth += 1;
            e = rec.cause.as_deref().filter(|_| depth < MAX_CAUSE_DEPTH);
            out.push(e.is_some() as u8);
        }
        out
    }

    /// Decodes a record and its cause chain.
    pub fn decode(buf: &[u8]) -> Result<ErrorRecord, DecodeError> {
        let mut r = Reader::new(buf);
        let mut chain = Vec::new();
        loop {
            if chain.len() == MAX_CAUSE_DEPTH {
                return Err(r.err("cause chain too deep"));
            }
            if r.u8("version")? != WIRE_VERSION {
                return Err(r.err("unsupported error record version"));
            }
            let code = r.u32("kind")?;
            let kind = ErrorKind::from_code(code).ok_or_else(|| r.err("unknown error kind"))?;
            let task = TaskId(r.array("task id")?);
            let attempts = r.u32("attempts")?;
            let function = String::from(r.str("function")?);
            let message = String::from(r.str("message")?);
            let backtrace = String::from(r.str("backtrace")?);
            let stderr_tail = String::from(r.str("stderr tail")?);
            chain.push(ErrorRecord {
                kind,
                task,
                attempts,
                function,
                message,
                backtrace,
                stderr_tail,
                cause: None,
            });
            match r.u8("cause flag")? {
                0 => break,
                1 => continue,
                _ => return Err(r.err("cause flag is not 0 or 1")),
            }
        }
        r.finish()?;
        let mut rec = chain.pop().expect("the loop pushes at least one record");
        while let Some(mut outer) = chain.pop() {
            outer.cause = Some(Arc::new(rec));
            rec = outer;
        }
        Ok(rec)
    }
}

/// `rec`'s chain kept to `keep` records: shared as it is when it is short
/// enough (always, for chains made with `caused_by`, but one record too
/// long), else its first `keep` records copied.
fn cut(rec: Arc<ErrorRecord>, keep: usize) -> Arc<ErrorRecord> {
    let mut depth = 1;
    let mut e = &rec;
    while let Some(c) = &e.cause {
        depth += 1;
        if depth > keep {
            break;
        }
        e = c;
    }
    if depth <= keep {
        return rec;
    }
    let mut head = rec.clone_without_cause();
    if keep > 1
        && let Some(c) = &rec.cause
    {
        head.cause = Some(cut(c.clone(), keep - 1));
    }
    Arc::new(head)
}

impl ErrorRecord {
    /// A copy of this record alone, without its cause.
    fn clone_without_cause(&self) -> ErrorRecord {
        ErrorRecord {
            kind: self.kind,
            task: self.task,
            attempts: self.attempts,
            function: self.function.clone(),
            message: self.message.clone(),
            backtrace: self.backtrace.clone(),
            stderr_tail: self.stderr_tail.clone(),
            cause: None,
        }
    }
}

impl fmt::Display for ErrorRecord {
    /// One line per link of the chain: `kind in function (task ..): message`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} in {}: {}",
            self.kind.name(),
            self.function,
            self.message
        )?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        if let Some(c) = &self.cause {
            write!(f, "\ncaused by: {c}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn sample_spec() -> Vec<u8> {
        TaskSpec {
            kind: SpecKind::Task,
            function: "add",
            actor: None,
            num_returns: 1,
            options: Options {
                max_retries: Some(2),
                ..Options::default()
            },
            args: vec![
                Arg::Value {
                    bytes: &[1, 0, 0, 0],
                    refs: &[],
                },
                Arg::Ref(ObjectId([7; 32])),
            ],
        }
        .encode()
    }

    /// The spec format, byte for byte, as `docs/abi.md` documents it.
    #[test]
    fn spec_test_vector() {
        let mut want = vec![1u8, 0, 0, 0]; // version, kind=task, reserved
        want.extend_from_slice(&[3, 0, 0, 0]);
        want.extend_from_slice(b"add");
        want.extend_from_slice(&[1, 0, 0, 0]); // num_returns
        want.extend_from_slice(&[1, 0, 0, 0]); // one option
        want.extend_from_slice(&[1, 0, 4, 0, 0, 0, 2, 0, 0, 0]); // max_retries = 2
        want.extend_from_slice(&[2, 0, 0, 0]); // two args
        want.extend_from_slice(&[0, 4, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]); // value, no refs
        want.push(1);
        want.extend_from_slice(&[7; 32]);
        assert_eq!(sample_spec(), want);
    }

    #[test]
    fn spec_round_trips() {
        let bytes = sample_spec();
        let spec = TaskSpec::decode(&bytes).unwrap();
        assert_eq!(spec.function, "add");
        assert_eq!(spec.options.max_retries, Some(2));
        assert_eq!(spec.args.len(), 2);
        assert_eq!(spec.encode(), bytes);

        let method = TaskSpec {
            kind: SpecKind::ActorMethod,
            function: "incr",
            actor: Some(ActorId::new(1, 9)),
            num_returns: 1,
            options: Options {
                name: Some("counter".into()),
                retry_exceptions: Some(true),
                timeout_ms: Some(5),
                memory_limit: Some(1 << 20),
                max_restarts: Some(-1),
                max_task_retries: Some(3),
                max_retries: None,
                allow_recompute: Some(true),
                module: Some("c_math".into()),
                memo: Some(false),
                node: Some("3".into()),
                spread: Some(true),
                resources: vec![("gpu".into(), 500), ("disk".into(), 2000)],
            },
            args: vec![Arg::Value {
                bytes: b"xyz",
                refs: &[3; 64],
            }],
        };
        let bytes = method.encode();
        assert_eq!(TaskSpec::decode(&bytes).unwrap(), method);
    }

    #[test]
    fn memo_is_option_key_10_one_byte() {
        let spec = TaskSpec {
            kind: SpecKind::Task,
            function: "f",
            actor: None,
            num_returns: 1,
            options: Options {
                memo: Some(true),
                ..Options::default()
            },
            args: vec![],
        };
        let bytes = spec.encode();
        let options = &bytes[13..];
        assert_eq!(&options[..11], &[1, 0, 0, 0, 10, 0, 1, 0, 0, 0, 1]);
        assert_eq!(TaskSpec::decode(&bytes).unwrap(), spec);
        let mut bad = bytes.clone();
        bad[23] = 2;
        assert!(TaskSpec::decode(&bad).is_err(), "a flag is 0 or 1");
    }

    #[test]
    fn options_travel_alone_and_refuse_trailing_bytes() {
        let o = Options {
            node: Some("2".into()),
            spread: Some(false),
            max_retries: Some(1),
            resources: vec![("gpu".into(), 1000)],
            ..Options::default()
        };
        let bytes = o.to_bytes();
        assert_eq!(Options::from_bytes(&bytes).unwrap(), o);
        for cut in 0..bytes.len() {
            assert!(Options::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(Options::from_bytes(&longer).is_err());
        assert!(Options::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn spec_rejects_every_truncation_and_trailing_bytes() {
        let bytes = sample_spec();
        for cut in 0..bytes.len() {
            assert!(TaskSpec::decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            TaskSpec::decode(&longer).unwrap_err().what,
            "trailing bytes"
        );
    }

    #[test]
    fn spec_rejects_huge_counts_without_allocating() {
        let mut bytes = vec![1u8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0];
        bytes.extend_from_slice(&u32::MAX.to_le_bytes()); // claims 4 billion args
        assert!(TaskSpec::decode(&bytes).is_err());
        let mut bytes = vec![1u8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0];
        bytes.extend_from_slice(&[0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]); // refs overflow
        assert!(TaskSpec::decode(&bytes).is_err());
    }

    #[test]
    fn args_layout_aligns_every_payload() {
        let layout = ArgsLayout::new([4usize, 0, 17, 3].map(|n| (n, false)).into_iter()).unwrap();
        let mut buf = vec![0u8; layout.total];
        layout.write_header(&mut buf);
        for &(o, _) in &layout.slots {
            assert_eq!(o as usize % VALUE_ALIGN, 0);
        }
        // Header: 4 + 4*8 = 36 bytes, so the first payload starts at 48.
        assert_eq!(layout.slots[0], (48, 4));
        assert_eq!(layout.slots[1], (64, 0));
        assert_eq!(layout.slots[2], (64, 17));
        assert_eq!(layout.slots[3], (96, 3));
        assert_eq!(layout.total, 99);
        let parts = decode_args(&buf).unwrap();
        let lens = |parts: &[ArgSlot<'_>]| -> Vec<usize> {
            parts
                .iter()
                .map(|p| match p {
                    ArgSlot::Inline(b) => b.len(),
                    ArgSlot::Mapped { .. } => usize::MAX,
                })
                .collect()
        };
        assert_eq!(lens(&parts), [4, 0, 17, 3]);
        let empty = ArgsLayout::new(core::iter::empty()).unwrap();
        assert_eq!(empty.total, 4);
    }

    #[test]
    fn mapped_args_take_no_room_in_the_buffer() {
        let layout =
            ArgsLayout::new([(4usize, false), (1 << 30, true), (3, false)].into_iter()).unwrap();
        assert_eq!(layout.slots[1], (MAPPED_ARG, 1 << 30));
        assert_eq!(layout.slots[2], (48, 3));
        assert_eq!(layout.total, 51);
        let mut buf = vec![0u8; layout.total];
        layout.write_header(&mut buf);
        assert_eq!(decode_args_count(&buf), Ok(3));
        assert_eq!(arg_slot(&buf, 1), Some(ArgSlot::Mapped { len: 1 << 30 }));
        assert_eq!(arg_slot(&buf, 2), Some(ArgSlot::Inline(&[0, 0, 0][..])));
        // Only inline lengths count against the 4 GiB buffer.
        let huge = [(u32::MAX as usize, true), (u32::MAX as usize, true)];
        assert!(ArgsLayout::new(huge.into_iter()).is_some());
        assert!(ArgsLayout::new([(u32::MAX as usize, false)].into_iter()).is_none());
    }

    #[test]
    fn args_decoder_rejects_out_of_bounds_slots() {
        let mut buf = vec![1, 0, 0, 0, 16, 0, 0, 0, 0xff, 0, 0, 0];
        buf.resize(32, 0);
        assert!(decode_args(&buf).is_err());
        assert!(decode_args_count(&buf).is_err());
        assert!(decode_args(&[5, 0, 0, 0]).is_err());
        assert!(decode_args_count(&[5, 0, 0, 0]).is_err());
    }

    #[test]
    fn error_records_round_trip_with_causes() {
        let mut inner = ErrorRecord::new(ErrorKind::Panic, "child", "boom");
        inner.task = TaskId::new(0, 5);
        inner.backtrace = "0: child\n1: main".into();
        let mut outer = ErrorRecord::new(ErrorKind::DependencyFailed, "parent", "arg 0 failed");
        outer = outer.caused_by(Arc::new(inner.clone()));
        outer.attempts = 3;
        let bytes = outer.encode();
        let back = ErrorRecord::decode(&bytes).unwrap();
        assert_eq!(back, outer);
        assert_eq!(back.root_cause(), &inner);
        for cut in 0..bytes.len() {
            assert!(ErrorRecord::decode(&bytes[..cut]).is_err());
        }
    }

    /// The error record format, byte for byte, as `docs/abi.md` documents it.
    #[test]
    fn error_record_test_vector() {
        let rec = ErrorRecord::new(ErrorKind::Application, "f", "no");
        let mut want = vec![1u8, 1, 0, 0, 0];
        want.extend_from_slice(&[0; 16]);
        want.extend_from_slice(&[1, 0, 0, 0]);
        want.extend_from_slice(&[1, 0, 0, 0, b'f']);
        want.extend_from_slice(&[2, 0, 0, 0, b'n', b'o']);
        want.extend_from_slice(&[0; 8]);
        want.push(0);
        assert_eq!(rec.encode(), want);
    }

    #[test]
    fn error_chains_are_cut_at_max_depth() {
        let mut rec = ErrorRecord::new(ErrorKind::Trap, "f0", "x");
        for i in 1..40 {
            let mut outer =
                ErrorRecord::new(ErrorKind::DependencyFailed, alloc::format!("f{i}"), "y");
            outer.cause = Some(Arc::new(rec));
            rec = outer;
        }
        let back = ErrorRecord::decode(&rec.encode()).unwrap();
        assert_eq!(chain_len(&back), MAX_CAUSE_DEPTH);
    }

    fn chain_len(rec: &ErrorRecord) -> usize {
        let mut depth = 1;
        let mut e = rec;
        while let Some(c) = &e.cause {
            depth += 1;
            e = c;
        }
        depth
    }

    #[test]
    fn causes_are_shared_and_chains_stay_bounded_when_made() {
        let root = Arc::new(ErrorRecord::new(ErrorKind::Trap, "root", "x"));
        // A fan-out: a thousand dependents share the one cause.
        let fan: Vec<ErrorRecord> = (0..1000)
            .map(|_| {
                ErrorRecord::new(ErrorKind::DependencyFailed, "d", "y").caused_by(root.clone())
            })
            .collect();
        assert!(
            fan.iter()
                .all(|d| Arc::ptr_eq(d.cause.as_ref().unwrap(), &root))
        );
        // A line: each depends on the one before; chains never pass the bound,
        // and the outermost records are the ones kept.
        let mut rec = Arc::new(ErrorRecord::new(ErrorKind::Trap, "f0", "x"));
        for i in 1..100 {
            let outer = ErrorRecord::new(ErrorKind::DependencyFailed, alloc::format!("f{i}"), "y");
            rec = Arc::new(outer.caused_by(rec));
            assert!(chain_len(&rec) <= MAX_CAUSE_DEPTH);
        }
        assert_eq!(chain_len(&rec), MAX_CAUSE_DEPTH);
        assert_eq!(rec.function, "f99");
        assert_eq!(rec.cause.as_ref().unwrap().function, "f98");
    }
}
