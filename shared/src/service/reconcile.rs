//! Bringing one member in line: plan, apply with the per-role endpoints, record.

use serde_json::json;

use crate::discord::DiscordError;
use crate::domain::plan::{desired_for, plan};
use crate::domain::{Current, LastError, LinkStatus, Member, Plan, PlannedChange, RunError};
use crate::store::Outcome;

use super::audit::AuditBatch;
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
}

/// The reason shown in the guild's own audit log for our writes.
pub fn audit_reason(actor: &str, user_id: &str) -> String {
    format!("discord-connector ({actor}): site user {user_id}")
}

pub(crate) fn run_error(member: &Member, e: &DiscordError) -> RunError {
    RunError {
        user_id: Some(member.user.user_id.clone()),
        discord_user_id: member.link.as_ref().map(|l| l.discord_user_id.clone()),
        code: e.code().to_owned(),
        discord_code: e.discord_code(),
        message: e.to_string(),
    }
}

/// The plan for a linked member against our stored belief of their roles and nickname.
pub fn plan_for(ctx: &ClientContext, member: &Member) -> Option<(Plan, Current)> {
    let link = member.active_link()?;
    let desired = desired_for(
        &member.user,
        link,
        &ctx.roles,
        ctx.client.nickname_template.as_deref(),
    );
    let current = Current {
        discord_user_id: link.discord_user_id.clone(),
        roles: link.applied_roles.clone(),
        nickname: link.nickname.clone(),
    };
    let plan = plan(&desired, &current, &ctx.guild_view());
    Some((plan, current))
}

/// Plans and applies one member's changes, then records the outcome (version-guarded) and audit
/// entries. Only a rejected bot token or a store failure is an `Err`: everything else is reported
/// in the returned `Reconciliation` and the member's `last_error`.
pub async fn reconcile_member(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    dry_run: bool,
) -> Result<Reconciliation, ServiceError> {
    let Some((plan, current)) = plan_for(ctx, member) else {
        if member.pending && !dry_run {
            // Nothing to apply without an active link: stop listing this user as pending.
            ctx.app
                .store
                .save_site_user(&ctx.client.id, &member.user, false, ctx.now())
                .await?;
        }
        return Ok(Reconciliation::default());
    };
    let user_id = member.user.user_id.as_str();
    let discord_id = current.discord_user_id.as_str();
    let mut result = Reconciliation {
        errors: plan
            .issues
            .iter()
            .map(|i| RunError {
                user_id: Some(user_id.to_owned()),
                discord_user_id: Some(discord_id.to_owned()),
                code: i.code().to_owned(),
                discord_code: None,
                message: i.message(),
            })
            .collect(),
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

    enum Step<'a> {
        Add(&'a String),
        Remove(&'a String),
        Nick(Option<&'a str>),
    }
    let steps = plan
        .add
        .iter()
        .map(Step::Add)
        .chain(plan.remove.iter().map(Step::Remove))
        .chain(plan.nickname.as_ref().map(|n| Step::Nick(n.as_deref())));
    for step in steps {
        let sent = match step {
            Step::Add(role) => ctx
                .discord
                .add_role(guild, discord_id, role, &reason)
                .await
                .map(|()| {
                    now_on_discord.roles.insert(role.clone());
                    done.add_roles.push(role.clone());
                    audit.push(
                        "role.add",
                        Some(user_id),
                        Some(discord_id),
                        json!({ "role_id": role }),
                    );
                }),
            Step::Remove(role) => ctx
                .discord
                .remove_role(guild, discord_id, role, &reason)
                .await
                .map(|()| {
                    now_on_discord.roles.remove(role);
                    done.remove_roles.push(role.clone());
                    audit.push(
                        "role.remove",
                        Some(user_id),
                        Some(discord_id),
                        json!({ "role_id": role }),
                    );
                }),
            Step::Nick(nick) => ctx
                .discord
                .set_nickname(guild, discord_id, nick, &reason)
                .await
                .map(|m| {
                    now_on_discord.nickname = m.nick.clone();
                    done.set_nickname = Some(m.nick.clone());
                    audit.push(
                        "nick.set",
                        Some(user_id),
                        Some(discord_id),
                        json!({ "nick": m.nick }),
                    );
                }),
        };
        let Err(e) = sent else { continue };
        result.errors.push(run_error(member, &e));
        match e {
            DiscordError::UnknownMember => {
                result.left = true;
                audit.push("member.left", Some(user_id), Some(discord_id), json!({}));
                break;
            }
            DiscordError::BotTokenRejected | DiscordError::RateLimited { .. } => {
                failure = Some(e);
                break;
            }
            other => {
                failure.get_or_insert(other);
            }
        }
    }

    result.still_pending = failure.is_some() && !result.left;
    let last_error = failure
        .as_ref()
        .map(|e| LastError {
            code: e.code().to_owned(),
            message: e.to_string(),
            discord_code: e.discord_code(),
            at: ctx.now(),
        })
        .or_else(|| {
            plan.issues.first().map(|i| LastError {
                code: i.code().to_owned(),
                message: i.message(),
                discord_code: None,
                at: ctx.now(),
            })
        });
    let outcome = Outcome {
        applied_roles: now_on_discord.roles,
        nickname: now_on_discord.nickname,
        username: None,
        global_name: None,
        status: if result.left {
            LinkStatus::Left
        } else {
            LinkStatus::Active
        },
        still_pending: result.still_pending,
        last_error,
    };
    ctx.app
        .store
        .record_outcome(&ctx.client.id, user_id, member.version, &outcome, ctx.now())
        .await?;
    audit.save(ctx.app.store.as_ref()).await?;
    let changed =
        !done.add_roles.is_empty() || !done.remove_roles.is_empty() || done.set_nickname.is_some();
    result.change = changed.then_some(done);
    match failure {
        Some(e @ DiscordError::BotTokenRejected) => Err(ServiceError::Discord(e)),
        _ => Ok(result),
    }
}
