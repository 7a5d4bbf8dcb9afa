//! A client in the console: the guided setup that follows the seed guide (create the Discord
//! application, paste its ids and secrets, invite the bot, check the hierarchy), the overview
//! with its health, and the settings and secrets forms. Validation is the admin API's own.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::{Client, SourceOfTruth, UnlinkPolicy};
use crate::http::clients::{new_client, patched_client, view, ClientInput, ClientPatch};
use crate::http::error::ApiError;
use crate::service::clients as svc;
use crate::service::health::{self, bot_invite_url, client_summary, Hierarchy};

use super::dashboard::{load_client, summary_cells, Failure};
use super::page::{
    badge, client_path, csrf_field, done_notice, enc, health as mark, shell, time, Notice, Page,
    Section,
};
use super::session::{is_https, ConsoleUser};

/// Every field of the client forms, as the browser sends them (empty = not given).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct ClientForm {
    id: String,
    name: String,
    guild_id: String,
    client_id: String,
    client_secret: String,
    bot_token: String,
    callback_url: String,
    invite_link: String,
    nickname_template: String,
    unlink_policy: String,
    source_of_truth: String,
    return_to_origins: String,
    discord_api_base: String,
    discord_authorize_url: String,
    public_key: String,
}

fn given(s: &str) -> Option<String> {
    Some(s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn secret(s: &str) -> Option<SecretString> {
    given(s).map(SecretString::from)
}

fn origins(s: &str) -> Vec<String> {
    s.split(['\n', ',']).filter_map(given).collect()
}

fn unlink_policy(s: &str) -> UnlinkPolicy {
    if s == "kick" {
        UnlinkPolicy::Kick
    } else {
        UnlinkPolicy::RemoveRoles
    }
}

fn source_of_truth(s: &str) -> SourceOfTruth {
    if s == "discord" {
        SourceOfTruth::Discord
    } else {
        SourceOfTruth::Site
    }
}

impl ClientForm {
    fn into_input(self) -> ClientInput {
        ClientInput {
            id: given(&self.id),
            name: self.name.trim().to_owned(),
            guild_id: self.guild_id.trim().to_owned(),
            client_id: self.client_id.trim().to_owned(),
            client_secret: secret(&self.client_secret),
            bot_token: secret(&self.bot_token),
            callback_url: self.callback_url.trim().to_owned(),
            invite_link: given(&self.invite_link),
            nickname_template: given(&self.nickname_template),
            unlink_policy: unlink_policy(&self.unlink_policy),
            source_of_truth: source_of_truth(&self.source_of_truth),
            return_to_origins: origins(&self.return_to_origins),
            discord_api_base: given(&self.discord_api_base),
            discord_authorize_url: given(&self.discord_authorize_url),
            public_key: given(&self.public_key),
            // Set in the "Website webhooks" section, not in this form.
            webhook_url: None,
            webhook_secret: None,
        }
    }

    fn into_patch(self) -> ClientPatch {
        ClientPatch {
            name: Some(self.name.trim().to_owned()),
            guild_id: Some(self.guild_id.trim().to_owned()),
            client_id: Some(self.client_id.trim().to_owned()),
            client_secret: secret(&self.client_secret),
            bot_token: secret(&self.bot_token),
            callback_url: Some(self.callback_url.trim().to_owned()),
            invite_link: Some(given(&self.invite_link)),
            nickname_template: Some(given(&self.nickname_template)),
            unlink_policy: Some(unlink_policy(&self.unlink_policy)),
            source_of_truth: Some(source_of_truth(&self.source_of_truth)),
            return_to_origins: Some(origins(&self.return_to_origins)),
            discord_api_base: given(&self.discord_api_base),
            discord_authorize_url: given(&self.discord_authorize_url),
            // The settings form always shows the key: empty removes it.
            public_key: Some(given(&self.public_key)),
            webhook_url: None,
            webhook_secret: None,
        }
    }

    /// The form again after a refusal: what was typed, secrets never echoed.
    fn without_secrets(mut self) -> Self {
        self.client_secret.clear();
        self.bot_token.clear();
        self
    }

    fn of(c: &Client) -> Self {
        Self {
            id: c.id.clone(),
            name: c.name.clone(),
            guild_id: c.guild_id.clone(),
            client_id: c.client_id.clone(),
            client_secret: String::new(),
            bot_token: String::new(),
            callback_url: c.callback_url.clone(),
            invite_link: c.invite_link.clone().unwrap_or_default(),
            nickname_template: c.nickname_template.clone().unwrap_or_default(),
            unlink_policy: match c.unlink_policy {
                UnlinkPolicy::Kick => "kick",
                UnlinkPolicy::RemoveRoles => "remove_roles",
            }
            .into(),
            source_of_truth: match c.source_of_truth {
                SourceOfTruth::Discord => "discord",
                SourceOfTruth::Site => "site",
            }
            .into(),
            return_to_origins: c.return_to_origins.join("\n"),
            discord_api_base: c.discord_api_base.clone(),
            discord_authorize_url: c.discord_authorize_url.clone(),
            public_key: c.public_key.clone().unwrap_or_default(),
        }
    }
}

/// A labelled input; marked invalid with the API's message when the refusal names it.
fn input(
    name: &str,
    label: &str,
    kind: &str,
    value: &str,
    help: Option<Markup>,
    refusal: Option<&ApiError>,
    required: bool,
) -> Markup {
    let id = format!("f-{name}");
    let help_id = format!("{id}-help");
    let error = refusal.filter(|e| e.0.field.as_deref() == Some(name));
    let described = match (help.is_some(), error.is_some()) {
        (true, true) => format!("{help_id} {id}-error"),
        (true, false) => help_id.clone(),
        (false, true) => format!("{id}-error"),
        (false, false) => String::new(),
    };
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type=(kind) value=(value) required[required]
                aria-invalid=[error.map(|_| "true")]
                aria-describedby=[Some(described.as_str()).filter(|d| !d.is_empty())]
                autocomplete="off" spellcheck="false";
            @if let Some(help) = help { p.help id=(help_id) { (help) } }
            @if let Some(e) = error { p.field-error id=(format!("{id}-error")) { (e.0.detail) } }
        }
    }
}

