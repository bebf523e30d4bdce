//! The runtime's error type.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;
pub use wray_abi::ErrorKind;
use wray_abi::ObjectId;
use wray_abi::wire::ErrorRecord;

/// `Result` with the runtime's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong when using a [`Runtime`](crate::Runtime).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A task, actor call or driver failed; the error is the value its
    /// result holds.
    #[error("{0}")]
    Task(#[from] TaskError),
    /// The bytes are not a module wray can run.
    #[error("invalid module `{name}`: {reason}")]
    InvalidModule {
        /// The module's name (its file name, or the name given on load).
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A wait ended because its timeout passed; the object may still become
    /// ready.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// No object with this id exists (it was never created, or was freed).
    #[error("object {0} not found")]
    ObjectNotFound(ObjectId),
    /// A value could not be encoded or decoded as the requested type.
    #[error("cannot decode a {type_name}: {reason}")]
    Decode {
        /// The requested type.
        type_name: &'static str,
        /// What rkyv reported.
        reason: String,
    },
    /// An argument to the API is invalid.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// The object store had no room for an object, even after spilling.
    #[error("the object store is full: {0}")]
    ObjectStoreFull(String),
    /// The runtime could not be built with this configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
}

/// A failure of remote work: what [`Error::Task`] carries.
///
/// Display shows the whole cause chain; [`record`](TaskError::record) gives
/// the fields (kind, function, message, wasm backtrace, stderr tail).
#[derive(Clone, PartialEq, Eq)]
pub struct TaskError {
    record: Box<ErrorRecord>,
}

impl TaskError {
    pub(crate) fn new(record: ErrorRecord) -> TaskError {
        TaskError {
            record: Box::new(record),
        }
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.record.kind
    }

    /// The function, `Type.method` or driver that failed.
    pub fn function(&self) -> &str {
        &self.record.function
    }

    /// The error message.
    pub fn message(&self) -> &str {
        &self.record.message
    }

    /// The failure that caused this one, if any.
    pub fn cause(&self) -> Option<TaskError> {
        self.record.cause.as_deref().cloned().map(TaskError::new)
    }

    /// The whole record, as guests receive it.
    pub fn record(&self) -> &ErrorRecord {
        &self.record
    }
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.record.fmt(f)
    }
}

impl fmt::Debug for TaskError {
    /// Display, then the root cause's wasm backtrace and stderr tail.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.record, f)?;
        let root = self.record.root_cause();
        if !root.backtrace.is_empty() {
            write!(f, "\nwasm backtrace:\n{}", root.backtrace)?;
        }
        if !root.stderr_tail.is_empty() {
            write!(f, "\nstderr:\n{}", root.stderr_tail)?;
        }
        Ok(())
    }
}

impl std::error::Error for TaskError {}
