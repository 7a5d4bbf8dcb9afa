//! Core of discord-connector: everything that is not an entry point.
//!
//! Entry points (the `discord-connector` CLI and, later, the Lambda functions) build an
//! [`AppState`](http::AppState) once and hand over to the router or a task.

pub mod clock;
pub mod discord;
pub mod domain;
pub mod http;
pub mod secrets;
pub mod store;
pub mod tasks;
