//! Reading the audit log: newest first, paged by an opaque cursor.

use serde::Serialize;

use super::KeyError;
use crate::crm::Principal;
use crate::store::{AuditEntry, AuditFilter, KeyId, Store, UserId};
use crate::time;

pub const MAX_LIMIT: u32 = 500;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct AuditView {
    pub id: String,
    pub at: String,
    /// `cli`, `key`, `user` or `system`.
    pub actor: &'static str,
    /// The user behind the actor, when there is one.
    pub actor_id: Option<UserId>,
    /// The key that acted, when a key did.
    pub actor_key_id: Option<KeyId>,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    /// The key the entry is about, when it is about one.
    pub key_id: Option<KeyId>,
    pub ip: Option<String>,
    pub details: serde_json::Value,
}

impl From<&AuditEntry> for AuditView {
    fn from(e: &AuditEntry) -> Self {
        AuditView {
            id: e.id.clone(),
            at: time::rfc3339(e.at),
            actor: e.actor.kind(),
            actor_id: e.actor.id().cloned(),
            actor_key_id: e.actor.key_id().cloned(),
            action: e.action.clone(),
            target_type: e.target_type.clone(),
            target_id: e.target_id.clone(),
            key_id: e.key_id.clone(),
            ip: e.ip.clone(),
            details: e.details.clone(),
        }
    }
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuditPage {
    pub items: Vec<AuditView>,
    pub next_cursor: Option<String>,
}

pub async fn list(
    store: &Store,
    p: &Principal,
    filter: &AuditFilter,
    limit: u32,
    cursor: Option<&str>,
) -> Result<AuditPage, KeyError> {
    super::check(store, p, rapport_tools::Scope::AuditRead).await?;
    let org = &p.org;
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(KeyError::Invalid(format!("limit is 1 to {MAX_LIMIT}")));
    }
    let before = match cursor.filter(|c| !c.is_empty()) {
        None => None,
        Some(c) => Some(
            crate::crm::cursor::decode_at_id(c)
                .ok_or_else(|| KeyError::Invalid("cursor is not one this server issued".into()))?,
        ),
    };
    let mut entries = store.list_audit(&org.id, filter, before, limit + 1).await?;
    let next_cursor = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|e| crate::crm::cursor::encode_at_id(e.at, &e.id))
    } else {
        None
    };
    Ok(AuditPage { items: entries.iter().map(AuditView::from).collect(), next_cursor })
}
