//! The tool catalog: one entry per tool, in the order `tools/list` shows them.

use schemars::JsonSchema;
use serde_json::{Map, Value};

use crate::inputs::*;
use crate::scope::{Scope, Scopes};

/// Groups of tools a client can ask for with `?toolsets=` on the endpoint URL. `core` tools
/// work across entities and are always listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toolset {
    Core,
    Contacts,
    Companies,
}

impl Toolset {
    pub const ALL: &'static [Toolset] = &[Toolset::Core, Toolset::Contacts, Toolset::Companies];

    pub fn as_str(self) -> &'static str {
        match self {
            Toolset::Core => "core",
            Toolset::Contacts => "contacts",
            Toolset::Companies => "companies",
        }
    }

    pub fn parse(s: &str) -> Option<Toolset> {
        Toolset::ALL.iter().copied().find(|t| t.as_str() == s)
    }
}

/// Which scopes make a tool visible. Per-entity checks happen again when it is called.
#[derive(Debug, Clone, Copy)]
pub enum Access {
    /// Any valid key.
    Always,
    /// Every one of these.
    All(&'static [Scope]),
    /// At least one of these.
    Any(&'static [Scope]),
}

impl Access {
    pub fn allows(self, scopes: &Scopes) -> bool {
        match self {
            Access::Always => true,
            Access::All(needed) => needed.iter().all(|s| scopes.contains(s)),
            Access::Any(needed) => needed.iter().any(|s| scopes.contains(s)),
        }
    }
}

/// One tool's contract.
#[derive(Debug, Clone, Copy)]
pub struct ToolDef {
    pub name: &'static str,
    pub title: &'static str,
    pub description: &'static str,
    pub toolset: Toolset,
    pub access: Access,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub input_schema: fn() -> Map<String, Value>,
    pub output_schema: fn() -> Map<String, Value>,
}

impl ToolDef {
    pub fn find(name: &str) -> Option<&'static ToolDef> {
        CATALOG.iter().find(|t| t.name == name)
    }
}

/// The JSON Schema of `T` as an object, inlined where clients struggle with references.
pub fn schema_of<T: JsonSchema>() -> Map<String, Value> {
    let schema = schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(Value::Object(mut map)) => {
            map.remove("$schema");
            map
        }
        _ => Map::new(),
    }
}

const READS: &[Scope] = &[Scope::ContactsRead, Scope::CompaniesRead];
const DELETES: &[Scope] = &[Scope::ContactsDelete, Scope::CompaniesDelete];

pub static CATALOG: &[ToolDef] = &[
    ToolDef {
        name: "get_workspace",
        title: "Get workspace",
        description: include_str!("descriptions/get_workspace.md"),
        toolset: Toolset::Core,
        access: Access::Always,
        read_only: true,
        destructive: false,
        idempotent: true,
        input_schema: schema_of::<NoArguments>,
        output_schema: schema_of::<Workspace>,
    },
    ToolDef {
        name: "describe_entity",
        title: "Describe an entity",
        description: include_str!("descriptions/describe_entity.md"),
        toolset: Toolset::Core,
        access: Access::Any(READS),
        read_only: true,
        destructive: false,
        idempotent: true,
        input_schema: schema_of::<DescribeEntityInput>,
        output_schema: schema_of::<EntityDescription>,
    },
    ToolDef {
        name: "search_records",
        title: "Search records",
        description: include_str!("descriptions/search_records.md"),
        toolset: Toolset::Core,
        access: Access::Any(READS),
        read_only: true,
        destructive: false,
        idempotent: true,
        input_schema: schema_of::<SearchRecordsInput>,
        output_schema: schema_of::<SearchResult>,
    },
    ToolDef {
        name: "count_records",
        title: "Count records",
        description: include_str!("descriptions/count_records.md"),
        toolset: Toolset::Core,
        access: Access::Any(READS),
        read_only: true,
        destructive: false,
        idempotent: true,
        input_schema: schema_of::<CountRecordsInput>,
        output_schema: schema_of::<CountResult>,
    },
    ToolDef {
        name: "get_records",
        title: "Get records by id",
        description: include_str!("descriptions/get_records.md"),
        toolset: Toolset::Core,
        access: Access::Any(READS),
        read_only: true,
        destructive: false,
        idempotent: true,
        input_schema: schema_of::<GetRecordsInput>,
        output_schema: schema_of::<RecordsResult>,
    },
    ToolDef {
        name: "create_contacts",
        title: "Create contacts",
        description: include_str!("descriptions/create_contacts.md"),
        toolset: Toolset::Contacts,
        access: Access::All(&[Scope::ContactsWrite]),
        read_only: false,
        destructive: false,
        idempotent: false,
        input_schema: schema_of::<CreateContactsInput>,
        output_schema: schema_of::<RecordsResult>,
    },
    ToolDef {
        name: "update_contacts",
        title: "Update contacts",
        description: include_str!("descriptions/update_contacts.md"),
        toolset: Toolset::Contacts,
        access: Access::All(&[Scope::ContactsWrite]),
        read_only: false,
        destructive: true,
        idempotent: true,
        input_schema: schema_of::<UpdateContactsInput>,
        output_schema: schema_of::<RecordsResult>,
    },
    ToolDef {
        name: "create_companies",
        title: "Create companies",
        description: include_str!("descriptions/create_companies.md"),
        toolset: Toolset::Companies,
        access: Access::All(&[Scope::CompaniesWrite]),
        read_only: false,
        destructive: false,
        idempotent: false,
        input_schema: schema_of::<CreateCompaniesInput>,
        output_schema: schema_of::<RecordsResult>,
    },
    ToolDef {
        name: "update_companies",
        title: "Update companies",
        description: include_str!("descriptions/update_companies.md"),
        toolset: Toolset::Companies,
        access: Access::All(&[Scope::CompaniesWrite]),
        read_only: false,
        destructive: true,
        idempotent: true,
        input_schema: schema_of::<UpdateCompaniesInput>,
        output_schema: schema_of::<RecordsResult>,
    },
    ToolDef {
        name: "delete_records",
        title: "Delete records",
        description: include_str!("descriptions/delete_records.md"),
        toolset: Toolset::Core,
        access: Access::Any(DELETES),
        read_only: false,
        destructive: true,
        idempotent: true,
        input_schema: schema_of::<DeleteRecordsInput>,
        output_schema: schema_of::<DeleteResult>,
    },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_complete() {
        for tool in CATALOG {
            assert!(tool.description.contains("Example: `"), "{} needs an example", tool.name);
            let input = (tool.input_schema)();
            assert_eq!(input["type"], "object", "{}", tool.name);
            assert_eq!(input["additionalProperties"], false, "{}", tool.name);
            assert_eq!((tool.output_schema)()["type"], "object", "{}", tool.name);
        }
    }
}
