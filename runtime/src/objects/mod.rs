//! Objects: immutable values, where their bytes live, who holds them, and
//! how lost ones are made again.
pub(crate) mod arg;
pub(crate) mod blob;
pub(crate) mod held;
pub(crate) mod lineage;
pub(crate) mod memo;
pub(crate) mod read;
pub(crate) mod spill_dir;
pub(crate) mod store;
