//! Shared set-up: the demo scenario without rate limits, a bot-authenticated client and a
//! one-call "user authorizes the app" helper.

#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use discord_emulator::{Consent, Emulator, RateLimits, Scenario};
use reqwest::{Client, Method, RequestBuilder, Response};
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

pub const REDIRECT_URI: &str = "http://localhost:9999/callback";
pub const VERIFIER: &str = "a-verifier-that-is-long-enough-for-pkce-0123456789";

pub struct Harness {
    pub emu: Emulator,
    pub http: Client,
}

pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Demo scenario, unlimited rate limits (tests about limits set their own).
pub async fn start() -> Harness {
    let emu = Emulator::start(Scenario::demo())
        .await
        .expect("emulator starts");
    emu.set_rate_limits(RateLimits::unlimited());
    let http = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    Harness { emu, http }
}

impl Harness {
    pub fn guild(&self) -> String {
        self.emu.guild_id().to_owned()
    }

    pub fn user(&self, name: &str) -> String {
        self.emu.user_id(name).expect("user in the demo")
    }

    pub fn role(&self, name: &str) -> String {
        self.emu.role_id(name).expect("role in the demo")
    }

    /// A request to `{api}{path}` as the bot.
    pub fn bot(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.emu.api_base()))
            .header("Authorization", format!("Bot {}", self.emu.bot_token()))
            .header("User-Agent", "DiscordBot (https://example.test, 0.1)")
    }

    /// The browser leg: authorize as `user` (consent pre-approved) and return the code.
    pub async fn authorize_code(&self, user: &str, scope: &str, verifier: &str) -> String {
        self.emu.set_consent(Consent::Approve {
            user_id: user.to_owned(),
        });
        let response = self
            .http
            .get(self.emu.authorize_url())
            .query(&[
                ("response_type", "code"),
                ("client_id", self.emu.application_id()),
                ("scope", scope),
                ("state", "xyz"),
                ("redirect_uri", REDIRECT_URI),
                ("prompt", "consent"),
                ("code_challenge", &challenge(verifier)),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), 302);
        let location = location(&response);
        query_value(&location, "code").expect("code in redirect")
    }

    pub async fn exchange(&self, code: &str, verifier: &str) -> Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
        ])
        .await
    }

    /// POST to the token endpoint with form client credentials.
    pub async fn token(&self, fields: &[(&str, &str)]) -> Response {
        let mut form: Vec<(&str, &str)> = vec![
            ("client_id", self.emu.application_id()),
            ("client_secret", self.emu.client_secret()),
        ];
        form.extend_from_slice(fields);
        self.http
            .post(format!("{}/oauth2/token", self.emu.api_base()))
            .form(&form)
            .send()
            .await
            .expect("token request")
    }

    /// Full flow for `username` with scopes identify + guilds.join; returns the token body.
    pub async fn link(&self, username: &str) -> Value {
        let user = self.user(username);
        let code = self
            .authorize_code(&user, "identify email guilds.join", VERIFIER)
            .await;
        let response = self.exchange(&code, VERIFIER).await;
        assert_eq!(response.status(), 200);
        response.json().await.expect("token json")
    }
}

pub fn location(response: &Response) -> Url {
    let raw = response.headers()["location"]
        .to_str()
        .expect("ascii location");
    Url::parse(raw).expect("absolute location")
}

pub fn query_value(url: &Url, key: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

pub async fn json(response: Response) -> Value {
    response.json().await.expect("json body")
}
