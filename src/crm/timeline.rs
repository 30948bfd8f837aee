//! `get_timeline`: what happened to a record, newest first, with who did it.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rapport_tools::inputs::{ChangeActorInfo, ChangeEntry, GetTimelineInput, TimelineResult};

use super::{CrmError, DEFAULT_PAGE, MAX_PAGE, Principal};
use crate::store::{Change, RecordId, Store};
use crate::time::{self, Millis};

/// A change-log entry in the shape of SPEC section 5.
pub fn entry(c: Change) -> ChangeEntry {
    ChangeEntry {
        id: c.id,
        at: time::rfc3339(c.at),
        action: c.action.to_owned(),
        entity: c.entity,
        record_id: c.record_id,
        actor: ChangeActorInfo {
            kind: c.actor.kind.to_owned(),
            id: c.actor.id,
            name: c.actor.name,
            user_email: c.actor.user_email,
        },
        changes: c.changes,
    }
}

/// `(at, id)` of the last entry of a page, opaque to callers.
pub fn encode_cursor(c: &Change) -> String {
    URL_SAFE_NO_PAD.encode(format!("{}:{}", c.at, c.id))
}

pub fn decode_cursor(cursor: Option<&str>) -> Result<Option<(Millis, String)>, CrmError> {
    let Some(c) = cursor.filter(|c| !c.is_empty()) else { return Ok(None) };
    let bad = || CrmError::invalid("`cursor` is not one this server issued; pass `next_cursor` unchanged");
    let raw = URL_SAFE_NO_PAD.decode(c.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(raw).map_err(|_| bad())?;
    let (at, id) = text.split_once(':').ok_or_else(bad)?;
    Ok(Some((at.parse().map_err(|_| bad())?, id.to_owned())))
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
    let mut entries = store.timeline(p.org_id(), input.entity, &id, before, limit + 1).await?;
    let next_cursor = if entries.len() > limit as usize {
        entries.truncate(limit as usize);
        entries.last().map(encode_cursor)
    } else {
        None
    };
    Ok(TimelineResult { items: entries.into_iter().map(entry).collect(), next_cursor })
}
