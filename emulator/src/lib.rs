//! A stateful, in-memory stand-in for the parts of Discord that `discord-connector` uses: the
//! OAuth2 authorization-code flow, users, guild roles and members, with Discord's status codes,
//! error codes, role hierarchy and rate-limit headers, plus fault injection and a request log.
//!
//! Tests start it in-process with [`Emulator::start`] and talk HTTP to [`Emulator::api_base`];
//! the `discord-emulator` binary serves the same for demos.

mod audit;
mod claims;
mod clock;
mod consent;
mod emulator;
mod error;
mod events;
mod fault;
mod http;
mod linked;
mod oauth;
mod oob;
mod ratelimit;
mod requests;
mod scenario;
mod shared;
mod views;
mod world;

pub use audit::{AuditAction, AuditLogEntry};
pub use claims::ClaimRefused;
pub use consent::Consent;
pub use emulator::Emulator;
pub use events::EventDelivery;
pub use fault::Fault;
pub use linked::LinkedRequirement;
pub use ratelimit::{Limit, RateLimits};
pub use requests::{AuthorizationKind, RecordedRequest};
pub use scenario::{
    Scenario, ScenarioApplication, ScenarioBotUser, ScenarioError, ScenarioGuild, ScenarioMember,
    ScenarioRole, ScenarioUser,
};
pub use views::{GuildView, MemberView, StateView};
