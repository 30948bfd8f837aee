//! Pointers to records.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::entities::Entity;

/// A pointer to one record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    pub entity: Entity,
    /// The record's id.
    pub id: String,
}
