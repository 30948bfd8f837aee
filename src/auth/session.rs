//! People in the web console: passwords (argon2id), session and one-time-link secrets,
//! logins throttled across processes. Keys stay the API's only credential; these open the
//! console's pages alone.

use std::fmt;

use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use base64::Engine;

use super::key::KeyDigest;
use crate::store::{LoginCandidate, Org, Store, StoreError, User};
use crate::time::{self, Millis};

/// Failed logins allowed per account and per address within `THROTTLE_WINDOW_MS`.
pub const MAX_FAILURES: u64 = 10;
pub const THROTTLE_WINDOW_MS: Millis = 15 * 60 * 1000;
/// A session unused this long has ended.
pub const IDLE_TIMEOUT_MS: Millis = 12 * 3_600_000;
/// How stale a session's last-seen time may get before a request writes it again.
pub const TOUCH_EVERY_MS: Millis = 60_000;
pub const MIN_PASSWORD: usize = 12;
pub const MAX_PASSWORD: usize = 1024;

/// A random bearer secret: a session cookie's value or a one-time link's token. Stored
/// only as its digest; `Debug` prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn generate() -> Self {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf).expect("the OS random source failed");
        Secret(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf))
    }

    /// A value from a cookie or a link, if it has the shape of one this server made.
    pub fn parse(s: &str) -> Option<Self> {
        let ok = s.len() == 43 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        ok.then(|| Secret(s.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(&self.0)
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// A password as typed; `Debug` prints nothing of it.
pub struct Password(String);

impl Password {
    /// At least 12 characters: long beats clever.
    pub fn parse(s: &str) -> Result<Password, String> {
        let n = s.chars().count();
        if n < MIN_PASSWORD {
            return Err(format!(
                "a password has at least {MIN_PASSWORD} characters; a few unrelated words make a good one"
            ));
        }
        if n > MAX_PASSWORD {
            return Err(format!("a password has at most {MAX_PASSWORD} characters"));
        }
        Ok(Password(s.to_owned()))
    }

    /// For a login attempt, which is checked against the hash whatever its length.
    pub fn attempt(s: &str) -> Password {
        Password(s.chars().take(MAX_PASSWORD).collect())
    }

    /// The argon2id hash (PHC string). Hashing takes tens of milliseconds of CPU, so it
    /// runs off the async runtime's workers.
    pub async fn hash(self) -> String {
        tokio::task::spawn_blocking(move || {
            Argon2::default().hash_password(self.0.as_bytes()).expect("argon2 hashes any password").to_string()
        })
        .await
        .expect("hashing does not panic")
    }

    /// Whether it matches `hash`. Without a hash (no such user, no password set) a dummy
    /// is checked instead, so the answer takes as long either way.
    pub async fn verify(self, hash: Option<String>) -> bool {
        tokio::task::spawn_blocking(move || {
            let known = hash.is_some();
            let hash = hash.unwrap_or_else(|| DUMMY_HASH.to_owned());
            let Ok(parsed) = PasswordHash::new(&hash) else { return false };
            Argon2::default().verify_password(self.0.as_bytes(), &parsed).is_ok() && known
        })
        .await
        .expect("verifying does not panic")
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(…)")
    }
}

/// The hash of a password nobody has, with the default parameters.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$oUs1sPJV1a9V+7sU+KaKbQ$9BeNmNIiKgFGg8QkB1l18f3Oho3U5xhFBF8IJ+Su6cc";

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("that email and password do not match an account")]
    Mismatch,
    #[error("{email} belongs to more than one organization; name the one to log in to")]
    WhichOrg { email: String },
    #[error("too many failed logins; try again in {} minutes", retry_after_secs.div_ceil(60))]
    Throttled { retry_after_secs: u64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What failed logins are counted against: the account, the address, and the account from
/// that address.
fn subjects(email: &str, ip: &str) -> [String; 3] {
    [format!("account:{email}"), format!("ip:{ip}"), format!("account:{email} from:{ip}")]
}

/// Checks an email and password, within the failure limits shared by every process. The
/// attempt is noted before the password is checked, so a burst of guesses sent at once is
/// counted in full; a success takes its note back. An address over its limit is held back;
/// an account over its limit holds back only the addresses that have failed for it, so a
/// stranger's guesses cannot lock its owner out (SPEC 8).
pub async fn login(
    store: &Store,
    email: &str,
    password: &str,
    org_name: Option<&str>,
    ip: &str,
) -> Result<(User, Org), LoginError> {
    let email = email.trim().to_lowercase();
    let subjects = subjects(&email, ip);
    let now = time::now_ms();
    let attempt = uuid::Uuid::now_v7().to_string();
    let counts = store.login_attempt(&attempt, &subjects, now, now - THROTTLE_WINDOW_MS).await?;
    let [(account, ..), (address, address_oldest, _), (pair, _, pair_newest)] = counts[..] else {
        unreachable!("one count per subject")
    };
    // `pair` counts this attempt too: more than one means this address failed before, and
    // it is held back until that failure is out of the window.
    let free_at = if address > MAX_FAILURES {
        Some(address_oldest.unwrap_or(now) + THROTTLE_WINDOW_MS)
    } else if account > MAX_FAILURES && pair > 1 {
        Some(pair_newest.unwrap_or(now) + THROTTLE_WINDOW_MS)
    } else {
        None
    };
    if let Some(free_at) = free_at {
        store.forget_login_attempt(&attempt).await?;
        return Err(LoginError::Throttled { retry_after_secs: ((free_at - now).max(1000) as u64).div_ceil(1000) });
    }
    let mut candidates: Vec<LoginCandidate> = store.login_candidates(&email).await?;
    if let Some(name) = org_name.map(str::trim).filter(|n| !n.is_empty()) {
        candidates.retain(|c| c.org.name == name);
    }
    candidates.retain(|c| c.user.active && c.password_hash.is_some());
    // The password decides between organizations; which ones an email belongs to is told
    // only to someone who knows it.
    let mut matched = Vec::new();
    if candidates.is_empty() {
        Password::attempt(password).verify(None).await;
    }
    for c in candidates {
        if Password::attempt(password).verify(c.password_hash.clone()).await {
            matched.push((c.user, c.org));
        }
    }
    match matched.len() {
        0 => Err(LoginError::Mismatch),
        1 => {
            store.login_succeeded(&attempt, &[&subjects[0], &subjects[2]]).await?;
            Ok(matched.remove(0))
        }
        _ => {
            store.login_succeeded(&attempt, &[&subjects[0], &subjects[2]]).await?;
            Err(LoginError::WhichOrg { email })
        }
    }
}

/// A new session for `user`: the cookie's secret and the CSRF token of its forms.
pub async fn start(store: &Store, user: &User, ip: &str) -> Result<(Secret, String), StoreError> {
    let secret = Secret::generate();
    let csrf = Secret::generate().expose().to_owned();
    let mut tx = store.begin().await?;
    tx.insert_session(secret.digest().as_str(), &user.id, &csrf, time::now_ms(), Some(ip)).await?;
    tx.commit().await?;
    Ok((secret, csrf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_parse_and_redact() {
        let s = Secret::generate();
        assert_eq!(Secret::parse(s.expose()), Some(s.clone()));
        assert_eq!(format!("{s:?}"), "Secret(…)");
        assert!(Secret::parse("short").is_none());
        assert!(Secret::parse(&"a".repeat(42).replace('a', "é")).is_none());
    }

    #[tokio::test]
    async fn passwords_hash_and_verify() {
        let hash = Password::parse("correct horse battery").unwrap().hash().await;
        assert!(hash.starts_with("$argon2id$"));
        assert!(Password::attempt("correct horse battery").verify(Some(hash.clone())).await);
        assert!(!Password::attempt("wrong horse battery").verify(Some(hash)).await);
        assert!(!Password::attempt("anything").verify(None).await);
        assert!(Password::parse("short").is_err());
        assert_eq!(format!("{:?}", Password::attempt("secret")), "Password(…)");
    }
}
