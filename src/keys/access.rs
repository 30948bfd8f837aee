//! Console access for people: one-time links (the first owner's setup, recoveries,
//! invitations) and passwords. Each step is audited in the transaction that makes it.

use rapport_tools::Role;

use super::users::{UserView, parse_email};
use rapport_tools::Scope;

use super::{KeyError, check};
use crate::auth::session::{Password, Secret};
use crate::crm::Principal;
use crate::store::{Actor, AuditEntry, LinkPurpose, Org, Store, StoreError, Target, User};
use crate::time::{self, DAY_MS, Millis};

/// How long a setup link works.
pub const SETUP_LINK_MS: Millis = DAY_MS;
/// How long an invitation works: long enough to survive a weekend.
pub const INVITE_LINK_MS: Millis = 7 * DAY_MS;

/// A one-time link, shown once.
#[derive(Debug)]
pub struct Link {
    pub url: String,
    pub user: User,
    pub expires_at: Millis,
}

fn link_url(public_url: &str, purpose: LinkPurpose, secret: &Secret) -> String {
    format!("{public_url}/{}?token={}", purpose.as_str(), secret.expose())
}

async fn issue(
    store: &Store,
    actor: &Principal,
    user: &User,
    purpose: LinkPurpose,
    public_url: &str,
) -> Result<Link, KeyError> {
    let secret = Secret::generate();
    let now = time::now_ms();
    let expires_at = now + if purpose == LinkPurpose::Setup { SETUP_LINK_MS } else { INVITE_LINK_MS };
    let action = format!("user.{}_link", purpose.as_str());
    let details = serde_json::json!({ "email": user.email, "expires_at": time::rfc3339(expires_at) });
    let entry = actor.audit(&action, Target::User(&user.id), details);
    let mut tx = store.begin().await?;
    tx.insert_link_token(secret.digest().as_str(), purpose, &user.id, now, expires_at).await?;
    tx.insert_audit(&entry).await?;
    tx.commit().await?;
    Ok(Link { url: link_url(public_url, purpose, &secret), user: user.clone(), expires_at })
}

/// A fresh setup link for `email`, or for the organization's first owner: the way into the
/// console on a new install, and back in for an owner who lost their password.
pub async fn setup_link(
    store: &Store,
    actor: &Principal,
    email: Option<&str>,
    public_url: &str,
) -> Result<Link, KeyError> {
    let org = &actor.org;
    // A setup link opens any account: the command line's and the server's alone.
    if actor.user().is_some() {
        return Err(KeyError::Forbidden("setup links are made on the server: `rapport setup-link`".into()));
    }
    let user = match email {
        Some(e) => super::users::find(store, org, e).await?,
        None => store
            .first_owner(&org.id)
            .await?
            .ok_or_else(|| KeyError::NotFound(format!("organization {} has no active owner", org.name)))?,
    };
    if !user.active {
        return Err(KeyError::Invalid(format!("user {} is deactivated; activate them first", user.email)));
    }
    issue(store, actor, &user, LinkPurpose::Setup, public_url).await
}

/// Invites someone by email: a user with the role and no password yet, and a one-time
/// link where they choose one. Inviting someone who never accepted sends a new link.
pub async fn invite(
    store: &Store,
    actor: &Principal,
    email: &str,
    role: &str,
    public_url: &str,
) -> Result<(UserView, Link), KeyError> {
    check(store, actor, Scope::UsersManage).await?;
    let org = &actor.org;
    let email = parse_email(email)?;
    let existing = store.user_by_email(&org.id, &email).await?;
    let user = match existing {
        // A new link for someone who never chose a password, and only for someone the
        // inviter could have invited: no way into an account of more power than their own.
        Some(u) => {
            if store.has_password(&u.id).await? {
                return Err(KeyError::Invalid(format!("{email} already has an account in {}", org.name)));
            }
            if !u.active {
                return Err(KeyError::Invalid(format!("{email} is deactivated; activate them first")));
            }
            actor.authorize(&u.role.scopes(), |_| {
                KeyError::Forbidden(format!(
                    "{email} is a {}, a role beyond yours; only someone holding it can send them a link",
                    u.role
                ))
            })?;
            u
        }
        None => {
            let view = super::users::create(store, actor, &email, None, role).await?;
            store.user_by_id(&org.id, &view.id).await?.ok_or(StoreError::NotFound)?
        }
    };
    let link = issue(store, actor, &user, LinkPurpose::Invite, public_url).await?;
    Ok((UserView::from(&user), link))
}

