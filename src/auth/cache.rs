//! Key lookups cached in memory, each entry tagged with the store's auth generation at
//! the time it was read: any key or user change anywhere makes every entry stale, so a
//! disabled, revoked or demoted key is refused on its next request. Unknown keys are never
//! cached.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::key::KeyDigest;
use crate::store::KeyAuth;

/// Entries kept at most; past it the cache starts over (a burst of distinct keys is rare).
const CAPACITY: usize = 10_000;

#[derive(Default)]
pub struct AuthCache {
    entries: Mutex<HashMap<KeyDigest, (u64, Arc<KeyAuth>)>>,
}

impl AuthCache {
    pub fn get(&self, digest: &KeyDigest, generation: u64) -> Option<Arc<KeyAuth>> {
        let entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        match entries.get(digest) {
            Some((g, auth)) if *g == generation => Some(auth.clone()),
            _ => None,
        }
    }

    pub fn put(&self, digest: KeyDigest, generation: u64, auth: Arc<KeyAuth>) {
        let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        if entries.len() >= CAPACITY {
            entries.clear();
        }
        entries.insert(digest, (generation, auth));
    }
}
