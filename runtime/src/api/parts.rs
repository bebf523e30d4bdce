//! [`Parts`]: a borrowed view of a runtime's layers and tokio runtime, what
//! the call builders work with (they are built by the `Runtime` and must
//! not import it back).

use crate::actor::registry::Actors;
use crate::error::{Error, Result};
use std::sync::Arc;

/// A runtime's actor layer (which holds the layers below) and the tokio
/// runtime its work runs on.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub actors: &'a Arc<Actors>,
    pub tokio: &'a tokio::runtime::Runtime,
}

impl Parts<'_> {
    /// Runs a future on the runtime's threads and waits for it.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.tokio.block_on(fut)
    }

    /// A handle to the tokio runtime.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.tokio.handle()
    }

    /// Makes room for `len` bytes in the object store, blocking while it
    /// is full (at most the store's wait); does not block when it has room.
    pub fn admit(&self, len: usize) -> Result<()> {
        if self.actors.env.objects.fits(len) {
            return Ok(());
        }
        self.block_on(self.admit_async(len))
    }

    /// Makes room, waiting on this runtime (whose timers it needs) for any
    /// caller's runtime.
    pub async fn admit_async(&self, len: usize) -> Result<()> {
        if self.actors.env.objects.fits(len) {
            return Ok(());
        }
        let actors = self.actors.clone();
        self.handle()
            .spawn(async move { actors.env.objects.admit(len).await })
            .await
            // Its runtime lives as long as the runtime, and admission
            // never panics.
            .expect("waiting for room ends")
            .map_err(|e| Error::ObjectStoreFull(e.0))
    }
}
