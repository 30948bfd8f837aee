//! Standard Webhooks signatures (standardwebhooks.com): `v1,` + base64 of the HMAC-SHA256 of
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes behind `whsec_`.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2_11::Sha256;

const PREFIX: &str = "whsec_";

/// An endpoint's signing secret, `whsec_` + base64 of 32 random bytes. `Debug` prints
/// nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// A fresh secret from the operating system's generator.
    pub fn generate() -> Secret {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("the operating system's random generator");
        Secret(format!("{PREFIX}{}", STANDARD.encode(bytes)))
    }

    /// A stored secret: `whsec_` and the base64 of 24 to 64 bytes.
    pub fn parse(s: &str) -> Option<Secret> {
        let key = STANDARD.decode(s.strip_prefix(PREFIX)?).ok()?;
        (24..=64).contains(&key.len()).then(|| Secret(s.to_owned()))
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
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.key()).expect("HMAC takes a key of any length");
        mac.update(format!("{msg_id}.{timestamp}.").as_bytes());
        mac.update(body.as_bytes());
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// The `webhook-signature` header: one signature per valid secret, space-separated (during a
/// rotation's overlap, the new secret's and the old one's).
pub fn header(secrets: &[&Secret], msg_id: &str, timestamp: i64, body: &str) -> String {
    secrets.iter().map(|s| s.sign(msg_id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_as_the_standard_webhooks_reference_does() {
        // The reference libraries' own test vector.
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, r#"{"test": 2432232314}"#);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn secrets_are_fresh_well_formed_and_never_printed() {
        let (a, b) = (Secret::generate(), Secret::generate());
        assert_ne!(a, b);
        assert!(Secret::parse(a.expose()).is_some());
        assert!(!format!("{a:?}").contains(&a.expose()[6..]));
        assert!(Secret::parse("whsec_c2hvcnQ=").is_none(), "too short");
        assert!(Secret::parse("nope").is_none());
        let two = header(&[&a, &b], "msg_1", 1, "{}");
        assert_eq!(two.split(' ').count(), 2);
        assert!(two.split(' ').all(|s| s.starts_with("v1,")));
    }
}
