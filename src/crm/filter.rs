//! Parsing `filters` and `sort` into store predicates. Every mistake names the field or
//! operator and lists what would have been valid.

use rapport_tools::inputs::{Direction, FieldCondition, Op, SortKey};
use rapport_tools::{Entity, Field, FieldType, Storage};
use serde_json::Value;

use super::CrmError;
use super::fields;
use crate::store::CustomFieldDef;
use crate::store::query::{CmpOp, Col, ColKind, Predicate, SortExpr, SqlValue, TAGS_KEY, is_safe_key};
use crate::time::{self, DAY_MS, Millis};

/// Deepest nesting of `any` groups.
const MAX_DEPTH: usize = 4;
/// Most conditions in one filter, counting nested ones.
const MAX_CONDITIONS: usize = 50;
/// Most values in one `in` list.
const MAX_LIST: usize = 500;

/// What a filter can refer to: the entity's fields and its custom fields.
pub struct Schema<'a> {
    pub entity: Entity,
    pub custom: &'a [CustomFieldDef],
    pub now: Millis,
}

#[derive(Clone, Copy)]
enum Target<'a> {
    Builtin(&'static Field),
    Custom(&'a CustomFieldDef, FieldType),
}

impl Target<'_> {
    fn ty(&self) -> FieldType {
        match self {
            Target::Builtin(f) => f.ty,
            Target::Custom(_, ty) => *ty,
        }
    }

    /// What the condition tests in SQL.
    fn col(&self) -> Col {
        match self {
            Target::Builtin(f) => Col::Builtin { name: f.name, kind: fields::col_kind(f.ty), indexed: f.indexed() },
            Target::Custom(def, FieldType::Currency) => Col::CustomAmount { key: def.key.clone() },
            Target::Custom(def, ty) => {
                let kind = match ty {
                    // Custom dates are stored as canonical RFC 3339 text, which sorts in time order.
                    FieldType::Date | FieldType::Datetime => ColKind::Text,
                    other => fields::col_kind(*other),
                };
                Col::Custom { key: def.key.clone(), kind }
            }
        }
    }

    /// Times a column keeps as text: built-in dates, and custom dates and times.
    fn time_as_text(&self) -> bool {
        matches!(self, Target::Custom(..)) || self.ty() == FieldType::Date
    }
}

impl<'a> Schema<'a> {
    fn valid_fields(&self) -> String {
        let mut names: Vec<String> = self
            .entity
            .def()
            .fields
            .iter()
            .filter(|f| !fields::operators(f.ty).is_empty())
            .map(|f| f.name.to_owned())
            .collect();
        names.extend(self.custom.iter().map(|c| format!("custom.{}", c.key)));
        names.join(", ")
    }

