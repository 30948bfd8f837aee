//! JSON Schemas derived from entity descriptions, and the rewrite that keeps every schema
//! portable: one `type` per schema (nullable values as `anyOf`, which single-type dialects
//! such as Gemini's function declarations accept) and only standard `format`s.

use serde_json::{Map, Value, json};

use crate::call::Tool;
use crate::catalog::{Access, ToolDef, records_output};
use crate::entities::{Entity, EntityDef, Field, FieldType};

/// `format`s every JSON Schema validator knows; schemars also writes `uint64` and the like.
const STANDARD_FORMATS: &[&str] = &[
    "date-time",
    "date",
    "time",
    "duration",
    "email",
    "hostname",
    "ipv4",
    "ipv6",
    "uri",
    "uri-reference",
    "uuid",
    "regex",
];

/// Keywords that belong to one type of a multi-type schema.
const TYPED_KEYWORDS: &[&str] =
    &["items", "properties", "required", "additionalProperties", "enum", "format", "minimum"];

/// Rewrites a schema in place so that every client can read it.
pub fn portable(schema: &mut Map<String, Value>) {
    if let Some(Value::String(f)) = schema.get("format")
        && !STANDARD_FORMATS.contains(&f.as_str())
    {
        schema.remove("format");
    }
    if let Some(Value::Array(types)) = schema.get("type").cloned() {
        schema.remove("type");
        let mut branches = Vec::new();
        for t in types {
            let mut branch = Map::new();
            branch.insert("type".into(), t.clone());
            // Keywords that belong to one type go into its branch.
            for &key in TYPED_KEYWORDS {
                let applies = match key {
                    "items" => t == "array",
                    "properties" | "required" | "additionalProperties" => t == "object",
                    "minimum" => t == "integer" || t == "number",
                    "format" => t == "string" || t == "integer" || t == "number",
                    _ => t != "null",
                };
                if applies && let Some(v) = schema.get(key) {
                    branch.insert(key.into(), v.clone());
                }
            }
            branches.push(Value::Object(branch));
        }
        for key in TYPED_KEYWORDS {
            schema.remove(*key);
        }
        schema.insert("anyOf".into(), Value::Array(branches));
    }
    for (key, value) in schema.iter_mut() {
        match (key.as_str(), value) {
            ("properties" | "$defs" | "definitions", Value::Object(children)) => {
                for child in children.values_mut() {
                    if let Value::Object(c) = child {
                        portable(c);
                    }
                }
            }
            (_, Value::Object(child)) => portable(child),
            (_, Value::Array(items)) => {
                for item in items {
                    if let Value::Object(c) = item {
                        portable(c);
                    }
                }
            }
            _ => {}
        }
    }
}

/// An input schema without what costs tokens and says nothing: titles, `default`s, and
/// `null` branches of optional arguments (leaving one out is how to omit it).
pub fn lean_input(schema: &mut Map<String, Value>) {
    schema.remove("title");
    schema.remove("default");
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            schema.insert("type".into(), only);
        }
    }
    if let Some(Value::Array(branches)) = schema.get("anyOf")
        && branches.len() == 2
        && let Some(keep) = branches.iter().find(|b| b.get("type") != Some(&json!("null")))
        && branches.iter().any(|b| b.get("type") == Some(&json!("null")))
        && let Value::Object(keep) = keep.clone()
    {
        schema.remove("anyOf");
        for (k, v) in keep {
            schema.entry(k).or_insert(v);
        }
    }
    for value in schema.values_mut() {
        match value {
            Value::Object(child) => {
                for v in child.values_mut() {
                    if let Value::Object(c) = v {
                        lean_input(c);
                    }
                }
                lean_input(child);
            }
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(c) = item {
                        lean_input(c);
                    }
                }
            }
            _ => {}
        }
    }
}

/// An output schema cut down to its top level: each property's type and description.
/// Record shapes are described once, by `describe_entity`, not in every tool.
pub fn lean_output(schema: &Map<String, Value>) -> Map<String, Value> {
    let defs = schema.get("$defs").and_then(Value::as_object).cloned().unwrap_or_default();
    let resolve = |v: &Value| -> Value {
        match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix("#/$defs/")) {
            Some(name) => defs.get(name).cloned().unwrap_or(json!({})),
            None => v.clone(),
        }
    };
    let brief = |v: &Value| -> Value {
        let v = resolve(v);
        let mut out = Map::new();
        let ty = v.get("type").cloned().or_else(|| {
            // A nullable value: the non-null branch's type.
            v.get("anyOf").and_then(Value::as_array).and_then(|b| {
                b.iter().map(&resolve).find_map(|b| b.get("type").filter(|t| **t != json!("null")).cloned())
            })
        });
        out.insert("type".into(), ty.unwrap_or(json!("object")));
        if let Some(d) = v.get("description") {
            out.insert("description".into(), d.clone());
        }
        if out["type"] == "array" {
            let item_ty = v.get("items").map(&resolve).and_then(|i| i.get("type").cloned()).unwrap_or(json!("object"));
            out.insert("items".into(), json!({ "type": item_ty }));
        }
        Value::Object(out)
    };
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    if let Some(Value::Object(props)) = schema.get("properties") {
        let props: Map<String, Value> = props.iter().map(|(k, v)| (k.clone(), brief(v))).collect();
        out.insert("properties".into(), Value::Object(props));
    }
    if let Some(r) = schema.get("required") {
        out.insert("required".into(), r.clone());
    }
    out
}

