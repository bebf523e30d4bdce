//! Calls across languages: values in CBOR ([`Value`], [`Cbor<T>`]), and
//! the functions and actor types of other modules, called by name.
//!
//! A Rust function takes and returns rkyv values, which only Rust reads. A
//! parameter or return type wrapped in [`Cbor`] is the cross-language
//! encoding instead (`docs/abi.md`, "Values across languages"), so C, Go,
//! Python, `wray call` and HTTP clients can call the function:
//!
//! ```no_run
//! use wray::Cbor;
//!
//! #[wray::remote]
//! fn double(x: Cbor<i64>) -> Cbor<i64> {
//!     Cbor(x.0 * 2)
//! }
//! # fn main() {}
//! ```
//!
//! A program calls a function of another module, in any language, by the
//! name the module is linked under (`wray run app.wasm --module
//! c_math=c_math.wasm`), as Ray's `ray.cross_language.java_function` does:
//!
//! ```no_run
//! use wray::Cbor;
//!
//! # fn main() -> wray::Result<()> {
//! let sum = wray::cross::function::<Cbor<i64>>("c_math", "add").arg(1).arg(2).remote();
//! assert_eq!(sum.get()?, 3);
//! let counter = wray::cross::actor("c_math", "Counter").arg(10).remote();
//! let n = counter.method::<Cbor<i64>>("incr").remote();
//! # Ok(())
//! # }
//! ```

use crate::actor::ActorRef;
use crate::error::{Error, Result};
use crate::object::{ObjectRef, check};
use crate::sys;
use crate::task::{Arg, IntoArg, RemoteOptions, encode_spec, submit};
use std::marker::PhantomData;
use wray_abi::wire::{Options, SpecKind};
use wray_abi::{ActorId, ObjectId};

pub use wray_abi::value::Value;

/// A value in the cross-language encoding (CBOR): as a parameter, the
/// function accepts what any language sends; as a return type, any
/// language reads the result. `ObjectRef<Cbor<T>>::get` gives a `T`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Cbor<T>(pub T);

/// A Rust type read from a cross-language value.
pub trait FromValue: Sized {
    /// Converts the value, or says what it was instead.
    fn from_value(value: Value) -> std::result::Result<Self, String>;
}

/// A Rust type written as a cross-language value.
pub trait IntoValue {
    /// Converts to a value.
    fn into_value(self) -> Value;
}

impl FromValue for Value {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        Ok(value)
    }
}

impl IntoValue for Value {
    fn into_value(self) -> Value {
        self
    }
}

macro_rules! int_values {
    ($($t:ty),*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> std::result::Result<Self, String> {
                match value {
                    Value::Int(i) => <$t>::try_from(i).map_err(|_| {
                        format!("{i} does not fit in a {}", stringify!($t))
                    }),
                    other => Err(format!("expected an int, got {}", other.kind())),
                }
            }
        }

        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::Int(i128::from(self))
            }
        }
    )*};
}

int_values!(i8, i16, i32, i64, u8, u16, u32, u64);

impl FromValue for f64 {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::Float(f) => Ok(f),
            // An int where a float is expected is the same number.
            Value::Int(i) => Ok(i as f64),
            other => Err(format!("expected a float, got {}", other.kind())),
        }
    }
}

impl IntoValue for f64 {
    fn into_value(self) -> Value {
        Value::Float(self)
    }
}

/// `FromValue` and `IntoValue` for types that are one variant of `Value`.
macro_rules! variant_values {
    ($($t:ty => $variant:ident, $kind:literal;)*) => {$(
        impl FromValue for $t {
            fn from_value(value: Value) -> std::result::Result<Self, String> {
                match value {
                    Value::$variant(v) => Ok(v),
                    other => Err(format!(concat!("expected ", $kind, ", got {}"), other.kind())),
                }
            }
        }

        impl IntoValue for $t {
            fn into_value(self) -> Value {
                Value::$variant(self)
            }
        }
    )*};
}

variant_values! {
    bool => Bool, "a bool";
    String => Str, "a str";
}

impl IntoValue for &str {
    fn into_value(self) -> Value {
        Value::Str(self.into())
    }
}

impl<T: FromValue> FromValue for Vec<T> {
    fn from_value(value: Value) -> std::result::Result<Self, String> {
        match value {
            Value::List(items) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| T::from_value(v).map_err(|e| format!("item {i}: {e}")))
                .collect(),
            other => Err(format!("expected a list, got {}", other.kind())),
        }
    }
}

impl<T: IntoValue> IntoValue for Vec<T> {
    fn into_value(self) -> Value {
        Value::List(self.into_iter().map(IntoValue::into_value).collect())
    }
}

impl<T: IntoValue> IntoValue for Cbor<T> {
    fn into_value(self) -> Value {
        self.0.into_value()
    }
}

impl Cbor<()> {
    /// Encodes a value (its bytes, and the objects it names).
    pub(crate) fn encode(value: Value) -> (Vec<u8>, Vec<ObjectId>) {
        let refs = value.refs();
        let bytes = value
            .encode()
            .unwrap_or_else(|e| panic!("wray: cannot encode a cross-language value: {e}"));
        (bytes, refs)
    }

