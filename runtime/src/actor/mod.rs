//! Actors: one long-lived instance each, and calls to its methods.
pub(crate) mod actors;
pub(crate) mod registry;
pub(crate) mod run;
pub(crate) mod upcalls;
