//! Records of every entity, stored from their descriptions: the table is the entity's
//! plural, and each column field is a column of the same name (a record reference takes
//! `NAME_entity` and `NAME_id`). Every write appends its change-log entries in the same
//! transaction. Trashed records keep their row with `deleted_at` set; reads skip them.

use std::collections::HashMap;
use std::sync::LazyLock;

use rapport_tools::{Entity, Field, FieldType};
use serde_json::{Map, Value};

use super::db::{DbRow, Tx};
use super::last_activity;
use super::query::{After, Predicate, Sql, table, trigram_word};
use roaring::RoaringBitmap;

use super::bitmaps::bit;
use super::terms::{self, ColumnValue};
use super::*;
use crate::time::{self, Millis};

/// What leads a search's plan.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Lead {
    /// The sort index.
    Sort,
    /// The next rows in sort order, this many, then tested.
    Window(u32),
    /// The trigram index: every match, then sorted.
    Trigram,
    /// These row numbers (a JSON list), then tested and sorted.
    Candidates(String),
}

/// The SQL of one entity, derived from its description once.
pub(super) struct EntitySql {
    /// `id, …, custom, created_at, updated_at`.
    cols: String,
    /// `SELECT cols FROM table`.
    pub(super) select: String,
    insert: String,
    /// Takes the insert's parameters, then the `updated_at` the row must still have.
    update: String,
    /// Each field with the columns it is stored in (two for a record reference).
    fields: Vec<(&'static Field, Vec<String>)>,
    /// The fields a record write stores: all but the read-only columns.
    written: Vec<(&'static Field, Vec<String>)>,
    /// Fields kept in the links table.
    links: Vec<&'static Field>,
}

fn columns_of(f: &Field) -> Vec<String> {
    match f.ty {
        FieldType::RecordRef => vec![format!("{}_entity", f.name), format!("{}_id", f.name)],
        _ => vec![f.name.to_owned()],
    }
}

static SQL: LazyLock<HashMap<Entity, EntitySql>> = LazyLock::new(|| {
    Entity::ALL
        .iter()
        .map(|e| {
            let def = e.def();
            let fields: Vec<(&'static Field, Vec<String>)> = def.columns().map(|f| (f, columns_of(f))).collect();
            let data: Vec<String> = fields.iter().flat_map(|(_, c)| c.iter().cloned()).collect();
            // Read-only columns (`last_activity_at`) are the store's to keep, never a
            // record write's: an update would put back the value it read.
            let written: Vec<(&'static Field, Vec<String>)> =
                fields.iter().filter(|(f, _)| f.writable).cloned().collect();
            let mut cols = vec!["id".to_owned()];
            cols.extend(data.iter().cloned());
            cols.extend(["custom", "created_at", "updated_at"].map(String::from));
            let table = def.plural;
            let cols = cols.join(", ");
            let select = format!("SELECT {cols} FROM {table}");
            // Insert: id, org_id, data…, custom, search, created_at, updated_at.
            let mut insert_cols = vec!["id".to_owned(), "org_id".to_owned()];
            insert_cols.extend(written.iter().flat_map(|(_, c)| c.iter().cloned()));
            insert_cols.extend(["custom", "search", "created_at", "updated_at"].map(String::from));
            let params: Vec<String> = (1..=insert_cols.len()).map(|n| format!("${n}")).collect();
            let insert = format!("INSERT INTO {table} ({}) VALUES ({})", insert_cols.join(", "), params.join(", "));
            let sets: Vec<String> =
                insert_cols.iter().enumerate().skip(2).map(|(i, c)| format!("{c} = ${}", i + 1)).collect();
            let update = format!(
                "UPDATE {table} SET {} WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL AND updated_at = ${}",
                sets.join(", "),
                insert_cols.len() + 1
            );
            let links = def.fields.iter().filter(|f| f.storage == rapport_tools::Storage::Links).collect();
            (*e, EntitySql { cols, select, insert, update, fields, written, links })
        })
        .collect()
});

pub(super) fn sql_of(entity: Entity) -> &'static EntitySql {
    &SQL[&entity]
}

/// A stored value of a field, in the form tools show.
fn decode_field(f: &Field, cols: &[String], r: &mut DbRow) -> StoreResult<Value> {
    let at = cols[0].as_str();
    Ok(match f.ty {
        FieldType::RecordRef => match (r.text(at)?, r.text(&cols[1])?) {
            (Some(entity), Some(id)) => serde_json::json!({ "entity": entity, "id": id }),
            _ => Value::Null,
        },
        FieldType::Datetime => r.int(at)?.map_or(Value::Null, |ms| Value::String(time::rfc3339(ms))),
        FieldType::Number => r.float(at)?.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number),
        FieldType::Boolean => match r.int(at)? {
            None => Value::Null,
            Some(n) => Value::Bool(n != 0),
        },
        FieldType::Tags | FieldType::MultiSelect | FieldType::Relations => match r.text(at)? {
            None => Value::Array(Vec::new()),
            Some(s) => parse_json(&s, f.name)?,
        },
        _ => r.text(at)?.map_or(Value::Null, Value::String),
    })
}

pub(super) fn decode(entity: Entity, mut r: DbRow) -> StoreResult<Record> {
    let es = sql_of(entity);
    let id = RecordId::from(r.need_text("id")?);
    let mut values = Map::new();
    for (f, cols) in &es.fields {
        let v = decode_field(f, cols, &mut r)?;
        if !v.is_null() {
            values.insert(f.name.to_owned(), v);
        }
    }
    let custom = parse_json(&r.need_text("custom")?, "custom")?;
    Ok(Record {
        entity,
        id,
        values,
        custom,
        created_at: r.need_int("created_at")?,
        updated_at: r.need_int("updated_at")?,
    })
}

fn encode_field(f: &Field, v: &Value, out: &mut Vec<SqlValue>) {
    let text = |v: &Value| match v {
        Value::String(s) => SqlValue::Text(s.clone()),
        Value::Null => SqlValue::Null(ColKind::Text),
        other => SqlValue::Text(other.to_string()),
    };
    match f.ty {
        FieldType::RecordRef => {
            out.push(text(&v["entity"]));
            out.push(text(&v["id"]));
        }
        FieldType::Datetime => {
            out.push(v.as_str().and_then(time::parse_instant).map_or(SqlValue::Null(ColKind::Int), SqlValue::Int))
        }
        FieldType::Number => out.push(v.as_f64().map_or(SqlValue::Null(ColKind::Float), SqlValue::Float)),
        FieldType::Boolean => out.push(v.as_bool().map_or(SqlValue::Null(ColKind::Bool), SqlValue::Bool)),
        FieldType::Tags | FieldType::MultiSelect | FieldType::Relations => out.push(SqlValue::Text(match v {
            Value::Null => "[]".to_owned(),
            other => other.to_string(),
        })),
        _ => out.push(text(v)),
    }
}

/// The insert's parameters for a record.
fn encode(org_id: &OrgId, r: &Record) -> Vec<SqlValue> {
    let es = sql_of(r.entity);
    let mut out = Vec::with_capacity(es.fields.len() + 6);
    out.push((&r.id).into());
    out.push(org_id.into());
    for (f, _) in &es.written {
        encode_field(f, r.get(f.name), &mut out);
    }
    out.push(json_text(&r.custom).into());
    out.push(r.search_text().into());
    out.push(r.created_at.into());
    out.push(r.updated_at.into());
    out
}

pub(super) fn ids_in(sql: &mut Sql, org_id: &OrgId, ids: &[RecordId]) {
    // Ids are the selective part. Without statistics SQLite takes any `org_id = ?` to be
    // and, given ten ids or more, walks an index on org_id through the whole tenant; the
    // unary `+` keeps it on the primary key. PostgreSQL without statistics did the same
    // with one id (a partial index on org_id matched the query better); an expression on
    // the column keeps every index on it out of the plan.
    sql.push(match sql.dialect {
        Dialect::Sqlite => " WHERE +org_id = ",
        Dialect::Postgres => " WHERE (org_id || '') = ",
    });
    sql.bind(org_id.into());
    sql.push(" AND id IN ");
    sql.bind_list(ids.iter().map(SqlValue::from));
}

/// `WHERE <org> = ` for a filter already settled (`Store::settle`). A custom-value or tag
/// condition kept there holds for few records (under 2,000), found at once in the value
/// table; on SQLite, which keeps no statistics, an `org_id = ?` would have the planner walk
/// the organization's rows and test each against them instead (a tag on five contacts of
/// 200,000: 60 ms to count, where starting from the five takes well under one). The unary
/// `+` keeps the organization out of the plan's choice.
fn where_org(dialect: Dialect, filter: &[Predicate]) -> &'static str {
    if few_first(dialect, filter) { " WHERE +org_id = " } else { " WHERE org_id = " }
}

/// Whether the records a settled filter's value-table condition finds should lead (SQLite).
fn few_first(dialect: Dialect, filter: &[Predicate]) -> bool {
    dialect == Dialect::Sqlite && filter.iter().any(|p| matches!(p, Predicate::CustomValue { .. }))
}

/// The column of a record's row number, which the bitmaps hold (`bitmaps.rs`).
pub(super) fn row_number(dialect: Dialect) -> &'static str {
    match dialect {
        Dialect::Sqlite => "rowid",
        Dialect::Postgres => "rn",
    }
}

