//! `discord-connector demo` end to end: a member linked through the demo, then deauthorized in
//! the emulator (its "Authorized apps → Deauthorize"), is unlinked by the signed Webhook Event the
//! emulator sends to the connector, and loses the managed roles.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use discord_emulator::Scenario;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const TOKEN: &str = "demo-test-admin-token-0123456789abcdef";

struct Demo {
    child: Child,
    base: String,
    emulator: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Demo {
    async fn start(http: &reqwest::Client) -> Self {
        let (port, emulator_port) = (free_port(), free_port());
        let child = Command::new(env!("CARGO_BIN_EXE_discord-connector"))
            .args([
                "demo",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--emulator-listen",
                &format!("127.0.0.1:{emulator_port}"),
            ])
            .env("CONNECTOR_ADMIN_TOKEN", TOKEN)
            .env_remove("CONNECTOR_SECRET_KEY")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("demo starts");
        let demo = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            emulator: format!("http://127.0.0.1:{emulator_port}"),
        };
        let start = Instant::now();
        // Ready once the demo client exists (it is created after the server binds).
        while demo.user("alice", http).await.0 != StatusCode::OK {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "demo never ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        demo
    }

    async fn user(&self, user: &str, http: &reqwest::Client) -> (StatusCode, Value) {
        let Ok(resp) = http
            .get(format!("{}/api/v1/clients/demo/users/{user}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
        else {
            return (StatusCode::SERVICE_UNAVAILABLE, Value::Null);
        };
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn until(&self, http: &reqwest::Client, done: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (_, user) = self.user("alice", http).await;
            if done(&user) {
                return user;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{user}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn deauthorizing_in_the_demos_emulator_unlinks_the_member() {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let demo = Demo::start(&http).await;
    let alice = Scenario::demo()
        .user_by_name("alice")
        .expect("alice in the demo")
        .id
        .clone();

    // given alice linked through the demo (the browser's part by hand: cookie, consent)
    let session: Value = http
        .post(format!("{}/api/v1/clients/demo/link-sessions", demo.base))
        .bearer_auth(TOKEN)
        .json(&json!({"user_id": "alice", "return_to": format!("{}/demo", demo.base)}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let consent = http
        .put(format!("{}/_emulator/consent", demo.emulator))
        .json(&json!({"mode": "approve", "user_id": alice}))
        .send()
        .await
        .unwrap();
    assert_eq!(consent.status(), StatusCode::NO_CONTENT);
    let start = http
        .get(session["url"].as_str().expect("url"))
        .send()
        .await
        .unwrap();
    let cookie = start.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let authorize = http.get(location(&start)).send().await.unwrap();
    let callback = http
        .get(location(&authorize))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert!(
        location(&callback).contains("discord=linked"),
        "{callback:?}"
    );
    demo.until(&http, |u| {
        u["linked"] == true
            && u["pending"] == false
            && !u["link"]["applied_roles"].as_array().unwrap().is_empty()
    })
    .await;

    // when she removes the application in the emulator
    let deauthorized = http
        .post(format!(
            "{}/_emulator/users/{alice}/deauthorize",
            demo.emulator
        ))
        .send()
        .await
        .unwrap();

    // then the signed event reached the connector, which unlinked her and took her roles
    assert_eq!(deauthorized.status(), StatusCode::OK);
    let delivery: Value = deauthorized.json().await.unwrap();
    assert_eq!(delivery["status"], 204, "{delivery}");
    assert!(delivery["url"]
        .as_str()
        .unwrap()
        .ends_with("/discord/events"));
    demo.until(&http, |u| {
        u["linked"] == false && u["pending"] == false && u["unlinking"] == json!([])
    })
    .await;
    let state: Value = http
        .get(format!("{}/_emulator/state", demo.emulator))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let member = state["guilds"][0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["user_id"] == alice.as_str())
        .cloned()
        .expect("alice stays in the guild");
    assert_eq!(member["roles"], json!([]), "{member}");
    let (status, audit) = {
        let resp = http
            .request(
                Method::GET,
                format!("{}/api/v1/clients/demo/audit", demo.base),
            )
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        (resp.status(), resp.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::OK);
    assert!(audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["action"] == "link.revoked" && e["actor"] == "discord"));
}
