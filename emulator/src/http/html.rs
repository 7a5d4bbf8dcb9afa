//! Just enough HTML for the consent page, error pages and the state dashboard.

use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `head_extra` is trusted markup (e.g. a refresh meta tag); `body` must already be escaped.
pub(crate) fn page(title: &str, head_extra: &str, body: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title>{head_extra}\
         <style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #ccc;padding:.2em .6em;text-align:left}}</style>\
         </head><body>{body}</body></html>",
        escape(title)
    ))
}

pub(crate) fn error_page(message: &str) -> Response {
    let body = format!("<h1>Invalid OAuth2 request</h1><p>{}</p>", escape(message));
    (
        StatusCode::BAD_REQUEST,
        page("Discord emulator: error", "", &body),
    )
        .into_response()
}
