//! Plain data that crosses the store boundary. No SQL here, no HTTP either.

use rapport_tools::records::Entity;
use rapport_tools::{Role, Scopes};
use serde_json::{Map, Value};

use crate::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: String,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub active: bool,
    pub created_at: Millis,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStatus {
    Enabled,
    Disabled,
    Revoked,
}

impl KeyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Enabled => "enabled",
            KeyStatus::Disabled => "disabled",
            KeyStatus::Revoked => "revoked",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "enabled" => Some(KeyStatus::Enabled),
            "disabled" => Some(KeyStatus::Disabled),
            "revoked" => Some(KeyStatus::Revoked),
            _ => None,
        }
    }
}

/// An API key's record. The digest is not part of it: it goes in once, on insert.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyRecord {
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub name: String,
    pub preview: String,
    /// The role preset the key was made from, if any.
    pub role: Option<Role>,
    pub scopes: Scopes,
    pub status: KeyStatus,
    pub created_at: Millis,
    pub expires_at: Option<Millis>,
    pub allowed_cidrs: Vec<String>,
    pub last_used_at: Option<Millis>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<Millis>,
    pub rotated_from: Option<String>,
}

/// What authentication needs in one read: the key, its owner and organization.
#[derive(Debug, Clone)]
pub struct KeyAuth {
    pub key: KeyRecord,
    pub user: User,
    pub org: Org,
    /// Found by the secret it had before its last rotation, usable until `grace_until`.
    pub via_grace: bool,
    pub grace_until: Option<Millis>,
}

/// A change to an existing key, made with its audit entry in one transaction.
#[derive(Debug, Clone)]
pub enum KeyChange {
    Rename(String),
    Disable,
    /// Counts against the organization's enabled-key limit, like a create.
    Enable {
        max_active: u32,
    },
    Revoke {
        at: Millis,
    },
    /// A new secret; the old one keeps working until `grace_until` (if any).
    Rotate {
        digest: crate::auth::key::KeyDigest,
        preview: String,
        grace_until: Option<Millis>,
    },
    Delete,
}

/// A use of a key, written in batches rather than on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub key_id: String,
    pub at: Millis,
    pub ip: String,
}

/// Who did something.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    Cli,
    System,
    /// A key acting for its owner; the audit row's `key_id` names the key.
    Key {
        key_id: String,
        user_id: String,
    },
    User {
        user_id: String,
    },
}

impl Actor {
    pub fn kind(&self) -> &'static str {
        match self {
            Actor::Cli => "cli",
            Actor::System => "system",
            Actor::Key { .. } => "key",
            Actor::User { .. } => "user",
        }
    }

    pub fn id(&self) -> Option<&str> {
        match self {
            Actor::Cli | Actor::System => None,
            Actor::Key { user_id, .. } => Some(user_id),
            Actor::User { user_id } => Some(user_id),
        }
    }
}

/// One line of the audit log. It never holds a key or a digest.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub id: String,
    pub org_id: Option<String>,
    pub at: Millis,
    pub actor: Actor,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub key_id: Option<String>,
    pub ip: Option<String>,
    pub details: Value,
}

/// What an audit entry is about: a key, a user or an organization.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Key(&'a str),
    User(&'a str),
    Org(&'a str),
}

impl AuditEntry {
    /// An entry for `action` in organization `org_id`, now, by `actor` from `ip`.
    pub fn new(
        org_id: &str,
        actor: &Actor,
        ip: Option<&str>,
        action: &str,
        target: Target<'_>,
        details: Value,
    ) -> Self {
        let (target_type, target_id, key_id) = match target {
            Target::Key(id) => ("api_key", id, Some(id.to_owned())),
            Target::User(id) => ("user", id, None),
            Target::Org(id) => ("org", id, None),
        };
        AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: Some(org_id.to_owned()),
            at: crate::time::now_ms(),
            actor: actor.clone(),
            action: action.into(),
            target_type: Some(target_type.into()),
            target_id: Some(target_id.to_owned()),
            key_id,
            ip: ip.map(str::to_owned),
            details,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomFieldDef {
    pub id: String,
    pub entity: Entity,
    pub key: String,
    pub label: String,
    pub field_type: String,
    pub options: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContactRow {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub company_id: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub custom: Map<String, Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct CompanyRow {
    pub id: String,
    pub name: String,
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    pub custom: Map<String, Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A record of any entity.
#[derive(Debug, Clone, PartialEq)]
pub enum Row {
    Contact(ContactRow),
    Company(CompanyRow),
}

impl Row {
    pub fn entity(&self) -> Entity {
        match self {
            Row::Contact(_) => Entity::Contact,
            Row::Company(_) => Entity::Company,
        }
    }

    pub fn id(&self) -> &str {
        match self {
            Row::Contact(r) => &r.id,
            Row::Company(r) => &r.id,
        }
    }

    pub fn updated_at(&self) -> Millis {
        match self {
            Row::Contact(r) => r.updated_at,
            Row::Company(r) => r.updated_at,
        }
    }

    /// The lowercased text free-text search runs over. Rust lowercases all of Unicode,
    /// which SQLite's `lower()` does not, so it is computed here and stored.
    pub fn search_text(&self) -> String {
        let parts: Vec<&str> = match self {
            Row::Contact(r) => [&r.first_name, &r.last_name, &r.email, &r.phone, &r.title]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .chain(r.tags.iter().map(String::as_str))
                .collect(),
            Row::Company(r) => std::iter::once(r.name.as_str())
                .chain([&r.domain, &r.industry].into_iter().flatten().map(String::as_str))
                .chain(r.tags.iter().map(String::as_str))
                .collect(),
        };
        parts.join(" ").to_lowercase()
    }
}
