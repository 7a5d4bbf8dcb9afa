//! Test harness: the real router on an ephemeral port, the embedded store in a temp file, and the
//! Discord emulator in-process, all talking HTTP.

pub mod browser;
pub mod chromium;
pub mod console_http;
pub mod moto;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use connector::app::AppState;
use connector::clock::{Clock, ManualClock, SystemClock};
use connector::domain::client::DiscordUrlPolicy;
use connector::secrecy::SecretString;
use connector::selfhost::{self, SelfHostConfig};
use discord_emulator::{Consent, Emulator, RateLimits, Scenario};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::task::JoinHandle;

pub use discord_emulator;

pub const CLIENT: &str = "guild";
pub const SITE: &str = "https://site.example";
pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghij";

pub struct Harness {
    pub emu: Emulator,
    pub app: AppState,
    pub base: String,
    pub http: reqwest::Client,
    pub admin_token: String,
    pub clock: ManualClock,
    pub database: PathBuf,
    pub generated_admin_token: Option<String>,
    discord_urls: DiscordUrlPolicy,
    deliver_webhooks: bool,
    dir: tempfile::TempDir,
    server: JoinHandle<()>,
}

/// How a test wants the connector started.
pub struct Options {
    pub scenario: Scenario,
    pub rate_limits: RateLimits,
    /// `None`: let the connector generate and store one, like `serve` does.
    pub admin_token: Option<String>,
    /// `AllowCustom` (the default here): clients may point at the emulator, as with
    /// `CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS=true`.
    pub discord_urls: DiscordUrlPolicy,
    /// `false`: no webhook delivery loop (a test delivers the way the AWS worker does).
    pub deliver_webhooks: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            scenario: Scenario::demo(),
            rate_limits: RateLimits::unlimited(),
            admin_token: Some(ADMIN_TOKEN.to_owned()),
            discord_urls: DiscordUrlPolicy::AllowCustom,
            deliver_webhooks: true,
        }
    }
}

