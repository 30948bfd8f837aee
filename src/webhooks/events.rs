//! Event names (`contact.created`, `deal.stage_changed`) and the patterns endpoints
//! subscribe with (`deal.*`, `*.deleted`, `*`). A change-log entry announces its entity and
//! action; a deal's stage move announces `deal.stage_changed` too.

use rapport_tools::Entity;

use crate::store::Change;

/// The actions an event can name: every change's but the purge, which `ChangeAction::ALL`
/// lists last.
pub const ACTIONS: [&str; 7] = {
    let mut out = [""; 7];
    let mut i = 0;
    while i < out.len() {
        out[i] = crate::store::ChangeAction::ALL[i].as_str();
        i += 1;
    }
    out
};

/// Whether the change concerns a record (custom fields and pipelines announce nothing,
/// nor does the purge of the trash).
pub fn announced(c: &Change) -> bool {
    c.entity.record().is_some() && c.action != crate::store::ChangeAction::Purged
}

/// The events a change announces, in the order they are sent.
pub fn types(c: &Change) -> Vec<String> {
    if !announced(c) {
        return Vec::new();
    }
    let mut out = vec![format!("{}.{}", c.entity, c.action)];
    if c.entity == Entity::Deal.into()
        && c.action == crate::store::ChangeAction::Updated
        && c.changes.contains_key("stage")
    {
        out.push("deal.stage_changed".to_owned());
    }
    out
}

/// What an approval announces (SPEC 12).
pub const APPROVAL_EVENTS: &[&str] = &["approval.requested", "approval.decided"];

/// The scope an endpoint's creator needs to receive events about `entity`: its records'
/// read scope, or for approvals `audit:read`.
pub fn read_scope(entity: &str) -> Option<rapport_tools::Scope> {
    match entity {
        "approval" => Some(rapport_tools::Scope::AuditRead),
        other => Entity::parse(other).map(|e| e.def().read),
    }
}

/// A valid pattern: `*`, `ENTITY.ACTION` where either part may be `*`, or an approval's
/// event (`approval.requested`, `approval.decided`, `approval.*`).
pub fn parse_pattern(p: &str) -> Result<String, String> {
    let p = p.trim();
    if p == "*" || p == "approval.*" || APPROVAL_EVENTS.contains(&p) {
        return Ok(p.to_owned());
    }
    let err = || {
        format!(
            "`{p}` is not an event pattern: use `ENTITY.ACTION` (entity {}, or *; action {} or *), `deal.stage_changed`, `approval.requested`, `approval.decided`, or `*`",
            Entity::listed(),
            ACTIONS.join(", ")
        )
    };
    let (entity, action) = p.split_once('.').ok_or_else(err)?;
    let entity_ok = entity == "*" || Entity::parse(entity).is_some();
    let action_ok = action == "*" || ACTIONS.contains(&action) || action == "stage_changed";
    if entity_ok && action_ok && (action != "stage_changed" || matches!(entity, "deal" | "*")) {
        Ok(p.to_owned())
    } else {
        Err(err())
    }
}

/// Whether an endpoint with these patterns receives events of type `ty`.
pub fn subscribed(patterns: &[String], ty: &str) -> bool {
    let (entity, action) = ty.split_once('.').unwrap_or((ty, ""));
    patterns.iter().any(|p| match p.split_once('.') {
        None => p == "*",
        Some((pe, pa)) => (pe == "*" || pe == entity) && (pa == "*" || pa == action),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_match_by_whole_parts() {
        let p = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert!(subscribed(&p(&["*"]), "deal.stage_changed"));
        assert!(subscribed(&p(&["deal.*"]), "deal.updated"));
        assert!(!subscribed(&p(&["deal.*"]), "contact.updated"));
        assert!(subscribed(&p(&["*.deleted"]), "note.deleted"));
        assert!(!subscribed(&p(&["*.deleted"]), "note.created"));
        assert!(subscribed(&p(&["contact.created", "deal.stage_changed"]), "deal.stage_changed"));
        assert!(!subscribed(&p(&["contact.created"]), "contact.creat"));
    }

    #[test]
    fn patterns_are_checked() {
        for ok in ["*", "contact.created", "deal.*", "*.deleted", "deal.stage_changed", "*.stage_changed", "*.*"] {
            assert!(parse_pattern(ok).is_ok(), "{ok}");
        }
        for bad in
            ["", "contact", "contact.", "lead.created", "contact.stage_changed", "contact.created.x", "con*.created"]
        {
            assert!(parse_pattern(bad).is_err(), "{bad}");
        }
    }
}
