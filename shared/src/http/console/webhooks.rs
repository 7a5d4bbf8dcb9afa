//! A client's website webhooks in the console: the URL, whether a signing secret is set (a new
//! one is shown once, on the page that made it), and the deliveries with a retry for each.

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use secrecy::SecretString;
use serde::Deserialize;

use crate::app::AppState;
use crate::domain::webhook::new_webhook_secret;
use crate::domain::{Client, DeliveryStatus};
use crate::http::clients::{update_client, view, ClientPatch};
use crate::http::error::ApiError;
use crate::store::Cursor;

use super::dashboard::{load_client, Failure};
use super::page::{badge, client_path, csrf_field, enc, shell, time, Notice, Page, Section};
use super::session::ConsoleUser;

/// Deliveries shown per page.
const PAGE: usize = 50;

/// The overview's short section: state and a link to the webhooks page.
pub fn overview_section(c: &Client, has_secret: bool) -> Markup {
    let base = client_path(&c.id);
    html! {
        section aria-labelledby="webhooks-h" {
            h2 #webhooks-h { "Website webhooks" }
            @match &c.webhook_url {
                Some(url) => p { "Signed events go to " code { (url) } ". Signing secret: "
                    @if has_secret { (badge("good", "set")) } @else { (badge("bad", "not set")) } },
                None => p { "Off: your website is not told about links and members." },
            }
            p { a href=(format!("{base}/webhooks")) { "Webhook settings and deliveries" } }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct WebhookForm {
    webhook_url: String,
    /// "on" when the operator asks for a new signing secret.
    new_secret: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct DeliveriesQuery {
    cursor: Option<String>,
    done: Option<String>,
}

/// `GET /admin/clients/{client}/webhooks`.
pub async fn page(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Query(q): Query<DeliveriesQuery>,
) -> Result<Page, Failure> {
    let c = load_client(&app, &user, &id).await?;
    let notice = match q.done.as_deref() {
        Some("saved") => Some(Notice::ok("Webhook settings saved.")),
        Some("retry") => Some(Notice::ok("The delivery is queued again.")),
        _ => None,
    };
    render(&app, &user, c, q.cursor.as_deref(), notice, None, None).await
}

async fn render(
    app: &AppState,
    user: &ConsoleUser,
    c: Client,
    cursor: Option<&str>,
    notice: Option<Notice>,
    new_secret: Option<&str>,
    refusal: Option<&ApiError>,
) -> Result<Page, Failure> {
    let v = view(app, c.clone(), None)
        .await
        .map_err(|e| Failure::api(user, e))?;
    let after = cursor
        .map(Cursor::parse)
        .transpose()
        .map_err(|e| Failure::store(user, e))?;
    let deliveries = app
        .store
        .list_deliveries(&c.id, after.as_ref(), PAGE)
        .await
        .map_err(|e| Failure::store(user, e))?;
    let base = format!("{}/webhooks", client_path(&c.id));
    let invalid = refusal.is_some_and(|e| e.0.field.as_deref() == Some("webhook_url"));
    let mut page = shell(
        &format!("Webhooks · {}", c.name),
        Some(user),
        Some((&c, Section::Overview)),
        notice,
        html! {
            h1 { "Website webhooks" }
            p.help { "Events about links and members, signed (Standard Webhooks), sent to your website. See the README for how to verify them." }
            @if let Some(secret) = new_secret {
                div.notice.ok role="status" {
                    p { "New signing secret — copy it now, it is not shown again:" }
                    p { code #new-secret { (secret) } }
                }
            }
            section aria-labelledby="wh-settings-h" {
                h2 #wh-settings-h { "Settings" }
                form method="post" action=(base) {
                    (csrf_field(user))
                    div.field {
                        label for="webhook_url" { "Webhook URL" }
                        input #webhook_url name="webhook_url" type="url" value=(c.webhook_url.clone().unwrap_or_default())
                            aria-invalid=[invalid.then_some("true")] aria-describedby="webhook_url-help";
                        p.help #webhook_url-help {
                            "https:// (http:// only to localhost). Empty turns webhooks off. "
                            @if let Some(e) = refusal.filter(|_| invalid) { strong { (e.0.detail) } }
                        }
                    }
                    div.field {
                        label {
                            input name="new_secret" type="checkbox";
                            " Make a new signing secret (the old one stops working). Signing secret: "
                            @if v.has_webhook_secret { (badge("good", "set")) } @else { (badge("bad", "not set")) }
                        }
                    }
                    button.primary type="submit" { "Save webhook settings" }
                }
            }
            section aria-labelledby="wh-deliveries-h" {
                h2 #wh-deliveries-h { "Deliveries" }
                @if deliveries.items.is_empty() {
                    p { "None yet." }
                } @else {
                    table {
                        caption.visually-hidden { "Webhook deliveries, newest first" }
                        thead { tr {
                            th scope="col" { "Event" } th scope="col" { "User" } th scope="col" { "Status" }
                            th scope="col" { "Attempts" } th scope="col" { "Last answer" } th scope="col" { "Next attempt" }
                            th scope="col" { "Created" } th scope="col" { span.visually-hidden { "Actions" } }
                        } }
                        tbody {
                            @for d in &deliveries.items {
                                tr {
                                    td { code { (d.event_type.as_str()) } }
                                    td { a href=(format!("{}/members/{}", client_path(&c.id), enc(&d.user_id))) { (d.user_id) } }
                                    td { (status_badge(d.status)) }
                                    td { (d.attempts) }
                                    td { @if let Some(code) = d.last_status_code { (code) " " } (d.last_error.clone().unwrap_or_default()) }
                                    td { @if let Some(at) = d.next_attempt_at { (time(at)) } }
                                    td { (time(d.created_at)) }
                                    td {
                                        @if d.status != DeliveryStatus::Pending {
                                            form method="post" action=(format!("{base}/{}/retry", enc(&d.id))) {
                                                (csrf_field(user))
                                                button type="submit" { "Send again" }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                    @if let Some(next) = &deliveries.next {
                        p { a href=(format!("{base}?cursor={}", enc(next.as_str()))) { "Older deliveries" } }
                    }
                }
            }
        },
    );
    if refusal.is_some() {
        page.status = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(page)
}

fn status_badge(s: DeliveryStatus) -> Markup {
    match s {
        DeliveryStatus::Delivered => badge("good", "delivered"),
        DeliveryStatus::Pending => badge("warn", "pending"),
        DeliveryStatus::Failed => badge("bad", "failed"),
    }
}

/// `POST /admin/clients/{client}/webhooks`: the URL (empty: off) and, if asked, a new secret.
pub async fn save(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path(id): Path<String>,
    Form(form): Form<WebhookForm>,
) -> Result<Response, Failure> {
    let before = load_client(&app, &user, &id).await?;
    let url = form.webhook_url.trim();
    let fresh = (form.new_secret == "on").then(new_webhook_secret);
    let patch = ClientPatch {
        webhook_url: Some((!url.is_empty()).then(|| url.to_owned())),
        webhook_secret: fresh.clone().map(SecretString::from),
        ..ClientPatch::default()
    };
    match update_client(&app, &before, patch).await {
        // A secret made now is shown on this answer, never in a URL.
        Ok(v) => match fresh.or(v.webhook_secret) {
            Some(secret) => {
                let c = load_client(&app, &user, &id).await?;
                let notice = Some(Notice::ok("Webhook settings saved."));
                Ok(render(&app, &user, c, None, notice, Some(&secret), None)
                    .await?
                    .into_response())
            }
            None => Ok(
                Redirect::to(&format!("{}/webhooks?done=saved", client_path(&id))).into_response(),
            ),
        },
        Err(e) => {
            let notice = Some(Notice::error(format!("Not saved: {}", e.0.detail)));
            Ok(render(&app, &user, before, None, notice, None, Some(&e))
                .await?
                .into_response())
        }
    }
}

/// `POST /admin/clients/{client}/webhooks/{id}/retry`.
pub async fn retry(
    State(app): State<AppState>,
    Extension(user): Extension<ConsoleUser>,
    Path((id, delivery)): Path<(String, String)>,
) -> Result<Response, Failure> {
    load_client(&app, &user, &id).await?;
    app.store
        .retry_delivery(&id, &delivery, app.clock.now())
        .await
        .map_err(|e| Failure::store(&user, e))?;
    Ok(Redirect::to(&format!("{}/webhooks?done=retry", client_path(&id))).into_response())
}
