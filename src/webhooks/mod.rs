//! Webhooks (SPEC section 10): which changes announce which events, and to whom.

pub mod deliver;
pub mod endpoints;
pub mod events;
pub mod guard;
pub mod payload;
pub mod sign;

use std::sync::Arc;

use crate::store::{Announcer, Change, Record};

/// What record changes announce, as section 10 of the contract says: the store calls it
/// when it queues the deliveries of a change.
struct Events;

impl Announcer for Events {
    fn types(&self, change: &Change) -> Vec<String> {
        events::types(change)
    }

    fn subscribed(&self, patterns: &[String], event_type: &str) -> bool {
        events::subscribed(patterns, event_type)
    }

    fn record(&self, record: Option<Record>) -> serde_json::Value {
        payload::record(record)
    }

    fn body(&self, change: &Change, event_type: &str, record: &serde_json::Value) -> String {
        payload::body(change, event_type, record)
    }
}

/// The announcer every store is opened with.
pub fn announcer() -> Arc<dyn Announcer> {
    Arc::new(Events)
}
