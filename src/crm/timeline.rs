//! `get_timeline`: what happened to a record, newest first, with who did it.

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
