//! The key lifecycle: creating and listing keys, each change audited in the same
//! transaction as the change itself.

pub mod access;
pub mod audit;
pub mod connect;
pub mod users;

use ipnet::IpNet;
use rapport_tools::approvals::ApprovalPolicy;
use rapport_tools::{Role, Scope, Scopes};
use serde::Serialize;

use crate::auth::key::PlainKey;
use crate::crm::Principal;
use crate::store::{
    Actor, AuditEntry, KeyChange, KeyId, KeyRecord, KeyStatus, Org, OrgId, Pipeline, Store, StoreError, Target, User,
    UserId,
};
use crate::time::{self, DAY_MS, Millis};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error(
        "the organization already has {0} enabled keys, the most RAPPORT_MAX_ACTIVE_KEYS allows; disable or revoke one first"
    )]
    Limit(u32),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Revoked(String),
    #[error("{0}")]
    NeedsConfirmation(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The role of a key created without `--role` or scopes.
pub const DEFAULT_ROLE: Role = Role::Member;

/// What a request to create a key asks for.
#[derive(Debug, Clone, Default)]
pub struct NewKeyRequest {
    pub name: String,
    pub role: Option<String>,
    pub scopes: Vec<String>,
    pub expires_in_days: Option<u32>,
    pub allowed_cidrs: Vec<String>,
    /// Email of the owning user; default: the organization's first owner.
    pub user_email: Option<String>,
    /// The calls that wait for a person's approval (SPEC 12); a key made by a key carries
    /// at least its creator's.
    pub approval: Option<ApprovalPolicy>,
}

/// A refusal for a scope the principal lacks (audited by `Principal::require_audited`).
fn lacks(scope: Scope) -> KeyError {
    KeyError::Forbidden(format!("this API key lacks the `{scope}` scope"))
}

/// The principal must hold `scope`; a refusal is audited.
pub(crate) async fn check(store: &Store, p: &Principal, scope: Scope) -> Result<(), KeyError> {
    p.require_audited(store, scope).await.map_err(lacks)
}

/// A key as lists and `--json` show it. The secret appears only in `CreatedKey`.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct KeyView {
    pub id: KeyId,
    pub name: String,
    pub preview: String,
    #[schemars(with = "Vec<Scope>")]
    pub scopes: Vec<String>,
    pub role: Option<Role>,
    pub expires_at: Option<String>,
    pub allowed_cidrs: Vec<String>,
    /// `enabled`, `disabled` or `revoked`.
    #[schemars(extend("enum" = ["enabled", "disabled", "revoked"]))]
    pub status: &'static str,
    pub created_at: String,
    pub user_id: UserId,
    pub last_used_at: Option<String>,
    pub last_used_ip: Option<String>,
    pub revoked_at: Option<String>,
    pub rotated_from: Option<String>,
    /// The calls that wait for a person's approval; null when none do.
    pub approval: Option<ApprovalPolicy>,
}

impl From<&KeyRecord> for KeyView {
    fn from(k: &KeyRecord) -> Self {
        KeyView {
            id: k.id.clone(),
            name: k.name.clone(),
            preview: k.preview.clone(),
            scopes: k.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
            role: k.role,
            expires_at: k.expires_at.map(time::rfc3339),
            allowed_cidrs: k.allowed_cidrs.clone(),
            status: k.status.as_str(),
            created_at: time::rfc3339(k.created_at),
            user_id: k.user_id.clone(),
            last_used_at: k.last_used_at.map(time::rfc3339),
            last_used_ip: k.last_used_ip.clone(),
            revoked_at: k.revoked_at.map(time::rfc3339),
            rotated_from: k.rotated_from.clone(),
            approval: k.approval.clone(),
        }
    }
}

impl KeyView {
    /// Shows a use this process saw and has not written yet, time and address together.
    pub fn seen(&mut self, latest: Option<crate::store::KeyUse>) {
        if let Some(u) = latest {
            self.last_used_at = Some(time::rfc3339(u.at));
            self.last_used_ip = Some(u.ip);
        }
    }
}

/// The answer to a create: the record and, this once, the secret.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CreatedKey {
    pub id: KeyId,
    pub name: String,
    /// The plaintext key. Never stored; shown once.
    pub key: String,
    pub preview: String,
    #[schemars(with = "Vec<Scope>")]
    pub scopes: Vec<String>,
    pub role: Option<Role>,
    pub expires_at: Option<String>,
    pub allowed_cidrs: Vec<String>,
    /// `enabled`, `disabled` or `revoked`.
    #[schemars(extend("enum" = ["enabled", "disabled", "revoked"]))]
    pub status: &'static str,
    pub created_at: String,
    pub approval: Option<ApprovalPolicy>,
}