    /// Decodes a value into a `T`.
    pub(crate) fn decode<T: FromValue>(bytes: &[u8]) -> Result<T> {
        let value = Value::decode(bytes)
            .map_err(|e| Error::invalid_argument(format!("not a cross-language value: {e}")))?;
        T::from_value(value).map_err(Error::invalid_argument)
    }
}

impl<T: IntoValue> IntoArg<Cbor<T>> for Cbor<T> {
    fn into_arg(self) -> Arg {
        Arg::cbor(self.0.into_value())
    }
}

impl<T: IntoValue> IntoArg<Cbor<T>> for T {
    fn into_arg(self) -> Arg {
        Arg::cbor(self.into_value())
    }
}

/// Puts a cross-language value as an object: the same value put from any
/// language (a C or Go guest, the host, HTTP, Python) is the same object.
pub fn put(value: impl IntoValue) -> ObjectRef<Cbor<Value>> {
    let (bytes, refs) = Cbor::encode(value.into_value());
    let ids = crate::codec::id_bytes(&refs);
    let mut id = [0u8; 32];
    // SAFETY: the pointers are valid for their lengths for the call.
    let status = unsafe {
        sys::object_put_value(
            bytes.as_ptr(),
            bytes.len(),
            ids.as_ptr(),
            refs.len(),
            id.as_mut_ptr(),
        )
    };
    if let Err(e) = check(status, "put") {
        panic!("wray::cross::put failed: {e}");
    }
    ObjectRef::from_held(ObjectId(id))
}

/// A call being built: of a function or actor type of another module, or
/// of an actor's method. Arguments are cross-language values or object
/// references; `R` is what the result reads as (`Cbor<i64>`, ...).
#[must_use = "nothing runs until `.remote()`"]
pub struct Call<R> {
    kind: SpecKind,
    name: String,
    actor: Option<ActorId>,
    options: Options,
    args: Vec<Arg>,
    _result: PhantomData<fn() -> R>,
}

/// Starts a call of `function` of the module linked as `module`.
pub fn function<R>(module: &str, function: &str) -> Call<R> {
    Call::new(SpecKind::Task, function, None, Some(module))
}

/// Starts creating an actor of `type_name`, of the module linked as
/// `module`; `.remote()` gives its [`ActorRef`].
pub fn actor(module: &str, type_name: &str) -> NewActor {
    NewActor(Call::new(
        SpecKind::ActorCreate,
        type_name,
        None,
        Some(module),
    ))
}

impl ActorRef {
    /// Starts a call of `method` on this actor, whatever its language.
    pub fn method<R>(&self, method: &str) -> Call<R> {
        Call::new(SpecKind::ActorMethod, method, Some(self.id()), None)
    }
}

impl<R> Call<R> {
    fn new(kind: SpecKind, name: &str, actor: Option<ActorId>, module: Option<&str>) -> Self {
        Call {
            kind,
            name: name.into(),
            actor,
            options: Options {
                module: module.map(Into::into),
                ..Options::default()
            },
            args: Vec::new(),
            _result: PhantomData,
        }
    }

    /// Adds an argument: a cross-language value.
    pub fn arg(mut self, value: impl IntoValue) -> Self {
        self.args.push(Arg::cbor(value.into_value()));
        self
    }

    /// Adds an argument: the value of an object (the callee receives the
    /// value, once the object is ready).
    pub fn arg_ref<T>(mut self, r: &ObjectRef<T>) -> Self {
        self.args.push(IntoArg::<T>::into_arg(r));
        self
    }
}

impl<R> Call<R> {
    /// Submits the call; returns a reference to its result at once.
    pub fn remote(self) -> ObjectRef<R> {
        submit(self.kind, &self.name, self.actor, &self.options, self.args)
    }
}

/// An actor being created: its constructor's arguments and options.
#[must_use = "nothing runs until `.remote()`"]
pub struct NewActor(Call<()>);

impl NewActor {
    /// Adds a constructor argument: a cross-language value.
    pub fn arg(self, value: impl IntoValue) -> Self {
        NewActor(self.0.arg(value))
    }

    /// Adds a constructor argument: the value of an object.
    pub fn arg_ref<T>(self, r: &ObjectRef<T>) -> Self {
        NewActor(self.0.arg_ref(r))
    }

    /// Creates the actor; returns a reference to it at once. Its methods
    /// are called with [`ActorRef::method`].
    pub fn remote(self) -> ActorRef {
        let c = self.0;
        let spec = encode_spec(c.kind, &c.name, None, &c.options, &c.args);
        let mut id = [0u8; 16];
        // SAFETY: `spec` is readable and `id` writable for the call's duration.
        let status = unsafe { sys::actor_create(spec.as_ptr(), spec.len(), id.as_mut_ptr()) };
        if let Err(e) = check(status, "actor_create") {
            panic!("wray: creating a {} actor failed: {e}", c.name);
        }
        ActorRef::from_id(ActorId(id))
    }
}

impl RemoteOptions for NewActor {
    fn options_mut(&mut self) -> &mut Options {
        &mut self.0.options
    }
}

impl<R> RemoteOptions for Call<R> {
    fn options_mut(&mut self) -> &mut Options {
        &mut self.options
    }
}
