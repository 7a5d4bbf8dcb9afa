//! Sealing with XChaCha20-Poly1305 under one 32-byte key.
//!
//! A sealed value reads `v1.` + base64url(nonce ‖ ciphertext ‖ tag), with a random 24-byte nonce
//! per value. The associated data (`aad`) binds a value to its place ("client:<id>:bot_token"), so
//! a sealed value copied elsewhere does not open.

use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use secrecy::zeroize::Zeroizing;
use secrecy::{ExposeSecret, SecretBox};

use super::SecretsError;

const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const PREFIX: &str = "v1.";

/// The key for secrets at rest. Zeroized on drop; `Debug` prints `[redacted]`.
pub struct SecretKey(SecretBox<[u8; KEY_LEN]>);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey([redacted])")
    }
}

impl SecretKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(SecretBox::init_with_mut(|bytes: &mut [u8; KEY_LEN]| {
            OsRng.fill_bytes(bytes)
        }))
    }

    /// Parses `CONNECTOR_SECRET_KEY`: 64 hex characters, or base64 (standard or URL-safe,
    /// padded or not) of 32 bytes. Surrounding whitespace is ignored. The error never repeats the
    /// value.
    pub fn from_env_value(value: &str) -> Result<Self, SecretsError> {
        let value = value.trim();
        let bytes = if value.len() == 2 * KEY_LEN && value.bytes().all(|b| b.is_ascii_hexdigit()) {
            hex::decode(value).ok()
        } else {
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|engine| engine.decode(value).ok())
        }
        .map(Zeroizing::new);
        match bytes {
            Some(bytes) if bytes.len() == KEY_LEN => Ok(Self::from_slice(&bytes)),
            Some(bytes) => Err(SecretsError::InvalidKey(format!(
                "expected 32 bytes (64 hex characters or base64 of 32 bytes), \
                 the value decodes to {} bytes",
                bytes.len()
            ))),
            None => Err(SecretsError::InvalidKey(format!(
                "expected 64 hex characters or base64 of 32 bytes, got {} characters that are \
                 neither; generate one with `openssl rand -hex 32`",
                value.chars().count()
            ))),
        }
    }

    /// Reads the key file at `path`, or creates it with a new random key (mode 0600, written
    /// only after the permissions are set). On Unix, an existing key file that group or others
    /// may read or write is refused: the key could have leaked, and fixing it takes one `chmod`.
    pub fn load_or_create(path: &Path) -> Result<Self, SecretsError> {
        match create_new_private(path) {
            Ok(mut file) => {
                let key = Self::generate();
                let encoded = Zeroizing::new(hex::encode(key.bytes()) + "\n");
                file.write_all(encoded.as_bytes())
                    .and_then(|()| file.sync_all())
                    .map_err(|e| file_error("cannot write key file", path, &e))?;
                Ok(key)
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Self::load(path),
            Err(e) => Err(file_error("cannot create key file", path, &e)),
        }
    }

    fn load(path: &Path) -> Result<Self, SecretsError> {
        check_private(path)?;
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| file_error("cannot read key file", path, &e))?,
        );
        Self::from_env_value(&text).map_err(|e| match e {
            SecretsError::InvalidKey(why) => {
                SecretsError::InvalidKey(format!("key file {}: {why}", path.display()))
            }
            other => other,
        })
    }

    fn from_slice(bytes: &[u8]) -> Self {
        Self(SecretBox::init_with_mut(|key: &mut [u8; KEY_LEN]| {
            key.copy_from_slice(bytes)
        }))
    }

    fn bytes(&self) -> &[u8; KEY_LEN] {
        self.0.expose_secret()
    }

    fn aead(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.bytes().into())
    }
}

fn file_error(what: &str, path: &Path, e: &std::io::Error) -> SecretsError {
    SecretsError::InvalidKey(format!("{what} {}: {e}", path.display()))
}

#[cfg(unix)]
fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    // The umask can only remove bits from 0600, but say it explicitly before any key byte lands.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(not(unix))]
fn create_new_private(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

#[cfg(unix)]
fn check_private(path: &Path) -> Result<(), SecretsError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path)
        .map_err(|e| file_error("cannot read key file", path, &e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(SecretsError::InvalidKey(format!(
            "key file {} is accessible by group or others (mode {:o}); run `chmod 600 {}`",
            path.display(),
            mode & 0o777,
            path.display()
        )));
    }
    Ok(())
}

#[cfg(not(unix))]
fn check_private(_path: &Path) -> Result<(), SecretsError> {
    Ok(())
}

/// Encrypts `plaintext` bound to `aad`. Fails only for absurdly long input.
pub fn seal(key: &SecretKey, plaintext: &[u8], aad: &[u8]) -> Result<String, SecretsError> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ciphertext = key
        .aead()
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| SecretsError::Backend("encryption failed".to_owned()))?;
    let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    raw.extend_from_slice(&nonce);
    raw.extend_from_slice(&ciphertext);
    Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
}

/// Decrypts a value made by [`seal`] with the same key and `aad`. Any failure (wrong key, wrong
/// `aad`, altered or truncated value, unknown format) is `SecretsError::Decrypt`.
pub fn open(key: &SecretKey, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    let raw = sealed
        .strip_prefix(PREFIX)
        .and_then(|b64| URL_SAFE_NO_PAD.decode(b64).ok())
        .filter(|raw| raw.len() >= NONCE_LEN + TAG_LEN)
        .ok_or(SecretsError::Decrypt)?;
    let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
    key.aead()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map(Zeroizing::new)
        .map_err(|_| SecretsError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_and_aad() {
        let key = SecretKey::generate();
        let sealed = seal(&key, b"hunter2", b"a").unwrap();
        assert!(sealed.starts_with("v1."));
        assert_eq!(open(&key, &sealed, b"a").unwrap().as_slice(), b"hunter2");
        assert!(matches!(
            open(&key, &sealed, b"b"),
            Err(SecretsError::Decrypt)
        ));
        let other = SecretKey::generate();
        assert!(matches!(
            open(&other, &sealed, b"a"),
            Err(SecretsError::Decrypt)
        ));
        assert!(matches!(
            open(&key, "v1.", b"a"),
            Err(SecretsError::Decrypt)
        ));
        assert!(matches!(
            open(&key, "v2.AAAA", b"a"),
            Err(SecretsError::Decrypt)
        ));
    }

    #[test]
    fn the_same_plaintext_seals_differently_each_time() {
        let key = SecretKey::generate();
        assert_ne!(
            seal(&key, b"x", b"").unwrap(),
            seal(&key, b"x", b"").unwrap()
        );
    }

    #[test]
    fn hex_and_base64_keys_are_the_same_key() {
        let hex_key = SecretKey::from_env_value(&"ab".repeat(32)).unwrap();
        let b64_key = SecretKey::from_env_value(&STANDARD.encode([0xab; 32])).unwrap();
        let sealed = seal(&hex_key, b"x", b"").unwrap();
        assert_eq!(open(&b64_key, &sealed, b"").unwrap().as_slice(), b"x");
    }
}