/// The user a link stands for, to greet them before they choose a password.
pub async fn peek(store: &Store, purpose: LinkPurpose, token: &str) -> Result<(User, Org), KeyError> {
    let expired = || KeyError::NotFound(spent_message(purpose));
    let secret = Secret::parse(token.trim()).ok_or_else(expired)?;
    let (user, org) = store.link_token(secret.digest().as_str(), purpose, time::now_ms()).await?.ok_or_else(expired)?;
    // An invitation is for choosing the first password, never for replacing one.
    if purpose == LinkPurpose::Invite && store.has_password(&user.id).await? {
        return Err(expired());
    }
    Ok((user, org))
}

fn spent_message(purpose: LinkPurpose) -> String {
    match purpose {
        LinkPurpose::Setup => "this setup link is not valid: it was used already or is older than 24 hours. Run `rapport setup-link` on the server for a new one".into(),
        LinkPurpose::Invite => "this invitation is not valid: it was used already or has expired. Ask an administrator to invite you again".into(),
    }
}

/// Spends a link: sets the password (and name, when given), ends the user's other
/// sessions, and answers who they are, to log them in.
pub async fn redeem(
    store: &Store,
    purpose: LinkPurpose,
    token: &str,
    password: Password,
    ip: &str,
) -> Result<(User, Org), KeyError> {
    let (user, org) = peek(store, purpose, token).await?;
    let secret = Secret::parse(token.trim()).ok_or_else(|| KeyError::NotFound(spent_message(purpose)))?;
    let hash = password.hash().await;
    let actor = Actor::User { user_id: user.id.clone() };
    let action = format!("user.{}", if purpose == LinkPurpose::Setup { "setup" } else { "accept_invite" });
    let entry = AuditEntry::new(
        &org.id,
        &actor,
        Some(ip),
        &action,
        Target::User(&user.id),
        serde_json::json!({ "email": user.email }),
    );
    let mut tx = store.begin().await?;
    let Some(user_id) = tx.take_link_token(secret.digest().as_str(), purpose, time::now_ms()).await? else {
        return Err(KeyError::NotFound(spent_message(purpose)));
    };
    tx.set_password(&user_id, &hash).await?;
    tx.delete_user_sessions(&user_id).await?;
    tx.insert_audit(&entry).await?;
    tx.commit().await?;
    Ok((user, org))
}

/// Sets a user's password from the command line, ending their sessions.
pub async fn set_password(
    store: &Store,
    actor: &Principal,
    email: &str,
    password: Password,
) -> Result<UserView, KeyError> {
    // Setting someone's password takes over their account: the command line's alone.
    if actor.user().is_some() {
        return Err(KeyError::Forbidden("passwords are set by their person, or on the server".into()));
    }
    let user = super::users::find(store, &actor.org, email).await?;
    let hash = password.hash().await;
    let entry = actor.audit("user.set_password", Target::User(&user.id), serde_json::json!({ "email": user.email }));
    let mut tx = store.begin().await?;
    tx.set_password(&user.id, &hash).await?;
    tx.delete_user_sessions(&user.id).await?;
    tx.insert_audit(&entry).await?;
    tx.commit().await?;
    Ok(UserView::from(&user))
}

/// Roles a person with `actor`'s powers may hand out.
pub fn grantable_roles(actor: &Principal) -> Vec<Role> {
    Role::ALL.iter().copied().filter(|r| super::users::may_grant(actor, *r).is_ok()).collect()
}
