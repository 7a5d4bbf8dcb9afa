//! Operations shared by the HTTP API, the SSO callback and the tasks: each loads what it needs,
//! asks the planner, talks to Discord, and records the outcome and an audit entry.

pub mod audit;
pub mod clients;
pub mod context;
pub mod events;
pub mod health;
pub mod import;
pub mod linked_roles;
pub mod linking;
pub mod members;
pub mod reconcile;
pub mod role_connection;
pub mod roles;
pub mod unlinking;

use crate::discord::DiscordError;
use crate::secrets::SecretsError;
use crate::store::StoreError;
use crate::work::QueueError;

pub use context::ClientContext;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("{0}")]
    Busy(String),
    /// Every writer slot of the client's bot token is taken (it writes to as many guilds at once
    /// as its global budget allows); one frees up within seconds.
    #[error("the bot is writing to as many guilds at once as its global rate limit allows; retry shortly")]
    BotBusy,
    #[error("Discord: {0}")]
    Discord(#[from] DiscordError),
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("secrets: {0}")]
    Secrets(#[from] SecretsError),
    #[error("queue: {0}")]
    Queue(#[from] QueueError),
}

impl ServiceError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ServiceError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
}
