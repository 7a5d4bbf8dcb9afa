//! The Discord side of unlinking, done by the guild's writer: a former account of a site user
//! gets the client's unlink policy (managed roles removed, or a kick) and loses our grant. Each
//! write's outcome is recorded as it completes, so a cut (timeout, crash, lost lease) never
//! leaves Discord changed and our record not, and a refused write is not sent again until
//! `roles/sync` or a mapping change.

use std::collections::BTreeSet;

use serde_json::json;

use crate::discord::DiscordError;
use crate::domain::{AuditAction, Member, PlannedChange, UnlinkPolicy, Unlinking};

use super::audit::AuditBatch;
use super::members::revoke_sealed_tokens;
use super::reconcile::{audit_reason, is_transient, last_error, run_error_for};
use super::{ClientContext, ServiceError};

/// What working off a member's unlinkings did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct Unlinked {
    /// One entry per former account whose managed roles were removed (dry run: would be).
    pub changes: Vec<PlannedChange>,
    pub errors: Vec<crate::domain::RunError>,
    /// A call that may succeed later failed (or the writer lost its lease): the member stays
    /// pending.
    pub still_pending: bool,
}

/// Works off every unlinking of `member`. Only a rejected bot token or a store failure is an
/// `Err`.
pub async fn work_off(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    dry_run: bool,
) -> Result<Unlinked, ServiceError> {
    let mut result = Unlinked::default();
    for unlinking in member.unlinking.values() {
        if unlinking.refused {
            // Refused earlier: every refused request counts against the IP's budget.
            continue;
        }
        if ctx.writer_lost() {
            result.still_pending = true;
            break;
        }
        one(ctx, member, unlinking, actor, dry_run, &mut result).await?;
    }
    Ok(result)
}

async fn one(
    ctx: &ClientContext,
    member: &Member,
    unlinking: &Unlinking,
    actor: &str,
    dry_run: bool,
    result: &mut Unlinked,
) -> Result<(), ServiceError> {
    let store = ctx.app.store.as_ref();
    let client_id = ctx.client.id.as_str();
    let user_id = member.user.user_id.as_str();
    let discord_id = unlinking.discord_user_id.as_str();

    // Linked again meanwhile (by this user or another): the new link owns the account's roles.
    let relinked = store
        .find_member_by_discord(client_id, discord_id)
        .await?
        .is_some();
    if relinked {
        if !dry_run {
            store
                .record_unlinking(client_id, user_id, discord_id, None)
                .await?;
        }
        return Ok(());
    }

    let mut progress = unlinking.clone();
    let mut audit = AuditBatch::new(client_id, actor, ctx.now());
    let ended = match unlinking.policy {
        None => Ended::Done,
        Some(policy) => {
            apply_policy(
                ctx,
                member,
                policy,
                &mut progress,
                actor,
                dry_run,
                &mut audit,
                result,
            )
            .await?
        }
    };
    if dry_run {
        return Ok(());
    }
    match ended {
        Ended::Stopped => {
            // The lease was lost: what was done is recorded; the next writer finishes.
            result.still_pending = true;
        }
        Ended::Done => {
            if let Some(tokens) = &unlinking.tokens {
                let owner = crate::secrets::TokenOwner {
                    client: client_id,
                    user_id,
                    discord_user_id: discord_id,
                };
                revoke_sealed_tokens(ctx, &owner, &tokens.sealed).await;
            }
            store
                .record_unlinking(client_id, user_id, discord_id, None)
                .await?;
        }
        Ended::Failed(e) => {
            result
                .errors
                .push(run_error_for(user_id, Some(discord_id), &e));
            let transient = is_transient(&e);
            result.still_pending |= transient;
            progress.refused = !transient;
            progress.last_error = Some(last_error(&e, ctx.now()));
            store
                .record_unlinking(client_id, user_id, discord_id, Some(&progress))
                .await?;
            if matches!(e, DiscordError::BotTokenRejected) {
                audit.save(store).await?;
                return Err(ServiceError::Discord(e));
            }
        }
    }
    audit.save(store).await?;
    Ok(())
}

