use super::*;

/// Largest note body: 100 KB.
pub const MAX_NOTE_BYTES: usize = 100 * 1024;

pub static NOTE: EntityDef = EntityDef {
    name: "note",
    plural: "notes",
    doc: "A markdown note on a record: a call summary, a meeting's minutes.",
    fields: &[
        ID,
        Field::new("body", FieldType::Markdown, "The note, in markdown, up to 100 KB.")
            .required()
            .max_chars(MAX_NOTE_BYTES),
        Field::new("record", FieldType::RecordRef, "The record it is on: {\"entity\", \"id\"}.").required(),
        CREATED_AT,
        UPDATED_AT,
    ],
    search: &["body"],
    required_any: &[],
    upsert_key: None,
    unique: None,
    label: &["body"],
    read: Scope::NotesRead,
    write: Scope::NotesWrite,
    delete: Scope::NotesDelete,
    tools: WriteTools { create: "add_notes", update: "update_notes", upsert: None },
    rules: &[],
    amount: None,
    example: r#"{"body": "Call with Ada: budget approved, wants a demo in January.", "record": {"entity": "contact", "id": "0193a8f2-7c1e-7d3a-9b2f-5e8d4c3b2a10"}}"#,
};
