//! The console's page shell and the small pieces every page uses: navigation, notices, times,
//! badges, the CSRF field, and error pages.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::clock::Timestamp;
use crate::domain::Client;

use super::session::ConsoleUser;

/// Which client section a page belongs to, for the navigation.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Overview,
    Roles,
    LinkedRoles,
    Members,
    Tasks,
    Audit,
}

/// A rendered page; always `no-store` (pages carry member data and CSRF tokens).
pub struct Page {
    pub status: StatusCode,
    pub markup: Markup,
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        (
            self.status,
            [
                (header::CONTENT_TYPE, "text/html; charset=utf-8"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            self.markup.into_string(),
        )
            .into_response()
    }
}

/// The page shell: title, header with sign-out, optional client navigation, notice, body.
pub fn shell(
    title: &str,
    user: Option<&ConsoleUser>,
    client: Option<(&Client, Section)>,
    notice: Option<Notice>,
    body: Markup,
) -> Page {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · discord-connector" }
                link rel="stylesheet" href="/admin/static/console.css";
                script src="/admin/static/console.js" defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/admin" { "discord-connector" }
                    @if let Some(user) = user {
                        nav aria-label="Console" {
                            a href="/admin" { "Dashboard" }
                            a href="/admin/clients/new" { "New client" }
                        }
                        form.signout method="post" action="/admin/logout" {
                            (csrf_field(user))
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                @if let Some((c, section)) = client {
                    nav.client aria-label=(format!("Client {}", c.name)) {
                        span.client-name { (c.name) }
                        (tab(c, section, Section::Overview, "", "Overview"))
                        (tab(c, section, Section::Roles, "/roles", "Roles"))
                        (tab(c, section, Section::LinkedRoles, "/linked-roles", "Linked roles"))
                        (tab(c, section, Section::Members, "/members", "Members"))
                        (tab(c, section, Section::Tasks, "/tasks", "Tasks"))
                        (tab(c, section, Section::Audit, "/audit", "Audit log"))
                    }
                }
                main id="main" {
                    @if let Some(n) = notice {
                        div class=(n.class()) role=(n.role()) { (n.text) }
                    }
                    (body)
                }
            }
        }
    };
    Page {
        status: StatusCode::OK,
        markup,
    }
}

fn tab(c: &Client, current: Section, this: Section, path: &str, label: &str) -> Markup {
    let href = format!("{}{path}", client_path(&c.id));
    html! {
        @if current == this {
            a href=(href) aria-current="page" { (label) }
        } @else {
            a href=(href) { (label) }
        }
    }
}

/// `/admin/clients/{id}`, the id percent-encoded.
pub fn client_path(id: &str) -> String {
    format!("/admin/clients/{}", enc(id))
}

/// Everything but RFC 3986's unreserved characters.
const COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// A path segment or query value, percent-encoded.
pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, COMPONENT).to_string()
}

/// The hidden CSRF field every form of a signed-in page carries.
pub fn csrf_field(user: &ConsoleUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.csrf); }
}

/// A message shown above a page's content.
pub struct Notice {
    pub kind: NoticeKind,
    pub text: String,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    Ok,
    Error,
}

impl Notice {
    pub fn ok(text: impl Into<String>) -> Self {
        Self {
            kind: NoticeKind::Ok,
            text: text.into(),
        }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self {
            kind: NoticeKind::Error,
            text: text.into(),
        }
    }

    fn class(&self) -> &'static str {
        match self.kind {
            NoticeKind::Ok => "notice ok",
            NoticeKind::Error => "notice error",
        }
    }

    fn role(&self) -> &'static str {
        match self.kind {
            NoticeKind::Ok => "status",
            NoticeKind::Error => "alert",
        }
    }
}

