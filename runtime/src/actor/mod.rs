//! Actors: one long-lived instance each, and calls to its methods.
pub(crate) mod actors;
pub(crate) mod upcalls;
