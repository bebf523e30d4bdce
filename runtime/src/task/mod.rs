//! Tasks: the task table, running tasks, and the bench's bare calls.
pub(crate) mod bench;
pub(crate) mod run;
pub(crate) mod table;
