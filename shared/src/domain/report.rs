use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::clock::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TaskName {
    VerifyGroups,
    SyncAccounts,
    RemoteSyncGroups,
}

impl TaskName {
    pub const ALL: [TaskName; 3] = [
        TaskName::VerifyGroups,
        TaskName::SyncAccounts,
        TaskName::RemoteSyncGroups,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            TaskName::VerifyGroups => "verify-groups",
            TaskName::SyncAccounts => "sync-accounts",
            TaskName::RemoteSyncGroups => "remote-sync-groups",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl std::fmt::Display for TaskName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The keys of a run report's `counts`: members by what the run did with them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Count {
    Examined,
    Changed,
    Unchanged,
    /// A call that may succeed later failed: the member stays pending.
    Failed,
    Left,
    Returned,
    Revoked,
    NamesRefreshed,
    /// Changes pushed while a weekly scan held the guild's writer, applied between its pages.
    PushedApplied,
    TokensToRefresh,
    TokensRefreshed,
    TokensFailed,
    TokensUnreadable,
    /// Linked Roles: role connections that had drifted on Discord, written again.
    RoleConnectionsRepaired,
}

impl Count {
    pub const fn as_str(self) -> &'static str {
        match self {
            Count::Examined => "examined",
            Count::Changed => "changed",
            Count::Unchanged => "unchanged",
            Count::Failed => "failed",
            Count::Left => "left",
            Count::Returned => "returned",
            Count::Revoked => "revoked",
            Count::NamesRefreshed => "names_refreshed",
            Count::PushedApplied => "pushed_applied",
            Count::TokensToRefresh => "tokens_to_refresh",
            Count::TokensRefreshed => "tokens_refreshed",
            Count::TokensFailed => "tokens_failed",
            Count::TokensUnreadable => "tokens_unreadable",
            Count::RoleConnectionsRepaired => "role_connections_repaired",
        }
    }

    /// Reads a key back (e.g. from a stored report's `counts`).
    pub fn get(self, counts: &BTreeMap<String, u64>) -> u64 {
        counts.get(self.as_str()).copied().unwrap_or(0)
    }
}

/// A member a run could not bring in line, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunError {
    pub user_id: Option<String>,
    pub discord_user_id: Option<String>,
    pub code: String,
    pub discord_code: Option<u64>,
    pub message: String,
}

/// One change a run made, or would make in a dry run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlannedChange {
    pub user_id: String,
    pub discord_user_id: String,
    pub add_roles: Vec<String>,
    pub remove_roles: Vec<String>,
    /// `Some(None)` clears the nickname.
    #[schema(value_type = Option<String>)]
    pub set_nickname: Option<Option<String>>,
}

/// What a scan of the live member list saw (remote-sync-groups, sync-accounts).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GuildAudit {
    /// Guild members seen in this run (bots excluded).
    pub members_seen: u64,
    pub linked: u64,
    /// Members no site user links.
    pub unlinked: u64,
    /// Up to 1,000 of their Discord ids.
    pub unlinked_sample: Vec<String>,
}

/// A site user's groups rewritten from Discord (remote-priority mode).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupChange {
    pub user_id: String,
    pub added: Vec<String>,
    pub removed: Vec<String>,
}

/// What one task run did: stored, and readable through `GET …/runs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RunReport {
    pub id: String,
    pub client: String,
    pub task: TaskName,
    pub dry_run: bool,
    /// What started the run: `schedule`, `admin`, `cli`, `lambda`.
    #[serde(default)]
    pub trigger: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
    /// Members by outcome: `examined`, `changed`, `unchanged`, `failed`, `left`, …
    pub counts: BTreeMap<String, u64>,
    /// Discord calls by route, e.g. `PUT /guilds/{g}/members/{u}/roles/{r}`.
    pub calls: BTreeMap<String, u64>,
    pub rate_limited: u64,
    /// 401/403/429 answers (Discord bans the IP past 10,000 per 10 minutes).
    #[serde(default)]
    pub invalid_requests: u64,
    pub errors: Vec<RunError>,
    /// The changes made (or, in a dry run, planned).
    pub changes: Vec<PlannedChange>,
    /// Where the next run resumes when this one ran out of time.
    pub cursor: Option<String>,
    pub complete: bool,
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guild_audit: Option<GuildAudit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub group_changes: Vec<GroupChange>,
}

impl RunReport {
    pub fn new(id: String, client: &str, task: TaskName, dry_run: bool, now: Timestamp) -> Self {
        Self {
            id,
            client: client.to_owned(),
            task,
            dry_run,
            trigger: String::new(),
            started_at: now,
            finished_at: now,
            counts: BTreeMap::new(),
            calls: BTreeMap::new(),
            rate_limited: 0,
            invalid_requests: 0,
            errors: Vec::new(),
            changes: Vec::new(),
            cursor: None,
            complete: false,
            notes: Vec::new(),
            guild_audit: None,
            group_changes: Vec::new(),
        }
    }

    pub fn count(&mut self, outcome: Count) {
        *self.counts.entry(outcome.as_str().to_owned()).or_default() += 1;
    }

    /// Keeps at most `cap` entries in each list and says how many were left out (counts stay
    /// complete).
    pub fn cap_lists(&mut self, cap: usize) {
        let mut cut = |what: &str, len: usize| {
            if len > cap {
                self.notes.push(format!(
                    "{} more {what} not listed here (see the audit trail)",
                    len - cap
                ));
            }
        };
        cut("changes", self.changes.len());
        cut("errors", self.errors.len());
        cut("group changes", self.group_changes.len());
        self.changes.truncate(cap);
        self.errors.truncate(cap);
        self.group_changes.truncate(cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capped_lists_keep_the_first_entries_and_say_how_many_were_left_out() {
        let mut r = RunReport::new("r".into(), "c", TaskName::RemoteSyncGroups, false, 0);
        for i in 0..5 {
            r.errors.push(RunError {
                user_id: Some(format!("u{i}")),
                discord_user_id: None,
                code: "x".into(),
                discord_code: None,
                message: String::new(),
            });
        }
        r.cap_lists(3);
        assert_eq!(r.errors.len(), 3);
        assert_eq!(r.errors[0].user_id.as_deref(), Some("u0"));
        assert_eq!(
            r.notes,
            vec!["2 more errors not listed here (see the audit trail)"]
        );
    }
}
