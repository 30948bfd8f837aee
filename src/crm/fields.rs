//! What each field type means to filters and storage: its operators and column kind.

use rapport_tools::inputs::Op;
use rapport_tools::{Field, FieldType};

/// The operators a field of this type accepts.
pub fn operators(ty: FieldType) -> &'static [Op] {
    use Op::*;
    const TEXT: &[Op] = &[Eq, Ne, Contains, StartsWith, In, NotIn, IsNull, IsNotNull];
    const ORDERED: &[Op] = &[Eq, Ne, Gt, Gte, Lt, Lte, Between, In, NotIn, IsNull, IsNotNull];
    const TIME: &[Op] = &[Eq, Ne, Gt, Gte, Lt, Lte, Between, IsNull, IsNotNull, InLastDays];
    const ID_OPS: &[Op] = &[Eq, Ne, In, NotIn, IsNull, IsNotNull];
    const SINGLE_REL: &[Op] = &[Eq, Ne, In, NotIn, IsNull, IsNotNull, HasAny, HasNone];
    const MULTI: &[Op] = &[HasAny, HasNone, IsNull, IsNotNull];
    const BOOL: &[Op] = &[Eq, Ne, IsNull, IsNotNull];
    const NONE: &[Op] = &[];
    match ty {
        FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Url | FieldType::Domain => TEXT,
        FieldType::Markdown => &[Contains, IsNull, IsNotNull],
        // A currency value (custom fields) compares by its amount.
        FieldType::Number | FieldType::Decimal | FieldType::Currency => ORDERED,
        FieldType::Date | FieldType::Datetime => TIME,
        FieldType::Id | FieldType::User | FieldType::CurrencyCode | FieldType::Select => ID_OPS,
        FieldType::Relation => SINGLE_REL,
        FieldType::Relations | FieldType::Tags | FieldType::MultiSelect => MULTI,
        FieldType::Boolean => BOOL,
        FieldType::RecordRef => NONE,
    }
}

pub fn field_operators(f: &Field) -> &'static [Op] {
    operators(f.ty)
}

pub use crate::store::query::col_kind;