/// How applying the policy to one former account ended.
enum Ended {
    /// Nothing left to do on Discord (a member already gone counts as done).
    Done,
    /// The writer lost its lease before the next write.
    Stopped,
    Failed(DiscordError),
}

/// Removes the managed roles (recording each removal as it completes) or kicks.
#[allow(clippy::too_many_arguments)]
async fn apply_policy(
    ctx: &ClientContext,
    member: &Member,
    policy: UnlinkPolicy,
    progress: &mut Unlinking,
    actor: &str,
    dry_run: bool,
    audit: &mut AuditBatch,
    result: &mut Unlinked,
) -> Result<Ended, ServiceError> {
    let store = ctx.app.store.as_ref();
    let client_id = ctx.client.id.as_str();
    let guild = ctx.client.guild_id.as_str();
    let user_id = member.user.user_id.as_str();
    let discord_id = progress.discord_user_id.clone();
    let reason = audit_reason(actor, user_id);
    let mut change = PlannedChange {
        user_id: user_id.to_owned(),
        discord_user_id: discord_id.clone(),
        add_roles: vec![],
        remove_roles: vec![],
        set_nickname: None,
    };

    if policy == UnlinkPolicy::Kick {
        if dry_run {
            return Ok(Ended::Done);
        }
        return Ok(match ctx.discord.kick(guild, &discord_id, &reason).await {
            Ok(()) => {
                audit.push(
                    AuditAction::MemberKick,
                    Some(user_id),
                    Some(&discord_id),
                    json!({"reason": progress.reason}),
                );
                Ended::Done
            }
            Err(DiscordError::UnknownMember) => Ended::Done,
            Err(e) => Ended::Failed(e),
        });
    }

    if !progress.roles_known {
        // Never seen (an imported link): read what the account carries before removing.
        match ctx.discord.get_member(guild, &discord_id).await {
            Ok(live) => {
                progress.roles = ctx.mapped_subset(&live.roles);
                progress.roles_known = true;
            }
            Err(DiscordError::UnknownMember) => return Ok(Ended::Done),
            Err(e) => return Ok(Ended::Failed(e)),
        }
    }
    let to_remove: BTreeSet<String> = ctx.mapped_subset(&progress.roles);
    if dry_run {
        change.remove_roles = to_remove.into_iter().collect();
        if !change.remove_roles.is_empty() {
            result.changes.push(change);
        }
        return Ok(Ended::Done);
    }
    let mut ended = Ended::Done;
    for role in to_remove {
        if ctx.writer_lost() {
            ended = Ended::Stopped;
            break;
        }
        match ctx
            .discord
            .remove_role(guild, &discord_id, &role, &reason)
            .await
        {
            Ok(()) => {
                progress.roles.remove(&role);
                change.remove_roles.push(role.clone());
                audit.push(
                    AuditAction::RoleRemove,
                    Some(user_id),
                    Some(&discord_id),
                    json!({"role_id": role, "reason": progress.reason}),
                );
                // Recorded as it completes.
                store
                    .record_unlinking(client_id, user_id, &discord_id, Some(progress))
                    .await?;
                audit.flush(store).await?;
            }
            Err(DiscordError::UnknownMember) => {
                progress.roles.clear();
                break;
            }
            Err(DiscordError::UnknownRole) => {
                progress.roles.remove(&role);
            }
            Err(e @ (DiscordError::MissingPermissions | DiscordError::MissingAccess)) => {
                // This role is out of the bot's reach; the others may not be.
                if !matches!(ended, Ended::Failed(_)) {
                    ended = Ended::Failed(e);
                }
            }
            Err(e) => {
                ended = Ended::Failed(e);
                break;
            }
        }
    }
    if !change.remove_roles.is_empty() {
        result.changes.push(change);
    }
    Ok(ended)
}
