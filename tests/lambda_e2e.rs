//! The real Lambda binaries, end to end: `cargo lambda watch` runs admin-api, sso-callback,
//! verify-groups and worker (debug builds) against DynamoDB, Secrets Manager and SQS emulated by
//! moto and against the Discord emulator. An operator sets up a client, a member links through
//! Discord's consent screen, a group change stays pending, the scheduled verify-groups
//! dispatcher (a committed EventBridge event) enqueues the client's job on the FIFO work queue,
//! and the worker — invoked with an SQS event (shaped like fixtures/events/worker.sqs.json) made
//! of the message received from moto — applies it; a second delivery of the same event does
//! nothing, and a message that is not a job is reported failed until it lands in the
//! dead-letter queue.
//!
//! Lambda's SQS event source (polling, deleting what succeeded) is not emulated: the test
//! receives, deletes and hands over the messages itself.
//!
//! Needs Python 3 with venv/pip (cargo-lambda and moto come from PyPI into target/). The first
//! run compiles the four functions (a few minutes).

use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use connector::aws::aws_sdk_sqs::types::{Message, MessageSystemAttributeName};
use connector::aws::aws_sdk_sqs::Client as SqsClient;
use connector::store::dynamo::DynamoStore;
use connector_e2e::discord_emulator::{Consent, Emulator, Fault, Scenario};
use connector_e2e::moto::{moto, unique_name};
use connector_e2e::{location, names, SITE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const CLIENT: &str = "guild";
const PREFIX: &str = "discord-connector-e2e/";
const ADMIN_TOKEN: &str = "lambda-e2e-admin-token-0123456789";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The directory holding `cargo-lambda` (and the `zig` it needs), installed into target/ from
/// PyPI by scripts/aws_venv.py when missing.
fn cargo_lambda_bin() -> PathBuf {
    let out = Command::new("python3")
        .arg(root().join("scripts/aws_venv.py"))
        .arg("cargo-lambda")
        .current_dir(root())
        .stderr(Stdio::inherit())
        .output()
        .expect("python3 runs scripts/aws_venv.py");
    assert!(out.status.success(), "installing cargo-lambda failed");
    PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
}

fn path_with(dir: &Path) -> std::ffi::OsString {
    let mut paths = vec![dir.to_path_buf()];
    paths.extend(std::env::split_paths(
        &std::env::var_os("PATH").unwrap_or_default(),
    ));
    std::env::join_paths(paths).expect("PATH")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A shell command sending `signal` to the process group `pgid` (POSIX `kill`, as in dash).
fn kill_group(signal: &str, pgid: u32) -> String {
    format!("kill -s {signal} -- -{pgid}")
}

/// `cargo lambda watch`, in its own process group so that dropping it (also on panic) ends it
/// and every function it started. A guard process ends the group too when this test process
/// dies without unwinding (killed by a timeout): it waits for its stdin, which we hold, to close.
struct Watch {
    child: Child,
    guard: Option<(Child, ChildStdin)>,
    port: u16,
    log: PathBuf,
    bin: PathBuf,
}

impl Watch {
    fn start(bin: PathBuf, env: &[(&str, String)], log: PathBuf) -> Self {
        use std::os::unix::process::CommandExt;
        let port = free_port();
        let out = std::fs::File::create(&log).expect("watch log");
        let mut cmd = Command::new("cargo");
        cmd.args(["lambda", "watch", "--ignore-changes", "--locked"])
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(port.to_string())
            .current_dir(root())
            .env("PATH", path_with(&bin))
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .process_group(0);
        // The package variables cargo set for this test would leak into the functions' build.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_") || name.starts_with("CARGO_MANIFEST_") {
                cmd.env_remove(&*name);
            }
        }
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("cargo lambda watch starts");
        let mut guard = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "read _; {} 2>/dev/null",
                kill_group("TERM", child.id())
            ))
            .stdin(Stdio::piped())
            .spawn()
            .expect("guard starts");
        let guard_stdin = guard.stdin.take().expect("guard stdin");
        Watch {
            child,
            guard: Some((guard, guard_stdin)),
            port,
            log,
            bin,
        }
    }

    fn url(&self, function: &str, path: &str) -> String {
        format!("http://127.0.0.1:{}/lambda-url/{function}{path}", self.port)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("cargo lambda watch exited ({status}):\n{}", self.log_tail());
        }
    }

    /// `cargo lambda invoke <function> --data-file <file>`: the function's JSON answer. Runs off
    /// the async workers, which serve the in-process Discord emulator meanwhile.
    async fn invoke(&mut self, function: &str, data_file: &Path) -> Value {
        self.assert_running();
        let mut cmd = Command::new("cargo");
        cmd.args(["lambda", "invoke", function, "--data-file"])
            .arg(data_file)
            .args(["--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .current_dir(root())
            .env("PATH", path_with(&self.bin));
        let out = tokio::task::spawn_blocking(move || cmd.output())
            .await
            .expect("invoke task")
            .expect("cargo lambda invoke runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "invoke {function} failed: {stdout}\n{}\n--- watch log:\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log_tail()
        );
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("invoke {function} answered non-JSON ({e}): {stdout}"))
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let pid = self.child.id();
        let kill = |signal| {
            Command::new("sh")
                .arg("-c")
                .arg(kill_group(signal, pid))
                .status()
        };
        let _ = kill("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while !matches!(self.child.try_wait(), Ok(Some(_))) {
            if Instant::now() > deadline {
                let _ = kill("KILL");
                let _ = self.child.wait();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if let Some((mut guard, stdin)) = self.guard.take() {
            drop(stdin);
            let _ = guard.wait();
        }
    }
}

/// An admin API call through the admin-api function.
async fn api(
    http: &reqwest::Client,
    watch: &Watch,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http
        .request(method, watch.url("admin-api", &format!("/api/v1{path}")))
        .bearer_auth(ADMIN_TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.expect("admin-api answers");
    let status = resp.status();
    let text = resp.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Every message the queue holds now, received (with their system attributes) and deleted,
/// as Lambda's event source would once the worker succeeded.
async fn take_all(sqs: &SqsClient, url: &str) -> Vec<Message> {
    let mut all = Vec::new();
    loop {
        let batch = receive(sqs, url).await;
        if batch.is_empty() {
            return all;
        }
        for m in &batch {
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().expect("receipt handle"))
                .send()
                .await
                .expect("delete");
        }
        all.extend(batch);
    }
}

async fn receive(sqs: &SqsClient, url: &str) -> Vec<Message> {
    sqs.receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_system_attribute_names(MessageSystemAttributeName::All)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default()
}

/// The SQS event Lambda would send for `messages`: fixtures/events/worker.sqs.json's record,
/// with each message's id, body and attributes filled in. Written to `path`.
fn sqs_event(messages: &[Message], path: &Path) -> PathBuf {
    let fixture: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/events/worker.sqs.json"))
            .expect("worker fixture"),
    )
    .expect("fixture is JSON");
    let template = &fixture["Records"][0];
    let records: Vec<Value> = messages
        .iter()
        .map(|m| {
            let mut record = template.clone();
            record["messageId"] = json!(m.message_id().expect("message id"));
            record["receiptHandle"] = json!(m.receipt_handle().expect("receipt handle"));
            record["body"] = json!(m.body().expect("body"));
            record["md5OfBody"] = json!(m.md5_of_body().unwrap_or_default());
            let attributes = record["attributes"].as_object_mut().expect("attributes");
            for (name, value) in m.attributes().into_iter().flatten() {
                attributes.insert(name.as_str().to_owned(), json!(value));
            }
            record
        })
        .collect();
    std::fs::write(path, json!({ "Records": records }).to_string()).expect("event written");
    path.to_path_buf()
}

fn roles_on_discord(emu: &Emulator, username: &str) -> Option<std::collections::BTreeSet<String>> {
    let guild = emu.state().guilds.into_iter().next()?;
    let member = emu.member(&guild.id, &emu.user_id(username)?)?;
    Some(
        member
            .roles
            .iter()
            .filter_map(|id| guild.roles.iter().find(|r| &r.id == id))
            .map(|r| r.name.clone())
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_lambda_functions_link_a_member_and_the_schedule_applies_pending_roles() {
    let started = Instant::now();
    // given moto with the table and the two deployment secrets
    let bin = tokio::task::spawn_blocking(cargo_lambda_bin)
        .await
        .expect("cargo-lambda");
    let moto = moto().await;
    let table = unique_name("lambda-e2e");
    DynamoStore::create_table(&moto.dynamodb(), &table)
        .await
        .expect("table");
    let secrets = moto.secrets_manager();
    let secret_arn = |name: &'static str, value: &'static str| {
        let secrets = secrets.clone();
        async move {
            secrets
                .create_secret()
                .name(format!("{PREFIX}{name}"))
                .secret_string(value)
                .send()
                .await
                .expect("secret created")
                .arn
                .expect("arn")
        }
    };
    let admin_secret = secret_arn("admin-token", ADMIN_TOKEN).await;
    let key_secret = secret_arn("token-key", "lambda-e2e-user-token-key-material").await;
    // and the work queue: FIFO, redriven after 2 deliveries (1-second visibility timeout) so the
    // dead-letter path completes quickly
    let queues = moto
        .work_queues(&unique_name("lambda-e2e-work"), 2, 1)
        .await;
    let sqs = moto.sqs();

    // and the Discord emulator, and the functions under cargo lambda watch
    let emu = Emulator::start(Scenario::demo()).await.expect("emulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let mut env: Vec<(&str, String)> = moto.env().into_iter().collect();
    env.extend([
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ("CONNECTOR_TABLE", table),
        ("CONNECTOR_SECRETS_PREFIX", PREFIX.into()),
        ("CONNECTOR_ADMIN_TOKEN_SECRET", admin_secret),
        ("CONNECTOR_TOKEN_KEY_SECRET", key_secret),
        ("CONNECTOR_QUEUE_URL", queues.url.clone()),
        // The clients of this test talk to the emulator.
        ("CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS", "true".into()),
        ("RUST_LOG", "info".into()),
    ]);
    let mut watch = Watch::start(bin, &env, dir.path().join("watch.log"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        // The member's browser in the link flow: the link is bound to it by a cookie.
        .cookie_store(true)
        // The first request to a function waits for its debug build.
        .timeout(Duration::from_secs(20 * 60))
        .build()
        .expect("http client");
    let healthz = watch.url("admin-api", "/healthz");
    let booted = Instant::now();
    loop {
        watch.assert_running();
        match http.get(&healthz).send().await {
            Ok(r) if r.status() == StatusCode::OK => break,
            Ok(r) => panic!("healthz: {}\n{}", r.status(), watch.log_tail()),
            Err(e) if e.is_connect() && booted.elapsed() < Duration::from_secs(120) => {
                tokio::time::sleep(Duration::from_millis(250)).await
            }
            Err(e) => panic!("healthz: {e}\n{}", watch.log_tail()),
        }
    }
    eprintln!("admin-api served after {:?}", booted.elapsed());

    // when an operator creates the client through the admin-api function
    let callback_url = watch.url("sso-callback", "/discord/sso/callback");
    let (status, body) = api(
        &http,
        &watch,
        Method::POST,
        "/clients",
        Some(json!({
            "id": CLIENT,
            "name": "Lambda guild",
            "guild_id": emu.guild_id(),
            "client_id": emu.application_id(),
            "client_secret": emu.client_secret(),
            "bot_token": emu.bot_token(),
            "callback_url": callback_url,
            "return_to_origins": [SITE],
            "discord_api_base": emu.api_base(),
            "discord_authorize_url": emu.authorize_url(),
        })),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["roles_sync"]["status"], "synced", "{body}");

    // and the operator console, served by the same function, signs in with a session stored in
    // DynamoDB and shows the client
    let console = connector_e2e::browser();
    let form = console
        .get(watch.url("admin-api", "/admin/login"))
        .send()
        .await
        .expect("console sign-in form");
    assert_eq!(form.status(), StatusCode::OK);
    let nonce = connector_e2e::console_http::hidden(&form.text().await.expect("body"), "csrf");
    let signed_in = console
        .post(watch.url("admin-api", "/admin/login"))
        .form(&[("token", ADMIN_TOKEN), ("csrf", nonce.as_str())])
        .send()
        .await
        .expect("console sign-in");
    assert_eq!(
        signed_in.status(),
        StatusCode::SEE_OTHER,
        "{}",
        watch.log_tail()
    );
    let dashboard = console
        .get(watch.url("admin-api", "/admin"))
        .send()
        .await
        .expect("dashboard");
    assert_eq!(dashboard.status(), StatusCode::OK);
    assert!(dashboard
        .text()
        .await
        .expect("body")
        .contains("Lambda guild"));

    for (role, group) in [("Member", "members"), ("Pilot", "pilots")] {
        let role_id = emu.role_id(role).expect("role in scenario");
        let (status, body) = api(
            &http,
            &watch,
            Method::PUT,
            &format!("/clients/{CLIENT}/roles/{role_id}"),
            Some(json!({"groups": [group]})),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (status, body) = api(
        &http,
        &watch,
        Method::PUT,
        &format!("/clients/{CLIENT}/users/u-alice"),
        Some(json!({"groups": ["members"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // and alice links through Discord's consent screen and the sso-callback function
    let (status, session) = api(
        &http,
        &watch,
        Method::POST,
        &format!("/clients/{CLIENT}/link-sessions"),
        Some(json!({"user_id": "u-alice", "return_to": format!("{SITE}/profile")})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    emu.set_consent(Consent::Approve {
        user_id: emu.user_id("alice").expect("alice"),
    });
    let link_url = session["url"].as_str().expect("link url");
    assert!(link_url.starts_with(&callback_url), "{link_url}");
    let opened = http
        .get(link_url)
        .send()
        .await
        .expect("sso-callback opens the link");
    assert_eq!(opened.status(), StatusCode::FOUND, "{}", watch.log_tail());
    let consent = http.get(location(&opened)).send().await.expect("authorize");
    assert_eq!(consent.status(), StatusCode::FOUND);
    let back = location(&consent);
    assert!(back.starts_with(&callback_url), "{back}");
    let landed = http.get(&back).send().await.expect("sso-callback answers");
    let landed_at = location(&landed);
    assert_eq!(
        landed.status(),
        StatusCode::FOUND,
        "{}\n{}",
        landed.text().await.unwrap_or_default(),
        watch.log_tail()
    );
    assert!(
        landed_at.starts_with(&format!("{SITE}/profile")),
        "{landed_at}"
    );
    assert!(landed_at.contains("discord=linked"), "{landed_at}");
    assert_eq!(roles_on_discord(&emu, "alice"), Some(names(&["Member"])));

    // and a group change stays pending (the API only records it and wakes the writer; a
    // Discord failure, were it applied at once, would keep it pending too)
    emu.inject_fault(Fault::new("/roles/", 500, 1000).with_method("PUT"));
    let (status, user) = api(
        &http,
        &watch,
        Method::PUT,
        &format!("/clients/{CLIENT}/users/u-alice"),
        Some(json!({"groups": ["members", "pilots"]})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{user}");
    assert_eq!(user["pending"], true, "{user}");
    emu.clear_faults();
    assert_eq!(roles_on_discord(&emu, "alice"), Some(names(&["Member"])));
    // The wake-ups the API and the callback enqueued are not this test's subject.
    take_all(&sqs, &queues.url).await;

    // when the scheduled verify-groups dispatcher fires
    let event = root().join("fixtures/events/verify-groups.eventbridge-rule.json");
    let event_id = "53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa";
    let summary = watch.invoke("verify-groups", &event).await;
    assert_eq!(summary["duplicate"], false, "{summary}");
    assert_eq!(summary["dispatch"]["jobs"], 1, "{summary}");
    assert_eq!(
        roles_on_discord(&emu, "alice"),
        Some(names(&["Member"])),
        "the dispatcher only enqueues"
    );

    // then the client's job is on the work queue, in the client's message group
    let messages = take_all(&sqs, &queues.url).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    let job: Value = serde_json::from_str(messages[0].body().expect("body")).expect("a job");
    assert_eq!(
        job,
        json!({"client": CLIENT, "task": "verify-groups", "trigger": "schedule", "dedupe": event_id})
    );
    let group = messages[0]
        .attributes()
        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId));
    assert_eq!(group.map(String::as_str), Some(CLIENT));

    // and the worker, handed that message as Lambda's SQS event, applies the pending change
    let batch = sqs_event(&messages, &dir.path().join("worker-event.json"));
    let response = watch.invoke("worker", &batch).await;
    assert_eq!(response, json!({"batchItemFailures": []}), "{response}");
    assert_eq!(
        roles_on_discord(&emu, "alice"),
        Some(names(&["Member", "Pilot"]))
    );
    let (_, user) = api(
        &http,
        &watch,
        Method::GET,
        &format!("/clients/{CLIENT}/users/u-alice"),
        None,
    )
    .await;
    assert_eq!(user["pending"], false, "{user}");
    let (_, runs) = api(
        &http,
        &watch,
        Method::GET,
        &format!("/clients/{CLIENT}/runs"),
        None,
    )
    .await;
    assert_eq!(runs["items"][0]["trigger"], "schedule", "{runs}");
    assert_eq!(runs["items"][0]["counts"]["changed"], 1, "{runs}");

    // and a second delivery of the same event does nothing
    emu.clear_requests();
    let again = watch.invoke("verify-groups", &event).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert!(emu.requests().is_empty(), "{:?}", emu.requests());
    assert!(
        take_all(&sqs, &queues.url).await.is_empty(),
        "nothing enqueued"
    );

    // and a message that is not a job is reported failed at each delivery, then dead-lettered
    sqs.send_message()
        .queue_url(&queues.url)
        .message_body("{\"not\": \"a job\"}")
        .message_group_id("poison")
        .message_deduplication_id("poison-1")
        .send()
        .await
        .expect("sent");
    for delivery in 1..=2 {
        let got = receive(&sqs, &queues.url).await;
        assert_eq!(got.len(), 1, "delivery {delivery}");
        let id = got[0].message_id().expect("message id").to_owned();
        let batch = sqs_event(&got, &dir.path().join(format!("poison-{delivery}.json")));
        let response = watch.invoke("worker", &batch).await;
        assert_eq!(
            response,
            json!({"batchItemFailures": [{"itemIdentifier": id}]}),
            "delivery {delivery}"
        );
        // Lambda leaves a failed message in the queue: it returns after the visibility timeout.
        tokio::time::sleep(Duration::from_millis(1_300)).await;
    }
    assert!(receive(&sqs, &queues.url).await.is_empty(), "moved out");
    let dead = take_all(&sqs, &queues.dlq_url).await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].body(), Some("{\"not\": \"a job\"}"));

    drop(watch);
    eprintln!("lambda e2e took {:?}", started.elapsed());
}
