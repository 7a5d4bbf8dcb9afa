//! Field checks shared by the admin API handlers; each error names its field.

use url::Url;

use super::error::ApiError;

pub fn snowflake(field: &str, v: &str) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::invalid(
            field,
            "must be a Discord id (a string of up to 20 digits)",
        ));
    }
    Ok(())
}

pub fn http_url(field: &str, v: &str) -> Result<Url, ApiError> {
    let url = Url::parse(v).map_err(|_| ApiError::invalid(field, "must be an absolute URL"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ApiError::invalid(
            field,
            "must be an http(s) URL with a host",
        ));
    }
    Ok(url)
}

/// `scheme://host[:port]`, normalised.
pub fn origin(field: &str, v: &str) -> Result<String, ApiError> {
    let url = http_url(field, v)?;
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(ApiError::invalid(
            field,
            "must be an origin (scheme://host[:port]) without a path",
        ));
    }
    Ok(url.origin().ascii_serialization())
}

pub fn text(field: &str, v: &str, max_chars: usize) -> Result<(), ApiError> {
    if v.trim().is_empty() {
        return Err(ApiError::invalid(field, "must not be empty"));
    }
    if v.chars().count() > max_chars {
        return Err(ApiError::invalid(
            field,
            format!("must be at most {max_chars} characters"),
        ));
    }
    if v.chars().any(char::is_control) {
        return Err(ApiError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Site user ids and group names: what a website would use as keys.
pub fn key(field: &str, v: &str) -> Result<(), ApiError> {
    text(field, v, 128)
}

pub fn secret(field: &str, v: &str) -> Result<(), ApiError> {
    if v.is_empty() || v.len() > 512 || v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ApiError::invalid(
            field,
            "must be a non-empty token without whitespace",
        ));
    }
    Ok(())
}

pub fn client_id_slug(field: &str, v: &str) -> Result<(), ApiError> {
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !v.starts_with('-');
    if !ok {
        return Err(ApiError::invalid(
            field,
            "must be 1-64 characters of a-z, 0-9 and '-'",
        ));
    }
    Ok(())
}

/// Serde helper: tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub fn double_option<'de, T, D>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}