/// One statement of a search: `query`'s page led by `lead`, of the rows after its cursor
/// that `part` names, at most `limit` of them.
fn page_sql(dialect: Dialect, org_id: &OrgId, query: &Query, lead: Lead, part: After, limit: u32) -> Sql {
    let t = table(query.entity);
    let sqlite = dialect == Dialect::Sqlite;
    let mut sql = Sql::new(dialect);
    let es = sql_of(query.entity);
    match (&lead, sqlite) {
        // PostgreSQL: the window is a subquery under the old name, which the
        // filters then test: a plan that cannot turn into anything else.
        (Lead::Window(_), false) => sql.push(&format!("SELECT {} FROM (SELECT * FROM {t} WHERE ", es.cols)),
        (Lead::Window(_), true) => {
            sql.push(&es.select);
            sql.push(&format!(" WHERE rowid IN (SELECT rowid FROM {t} WHERE "))
        }
        (Lead::Candidates(list), _) => {
            sql.push(&es.select);
            sql.push(" WHERE ");
            sql.row_among(list);
            sql.push(" AND ")
        }
        (Lead::Sort | Lead::Trigram, _) => {
            sql.push(&es.select);
            sql.push(" WHERE ")
        }
    };
    let by_index = matches!(lead, Lead::Sort | Lead::Window(_));
    sql.push(if by_index || !sqlite { "org_id = " } else { "+org_id = " });
    sql.bind(org_id.into());
    sql.push(" AND deleted_at IS NULL");
    if let Some((values, id)) = &query.after {
        sql.after(&query.sort, values, id, part);
    }
    if let Lead::Window(rows) = lead {
        sql.order_by(&query.sort);
        sql.limit(rows);
        let close = if sqlite { ")".to_owned() } else { format!(") AS {t} WHERE TRUE") };
        sql.push(&close);
    }
    // Candidates and a window are few rows already: a plain `LIKE` on each.
    sql.trigram = matches!(lead, Lead::Sort | Lead::Trigram);
    sql.and_all(&query.filter);
    sql.order_by_with(&query.sort, by_index, usize::from(part == After::SameFirst));
    sql.limit(limit);
    sql
}

/// Under this many records, a condition's matches are few enough to fetch and test one
/// by one; at it, testing rows in order finds a page sooner.
const FEW: usize = 2_000;
/// How many times `FEW` matches of the equality terms a search tests, newest first, before
/// the rows lead.
const WALKED: usize = 4;
/// How many of a word's newest matches free text tries first.
const CANDIDATES: usize = 500;

/// Whether `query` asks for the first page, newest first.
fn newest_first(query: &Query) -> bool {
    query.after.is_none() && matches!(query.sort.as_slice(), [s] if s.field == "created_at" && s.desc)
}

/// One page of a search, plus the rows' records.
pub type RecordPage = Vec<Record>;

