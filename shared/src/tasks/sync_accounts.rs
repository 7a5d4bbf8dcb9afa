//! sync-accounts (weekly): refreshes usernames, display names and nicknames from the paged member
//! list (no per-user GET), enforces the nickname template, and refreshes stored OAuth tokens before
//! they expire — a refused refresh (`invalid_grant`) marks the link `revoked` and applies the
//! client's unlink policy.

use secrecy::{ExposeSecret, SecretString};

use crate::app::AppState;
use crate::discord::{DiscordError, GuildMember};
use crate::domain::Count;
use crate::domain::{LinkStatus, Member, RunReport, StoredTokens, TaskName};
use crate::secrets::TokenOwner;
use crate::service::members::{revoke_link, TokenPair};
use crate::service::reconcile::{reconcile_observed, run_error, Observed, Scope};
use crate::service::role_connection::{self, Pushed};
use crate::service::ServiceError;
use crate::store::Cursor;

use super::outcomes::{returned, tally};
use super::run::Run;
use super::walk::{walk_guild, OnLinked};
use super::TaskOptions;

/// Tokens expiring within this window are refreshed (the task runs weekly; tokens live 7 days).
pub const REFRESH_WINDOW_SECS: i64 = 8 * 86_400;
const TOKEN_PAGE: usize = 200;

/// Resume positions: `scan:<discord id>` in the member-list phase, `tokens:<store cursor>` in
/// the token phase.
enum Phase {
    Scan(Option<u64>),
    Tokens(Option<String>),
}

fn parse_resume(cursor: Option<&str>) -> Phase {
    match cursor.and_then(|c| c.split_once(':')) {
        Some(("tokens", rest)) => Phase::Tokens((!rest.is_empty()).then(|| rest.to_owned())),
        Some(("scan", rest)) => Phase::Scan(rest.parse().ok()),
        _ => Phase::Scan(None),
    }
}

pub async fn run(
    app: &AppState,
    client_id: &str,
    options: &TaskOptions,
) -> Result<RunReport, ServiceError> {
    let mut run = Run::start(app, TaskName::SyncAccounts, client_id, options, true).await?;
    let outcome = sync(&mut run).await;
    run.finish(outcome, |_| true).await
}

async fn sync(run: &mut Run<'_>) -> Result<(), ServiceError> {
    let token_start = match parse_resume(run.resume.as_deref()) {
        Phase::Scan(after) => {
            if !walk_guild(run, after, OnLinked::RefreshNames, "scan:").await? {
                return Ok(());
            }
            None
        }
        Phase::Tokens(after) => after,
    };
    refresh_tokens(run, token_start).await
}

pub(super) async fn refresh_names(
    run: &mut Run<'_>,
    member: &Member,
    live: &GuildMember,
) -> Result<(), ServiceError> {
    run.report.count(Count::Examined);
    let member = match member.link.as_ref().map(|l| l.status) {
        Some(LinkStatus::Active) => member.clone(),
        Some(LinkStatus::Left) => returned(member),
        _ => return Ok(()),
    };
    let observed = Observed::from(live);
    let r = reconcile_observed(
        &run.ctx,
        &member,
        Some(&observed),
        Scope::Nickname,
        &run.actor,
        run.options.dry_run,
    )
    .await?;
    if r.recorded && r.change.is_none() {
        run.report.count(Count::NamesRefreshed);
    }
    tally(run, r);
    Ok(())
}

