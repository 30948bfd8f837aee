//! The contract of Rapport's MCP tools: names, titles, descriptions, annotations, the
//! scopes each needs, and the typed inputs and outputs whose JSON Schemas clients see.
//!
//! This crate knows nothing of storage or transport; the server parses these inputs into
//! domain types and answers with these outputs.

pub mod catalog;
pub mod inputs;
pub mod records;
pub mod scope;

pub use catalog::{Access, CATALOG, ToolDef, Toolset};
pub use scope::{Role, Scope, Scopes};