fn secret_input(
    name: &str,
    label: &str,
    is_set: Option<bool>,
    help: Markup,
    refusal: Option<&ApiError>,
) -> Markup {
    let state = match is_set {
        Some(true) => html! { " " (badge("good", "set")) },
        Some(false) => html! { " " (badge("bad", "not set")) },
        None => html! {},
    };
    let label = match is_set {
        Some(true) => format!("Replace {label}"),
        _ => label.to_owned(),
    };
    html! {
        div.field {
            (input(name, &label, "password", "", Some(html! { (help) (state) }), refusal, is_set.is_none()))
        }
    }
}

fn settings_fields(f: &ClientForm, refusal: Option<&ApiError>, app: &AppState) -> Markup {
    html! {
        (input("name", "Name", "text", &f.name, Some(html! { "Shown in the console, e.g. your community's name." }), refusal, true))
        (input("guild_id", "Discord server (guild) ID", "text", &f.guild_id,
            Some(html! { "Discord → User Settings → Advanced → Developer Mode on; then right-click your server → Copy Server ID." }), refusal, true))
        (input("client_id", "Application ID", "text", &f.client_id,
            Some(html! { "Developer Portal → your application → General Information → Application ID." }), refusal, true))
        (public_key_field(&f.public_key, refusal))
        (callback_field(&f.callback_url, refusal))
        (input("invite_link", "Server invite link (optional)", "url", &f.invite_link,
            Some(html! { "Shown to members who cannot be joined automatically." }), refusal, false))
        (input("nickname_template", "Nickname template (optional)", "text", &f.nickname_template,
            Some(html! { "e.g. " code { "[{corp_ticker}] {username}" } "; values come from the attributes the website pushes." }), refusal, false))
        (unlink_policy_field(f))
        div.field {
            label for="f-source_of_truth" { "Source of truth" }
            select #f-source_of_truth name="source_of_truth" {
                option value="site" selected[f.source_of_truth != "discord"] { "The website's groups" }
                option value="discord" selected[f.source_of_truth == "discord"] { "Discord's roles (remote group sync rewrites the site's groups)" }
            }
        }
        (origins_field(f, refusal))
        (discord_urls_fields(f, refusal, app, false))
    }
}

