//! A real browser for end-to-end tests: each [`Browser`] is its own headless Chromium (its own
//! profile, so its own cookies) driven over WebDriver by `fantoccini`, with the helpers a test of
//! a server-rendered console wants. Helpers panic with what they were doing, the page's URL, its
//! title and the start of its text, so a failed test says where the browser was.
//!
//! ```ignore
//! let b = Browser::new().await;
//! b.goto(&h.url("/admin/login")).await;
//! b.fill("Admin token", &h.admin_token).await;
//! b.click_button("Sign in").await;
//! b.wait_for(Until::Text("Clients"), WAIT).await;
//! b.assert_accessible("clients list").await;
//! b.screenshot("clients").await;
//! ```
//!
//! Fill, select, click and submit are in [`forms`]; cookies, the viewport, screenshots and the
//! console log in [`inspect`]; axe-core's checks in [`accessibility`].

pub mod accessibility;
pub mod forms;
pub mod inspect;

use std::fmt::Display;
use std::time::{Duration, Instant};

use fantoccini::elements::Element;
use fantoccini::wd::Capabilities;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{json, Value};

use crate::chromium::{self, CHROMIUM};

pub use accessibility::{ViolatingNode, Violation};
pub use fantoccini;
pub use inspect::CookieInfo;

/// How long [`Browser::wait_for`] usually waits.
pub const WAIT: Duration = Duration::from_secs(10);
/// The viewport a session starts with (CSS pixels).
pub const DESKTOP: (u32, u32) = (1280, 900);
/// A phone's viewport (an iPhone 12–15's CSS pixels).
pub const PHONE: (u32, u32) = (390, 844);

/// What [`Browser::wait_for`] waits for.
#[derive(Debug, Clone, Copy)]
pub enum Until<'a> {
    /// An element matches this CSS selector.
    Css(&'a str),
    /// No element matches this CSS selector.
    Gone(&'a str),
    /// The page's visible text contains this.
    Text(&'a str),
    /// The current URL's path is this.
    Path(&'a str),
}

/// One headless Chromium session. Ended (the browser quits, its profile is removed) when
/// dropped, a panicking test's included.
pub struct Browser {
    client: Client,
    session: String,
    driver: &'static chromium::ChromeDriver,
}

impl Browser {
    /// Starts a new headless Chromium with a [`DESKTOP`] viewport (installing Chromium and
    /// starting chromedriver on first use).
    pub async fn new() -> Self {
        let driver = chromium::chromedriver().await;
        let mut caps = Capabilities::new();
        caps.insert("browserName".into(), json!("chrome"));
        caps.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": CHROMIUM, "args": chromium::chromium_args(DESKTOP) }),
        );
        // Lets `console_errors` read the page's console (CSP violations land there).
        caps.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(caps)
            .connect(driver.url())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start a Chromium session on {}: {e} (chromedriver's log is in {})",
                    driver.url(),
                    chromium::target_dir().join("tmp").display()
                )
            });
        let session = client
            .session_id()
            .await
            .ok()
            .flatten()
            .expect("a new WebDriver session has an id");
        // `Drop` ends the session itself, synchronously, so that a panicking test ends it too.
        client.persist().await.expect("persist the session");
        let browser = Self {
            client,
            session,
            driver,
        };
        browser.set_viewport(DESKTOP.0, DESKTOP.1).await;
        browser
    }

    /// The WebDriver client, for what the helpers do not cover.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Opens `url` and waits for it to load.
    pub async fn goto(&self, url: &str) {
        let opened = self.client.goto(url).await;
        self.expect_ok(opened, format!("cannot open {url}")).await
    }

    /// The current URL.
    pub async fn url(&self) -> url::Url {
        let url = self.client.current_url().await;
        self.expect_ok(url, "cannot read the current URL").await
    }

    /// The document's title.
    pub async fn title(&self) -> String {
        let title = self.client.title().await;
        self.expect_ok(title, "cannot read the title").await
    }

    /// The page's visible text (`document.body.innerText`).
    pub async fn text(&self) -> String {
        let text = self.script(BODY_TEXT, vec![]).await;
        text.as_str().unwrap_or_default().to_owned()
    }

    /// The page's HTML as the browser now has it.
    pub async fn source(&self) -> String {
        let source = self.client.source().await;
        self.expect_ok(source, "cannot read the page source").await
    }

    /// The first element matching `css`; panics if none does.
    pub async fn find(&self, css: &str) -> Element {
        let found = self.client.find(Locator::Css(css)).await;
        self.expect_ok(found, format!("no element matches `{css}`"))
            .await
    }

    /// Every element matching `css` (maybe none).
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self.client.find_all(Locator::Css(css)).await;
        self.expect_ok(found, format!("cannot look for `{css}`"))
            .await
    }

    /// Whether an element matches `css`.
    pub async fn exists(&self, css: &str) -> bool {
        !self.find_all(css).await.is_empty()
    }

    /// The visible text of the first element matching `css`.
    pub async fn text_of(&self, css: &str) -> String {
        let text = self.find(css).await.text().await;
        self.expect_ok(text, format!("cannot read the text of `{css}`"))
            .await
    }

    /// Polls (every 50 ms) until `until` holds; panics after `timeout`.
    pub async fn wait_for(&self, until: Until<'_>, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let holds = match until {
                Until::Css(css) => self.exists(css).await,
                Until::Gone(css) => !self.exists(css).await,
                Until::Text(text) => self.text().await.contains(text),
                Until::Path(path) => self.url().await.path() == path,
            };
            if holds {
                return;
            }
            if Instant::now() > deadline {
                self.fail(format!("waited {timeout:?} for {until:?}")).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page and returns what it
    /// returns. WebDriver runs it outside the page's Content Security Policy.
    pub async fn script(&self, script: &str, args: Vec<Value>) -> Value {
        let result = self.client.execute(script, args).await;
        self.expect_ok(result, format!("script failed:\n{script}\n"))
            .await
    }

    /// Panics with `what` and where the browser is (see [`Self::whereabouts`]).
    pub async fn fail(&self, what: impl Display) {
        panic!("{what}\n{}", self.whereabouts().await)
    }

    /// The value, or a panic with `what`, the error and where the browser is.
    pub async fn expect_ok<T, E: Display>(&self, result: Result<T, E>, what: impl Display) -> T {
        match result {
            Ok(value) => value,
            Err(e) => panic!("{what}: {e}\n{}", self.whereabouts().await),
        }
    }

    /// The current URL, title and start of the page's text, for failure messages (it never
    /// panics itself).
    pub async fn whereabouts(&self) -> String {
        const SNIPPET: usize = 800;
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("<unknown: {e}>"),
        };
        let title = self.client.title().await.unwrap_or_default();
        let text = match self.client.execute(BODY_TEXT, vec![]).await {
            Ok(Value::String(text)) => text,
            _ => String::new(),
        };
        let mut snippet: String = text.chars().take(SNIPPET).collect();
        if text.chars().count() > SNIPPET {
            snippet.push_str(" […]");
        }
        format!("  at: {url}\n  title: {title:?}\n  page text:\n{snippet}")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Blocking here is fine: chromedriver is another process, and this is a test.
        let _ = self.driver.end_session(&self.session);
    }
}

const BODY_TEXT: &str = "return document.body ? document.body.innerText : '';";
