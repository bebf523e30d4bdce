//! Actors: one long-lived instance each, and calls to its methods.
pub(crate) mod actors;
pub(crate) mod registry;
#[cfg_attr(not(feature = "node"), allow(dead_code))]
pub(crate) mod remote;
pub(crate) mod run;
pub(crate) mod upcalls;
