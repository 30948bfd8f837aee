//! API keys: `rpk_` + 58 random base62 characters + a 6-character base62 CRC32 of them.
//! Only the SHA-256 digest of a key is stored; the plaintext exists in memory just long
//! enough to be shown or checked.

use std::fmt;

pub use crate::secrets::KeyDigest;

pub const PREFIX: &str = "rpk_";
const RANDOM_LEN: usize = 58;
const CHECK_LEN: usize = 6;
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_LEN + CHECK_LEN;
pub const PREVIEW_LEN: usize = 12;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("an API key starts with `rpk_`")]
    Prefix,
    #[error("an API key is 68 characters long")]
    Length,
    #[error("an API key holds only the characters 0-9, A-Z and a-z after `rpk_`")]
    Alphabet,
    #[error("the API key's checksum does not match: it was mistyped or truncated")]
    Checksum,
}

/// A plaintext key. `Debug` and `Display` show only the preview.
#[derive(Clone, PartialEq, Eq)]
pub struct PlainKey(String);

impl PlainKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Self {
        let mut random = String::with_capacity(RANDOM_LEN);
        let mut buf = [0u8; 64];
        while random.len() < RANDOM_LEN {
            getrandom::fill(&mut buf).expect("the OS random source failed");
            // 248 = 4 * 62: rejecting larger bytes keeps every character equally likely.
            for b in buf.iter().filter(|b| **b < 248) {
                if random.len() == RANDOM_LEN {
                    break;
                }
                random.push(BASE62[(*b % 62) as usize] as char);
            }
        }
        let check = checksum(&random);
        PlainKey(format!("{PREFIX}{random}{check}"))
    }

    /// Checks the shape and checksum without touching the database.
    pub fn parse(s: &str) -> Result<Self, KeyFormatError> {
        let rest = s.strip_prefix(PREFIX).ok_or(KeyFormatError::Prefix)?;
        if s.len() != KEY_LEN {
            return Err(KeyFormatError::Length);
        }
        if !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::Alphabet);
        }
        let (random, check) = rest.split_at(RANDOM_LEN);
        if checksum(random) != check {
            return Err(KeyFormatError::Checksum);
        }
        Ok(PlainKey(s.to_owned()))
    }

    pub fn digest(&self) -> KeyDigest {
        KeyDigest::of(&self.0)
    }

    /// `rpk_` and the next 8 characters: enough to recognise a key, useless to an attacker.
    pub fn preview(&self) -> String {
        self.0[..PREVIEW_LEN].to_owned()
    }

    /// The secret itself, for the one moment it is shown.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlainKey({}…)", self.preview())
    }
}

impl fmt::Display for PlainKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}…", self.preview())
    }
}

/// CRC32 (IEEE) of the random part, in base62, most significant digit first, padded to 6.
fn checksum(random: &str) -> String {
    let mut n = crc32fast::hash(random.as_bytes()) as u64;
    let mut out = [b'0'; CHECK_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(out.to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse() {
        for _ in 0..100 {
            let k = PlainKey::generate();
            assert_eq!(k.expose().len(), 68);
            assert_eq!(PlainKey::parse(k.expose()).unwrap(), k);
        }
    }

    #[test]
    fn checksum_is_crc32_in_base62() {
        // crc32("123456789") = 0xCBF43926 = 3421780262; in base62 that is "3jZRME", left-padded.
        assert_eq!(checksum("123456789"), "3jZRME");
        assert_eq!(checksum(""), "000000");
    }

    #[test]
    fn refuses_bad_shapes() {
        let k = PlainKey::generate();
        let s = k.expose();
        assert_eq!(PlainKey::parse(&s.replacen("rpk_", "sk_", 1)), Err(KeyFormatError::Prefix));
        assert_eq!(PlainKey::parse(&s[..67]), Err(KeyFormatError::Length));
        let mut flipped = s.to_owned().into_bytes();
        flipped[10] = if flipped[10] == b'a' { b'b' } else { b'a' };
        assert_eq!(PlainKey::parse(std::str::from_utf8(&flipped).unwrap()), Err(KeyFormatError::Checksum));
        let bad = format!("{}-{}", &s[..20], &s[21..]);
        assert_eq!(PlainKey::parse(&bad), Err(KeyFormatError::Alphabet));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let k = PlainKey::generate();
        assert!(!format!("{k:?}").contains(&k.expose()[12..]));
        assert!(!format!("{:?}", k.digest()).contains(k.digest().as_str()));
    }
}
