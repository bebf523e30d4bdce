//! The error a guest sees: a task's failure, or a failure of its own call
//! into the host.

use std::fmt;
pub use wray_abi::ErrorKind;
use wray_abi::wire::ErrorRecord;

/// `Result` with [`Error`] as the error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a `get`, a `wait` or a task failed.
///
/// Failures of remote work arrive as values: a task that trapped, panicked,
/// timed out or returned `Err` stores an error in its result, and every
/// `get` of that result returns it, with the failure of the task's own
/// dependencies chained as [`Error::cause`].
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    record: Box<ErrorRecord>,
}

impl Error {
    pub(crate) fn from_record(record: ErrorRecord) -> Self {
        Error {
            record: Box::new(record),
        }
    }

    pub(crate) fn new(kind: ErrorKind, function: &str, message: impl Into<String>) -> Self {
        Error::from_record(ErrorRecord::new(kind, function, message))
    }

    pub(crate) fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, "", message)
    }

    /// What went wrong.
    pub fn kind(&self) -> ErrorKind {
        self.record.kind
    }

    /// The function (or `Type.method`) that failed; empty for failures of
    /// the caller's own request, such as a `get` that timed out.
    pub fn function(&self) -> &str {
        &self.record.function
    }

    /// The message: the task's error, panic message or trap.
    pub fn message(&self) -> &str {
        &self.record.message
    }

    /// The wasm backtrace of the failure, if there is one.
    pub fn backtrace(&self) -> &str {
        &self.record.backtrace
    }

    /// The last output the failed task wrote to stderr.
    pub fn stderr_tail(&self) -> &str {
        &self.record.stderr_tail
    }

    /// How many attempts the task made before failing.
    pub fn attempts(&self) -> u32 {
        self.record.attempts
    }

    /// The failure that caused this one, for a task whose argument failed.
    pub fn cause(&self) -> Option<Error> {
        self.record
            .cause
            .as_deref()
            .cloned()
            .map(Error::from_record)
    }

    /// The innermost failure of the chain.
    pub fn root_cause(&self) -> Error {
        Error::from_record(self.record.root_cause().clone())
    }

    /// Whether a `get` or `wait` gave up because its timeout passed (the
    /// object may still become ready).
    pub fn is_timeout(&self) -> bool {
        self.record.kind == ErrorKind::Timeout && self.record.function.is_empty()
    }

    /// The record as the ABI carries it.
    pub fn record(&self) -> &ErrorRecord {
        &self.record
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.record.function.is_empty() {
            write!(f, "{}: {}", self.record.kind.name(), self.record.message)
        } else {
            self.record.fmt(f)
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)?;
        if !self.record.backtrace.is_empty() {
            write!(f, "\nwasm backtrace:\n{}", self.record.backtrace)?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}
