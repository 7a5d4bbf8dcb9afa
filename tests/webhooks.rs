//! Website webhooks end to end: the connector signs and delivers link and member events to a
//! receiver run here, which checks every signature with its own HMAC-SHA256.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use axum::routing::post;
use base64::Engine;
use connector_e2e::{Harness, CLIENT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// One request the receiver got, with whether its signature checked out.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: i64,
    valid: bool,
    body: Value,
}

#[derive(Clone)]
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    /// The status it answers with (200 unless a test breaks it).
    answer: Arc<AtomicU16>,
    /// Filled in once the connector handed out the secret.
    secret: Arc<Mutex<Option<String>>>,
}

impl Receiver {
    async fn start() -> Self {
        let r = Receiver {
            url: String::new(),
            got: Arc::default(),
            answer: Arc::new(AtomicU16::new(200)),
            secret: Arc::default(),
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .route("/hook", post(receive))
            .with_state(r.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Receiver { url, ..r }
    }

    fn events(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    fn types(&self) -> Vec<String> {
        self.events()
            .iter()
            .map(|r| r.body["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits (up to 10 s) until `n` requests arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..200 {
            if self.events().len() >= n {
                return self.events();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("expected {n} webhooks, got {:?}", self.events());
    }
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> AxumStatus {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (id, timestamp) = (header("webhook-id"), header("webhook-timestamp"));
    let secret = r.secret.lock().unwrap().clone().unwrap_or_default();
    let valid = verify(
        &secret,
        &id,
        &timestamp,
        &body,
        &header("webhook-signature"),
    );
    r.got.lock().unwrap().push(Received {
        id,
        timestamp: timestamp.parse().unwrap_or_default(),
        valid,
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    });
    AxumStatus::from_u16(r.answer.load(Ordering::SeqCst)).unwrap()
}

/// Standard Webhooks verification, written from the spec: HMAC-SHA256 (RFC 2104 over sha2) of
/// `{id}.{timestamp}.{body}` keyed with the base64 after `whsec_`; any `v1,` entry may match.
fn verify(secret: &str, id: &str, timestamp: &str, body: &str, signatures: &str) -> bool {
    let b64 = base64::engine::general_purpose::STANDARD;
    let Some(key) = secret
        .strip_prefix("whsec_")
        .and_then(|k| b64.decode(k).ok())
    else {
        return false;
    };
    let mut block = [0u8; 64];
    block[..key.len()].copy_from_slice(&key);
    let pad = |byte: u8| block.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(format!("{id}.{timestamp}.{body}"))
        .finalize();
    let mac = Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize();
    let expected = format!("v1,{}", b64.encode(mac));
    signatures.split(' ').any(|s| s == expected)
}

/// Points the test client's webhooks at `r`; returns the answer (which carries the secret).
async fn configure(h: &Harness, client: &str, r: &Receiver) -> Value {
    let (status, body) = h
        .api(
            Method::PATCH,
            &format!("/clients/{client}"),
            Some(json!({"webhook_url": r.url})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let secret = body["webhook_secret"].as_str().expect("secret shown once");
    *r.secret.lock().unwrap() = Some(secret.to_owned());
    body
}

async fn setup() -> (Harness, Receiver) {
    let h = Harness::start().await;
    h.setup_client().await;
    let r = Receiver::start().await;
    configure(&h, CLIENT, &r).await;
    (h, r)
}

async fn deliveries(h: &Harness, client: &str) -> Vec<Value> {
    let (status, body) = h
        .api(
            Method::GET,
            &format!("/clients/{client}/webhook-deliveries"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["items"].as_array().unwrap().clone()
}

/// Polls the deliveries (up to 10 s) until `done` holds for them.
async fn wait_deliveries(h: &Harness, client: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    for _ in 0..200 {
        let d = deliveries(h, client).await;
        if done(&d) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "deliveries never got there: {:?}",
        deliveries(h, client).await
    );
}

#[tokio::test]
async fn a_link_is_delivered_signed_and_the_secret_is_shown_only_once() {
    // given a client whose website takes webhooks
    let h = Harness::start().await;
    h.setup_client().await;
    let r = Receiver::start().await;
    let answer = configure(&h, CLIENT, &r).await;
    assert!(answer["webhook_secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    assert_eq!(answer["has_webhook_secret"], true);
    let secret = answer["webhook_secret"].as_str().unwrap().to_owned();

    // when a member links
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;

    // then the site gets link.created, validly signed, with the delivery's id
    let got = r.wait_for(1).await;
    let event = &got[0];
    assert!(event.valid, "signature did not verify: {event:?}");
    assert_eq!(event.body["type"], "link.created");
    assert_eq!(event.body["data"]["client"], CLIENT);
    assert_eq!(event.body["data"]["user_id"], "u-bob");
    assert_eq!(event.body["data"]["discord_user_id"], h.discord_id("bob"));
    assert!(event.id.starts_with("msg_"), "{event:?}");
    assert!((event.timestamp - h.app.clock.now()).abs() <= 5);
    let listed = wait_deliveries(&h, CLIENT, |d| d[0]["status"] == "delivered").await;
    assert_eq!(listed[0]["id"], event.id.as_str());
    assert_eq!(listed[0]["attempts"], 1);
    assert_eq!(listed[0]["last_status_code"], 200);

    // and the secret is never shown again
    let (_, client) = h
        .api(Method::GET, &format!("/clients/{CLIENT}"), None)
        .await;
    assert_eq!(client["has_webhook_secret"], true);
    assert_eq!(client["webhook_url"], r.url.as_str());
    assert!(client.get("webhook_secret").is_none(), "{client}");
    let (_, all) = h.api(Method::GET, "/clients", None).await;
    assert!(!all.to_string().contains(&secret));
    let (_, again) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"name": "Renamed"})),
        )
        .await;
    assert!(again.get("webhook_secret").is_none(), "{again}");
}

#[tokio::test]
async fn unlink_and_relink_tell_the_site_in_order() {
    let (h, r) = setup().await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    r.wait_for(1).await;

    // when the member links another account, then is unlinked
    h.link("u-bob", "alice").await;
    let (status, body) = h
        .api(
            Method::DELETE,
            &format!("/clients/{CLIENT}/users/u-bob/link"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // then the site hears of each, in order, with why the old account went
    let got = r.wait_for(4).await;
    assert!(got.iter().all(|e| e.valid), "{got:?}");
    let seen: Vec<(String, Value, Value)> = got
        .iter()
        .map(|e| {
            (
                e.body["type"].as_str().unwrap().to_owned(),
                e.body["data"]["discord_user_id"].clone(),
                e.body["data"]["reason"].clone(),
            )
        })
        .collect();
    let (bob, alice) = (json!(h.discord_id("bob")), json!(h.discord_id("alice")));
    assert_eq!(
        seen,
        vec![
            ("link.created".into(), bob.clone(), Value::Null),
            ("link.removed".into(), bob, json!("relinked")),
            ("link.created".into(), alice.clone(), Value::Null),
            ("link.removed".into(), alice, json!("unlinked")),
        ]
    );
}

#[tokio::test]
async fn a_member_who_leaves_and_returns_is_reported_both_times() {
    let (h, r) = setup().await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    r.wait_for(1).await;

    h.emu.remove_member(h.emu.guild_id(), &h.discord_id("bob"));
    h.run_task("remote-sync-groups", false).await;
    h.emu.add_member(
        h.emu.guild_id(),
        &h.discord_id("bob"),
        None,
        Vec::<String>::new(),
    );
    h.run_task("remote-sync-groups", false).await;

    r.wait_for(3).await;
    assert_eq!(
        r.types(),
        vec!["link.created", "member.left", "member.returned"]
    );
}

#[tokio::test]
async fn a_change_discord_refuses_is_reported_once_with_its_codes() {
    let (h, r) = setup().await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    r.wait_for(1).await;
    // the Pilot role sits above the bot now, unknown to us
    let guild = h.emu.guild_id().to_owned();
    assert!(h.emu.set_role_position(&guild, &h.role("Pilot"), 1000));

    let user = h.put_user("u-bob", &["members", "pilots"]).await;
    assert_eq!(user["last_error"]["discord_code"], 50013, "{user}");
    h.put_user("u-bob", &["members", "pilots"]).await;

    let got = r.wait_for(2).await;
    assert_eq!(got[1].body["type"], "member.sync_failed");
    assert_eq!(got[1].body["data"]["discord_code"], 50013);
    assert!(got[1].body["data"]["code"].is_string(), "{:?}", got[1]);
    // the same refusal met again is not a new event
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(r.events().len(), 2, "{:?}", r.types());
}

#[tokio::test]
async fn an_endpoint_that_fails_gets_the_event_later_and_a_users_events_stay_in_order() {
    // given a site that answers 500
    let (h, r) = setup().await;
    r.answer.store(500, Ordering::SeqCst);
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    h.api(
        Method::DELETE,
        &format!("/clients/{CLIENT}/users/u-bob/link"),
        None,
    )
    .await;

    // then the first attempt fails and is retried after its backoff (5 s, on the app clock)
    let pending = wait_deliveries(&h, CLIENT, |d| d.len() == 2 && d[1]["attempts"] == 1).await;
    // newest first: [removed, created]
    assert_eq!(pending[1]["type"], "link.created");
    assert_eq!(pending[1]["status"], "pending");
    assert_eq!(pending[1]["last_status_code"], 500);
    assert!(pending[1]["next_attempt_at"].as_i64().unwrap() >= h.app.clock.now() + 4);
    // and the later event of the same user waits behind it: never sent before it
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(r.types(), vec!["link.created"], "only the first, once");
    assert_eq!(deliveries(&h, CLIENT).await[0]["attempts"], 0);

    // when the site is back and the backoff has passed
    r.answer.store(200, Ordering::SeqCst);
    h.clock.advance(6);
    let done = wait_deliveries(&h, CLIENT, |d| d.iter().all(|x| x["status"] == "delivered")).await;

    // then both arrive, in order, the first on its second attempt with the same id
    assert_eq!(
        r.types(),
        vec!["link.created", "link.created", "link.removed"]
    );
    let got = r.events();
    assert_eq!(got[0].id, got[1].id, "the id is stable across retries");
    assert!(got.iter().all(|e| e.valid));
    assert_eq!(done[1]["attempts"], 2);
    assert_eq!(done[0]["attempts"], 1);
}

#[tokio::test]
async fn a_dead_endpoint_of_one_client_does_not_hold_up_another() {
    // given a second client whose site refuses connections
    let (h, r) = setup().await;
    let mut other = h.client_body();
    other["id"] = json!("other");
    other["name"] = json!("Other");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    other["webhook_url"] = json!(format!("http://{closed}/hook"));
    let (status, body) = h.api(Method::POST, "/clients", Some(other)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert!(body["webhook_secret"].is_string(), "{body}");
    // with a member linking there
    h.api(
        Method::PUT,
        "/clients/other/users/u-o",
        Some(json!({"groups": []})),
    )
    .await;
    let (status, _) = h
        .api(
            Method::POST,
            "/clients/other/users/import",
            Some(
                json!([{"user_id": "u-o", "discord_user_id": h.discord_id("alice"), "groups": []}]),
            ),
        )
        .await;
    assert!(status.is_success());

    // when our client's member links
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;

    // then ours is delivered while the other keeps failing
    r.wait_for(1).await;
    let theirs = wait_deliveries(&h, "other", |d| {
        !d.is_empty() && d[0]["attempts"].as_u64() >= Some(1)
    })
    .await;
    assert_eq!(theirs[0]["status"], "pending");
    assert_eq!(theirs[0]["last_error"], "could not connect");
    assert!(theirs[0]["last_status_code"].is_null());
}

#[tokio::test]
async fn operators_list_and_retry_deliveries_and_a_site_token_may_not() {
    let (h, r) = setup().await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    r.wait_for(1).await;
    let listed = wait_deliveries(&h, CLIENT, |d| d[0]["status"] == "delivered").await;
    let id = listed[0]["id"].as_str().unwrap().to_owned();

    // a retry sends a delivered event again, at once, under the same id
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/webhook-deliveries/{id}/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending");
    let got = r.wait_for(2).await;
    assert_eq!(got[1].id, id);
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/webhook-deliveries/msg_nope/retry"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");

    // a site token gets neither
    let (_, token) = h
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": "site", "scope": "site", "clients": [CLIENT]})),
        )
        .await;
    let token = token["token"].as_str().unwrap();
    for (method, path) in [
        (Method::GET, format!("/clients/{CLIENT}/webhook-deliveries")),
        (
            Method::POST,
            format!("/clients/{CLIENT}/webhook-deliveries/{id}/retry"),
        ),
    ] {
        let resp = h
            .http
            .request(method, h.url(&format!("/api/v1{path}")))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{path}");
    }
}

#[tokio::test]
async fn a_bad_webhook_url_or_secret_is_refused_naming_the_field() {
    let h = Harness::start().await;
    h.setup_client().await;
    for (body, field) in [
        (
            json!({"webhook_url": "http://example.org/hook"}),
            "webhook_url",
        ),
        (
            json!({"webhook_url": "ftp://localhost/hook"}),
            "webhook_url",
        ),
        (
            json!({"webhook_url": "https://user:pw@example.org/hook"}),
            "webhook_url",
        ),
        (
            json!({"webhook_secret": "whsec_c2hvcnQ="}),
            "webhook_secret",
        ),
        (json!({"webhook_secret": "plain"}), "webhook_secret"),
    ] {
        let (status, problem) = h
            .api(Method::PATCH, &format!("/clients/{CLIENT}"), Some(body))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{problem}");
        assert_eq!(problem["field"], field, "{problem}");
    }
    // an https URL with a secret of our own is taken, and no secret is generated
    let own = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode([7u8; 32])
    );
    let (status, body) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"webhook_url": "https://site.example/hooks", "webhook_secret": own})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("webhook_secret").is_none(), "{body}");
    assert_eq!(body["has_webhook_secret"], true);
    // and without a webhook_url nothing is kept for the site
    let (_, body) = h
        .api(
            Method::PATCH,
            &format!("/clients/{CLIENT}"),
            Some(json!({"webhook_url": null})),
        )
        .await;
    assert!(body["webhook_url"].is_null(), "{body}");
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    assert!(deliveries(&h, CLIENT).await.is_empty());
}

#[tokio::test]
async fn the_console_sets_the_webhook_shows_a_new_secret_once_and_retries_a_delivery() {
    use connector_e2e::console_http::{hidden, page, signed_in};
    use connector_e2e::ADMIN_TOKEN;
    // given an operator in the console and a receiver
    let h = Harness::start().await;
    h.setup_client().await;
    let r = Receiver::start().await;
    let b = signed_in(&h, ADMIN_TOKEN).await;
    let path = format!("/admin/clients/{CLIENT}/webhooks");
    let (status, _, html) = page(&h, &b, &path).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = hidden(&html, "csrf");
    let (_, _, overview) = page(&h, &b, &format!("/admin/clients/{CLIENT}")).await;
    assert!(overview.contains("Website webhooks"), "{overview}");

    // a URL the API refuses is refused here, naming it
    let resp = b
        .post(h.url(&path))
        .form(&[
            ("csrf", csrf.as_str()),
            ("webhook_url", "http://example.org/x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(resp.text().await.unwrap().contains("https"));

    // when it sets the receiver's URL
    let resp = b
        .post(h.url(&path))
        .form(&[("csrf", csrf.as_str()), ("webhook_url", r.url.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    // then the generated secret is on that page, once
    let start = html.find("whsec_").expect("secret shown");
    let secret: String = html[start..]
        .chars()
        .take_while(|c| !matches!(c, '<' | '"'))
        .collect();
    *r.secret.lock().unwrap() = Some(secret.clone());
    let (_, _, again) = page(&h, &b, &path).await;
    assert!(!again.contains(&secret), "never shown again");
    assert!(again.contains("set"));

    // and a link is delivered with it, listed, and sent again from the console
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    let got = r.wait_for(1).await;
    assert!(got[0].valid);
    let listed = wait_deliveries(&h, CLIENT, |d| d[0]["status"] == "delivered").await;
    let id = listed[0]["id"].as_str().unwrap();
    let (_, _, html) = page(&h, &b, &path).await;
    assert!(
        html.contains("link.created") && html.contains("delivered"),
        "{html}"
    );
    let resp = b
        .post(h.url(&format!("{path}/{id}/retry")))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let got = r.wait_for(2).await;
    assert_eq!(got[1].id, id);
}

#[tokio::test]
async fn the_aws_worker_delivers_a_clients_webhooks_after_its_job_and_keeps_it_marked_while_one_waits(
) {
    use connector::aws::worker::{handle, SqsEvent};
    use connector::aws::Invocation;
    use connector::domain::TaskName;
    use connector_e2e::Options;
    // given a connector without the self-hosted delivery loop (like the Lambda functions) and a
    // site that answers 500
    let h = Harness::start_with(Options {
        deliver_webhooks: false,
        ..Options::default()
    })
    .await;
    h.setup_client().await;
    let r = Receiver::start().await;
    configure(&h, CLIENT, &r).await;
    r.answer.store(500, Ordering::SeqCst);
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        r.events().is_empty(),
        "nothing delivers without a loop or a job"
    );

    // when the worker runs a job of the client (an SQS message, as Lambda hands it over)
    let job = |dedupe: &str| {
        let body = json!({"client": CLIENT, "task": "verify-groups", "trigger": "schedule", "dedupe": dedupe});
        serde_json::from_value::<SqsEvent>(json!({"Records": [
            {"messageId": dedupe, "body": body.to_string(), "attributes": {}}
        ]}))
        .unwrap()
    };
    let deadline_ms = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis()
        + 60_000) as u64;
    let invocation = Invocation::from_lambda("req-1", deadline_ms);
    let answer = handle(&h.app, job("t1"), &invocation).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");

    // then it tried the webhook after the job, and the client stays in the work index for the
    // retry (the 5-minute tick brings it back)
    assert_eq!(r.wait_for(1).await.len(), 1);
    let mark = h
        .app
        .store
        .get_work(CLIENT, TaskName::VerifyGroups)
        .await
        .unwrap();
    assert!(mark.is_some(), "a pending delivery keeps the client marked");

    // and once the site is back and the backoff passed, the next job delivers it
    r.answer.store(200, Ordering::SeqCst);
    h.clock.advance(6);
    let answer = handle(&h.app, job("t2"), &invocation).await;
    assert!(answer.batch_item_failures.is_empty(), "{answer:?}");
    let got = r.wait_for(2).await;
    assert!(got[1].valid);
    let listed = deliveries(&h, CLIENT).await;
    assert_eq!(listed[0]["status"], "delivered");
    assert_eq!(listed[0]["attempts"], 2);
}

#[tokio::test]
async fn a_member_who_withdraws_our_authorization_is_reported_revoked() {
    // given a linked member who then removed the app from their Discord account
    let (h, r) = setup().await;
    h.put_user("u-alice", &["members"]).await;
    h.link("u-alice", "alice").await;
    r.wait_for(1).await;
    h.emu.revoke_user_grants(&h.discord_id("alice"));

    // when sync-accounts meets `invalid_grant`
    let report = h.run_task("sync-accounts", false).await;
    assert_eq!(report["counts"]["revoked"], 1, "{report}");

    // then the site is told, signed
    let got = r.wait_for(2).await;
    assert_eq!(r.types(), vec!["link.created", "link.revoked"]);
    assert!(got[1].valid);
    assert_eq!(got[1].body["data"]["user_id"], "u-alice");
    assert_eq!(
        got[1].body["data"]["discord_user_id"],
        h.discord_id("alice")
    );
}

#[tokio::test]
async fn a_member_who_must_link_again_for_linked_roles_is_reported_once() {
    // given bob linked while the client's Linked Roles were off
    let (h, r) = setup().await;
    h.put_user("u-bob", &["members"]).await;
    h.link("u-bob", "bob").await;
    r.wait_for(1).await;

    // when the operator turns Linked Roles on
    let (status, body) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/linked-roles"),
            Some(json!({
                "enabled": true,
                "platform_name": "Example Site",
                "metadata": [{"key": "officer", "name": "Officer",
                              "description": "Is an officer on the site",
                              "type": "boolean", "source": {"group": "officers"}}],
            })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(h.settle().await);

    // then the site is told he must link again, signed, naming the scope his link lacks
    let got = r.wait_for(2).await;
    let told = &got[1];
    assert!(told.valid, "{told:?}");
    assert_eq!(told.body["type"], "link.needs_relink");
    assert_eq!(told.body["data"]["user_id"], "u-bob");
    assert_eq!(told.body["data"]["discord_user_id"], h.discord_id("bob"));
    assert_eq!(told.body["data"]["missing_scope"], "role_connections.write");
    let (_, audit) = h
        .api(Method::GET, &format!("/clients/{CLIENT}/audit"), None)
        .await;
    assert!(
        audit.to_string().contains("link.relink_requested"),
        "{audit}"
    );
    let b = connector_e2e::console_http::signed_in(&h, connector_e2e::ADMIN_TOKEN).await;
    let (_, _, member) = connector_e2e::console_http::page(
        &h,
        &b,
        &format!("/admin/clients/{CLIENT}/members/u-bob"),
    )
    .await;
    assert!(member.contains("The website was told"), "{member}");

    // and his later changes, or a re-check of everyone, do not tell it again
    h.put_user("u-bob", &["members", "officers"]).await;
    let (status, _) = h
        .api(Method::POST, &format!("/clients/{CLIENT}/roles/sync"), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(h.settle().await);
    let listed =
        wait_deliveries(&h, CLIENT, |d| d.iter().all(|e| e["status"] == "delivered")).await;
    assert_eq!(listed.len(), 2, "{listed:?}");

    // and once he links again (granting the scope) he no longer needs to
    h.link("u-bob", "bob").await;
    assert_eq!(h.get_user("u-bob").await["needs_relink"], false);
    assert_eq!(r.types(), ["link.created", "link.needs_relink"]);
}
