//! The link flow: a link session sends the member to Discord's consent screen; the callback
//! consumes it once, joins the member to the guild with their roles, and stores the link.

use secrecy::{ExposeSecret, SecretString};
use serde_json::json;
use url::Url;

use crate::app::{random_token, state_hash, AppState};
use crate::discord::{AddMember, DiscordError, TokenSet};
use crate::domain::plan::{desired_for, plan};
use crate::domain::session::LINK_SESSION_TTL_SECS;
use crate::domain::AuditAction;
use crate::domain::{
    Current, Link, LinkSession, LinkStatus, Member, StoredTokens, UnlinkCleanup, UnlinkReason,
};
use crate::secrets::TokenOwner;
use crate::store::{ConsumedSession, Outcome, StoreError};

use super::audit::AuditBatch;
use super::members::TokenPair;
use super::reconcile::last_error;
use super::{ClientContext, ServiceError};
use crate::work::dispatch::{mark_pending, wake};

pub struct StartedLink {
    pub url: String,
    pub expires_at: i64,
}

/// Checks `return_to` against the client's allowed origins, so the callback is never an open
/// redirect.
pub fn check_return_to(return_to: &str, allowed_origins: &[String]) -> Result<Url, ServiceError> {
    let url = Url::parse(return_to)
        .map_err(|_| ServiceError::invalid("return_to", "must be an absolute http(s) URL"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ServiceError::invalid("return_to", "must be an http(s) URL"));
    }
    let origin = url.origin().ascii_serialization();
    if !allowed_origins
        .iter()
        .any(|o| o.trim_end_matches('/').eq_ignore_ascii_case(&origin))
    {
        return Err(ServiceError::invalid(
            "return_to",
            format!("origin {origin} is not in the client's return_to_origins"),
        ));
    }
    Ok(url)
}

pub async fn start_link_session(
    app: &AppState,
    client_id: &str,
    user_id: &str,
    return_to: Option<&str>,
) -> Result<StartedLink, ServiceError> {
    let client = app
        .store
        .get_client(client_id)
        .await?
        .ok_or(ServiceError::NotFound("client"))?;
    let return_to = return_to
        .map(|r| check_return_to(r, &client.return_to_origins).map(String::from))
        .transpose()?;
    let token = random_token(START_BYTES);
    let expires_at = app.clock.now() + LINK_SESSION_TTL_SECS;
    // Replaces any earlier session of this user: one live link session per user.
    app.store
        .put_link_session(&LinkSession {
            state_hash: state_hash(&token),
            client: client_id.to_owned(),
            user_id: user_id.to_owned(),
            return_to,
            pkce_verifier: String::new(),
            expires_at,
            browser_hash: None,
        })
        .await?;
    let mut url = Url::parse(&client.callback_url).map_err(|_| {
        ServiceError::invalid("callback_url", "the client's callback_url is not a URL")
    })?;
    url.query_pairs_mut().append_pair(START_PARAM, &token);
    Ok(StartedLink {
        url: url.into(),
        expires_at,
    })
}

/// The query parameter of the link URL (the client's callback URL) that carries the start token.
pub const START_PARAM: &str = "start";

/// Bytes of randomness in a start token (43 base64url characters).
const START_BYTES: usize = 32;

/// Whether `token` has the shape of the start tokens we generate.
pub fn is_well_formed_start(token: &str) -> bool {
    token.len() == (START_BYTES * 4).div_ceil(3)
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The browser-binding cookie of one flow: named after its state's hash, so two flows in one
/// browser do not overwrite each other. `__Host-` (which requires `Secure`, `Path=/` and no
/// domain) wherever the connector is served over https.
fn cookie_name(state_hash: &str, secure: bool) -> String {
    let short = &state_hash[..state_hash.len().min(16)];
    if secure {
        format!("__Host-dc_link_{short}")
    } else {
        format!("dc_link_{short}")
    }
}

fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Max-Age={max_age}; Path=/; HttpOnly; SameSite=Lax{secure}")
}

/// The value of cookie `name` in a `Cookie` header.
pub(crate) fn cookie_value<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v)
}

