//! Tools by type: `Tool` names each tool of the catalog, `ToolCall` is a call of one with
//! its input parsed. Every front-end (MCP, REST, later the console and the CLI) turns what
//! it received into a `ToolCall` once; what a call is (reads, writes, deletes, schema or
//! webhooks, how many records it names) is a method here, not a string comparison in each.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::approvals::{ApprovalKind, GetApprovalInput};
use crate::entities::Entity;
use crate::inputs::*;
use crate::webhooks::*;

/// Every tool of the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tool {
    GetWorkspace,
    DescribeEntity,
    SearchRecords,
    CountRecords,
    GetRecords,
    SearchAll,
    GetTimeline,
    FindDuplicates,
    Create(Entity),
    Update(Entity),
    Upsert(Entity),
    LinkRecords,
    UnlinkRecords,
    MergeRecords,
    DeleteRecords,
    RestoreRecords,
    CreateCustomField,
    UpdateCustomField,
    DeleteCustomField,
    CreatePipeline,
    UpdatePipeline,
    CreateWebhook,
    UpdateWebhook,
    DeleteWebhook,
    ListWebhooks,
    ListWebhookDeliveries,
    ResendWebhookDelivery,
    RevertChanges,
    GetApproval,
    /// The lean profile's families (SPEC 5): one tool for a group of full-catalog tools,
    /// resolved into the member a call names before anything else looks at it.
    WriteRecords,
    ManageCustomFields,
    ManagePipelines,
    ManageWebhooks,
}

/// What a call does, as oversight sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only.
    Read,
    /// Creates or changes records (links included).
    Write,
    /// Moves records to the trash, or folds them into others.
    Delete,
    /// Changes custom fields or pipelines.
    Schema,
    /// Changes where webhooks go.
    Webhooks,
}

