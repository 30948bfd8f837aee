//! The tool catalog: one entry per tool, in the order `tools/list` shows them. The tools
//! that write records are derived from the entity descriptions.

use std::borrow::Cow;
use std::sync::LazyLock;

use schemars::JsonSchema;
use serde_json::{Map, Value, json};

use crate::call::{Effect, Tool};
use crate::entities::{Entity, EntityDef};
use crate::inputs::*;
use crate::scope::{Scope, Scopes};
use crate::webhooks::*;

/// Groups of tools a client can ask for with `?toolsets=` on the endpoint URL: `core`
/// tools work across entities and are always listed; each entity's write tools form a set
/// named after it (`contacts`, `deals`, …); `schema` holds custom fields and pipelines;
/// `webhooks` the endpoints and their deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Toolset {
    Core,
    Entity(Entity),
    Schema,
    Webhooks,
}

impl Toolset {
    pub fn as_str(self) -> &'static str {
        match self {
            Toolset::Core => "core",
            Toolset::Entity(e) => e.plural(),
            Toolset::Schema => "schema",
            Toolset::Webhooks => "webhooks",
        }
    }

    pub fn parse(s: &str) -> Option<Toolset> {
        match s {
            "core" => Some(Toolset::Core),
            "schema" => Some(Toolset::Schema),
            "webhooks" => Some(Toolset::Webhooks),
            other => Entity::ALL.iter().find(|e| e.plural() == other).map(|e| Toolset::Entity(*e)),
        }
    }
}

/// Which tools `tools/list` shows (SPEC 5): `lean`, the default, a few generic tools that
/// reach everything; `full`, the typed catalog. `tools/call` takes every tool of both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Profile {
    #[default]
    Lean,
    Full,
}

impl Profile {
    pub fn as_str(self) -> &'static str {
        match self {
            Profile::Lean => "lean",
            Profile::Full => "full",
        }
    }

    pub fn parse(s: &str) -> Option<Profile> {
        match s {
            "lean" => Some(Profile::Lean),
            "full" => Some(Profile::Full),
            _ => None,
        }
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
    /// The scope this picks from at least one entity (say, any `:read`).
    AnyEntity(fn(&EntityDef) -> Scope),
    /// The scope this picks from at least one entity, or one of these.
    AnyEntityOr(fn(&EntityDef) -> Scope, &'static [Scope]),
}

impl Access {
    pub fn allows(self, scopes: &Scopes) -> bool {
        match self {
            Access::Always => true,
            Access::All(needed) => needed.iter().all(|s| scopes.contains(s)),
            Access::Any(needed) => needed.iter().any(|s| scopes.contains(s)),
            Access::AnyEntity(pick) => Entity::ALL.iter().any(|e| scopes.contains(&pick(e.def()))),
            Access::AnyEntityOr(pick, more) => {
                Access::AnyEntity(pick).allows(scopes) || more.iter().any(|s| scopes.contains(s))
            }
        }
    }
}

/// One tool's contract.
#[derive(Debug, Clone)]
pub struct ToolDef {
    pub name: &'static str,
    pub title: Cow<'static, str>,
    pub description: Cow<'static, str>,
    pub toolset: Toolset,
    pub access: Access,
    pub read_only: bool,
    pub destructive: bool,
    pub idempotent: bool,
    pub input_schema: Map<String, Value>,
    pub output_schema: Map<String, Value>,
    /// The tool, by type: what dispatch matches on.
    pub tool: Tool,
}

impl ToolDef {
    /// Whether `tools/list` shows it in `profile`: the families in `lean` only, the tools
    /// they stand for in `full` only, every other tool in both.
    pub fn listed_in(&self, profile: Profile) -> bool {
        match profile {
            Profile::Lean => self.tool.family().is_none(),
            Profile::Full => !self.tool.is_family(),
        }
    }

    /// The tool of that name: a hash lookup, as every `tools/call` makes one.
    pub fn find(name: &str) -> Option<&'static ToolDef> {
        static BY_NAME: LazyLock<std::collections::HashMap<&'static str, &'static ToolDef>> =
            LazyLock::new(|| catalog().iter().map(|t| (t.name, t)).collect());
        BY_NAME.get(name).copied()
    }

    /// The catalog's entry for `tool`; every tool has one (`call.rs` tests it).
    pub fn of(tool: Tool) -> &'static ToolDef {
        catalog().iter().find(|t| t.tool == tool).expect("every tool is in the catalog")
    }

    /// The example call at the end of the description.
    pub fn example(&self) -> &str {
        self.description.rsplit("Example: ").next().unwrap_or("").trim()
    }
}

