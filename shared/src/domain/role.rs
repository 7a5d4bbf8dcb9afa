use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A guild role as mirrored by `roles/sync`, with the site groups mapped to it.
/// A role is *managed* by us exactly when at least one group maps to it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Role {
    pub id: String,
    pub name: String,
    pub position: i64,
    /// Discord's `managed` flag (bot, booster, integration roles): never assignable by a bot.
    pub managed: bool,
    /// RGB as Discord gives it; 0 for none.
    #[serde(default)]
    pub color: u32,
    pub groups: BTreeSet<String>,
}

impl Role {
    pub fn is_mapped(&self) -> bool {
        !self.groups.is_empty()
    }
}