impl Tool {
    /// The tool's name in the catalog.
    pub fn name(self) -> &'static str {
        match self {
            Tool::GetWorkspace => "get_workspace",
            Tool::DescribeEntity => "describe_entity",
            Tool::SearchRecords => "search_records",
            Tool::CountRecords => "count_records",
            Tool::GetRecords => "get_records",
            Tool::SearchAll => "search_all",
            Tool::GetTimeline => "get_timeline",
            Tool::FindDuplicates => "find_duplicates",
            Tool::Create(e) => e.def().tools.create,
            Tool::Update(e) => e.def().tools.update,
            Tool::Upsert(e) => e.def().tools.upsert.unwrap_or("upsert"),
            Tool::LinkRecords => "link_records",
            Tool::UnlinkRecords => "unlink_records",
            Tool::MergeRecords => "merge_records",
            Tool::DeleteRecords => "delete_records",
            Tool::RestoreRecords => "restore_records",
            Tool::CreateCustomField => "create_custom_field",
            Tool::UpdateCustomField => "update_custom_field",
            Tool::DeleteCustomField => "delete_custom_field",
            Tool::CreatePipeline => "create_pipeline",
            Tool::UpdatePipeline => "update_pipeline",
            Tool::CreateWebhook => "create_webhook",
            Tool::UpdateWebhook => "update_webhook",
            Tool::DeleteWebhook => "delete_webhook",
            Tool::ListWebhooks => "list_webhooks",
            Tool::ListWebhookDeliveries => "list_webhook_deliveries",
            Tool::ResendWebhookDelivery => "resend_webhook_delivery",
            Tool::RevertChanges => "revert_changes",
            Tool::GetApproval => "get_approval",
            Tool::WriteRecords => "write_records",
            Tool::ManageCustomFields => "manage_custom_fields",
            Tool::ManagePipelines => "manage_pipelines",
            Tool::ManageWebhooks => "manage_webhooks",
        }
    }

    /// What the tool does.
    pub fn effect(self) -> Effect {
        match self {
            Tool::GetWorkspace
            | Tool::DescribeEntity
            | Tool::SearchRecords
            | Tool::CountRecords
            | Tool::GetRecords
            | Tool::SearchAll
            | Tool::GetTimeline
            | Tool::FindDuplicates
            | Tool::ListWebhooks
            | Tool::ListWebhookDeliveries
            | Tool::GetApproval => Effect::Read,
            Tool::Create(_)
            | Tool::Update(_)
            | Tool::Upsert(_)
            | Tool::LinkRecords
            | Tool::UnlinkRecords
            | Tool::RestoreRecords
            | Tool::RevertChanges
            | Tool::WriteRecords => Effect::Write,
            Tool::MergeRecords | Tool::DeleteRecords | Tool::DeleteCustomField => Effect::Delete,
            Tool::CreateCustomField
            | Tool::UpdateCustomField
            | Tool::CreatePipeline
            | Tool::UpdatePipeline
            | Tool::ManageCustomFields
            | Tool::ManagePipelines => Effect::Schema,
            Tool::CreateWebhook
            | Tool::UpdateWebhook
            | Tool::DeleteWebhook
            | Tool::ResendWebhookDelivery
            | Tool::ManageWebhooks => Effect::Webhooks,
        }
    }

    /// Whether a call takes an `idempotency_key` (SPEC 5: creating calls, merges, links).
    pub fn takes_idempotency_key(self) -> bool {
        matches!(self, Tool::Create(_) | Tool::Upsert(_) | Tool::MergeRecords | Tool::LinkRecords | Tool::WriteRecords)
    }

    /// A family's members, by the `action` (or, for `write_records`, the `mode`) that names
    /// each; empty for every other tool.
    pub fn members(self) -> &'static [(&'static str, Tool)] {
        match self {
            Tool::ManageCustomFields => &[
                ("create", Tool::CreateCustomField),
                ("update", Tool::UpdateCustomField),
                ("delete", Tool::DeleteCustomField),
            ],
            Tool::ManagePipelines => &[("create", Tool::CreatePipeline), ("update", Tool::UpdatePipeline)],
            Tool::ManageWebhooks => &[
                ("list", Tool::ListWebhooks),
                ("create", Tool::CreateWebhook),
                ("update", Tool::UpdateWebhook),
                ("delete", Tool::DeleteWebhook),
                ("deliveries", Tool::ListWebhookDeliveries),
                ("resend", Tool::ResendWebhookDelivery),
            ],
            _ => &[],
        }
    }

    /// The lean profile's families.
    pub const FAMILIES: [Tool; 4] =
        [Tool::WriteRecords, Tool::ManageCustomFields, Tool::ManagePipelines, Tool::ManageWebhooks];

    /// Whether this is one of the lean profile's families.
    pub fn is_family(self) -> bool {
        Tool::FAMILIES.contains(&self)
    }

    /// The family that stands for this tool in the lean profile, if one does.
    pub fn family(self) -> Option<Tool> {
        match self {
            Tool::Create(_) | Tool::Update(_) | Tool::Upsert(_) => Some(Tool::WriteRecords),
            tool => Tool::FAMILIES.into_iter().find(|f| f.members().iter().any(|(_, m)| *m == tool)),
        }
    }

    /// The full-catalog tool a call of a family names, with that tool's arguments; any
    /// other tool as it is.
    pub fn resolve(self, mut args: Map<String, Value>) -> Result<(Tool, Map<String, Value>), ArgumentsError> {
        let invalid = |path: &str, message: String| ArgumentsError { path: Some(path.to_owned()), message };
        let mut take = |name: &str| match args.remove(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(invalid(name, format!("a string, got {other}"))),
            None => Err(ArgumentsError { path: None, message: format!("missing field `{name}`") }),
        };
        if self == Tool::WriteRecords {
            let entity = take("entity")?;
            let mode = take("mode")?;
            let Some(e) = Entity::parse(&entity) else {
                let known: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
                return Err(invalid("entity", format!("no entity `{entity}`; entities: {}", known.join(", "))));
            };
            let tool = match mode.as_str() {
                "create" => Tool::Create(e),
                "update" => Tool::Update(e),
                "upsert" if e.def().tools.upsert.is_some() => Tool::Upsert(e),
                "upsert" => {
                    let by: Vec<String> = Entity::ALL
                        .iter()
                        .filter_map(|e| Some(format!("{} (by {})", e.plural(), e.def().upsert_key?)))
                        .collect();
                    return Err(invalid(
                        "mode",
                        format!("{} cannot be upserted; upsert is for {}", e.plural(), by.join(", ")),
                    ));
                }
                other => return Err(invalid("mode", format!("`{other}` is not a mode: create, update or upsert"))),
            };
            let Some(items) = args.remove("items") else {
                return Err(ArgumentsError { path: None, message: "missing field `items`".into() });
            };
            if let Some(other) = args.keys().find(|k| !matches!(k.as_str(), "idempotency_key" | "dry_run")) {
                return Err(ArgumentsError {
                    path: None,
                    message: format!(
                        "unknown field `{other}`, expected entity, mode, items, idempotency_key or dry_run"
                    ),
                });
            }
            args.insert(e.plural().to_owned(), items);
            return Ok((tool, args));
        }
        let members = self.members();
        if members.is_empty() {
            return Ok((self, args));
        }
        let action = take("action")?;
        match members.iter().find(|(name, _)| *name == action) {
            Some((_, tool)) => Ok((*tool, args)),
            None => {
                let names: Vec<&str> = members.iter().map(|(name, _)| *name).collect();
                Err(invalid("action", format!("`{action}` is not an action of {}: {}", self.name(), names.join(", "))))
            }
        }
    }
}

