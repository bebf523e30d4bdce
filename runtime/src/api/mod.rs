//! The public API: the runtime, its builder, remote calls from host code,
//! host references to objects.
pub(crate) mod builder;
pub(crate) mod call;
pub(crate) mod object_ref;
pub(crate) mod parts;
pub(crate) mod runtime;
pub(crate) mod stats;
