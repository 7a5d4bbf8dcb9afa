//! Read-only snapshots handed to tests and to `GET /_emulator/state` (never carrying secrets).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::scenario::{ScenarioRole, ScenarioUser};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberView {
    pub user_id: String,
    pub nick: Option<String>,
    /// Role ids, without `@everyone`.
    pub roles: BTreeSet<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuildView {
    pub id: String,
    pub name: String,
    pub owner_id: String,
    pub members_intent: bool,
    /// Highest position first, as Discord's client shows them.
    pub roles: Vec<ScenarioRole>,
    pub member_count: usize,
    pub members: Vec<MemberView>,
    pub banned: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    pub application_id: String,
    pub bot_user_id: String,
    pub guilds: Vec<GuildView>,
    pub users: Vec<ScenarioUser>,
    pub rate_limited_count: u64,
}
