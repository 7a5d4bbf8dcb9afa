//! What the browser holds and shows: cookies, the viewport, screenshots, the console log.

use std::path::PathBuf;
use std::time::Duration;

use fantoccini::wd::WebDriverCompatibleCommand;

use super::{Browser, PHONE};
use crate::chromium;

/// A cookie as the browser stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CookieInfo {
    pub name: String,
    pub value: String,
    pub path: Option<String>,
    pub domain: Option<String>,
    pub http_only: bool,
    pub secure: bool,
    /// `Strict`, `Lax` or `None`; `None` (the Option) when the browser does not say.
    pub same_site: Option<String>,
}

impl Browser {
    /// The cookie named `name` that the current page's site has (HttpOnly ones included).
    pub async fn cookie(&self, name: &str) -> Option<CookieInfo> {
        self.cookies().await.into_iter().find(|c| c.name == name)
    }

    /// Every cookie the current page's site has.
    pub async fn cookies(&self) -> Vec<CookieInfo> {
        let cookies = self.client().get_all_cookies().await;
        let cookies = self.expect_ok(cookies, "cannot read the cookies").await;
        cookies
            .into_iter()
            .map(|c| CookieInfo {
                name: c.name().to_owned(),
                value: c.value().to_owned(),
                path: c.path().map(str::to_owned),
                domain: c.domain().map(str::to_owned),
                http_only: c.http_only().unwrap_or(false),
                secure: c.secure().unwrap_or(false),
                same_site: c.same_site().map(|s| s.to_string()),
            })
            .collect()
    }

    /// Deletes the current site's cookies (a signed-out browser, say).
    pub async fn delete_cookies(&self) {
        let deleted = self.client().delete_all_cookies().await;
        self.expect_ok(deleted, "cannot delete the cookies").await;
    }

    /// Sizes the window so that the viewport (`innerWidth` × `innerHeight`: what media queries
    /// and screenshots see) is `width` × `height` CSS pixels. Headless Chromium's window has a
    /// browser frame, as a headed one does: the window is larger than the viewport, by an amount
    /// only measurable once the window is shown, so this resizes, measures and corrects.
    pub async fn set_viewport(&self, width: u32, height: u32) {
        let want = (i64::from(width), i64::from(height));
        let (mut outer_width, mut outer_height) = want;
        let mut viewport = (0, 0);
        for _ in 0..5 {
            let resized = self
                .client()
                .set_window_size(outer_width as u32, outer_height as u32)
                .await;
            self.expect_ok(
                resized,
                format!("cannot resize the window to {outer_width}x{outer_height}"),
            )
            .await;
            // The resize may still be settling: give it a moment before correcting again.
            for _ in 0..10 {
                let (w, h) = self.viewport().await;
                viewport = (w as i64, h as i64);
                if viewport == want {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            outer_width = (outer_width + want.0 - viewport.0).max(1);
            outer_height = (outer_height + want.1 - viewport.1).max(1);
        }
        self.fail(format!(
            "asked for a {width}x{height} viewport, got {viewport:?}"
        ))
        .await;
    }

    /// A phone's viewport ([`PHONE`], 390 × 844).
    pub async fn phone(&self) {
        self.set_viewport(PHONE.0, PHONE.1).await;
    }

    /// The viewport's size in CSS pixels (`innerWidth`, `innerHeight`).
    pub async fn viewport(&self) -> (u64, u64) {
        let size = self
            .script("return [window.innerWidth, window.innerHeight];", vec![])
            .await;
        let dimension = |i: usize| size[i].as_u64().unwrap_or_default();
        (dimension(0), dimension(1))
    }

    /// Saves a PNG of the viewport as `<name>.png` and returns its path: in `docs/console/` of
    /// the repository when `UPDATE_SCREENSHOTS=1`, else in `<target>/screenshots/`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        assert!(
            !name.is_empty()
                && !name.starts_with('.')
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c)),
            "screenshot name {name:?}: letters, digits, '-', '_' and '.' only"
        );
        let png = self.client().screenshot().await;
        let png = self
            .expect_ok(png, format!("cannot take screenshot {name}"))
            .await;
        let dir = if std::env::var("UPDATE_SCREENSHOTS").as_deref() == Ok("1") {
            chromium::workspace_dir().join("docs").join("console")
        } else {
            chromium::target_dir().join("screenshots")
        };
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }

    /// What the page logged at level SEVERE since the last call: script errors, failed loads,
    /// and the browser's "Refused to … because it violates the … Content Security Policy".
    pub async fn console_errors(&self) -> Vec<String> {
        let log = self.client().issue_cmd(BrowserLog).await;
        let log = self
            .expect_ok(log, "cannot read the browser's console log")
            .await;
        log.as_array()
            .into_iter()
            .flatten()
            .filter(|entry| entry["level"] == "SEVERE")
            .filter_map(|entry| entry["message"].as_str())
            // The browser asks for /favicon.ico by itself; a page that names no icon is fine.
            .filter(|message| !message.contains("/favicon.ico - "))
            .map(str::to_owned)
            .collect()
    }
}

/// chromedriver's (non-W3C) `POST /session/{id}/se/log` for the `browser` log.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/se/log",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _request_url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.to_owned()))
    }
}