    fn target(&self, name: &str) -> Result<Target<'a>, CrmError> {
        if let Some(key) = name.strip_prefix("custom.") {
            if let Some(def) = self.custom.iter().find(|c| c.key == key)
                && is_safe_key(&def.key)
            {
                return Ok(Target::Custom(def, def.field_type.field_type()));
            }
        } else if let Some(spec) = self.entity.def().field(name) {
            return Ok(Target::Builtin(spec));
        }
        Err(CrmError::invalid(format!(
            "unknown field `{name}` for {}; valid fields: {}",
            self.entity,
            self.valid_fields()
        )))
    }

    pub fn parse_filters(&self, filters: &[Value]) -> Result<Vec<Predicate>, CrmError> {
        let mut budget = MAX_CONDITIONS;
        filters.iter().map(|f| self.condition(f, 0, &mut budget)).collect()
    }

    fn condition(&self, v: &Value, depth: usize, budget: &mut usize) -> Result<Predicate, CrmError> {
        if *budget == 0 {
            return Err(CrmError::invalid(format!("a filter may hold at most {MAX_CONDITIONS} conditions")));
        }
        *budget -= 1;
        let Value::Object(obj) = v else {
            return Err(CrmError::invalid(format!(
                "each filter condition is an object like {{\"field\": \"email\", \"op\": \"eq\", \"value\": \"ada@example.com\"}} or {{\"any\": [...]}}, got {v}"
            )));
        };
        if let Some(any) = obj.get("any") {
            if obj.len() != 1 {
                return Err(CrmError::invalid("an `any` condition holds only the key `any`"));
            }
            if depth >= MAX_DEPTH {
                return Err(CrmError::invalid(format!("`any` groups nest at most {MAX_DEPTH} deep")));
            }
            let Value::Array(items) = any else {
                return Err(CrmError::invalid("`any` takes a list of conditions"));
            };
            let inner = items.iter().map(|c| self.condition(c, depth + 1, budget)).collect::<Result<_, _>>()?;
            return Ok(Predicate::Any(inner));
        }
        let cond: FieldCondition =
            serde_json::from_value(v.clone()).map_err(|e| CrmError::invalid(format!("filter condition {v}: {e}")))?;
        self.field_condition(&cond)
    }

    /// A condition; on a custom field, what no missing value satisfies is looked up in
    /// the typed value table, the rest read the record's JSON.
    fn field_condition(&self, c: &FieldCondition) -> Result<Predicate, CrmError> {
        let target = self.target(&c.field)?;
        let p = self.condition_on_field(c, target)?;
        Ok(match target {
            Target::Custom(def, _) => p.on_value_table(self.entity, &def.key),
            // Built-in tags are in the value table too, one row a tag.
            Target::Builtin(f) if f.ty == FieldType::Tags => p.on_value_table(self.entity, TAGS_KEY),
            Target::Builtin(_) => p,
        })
    }

    fn condition_on_field(&self, c: &FieldCondition, target: Target<'_>) -> Result<Predicate, CrmError> {
        let (ty, ops, col) = (target.ty(), fields::operators(target.ty()), target.col());
        let reverse = match &target {
            Target::Builtin(Field { storage: Storage::Reverse { entity, field }, .. }) => {
                Some((self.entity.def().plural, entity.def().plural, *field))
            }
            _ => None,
        };
        let linked = match &target {
            Target::Builtin(Field { storage: Storage::Links, target: Some(to), .. }) => {
                Some((self.entity.def().plural, self.entity.as_str(), *to))
            }
            _ => None,
        };
        if !ops.contains(&c.op) {
            let valid: Vec<&str> = ops.iter().map(|o| o.as_str()).collect();
            return Err(CrmError::invalid(format!(
                "operator `{}` does not fit field `{}` ({}); valid operators: {}",
                c.op.as_str(),
                c.field,
                ty.as_str(),
                valid.join(", ")
            )));
        }
        let field = c.field.as_str();
        let value = || {
            c.value
                .as_ref()
                .filter(|v| !v.is_null())
                .ok_or_else(|| CrmError::invalid(format!("operator `{}` on `{field}` needs a `value`", c.op.as_str())))
        };
        let scalar = |v: &Value| self.scalar(field, ty, &target, v);
        let op_name = c.op.as_str();
        Ok(match c.op {
            Op::Eq | Op::Ne | Op::Gt | Op::Gte | Op::Lt | Op::Lte => {
                let op = match c.op {
                    Op::Eq => CmpOp::Eq,
                    Op::Ne => CmpOp::Ne,
                    Op::Gt => CmpOp::Gt,
                    Op::Gte => CmpOp::Gte,
                    Op::Lt => CmpOp::Lt,
                    _ => CmpOp::Lte,
                };
                Predicate::Compare { col, op, value: scalar(value()?)? }
            }
            Op::Contains | Op::StartsWith => {
                let Value::String(s) = value()? else {
                    return Err(CrmError::invalid(format!("operator `{}` on `{field}` takes text", c.op.as_str())));
                };
                // Emails and domains are stored lowercase: a prefix is a range of the
                // column's index, not a scan.
                if c.op == Op::StartsWith
                    && matches!(target, Target::Builtin(_))
                    && matches!(ty, FieldType::Email | FieldType::Domain)
                    && let Some(upper) = prefix_upper_bound(&s.to_lowercase())
                {
                    let low = Predicate::Compare {
                        col: col.clone(),
                        op: CmpOp::Gte,
                        value: SqlValue::Text(s.to_lowercase()),
                    };
                    let high = Predicate::Compare { col, op: CmpOp::Lt, value: SqlValue::Text(upper) };
                    return Ok(Predicate::All(vec![low, high]));
                }
                let escaped = like_escape(&s.to_lowercase());
                let pattern = if c.op == Op::Contains { format!("%{escaped}%") } else { format!("{escaped}%") };
                Predicate::Like { col, pattern }
            }
            Op::Between => {
                let items = as_list(field, op_name, value()?)?;
                if items.len() != 2 {
                    return Err(CrmError::invalid(format!(
                        "operator `between` on `{field}` takes two values, [low, high]"
                    )));
                }
                let low = Predicate::Compare { col: col.clone(), op: CmpOp::Gte, value: scalar(items[0])? };
                let high = Predicate::Compare { col, op: CmpOp::Lte, value: scalar(items[1])? };
                Predicate::All(vec![low, high])
            }
            Op::In | Op::NotIn => {
                let values = as_list(field, op_name, value()?)?.into_iter().map(scalar).collect::<Result<_, _>>()?;
                Predicate::In { col, values, negate: c.op == Op::NotIn }
            }
            Op::IsNull | Op::IsNotNull => {
                let negate = c.op == Op::IsNotNull;
                match (reverse, ty) {
                    // A company "has no contact_ids" when no live contact points at it.
                    (Some((outer, table, fk)), _) => {
                        Predicate::Reverse { outer, table, fk, ids: None, negate: !negate }
                    }
                    // Lists are never NULL: "null" means the empty list.
                    (None, FieldType::Tags | FieldType::MultiSelect) if matches!(target, Target::Builtin(_)) => {
                        Predicate::Compare {
                            col,
                            op: if negate { CmpOp::Ne } else { CmpOp::Eq },
                            value: SqlValue::Text("[]".into()),
                        }
                    }
                    _ => Predicate::Null { col, negate },
                }
            }
            Op::InLastDays => {
                let days = value()?.as_f64().filter(|d| *d >= 0.0 && *d <= 36_500.0).ok_or_else(|| {
                    CrmError::invalid(format!("`in_last_days` on `{field}` takes a number of days, 0 to 36500"))
                })?;
                let since = self.now - (days * DAY_MS as f64) as Millis;
                let value = match (target.time_as_text(), ty) {
                    (false, _) => SqlValue::Int(since),
                    (true, FieldType::Date) => SqlValue::Text(time::rfc3339(since)[..10].to_owned()),
                    (true, _) => SqlValue::Text(time::rfc3339(since)),
                };
                Predicate::Compare { col, op: CmpOp::Gte, value }
            }
            Op::HasAny | Op::HasNone => {
                let negate = c.op == Op::HasNone;
                let items = as_list(field, op_name, value()?)?;
                let texts = items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s.clone()),
                        other => Err(CrmError::invalid(format!("`{field}` values are text, got {other}"))),
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if let Some((outer, from, to)) = linked {
                    return Ok(Predicate::Linked { outer, from, to, ids: Some(texts), negate });
                }
                match (reverse, ty) {
                    (Some((outer, table, fk)), _) => Predicate::Reverse { outer, table, fk, ids: Some(texts), negate },
                    (None, FieldType::Tags) => Predicate::TagsAny { custom: None, values: texts, negate },
                    (None, FieldType::MultiSelect) => match &target {
                        Target::Custom(def, _) => {
                            Predicate::TagsAny { custom: Some(def.key.clone()), values: texts, negate }
                        }
                        Target::Builtin(_) => Predicate::TagsAny { custom: None, values: texts, negate },
                    },
                    _ => Predicate::In { col, values: texts.into_iter().map(SqlValue::Text).collect(), negate },
                }
            }
        })
    }

    /// One operand, checked against the field's type.
    fn scalar(&self, field: &str, ty: FieldType, target: &Target<'_>, v: &Value) -> Result<SqlValue, CrmError> {
        let wrong = |expected: &str| CrmError::invalid(format!("`{field}` takes {expected}, got {v}"));
        match ty {
            FieldType::Number | FieldType::Currency | FieldType::Decimal => {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok().filter(|f| f.is_finite()),
                    _ => None,
                };
                n.map(SqlValue::Float).ok_or_else(|| wrong("a number"))
            }
            FieldType::Boolean => v.as_bool().map(SqlValue::Bool).ok_or_else(|| wrong("true or false")),
            FieldType::Date | FieldType::Datetime => {
                let ms = v.as_str().and_then(time::parse_instant).ok_or_else(|| {
                    wrong("a date such as 2026-01-31 or an RFC 3339 time such as 2026-01-31T09:00:00Z")
                })?;
                Ok(match (target.time_as_text(), ty) {
                    (false, _) => SqlValue::Int(ms),
                    (true, FieldType::Date) => SqlValue::Text(time::rfc3339(ms)[..10].to_owned()),
                    (true, _) => SqlValue::Text(time::rfc3339(ms)),
                })
            }
            FieldType::CurrencyCode => {
                v.as_str().map(|s| SqlValue::Text(s.trim().to_ascii_uppercase())).ok_or_else(|| wrong("text"))
            }
            FieldType::Email | FieldType::Domain => {
                v.as_str().map(|s| SqlValue::Text(s.trim().to_lowercase())).ok_or_else(|| wrong("text"))
            }
            _ => v.as_str().map(|s| SqlValue::Text(s.to_owned())).ok_or_else(|| wrong("text")),
        }
    }

    /// The column `count_records` groups by: a field with a single plain value.
    pub fn group_col(&self, name: &str) -> Result<Col, CrmError> {
        let groupable = |ty: FieldType| {
            !matches!(
                ty,
                FieldType::Markdown
                    | FieldType::Tags
                    | FieldType::MultiSelect
                    | FieldType::Relations
                    | FieldType::RecordRef
                    | FieldType::Currency
                    | FieldType::Datetime
                    | FieldType::Id
            )
        };
        match self.target(name) {
            Ok(t) if groupable(t.ty()) && !matches!(t, Target::Builtin(f) if !f.is_column()) => Ok(t.col()),
            _ => {
                let valid: Vec<&str> = self
                    .entity
                    .def()
                    .fields
                    .iter()
                    .filter(|f| f.is_column() && groupable(f.ty))
                    .map(|f| f.name)
                    .collect();
                Err(CrmError::invalid(format!(
                    "cannot group {} by `{name}`; fields to group by: {}, custom.KEY",
                    self.entity.plural(),
                    valid.join(", ")
                )))
            }
        }
    }

    /// The sort keys, then `created_at` in the first key's direction unless named (ties
    /// are broken by age, then by id). The indexes hold the same order after each
    /// field, so a filter on a field's value walks its index newest first.
    pub fn parse_sort(&self, sort: &[SortKey]) -> Result<Vec<SortExpr>, CrmError> {
        if sort.is_empty() {
            return Ok(vec![SortExpr::created_at(true)]);
        }
        if sort.len() > 3 {
            return Err(CrmError::invalid("sort by at most 3 fields"));
        }
        let mut keys = self.parse_sort_keys(sort)?;
        if !keys.iter().any(|k| k.field == "created_at") {
            keys.push(SortExpr::created_at(keys[0].desc));
        }
        Ok(keys)
    }

    fn parse_sort_keys(&self, sort: &[SortKey]) -> Result<Vec<SortExpr>, CrmError> {
        sort.iter()
            .map(|k| {
                let sortable = match self.target(&k.field) {
                    Ok(Target::Builtin(f)) => f.sortable,
                    Ok(Target::Custom(_, ty)) => !matches!(ty, FieldType::MultiSelect | FieldType::Boolean),
                    Err(_) => false,
                };
                if !sortable {
                    let mut valid: Vec<String> =
                        self.entity.def().fields.iter().filter(|f| f.sortable).map(|f| f.name.to_owned()).collect();
                    valid.push("custom.KEY".into());
                    return Err(CrmError::invalid(format!(
                        "cannot sort {} by `{}`; sortable fields: {}",
                        self.entity.plural(),
                        k.field,
                        valid.join(", ")
                    )));
                }
                let target = self.target(&k.field)?;
                Ok(SortExpr { field: k.field.clone(), col: target.col(), desc: k.direction == Direction::Desc })
            })
            .collect()
    }
}