/// A call of a tool, its input parsed into the tool's type. Record writes keep their items
/// as JSON: the domain parses each against the entity's description, naming the item.
#[derive(Debug, Clone)]
pub enum ToolCall {
    GetWorkspace,
    DescribeEntity(DescribeEntityInput),
    SearchRecords(SearchRecordsInput),
    CountRecords(CountRecordsInput),
    GetRecords(GetRecordsInput),
    SearchAll(SearchAllInput),
    GetTimeline(GetTimelineInput),
    FindDuplicates(FindDuplicatesInput),
    Create(Entity, Vec<Value>),
    Update(Entity, Vec<Value>),
    Upsert(Entity, Vec<Value>),
    LinkRecords(LinkRecordsInput),
    UnlinkRecords(UnlinkRecordsInput),
    MergeRecords(MergeRecordsInput),
    DeleteRecords(DeleteRecordsInput),
    RestoreRecords(RestoreRecordsInput),
    CreateCustomField(CreateCustomFieldInput),
    UpdateCustomField(UpdateCustomFieldInput),
    DeleteCustomField(DeleteCustomFieldInput),
    CreatePipeline(CreatePipelineInput),
    UpdatePipeline(UpdatePipelineInput),
    CreateWebhook(CreateWebhookInput),
    UpdateWebhook(UpdateWebhookInput),
    DeleteWebhook(WebhookIdInput),
    ListWebhooks,
    ListWebhookDeliveries(ListWebhookDeliveriesInput),
    ResendWebhookDelivery(ResendWebhookDeliveryInput),
    RevertChanges(RevertChangesInput),
    GetApproval(GetApprovalInput),
}

/// Arguments that do not fit the tool: where (a path such as `links[0].from`, when known)
/// and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArgumentsError {
    pub path: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ArgumentsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.path {
            Some(p) => write!(f, " at `{p}`: {}", self.message),
            None => write!(f, ": {}", self.message),
        }
    }
}

fn parse<T: DeserializeOwned>(args: Map<String, Value>) -> Result<T, ArgumentsError> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        ArgumentsError { path: (path != ".").then_some(path), message: e.inner().to_string() }
    })
}

/// The items of a record write: `{"contacts": [...]}` and nothing else.
fn items(entity: Entity, mut args: Map<String, Value>) -> Result<Vec<Value>, ArgumentsError> {
    let list = entity.plural();
    let invalid = |message: String| ArgumentsError { path: None, message };
    if let Some(other) = args.keys().find(|k| k.as_str() != list) {
        return Err(invalid(format!("unknown field `{other}`, expected `{list}`")));
    }
    match args.remove(list) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(invalid(format!("`{list}` takes a list of objects, got {other}"))),
        None => Err(invalid(format!("missing field `{list}`"))),
    }
}

impl Tool {
    /// The kinds a call of this tool is, whatever it touches (`bulk` depends on that).
    pub fn approval_kinds(self) -> &'static [ApprovalKind] {
        use ApprovalKind::*;
        match self {
            Tool::MergeRecords | Tool::DeleteRecords => &[Delete],
            Tool::DeleteCustomField => &[Delete, Schema],
            Tool::DeleteWebhook => &[Delete, Webhooks],
            Tool::CreateCustomField | Tool::UpdateCustomField | Tool::CreatePipeline | Tool::UpdatePipeline => {
                &[Schema]
            }
            Tool::CreateWebhook | Tool::UpdateWebhook | Tool::ResendWebhookDelivery => &[Webhooks],
            _ => &[],
        }
    }
}

