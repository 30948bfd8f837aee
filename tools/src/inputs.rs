//! Tool inputs and outputs. Doc comments become the JSON Schema descriptions that models
//! read; every input object refuses unknown fields (`additionalProperties: false`).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::entities::{Entity, FieldType};
use crate::records::RecordRef;

/// A record as tools answer with it: `entity`, `id`, the entity's fields (see
/// `describe_entity`), `custom`, `created_at`, `updated_at`.
pub type Record = Map<String, Value>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    Eq,
    Ne,
    Contains,
    StartsWith,
    Gt,
    Gte,
    Lt,
    Lte,
    Between,
    In,
    NotIn,
    IsNull,
    IsNotNull,
    InLastDays,
    HasAny,
    HasNone,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "eq",
            Op::Ne => "ne",
            Op::Contains => "contains",
            Op::StartsWith => "starts_with",
            Op::Gt => "gt",
            Op::Gte => "gte",
            Op::Lt => "lt",
            Op::Lte => "lte",
            Op::Between => "between",
            Op::In => "in",
            Op::NotIn => "not_in",
            Op::IsNull => "is_null",
            Op::IsNotNull => "is_not_null",
            Op::InLastDays => "in_last_days",
            Op::HasAny => "has_any",
            Op::HasNone => "has_none",
        }
    }
}

/// One test on one field.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldCondition {
    /// A field, `custom.KEY` or a relation (describe_entity lists them).
    pub field: String,
    pub op: Op,
    /// A scalar; a list for in, not_in, has_any, has_none; [low, high] for between; days for in_last_days; none for is_null.
    #[serde(default)]
    #[schemars(schema_with = "operand")]
    pub value: Option<Value>,
}

/// What a condition compares with: text, a number, true or false, or a list of those.
fn operand(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "anyOf": [
            {"type": "string"},
            {"type": "number"},
            {"type": "boolean"},
            {"type": "array", "items": {"anyOf": [{"type": "string"}, {"type": "number"}]}}
        ]
    })
}

/// At least one of the conditions holds.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnyCondition {
    pub any: Vec<Condition>,
}

/// A field test, or `any` of several.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Condition {
    Field(FieldCondition),
    Any(AnyCondition),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    /// A sortable field or `custom.KEY`.
    pub field: String,
    #[serde(default)]
    pub direction: Direction,
}

