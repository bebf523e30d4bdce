//! [`Parts`]: a borrowed view of a runtime's layers and tokio runtime, what
//! the call builders and the node work with (neither may import `Runtime`),
//! and the host-side operations they share with it: admission, reading an
//! object, storing a cross-language value.

use crate::actor::registry::Actors;
use crate::api::object_ref::ObjectRef;
use crate::error::{Error, Result, TaskError};
use crate::objects::blob::{Bytes, Encoding};
use crate::objects::read::read;
use crate::objects::store::Resolved;
use std::sync::Arc;
use std::time::Duration;
use wray_abi::ObjectId;
use wray_abi::value::Value;

/// The cross-language value of object `id`, whose bytes are `bytes`
/// encoded as `encoding` ([`Parts::read`]); why there is none: the object
/// is recorded as an rkyv value, or its bytes are not a value.
pub(crate) fn read_value(
    id: &ObjectId,
    (bytes, encoding): &(Bytes, Encoding),
) -> std::result::Result<Value, String> {
    if *encoding == Encoding::Rkyv {
        return Err(format!(
            "object {id} holds an rkyv value (written by Rust), which only Rust reads, not a \
             cross-language one; read its bytes instead"
        ));
    }
    Value::decode(bytes).map_err(|e| e.to_string())
}

/// A runtime's actor layer (which holds the layers below) and the tokio
/// runtime its work runs on.
#[derive(Clone, Copy)]
pub(crate) struct Parts<'a> {
    pub actors: &'a Arc<Actors>,
    pub handle: &'a tokio::runtime::Handle,
}

impl Parts<'_> {
    /// Runs a future on the runtime's threads and waits for it.
    pub fn block_on<F: Future>(&self, fut: F) -> F::Output {
        self.handle.block_on(fut)
    }

    /// A handle to the tokio runtime.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.handle
    }

    /// The bytes of object `id`, once it is ready (waiting at most
    /// `timeout`); its error if it failed.
    pub async fn get_bytes(&self, id: ObjectId, timeout: Option<Duration>) -> Result<Bytes> {
        Ok(self.read(id, timeout).await?.0)
    }

    /// [`get_bytes`](Self::get_bytes), with how the bytes are encoded.
    pub async fn read(&self, id: ObjectId, timeout: Option<Duration>) -> Result<(Bytes, Encoding)> {
        let objects = &self.actors.env.objects;
        let entry = objects.get(&id).ok_or(Error::ObjectNotFound(id))?;
        let resolved = match timeout {
            None => entry.resolved().await,
            Some(t) => tokio::time::timeout(t, entry.resolved())
                .await
                .map_err(|_| Error::Timeout(t))?,
        };
        match resolved {
            Resolved::Ready(blob) => read(objects, &id, &entry, &blob)
                .await
                .map(|bytes| (bytes, blob.encoding()))
                .map_err(|rec| Error::Task(TaskError::new(rec))),
            Resolved::Failed(rec) => Err(Error::Task(TaskError::new((*rec).clone()))),
        }
    }

    /// Stores a cross-language value; the objects it refers to must exist.
    pub async fn put_value(&self, value: &Value) -> Result<ObjectRef> {
        let bytes = value
            .encode()
            .map_err(|e| Error::InvalidArgument(format!("cannot encode the value: {e}")))?;
        let objects = &self.actors.env.objects;
        let refs = value.refs();
        if let Some(missing) = refs.iter().find(|id| objects.get(id).is_none()) {
            return Err(Error::ObjectNotFound(*missing));
        }
        self.check_size(bytes.len())?;
        self.admit_async(bytes.len()).await?;
        let id = objects.put_cbor(objects.blob(&bytes, refs));
        Ok(ObjectRef::adopt(objects, id))
    }

    /// Refuses an object past the configured size limit.
    pub fn check_size(&self, len: usize) -> Result<()> {
        let max = self.actors.env.config.max_object_size;
        if len > max {
            return Err(Error::InvalidArgument(format!(
                "object of {len} bytes exceeds the limit of {max} bytes"
            )));
        }
        Ok(())
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
