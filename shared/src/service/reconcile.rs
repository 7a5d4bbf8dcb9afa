//! Bringing one member in line: plan, apply with the per-role endpoints, record.

use serde_json::json;

use crate::discord::{DiscordError, GuildMember};
use crate::domain::plan::{desired_for, plan};
use crate::domain::AuditAction;
use crate::domain::{
    refusal_key, Current, LastError, Link, LinkStatus, Member, Plan, PlanIssue, PlannedChange,
    RunError, NICK_REFUSAL,
};
use crate::store::Outcome;

use super::audit::AuditBatch;
use super::role_connection::{self, Pushed};
use super::unlinking::{self, Unlinked};
use super::{ClientContext, ServiceError};

/// What reconciling one member did (or, in a dry run, would do).
#[derive(Debug, Default)]
pub struct Reconciliation {
    /// Changes made (dry run: planned). `None` when the member was already in line.
    pub change: Option<PlannedChange>,
    pub errors: Vec<RunError>,
    /// Discord said the member is no longer in the guild.
    pub left: bool,
    /// The member still needs work (a Discord call failed and will be retried).
    pub still_pending: bool,
    /// Whether anything was written to the store.
    pub recorded: bool,
    /// Former accounts whose managed roles were removed (dry run: would be), see
    /// [`super::unlinking`].
    pub former: Vec<PlannedChange>,
    /// The member's desired state changed while we worked on them: they stay pending and need
    /// another pass now (not at the next tick).
    pub superseded: bool,
}

/// Which part of the member a task may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Roles and nickname (verify-groups, remote-sync-groups, group changes).
    All,
    /// Nickname only (sync-accounts).
    Nickname,
}

/// The member as Discord shows it right now (from the member list or a GET).
#[derive(Debug, Clone)]
pub struct Observed {
    pub roles: Vec<String>,
    pub nick: Option<String>,
    pub username: Option<String>,
    pub global_name: Option<String>,
}

impl From<&GuildMember> for Observed {
    fn from(m: &GuildMember) -> Self {
        Observed {
            roles: m.roles.clone(),
            nick: m.nick.clone(),
            username: m.user.as_ref().map(|u| u.username.clone()),
            global_name: m.user.as_ref().and_then(|u| u.global_name.clone()),
        }
    }
}

/// Whether a failed call may succeed if simply tried again later.
pub fn is_transient(e: &DiscordError) -> bool {
    matches!(
        e,
        DiscordError::Server { .. }
            | DiscordError::Transport(_)
            | DiscordError::RateLimited { .. }
            | DiscordError::Overloaded
            | DiscordError::Decode(_)
    )
}

/// The reason shown in the guild's own audit log for our writes.
pub fn audit_reason(actor: &str, user_id: &str) -> String {
    format!("discord-connector ({actor}): site user {user_id}")
}

pub(crate) fn run_error(member: &Member, e: &DiscordError) -> RunError {
    run_error_for(
        &member.user.user_id,
        member.link.as_ref().map(|l| l.discord_user_id.as_str()),
        e,
    )
}

/// A run error for a site user and a Discord account that need not be their current link (an
/// unlinking's former account).
pub(crate) fn run_error_for(
    user_id: &str,
    discord_user_id: Option<&str>,
    e: &DiscordError,
) -> RunError {
    RunError {
        user_id: Some(user_id.to_owned()),
        discord_user_id: discord_user_id.map(str::to_owned),
        code: e.code().to_owned(),
        discord_code: e.discord_code(),
        message: e.to_string(),
    }
}

/// What a member (or an unlinking) shows of a Discord failure.
pub(crate) fn last_error(e: &DiscordError, at: crate::clock::Timestamp) -> LastError {
    LastError {
        code: e.code().to_owned(),
        message: e.to_string(),
        discord_code: e.discord_code(),
        at,
    }
}

fn issue_error(member: &Member, issue: &PlanIssue) -> RunError {
    RunError {
        user_id: Some(member.user.user_id.clone()),
        discord_user_id: member.link.as_ref().map(|l| l.discord_user_id.clone()),
        code: issue.code().to_owned(),
        discord_code: None,
        message: issue.message(),
    }
}

