//! The CRM domain: parsing tool input into valid values, the rules records obey, and the
//! answers tools give. It speaks to storage only through `store::Store`.

pub mod archive;
pub mod changes;
pub mod cursor;
pub mod duplicates;
pub mod error;
pub mod export;
pub mod fields;
pub mod filter;
pub mod import;
pub mod leads;
pub mod links;
pub mod merge;
pub mod money;
pub mod principal;
pub mod privacy;
pub mod records;
pub mod revert;
pub mod rules;
pub mod schema;
pub mod timeline;
pub mod trash;
pub mod validate;
pub mod workspace;

pub use error::CrmError;
pub use principal::{Acting, Principal};

/// Most records one call may create, update, fetch or delete.
pub const MAX_BATCH: usize = 100;
/// Largest page `search_records` returns.
pub const MAX_PAGE: u32 = 100;
pub const DEFAULT_PAGE: u32 = 25;
