//! The console's sign-in, sessions and CSRF at the HTTP level (what a browser cannot be made to
//! do wrong on purpose): which tokens may sign in, that the session is stored (it survives a
//! restart, and ends with sign-out, expiry, or its token's revocation), and that a POST without
//! the session's CSRF token changes nothing.

use connector_e2e::console_http::{hidden, page, sign_in};
use connector_e2e::{location, Harness, ADMIN_TOKEN, CLIENT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A browser of its own (cookies kept, redirects not followed).
fn browser() -> reqwest::Client {
    connector_e2e::browser()
}

async fn create_token(h: &Harness, scope: &str) -> (String, String) {
    let clients: Vec<&str> = if scope == "site" {
        vec![CLIENT]
    } else {
        vec![]
    };
    let (status, body): (StatusCode, Value) = h
        .api(
            Method::POST,
            "/tokens",
            Some(json!({"name": format!("{scope} token"), "scope": scope, "clients": clients})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (
        body["id"].as_str().expect("id").to_owned(),
        body["token"].as_str().expect("token").to_owned(),
    )
}

#[tokio::test]
async fn nothing_of_the_console_is_reachable_without_a_session() {
    let h = Harness::start().await;
    let b = browser();
    for path in [
        "/admin",
        "/admin/clients/new",
        &format!("/admin/clients/{CLIENT}/members"),
        "/admin/anything",
    ] {
        let (status, loc, _) = page(&h, &b, path).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{path}");
        assert!(loc.starts_with("/admin/login?next="), "{path}: {loc}");
    }
    let resp = b
        .post(h.url("/admin/clients"))
        .form(&[("name", "x")])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(h
        .app
        .store
        .list_clients()
        .await
        .expect("clients")
        .is_empty());
    // The sign-in page and its assets are public, and every answer forbids framing and inline
    // scripts.
    let login = b.get(h.url("/admin/login")).send().await.expect("login");
    assert_eq!(login.status(), StatusCode::OK);
    let csp = login.headers()["content-security-policy"]
        .to_str()
        .expect("csp");
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(login.headers()["x-frame-options"], "DENY");
    assert_eq!(login.headers()["cache-control"], "no-store");
    let css = b
        .get(h.url("/admin/static/console.css"))
        .send()
        .await
        .expect("css");
    assert_eq!(css.status(), StatusCode::OK);
}

#[tokio::test]
async fn only_operator_tokens_sign_in() {
    let h = Harness::start().await;
    h.setup_client().await;
    let (_, site) = create_token(&h, "site").await;
    let (_, operator) = create_token(&h, "operator").await;

    let (status, _, body) = sign_in(&h, &browser(), &site).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("This is a site token"), "{body}");
    let (status, _, body) = sign_in(&h, &browser(), "wrong-token-wrong-token-wrong-token").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("That token was not accepted"));
    assert!(
        !body.contains("wrong-token"),
        "the token typed is not echoed"
    );

    for token in [ADMIN_TOKEN, operator.as_str()] {
        let b = browser();
        let (status, loc, _) = sign_in(&h, &b, token).await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(loc, "/admin");
        let (status, _, body) = page(&h, &b, "/admin").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("Test guild"));
    }
}

