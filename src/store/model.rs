//! Plain data that crosses the store boundary. No SQL here, no HTTP either.

use rapport_tools::{Entity, Role, Scopes};
use serde_json::{Map, Value};

pub use super::ids::{EndpointId, KeyId, OrgId, RecordId, UserId};
use crate::time::Millis;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Org {
    pub id: OrgId,
    pub name: String,
    pub created_at: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: UserId,
    pub org_id: OrgId,
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
    pub id: KeyId,
    pub org_id: OrgId,
    pub user_id: UserId,
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
    /// The calls that wait for a person's approval (SPEC 12), if any.
    pub approval: Option<rapport_tools::approvals::ApprovalPolicy>,
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
        digest: crate::secrets::KeyDigest,
        preview: String,
        grace_until: Option<Millis>,
    },
    Delete,
    /// Sets or removes the approval policy.
    Approval(Option<rapport_tools::approvals::ApprovalPolicy>),
}

/// A use of a key, written in batches rather than on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyUse {
    pub key_id: KeyId,
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
        key_id: KeyId,
        user_id: UserId,
    },
    User {
        user_id: UserId,
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

    /// The key that acted, when one did.
    pub fn key_id(&self) -> Option<&KeyId> {
        match self {
            Actor::Key { key_id, .. } => Some(key_id),
            Actor::Cli | Actor::System | Actor::User { .. } => None,
        }
    }

    /// The person who acted (a key acts for its owner).
    pub fn id(&self) -> Option<&UserId> {
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
    pub org_id: Option<OrgId>,
    pub at: Millis,
    pub actor: Actor,
    pub action: String,
    pub target_type: Option<String>,
    pub target_id: Option<String>,
    pub key_id: Option<KeyId>,
    pub ip: Option<String>,
    pub details: Value,
    /// How it came (SPEC 12).
    pub via: Via,
}

/// What an audit entry is about: a key, a user or an organization.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    Key(&'a KeyId),
    Webhook(&'a EndpointId),
    User(&'a UserId),
    Org(&'a str),
    Approval(&'a str),
}

impl AuditEntry {
    /// An entry for `action` in organization `org_id`, now, by `actor` from `ip`.
    pub fn new(
        org_id: &OrgId,
        actor: &Actor,
        ip: Option<&str>,
        action: &str,
        target: Target<'_>,
        details: Value,
    ) -> Self {
        let (target_type, target_id, key_id) = match target {
            Target::Key(id) => ("api_key", id.as_str(), Some(id.clone())),
            Target::User(id) => ("user", id.as_str(), None),
            Target::Webhook(id) => ("webhook", id.as_str(), None),
            Target::Org(id) => ("org", id, None),
            Target::Approval(id) => ("approval", id, None),
        };
        AuditEntry {
            id: uuid::Uuid::now_v7().to_string(),
            org_id: Some(org_id.clone()),
            at: crate::time::now_ms(),
            actor: actor.clone(),
            action: action.into(),
            target_type: Some(target_type.into()),
            target_id: Some(target_id.to_owned()),
            key_id,
            ip: ip.map(str::to_owned),
            details,
            via: Via::default(),
        }
    }
}

/// The types a custom field can have (SPEC section 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomType {
    Text,
    Number,
    Currency,
    Date,
    Datetime,
    Boolean,
    Email,
    Phone,
    Url,
    Select,
    MultiSelect,
}

impl CustomType {
    pub const ALL: &'static [CustomType] = &[
        CustomType::Text,
        CustomType::Number,
        CustomType::Currency,
        CustomType::Date,
        CustomType::Datetime,
        CustomType::Boolean,
        CustomType::Email,
        CustomType::Phone,
        CustomType::Url,
        CustomType::Select,
        CustomType::MultiSelect,
    ];

    pub fn as_str(self) -> &'static str {
        self.field_type().as_str()
    }

    pub fn parse(s: &str) -> Option<CustomType> {
        CustomType::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// The field type whose values, operators and storage it shares.
    pub fn field_type(self) -> rapport_tools::FieldType {
        use rapport_tools::FieldType as F;
        match self {
            CustomType::Text => F::Text,
            CustomType::Number => F::Number,
            CustomType::Currency => F::Currency,
            CustomType::Date => F::Date,
            CustomType::Datetime => F::Datetime,
            CustomType::Boolean => F::Boolean,
            CustomType::Email => F::Email,
            CustomType::Phone => F::Phone,
            CustomType::Url => F::Url,
            CustomType::Select => F::Select,
            CustomType::MultiSelect => F::MultiSelect,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CustomFieldDef {
    pub id: String,
    pub entity: Entity,
    pub key: String,
    pub label: String,
    pub field_type: CustomType,
    pub options: Vec<String>,
}

/// A record of any entity. `values` holds the entity's column fields by name, in the
/// form tools show them (RFC 3339 times, decimal strings, lists); absent means null.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub entity: Entity,
    pub id: RecordId,
    pub values: Map<String, Value>,
    pub custom: Map<String, Value>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Record {
    pub fn new(entity: Entity, id: RecordId, now: Millis) -> Record {
        Record { entity, id, values: Map::new(), custom: Map::new(), created_at: now, updated_at: now }
    }

    pub fn get(&self, field: &str) -> &Value {
        self.values.get(field).unwrap_or(&Value::Null)
    }

    pub fn text(&self, field: &str) -> Option<&str> {
        self.values.get(field).and_then(Value::as_str)
    }

    /// The lowercased text free-text search runs over. Rust lowercases all of Unicode,
    /// which SQLite's `lower()` does not, so it is computed here and stored.
    pub fn search_text(&self) -> String {
        let def = self.entity.def();
        let mut parts: Vec<&str> = def.search.iter().filter_map(|f| self.text(f)).collect();
        if let Some(Value::Array(tags)) = self.values.get("tags") {
            parts.extend(tags.iter().filter_map(Value::as_str));
        }
        parts.join(" ").to_lowercase()
    }
}

/// Who made a change, as the change log keeps it: names as they were at the time.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ChangeActor {
    /// `key`, `user` or `cli`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The key's id, or the user's.
    pub id: Option<String>,
    /// The key's name, or the user's.
    pub name: Option<String>,
    pub user_email: Option<String>,
    #[serde(skip)]
    pub user_id: Option<UserId>,
    #[serde(skip)]
    pub key_id: Option<KeyId>,
}

impl ChangeActor {
    /// A stored actor type as one of the four: `key`, `user`, `cli`, else `system`.
    pub fn kind_of(s: &str) -> &'static str {
        ["key", "user", "cli"].into_iter().find(|k| *k == s).unwrap_or("system")
    }
}

/// The program a call came from, as the request says it (SPEC 12).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ClientInfo {
    pub name: String,
    pub version: Option<String>,
}

/// How a change or an audited action came, beside who made it (SPEC 12): the client, the
/// tool that ran, the route it came by (`mcp`, a REST route, `console`, `cli`), the
/// server-made id of the call, and the W3C trace id when the request had one.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Via {
    pub client: Option<ClientInfo>,
    pub tool: Option<String>,
    pub route: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
}

impl Via {
    /// A new call's: its own request id, the rest as given.
    pub fn call(client: Option<ClientInfo>, route: &str) -> Via {
        Via {
            client,
            route: Some(route.to_owned()),
            request_id: Some(format!("req_{}", uuid::Uuid::now_v7().simple())),
            ..Via::default()
        }
    }
}

/// One entry of the change log (SPEC section 11). Never edited; holds no secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub id: String,
    pub org_id: OrgId,
    pub at: Millis,
    pub action: ChangeAction,
    pub entity: ChangeEntity,
    pub record_id: String,
    pub actor: ChangeActor,
    /// How it came (SPEC 12).
    pub via: Via,
    /// The entries this one reverts (SPEC 12), when it is part of a revert.
    pub reverts: Vec<String>,
    /// Each changed field with its value `before` and `after`.
    pub changes: Map<String, Value>,
}