impl ToolCall {
    /// Parses `args` as a call of `tool`.
    pub fn parse(tool: Tool, args: Map<String, Value>) -> Result<ToolCall, ArgumentsError> {
        Ok(match tool {
            family @ (Tool::WriteRecords | Tool::ManageCustomFields | Tool::ManagePipelines | Tool::ManageWebhooks) => {
                let (member, args) = family.resolve(args)?;
                ToolCall::parse(member, args)?
            }
            Tool::GetWorkspace => {
                let NoArguments {} = parse(args)?;
                ToolCall::GetWorkspace
            }
            Tool::DescribeEntity => ToolCall::DescribeEntity(parse(args)?),
            Tool::SearchRecords => ToolCall::SearchRecords(parse(args)?),
            Tool::CountRecords => ToolCall::CountRecords(parse(args)?),
            Tool::GetRecords => ToolCall::GetRecords(parse(args)?),
            Tool::SearchAll => ToolCall::SearchAll(parse(args)?),
            Tool::GetTimeline => ToolCall::GetTimeline(parse(args)?),
            Tool::FindDuplicates => ToolCall::FindDuplicates(parse(args)?),
            Tool::Create(e) => ToolCall::Create(e, items(e, args)?),
            Tool::Update(e) => ToolCall::Update(e, items(e, args)?),
            Tool::Upsert(e) => ToolCall::Upsert(e, items(e, args)?),
            Tool::LinkRecords => ToolCall::LinkRecords(parse(args)?),
            Tool::UnlinkRecords => ToolCall::UnlinkRecords(parse(args)?),
            Tool::MergeRecords => ToolCall::MergeRecords(parse(args)?),
            Tool::DeleteRecords => ToolCall::DeleteRecords(parse(args)?),
            Tool::RestoreRecords => ToolCall::RestoreRecords(parse(args)?),
            Tool::CreateCustomField => ToolCall::CreateCustomField(parse(args)?),
            Tool::UpdateCustomField => ToolCall::UpdateCustomField(parse(args)?),
            Tool::DeleteCustomField => ToolCall::DeleteCustomField(parse(args)?),
            Tool::CreatePipeline => ToolCall::CreatePipeline(parse(args)?),
            Tool::UpdatePipeline => ToolCall::UpdatePipeline(parse(args)?),
            Tool::CreateWebhook => ToolCall::CreateWebhook(parse(args)?),
            Tool::UpdateWebhook => ToolCall::UpdateWebhook(parse(args)?),
            Tool::DeleteWebhook => ToolCall::DeleteWebhook(parse(args)?),
            Tool::ListWebhooks => {
                let NoArguments {} = parse(args)?;
                ToolCall::ListWebhooks
            }
            Tool::ListWebhookDeliveries => ToolCall::ListWebhookDeliveries(parse(args)?),
            Tool::ResendWebhookDelivery => ToolCall::ResendWebhookDelivery(parse(args)?),
            Tool::RevertChanges => ToolCall::RevertChanges(parse(args)?),
            Tool::GetApproval => ToolCall::GetApproval(parse(args)?),
        })
    }

    /// Which tool this is a call of.
    pub fn tool(&self) -> Tool {
        match self {
            ToolCall::GetWorkspace => Tool::GetWorkspace,
            ToolCall::DescribeEntity(_) => Tool::DescribeEntity,
            ToolCall::SearchRecords(_) => Tool::SearchRecords,
            ToolCall::CountRecords(_) => Tool::CountRecords,
            ToolCall::GetRecords(_) => Tool::GetRecords,
            ToolCall::SearchAll(_) => Tool::SearchAll,
            ToolCall::GetTimeline(_) => Tool::GetTimeline,
            ToolCall::FindDuplicates(_) => Tool::FindDuplicates,
            ToolCall::Create(e, _) => Tool::Create(*e),
            ToolCall::Update(e, _) => Tool::Update(*e),
            ToolCall::Upsert(e, _) => Tool::Upsert(*e),
            ToolCall::LinkRecords(_) => Tool::LinkRecords,
            ToolCall::UnlinkRecords(_) => Tool::UnlinkRecords,
            ToolCall::MergeRecords(_) => Tool::MergeRecords,
            ToolCall::DeleteRecords(_) => Tool::DeleteRecords,
            ToolCall::RestoreRecords(_) => Tool::RestoreRecords,
            ToolCall::CreateCustomField(_) => Tool::CreateCustomField,
            ToolCall::UpdateCustomField(_) => Tool::UpdateCustomField,
            ToolCall::DeleteCustomField(_) => Tool::DeleteCustomField,
            ToolCall::CreatePipeline(_) => Tool::CreatePipeline,
            ToolCall::UpdatePipeline(_) => Tool::UpdatePipeline,
            ToolCall::CreateWebhook(_) => Tool::CreateWebhook,
            ToolCall::UpdateWebhook(_) => Tool::UpdateWebhook,
            ToolCall::DeleteWebhook(_) => Tool::DeleteWebhook,
            ToolCall::ListWebhooks => Tool::ListWebhooks,
            ToolCall::ListWebhookDeliveries(_) => Tool::ListWebhookDeliveries,
            ToolCall::ResendWebhookDelivery(_) => Tool::ResendWebhookDelivery,
            ToolCall::RevertChanges(_) => Tool::RevertChanges,
            ToolCall::GetApproval(_) => Tool::GetApproval,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalog_entry_is_a_tool_of_its_own_name() {
        for def in crate::catalog() {
            assert_eq!(def.tool.name(), def.name);
        }
    }

    #[test]
    fn every_example_parses_as_a_call_of_its_tool() {
        for def in crate::catalog() {
            let Value::Object(args) = serde_json::from_str(def.example().trim_matches('`')).unwrap() else {
                panic!("{}: the example is an object", def.name)
            };
            let (member, _) = def.tool.resolve(args.clone()).unwrap_or_else(|e| panic!("{}{e}", def.name));
            let call = ToolCall::parse(def.tool, args).unwrap_or_else(|e| panic!("{}{e}", def.name));
            assert_eq!(call.tool(), member, "a family's call is a call of the member it names");
        }
    }
}