impl CreatedKey {
    fn new(record: &KeyRecord, secret: &PlainKey) -> Self {
        let view = KeyView::from(record);
        CreatedKey {
            id: view.id,
            name: view.name,
            key: secret.expose().to_owned(),
            preview: view.preview,
            scopes: view.scopes,
            role: view.role,
            expires_at: view.expires_at,
            allowed_cidrs: view.allowed_cidrs,
            status: view.status,
            created_at: view.created_at,
            approval: view.approval,
        }
    }
}

fn parse_name(name: &str) -> Result<String, KeyError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(KeyError::Invalid("a key's name is 1 to 100 printable characters".into()));
    }
    Ok(name.to_owned())
}

fn parse_cidrs(cidrs: &[String]) -> Result<Vec<String>, KeyError> {
    cidrs
        .iter()
        .map(|c| {
            let c = c.trim();
            // A bare address means just that address.
            let net = c
                .parse::<IpNet>()
                .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
                .map_err(|_| KeyError::Invalid(format!("`{c}` is not a CIDR like 203.0.113.0/24 or 2001:db8::/32")))?;
            Ok(net.trunc().to_string())
        })
        .collect()
}

pub async fn create(
    store: &Store,
    creator: &Principal,
    req: NewKeyRequest,
    max_active: u32,
) -> Result<CreatedKey, KeyError> {
    check(store, creator, Scope::KeysManage).await?;
    let org = &creator.org;
    let name = parse_name(&req.name)?;
    let owner: User = match &req.user_email {
        Some(email) => store
            .user_by_email(&org.id, &email.trim().to_lowercase())
            .await?
            .ok_or_else(|| KeyError::NotFound(format!("no user {email} in organization {}", org.name)))?,
        None => store
            .first_owner(&org.id)
            .await?
            .ok_or_else(|| KeyError::NotFound(format!("organization {} has no active owner", org.name)))?,
    };
    if !owner.active {
        return Err(KeyError::Invalid(format!("user {} is deactivated; activate them first", owner.email)));
    }
    // A key acts as its owner and outlives whoever made it: making one for someone else
    // takes managing people, and holding every power they have.
    if creator.user().map(|u| u.id.as_str()) != Some(owner.id.as_str()) {
        check(store, creator, Scope::UsersManage).await?;
        creator.authorize(&owner.role.scopes(), |beyond| {
            KeyError::Forbidden(format!(
                "you cannot create a key owned by {}, who has the role {} and holds `{beyond}`, which you do not hold; create keys for yourself or for people whose powers are within yours",
                owner.email, owner.role
            ))
        })?;
    }
    let (role, scopes): (Option<Role>, Scopes) = match (&req.role, req.scopes.is_empty()) {
        (Some(_), false) => return Err(KeyError::Invalid("give --role or --scopes, not both".into())),
        (Some(r), true) => {
            let role: Role = r.parse().map_err(KeyError::Invalid)?;
            (Some(role), role.scopes())
        }
        (None, false) => {
            let scopes = req
                .scopes
                .iter()
                .map(|s| s.trim().parse::<Scope>().map_err(|e| KeyError::Invalid(e.to_string())))
                .collect::<Result<Scopes, _>>()?;
            (None, scopes)
        }
        // A key does what an agent needs, not all its owner may (SPEC 2): `member`, or the
        // owner's role where that is less.
        (None, true) => {
            let role = owner.role.min(DEFAULT_ROLE);
            (Some(role), role.scopes())
        }
    };
    if let Some(beyond) = scopes.iter().find(|s| !creator.scopes.contains(s)) {
        return Err(KeyError::Forbidden(format!("you cannot grant `{beyond}`: you do not hold it yourself")));
    }
    if let Some(beyond) = scopes.iter().find(|s| !owner.role.scopes().contains(s)) {
        return Err(KeyError::Invalid(format!(
            "user {} is a {}; their key cannot carry `{beyond}`",
            owner.email, owner.role
        )));
    }
    let now = time::now_ms();
    let expires_at: Option<Millis> = match req.expires_in_days {
        Some(0) => return Err(KeyError::Invalid("--expires-in-days must be at least 1".into())),
        Some(d) if d > 3650 => return Err(KeyError::Invalid("--expires-in-days is at most 3650".into())),
        Some(d) => Some(now + i64::from(d) * DAY_MS),
        None => None,
    };
    let allowed_cidrs = parse_cidrs(&req.allowed_cidrs)?;
    let secret = PlainKey::generate();
    let record = KeyRecord {
        id: KeyId::generate(),
        org_id: org.id.clone(),
        user_id: owner.id.clone(),
        name,
        preview: secret.preview(),
        role,
        scopes,
        status: KeyStatus::Enabled,
        created_at: now,
        expires_at,
        allowed_cidrs,
        last_used_at: None,
        last_used_ip: None,
        revoked_at: None,
        rotated_from: None,
        // A key made by a key holds at least what holds its maker.
        approval: ApprovalPolicy::union(req.approval.as_ref(), creator.approval_policy()),
    };
    let mut details = serde_json::json!({ "name": record.name, "user": owner.email, "preview": record.preview });
    if let Some(p) = &record.approval {
        details["approval"] = serde_json::json!(p);
    }
    let audit = key_audit(creator, "key.create", &record, details);
    // The limit is checked and the key inserted in one transaction that holds the
    // organization, so concurrent creates cannot pass it together.
    let mut tx = store.begin().await?;
    tx.lock_org(&org.id).await?;
    if tx.count_enabled_keys(&org.id).await? >= u64::from(max_active) {
        return Err(KeyError::Limit(max_active));
    }
    tx.insert_key(&record, &secret.digest()).await?;
    tx.insert_audit(&audit).await?;
    tx.commit().await?;
    Ok(CreatedKey::new(&record, &secret))
}

