//! A client's Linked Roles in the console: the metadata records defined in a form (saving
//! registers them with Discord, then stores them, as the admin API's `PUT …/linked-roles` does),
//! beside what Discord holds now.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};

use crate::app::AppState;
use crate::discord::DiscordError;
use crate::domain::linked_roles::{from_discord_type, MAX_METADATA};
use crate::domain::Client;
use crate::http::error::ApiError;
use crate::service::linked_roles::{self as svc, LinkedRolesView};
use crate::service::ServiceError;

use super::clients::DoneQuery;
use super::dashboard::{load_client, Failure};
use super::explain::error_code;
use super::page::{badge, client_path, csrf_field, shell, Notice, Page, Section};
use super::session::ConsoleUser;

mod form;

use form::{field_label, refusal_in_form, LinkedRolesForm, Refusal, Row};

const KINDS: [(&str, &str); 3] = [
    ("boolean", "boolean (yes / no, from a group)"),
    ("integer", "integer (a number, from an attribute)"),
    ("datetime", "datetime (a date, from an attribute)"),
];

const COMPARISONS: [(&str, &str); 5] = [
    ("", "the usual one for the type"),
    ("equal", "equal (=)"),
    ("not_equal", "not equal (≠)"),
    ("greater_than_or_equal", "greater than or equal (≥)"),
    ("less_than_or_equal", "less than or equal (≤)"),
];

/// What a Discord failure on this page means for the operator (nothing here is retried on its
/// own, unlike a member's change).
fn discord_words(e: &DiscordError) -> &'static str {
    match e.code() {
        "discord_overloaded"
        | "discord_unavailable"
        | "discord_unreachable"
        | "rate_limited"
        | "discord_bad_response"
        | "discord_response_too_large" => {
            "Discord did not answer as expected; try again in a moment."
        }
        "invalid_form_body" | "discord_error" => "Discord's message above says what it refused.",
        code => error_code(code),
    }
}

/// A Discord record's `type` in words.
fn discord_type_words(t: u8) -> String {
    match from_discord_type(u64::from(t)) {
        Some((kind, comparison)) => format!("{}, {}", kind.as_str(), comparison.as_str()),
        None => format!("type {t} (unknown)"),
    }
}

/// `GET /admin/clients/{client}/linked-roles`.
pub async fn page(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<DoneQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let notice = match q.done.as_deref() {
        Some("saved") => Some(Notice::ok(match &c.linked_roles {
            Some(l) if l.enabled => {
                "Saved and registered with Discord. Linked members' values are pushed by the \
                 guild's writer within seconds; members linked before Linked Roles were on must \
                 link again."
            }
            _ => "Saved and registered with Discord. Off: nothing is pushed to members.",
        })),
        _ => None,
    };
    let form = LinkedRolesForm::of(c.linked_roles.as_ref());
    render(&app, &user, c, &form, notice, None).await
}

/// `POST /admin/clients/{client}/linked-roles`: validated, registered with Discord (replacing
/// the application's records), then stored — the service's order.
pub async fn save(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let form = LinkedRolesForm::parse(fields);
    let refused = |refusal: Refusal| {
        let notice = Notice::error(format!(
            "Not saved: {}: {}. Nothing was sent to Discord.",
            field_label(&refusal.field),
            refusal.message
        ));
        (notice, refusal)
    };
    let (config, rows) = match form.to_config() {
        Ok(parsed) => parsed,
        Err(refusal) => {
            let (notice, refusal) = refused(refusal);
            return Ok(render(&app, &user, c, &form, Some(notice), Some(&refusal))
                .await?
                .into_response());
        }
    };
    match svc::save_linked_roles(&app, &c.id, config, &user.actor).await {
        Ok(_) => Ok(
            Redirect::to(&format!("{}/linked-roles?done=saved", client_path(&c.id)))
                .into_response(),
        ),
        Err(ServiceError::Invalid { field, message }) => {
            let (notice, refusal) = refused(refusal_in_form(&field, message, &rows));
            Ok(render(&app, &user, c, &form, Some(notice), Some(&refusal))
                .await?
                .into_response())
        }
        Err(ServiceError::Discord(e)) => {
            let notice = Notice::error(format!(
                "Not saved: Discord refused the records ({e}). {} Nothing was stored; Discord \
                 still holds what it held before.",
                discord_words(&e)
            ));
            // The admin API's status for the same refusal (502, 503 when rate limited, …).
            let status = StatusCode::from_u16(ApiError::from(ServiceError::Discord(e)).0.status)
                .unwrap_or(StatusCode::BAD_GATEWAY);
            let mut page = render(&app, &user, c, &form, Some(notice), None).await?;
            page.status = status;
            Ok(page.into_response())
        }
        Err(e) => Err(Failure::service(&user, e)),
    }
}