/// Opening the link URL: consumes the session created by the API, binds a fresh one to this
/// browser (a short-lived HttpOnly cookie) and sends the member on to Discord's consent screen.
async fn open_link(app: &AppState, token: &str) -> CallbackResponse {
    let session = match app
        .store
        .consume_link_session(&state_hash(token), app.clock.now())
        .await
    {
        Ok(Some(ConsumedSession::Valid(s))) if !s.started() => s,
        Ok(Some(ConsumedSession::Expired(s))) => return finish(&s, Err("expired")).into(),
        // Unknown, used, or a started session's state passed as a start token.
        Ok(_) => return invalid_link().into(),
        Err(e) => {
            tracing::error!(error = %e, "could not read link session");
            return unavailable().into();
        }
    };
    let started = async {
        let client = app
            .store
            .get_client(&session.client)
            .await?
            .ok_or(ServiceError::NotFound("client"))?;
        let discord = app.discord_for(&client).await?;
        // Linked Roles need the member's permission to write their role connection.
        let wants_role_connections = client.linked_roles.as_ref().is_some_and(|l| l.enabled);
        let request = discord.authorization_request_with(wants_role_connections);
        let browser = random_token(32);
        let bound = LinkSession {
            state_hash: state_hash(request.state.expose_secret()),
            pkce_verifier: request.pkce_verifier.expose_secret().to_owned(),
            browser_hash: Some(state_hash(&browser)),
            ..session.clone()
        };
        app.store.put_link_session(&bound).await?;
        let secure = client.callback_url.starts_with("https://");
        let max_age = (bound.expires_at - app.clock.now()).max(0);
        let cookie = set_cookie(
            &cookie_name(&bound.state_hash, secure),
            &browser,
            max_age,
            secure,
        );
        Ok::<_, ServiceError>((request.url, cookie))
    }
    .await;
    match started {
        Ok((to, cookie)) => CallbackResponse {
            outcome: CallbackOutcome::Redirect(to),
            set_cookie: Some(cookie),
        },
        Err(e) => {
            tracing::warn!(client = %session.client, error = %e, "could not start a link");
            finish(&session, Err(reason_of(&e))).into()
        }
    }
}

fn invalid_link() -> CallbackOutcome {
    CallbackOutcome::Page {
        status: 400,
        title: "This link has expired".into(),
        message: "The Discord link request is unknown, expired or was already used. Go back to the website and start again.".into(),
    }
}

fn unavailable() -> CallbackOutcome {
    CallbackOutcome::Page {
        status: 500,
        title: "Something went wrong".into(),
        message: "Please try again in a moment.".into(),
    }
}

/// What the callback answers: where the member goes, and the cookie to set or clear.
#[derive(Debug, PartialEq, Eq)]
pub struct CallbackResponse {
    pub outcome: CallbackOutcome,
    pub set_cookie: Option<String>,
}

impl From<CallbackOutcome> for CallbackResponse {
    fn from(outcome: CallbackOutcome) -> Self {
        Self {
            outcome,
            set_cookie: None,
        }
    }
}

/// What the callback shows the member.
#[derive(Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    /// 302 to the site.
    Redirect(String),
    /// No valid `return_to`: a plain page.
    Page {
        status: u16,
        title: String,
        message: String,
    },
}

/// Query of `GET /discord/sso/callback`: Discord's redirect (`code`/`error` and `state`), or
/// the link URL itself (`start`).
#[derive(Debug, Default, serde::Deserialize)]
pub struct CallbackParams {
    pub code: Option<String>,
    pub state: Option<String>,
    pub error: Option<String>,
    pub start: Option<String>,
}

/// Where the member goes: `return_to` with `discord=linked` or `discord=error&reason=<code>`, or a
/// plain page when the session has no `return_to`. `result` is the linked account's tag or the reason.
fn finish(session: &LinkSession, result: Result<String, &str>) -> CallbackOutcome {
    let Some(return_to) = session
        .return_to
        .as_deref()
        .and_then(|r| Url::parse(r).ok())
    else {
        return match result {
            Ok(name) => CallbackOutcome::Page {
                status: 200,
                title: "Discord account linked".into(),
                message: format!(
                    "Your Discord account {name} is now linked. You can close this window."
                ),
            },
            Err(reason) => CallbackOutcome::Page {
                status: 400,
                title: "Discord account not linked".into(),
                message: format!(
                    "Linking failed ({reason}). Go back to the website and try again."
                ),
            },
        };
    };
    let mut url = return_to;
    match result {
        Ok(_) => {
            url.query_pairs_mut().append_pair("discord", "linked");
        }
        Err(reason) => {
            url.query_pairs_mut()
                .append_pair("discord", "error")
                .append_pair("reason", reason);
        }
    }
    CallbackOutcome::Redirect(url.into())
}

