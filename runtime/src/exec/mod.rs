//! Running guest code: the engine, compiled modules, slots, and one
//! instance's store and state.
pub(crate) mod engine;
pub(crate) mod guest;
pub(crate) mod instance;
pub(crate) mod mapping;
pub(crate) mod module;
pub(crate) mod slots;
