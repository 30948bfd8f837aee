//! `last_used_at` / `last_used_ip` without a database write per request: uses are noted in
//! memory and written in one batch every `FLUSH_EVERY`, and at shutdown.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use crate::store::{KeyId, KeyUse, Store};
use crate::time::Millis;

pub const FLUSH_EVERY: Duration = Duration::from_secs(30);

#[derive(Default)]
pub struct Usage {
    pending: Mutex<HashMap<KeyId, KeyUse>>,
}

impl Usage {
    pub fn touch(&self, key_id: &KeyId, at: Millis, ip: String) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        match pending.get_mut(key_id) {
            Some(u) => {
                u.at = at;
                u.ip = ip;
            }
            None => {
                pending.insert(key_id.clone(), KeyUse { key_id: key_id.clone(), at, ip });
            }
        }
    }

    /// The latest use noted here and not yet written to the database: when, and from where.
    pub fn last(&self, key_id: &KeyId) -> Option<KeyUse> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).get(key_id).cloned()
    }

    /// When that use was.
    pub fn last_use(&self, key_id: &KeyId) -> Option<Millis> {
        self.last(key_id).map(|u| u.at)
    }

    pub async fn flush(&self, store: &Store) {
        let uses: Vec<KeyUse> = {
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            pending.drain().map(|(_, u)| u).collect()
        };
        if uses.is_empty() {
            return;
        }
        if let Err(e) = store.record_key_uses(&uses).await {
            tracing::warn!(error = %e, keys = uses.len(), "could not record key use; will retry");
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            for u in uses {
                pending.entry(u.key_id.clone()).or_insert(u);
            }
        }
    }
}