/// The callback: the link URL opened (`start`), or Discord's redirect. `cookies` is the
/// request's `Cookie` header.
pub async fn complete_link(
    app: &AppState,
    params: CallbackParams,
    cookies: Option<&str>,
) -> CallbackResponse {
    if let Some(token) = params.start.as_deref().filter(|t| !t.is_empty()) {
        return open_link(app, token).await;
    }
    let Some(state) = params.state.as_deref().filter(|s| !s.is_empty()) else {
        return invalid_link().into();
    };
    let session = match app
        .store
        .consume_link_session(&state_hash(state), app.clock.now())
        .await
    {
        Ok(Some(ConsumedSession::Valid(s))) => s,
        // Refused, but the member goes back to the site that sent them, which can offer a retry.
        Ok(Some(ConsumedSession::Expired(s))) => return finish(&s, Err("expired")).into(),
        Ok(None) => return invalid_link().into(),
        Err(e) => {
            tracing::error!(error = %e, "could not read link session");
            return unavailable().into();
        }
    };
    // The flow must end in the browser that opened the link URL: a leaked authorize URL opened
    // elsewhere would link someone else's Discord account to this site user.
    let presented = [true, false].into_iter().find_map(|secure| {
        let name = cookie_name(&session.state_hash, secure);
        cookie_value(cookies, &name).map(|v| (name, v, secure))
    });
    let clear = presented
        .as_ref()
        .map(|(name, _, secure)| set_cookie(name, "", 0, *secure));
    let bound = match (&session.browser_hash, &presented) {
        (Some(expected), Some((_, value, _))) => {
            use subtle::ConstantTimeEq;
            bool::from(state_hash(value).as_bytes().ct_eq(expected.as_bytes()))
        }
        _ => false,
    };
    let outcome = if !bound {
        tracing::warn!(client = %session.client, "link callback from another browser refused");
        if let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) {
            revoke_unused_grant(app, &session, code).await;
        }
        finish(&session, Err("session_mismatch"))
    } else if let Some(error) = params.error.as_deref() {
        let reason = if error == "access_denied" {
            "access_denied"
        } else {
            "discord_error"
        };
        finish(&session, Err(reason))
    } else if let Some(code) = params.code.as_deref().filter(|c| !c.is_empty()) {
        match link_account(app, &session, code).await {
            Ok(name) => finish(&session, Ok(name)),
            Err(reason) => finish(&session, Err(reason)),
        }
    } else {
        finish(&session, Err("invalid_request"))
    };
    CallbackResponse {
        outcome,
        set_cookie: clear,
    }
}

/// A grant made in a refused flow is revoked at once: nothing may keep it.
async fn revoke_unused_grant(app: &AppState, session: &LinkSession, code: &str) {
    let Ok(ctx) = ClientContext::load(app, &session.client).await else {
        return;
    };
    let verifier = SecretString::from(session.pkce_verifier.clone());
    if let Ok(tokens) = ctx.discord.exchange_code(code, &verifier).await {
        revoke_grant(&ctx, &tokens).await;
    }
}

/// Revokes a fresh grant nothing will keep (best effort: it expires on its own otherwise). The
/// refresh token ends the whole authorization; the access token when there is none.
async fn revoke_grant(ctx: &ClientContext, tokens: &TokenSet) {
    let token = tokens
        .refresh_token
        .as_ref()
        .unwrap_or(&tokens.access_token);
    if let Err(e) = ctx.discord.revoke_token(token).await {
        tracing::warn!(client = %ctx.client.id, error = %e, "revoking an unused grant failed");
    }
}

fn reason_of(e: &ServiceError) -> &'static str {
    match e {
        ServiceError::Discord(d) => d.code(),
        ServiceError::Conflict { code, .. } => code,
        ServiceError::NotFound(_) => "client_not_found",
        _ => "internal_error",
    }
}

/// Exchanges the code, refuses an account linked to someone else, reserves the link, joins the
/// member, records what Discord now has. On failure nothing stays half-written: the reservation
/// is rolled back and the fresh authorization revoked.
async fn link_account(
    app: &AppState,
    session: &LinkSession,
    code: &str,
) -> Result<String, &'static str> {
    let ctx = ClientContext::load(app, &session.client)
        .await
        .map_err(|e| reason_of(&e))?;
    let verifier = SecretString::from(session.pkce_verifier.clone());
    let tokens = ctx
        .discord
        .exchange_code(code, &verifier)
        .await
        .map_err(|e| {
            tracing::warn!(client = %ctx.client.id, error = %e, "code exchange failed");
            e.code()
        })?;
    match join_and_store(&ctx, session, &tokens).await {
        Ok(name) => Ok(name),
        Err(e) => {
            tracing::warn!(client = %ctx.client.id, user = %session.user_id, error = %e, "link failed");
            revoke_grant(&ctx, &tokens).await;
            Err(reason_of(&e))
        }
    }
}

