//! Plain data and the pure reconcile planner. Nothing in here does I/O.

pub mod audit;
pub mod client;
pub mod console;
pub mod linked_roles;
pub mod member;
pub mod nickname;
pub mod plan;
pub mod report;
pub mod role;
pub mod session;
pub mod token;
pub mod webhook;

pub use audit::{AuditAction, AuditEntry};
pub use client::{Client, GuildFacts, SourceOfTruth, UnlinkPolicy};
pub use console::{
    AuditSearch, ConsoleSession, ConsoleSignIn, MemberCounts, MemberFilter, MemberSearch,
    CONSOLE_SESSION_TTL_SECS,
};
pub use linked_roles::LinkedRoles;
pub use member::{
    refusal_key, LastError, Link, LinkStatus, Member, SiteUser, StoredTokens, UnlinkCleanup,
    UnlinkReason, Unlinking, NICK_REFUSAL,
};
pub use plan::{plan, Current, Desired, GuildView, Plan, PlanIssue};
pub use report::{Count, GroupChange, GuildAudit, PlannedChange, RunError, RunReport, TaskName};
pub use role::Role;
pub use session::LinkSession;
pub use token::{ApiToken, TokenScope};
pub use webhook::{
    DeliveryAttempt, DeliveryStatus, WebhookDelivery, WebhookEvent, WebhookEventType,
};
