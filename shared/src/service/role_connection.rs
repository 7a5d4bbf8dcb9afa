//! Linked Roles, per member: push the role connection their groups and attributes call for,
//! with their own OAuth token, when it differs from the one last pushed. Called by the guild's
//! writer after it reconciles a member (so after a link and after every change of the member).

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::discord::DiscordError;
use crate::domain::linked_roles::{
    needs_relink, role_connection_due, role_connection_for, RoleConnection, ROLE_CONNECTIONS_WRITE,
};
use crate::domain::{AuditAction, Link, Member, StoredTokens};
use crate::secrets::TokenOwner;
use crate::store::StoreError;

use super::audit::AuditBatch;
use super::members::{revoke_link, TokenPair};
use super::reconcile::audit_reason;
use super::{ClientContext, ServiceError};

/// An access token expiring sooner than this is refreshed before a push: a push must not fail
/// on a token that dies in flight, while refreshing on every push would spend a single-use
/// refresh token each time (Discord's access tokens live 7 days; sync-accounts refreshes
/// weekly).
pub const PUSH_REFRESH_MARGIN_SECS: i64 = 86_400;

/// What happened to a member's role connection.
#[derive(Debug)]
pub enum Pushed {
    /// Nothing due: Linked Roles off, no usable grant, or Discord already holds it.
    NotDue,
    Pushed,
    /// The member withdrew our authorization: the link is `revoked`, the unlink policy applied
    /// (the error, when Discord refused part of the policy).
    Revoked(Option<DiscordError>),
    /// The push failed. The writer keeps the member pending after a transient failure (5xx,
    /// 429, timeout), so the next tick tries again; a refusal waits for the member's next change.
    Failed(DiscordError),
}

/// What a push compares the member's role connection with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    /// The one last pushed (the writer, after every change: no Discord read).
    Stored,
    /// What Discord holds now (the weekly sync: someone may have changed it since).
    Discord,
}

/// Pushes `member`'s role connection when one is due (see [`role_connection_due`]).
pub async fn push_role_connection(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
) -> Result<Pushed, ServiceError> {
    push(ctx, member, actor, Check::Stored).await
}

/// Reads what Discord holds for `member` and writes theirs only when it drifted (sync-accounts).
pub async fn repair_role_connection(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
) -> Result<Pushed, ServiceError> {
    push(ctx, member, actor, Check::Discord).await
}

async fn push(
    ctx: &ClientContext,
    member: &Member,
    actor: &str,
    check: Check,
) -> Result<Pushed, ServiceError> {
    let Some(link) = member.active_link() else {
        return Ok(Pushed::NotDue);
    };
    let linked_roles = ctx.client.linked_roles.as_ref();
    if needs_relink(linked_roles, link) {
        if link.relink_requested_at.is_none() {
            request_relink(ctx, member, link, actor).await?;
        }
        return Ok(Pushed::NotDue);
    }
    let desired = match check {
        Check::Stored => role_connection_due(linked_roles, &member.user, link),
        Check::Discord => role_connection_for(linked_roles, &member.user, link),
    };
    let Some(desired) = desired else {
        return Ok(Pushed::NotDue);
    };
    let Some(tokens) = link.tokens.as_ref() else {
        return Ok(Pushed::NotDue);
    };
    let owner = TokenOwner {
        client: &ctx.client.id,
        user_id: &member.user.user_id,
        discord_user_id: &link.discord_user_id,
    };
    let Some(pair) = open(ctx, &owner, tokens).await else {
        return Ok(Pushed::Failed(DiscordError::NotConfigured(
            "readable OAuth tokens",
        )));
    };
    let access = if tokens.expires_at <= ctx.now() + PUSH_REFRESH_MARGIN_SECS {
        match refresh(ctx, &owner, &pair).await? {
            Ok(access) => access,
            Err(DiscordError::InvalidGrant) => return revoke(ctx, member, actor).await,
            Err(e) => return Ok(Pushed::Failed(e)),
        }
    } else {
        SecretString::from(pair.access_token.clone())
    };
    if check == Check::Discord {
        match ctx.discord.role_connection(&access).await {
            Ok(held) if held.matches(&desired) => {
                if link.role_connection.as_ref() != Some(&desired) {
                    record(ctx, member, link, &desired).await?;
                }
                return Ok(Pushed::NotDue);
            }
            // Drifted; or a refused token, which the write below refreshes once.
            Ok(_) | Err(DiscordError::InvalidOAuthToken) => {}
            Err(e) => return Ok(Pushed::Failed(e)),
        }
    }
    let reason = audit_reason(actor, &member.user.user_id);
    let sent = match ctx
        .discord
        .put_role_connection(&access, &desired, &reason)
        .await
    {
        // A refused access token with a live grant behind it (revoked early, rotated): one
        // refresh tells a dead token from a withdrawn authorization.
        Err(DiscordError::InvalidOAuthToken) => match refresh(ctx, &owner, &pair).await? {
            Ok(access) => {
                ctx.discord
                    .put_role_connection(&access, &desired, &reason)
                    .await
            }
            Err(DiscordError::InvalidGrant) => return revoke(ctx, member, actor).await,
            Err(e) => Err(e),
        },
        other => other,
    };
    match sent {
        Ok(()) => {
            record(ctx, member, link, &desired).await?;
            Ok(Pushed::Pushed)
        }
        Err(e) => Ok(Pushed::Failed(e)),
    }
}

