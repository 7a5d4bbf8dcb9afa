//! Website webhooks: the events we tell a client's website about, the outbox entries that carry
//! them, and the retry schedule. Plain data; the store writes entries in the same write as the
//! change they describe, `work::webhooks` delivers them.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::clock::Timestamp;
use crate::domain::{LastError, Link, LinkStatus, UnlinkCleanup, UnlinkReason};

/// What happened to a site user's link or membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum WebhookEventType {
    #[serde(rename = "link.created")]
    LinkCreated,
    /// Unlinked through the API, replaced by another account (relink, import), or rolled back.
    #[serde(rename = "link.removed")]
    LinkRemoved,
    /// The member revoked our authorization (Discord answered `invalid_grant`).
    #[serde(rename = "link.revoked")]
    LinkRevoked,
    #[serde(rename = "member.left")]
    MemberLeft,
    #[serde(rename = "member.returned")]
    MemberReturned,
    /// Discord refused a change for this member (e.g. 403 50013).
    #[serde(rename = "member.sync_failed")]
    MemberSyncFailed,
    /// Linked Roles are on and the member's link lacks `role_connections.write` (linked before
    /// they were turned on, or imported): the website should ask them to link again.
    #[serde(rename = "link.needs_relink")]
    LinkNeedsRelink,
}

impl WebhookEventType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LinkCreated => "link.created",
            Self::LinkRemoved => "link.removed",
            Self::LinkRevoked => "link.revoked",
            Self::MemberLeft => "member.left",
            Self::MemberReturned => "member.returned",
            Self::MemberSyncFailed => "member.sync_failed",
            Self::LinkNeedsRelink => "link.needs_relink",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::LinkCreated,
            Self::LinkRemoved,
            Self::LinkRevoked,
            Self::MemberLeft,
            Self::MemberReturned,
            Self::MemberSyncFailed,
            Self::LinkNeedsRelink,
        ]
        .into_iter()
        .find(|t| t.as_str() == value)
    }
}

/// One event, before it becomes an outbox entry.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookEvent {
    pub event_type: WebhookEventType,
    pub user_id: String,
    pub discord_user_id: String,
    /// Event-specific fields merged into `data` (`reason`, `code`, `discord_code`, …).
    pub extra: Value,
}

impl WebhookEvent {
    fn new(
        event_type: WebhookEventType,
        user_id: &str,
        discord_user_id: &str,
        extra: Value,
    ) -> Self {
        Self {
            event_type,
            user_id: user_id.to_owned(),
            discord_user_id: discord_user_id.to_owned(),
            extra,
        }
    }

    pub fn link_created(user_id: &str, link: &Link) -> Self {
        Self::new(
            WebhookEventType::LinkCreated,
            user_id,
            &link.discord_user_id,
            json!({ "username": link.username }),
        )
    }

    /// The member must link again to grant `missing_scope` (Linked Roles turned on after they
    /// linked).
    pub fn needs_relink(user_id: &str, link: &Link, missing_scope: &str) -> Self {
        Self::new(
            WebhookEventType::LinkNeedsRelink,
            user_id,
            &link.discord_user_id,
            json!({ "missing_scope": missing_scope, "for": "linked_roles" }),
        )
    }

    /// `reason` `None`: the link was dropped without a clean-up (a link the callback rolled
    /// back).
    pub fn link_removed(user_id: &str, link: &Link, reason: Option<UnlinkReason>) -> Self {
        Self::new(
            reason.map_or(WebhookEventType::LinkRemoved, event_for_unlink),
            user_id,
            &link.discord_user_id,
            json!({ "reason": reason }),
        )
    }

    /// What a new link tells the website: the account it replaces is gone (`link.removed`), and
    /// the new one is linked — unless it is the same account, still active (nothing changed for
    /// the site).
    pub fn for_new_link(
        user_id: &str,
        old: Option<&Link>,
        link: &Link,
        replaced: Option<&UnlinkCleanup>,
    ) -> Vec<Self> {
        let mut events = Vec::new();
        match old {
            Some(o) if o.discord_user_id != link.discord_user_id => {
                events.push(Self::link_removed(user_id, o, replaced.map(|c| c.reason)));
            }
            Some(o) if o.status == LinkStatus::Active => return events,
            _ => {}
        }
        events.push(Self::link_created(user_id, link));
        events
    }

    /// The events a change of a link's status (by a task's outcome) means: left, returned,
    /// revoked — and a refusal newly recorded.
    pub fn for_outcome(
        user_id: &str,
        before: &Link,
        after_status: LinkStatus,
        before_error: Option<&LastError>,
        after_error: Option<&LastError>,
    ) -> Vec<Self> {
        use LinkStatus::*;
        let mut out = Vec::new();
        let id = &before.discord_user_id;
        let status_event = match (before.status, after_status) {
            (Active, Left) => Some(WebhookEventType::MemberLeft),
            (Left, Active) => Some(WebhookEventType::MemberReturned),
            (Active | Left, Revoked) => Some(WebhookEventType::LinkRevoked),
            _ => None,
        };
        if let Some(t) = status_event {
            out.push(Self::new(t, user_id, id, json!({})));
        }
        // A refusal is an error with Discord's code; tell the site once per new refusal, not on
        // every retry that meets the same one (the writer does not resend a refused write).
        if let Some(err) = after_error.filter(|e| e.discord_code.is_some()) {
            let same = before_error
                .is_some_and(|b| b.code == err.code && b.discord_code == err.discord_code);
            if !same {
                out.push(Self::new(
                    WebhookEventType::MemberSyncFailed,
                    user_id,
                    id,
                    json!({ "code": err.code, "discord_code": err.discord_code, "message": err.message }),
                ));
            }
        }
        out
    }

