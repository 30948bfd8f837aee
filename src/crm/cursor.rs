//! Opaque keyset cursors: the last row's sort values and id, plus a fingerprint of the
//! search they belong to, so a cursor reused with other filters is refused, not misapplied.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::CrmError;
use crate::store::query::{ColKind, SortExpr, SqlValue};
use crate::store::{Row, query};

#[derive(Serialize, Deserialize)]
struct Wire {
    /// Sort values of the last row.
    v: Vec<Value>,
    /// Its id.
    i: String,
    /// Fingerprint of the search.
    f: String,
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

pub fn encode(sort: &[SortExpr], last: &Row, fingerprint: String) -> String {
    let v = sort.iter().map(|s| sort_value(last, s.column)).collect();
    let wire = Wire { v, i: last.id().to_owned(), f: fingerprint };
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
        .map(|(s, v)| match (s.kind, v) {
            (ColKind::Int, Value::Number(n)) => n.as_i64().map(SqlValue::Int).ok_or_else(bad),
            (ColKind::Text, Value::String(t)) => Ok(SqlValue::Text(t)),
            _ => Err(bad()),
        })
        .collect::<Result<_, _>>()?;
    Ok((values, wire.i))
}

/// The value of a sortable column in a row, as the sort expression sees it (NULL as '').
fn sort_value(row: &Row, column: &str) -> Value {
    let text = |s: &Option<String>| Value::String(s.clone().unwrap_or_default());
    match (row, column) {
        (_, "created_at") => match row {
            Row::Contact(c) => c.created_at.into(),
            Row::Company(c) => c.created_at.into(),
        },
        (_, "updated_at") => row.updated_at().into(),
        (Row::Contact(c), "first_name") => text(&c.first_name),
        (Row::Contact(c), "last_name") => text(&c.last_name),
        (Row::Contact(c), "email") => text(&c.email),
        (Row::Contact(c), "title") => text(&c.title),
        (Row::Company(c), "name") => Value::String(c.name.clone()),
        (Row::Company(c), "domain") => text(&c.domain),
        (Row::Company(c), "industry") => text(&c.industry),
        _ => {
            debug_assert!(false, "{column} of {} is not sortable", query::table(row.entity()));
            Value::Null
        }
    }
}