impl Harness {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let emu = Emulator::start(options.scenario)
            .await
            .expect("emulator starts");
        emu.set_rate_limits(options.rate_limits);
        let dir = tempfile::tempdir().expect("temp dir");
        let database = dir.path().join("connector.db");
        let clock = ManualClock::new(SystemClock.now());
        Self::boot(
            emu,
            dir,
            database,
            clock,
            options.admin_token,
            options.discord_urls,
            options.deliver_webhooks,
        )
        .await
    }

    async fn boot(
        emu: Emulator,
        dir: tempfile::TempDir,
        database: PathBuf,
        clock: ManualClock,
        admin_token: Option<String>,
        discord_urls: DiscordUrlPolicy,
        deliver_webhooks: bool,
    ) -> Self {
        let mut hosted = selfhost::open(
            SelfHostConfig {
                database: database.clone(),
                secret_key: None,
                admin_token: admin_token.clone().map(SecretString::from),
                // The tests' clients talk to the emulator.
                discord_urls,
                retention: Default::default(),
            },
            Arc::new(clock.clone()),
        )
        .await
        .expect("self-hosted state opens");
        if deliver_webhooks {
            hosted.start_workers(4);
        } else {
            hosted.start_pool(4);
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let router = connector::http::router(hosted.state.clone());
        let server = tokio::spawn(async move {
            axum::serve(listener, router).await.expect("server runs");
        });
        let token = admin_token
            .or_else(|| hosted.generated_admin_token.clone())
            .unwrap_or_default();
        Self {
            emu,
            app: hosted.state,
            base,
            http: browser(),
            admin_token: token,
            clock,
            database,
            generated_admin_token: hosted.generated_admin_token,
            discord_urls,
            deliver_webhooks,
            dir,
            server,
        }
    }

    /// Stops the connector and starts it again on the same database (the emulator keeps running).
    /// `admin_token` as for `Options`.
    pub async fn restart(self, admin_token: Option<String>) -> Self {
        self.server.abort();
        let _ = self.server.await;
        let Harness {
            emu,
            dir,
            database,
            clock,
            app,
            discord_urls,
            deliver_webhooks,
            ..
        } = self;
        drop(app);
        Self::boot(
            emu,
            dir,
            database,
            clock,
            admin_token,
            discord_urls,
            deliver_webhooks,
        )
        .await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An admin API call; returns the status and the JSON body (Null when empty).
    pub async fn api(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self
            .http
            .request(method, self.url(&format!("/api/v1{path}")))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request sent");
        let status = resp.status();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub fn client_body(&self) -> Value {
        json!({
            "id": CLIENT,
            "name": "Test guild",
            "guild_id": self.emu.guild_id(),
            "client_id": self.emu.application_id(),
            "client_secret": self.emu.client_secret(),
            "bot_token": self.emu.bot_token(),
            "callback_url": self.url("/discord/sso/callback"),
            "return_to_origins": [SITE],
            "discord_api_base": self.emu.api_base(),
            "discord_authorize_url": self.emu.authorize_url(),
        })
    }

    /// Creates the test client (which syncs roles) and maps `Member`←members,
    /// `Officer`←officers, `Pilot`←pilots.
    pub async fn setup_client(&self) {
        let (status, body) = self
            .api(Method::POST, "/clients", Some(self.client_body()))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["roles_sync"]["status"], "synced", "{body}");
        for (role, group) in [
            ("Member", "members"),
            ("Officer", "officers"),
            ("Pilot", "pilots"),
        ] {
            self.map_role(role, &[group]).await;
        }
    }

    pub async fn map_role(&self, role_name: &str, groups: &[&str]) {
        let role = self.role(role_name);
        let (status, body) = self
            .api(
                Method::PUT,
                &format!("/clients/{CLIENT}/roles/{role}"),
                Some(json!({"groups": groups})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        self.settle().await;
    }

    pub fn role(&self, name: &str) -> String {
        self.emu
            .role_id(name)
            .unwrap_or_else(|| panic!("role {name} in scenario"))
    }

    pub fn discord_id(&self, username: &str) -> String {
        self.emu
            .user_id(username)
            .unwrap_or_else(|| panic!("user {username} in scenario"))
    }

    /// Pushes a user's groups and waits for the guild writer to finish; returns the user as
    /// stored then.
    pub async fn put_user(&self, user: &str, groups: &[&str]) -> Value {
        self.put_user_nowait(user, groups).await;
        self.settle().await;
        self.get_user(user).await
    }

    /// Pushes a user's groups; returns the API's immediate answer.
    pub async fn put_user_nowait(&self, user: &str, groups: &[&str]) -> Value {
        let (status, body) = self
            .api(
                Method::PUT,
                &format!("/clients/{CLIENT}/users/{user}"),
                Some(json!({"groups": groups})),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Waits until no work is marked: what the API accepted has reached Discord (or failed for
    /// good). Returns whether it settled.
    pub async fn settle(&self) -> bool {
        settle(&self.app).await
    }

    pub async fn get_user(&self, user: &str) -> Value {
        let (status, body) = self
            .api(
                Method::GET,
                &format!("/clients/{CLIENT}/users/{user}"),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// Polls the user (up to 10 s) until `done` holds; returns the user then.
    pub async fn wait_for_user(&self, user: &str, done: impl Fn(&Value) -> bool) -> Value {
        for _ in 0..200 {
            let u = self.get_user(user).await;
            if done(&u) {
                return u;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!(
            "user {user} did not reach the expected state: {}",
            self.get_user(user).await
        );
    }

    /// Starts a link session for `user` and returns the Discord authorize URL.
    pub async fn link_session(&self, user: &str) -> String {
        let (status, body) = self
            .api(
                Method::POST,
                &format!("/clients/{CLIENT}/link-sessions"),
                Some(json!({"user_id": user, "return_to": format!("{SITE}/profile")})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["url"].as_str().expect("url").to_owned()
    }

    /// Opens the link URL in the harness's browser (the connector binds the flow to it with a
    /// cookie and sends it on to Discord), follows the authorize URL through the emulator (with
    /// the given consent) and returns the callback URL Discord sends the member to.
    pub async fn authorize(&self, link_url: &str, consent: Consent) -> String {
        let start = self.http.get(link_url).send().await.expect("link url");
        assert_eq!(start.status(), StatusCode::FOUND, "the link url redirects");
        self.authorize_at_discord(&location(&start), consent).await
    }

    /// Discord's part of the flow only: the authorize URL → the callback URL.
    pub async fn authorize_at_discord(&self, authorize_url: &str, consent: Consent) -> String {
        self.emu.set_consent(consent);
        let resp = self
            .http
            .get(authorize_url)
            .send()
            .await
            .expect("authorize");
        assert_eq!(
            resp.status(),
            StatusCode::FOUND,
            "authorize should redirect"
        );
        location(&resp)
    }

    /// Calls our callback; returns its status and `Location` (empty when none) and body.
    pub async fn callback(&self, callback_url: &str) -> (StatusCode, String, String) {
        let resp = self.http.get(callback_url).send().await.expect("callback");
        let status = resp.status();
        let loc = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().expect("ascii").to_owned())
            .unwrap_or_default();
        (status, loc, resp.text().await.unwrap_or_default())
    }

    /// The whole link flow, approving as `discord_user`; returns where the member lands.
    pub async fn link(&self, user: &str, discord_user: &str) -> String {
        let url = self.link_session(user).await;
        let cb = self
            .authorize(
                &url,
                Consent::Approve {
                    user_id: self.discord_id(discord_user),
                },
            )
            .await;
        let (status, loc, body) = self.callback(&cb).await;
        assert_eq!(status, StatusCode::FOUND, "{body}");
        self.settle().await;
        loc
    }

    /// Role names the member carries in the emulator (None when not a member).
    pub fn roles_on_discord(&self, discord_user: &str) -> Option<BTreeSet<String>> {
        let state = self.emu.state();
        let guild = state.guilds.first()?;
        let member = self.emu.member(&guild.id, &self.discord_id(discord_user))?;
        Some(
            member
                .roles
                .iter()
                .map(|id| {
                    guild
                        .roles
                        .iter()
                        .find(|r| &r.id == id)
                        .map(|r| r.name.clone())
                        .unwrap_or_else(|| id.clone())
                })
                .collect(),
        )
    }

    pub fn nick_on_discord(&self, discord_user: &str) -> Option<String> {
        self.emu
            .member(self.emu.guild_id(), &self.discord_id(discord_user))?
            .nick
    }

    /// Runs a task now, after the guild writer finished what earlier calls queued (it would
    /// answer 409 while another run holds the guild).
    pub async fn run_task(&self, task: &str, dry_run: bool) -> Value {
        self.settle().await;
        for _ in 0..100 {
            let (status, body) = self
                .api(
                    Method::POST,
                    &format!("/clients/{CLIENT}/tasks/{task}?dry_run={dry_run}"),
                    None,
                )
                .await;
            // A writer that just cleared its work mark may still be releasing the guild.
            if status == StatusCode::CONFLICT
                && body["type"] == "urn:discord-connector:problem:busy"
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
            assert_eq!(status, StatusCode::OK, "{body}");
            return body;
        }
        panic!("{task} stayed busy");
    }

    pub fn temp_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// A browser for the link flow: keeps cookies, does not follow redirects (tests look at each).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .expect("http client")
}

/// Waits (up to 10 s) until `app`'s store has no work mark: a writer clears its mark only after
/// its writes reached Discord and were recorded. A mark that stays (a transient failure keeps
/// members pending for the next tick) ends the wait with `false`.
pub async fn settle(app: &AppState) -> bool {
    for _ in 0..200 {
        let marks = app.store.list_work(None, 1).await.expect("work index");
        if marks.items.is_empty() {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    false
}

pub fn location(resp: &reqwest::Response) -> String {
    resp.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub fn names(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}
