//! Sealing with XChaCha20-Poly1305 under 32-byte keys, each known by a key id.
//!
//! A sealed value reads `v2.<kid>.` + base64url(nonce ‖ ciphertext ‖ tag), with a random 24-byte
//! nonce per value. `kid` is [`SecretKey::kid`]: derived from the key, so it needs no
//! configuration, and it tells which key of a [`KeyRing`] opens the value (the current one or a
//! previous one during a rotation). The associated data binds a value to its place
//! ("client:<id>:bot_token", or the ids of a user's tokens, see `TokenOwner`) and to its header,
//! so a sealed value copied elsewhere does not open.
//!
//! Values sealed before key ids (`v1.` + base64url(nonce ‖ ciphertext ‖ tag), no kid, the
//! associated data alone) still open: every key of the ring is tried, with the associated data the
//! value had then (`legacy_aad`). `rotate-key` re-seals them as `v2`.

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
const V1_PREFIX: &str = "v1.";
const V2_PREFIX: &str = "v2.";
/// Hex characters of a key id (64 bits of a SHA-256: ids only tell keys apart).
const KID_LEN: usize = 16;

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
        let key = Self::generate();
        match key.write_new_file(path) {
            Ok(()) => Ok(key),
            Err(_) if path.exists() => Self::load(path),
            Err(e) => Err(e),
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

    /// The key id written into values sealed under this key: the first 64 bits of
    /// SHA-256("discord-connector key id" ‖ key), hex. It reveals nothing usable about the key.
    pub fn kid(&self) -> String {
        use sha2::{Digest, Sha256};
        let digest = Sha256::new()
            .chain_update(b"discord-connector key id\0")
            .chain_update(self.bytes())
            .finalize();
        hex::encode(&digest[..KID_LEN / 2])
    }

    /// Writes this key to a new file at `path` (mode 0600 before any key byte lands); fails if
    /// the file exists.
    pub fn write_new_file(&self, path: &Path) -> Result<(), SecretsError> {
        let mut file =
            create_new_private(path).map_err(|e| file_error("cannot create key file", path, &e))?;
        let encoded = Zeroizing::new(hex::encode(self.bytes()) + "\n");
        file.write_all(encoded.as_bytes())
            .and_then(|()| file.sync_all())
            .map_err(|e| file_error("cannot write key file", path, &e))
    }

    /// Reads an existing key file (refused when group or others may access it).
    pub fn load_file(path: &Path) -> Result<Self, SecretsError> {
        Self::load(path)
    }

    /// A second copy of the key (both are zeroized on drop).
    pub fn duplicate(&self) -> Self {
        Self::from_slice(self.bytes())
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

/// The keys a process opens values with: the current one (which seals) and previous ones (which
/// only open, during a rotation).
#[derive(Debug)]
pub struct KeyRing {
    current: SecretKey,
    current_kid: String,
    previous: Vec<(String, SecretKey)>,
}

impl KeyRing {
    pub fn new(current: SecretKey) -> Self {
        Self {
            current_kid: current.kid(),
            current,
            previous: Vec::new(),
        }
    }

    /// Adds a key that opens values but never seals (ignored when it is the current key).
    pub fn with_previous(mut self, key: SecretKey) -> Self {
        let kid = key.kid();
        if kid != self.current_kid && self.previous.iter().all(|(k, _)| *k != kid) {
            self.previous.push((kid, key));
        }
        self
    }

    /// The id of the key that seals.
    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    /// Whether a key of this ring has the id `kid`.
    pub fn has_kid(&self, kid: &str) -> bool {
        kid == self.current_kid || self.previous.iter().any(|(k, _)| k == kid)
    }

    /// Seals under the current key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, SecretsError> {
        seal(&self.current, plaintext, aad)
    }

    /// Opens a `v2` value under the key its kid names, or a `v1` value under any key of the ring
    /// with `legacy_aad` (the associated data it was sealed with, before key ids).
    pub fn open(
        &self,
        sealed: &str,
        aad: &[u8],
        legacy_aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        match parse(sealed)? {
            Sealed::V2 { kid, header, raw } => {
                let key = if kid == self.current_kid {
                    &self.current
                } else {
                    self.previous
                        .iter()
                        .find(|(k, _)| k == kid)
                        .map(|(_, key)| key)
                        .ok_or(SecretsError::Decrypt)?
                };
                decrypt(key, &raw, &v2_aad(header, aad))
            }
            Sealed::V1 { raw } => std::iter::once(&self.current)
                .chain(self.previous.iter().map(|(_, key)| key))
                .find_map(|key| decrypt(key, &raw, legacy_aad).ok())
                .ok_or(SecretsError::Decrypt),
        }
    }
}

/// The key id of a `v2` value; `None` for a `v1` value (sealed before key ids) or garbage.
pub fn sealed_kid(sealed: &str) -> Option<&str> {
    match parse(sealed) {
        Ok(Sealed::V2 { kid, .. }) => Some(kid),
        _ => None,
    }
}

enum Sealed<'a> {
    V1 {
        raw: Vec<u8>,
    },
    V2 {
        kid: &'a str,
        /// `v2.<kid>.`: authenticated with the value.
        header: &'a str,
        raw: Vec<u8>,
    },
}

