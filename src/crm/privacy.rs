//! Personal-data requests (SPEC 13): everything held about a person, by email, and its
//! erasure. Export takes `org:manage`; erasure is for owners (and the command line) alone.

use rapport_tools::{Entity, Role, Scope};
use serde::Serialize;
use serde_json::{Map, Value};

use super::{Acting, CrmError, Principal, records, timeline};
use crate::store::privacy::{Erased, Held};
use crate::store::{Store, Target};

/// What is held about one person.
#[derive(Debug, Serialize)]
pub struct PersonalData {
    pub email: String,
    pub contacts: Vec<Map<String, Value>>,
    pub notes: Vec<Map<String, Value>>,
    pub tasks: Vec<Map<String, Value>>,
    /// Activities about them, then those about other records they took part in.
    pub activities: Vec<Map<String, Value>>,
    /// Each contact's change log, newest first, by contact id.
    pub timelines: Map<String, Value>,
}

fn email_of(email: &str) -> Result<String, CrmError> {
    let e = email.trim().to_lowercase();
    if !e.contains('@') || e.len() > 320 {
        return Err(CrmError::invalid(format!("`email` is the person's email address, got {email:?}")));
    }
    Ok(e)
}

async fn held(store: &Store, p: &Principal, email: &str) -> Result<(String, Held), CrmError> {
    let email = email_of(email)?;
    let held = store.held_about(p.org_id(), &email).await?;
    Ok((email, held))
}

pub async fn export(store: &Store, p: &Principal, email: &str) -> Result<PersonalData, CrmError> {
    p.require(Scope::OrgManage)?;
    let (email, held) = held(store, p, email).await?;
    let visible = p.visible_changes();
    let mut timelines = Map::new();
    for c in &held.contacts {
        let entries = store.timeline(p.org_id(), Entity::Contact, &c.id, &visible, None, 1_000).await?;
        let entries: Vec<Value> =
            entries.into_iter().map(|e| serde_json::to_value(timeline::entry(e)).unwrap_or_default()).collect();
        timelines.insert(c.id.as_str().to_owned(), Value::Array(entries));
    }
    Ok(PersonalData {
        email,
        contacts: held.contacts.iter().map(records::to_wire).collect(),
        notes: held.notes.iter().map(records::to_wire).collect(),
        tasks: held.tasks.iter().map(records::to_wire).collect(),
        activities: held.activities.iter().chain(&held.participated).map(records::to_wire).collect(),
        timelines,
    })
}

/// What an erasure did.
#[derive(Debug, Serialize)]
pub struct ErasureResult {
    pub email: String,
    pub erased: Erased,
}

/// Whether `p` may erase: an owner (or the command line) with `org:manage`.
pub fn may_erase(p: &Principal) -> bool {
    let owner = match &p.acting {
        Acting::Cli => true,
        _ => p.user().is_some_and(|u| u.role == Role::Owner),
    };
    owner && p.scopes.contains(&Scope::OrgManage)
}

/// Deletes the person's records for good and erases their values wherever copies were
/// kept. Owners only: it cannot be undone.
pub async fn erase(store: &Store, p: &Principal, email: &str) -> Result<ErasureResult, CrmError> {
    if !may_erase(p) {
        return Err(CrmError::Denied(
            "only an owner may erase a person's data: it deletes records for good and cannot be undone".into(),
        ));
    }
    let (email, held) = held(store, p, email).await?;
    if held.is_empty() {
        return Err(CrmError::Missing(format!(
            "no contact of this organization has the email {email}; nothing was erased"
        )));
    }
    // The audit log says that an erasure happened and what it touched, never what was erased.
    let details = serde_json::json!({
        "contacts": held.contacts.len(),
        "notes": held.notes.len(),
        "tasks": held.tasks.len(),
        "activities": held.activities.len(),
    });
    let audit = p.audit("person.erased", Target::Org(p.org.name.as_str()), details);
    let erased = store.erase(p.org_id(), &held, &audit).await?;
    Ok(ErasureResult { email, erased })
}
