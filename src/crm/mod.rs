//! The CRM domain: parsing tool input into valid values, the rules records obey, and the
//! answers tools give. It speaks to storage only through `store::Store`.

pub mod cursor;
pub mod error;
pub mod fields;
pub mod filter;
pub mod records;
pub mod validate;
pub mod workspace;

pub use error::CrmError;

use rapport_tools::{Scope, Scopes};

use crate::store::Actor;

/// Who is acting, in which organization, with which effective scopes.
#[derive(Debug, Clone)]
pub struct Caller {
    pub org_id: String,
    pub org_name: String,
    pub user_id: String,
    pub scopes: Scopes,
    pub actor: Actor,
    pub ip: Option<String>,
}

impl Caller {
    pub fn require(&self, scope: Scope) -> Result<(), CrmError> {
        if self.scopes.contains(&scope) { Ok(()) } else { Err(CrmError::Forbidden(scope)) }
    }
}

/// Most records one call may create, update, fetch or delete.
pub const MAX_BATCH: usize = 100;
/// Largest page `search_records` returns.
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 25;