pub async fn list(store: &Store, p: &Principal, include_revoked: bool) -> Result<Vec<KeyView>, KeyError> {
    check(store, p, Scope::KeysManage).await?;
    Ok(store.list_keys(p.org_id(), include_revoked).await?.iter().map(KeyView::from).collect())
}

fn new_org(name: &str, owner_email: &str) -> (Org, User) {
    let now = time::now_ms();
    let org = Org { id: OrgId::generate(), name: name.to_owned(), created_at: now };
    let owner = User {
        id: UserId::generate(),
        org_id: org.id.clone(),
        email: owner_email.to_owned(),
        name: Some("Owner".into()),
        role: Role::Owner,
        active: true,
        created_at: now,
    };
    (org, owner)
}

/// Creates organization `default` and its owner `owner@localhost` on an empty database.
pub async fn bootstrap(store: &Store) -> Result<bool, StoreError> {
    let (org, owner) = new_org("default", "owner@localhost");
    let mut tx = store.begin().await?;
    if tx.count_orgs().await? > 0 {
        return Ok(false);
    }
    match tx.insert_org(&org).await {
        // Another process starting at the same moment got there first.
        Err(StoreError::Conflict(_)) => return Ok(false),
        other => other?,
    }
    tx.insert_user(&owner).await?;
    tx.insert_pipeline(&org.id, &Pipeline::default_sales(org.created_at), &[]).await?;
    tx.commit().await?;
    Ok(true)
}

/// An organization name: a slug of lowercase letters, digits and `-`.
pub fn parse_org_name(name: &str) -> Result<String, KeyError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if ok {
        Ok(name.to_owned())
    } else {
        Err(KeyError::Invalid(format!(
            "`{name}` is not an organization name: use 1 to 63 lowercase letters, digits and `-`, e.g. acme-sales"
        )))
    }
}

/// Creates an organization and its owner `owner@NAME`.
pub async fn create_org(store: &Store, name: &str, actor: Actor) -> Result<(Org, User), KeyError> {
    let name = parse_org_name(name)?;
    let (org, owner) = new_org(&name, &format!("owner@{name}"));
    let details = serde_json::json!({ "name": name, "owner": owner.email });
    let audit = AuditEntry::new(&org.id, &actor, None, "org.create", Target::Org(org.id.as_str()), details);
    let mut tx = store.begin().await?;
    tx.insert_org(&org).await.map_err(|e| match e {
        StoreError::Conflict(_) => KeyError::Invalid(format!("an organization named `{name}` already exists")),
        other => KeyError::Store(other),
    })?;
    tx.insert_user(&owner).await?;
    tx.insert_pipeline(&org.id, &Pipeline::default_sales(org.created_at), &[]).await?;
    tx.insert_audit(&audit).await?;
    tx.commit().await?;
    Ok((org, owner))
}

