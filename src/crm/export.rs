//! Exports (SPEC 13): an entity's records as CSV or JSON lines, page by page in creation
//! order, with the list filters and the caller's scopes, so memory does not grow with the
//! data. CSV text that a spreadsheet would run as a formula is neutralised.

use rapport_tools::inputs::SortKey;
use rapport_tools::{Entity, FieldType};
use serde_json::Value;

use super::filter::Schema;
use super::{CrmError, Principal, cursor, records};
use crate::store::query::Query;
use crate::store::{CustomFieldDef, CustomType, Record, SqlValue, Store};
use crate::time;

/// Records read per page.
const PAGE: u32 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    JsonLines,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Result<Self, CrmError> {
        match s {
            "csv" => Ok(ExportFormat::Csv),
            "jsonl" => Ok(ExportFormat::JsonLines),
            other => Err(CrmError::invalid(format!("`format` is csv or jsonl, got {other:?}"))),
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ExportFormat::Csv => "csv",
            ExportFormat::JsonLines => "jsonl",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ExportFormat::Csv => "text/csv; charset=utf-8",
            ExportFormat::JsonLines => "application/jsonl; charset=utf-8",
        }
    }
}

/// An export under way: each `next` gives the next page's bytes.
pub struct Export {
    entity: Entity,
    format: ExportFormat,
    defs: Vec<CustomFieldDef>,
    query: Query,
    print: String,
    header_done: bool,
    done: bool,
    pub rows: u64,
}

impl Export {
    pub async fn new(
        store: &Store,
        p: &Principal,
        entity: Entity,
        format: ExportFormat,
        text: Option<&str>,
        filters: &[Value],
    ) -> Result<Export, CrmError> {
        p.require(entity.def().read)?;
        let defs = store.custom_fields(p.org_id(), entity).await?;
        let schema = Schema { entity, custom: &defs, now: time::now_ms() };
        let filter = records::filter_predicates(&schema, text, filters)?;
        let sort = schema
            .parse_sort(&[SortKey { field: "created_at".into(), direction: rapport_tools::inputs::Direction::Asc }])?;
        let query = Query { entity, filter, sort, after: None, limit: PAGE };
        Ok(Export { entity, format, defs, query, print: "export".into(), header_done: false, done: false, rows: 0 })
    }

    pub fn entity(&self) -> Entity {
        self.entity
    }

    pub fn format(&self) -> ExportFormat {
        self.format
    }

    /// The entity's fields a CSV has a column for, before its custom fields and times.
    fn fields(&self) -> impl Iterator<Item = &'static rapport_tools::Field> {
        self.entity
            .def()
            .fields
            .iter()
            .filter(|f| f.name != "created_at" && f.name != "updated_at")
            .filter(|f| !matches!(f.storage, rapport_tools::Storage::Reverse { .. }))
    }

    /// The columns of the CSV: the entity's stored fields, its custom fields, and times.
    fn columns(&self) -> Vec<String> {
        let mut cols: Vec<String> = self.fields().map(|f| f.name.to_owned()).collect();
        cols.extend(self.defs.iter().map(|d| format!("custom.{}", d.key)));
        cols.extend(["created_at".to_owned(), "updated_at".to_owned()]);
        cols
    }

    /// The next page's bytes; `None` at the end.
    pub async fn next(&mut self, store: &Store, p: &Principal) -> Result<Option<Vec<u8>>, CrmError> {
        if self.done {
            return Ok(None);
        }
        let mut out = Vec::with_capacity(64 * 1024);
        if !self.header_done && self.format == ExportFormat::Csv {
            let mut w = csv::WriterBuilder::new().from_writer(&mut out);
            w.write_record(self.columns()).map_err(csv_error)?;
            w.flush().map_err(|e| CrmError::invalid(e.to_string()))?;
        }
        self.header_done = true;
        let page = store.search(p.org_id(), &self.query).await?;
        if page.len() < PAGE as usize {
            self.done = true;
        }
        if let Some(last) = page.last() {
            let c = cursor::encode(&self.query.sort, last, self.print.clone());
            let after: (Vec<SqlValue>, String) = cursor::decode(&c, &self.query.sort, &self.print)?;
            self.query.after = Some(after);
        }
        self.rows += page.len() as u64;
        match self.format {
            ExportFormat::JsonLines => {
                for r in page {
                    serde_json::to_writer(&mut out, &Value::Object(records::into_wire(r)))
                        .map_err(|e| CrmError::invalid(e.to_string()))?;
                    out.push(b'\n');
                }
            }
            ExportFormat::Csv => {
                let mut w = csv::WriterBuilder::new().from_writer(&mut out);
                for r in &page {
                    w.write_record(self.cells(r)).map_err(csv_error)?;
                }
                w.flush().map_err(|e| CrmError::invalid(e.to_string()))?;
            }
        }
        if out.is_empty() && self.done {
            return Ok(None);
        }
        Ok(Some(out))
    }

    fn cells(&self, r: &Record) -> Vec<String> {
        let mut cells = Vec::new();
        for f in self.fields() {
            let v = if f.name == "id" { Value::String(r.id.as_str().to_owned()) } else { r.get(f.name).clone() };
            cells.push(cell(&v, matches!(f.ty, FieldType::Phone | FieldType::Number | FieldType::Decimal)));
        }
        for d in &self.defs {
            let v = r.custom.get(&d.key).cloned().unwrap_or(Value::Null);
            cells.push(cell(&v, matches!(d.field_type, CustomType::Phone | CustomType::Number | CustomType::Currency)));
        }
        cells.push(time::rfc3339(r.created_at));
        cells.push(time::rfc3339(r.updated_at));
        cells
    }
}

fn csv_error(e: csv::Error) -> CrmError {
    CrmError::invalid(format!("could not write CSV: {e}"))
}

/// A value as one CSV cell: lists joined with `, `, a record reference as `entity/id`,
/// currency as `amount CODE`; text a spreadsheet would run as a formula gets a leading `'`
/// unless the column holds numbers or phone numbers.
fn cell(v: &Value, numeric: bool) -> String {
    let text = match v {
        Value::Null => return String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => {
            items.iter().map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned)).collect::<Vec<_>>().join(", ")
        }
        Value::Object(o) => match (o.get("entity"), o.get("id"), o.get("amount"), o.get("currency")) {
            (Some(Value::String(e)), Some(Value::String(id)), _, _) => format!("{e}/{id}"),
            (_, _, Some(Value::String(a)), Some(Value::String(c))) => format!("{a} {c}"),
            _ => v.to_string(),
        },
        other => other.to_string(),
    };
    if numeric { text } else { neutralise(text) }
}

/// `'` before text that starts with `=`, `+`, `-`, `@`, a tab or a carriage return.
pub fn neutralise(text: String) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) { format!("'{text}") } else { text }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_are_neutralised_but_numbers_are_not() {
        assert_eq!(cell(&Value::String("=HYPERLINK(\"x\")".into()), false), "'=HYPERLINK(\"x\")");
        assert_eq!(cell(&Value::String("@SUM(A1)".into()), false), "'@SUM(A1)");
        assert_eq!(cell(&Value::String("+49 30 1234".into()), true), "+49 30 1234");
        assert_eq!(cell(&Value::String("-12.5".into()), true), "-12.5");
        assert_eq!(cell(&serde_json::json!(["a", "b"]), false), "a, b");
        assert_eq!(cell(&serde_json::json!({"entity": "contact", "id": "x"}), false), "contact/x");
    }
}