impl Store {
    /// The live records with these ids in the organization, in no particular order, in one query.
    pub async fn get_records(&self, org_id: &OrgId, entity: Entity, ids: &[RecordId]) -> StoreResult<Vec<Record>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(self.dialect());
        sql.push(&sql_of(entity).select);
        ids_in(&mut sql, org_id, ids);
        sql.push(" AND deleted_at IS NULL");
        self.fetch_records(org_id, entity, &sql).await
    }

    /// Which of these ids the entity's table holds in any organization, trash included:
    /// an id is the table's key, so a record restored with its id must find it free.
    pub async fn taken_record_ids(&self, entity: Entity, ids: &[RecordId]) -> StoreResult<Vec<RecordId>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(self.dialect());
        sql.push(&format!("SELECT id FROM {} WHERE id IN ", table(entity)));
        sql.bind_list(ids.iter().map(SqlValue::from));
        self.db.fetch(&sql.text, &sql.binds).await?.into_iter().map(|mut r| Ok(r.need_text("id")?.into())).collect()
    }

    /// `get_records`, each record with its newest `notes` notes (`{"id", "body",
    /// "created_at"}`), in the same single query.
    pub async fn get_records_with_notes(
        &self,
        org_id: &OrgId,
        entity: Entity,
        ids: &[RecordId],
        notes: u32,
    ) -> StoreResult<Vec<(Record, Vec<Value>)>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let es = sql_of(entity);
        let t = table(entity);
        let mut sql = Sql::new(self.dialect());
        sql.push(&format!(
            "SELECT {}, {} AS newest_notes FROM {t}",
            es.cols,
            super::query::newest_notes_json(self.dialect(), t, entity, notes)
        ));
        ids_in(&mut sql, org_id, ids);
        sql.push(" AND deleted_at IS NULL");
        let rows = self.db.fetch(&sql.text, &sql.binds).await?;
        let mut out = Vec::with_capacity(rows.len());
        let mut records = Vec::with_capacity(rows.len());
        for mut r in rows {
            let list: Vec<Value> = match r.text("newest_notes")? {
                Some(json) => parse_json(&json, "notes")?,
                None => Vec::new(),
            };
            out.push(list);
            records.push(decode(entity, r)?);
        }
        self.attach_links(org_id, entity, &mut records).await?;
        Ok(records.into_iter().zip(out).collect())
    }

    /// Runs a query of `EntitySql::select` and reads its rows as records, links included.
    async fn fetch_records(&self, org_id: &OrgId, entity: Entity, sql: &Sql) -> StoreResult<Vec<Record>> {
        let rows = self.db.fetch(&sql.text, &sql.binds).await?;
        self.records_from(org_id, entity, rows).await
    }

    /// Rows of `EntitySql::select` as records, links included.
    async fn records_from(&self, org_id: &OrgId, entity: Entity, rows: Vec<DbRow>) -> StoreResult<Vec<Record>> {
        let mut records = rows.into_iter().map(|r| decode(entity, r)).collect::<StoreResult<Vec<_>>>()?;
        self.attach_links(org_id, entity, &mut records).await?;
        Ok(records)
    }

    async fn attach_links(&self, org_id: &OrgId, entity: Entity, records: &mut [Record]) -> StoreResult<()> {
        attach_links(&mut Reader::Db(&self.db), org_id, entity, records).await
    }

    /// One page of records matching the filters, in the query's order.
    ///
    /// Free text: the trigram index finds a rare word's rows at once, but a common one's by
    /// the hundred thousand, to be sorted for one page; walking the rows in order until a
    /// page is full is the reverse. Neither planner can tell which case it is in (SQLite
    /// has no estimate; PostgreSQL's for `LIKE '%…%'` is a fixed guess, and with it a word
    /// that matches nothing walked a million rows), so such a search first looks at the
    /// next rows in order (`Lead::Window`); if they hold a full page, that is the answer,
    /// exactly.
    /// Otherwise, on SQLite, the newest matches by rowid are tried (`newest_matches`); then
    /// the trigram index leads, the sort keys written so that no sort index can serve the
    /// order (and on SQLite no other index the rows).
    pub async fn search(&self, org_id: &OrgId, query: &Query) -> StoreResult<RecordPage> {
        if let Some(records) = self.search_by_terms(org_id, query).await? {
            return Ok(records);
        }
        let settled = Query { filter: self.settle(&query.filter).await?, ..query.clone() };
        let query = &settled;
        let sqlite = self.dialect() == Dialect::Sqlite;
        let page = |lead: Lead, part: After, limit: u32| page_sql(self.dialect(), org_id, query, lead, part, limit);
        let text = query.filter.iter().any(|p| matches!(p, Predicate::Text { .. }));
        if text {
            // SQLite tries the newest matches next, which serves the words a larger window
            // would; PostgreSQL has nothing between a window and the trigram index, whose
            // every match costs a heap page (a word in 2% of a million rows: 150 ms).
            let rows = if sqlite { 1_000 } else { 3_000 };
            let window = page(Lead::Window(rows), After::All, query.limit);
            let rows = self.db.fetch(&window.text, &window.binds).await?;
            if rows.len() >= query.limit as usize {
                return self.records_from(org_id, query.entity, rows).await;
            }
            if sqlite && let Some(records) = self.newest_matches(org_id, query).await? {
                return Ok(records);
            }
            return self.fetch_records(org_id, query.entity, &page(Lead::Trigram, After::All, query.limit)).await;
        }
        // A condition few records meet (`where_org`): start from them and sort them, rather
        // than walk the sort index through the organization testing each row.
        if few_first(self.dialect(), &query.filter) {
            return self.fetch_records(org_id, query.entity, &page(Lead::Trigram, After::All, query.limit)).await;
        }
        // Sorted by a field after a cursor: the rest of the cursor's run of equal values,
        // then what follows it, each an index seek (PostgreSQL seeks the row value itself).
        if sqlite && query.after.is_some() && query.sort.len() > 1 {
            let same = page(Lead::Sort, After::SameFirst, query.limit);
            let mut rows = self.db.fetch(&same.text, &same.binds).await?;
            let short = query.limit.saturating_sub(rows.len() as u32);
            if short > 0 {
                let past = page(Lead::Sort, After::PastFirst, short);
                rows.extend(self.db.fetch(&past.text, &past.binds).await?);
            }
            return self.records_from(org_id, query.entity, rows).await;
        }
        self.fetch_records(org_id, query.entity, &page(Lead::Sort, After::All, query.limit)).await
    }

    /// Free text, newest first, on SQLite: the trigram index gives a word's matches in
    /// rowid order, newest rows last, cheaply, where all of them sorted by age cost a read
    /// of every row. So the newest `CANDIDATES` matches of the longest word are searched
    /// first (`newest_of`). `None`: the trigram index must lead.
    async fn newest_matches(&self, org_id: &OrgId, query: &Query) -> StoreResult<Option<RecordPage>> {
        let (true, Some(rowids)) = (newest_first(query), self.newest_of_word(query, CANDIDATES).await?) else {
            return Ok(None);
        };
        self.newest_of(org_id, query, rowids, CANDIDATES).await
    }

    /// The newest `cap` matches by rowid of the longest word of `query`'s free text that the
    /// trigram index holds (SQLite); `None`: it has none.
    async fn newest_of_word(&self, query: &Query, cap: usize) -> StoreResult<Option<Vec<i64>>> {
        let word = query
            .filter
            .iter()
            .filter_map(|p| match p {
                Predicate::Text { word, .. } if trigram_word(word) => Some(word),
                _ => None,
            })
            .max_by_key(|w| w.chars().count());
        let Some(word) = word.filter(|_| self.dialect() == Dialect::Sqlite) else {
            return Ok(None);
        };
        let t = table(query.entity);
        let sql = format!("SELECT rowid FROM {t}_search WHERE search LIKE $1 ORDER BY rowid DESC LIMIT {cap}");
        Ok(Some(self.rowids(&sql, &[SqlValue::Text(format!("%{word}%"))]).await?))
    }

    async fn rowids(&self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<i64>> {
        self.db.fetch(sql, args).await?.into_iter().map(|mut r| r.need_int("rowid")).collect()
    }

    /// The first page, newest first, of `query` among `rowids`: the newest of the rows
    /// that meet part of it, at most `cap`. `None`: they did not settle it (`page_among`).
    async fn newest_of(
        &self,
        org_id: &OrgId,
        query: &Query,
        rowids: Vec<i64>,
        cap: usize,
    ) -> StoreResult<Option<RecordPage>> {
        let Some(&oldest) = rowids.last() else {
            return Ok(Some(Vec::new()));
        };
        let below = (rowids.len() >= cap).then_some(oldest);
        self.page_among(org_id, query, rowids, below).await
    }

    /// The first page, newest first, of `query` among `rowids`, the rows that may match
    /// with a rowid from `below` up (all of them, without `below`). The page is exact when
    /// there is no `below`, or when no matching live row older by rowid is as new as the
    /// page's last row (rows are written in time order, but concurrent writers or a clock
    /// set back would break that; this checks rather than trusts it). `None`: they did not
    /// settle it.
    async fn page_among(
        &self,
        org_id: &OrgId,
        query: &Query,
        rowids: Vec<i64>,
        below: Option<i64>,
    ) -> StoreResult<Option<RecordPage>> {
        let list = Value::from(rowids).to_string();
        let page = page_sql(self.dialect(), org_id, query, Lead::Candidates(list), After::All, query.limit);
        let records = self.fetch_records(org_id, query.entity, &page).await?;
        let Some(oldest) = below else {
            return Ok(Some(records));
        };
        let Some(last) = records.last().filter(|_| records.len() >= query.limit as usize) else {
            return Ok(None);
        };
        let t = table(query.entity);
        let sqlite = self.dialect() == Dialect::Sqlite;
        let mut check = Sql::new(self.dialect());
        // Rows are written in time order: most often every block of row numbers below
        // `oldest`'s own is older than the page's last, and only the rows of that block
        // before it are left to look at (a batch shares one time), a range of at most 256.
        let (newest, from) = self.newest_below(query.entity, oldest).await?;
        if newest < last.created_at {
            let rn = row_number(self.dialect());
            check.push(&format!("SELECT 1 FROM {t} WHERE {rn} >= "));
            check.bind(SqlValue::Int(from));
            check.push(&format!(" AND {rn} < "));
            check.bind(SqlValue::Int(oldest));
            check.push(if sqlite { " AND +org_id = " } else { " AND (org_id || '') = " });
            check.bind(org_id.into());
            check.push(" AND deleted_at IS NULL AND ");
            check.sort_expr(&query.sort[0]);
            check.push(" >= ");
            check.bind(SqlValue::Int(last.created_at));
            check.trigram = false;
            check.and_all(&query.filter);
            // In the row numbers' order: no planner then walks the table for a first match.
            check.push(&format!(" ORDER BY {rn} LIMIT 1"));
            let out_of_order = !self.db.fetch(&check.text, &check.binds).await?.is_empty();
            return Ok((!out_of_order).then_some(records));
        }
        // The rows as new as the page's last but older by rowid, from the age index alone
        // (few, unless the clock or concurrent writers put rows out of order); then whether
        // any of them matches. Rows written in one batch share a time, so the filter must be
        // part of the check; leading with it, a title's index walked every CEO.
        let age =
            query.entity.def().fields.iter().find(|f| f.name == "created_at").expect("every entity has created_at");
        check.push(&match self.dialect() {
            Dialect::Sqlite => format!(
                "SELECT 1 FROM {t} WHERE rowid IN (SELECT rowid FROM {t} INDEXED BY {} WHERE org_id = ",
                super::indexes::sort_index(query.entity, age)
            ),
            Dialect::Postgres => format!("SELECT 1 FROM {t} WHERE org_id = "),
        });
        check.bind(org_id.into());
        check.push(" AND deleted_at IS NULL AND ");
        check.sort_expr(&query.sort[0]);
        check.push(" >= ");
        check.bind(SqlValue::Int(last.created_at));
        check.push(if sqlite { " AND rowid < " } else { " AND rn + 0 < " });
        check.bind(SqlValue::Int(oldest));
        if sqlite {
            check.push(")");
        }
        check.trigram = false;
        check.and_all(&query.filter);
        if !sqlite {
            // In the age index's order, newest first: PostgreSQL, guessing that many rows
            // match, would otherwise scan the table for the first (300 ms). `rn + 0`: nor
            // walk the row numbers' index over nearly every row.
            check.push(" ORDER BY ");
            check.sort_expr(&query.sort[0]);
            check.push(" DESC");
        }
        check.push(" LIMIT 1");
        let out_of_order = !self.db.fetch(&check.text, &check.binds).await?.is_empty();
        Ok((!out_of_order).then_some(records))
    }

    /// A search whose conditions the equality terms answer in part or whole (SQLite),
    /// from their bitmaps. When fewer than `FEW` live records meet the part they answer,
    /// those are the candidates, each tested against the rest. When more, and the page is
    /// the newest: if they answer the whole filter, the newest `limit` of them (or eight
    /// times that, when concurrent writers interleaved the newest rows) are the page; else
    /// the rest of the filter is tested on them, newest first, `FEW` at a time, up to
    /// `WALKED` times. `None`: the rows must lead.
    async fn search_by_terms(&self, org_id: &OrgId, query: &Query) -> StoreResult<Option<RecordPage>> {
        let Some(m) = self.terms_of(org_id, query.entity, &query.filter) else {
            return Ok(None);
        };
        let Some(bits) = self.term_bits(query.entity, &m).await? else {
            return Ok(None);
        };
        let on_rows = Query { filter: terms::on_rows(&query.filter), ..query.clone() };
        let newest = |n: usize| bits.iter().rev().take(n).map(i64::from).collect::<Vec<_>>();
        if bits.len() < FEW as u64 {
            return self.page_among(org_id, &on_rows, newest(FEW), None).await;
        }
        if !newest_first(query) {
            return Ok(None);
        }
        let limit = query.limit as usize;
        if m.whole {
            for cap in [limit, limit * 8] {
                if let Some(page) = self.newest_of(org_id, &on_rows, newest(cap), cap).await? {
                    return Ok(Some(page));
                }
            }
            return Ok(None);
        }
        // Free text too: its word's newest matches that the terms also match, from the
        // trigram index and the bitmaps alone, when they fill a page.
        if let Some(words) = self.newest_of_word(query, FEW).await? {
            let below = (words.len() >= FEW).then(|| words.last().copied()).flatten();
            let both: Vec<i64> = words.into_iter().filter(|r| bit(*r).is_some_and(|b| bits.contains(b))).collect();
            if (below.is_none() || both.len() >= limit)
                && let Some(page) = self.page_among(org_id, &on_rows, both, below).await?
            {
                return Ok(Some(page));
            }
        }
        let (mut matching, mut rest) = (Vec::new(), bits.iter().rev().map(i64::from));
        for _ in 0..WALKED {
            let chunk: Vec<i64> = rest.by_ref().take(FEW).collect();
            let (Some(&oldest), done) = (chunk.last(), chunk.len() < FEW) else {
                break;
            };
            let among = self.among_sql(org_id, query.entity, chunk, &on_rows.filter, "rowid");
            matching.extend(self.rowids(&among.text, &among.binds).await?);
            if matching.len() >= limit || done {
                return self.page_among(org_id, &on_rows, matching, (!done).then_some(oldest)).await;
            }
        }
        Ok(None)
    }

    /// What of `filter` the equality terms answer.
    fn terms_of(&self, org_id: &OrgId, entity: Entity, filter: &[Predicate]) -> Option<terms::Matcher> {
        terms::matcher(org_id, entity, filter)
    }

    /// The rowids of the live records that meet `m`; `None` when the bitmaps cannot say.
    async fn term_bits(&self, entity: Entity, m: &terms::Matcher) -> StoreResult<Option<RoaringBitmap>> {
        Ok(self.bitmaps(entity, &m.terms.tokens()).await?.map(|snap| snap.eval(&m.terms)))
    }

    /// `SELECT what` of the live records of the organization among `rowids` that meet
    /// `filter`, tested on each row; `what` may name `rowid`, the row number.
    fn among_sql(&self, org_id: &OrgId, entity: Entity, rowids: Vec<i64>, filter: &[Predicate], what: &str) -> Sql {
        let mut sql = Sql::new(self.dialect());
        let what = what.replace("rowid", &format!("{} AS rowid", row_number(self.dialect())));
        sql.push(&format!("SELECT {what} FROM {} WHERE ", table(entity)));
        sql.row_among(&Value::from(rowids).to_string());
        // The organization out of the plan's choice: the few rows lead.
        sql.push(if self.dialect() == Dialect::Sqlite { " AND +org_id = " } else { " AND (org_id || '') = " });
        sql.bind(org_id.into());
        sql.push(" AND deleted_at IS NULL");
        sql.trigram = false;
        sql.and_all(filter);
        sql
    }

    /// `filter` with each custom-value condition settled: kept, when few records hold the
    /// value and the value table finds them at once, or replaced by its test on the JSON,
    /// when so many do that testing rows in order finds a page sooner (and a count scans
    /// either way).
    async fn settle(&self, filter: &[Predicate]) -> StoreResult<Vec<Predicate>> {
        let mut out = Vec::with_capacity(filter.len());
        for p in filter {
            out.push(match p {
                Predicate::CustomValue { json, .. } => {
                    let probe = Sql::custom_value_probe(self.dialect(), p, FEW as u32);
                    let rows = self.db.fetch(&probe.text, &probe.binds).await?;
                    let held = rows.into_iter().next().map(|mut r| r.need_int(&r.sole()?)).transpose()?.unwrap_or(0);
                    if held < FEW as i64 { p.clone() } else { (**json).clone() }
                }
                Predicate::Any(ps) => Predicate::Any(Box::pin(self.settle(ps)).await?),
                Predicate::All(ps) => Predicate::All(Box::pin(self.settle(ps)).await?),
                other => other.clone(),
            });
        }
        Ok(out)
    }

    /// How many live records match. Conditions the equality terms answer whole are
    /// counted from their bitmaps without reading a row; answered in part by fewer than
    /// `FEW` records, those are tested one by one.
    pub async fn count(&self, org_id: &OrgId, entity: Entity, filter: &[Predicate]) -> StoreResult<u64> {
        let m = self.terms_of(org_id, entity, filter);
        let bits = match &m {
            Some(m) => self.term_bits(entity, m).await?,
            None => None,
        };
        let sql = match (m, bits) {
            (Some(m), Some(bits)) if m.whole => return Ok(bits.len()),
            (Some(_), Some(bits)) if bits.len() < FEW as u64 => {
                let rowids = bits.iter().map(i64::from).collect();
                self.among_sql(org_id, entity, rowids, &terms::on_rows(filter), "COUNT(*)")
            }
            _ => {
                let filter = &self.settle(filter).await?;
                let mut sql = Sql::new(self.dialect());
                sql.push(&format!("SELECT COUNT(*) FROM {}{}", table(entity), where_org(self.dialect(), filter)));
                sql.bind(org_id.into());
                sql.push(" AND deleted_at IS NULL");
                sql.and_all(filter);
                sql
            }
        };
        let rows = self.db.fetch_scan(&sql.text, &sql.binds).await?;
        let mut row = rows.into_iter().next().ok_or(StoreError::NotFound)?;
        Ok(row.need_int(&row.sole()?)? as u64)
    }

    /// For each parent, the newest `limit` live `child` records that point at it through
    /// `fk` and, with `count`, how many there are in all. `of` narrows a record reference to
    /// parents of one entity: `("record_entity", deal)`. One query for the records (a plain
    /// index range for one parent, a window over several), one more for the counts.
    #[allow(clippy::too_many_arguments)]
    pub async fn children(
        &self,
        org_id: &OrgId,
        child: Entity,
        fk: &str,
        of: Option<(&str, Entity)>,
        parents: &[RecordId],
        limit: u32,
        count: bool,
    ) -> StoreResult<HashMap<RecordId, (u64, Vec<Record>)>> {
        let mut out: HashMap<RecordId, (u64, Vec<Record>)> = HashMap::new();
        if parents.is_empty() {
            return Ok(out);
        }
        let t = table(child);
        let filter = |sql: &mut Sql| {
            sql.bind(org_id.into());
            if let Some((col, e)) = of {
                sql.push(&format!(" AND {col} = "));
                sql.bind(e.as_str().into());
            }
            sql.push(&format!(" AND deleted_at IS NULL AND {fk} IN "));
            sql.bind_list(parents.iter().map(SqlValue::from));
        };
        if count {
            let mut sql = Sql::new(self.dialect());
            sql.push(&format!("SELECT {fk}, COUNT(*) AS n FROM {t} WHERE org_id = "));
            filter(&mut sql);
            sql.push(&format!(" GROUP BY {fk}"));
            for mut r in self.db.fetch(&sql.text, &sql.binds).await? {
                out.entry(r.need_text(fk)?.into()).or_default().0 = r.need_int("n")? as u64;
            }
        }
        let cols = &sql_of(child).cols;
        let mut sql = Sql::new(self.dialect());
        if parents.len() == 1 {
            sql.push(&format!("SELECT {cols} FROM {t} WHERE org_id = "));
            filter(&mut sql);
            sql.push(" ORDER BY created_at DESC, id DESC");
            sql.limit(limit);
        } else {
            sql.push(&format!(
                "SELECT {cols} FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {fk} ORDER BY created_at DESC, id DESC) \
                 AS pos FROM {t} WHERE org_id = "
            ));
            filter(&mut sql);
            sql.push(&format!(") ranked WHERE pos <= {limit} ORDER BY created_at DESC, id DESC"));
        }
        for r in self.db.fetch(&sql.text, &sql.binds).await? {
            let record = decode(child, r)?;
            let parent = match of {
                Some(_) => record.get(fk.trim_end_matches("_id"))["id"].as_str().map(RecordId::from),
                None => record.text(fk).map(RecordId::from),
            };
            if let Some(parent) = parent {
                out.entry(parent).or_default().1.push(record);
            }
        }
        Ok(out)
    }

    pub async fn custom_fields(&self, org_id: &OrgId, entity: Entity) -> StoreResult<Vec<CustomFieldDef>> {
        let rows = self
            .db
            .fetch(
                "SELECT id, entity, key, label, field_type, options FROM custom_fields \
                 WHERE org_id = $1 AND entity = $2 ORDER BY created_at, id",
                &[org_id.into(), entity.as_str().into()],
            )
            .await?;
        rows.into_iter()
            .map(|mut r| {
                let entity = r.need_text("entity")?;
                let ty = r.need_text("field_type")?;
                Ok(CustomFieldDef {
                    id: r.need_text("id")?,
                    entity: Entity::parse(&entity)
                        .ok_or_else(|| StoreError::Corrupt(format!("custom field of unknown entity {entity}")))?,
                    key: r.need_text("key")?,
                    label: r.need_text("label")?,
                    field_type: CustomType::parse(&ty)
                        .ok_or_else(|| StoreError::Corrupt(format!("custom field of unknown type {ty}")))?,
                    options: parse_json(&r.need_text("options")?, "options")?,
                })
            })
            .collect()
    }
}