fn unlink_policy_field(f: &ClientForm) -> Markup {
    html! {
        div.field {
            label for="f-unlink_policy" { "When a member is unlinked" }
            select #f-unlink_policy name="unlink_policy" {
                option value="remove_roles" selected[f.unlink_policy != "kick"] { "Remove the roles we manage (they stay in the server)" }
                option value="kick" selected[f.unlink_policy == "kick"] { "Kick them from the server" }
            }
        }
    }
}

fn origins_field(f: &ClientForm, refusal: Option<&ApiError>) -> Markup {
    let error = refusal.filter(|e| {
        e.0.field
            .as_deref()
            .is_some_and(|f| f.starts_with("return_to_origins"))
    });
    html! {
        div.field {
            label for="f-return_to_origins" { "Website origins members may return to" }
            textarea #f-return_to_origins name="return_to_origins" rows="2" aria-describedby="f-return_to_origins-help" { (f.return_to_origins) }
            p.help #f-return_to_origins-help { "One per line, e.g. " code { "https://www.example.org" } ". After linking, members are sent back only to these." }
            @if let Some(e) = error { p.field-error { (e.0.detail) } }
        }
    }
}

/// Only where the deployment lets clients talk to a Discord stand-in (the emulator).
fn discord_urls_fields(
    f: &ClientForm,
    refusal: Option<&ApiError>,
    app: &AppState,
    open: bool,
) -> Markup {
    html! {
        @if app.discord_urls.allows_custom() {
            details open[open] {
                summary { "Discord URLs (a Discord stand-in such as the emulator)" }
                (input("discord_api_base", "Discord API base", "url", &f.discord_api_base, None, refusal, false))
                (input("discord_authorize_url", "Discord authorize URL", "url", &f.discord_authorize_url, None, refusal, false))
            }
        }
    }
}

/// The application's public key, which verifies Discord's Webhook Events (a member who removes
/// the application on Discord is unlinked at once).
fn public_key_field(value: &str, refusal: Option<&ApiError>) -> Markup {
    input(
        "public_key",
        "Public Key (optional)",
        "text",
        value,
        Some(html! {
            "General Information → Public Key. With it, set General Information → Events Endpoint URL to "
            code { "https://<this host>/discord/events" }
            " and enable the " code { "APPLICATION_DEAUTHORIZED" } " event: a member who removes the application on Discord is unlinked at once."
        }),
        refusal,
        false,
    )
}

fn callback_field(value: &str, refusal: Option<&ApiError>) -> Markup {
    html! {
        (input("callback_url", "Callback (redirect) URL", "url", value,
            Some(html! {
                "Add exactly this URL under Developer Portal → OAuth2 → Redirects. "
                button.copy type="button" data-copy="#f-callback_url" hidden { "Copy" }
            }), refusal, true))
    }
}

/// `https://<host>/discord/sso/callback` for the host the operator reached the console at.
fn callback_url_for(headers: &HeaderMap, uri: &Uri) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .or(uri.authority().map(|a| a.as_str()))
        .unwrap_or("localhost");
    let scheme = if is_https(headers, uri.scheme_str()) {
        "https"
    } else {
        "http"
    };
    format!("{scheme}://{host}/discord/sso/callback")
}

