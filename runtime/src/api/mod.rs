//! The public API: the runtime, its builder, remote calls from host code.
pub(crate) mod call;
pub(crate) mod runtime;