/// Where a read runs: on the pool, or inside a write transaction (seeing its writes).
enum Reader<'a> {
    Db(&'a super::db::Db),
    Tx(&'a mut Tx),
}

impl Reader<'_> {
    fn dialect(&self) -> Dialect {
        match self {
            Reader::Db(db) => db.dialect(),
            Reader::Tx(tx) => tx.dialect(),
        }
    }

    async fn fetch(&mut self, sql: &str, args: &[SqlValue]) -> StoreResult<Vec<DbRow>> {
        match self {
            Reader::Db(db) => db.fetch(sql, args).await,
            Reader::Tx(tx) => tx.fetch(sql, args).await,
        }
    }
}

/// Fills each record's linked fields (a deal's `contact_ids`) with its live links, one
/// query per field.
async fn attach_links(
    reader: &mut Reader<'_>,
    org_id: &OrgId,
    entity: Entity,
    records: &mut [Record],
) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    for f in &sql_of(entity).links {
        let target = f.target.expect("a relation names its target");
        let mut sql = Sql::new(reader.dialect());
        sql.push(&format!(
            "SELECT l.from_id, l.to_id FROM record_links l JOIN {} t ON t.id = l.to_id AND t.org_id = l.org_id \
                 AND t.deleted_at IS NULL WHERE l.org_id = ",
            table(target)
        ));
        sql.bind(org_id.into());
        sql.push(" AND l.from_entity = ");
        sql.bind(entity.as_str().into());
        sql.push(" AND l.to_entity = ");
        sql.bind(target.as_str().into());
        sql.push(" AND l.from_id IN ");
        sql.bind_list(records.iter().map(|r| SqlValue::from(&r.id)));
        sql.push(" ORDER BY l.created_at, l.to_id");
        let mut by_record: HashMap<String, Vec<Value>> = HashMap::new();
        for mut row in reader.fetch(&sql.text, &sql.binds).await? {
            by_record.entry(row.need_text("from_id")?).or_default().push(Value::String(row.need_text("to_id")?));
        }
        for r in records.iter_mut() {
            match by_record.remove(r.id.as_str()) {
                Some(ids) => r.values.insert(f.name.to_owned(), Value::Array(ids)),
                None => r.values.remove(f.name),
            };
        }
    }
    Ok(())
}

