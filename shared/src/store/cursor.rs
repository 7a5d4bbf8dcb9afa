use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::StoreError;

/// An opaque pagination cursor. Adapters put whatever they need in it (a last key, an
/// `ExclusiveStartKey`); callers only pass it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    /// Wraps adapter-specific position data.
    pub fn encode(raw: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(raw.as_bytes()))
    }

    /// The adapter-specific position data.
    pub fn decode(&self) -> Result<String, StoreError> {
        URL_SAFE_NO_PAD
            .decode(self.0.as_bytes())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or(StoreError::InvalidCursor)
    }

    /// Parses a cursor received from an API client.
    pub fn parse(token: &str) -> Result<Self, StoreError> {
        let c = Self(token.to_owned());
        c.decode()?;
        Ok(c)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}
