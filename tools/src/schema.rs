//! JSON Schemas derived from entity descriptions, and the rewrite that keeps every schema
//! portable: one `type` per schema (nullable values as `anyOf`, which single-type dialects
//! such as Gemini's function declarations accept) and only standard `format`s.

use serde_json::{Map, Value, json};

use crate::catalog::{Access, Call, ToolDef, records_output};
use crate::entities::{EntityDef, Field, FieldType};

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
            for key in ["items", "properties", "required", "additionalProperties", "enum", "format", "minimum"] {
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
        for key in ["items", "properties", "required", "additionalProperties", "enum", "format", "minimum"] {
            schema.remove(key);
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

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => unreachable!("an object literal"),
    }
}

/// The schema of one value of a field.
fn value_schema(f: &Field) -> Value {
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
        if mode == Mode::Create {
            s["description"] = Value::String(f.doc.to_owned());
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
        json!({"type": "object", "description": "Custom field values by key (describe_entity lists them); null clears one."}),
    );
    if mode == Mode::Update {
        props.insert(
            "if_updated_at".into(),
            json!({"type": "string", "description": "Refuse the change if the record's updated_at is no longer this."}),
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
            json!({"type": "string", "description": "Repeating a call with the same key within 24 hours returns the first answer and writes nothing."}),
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
    let toolset = def.toolset;
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
                "Create 1 to 100 {plural} in one call. {}{needs}{required} Nothing is written unless every one is valid. Returns the {plural} created, with their ids; describe_entity lists every field.\n\nExample: `{}`",
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
            output_schema: records_output("The records created, in the order given."),
            call: Call::Create(entity),
        },
        ToolDef {
            name: def.tools.update,
            title: format!("Update {plural}").into(),
            description: format!(
                "Change 1 to 100 {plural} by id. Fields you leave out are kept; a field set to `null` is cleared; `tags` replaces the list; `custom` sets the keys given. A change that alters nothing writes nothing. Nothing is written unless every change is valid. Returns the {plural} as they now are.\n\nExample: `{update_example}`"
            )
            .into(),
            toolset,
            access: write,
            read_only: false,
            destructive: true,
            idempotent: true,
            input_schema: input(def, Mode::Update, "1 to 100 changes, each naming the record's `id`."),
            output_schema: records_output("The records as they now are, in the order given."),
            call: Call::Update(entity),
        },
    ];
    if let (Some(name), Some(key)) = (def.tools.upsert, def.upsert_key) {
        tools.push(ToolDef {
            name,
            title: format!("Create or update {plural}").into(),
            description: format!(
                "Create or update 1 to 100 {plural}, matched on `{key}` (case-insensitive): a new {key} creates, a known one updates the fields given. Each item is answered in order as created, updated, unchanged, or ambiguous when several records share the {key} (nothing written for it). The way to sync from another system.\n\nExample: `{}`",
                json!({plural: [example_for_upsert]})
            )
            .into(),
            toolset,
            access: write,
            read_only: false,
            destructive: true,
            idempotent: true,
            input_schema: input(def, Mode::Upsert, "1 to 100 records, each with its match key."),
            output_schema: crate::catalog::schema_of::<crate::inputs::UpsertResult>(),
            call: Call::Upsert(entity),
        });
    }
    tools
}
