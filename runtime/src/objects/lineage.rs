//! Lineage: what made an object, so that it can be made again.
//!
//! A task's result that can spill keeps the task that made it, as a
//! [`Remake`]: the task layer implements it; the store does not know what a
//! task is.

use futures_util::future::BoxFuture;
use std::sync::Arc;
use wray_abi::wire::ErrorRecord;

/// Something that made objects and can make them again: a finished task.
pub(crate) trait Remake: Send + Sync {
    /// The function that made the objects (for error messages).
    fn function(&self) -> &str;

    /// Runs again to restore every lost result; fails if it cannot, or if
    /// it gives other bytes.
    fn remake(&self) -> BoxFuture<'_, Result<(), ErrorRecord>>;

    /// Whether running it again gives the same bytes (it read no clock
    /// and no random numbers).
    #[cfg_attr(not(feature = "node"), allow(dead_code))] // asked by other nodes
    fn repeatable(&self) -> bool;
}

/// What made an object: a finished task that can run again.
pub(crate) type Lineage = Arc<dyn Remake>;
