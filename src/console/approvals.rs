//! Approvals (SPEC 12): the calls that wait for a person, with what each would change, and
//! Approve and Deny for those whose role covers the call; what was decided, below.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::Deserialize;

use super::activity::{ChangeRow, change_row, people_menu, record_names};
use super::session::{Posted, Session};
use super::{Chrome, Flash, PageResult, ago, back, cleared, render, take_flash, when};
use crate::service::approvals::{self as a, DecideError};
use crate::state::AppState;
use crate::store::{Approval, ApprovalFilter, ApprovalState, KeyId};

const PAGE: &str = "/approvals";

pub struct ApprovalCard {
    pub id: String,
    pub status: &'static str,
    pub summary: String,
    pub kinds: String,
    /// The key that asked, by name.
    pub key: String,
    /// How the call came (tool and client).
    pub via: String,
    pub asked: String,
    pub asked_ago: String,
    pub expires: String,
    pub decided: String,
    pub reason: String,
    pub rows: Vec<ChangeRow>,
    /// The person's role covers the call: they may decide it.
    pub may_decide: bool,
}

#[derive(Template)]
#[template(path = "approvals.html")]
struct ApprovalsPage {
    c: Chrome,
    waiting: Vec<ApprovalCard>,
    decided: Vec<ApprovalCard>,
}

async fn cards(state: &AppState, s: &Session, list: Vec<Approval>) -> Result<Vec<ApprovalCard>, super::PageError> {
    let p = &s.principal;
    let keys: HashMap<KeyId, String> =
        state.store.list_keys(&p.org.id, true).await?.into_iter().map(|k| (k.id, k.name)).collect();
    let users = people_menu(state, p).await?;
    let mut out = Vec::with_capacity(list.len());
    for ap in list {
        let changes = a::changes_of(&ap);
        let names = record_names(state, p, &changes).await?;
        let rows = changes.into_iter().map(|c| change_row(c, None, &names, &users, false)).collect();
        let decided = match (&ap.decided_by_email, ap.decided_at) {
            (Some(by), Some(at)) => format!("{} by {by}, {}", ap.state.as_str(), ago(at)),
            (None, Some(at)) => format!("{}, {}", ap.state.as_str(), ago(at)),
            _ => String::new(),
        };
        out.push(ApprovalCard {
            status: ap.state.as_str(),
            summary: ap.summary.clone(),
            kinds: ap.kinds.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
            key: keys.get(&ap.key_id).cloned().unwrap_or_else(|| format!("key {}", ap.key_id)),
            via: super::activity::via_words(&ap.via),
            asked: when(ap.created_at),
            asked_ago: ago(ap.created_at),
            expires: when(ap.expires_at),
            decided,
            reason: ap.reason.clone().unwrap_or_default(),
            may_decide: ap.state == ApprovalState::Pending && a::covers(&p.scopes, &ap),
            rows,
            id: ap.id,
        });
    }
    Ok(out)
}

pub async fn page(State(state): State<AppState>, s: Session, headers: HeaderMap) -> PageResult {
    let flash = take_flash(&headers);
    let had = flash.is_some();
    let p = &s.principal;
    let pending = ApprovalFilter { state: Some("pending".into()), key_id: None };
    let waiting = a::list(&state, p, pending, None, crate::store::MAX_PENDING_PER_KEY as u32).await?;
    let recent = a::list(&state, p, ApprovalFilter::default(), None, 60).await?;
    let recent: Vec<Approval> = recent.into_iter().filter(|x| x.state != ApprovalState::Pending).take(30).collect();
    let page = ApprovalsPage {
        c: Chrome::new(&s, "Approvals", PAGE, flash),
        waiting: cards(&state, &s, waiting).await?,
        decided: cards(&state, &s, recent).await?,
    };
    Ok(cleared(render(&page), had))
}

/// After a decision: back to the list, with what came of it.
fn decided(result: Result<rapport_tools::approvals::ApprovalView, DecideError>) -> PageResult {
    match result {
        Ok(v) => Ok(back(
            PAGE,
            Flash::ok(match v.status.as_str() {
                "approved" => format!("Approved: {} ran as its key.", v.tool),
                "denied" => "Denied; the agent reads your reason.".to_owned(),
                _ => format!("Approved, but it did not run: {}.", v.reason.unwrap_or_default()),
            }),
        )),
        Err(DecideError::Domain(e)) => Err(e.into()),
        Err(DecideError::Forbidden(m)) => Err(super::PageError::new(axum::http::StatusCode::FORBIDDEN, m)),
        Err(e) => Ok(back(PAGE, Flash::error(e.to_string()))),
    }
}

pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session: s, .. }: Posted,
) -> PageResult {
    decided(a::approve(&state, &s.principal, &id).await)
}

#[derive(Deserialize)]
pub struct DenyForm {
    #[serde(default)]
    reason: String,
}

pub async fn deny(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted { session: s, form: f, .. }: Posted<DenyForm>,
) -> PageResult {
    decided(a::deny(&state, &s.principal, &id, &f.reason).await)
}