/// The notice a redirect asked for with `?done=<code>`. Only fixed texts: nothing from the
/// query string reaches the page.
pub fn done_notice(code: Option<&str>) -> Option<Notice> {
    let text = match code? {
        "created" => "Client created. Follow the remaining steps below.",
        "saved" => "Settings saved.",
        "secrets" => "Secrets replaced. Roles were synced again with the new bot token.",
        "checked" => "Checked against Discord just now.",
        "synced" => "Roles synced from Discord. Linked members are re-checked by the next verify.",
        "mapped" => "Mapping saved. Linked members are re-checked by the next verify.",
        "applied" => "Queued: the guild's writer re-checks this member within seconds.",
        "unlinked" => {
            "Unlinked. The account is free; the guild's writer applies the unlink policy."
        }
        "deleted" => "Client deleted.",
        "signed-out" => "Signed out.",
        _ => return None,
    };
    Some(Notice::ok(text))
}

/// A UTC time for people: `2026-11-30 07:10 UTC`.
pub fn time(ts: Timestamp) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        secs / 3600,
        (secs % 3600) / 60
    )
}

/// `3 min ago`, `in 2 h`, relative to `now`.
pub fn ago(ts: Timestamp, now: Timestamp) -> String {
    let d = now - ts;
    let (n, future) = if d >= 0 { (d, false) } else { (-d, true) };
    let text = match n {
        0..=59 => format!("{n} s"),
        60..=3599 => format!("{} min", n / 60),
        3600..=86_399 => format!("{} h", n / 3600),
        _ => format!("{} d", n / 86_400),
    };
    if future {
        format!("in {text}")
    } else {
        format!("{text} ago")
    }
}

/// Days since 1970-01-01 to a (year, month, day) of the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The first second (UTC) of a `YYYY-MM-DD` day.
pub fn date_start(date: &str) -> Option<Timestamp> {
    let mut parts = date.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm), the inverse of `civil_from_days`.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let (back_y, back_m, back_d) = civil_from_days(days);
    // 2026-02-31 is not a day.
    ((back_m as i64, back_d as i64) == ((mp + 2) % 12 + 1, d) && back_y >= 1970)
        .then_some(days * 86_400)
}

/// A coloured label with text (never colour alone).
pub fn badge(kind: &str, text: &str) -> Markup {
    html! { span class=(format!("badge {kind}")) { (text) } }
}

/// A yes / no / unknown health mark.
pub fn health(ok: Option<bool>, yes: &str, no: &str, unknown: &str) -> Markup {
    match ok {
        Some(true) => badge("good", yes),
        Some(false) => badge("bad", no),
        None => badge("unknown", unknown),
    }
}

/// A page that says something went wrong, in words, with a way back.
pub fn error_page(
    user: Option<&ConsoleUser>,
    status: StatusCode,
    title: &str,
    detail: &str,
) -> Page {
    let mut page = shell(
        title,
        user,
        None,
        None,
        html! {
            h1 { (title) }
            p { (detail) }
            p { a href="/admin" { "Back to the dashboard" } }
        },
    );
    page.status = status;
    page
}

/// Text that may hold a few safe characters of markup of our own (never user data).
pub fn raw(s: &'static str) -> PreEscaped<&'static str> {
    PreEscaped(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_as_utc_dates() {
        assert_eq!(time(0), "1970-01-01 00:00 UTC");
        assert_eq!(time(1_795_936_200), "2026-11-29 07:10 UTC");
        assert_eq!(time(951_782_400), "2000-02-29 00:00 UTC");
    }

    #[test]
    fn dates_read_back_as_their_first_second() {
        assert_eq!(date_start("1970-01-01"), Some(0));
        assert_eq!(date_start("2000-02-29"), Some(951_782_400));
        assert_eq!(date_start("2026-02-31"), None);
        assert_eq!(date_start("2026-13-01"), None);
        assert_eq!(date_start("yesterday"), None);
        let t = date_start("2026-11-30").unwrap();
        assert_eq!(time(t), "2026-11-30 00:00 UTC");
    }

    #[test]
    fn relative_times_say_which_way() {
        assert_eq!(ago(100, 130), "30 s ago");
        assert_eq!(ago(0, 7200), "2 h ago");
        assert_eq!(ago(400, 100), "in 5 min");
    }

    #[test]
    fn only_known_notices_are_shown() {
        assert!(done_notice(Some("saved")).is_some());
        assert!(done_notice(Some("<script>")).is_none());
        assert!(done_notice(None).is_none());
    }
}