fn raw_schema<T: JsonSchema>() -> Map<String, Value> {
    let schema = schemars::generate::SchemaSettings::draft2020_12().into_generator().into_root_schema_for::<T>();
    match serde_json::to_value(schema) {
        Ok(Value::Object(mut map)) => {
            map.remove("$schema");
            map
        }
        _ => Map::new(),
    }
}

/// The input schema of `T`: portable, without titles, defaults or null branches.
pub fn schema_of<T: JsonSchema>() -> Map<String, Value> {
    let mut map = raw_schema::<T>();
    crate::schema::lean_input(&mut map);
    crate::schema::portable(&mut map);
    map
}

/// The whole schema of an answer `T`, nullable values included, made portable: for documents
/// such as OpenAPI, where an answer's every field is described.
pub fn answer_of<T: JsonSchema>() -> Map<String, Value> {
    let mut map = raw_schema::<T>();
    crate::schema::portable(&mut map);
    map
}

/// The output schema of `T`: its top level only.
pub fn output_of<T: JsonSchema>() -> Map<String, Value> {
    let mut map = crate::schema::lean_output(&raw_schema::<T>());
    crate::schema::portable(&mut map);
    map
}

#[allow(clippy::too_many_arguments)]
fn fixed(
    tool: Tool,
    title: &'static str,
    description: &'static str,
    access: Access,
    (read_only, destructive, idempotent): (bool, bool, bool),
    input_schema: Map<String, Value>,
    output_schema: Map<String, Value>,
) -> ToolDef {
    ToolDef {
        name: tool.name(),
        title: title.into(),
        description: description.into(),
        toolset: Toolset::Core,
        access,
        read_only,
        destructive,
        idempotent,
        input_schema,
        output_schema,
        tool,
    }
}

const READ: (bool, bool, bool) = (true, false, true);

/// The whole catalog, built once.
pub fn catalog() -> &'static [ToolDef] {
    static CATALOG: LazyLock<Vec<ToolDef>> = LazyLock::new(build);
    &CATALOG
}