impl Tx {
    /// One record as this transaction sees it, live or in the trash, links included: what
    /// a webhook announces about it.
    pub async fn record_any(&mut self, org_id: &OrgId, entity: Entity, id: &str) -> StoreResult<Option<Record>> {
        let mut sql = Sql::new(self.dialect());
        sql.push(&sql_of(entity).select);
        ids_in(&mut sql, org_id, &[RecordId::from(id)]);
        let rows = self.fetch(&sql.text, &sql.binds).await?;
        let mut records = rows.into_iter().map(|r| decode(entity, r)).collect::<StoreResult<Vec<_>>>()?;
        attach_links(&mut Reader::Tx(self), org_id, entity, &mut records).await?;
        Ok(records.pop())
    }

    /// Inserts all records or none, with their change-log entries.
    pub async fn insert_records(&mut self, org_id: &OrgId, records: &[Record], changes: &[Change]) -> StoreResult<()> {
        // Runs of one entity go in a few statements; links, where the entity has them,
        // one record at a time.
        let mut touched = last_activity::Targets::new();
        for run in records.chunk_by(|a, b| a.entity == b.entity) {
            let entity = run[0].entity;
            let what = match entity.def().unique {
                Some(field) => format!("a {entity} with this {field}"),
                None => format!("a {entity} with this id"),
            };
            let insert = &sql_of(entity).insert;
            let head = insert.split(" VALUES").next().expect("an INSERT statement");
            self.insert_many(head, run.iter().map(|r| encode(org_id, r)).collect())
                .await
                .map_err(|e| e.on_write(&what))?;
            if !sql_of(entity).links.is_empty() {
                for r in run {
                    self.write_links(org_id, r).await?;
                }
            }
            let mut targets = last_activity::Targets::new();
            run.iter().for_each(|r| last_activity::targets_of(r, &mut targets));
            self.refresh_last_activity(org_id, &targets).await?;
            touched.extend(targets);
        }
        self.append_changes_of(changes, &as_written(records.iter(), &touched)).await
    }