/// The link with names refreshed from what Discord shows.
fn refreshed_link(link: &Link, observed: Option<&Observed>) -> Link {
    let mut link = link.clone();
    if let Some(o) = observed {
        if let Some(u) = &o.username {
            link.username = u.clone();
            link.global_name = o.global_name.clone();
        }
    }
    link
}

/// The plan for a linked member against `observed` (live) or, without it, our stored belief.
pub fn plan_for(
    ctx: &ClientContext,
    member: &Member,
    observed: Option<&Observed>,
    scope: Scope,
) -> Option<(Plan, Current)> {
    let link = refreshed_link(member.active_link()?, observed);
    let roles = ctx.live_roles();
    let desired = desired_for(
        &member.user,
        &link,
        &roles,
        ctx.client.nickname_template.as_deref(),
    );
    let current = match observed {
        Some(o) => Current {
            discord_user_id: link.discord_user_id.clone(),
            roles: o.roles.iter().cloned().collect(),
            nickname: o.nick.clone(),
        },
        None => Current {
            discord_user_id: link.discord_user_id.clone(),
            roles: link.applied_roles.clone(),
            nickname: link.nickname.clone(),
        },
    };
    let refused = if refusals_hold(ctx, &link, observed) {
        link.refused.clone()
    } else {
        Default::default()
    };
    let mut plan = plan(&desired, &current, &ctx.guild_view(&roles)).without_refused(&refused);
    if scope == Scope::Nickname {
        plan.add.clear();
        plan.remove.clear();
        plan.issues.retain(|i| {
            matches!(
                i,
                PlanIssue::NicknameOfOwner
                    | PlanIssue::MemberAboveBot
                    | PlanIssue::RefusedEarlier { .. }
            )
        });
    }
    Some((plan, current))
}

/// Refused writes stay refused while the member's managed roles on Discord are what we
/// believe; a fresh observation that differs means something changed, so they are tried again.
fn refusals_hold(ctx: &ClientContext, link: &Link, observed: Option<&Observed>) -> bool {
    observed.is_none_or(|o| ctx.mapped_subset(&o.roles) == link.applied_roles)
}

/// Plans and applies one member's changes against our stored belief (verify-groups, pushed
/// changes). A link whose roles were never seen (an import) is read from Discord first, so a
/// removal is not planned against an empty record. See [`reconcile_observed`].
pub async fn reconcile_member(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    dry_run: bool,
) -> Result<Reconciliation, ServiceError> {
    // Former accounts first: a relinked member's old account loses its roles before anything
    // else of theirs is sent.
    let unlinked = if member.unlinking.is_empty() {
        Unlinked::default()
    } else {
        unlinking::work_off(ctx, member, actor, dry_run).await?
    };
    let mut result = reconcile_link(ctx, member, actor, dry_run, unlinked.still_pending).await?;
    result.errors.extend(unlinked.errors);
    result.former.extend(unlinked.changes);
    result.still_pending |= unlinked.still_pending;
    // Linked Roles: the same pass that applies a member's groups pushes their role connection
    // (it is a no-op when nothing changed since the last push).
    if !dry_run && !result.left && !ctx.writer_lost() {
        match role_connection::push_role_connection(ctx, member, actor).await? {
            Pushed::NotDue | Pushed::Pushed | Pushed::Revoked(None) => {}
            Pushed::Failed(e) if is_transient(&e) => {
                // The roles' outcome cleared `pending`; set it again so the next tick tries
                // the push once more (the roles are in line: it costs that one call).
                ctx.app
                    .store
                    .mark_member_pending(&ctx.client.id, &member.user.user_id, ctx.now())
                    .await?;
                result.still_pending = true;
                result.errors.push(run_error(member, &e));
            }
            // A refusal is not sent again until the member changes (every 4xx counts against
            // the IP's invalid-request budget).
            Pushed::Revoked(Some(e)) | Pushed::Failed(e) => {
                result.errors.push(run_error(member, &e));
            }
        }
    }
    Ok(result)
}

