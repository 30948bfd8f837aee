//! Opaque keyset cursors: the last row's sort values and id, plus a fingerprint of the
//! search they belong to, so a cursor reused with other filters is refused, not misapplied.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::CrmError;
use crate::store::Record;
use crate::store::query::{Col, ColKind, SortExpr, SqlValue};
use crate::time;

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Sort values of the last row.
    v: Vec<Value>,
    /// Its id.
    i: String,
    /// Fingerprint of the search.
    f: String,
}

/// A newest-first page position, `(at, id)` of the last entry, as an opaque string: the
/// audit log and timelines page this way.
pub fn encode_at_id(at: crate::time::Millis, id: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{at}:{id}"))
}

/// The position `encode_at_id` wrote; `None` when `s` is not one.
pub fn decode_at_id(s: &str) -> Option<(crate::time::Millis, String)> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(s).ok()?).ok()?;
    let (at, id) = text.split_once(':')?;
    Some((at.parse().ok()?, id.to_owned()))
}

/// A short hash of everything that shapes the result order and membership.
pub fn fingerprint(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update([0]);
    }
    h.finalize()[..8].iter().map(|b| format!("{b:02x}")).collect()
}

pub fn encode(sort: &[SortExpr], last: &Record, fingerprint: String) -> String {
    let v = sort.iter().map(|s| sort_value(last, s)).collect();
    let wire = Wire { v, i: last.id.as_str().to_owned(), f: fingerprint };
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(&wire).expect("plain data serializes"))
}

pub fn decode(cursor: &str, sort: &[SortExpr], fingerprint: &str) -> Result<(Vec<SqlValue>, String), CrmError> {
    let bad = || {
        CrmError::invalid("`cursor` is not one this server issued; pass `next_cursor` from the previous page unchanged")
    };
    let bytes = URL_SAFE_NO_PAD.decode(cursor.trim()).map_err(|_| bad())?;
    let wire: Wire = serde_json::from_slice(&bytes).map_err(|_| bad())?;
    if wire.f != fingerprint {
        return Err(CrmError::invalid(
            "`cursor` belongs to a search with other entity, query, filters or sort; repeat that search, or drop the cursor to start from the first page",
        ));
    }
    if wire.v.len() != sort.len() {
        return Err(bad());
    }
    let values = sort
        .iter()
        .zip(wire.v)
        .map(|(s, v)| match (s.col.kind(), v) {
            (ColKind::Int, Value::Number(n)) => n.as_i64().map(SqlValue::Int).ok_or_else(bad),
            (ColKind::Text | ColKind::Bool, Value::String(t)) => Ok(SqlValue::Text(t)),
            (ColKind::Float, Value::Number(n)) => n.as_f64().map(SqlValue::Float).ok_or_else(bad),
            _ => Err(bad()),
        })
        .collect::<Result<_, _>>()?;
    Ok((values, wire.i))
}

/// A record's value of a sort key, as the SQL sort expression sees it: missing text as
/// `''`, missing numbers as the largest value (see `Sql::sort_expr`).
fn sort_value(r: &Record, s: &SortExpr) -> Value {
    let v = match &s.col {
        Col::Builtin { name: "created_at", .. } => return r.created_at.into(),
        Col::Builtin { name: "updated_at", .. } => return r.updated_at.into(),
        Col::Builtin { name, .. } => r.get(name),
        Col::Custom { key, .. } => r.custom.get(key).unwrap_or(&Value::Null),
        Col::CustomAmount { key } => r.custom.get(key).and_then(|v| v.get("amount")).unwrap_or(&Value::Null),
    };
    match s.col.kind() {
        ColKind::Int => v.as_str().and_then(time::parse_instant).unwrap_or(i64::MAX).into(),
        ColKind::Float => {
            let n = v.as_f64().or_else(|| v.as_str().and_then(|t| t.trim().parse().ok()));
            Value::from(n.unwrap_or(1e300))
        }
        ColKind::Text | ColKind::Bool => match v {
            Value::String(t) => Value::String(t.clone()),
            Value::Null => Value::String(String::new()),
            other => Value::String(other.to_string()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_cursors_round_trip_and_refuse_forgeries() {
        let c = encode_at_id(1_700_000_000_123, "0190-abc");
        assert_eq!(decode_at_id(&c), Some((1_700_000_000_123, "0190-abc".to_owned())));
        for forged in ["", "not base64!", "bm90IGEgY3Vyc29y"] {
            assert_eq!(decode_at_id(forged), None, "{forged}");
        }
    }

    #[test]
    fn fingerprints_tell_searches_apart() {
        assert_eq!(fingerprint(&["contact", "ada"]), fingerprint(&["contact", "ada"]));
        assert_ne!(fingerprint(&["contact", "ada"]), fingerprint(&["contact", "bob"]));
        // Parts are separated: ("ab", "c") is not ("a", "bc").
        assert_ne!(fingerprint(&["ab", "c"]), fingerprint(&["a", "bc"]));
    }

    #[test]
    fn a_page_cursor_belongs_to_its_search() {
        let schema = super::super::filter::Schema { entity: rapport_tools::Entity::Contact, custom: &[], now: 0 };
        let sort = schema.parse_sort(&[]).unwrap();
        let last = Record::new(rapport_tools::Entity::Contact, crate::store::RecordId::from("r1"), 5);
        let c = encode(&sort, &last, fingerprint(&["one search"]));
        let (values, id) = decode(&c, &sort, &fingerprint(&["one search"])).unwrap();
        assert_eq!((values.len(), id.as_str()), (sort.len(), "r1"));
        let other = decode(&c, &sort, &fingerprint(&["another search"])).unwrap_err().to_string();
        assert!(other.contains("another") || other.contains("belongs to a search"), "{other}");
        assert!(decode("garbage", &sort, "x").is_err());
    }
}
