//! The scheduled tasks, one function each, shared by every host.
