//! Field checks shared by the admin API handlers; each error names its field.

use std::collections::BTreeMap;

use url::Url;

use crate::domain::client::DiscordUrlPolicy;

use super::error::ApiError;

/// A Discord id as Discord writes it: the decimal form of a non-zero u64, without leading zeros.
/// Anything else (`0123`, `+123`, ids above 2^64−1) would be a second spelling of an account.
pub fn snowflake(field: &str, v: &str) -> Result<(), ApiError> {
    let canonical = !v.is_empty()
        && v.bytes().all(|b| b.is_ascii_digit())
        && !v.starts_with('0')
        && v.parse::<u64>().is_ok();
    if !canonical {
        return Err(ApiError::invalid(
            field,
            "must be a Discord id (a non-zero 64-bit number in decimal, without leading zeros)",
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

/// A client's `webhook_url`: `https://` anywhere, plain `http://` only to this machine
/// (`localhost`, `127.0.0.0/8`, `[::1]`: a receiver beside the connector, the demo, tests) — a
/// webhook carries members' Discord ids, which must not cross a network in clear text. No user
/// info (it would be a credential in the configuration) and no fragment.
pub fn webhook_url(field: &str, v: &str) -> Result<String, ApiError> {
    if v.len() > 2_048 {
        return Err(ApiError::invalid(field, "must be at most 2048 bytes"));
    }
    let url = http_url(field, v)?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ApiError::invalid(field, "must not contain user info"));
    }
    if url.fragment().is_some() {
        return Err(ApiError::invalid(field, "must not contain a fragment"));
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if url.scheme() != "https" && !loopback {
        return Err(ApiError::invalid(
            field,
            "must be an https URL (http only to localhost)",
        ));
    }
    Ok(v.to_owned())
}

/// A `webhook_secret` sent by the operator: `whsec_` and base64 of 24-64 bytes.
pub fn webhook_secret(field: &str, v: &str) -> Result<(), ApiError> {
    if crate::domain::webhook::webhook_secret_key(v).is_none() {
        return Err(ApiError::invalid(
            field,
            "must be `whsec_` followed by the base64 of 24-64 random bytes",
        ));
    }
    Ok(())
}

/// A client's `discord_api_base` / `discord_authorize_url`: `discord` is the only value allowed
/// without the opt-in (a trailing `/` is tolerated); the answer is the value to store.
pub fn discord_url(
    field: &str,
    v: &str,
    discord: &str,
    policy: DiscordUrlPolicy,
) -> Result<String, ApiError> {
    http_url(field, v)?;
    if policy == DiscordUrlPolicy::AllowCustom {
        return Ok(v.to_owned());
    }
    // Compared as written: no other host, scheme, port, user info, path or query gets through.
    if v.trim_end_matches('/') == discord {
        return Ok(discord.to_owned());
    }
    Err(ApiError::invalid(
        field,
        format!(
            "must be {discord}: other URLs need the deployment's opt-in \
             (CONNECTOR_ALLOW_CUSTOM_DISCORD_URLS=true, or the AllowCustomDiscordUrls parameter on AWS)"
        ),
    ))
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

/// Most groups one site user may carry, and most groups one role may be mapped from. With group
/// names of at most 128 characters (512 bytes of UTF-8) either list stays under 256 KiB, so a
/// user or a role always fits one DynamoDB item (400 KB) with room for the rest.
pub const MAX_GROUPS: usize = 500;
/// Most attributes (nickname template values) per site user, each value at most
/// [`MAX_ATTRIBUTE_CHARS`]: at most ~77 KiB beside the groups.
pub const MAX_ATTRIBUTES: usize = 50;
pub const MAX_ATTRIBUTE_CHARS: usize = 256;

/// A list of site groups at `field` (`groups`, `[3].groups`): at most [`MAX_GROUPS`] keys.
pub fn groups(field: &str, groups: &[String]) -> Result<(), ApiError> {
    if groups.len() > MAX_GROUPS {
        return Err(ApiError::invalid(
            field,
            format!("at most {MAX_GROUPS} groups"),
        ));
    }
    for (i, g) in groups.iter().enumerate() {
        key(&format!("{field}[{i}]"), g)?;
    }
    Ok(())
}

/// A site user's attributes at `field` (`attributes`, `[3].attributes`).
pub fn attributes(field: &str, attributes: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if attributes.len() > MAX_ATTRIBUTES {
        return Err(ApiError::invalid(
            field,
            format!("at most {MAX_ATTRIBUTES} attributes"),
        ));
    }
    for (k, v) in attributes {
        key(field, k)?;
        let at = format!("{field}.{k}");
        if v.chars().count() > MAX_ATTRIBUTE_CHARS {
            return Err(ApiError::invalid(
                at,
                format!("must be at most {MAX_ATTRIBUTE_CHARS} characters"),
            ));
        }
        if v.chars().any(char::is_control) {
            return Err(ApiError::invalid(at, "must not contain control characters"));
        }
    }
    Ok(())
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

/// An Ed25519 public key as the developer portal shows it: 32 bytes in hex. Returned lowercase,
/// so one key has one spelling.
pub fn public_key(field: &str, v: &str) -> Result<String, ApiError> {
    let v = v.trim();
    if v.len() != 64 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::invalid(
            field,
            "must be the application's public key: 64 hexadecimal digits (32 bytes)",
        ));
    }
    let key = v.to_ascii_lowercase();
    if crate::http::events::verifying_key(&key).is_none() {
        return Err(ApiError::invalid(
            field,
            "is not a valid Ed25519 public key",
        ));
    }
    Ok(key)
}