    /// Makes the record's live links what its linked fields say; links to trashed records
    /// stay, so a restore brings them back.
    async fn write_links(&mut self, org_id: &OrgId, r: &Record) -> StoreResult<()> {
        for f in &sql_of(r.entity).links {
            let target = f.target.expect("a relation names its target");
            let ids: Vec<&str> = match r.values.get(f.name) {
                Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).collect(),
                _ => Vec::new(),
            };
            let mut sql = Sql::new(self.dialect());
            sql.push("DELETE FROM record_links WHERE org_id = ");
            sql.bind(org_id.into());
            sql.push(" AND from_entity = ");
            sql.bind(r.entity.as_str().into());
            sql.push(" AND from_id = ");
            sql.bind((&r.id).into());
            sql.push(" AND to_entity = ");
            sql.bind(target.as_str().into());
            // Probed per link by primary key: an uncorrelated `IN (SELECT id …)` read every
            // live record of the target table for each record written.
            sql.push(&format!(
                " AND EXISTS (SELECT 1 FROM {t} live WHERE live.id = record_links.to_id AND live.deleted_at IS NULL)",
                t = table(target)
            ));
            if !ids.is_empty() {
                sql.push(" AND to_id NOT IN ");
                sql.bind_list(ids.iter().map(|i| SqlValue::from(*i)));
            }
            self.execute(&sql.text, &sql.binds).await?;
            for id in ids {
                self.add_link(org_id, (r.entity, r.id.as_str()), (target, id), r.updated_at).await?;
            }
        }
        Ok(())
    }

    /// Links two records (nothing happens when they already are).
    pub async fn add_link(
        &mut self,
        org_id: &OrgId,
        from: (Entity, &str),
        to: (Entity, &str),
        at: Millis,
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO record_links (org_id, from_entity, from_id, to_entity, to_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[org_id.into(), from.0.as_str().into(), from.1.into(), to.0.as_str().into(), to.1.into(), at.into()],
        )
        .await?;
        Ok(())
    }

    /// Replaces all records or none, with their change-log entries: `Stale` when one's
    /// `updated_at` is no longer the expected value, `NotFound` when one is gone.
    pub async fn update_records(
        &mut self,
        org_id: &OrgId,
        records: &[(Record, Millis)],
        changes: &[Change],
    ) -> StoreResult<()> {
        // What the activities among them bore on before, and will after.
        let activities: Vec<RecordId> =
            records.iter().filter(|(r, _)| r.entity == Entity::Activity).map(|(r, _)| r.id.clone()).collect();
        let mut targets = self.activity_targets(org_id, &activities).await?;
        for (r, expected) in records {
            last_activity::targets_of(r, &mut targets);
            let mut args = encode(org_id, r);
            args.push((*expected).into());
            let what = match r.entity.def().unique {
                Some(field) => format!("a {} with this {field}", r.entity),
                None => format!("a {} with this id", r.entity),
            };
            let done = self.execute(&sql_of(r.entity).update, &args).await.map_err(|e| e.on_write(&what))?;
            if done > 0 {
                self.write_links(org_id, r).await?;
            }
            if done == 0 {
                let sql = format!(
                    "SELECT COUNT(*) FROM {} WHERE id = $1 AND org_id = $2 AND deleted_at IS NULL",
                    table(r.entity)
                );
                let n = self.scalar(&sql, &[(&r.id).into(), org_id.into()]).await?;
                return Err(if n == 0 { StoreError::NotFound } else { StoreError::Stale });
            }
        }
        self.refresh_last_activity(org_id, &targets).await?;
        self.append_changes_of(changes, &as_written(records.iter().map(|(r, _)| r), &targets)).await
    }
}

