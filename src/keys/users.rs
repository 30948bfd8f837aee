//! The people behind keys: their roles bound what their keys may do.

use rapport_tools::Role;
use serde::Serialize;

use rapport_tools::Scope;

use super::{KeyError, check};
use crate::crm::Principal;
use crate::store::{AuditEntry, Org, Store, StoreError, Target, User, UserId};
use crate::time;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct UserView {
    pub id: UserId,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub active: bool,
    pub created_at: String,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        UserView {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            role: u.role,
            active: u.active,
            created_at: time::rfc3339(u.created_at),
        }
    }
}

pub(super) fn parse_email(email: &str) -> Result<String, KeyError> {
    let e = email.trim().to_lowercase();
    let ok = e.len() <= 254
        && !e.chars().any(|c| c.is_whitespace() || c.is_control())
        && e.split_once('@').is_some_and(|(l, d)| !l.is_empty() && !d.is_empty() && !d.contains('@'));
    if ok { Ok(e) } else { Err(KeyError::Invalid(format!("`{email}` is not an email address"))) }
}

fn parse_role(role: &str) -> Result<Role, KeyError> {
    role.trim().parse().map_err(KeyError::Invalid)
}

/// Handing out a role takes holding every power it grants (SPEC 3, Authority).
pub(super) fn may_grant(actor: &Principal, role: Role) -> Result<(), KeyError> {
    actor.authorize(&role.scopes(), |beyond| {
        KeyError::Forbidden(format!(
            "you cannot give anyone the role {role}: it grants `{beyond}`, which you do not hold"
        ))
    })
}

/// Acting on a person takes holding every power they have now.
fn may_act_on(actor: &Principal, user: &User) -> Result<(), KeyError> {
    actor.authorize(&user.role.scopes(), |beyond| {
        KeyError::Forbidden(format!(
            "{} has the role {}, holding `{beyond}`, which you do not hold; only someone with all of their powers can change their role or (de)activate them",
            user.email, user.role
        ))
    })
}

fn audit(actor: &Principal, action: &str, user: &User, details: serde_json::Value) -> AuditEntry {
    actor.audit(action, Target::User(&user.id), details)
}

pub async fn create(
    store: &Store,
    actor: &Principal,
    email: &str,
    name: Option<&str>,
    role: &str,
) -> Result<UserView, KeyError> {
    check(store, actor, Scope::UsersManage).await?;
    let org = &actor.org;
    let role = parse_role(role)?;
    may_grant(actor, role)?;
    let user = User {
        id: UserId::generate(),
        org_id: org.id.clone(),
        email: parse_email(email)?,
        name: name.map(str::trim).filter(|n| !n.is_empty()).map(str::to_owned),
        role,
        active: true,
        created_at: time::now_ms(),
    };
    let entry = audit(actor, "user.create", &user, serde_json::json!({ "email": user.email, "role": role }));
    let mut tx = store.begin().await?;
    tx.insert_user(&user).await.map_err(|e| match e {
        StoreError::Conflict(_) => KeyError::Invalid(format!("user {} already exists in {}", user.email, org.name)),
        other => KeyError::Store(other),
    })?;
    tx.insert_audit(&entry).await?;
    tx.commit().await?;
    Ok(UserView::from(&user))
}

pub async fn find(store: &Store, org: &Org, email: &str) -> Result<User, KeyError> {
    let email = parse_email(email)?;
    store.user_by_email(&org.id, &email).await?.ok_or_else(|| {
        KeyError::NotFound(format!("no user {email} in organization {}; `rapport users list` shows them", org.name))
    })
}

/// Changes a user's role, active flag or both, in one transaction, each left as it is when
/// not given; the organization always keeps an active owner.
pub async fn update(
    store: &Store,
    actor: &Principal,
    email: &str,
    role: Option<&str>,
    active: Option<bool>,
) -> Result<UserView, KeyError> {
    check(store, actor, Scope::UsersManage).await?;
    let org = &actor.org;
    let user = find(store, org, email).await?;
    let new_role = role.map(parse_role).transpose()?;
    // The rule and the change share one transaction that holds the organization, so two
    // owners demoting each other at once cannot both pass.
    let mut tx = store.begin().await?;
    tx.lock_org(&org.id).await?;
    let user = tx
        .user_by_email(&org.id, &user.email)
        .await?
        .ok_or_else(|| KeyError::NotFound(format!("user {} was removed meanwhile", user.email)))?;
    may_act_on(actor, &user)?;
    let (role, active) = (new_role.unwrap_or(user.role), active.unwrap_or(user.active));
    may_grant(actor, role)?;
    let action = match (new_role, active == user.active) {
        (Some(_), true) => "user.set_role",
        (None, _) if active => "user.activate",
        (None, _) => "user.deactivate",
        (Some(_), false) => "user.update",
    };
    let stops_owning = user.role == Role::Owner && user.active && (role != Role::Owner || !active);
    if stops_owning && tx.other_active_owners(&org.id, &user.id).await? == 0 {
        return Err(KeyError::Invalid(format!(
            "{} is the last active owner of {}; make someone else an owner first",
            user.email, org.name
        )));
    }
    let details = serde_json::json!({ "from": { "role": user.role, "active": user.active }, "to": { "role": role, "active": active } });
    let entry = audit(actor, action, &user, details);
    tx.update_user(&org.id, &user.id, role, active).await?;
    if role != user.role {
        // An invitation was judged against the role the person had when it was sent: a link
        // an admin holds for a member must not open an account that became an owner's.
        tx.delete_user_links(&user.id).await?;
    }
    if !active {
        // A deactivated person's console sessions end everywhere at once, and no link
        // they were sent lets them back in.
        tx.delete_user_sessions(&user.id).await?;
        tx.delete_user_links(&user.id).await?;
        // Their webhooks delivered what they could read; they stop with them (SPEC 10).
        let reason = format!("its creator {} was deactivated; an owner can take it over", user.email);
        for e in tx.disable_endpoints_of(&org.id, &user.id, &reason, time::now_ms()).await? {
            let details = serde_json::json!({ "reason": reason });
            tx.insert_audit(&actor.audit("webhook.disabled", Target::Webhook(&e.id), details)).await?;
        }
    }
    tx.insert_audit(&entry).await?;
    tx.commit().await?;
    Ok(UserView::from(&User { role, active, ..user }))
}

pub async fn set_role(store: &Store, actor: &Principal, email: &str, role: &str) -> Result<UserView, KeyError> {
    update(store, actor, email, Some(role), None).await
}

pub async fn set_active(store: &Store, actor: &Principal, email: &str, active: bool) -> Result<UserView, KeyError> {
    update(store, actor, email, None, Some(active)).await
}

pub async fn list(store: &Store, p: &Principal) -> Result<Vec<UserView>, KeyError> {
    check(store, p, Scope::UsersManage).await?;
    Ok(store.list_users(p.org_id()).await?.iter().map(UserView::from).collect())
}
