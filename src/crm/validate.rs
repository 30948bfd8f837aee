//! Checks on values from outside. Text is stored verbatim (no trimming or case folding)
//! except where the field's meaning calls for a canonical form: emails and domains.

use rapport_tools::inputs::FieldType;
use serde_json::{Map, Value};

use super::CrmError;
use super::fields;
use crate::store::CustomFieldDef;
use crate::time;

pub const MAX_TEXT: usize = 1_000;
pub const MAX_TAGS: usize = 50;
pub const MAX_TAG: usize = 100;

/// Where in the input a value sits, for messages such as `contacts[2].email`.
pub struct At<'a> {
    pub list: &'a str,
    pub index: usize,
}

impl At<'_> {
    pub fn field(&self, name: &str) -> String {
        format!("{}[{}].{}", self.list, self.index, name)
    }
}

pub fn text(at: &At, name: &str, v: Option<String>) -> Result<Option<String>, CrmError> {
    let Some(s) = v else { return Ok(None) };
    if s.chars().count() > MAX_TEXT {
        return Err(CrmError::invalid(format!("{} is longer than {MAX_TEXT} characters", at.field(name))));
    }
    // PostgreSQL cannot store NUL in text; refuse it on both databases alike.
    if s.contains('\0') {
        return Err(CrmError::invalid(format!(
            "{} contains a NUL character (\\u0000), which is not allowed",
            at.field(name)
        )));
    }
    Ok(if s.is_empty() { None } else { Some(s) })
}

pub fn required_text(at: &At, name: &str, v: String) -> Result<String, CrmError> {
    text(at, name, Some(v))?
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| CrmError::invalid(format!("{} must not be empty", at.field(name))))
}

pub fn email(at: &At, v: Option<String>) -> Result<Option<String>, CrmError> {
    let Some(s) = text(at, "email", v)? else { return Ok(None) };
    let s = s.trim().to_lowercase();
    let valid = s.len() <= 254
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && match s.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if !valid {
        return Err(CrmError::invalid(format!(
            "{} is not an email address like name@example.com: {s:?}",
            at.field("email")
        )));
    }
    Ok(Some(s))
}

/// A bare lowercase domain; a pasted URL is reduced to its host.
pub fn domain(at: &At, v: Option<String>) -> Result<Option<String>, CrmError> {
    let Some(s) = text(at, "domain", v)? else { return Ok(None) };
    let mut d = s.trim().to_lowercase();
    for scheme in ["https://", "http://"] {
        if let Some(rest) = d.strip_prefix(scheme) {
            d = rest.to_owned();
        }
    }
    if let Some(cut) = d.find(['/', '?', '#']) {
        d.truncate(cut);
    }
    let valid = d.len() <= 253
        && d.contains('.')
        && d.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if !valid {
        return Err(CrmError::invalid(format!("{} is not a domain like acme.com: {s:?}", at.field("domain"))));
    }
    Ok(Some(d))
}

pub fn tags(at: &At, v: Vec<String>) -> Result<Vec<String>, CrmError> {
    if v.len() > MAX_TAGS {
        return Err(CrmError::invalid(format!("{} holds more than {MAX_TAGS} tags", at.field("tags"))));
    }
    let mut out: Vec<String> = Vec::with_capacity(v.len());
    for t in v {
        if t.trim().is_empty() || t.chars().count() > MAX_TAG || t.contains('\0') {
            return Err(CrmError::invalid(format!(
                "{} holds {t:?}; a tag is 1 to {MAX_TAG} characters",
                at.field("tags")
            )));
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok(out)
}

/// Merges `given` into `current` (a `null` removes a key), checking each against the
/// organization's custom field definitions.
pub fn custom(
    at: &At,
    defs: &[CustomFieldDef],
    mut current: Map<String, Value>,
    given: Map<String, Value>,
) -> Result<Map<String, Value>, CrmError> {
    for (key, value) in given {
        let Some(def) = defs.iter().find(|d| d.key == key) else {
            let known: Vec<&str> = defs.iter().map(|d| d.key.as_str()).collect();
            return Err(CrmError::invalid(format!(
                "{} is not a custom field of this entity; defined custom fields: {}",
                at.field(&format!("custom.{key}")),
                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
            )));
        };
        if value.is_null() {
            current.remove(&key);
            continue;
        }
        let checked = custom_value(&at.field(&format!("custom.{key}")), def, value)?;
        current.insert(key, checked);
    }
    Ok(current)
}

fn custom_value(path: &str, def: &CustomFieldDef, v: Value) -> Result<Value, CrmError> {
    let ty = fields::custom_type(&def.field_type).unwrap_or(FieldType::Text);
    let wrong = |expected: &str| CrmError::invalid(format!("{path} takes {expected}, got {v}"));
    Ok(match ty {
        FieldType::Number | FieldType::Currency => match &v {
            Value::Number(_) => v.clone(),
            Value::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .ok_or_else(|| wrong("a number"))?,
            _ => return Err(wrong("a number")),
        },
        FieldType::Boolean => Value::Bool(v.as_bool().ok_or_else(|| wrong("true or false"))?),
        FieldType::Date | FieldType::Datetime => {
            let ms = v.as_str().and_then(time::parse_instant).ok_or_else(|| wrong("a date such as 2026-01-31"))?;
            let canonical = time::rfc3339(ms);
            Value::String(if ty == FieldType::Date { canonical[..10].to_owned() } else { canonical })
        }
        FieldType::Select => {
            let s = v.as_str().ok_or_else(|| wrong("one of the options"))?;
            if !def.options.iter().any(|o| o == s) {
                return Err(CrmError::invalid(format!("{path} takes one of: {}; got {s:?}", def.options.join(", "))));
            }
            v.clone()
        }
        _ => {
            let s = v.as_str().ok_or_else(|| wrong("text"))?;
            if s.chars().count() > MAX_TEXT || s.contains('\0') {
                return Err(CrmError::invalid(format!("{path} is over {MAX_TEXT} characters or holds NUL")));
            }
            v.clone()
        }
    })
}