async fn seal_tokens(
    ctx: &ClientContext,
    owner: &TokenOwner<'_>,
    tokens: &TokenSet,
) -> Result<StoredTokens, ServiceError> {
    let pair = TokenPair {
        access_token: tokens.access_token.expose_secret().to_owned(),
        refresh_token: tokens
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
    };
    let json =
        serde_json::to_string(&pair).map_err(|e| ServiceError::invalid("tokens", e.to_string()))?;
    let sealed = ctx
        .app
        .secrets
        .seal(&SecretString::from(json), owner)
        .await?;
    Ok(StoredTokens {
        sealed,
        expires_at: ctx.now() + tokens.expires_in,
    })
}

async fn join_and_store(
    ctx: &ClientContext,
    session: &LinkSession,
    tokens: &TokenSet,
) -> Result<String, ServiceError> {
    let store = ctx.app.store.as_ref();
    let client_id = ctx.client.id.as_str();
    let user_id = session.user_id.as_str();
    let me = ctx.discord.current_user(&tokens.access_token).await?;
    if let Some(other) = store.find_member_by_discord(client_id, &me.id).await? {
        if other.user.user_id != user_id {
            return Err(ServiceError::Conflict {
                code: "account_already_linked",
                message: "this Discord account is linked to another site user".into(),
            });
        }
    }
    let previous = store.get_member(client_id, user_id).await?;
    let link = Link {
        discord_user_id: me.id.clone(),
        username: me.username.clone(),
        global_name: me.global_name.clone(),
        nickname: None,
        status: LinkStatus::Active,
        applied_roles: Default::default(),
        tokens: Some(
            seal_tokens(
                ctx,
                &TokenOwner {
                    client: client_id,
                    user_id,
                    discord_user_id: &me.id,
                },
                tokens,
            )
            .await?,
        ),
        linked_at: ctx.now(),
        roles_known: true,
        refused: Default::default(),
        scopes: tokens.scope.split_whitespace().map(str::to_owned).collect(),
        role_connection: None,
        relink_requested_at: None,
    };
    // Marked before the member becomes pending, so no tick can miss them.
    mark_pending(&ctx.app, client_id).await?;
    // Reserve the Discord account first: the store's conditional write settles any race.
    // A previous link to another account is replaced in the same write by its unlinking: the
    // old account gets the unlink policy and loses our grant (the guild's writer does both).
    let replaced = UnlinkCleanup {
        reason: UnlinkReason::Relinked,
        policy: ctx.client.unlink_policy,
        actor: "sso".to_owned(),
    };
    let reserved = match store
        .create_link(client_id, user_id, &link, Some(&replaced), true, ctx.now())
        .await
    {
        Err(StoreError::DiscordAccountTaken { .. }) => {
            return Err(ServiceError::Conflict {
                code: "account_already_linked",
                message: "this Discord account is linked to another site user".into(),
            })
        }
        other => other?,
    };
    match join_guild(ctx, &reserved).await {
        Ok(()) => wake(&ctx.app, client_id).await?,
        Err(e) => {
            rollback(ctx, user_id, previous.as_ref()).await;
            return Err(e);
        }
    }
    Ok(me.display_tag())
}

async fn rollback(ctx: &ClientContext, user_id: &str, previous: Option<&Member>) {
    let store = ctx.app.store.as_ref();
    let restored = match previous.and_then(|p| p.link.as_ref()) {
        Some(old) => {
            // The writer may have started on the old account's unlinking meanwhile: its roles
            // are read from Discord again before anything is planned.
            let old = Link {
                roles_known: false,
                ..old.clone()
            };
            store
                .create_link(&ctx.client.id, user_id, &old, None, true, ctx.now())
                .await
                .map(|_| ())
        }
        None => store
            .delete_link(&ctx.client.id, user_id, None, ctx.now())
            .await
            .map(|_| ()),
    };
    if let Err(e) = restored {
        tracing::error!(client = %ctx.client.id, user = user_id, error = %e, "rolling back a failed link");
    }
}