async fn refresh_tokens(run: &mut Run<'_>, start: Option<String>) -> Result<(), ServiceError> {
    let mut after = start.map(|c| Cursor::parse(&c)).transpose()?;
    loop {
        let page = run
            .ctx
            .app
            .store
            .list_members(&run.ctx.client.id, after.as_ref(), TOKEN_PAGE)
            .await?;
        for member in &page.items {
            if run.out_of_time() {
                // Re-check this page next time: refreshing is idempotent per member.
                let at = after
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default();
                run.stop_at(format!("tokens:{at}"));
                return Ok(());
            }
            refresh_one(run, member).await?;
            repair_role_connection(run, member).await?;
        }
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    run.report.complete = true;
    Ok(())
}

async fn refresh_one(run: &mut Run<'_>, member: &Member) -> Result<(), ServiceError> {
    let ctx = &run.ctx;
    let Some(link) = member.active_link() else {
        return Ok(());
    };
    let Some(tokens) = &link.tokens else {
        return Ok(());
    };
    if tokens.expires_at > ctx.now() + REFRESH_WINDOW_SECS {
        return Ok(());
    }
    let owner = TokenOwner {
        client: &ctx.client.id,
        user_id: &member.user.user_id,
        discord_user_id: &link.discord_user_id,
    };
    let pair: Option<TokenPair> = ctx
        .app
        .secrets
        .open(&tokens.sealed, &owner)
        .await
        .ok()
        .and_then(|plain| serde_json::from_str(plain.expose_secret()).ok());
    let Some(refresh) = pair.and_then(|p| p.refresh_token) else {
        run.report.count(Count::TokensUnreadable);
        return Ok(());
    };
    if run.options.dry_run {
        run.report.count(Count::TokensToRefresh);
        return Ok(());
    }
    match ctx
        .discord
        .refresh_token(&SecretString::from(refresh))
        .await
    {
        Ok(fresh) => {
            // Refresh tokens are single-use: the new pair replaces the old in one write.
            let pair = TokenPair {
                access_token: fresh.access_token.expose_secret().to_owned(),
                refresh_token: fresh
                    .refresh_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
            };
            let json = serde_json::to_string(&pair)
                .map_err(|e| ServiceError::invalid("tokens", e.to_string()))?;
            let sealed = ctx
                .app
                .secrets
                .seal(&SecretString::from(json), &owner)
                .await?;
            let stored = StoredTokens {
                sealed,
                expires_at: ctx.now() + fresh.expires_in,
            };
            ctx.app
                .store
                .set_tokens(&ctx.client.id, &member.user.user_id, Some(&stored))
                .await?;
            run.report.count(Count::TokensRefreshed);
        }
        Err(DiscordError::InvalidGrant) => revoke(run, member).await?,
        Err(e @ DiscordError::BotTokenRejected) => return Err(e.into()),
        Err(e) => {
            run.report.count(Count::TokensFailed);
            run.report.errors.push(run_error(member, &e));
        }
    }
    Ok(())
}

/// Linked Roles: writes the member's role connection again when what Discord holds drifted from
/// theirs. Read from the store again: `refresh_one` may just have stored new tokens or revoked.
async fn repair_role_connection(run: &mut Run<'_>, member: &Member) -> Result<(), ServiceError> {
    let ctx = &run.ctx;
    if run.options.dry_run || !ctx.client.linked_roles.as_ref().is_some_and(|l| l.enabled) {
        return Ok(());
    }
    let Some(current) = ctx
        .app
        .store
        .get_member(&ctx.client.id, &member.user.user_id)
        .await?
    else {
        return Ok(());
    };
    match role_connection::repair_role_connection(ctx, &current, &run.actor).await? {
        Pushed::NotDue => {}
        Pushed::Pushed => run.report.count(Count::RoleConnectionsRepaired),
        Pushed::Revoked(refused) => {
            run.report.count(Count::Revoked);
            if let Some(e) = refused {
                run.report.errors.push(run_error(&current, &e));
            }
        }
        Pushed::Failed(e) => run.report.errors.push(run_error(&current, &e)),
    }
    Ok(())
}

/// The member withdrew our authorization: apply the unlink policy and mark the link `revoked`.
async fn revoke(run: &mut Run<'_>, member: &Member) -> Result<(), ServiceError> {
    let refused = revoke_link(&run.ctx, member, &run.actor, "token_refresh").await?;
    run.report.count(Count::Revoked);
    if let Some(e) = refused {
        run.report.errors.push(run_error(member, &e));
    }
    Ok(())
}
