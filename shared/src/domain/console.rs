//! Operator console sessions: what a signed-in browser holds, and the member filters the console
//! offers.

use serde::{Deserialize, Serialize};

use crate::clock::Timestamp;

/// How long a console sign-in lasts (absolute, not sliding): a working day.
pub const CONSOLE_SESSION_TTL_SECS: i64 = 8 * 3600;

/// What the operator signed in with. Checked again on every request, so rotating the bootstrap
/// token or revoking the API token ends the session on every instance at once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ConsoleSignIn {
    /// The deployment's bootstrap token, by its SHA-256.
    Bootstrap { token_sha256: String },
    /// An `operator` API token, by its id and the SHA-256 the store finds it by (one keyed read
    /// per request; sessions stored before the hash was kept have none and look the id up).
    ApiToken {
        token_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_sha256: Option<String>,
    },
}

/// A console session, stored under the SHA-256 of the random id its cookie carries: the store
/// never holds a usable session id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsoleSession {
    pub id_sha256: String,
    pub signed_in_with: ConsoleSignIn,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
}

impl std::fmt::Debug for ConsoleSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsoleSession")
            .field("signed_in_with", &self.signed_in_with)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Which members a console listing shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MemberFilter {
    #[default]
    All,
    /// Discord still has to be brought in line (`pending`).
    Pending,
    /// The last attempt failed (`last_error`).
    Errors,
    /// Linked, but no longer in the guild.
    Left,
    /// The member revoked our authorization.
    Revoked,
    /// Pushed by the site, never linked (or unlinked).
    Unlinked,
}

impl MemberFilter {
    pub const ALL: [MemberFilter; 6] = [
        MemberFilter::All,
        MemberFilter::Pending,
        MemberFilter::Errors,
        MemberFilter::Left,
        MemberFilter::Revoked,
        MemberFilter::Unlinked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MemberFilter::All => "all",
            MemberFilter::Pending => "pending",
            MemberFilter::Errors => "errors",
            MemberFilter::Left => "left",
            MemberFilter::Revoked => "revoked",
            MemberFilter::Unlinked => "unlinked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.as_str() == s)
    }

    pub fn matches(self, m: &super::Member) -> bool {
        use super::LinkStatus;
        let status = m.link.as_ref().map(|l| l.status);
        match self {
            MemberFilter::All => true,
            MemberFilter::Pending => m.pending,
            MemberFilter::Errors => m.last_error.is_some(),
            MemberFilter::Left => status == Some(LinkStatus::Left),
            MemberFilter::Revoked => status == Some(LinkStatus::Revoked),
            MemberFilter::Unlinked => m.link.is_none(),
        }
    }
}

/// A console member search: a filter and optional text. The text matches a site user id or a
/// Discord id exactly, or is contained (ignoring case) in the Discord username, global name or
/// nickname, or the site user id.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemberSearch {
    pub filter: MemberFilter,
    pub text: Option<String>,
}

impl MemberSearch {
    pub fn matches(&self, m: &super::Member) -> bool {
        if !self.filter.matches(m) {
            return false;
        }
        let Some(text) = self
            .text
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        else {
            return true;
        };
        let needle = text.to_lowercase();
        let contains = |s: &str| s.to_lowercase().contains(&needle);
        if contains(&m.user.user_id) {
            return true;
        }
        m.link.as_ref().is_some_and(|l| {
            l.discord_user_id == text
                || contains(&l.username)
                || l.global_name.as_deref().is_some_and(contains)
                || l.nickname.as_deref().is_some_and(contains)
        })
    }
}

/// How a client's members stand, for the dashboard.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct MemberCounts {
    /// Site users the website pushed or imported.
    pub total: u64,
    /// With an active link.
    pub linked: u64,
    pub pending: u64,
    pub errors: u64,
    pub left: u64,
    pub revoked: u64,
    /// With a former account still being cleaned up.
    pub unlinking: u64,
}

impl MemberCounts {
    pub fn add(&mut self, m: &super::Member) {
        use super::LinkStatus;
        self.total += 1;
        match m.link.as_ref().map(|l| l.status) {
            Some(LinkStatus::Active) => self.linked += 1,
            Some(LinkStatus::Left) => self.left += 1,
            Some(LinkStatus::Revoked) => self.revoked += 1,
            None => {}
        }
        self.pending += u64::from(m.pending);
        self.errors += u64::from(m.last_error.is_some());
        self.unlinking += u64::from(!m.unlinking.is_empty());
    }
}

/// A console audit search; every field narrows it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditSearch {
    /// Site user id or Discord id.
    pub member: Option<String>,
    pub action: Option<String>,
    pub actor: Option<String>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl AuditSearch {
    pub fn matches(&self, e: &super::AuditEntry) -> bool {
        let member_ok = self.member.as_deref().is_none_or(|m| {
            e.user_id.as_deref() == Some(m) || e.discord_user_id.as_deref() == Some(m)
        });
        member_ok
            && self.action.as_deref().is_none_or(|a| e.action == a)
            && self.actor.as_deref().is_none_or(|a| e.actor == a)
            && self.since.is_none_or(|s| e.at >= s)
            && self.until.is_none_or(|u| e.at <= u)
    }

    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

#[cfg(test)]
mod sign_in_tests {
    use super::*;

    #[test]
    fn a_session_stored_before_the_token_hash_was_kept_still_reads() {
        let old: ConsoleSignIn =
            serde_json::from_str(r#"{"kind":"api_token","token_id":"t1"}"#).expect("reads");
        assert_eq!(
            old,
            ConsoleSignIn::ApiToken {
                token_id: "t1".into(),
                token_sha256: None
            }
        );
    }
}