async fn reconcile_link(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    dry_run: bool,
    keep_pending: bool,
) -> Result<Reconciliation, ServiceError> {
    let unknown = member.active_link().filter(|l| !l.roles_known);
    let Some(link) = unknown else {
        return reconcile_with(ctx, member, None, Scope::All, actor, dry_run, keep_pending).await;
    };
    match ctx
        .discord
        .get_member(&ctx.client.guild_id, &link.discord_user_id)
        .await
    {
        Ok(live) => {
            let observed = Observed::from(&live);
            reconcile_with(
                ctx,
                member,
                Some(&observed),
                Scope::All,
                actor,
                dry_run,
                keep_pending,
            )
            .await
        }
        Err(DiscordError::UnknownMember) => {
            // Not in the guild: nothing to plan; record them as left.
            reconcile_left(ctx, member, actor, dry_run).await
        }
        Err(e @ DiscordError::BotTokenRejected) => Err(ServiceError::Discord(e)),
        Err(e) => Ok(Reconciliation {
            errors: vec![run_error(member, &e)],
            still_pending: is_transient(&e),
            ..Reconciliation::default()
        }),
    }
}

/// Records that a linked member is no longer in the guild: `left`, nothing refused or pending,
/// audited. They are not retried until they come back.
pub async fn record_left(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
) -> Result<(), ServiceError> {
    let outcome = Outcome {
        applied_roles: Default::default(),
        nickname: None,
        username: None,
        global_name: None,
        status: LinkStatus::Left,
        still_pending: false,
        last_error: None,
        refused: Some(Default::default()),
        roles_observed: true,
    };
    ctx.app
        .store
        .record_outcome(
            &ctx.client.id,
            &member.user.user_id,
            member.version,
            &outcome,
            ctx.now(),
        )
        .await?;
    let mut audit = AuditBatch::new(&ctx.client.id, actor, ctx.now());
    let discord_id = member.link.as_ref().map(|l| l.discord_user_id.as_str());
    audit.push(
        AuditAction::MemberLeft,
        Some(&member.user.user_id),
        discord_id,
        json!({}),
    );
    audit.save(ctx.app.store.as_ref()).await?;
    Ok(())
}

/// A member Discord says is not in the guild: `left`, not retried.
async fn reconcile_left(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    dry_run: bool,
) -> Result<Reconciliation, ServiceError> {
    let result = Reconciliation {
        left: true,
        errors: vec![run_error(member, &DiscordError::UnknownMember)],
        ..Reconciliation::default()
    };
    if dry_run {
        return Ok(result);
    }
    record_left(ctx, member, actor).await?;
    Ok(Reconciliation {
        recorded: true,
        ..result
    })
}

