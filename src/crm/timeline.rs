//! `get_timeline`: what happened to a record, newest first, with who did it.

use rapport_tools::inputs::{ChangeActorInfo, ChangeEntry, ClientInfoOut, GetTimelineInput, TimelineResult, ViaInfo};

use super::{CrmError, DEFAULT_PAGE, MAX_PAGE, Principal};
use crate::store::{Change, KeyId, RecordId, Store, UserId};
use crate::time::{self, Millis};

/// A change-log entry in the shape of SPEC section 5.
pub fn entry(c: Change) -> ChangeEntry {
    ChangeEntry {
        id: c.id,
        at: time::rfc3339(c.at),
        action: c.action.as_str().to_owned(),
        entity: c.entity.as_str().to_owned(),
        record_id: c.record_id,
        actor: actor(c.actor),
        via: ViaInfo {
            client: c.via.client.map(|c| ClientInfoOut { name: c.name, version: c.version }),
            tool: c.via.tool,
            route: c.via.route,
            request_id: c.via.request_id,
            trace_id: c.via.trace_id,
        },
        reverts: c.reverts,
        changes: c.changes,
    }
}

/// Who made a change, as entries and webhook events show it.
pub fn actor(a: crate::store::ChangeActor) -> ChangeActorInfo {
    ChangeActorInfo { kind: a.kind.to_owned(), id: a.id, name: a.name, user_email: a.user_email }
}

fn decode_cursor(cursor: Option<&str>) -> Result<Option<(Millis, String)>, CrmError> {
    let Some(c) = cursor.filter(|c| !c.is_empty()) else { return Ok(None) };
    let at_id = super::cursor::decode_at_id(c.trim())
        .ok_or_else(|| CrmError::invalid("`cursor` is not one this server issued; pass `next_cursor` unchanged"))?;
    Ok(Some(at_id))
}

pub async fn timeline(store: &Store, p: &Principal, input: GetTimelineInput) -> Result<TimelineResult, CrmError> {
    p.require(input.entity.def().read)?;
    let limit = match input.limit {
        None => DEFAULT_PAGE,
        Some(n) if (1..=i64::from(MAX_PAGE)).contains(&n) => n as u32,
        Some(n) => return Err(CrmError::invalid(format!("`limit` is 1 to {MAX_PAGE}, got {n}"))),
    };
    let id = RecordId::from(input.id.as_str());
    // Deleted records keep their history; another organization's ids are not found.
    if !store.record_exists(p.org_id(), input.entity, &id).await? {
        return Err(CrmError::NotFound(vec![(input.entity, input.id)]));
    }
    let before = decode_cursor(input.cursor.as_deref())?;
    // Entries about notes, tasks or related records the caller may not read stay out, as
    // get_records leaves them out.
    let visible = p.visible_changes();
    let mut entries = store.timeline(p.org_id(), input.entity, &id, &visible, before, limit + 1).await?;
    let next_cursor = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(|c| super::cursor::encode_at_id(c.at, &c.id))
    } else {
        None
    };
    Ok(TimelineResult { items: entries.into_iter().map(entry).collect(), next_cursor })
}

/// What `/api/v1/changes` and the Activity page ask of the change log.
#[derive(Debug, Clone, Default, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogQuery {
    /// Only what this key did.
    #[serde(default)]
    pub key_id: Option<String>,
    /// Only what this person did (directly or through a key of theirs): an email or a user id.
    #[serde(default)]
    pub user: Option<String>,
    /// The same, by user id.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Only entries about this entity (`contact`, …, `custom_field`, `pipeline`).
    #[serde(default)]
    pub entity: Option<String>,
    /// Only entries about this record.
    #[serde(default)]
    pub record_id: Option<String>,
    /// Only what came from this client (its name, as `via.client.name` shows it).
    #[serde(default)]
    pub client: Option<String>,
    /// Only what this tool did.
    #[serde(default)]
    pub tool: Option<String>,
    /// Only the changes of one call.
    #[serde(default)]
    pub request_id: Option<String>,
    /// Only the changes of one W3C trace.
    #[serde(default)]
    pub trace_id: Option<String>,
    /// Made at or after this time (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Made before this time (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
    /// Entries per page, 1 to 500; default 50.
    #[serde(default)]
    #[schemars(range(min = 1, max = 500))]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

/// A page of the change log.
#[derive(Debug, serde::Serialize, schemars::JsonSchema)]
pub struct LogPage {
    pub items: Vec<ChangeEntry>,
    pub next_cursor: Option<String>,
}

fn instant(v: Option<String>, name: &str) -> Result<Option<Millis>, CrmError> {
    v.filter(|s| !s.trim().is_empty())
        .map(|s| {
            time::parse_instant(s.trim()).ok_or_else(|| {
                CrmError::invalid(format!("`{name}` takes a time such as 2026-01-31T09:00:00Z, got {s:?}"))
            })
        })
        .transpose()
}

/// The change log, newest first (`audit:read`, refusals audited): who changed what, how it
/// came, with the values of the entities the caller may read only.
pub async fn log(store: &Store, p: &Principal, q: LogQuery) -> Result<LogPage, CrmError> {
    p.require_audited(store, rapport_tools::Scope::AuditRead).await.map_err(CrmError::Forbidden)?;
    let limit = q.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(CrmError::invalid(format!("`limit` is 1 to 500, got {limit}")));
    }
    let before = decode_cursor(q.cursor.as_deref())?;
    let user_id = match (q.user, q.user_id) {
        (Some(u), _) if u.contains('@') => {
            // An email no user has matches nothing, rather than everything.
            let found = store.user_by_email(p.org_id(), &u.trim().to_lowercase()).await?;
            Some(found.map_or_else(|| format!("no user {u}"), |u| u.id.into_string()))
        }
        (Some(u), _) => Some(u),
        (None, id) => id,
    };
    let nonempty = |v: Option<String>| v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
    let filter = crate::store::ChangeFilter {
        key_id: nonempty(q.key_id).map(KeyId::from),
        user_id: nonempty(user_id).map(UserId::from),
        entity: nonempty(q.entity),
        record_id: nonempty(q.record_id),
        client: nonempty(q.client),
        tool: nonempty(q.tool),
        request_id: nonempty(q.request_id),
        trace_id: nonempty(q.trace_id),
        since: instant(q.since, "since")?,
        until: instant(q.until, "until")?,
        visible: Some(p.visible_changes()),
    };
    let mut items = store.list_changes(p.org_id(), &filter, before, limit + 1).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|c| super::cursor::encode_at_id(c.at, &c.id))
    } else {
        None
    };
    Ok(LogPage { items: items.into_iter().map(entry).collect(), next_cursor })
}
