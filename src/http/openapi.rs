//! The OpenAPI 3.1 document of the REST API, built once from the same sources the routes
//! use: the entity descriptions (a record schema and the routes of each entity) and the
//! tool catalog (request bodies are the tools' input schemas, answers their outputs). A
//! snapshot test pins it, and another checks that every path it lists is served.

use std::sync::LazyLock;

use axum::Json;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use rapport_tools::{Entity, FieldType, ToolDef};
use serde_json::{Map, Value, json};

/// The document, built on first use.
pub fn document() -> &'static Value {
    static DOC: LazyLock<Value> = LazyLock::new(build);
    &DOC
}

pub async fn serve() -> Response {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(document())).into_response()
}

/// Collects the `$defs` of the tool schemas it is given into `components/schemas`.
struct Schemas {
    components: Map<String, Value>,
}

impl Schemas {
    /// `schema` with its `$defs` moved to the components and its refs pointed there.
    fn take(&mut self, schema: &Map<String, Value>) -> Value {
        let mut s = schema.clone();
        if let Some(Value::Object(defs)) = s.remove("$defs") {
            for (name, def) in defs {
                let def = retarget(def);
                self.components.entry(name).or_insert(def);
            }
        }
        retarget(Value::Object(s))
    }

    /// A tool's input schema as a request body, without the fields the path supplies.
    fn body(&mut self, tool: &str, drop: &[&str]) -> Value {
        let def = ToolDef::find(tool).expect("a tool of the catalog");
        let mut v = self.take(&def.input_schema);
        strip(&mut v, drop);
        // REST takes a dry run as `?dry_run=true`, answered 200 whatever the route's status.
        strip(&mut v, &["dry_run"]);
        v
    }

    fn output(&mut self, tool: &str) -> Value {
        let def = ToolDef::find(tool).expect("a tool of the catalog");
        self.take(&def.output_schema)
    }
}

fn retarget(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| match (k.as_str(), &v) {
                    ("$ref", Value::String(r)) => (k, Value::String(r.replace("#/$defs/", "#/components/schemas/"))),
                    _ => (k, retarget(v)),
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(retarget).collect()),
        other => other,
    }
}

fn strip(schema: &mut Value, fields: &[&str]) {
    if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
        for f in fields {
            props.remove(*f);
        }
    }
    if let Some(req) = schema.get_mut("required").and_then(Value::as_array_mut) {
        req.retain(|r| !fields.iter().any(|f| r == f));
    }
}

fn nullable(s: Value) -> Value {
    json!({ "anyOf": [s, { "type": "null" }] })
}

/// A record of `entity` as the API answers it: every field (null when empty), `custom`,
/// and the related records reads add.
fn record_schema(entity: Entity) -> Value {
    let def = entity.def();
    let mut props = Map::new();
    props.insert("entity".into(), json!({ "type": "string", "const": entity.as_str() }));
    props.insert("id".into(), json!({ "type": "string" }));
    for f in def.stored() {
        if f.name == "id" {
            continue;
        }
        let s = rapport_tools::schema::value_schema(f);
        let s = match f.ty {
            FieldType::Tags | FieldType::MultiSelect | FieldType::Relations => s,
            _ => nullable(s),
        };
        props.insert(f.name.into(), s);
    }
    props.insert("custom".into(), json!({ "type": "object", "description": "Custom field values by key." }));
    props.insert("created_at".into(), json!({ "type": "string", "format": "date-time" }));
    props.insert("updated_at".into(), json!({ "type": "string", "format": "date-time" }));
    json!({
        "type": "object",
        "description": def.doc,
        "properties": props,
        // `fields=` narrows a record to the fields asked for, plus these two.
        "required": ["entity", "id"],
    })
}

