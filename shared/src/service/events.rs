//! Discord's Webhook Events, once verified: a member who removes the application from their
//! authorized apps is unlinked as if they had been unlinked through the API (the client's unlink
//! policy, by the guild's writer), with reason `revoked`.
//!
//! Discord retries deliveries it thinks failed, so handling is idempotent twice over: the same
//! body is handled once (a de-duplication lease on its hash), and a deauthorization of an account
//! that is no longer linked does nothing.

use serde_json::json;
use sha2::{Digest, Sha256};

use crate::app::AppState;
use crate::domain::{AuditAction, Client, LinkStatus, UnlinkCleanup, UnlinkReason};
use crate::store::StoreError;
use crate::work::dispatch::{mark_pending, wake};

use super::audit::AuditBatch;
use super::ServiceError;

/// The audit actor of everything an event does.
pub const ACTOR: &str = "discord";

/// How long a handled body is remembered: longer than Discord keeps retrying one.
const DEDUPE_TTL_SECS: i64 = 24 * 60 * 60;

/// What a verified event asks of us.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// `APPLICATION_DEAUTHORIZED`: the user removed the application (or Discord banned them).
    Deauthorized { discord_user_id: String },
    /// `APPLICATION_AUTHORIZED`: the user authorized the application (our link flow does so too).
    Authorized { discord_user_id: String },
}

/// Handles `event` for every client of its application (`clients`), once per `body`. Only store
/// work: the Discord side is left to each guild's writer, so the caller answers at once.
pub async fn handle(
    app: &AppState,
    clients: &[Client],
    body: &[u8],
    event: Event,
) -> Result<(), ServiceError> {
    let lease = format!("discord-event:{}", hex::encode(Sha256::digest(body)));
    let holder = uuid::Uuid::new_v4().to_string();
    let now = app.clock.now();
    if app
        .store
        .acquire_lease(&lease, &holder, now, DEDUPE_TTL_SECS)
        .await?
        .is_none()
    {
        tracing::debug!("Discord event delivered again; already handled");
        return Ok(());
    }
    let handled = async {
        for client in clients {
            match &event {
                Event::Deauthorized { discord_user_id } => {
                    deauthorized(app, client, discord_user_id).await?
                }
                Event::Authorized { discord_user_id } => {
                    // Named when the account is already linked (our own link flow authorizes
                    // too, and the event may arrive before or after the link is stored).
                    let member = app
                        .store
                        .find_member_by_discord(&client.id, discord_user_id)
                        .await?;
                    let user_id = member.as_ref().map(|m| m.user.user_id.as_str());
                    let mut audit = AuditBatch::new(&client.id, ACTOR, now);
                    audit.push(
                        AuditAction::AppAuthorized,
                        user_id,
                        Some(discord_user_id),
                        json!({}),
                    );
                    audit.save(app.store.as_ref()).await?;
                }
            }
        }
        Ok::<_, ServiceError>(())
    }
    .await;
    if handled.is_err() {
        // Not handled: Discord's retry must find the body new. (Work already done is found done.)
        let _ = app.store.release_lease(&lease, &holder, None).await;
    }
    handled
}

/// Unlinks the client's member linked to `discord_user_id`, if any: the link is removed with a
/// clean-up of reason `revoked` (the client's unlink policy, applied by the guild's writer) and
/// the writer woken. An account not linked, or whose link was already revoked (a refused token
/// refresh found out first, and applied the policy then), needs nothing.
async fn deauthorized(
    app: &AppState,
    client: &Client,
    discord_user_id: &str,
) -> Result<(), ServiceError> {
    let store = app.store.as_ref();
    let Some(member) = store
        .find_member_by_discord(&client.id, discord_user_id)
        .await?
    else {
        return Ok(());
    };
    let user_id = member.user.user_id.as_str();
    match member.link.as_ref() {
        Some(link)
            if link.discord_user_id == discord_user_id && link.status != LinkStatus::Revoked => {}
        _ => return Ok(()),
    }
    // The grant is gone on Discord's side: the writer has nothing to revoke, and revoking a dead
    // token would only cost a request.
    match store.set_tokens(&client.id, user_id, None).await {
        Ok(()) | Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    let cleanup = UnlinkCleanup {
        reason: UnlinkReason::Revoked,
        policy: client.unlink_policy,
        actor: ACTOR.to_owned(),
    };
    // Marked before the member becomes pending, so no tick can miss them.
    mark_pending(app, &client.id).await?;
    let now = app.clock.now();
    let Some(old) = store
        .delete_link(&client.id, user_id, Some(&cleanup), now)
        .await?
    else {
        // Removed meanwhile (a concurrent delivery or an operator's unlink): theirs to audit.
        return Ok(());
    };
    let mut audit = AuditBatch::new(&client.id, ACTOR, now);
    audit.push(
        AuditAction::LinkRevoked,
        Some(user_id),
        Some(&old.discord_user_id),
        json!({
            "policy": client.unlink_policy,
            "reason": UnlinkReason::Revoked,
            "event": "APPLICATION_DEAUTHORIZED",
        }),
    );
    audit.save(store).await?;
    tracing::info!(client = %client.id, user = %user_id, "link revoked on Discord; unlinking");
    wake(app, &client.id).await
}