/// The page: the form (`form`: stored or as typed), what Discord holds (asked now) and how it
/// all works. 422 when `refusal` names a field.
async fn render(
    app: &AppState,
    user: &ConsoleUser,
    c: Client,
    form: &LinkedRolesForm,
    notice: Option<Notice>,
    refusal: Option<&Refusal>,
) -> Result<Page, Failure> {
    let held = match svc::linked_roles(app, &c.id).await {
        Ok(view) => Ok(view),
        Err(ServiceError::Discord(e)) => Err(e),
        Err(e) => return Err(Failure::service(user, e)),
    };
    let base = client_path(&c.id);
    let mut page = shell(
        &format!("Linked roles · {}", c.name),
        Some(user),
        Some((&c, Section::LinkedRoles)),
        notice,
        html! {
            h1 { "Linked roles" }
            p { "Facts about a member that this application vouches for — “is an officer”, "
                "“missions flown”, “member since” — which a server can require on a role. Members "
                "who meet the requirement claim the role themselves in Discord (no bot role above "
                "it needed). Define up to " (MAX_METADATA) " facts here and where each member's "
                "value comes from." }
            (discord_state(&held))
            h2 { "Definition" }
            form method="post" action=(format!("{base}/linked-roles")) {
                (csrf_field(user))
                (enabled_field(form.enabled))
                (text_field("platform_name", "f-platform_name", "Platform name", &form.platform_name,
                    "Shown by Discord beside the connection on the member's profile, e.g. your site's name (1–50 characters).",
                    refusal))
                (text_field("username_attribute", "f-username_attribute", "Member's name from attribute", &form.username_attribute,
                    "The site attribute Discord shows as the member's name on that connection, e.g. username. Empty: their site user id.",
                    refusal))
                h3 { "Records" }
                (types_help())
                @for (i, row) in form.rows.iter().enumerate() {
                    (row_fields(i, row, refusal))
                }
                p.help #save-help { "Saving registers these records with Discord, replacing every Linked Roles record of "
                    "application " code { (c.client_id) } ". The set belongs to the application, so it is shared by "
                    "every server the application is in. They are stored here only once Discord accepted them." }
                button.primary type="submit" aria-describedby="save-help" { "Save and register with Discord" }
            }
            (in_discord_help())
        },
    );
    if refusal.is_some() {
        page.status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

/// Whether Discord holds what we store, and its records; in words when it could not be asked.
fn discord_state(held: &Result<LinkedRolesView, DiscordError>) -> Markup {
    html! {
        section aria-labelledby="held-h" {
            h2 #held-h { "What Discord holds now" }
            @match held {
                Err(e) => {
                    p.notice.error role="alert" {
                        "Discord could not be asked which records it holds now (" (e) "). "
                        (discord_words(e)) " The form below shows what the connector stores."
                    }
                }
                Ok(view) => {
                    p #sync-state {
                        @if view.config.is_none() && view.discord.is_empty() {
                            (badge("unknown", "not defined")) " Nothing is registered yet."
                        } @else if view.in_sync {
                            (badge("good", "in sync")) " Discord holds exactly the records saved here."
                        } @else {
                            (badge("bad", "out of sync")) " Discord holds other records than the ones saved here "
                            "(changed elsewhere with the bot token?). Saving replaces them with the ones below."
                        }
                    }
                    @if view.discord.is_empty() {
                        p { "Discord holds no record for this application." }
                    } @else {
                        div.table-wrap {
                            table.stack {
                                caption.visually-hidden { "Records Discord holds for the application" }
                                thead { tr {
                                    th scope="col" { "Key" } th scope="col" { "Name" }
                                    th scope="col" { "Description" } th scope="col" { "Type" }
                                } }
                                tbody {
                                    @for r in &view.discord {
                                        tr {
                                            td data-label="Key" { code { (r.key) } }
                                            td data-label="Name" { (r.name) }
                                            td data-label="Description" { (r.description) }
                                            td data-label="Type" { (discord_type_words(r.kind)) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn enabled_field(enabled: bool) -> Markup {
    html! {
        div.field {
            label.check {
                input name="enabled" type="checkbox" checked[enabled] aria-describedby="f-enabled-help";
                " On: push each linked member's values to Discord"
            }
            p.help #f-enabled-help { "When on, linking also asks members for " code { "role_connections.write" }
                " (permission to set their values). Members who linked before have not granted it: they must "
                "link again (their member page says " em { "needs relink" } "). Off keeps the records registered "
                "but pushes nothing." }
        }
    }
}

/// What each type and comparison means for the requirement a server admin sets.
fn types_help() -> Markup {
    html! {
        div.help-box #types-help {
            p { "Each record is one fact. A server admin then picks it in a role's requirements and sets a value; "
                "the comparison decides how the member's value must relate to it:" }
            dl {
                dt { "boolean" }
                dd { "From a site " strong { "group" } ": true when the member is in it. E.g. group "
                    code { "officers" } " → the server requires " em { "Officer = true" } " for its Officer role. "
                    "Compared by " em { "equal" } " (the member's value must be what the server picks) or "
                    em { "not equal" } " (the opposite)." }
                dt { "integer" }
                dd { "From a site " strong { "attribute" } " holding a whole number. E.g. attribute "
                    code { "missions" } " with " em { "greater than or equal" } " → the server requires "
                    em { "Missions ≥ 10" } ". " em { "less than or equal" } ", " em { "equal" } " and "
                    em { "not equal" } " work the same way." }
                dt { "datetime" }
                dd { "From a site " strong { "attribute" } " holding a date (" code { "YYYY-MM-DD" } "). The server "
                    "sets a number of days: " em { "less than or equal" } " means the date is at least that many days ago "
                    "(" em { "member for 30 days or more" } "), " em { "greater than or equal" } " that it is within "
                    "the last that many days. Only these two." }
            }
            p { "A member whose attribute is missing, or holds no number or date, does not meet the requirement. "
                "Rows left empty are ignored; clear a row to remove its record." }
        }
    }
}

fn in_discord_help() -> Markup {
    html! {
        section aria-labelledby="in-discord-h" {
            h2 #in-discord-h { "In Discord" }
            ol {
                li { "Developer Portal → your application → General Information → " strong { "Linked Roles Verification URL" }
                    ": the page of your website that starts linking (its “link Discord” button). Discord sends members "
                    "there from a role's Links panel." }
                li { "Server Settings → Roles → pick (or create) a role → " strong { "Links" } " → Add requirement → "
                    "this application → pick a record and its value (e.g. Officer: true). Members who meet it claim "
                    "the role from the server's menu (Linked Roles)." }
            }
        }
    }
}

/// A labelled text input, marked invalid with the message when the refusal names it.
fn text_field(
    name: &str,
    id: &str,
    label: &str,
    value: &str,
    help: &str,
    refusal: Option<&Refusal>,
) -> Markup {
    let error = refusal.filter(|r| r.field == name);
    let help_id = format!("{id}-help");
    let error_id = format!("{id}-error");
    let described = if error.is_some() {
        format!("{help_id} {error_id}")
    } else {
        help_id.clone()
    };
    html! {
        div.field {
            label for=(id) { (label) }
            input id=(id) name=(name) type="text" value=(value)
                aria-invalid=[error.map(|_| "true")] aria-describedby=(described)
                autocomplete="off" spellcheck="false";
            @if !help.is_empty() { p.help id=(help_id) { (help) } }
            @if let Some(e) = error { p.field-error id=(error_id) { (e.message) } }
        }
    }
}

/// A labelled select, marked invalid like [`text_field`].
fn select_field(
    name: &str,
    id: &str,
    label: &str,
    value: &str,
    options: &[(&str, &str)],
    refusal: Option<&Refusal>,
) -> Markup {
    let error = refusal.filter(|r| r.field == name);
    let error_id = format!("{id}-error");
    html! {
        div.field {
            label for=(id) { (label) }
            select id=(id) name=(name) aria-invalid=[error.map(|_| "true")]
                aria-describedby=[error.map(|_| error_id.as_str())] {
                @for (v, text) in options {
                    option value=(v) selected[*v == value] { (text) }
                }
            }
            @if let Some(e) = error { p.field-error id=(error_id) { (e.message) } }
        }
    }
}

fn row_fields(i: usize, row: &Row, refusal: Option<&Refusal>) -> Markup {
    let name = |f: &str| format!("metadata[{i}].{f}");
    let id = |f: &str| format!("m{i}-{f}");
    let kind = if row.kind.is_empty() {
        "boolean"
    } else {
        row.kind.as_str()
    };
    html! {
        fieldset.record {
            legend { "Record " (i + 1) }
            div.record-fields {
                (text_field(&name("key"), &id("key"), "Key", &row.key,
                    "a-z, 0-9 and _, e.g. officer; unique.", refusal))
                (text_field(&name("name"), &id("name"), "Name", &row.name,
                    "What server admins see, e.g. Officer.", refusal))
                (text_field(&name("description"), &id("description"), "Description", &row.description,
                    "e.g. Is an officer on the site.", refusal))
                (select_field(&name("type"), &id("type"), "Type", kind, &KINDS, refusal))
                (select_field(&name("comparison"), &id("comparison"), "Comparison", &row.comparison, &COMPARISONS, refusal))
                (text_field(&name("source"), &id("source"), "Group or attribute", &row.source,
                    "boolean: a site group; integer, datetime: a site attribute.", refusal))
            }
        }
    }
}
