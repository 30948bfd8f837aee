//! Checks on values from outside. Text is stored verbatim (no trimming or case folding)
//! except where the field's meaning calls for a canonical form: emails and domains.

use rapport_tools::{Entity, Field, FieldType};
use serde_json::{Map, Value};

use super::CrmError;
use crate::store::{CustomFieldDef, CustomType};
use crate::time;

pub const MAX_TEXT: usize = rapport_tools::entities::MAX_TEXT;
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

/// A URL value: http, https or mailto only (SPEC 5), so that no `javascript:` or `data:`
/// value is ever stored to be followed. A bare host such as `example.com/pricing` means its
/// https URL.
pub fn link(path: &str, raw: &str) -> Result<String, CrmError> {
    let s = raw.trim();
    // `example.com:8080/x` is a host and port, not a scheme: schemes here hold no dot.
    let has_scheme =
        s.find(':').is_some_and(|i| i > 0 && s[..i].chars().all(|c| c.is_ascii_alphanumeric() || "+-".contains(c)));
    let bare_host = !has_scheme && s.split('/').next().is_some_and(|h| h.contains('.') && !h.contains(' '));
    let candidate = if bare_host { format!("https://{s}") } else { s.to_owned() };
    let refuse = || {
        CrmError::invalid(format!("{path} takes an http, https or mailto URL such as https://example.com; got {raw:?}"))
    };
    let url = url::Url::parse(&candidate).map_err(|_| refuse())?;
    match url.scheme() {
        "http" | "https" if url.host_str().is_some_and(|h| !h.is_empty()) => Ok(candidate),
        "mailto" if !url.path().is_empty() => Ok(candidate),
        _ => Err(refuse()),
    }
}

pub fn text(at: &At, name: &str, v: Option<String>) -> Result<Option<String>, CrmError> {
    text_up_to(at, name, v, MAX_TEXT)
}

