//! remote-sync-groups (weekly): compares every linked member's live managed roles with what their
//! groups entitle them to and repairs only the drift; notes members who left and members nobody
//! links. With `source_of_truth = discord` the live roles become the site user's groups instead.

use std::collections::BTreeSet;

use serde_json::json;

use crate::app::AppState;
use crate::discord::GuildMember;
use crate::domain::{AuditAction, Count};
use crate::domain::{GroupChange, LinkStatus, Member, RunReport, SourceOfTruth, TaskName};
use crate::service::audit::AuditBatch;
use crate::service::reconcile::{reconcile_observed, Observed, Scope};
use crate::service::ServiceError;
use crate::store::Outcome;

use super::outcomes::{returned, tally};
use super::run::Run;
use super::walk::{walk_guild, OnLinked};
use super::TaskOptions;

pub async fn run(
    app: &AppState,
    client_id: &str,
    options: &TaskOptions,
) -> Result<RunReport, ServiceError> {
    let mut run = Run::start(app, TaskName::RemoteSyncGroups, client_id, options, true).await?;
    let outcome = scan(&mut run).await;
    run.finish(outcome, |_| true).await
}

async fn scan(run: &mut Run<'_>) -> Result<(), ServiceError> {
    let resume = run.resume.as_deref().and_then(|c| c.parse().ok());
    if walk_guild(run, resume, OnLinked::RepairRoles, "").await? {
        run.report.complete = true;
    }
    Ok(())
}

pub(super) async fn repair(
    run: &mut Run<'_>,
    member: &Member,
    live: &GuildMember,
) -> Result<(), ServiceError> {
    run.report.count(Count::Examined);
    let member = match member.link.as_ref().map(|l| l.status) {
        Some(LinkStatus::Revoked) | None => {
            run.report.count(Count::Revoked);
            return Ok(());
        }
        Some(LinkStatus::Left) => {
            run.report.count(Count::Returned);
            returned(member)
        }
        Some(LinkStatus::Active) => member.clone(),
    };
    let observed = Observed::from(live);
    match run.ctx.client.source_of_truth {
        SourceOfTruth::Site => {
            let r = reconcile_observed(
                &run.ctx,
                &member,
                Some(&observed),
                Scope::All,
                &run.actor,
                run.options.dry_run,
            )
            .await?;
            tally(run, r);
        }
        SourceOfTruth::Discord => adopt_discord_roles(run, &member, &observed).await?,
    }
    Ok(())
}

/// Remote priority: the managed roles the member carries decide their groups.
async fn adopt_discord_roles(
    run: &mut Run<'_>,
    member: &Member,
    observed: &Observed,
) -> Result<(), ServiceError> {
    let ctx = &run.ctx;
    let roles = ctx.live_roles();
    let carried = ctx.mapped_subset(&observed.roles);
    let all_mapped: BTreeSet<&String> = roles.iter().flat_map(|r| r.groups.iter()).collect();
    let mut groups: BTreeSet<String> = member
        .user
        .groups
        .iter()
        .filter(|g| !all_mapped.contains(g))
        .cloned()
        .collect();
    for role in roles.iter().filter(|r| carried.contains(&r.id)) {
        groups.extend(role.groups.iter().cloned());
    }
    let added: Vec<String> = groups.difference(&member.user.groups).cloned().collect();
    let removed: Vec<String> = member.user.groups.difference(&groups).cloned().collect();
    let link = member.link.as_ref().ok_or(ServiceError::NotFound("link"))?;
    let belief_changed = link.applied_roles != carried || link.status != LinkStatus::Active;
    if added.is_empty() && removed.is_empty() && !belief_changed {
        run.report.count(Count::Unchanged);
        return Ok(());
    }
    run.report.count(Count::Changed);
    if !added.is_empty() || !removed.is_empty() {
        run.report.group_changes.push(GroupChange {
            user_id: member.user.user_id.clone(),
            added: added.clone(),
            removed: removed.clone(),
        });
    }
    if run.options.dry_run {
        return Ok(());
    }
    let store = ctx.app.store.as_ref();
    let mut user = member.user.clone();
    user.groups = groups;
    let saved = store
        .save_site_user(&ctx.client.id, &user, false, ctx.now())
        .await?;
    let outcome = Outcome {
        applied_roles: carried,
        nickname: observed.nick.clone(),
        username: observed.username.clone(),
        global_name: observed
            .username
            .as_ref()
            .map(|_| observed.global_name.clone()),
        status: LinkStatus::Active,
        still_pending: false,
        refused: Some(Default::default()),
        roles_observed: true,
        last_error: None,
    };
    store
        .record_outcome(
            &ctx.client.id,
            &user.user_id,
            saved.version,
            &outcome,
            ctx.now(),
        )
        .await?;
    if !added.is_empty() || !removed.is_empty() {
        let mut audit = AuditBatch::new(&ctx.client.id, &run.actor, ctx.now());
        audit.push(
            AuditAction::GroupsFromDiscord,
            Some(&user.user_id),
            Some(&link.discord_user_id),
            json!({"added": added, "removed": removed}),
        );
        audit.save(store).await?;
    }
    Ok(())
}