#[tokio::test]
async fn a_sign_in_needs_the_form_the_browser_was_given() {
    let h = Harness::start().await;
    // A foreign site posting the operator's own token (login CSRF) has no login nonce cookie.
    let resp = browser()
        .post(h.url("/admin/login"))
        .form(&[
            ("token", ADMIN_TOKEN),
            ("csrf", "guess"),
            ("next", "/admin"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp
        .headers()
        .get("set-cookie")
        .is_none_or(|c| !c.to_str().unwrap_or_default().starts_with("dc_console=")));
    // And no open redirect after a sign-in.
    let b = browser();
    let form = b
        .get(h.url("/admin/login?next=https://evil.example/"))
        .send()
        .await
        .expect("form");
    let body = form.text().await.expect("body");
    let resp = b
        .post(h.url("/admin/login"))
        .form(&[
            ("token", ADMIN_TOKEN),
            ("csrf", hidden(&body, "csrf").as_str()),
            ("next", "https://evil.example/"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(location(&resp), "/admin");
}

#[tokio::test]
async fn a_post_without_the_sessions_csrf_token_changes_nothing() {
    let h = Harness::start().await;
    h.setup_client().await;
    let b = browser();
    sign_in(&h, &b, ADMIN_TOKEN).await;
    let (_, _, roles_page) = page(&h, &b, &format!("/admin/clients/{CLIENT}/roles")).await;
    let csrf = hidden(&roles_page, "csrf");
    let officer = h.role("Officer");
    let path = h.url(&format!("/admin/clients/{CLIENT}/roles/{officer}"));

    for token in [None, Some("0".repeat(32)), Some(csrf[..31].to_owned())] {
        let mut form = vec![("groups", "intruders".to_owned())];
        if let Some(t) = token {
            form.push(("csrf", t));
        }
        let resp = b.post(&path).form(&form).send().await.expect("post");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert!(resp
            .text()
            .await
            .expect("body")
            .contains("This form has expired"));
    }
    let roles = h.app.store.list_roles(CLIENT).await.expect("roles");
    let officer_groups = &roles
        .iter()
        .find(|r| r.id == officer)
        .expect("officer")
        .groups;
    assert_eq!(
        officer_groups,
        &connector_e2e::names(&["officers"]),
        "unchanged"
    );

    // Another session's token does not do either.
    let other = browser();
    sign_in(&h, &other, ADMIN_TOKEN).await;
    let (_, _, other_page) = page(&h, &other, &format!("/admin/clients/{CLIENT}/roles")).await;
    assert_ne!(hidden(&other_page, "csrf"), csrf);
    let resp = b
        .post(&path)
        .form(&[
            ("groups", "intruders"),
            ("csrf", &hidden(&other_page, "csrf")),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    // With it, the mapping is saved.
    let resp = b
        .post(&path)
        .form(&[("groups", "officers, directors"), ("csrf", &csrf)])
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let roles = h.app.store.list_roles(CLIENT).await.expect("roles");
    let officer_groups = &roles
        .iter()
        .find(|r| r.id == officer)
        .expect("officer")
        .groups;
    assert_eq!(
        officer_groups,
        &connector_e2e::names(&["officers", "directors"])
    );
}

/// A Linked Roles form with one boolean record, as the browser sends it.
fn linked_roles_form(csrf: Option<&str>) -> Vec<(&'static str, String)> {
    let mut form = vec![
        ("enabled", "on".to_owned()),
        ("platform_name", "Example Site".to_owned()),
        ("metadata[0].key", "officer".to_owned()),
        ("metadata[0].name", "Officer".to_owned()),
        ("metadata[0].description", "Is an officer".to_owned()),
        ("metadata[0].type", "boolean".to_owned()),
        ("metadata[0].comparison", String::new()),
        ("metadata[0].source", "officers".to_owned()),
    ];
    if let Some(t) = csrf {
        form.push(("csrf", t.to_owned()));
    }
    form
}

#[tokio::test]
async fn the_linked_roles_page_needs_a_session_and_its_form_the_csrf_token() {
    // Given a client and nobody signed in
    let h = Harness::start().await;
    h.setup_client().await;
    let path = format!("/admin/clients/{CLIENT}/linked-roles");
    let stored = || async {
        h.app
            .store
            .get_client(CLIENT)
            .await
            .expect("client")
            .expect("exists")
            .linked_roles
    };

    // The page sends a browser without a session to sign in, and a POST changes nothing
    let anonymous = browser();
    let (status, loc, _) = page(&h, &anonymous, &path).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        loc,
        format!("/admin/login?next=%2Fadmin%2Fclients%2F{CLIENT}%2Flinked-roles")
    );
    let resp = anonymous
        .post(h.url(&path))
        .form(&linked_roles_form(Some("guess")))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert!(location(&resp).starts_with("/admin/login"));

    // Signed in, a POST without the session's CSRF token (none, or another session's) is
    // refused before anything reaches Discord or the store
    let b = browser();
    sign_in(&h, &b, ADMIN_TOKEN).await;
    let (status, _, html) = page(&h, &b, &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    let csrf = hidden(&html, "csrf");
    let other = browser();
    sign_in(&h, &other, ADMIN_TOKEN).await;
    let (_, _, other_html) = page(&h, &other, &path).await;
    let foreign = hidden(&other_html, "csrf");
    for token in [None, Some(foreign.as_str())] {
        let resp = b
            .post(h.url(&path))
            .form(&linked_roles_form(token))
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{token:?}");
    }
    assert_eq!(stored().await, None);
    assert!(h.emu.role_connection_metadata().is_empty());

    // With it, the records are registered, stored, and the browser goes back to the page
    let resp = b
        .post(h.url(&path))
        .form(&linked_roles_form(Some(&csrf)))
        .send()
        .await
        .expect("post");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&resp), format!("{path}?done=saved"));
    assert!(stored().await.expect("stored").enabled);
    assert_eq!(h.emu.role_connection_metadata().len(), 1);
}

#[tokio::test]
async fn a_session_is_stored_and_ends_with_expiry_revocation_or_rotation() {
    let h = Harness::start().await;
    let (token_id, operator) = create_token(&h, "operator").await;
    let by_admin = browser();
    let by_operator = browser();
    sign_in(&h, &by_admin, ADMIN_TOKEN).await;
    sign_in(&h, &by_operator, &operator).await;

    // Stored, not in one process's memory: it holds across a restart (another instance).
    let h = h.restart(Some(ADMIN_TOKEN.to_owned())).await;
    // (Cookies are per host, not per port: the jar sends them to the restarted server.)
    let (status, _, _) = page(&h, &by_admin, "/admin").await;
    assert_eq!(status, StatusCode::OK, "the session survives a restart");

    // Revoking the operator token ends the sessions made with it at once.
    let (status, _) = h
        .api(Method::DELETE, &format!("/tokens/{token_id}"), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, loc, _) = page(&h, &by_operator, "/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "revoked");
    assert!(loc.starts_with("/admin/login"));

    // Rotating the bootstrap token ends its sessions.
    let rotated = h
        .restart(Some("another-admin-token-0123456789abcdefgh".to_owned()))
        .await;
    let (status, _, _) = page(&rotated, &by_admin, "/admin").await;
    assert_eq!(status, StatusCode::SEE_OTHER, "rotated");

    // And a session expires after its eight hours.
    let b = browser();
    sign_in(&rotated, &b, "another-admin-token-0123456789abcdefgh").await;
    assert_eq!(page(&rotated, &b, "/admin").await.0, StatusCode::OK);
    rotated.clock.advance(8 * 3600 + 1);
    assert_eq!(page(&rotated, &b, "/admin").await.0, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn over_https_the_cookie_is_host_only_and_secure() {
    let h = Harness::start().await;
    let b = browser();
    let form = b
        .get(h.url("/admin/login"))
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .expect("form");
    let nonce_cookie = form.headers()["set-cookie"]
        .to_str()
        .expect("cookie")
        .to_owned();
    assert!(
        nonce_cookie.starts_with("__Host-dc_console_login="),
        "{nonce_cookie}"
    );
    assert!(nonce_cookie.contains("; Secure"), "{nonce_cookie}");
    let nonce = hidden(&form.text().await.expect("body"), "csrf");
    let resp = b
        .post(h.url("/admin/login"))
        .header("x-forwarded-proto", "https")
        .header("cookie", format!("__Host-dc_console_login={nonce}"))
        .form(&[
            ("token", ADMIN_TOKEN),
            ("csrf", nonce.as_str()),
            ("next", "/admin"),
        ])
        .send()
        .await
        .expect("login");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().expect("ascii").to_owned())
        .find(|c| c.starts_with("__Host-dc_console="))
        .expect("session cookie");
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Secure",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(session.contains(part), "{session} lacks {part}");
    }
    assert!(!session.contains("Domain"), "{session}");
}