fn new_page(
    user: &ConsoleUser,
    app: &AppState,
    f: &ClientForm,
    refusal: Option<&ApiError>,
) -> Page {
    let notice = refusal.map(|e| Notice::error(format!("Not saved: {}", e.0.detail)));
    let mut page = shell(
        "Set up a client",
        Some(user),
        None,
        notice,
        html! {
            h1 { "Set up a client" }
            p { "A client is one Discord application and the one server it manages. Follow the steps; "
                "what you paste here is checked against Discord when you press Create. Every field is "
                "required unless it says optional." }
            form.steps method="post" action="/admin/clients" {
                (csrf_field(user))
                ol.steps {
                    li {
                        h2 { "Create the Discord application" }
                        p { "Open the " a href="https://discord.com/developers/applications" rel="noopener noreferrer" target="_blank" { "Discord Developer Portal" }
                            ", press New Application and give it your community's name." }
                    }
                    li {
                        h2 { "Copy its ids and secret" }
                        (input("client_id", "Application ID", "text", &f.client_id,
                            Some(html! { "General Information → Application ID." }), refusal, true))
                        (public_key_field(&f.public_key, refusal))
                        (secret_input("client_secret", "Client Secret", None,
                            html! { "OAuth2 → Client Secret → Reset Secret, then copy. Never shown again here." }, refusal))
                    }
                    li {
                        h2 { "Add the callback URL" }
                        (callback_field(&f.callback_url, refusal))
                    }
                    li {
                        h2 { "Create the bot" }
                        (secret_input("bot_token", "Bot token", None,
                            html! { "Bot → Reset Token, then copy. Never shown again here." }, refusal))
                        p { "On the same page, turn on " strong { "Server Members Intent" } " (Privileged Gateway Intents) and save." }
                    }
                    li {
                        h2 { "Name it and pick the server" }
                        (input("name", "Name", "text", &f.name, Some(html! { "Shown in the console." }), refusal, true))
                        (input("id", "Client id (optional)", "text", &f.id,
                            Some(html! { "Your website uses it in API paths (" code { "/api/v1/clients/<id>/…" } "). Lowercase letters, digits and dashes; made from the name when empty." }), refusal, false))
                        (input("guild_id", "Discord server (guild) ID", "text", &f.guild_id,
                            Some(html! { "Discord → User Settings → Advanced → Developer Mode on; then right-click your server → Copy Server ID." }), refusal, true))
                        (unlink_policy_field(f))
                        (origins_field(f, refusal))
                        (discord_urls_fields(f, refusal, app, !f.discord_api_base.is_empty()))
                    }
                }
                button.primary type="submit" { "Create client" }
                p.help { "Next: invite the bot to the server and check the role hierarchy." }
            }
        },
    );
    if refusal.is_some() {
        page.status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    page
}

/// `GET /admin/clients/new`.
pub async fn new_form(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    headers: HeaderMap,
    uri: Uri,
) -> Page {
    let form = ClientForm {
        callback_url: callback_url_for(&headers, &uri),
        ..ClientForm::default()
    };
    new_page(&user, &app, &form, None)
}

/// `POST /admin/clients`: creates the client; its roles are synced at once (the bot token is
/// required here), then the operator continues on the setup page.
pub async fn create(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Form(form): Form<ClientForm>,
) -> Response {
    let echo = form.clone().without_secrets();
    let input = form.into_input();
    let missing = if input.client_secret.is_none() {
        Some(ApiError::invalid(
            "client_secret",
            "paste the application's client secret",
        ))
    } else if input.bot_token.is_none() {
        Some(ApiError::invalid("bot_token", "paste the bot's token"))
    } else {
        None
    };
    if let Some(e) = missing {
        return new_page(&user, &app, &echo, Some(&e)).into_response();
    }
    let (client, secrets) = match new_client(&app, input) {
        Ok(built) => built,
        Err(e) => return new_page(&user, &app, &echo, Some(&e)).into_response(),
    };
    match svc::create_client(&app, client, secrets).await {
        Ok((c, _)) => {
            Redirect::to(&format!("{}/setup?done=created", client_path(&c.id))).into_response()
        }
        Err(e) => new_page(&user, &app, &echo, Some(&ApiError::from(e))).into_response(),
    }
}

/// `?done=<code>`: which notice a redirect asked for.
#[derive(Deserialize)]
pub struct DoneQuery {
    pub done: Option<String>,
}

fn step(done: Option<bool>, title: &str, body: Markup) -> Markup {
    let class = match done {
        Some(true) => "step ok",
        Some(false) => "step bad",
        None => "step",
    };
    html! {
        li class=(class) {
            h2 { (title) " " (mark(done, "done", "needs attention", "not checked")) }
            (body)
        }
    }
}

/// `GET /admin/clients/{client}/setup`: the steps after creating the client, each with its
/// state as last checked.
pub async fn setup(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let roles = app
        .store
        .list_roles(&c.id)
        .await
        .map_err(|e| Failure::store(&user, e))?;
    let hierarchy = Hierarchy::of(&c, &roles);
    let g = &c.guild;
    let in_guild = g
        .synced_at
        .map(|_| true)
        .or(g.bot_token_ok.filter(|ok| !ok));
    let base = client_path(&c.id);
    Ok(shell(
        &format!("Set up {}", c.name),
        Some(&user),
        Some((&c, Section::Overview)),
        done_notice(q.done.as_deref()),
        html! {
            h1 { "Finish setting up " (c.name) }
            ol.steps {
                (step(Some(true), "Application, secrets and callback URL", html! {
                    p { "Saved. Replace them any time on the " a href=(base) { "Overview" } " page." }
                }))
                (step(g.bot_token_ok, "Discord accepts the bot token", html! {
                    @if g.bot_token_ok == Some(false) {
                        p.field-error { "Discord refused the bot token. Reset it in the Developer Portal (Bot → Reset Token) and paste it on the " a href=(base) { "Overview" } " page." }
                    } @else {
                        p { "The connector signs in to Discord as your bot." }
                    }
                }))
                (step(in_guild, "Invite the bot to the server", html! {
                    p { "The bot needs exactly these permissions: Manage Roles, Manage Nicknames, Create Instant Invite"
                        @if c.unlink_policy == UnlinkPolicy::Kick { ", Kick Members" } "." }
                    p { a.button href=(bot_invite_url(&c)) rel="noopener noreferrer" target="_blank" { "Invite the bot to server " (c.guild_id) } }
                }))
                (step(g.members_intent, "Server Members Intent is on", html! {
                    @if g.members_intent == Some(false) {
                        p.field-error { "Discord refuses the member list: turn on Server Members Intent (Developer Portal → Bot → Privileged Gateway Intents) and check again." }
                    } @else {
                        p { "Needed to page through the member list in the weekly remote sync." }
                    }
                }))
                (step(hierarchy.ok(&c), "Role hierarchy", html! {
                    @if g.synced_at.is_none() {
                        p { "Roles are read from Discord by the check below." }
                    } @else if !hierarchy.blocked_mapped.is_empty() {
                        p.field-error { "Move the bot's role above: " strong { (hierarchy.blocked_mapped.join(", ")) } " (Server Settings → Roles, drag the bot's role up), then check again." }
                    } @else if !hierarchy.above_bot.is_empty() {
                        p { "The bot can manage every role below its own. These are above it, so they cannot be mapped until you move the bot's role above them: " strong { (hierarchy.above_bot.join(", ")) } "." }
                    } @else {
                        p { "The bot's role is above every role it may manage." }
                    }
                    p { (roles.len()) " roles synced"
                        @if let Some(at) = g.synced_at { " at " (time(at)) } "." }
                }))
            }
            form method="post" action=(format!("{base}/check")) {
                (csrf_field(&user))
                button.primary type="submit" { "Check again with Discord" }
                @if let Some(at) = g.checked_at { " " span.help { "Last checked " (time(at)) "." } }
            }
            p { "Then map your website's groups to roles on the " a href=(format!("{base}/roles")) { "Roles" } " page." }
        },
    ))
}

/// `POST /admin/clients/{client}/check`.
pub async fn check(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    match health::check_setup(&app, &c.id, &user.actor).await {
        Ok(result) => match result.problem {
            None => Ok(
                Redirect::to(&format!("{}/setup?done=checked", client_path(&c.id))).into_response(),
            ),
            Some(problem) => Err(Failure::discord(&user, &problem)),
        },
        Err(e) => Err(Failure::service(&user, e)),
    }
}

/// `GET /admin/clients/{client}`: health, settings, secrets, deletion.
pub async fn overview(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    overview_page(&app, &user, c, None, done_notice(q.done.as_deref()), None).await
}

/// The overview's Linked Roles section: what is configured, read from the store only (the
/// Linked roles page also asks Discord what it holds; the overview makes no Discord call).
fn linked_roles_section(c: &Client) -> Markup {
    use crate::domain::linked_roles::MetadataSource;
    let href = format!("{}/linked-roles", client_path(&c.id));
    html! {
        section aria-labelledby="linked-roles-h" {
            h2 #linked-roles-h { "Linked roles" }
            @match &c.linked_roles {
                None => p { "Not configured: no facts about members are registered with Discord. "
                    a href=(href) { "Define linked roles" } },
                Some(l) => {
                    p {
                        @if l.enabled { (badge("good", "on")) " Members are asked for role_connections.write and their metadata is pushed as " }
                        @else { (badge("unknown", "off")) " Registered, not pushed; shown to members as " }
                        strong { (l.platform_name) } "."
                    }
                    table {
                        caption.visually-hidden { "Linked Roles metadata" }
                        thead { tr { th scope="col" { "Key" } th scope="col" { "Name" } th scope="col" { "Compared" } th scope="col" { "From" } } }
                        tbody {
                            @for m in &l.metadata {
                                tr {
                                    td { code { (m.key) } }
                                    td { (m.name) }
                                    td { (m.comparison.as_str()) }
                                    td { @match &m.source {
                                        MetadataSource::Group(g) => { "group " code { (g) } },
                                        MetadataSource::Attribute(a) => { "attribute " code { (a) } },
                                    } }
                                }
                            }
                        }
                    }
                    p { a href=(href) { "Edit linked roles and compare with Discord" } }
                }
            }
        }
    }
}

async fn overview_page(
    app: &AppState,
    user: &ConsoleUser,
    c: Client,
    form: Option<ClientForm>,
    notice: Option<Notice>,
    refusal: Option<&ApiError>,
) -> Result<Page, Failure> {
    let summary = client_summary(app, &c)
        .await
        .map_err(|e| Failure::service(user, e))?;
    let v = view(app, c.clone(), None)
        .await
        .map_err(|e| Failure::api(user, e))?;
    let form = form.unwrap_or_else(|| ClientForm::of(&c));
    let base = client_path(&c.id);
    let mut page = shell(
        &c.name,
        Some(user),
        Some((&c, Section::Overview)),
        notice,
        html! {
            h1 { (c.name) }
            p.help { "Client id " code { (c.id) } " · server " code { (c.guild_id) } " · application " code { (c.client_id) } }
            section aria-labelledby="health-h" {
                h2 #health-h { "Health" }
                table.summary {
                    caption.visually-hidden { "Health of " (c.name) }
                    thead { tr { th scope="col" { "Bot token" } th scope="col" { "Hierarchy" } th scope="col" { "Members" } th scope="col" { "Last runs" } th scope="col" { "429s (24 h)" } } }
                    tbody { tr { (summary_cells(&c, &summary, app.clock.now())) } }
                }
                p { a href=(format!("{base}/setup")) { "Setup steps and hierarchy check" } }
            }
            section aria-labelledby="settings-h" {
                h2 #settings-h { "Settings" }
                form method="post" action=(format!("{base}/settings")) {
                    (csrf_field(user))
                    (settings_fields(&form, refusal, app))
                    button.primary type="submit" { "Save settings" }
                }
            }
            section aria-labelledby="secrets-h" {
                h2 #secrets-h { "Secrets" }
                p { "Write-only: they are never shown again. Changing the application id or a Discord URL needs both again." }
                form method="post" action=(format!("{base}/secrets")) {
                    (csrf_field(user))
                    (secret_input("bot_token", "bot token", Some(v.has_bot_token), html! { "Developer Portal → Bot → Reset Token." }, refusal))
                    (secret_input("client_secret", "client secret", Some(v.has_client_secret), html! { "Developer Portal → OAuth2 → Reset Secret." }, refusal))
                    button type="submit" { "Replace secrets" }
                }
            }
            (super::webhooks::overview_section(&c, v.has_webhook_secret))
            (linked_roles_section(&c))
            section aria-labelledby="delete-h" {
                h2 #delete-h { "Delete this client" }
                p { "Removes its configuration, secrets, links and history from the connector. Nothing changes on Discord." }
                form method="post" action=(format!("{base}/delete")) {
                    (csrf_field(user))
                    div.field {
                        label for="confirm-id" { "Type the client id " code { (c.id) } " to confirm" }
                        input #confirm-id name="confirm" type="text" autocomplete="off" required;
                    }
                    button.danger type="submit" { "Delete client" }
                }
            }
        },
    );
    if refusal.is_some() {
        page.status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

/// `POST /admin/clients/{client}/settings`.
pub async fn save_settings(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Form(form): Form<ClientForm>,
) -> Result<Response, Failure> {
    let before = load_client(&app, &user, &id).await?;
    let echo = form.clone().without_secrets();
    let mut patch = form.into_patch();
    // Secrets have their own form: a settings save never carries them.
    patch.bot_token = None;
    patch.client_secret = None;
    let result = match patched_client(&app, &before, patch) {
        Ok((c, secrets)) => svc::update_client(&app, c, secrets)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=saved", client_path(&id))).into_response()),
        Err(e) => {
            let notice = Notice::error(format!("Not saved: {}", e.0.detail));
            Ok(
                overview_page(&app, &user, before, Some(echo), Some(notice), Some(&e))
                    .await?
                    .into_response(),
            )
        }
    }
}

/// `POST /admin/clients/{client}/secrets`: replaces what was given; a new bot token syncs the
/// roles again.
pub async fn replace_secrets(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Form(form): Form<ClientForm>,
) -> Result<Response, Failure> {
    let before = load_client(&app, &user, &id).await?;
    let patch = ClientPatch {
        bot_token: secret(&form.bot_token),
        client_secret: secret(&form.client_secret),
        ..ClientPatch::default()
    };
    if patch.bot_token.is_none() && patch.client_secret.is_none() {
        let e = ApiError::invalid(
            "bot_token",
            "paste a new bot token or client secret (or both)",
        );
        let notice = Notice::error("Nothing to replace: both fields were empty.");
        return Ok(
            overview_page(&app, &user, before, None, Some(notice), Some(&e))
                .await?
                .into_response(),
        );
    }
    let result = match patched_client(&app, &before, patch) {
        Ok((c, secrets)) => svc::update_client(&app, c, secrets)
            .await
            .map_err(ApiError::from),
        Err(e) => Err(e),
    };
    match result {
        Ok(_) => Ok(Redirect::to(&format!("{}?done=secrets", client_path(&id))).into_response()),
        Err(e) => {
            let notice = Notice::error(format!("Not replaced: {}", e.0.detail));
            Ok(
                overview_page(&app, &user, before, None, Some(notice), Some(&e))
                    .await?
                    .into_response(),
            )
        }
    }
}

#[derive(Deserialize)]
pub struct DeleteForm {
    #[serde(default)]
    confirm: String,
}

/// `POST /admin/clients/{client}/delete`: only with the client id typed in.
pub async fn delete(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Form(form): Form<DeleteForm>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    if form.confirm.trim() != c.id {
        let e = ApiError::invalid("confirm", "type the client id exactly to delete it");
        let notice = Notice::error("Not deleted: the client id typed did not match.");
        return Ok(overview_page(&app, &user, c, None, Some(notice), Some(&e))
            .await?
            .into_response());
    }
    svc::delete_client(&app, &c.id)
        .await
        .map_err(|e| Failure::service(&user, e))?;
    Ok(Redirect::to(&format!("/admin?done=deleted&_={}", enc(&c.id))).into_response())
}