fn title(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn json_content(schema: Value) -> Value {
    json!({ "application/json": { "schema": schema } })
}

fn ok(description: &str, schema: Value) -> Value {
    json!({ "description": description, "content": json_content(schema) })
}

/// The errors every authenticated route may answer (every route is a tool call, and any call
/// may find its input invalid, a record missing or the data in conflict), plus those named.
fn responses(success: &[(&str, Value)], errors: &[&str]) -> Value {
    let mut r = Map::new();
    for (status, v) in success {
        r.insert((*status).into(), v.clone());
    }
    let mut all: Vec<&str> = ["400", "401", "403", "404", "409", "422", "429", "503"].to_vec();
    all.extend(errors.iter().filter(|e| !all.contains(e)).collect::<Vec<_>>());
    all.sort_unstable();
    for e in all {
        r.insert((*e).into(), json!({ "$ref": format!("#/components/responses/E{e}") }));
    }
    Value::Object(r)
}

/// `{"items": [ITEM, …]}`.
fn list_of(item: Value) -> Value {
    json!({ "type": "object", "properties": { "items": { "type": "array", "items": item } }, "required": ["items"] })
}

fn body(schema: Value) -> Value {
    json!({ "required": true, "content": json_content(schema) })
}

fn query(name: &str, description: &str, schema: Value) -> Value {
    json!({ "name": name, "in": "query", "required": false, "description": description, "schema": schema })
}

fn path_param(name: &str, description: &str) -> Value {
    json!({ "name": name, "in": "path", "required": true, "description": description, "schema": { "type": "string" } })
}

fn idempotency_header() -> Value {
    json!({
        "name": "Idempotency-Key", "in": "header", "required": false,
        "description": "A repeat with the same key within 24 hours answers what the first call answered.",
        "schema": { "type": "string", "minLength": 1, "maxLength": 200 }
    })
}

fn op(id: &str, summary: &str, tag: &str) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("operationId".into(), id.into());
    m.insert("summary".into(), summary.into());
    m.insert("tags".into(), json!([tag]));
    m
}

fn with(mut m: Map<String, Value>, entries: &[(&str, Value)]) -> Value {
    for (k, v) in entries {
        m.insert((*k).into(), v.clone());
    }
    Value::Object(m)
}

/// Query parameters from a query struct's schema: one per property, with its description.
fn query_params<T: schemars::JsonSchema>() -> Value {
    let schema = rapport_tools::catalog::schema_of::<T>();
    let props = schema.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
    props
        .into_iter()
        .map(|(name, mut p)| {
            let description = p.as_object_mut().and_then(|o| o.remove("description"));
            query(&name, description.as_ref().and_then(Value::as_str).unwrap_or(""), p)
        })
        .collect()
}

/// `/webhooks…`: bodies and answers are the webhook tools'.
fn webhook_paths(s: &mut Schemas, paths: &mut Map<String, Value>) {
    use rapport_tools::catalog::answer_of;
    use rapport_tools::webhooks::{Webhook, WebhookDeliveries, WebhookDelivery, WebhookList};
    let tag = "Webhooks";
    let (create, update) = (s.body("create_webhook", &[]), s.body("update_webhook", &["id"]));
    let one = s.take(&answer_of::<Webhook>());
    let (created, updated) = (one.clone(), one.clone());
    let list = s.take(&answer_of::<WebhookList>());
    let deliveries = s.take(&answer_of::<WebhookDeliveries>());
    let resent = s.take(&answer_of::<WebhookDelivery>());
    paths.insert("/webhooks".into(), json!({
        "get": with(op("list_webhooks", "The organization's webhook endpoints, never their secrets (scope webhooks:manage)", tag), &[("responses", responses(&[("200", ok("Every endpoint.", list))], &[]))]),
        "post": with(op("create_webhook", "Subscribe a URL to events; the answer holds the signing secret, this once", tag), &[("requestBody", body(create)), ("responses", responses(&[("201", ok("The endpoint, with `secret`.", created))], &["413", "415"]))]),
    }));
    paths.insert("/webhooks/{id}".into(), json!({
        "parameters": [path_param("id", "The endpoint's id (wh_…).")],
        "get": with(op("get_webhook", "One endpoint", tag), &[("responses", responses(&[("200", ok("The endpoint.", one))], &[]))]),
        "patch": with(op("update_webhook", "Change an endpoint; `rotate_secret: true` answers a new secret, and the old one signs too for 24 hours", tag), &[("requestBody", body(update)), ("responses", responses(&[("200", ok("The endpoint; `secret` when rotated.", updated))], &["413", "415"]))]),
        "delete": with(op("delete_webhook", "Delete an endpoint and its deliveries", tag), &[("responses", responses(&[("204", json!({ "description": "Deleted." }))], &[]))]),
    }));
    paths.insert("/webhooks/{id}/deliveries".into(), json!({
        "parameters": [path_param("id", "The endpoint's id (wh_…).")],
        "get": with(op("list_webhook_deliveries", "An endpoint's deliveries, newest first, with every attempt", tag), &[
            ("parameters", query_params::<super::rest::DeliveriesQuery>()),
            ("responses", responses(&[("200", ok("A page of deliveries.", deliveries))], &[])),
        ]),
    }));
    paths.insert("/webhooks/deliveries/{delivery_id}/resend".into(), json!({
        "parameters": [path_param("delivery_id", "The delivery's id (msg_…), its `webhook-id`.")],
        "post": with(op("resend_webhook_delivery", "Send a delivery again now, under the same webhook-id", tag), &[("responses", responses(&[("202", ok("The delivery, pending.", resent))], &[]))]),
    }));
}

