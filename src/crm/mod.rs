//! The CRM domain: parsing tool input into valid values, the rules records obey, and the
//! answers tools give. It speaks to storage only through `store::Store`.

pub mod changes;
pub mod cursor;
pub mod error;
pub mod fields;
pub mod filter;
pub mod leads;
pub mod links;
pub mod merge;
pub mod money;
pub mod records;
pub mod rules;
pub mod schema;
pub mod timeline;
pub mod trash;
pub mod validate;
pub mod workspace;

pub use error::CrmError;

use rapport_tools::{Scope, Scopes};

use crate::store::{Actor, AuditEntry, ChangeActor, Org, OrgId, Target, User};
use crate::time::Millis;

/// How a principal proved who it is.
#[derive(Debug, Clone)]
pub enum Via {
    /// An API key, by its record (never its secret).
    Key { id: String, name: String, preview: String, expires_at: Option<Millis> },
    /// The command line, with the database's own authority.
    Cli,
    /// A person logged in to the web console, with their role's scopes.
    Session,
}

/// Whoever acts: an organization, the user acting in it, how they authenticated, and what
/// they may do right now (a key's scopes intersected with its owner's role).
#[derive(Debug, Clone)]
pub struct Principal {
    pub org: Org,
    pub user: User,
    pub via: Via,
    pub scopes: Scopes,
    pub ip: Option<String>,
}

impl Principal {
    pub fn org_id(&self) -> &OrgId {
        &self.org.id
    }

    pub fn require(&self, scope: Scope) -> Result<(), CrmError> {
        if self.scopes.contains(&scope) { Ok(()) } else { Err(CrmError::Forbidden(scope)) }
    }

    /// The actor of audit entries.
    pub fn actor(&self) -> Actor {
        match &self.via {
            Via::Key { id, .. } => Actor::Key { key_id: id.clone(), user_id: self.user.id.clone() },
            Via::Cli => Actor::Cli,
            Via::Session => Actor::User { user_id: self.user.id.clone() },
        }
    }

    /// The actor of change-log entries, with names as they are now.
    pub fn change_actor(&self) -> ChangeActor {
        match &self.via {
            Via::Key { id, name, .. } => ChangeActor {
                kind: "key",
                id: Some(id.clone()),
                name: Some(name.clone()),
                user_email: Some(self.user.email.clone()),
                user_id: Some(self.user.id.clone()),
                key_id: Some(id.clone()),
            },
            Via::Session => ChangeActor {
                kind: "user",
                id: Some(self.user.id.clone()),
                name: Some(self.user.name.clone().unwrap_or_else(|| self.user.email.clone())),
                user_email: Some(self.user.email.clone()),
                user_id: Some(self.user.id.clone()),
                key_id: None,
            },
            Via::Cli => ChangeActor {
                kind: "cli",
                id: None,
                name: Some("cli".into()),
                user_email: None,
                user_id: None,
                key_id: None,
            },
        }
    }

    /// The entities whose change-log entries this principal may see: the record entities it
    /// may read, and pipelines with deals. Custom-field entries go with their entity (the
    /// store's `and_visible_changes`).
    pub fn visible_changes(&self) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = rapport_tools::Entity::ALL
            .iter()
            .filter(|e| self.scopes.contains(&e.def().read))
            .map(|e| e.as_str())
            .collect();
        if out.contains(&rapport_tools::Entity::Deal.as_str()) {
            out.push("pipeline");
        }
        out
    }

    pub fn key_id(&self) -> Option<&str> {
        match &self.via {
            Via::Key { id, .. } => Some(id),
            Via::Cli | Via::Session => None,
        }
    }

    /// The audit entry for a use that was refused (a scope the key lacks).
    pub fn refusal(&self, details: serde_json::Value) -> AuditEntry {
        let target = self.key_id().map_or(Target::Org(self.org.id.as_str()), Target::Key);
        AuditEntry::new(&self.org.id, &self.actor(), self.ip.as_deref(), "key.refused", target, details)
    }
}

/// Most records one call may create, update, fetch or delete.
pub const MAX_BATCH: usize = 100;
/// Largest page `search_records` returns.
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 25;