/// How many hours a rotation's grace period may last.
pub const MAX_GRACE_HOURS: u32 = 24 * 30;
/// A key used more recently than this needs confirmation to delete.
pub const RECENT_USE_MS: Millis = DAY_MS;

fn key_audit(actor: &Principal, action: &str, key: &KeyRecord, details: serde_json::Value) -> AuditEntry {
    actor.audit(action, Target::Key(&key.id), details)
}

/// The key `id` of the principal's organization, for someone who manages keys.
pub async fn show(store: &Store, p: &Principal, id: &KeyId) -> Result<KeyRecord, KeyError> {
    check(store, p, Scope::KeysManage).await?;
    find(store, &p.org, id).await
}

/// The key `id` of `org`, or a message that says how to find one.
async fn find(store: &Store, org: &Org, id: &KeyId) -> Result<KeyRecord, KeyError> {
    store.get_key(&org.id, &id.trimmed()).await?.ok_or_else(|| {
        KeyError::NotFound(format!("no key {id} in organization {}; `rapport keys list --all` shows the ids", org.name))
    })
}

async fn change(
    store: &Store,
    actor: &Principal,
    key: &KeyRecord,
    action: &str,
    change: KeyChange,
    details: serde_json::Value,
) -> Result<KeyRecord, KeyError> {
    let org = &actor.org;
    let audit = key_audit(actor, action, key, details);
    let gone = || KeyError::NotFound(format!("key {} was deleted meanwhile", key.id));
    let mut tx = store.begin().await?;
    // An enable counts against the enabled-key limit, checked while the organization is held.
    if let KeyChange::Enable { .. } = change {
        tx.lock_org(&org.id).await?;
    }
    let before = tx.get_key(&org.id, &key.id).await?.ok_or_else(gone)?;
    if let KeyChange::Enable { max_active } = change
        && before.status != KeyStatus::Enabled
        && tx.count_enabled_keys(&org.id).await? >= u64::from(max_active)
    {
        return Err(KeyError::Limit(max_active));
    }
    tx.change_key(&org.id, &key.id, &change).await.map_err(|e| match e {
        StoreError::NotFound => gone(),
        other => KeyError::Store(other),
    })?;
    let after = match change {
        KeyChange::Delete => before,
        _ => tx.get_key(&org.id, &key.id).await?.ok_or_else(gone)?,
    };
    tx.insert_audit(&audit).await?;
    tx.commit().await?;
    Ok(after)
}

fn not_revoked(key: &KeyRecord, what: &str) -> Result<(), KeyError> {
    if key.status == KeyStatus::Revoked {
        return Err(KeyError::Revoked(format!(
            "key {} is revoked and cannot be {what}; create a new key instead",
            key.id
        )));
    }
    Ok(())
}

pub async fn rename(store: &Store, actor: &Principal, id: &KeyId, name: &str) -> Result<KeyView, KeyError> {
    let key = show(store, actor, id).await?;
    let name = parse_name(name)?;
    let details = serde_json::json!({ "from": key.name, "to": name });
    Ok(KeyView::from(&change(store, actor, &key, "key.rename", KeyChange::Rename(name), details).await?))
}

pub async fn disable(store: &Store, actor: &Principal, id: &KeyId) -> Result<KeyView, KeyError> {
    let key = show(store, actor, id).await?;
    not_revoked(&key, "disabled")?;
    Ok(KeyView::from(&change(store, actor, &key, "key.disable", KeyChange::Disable, serde_json::json!({})).await?))
}

/// Sets (or, with `None`, removes) the calls of key `id` that wait for a person's approval
/// (SPEC 12). A key may only tighten a policy; a person may loosen one only on a key whose
/// powers are within theirs.
pub async fn set_approval(
    store: &Store,
    actor: &Principal,
    id: &KeyId,
    policy: Option<ApprovalPolicy>,
) -> Result<KeyView, KeyError> {
    let key = show(store, actor, id).await?;
    not_revoked(&key, "given an approval policy")?;
    let tightens = ApprovalPolicy::at_least(policy.as_ref(), key.approval.as_ref());
    if !tightens {
        if actor.key_id().is_some() {
            return Err(KeyError::Forbidden(format!(
                "an API key may only tighten an approval policy: key {} holds {}, which this would loosen. A person sets or removes one in the console or with `rapport keys set-approval`",
                key.id,
                key.approval.as_ref().map_or_else(|| "nothing".to_owned(), ApprovalPolicy::words)
            )));
        }
        may_take_over(actor, &key, "loosen the approval policy of")?;
    }
    let details = serde_json::json!({ "from": key.approval, "to": policy });
    let c = KeyChange::Approval(policy);
    Ok(KeyView::from(&change(store, actor, &key, "key.approval", c, details).await?))
}

