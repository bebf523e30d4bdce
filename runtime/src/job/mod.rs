//! Jobs: drivers, and what they started.
pub(crate) mod driver;
pub(crate) mod handle;
