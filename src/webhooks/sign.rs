//! Standard Webhooks signatures (standardwebhooks.com): `v1,` + base64 of the HMAC-SHA256 of
//! `{webhook-id}.{webhook-timestamp}.{body}`, keyed with the bytes behind `whsec_`.

pub use crate::secrets::WebhookSecret as Secret;

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