/// Rotating or enabling a key hands its powers to whoever does it (SPEC 3, Authority);
/// disabling, revoking and deleting stay open to `keys:manage` as an emergency stop.
fn may_take_over(actor: &Principal, key: &KeyRecord, what: &str) -> Result<(), KeyError> {
    actor.authorize(&key.scopes, |beyond| {
        KeyError::Forbidden(format!(
            "you cannot {what} key {} ({}): it carries `{beyond}`, which you do not hold, and {what} would hand you its powers. You may still disable, revoke or delete it",
            key.name, key.id
        ))
    })
}

pub async fn enable(store: &Store, actor: &Principal, id: &KeyId, max_active: u32) -> Result<KeyView, KeyError> {
    let key = show(store, actor, id).await?;
    not_revoked(&key, "enabled")?;
    may_take_over(actor, &key, "enable")?;
    let c = KeyChange::Enable { max_active };
    Ok(KeyView::from(&change(store, actor, &key, "key.enable", c, serde_json::json!({})).await?))
}

pub async fn revoke(store: &Store, actor: &Principal, id: &KeyId) -> Result<KeyView, KeyError> {
    let key = show(store, actor, id).await?;
    not_revoked(&key, "revoked again")?;
    let c = KeyChange::Revoke { at: time::now_ms() };
    Ok(KeyView::from(&change(store, actor, &key, "key.revoke", c, serde_json::json!({})).await?))
}

/// A new secret for the same key; the old one is refused at once, or after
/// `grace_hours` (never past the key's own expiry).
pub async fn rotate(
    store: &Store,
    actor: &Principal,
    id: &KeyId,
    grace_hours: Option<u32>,
) -> Result<CreatedKey, KeyError> {
    let key = show(store, actor, id).await?;
    not_revoked(&key, "rotated")?;
    may_take_over(actor, &key, "rotate")?;
    if grace_hours.is_some_and(|h| h > MAX_GRACE_HOURS) {
        return Err(KeyError::Invalid(format!("--grace-hours is at most {MAX_GRACE_HOURS}")));
    }
    let now = time::now_ms();
    let grace_until = grace_hours
        .filter(|h| *h > 0)
        .map(|h| now + i64::from(h) * 3_600_000)
        .map(|until| key.expires_at.map_or(until, |exp| until.min(exp)));
    let secret = PlainKey::generate();
    let details = serde_json::json!({
        "from_preview": key.preview,
        "to_preview": secret.preview(),
        "grace_until": grace_until.map(time::rfc3339),
    });
    let c = KeyChange::Rotate { digest: secret.digest(), preview: secret.preview(), grace_until };
    let rotated = change(store, actor, &key, "key.rotate", c, details).await?;
    Ok(CreatedKey::new(&rotated, &secret))
}

/// Removes the record. A key used in the last 24 hours needs `confirmed`; `recent_use` is a
/// use this process knows of that may not be written to the database yet.
pub async fn delete(
    store: &Store,
    actor: &Principal,
    id: &KeyId,
    confirmed: bool,
    recent_use: Option<Millis>,
) -> Result<KeyView, KeyError> {
    let key = show(store, actor, id).await?;
    let last_used = key.last_used_at.max(recent_use);
    if let Some(at) = last_used
        && at > time::now_ms() - RECENT_USE_MS
        && !confirmed
    {
        return Err(KeyError::NeedsConfirmation(format!(
            "key {} ({}) was last used at {}, less than 24 hours ago; deleting it will break whatever uses it. Confirm with --yes (CLI) or confirm=true (HTTP), or disable it first",
            key.name,
            key.id,
            time::rfc3339(at)
        )));
    }
    let details = serde_json::json!({ "name": key.name, "preview": key.preview });
    Ok(KeyView::from(&change(store, actor, &key, "key.delete", KeyChange::Delete, details).await?))
}