/// An approval as the API shows it, its `$defs` moved to the components.
fn s_approval(s: &mut Schemas) -> Value {
    let mut schema = rapport_tools::catalog::answer_of::<rapport_tools::approvals::ApprovalView>();
    schema.remove("$schema");
    s.take(&schema)
}

/// The administration routes (`src/http/admin.rs`): bodies and answers from the types the
/// handlers read and write.
fn admin_paths(s: &mut Schemas, paths: &mut Map<String, Value>) {
    use super::admin::{
        ApprovalsQuery, AuditQuery, Confirm, Connect, CreateKey, CreateUser, ListKeys, PatchKey, Rotate, UpdateUser,
    };
    use crate::keys::{CreatedKey, KeyView, audit::AuditPage, connect::Connection, users::UserView};
    use rapport_tools::catalog::{answer_of, schema_of};

    let named = |s: &mut Schemas, name: &str, schema: Map<String, Value>| {
        let v = s.take(&schema);
        s.components.insert(name.into(), v);
        schema_ref(name)
    };
    let key = named(s, "ApiKey", answer_of::<KeyView>());
    let created = named(s, "CreatedApiKey", answer_of::<CreatedKey>());
    let user = named(s, "User", answer_of::<UserView>());
    let audit = named(s, "AuditPage", answer_of::<AuditPage>());
    let connection = named(s, "Connection", answer_of::<Connection>());
    let input = |s: &mut Schemas, schema: Map<String, Value>| body(s.take(&schema));
    let id = path_param("id", "The key's id.");
    let key_action = |id_: &str, summary: &str, out: &Value| {
        json!({ "parameters": [id], "post": with(op(id_, summary, "API keys"), &[
            ("responses", responses(&[("200", ok("The key as it is now.", out.clone()))], &[])),
        ]) })
    };
    paths.insert(
        "/keys".into(),
        json!({
            "get": with(op("list_api_keys", "The organization's API keys (scope keys:manage)", "API keys"), &[
                ("parameters", query_params::<ListKeys>()),
                ("responses", responses(&[("200", ok("Every key, newest first.", list_of(key.clone())))], &[])),
            ]),
            "post": with(op("create_api_key", "Create an API key; the secret is in this answer only", "API keys"), &[
                ("requestBody", input(s, schema_of::<CreateKey>())),
                ("responses", responses(&[("201", ok("The key and its secret.", created.clone()))], &["413", "415"])),
            ]),
        }),
    );
    paths.insert("/keys/{id}".into(), json!({
        "parameters": [id],
        "get": with(op("get_api_key", "One API key", "API keys"), &[
            ("responses", responses(&[("200", ok("The key.", key.clone()))], &[])),
        ]),
        "patch": with(op("update_api_key", "Rename an API key or set its approval policy", "API keys"), &[
            ("requestBody", input(s, schema_of::<PatchKey>())),
            ("responses", responses(&[("200", ok("The key as it is now.", key.clone()))], &["413", "415"])),
        ]),
        "delete": with(op("delete_api_key", "Delete an API key for good (confirm=true if used in the last 24 hours)", "API keys"), &[
            ("parameters", query_params::<Confirm>()),
            ("responses", responses(&[("204", json!({ "description": "Deleted." }))], &[])),
        ]),
    }));
    paths.insert(
        "/keys/{id}/disable".into(),
        key_action("disable_api_key", "Disable an API key; enable brings it back", &key),
    );
    paths.insert("/keys/{id}/enable".into(), key_action("enable_api_key", "Enable a disabled API key", &key));
    paths.insert("/keys/{id}/revoke".into(), key_action("revoke_api_key", "Revoke an API key for good", &key));
    let rotate_body = s.take(&schema_of::<Rotate>());
    paths.insert("/keys/{id}/rotate".into(), json!({ "parameters": [id], "post": with(op("rotate_api_key", "Replace an API key's secret, optionally keeping the old one working for a while", "API keys"), &[
        ("requestBody", json!({ "required": false, "content": json_content(rotate_body) })),
        ("responses", responses(&[("200", ok("The new key and its secret.", created))], &["413", "415"])),
    ]) }));
    paths.insert(
        "/users".into(),
        json!({
            "get": with(op("list_users", "The organization's users (scope users:manage)", "Users"), &[
                ("responses", responses(&[("200", ok("Every user.", list_of(user.clone())))], &[])),
            ]),
            "post": with(op("create_user", "Add a user", "Users"), &[
                ("requestBody", input(s, schema_of::<CreateUser>())),
                ("responses", responses(&[("201", ok("The user.", user.clone()))], &["413", "415"])),
            ]),
        }),
    );
    paths.insert(
        "/users/{email}".into(),
        json!({
            "parameters": [path_param("email", "The user's email address.")],
            "patch": with(op("update_user", "Change a user's role, or deactivate or reactivate them", "Users"), &[
                ("requestBody", input(s, schema_of::<UpdateUser>())),
                ("responses", responses(&[("200", ok("The user as they are now.", user))], &["413", "415"])),
            ]),
        }),
    );
    paths.insert("/audit".into(), json!({
        "get": with(op("list_audit", "The audit log of keys and users, newest first (scope audit:read)", "Audit"), &[
            ("parameters", query_params::<AuditQuery>()),
            ("responses", responses(&[("200", ok("A page of the audit log.", audit))], &[])),
        ]),
    }));
    let approval = schema_ref("Approval");
    paths.insert("/approvals".into(), json!({
        "get": with(op("list_approvals", "Calls held for a person's approval, newest first (scope audit:read); only a person decides them", "Approvals"), &[
            ("parameters", query_params::<ApprovalsQuery>()),
            ("responses", responses(&[("200", ok("A page of approvals.", json!({
                "type": "object",
                "properties": { "items": { "type": "array", "items": approval.clone() }, "next_cursor": { "type": ["string", "null"] } },
                "required": ["items", "next_cursor"]
            })))], &[])),
        ]),
    }));
    paths.insert("/approvals/{id}".into(), json!({
        "parameters": [path_param("id", "The approval's id.")],
        "get": with(op("get_approval", "One approval: pending, approved (with the call's answer), denied (with the reason), stale or expired", "Approvals"), &[
            ("responses", responses(&[("200", ok("The approval.", approval))], &[])),
        ]),
    }));
    paths.insert("/connect".into(), json!({
        "post": with(op("connect", "What to paste or click to use Rapport from an agent, with the calling key (scope keys:manage)", "API keys"), &[
            ("requestBody", input(s, schema_of::<Connect>())),
            ("responses", responses(&[("200", ok("One client's answer, or a list for `all`.", json!({ "oneOf": [connection.clone(), { "type": "array", "items": connection }] })))], &["413", "415"])),
        ]),
    }));
}

