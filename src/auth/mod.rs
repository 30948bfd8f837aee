//! Who is calling: API keys (format, digest), the checks a key must pass on every
//! request, and the principal that the rest of the server acts for.

pub mod cache;
pub mod key;
pub mod limits;
pub mod session;
pub mod usage;

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use rapport_tools::Scope;

pub use crate::crm::Principal;
use crate::store::{Actor, AuditEntry, KeyAuth, KeyStatus, Store, StoreError, Target};
use crate::time;
use cache::AuthCache;
use key::{KeyFormatError, PlainKey};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no API key: send it as `x-api-key: KEY`, `Authorization: Bearer KEY` or `?api_key=KEY`")]
    Missing,
    #[error("API keys in the URL are turned off on this server; send the key in the `x-api-key` header")]
    QueryKeysOff,
    #[error("the request carries two different API keys; send one")]
    Conflicting,
    #[error("malformed API key: {0}")]
    Malformed(KeyFormatError),
    #[error("invalid API key: it does not exist or was revoked")]
    Invalid,
    #[error("this API key is disabled; an administrator can enable it again")]
    Disabled,
    #[error("the user who owns this API key is deactivated")]
    OwnerInactive,
    #[error("this API key expired at {0}; create a new one")]
    Expired(String),
    #[error("this API key may not be used from {0}")]
    IpNotAllowed(IpAddr),
    #[error("this API key lacks the `{0}` scope")]
    InsufficientScope(Scope),
    #[error("the database is unavailable; try again shortly")]
    Unavailable(#[source] StoreError),
}

impl AuthError {
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Missing | AuthError::QueryKeysOff => "missing_api_key",
            AuthError::Conflicting => "conflicting_api_keys",
            AuthError::Malformed(_) => "malformed_api_key",
            AuthError::Invalid => "invalid_api_key",
            AuthError::Disabled | AuthError::OwnerInactive => "api_key_disabled",
            AuthError::Expired(_) => "api_key_expired",
            AuthError::IpNotAllowed(_) => "ip_not_allowed",
            AuthError::InsufficientScope(_) => "insufficient_scope",
            AuthError::Unavailable(_) => "unavailable",
        }
    }
}

/// The key candidates a request carried, from headers and (if allowed) the query.
#[derive(Debug, Default)]
pub struct Presented {
    pub keys: Vec<String>,
    pub in_query: bool,
}

impl Presented {
    pub fn add(&mut self, k: &str) {
        let k = k.trim();
        if !k.is_empty() && !self.keys.iter().any(|x| x == k) {
            self.keys.push(k.to_owned());
        }
    }

    /// The one key presented, checked for shape before anything else happens.
    pub fn single(&self, query_keys_allowed: bool) -> Result<PlainKey, AuthError> {
        if self.in_query && !query_keys_allowed {
            return Err(AuthError::QueryKeysOff);
        }
        match self.keys.as_slice() {
            [] => Err(AuthError::Missing),
            [one] => PlainKey::parse(one).map_err(AuthError::Malformed),
            _ => Err(AuthError::Conflicting),
        }
    }
}

/// Checks a well-formed key against the store (or the cache of it). Refusals of an
/// existing key are audited.
pub async fn authenticate(
    store: &Store,
    cache: &AuthCache,
    key: &PlainKey,
    ip: IpAddr,
) -> Result<Principal, AuthError> {
    let digest = key.digest();
    // Read before the lookup: a change committed meanwhile leaves the entry stale.
    let generation = store.auth_generation();
    let found = match generation.and_then(|g| cache.get(&digest, g)) {
        Some(hit) => hit,
        None => {
            let Some(auth) = store.key_for_auth(&digest).await.map_err(AuthError::Unavailable)? else {
                return Err(AuthError::Invalid);
            };
            let auth = Arc::new(auth);
            if let Some(g) = generation {
                cache.put(digest, g, auth.clone());
            }
            auth
        }
    };
    let KeyAuth { key: record, user, org, via_grace, grace_until } = found.as_ref();
    let now = time::now_ms();
    // The secret a key had before rotation works only within its grace period.
    if *via_grace && grace_until.is_none_or(|until| until <= now) {
        return Err(AuthError::Invalid);
    }
    let refusal = match record.status {
        KeyStatus::Revoked => Some(AuthError::Invalid),
        KeyStatus::Disabled => Some(AuthError::Disabled),
        KeyStatus::Enabled if !user.active => Some(AuthError::OwnerInactive),
        KeyStatus::Enabled => match record.expires_at {
            Some(at) if at <= now => Some(AuthError::Expired(time::rfc3339(at))),
            _ if !ip_allowed(&record.allowed_cidrs, ip) => Some(AuthError::IpNotAllowed(ip)),
            _ => None,
        },
    };
    if let Some(err) = refusal {
        let actor = Actor::Key { key_id: record.id.clone(), user_id: user.id.clone() };
        let details = serde_json::json!({ "reason": err.code() });
        let ip = ip.to_string();
        let entry = AuditEntry::new(&org.id, &actor, Some(&ip), "key.refused", Target::Key(&record.id), details);
        if let Err(e) = store.insert_audit(&entry).await {
            tracing::warn!(error = %e, "could not audit a refused key");
        }
        return Err(err);
    }
    Ok(Principal::key(org.clone(), record, user.clone(), Some(ip.to_string())))
}

fn ip_allowed(cidrs: &[String], ip: IpAddr) -> bool {
    if cidrs.is_empty() {
        return true;
    }
    let ip = canonical(ip);
    cidrs.iter().filter_map(|c| c.parse::<IpNet>().ok()).any(|net| net.contains(&ip))
}

/// IPv4 clients reached over an IPv6 socket appear as `::ffff:a.b.c.d`.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// The client's address: the peer, or, when the peer is a trusted proxy, the last address
/// in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(header) = forwarded_for else { return peer };
    let mut hops = header.split(',').rev().map(str::trim);
    let mut last = peer;
    for hop in hops.by_ref() {
        match hop.parse::<IpAddr>().map(canonical) {
            Ok(ip) if is_trusted(&ip) => last = ip,
            Ok(ip) => return ip,
            Err(_) => return last,
        }
    }
    last
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.1.1".parse().unwrap();
        let outsider: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(client_ip(outsider, Some("1.2.3.4"), &trusted), outsider);
        assert_eq!(
            client_ip(proxy, Some("1.2.3.4, 198.51.100.7"), &trusted),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(proxy, Some("1.2.3.4, 10.2.2.2"), &trusted), "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(client_ip(proxy, None, &trusted), proxy);
    }

    #[test]
    fn cidrs_cover_v4_and_v6() {
        let cidrs = vec!["192.0.2.0/24".to_owned(), "2001:db8::/32".to_owned()];
        assert!(ip_allowed(&cidrs, "192.0.2.7".parse().unwrap()));
        assert!(ip_allowed(&cidrs, "::ffff:192.0.2.7".parse().unwrap()));
        assert!(ip_allowed(&cidrs, "2001:db8::1".parse().unwrap()));
        assert!(!ip_allowed(&cidrs, "198.51.100.1".parse().unwrap()));
        assert!(ip_allowed(&[], "198.51.100.1".parse().unwrap()));
    }
}