/// The records a write leaves as they are in memory: all but those whose last activity it
/// refreshed in the database, and those with links (the database shows only the live ones,
/// and an undo may name records in the trash).
fn as_written<'a>(records: impl Iterator<Item = &'a Record>, refreshed: &last_activity::Targets) -> Vec<&'a Record> {
    let unlinked = |r: &Record| {
        sql_of(r.entity)
            .links
            .iter()
            .all(|f| r.values.get(f.name).is_none_or(|v| v.as_array().is_none_or(Vec::is_empty)))
    };
    records.filter(|r| unlinked(r) && !refreshed.contains(&(r.entity, r.id.as_str().to_owned()))).collect()
}

impl Store {
    /// How many live records match, per value of `col` (largest groups first, at most
    /// 1,000 groups); the value as JSON.
    pub async fn group_counts(
        &self,
        org_id: &OrgId,
        entity: Entity,
        filter: &[Predicate],
        col: &super::query::Col,
    ) -> StoreResult<Vec<(Value, u64)>> {
        if let Some(groups) = self.group_counts_by_terms(org_id, entity, filter, col).await? {
            return Ok(groups);
        }
        let filter = &self.settle(filter).await?;
        let mut sql = Sql::new(self.dialect());
        sql.push("SELECT ");
        sql.col_expr(col);
        sql.push(&format!(" AS grp, COUNT(*) AS n FROM {}{}", table(entity), where_org(self.dialect(), filter)));
        sql.bind(org_id.into());
        sql.push(" AND deleted_at IS NULL");
        sql.and_all(filter);
        sql.push(" GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1000");
        let rows = self.db.fetch_scan(&sql.text, &sql.binds).await?;
        rows.into_iter()
            .map(|mut r| {
                let v = r.json("grp")?;
                Ok((v, r.need_int("n")? as u64))
            })
            .collect()
    }

