//! The browser harness itself, against a tiny console-like app served here: strict CSP
//! (`default-src 'self'`), a form that signs in with an HttpOnly SameSite=Strict cookie, an
//! accessible page and an inaccessible one. Each test shows a harness check can fail.

use std::collections::BTreeSet;
use std::path::Path;

use axum::extract::Form;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use connector_e2e::browser::{Browser, Until, DESKTOP, PHONE, WAIT};

const CSP: &str = "default-src 'self'";
const COOKIE: &str = "console_session";

/// Serves the app on 127.0.0.1:0; returns its base URL.
async fn serve() -> String {
    let app = Router::new()
        .route("/sign-in", get(sign_in_page).post(sign_in))
        .route("/sign-out", post(sign_out))
        .route("/welcome", get(welcome))
        .route("/good", get(|| async { Html(GOOD_PAGE) }))
        .route("/bad", get(|| async { Html(BAD_PAGE) }))
        .route("/style.css", get(stylesheet))
        .route("/logo.svg", get(logo))
        .layer(axum::middleware::map_response(
            |mut response: Response| async {
                response.headers_mut().insert(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CSP),
                );
                response
            },
        ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("app runs") });
    base
}

fn page(title: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><link rel=\"stylesheet\" href=\"/style.css\"></head>\
         <body><header><nav class=\"wide-only\"><a href=\"/good\">Overview</a></nav></header>\
         <main><h1>{title}</h1>{body}</main></body></html>"
    ))
}

async fn sign_in_page() -> Html<String> {
    page(
        "Sign in",
        "<form id=\"sign-in\" method=\"post\" action=\"/sign-in\">\
         <label for=\"operator\">Operator name</label>\
         <input id=\"operator\" name=\"operator\" autocomplete=\"username\" required>\
         <label for=\"team\">Team</label><input id=\"team\" name=\"team\">\
         <button>Sign in</button></form>",
    )
}

#[derive(serde::Deserialize)]
struct SignIn {
    operator: String,
    team: String,
}

async fn sign_in(Form(form): Form<SignIn>) -> Response {
    let value = format!("{}@{}", form.operator, form.team).replace([';', ' ', ','], "_");
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict"),
        )],
        Redirect::to("/welcome"),
    )
        .into_response()
}

async fn sign_out() -> Response {
    (
        [(
            header::SET_COOKIE,
            format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict"),
        )],
        Redirect::to("/welcome"),
    )
        .into_response()
}

async fn welcome(headers: HeaderMap) -> Html<String> {
    let session = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_owned)
        });
    match session {
        Some(who) => page(
            "Welcome",
            &format!(
                "<p>Signed in as {who}</p><form method=\"post\" action=\"/sign-out\">\
                 <button>Sign out</button></form>"
            ),
        ),
        None => page("Welcome", "<p>Signed out</p>"),
    }
}

const GOOD_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <title>Guild health</title><link rel=\"stylesheet\" href=\"/style.css\"></head><body>\
    <header><nav class=\"wide-only\" aria-label=\"Main\"><a href=\"/good\">Overview</a></nav>\
    </header><main><h1>Guild health</h1><img src=\"/logo.svg\" alt=\"Connector logo\">\
    <p>All 3 roles are in sync.</p><form method=\"post\" action=\"/sign-in\">\
    <label for=\"search\">Search members</label><input id=\"search\" name=\"operator\">\
    <input type=\"hidden\" name=\"team\" value=\"x\"><button>Search</button></form></main>\
    </body></html>";

/// An input without a label, an image without alt text, faint grey text, and an inline script
/// the CSP blocks.
const BAD_PAGE: &str = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
    <title>Broken</title><link rel=\"stylesheet\" href=\"/style.css\"></head><body><main>\
    <h1>Broken</h1><img src=\"/logo.svg\"><p class=\"faint\">Hard to read</p>\
    <form><input name=\"q\"><button>Go</button></form>\
    <script>document.title = 'inline script ran';</script></main></body></html>";

