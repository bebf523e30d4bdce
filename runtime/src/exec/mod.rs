//! Running guest code: the engine, compiled modules, slots, one instance's
//! store and state, calling an export and reading its outcome.
pub(crate) mod engine;
pub(crate) mod env;
pub(crate) mod guest;
pub(crate) mod instance;
pub(crate) mod invoke;
pub(crate) mod manifest;
pub(crate) mod mapping;
pub(crate) mod module;
// Filled in only by a node's cluster layer.
#[cfg_attr(not(feature = "node"), allow(dead_code))]
pub(crate) mod remote;
pub(crate) mod request;
pub(crate) mod resources;
pub(crate) mod slots;
pub(crate) mod state;