/// No arguments.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoArguments {}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeEntityInput {
    pub entity: Entity,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRecordsInput {
    pub entity: Entity,
    /// Free text, case-insensitive.
    #[serde(default)]
    pub query: Option<String>,
    /// Conditions that must all hold.
    #[serde(default)]
    #[schemars(with = "Vec<Condition>")]
    pub filters: Vec<Value>,
    /// Default: newest first.
    #[serde(default)]
    pub sort: Vec<SortKey>,
    /// Page size, 1 to 100; default 25.
    #[serde(default)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Only these fields (plus `entity`, `id`).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CountRecordsInput {
    pub entity: Entity,
    /// Free text, as in `search_records`.
    #[serde(default)]
    pub query: Option<String>,
    /// Conditions that must all hold, written as for `search_records`.
    #[serde(default)]
    #[schemars(with = "Vec<Map<String, Value>>")]
    pub filters: Vec<Value>,
    /// Also count per value of this field (such as `stage`); deals also sum `value` per currency.
    #[serde(default)]
    pub group_by: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreRecordsInput {
    pub entity: Entity,
    /// 1 to 100 ids of records in the trash.
    pub ids: Vec<String>,
}

/// `{"from": {entity, id}, "to": {entity, id}}`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub from: RecordRef,
    pub to: RecordRef,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkRecordsInput {
    /// 1 to 100 pairs: contact-company, deal-contact, deal-company, task-any record.
    pub links: Vec<Link>,
    /// A repeat within 24 hours returns the first answer.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UnlinkRecordsInput {
    /// 1 to 100 pairs to unlink.
    pub links: Vec<Link>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRecordsInput {
    /// `contact` or `company`.
    pub entity: Entity,
    /// The record that stays.
    pub keep_id: String,
    /// 1 to 20 records merged into it and moved to the trash.
    pub merge_ids: Vec<String>,
    /// A repeat within 24 hours returns the first answer.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindDuplicatesInput {
    /// `contact` or `company`.
    pub entity: Entity,
    /// Only duplicates of these records (1 to 100), names compared among them too.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    /// Groups per page, 1 to 100; default 25.
    #[serde(default)]
    pub limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DuplicateGroup {
    /// The records that are probably one, oldest first: `merge_records` keeps the first.
    pub ids: Vec<String>,
    /// `same email`, `same phone`, `same name`, `similar name at the same company` or `similar name`.
    pub reason: String,
    /// 1 for an exact match, else how alike the names are (0.5 to 1).
    pub score: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DuplicatesResult {
    pub groups: Vec<DuplicateGroup>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchAllInput {
    /// Free text looked for in every entity you may read.
    pub query: String,
    /// Most records per entity, 1 to 25; default 5.
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetTimelineInput {
    pub entity: Entity,
    pub id: String,
    /// Entries per page, 1 to 100; default 25.
    #[serde(default)]
    pub limit: Option<i64>,
    /// `next_cursor` from the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCustomFieldInput {
    pub entity: Entity,
    /// Lowercase letters, digits and `_`, starting with a letter; filter it as `custom.KEY`.
    pub key: String,
    pub label: String,
    /// text, number, currency, date, datetime, boolean, email, phone, url, select, multi_select.
    #[serde(rename = "type")]
    pub field_type: String,
    /// The choices of a select or multi_select.
    #[serde(default)]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateCustomFieldInput {
    pub entity: Entity,
    pub key: String,
    #[serde(default)]
    pub label: Option<String>,
    /// The whole new list of choices (select types).
    #[serde(default)]
    pub options: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteCustomFieldInput {
    pub entity: Entity,
    pub key: String,
}

/// A stage as given to `create_pipeline` and `update_pipeline`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StageInput {
    pub name: String,
    /// `open` (default), `won` or `lost`.
    #[serde(default)]
    pub kind: Option<String>,
    /// In `update_pipeline`: the stage's old name, to rename it and keep its deals.
    #[serde(default)]
    pub was: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePipelineInput {
    pub name: String,
    /// The stages in order.
    pub stages: Vec<StageInput>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePipelineInput {
    /// The pipeline's current name.
    pub name: String,
    #[serde(default)]
    pub new_name: Option<String>,
    /// The whole new ordered list of stages.
    #[serde(default)]
    pub stages: Option<Vec<StageInput>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetRecordsInput {
    /// 1 to 100 records to fetch; a repeated one is read once.
    pub records: Vec<RecordRef>,
    /// Only these fields (plus `entity`, `id`).
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeleteRecordsInput {
    pub entity: Entity,
    /// 1 to 100 ids.
    pub ids: Vec<String>,
}

// ---- outputs ----

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct NamedId {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceUser {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: crate::Role,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct WorkspaceKey {
    pub id: String,
    pub name: String,
    /// The first 12 characters of the key.
    pub preview: String,
    pub expires_at: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Limits {
    /// Most records one create, update, get or delete call takes.
    pub max_batch: u32,
    /// Largest `limit` of `search_records`.
    pub max_page: u32,
    /// Requests per minute this key may make; 0 means unlimited.
    pub rate_limit_per_minute: u32,
    /// Most enabled keys the organization may hold.
    pub max_active_keys: u32,
}

/// Records the organization holds, by entity (for the entities this key may read).
pub type RecordCounts = std::collections::BTreeMap<String, u64>;

/// Who is calling, with what powers, in which organization.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Workspace {
    pub organization: NamedId,
    pub user: WorkspaceUser,
    pub key: WorkspaceKey,
    /// What this call may do: the key's scopes intersected with the user's role.
    pub scopes: Vec<String>,
    pub limits: Limits,
    /// Records the organization holds (for the entities this key may read).
    pub counts: RecordCounts,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct FieldInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    pub description: String,
    /// Operators this field accepts in `filters`.
    pub operators: Vec<Op>,
    pub sortable: bool,
    /// Whether create and update take it.
    pub writable: bool,
    /// Whether a create must give it.
    pub required: bool,
    /// For relations: the entity it points to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub references: Option<Entity>,
    /// For selects: the allowed values.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CustomFieldInfo {
    pub key: String,
    pub label: String,
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// For `select`: the allowed values.
    pub options: Vec<String>,
    /// Filter on it as `custom.KEY` with these operators.
    pub operators: Vec<Op>,
}

/// What an entity holds and how to filter it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct EntityDescription {
    pub entity: Entity,
    pub description: String,
    pub fields: Vec<FieldInfo>,
    pub custom_fields: Vec<CustomFieldInfo>,
    /// For deals: the pipelines and their stages in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipelines: Option<Vec<PipelineInfo>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct SearchResult {
    /// The records of this page.
    pub items: Vec<Record>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CountResult {
    pub count: u64,
    /// With `group_by`: the count per value, largest first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<Group>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Group {
    /// The field's value (null for records without one).
    #[schemars(with = "Option<String>")]
    pub value: Value,
    pub count: u64,
    /// For deals: the exact sum of `value` per currency, such as {"EUR": "1200.50"}.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sum: Option<std::collections::BTreeMap<String, String>>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RestoreResult {
    pub entity: Entity,
    /// The ids restored.
    pub restored: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct LinkResult {
    /// How many records changed (pairs already as asked change nothing).
    pub changed: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct MergeResult {
    /// The kept record as it now is.
    pub record: Record,
    /// The records merged into it, now in the trash.
    pub merged: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UpsertItem {
    /// `created`, `updated`, `unchanged` or `ambiguous` (several records match: nothing written).
    pub status: String,
    /// The record written or matched; null when ambiguous.
    pub record: Option<Record>,
    /// Ids of the records the key matched.
    pub matches: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UpsertResult {
    /// One entry per item given, in order.
    pub items: Vec<UpsertItem>,
}

/// Who made a change.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChangeActorInfo {
    /// `key`, `user`, `cli` or `system`.
    #[serde(rename = "type")]
    pub kind: String,
    pub id: Option<String>,
    pub name: Option<String>,
    pub user_email: Option<String>,
}

/// One change-log entry.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ChangeEntry {
    pub id: String,
    pub at: String,
    /// created, updated, deleted, restored, merged, linked, unlinked, purged.
    pub action: String,
    pub entity: String,
    pub record_id: String,
    pub actor: ChangeActorInfo,
    /// How it came: the client, tool, route, request id (one per call) and trace id.
    pub via: ViaInfo,
    /// The entries this one reverts, when it is part of a revert.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverts: Vec<String>,
    /// Each changed field: {"before", "after"}.
    pub changes: Map<String, Value>,
}

/// How a change came (unknown parts are null).
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ViaInfo {
    pub client: Option<ClientInfoOut>,
    pub tool: Option<String>,
    pub route: Option<String>,
    pub request_id: Option<String>,
    pub trace_id: Option<String>,
}

/// A client as its requests name it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ClientInfoOut {
    pub name: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TimelineResult {
    /// Newest first: the record's changes and those of its notes and tasks.
    pub items: Vec<ChangeEntry>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CustomFieldResult {
    pub entity: Entity,
    pub custom_field: CustomFieldInfo,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeletedCustomField {
    pub entity: Entity,
    /// The key removed; it and its values wait in the trash.
    pub deleted: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct StageInfo {
    pub name: String,
    /// `open`, `won` or `lost`.
    pub kind: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct PipelineInfo {
    pub name: String,
    /// In order.
    pub stages: Vec<StageInfo>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RecordsResult {
    /// The records, in the order given.
    pub items: Vec<Record>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct GetRecordsResult {
    /// The records found, in the order asked, with their relations.
    pub items: Vec<Record>,
    /// Those not found in your organization.
    pub missing: Vec<RecordRef>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct DeleteResult {
    pub entity: Entity,
    /// The ids deleted.
    pub deleted: Vec<String>,
}

/// Which changes to revert: by id, one call's `request_id`, or what one key did in a time
/// window (`key_id` with `since`, and `until` when given). Give one way.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RevertChangesInput {
    #[serde(default)]
    pub change_ids: Option<Vec<String>>,
    #[serde(default)]
    pub request_id: Option<String>,
    #[serde(default)]
    pub key_id: Option<String>,
    /// RFC 3339.
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    /// Apply what has no conflict, skip the rest.
    #[serde(default)]
    pub force: Option<bool>,
}

/// A change a revert could not undo, and why.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RevertConflict {
    pub change_id: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct RevertResult {
    /// The ids of the changes undone.
    pub reverted: Vec<String>,
    /// What was skipped (with force) and why.
    pub skipped: Vec<RevertConflict>,
    /// What comes back short of how it was (a custom field purged from the trash returns
    /// without its values).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// The revert's own change entries (each names what it reverts).
    pub changes: Vec<ChangeEntry>,
}