fn as_list<'v>(field: &str, op: &str, v: &'v Value) -> Result<Vec<&'v Value>, CrmError> {
    match v {
        Value::Array(items) if items.len() <= MAX_LIST => Ok(items.iter().collect()),
        Value::Array(_) => Err(CrmError::invalid(format!("a list holds at most {MAX_LIST} values"))),
        other => Err(CrmError::invalid(format!("operator `{op}` on `{field}` takes a list of values, got {other}"))),
    }
}

/// The smallest string above every string that starts with `prefix`, in byte order, for
/// a non-empty printable-ASCII prefix.
fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let last = *prefix.as_bytes().last()?;
    if !prefix.bytes().all(|b| (0x20..0x7e).contains(&b)) {
        return None;
    }
    let mut upper = prefix[..prefix.len() - 1].to_owned();
    upper.push((last + 1) as char);
    Some(upper)
}

pub use crate::store::query::like_escape;

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn schema() -> Schema<'static> {
        Schema { entity: Entity::Contact, custom: &[], now: 1_700_000_000_000 }
    }

    fn refused(filters: Value) -> String {
        let list = filters.as_array().unwrap().clone();
        match schema().parse_filters(&list) {
            Ok(_) => panic!("{filters} was taken"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn conditions_of_every_shape_parse() {
        let ok = json!([
            { "field": "email", "op": "eq", "value": "ada@example.com" },
            { "field": "last_name", "op": "starts_with", "value": "Lo" },
            { "field": "created_at", "op": "in_last_days", "value": 30 },
            { "field": "tags", "op": "has_any", "value": ["vip"] },
            { "any": [{ "field": "title", "op": "is_null" }, { "field": "title", "op": "contains", "value": "CTO" }] },
        ]);
        assert_eq!(schema().parse_filters(ok.as_array().unwrap()).unwrap().len(), 5);
    }

    #[test]
    fn unknown_fields_and_unfit_operators_are_refused_with_what_is_valid() {
        let e = refused(json!([{ "field": "shoe_size", "op": "eq", "value": 42 }]));
        assert!(e.contains("unknown field `shoe_size`") && e.contains("email"), "{e}");
        assert!(refused(json!([{ "field": "email", "op": "gt", "value": 1 }])).contains("email"));
        assert!(refused(json!([{ "field": "custom.nope", "op": "eq", "value": 1 }])).contains("custom.nope"));
        assert!(refused(json!([{ "field": "email", "op": "between", "value": ["a"] }])).contains("between"));
    }

    #[test]
    fn filters_are_bounded_in_depth_and_size() {
        let mut deep = json!({ "field": "email", "op": "is_null" });
        for _ in 0..=MAX_DEPTH {
            deep = json!({ "any": [deep] });
        }
        assert!(schema().parse_filters(&[deep]).is_err(), "nesting past {MAX_DEPTH} is refused");
        let many: Vec<Value> = (0..=MAX_CONDITIONS).map(|_| json!({ "field": "email", "op": "is_null" })).collect();
        assert!(schema().parse_filters(&many).is_err(), "more than {MAX_CONDITIONS} conditions are refused");
        let long: Vec<String> = (0..=MAX_LIST).map(|i| format!("{i}@example.com")).collect();
        let big_in = json!([{ "field": "email", "op": "in", "value": long }]);
        assert!(schema().parse_filters(big_in.as_array().unwrap()).is_err());
    }
}
