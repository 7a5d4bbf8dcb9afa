//! Site users' desired state and unlinking.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::app::AppState;
use crate::discord::DiscordError;
use crate::domain::plan::{desired_for, plan};
use crate::domain::AuditAction;
use std::collections::BTreeSet;

use crate::domain::{
    Current, GuildView, LinkStatus, Member, SiteUser, UnlinkCleanup, UnlinkPolicy, UnlinkReason,
};

use super::audit::AuditBatch;
use super::reconcile::{audit_reason, last_error};
use super::{ClientContext, ServiceError};
use crate::domain::linked_roles::role_connection_due;
use crate::store::Outcome;
use crate::work::dispatch::{mark_pending, wake};

/// Stores a site user's groups and attributes. When their linked member is now out of line, marks
/// them pending and wakes the guild's writer, which applies the change within seconds at the
/// bucket's pace; the API never waits on Discord.
pub async fn save_user(
    app: &AppState,
    client_id: &str,
    user: SiteUser,
) -> Result<Member, ServiceError> {
    // The hot path of the API: decided from the store alone; no secret read, no Discord call.
    let client = app
        .store
        .get_client(client_id)
        .await?
        .ok_or(ServiceError::NotFound("client"))?;
    let roles = app.store.list_roles(client_id).await?;
    let existing = app.store.get_member(client_id, &user.user_id).await?;
    let needs_work = existing
        .as_ref()
        .and_then(Member::active_link)
        .is_some_and(|link| {
            if !link.roles_known {
                // An imported link: the writer reads the member before planning, but only for a
                // real change (an unchanged re-push waits for the weekly sync to learn the roles).
                return existing.as_ref().is_some_and(|m| m.user != user);
            }
            let desired = desired_for(&user, link, &roles, client.nickname_template.as_deref());
            let current = Current {
                discord_user_id: link.discord_user_id.clone(),
                roles: link.applied_roles.clone(),
                nickname: link.nickname.clone(),
            };
            let guild = GuildView {
                guild_id: &client.guild_id,
                roles: &roles,
                bot_top_position: client.guild.bot_top_position,
                owner_id: client.guild.owner_id.as_deref(),
            };
            // A write Discord refused is not work until something relevant changes: re-pushing
            // the same groups must not send it again.
            !plan(&desired, &current, &guild)
                .without_refused(&link.refused)
                .is_noop()
                // Linked Roles: a change of the member's metadata is work for the writer too,
                // even when their Discord roles stay the same.
                || role_connection_due(client.linked_roles.as_ref(), &user, link).is_some()
        });
    // Already pending: a writer may be applying the old state right now, so a changed desired
    // state is work even when our record already matches it (the write in flight may not).
    let was_pending = existing.as_ref().is_some_and(|m| m.pending);
    let changed = existing.as_ref().is_none_or(|m| m.user != user);
    let needs_work = needs_work || (was_pending && changed);
    let pending = needs_work || was_pending;
    if needs_work {
        mark_pending(app, client_id).await?;
    }
    let member = app
        .store
        .save_site_user(client_id, &user, pending, app.clock.now())
        .await?;
    if needs_work {
        wake(app, client_id).await?;
    }
    Ok(member)
}

/// Re-checks a linked member now: marks them pending (bumping their version, so a writer in
/// the middle of an older plan leaves them pending) and wakes the guild's writer, which plans
/// from their groups and applies what differs. Writes Discord refused stay refused until a roles
/// sync or a mapping change.
pub async fn recheck(app: &AppState, client_id: &str, user_id: &str) -> Result<(), ServiceError> {
    mark_pending(app, client_id).await?;
    if !app
        .store
        .mark_member_pending(client_id, user_id, app.clock.now())
        .await?
    {
        return Err(ServiceError::NotFound("member"));
    }
    wake(app, client_id).await
}

/// Removes a user's link at once — the Discord account is free to link again — and leaves the
/// Discord side (the client's unlink policy, then revoking our grant) to the guild's writer,
/// recorded in the same store write as the removal. The member stays pending until the writer
/// is done; a refusal shows in `unlinking` and the audit trail instead of failing the call.
pub async fn unlink(
    app: &AppState,
    client_id: &str,
    user_id: &str,
    actor: &str,
) -> Result<Member, ServiceError> {
    let client = app
        .store
        .get_client(client_id)
        .await?
        .ok_or(ServiceError::NotFound("client"))?;
    let cleanup = UnlinkCleanup {
        reason: UnlinkReason::Unlinked,
        policy: client.unlink_policy,
        actor: actor.to_owned(),
    };
    // Marked before the member becomes pending, so no tick can miss them.
    mark_pending(app, client_id).await?;
    let now = app.clock.now();
    let old = app
        .store
        .delete_link(client_id, user_id, Some(&cleanup), now)
        .await?
        .ok_or(ServiceError::NotFound("link"))?;
    let mut audit = AuditBatch::new(client_id, actor, now);
    audit.push(
        AuditAction::LinkDelete,
        Some(user_id),
        Some(&old.discord_user_id),
        json!({"policy": client.unlink_policy, "reason": UnlinkReason::Unlinked}),
    );
    audit.save(app.store.as_ref()).await?;
    let member = app
        .store
        .get_member(client_id, user_id)
        .await?
        .ok_or(ServiceError::NotFound("user"))?;
    if member.pending {
        wake(app, client_id).await?;
    }
    Ok(member)
}