fn build() -> Vec<ToolDef> {
    let any_read = Access::AnyEntity(|d| d.read);
    let mut tools = vec![
        fixed(
            Tool::GetWorkspace,
            "Get workspace",
            include_str!("descriptions/get_workspace.md"),
            Access::Always,
            READ,
            schema_of::<NoArguments>(),
            output_of::<Workspace>(),
        ),
        fixed(
            Tool::DescribeEntity,
            "Describe an entity",
            include_str!("descriptions/describe_entity.md"),
            any_read,
            READ,
            schema_of::<DescribeEntityInput>(),
            output_of::<EntityDescription>(),
        ),
        fixed(
            Tool::SearchRecords,
            "Search records",
            include_str!("descriptions/search_records.md"),
            any_read,
            READ,
            schema_of::<SearchRecordsInput>(),
            output_of::<SearchResult>(),
        ),
        fixed(
            Tool::CountRecords,
            "Count records",
            include_str!("descriptions/count_records.md"),
            any_read,
            READ,
            schema_of::<CountRecordsInput>(),
            output_of::<CountResult>(),
        ),
        fixed(
            Tool::GetRecords,
            "Get records by id",
            include_str!("descriptions/get_records.md"),
            any_read,
            READ,
            schema_of::<GetRecordsInput>(),
            output_of::<GetRecordsResult>(),
        ),
        fixed(
            Tool::SearchAll,
            "Search everything",
            include_str!("descriptions/search_all.md"),
            any_read,
            READ,
            schema_of::<SearchAllInput>(),
            records_output("The records found, best first, each with its entity."),
        ),
        fixed(
            Tool::GetTimeline,
            "Get a record's timeline",
            include_str!("descriptions/get_timeline.md"),
            any_read,
            READ,
            schema_of::<GetTimelineInput>(),
            output_of::<TimelineResult>(),
        ),
        fixed(
            Tool::FindDuplicates,
            "Find duplicates",
            include_str!("descriptions/find_duplicates.md"),
            Access::Any(&[Scope::ContactsRead, Scope::CompaniesRead]),
            READ,
            schema_of::<FindDuplicatesInput>(),
            output_of::<DuplicatesResult>(),
        ),
    ];
    for e in Entity::ALL {
        tools.extend(crate::schema::write_tools(e.def()));
    }
    let any_write = Access::AnyEntity(|d| d.write);
    let any_delete = Access::AnyEntity(|d| d.delete);
    const WRITE: (bool, bool, bool) = (false, false, false);
    const SCHEMA: &[Scope] = &[Scope::SchemaManage];
    let mut rest = vec![
        fixed(
            Tool::LinkRecords,
            "Link records",
            include_str!("descriptions/link_records.md"),
            any_write,
            (false, false, true),
            schema_of::<LinkRecordsInput>(),
            output_of::<LinkResult>(),
        ),
        fixed(
            Tool::UnlinkRecords,
            "Unlink records",
            include_str!("descriptions/unlink_records.md"),
            any_write,
            (false, true, true),
            schema_of::<UnlinkRecordsInput>(),
            output_of::<LinkResult>(),
        ),
        fixed(
            Tool::MergeRecords,
            "Merge duplicates",
            include_str!("descriptions/merge_records.md"),
            Access::Any(&[Scope::ContactsDelete, Scope::CompaniesDelete]),
            (false, true, false),
            schema_of::<MergeRecordsInput>(),
            output_of::<MergeResult>(),
        ),
        fixed(
            Tool::DeleteRecords,
            "Delete records",
            include_str!("descriptions/delete_records.md"),
            any_delete,
            (false, true, true),
            schema_of::<DeleteRecordsInput>(),
            output_of::<DeleteResult>(),
        ),
        fixed(
            Tool::RestoreRecords,
            "Restore deleted records",
            include_str!("descriptions/restore_records.md"),
            any_delete,
            (false, false, true),
            schema_of::<RestoreRecordsInput>(),
            output_of::<RestoreResult>(),
        ),
        fixed(
            Tool::CreateCustomField,
            "Create a custom field",
            include_str!("descriptions/create_custom_field.md"),
            Access::All(SCHEMA),
            WRITE,
            schema_of::<CreateCustomFieldInput>(),
            output_of::<CustomFieldResult>(),
        ),
        fixed(
            Tool::UpdateCustomField,
            "Update a custom field",
            include_str!("descriptions/update_custom_field.md"),
            Access::All(SCHEMA),
            (false, true, true),
            schema_of::<UpdateCustomFieldInput>(),
            output_of::<CustomFieldResult>(),
        ),
        fixed(
            Tool::DeleteCustomField,
            "Delete a custom field",
            include_str!("descriptions/delete_custom_field.md"),
            Access::All(SCHEMA),
            (false, true, true),
            schema_of::<DeleteCustomFieldInput>(),
            output_of::<DeletedCustomField>(),
        ),
        fixed(
            Tool::CreatePipeline,
            "Create a pipeline",
            include_str!("descriptions/create_pipeline.md"),
            Access::All(SCHEMA),
            WRITE,
            schema_of::<CreatePipelineInput>(),
            output_of::<PipelineInfo>(),
        ),
        fixed(
            Tool::UpdatePipeline,
            "Update a pipeline",
            include_str!("descriptions/update_pipeline.md"),
            Access::All(SCHEMA),
            (false, true, true),
            schema_of::<UpdatePipelineInput>(),
            output_of::<PipelineInfo>(),
        ),
    ];
    const HOOKS: Access = Access::All(&[Scope::WebhooksManage]);
    rest.extend([
        fixed(
            Tool::CreateWebhook,
            "Create a webhook",
            include_str!("descriptions/create_webhook.md"),
            HOOKS,
            WRITE,
            schema_of::<CreateWebhookInput>(),
            output_of::<Webhook>(),
        ),
        fixed(
            Tool::UpdateWebhook,
            "Update a webhook",
            include_str!("descriptions/update_webhook.md"),
            HOOKS,
            WRITE,
            schema_of::<UpdateWebhookInput>(),
            output_of::<Webhook>(),
        ),
        fixed(
            Tool::DeleteWebhook,
            "Delete a webhook",
            include_str!("descriptions/delete_webhook.md"),
            HOOKS,
            (false, true, true),
            schema_of::<WebhookIdInput>(),
            output_of::<DeletedWebhook>(),
        ),
        fixed(
            Tool::ListWebhooks,
            "List webhooks",
            include_str!("descriptions/list_webhooks.md"),
            HOOKS,
            READ,
            schema_of::<NoArguments>(),
            output_of::<WebhookList>(),
        ),
        fixed(
            Tool::ListWebhookDeliveries,
            "List a webhook's deliveries",
            include_str!("descriptions/list_webhook_deliveries.md"),
            HOOKS,
            READ,
            schema_of::<ListWebhookDeliveriesInput>(),
            output_of::<WebhookDeliveries>(),
        ),
        fixed(
            Tool::ResendWebhookDelivery,
            "Resend a webhook delivery",
            include_str!("descriptions/resend_webhook_delivery.md"),
            HOOKS,
            (false, false, false),
            schema_of::<ResendWebhookDeliveryInput>(),
            output_of::<WebhookDelivery>(),
        ),
    ]);
    rest.push(fixed(
        Tool::RevertChanges,
        "Undo changes",
        include_str!("descriptions/revert_changes.md"),
        Access::All(&[Scope::ChangesRevert]),
        (false, true, false),
        schema_of::<RevertChangesInput>(),
        output_of::<RevertResult>(),
    ));
    rest.push(fixed(
        Tool::GetApproval,
        "Check a held call",
        include_str!("descriptions/get_approval.md"),
        // Only a key that may write can have a call held.
        Access::AnyEntityOr(|d| d.write, &[Scope::SchemaManage, Scope::WebhooksManage, Scope::ChangesRevert]),
        READ,
        schema_of::<crate::approvals::GetApprovalInput>(),
        // The answer is an `ApprovalView`; the schema names what a model acts on.
        object(json!({
            "type": "object",
            "properties": {
                "id": { "type": "string" },
                "status": { "type": "string", "enum": ["pending", "approved", "denied", "stale", "expired"] },
                "summary": { "type": "string" },
                "result": { "type": "object", "description": "When approved: what the call answered." },
                "reason": { "type": "string", "description": "Why it was denied, or went stale." }
            },
            "required": ["id", "status"]
        })),
    ));
    for t in &mut rest {
        if t.name.ends_with("_custom_field") || t.name.ends_with("_pipeline") {
            t.toolset = Toolset::Schema;
        }
        if t.name.contains("webhook") {
            t.toolset = Toolset::Webhooks;
        }
    }
    tools.extend(rest);
    tools.push(write_records(any_write));
    tools.push(family(
        Tool::ManageCustomFields,
        "Manage custom fields",
        include_str!("descriptions/manage_custom_fields.md"),
        &tools,
    ));
    tools.push(family(
        Tool::ManagePipelines,
        "Manage pipelines",
        include_str!("descriptions/manage_pipelines.md"),
        &tools,
    ));
    tools.push(family(
        Tool::ManageWebhooks,
        "Manage webhooks",
        include_str!("descriptions/manage_webhooks.md"),
        &tools,
    ));
    for t in tools.iter_mut().filter(|t| t.tool.effect() != Effect::Read) {
        previewable(t);
    }
    tools
}

