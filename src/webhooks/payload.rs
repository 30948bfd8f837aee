//! The body of a delivery, fixed when the change is written: `{"type", "timestamp", "data":
//! {"id", "entity", "record", "changes"?, "actor"}}`. The record is as that change left it
//! (a retry hours later still describes the event, not what came after).

use serde_json::{Map, Value, json};

use crate::store::{Change, Record};

/// The record as tools show it, or null when it is gone (purged).
pub fn record(r: Option<Record>) -> Value {
    r.map_or(Value::Null, |r| Value::Object(crate::crm::records::into_wire(r)))
}

/// One event's body; `changes` only for updates (stage moves included).
pub fn body(c: &Change, event_type: &str, record: &Value) -> String {
    let entry = crate::crm::timeline::entry(Change { changes: Map::new(), ..c.clone() });
    let mut data = json!({ "id": c.record_id, "entity": c.entity.as_str(), "record": record, "actor": entry.actor });
    if c.action == crate::store::ChangeAction::Updated {
        data["changes"] = Value::Object(c.changes.clone());
    }
    json!({ "type": event_type, "timestamp": entry.at, "data": data }).to_string()
}