fn parse(sealed: &str) -> Result<Sealed<'_>, SecretsError> {
    let decode = |b64: &str| {
        URL_SAFE_NO_PAD
            .decode(b64)
            .ok()
            .filter(|raw| raw.len() >= NONCE_LEN + TAG_LEN)
            .ok_or(SecretsError::Decrypt)
    };
    if let Some(rest) = sealed.strip_prefix(V2_PREFIX) {
        let (kid, b64) = rest.split_once('.').ok_or(SecretsError::Decrypt)?;
        if kid.len() != KID_LEN || !kid.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(SecretsError::Decrypt);
        }
        let header = &sealed[..V2_PREFIX.len() + kid.len() + 1];
        return Ok(Sealed::V2 {
            kid,
            header,
            raw: decode(b64)?,
        });
    }
    let b64 = sealed
        .strip_prefix(V1_PREFIX)
        .ok_or(SecretsError::Decrypt)?;
    Ok(Sealed::V1 { raw: decode(b64)? })
}

/// A `v2` value authenticates its header too: the kid cannot be swapped.
fn v2_aad(header: &str, aad: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(header.len() + aad.len());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(aad);
    out
}

fn encrypt(key: &SecretKey, plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, SecretsError> {
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
    Ok(raw)
}

fn decrypt(key: &SecretKey, raw: &[u8], aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
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

/// Encrypts `plaintext` under `key`, bound to `aad`: `v2.<kid>.<payload>`. Fails only for
/// absurdly long input.
pub fn seal(key: &SecretKey, plaintext: &[u8], aad: &[u8]) -> Result<String, SecretsError> {
    let header = format!("{V2_PREFIX}{}.", key.kid());
    let raw = encrypt(key, plaintext, &v2_aad(&header, aad))?;
    Ok(format!("{header}{}", URL_SAFE_NO_PAD.encode(raw)))
}

/// The format before key ids (`v1.<payload>`), for tests of reading old databases: nothing seals
/// `v1` values any more.
pub fn seal_v1(key: &SecretKey, plaintext: &[u8], aad: &[u8]) -> Result<String, SecretsError> {
    let raw = encrypt(key, plaintext, aad)?;
    Ok(format!("{V1_PREFIX}{}", URL_SAFE_NO_PAD.encode(raw)))
}

/// Decrypts a value made by [`seal`] (or a `v1` value) with the same key and `aad`. Any failure
/// (wrong key, wrong `aad`, altered or truncated value, unknown format) is
/// `SecretsError::Decrypt`.
pub fn open(key: &SecretKey, sealed: &str, aad: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
    match parse(sealed)? {
        Sealed::V2 { kid, header, raw } if kid == key.kid() => {
            decrypt(key, &raw, &v2_aad(header, aad))
        }
        Sealed::V2 { .. } => Err(SecretsError::Decrypt),
        Sealed::V1 { raw } => decrypt(key, &raw, aad),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_opens_only_with_its_key_and_aad() {
        let key = SecretKey::generate();
        let sealed = seal(&key, b"hunter2", b"a").unwrap();
        assert!(sealed.starts_with(&format!("v2.{}.", key.kid())));
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
        assert!(matches!(
            open(&key, "v3.AAAA", b"a"),
            Err(SecretsError::Decrypt)
        ));
    }

    #[test]
    fn a_ring_opens_values_of_its_previous_keys_and_old_v1_values() {
        let old = SecretKey::from_env_value(&"11".repeat(32)).unwrap();
        let new = SecretKey::from_env_value(&"22".repeat(32)).unwrap();
        let under_old = seal(&old, b"x", b"a").unwrap();
        let legacy = seal_v1(&old, b"y", b"legacy").unwrap();
        assert_eq!(sealed_kid(&under_old), Some(old.kid().as_str()));
        assert_eq!(sealed_kid(&legacy), None);

        let ring = KeyRing::new(SecretKey::from_env_value(&"22".repeat(32)).unwrap())
            .with_previous(SecretKey::from_env_value(&"11".repeat(32)).unwrap());
        assert_eq!(ring.current_kid(), new.kid());
        assert_eq!(ring.open(&under_old, b"a", b"").unwrap().as_slice(), b"x");
        assert_eq!(
            ring.open(&legacy, b"ignored", b"legacy")
                .unwrap()
                .as_slice(),
            b"y"
        );
        let resealed = ring.seal(b"x", b"a").unwrap();
        assert_eq!(sealed_kid(&resealed), Some(new.kid().as_str()));

        let only_new = KeyRing::new(new);
        assert_eq!(
            only_new.open(&resealed, b"a", b"").unwrap().as_slice(),
            b"x"
        );
        assert!(matches!(
            only_new.open(&under_old, b"a", b""),
            Err(SecretsError::Decrypt)
        ));
        assert!(matches!(
            open(&old, &resealed, b"a"),
            Err(SecretsError::Decrypt)
        ));
    }

    #[test]
    fn the_key_id_is_authenticated() {
        let key = SecretKey::generate();
        let other = SecretKey::generate();
        let sealed = seal(&key, b"x", b"a").unwrap();
        // The payload under another key's id: the ring picks that key, which fails; and the
        // right key with a rewritten header fails too.
        let swapped = sealed.replace(&key.kid(), &other.kid());
        let ring = KeyRing::new(other).with_previous(key);
        assert!(matches!(
            ring.open(&swapped, b"a", b""),
            Err(SecretsError::Decrypt)
        ));
        assert_eq!(ring.open(&sealed, b"a", b"").unwrap().as_slice(), b"x");
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
