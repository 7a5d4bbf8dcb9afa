//! `discord-connector demo` end to end: a member linked through the demo, then deauthorized in
//! the emulator (its "Authorized apps → Deauthorize"), is unlinked by the signed Webhook Event the
//! emulator sends to the connector, and loses the managed roles; an officer linked through the
//! demo claims the emulator's linked role and loses it when they leave the officers.

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

    /// Polls the site user's view until `done` holds (20 s at most).
    async fn until(
        &self,
        http: &reqwest::Client,
        user: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let (_, view) = self.user(user, http).await;
            if done(&view) {
                return view;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{view}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `GET` on the emulator (`/_emulator/…`): the status and the JSON body (`null` if none).
    async fn emulator_get(&self, http: &reqwest::Client, path: &str) -> (StatusCode, Value) {
        let resp = http
            .get(format!("{}{path}", self.emulator))
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls an emulator path until `done` holds for its answer (20 s at most).
    async fn until_emulator(
        &self,
        http: &reqwest::Client,
        path: &str,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let start = Instant::now();
        loop {
            let (_, body) = self.emulator_get(http, path).await;
            if done(&body) {
                return body;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "{path}: {body}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The Discord member `discord_id` in the demo guild, as the emulator's state shows it.
    async fn member(&self, http: &reqwest::Client, discord_id: &str) -> Option<Value> {
        let (_, state) = self.emulator_get(http, "/_emulator/state").await;
        state["guilds"][0]["members"]
            .as_array()?
            .iter()
            .find(|m| m["user_id"] == discord_id)
            .cloned()
    }

    /// Links `site_user` to `discord_id` through the demo (the browser's part by hand: cookie,
    /// consent) and waits until the writer is done with them; answers the authorize URL the
    /// member was sent to.
    async fn link(&self, http: &reqwest::Client, site_user: &str, discord_id: &str) -> String {
        let session: Value = http
            .post(format!("{}/api/v1/clients/demo/link-sessions", self.base))
            .bearer_auth(TOKEN)
            .json(&json!({"user_id": site_user, "return_to": format!("{}/demo", self.base)}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let consent = http
            .put(format!("{}/_emulator/consent", self.emulator))
            .json(&json!({"mode": "approve", "user_id": discord_id}))
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
        let authorize_url = location(&start);
        let authorize = http.get(&authorize_url).send().await.unwrap();
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
        self.until(http, site_user, |u| {
            u["linked"] == true
                && u["pending"] == false
                && !u["link"]["applied_roles"].as_array().unwrap().is_empty()
        })
        .await;
        authorize_url
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(resp: &reqwest::Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn deauthorizing_in_the_demos_emulator_unlinks_the_member() {
    let http = client();
    let demo = Demo::start(&http).await;
    let alice = Scenario::demo()
        .user_by_name("alice")
        .expect("alice in the demo")
        .id
        .clone();

    // given alice linked through the demo
    demo.link(&http, "alice", &alice).await;

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
    demo.until(&http, "alice", |u| {
        u["linked"] == false && u["pending"] == false && u["unlinking"] == json!([])
    })
    .await;
    let member = demo
        .member(&http, &alice)
        .await
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

#[tokio::test]
async fn an_officer_claims_the_demos_linked_role_and_loses_it_on_leaving_the_officers() {
    let http = client();
    let demo = Demo::start(&http).await;
    let scenario = Scenario::demo();
    let discord_id = |name: &str| scenario.user_by_name(name).expect("in the demo").id.clone();
    let (alice, bob) = (discord_id("alice"), discord_id("bob"));
    let guild = scenario.first_guild().expect("demo guild");
    let verified = guild
        .role_by_name("Verified Officer")
        .expect("the demo's linked role")
        .id
        .clone();
    let claim = |user: &str| {
        let request = http
            .post(format!(
                "{}/_emulator/guilds/{}/roles/{verified}/claim",
                demo.emulator, guild.id
            ))
            .json(&json!({"user_id": user}));
        async move { request.send().await.unwrap() }
    };
    let connection = |user: &str| format!("/_emulator/users/{user}/role-connection");

    // given bob (an officer) and alice (not one) linked through the demo, which asks for the
    // scope that lets the connector write their role connections
    let authorize_url = demo.link(&http, "bob", &bob).await;
    assert!(
        authorize_url.contains("role_connections.write"),
        "{authorize_url}"
    );
    demo.link(&http, "alice", &alice).await;
    let (_, bob_view) = demo.user("bob", &http).await;
    assert_eq!(bob_view["needs_relink"], false, "{bob_view}");

    // then their role connections reach the emulator, and bob may claim Verified Officer
    let held = demo
        .until_emulator(&http, &connection(&bob), |c| {
            c["metadata"]["officer"] == "1"
        })
        .await;
    assert_eq!(held["platform_name"], "Demo community", "{held}");
    assert_eq!(held["metadata"]["member_since"], "2019-07-01", "{held}");
    demo.until_emulator(&http, &connection(&alice), |c| {
        c["metadata"]["officer"] == "0"
    })
    .await;
    let (_, requirements) = demo
        .emulator_get(
            &http,
            &format!(
                "/_emulator/guilds/{}/roles/{verified}/linked-requirements",
                guild.id
            ),
        )
        .await;
    assert_eq!(requirements["may_claim"], json!([bob]), "{requirements}");

    // when alice and bob claim it in the emulator (server menu → Linked Roles)
    let refused = claim(&alice).await;
    let granted = claim(&bob).await;

    // then alice is refused and bob holds it
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], 50013);
    assert_eq!(granted.status(), StatusCode::OK);
    let member = demo.member(&http, &bob).await.expect("bob in the guild");
    assert!(
        member["roles"]
            .as_array()
            .unwrap()
            .contains(&json!(verified)),
        "{member}"
    );
    let alice_member = demo
        .member(&http, &alice)
        .await
        .expect("alice in the guild");
    assert!(
        !alice_member["roles"]
            .as_array()
            .unwrap()
            .contains(&json!(verified)),
        "{alice_member}"
    );

    // when bob leaves the officers on the demo website
    let saved = http
        .post(format!("{}/demo/users/bob/groups", demo.base))
        .form(&[("groups", "members")])
        .send()
        .await
        .unwrap();
    assert!(saved.status().is_redirection(), "{saved:?}");

    // then the connector pushes officer = 0 and Discord takes the linked role back, while the
    // connector's own mapping keeps him a Member
    let held = demo
        .until_emulator(&http, &connection(&bob), |c| {
            c["metadata"]["officer"] == "0"
        })
        .await;
    assert_eq!(held["metadata"]["member_since"], "2019-07-01", "{held}");
    let state = demo
        .until_emulator(&http, "/_emulator/state", |state| {
            state["guilds"][0]["members"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|m| {
                    m["user_id"] == bob.as_str()
                        && !m["roles"].as_array().unwrap().contains(&json!(verified))
                })
        })
        .await;
    demo.until(&http, "bob", |u| u["pending"] == false).await;
    let member = demo.member(&http, &bob).await.expect("bob in the guild");
    let member_role = guild.role_by_name("Member").expect("Member").id.clone();
    assert!(
        member["roles"]
            .as_array()
            .unwrap()
            .contains(&json!(member_role)),
        "{member} {state}"
    );
}
