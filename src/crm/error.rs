use rapport_tools::Entity;
use rapport_tools::Scope;

use crate::store::StoreError;

/// What can go wrong in the domain. Everything but `Store` is the caller's to fix, and the
/// message says how.
#[derive(Debug, thiserror::Error)]
pub enum CrmError {
    /// The input is wrong; the message names the field and what would be right.
    #[error("{0}")]
    Invalid(String),
    #[error("not found: {}. Use ids that search_records or a create tool returned; records of other organizations are not visible", .0.iter().map(|(e, id)| format!("{e} {id}")).collect::<Vec<_>>().join(", "))]
    NotFound(Vec<(Entity, String)>),
    /// Something other than a record is not there (a webhook, a delivery); the message says
    /// what and where to find valid ids.
    #[error("{0}")]
    Missing(String),
    #[error("{0}")]
    Conflict(String),
    #[error("this API key lacks the `{0}` scope; ask an administrator for a key that has it")]
    Forbidden(Scope),
    /// The target holds powers beyond the caller's own (SPEC 3, Authority); the message
    /// says which, and what the caller may still do.
    #[error("{0}")]
    Denied(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl CrmError {
    pub fn invalid(msg: impl Into<String>) -> Self {
        CrmError::Invalid(msg.into())
    }
}
