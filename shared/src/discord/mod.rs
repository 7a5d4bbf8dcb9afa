//! Discord REST + OAuth2 client: `/v10`, a proper User-Agent, `X-Audit-Log-Reason` on writes,
//! rate limits learned from response headers, typed errors.

pub mod client;
pub mod error;
pub mod model;
pub mod ratelimit;

pub use client::{CallStats, DiscordClient, DiscordConfig, ROLE_CONNECTIONS_WRITE};
pub use error::DiscordError;
pub use model::{
    AddMember, AuthorizationRequest, DiscordUser, Guild, GuildMember, GuildRole, TokenSet,
};
pub use ratelimit::RateLimiter;

pub type DiscordResult<T> = Result<T, DiscordError>;