/// An output schema as `tools/list` shows it: each property's type, without the words the
/// REST documents carry, and without the dry-run answer's keys (open, since nothing is
/// required of an answer that may be a preview).
pub fn listed_output(schema: &Map<String, Value>, previewable: bool) -> Map<String, Value> {
    let mut out = schema.clone();
    if let Some(Value::Object(props)) = out.get_mut("properties") {
        if previewable {
            props.remove("dry_run");
            props.remove("result");
        }
        for p in props.values_mut() {
            if let Value::Object(p) = p {
                p.remove("description");
            }
        }
    }
    out
}

/// A tool's input schema as the lean profile lists it (SPEC 5): each argument's name and
/// type only. Nested shapes become plain objects, descriptions and `$defs` go, and an
/// entity name is a string (a misspelt one is answered with the list): the description's
/// example and `describe_entity` carry the rest.
pub fn shallow(schema: &Map<String, Value>) -> Map<String, Value> {
    let defs = schema.get("$defs").and_then(Value::as_object);
    let resolve = |v: &Value| -> Value {
        match v.get("$ref").and_then(Value::as_str).and_then(|r| r.rsplit('/').next()) {
            Some(name) => defs.and_then(|d| d.get(name)).cloned().unwrap_or_else(|| json!({ "type": "object" })),
            None => v.clone(),
        }
    };
    let entities: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
    let flat = |v: &Value| -> Value {
        let v = resolve(v);
        let ty = v.get("type").cloned();
        match ty.as_ref().and_then(Value::as_str) {
            Some("array") => {
                let items = v.get("items").map(&resolve).unwrap_or_default();
                match items.get("type").and_then(Value::as_str) {
                    Some(t @ ("string" | "integer" | "number" | "boolean")) => {
                        json!({ "type": "array", "items": { "type": t } })
                    }
                    _ => json!({ "type": "array", "items": { "type": "object" } }),
                }
            }
            Some("string") => match v.get("enum") {
                Some(e) if *e != json!(entities) => json!({ "type": "string", "enum": e }),
                _ => json!({ "type": "string" }),
            },
            Some(t) => json!({ "type": t }),
            None => json!({ "type": "object" }),
        }
    };
    let props: Map<String, Value> = schema
        .get("properties")
        .and_then(Value::as_object)
        .map(|p| p.iter().map(|(k, v)| (k.clone(), flat(v))).collect())
        .unwrap_or_default();
    let mut out = Map::new();
    out.insert("type".into(), json!("object"));
    out.insert("properties".into(), Value::Object(props));
    if let Some(r) = schema.get("required") {
        out.insert("required".into(), r.clone());
    }
    out.insert("additionalProperties".into(), json!(false));
    out
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// The schema of one value of a field.
pub fn value_schema(f: &Field) -> Value {
    match f.ty {
        FieldType::Number => json!({"type": "number"}),
        FieldType::Boolean => json!({"type": "boolean"}),
        FieldType::Select => json!({"type": "string", "enum": f.options}),
        FieldType::Tags | FieldType::MultiSelect | FieldType::Relations => {
            json!({"type": "array", "items": {"type": "string"}})
        }
        FieldType::RecordRef => json!({
            "type": "object",
            "properties": {"entity": {"type": "string"}, "id": {"type": "string"}},
            "required": ["entity", "id"],
            "additionalProperties": false
        }),
        FieldType::Currency => json!({
            "type": "object",
            "properties": {"amount": {"type": "string"}, "currency": {"type": "string"}},
            "required": ["amount", "currency"],
            "additionalProperties": false
        }),
        FieldType::Date => json!({"type": "string", "format": "date"}),
        FieldType::Datetime => json!({"type": "string", "format": "date-time"}),
        _ => json!({"type": "string"}),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Create,
    Update,
    Upsert,
}

/// The schema of one item of a create or update call.
fn item_schema(def: &EntityDef, mode: Mode) -> Value {
    let mut props = Map::new();
    let mut required = Vec::new();
    if mode == Mode::Update {
        props.insert("id".into(), json!({"type": "string"}));
        required.push("id");
    }
    for f in def.writable() {
        let mut s = value_schema(f);
        // Self-explanatory fields go without a description: every byte here is paid in
        // every conversation.
        let obvious = matches!(f.ty, FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Tags)
            && !f.doc.contains("upsert");
        if mode == Mode::Create && !obvious {
            s["description"] = Value::String(f.doc.to_owned());
        }
        if mode == Mode::Create {
            if f.required {
                required.push(f.name);
            }
        } else if mode == Mode::Upsert {
            if f.required || def.upsert_key == Some(f.name) {
                required.push(f.name);
            }
        } else if !f.required {
            // `null` clears the field.
            s = json!({"anyOf": [s, {"type": "null"}]});
        }
        props.insert(f.name.into(), s);
    }
    props.insert(
        "custom".into(),
        json!({"type": "object", "description": "Custom field values by key; null clears one."}),
    );
    if mode == Mode::Update {
        props.insert(
            "if_updated_at".into(),
            json!({"type": "string", "description": "Refused if updated_at is no longer this."}),
        );
    }
    json!({"type": "object", "properties": props, "required": required, "additionalProperties": false})
}

fn input(def: &EntityDef, mode: Mode, limit_doc: &str) -> Map<String, Value> {
    let mut items = json!({"type": "array", "items": item_schema(def, mode), "description": limit_doc});
    if let Value::Object(m) = &mut items {
        m.insert("minItems".into(), json!(1));
        m.insert("maxItems".into(), json!(100));
    }
    let mut props = Map::new();
    props.insert(def.plural.into(), items);
    if mode != Mode::Update {
        props.insert(
            "idempotency_key".into(),
            json!({"type": "string", "description": "A repeat within 24 hours returns the first answer."}),
        );
    }
    object(json!({
        "type": "object",
        "properties": props,
        "required": [def.plural],
        "additionalProperties": false
    }))
}

/// The create, update and (where the entity has a match key) upsert tools of an entity.
pub fn write_tools(def: &'static EntityDef) -> Vec<ToolDef> {
    let plural = def.plural;
    let entity = crate::entities::Entity::parse(def.name).expect("a registered entity");
    let toolset = crate::catalog::Toolset::Entity(entity);
    let needs = match def.required_any {
        [] => String::new(),
        some => format!(" Each needs at least one of {}.", some.join(", ")),
    };
    let required: Vec<&str> = def.fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    let required = match required.as_slice() {
        [] => String::new(),
        some => format!(" `{}` is required.", some.join("`, `")),
    };
    let write = Access::All(std::slice::from_ref(&def.write));
    let example: Value = serde_json::from_str(def.example).expect("the entity's example is JSON");
    let (first_key, first_value) = example
        .as_object()
        .and_then(|o| o.iter().find(|(k, _)| k.as_str() != "name").or_else(|| o.iter().next()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .unwrap_or_default();
    let update_example = json!({plural: [{"id": "0193a8f2-7c1e-7d3a-9b2f-5e8d4c3b2a10", first_key: first_value}]});
    let example_for_upsert = example.clone();
    let mut tools = vec![
        ToolDef {
            name: def.tools.create,
            title: format!("Create {plural}").into(),
            description: format!(
                "Create 1 to 100 {plural}: {}{needs}{required} All or nothing; returns them with their ids.\n\nExample: `{}`",
                def.doc,
                json!({plural: [example]})
            )
            .into(),
            toolset,
            access: write,
            read_only: false,
            destructive: false,
            idempotent: false,
            input_schema: input(def, Mode::Create, "1 to 100 new records."),
            output_schema: records_output("In the order given."),
            tool: Tool::Create(entity),
        },
        ToolDef {
            name: def.tools.update,
            title: format!("Update {plural}").into(),
            description: format!(
                "Change 1 to 100 {plural} by id: fields left out are kept, `null` clears one, lists are replaced, `custom` sets the keys given. All or nothing.\n\nExample: `{update_example}`"
            )
            .into(),
            toolset,
            access: write,
            read_only: false,
            destructive: true,
            idempotent: true,
            input_schema: input(def, Mode::Update, "1 to 100 changes, each naming the record's `id`."),
            output_schema: records_output("As they now are, in the order given."),
            tool: Tool::Update(entity),
        },
    ];
    if let (Some(name), Some(key)) = (def.tools.upsert, def.upsert_key) {
        tools.push(ToolDef {
            name,
            title: format!("Create or update {plural}").into(),
            description: format!(
                "Create or update 1 to 100 {plural} matched on `{key}` (case-insensitive): each item is answered, in order, as created, updated, unchanged, or ambiguous when several records share the {key} (nothing written for it).\n\nExample: `{}`",
                json!({plural: [example_for_upsert]})
            )
            .into(),
            toolset,
            access: write,
            read_only: false,
            destructive: true,
            idempotent: true,
            input_schema: input(def, Mode::Upsert, "1 to 100 records, each with its match key."),
            output_schema: crate::catalog::output_of::<crate::inputs::UpsertResult>(),
            tool: Tool::Upsert(entity),
        });
    }
    tools
}