fn text_up_to(at: &At, name: &str, v: Option<String>, max: usize) -> Result<Option<String>, CrmError> {
    let Some(s) = v else { return Ok(None) };
    if s.len() > max && s.chars().count() > max {
        return Err(CrmError::invalid(format!("{} is longer than {max} characters", at.field(name))));
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

/// A built-in field's value, checked and in canonical form; `Null` clears the field.
pub fn field_value(at: &At, f: &Field, v: Value) -> Result<Value, CrmError> {
    if v.is_null() {
        return Ok(Value::Null);
    }
    let path = at.field(f.name);
    let wrong = |expected: &str| CrmError::invalid(format!("{path} takes {expected}, got {v}"));
    let string = |v: &Value| v.as_str().map(str::to_owned).ok_or_else(|| wrong("text"));
    let opt = |o: Option<String>| o.map_or(Value::Null, Value::String);
    Ok(match f.ty {
        // Markdown is limited in bytes (a note holds up to 100 KB).
        FieldType::Markdown if string(&v)?.len() > f.max_chars => {
            return Err(CrmError::invalid(format!("{path} is longer than {} bytes", f.max_chars)));
        }
        FieldType::Url => {
            opt(text_up_to(at, f.name, Some(string(&v)?), f.max_chars)?.map(|u| link(&path, &u)).transpose()?)
        }
        FieldType::Text | FieldType::Phone | FieldType::Markdown => {
            let max = if f.ty == FieldType::Markdown { usize::MAX } else { f.max_chars };
            let s = text_up_to(at, f.name, Some(string(&v)?), max)?;
            if f.required && s.as_deref().is_none_or(|s| s.trim().is_empty()) {
                return Err(CrmError::invalid(format!("{path} must not be empty")));
            }
            opt(s)
        }
        FieldType::Email => opt(email(at, Some(string(&v)?))?),
        FieldType::Domain => opt(domain(at, Some(string(&v)?))?),
        FieldType::Id | FieldType::Relation | FieldType::User => {
            let s = string(&v)?;
            let s = s.trim();
            if s.is_empty() {
                Value::Null
            } else if s.len() > 100 || s.chars().any(char::is_control) {
                return Err(wrong("an id"));
            } else {
                Value::String(s.to_owned())
            }
        }
        FieldType::Tags => {
            let list: Vec<String> = serde_json::from_value(v.clone()).map_err(|_| wrong("a list of text"))?;
            Value::from(tags(at, list)?)
        }
        FieldType::Boolean => Value::Bool(v.as_bool().ok_or_else(|| wrong("true or false"))?),
        FieldType::Number => number(&v).ok_or_else(|| wrong("a number"))?,
        FieldType::Date | FieldType::Datetime => instant(f.ty, &v)
            .ok_or_else(|| wrong("a date such as 2026-01-31 or an RFC 3339 time such as 2026-01-31T09:00:00Z"))?,
        FieldType::Select => {
            let s = string(&v)?;
            if !f.options.contains(&s.as_str()) {
                return Err(CrmError::invalid(format!("{path} takes one of: {}; got {s:?}", f.options.join(", "))));
            }
            Value::String(s)
        }
        FieldType::RecordRef => {
            let (entity, id) = match &v {
                Value::Object(o) if o.len() == 2 => {
                    (o.get("entity").and_then(Value::as_str), o.get("id").and_then(Value::as_str))
                }
                _ => (None, None),
            };
            let (Some(entity), Some(id)) = (entity, id) else {
                return Err(wrong(r#"{"entity": "contact", "id": "…"}"#));
            };
            let Some(entity) = Entity::parse(entity) else {
                let valid: Vec<&str> = Entity::ALL.iter().map(|e| e.as_str()).collect();
                return Err(CrmError::invalid(format!("{path}.entity is one of {}; got {entity:?}", valid.join(", "))));
            };
            serde_json::json!({ "entity": entity.as_str(), "id": id.trim() })
        }
        FieldType::Decimal => {
            let given = match &v {
                Value::String(s) => s.clone(),
                // A JSON number is exact only when it is whole.
                Value::Number(n) if n.is_i64() || n.is_u64() => n.to_string(),
                _ => String::new(),
            };
            Value::String(super::money::decimal(&given).ok_or_else(|| {
                wrong("an exact decimal as a string, such as \"1234.50\" (no exponent, no thousands separators, at most 8 decimals)")
            })?)
        }
        FieldType::CurrencyCode => {
            let s = string(&v)?;
            Value::String(
                super::money::currency(&s)
                    .ok_or_else(|| wrong("an ISO 4217 currency code such as EUR or USD"))?
                    .to_owned(),
            )
        }
        FieldType::Relations => {
            let list: Vec<String> = serde_json::from_value(v.clone()).map_err(|_| wrong("a list of ids"))?;
            if list.len() > super::MAX_BATCH {
                return Err(CrmError::invalid(format!("{path} holds at most {} ids", super::MAX_BATCH)));
            }
            let mut unique: Vec<String> = Vec::with_capacity(list.len());
            for id in list.into_iter().map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()) {
                if !unique.contains(&id) {
                    unique.push(id);
                }
            }
            Value::from(unique)
        }
        FieldType::Currency | FieldType::MultiSelect => {
            return Err(CrmError::invalid(format!("{path} cannot be written this way")));
        }
    })
}

fn number(v: &Value) -> Option<Value> {
    match v {
        Value::Number(n) if n.as_f64().is_some_and(f64::is_finite) => Some(v.clone()),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number),
        _ => None,
    }
}

/// A date as `YYYY-MM-DD`, a time as RFC 3339 in UTC with milliseconds.
fn instant(ty: FieldType, v: &Value) -> Option<Value> {
    let ms = v.as_str().and_then(time::parse_instant)?;
    let canonical = time::rfc3339(ms);
    Some(Value::String(if ty == FieldType::Date { canonical[..10].to_owned() } else { canonical }))
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
    let wrong = |expected: &str| CrmError::invalid(format!("{path} takes {expected}, got {v}"));
    let text = |v: &Value| -> Result<String, CrmError> {
        let s = v.as_str().ok_or_else(|| wrong("text"))?;
        if s.chars().count() > MAX_TEXT || s.contains('\0') {
            return Err(CrmError::invalid(format!("{path} is over {MAX_TEXT} characters or holds NUL")));
        }
        Ok(s.to_owned())
    };
    let at = At { list: "", index: 0 };
    Ok(match def.field_type {
        CustomType::Number => number(&v).ok_or_else(|| wrong("a number"))?,
        CustomType::Boolean => Value::Bool(v.as_bool().ok_or_else(|| wrong("true or false"))?),
        CustomType::Date | CustomType::Datetime => {
            instant(def.field_type.field_type(), &v).ok_or_else(|| wrong("a date such as 2026-01-31"))?
        }
        CustomType::Select => {
            let s = text(&v)?;
            if !def.options.contains(&s) {
                return Err(CrmError::invalid(format!("{path} takes one of: {}; got {s:?}", def.options.join(", "))));
            }
            Value::String(s)
        }
        CustomType::MultiSelect => {
            let list: Vec<String> = serde_json::from_value(v.clone()).map_err(|_| wrong("a list of options"))?;
            if let Some(bad) = list.iter().find(|s| !def.options.contains(s)) {
                return Err(CrmError::invalid(format!(
                    "{path} takes options from: {}; got {bad:?}",
                    def.options.join(", ")
                )));
            }
            let mut unique: Vec<String> = Vec::with_capacity(list.len());
            for s in list {
                if !unique.contains(&s) {
                    unique.push(s);
                }
            }
            Value::from(unique)
        }
        CustomType::Email => {
            email(&at, Some(text(&v)?)).map_err(|_| wrong("an email address"))?.map_or(Value::Null, Value::String)
        }
        CustomType::Currency => {
            let amount = v
                .get("amount")
                .and_then(|a| a.as_str().map(str::to_owned).or_else(|| a.as_f64().map(|f| f.to_string())));
            let currency = v.get("currency").and_then(Value::as_str);
            match (amount.as_deref().and_then(super::money::decimal), currency.and_then(super::money::currency)) {
                (Some(amount), Some(code)) if v.as_object().is_some_and(|o| o.len() == 2) => {
                    serde_json::json!({ "amount": amount, "currency": code })
                }
                _ => return Err(wrong(r#"{"amount": "12.50", "currency": "EUR"}"#)),
            }
        }
        CustomType::Url => Value::String(link(path, &text(&v)?)?),
        CustomType::Text | CustomType::Phone => Value::String(text(&v)?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: At = At { list: "contacts", index: 0 };

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(email(&AT, Some(" Ada@Example.COM ".into())).unwrap().as_deref(), Some("ada@example.com"));
        for bad in
            ["ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@@example.com", "ada@.example.com"]
        {
            let e = email(&AT, Some(bad.into())).unwrap_err().to_string();
            assert!(e.contains("contacts[0].email"), "{bad}: {e}");
        }
        assert_eq!(email(&AT, Some(String::new())).unwrap(), None, "empty clears");
    }

    #[test]
    fn domains_are_hosts() {
        let d = |s: &str| domain(&AT, Some(s.into()));
        assert_eq!(d("https://www.Acme.example/about?x=1").unwrap().as_deref(), Some("www.acme.example"));
        assert_eq!(d("acme.example").unwrap().as_deref(), Some("acme.example"));
        for bad in ["localhost", "-acme.example", "acme..example", "ac me.example"] {
            assert!(d(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn links_are_http_https_or_mailto() {
        let l = |s: &str| link("site", s);
        assert_eq!(l("example.com/x").unwrap(), "https://example.com/x");
        assert_eq!(l("example.com:8443/x").unwrap(), "https://example.com:8443/x");
        assert_eq!(l("mailto:a@example.com").unwrap(), "mailto:a@example.com");
        for bad in
            ["javascript:alert(1)", "JAVASCRIPT:x", "data:text/html,x", "file:///etc/passwd", "https://", "mailto:"]
        {
            assert!(l(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_refuses_nul_and_length() {
        assert!(text(&AT, "title", Some("a\0b".into())).is_err());
        assert!(text(&AT, "title", Some("x".repeat(MAX_TEXT + 1))).is_err());
        assert_eq!(text(&AT, "title", Some(String::new())).unwrap(), None);
    }
}