async fn stylesheet() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css")],
        "body { font: 16px sans-serif; color: #222; background: #fff; margin: 1rem; }\n\
         .faint { color: #d0d0d0; }\n\
         @media (max-width: 600px) { .wide-only { display: none; } }\n",
    )
}

async fn logo() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "image/svg+xml")],
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"40\">\
         <rect width=\"40\" height=\"40\" fill=\"#5865f2\"/></svg>",
    )
}

/// Runs `check` in its own task and returns its panic message (it must panic).
async fn panic_message<F>(check: F) -> String
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let err = tokio::spawn(check)
        .await
        .expect_err("the check should have failed");
    let payload = err.into_panic();
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Width and height from a PNG's IHDR chunk, or `None` if `bytes` is not a PNG.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let signature = b"\x89PNG\r\n\x1a\n";
    if bytes.len() < 24 || &bytes[..8] != signature || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let word = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    Some((word(16), word(20)))
}

#[tokio::test]
async fn a_form_signs_in_redirects_and_sets_a_strict_http_only_cookie() {
    // Given the sign-in page
    let base = serve().await;
    let b = Browser::new().await;
    b.goto(&format!("{base}/sign-in")).await;

    // When the operator fills it by label and by name, and submits
    b.fill("Operator name", "ada").await;
    b.fill("team", "ops").await;
    b.submit("#sign-in").await;

    // Then the POST redirected to the welcome page, which saw the cookie
    b.wait_for(Until::Path("/welcome"), WAIT).await;
    b.wait_for(Until::Text("Signed in as ada@ops"), WAIT).await;
    let cookie = b.cookie(COOKIE).await.expect("session cookie set");
    assert_eq!(cookie.value, "ada@ops");
    assert!(cookie.http_only, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Strict"), "{cookie:?}");
    assert!(!cookie.secure, "served over http: {cookie:?}");
    // HttpOnly for real: the page's scripts cannot read it.
    let visible = b.script("return document.cookie;", vec![]).await;
    assert_eq!(visible, "", "HttpOnly cookie visible to scripts");

    // And signing out (a button found by its text) clears it
    b.click_button("Sign out").await;
    b.wait_for(Until::Text("Signed out"), WAIT).await;
    assert_eq!(b.cookie(COOKIE).await, None);
}

#[tokio::test]
async fn each_browser_has_its_own_cookies() {
    // Given one browser signed in
    let base = serve().await;
    let signed_in = Browser::new().await;
    signed_in.goto(&format!("{base}/sign-in")).await;
    signed_in.fill("Operator name", "ada").await;
    signed_in.click_button("Sign in").await;
    signed_in
        .wait_for(Until::Text("Signed in as ada"), WAIT)
        .await;

    // When another browser opens the same page
    let other = Browser::new().await;
    other.goto(&format!("{base}/welcome")).await;

    // Then it is signed out, and stays so when the first deletes its cookies
    assert!(other.text().await.contains("Signed out"));
    assert!(other.cookies().await.is_empty());
    signed_in.delete_cookies().await;
    signed_in.goto(&format!("{base}/welcome")).await;
    assert!(signed_in.text().await.contains("Signed out"));
}

#[tokio::test]
async fn axe_passes_on_an_accessible_page() {
    let base = serve().await;
    let b = Browser::new().await;
    b.goto(&format!("{base}/good")).await;
    b.assert_accessible("good page").await;
    assert_eq!(b.console_errors().await, Vec::<String>::new());
}

#[tokio::test]
async fn axe_reports_the_inaccessible_pages_violations() {
    // Given a page with an unlabelled input, an image without alt text and faint text
    let base = serve().await;
    let b = Browser::new().await;
    b.goto(&format!("{base}/bad")).await;

    // When axe checks it
    let violations = b.accessibility_violations().await;

    // Then each is reported, serious or critical, with the element's selector
    let failing: BTreeSet<&str> = violations
        .iter()
        .filter(|v| v.fails())
        .map(|v| v.id.as_str())
        .collect();
    for rule in ["label", "image-alt", "color-contrast"] {
        assert!(
            failing.contains(rule),
            "{rule} not reported: {violations:#?}"
        );
    }
    let contrast = violations.iter().find(|v| v.id == "color-contrast");
    let nodes: Vec<_> = contrast.into_iter().flat_map(|v| &v.nodes).collect();
    assert!(
        nodes
            .iter()
            .any(|n| n.html.contains("class=\"faint\"") && !n.target.is_empty()),
        "{nodes:?}"
    );

    // And assert_accessible fails, listing them
    let message = panic_message(async move { b.assert_accessible("bad page").await }).await;
    for expected in [
        "bad page: ",
        "label (critical)",
        "image-alt (critical)",
        "color-contrast (serious)",
        "/bad",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} missing from:\n{message}"
        );
    }
}