/// Tells the website, once per link, that the member must link again to grant
/// `role_connections.write` (the `link.needs_relink` webhook event, written with the mark).
async fn request_relink(
    ctx: &ClientContext,
    member: &Member,
    link: &Link,
    actor: &str,
) -> Result<(), ServiceError> {
    let user_id = member.user.user_id.as_str();
    let requested = ctx
        .app
        .store
        .request_relink(
            &ctx.client.id,
            user_id,
            &link.discord_user_id,
            ROLE_CONNECTIONS_WRITE,
            ctx.now(),
        )
        .await?;
    if requested {
        let mut audit = AuditBatch::new(&ctx.client.id, actor, ctx.now());
        audit.push(
            AuditAction::RelinkRequested,
            Some(user_id),
            Some(&link.discord_user_id),
            json!({"missing_scope": ROLE_CONNECTIONS_WRITE}),
        );
        audit.save(ctx.app.store.as_ref()).await?;
    }
    Ok(())
}

async fn open(
    ctx: &ClientContext,
    owner: &TokenOwner<'_>,
    tokens: &StoredTokens,
) -> Option<TokenPair> {
    ctx.app
        .secrets
        .open(&tokens.sealed, owner)
        .await
        .ok()
        .and_then(|plain| serde_json::from_str(plain.expose_secret()).ok())
}

/// Refreshes the grant and stores the new pair before its access token is used: the old
/// refresh token is dead the moment Discord answers.
async fn refresh(
    ctx: &ClientContext,
    owner: &TokenOwner<'_>,
    pair: &TokenPair,
) -> Result<Result<SecretString, DiscordError>, ServiceError> {
    let Some(refresh_token) = pair.refresh_token.as_ref() else {
        return Ok(Err(DiscordError::InvalidGrant));
    };
    let fresh = match ctx
        .discord
        .refresh_token(&SecretString::from(refresh_token.clone()))
        .await
    {
        Ok(fresh) => fresh,
        Err(e) => return Ok(Err(e)),
    };
    let next = TokenPair {
        access_token: fresh.access_token.expose_secret().to_owned(),
        refresh_token: fresh
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
    };
    let plain =
        serde_json::to_string(&next).map_err(|e| ServiceError::invalid("tokens", e.to_string()))?;
    let sealed = ctx
        .app
        .secrets
        .seal(&SecretString::from(plain), owner)
        .await?;
    let stored = StoredTokens {
        sealed,
        expires_at: ctx.now() + fresh.expires_in,
    };
    ctx.app
        .store
        .set_tokens(owner.client, owner.user_id, Some(&stored))
        .await?;
    Ok(Ok(fresh.access_token))
}

async fn record(
    ctx: &ClientContext,
    member: &Member,
    link: &Link,
    pushed: &RoleConnection,
) -> Result<(), ServiceError> {
    match ctx
        .app
        .store
        .set_role_connection(
            &ctx.client.id,
            &member.user.user_id,
            &link.discord_user_id,
            Some(pushed),
        )
        .await
    {
        // Relinked or unlinked meanwhile: the next account's connection is its own push.
        Ok(()) | Err(StoreError::NotFound) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// The member withdrew our authorization (`invalid_grant`). They are read again first: the
/// writer may have just changed their roles, and the unlink policy must remove those too.
async fn revoke(ctx: &ClientContext, member: &Member, actor: &str) -> Result<Pushed, ServiceError> {
    let current = ctx
        .app
        .store
        .get_member(&ctx.client.id, &member.user.user_id)
        .await?
        .unwrap_or_else(|| member.clone());
    if current.active_link().is_none() {
        return Ok(Pushed::NotDue);
    }
    let refused = revoke_link(ctx, &current, actor, "role_connection").await?;
    Ok(Pushed::Revoked(refused))
}
