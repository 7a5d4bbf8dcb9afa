//! The operator console over plain HTTP (a cookie-keeping client), for what a real browser
//! cannot be made to do wrong on purpose and for bulk checks a browser would make slow.

use reqwest::StatusCode;

use super::{browser, location, Harness};

/// The value of the hidden form field `name` in a page.
pub fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .map(|i| i + marker.len())
        .unwrap_or_else(|| panic!("no hidden field {name}"));
    html[start..].split('"').next().expect("value").to_owned()
}

/// Signs in with `token` through the sign-in form; returns the status, `Location` and body.
pub async fn sign_in(
    h: &Harness,
    b: &reqwest::Client,
    token: &str,
) -> (StatusCode, String, String) {
    let form = b
        .get(h.url("/admin/login"))
        .send()
        .await
        .expect("login form");
    assert_eq!(form.status(), StatusCode::OK);
    let nonce = hidden(&form.text().await.expect("body"), "csrf");
    let resp = b
        .post(h.url("/admin/login"))
        .form(&[
            ("token", token),
            ("csrf", nonce.as_str()),
            ("next", "/admin"),
        ])
        .send()
        .await
        .expect("login");
    let status = resp.status();
    let loc = location(&resp);
    (status, loc, resp.text().await.unwrap_or_default())
}

/// A client signed in with `token`.
pub async fn signed_in(h: &Harness, token: &str) -> reqwest::Client {
    let b = browser();
    let (status, _, body) = sign_in(h, &b, token).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    b
}

/// GETs a console page; returns the status, `Location` and body.
pub async fn page(h: &Harness, b: &reqwest::Client, path: &str) -> (StatusCode, String, String) {
    let resp = b.get(h.url(path)).send().await.expect("page");
    let status = resp.status();
    let loc = location(&resp);
    (status, loc, resp.text().await.unwrap_or_default())
}