#[tokio::test]
async fn the_csp_holds_for_the_page_but_not_for_the_harness() {
    // Given a page whose inline script the CSP blocks
    let base = serve().await;
    let b = Browser::new().await;
    b.goto(&format!("{base}/bad")).await;

    // Then the script did not run, and the console says why
    assert_eq!(b.title().await, "Broken");
    let errors = b.console_errors().await;
    assert!(
        errors.iter().any(|e| e.contains("Content Security Policy")),
        "{errors:?}"
    );
    // While WebDriver's scripts (and so axe) still run there
    assert_eq!(b.script("return 6 * 7;", vec![]).await, 42);
    assert!(!b.accessibility_violations().await.is_empty());
}

#[tokio::test]
async fn a_screenshot_is_a_png_of_the_viewport() {
    let base = serve().await;
    let b = Browser::new().await;
    b.goto(&format!("{base}/good")).await;

    let path = b.screenshot("browser-smoke-desktop").await;

    let bytes = std::fs::read(&path).expect("screenshot written");
    assert_eq!(png_size(&bytes), Some(DESKTOP), "{}", path.display());
    assert_eq!(path.file_name().unwrap(), "browser-smoke-desktop.png");
    // UPDATE_SCREENSHOTS=1 writes under docs/console/: a smoke shot does not belong there.
    if path.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")) {
        std::fs::remove_file(&path).expect("remove smoke screenshot");
    }
}

#[tokio::test]
async fn a_phone_window_gets_a_phone_viewport_and_layout() {
    // Given a page whose navigation hides below 600 px
    let base = serve().await;
    let b = Browser::new().await;
    b.goto(&format!("{base}/good")).await;
    assert_eq!(b.viewport().await, (DESKTOP.0.into(), DESKTOP.1.into()));
    assert!(b.find("nav").await.is_displayed().await.unwrap());

    // When the window is phone-sized
    b.phone().await;

    // Then the viewport and the media query follow
    assert_eq!(b.viewport().await, (PHONE.0.into(), PHONE.1.into()));
    assert!(!b.find("nav").await.is_displayed().await.unwrap());
    let path = b.screenshot("browser-smoke-phone").await;
    let bytes = std::fs::read(&path).expect("screenshot written");
    assert_eq!(png_size(&bytes), Some(PHONE));
    if path.starts_with(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")) {
        std::fs::remove_file(&path).expect("remove smoke screenshot");
    }
}

#[tokio::test]
async fn a_failed_wait_says_where_the_browser_was() {
    let base = serve().await;
    let b = Browser::new().await;
    b.goto(&format!("{base}/good")).await;

    let message = panic_message(async move {
        b.wait_for(Until::Css("#never"), std::time::Duration::from_millis(300))
            .await
    })
    .await;

    for expected in [
        "Css(\"#never\")",
        "/good",
        "Guild health",
        "All 3 roles are in sync",
    ] {
        assert!(
            message.contains(expected),
            "{expected:?} missing from:\n{message}"
        );
    }
}
