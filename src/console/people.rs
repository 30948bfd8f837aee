//! Settings → Users (`users:manage`): invitations by one-time link, roles, deactivation.
//! The rules (an organization keeps an active owner; only an owner makes owners) are the
//! domain's, the same as over the API and the command line.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use rapport_tools::Scope;
use serde::Deserialize;

use super::keys::Choice;
use super::session::{Posted, Session};
use super::{Chrome, Flash, PageError, PageResult, cleared, outcome, render, take_flash, when};
use crate::keys::{KeyError, access, users};
use crate::state::AppState;
use crate::store::{User, UserId};

const PAGE: &str = "/settings/users";

pub struct UserRow {
    pub id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub active: bool,
    pub pending: bool,
    pub created: String,
    pub is_self: bool,
    pub roles: Vec<Choice>,
    /// Whether their powers are within the person's own, so that they may change them.
    pub manageable: bool,
}

pub struct InviteShown {
    pub email: String,
    pub url: String,
    pub expires: String,
}

#[derive(Template)]
#[template(path = "users.html")]
struct UsersPage {
    c: Chrome,
    users: Vec<UserRow>,
    roles: Vec<Choice>,
    invite: Option<InviteShown>,
    email: String,
}

async fn users_page(
    state: &AppState,
    s: &Session,
    flash: Option<Flash>,
    invite: Option<InviteShown>,
) -> Result<UsersPage, PageError> {
    s.require(Scope::UsersManage)?;
    let creator = s.principal.clone();
    let grantable = access::grantable_roles(&creator);
    let choices = |current: &str| -> Vec<Choice> {
        grantable
            .iter()
            .map(|r| Choice { value: r.as_str().into(), label: r.as_str().into(), selected: r.as_str() == current })
            .collect()
    };
    let mut rows = Vec::new();
    for u in state.store.list_users(&s.principal.org.id).await? {
        rows.push(UserRow {
            pending: !state.store.has_password(&u.id).await?,
            id: u.id.to_string(),
            name: u.name.clone().unwrap_or_default(),
            role: u.role.as_str().into(),
            active: u.active,
            created: when(u.created_at),
            is_self: u.id == s.user.id,
            roles: choices(u.role.as_str()),
            manageable: u.role.scopes().first_beyond(&creator.scopes).is_none(),
            email: u.email,
        });
    }
    Ok(UsersPage {
        c: Chrome::new(s, "Users", PAGE, flash),
        users: rows,
        roles: choices("member"),
        invite,
        email: String::new(),
    })
}

pub async fn page(State(state): State<AppState>, s: Session, headers: HeaderMap) -> PageResult {
    let flash = take_flash(&headers);
    let had = flash.is_some();
    Ok(cleared(render(&users_page(&state, &s, flash, None).await?), had))
}

#[derive(Deserialize)]
pub struct InviteForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub async fn invite(
    State(state): State<AppState>,
    Posted { session: s, form: f, .. }: Posted<InviteForm>,
) -> PageResult {
    s.require(Scope::UsersManage)?;
    match access::invite(&state.store, &s.principal, &f.email, &f.role, &state.settings.public_url).await {
        Ok((user, link)) => {
            let shown = InviteShown { email: user.email, url: link.url, expires: when(link.expires_at) };
            let page = users_page(&state, &s, None, Some(shown)).await?;
            Ok((StatusCode::CREATED, render(&page)).into_response())
        }
        Err(KeyError::Store(e)) => Err(e.into()),
        Err(e) => {
            let mut page = users_page(&state, &s, Flash::error(e.to_string()), None).await?;
            page.email = f.email;
            Ok((StatusCode::BAD_REQUEST, render(&page)).into_response())
        }
    }
}

async fn target(state: &AppState, s: &Session, id: &UserId) -> Result<User, PageError> {
    state.store.user_by_id(&s.principal.org.id, id).await?.ok_or_else(PageError::not_found)
}

#[derive(Deserialize)]
pub struct RoleForm {
    #[serde(default)]
    role: String,
}

pub async fn set_role(
    State(state): State<AppState>,
    Path(id): Path<UserId>,
    Posted { session: s, form: f, .. }: Posted<RoleForm>,
) -> PageResult {
    s.require(Scope::UsersManage)?;
    let user = target(&state, &s, &id).await?;
    let r = users::set_role(&state.store, &s.principal, &user.email, &f.role).await;
    finish(r, |u| format!("{} is now {}.", u.email, u.role))
}

#[derive(Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    active: String,
}

pub async fn set_active(
    State(state): State<AppState>,
    Path(id): Path<UserId>,
    Posted { session: s, form: f, .. }: Posted<ActiveForm>,
) -> PageResult {
    s.require(Scope::UsersManage)?;
    let user = target(&state, &s, &id).await?;
    let active = f.active == "true";
    let r = users::set_active(&state.store, &s.principal, &user.email, active).await;
    finish(r, |u| {
        if u.active {
            format!("{} is active again.", u.email)
        } else {
            format!("{} is deactivated: their sessions ended and their keys stopped working.", u.email)
        }
    })
}

fn finish(r: Result<users::UserView, KeyError>, ok: impl FnOnce(&users::UserView) -> String) -> PageResult {
    outcome(PAGE, r, ok)
}
