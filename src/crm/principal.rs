//! Whoever acts, one type for every front-end (the MCP endpoint and REST with a key, the
//! console with a person's session, the command line, the server itself): the organization,
//! who acts in it, and what they may do right now. Checks of scope and of authority (SPEC 3)
//! are methods here, so every domain function asks them the same way.

use rapport_tools::{Scope, Scopes};

use super::CrmError;
use crate::store::{
    Actor, AuditEntry, ChangeActor, ClientInfo, KeyId, KeyRecord, Org, OrgId, Store, Target, User, Via,
};
use crate::time::Millis;

/// Who acts, and how they proved it.
#[derive(Debug, Clone)]
pub enum Acting {
    /// An API key, by its record (never its secret), for the user who owns it.
    Key {
        id: KeyId,
        name: String,
        preview: String,
        expires_at: Option<Millis>,
        user: User,
        /// The calls of this key that wait for a person (SPEC 12).
        approval: Option<rapport_tools::approvals::ApprovalPolicy>,
    },
    /// A person logged in to the web console, with their role's scopes.
    Person(User),
    /// The command line, with the database's own authority.
    Cli,
    /// The server itself (the first run's setup link).
    System,
}

#[derive(Debug, Clone)]
pub struct Principal {
    pub org: Org,
    pub acting: Acting,
    /// What it may do now: a key's scopes within its owner's role, a person's role, or all.
    pub scopes: Scopes,
    pub ip: Option<String>,
    /// How the call came (SPEC 12): written beside the actor in every change and audit entry.
    pub via: Via,
}

/// The client name of the command line, in `via`.
pub const CLI_CLIENT: &str = "rapport-cli";
/// The client name of the web console, in `via`.
pub const CONSOLE_CLIENT: &str = "console";

fn named(name: &str) -> Option<ClientInfo> {
    Some(ClientInfo { name: name.to_owned(), version: Some(env!("CARGO_PKG_VERSION").to_owned()) })
}

impl Principal {
    /// The command line, in `org`, with every scope.
    pub fn cli(org: Org) -> Self {
        let via = Via::call(named(CLI_CLIENT), "cli");
        Principal { org, acting: Acting::Cli, scopes: Scopes::all(), ip: None, via }
    }

    /// The server itself, in `org`.
    pub fn system(org: Org) -> Self {
        Principal { org, acting: Acting::System, scopes: Scopes::all(), ip: None, via: Via::call(None, "server") }
    }

    /// A key of `user`: what it may do is bounded by what its owner may do now. The
    /// front-end says how the request came (`via`).
    pub fn key(org: Org, key: &KeyRecord, user: User, ip: Option<String>) -> Self {
        let scopes = key.scopes.intersection(&user.role.scopes());
        let acting = Acting::Key {
            id: key.id.clone(),
            name: key.name.clone(),
            preview: key.preview.clone(),
            expires_at: key.expires_at,
            user,
            approval: key.approval.clone(),
        };
        Principal { org, acting, scopes, ip, via: Via::default() }
    }

    /// A person in the console, on page `route`: their role's scopes.
    pub fn person(org: Org, user: User, ip: Option<String>) -> Self {
        let via = Via::call(named(CONSOLE_CLIENT), "console");
        Principal { org, scopes: user.role.scopes(), acting: Acting::Person(user), ip, via }
    }

    pub fn org_id(&self) -> &OrgId {
        &self.org.id
    }

    /// The user acting: a key's owner or the person; none for the CLI and the server.
    pub fn user(&self) -> Option<&User> {
        match &self.acting {
            Acting::Key { user, .. } | Acting::Person(user) => Some(user),
            Acting::Cli | Acting::System => None,
        }
    }

    /// The user acting, for what only a person or a key can do.
    pub fn acting_user(&self) -> Result<&User, CrmError> {
        self.user().ok_or_else(|| CrmError::invalid("this needs a person or an API key; the command line cannot do it"))
    }

    /// The calls that wait for a person's approval: a key's policy; none for anyone else.
    pub fn approval_policy(&self) -> Option<&rapport_tools::approvals::ApprovalPolicy> {
        match &self.acting {
            Acting::Key { approval, .. } => approval.as_ref(),
            _ => None,
        }
    }

    pub fn key_id(&self) -> Option<&KeyId> {
        match &self.acting {
            Acting::Key { id, .. } => Some(id),
            _ => None,
        }
    }

    pub fn require(&self, scope: Scope) -> Result<(), CrmError> {
        if self.scopes.contains(&scope) { Ok(()) } else { Err(CrmError::Forbidden(scope)) }
    }

    /// Like `require`, and a refusal is written to the audit log as a refused use (a key's
    /// scope it lacks), so that no front-end has to remember to.
    pub async fn require_audited(&self, store: &Store, scope: Scope) -> Result<(), Scope> {
        if self.scopes.contains(&scope) {
            return Ok(());
        }
        let entry = self.refusal(serde_json::json!({ "reason": "insufficient_scope", "scope": scope.as_str() }));
        if let Err(e) = store.insert_audit(&entry).await {
            tracing::warn!(error = %e, "could not audit a refused use");
        }
        Err(scope)
    }

    /// SPEC 3, Authority: nobody hands out or takes over more power than they hold. `Ok`
    /// when every one of `powers` is the principal's own; else the refusal `refuse` words,
    /// given the first power it lacks.
    pub fn authorize<E>(&self, powers: &Scopes, refuse: impl FnOnce(Scope) -> E) -> Result<(), E> {
        match powers.first_beyond(&self.scopes) {
            None => Ok(()),
            Some(beyond) => Err(refuse(beyond)),
        }
    }

    /// The actor of audit entries.
    pub fn actor(&self) -> Actor {
        match &self.acting {
            Acting::Key { id, user, .. } => Actor::Key { key_id: id.clone(), user_id: user.id.clone() },
            Acting::Person(user) => Actor::User { user_id: user.id.clone() },
            Acting::Cli => Actor::Cli,
            Acting::System => Actor::System,
        }
    }

    /// An audit entry for `action` on `target`, by this principal, now.
    pub fn audit(&self, action: &str, target: Target<'_>, details: serde_json::Value) -> AuditEntry {
        let entry = AuditEntry::new(&self.org.id, &self.actor(), self.ip.as_deref(), action, target, details);
        AuditEntry { via: self.via.clone(), ..entry }
    }

    /// The actor of change-log entries, with names as they are now.
    pub fn change_actor(&self) -> ChangeActor {
        match &self.acting {
            Acting::Key { id, name, user, .. } => ChangeActor {
                kind: "key",
                id: Some(id.to_string()),
                name: Some(name.clone()),
                user_email: Some(user.email.clone()),
                user_id: Some(user.id.clone()),
                key_id: Some(id.clone()),
            },
            Acting::Person(user) => ChangeActor {
                kind: "user",
                id: Some(user.id.to_string()),
                name: Some(user.name.clone().unwrap_or_else(|| user.email.clone())),
                user_email: Some(user.email.clone()),
                user_id: Some(user.id.clone()),
                key_id: None,
            },
            Acting::Cli | Acting::System => ChangeActor {
                kind: if matches!(self.acting, Acting::Cli) { "cli" } else { "system" },
                id: None,
                name: Some(if matches!(self.acting, Acting::Cli) { "cli" } else { "system" }.into()),
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

    /// The audit entry for a use that was refused (a scope the key lacks).
    pub fn refusal(&self, details: serde_json::Value) -> AuditEntry {
        let target = self.key_id().map_or(Target::Org(self.org.id.as_str()), Target::Key);
        self.audit("key.refused", target, details)
    }
}
