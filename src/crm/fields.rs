//! Each entity's built-in fields: type, operators, whether sortable or writable.

use rapport_tools::inputs::{FieldType, Op};
use rapport_tools::records::Entity;

use crate::store::query::ColKind;

#[derive(Debug, Clone, Copy)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: FieldType,
    pub sortable: bool,
    pub writable: bool,
    pub references: Option<Entity>,
    pub description: &'static str,
}

const fn field(name: &'static str, ty: FieldType, description: &'static str) -> FieldSpec {
    FieldSpec { name, ty, sortable: false, writable: true, references: None, description }
}

const fn sortable(mut f: FieldSpec) -> FieldSpec {
    f.sortable = true;
    f
}

const fn read_only(mut f: FieldSpec) -> FieldSpec {
    f.writable = false;
    f
}

const fn relation(name: &'static str, to: Entity, description: &'static str) -> FieldSpec {
    FieldSpec { name, ty: FieldType::Relation, sortable: false, writable: true, references: Some(to), description }
}

const ID: FieldSpec = read_only(field("id", FieldType::Id, "The record's id."));
const CREATED: FieldSpec = sortable(read_only(field("created_at", FieldType::Datetime, "When it was created.")));
const UPDATED: FieldSpec = sortable(read_only(field("updated_at", FieldType::Datetime, "When it last changed.")));
const TAGS: FieldSpec = field("tags", FieldType::Tags, "Free labels.");
const OWNER: FieldSpec = field("owner_id", FieldType::Id, "The user responsible for it.");

pub static CONTACT_FIELDS: &[FieldSpec] = &[
    ID,
    sortable(field("first_name", FieldType::Text, "Given name.")),
    sortable(field("last_name", FieldType::Text, "Family name.")),
    sortable(field("email", FieldType::Email, "Email address, stored lowercase.")),
    field("phone", FieldType::Phone, "Phone number as given."),
    sortable(field("title", FieldType::Text, "Job title.")),
    relation("company_id", Entity::Company, "The company the contact works for."),
    OWNER,
    TAGS,
    CREATED,
    UPDATED,
];

pub static COMPANY_FIELDS: &[FieldSpec] = &[
    ID,
    sortable(field("name", FieldType::Text, "The company's name.")),
    sortable(field("domain", FieldType::Url, "Web domain such as acme.com, unique in the organization.")),
    sortable(field("industry", FieldType::Text, "Industry, free text.")),
    OWNER,
    TAGS,
    read_only(relation("contact_ids", Entity::Contact, "The company's contacts (filter with has_any / has_none).")),
    CREATED,
    UPDATED,
];

pub fn fields(entity: Entity) -> &'static [FieldSpec] {
    match entity {
        Entity::Contact => CONTACT_FIELDS,
        Entity::Company => COMPANY_FIELDS,
    }
}

pub fn find(entity: Entity, name: &str) -> Option<&'static FieldSpec> {
    fields(entity).iter().find(|f| f.name == name)
}

pub fn description(entity: Entity) -> &'static str {
    match entity {
        Entity::Contact => "A person you deal with; may belong to a company.",
        Entity::Company => "An organization; contacts link to it with company_id.",
    }
}

/// The operators a field of this type accepts.
pub fn operators(ty: FieldType, multi_relation: bool) -> &'static [Op] {
    use Op::*;
    const TEXT: &[Op] = &[Eq, Ne, Contains, StartsWith, In, NotIn, IsNull, IsNotNull];
    const ORDERED: &[Op] = &[Eq, Ne, Gt, Gte, Lt, Lte, Between, In, NotIn, IsNull, IsNotNull];
    const TIME: &[Op] = &[Eq, Ne, Gt, Gte, Lt, Lte, Between, IsNull, IsNotNull, InLastDays];
    const ID_OPS: &[Op] = &[Eq, Ne, In, NotIn, IsNull, IsNotNull];
    const SINGLE_REL: &[Op] = &[Eq, Ne, In, NotIn, IsNull, IsNotNull, HasAny, HasNone];
    const MULTI: &[Op] = &[HasAny, HasNone, IsNull, IsNotNull];
    const BOOL: &[Op] = &[Eq, Ne, IsNull, IsNotNull];
    const SELECT: &[Op] = &[Eq, Ne, In, NotIn, IsNull, IsNotNull];
    match ty {
        FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url => TEXT,
        FieldType::Number | FieldType::Currency => ORDERED,
        FieldType::Date | FieldType::Datetime => TIME,
        FieldType::Id => ID_OPS,
        FieldType::Relation if multi_relation => MULTI,
        FieldType::Relation => SINGLE_REL,
        FieldType::Tags => MULTI,
        FieldType::Boolean => BOOL,
        FieldType::Select => SELECT,
    }
}

pub fn spec_operators(f: &FieldSpec) -> &'static [Op] {
    operators(f.ty, f.name == "contact_ids")
}

pub fn col_kind(ty: FieldType) -> ColKind {
    match ty {
        FieldType::Datetime => ColKind::Int,
        FieldType::Number | FieldType::Currency => ColKind::Float,
        FieldType::Boolean => ColKind::Bool,
        _ => ColKind::Text,
    }
}

/// Custom field types, as stored in `custom_fields.field_type`.
pub fn custom_type(name: &str) -> Option<FieldType> {
    Some(match name {
        "text" => FieldType::Text,
        "number" => FieldType::Number,
        "currency" => FieldType::Currency,
        "date" => FieldType::Date,
        "datetime" => FieldType::Datetime,
        "boolean" => FieldType::Boolean,
        "email" => FieldType::Email,
        "phone" => FieldType::Phone,
        "url" => FieldType::Url,
        "select" => FieldType::Select,
        _ => return None,
    })
}
