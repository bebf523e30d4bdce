//! Tasks: submission, the task table, running attempts, arguments.
pub(crate) mod scheduler;