/// The member withdrew our authorization (Discord answered `invalid_grant`): applies the unlink
/// policy, marks the link `revoked`, drops its tokens and audits `link.revoked` (`during`: what
/// found out). `member` must be current (its version guards the outcome). Returns Discord's
/// refusal of part of the policy, if any.
pub(crate) async fn revoke_link(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    during: &str,
) -> Result<Option<DiscordError>, ServiceError> {
    let user_id = member.user.user_id.as_str();
    let link = member.link.as_ref();
    let discord_id = link.map(|l| l.discord_user_id.clone()).unwrap_or_default();
    let mut audit = AuditBatch::new(&ctx.client.id, actor, ctx.now());
    let (remaining, refused) = apply_unlink_policy(ctx, member, actor, &mut audit).await;
    let outcome = Outcome {
        applied_roles: remaining,
        nickname: link.and_then(|l| l.nickname.clone()),
        username: None,
        global_name: None,
        status: LinkStatus::Revoked,
        still_pending: false,
        refused: None,
        roles_observed: false,
        last_error: refused.as_ref().map(|e| last_error(e, ctx.now())),
    };
    let store = ctx.app.store.as_ref();
    store
        .record_outcome(&ctx.client.id, user_id, member.version, &outcome, ctx.now())
        .await?;
    store.set_tokens(&ctx.client.id, user_id, None).await?;
    audit.push(
        AuditAction::LinkRevoked,
        Some(user_id),
        Some(&discord_id),
        json!({"policy": ctx.client.unlink_policy, "during": during}),
    );
    audit.save(store).await?;
    Ok(refused)
}

/// Applies the client's unlink policy on Discord: removes the managed roles (the member stays)
/// or kicks. Returns the managed roles still on the member and the refusal that stopped it, if
/// any. A member already gone counts as done.
pub(crate) async fn apply_unlink_policy(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    audit: &mut AuditBatch,
) -> (BTreeSet<String>, Option<DiscordError>) {
    let Some(link) = member.link.as_ref() else {
        return (BTreeSet::new(), None);
    };
    let user_id = member.user.user_id.as_str();
    let guild = ctx.client.guild_id.as_str();
    let discord_id = link.discord_user_id.as_str();
    let reason = audit_reason(actor, user_id);
    let mut remaining = ctx.mapped_subset(&link.applied_roles);
    match ctx.client.unlink_policy {
        UnlinkPolicy::RemoveRoles => {
            for role in remaining.clone() {
                match ctx
                    .discord
                    .remove_role(guild, discord_id, &role, &reason)
                    .await
                {
                    Ok(()) => {
                        remaining.remove(&role);
                        audit.push(
                            AuditAction::RoleRemove,
                            Some(user_id),
                            Some(discord_id),
                            json!({"role_id": role}),
                        );
                    }
                    Err(DiscordError::UnknownMember) => return (BTreeSet::new(), None),
                    Err(DiscordError::UnknownRole) => {
                        remaining.remove(&role);
                    }
                    Err(e) => return (remaining, Some(e)),
                }
            }
            (remaining, None)
        }
        UnlinkPolicy::Kick => match ctx.discord.kick(guild, discord_id, &reason).await {
            Ok(()) => {
                audit.push(
                    AuditAction::MemberKick,
                    Some(user_id),
                    Some(discord_id),
                    json!({}),
                );
                (BTreeSet::new(), None)
            }
            Err(DiscordError::UnknownMember) => (BTreeSet::new(), None),
            Err(e) => (remaining, Some(e)),
        },
    }
}

/// The sealed form of a user's tokens, as JSON inside the ciphertext.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct TokenPair {
    pub access_token: String,
    pub refresh_token: Option<String>,
}

/// Best effort: an authorization we can't revoke now expires on its own.
pub(crate) async fn revoke_sealed_tokens(
    ctx: &ClientContext,
    owner: &crate::secrets::TokenOwner<'_>,
    sealed: &str,
) {
    let Ok(plain) = ctx.app.secrets.open(sealed, owner).await else {
        tracing::warn!(client = %ctx.client.id, "stored OAuth tokens could not be decrypted; not revoked");
        return;
    };
    let Ok(pair) = serde_json::from_str::<TokenPair>(plain.expose_secret()) else {
        return;
    };
    let token = SecretString::from(pair.refresh_token.unwrap_or(pair.access_token));
    if let Err(e) = ctx.discord.revoke_token(&token).await {
        tracing::warn!(client = %ctx.client.id, error = %e, "revoking OAuth tokens failed");
    }
}