    /// `group_counts` from the equality terms (SQLite), when `col` has them and they answer
    /// the whole filter: each value the vocabulary lists for the column (and the mark of a
    /// missing one) is counted there, with the filter. Reads no row, where a
    /// `GROUP BY` reads every row that matches. `None`: the rows must answer (a filter the
    /// terms do not hold, more than 1,000 values, or a value too long for a token).
    async fn group_counts_by_terms(
        &self,
        org_id: &OrgId,
        entity: Entity,
        filter: &[Predicate],
        col: &super::query::Col,
    ) -> StoreResult<Option<Vec<(Value, u64)>>> {
        const GROUPS: usize = 1_000;
        let super::query::Col::Builtin { name, indexed, .. } = col else {
            return Ok(None);
        };
        let Some((from, to)) = terms::column_tokens(org_id, entity, name) else {
            return Ok(None);
        };
        let m = match self.terms_of(org_id, entity, filter) {
            Some(m) if m.whole => Some(m),
            _ if filter.is_empty() => None,
            _ => return Ok(None),
        };
        let t = table(entity);
        let tokens: Vec<String> = if *indexed && col.kind() == ColKind::Text {
            // The column's values from its sort index, one seek each (the vocabulary would
            // read every entry of the column's tokens: 50 ms for a million).
            let key = format!("COALESCE({name}, '')");
            let next = format!("SELECT MIN({key}) FROM {t} WHERE org_id = $1 AND deleted_at IS NULL");
            let sql = format!(
                "WITH RECURSIVE v(x, d) AS (SELECT ({next}), 1 UNION ALL SELECT ({next} AND {key} > v.x), d + 1 FROM v \
                 WHERE v.x IS NOT NULL AND d <= {GROUPS}) SELECT x FROM v WHERE x IS NOT NULL"
            );
            let mut tokens = Vec::new();
            for mut r in self.db.fetch(&sql, &[org_id.into()]).await? {
                let value = r.need_text("x")?;
                match terms::column_token(org_id, name, Some(&value)) {
                    Some(token) => tokens.push(token),
                    None => return Ok(None),
                }
            }
            tokens
        } else if self.dialect() == Dialect::Postgres {
            // No vocabulary, and a `DISTINCT` reads every row.
            return Ok(None);
        } else {
            let sql = format!("SELECT term FROM {t}_terms_vocab WHERE term >= $1 AND term < $2 LIMIT {}", GROUPS + 1);
            let binds = [SqlValue::Text(from.clone()), SqlValue::Text(to)];
            self.db
                .fetch(&sql, &binds)
                .await?
                .into_iter()
                .map(|mut r| r.need_text("term"))
                .collect::<StoreResult<_>>()?
        };
        if tokens.len() > GROUPS {
            return Ok(None);
        }
        let mut wanted: Vec<&str> = tokens.iter().map(String::as_str).collect();
        wanted.extend(m.iter().flat_map(|m| m.terms.tokens()));
        let Some(snap) = self.bitmaps(entity, &wanted).await? else {
            return Ok(None);
        };
        let within = m.as_ref().map(|m| snap.eval(&m.terms));
        let mut groups = Vec::with_capacity(tokens.len() + 1);
        for token in &tokens {
            let Some(value) = terms::column_value(token, &from) else {
                return Ok(None);
            };
            let bits = snap.get(token);
            let n = within.as_ref().map_or(bits.len(), |w| bits.intersection_len(w));
            match value {
                // The vocabulary may still list a value no live record holds.
                _ if n == 0 => {}
                ColumnValue::Value(value) => groups.push((Value::String(value), n)),
                ColumnValue::Missing => groups.push((Value::Null, n)),
                ColumnValue::TooLong => return Ok(None),
            }
        }
        // As `ORDER BY n DESC, value` sorts: the missing value first among equals.
        groups.sort_by(|(a, n), (b, m)| m.cmp(n).then_with(|| a.as_str().cmp(&b.as_str())));
        groups.truncate(GROUPS);
        Ok(Some(groups))
    }

    /// Each live matching record's `col` value, currency and exact amount, for sums made
    /// without floating point.
    pub async fn group_amounts(
        &self,
        org_id: &OrgId,
        entity: Entity,
        filter: &[Predicate],
        col: &super::query::Col,
        (amount, currency): (&str, &str),
    ) -> StoreResult<Vec<(Value, String, String)>> {
        let filter = &self.settle(filter).await?;
        let mut sql = Sql::new(self.dialect());
        sql.push("SELECT ");
        sql.col_expr(col);
        sql.push(&format!(" AS grp, {currency}, {amount} FROM {}{}", table(entity), where_org(self.dialect(), filter)));
        sql.bind(org_id.into());
        sql.push(&format!(" AND deleted_at IS NULL AND {amount} IS NOT NULL AND {currency} IS NOT NULL"));
        sql.and_all(filter);
        let rows = self.db.fetch_scan(&sql.text, &sql.binds).await?;
        rows.into_iter()
            .map(|mut r| {
                let v = r.json("grp")?;
                Ok((v, r.need_text(currency)?, r.need_text(amount)?))
            })
            .collect()
    }

    /// Live records whose `field` equals one of `values`, lowercased: the upsert keys
    /// (email, domain) are stored lowercase.
    pub async fn find_by(
        &self,
        org_id: &OrgId,
        entity: Entity,
        field: &str,
        values: &[String],
    ) -> StoreResult<Vec<Record>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(self.dialect());
        sql.push(&sql_of(entity).select);
        sql.push(" WHERE org_id = ");
        sql.bind(org_id.into());
        // Match keys (emails, domains) are stored lowercase: compare the column itself, so
        // its index serves the lookup.
        sql.push(&format!(" AND deleted_at IS NULL AND {field} IN "));
        sql.bind_list(values.iter().map(|v| SqlValue::Text(v.to_lowercase())));
        self.fetch_oldest_first(org_id, entity, &sql).await
    }

    /// Records in creation order, sorted here: an `ORDER BY created_at` makes the planner
    /// walk the organization's creation index instead of probing the key's (a full scan
    /// at a million records).
    async fn fetch_oldest_first(&self, org_id: &OrgId, entity: Entity, sql: &Sql) -> StoreResult<Vec<Record>> {
        let mut records = self.fetch_records(org_id, entity, sql).await?;
        records.sort_by(|a, b| (a.created_at, a.id.as_str()).cmp(&(b.created_at, b.id.as_str())));
        Ok(records)
    }

    /// Live companies whose name is one of `names` in any case (the `name_key` index).
    pub async fn companies_named(&self, org_id: &OrgId, names: &[String]) -> StoreResult<Vec<Record>> {
        if names.is_empty() {
            return Ok(Vec::new());
        }
        let mut sql = Sql::new(self.dialect());
        sql.push(&sql_of(Entity::Company).select);
        sql.push(" WHERE org_id = ");
        sql.bind(org_id.into());
        sql.push(" AND deleted_at IS NULL AND name_key IN ");
        sql.bind_list(names.iter().map(|v| SqlValue::Text(v.trim().to_lowercase())));
        self.fetch_oldest_first(org_id, Entity::Company, &sql).await
    }

    /// Whether the record exists in the organization, live or in the trash.
    pub async fn record_exists(&self, org_id: &OrgId, entity: Entity, id: &RecordId) -> StoreResult<bool> {
        let sql = format!("SELECT COUNT(*) FROM {} WHERE org_id = $1 AND id = $2", table(entity));
        let mut row = self.db.fetch_one(&sql, &[org_id.into(), id.into()]).await?.ok_or(StoreError::NotFound)?;
        Ok(row.need_int(&row.sole()?)? > 0)
    }
}