/// `write_records`: every entity's create, update and upsert in one tool, its items
/// described by `describe_entity` rather than here.
fn write_records(access: Access) -> ToolDef {
    let entities: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
    let input = object(json!({
        "type": "object",
        "properties": {
            "entity": { "type": "string", "enum": entities },
            "mode": { "type": "string", "enum": ["create", "update", "upsert"] },
            "items": {
                "type": "array",
                "items": { "type": "object" },
                "minItems": 1,
                "maxItems": 100,
                "description": "Records with the fields describe_entity lists; update items carry `id`."
            },
            "idempotency_key": { "type": "string" }
        },
        "required": ["entity", "mode", "items"],
        "additionalProperties": false
    }));
    ToolDef {
        name: Tool::WriteRecords.name(),
        title: "Write records".into(),
        description: include_str!("descriptions/write_records.md").into(),
        toolset: Toolset::Core,
        access,
        read_only: false,
        destructive: true,
        idempotent: false,
        input_schema: input,
        output_schema: records_output("As written, in the order given."),
        tool: Tool::WriteRecords,
    }
}

/// A family of administrative tools as one: `action` names the member, and the arguments
/// are the members' own, so the schema is theirs merged.
fn family(tool: Tool, title: &'static str, description: &'static str, all: &[ToolDef]) -> ToolDef {
    let members: Vec<&ToolDef> = tool
        .members()
        .iter()
        .map(|(_, m)| all.iter().find(|d| d.tool == *m).expect("a member is in the catalog"))
        .collect();
    let actions: Vec<&str> = tool.members().iter().map(|(a, _)| *a).collect();
    let mut props = Map::new();
    let mut defs = Map::new();
    props.insert("action".into(), json!({ "type": "string", "enum": actions }));
    for m in &members {
        for (into, key) in [(&mut props, "properties"), (&mut defs, "$defs")] {
            if let Some(Value::Object(p)) = m.input_schema.get(key) {
                for (k, v) in p {
                    into.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
        }
    }
    let required_by = |m: &&ToolDef, k: &str| {
        m.input_schema.get("required").and_then(Value::as_array).is_some_and(|r| r.iter().any(|v| v == k))
    };
    let mut required = vec![json!("action")];
    required.extend(props.keys().filter(|k| members.iter().all(|m| required_by(m, k))).map(|k| json!(k)));
    let first = members[0];
    ToolDef {
        name: tool.name(),
        title: title.into(),
        description: description.into(),
        toolset: first.toolset,
        access: first.access,
        read_only: false,
        destructive: true,
        idempotent: false,
        input_schema: object(json!({
            "$defs": defs,
            "type": "object",
            "properties": props,
            "required": required,
            "additionalProperties": false
        })),
        output_schema: object(json!({ "type": "object" })),
        tool,
    }
}

/// Every tool that writes takes `dry_run` (SPEC 12), and may answer a preview instead of
/// its result: `{"dry_run": true, "result", "changes"}`. The output schema admits both.
fn previewable(t: &mut ToolDef) {
    if let Some(Value::Object(props)) = t.input_schema.get_mut("properties") {
        props.insert("dry_run".into(), json!({ "type": "boolean", "description": "Preview: change nothing." }));
    }
    t.output_schema.remove("required");
    if let Some(Value::Object(props)) = t.output_schema.get_mut("properties") {
        props.insert("dry_run".into(), json!({ "type": "boolean" }));
        props.insert("result".into(), json!({ "type": "object" }));
        props.insert("changes".into(), json!({ "type": "array" }));
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// The JSON of `{"items": [...]}` results that list records: records are described once,
/// by `describe_entity`, not in every tool's schema.
pub(crate) fn records_output(doc: &str) -> Map<String, Value> {
    object(json!({
        "type": "object",
        "properties": { "items": { "type": "array", "items": { "type": "object" }, "description": doc } },
        "required": ["items"]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tool_is_complete() {
        let mut names = std::collections::HashSet::new();
        for tool in catalog() {
            assert!(names.insert(tool.name), "{} is listed twice", tool.name);
            assert!(tool.description.contains("Example: `"), "{} needs an example", tool.name);
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            assert_eq!(tool.input_schema["additionalProperties"], false, "{}", tool.name);
            assert_eq!(tool.output_schema["type"], "object", "{}", tool.name);
            let example: Value = serde_json::from_str(tool.example().trim_matches('`')).expect("example is JSON");
            assert!(example.is_object(), "{}", tool.name);
        }
    }
}