    /// The JSON body sent to the website.
    pub fn body(&self, client: &str, now: Timestamp) -> Value {
        let mut data = json!({
            "client": client,
            "user_id": self.user_id,
            "discord_user_id": self.discord_user_id,
        });
        if let (Some(d), Some(extra)) = (data.as_object_mut(), self.extra.as_object()) {
            for (k, v) in extra {
                d.insert(k.clone(), v.clone());
            }
        }
        json!({
            "type": self.event_type.as_str(),
            "timestamp": rfc3339(now),
            "data": data,
        })
    }
}

/// The event an unlink is for the website. Exhaustive on purpose: a new reason (say, the member
/// withdrew our authorization on Discord) must decide here whether it is `link.revoked`.
fn event_for_unlink(reason: UnlinkReason) -> WebhookEventType {
    match reason {
        UnlinkReason::Unlinked | UnlinkReason::Relinked | UnlinkReason::Imported => {
            WebhookEventType::LinkRemoved
        }
        // The member deauthorized the application on Discord (Webhook Events).
        UnlinkReason::Revoked => WebhookEventType::LinkRevoked,
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    /// Not accepted within [`GIVE_UP_AFTER_SECS`] (or the client's webhook was removed).
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::Pending, Self::Delivered, Self::Failed]
            .into_iter()
            .find(|s| s.as_str() == value)
    }
}

/// One outbox entry: an event for one client's website and its delivery so far.
#[derive(Clone, Debug, PartialEq, Serialize, ToSchema)]
pub struct WebhookDelivery {
    /// `msg_…`: the `webhook-id` header, the same on every attempt (the website's dedup key).
    pub id: String,
    pub client: String,
    #[serde(rename = "type")]
    pub event_type: WebhookEventType,
    pub user_id: String,
    /// The body as sent (its `timestamp` is when the event happened).
    #[schema(value_type = Object)]
    pub payload: Value,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending only).
    pub next_attempt_at: Option<Timestamp>,
    pub created_at: Timestamp,
}

/// What one attempt came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub status: DeliveryStatus,
    pub status_code: Option<u16>,
    pub error: Option<String>,
    /// For `Pending`: when to try again.
    pub next_attempt_at: Option<Timestamp>,
}

/// Waits after the 1st, 2nd, … failed attempt; the last repeats until [`GIVE_UP_AFTER_SECS`].
pub const BACKOFF_SECS: &[i64] = &[5, 30, 120, 600, 1_800, 3_600, 7_200, 14_400];

/// A delivery not accepted this long after its event is `failed` (3 days).
pub const GIVE_UP_AFTER_SECS: i64 = 3 * 86_400;

/// What a failed attempt leads to: another try later, or `failed` once past three days.
pub fn after_failure(
    attempts: u32,
    created_at: Timestamp,
    now: Timestamp,
    status_code: Option<u16>,
    error: String,
) -> DeliveryAttempt {
    let idx = (attempts.max(1) as usize - 1).min(BACKOFF_SECS.len() - 1);
    let next = now + BACKOFF_SECS[idx];
    let give_up = next > created_at + GIVE_UP_AFTER_SECS;
    DeliveryAttempt {
        status: if give_up {
            DeliveryStatus::Failed
        } else {
            DeliveryStatus::Pending
        },
        status_code,
        error: Some(error),
        next_attempt_at: (!give_up).then_some(next),
    }
}

/// `whsec_` + base64 of 32 random bytes (Standard Webhooks' secret format).
pub fn new_webhook_secret() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut key = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

/// The key bytes of a `whsec_…` secret, if it is one of 24–64 bytes.
pub fn webhook_secret_key(secret: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let b64 = secret.strip_prefix("whsec_")?;
    let key = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    (24..=64).contains(&key.len()).then_some(key)
}

/// `2026-11-30T08:00:00Z` for a Unix time (UTC, whole seconds).
pub fn rfc3339(ts: Timestamp) -> String {
    let (days, secs) = (ts.div_euclid(86_400), ts.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3_600,
        secs % 3_600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_036_645), "2026-11-30T11:04:05Z");
    }

    #[test]
    fn backoff_grows_then_gives_up_after_three_days() {
        let a = after_failure(1, 0, 0, Some(500), "500".into());
        assert_eq!(a.next_attempt_at, Some(5));
        let b = after_failure(2, 0, 10, None, "refused".into());
        assert_eq!(b.next_attempt_at, Some(40));
        let late = after_failure(30, 0, GIVE_UP_AFTER_SECS, None, "x".into());
        assert_eq!(late.status, DeliveryStatus::Failed);
        assert_eq!(late.next_attempt_at, None);
    }

    #[test]
    fn secrets_are_whsec_with_a_32_byte_key() {
        let s = new_webhook_secret();
        assert_eq!(webhook_secret_key(&s).map(|k| k.len()), Some(32));
        assert!(webhook_secret_key("whsec_c2hvcnQ=").is_none());
        assert!(webhook_secret_key("nope").is_none());
    }
}
