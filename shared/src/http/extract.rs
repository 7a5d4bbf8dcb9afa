//! Request extractors whose failures name the offending field.

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// JSON body whose deserialization errors become a 422 naming the field (`groups[2]`, `name`).
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json") || v.contains("+json"));
        if !is_json {
            let mut e = ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Expected JSON",
                "send Content-Type: application/json",
            );
            e.0.field = Some("content-type".into());
            return Err(e);
        }
        let bytes = axum::body::Bytes::from_request(req, state)
            .await
            .map_err(|e| {
                // Keeps the status (413 for a body over the limit, 400 for a broken stream).
                let slug = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    "body-too-large"
                } else {
                    "bad-request"
                };
                let mut problem = ApiError::new(e.status(), slug, "Unreadable body", e.body_text());
                problem.0.field = Some("body".into());
                problem
            })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        serde_path_to_error::deserialize(de)
            .map(ApiJson)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if inner.is_syntax() || inner.is_eof() {
                    return ApiError::bad_request(format!("malformed JSON: {inner}"));
                }
                let message = inner.to_string();
                // serde reports a missing field at its parent: name the field itself.
                let missing = message
                    .strip_prefix("missing field `")
                    .and_then(|rest| rest.split('`').next());
                let field = match (missing, path.as_str()) {
                    (Some(f), ".") => f.to_owned(),
                    (Some(f), parent) => format!("{parent}.{f}"),
                    (None, ".") => "body".to_owned(),
                    (None, p) => p.to_owned(),
                };
                ApiError::invalid(field, message)
            })
    }
}

/// Path parameters whose errors (invalid UTF-8 once percent-decoded, a wrong type) become a 400
/// problem naming the parameter, instead of axum's plain-text answer.
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        use axum::extract::path::ErrorKind;
        use axum::extract::rejection::PathRejection;
        let rejection = match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(v)) => return Ok(ApiPath(v)),
            Err(rejection) => rejection,
        };
        let status = rejection.status();
        let field = match &rejection {
            PathRejection::FailedToDeserializePathParams(e) => match e.kind() {
                ErrorKind::InvalidUtf8InPathParam { key }
                | ErrorKind::ParseErrorAtKey { key, .. }
                | ErrorKind::DeserializeError { key, .. } => Some(key.clone()),
                _ => None,
            },
            _ => None,
        };
        let mut e = if status.is_client_error() {
            ApiError::new(
                status,
                "invalid-path",
                "Invalid path parameter",
                rejection.body_text(),
            )
        } else {
            // A handler that asks for the wrong parameters: our bug, not the caller's.
            tracing::error!(error = %rejection.body_text(), "path extraction failed");
            ApiError::new(status, "internal", "Internal error", "path parameters")
        };
        e.0.field = field;
        Err(e)
    }
}

/// Query string whose errors become a 422 naming the parameter.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| ApiError::invalid(e.path().to_string(), e.into_inner().to_string()))
    }
}

fn form_urlencoded_parse(q: &str) -> url::form_urlencoded::Parse<'_> {
    url::form_urlencoded::parse(q.as_bytes())
}
