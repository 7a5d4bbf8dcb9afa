//! Who is calling the admin API, and what they may do: the bootstrap operator token (from the
//! environment, generated on first start, or the AWS secret), or a scoped token from the store.

use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use percent_encoding::percent_decode_str;

use crate::app::{state_hash, AppState};
use crate::domain::TokenScope;

use super::error::ApiError;

/// The caller of an admin API request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Operator,
    /// A website backend's token: only its clients' users, link sessions and imports.
    Site {
        clients: Vec<String>,
    },
}

/// Bearer-token check for every `/api/v1` route except the OpenAPI document. Scoped tokens are
/// read from the store on every request, so a revoked token stops working at once on every
/// instance.
pub async fn authenticate(State(app): State<AppState>, mut req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let Some(token) = presented else {
        return ApiError::unauthorized().into_response();
    };
    let principal = if app.admin.as_ref().is_some_and(|a| a.verify(token)) {
        Principal::Operator
    } else if app.admin.is_none() {
        // An entry point without the admin API refuses every request.
        return ApiError::unauthorized().into_response();
    } else {
        match app.store.find_api_token(&state_hash(token)).await {
            Ok(Some(t)) => match t.scope {
                TokenScope::Operator => Principal::Operator,
                TokenScope::Site => Principal::Site { clients: t.clients },
            },
            Ok(None) => return ApiError::unauthorized().into_response(),
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    if let Principal::Site { clients } = &principal {
        if !site_may(req.method(), req.uri().path(), clients) {
            return forbidden().into_response();
        }
    }
    req.extensions_mut().insert(principal);
    next.run(req).await
}

fn forbidden() -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        "forbidden",
        "Not allowed for this token",
        "a site token may only push and read users, import users, create link sessions and unlink, for its own clients",
    )
}

/// What a `site` token may do (paths relative to `/api/v1`): push and read its clients' users,
/// import, create link sessions, unlink.
pub fn site_may(method: &Method, path: &str, clients: &[String]) -> bool {
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let parts: Vec<&str> = segments.iter().map(String::as_str).collect();
    let own = |client: &str| clients.iter().any(|c| c == client);
    match parts.as_slice() {
        ["clients", c, "users"] => method == Method::GET && own(c),
        ["clients", c, "users", "import"] if method == Method::POST => own(c),
        ["clients", c, "users", _] => (method == Method::PUT || method == Method::GET) && own(c),
        ["clients", c, "users", _, "link"] => method == Method::DELETE && own(c),
        ["clients", c, "link-sessions"] => method == Method::POST && own(c),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may(method: Method, path: &str) -> bool {
        site_may(&method, path, &["mine".to_owned()])
    }

    #[test]
    fn a_site_token_does_its_own_clients_users_links_and_imports() {
        assert!(may(Method::PUT, "/clients/mine/users/u1"));
        assert!(may(Method::GET, "/clients/mine/users/u1"));
        assert!(may(Method::GET, "/clients/mine/users"));
        assert!(may(Method::POST, "/clients/mine/users/import"));
        assert!(may(Method::DELETE, "/clients/mine/users/u1/link"));
        assert!(may(Method::POST, "/clients/mine/link-sessions"));
        assert!(may(Method::PUT, "/clients/%6Dine/users/u1"), "decoded");
    }

    #[test]
    fn a_site_token_does_nothing_else() {
        for (method, path) in [
            (Method::PUT, "/clients/other/users/u1"),
            (Method::POST, "/clients/other/link-sessions"),
            (Method::DELETE, "/clients/mine/users/u1"),
            (Method::PATCH, "/clients/mine"),
            (Method::GET, "/clients/mine"),
            (Method::DELETE, "/clients/mine"),
            (Method::GET, "/clients"),
            (Method::POST, "/clients"),
            (Method::POST, "/clients/mine/roles/sync"),
            (Method::PUT, "/clients/mine/roles/1"),
            (Method::POST, "/clients/mine/tasks/verify-groups"),
            (Method::GET, "/clients/mine/runs"),
            (Method::GET, "/clients/mine/audit"),
            (Method::GET, "/tokens"),
            (Method::POST, "/tokens"),
            (Method::DELETE, "/tokens/t1"),
            (Method::POST, "/clients/mine/users/u1"),
            (Method::PUT, "/clients/mine/users/u1/link"),
        ] {
            assert!(!may(method.clone(), path), "{method} {path}");
        }
    }
}
