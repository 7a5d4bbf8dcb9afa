//! No secret reaches the logs, even at TRACE: the whole link flow, a push, an unlink and a task
//! run with every target at TRACE (except the crates `telemetry` pins to INFO), then the captured
//! output is searched for every secret the flow handled.

use std::sync::{Arc, Mutex};

use connector::tracing_subscriber;
use connector_e2e::console_http::hidden;
use connector_e2e::discord_emulator::Consent;
use connector_e2e::*;
use reqwest::{Method, StatusCode};
use serde_json::json;

/// Collects everything the subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn query_value(url: &str, key: &str) -> String {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("{key} in {url}"))
}

#[tokio::test]
async fn the_link_flow_at_trace_logs_no_secret() {
    let captured = Captured::default();
    let writer = captured.clone();
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(move || writer.clone())
                    .with_ansi(false),
            )
            // `cookie_store` is the test's browser (reqwest's cookie jar), not the connector.
            .with(connector::telemetry::filter("trace,cookie_store=off"))
            .init();
    }

    let h = Harness::start().await;
    h.setup_client().await;
    // the website takes signed webhooks: its secret is handed out once and signs every delivery
    let receiver = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook_url = format!("http://{}/hook", receiver.local_addr().unwrap());
    tokio::spawn(async move {
        let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "ok" }));
        axum::serve(receiver, app).await.unwrap();
    });
    let (status, client) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"webhook_url": hook_url})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{client}");
    let webhook_secret = client["webhook_secret"].as_str().unwrap().to_owned();
    h.put_user("u-alice", &["members", "pilots"]).await;
    let (status, token) = h
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "site", "scope": "site", "clients": [CLIENT]})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let site_token = token["token"].as_str().unwrap().to_owned();

    // the link flow, by hand, keeping every secret it handles
    let link_url = h.link_session("u-alice").await;
    let start = query_value(&link_url, "start");
    let opened = h.http.get(&link_url).send().await.unwrap();
    let cookie = opened
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|c| c.split(';').next())
        .and_then(|c| c.split_once('='))
        .map(|(_, v)| v.to_owned())
        .expect("the binding cookie");
    let callback = h
        .authorize_at_discord(
            &location(&opened),
            Consent::Approve {
                user_id: h.discord_id("alice"),
            },
        )
        .await;
    let code = query_value(&callback, "code");
    let state = query_value(&callback, "state");
    let (status, landed, _) = h.callback(&callback).await;
    assert_eq!(status, StatusCode::FOUND);
    assert_eq!(landed, format!("{SITE}/profile?discord=linked"));
    h.settle().await;
    h.put_user("u-alice", &["members"]).await;
    h.run_task("sync-accounts", false).await;
    let (status, _) = h
        .api(
            Method::DELETE,
            &format!("/clients/{CLIENT}/users/u-alice/link"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    h.settle().await;
    // the link and unlink webhooks went out signed
    let mut delivered = false;
    for _ in 0..200 {
        let (_, d) = h
            .api(
                Method::GET,
                &format!("/clients/{CLIENT}/webhook-deliveries"),
                None,
            )
            .await;
        let items = d["items"].as_array().cloned().unwrap_or_default();
        delivered = items.len() >= 2 && items.iter().all(|i| i["status"] == "delivered");
        if delivered {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(delivered, "the webhooks were delivered");

    // and the operator console: a sign-in (the token in a form body), a page, a sign-out
    let console = connector_e2e::browser();
    let form = console.get(h.url("/admin/login")).send().await.unwrap();
    let nonce = hidden(&form.text().await.unwrap(), "csrf");
    let signed_in = console
        .post(h.url("/admin/login"))
        .form(&[("token", ADMIN_TOKEN), ("csrf", nonce.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("dc_console="))
        .and_then(|c| c.split(';').next())
        .expect("the session cookie")
        .to_owned();
    let dashboard = console.get(h.url("/admin")).send().await.unwrap();
    let csrf = hidden(&dashboard.text().await.unwrap(), "csrf");
    let signed_out = console
        .post(h.url("/admin/logout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);

    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        log.contains("TRACE") && log.contains("DEBUG") && log.len() > 2_000,
        "the capture works: {} bytes",
        log.len()
    );
    let mut secrets = vec![
        ("admin token", ADMIN_TOKEN.to_owned()),
        ("site token", site_token),
        ("bot token", h.emu.bot_token().to_owned()),
        ("client secret", h.emu.client_secret().to_owned()),
        ("start token", start),
        ("binding cookie", cookie),
        ("OAuth code", code),
        ("OAuth state", state),
        ("console login nonce", nonce),
        ("console session", session),
        ("console CSRF token", csrf),
        // its key part: the secret without the `whsec_` prefix
        (
            "webhook secret",
            webhook_secret["whsec_".len()..].to_owned(),
        ),
    ];
    let issued = h.emu.issued_tokens();
    assert!(
        issued.len() >= 2,
        "the flow got an access and a refresh token: {issued:?}"
    );
    secrets.extend(issued.into_iter().map(|t| ("OAuth token", t)));
    for (what, secret) in secrets {
        let line = log.lines().find(|l| l.contains(&secret));
        assert!(line.is_none(), "the {what} is in the log: {line:?}");
    }
}
