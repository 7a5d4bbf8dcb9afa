//! A `serve` process killed with SIGKILL in the middle of a weekly scan: no cleanup code runs,
//! its lease heartbeat dies with it. A new process on the same database must refuse the guild
//! while the dead writer's lease holds, then resume the run from its last checkpoint — not start
//! over — and finish it.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use discord_emulator::{Emulator, Scenario};
use serde_json::{json, Value};

const TOKEN: &str = "crash-test-admin-token-0123456789abcdef";
const CLIENT: &str = "crash";
const FIRST: u64 = 900_000_000_000_000_000;
const MEMBERS: u64 = 2_500;

struct Serve {
    child: Child,
    base: String,
}

impl Serve {
    fn start(database: &std::path::Path) -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(env!("CARGO_BIN_EXE_discord-connector"))
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--database",
            ])
            .arg(database)
            .env("CONNECTOR_ADMIN_TOKEN", TOKEN)
            // The client talks to the emulator.
            .env("CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS", "true")
            .env_remove("CONNECTOR_SECRET_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("serve starts");
        Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let start = Instant::now();
        while http
            .get(format!("{}/healthz", self.base))
            .send()
            .await
            .is_err()
        {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "serve never listened"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn api(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (reqwest::StatusCode, Value) {
        let mut req = http
            .request(method, format!("{}/api/v1{path}", self.base))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// SIGKILL: the process gets no chance to release anything.
    fn kill_9(mut self) {
        self.child.kill().expect("SIGKILL");
        self.child.wait().expect("reaped");
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn remote_sync_runs(serve: &Serve, http: &reqwest::Client) -> Vec<Value> {
    let (status, runs) = serve
        .api(
            http,
            reqwest::Method::GET,
            &format!("/clients/{CLIENT}/runs"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{runs}");
    runs["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["task"] == "remote-sync-groups")
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serve_process_killed_mid_scan_is_resumed_from_its_checkpoint_by_the_next_one() {
    // given a connector process and a 2,500-member guild (three member-list pages) with drift
    let emu = Emulator::start(Scenario::demo()).await.expect("emulator");
    let guild = emu.guild_id().to_owned();
    let member_role = emu.role_id("Member").expect("Member role");
    emu.add_members_bulk(&guild, FIRST, MEMBERS, std::slice::from_ref(&member_role));
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("connector.db");
    let http = reqwest::Client::new();
    let first = Serve::start(&database);
    first.wait_ready(&http).await;

    let client = json!({
        "id": CLIENT,
        "name": "Crash guild",
        "guild_id": guild,
        "client_id": emu.application_id(),
        "client_secret": emu.client_secret(),
        "bot_token": emu.bot_token(),
        "callback_url": format!("{}/discord/sso/callback", first.base),
        "discord_api_base": emu.api_base(),
        "discord_authorize_url": emu.authorize_url(),
    });
    let (status, body) = first
        .api(&http, reqwest::Method::POST, "/clients", Some(client))
        .await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = first
        .api(
            &http,
            reqwest::Method::PUT,
            &format!("/clients/{CLIENT}/roles/{member_role}"),
            Some(json!({"groups": ["members"]})),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    // the import takes at most 250 users per request
    for chunk in (0..MEMBERS).collect::<Vec<_>>().chunks(250) {
        let items: Vec<Value> = chunk
            .iter()
            .map(|i| {
                json!({"user_id": format!("u{i:05}"), "discord_user_id": (FIRST + i).to_string(),
                       "groups": ["members"]})
            })
            .collect();
        let (status, body) = first
            .api(
                &http,
                reqwest::Method::POST,
                &format!("/clients/{CLIENT}/users/import"),
                Some(Value::Array(items)),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    // drift in every page: every 100th member lost the role on Discord
    for i in (0..MEMBERS).step_by(100) {
        emu.set_member_roles(&guild, &(FIRST + i).to_string(), Vec::<String>::new());
    }
    emu.set_latency(Duration::from_millis(20));

    // when a remote sync runs and the process is killed -9 after its first checkpoint
    let base = first.base.clone();
    let runner = {
        let http = http.clone();
        tokio::spawn(async move {
            let _ = http
                .post(format!(
                    "{base}/api/v1/clients/{CLIENT}/tasks/remote-sync-groups?max_seconds=600"
                ))
                .bearer_auth(TOKEN)
                .send()
                .await;
        })
    };
    let start = Instant::now();
    let checkpoint = loop {
        let unfinished = remote_sync_runs(&first, &http)
            .await
            .into_iter()
            .find(|r| r["complete"] == false && r["cursor"].is_string());
        if let Some(run) = unfinished {
            break run["cursor"].as_str().unwrap().to_owned();
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no checkpoint was saved"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    first.kill_9();
    let _ = runner.await;
    let killed_at = Instant::now();

    // then a new process on the same database refuses the guild while the dead lease holds …
    let second = Serve::start(&database);
    second.wait_ready(&http).await;
    let path = format!("/clients/{CLIENT}/tasks/remote-sync-groups?max_seconds=600");
    let (status, problem) = second.api(&http, reqwest::Method::POST, &path, None).await;
    assert_eq!(status, 409, "{problem}");

    // … and once it has expired (15 s TTL) resumes the run at the checkpoint and finishes it
    // (run-now here, or the new process's own first tick: whichever takes the guild first)
    let note = format!("resumed an unfinished run at {checkpoint}");
    let resumed = loop {
        let done = remote_sync_runs(&second, &http)
            .await
            .into_iter()
            .find(|r| r["notes"][0] == note.as_str() && r["complete"] == true);
        if let Some(run) = done {
            break run;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(90),
            "the killed run was not resumed"
        );
        let (status, report) = second.api(&http, reqwest::Method::POST, &path, None).await;
        assert!(status == 200 || status == 409, "{status}: {report}");
        if status == 409 {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    assert!(
        resumed["counts"]["examined"].as_u64().unwrap_or(0) < MEMBERS,
        "resumed, not started over: {resumed}"
    );
    for i in (0..MEMBERS).step_by(100) {
        let roles = emu
            .member(&guild, &(FIRST + i).to_string())
            .expect("member")
            .roles;
        assert!(roles.contains(&member_role), "member {i} repaired");
    }
}

/// A website endpoint that records each delivery's `webhook-id` and holds its answer until
/// `answering` is set (then answers 200 at once).
#[derive(Clone, Default)]
struct Website {
    ids: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
    answering: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

async fn hold_or_answer(
    axum::extract::State(site): axum::extract::State<Website>,
    headers: axum::http::HeaderMap,
) -> axum::http::StatusCode {
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    site.ids.lock().unwrap().push(id);
    let start = Instant::now();
    while !site.answering.load(std::sync::atomic::Ordering::SeqCst)
        && start.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    axum::http::StatusCode::OK
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_in_flight_when_the_process_is_killed_is_sent_again_with_the_same_id() {
    // given a connector whose client's website takes webhooks but is slow to answer
    let emu = Emulator::start(Scenario::demo()).await.expect("emulator");
    let site = Website::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hook = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hold_or_answer))
        .with_state(site.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().expect("temp dir");
    let database = dir.path().join("connector.db");
    let http = reqwest::Client::new();
    let first = Serve::start(&database);
    first.wait_ready(&http).await;
    let client = json!({
        "id": CLIENT,
        "name": "Crash guild",
        "guild_id": emu.guild_id(),
        "client_id": emu.application_id(),
        "client_secret": emu.client_secret(),
        "bot_token": emu.bot_token(),
        "callback_url": format!("{}/discord/sso/callback", first.base),
        "discord_api_base": emu.api_base(),
        "discord_authorize_url": emu.authorize_url(),
        "webhook_url": hook,
    });
    let (status, body) = first
        .api(&http, reqwest::Method::POST, "/clients", Some(client))
        .await;
    assert_eq!(status, 201, "{body}");

    // when a link is made (link.created) and the process is killed -9 while the website holds
    // the delivery's answer
    let user = emu
        .scenario()
        .user_by_name("alice")
        .expect("alice")
        .id
        .clone();
    // (a member of the guild, so the writer has nothing else to report)
    let guild = emu.guild_id().to_owned();
    emu.add_member(&guild, &user, None, []);
    let (status, body) = first
        .api(
            &http,
            reqwest::Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(json!([{"user_id": "u-alice", "discord_user_id": user, "groups": []}])),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let start = Instant::now();
    while site.ids.lock().unwrap().is_empty() {
        assert!(start.elapsed() < Duration::from_secs(30), "never delivered");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.kill_9();

    // then the next process sends it again, with the same id (the website's dedup key), and
    // records it delivered once the website answers
    site.answering
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let second = Serve::start(&database);
    second.wait_ready(&http).await;
    let killed_at = Instant::now();
    let delivered = loop {
        let (status, list) = second
            .api(
                &http,
                reqwest::Method::GET,
                &format!("/clients/{CLIENT}/webhook-deliveries"),
                None,
            )
            .await;
        assert_eq!(status, 200, "{list}");
        let items = list["items"].as_array().unwrap().clone();
        if items.iter().any(|d| d["status"] == "delivered") {
            break items;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(120),
            "not sent again after the crash: {list}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(delivered.len(), 1, "one event: {delivered:?}");
    assert_eq!(delivered[0]["type"], "link.created");
    let ids = site.ids.lock().unwrap().clone();
    assert!(ids.len() >= 2, "{ids:?}");
    assert!(
        ids.iter()
            .all(|id| id == delivered[0]["id"].as_str().unwrap()),
        "every attempt carries the delivery's id: {ids:?}"
    );
}
