//! Console pages over HTTP at a scale a browser test would make slow: paging a big member list by
//! cursor, filters and exact searches, several clients on one dashboard, and pages that do not
//! exist or links that were tampered with.

use std::collections::BTreeSet;

use connector_e2e::console_http::{hidden, page, signed_in};
use connector_e2e::discord_emulator::Fault;
use connector_e2e::{Harness, ADMIN_TOKEN, CLIENT};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The site user ids listed on a members page.
fn listed(html: &str) -> Vec<String> {
    let marker = format!("href=\"/admin/clients/{CLIENT}/members/");
    html.match_indices(&marker)
        .map(|(i, _)| {
            html[i + marker.len()..]
                .split('"')
                .next()
                .expect("id")
                .to_owned()
        })
        .collect()
}

/// The `Next page` link of a page, with `&amp;` read back as `&`.
fn next_link(html: &str) -> Option<String> {
    let end = html.find(">Next page<")?;
    let start = html[..end].rfind("href=\"")? + "href=\"".len();
    Some(html[start..end - 1].replace("&amp;", "&"))
}

async fn import(h: &Harness, from: usize, to: usize) {
    let items: Vec<Value> = (from..to)
        .map(|i| {
            json!({
                "user_id": format!("u{i:04}"),
                "discord_user_id": (400_000_000_000_000_000u64 + i as u64).to_string(),
                "groups": ["members"],
            })
        })
        .collect();
    let (status, body) = h
        .api(
            Method::POST,
            &format!("/clients/{CLIENT}/users/import"),
            Some(json!(items)),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn the_member_list_pages_through_every_member_once() {
    // given 130 imported members and 3 the site pushed without a link
    let h = Harness::start().await;
    h.setup_client().await;
    import(&h, 0, 130).await;
    for i in 0..3 {
        h.put_user(&format!("site-only-{i}"), &["members"]).await;
    }
    let b = signed_in(&h, ADMIN_TOKEN).await;

    // when the operator follows "Next page" from the first page
    let mut seen = Vec::new();
    let mut path = format!("/admin/clients/{CLIENT}/members");
    let mut pages = 0;
    loop {
        let (status, _, html) = page(&h, &b, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        let ids = listed(&html);
        assert!(ids.len() <= 50, "a page holds at most 50: {}", ids.len());
        seen.extend(ids);
        pages += 1;
        match next_link(&html) {
            Some(next) => path = next,
            None => break,
        }
    }
    // then every member is listed exactly once, over three pages
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), 133, "no member twice");
    assert_eq!(unique.len(), 133);
    assert_eq!(pages, 3);

    // A filter lists only its members; an exact Discord id finds its member.
    let (_, _, html) = page(
        &h,
        &b,
        &format!("/admin/clients/{CLIENT}/members?filter=unlinked"),
    )
    .await;
    assert_eq!(
        listed(&html),
        vec!["site-only-0", "site-only-1", "site-only-2"]
    );
    let (_, _, html) = page(
        &h,
        &b,
        &format!("/admin/clients/{CLIENT}/members?q=400000000000000007"),
    )
    .await;
    assert_eq!(listed(&html), vec!["u0007"]);
    let (_, _, html) = page(&h, &b, &format!("/admin/clients/{CLIENT}/members?q=u0042")).await;
    assert_eq!(listed(&html), vec!["u0042"], "an exact site user id");
}

#[tokio::test]
async fn the_dashboard_shows_each_client_with_its_own_numbers() {
    let h = Harness::start().await;
    h.setup_client().await;
    let mut second = h.client_body();
    second["id"] = json!("second");
    second["name"] = json!("Second community");
    let (status, body) = h.api(Method::POST, "/clients", Some(second)).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    h.put_user("one", &["members"]).await;
    h.put_user("two", &["members"]).await;
    h.link("one", "alice").await;

    let b = signed_in(&h, ADMIN_TOKEN).await;
    let (status, _, html) = page(&h, &b, "/admin").await;
    assert_eq!(status, StatusCode::OK);
    let first_row = &html[html.find("Test guild").expect("first client")..];
    let first_row = &first_row[..first_row.find("</tr>").expect("row end")];
    assert!(first_row.contains("1 linked</a> of 2"), "{first_row}");
    let second_row = &html[html.find("Second community").expect("second client")..];
    let second_row = &second_row[..second_row.find("</tr>").expect("row end")];
    assert!(second_row.contains("0 linked</a> of 0"), "{second_row}");
}

#[tokio::test]
async fn missing_pages_and_tampered_links_are_said_in_words() {
    let h = Harness::start().await;
    h.setup_client().await;
    let b = signed_in(&h, ADMIN_TOKEN).await;
    for (path, status, words) in [
        (
            "/admin/clients/nope".to_owned(),
            StatusCode::NOT_FOUND,
            "There is no client here",
        ),
        (
            format!("/admin/clients/{CLIENT}/members/nobody"),
            StatusCode::NOT_FOUND,
            "There is no member here",
        ),
        (
            format!("/admin/clients/{CLIENT}/runs/nope"),
            StatusCode::NOT_FOUND,
            "There is no run here",
        ),
        (
            "/admin/no-such-page".to_owned(),
            StatusCode::NOT_FOUND,
            "There is no page here",
        ),
        (
            format!("/admin/clients/{CLIENT}/members?cursor=%%%"),
            StatusCode::BAD_REQUEST,
            "Broken page link",
        ),
        (
            format!("/admin/clients/{CLIENT}/audit?cursor=x"),
            StatusCode::BAD_REQUEST,
            "Broken page link",
        ),
    ] {
        let (got, _, html) = page(&h, &b, &path).await;
        assert_eq!(got, status, "{path}: {html}");
        assert!(html.contains(words), "{path}: {html}");
        assert!(html.starts_with("<!DOCTYPE html>"), "{path}");
    }
    // A bad date in the audit filter is named, and the rest of the filter still applies.
    let (status, _, html) = page(
        &h,
        &b,
        &format!("/admin/clients/{CLIENT}/audit?since=yesterday"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("From: &quot;yesterday&quot; is not a date"),
        "{html}"
    );
}

#[tokio::test]
async fn the_linked_roles_page_says_what_discord_did_and_which_row_was_refused() {
    // Given a client whose Linked Roles were saved through the API
    let h = Harness::start().await;
    h.setup_client().await;
    let definitions = json!({
        "enabled": false,
        "platform_name": "Example Site",
        "metadata": [{"key": "officer", "name": "Officer", "description": "Is an officer",
                      "type": "boolean", "source": {"group": "officers"}}],
    });
    let (status, body) = h
        .api(
            Method::PUT,
            &format!("/clients/{CLIENT}/linked-roles"),
            Some(definitions),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let b = signed_in(&h, ADMIN_TOKEN).await;
    let path = format!("/admin/clients/{CLIENT}/linked-roles");

    // When Discord cannot be asked what it holds, the page says so and still shows ours
    h.emu
        .inject_fault(Fault::new("/role-connections/metadata", 500, 4).with_method("GET"));
    let (status, _, html) = page(&h, &b, &path).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Discord could not be asked which records it holds now"),
        "{html}"
    );
    assert!(html.contains(r#"id="m0-key" name="metadata[0].key" type="text" value="officer""#));
    h.emu.clear_faults();
    let csrf = hidden(&html, "csrf");
    let post = |fields: Vec<(&'static str, String)>| {
        let b = &b;
        let h = &h;
        async move {
            let resp = b
                .post(h.url(&format!("/admin/clients/{CLIENT}/linked-roles")))
                .form(&fields)
                .send()
                .await
                .expect("post");
            (resp.status(), resp.text().await.expect("body"))
        }
    };
    let renamed = |name: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("platform_name", "Example Site".to_owned()),
            ("metadata[0].key", "officer".to_owned()),
            ("metadata[0].name", name.to_owned()),
            ("metadata[0].description", "Is an officer".to_owned()),
            ("metadata[0].type", "boolean".to_owned()),
            ("metadata[0].comparison", "equal".to_owned()),
            ("metadata[0].source", "officers".to_owned()),
        ]
    };
    let held_name = |h: &Harness| h.emu.role_connection_metadata()[0]["name"].clone();

    // When Discord refuses the records, the refusal is explained, the input kept, nothing stored
    h.emu.inject_fault(
        Fault::new("/role-connections/metadata", 400, 1)
            .with_method("PUT")
            .with_code(50035, "Invalid Form Body"),
    );
    let (status, html) = post(renamed("Chief")).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{html}");
    assert!(
        html.contains("Not saved: Discord refused the records"),
        "{html}"
    );
    assert!(html.contains(r#"value="Chief""#), "{html}");
    assert_eq!(held_name(&h), "Officer");
    let stored = h.app.store.get_client(CLIENT).await.unwrap().unwrap();
    assert_eq!(
        stored.linked_roles.expect("kept").metadata[0].name,
        "Officer"
    );

    // A record typed in the third row after two empty ones is refused naming that row
    let mut fields = renamed("Officer");
    fields.retain(|(k, _)| !k.starts_with("metadata[0]"));
    fields.extend([
        ("metadata[2].key", "missions".to_owned()),
        ("metadata[2].name", "M".repeat(101)),
        ("metadata[2].description", "Missions flown".to_owned()),
        ("metadata[2].type", "integer".to_owned()),
        ("metadata[2].comparison", String::new()),
        ("metadata[2].source", "missions".to_owned()),
    ]);
    let (status, html) = post(fields).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{html}");
    assert!(
        html.contains(r#"id="m2-name" name="metadata[2].name" type="text""#)
            && html
                .contains(r#"aria-invalid="true" aria-describedby="m2-name-help m2-name-error""#),
        "{html}"
    );
    assert!(
        html.contains("record 3, name: must be 1-100 characters"),
        "{html}"
    );
    assert_eq!(held_name(&h), "Officer");

    // And a save Discord accepts replaces the records
    let (status, _) = post(renamed("Chief")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(held_name(&h), "Chief");
}