/// Imports and exports (`src/http/data.rs`, SPEC 13).
fn data_paths(s: &mut Schemas, paths: &mut Map<String, Value>) {
    use super::data::{ExportQuery, ImportQuery, ImportShowQuery};
    use rapport_tools::catalog::answer_of;
    let tag = "Imports and exports";
    let v = s.take(&answer_of::<crate::crm::import::ImportView>());
    s.components.insert("Import".into(), v);
    let import = schema_ref("Import");
    let mut start_params = query_params::<ImportQuery>();
    for p in start_params.as_array_mut().into_iter().flatten() {
        if p["name"] == "entity" {
            p["required"] = true.into();
        }
    }
    let text = |description: &str| json!({ "type": "string", "description": description });
    paths.insert("/imports".into(), json!({
        "post": with(op("create_import", "Import records from a CSV or JSON-lines body of up to 256 MB; checked at once, run in the background", tag), &[
            ("parameters", start_params),
            ("requestBody", json!({ "required": true, "content": {
                "text/csv": { "schema": text("RFC 4180 CSV, UTF-8 with or without BOM, comma or semicolon; the first line names the columns.") },
                "application/jsonl": { "schema": text("One JSON object a line; its keys are the columns.") },
            } })),
            ("responses", responses(&[("202", ok("The import, running; follow it at `Location`.", import.clone()))], &["413"])),
        ]),
        "get": with(op("list_imports", "The organization's last 100 imports, newest first", tag), &[
            ("responses", responses(&[("200", ok("The imports.", list_of(import.clone())))], &[])),
        ]),
    }));
    paths.insert(
        "/imports/{id}".into(),
        json!({
            "parameters": [path_param("id", "The import's id (imp_…).")],
            "get": with(op("get_import", "An import's progress and report, with its first failed rows", tag), &[
                ("parameters", query_params::<ImportShowQuery>()),
                ("responses", responses(&[("200", ok("The import.", import))], &[])),
            ]),
        }),
    );
    paths.insert("/imports/{id}/failures".into(), json!({
        "parameters": [path_param("id", "The import's id (imp_…).")],
        "get": with(op("get_import_failures", "The rows an import could not store, as CSV: the file's columns, then `line` and `error`", tag), &[
            ("responses", responses(&[("200", json!({ "description": "The failed rows.", "content": { "text/csv": { "schema": { "type": "string" } } } }))], &[])),
        ]),
    }));
    let person = json!({ "type": "object", "description": "`email`; `contacts`, `notes` and `tasks` as records; `timelines`: each contact's change log by its id." });
    paths.insert("/privacy/export".into(), json!({
        "get": with(op("export_personal_data", "Everything held about a person, by email: their contacts, the notes and tasks about them, their timelines (scope org:manage)", tag), &[
            ("parameters", json!([query("email", "The person's email address.", json!({ "type": "string" }))
                .as_object().cloned().map(|mut q| { q.insert("required".into(), true.into()); Value::Object(q) })])),
            ("responses", responses(&[("200", ok("What is held.", person))], &[])),
        ]),
    }));
    let erase_body = s.take(&rapport_tools::catalog::schema_of::<super::data::EraseBody>());
    paths.insert("/privacy/erase".into(), json!({
        "post": with(op("erase_personal_data", "Delete a person's contacts, and the notes and tasks about them, for good, and erase their values from the change log, webhook bodies and stored answers (owners only)", tag), &[
            ("requestBody", body(erase_body)),
            ("responses", responses(&[("200", ok("What was erased, counted by table.", json!({ "type": "object", "properties": { "email": { "type": "string" }, "erased": { "type": "object", "additionalProperties": { "type": "integer" } } }, "required": ["email", "erased"] })))], &["413", "415"])),
        ]),
    }));
    for e in Entity::ALL {
        let plural = e.def().plural;
        paths.insert(format!("/{plural}/export"), json!({
            "get": with(op(&format!("export_{plural}"), &format!("Every {} (or those the filters keep), streamed as CSV or JSON lines", e.as_str()), tag), &[
                ("parameters", query_params::<ExportQuery>()),
                ("responses", responses(&[("200", json!({ "description": "The records, oldest first. In CSV a text cell a spreadsheet would run as a formula starts with `'`.", "content": {
                    "text/csv": { "schema": { "type": "string" } },
                    "application/jsonl": { "schema": { "type": "string" } },
                } }))], &[])),
            ]),
        }));
    }
}