/// What a change is about: a record of an entity, a custom field or a pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeEntity {
    Record(rapport_tools::Entity),
    CustomField,
    Pipeline,
}

impl ChangeEntity {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeEntity::Record(e) => e.as_str(),
            ChangeEntity::CustomField => "custom_field",
            ChangeEntity::Pipeline => "pipeline",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeEntity> {
        match s {
            "custom_field" => Some(ChangeEntity::CustomField),
            "pipeline" => Some(ChangeEntity::Pipeline),
            other => rapport_tools::Entity::parse(other).map(ChangeEntity::Record),
        }
    }

    /// As a person reads it: `custom field`.
    pub fn words(self) -> String {
        self.as_str().replace('_', " ")
    }

    /// The entity of a record change.
    pub fn record(self) -> Option<rapport_tools::Entity> {
        match self {
            ChangeEntity::Record(e) => Some(e),
            _ => None,
        }
    }
}

impl std::fmt::Display for ChangeEntity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<rapport_tools::Entity> for ChangeEntity {
    fn from(e: rapport_tools::Entity) -> Self {
        ChangeEntity::Record(e)
    }
}

impl From<&rapport_tools::Entity> for ChangeEntity {
    fn from(e: &rapport_tools::Entity) -> Self {
        ChangeEntity::Record(*e)
    }
}