enum Step<'a> {
    Add(&'a String),
    Remove(&'a String),
    Nick(Option<&'a str>),
}

/// Plans and applies one member's changes, then records the outcome (version-guarded) and audit
/// entries. With `observed` (live data) the store is written only when something differs from
/// what it holds, so a scan of members already in line costs no writes. Only a rejected bot
/// token or a store failure is an `Err`: everything else is in the returned `Reconciliation` and
/// the member's `last_error`.
pub async fn reconcile_observed(
    ctx: &ClientContext,
    member: &Member,
    observed: Option<&Observed>,
    scope: Scope,
    actor: &str,
    dry_run: bool,
) -> Result<Reconciliation, ServiceError> {
    // A former account still to clean up keeps the member pending for the writer's next pass.
    let keep_pending = member.unlinking.values().any(|u| !u.refused);
    reconcile_with(ctx, member, observed, scope, actor, dry_run, keep_pending).await
}

/// [`reconcile_observed`], keeping the member pending when `keep_pending` (their unlinkings
/// still have work).
async fn reconcile_with(
    ctx: &ClientContext,
    member: &Member,
    observed: Option<&Observed>,
    scope: Scope,
    actor: &str,
    dry_run: bool,
    keep_pending: bool,
) -> Result<Reconciliation, ServiceError> {
    let Some((plan, current)) = plan_for(ctx, member, observed, scope) else {
        let mut result = Reconciliation::default();
        if member.pending && !dry_run && !keep_pending {
            // Nothing to apply without an active link: stop listing this user as pending,
            // unless their desired state changed meanwhile.
            let cleared = ctx
                .app
                .store
                .clear_pending(
                    &ctx.client.id,
                    &member.user.user_id,
                    member.version,
                    ctx.now(),
                )
                .await?;
            result.recorded = true;
            result.superseded = !cleared;
        }
        return Ok(result);
    };
    let user_id = member.user.user_id.as_str();
    let discord_id = current.discord_user_id.as_str();
    let mut result = Reconciliation {
        errors: plan.issues.iter().map(|i| issue_error(member, i)).collect(),
        ..Reconciliation::default()
    };
    if dry_run {
        result.change = (!plan.is_noop()).then(|| PlannedChange {
            user_id: user_id.to_owned(),
            discord_user_id: discord_id.to_owned(),
            add_roles: plan.add.clone(),
            remove_roles: plan.remove.clone(),
            set_nickname: plan.nickname.clone(),
        });
        return Ok(result);
    }

    let guild = ctx.client.guild_id.as_str();
    let reason = audit_reason(actor, user_id);
    let link = member.link.as_ref();
    let mut refused = match link {
        Some(l) if refusals_hold(ctx, l, observed) => l.refused.clone(),
        _ => Default::default(),
    };
    let mut now_on_discord = current.clone();
    let mut done = PlannedChange {
        user_id: user_id.to_owned(),
        discord_user_id: discord_id.to_owned(),
        add_roles: vec![],
        remove_roles: vec![],
        set_nickname: None,
    };
    let mut audit = AuditBatch::new(&ctx.client.id, actor, ctx.now());
    let mut failure: Option<DiscordError> = None;
    let mut stopped = false;

    let steps: Vec<Step<'_>> = plan
        .add
        .iter()
        .map(Step::Add)
        .chain(plan.remove.iter().map(Step::Remove))
        .chain(plan.nickname.as_ref().map(|n| Step::Nick(n.as_deref())))
        .collect();
    let step_count = steps.len();
    for (index, step) in steps.into_iter().enumerate() {
        if ctx.writer_lost() {
            // Another writer may hold the guild now: send nothing more, keep the member pending.
            stopped = true;
            break;
        }
        let (sent, role, key) = match step {
            Step::Add(role) => {
                let r = ctx
                    .discord
                    .add_role(guild, discord_id, role, &reason)
                    .await
                    .map(|()| {
                        now_on_discord.roles.insert(role.clone());
                        done.add_roles.push(role.clone());
                        audit.push(
                            AuditAction::RoleAdd,
                            Some(user_id),
                            Some(discord_id),
                            json!({ "role_id": role }),
                        );
                    });
                (r, Some(role), refusal_key(true, role))
            }
            Step::Remove(role) => {
                let r = ctx
                    .discord
                    .remove_role(guild, discord_id, role, &reason)
                    .await
                    .map(|()| {
                        now_on_discord.roles.remove(role);
                        done.remove_roles.push(role.clone());
                        audit.push(
                            AuditAction::RoleRemove,
                            Some(user_id),
                            Some(discord_id),
                            json!({ "role_id": role }),
                        );
                    });
                (r, Some(role), refusal_key(false, role))
            }
            Step::Nick(nick) => {
                let r = ctx
                    .discord
                    .set_nickname(guild, discord_id, nick, &reason)
                    .await
                    .map(|m| {
                        now_on_discord.nickname = m.nick.clone();
                        done.set_nickname = Some(m.nick.clone());
                        audit.push(
                            AuditAction::NickSet,
                            Some(user_id),
                            Some(discord_id),
                            json!({ "nick": m.nick }),
                        );
                    });
                (r, None, NICK_REFUSAL.to_owned())
            }
        };
        let e = match sent {
            Ok(()) => {
                if index + 1 < step_count {
                    // Recorded as it completes, so a cut (timeout, crash, lost lease) before the
                    // remaining steps never leaves Discord changed and our record not.
                    let partial = Outcome {
                        applied_roles: ctx.mapped_subset(&now_on_discord.roles),
                        nickname: now_on_discord.nickname.clone(),
                        username: None,
                        global_name: None,
                        status: LinkStatus::Active,
                        still_pending: true,
                        last_error: member.last_error.clone(),
                        refused: Some(refused.clone()),
                        roles_observed: observed.is_some(),
                    };
                    ctx.app
                        .store
                        .record_outcome(
                            &ctx.client.id,
                            user_id,
                            member.version,
                            &partial,
                            ctx.now(),
                        )
                        .await?;
                    audit.flush(ctx.app.store.as_ref()).await?;
                }
                continue;
            }
            Err(e) => e,
        };
        result.errors.push(run_error(member, &e));
        match (e, role) {
            (DiscordError::UnknownMember, _) => {
                result.left = true;
                audit.push(
                    AuditAction::MemberLeft,
                    Some(user_id),
                    Some(discord_id),
                    json!({}),
                );
                break;
            }
            (DiscordError::UnknownRole, Some(role)) => {
                // Deleted in Discord: stop managing it instead of retrying forever.
                now_on_discord.roles.remove(role);
                if ctx.forget_role(role) {
                    ctx.app
                        .store
                        .set_role_groups(&ctx.client.id, role, &Default::default())
                        .await?;
                    audit.push(
                        AuditAction::RoleUnmap,
                        None,
                        None,
                        json!({ "role_id": role, "why": "deleted in Discord" }),
                    );
                }
            }
            (e @ (DiscordError::BotTokenRejected | DiscordError::RateLimited { .. }), _) => {
                failure = Some(e);
                break;
            }
            (e @ (DiscordError::MissingPermissions | DiscordError::MissingAccess), _) => {
                // Remembered, so neither a re-push nor the next tick sends it again.
                refused.insert(key);
                failure.get_or_insert(e);
            }
            (other, _) => {
                failure.get_or_insert(other);
            }
        }
    }

    // Retry what may succeed by itself (5xx, timeouts, rate limits); a refusal (403: hierarchy,
    // permissions, owner) is not retried every 5 minutes — Discord counts every one against the
    // IP's invalid-request budget. It is reported and remembered; a `roles/sync` after the fix,
    // a mapping change, or a change of the member's roles lets it be tried again.
    result.still_pending = (stopped || failure.as_ref().is_some_and(is_transient)) && !result.left;
    let last_error = failure
        .as_ref()
        .map(|e| last_error(e, ctx.now()))
        .or_else(|| {
            plan.issues.first().map(|i| LastError {
                code: i.code().to_owned(),
                message: i.message(),
                discord_code: None,
                at: ctx.now(),
            })
        });
    let observed_username = observed.and_then(|o| o.username.clone());
    let observed_global = observed
        .filter(|o| o.username.is_some())
        .map(|o| o.global_name.clone());
    let outcome = Outcome {
        applied_roles: ctx.mapped_subset(&now_on_discord.roles),
        nickname: now_on_discord.nickname,
        username: observed_username,
        global_name: observed_global,
        status: if result.left {
            LinkStatus::Left
        } else {
            LinkStatus::Active
        },
        still_pending: result.still_pending || keep_pending,
        last_error,
        refused: Some(refused.clone()),
        roles_observed: observed.is_some(),
    };
    let unchanged = link.is_some_and(|l| {
        l.applied_roles == outcome.applied_roles
            && l.nickname == outcome.nickname
            && outcome.username.as_ref().is_none_or(|u| *u == l.username)
            && outcome
                .global_name
                .as_ref()
                .is_none_or(|g| *g == l.global_name)
            && l.status == outcome.status
            && l.refused == refused
            && (l.roles_known || !outcome.roles_observed)
    }) && !member.pending
        && !outcome.still_pending
        && member.last_error.as_ref().map(|e| &e.code)
            == outcome.last_error.as_ref().map(|e| &e.code);
    if !unchanged {
        let cleared = ctx
            .app
            .store
            .record_outcome(&ctx.client.id, user_id, member.version, &outcome, ctx.now())
            .await?;
        result.recorded = true;
        result.superseded = !cleared && !outcome.still_pending;
    }
    audit.save(ctx.app.store.as_ref()).await?;
    let changed =
        !done.add_roles.is_empty() || !done.remove_roles.is_empty() || done.set_nickname.is_some();
    result.change = changed.then_some(done);
    match failure {
        Some(e @ DiscordError::BotTokenRejected) => Err(ServiceError::Discord(e)),
        _ => Ok(result),
    }
}
