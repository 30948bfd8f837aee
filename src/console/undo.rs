//! Undo in Activity (SPEC 12): a change or a run shows its preview first (what the undo
//! would write, what it would skip and why), then undoes it on a confirmed form.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use rapport_tools::Scope;
use rapport_tools::inputs::RevertChangesInput;
use serde::Deserialize;

use super::activity::{ChangeRow, change_row, people_menu, record_names};
use super::session::{Posted, Session};
use super::{Chrome, Flash, PageError, PageResult, back, cleared, render, take_flash, urlencode};
use crate::crm::{CrmError, Principal, revert};
use crate::state::AppState;

/// What to undo: one change, or every change of one call.
#[derive(Deserialize, Default)]
pub struct Target {
    #[serde(default)]
    change: Option<String>,
    #[serde(default)]
    call: Option<String>,
}

impl Target {
    fn input(&self, force: bool) -> Result<RevertChangesInput, PageError> {
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|v| !v.is_empty()).map(str::to_owned);
        let (change, call) = (given(&self.change), given(&self.call));
        if change.is_some() == call.is_some() {
            return Err(PageError::new(axum::http::StatusCode::BAD_REQUEST, "Choose one change or one call to undo."));
        }
        Ok(RevertChangesInput {
            change_ids: change.map(|c| vec![c]),
            request_id: call,
            force: Some(force),
            ..Default::default()
        })
    }

    /// This page again, for the same target.
    fn href(&self) -> String {
        match (&self.change, &self.call) {
            (Some(c), _) => format!("/activity/undo?change={}", urlencode(c)),
            (_, Some(r)) => format!("/activity/undo?call={}", urlencode(r)),
            _ => "/activity".into(),
        }
    }
}

/// The person, as the tool that undoes.
fn undoer(s: &Session) -> Result<Principal, PageError> {
    s.require(Scope::ChangesRevert)?;
    let mut p = s.principal.clone();
    p.via.tool = Some("revert_changes".into());
    Ok(p)
}

pub struct Skipped {
    pub change_id: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "undo.html")]
struct UndoPage {
    c: Chrome,
    /// `one change` or `one call`.
    what: &'static str,
    change: String,
    call: String,
    /// How many changes the undo would undo.
    count: usize,
    /// What the undo would write.
    rows: Vec<ChangeRow>,
    skipped: Vec<Skipped>,
    notes: Vec<String>,
}

pub async fn page(
    State(state): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Query(t): Query<Target>,
) -> PageResult {
    let p = undoer(&s)?;
    let input = t.input(true)?;
    let (preview, would) = match revert::preview(&state.store, &p, input).await {
        Ok(v) => v,
        Err(CrmError::Missing(_)) => {
            return Ok(back("/activity", Flash::error("There is no such change to undo.")));
        }
        Err(e) => return Err(e.into()),
    };
    let flash = take_flash(&headers);
    let had_flash = flash.is_some();
    let names = record_names(&state, &p, &would).await?;
    let users = people_menu(&state, &p).await?;
    let rows = would.into_iter().map(|c| change_row(c, None, &names, &users, false)).collect();
    let page = UndoPage {
        c: Chrome::new(&s, "Undo", "/activity", flash),
        what: if t.call.is_some() { "one call" } else { "one change" },
        change: t.change.clone().unwrap_or_default(),
        call: t.call.clone().unwrap_or_default(),
        count: preview.reverted.len(),
        rows,
        skipped: preview.skipped.into_iter().map(|c| Skipped { change_id: c.change_id, reason: c.reason }).collect(),
        notes: preview.notes,
    };
    Ok(cleared(render(&page), had_flash))
}

#[derive(Deserialize)]
pub struct UndoForm {
    #[serde(flatten)]
    target: Target,
    /// `true`: undo what has no conflict and skip the rest.
    #[serde(default)]
    force: Option<String>,
}

pub async fn undo(State(state): State<AppState>, Posted { session: s, form: f, .. }: Posted<UndoForm>) -> PageResult {
    let p = undoer(&s)?;
    let input = f.target.input(f.force.as_deref() == Some("true"))?;
    match revert::revert(&state.store, &p, input).await {
        Ok(done) => {
            let mut text = format!("Undid {} change(s).", done.reverted.len());
            if !done.skipped.is_empty() {
                text.push_str(&format!(" Skipped {} that changed since.", done.skipped.len()));
            }
            for n in &done.notes {
                text.push_str(&format!(" Note: {n}."));
            }
            text.push_str(" The undo is listed here; Undo on it brings the changes back.");
            let to = p
                .via
                .request_id
                .as_deref()
                .map_or_else(|| "/activity".to_owned(), |r| format!("/activity?call={}", urlencode(r)));
            Ok(back(&to, Flash::ok(text)))
        }
        // Something changed since the preview: back to it, which shows what now stands.
        Err(CrmError::Conflict(m) | CrmError::Invalid(m)) => Ok(back(&f.target.href(), Flash::error(m))),
        Err(CrmError::Missing(_)) => Ok(back("/activity", Flash::error("There is no such change to undo."))),
        Err(e) => Err(e.into()),
    }
}