/// What a change did to its record (SPEC 11).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ChangeAction {
    Created,
    Updated,
    Deleted,
    Restored,
    Merged,
    Linked,
    Unlinked,
    /// Removed from the trash for good.
    Purged,
}

impl ChangeAction {
    pub const ALL: [ChangeAction; 8] = [
        ChangeAction::Created,
        ChangeAction::Updated,
        ChangeAction::Deleted,
        ChangeAction::Restored,
        ChangeAction::Merged,
        ChangeAction::Linked,
        ChangeAction::Unlinked,
        ChangeAction::Purged,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            ChangeAction::Created => "created",
            ChangeAction::Updated => "updated",
            ChangeAction::Deleted => "deleted",
            ChangeAction::Restored => "restored",
            ChangeAction::Merged => "merged",
            ChangeAction::Linked => "linked",
            ChangeAction::Unlinked => "unlinked",
            ChangeAction::Purged => "purged",
        }
    }

    pub fn parse(s: &str) -> Option<ChangeAction> {
        ChangeAction::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for ChangeAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an approval stands (SPEC 12).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApprovalState {
    Pending,
    Approved,
    Denied,
    Stale,
    Expired,
}

impl ApprovalState {
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalState::Pending => "pending",
            ApprovalState::Approved => "approved",
            ApprovalState::Denied => "denied",
            ApprovalState::Stale => "stale",
            ApprovalState::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<ApprovalState> {
        [
            ApprovalState::Pending,
            ApprovalState::Approved,
            ApprovalState::Denied,
            ApprovalState::Stale,
            ApprovalState::Expired,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// A call held for a person's approval (SPEC 12).
#[derive(Debug, Clone, PartialEq)]
pub struct Approval {
    pub id: String,
    pub org_id: OrgId,
    pub key_id: KeyId,
    pub tool: String,
    /// The call's arguments, as the key sent them (without `idempotency_key`).
    pub arguments: Map<String, Value>,
    pub idempotency_key: Option<String>,
    pub kinds: Vec<rapport_tools::approvals::ApprovalKind>,
    pub summary: String,
    /// The change entries a dry run showed, as the wire shows them.
    pub changes: Vec<Value>,
    /// How the held call came.
    pub via: Via,
    pub state: ApprovalState,
    pub created_at: Millis,
    pub expires_at: Millis,
    pub decided_at: Option<Millis>,
    pub decided_by: Option<UserId>,
    pub decided_by_email: Option<String>,
    pub reason: Option<String>,
    /// When approved and run: the call's answer.
    pub result: Option<Value>,
}

/// Where a stage sits in a deal's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageKind {
    Open,
    Won,
    Lost,
}

impl StageKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StageKind::Open => "open",
            StageKind::Won => "won",
            StageKind::Lost => "lost",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Stage {
    pub name: String,
    pub kind: StageKind,
}

/// A deal pipeline: its name and its stages in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pipeline {
    pub id: String,
    pub name: String,
    pub stages: Vec<Stage>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl Pipeline {
    pub fn stage(&self, name: &str) -> Option<&Stage> {
        self.stages.iter().find(|s| s.name == name)
    }

    /// The pipeline every organization starts with.
    pub fn default_sales(now: Millis) -> Pipeline {
        let stage = |name: &str, kind| Stage { name: name.into(), kind };
        Pipeline {
            id: uuid::Uuid::now_v7().to_string(),
            name: "sales".into(),
            stages: vec![
                stage("lead", StageKind::Open),
                stage("qualified", StageKind::Open),
                stage("proposal", StageKind::Open),
                stage("negotiation", StageKind::Open),
                stage("won", StageKind::Won),
                stage("lost", StageKind::Lost),
            ],
            created_at: now,
            updated_at: now,
        }
    }
}
