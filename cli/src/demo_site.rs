//! A tiny stand-in for a community website, served by `demo` at `/demo`: it lists site users,
//! starts link sessions and edits groups through the same service calls the admin API uses, and
//! receives the connector's signed webhooks at `/demo/webhooks`, verifies them and shows them live.

use std::collections::{BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Json;
use axum::Router;
use connector::app::AppState;
use connector::domain::linked_roles::needs_relink;
use connector::domain::webhook::webhook_secret_key;
use connector::domain::SiteUser;
use connector::secrecy::ExposeSecret;
use connector::secrets::ClientSecretKind;
use connector::service::{linking, members};
use serde::Deserialize;

#[derive(Clone)]
struct DemoSite {
    app: AppState,
    client: String,
    origin: String,
    /// The last webhooks received, newest first.
    received: Arc<Mutex<VecDeque<serde_json::Value>>>,
}

/// Webhooks kept for the page.
const KEEP: usize = 20;

pub fn router(app: AppState, client: &str, origin: &str) -> Router {
    let site = DemoSite {
        app,
        client: client.to_owned(),
        origin: origin.to_owned(),
        received: Arc::default(),
    };
    Router::new()
        .route("/demo", get(home))
        .route("/demo/link/{user}", get(link))
        .route("/demo/users/{user}/groups", post(set_groups))
        .route("/demo/users/{user}/unlink", post(unlink))
        .route("/demo/webhooks", post(receive_webhook).get(list_webhooks))
        .with_state(site)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[derive(Deserialize)]
struct HomeQuery {
    discord: Option<String>,
    reason: Option<String>,
    user: Option<String>,
}

async fn home(State(site): State<DemoSite>, Query(q): Query<HomeQuery>) -> Response {
    let store = site.app.store.as_ref();
    let roles = store.list_roles(&site.client).await.unwrap_or_default();
    let role_name = |id: &String| {
        roles
            .iter()
            .find(|r| &r.id == id)
            .map(|r| r.name.clone())
            .unwrap_or_else(|| id.clone())
    };
    let linked_roles = store
        .get_client(&site.client)
        .await
        .ok()
        .flatten()
        .and_then(|c| c.linked_roles);
    let page = store.list_members(&site.client, None, 100).await;
    let mut rows = String::new();
    for m in page.map(|p| p.items).unwrap_or_default() {
        let groups: Vec<_> = m.user.groups.iter().cloned().collect();
        let (discord, applied, action) = match &m.link {
            Some(l) => {
                // Linked before Linked Roles were on: their role connection cannot be written
                // until they link again (granting `role_connections.write`).
                let relink = if needs_relink(linked_roles.as_ref(), l) {
                    format!(
                        " <strong>needs re-link</strong> for Linked Roles: <a href=\"/demo/link/{u}\">Link again</a>",
                        u = esc(&m.user.user_id)
                    )
                } else {
                    String::new()
                };
                (
                    format!("@{} ({:?}){relink}", esc(&l.username), l.status),
                    l.applied_roles.iter().map(&role_name).collect::<Vec<_>>().join(", "),
                    format!("<form method=post action=\"/demo/users/{u}/unlink\"><button>Unlink</button></form>", u = esc(&m.user.user_id)),
                )
            }
            None => (
                "not linked".into(),
                String::new(),
                format!(
                    "<a href=\"/demo/link/{u}\">Link Discord</a>",
                    u = esc(&m.user.user_id)
                ),
            ),
        };
        let error = m
            .last_error
            .as_ref()
            .map(|e| format!("{}: {}", e.code, e.message))
            .unwrap_or_default();
        rows.push_str(&format!(
            "<tr><td>{u}</td><td><form method=post action=\"/demo/users/{u}/groups\"><input name=groups value=\"{g}\" size=30> <button>Save groups</button></form></td>\
             <td>{discord}</td><td>{applied}</td><td>{pending}</td><td>{error}</td><td>{action}</td></tr>",
            u = esc(&m.user.user_id),
            g = esc(&groups.join(", ")),
            pending = if m.pending { "pending" } else { "in sync" },
            error = esc(&error),
        ));
    }
    let banner = match (q.discord.as_deref(), q.user.as_deref()) {
        (Some("linked"), user) => format!(
            "<p style=\"color:green\">Linked {}.</p>",
            esc(user.unwrap_or(""))
        ),
        (Some("error"), _) => format!(
            "<p style=\"color:red\">Linking failed: {}</p>",
            esc(q.reason.as_deref().unwrap_or("unknown"))
        ),
        _ => String::new(),
    };
    let mapping: Vec<String> = roles
        .iter()
        .filter(|r| r.is_mapped())
        .map(|r| {
            format!(
                "{} ← {}",
                esc(&r.name),
                esc(&r.groups.iter().cloned().collect::<Vec<_>>().join(", "))
            )
        })
        .collect();
    Html(format!(
        "<!doctype html><html><head><meta charset=utf-8><title>Demo community</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:.3em .8em;border-bottom:1px solid #ddd;text-align:left}}</style></head><body>\
         <h1>Demo community website</h1>{banner}\
         <p>Role mapping: {mapping}. Groups are comma-separated; saving applies the change on Discord at once.</p>\
         <table><tr><th>site user</th><th>groups</th><th>Discord</th><th>managed roles</th><th>state</th><th>last error</th><th></th></tr>{rows}</table>\
         <p>Add a user: <form method=post action=\"/demo/users/new/groups\" style=display:inline>\
         <input name=user placeholder=\"user id\"> <input name=groups placeholder=\"members, pilots\"> <button>Add</button></form></p>\
         <h2>Webhooks received</h2><p>Signed events the connector sent to <code>/demo/webhooks</code>, each signature checked; updated live.</p>\
         <ul id=webhooks><li>none yet</li></ul>{WEBHOOKS_SCRIPT}\
         </body></html>",
        mapping = mapping.join("; "),
    ))
    .into_response()
}

async fn link(State(site): State<DemoSite>, Path(user): Path<String>) -> Response {
    let return_to = format!("{}/demo?user={}", site.origin, url_escape(&user));
    match linking::start_link_session(&site.app, &site.client, &user, Some(&return_to)).await {
        Ok(started) => Redirect::to(&started.url).into_response(),
        Err(e) => Html(format!(
            "<p>Could not start linking: {}</p>",
            esc(&e.to_string())
        ))
        .into_response(),
    }
}

fn url_escape(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[derive(Deserialize)]
struct GroupsForm {
    groups: String,
    user: Option<String>,
}

async fn set_groups(
    State(site): State<DemoSite>,
    Path(user): Path<String>,
    Form(form): Form<GroupsForm>,
) -> Response {
    let user_id = if user == "new" {
        form.user.unwrap_or_default()
    } else {
        user
    };
    if user_id.trim().is_empty() {
        return Redirect::to("/demo").into_response();
    }
    let existing = site
        .app
        .store
        .get_member(&site.client, &user_id)
        .await
        .ok()
        .flatten();
    let groups: BTreeSet<String> = form
        .groups
        .split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_owned)
        .collect();
    let user = SiteUser {
        user_id,
        groups,
        attributes: existing.map(|m| m.user.attributes).unwrap_or_default(),
    };
    if let Err(e) = members::save_user(&site.app, &site.client, user).await {
        return Html(format!("<p>Could not save: {}</p>", esc(&e.to_string()))).into_response();
    }
    Redirect::to("/demo").into_response()
}

async fn unlink(State(site): State<DemoSite>, Path(user): Path<String>) -> Response {
    match members::unlink(&site.app, &site.client, &user, "demo").await {
        Ok(_) => Redirect::to("/demo").into_response(),
        Err(e) => Html(format!("<p>Could not unlink: {}</p>", esc(&e.to_string()))).into_response(),
    }
}

/// Polls `/demo/webhooks` and lists what arrived (the demo page only: no CSP here).
const WEBHOOKS_SCRIPT: &str = "<script>\
async function poll(){try{const r=await fetch('/demo/webhooks');const items=await r.json();\
const ul=document.getElementById('webhooks');ul.replaceChildren();\
for(const w of items){const li=document.createElement('li');\
li.textContent=(w.verified?'verified: ':'BAD SIGNATURE: ')+w.event.type+' '+JSON.stringify(w.event.data)+' at '+w.event.timestamp;ul.append(li);}\
if(!items.length){const li=document.createElement('li');li.textContent='none yet';ul.append(li);}}catch(e){}}\
poll();setInterval(poll,2000);</script>";

/// `POST /demo/webhooks`: what a website does with a webhook — check the signature over the raw
/// body with the secret it was given, refuse stale timestamps, deduplicate on `webhook-id`.
async fn receive_webhook(
    State(site): State<DemoSite>,
    headers: HeaderMap,
    body: String,
) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    let (id, ts) = (header("webhook-id"), header("webhook-timestamp"));
    // The demo website shares the connector's process: it reads the secret the operator would
    // have saved from the create/update answer.
    let key = site
        .app
        .secrets
        .get_client_secret(&site.client, ClientSecretKind::WebhookSecret)
        .await
        .ok()
        .flatten()
        .and_then(|s| webhook_secret_key(s.expose_secret()));
    let fresh = ts
        .parse::<i64>()
        .is_ok_and(|t| (site.app.clock.now() - t).abs() <= 300);
    let verified = fresh
        && key.is_some_and(|key| {
            let expected =
                connector::work::webhooks::sign(&key, id, ts.parse().unwrap_or(0), &body);
            header("webhook-signature")
                .split(' ')
                .any(|s| constant_time_eq(s.as_bytes(), expected.as_bytes()))
        });
    let event: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let mut received = site.received.lock().unwrap_or_else(|e| e.into_inner());
    if !received.iter().any(|w| w["id"] == id) {
        received.push_front(serde_json::json!({ "id": id, "verified": verified, "event": event }));
        received.truncate(KEEP);
    }
    if verified {
        StatusCode::NO_CONTENT
    } else {
        StatusCode::UNAUTHORIZED
    }
}

async fn list_webhooks(State(site): State<DemoSite>) -> Json<Vec<serde_json::Value>> {
    let received = site.received.lock().unwrap_or_else(|e| e.into_inner());
    Json(received.iter().cloned().collect())
}

/// Equal bytes, in time that does not depend on where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
