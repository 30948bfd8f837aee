//! Secrets as types, for every layer that holds one (the store keeps them, the domain makes
//! and uses them): their `Debug` prints nothing of them.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

/// What a webhook secret starts with.
const PREFIX: &str = "whsec_";

/// Hex SHA-256 of a whole key: what the database stores. `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct KeyDigest(String);

impl KeyDigest {
    pub fn of(key: &str) -> Self {
        let hash = Sha256::digest(key.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in hash {
            hex.push_str(&format!("{b:02x}"));
        }
        KeyDigest(hex)
    }

    /// For the store layer only.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyDigest(…)")
    }
}

/// An endpoint's signing secret, `whsec_` + base64 of 32 random bytes. `Debug` prints
/// nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(String);

impl fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookSecret(<redacted>)")
    }
}

impl WebhookSecret {
    /// A fresh secret from the operating system's generator.
    pub fn generate() -> WebhookSecret {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random generator");
        WebhookSecret(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A stored secret: `whsec_` and the base64 of 24 to 64 bytes.
    pub fn parse(s: &str) -> Option<WebhookSecret> {
        let key = STANDARD.decode(s.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then(|| WebhookSecret(s.to_owned()))
    }

    /// The secret as the user copies it, shown once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    fn key(&self) -> Vec<u8> {
        STANDARD.decode(&self.0[PREFIX.len()..]).unwrap_or_default()
    }

    /// The `v1,` signature of one delivery attempt.
    pub fn sign(&self, msg_id: &str, timestamp: i64, body: &str) -> String {
        let mut mac =
            <Hmac<sha2_11::Sha256> as KeyInit>::new_from_slice(&self.key()).expect("HMAC takes a key of any length");
        mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}
