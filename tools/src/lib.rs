//! The contract of Rapport's MCP tools: the entity descriptions, names, titles,
//! descriptions, annotations, the scopes each tool needs, and the typed inputs and outputs
//! whose JSON Schemas clients see.
//!
//! This crate knows nothing of storage or transport; the server parses these inputs into
//! domain types and answers with these outputs.

pub mod approvals;
pub mod call;
pub mod catalog;
pub mod entities;
pub mod inputs;
pub mod lean;
pub mod records;
pub mod schema;
pub mod scope;
pub mod webhooks;

pub use call::{ArgumentsError, Effect, Tool, ToolCall};
pub use catalog::{Access, Profile, ToolDef, Toolset, catalog};
pub use entities::{Entity, EntityDef, Field, FieldType, Rule, Storage};
pub use scope::{Role, Scope, Scopes};
