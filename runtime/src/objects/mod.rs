//! Objects: immutable values, where their bytes live, and who holds them.
pub(crate) mod blob;
pub(crate) mod spill_dir;
pub(crate) mod store;
