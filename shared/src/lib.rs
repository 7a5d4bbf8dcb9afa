//! Core of discord-connector: everything that is not an entry point.
//!
//! Entry points (the `discord-connector` CLI and, later, the Lambda functions) build an
//! [`AppState`](http::AppState) once and hand over to the router or a task.

pub mod app;
#[cfg(feature = "aws")]
pub mod aws;
pub mod clock;
pub mod discord;
pub mod domain;
pub mod http;
pub mod schedule;
pub mod secrets;
#[cfg(feature = "embedded")]
pub mod selfhost;
pub mod service;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod work;

/// Re-exported so entry points wrap secrets in the same type.
pub use secrecy;
/// Re-exported so tests build subscribers with the same version as [`telemetry`].
pub use tracing_subscriber;
