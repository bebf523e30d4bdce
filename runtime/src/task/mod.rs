//! Tasks: the task table, running tasks, memoized pure calls, and the
//! bench's bare calls.
pub(crate) mod bench;
pub(crate) mod memo;
pub(crate) mod run;
pub(crate) mod table;