fn build() -> Value {
    let mut s = Schemas { components: Map::new() };
    let mut paths = Map::new();
    let page = |name: &str| {
        json!({
            "type": "object",
            "properties": { "items": { "type": "array", "items": schema_ref(name) }, "next_cursor": { "type": ["string", "null"] } },
            "required": ["items", "next_cursor"]
        })
    };
    let id_param = path_param("id", "The record's id.");
    for e in Entity::ALL.iter().copied() {
        let def = e.def();
        let (plural, name) = (def.plural, title(e.as_str()));
        let tag = title(plural);
        s.components.insert(name.clone(), record_schema(e));
        let create = ToolDef::find(def.tools.create).expect("create tool");
        let item = s.take(&create.input_schema)["properties"][plural]["items"].clone();
        let update_tool = ToolDef::find(def.tools.update).expect("update tool");
        let mut patch = s.take(&update_tool.input_schema)["properties"][plural]["items"].clone();
        strip(&mut patch, &["id", "if_updated_at"]);
        s.components.insert(format!("{name}Input"), item);
        s.components.insert(format!("{name}Patch"), patch);
        let one = schema_ref(&name);
        let many = list_of(one.clone());
        let list_params = json!([
            query(
                "q",
                "Free text, case-insensitive, anywhere in the record's main fields.",
                json!({ "type": "string" })
            ),
            query(
                "limit",
                "Page size, 1 to 100; default 25.",
                json!({ "type": "integer", "minimum": 1, "maximum": 100 })
            ),
            query("cursor", "`next_cursor` of the previous page.", json!({ "type": "string" })),
            query("sort", "Fields and directions, e.g. `last_name:asc,created_at:desc`.", json!({ "type": "string" })),
            query(
                "fields",
                "Only these fields (plus `entity` and `id`), comma-separated.",
                json!({ "type": "string" })
            ),
            query(
                "filter",
                "The conditions of `search_records` as a JSON list, URL-encoded.",
                json!({ "type": "string" })
            ),
        ]);
        paths.insert(
            format!("/{plural}"),
            json!({
                "get": with(op(&format!("list_{plural}"), &format!("List or search {plural}"), &tag), &[
                    ("parameters", list_params),
                    ("responses", responses(&[("200", ok("A page, newest first unless sorted.", page(&name)))], &["422"])),
                ]),
                "post": with(op(&format!("create_{plural}"), &format!("Create one {} or up to 100", e.as_str()), &tag), &[
                    ("parameters", json!([idempotency_header()])),
                    ("requestBody", body(json!({ "oneOf": [
                        schema_ref(&format!("{name}Input")),
                        { "type": "object", "properties": { "items": { "type": "array", "minItems": 1, "maxItems": 100, "items": schema_ref(&format!("{name}Input")) } }, "required": ["items"], "additionalProperties": false }
                    ] }))),
                    ("responses", responses(&[("201", ok("The record, or `items` when a list was sent.", json!({ "oneOf": [one, many] })))], &["409", "413", "415", "422"])),
                ]),
            }),
        );
        let post = |id: String, summary: String, tool_body: Value, out: Value, extra: &[&str]| {
            json!({ "post": with(op(&id, &summary, &tag), &[
                ("requestBody", body(tool_body)),
                ("responses", responses(&[("200", ok("The answer.", out))], extra)),
            ]) })
        };
        let search_body = s.body("search_records", &["entity"]);
        paths.insert(
            format!("/{plural}/search"),
            post(
                format!("search_{plural}"),
                format!("Search {plural} with a JSON body"),
                search_body,
                page(&name),
                &["415", "422"],
            ),
        );
        let (count_body, count_out) = (s.body("count_records", &["entity"]), s.output("count_records"));
        paths.insert(
            format!("/{plural}/count"),
            post(
                format!("count_{plural}"),
                format!("Count {plural}, optionally grouped"),
                count_body,
                count_out,
                &["415", "422"],
            ),
        );
        if crate::crm::merge::MERGEABLE.contains(&e) {
            let (merge_body, merge_out) =
                (s.body("merge_records", &["entity", "idempotency_key"]), s.output("merge_records"));
            paths.insert(
                format!("/{plural}/merge"),
                post(
                    format!("merge_{plural}"),
                    format!("Merge {plural} into one"),
                    merge_body,
                    merge_out,
                    &["404", "409", "415", "422"],
                ),
            );
        }
        if let Some(upsert) = def.tools.upsert {
            let tool = ToolDef::find(upsert).expect("upsert tool");
            let item = s.take(&tool.input_schema)["properties"][plural]["items"].clone();
            let out = s.output(upsert);
            let mut p = post(
                format!("upsert_{plural}"),
                format!("Create or update {plural} by {}", def.upsert_key.unwrap_or("key")),
                json!({ "oneOf": [item.clone(), { "type": "object", "properties": { "items": { "type": "array", "items": item } }, "required": ["items"] }] }),
                out,
                &["409", "415", "422"],
            );
            p["post"]["parameters"] = json!([idempotency_header()]);
            paths.insert(format!("/{plural}/upsert"), p);
        }
        paths.insert(
            format!("/{plural}/{{id}}"),
            json!({
                "parameters": [id_param],
                "get": with(op(&format!("get_{}", e.as_str()), &format!("Get one {} with its related records", e.as_str()), &tag), &[
                    ("parameters", json!([query("fields", "Only these fields, comma-separated.", json!({ "type": "string" }))])),
                    ("responses", responses(&[("200", ok("The record.", schema_ref(&name)))], &["404"])),
                ]),
                "patch": with(op(&format!("update_{}", e.as_str()), &format!("Update one {}", e.as_str()), &tag), &[
                    ("parameters", json!([{ "name": "If-Match", "in": "header", "required": false, "description": "The `updated_at` you read: refused with 409 if the record changed since.", "schema": { "type": "string" } }])),
                    ("requestBody", body(schema_ref(&format!("{name}Patch")))),
                    ("responses", responses(&[("200", ok("The record as it is now.", schema_ref(&name)))], &["404", "409", "415", "422"])),
                ]),
                "delete": with(op(&format!("delete_{}", e.as_str()), &format!("Move one {} to the trash", e.as_str()), &tag), &[
                    ("responses", responses(&[("204", json!({ "description": "Deleted; restorable until the trash is purged." }))], &["404"])),
                ]),
            }),
        );
        let restore_out = s.output("restore_records");
        paths.insert(
            format!("/{plural}/{{id}}/restore"),
            json!({ "parameters": [id_param], "post": with(op(&format!("restore_{}", e.as_str()), &format!("Restore one {} from the trash", e.as_str()), &tag), &[
                ("responses", responses(&[("200", ok("What was restored.", restore_out))], &["404", "409"])),
            ]) }),
        );
        let timeline_out = s.output("get_timeline");
        paths.insert(
            format!("/{plural}/{{id}}/timeline"),
            json!({ "parameters": [id_param], "get": with(op(&format!("timeline_{}", e.as_str()), &format!("What happened to one {}, newest first", e.as_str()), &tag), &[
                ("parameters", json!([
                    query("limit", "Entries per page, 1 to 100; default 25.", json!({ "type": "integer", "minimum": 1, "maximum": 100 })),
                    query("cursor", "`next_cursor` of the previous page.", json!({ "type": "string" })),
                ])),
                ("responses", responses(&[("200", ok("A page of the change log.", timeline_out))], &["404", "422"])),
            ]) }),
        );
    }
    let (link_body, link_out) = (s.body("link_records", &["idempotency_key"]), s.output("link_records"));
    let (unlink_body, unlink_out) = (s.body("unlink_records", &[]), s.output("unlink_records"));
    paths.insert("/links".into(), json!({
        "post": with(op("link_records", "Link records", "Links"), &[("parameters", json!([idempotency_header()])), ("requestBody", body(link_body)), ("responses", responses(&[("200", ok("The links made.", link_out))], &["404", "415", "422"]))]),
        "delete": with(op("unlink_records", "Unlink records", "Links"), &[("requestBody", body(unlink_body)), ("responses", responses(&[("200", ok("The links removed.", unlink_out))], &["404", "415", "422"]))]),
    }));
    let search_all = s.output("search_all");
    paths.insert("/search".into(), json!({
        "get": with(op("search_all", "Search every entity at once", "Search"), &[
            ("parameters", json!([
                { "name": "q", "in": "query", "required": true, "description": "Free text.", "schema": { "type": "string" } },
                query("limit", "Per entity, 1 to 25.", json!({ "type": "integer", "minimum": 1, "maximum": 25 })),
            ])),
            ("responses", responses(&[("200", ok("The best matches of each entity.", search_all))], &["422"])),
        ]),
    }));
    let (pipeline_body, pipeline_out) = (s.body("create_pipeline", &[]), s.output("create_pipeline"));
    let (pipeline_patch, pipeline_patched) = (s.body("update_pipeline", &["name"]), s.output("update_pipeline"));
    paths.insert("/pipelines".into(), json!({
        "get": with(op("list_pipelines", "The deal pipelines and their stages", "Pipelines"), &[("responses", responses(&[("200", ok("Every pipeline.", list_of(json!({ "type": "object" }))))], &[]))]),
        "post": with(op("create_pipeline", "Create a pipeline", "Pipelines"), &[("requestBody", body(pipeline_body)), ("responses", responses(&[("201", ok("The pipeline.", pipeline_out))], &["409", "415", "422"]))]),
    }));
    paths.insert("/pipelines/{name}".into(), json!({
        "parameters": [path_param("name", "The pipeline's name.")],
        "patch": with(op("update_pipeline", "Rename a pipeline or change its stages", "Pipelines"), &[("requestBody", body(pipeline_patch)), ("responses", responses(&[("200", ok("The pipeline.", pipeline_patched))], &["404", "409", "415", "422"]))]),
    }));
    let (field_body, field_out) = (s.body("create_custom_field", &[]), s.output("create_custom_field"));
    let (field_patch, field_patched) =
        (s.body("update_custom_field", &["entity", "key"]), s.output("update_custom_field"));
    paths.insert("/custom-fields".into(), json!({
        "get": with(op("list_custom_fields", "Every custom field of the entities the key may read", "Custom fields"), &[("responses", responses(&[("200", ok("Custom fields, each with its entity.", list_of(json!({ "type": "object" }))))], &[]))]),
        "post": with(op("create_custom_field", "Add a custom field to an entity", "Custom fields"), &[("requestBody", body(field_body)), ("responses", responses(&[("201", ok("The field.", field_out))], &["409", "415", "422"]))]),
    }));
    paths.insert("/custom-fields/{entity}/{key}".into(), json!({
        "parameters": [path_param("entity", &format!("{}.", rapport_tools::Entity::listed())), path_param("key", "The field's key.")],
        "patch": with(op("update_custom_field", "Relabel a custom field or change its options", "Custom fields"), &[("requestBody", body(field_patch)), ("responses", responses(&[("200", ok("The field.", field_patched))], &["404", "415", "422"]))]),
        "delete": with(op("delete_custom_field", "Delete a custom field and its values", "Custom fields"), &[("responses", responses(&[("204", json!({ "description": "Deleted." }))], &["404", "422"]))]),
    }));
    let lead = s.take(&rapport_tools::catalog::schema_of::<crate::crm::leads::InboundLead>());
    let lead_out = s.take(&rapport_tools::catalog::output_of::<crate::crm::leads::LeadResult>());
    paths.insert("/leads/inbound".into(), json!({
        "post": with(op("inbound_lead", "A lead from a web form, Zapier or Make (scope leads:write; CORS from any origin)", "Leads"), &[
            ("requestBody", json!({ "required": true, "content": {
                "application/json": { "schema": lead },
                "application/x-www-form-urlencoded": { "schema": lead }
            } })),
            ("responses", responses(&[
                ("201", ok("A new contact.", lead_out.clone())),
                ("200", ok("An existing contact, updated.", lead_out)),
            ], &["409", "413", "415", "422"])),
        ]),
    }));
    let changes_out = s.output("get_timeline");
    paths.insert("/changes".into(), json!({
        "get": with(op("list_changes", "The organization's change log, newest first (scope audit:read)", "Changes"), &[
            ("parameters", query_params::<crate::crm::timeline::LogQuery>()),
            ("responses", responses(&[("200", ok("A page of the change log.", changes_out))], &[])),
        ]),
    }));

    let (revert_body, revert_out) = (s.body("revert_changes", &[]), s.output("revert_changes"));
    paths.insert("/changes/revert".into(), json!({
        "post": with(op("revert_changes", "Undo changes by id, by one call's request id, or what one key did in a time window (scope changes:revert)", "Changes"), &[
            ("requestBody", body(revert_body)),
            ("responses", responses(&[("200", ok("What was undone, what was skipped, and the revert's own change entries.", revert_out))], &["409", "413", "415"])),
        ]),
    }));

    webhook_paths(&mut s, &mut paths);
    // Any route that writes through a tool may be held for a person (SPEC 12).
    for (_, item) in paths.iter_mut().filter(|(p, _)| !p.starts_with("/leads")) {
        for method in ["post", "patch", "delete"] {
            if let Some(Value::Object(responses)) = item.get_mut(method).and_then(|o| o.get_mut("responses")) {
                responses.insert("202".into(), json!({ "$ref": "#/components/responses/Held" }));
            }
        }
    }
    admin_paths(&mut s, &mut paths);
    data_paths(&mut s, &mut paths);

    let approval = s_approval(&mut s);
    let mut components = s.components;
    components.insert("Approval".into(), approval);
    components.insert(
        "Error".into(),
        json!({
            "type": "object",
            "properties": { "error": {
                "type": "object",
                "properties": { "code": { "type": "string" }, "message": { "type": "string" }, "details": {} },
                "required": ["code", "message"]
            } },
            "required": ["error"]
        }),
    );
    let error = |d: &str| json!({ "description": d, "content": json_content(schema_ref("Error")) });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Rapport REST API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The REST face of Rapport's MCP tools: the same records, rules, scopes, validation messages and change log. Authenticate with an API key in `x-api-key` or as a bearer token.",
            "license": { "name": "Apache-2.0", "identifier": "Apache-2.0" }
        },
        "servers": [{ "url": "/api/v1" }],
        "security": [{ "apiKey": [] }, { "bearer": [] }],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "apiKey": { "type": "apiKey", "in": "header", "name": "x-api-key" },
                "bearer": { "type": "http", "scheme": "bearer", "description": "The API key as a bearer token." }
            },
            "schemas": components,
            "responses": {
                "Held": {
                    "description": "The key's approval policy holds this call for a person: nothing was written. `GET /approvals/{approval_id}` tells how it was decided.",
                    "content": json_content(json!({
                        "type": "object",
                        "properties": {
                            "status": { "const": "pending_approval" },
                            "approval_id": { "type": "string" },
                            "summary": { "type": "string" },
                            "changes": { "type": "array", "items": { "type": "object" } },
                            "expires_at": { "type": "string", "format": "date-time" }
                        },
                        "required": ["status", "approval_id", "summary", "changes", "expires_at"]
                    }))
                },
                "E400": error("The request is malformed: bad JSON, an unknown query parameter, a bad cursor."),
                "E401": error("No key, or one that is unknown, revoked, disabled or expired."),
                "E403": error("The key lacks a scope, or comes from an address it may not."),
                "E404": error("No such record in your organization."),
                "E409": error("It conflicts with the data: a unique value taken, a stale If-Match, an Idempotency-Key in use."),
                "E413": error("The body is too large."),
                "E415": error("The body is not JSON."),
                "E422": error("The input does not validate; the message names the field."),
                "E429": error("Over the key's rate limit; see Retry-After."),
                "E503": error("The database is unreachable; see Retry-After.")
            }
        }
    })
}