/// Joins the member with the roles and nickname the planner allows, then records what Discord
/// has; a member who was already in (204) is brought in line with the per-role endpoints.
async fn join_guild(ctx: &ClientContext, member: &Member) -> Result<(), ServiceError> {
    let link = member.link.as_ref().ok_or(ServiceError::NotFound("link"))?;
    let guild = ctx.client.guild_id.as_str();
    let desired = desired_for(
        &member.user,
        link,
        &ctx.roles,
        ctx.client.nickname_template.as_deref(),
    );
    let empty = Current {
        discord_user_id: link.discord_user_id.clone(),
        ..Current::default()
    };
    let roles = ctx.live_roles();
    let join_plan = plan(&desired, &empty, &ctx.guild_view(&roles));
    let nick = join_plan.nickname.clone().flatten();
    let access = open_access(ctx, &member.user.user_id, link).await?;

    let mut join_error: Option<DiscordError> = None;
    let mut added = ctx
        .discord
        .add_member(
            guild,
            &link.discord_user_id,
            &access,
            nick.as_deref(),
            &join_plan.add,
        )
        .await;
    if matches!(added, Err(DiscordError::MissingPermissions))
        && !(join_plan.add.is_empty() && nick.is_none())
    {
        // The bot may join members but not grant these roles (hierarchy changed since the last
        // roles/sync): join without them and report the error instead of failing the link.
        join_error = Some(DiscordError::MissingPermissions);
        added = ctx
            .discord
            .add_member(guild, &link.discord_user_id, &access, None, &[])
            .await;
    }
    let live = match added? {
        AddMember::Added(m) => m,
        AddMember::AlreadyMember => ctx.discord.get_member(guild, &link.discord_user_id).await?,
    };
    let mut audit = AuditBatch::new(&ctx.client.id, "sso", ctx.now());
    audit.push(
        AuditAction::LinkCreate,
        Some(&member.user.user_id),
        Some(&link.discord_user_id),
        json!({"username": link.username}),
    );
    audit.push(
        AuditAction::MemberJoin,
        Some(&member.user.user_id),
        Some(&link.discord_user_id),
        json!({"roles": live.roles, "nick": live.nick}),
    );
    audit.save(ctx.app.store.as_ref()).await?;

    let outcome = Outcome {
        applied_roles: ctx.mapped_subset(&live.roles),
        nickname: live.nick.clone(),
        username: None,
        global_name: None,
        status: LinkStatus::Active,
        still_pending: true,
        refused: None,
        roles_observed: true,
        last_error: join_error.as_ref().map(|e| last_error(e, ctx.now())),
    };
    let store = ctx.app.store.as_ref();
    store
        .record_outcome(
            &ctx.client.id,
            &member.user.user_id,
            member.version,
            &outcome,
            ctx.now(),
        )
        .await?;
    // Whatever the join did not settle (already a member: Discord ignores the roles then) is the
    // guild writer's: the member stays pending and the writer is woken after this returns.
    Ok(())
}

async fn open_access(
    ctx: &ClientContext,
    user_id: &str,
    link: &Link,
) -> Result<SecretString, ServiceError> {
    let sealed = link
        .tokens
        .as_ref()
        .ok_or(ServiceError::NotFound("tokens"))?;
    let owner = TokenOwner {
        client: &ctx.client.id,
        user_id,
        discord_user_id: &link.discord_user_id,
    };
    let plain = ctx.app.secrets.open(&sealed.sealed, &owner).await?;
    let pair: TokenPair = serde_json::from_str(plain.expose_secret())
        .map_err(|_| ServiceError::invalid("tokens", "stored tokens are unreadable"))?;
    Ok(SecretString::from(pair.access_token))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_https_the_cookie_is_host_only_and_secure() {
        let name = cookie_name(&"ab".repeat(32), true);
        assert_eq!(name, format!("__Host-dc_link_{}", "ab".repeat(8)));
        let cookie = set_cookie(&name, "v", 600, true);
        assert_eq!(
            cookie,
            format!("{name}=v; Max-Age=600; Path=/; HttpOnly; SameSite=Lax; Secure")
        );
        let plain = set_cookie(&cookie_name("cd", false), "v", 0, false);
        assert_eq!(
            plain,
            "dc_link_cd=v; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn generated_start_tokens_are_well_formed() {
        let token = random_token(START_BYTES);
        assert_eq!(token.len(), 43);
        assert!(is_well_formed_start(&token));
        assert!(!is_well_formed_start(&token[1..]));
        assert!(!is_well_formed_start(&format!("{}!", &token[1..])));
    }

    #[test]
    fn a_cookie_is_found_by_its_exact_name() {
        let header = Some("a=1; dc_link_x=secret;  dc_link_xy=other");
        assert_eq!(cookie_value(header, "dc_link_x"), Some("secret"));
        assert_eq!(cookie_value(header, "dc_link_xy"), Some("other"));
        assert_eq!(cookie_value(header, "dc_link"), None);
        assert_eq!(cookie_value(None, "a"), None);
    }
}
