//! Record queries as data, and their compilation to SQL. Identifiers come only from
//! `&'static str` column names or custom-field keys checked by `is_safe_key`; every value
//! is a bind parameter.

use rapport_tools::Entity;

pub use super::db::{ColKind, Dialect, SqlValue};

/// Something a condition can test.
#[derive(Debug, Clone, PartialEq)]
pub enum Col {
    /// A column of the entity's table; `indexed` when it has an index on its sort key.
    Builtin { name: &'static str, kind: ColKind, indexed: bool },
    /// A value in the `custom` JSON object.
    Custom { key: String, kind: ColKind },
    /// The `amount` of a currency value in the `custom` JSON object, as a number.
    CustomAmount { key: String },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Eq,
    Ne,
    Gt,
    Gte,
    Lt,
    Lte,
}

impl CmpOp {
    /// The operator with a space either side.
    fn sql(self) -> &'static str {
        match self {
            CmpOp::Eq => " = ",
            CmpOp::Ne => " <> ",
            CmpOp::Gt => " > ",
            CmpOp::Gte => " >= ",
            CmpOp::Lt => " < ",
            CmpOp::Lte => " <= ",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `ne` also matches records where the value is missing.
    Compare {
        col: Col,
        op: CmpOp,
        value: SqlValue,
    },
    /// Case-insensitive `LIKE`; the pattern is lowercased and escaped with `\`.
    Like {
        col: Col,
        pattern: String,
    },
    /// `not_in` also matches records where the value is missing.
    In {
        col: Col,
        values: Vec<SqlValue>,
        negate: bool,
    },
    Null {
        col: Col,
        negate: bool,
    },
    /// The `tags` list holds any of these (or, negated, none of them).
    TagsAny {
        /// `None` for the built-in `tags`; a custom multi_select's key otherwise.
        custom: Option<String>,
        values: Vec<String>,
        negate: bool,
    },
    /// Some live record of `table` points here through its column `fk` (or, negated,
    /// none does); with `ids`, one of those records.
    Reverse {
        outer: &'static str,
        table: &'static str,
        fk: &'static str,
        ids: Option<Vec<String>>,
        negate: bool,
    },
    /// The record has a live link to any of `ids` of `to` (or, with `None`, to any);
    /// negated, none.
    Linked {
        outer: &'static str,
        from: &'static str,
        to: Entity,
        ids: Option<Vec<String>>,
        negate: bool,
    },
    /// Free text: one lowercase word that must appear in the stored search text.
    Text {
        table: &'static str,
        word: String,
    },
    /// A custom field's value in `custom_values`, typed (`number`: the `n` column, else
    /// `t`) and indexed once for every tenant: `op` against one value, or `Eq` against
    /// any of several. Only for conditions that no missing value satisfies. The store
    /// looks in the table first ([`Sql::custom_value_probe`]): a value few records hold
    /// is found there; one that many hold, by testing `json` on the rows in order.
    CustomValue {
        entity: Entity,
        key: String,
        number: bool,
        op: CmpOp,
        values: Vec<SqlValue>,
        json: Box<Predicate>,
    },
    Any(Vec<Predicate>),
    All(Vec<Predicate>),
}

impl Predicate {
    /// This condition on the custom field `key` of `entity` (or on its built-in tags,
    /// `TAGS_KEY`), through the value table where it has the same meaning there:
    /// comparisons, `in` and `has_any`. `ne`,
    /// `not_in`, `has_none` and `is_null` also match records without the value, which
    /// the table does not hold: they read the JSON.
    pub fn on_value_table(self, entity: Entity, key: &str) -> Predicate {
        let typed = |col: &Col| match col {
            Col::Custom { kind, .. } => Some(matches!(kind, ColKind::Int | ColKind::Float)),
            Col::CustomAmount { .. } => Some(true),
            Col::Builtin { .. } => None,
        };
        let key = key.to_owned();
        let json = Box::new(self.clone());
        match self {
            Predicate::Compare { ref col, op, ref value } if op != CmpOp::Ne => match typed(col) {
                Some(number) => {
                    let values = vec![Sql::value_for(col, value.clone())];
                    Predicate::CustomValue { entity, key, number, op, values, json }
                }
                None => self,
            },
            Predicate::In { ref col, ref values, negate: false } if !values.is_empty() => match typed(col) {
                Some(number) => {
                    let values = values.iter().map(|v| Sql::value_for(col, v.clone())).collect();
                    Predicate::CustomValue { entity, key, number, op: CmpOp::Eq, values, json }
                }
                None => self,
            },
            Predicate::TagsAny { values, negate: false, .. } if !values.is_empty() => {
                let values = values.into_iter().map(SqlValue::Text).collect();
                Predicate::CustomValue { entity, key, number: false, op: CmpOp::Eq, values, json }
            }
            other => other,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SortExpr {
    /// The field's name as the caller gave it (`last_name`, `custom.size`).
    pub field: String,
    pub col: Col,
    pub desc: bool,
}

impl SortExpr {
    /// Age: the default order (newest first) and every other sort's tiebreak before id.
    pub fn created_at(desc: bool) -> SortExpr {
        SortExpr {
            field: "created_at".into(),
            col: Col::Builtin { name: "created_at", kind: ColKind::Int, indexed: true },
            desc,
        }
    }
}

impl Col {
    pub fn kind(&self) -> ColKind {
        match self {
            Col::Builtin { kind, .. } | Col::Custom { kind, .. } => *kind,
            Col::CustomAmount { .. } => ColKind::Float,
        }
    }
}

/// Which rows after a cursor a statement asks for. A run of rows sharing the cursor's
/// first key (a common last name) is walked, not sought, to reach a row value inside it;
/// `SameFirst` then `PastFirst` are two seeks that together give what `All` gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    All,
    /// The rest of the cursor's run: first key equal, the others after.
    SameFirst,
    /// Rows past the run: first key after.
    PastFirst,
}

/// One page of a search.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    pub entity: Entity,
    pub filter: Vec<Predicate>,
    /// Sort keys; the id always follows as the tiebreaker, in the first key's direction.
    pub sort: Vec<SortExpr>,
    /// The sort values and id of the last row of the previous page.
    pub after: Option<(Vec<SqlValue>, String)>,
    pub limit: u32,
}

/// The key under which `custom_values` holds a record's built-in tags, one row a tag: no
/// custom field's key can take it (`is_safe_key`).
pub const TAGS_KEY: &str = "#tags";

pub fn is_safe_key(key: &str) -> bool {
    let mut chars = key.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && key.len() <= 64
}

/// The value of `key` in `column` (JSON text), as JSON text; NULL when absent. `key` is one
/// `is_safe_key` has checked.
pub fn json_get(dialect: Dialect, column: &str, key: &str) -> String {
    debug_assert!(is_safe_key(key));
    match dialect {
        Dialect::Sqlite => format!("({column} -> '$.{key}')"),
        Dialect::Postgres => format!("((({column})::jsonb -> '{key}')::text)"),
    }
}

/// `column` (JSON text) without the key `key`, which `is_safe_key` has checked.
pub fn json_remove(dialect: Dialect, column: &str, key: &str) -> String {
    debug_assert!(is_safe_key(key));
    match dialect {
        Dialect::Sqlite => format!("json_remove({column}, '$.{key}')"),
        Dialect::Postgres => format!("(({column})::jsonb - '{key}')::text"),
    }
}

/// A correlated subquery giving, as JSON text, the newest `limit` live notes on the row of
/// `outer` (a table of `entity`): `[{"id", "body", "created_at"}]`, `created_at` in
/// milliseconds. It saves get_records a second query.
pub fn newest_notes_json(dialect: Dialect, outer: &str, entity: Entity, limit: u32) -> String {
    let on_record = format!(
        "FROM notes n WHERE n.org_id = {outer}.org_id AND n.record_entity = '{e}' AND n.record_id = {outer}.id \
         AND n.deleted_at IS NULL",
        e = entity.as_str()
    );
    let newest =
        format!("SELECT n.id, n.body, n.created_at {on_record} ORDER BY n.created_at DESC, n.id DESC LIMIT {limit}");
    // Most records have no notes: one index probe answers NULL for them, and only the
    // others build JSON.
    let json = match dialect {
        Dialect::Sqlite => format!(
            "(SELECT json_group_array(json_object('id', x.id, 'body', x.body, 'created_at', x.created_at)) FROM ({newest}) x)"
        ),
        Dialect::Postgres => format!(
            "(SELECT json_agg(json_build_object('id', x.id, 'body', x.body, 'created_at', x.created_at))::text FROM ({newest}) x)"
        ),
    };
    format!("(CASE WHEN EXISTS (SELECT 1 {on_record}) THEN {json} END)")
}

/// A free-text word a trigram index can find: three characters or more, none of them
/// `LIKE`'s wildcards or its escape.
pub fn trigram_word(word: &str) -> bool {
    word.chars().count() >= 3 && !word.contains(['%', '_', '\\'])
}

/// Whether NULL's stand-in in the sort key of `col` passes `key op values`: then the
/// comparison on the key needs `col IS NOT NULL` to keep NULL out, as SQL does.
fn null_passes(col: &Col, op: CmpOp, values: &[SqlValue]) -> bool {
    let (_, missing) = stand_in(col.kind());
    let is_missing = |v: &SqlValue| *v == missing;
    // Text's stand-in is the least value, numbers' the greatest.
    let least = matches!(col.kind(), ColKind::Text | ColKind::Bool);
    match op {
        CmpOp::Eq => values.iter().any(is_missing),
        CmpOp::Gt => !least && !values.iter().all(is_missing),
        CmpOp::Gte => !least || values.iter().any(is_missing),
        CmpOp::Lt => least && !values.iter().all(is_missing),
        CmpOp::Lte => least || values.iter().any(is_missing),
        CmpOp::Ne => true,
    }
}

/// What a sort key holds for NULL, as SQL and as a value: text's stand-in is the least
/// value, numbers' the greatest.
fn stand_in(kind: ColKind) -> (&'static str, SqlValue) {
    match kind {
        ColKind::Text | ColKind::Bool => ("''", SqlValue::Text(String::new())),
        ColKind::Int => ("9223372036854775807", SqlValue::Int(i64::MAX)),
        ColKind::Float => ("1e300", SqlValue::Float(1e300)),
    }
}

/// `s` with `LIKE`'s wildcards and the escape character escaped by `\`.
pub fn like_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How a built-in field's column compares.
pub fn col_kind(ty: rapport_tools::FieldType) -> ColKind {
    use rapport_tools::FieldType;
    match ty {
        FieldType::Datetime => ColKind::Int,
        FieldType::Number | FieldType::Decimal => ColKind::Float,
        FieldType::Boolean => ColKind::Bool,
        _ => ColKind::Text,
    }
}

pub fn table(entity: Entity) -> &'static str {
    entity.def().plural
}

/// SQL text being built, with its binds in order.
pub struct Sql {
    pub dialect: Dialect,
    pub text: String,
    pub binds: Vec<SqlValue>,
    /// Free text may use the trigram index (on SQLite a subquery on the FTS table); off
    /// where the rows are already few and a plain `LIKE` on each is cheaper.
    pub trigram: bool,
    /// Indexed columns that a sibling condition keeps NULL out of (`email >= 'user12'`
    /// beside `email < 'user13'`): their comparisons need no `IS NOT NULL`.
    unguarded: Vec<Col>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Sql { dialect, text: String::with_capacity(256), binds: Vec::new(), trigram: true, unguarded: Vec::new() }
    }

    /// ` LIMIT n` with the number written into the text. A bound LIMIT would make SQLite
    /// (built with STAT4) prepare the statement again on every call, since the limit can
    /// change the plan: that cost more than the query itself.
    pub fn limit(&mut self, n: u32) -> &mut Self {
        self.text.push_str(" LIMIT ");
        self.text.push_str(&n.to_string());
        self
    }

    pub fn push(&mut self, s: &str) -> &mut Self {
        self.text.push_str(s);
        self
    }

    pub fn bind(&mut self, v: SqlValue) -> &mut Self {
        self.binds.push(v);
        let n = self.binds.len();
        self.text.push('$');
        self.text.push_str(&n.to_string());
        self
    }

    pub fn bind_list(&mut self, values: impl IntoIterator<Item = SqlValue>) {
        self.push("(");
        for (i, v) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(v);
        }
        self.push(")");
    }

    /// ` AND col = value` for each filter that is set.
    pub fn and_equal(&mut self, conditions: impl IntoIterator<Item = (&'static str, SqlValue)>) {
        for (col, value) in conditions {
            if !matches!(value, SqlValue::Null(_)) {
                self.push(" AND ").push(col).push(" = ").bind(value);
            }
        }
    }

    /// ` AND col IN (values)`; with no values it holds for no row.
    pub fn and_in(&mut self, col: &str, values: &[&str]) {
        if values.is_empty() {
            self.push(" AND 1 = 0");
        } else {
            self.push(" AND ").push(col).push(" IN ");
            self.bind_list(values.iter().map(|v| SqlValue::from(*v)));
        }
    }

    /// ` AND` the change-log entry is about one of the `visible` entities, a custom field
    /// (`record_id` `entity.key`) of one of them included.
    pub fn and_visible_changes(&mut self, visible: &[&str]) {
        self.push(" AND (1 = 0");
        if !visible.is_empty() {
            self.push(" OR entity IN ");
            self.bind_list(visible.iter().map(|v| SqlValue::from(*v)));
        }
        for e in visible.iter().filter(|v| Entity::parse(v).is_some()) {
            self.push(" OR (entity = 'custom_field' AND record_id LIKE ");
            self.bind(format!("{e}.%").into());
            self.push(")");
        }
        self.push(")");
    }

    /// A log read newest first: past the `(at, id)` of the previous page's last entry,
    /// then the order and the limit.
    pub fn newest_first(&mut self, before: Option<&(crate::time::Millis, String)>, limit: u32) {
        if let Some((at, id)) = before {
            self.push(" AND (at, id) < (").bind((*at).into()).push(", ").bind(id.into()).push(")");
        }
        self.push(" ORDER BY at DESC, id DESC");
        self.limit(limit);
    }

    /// The expression of `col`, as filters see it.
    pub fn col_expr(&mut self, col: &Col) {
        self.col(col);
    }

    fn col(&mut self, col: &Col) {
        match (col, self.dialect) {
            (Col::Builtin { name, kind: ColKind::Float, .. }, dialect) => {
                // Decimals are stored as exact text; they compare and sort as numbers.
                let ty = if dialect == Dialect::Sqlite { "REAL" } else { "DOUBLE PRECISION" };
                self.push(&format!("CAST({name} AS {ty})"));
            }
            (Col::Builtin { name, .. }, _) => {
                self.push(name);
            }
            (Col::Custom { key, kind }, dialect) => {
                debug_assert!(is_safe_key(key));
                let expr = match (dialect, kind) {
                    (Dialect::Sqlite, ColKind::Text) => format!("(custom ->> '{key}')"),
                    (Dialect::Sqlite, ColKind::Float | ColKind::Int) => {
                        format!("CAST(custom ->> '{key}' AS REAL)")
                    }
                    (Dialect::Sqlite, ColKind::Bool) => format!("(custom -> '{key}')"),
                    (Dialect::Postgres, ColKind::Text) => format!("(custom::jsonb ->> '{key}')"),
                    (Dialect::Postgres, ColKind::Float | ColKind::Int) => {
                        format!("CAST(custom::jsonb ->> '{key}' AS DOUBLE PRECISION)")
                    }
                    (Dialect::Postgres, ColKind::Bool) => format!("((custom::jsonb -> '{key}')::text)"),
                };
                self.push(&expr);
            }
            (Col::CustomAmount { key }, dialect) => {
                debug_assert!(is_safe_key(key));
                self.push(&match dialect {
                    Dialect::Sqlite => format!("CAST(json_extract(custom, '$.{key}.amount') AS REAL)"),
                    Dialect::Postgres => format!("CAST(custom::jsonb -> '{key}' ->> 'amount' AS DOUBLE PRECISION)"),
                });
            }
        }
    }

    /// The left side of a comparison that matches no NULL. On an indexed column it is the
    /// sort key the index holds, `COALESCE(col, s)`; where the stand-in `s` for NULL would
    /// pass the comparison, `col IS NOT NULL` goes ahead of it to keep the meaning (and
    /// costs a look at the row). What to push after the right side is returned.
    fn compared(&mut self, col: &Col, op: CmpOp, values: &[SqlValue]) -> &'static str {
        let Col::Builtin { name, indexed: true, .. } = col else {
            self.col(col);
            return "";
        };
        if !null_passes(col, op, values) || self.unguarded.contains(col) {
            self.key_expr(col);
            return "";
        }
        self.push("(");
        self.push(name);
        self.push(" IS NOT NULL AND ");
        self.key_expr(col);
        ")"
    }

    /// Conditions that hold together: those on an indexed column that no NULL passes
    /// spare their siblings on the column the look at the row. Returns what to truncate
    /// `unguarded` to afterwards.
    fn unguard_siblings(&mut self, ps: &[Predicate]) -> usize {
        let saved = self.unguarded.len();
        for p in ps {
            if let Predicate::Compare { col: col @ Col::Builtin { indexed: true, .. }, op, value } = p
                && *op != CmpOp::Ne
                && !null_passes(col, *op, std::slice::from_ref(value))
            {
                self.unguarded.push(col.clone());
            }
        }
        saved
    }

    /// Booleans in custom fields compare as their JSON text on both databases.
    pub(crate) fn value_for(col: &Col, v: SqlValue) -> SqlValue {
        match (col, v) {
            (Col::Custom { kind: ColKind::Bool, .. }, SqlValue::Bool(b)) => SqlValue::Text(b.to_string()),
            (_, v) => v,
        }
    }

    pub fn predicate(&mut self, p: &Predicate) {
        match p {
            Predicate::Compare { col, op, value } => {
                let v = Self::value_for(col, value.clone());
                if *op == CmpOp::Ne {
                    self.push("(");
                    self.col(col);
                    self.push(" IS NULL OR ");
                    self.col(col);
                    self.push(" <> ");
                    self.bind(v);
                    self.push(")");
                    return;
                }
                let close = self.compared(col, *op, std::slice::from_ref(&v));
                self.push(op.sql());
                self.bind(v);
                self.push(close);
            }
            Predicate::Like { col, pattern } => {
                self.push("lower(");
                self.col(col);
                self.push(") LIKE ");
                self.bind(SqlValue::Text(pattern.clone()));
                self.push(" ESCAPE '\\'");
            }
            Predicate::In { col, values, negate } => {
                if values.is_empty() {
                    self.push(if *negate { "1 = 1" } else { "1 = 0" });
                    return;
                }
                let vs: Vec<SqlValue> = values.iter().map(|v| Self::value_for(col, v.clone())).collect();
                if *negate {
                    self.push("(");
                    self.col(col);
                    self.push(" IS NULL OR ");
                    self.col(col);
                    self.push(" NOT IN ");
                    self.bind_list(vs);
                    self.push(")");
                } else {
                    let close = self.compared(col, CmpOp::Eq, &vs);
                    self.push(" IN ");
                    self.bind_list(vs);
                    self.push(close);
                }
            }
            Predicate::Null { col, negate } => {
                self.col(col);
                self.push(if *negate { " IS NOT NULL" } else { " IS NULL" });
            }
            Predicate::TagsAny { custom, values, negate } => {
                if *negate {
                    self.push("NOT ");
                }
                if values.is_empty() {
                    self.push("(1 = 0)");
                    return;
                }
                let list = match (self.dialect, custom) {
                    (Dialect::Sqlite, None) => "json_each(tags)".to_owned(),
                    (Dialect::Sqlite, Some(key)) => format!("json_each(custom, '$.{key}')"),
                    (Dialect::Postgres, None) => "jsonb_array_elements_text(tags::jsonb) AS t(v)".to_owned(),
                    (Dialect::Postgres, Some(key)) => format!(
                        "jsonb_array_elements_text(CASE WHEN jsonb_typeof(custom::jsonb -> '{key}') = 'array' \
                         THEN custom::jsonb -> '{key}' ELSE '[]'::jsonb END) AS t(v)"
                    ),
                };
                debug_assert!(custom.as_deref().is_none_or(is_safe_key));
                let item = if self.dialect == Dialect::Sqlite { "json_each.value" } else { "t.v" };
                self.push(&format!("EXISTS (SELECT 1 FROM {list} WHERE {item} IN "));
                self.bind_list(values.iter().cloned().map(SqlValue::Text));
                self.push(")");
            }
            Predicate::Reverse { outer, table, fk, ids, negate } => {
                if *negate {
                    self.push("NOT ");
                }
                if ids.as_ref().is_some_and(Vec::is_empty) {
                    self.push("(1 = 0)");
                    return;
                }
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM {table} rc WHERE rc.{fk} = {outer}.id AND rc.deleted_at IS NULL"
                ));
                if let Some(ids) = ids {
                    self.push(" AND rc.id IN ");
                    self.bind_list(ids.iter().cloned().map(SqlValue::Text));
                }
                self.push(")");
            }
            Predicate::Linked { outer, from, to, ids, negate } => {
                if *negate {
                    self.push("NOT ");
                }
                if ids.as_ref().is_some_and(Vec::is_empty) {
                    self.push("(1 = 0)");
                    return;
                }
                self.push(&format!(
                    "EXISTS (SELECT 1 FROM record_links l JOIN {t} lt ON lt.id = l.to_id AND lt.deleted_at IS NULL \
                     WHERE l.org_id = {outer}.org_id AND l.from_entity = '{from}' AND l.from_id = {outer}.id \
                     AND l.to_entity = '{to}'",
                    t = table(*to),
                    to = to.as_str()
                ));
                if let Some(ids) = ids {
                    self.push(" AND l.to_id IN ");
                    self.bind_list(ids.iter().cloned().map(SqlValue::Text));
                }
                self.push(")");
            }
            Predicate::Text { table, word } => {
                let pattern = format!("%{}%", like_escape(word));
                // FTS5's trigram index on SQLite (then the row is checked again, exactly);
                // pg_trgm's on PostgreSQL serves the `LIKE` itself.
                if trigram_word(word) && self.trigram && self.dialect == Dialect::Sqlite {
                    self.push(&format!("rowid IN (SELECT rowid FROM {table}_search WHERE search LIKE "));
                    self.bind(SqlValue::Text(format!("%{word}%")));
                    self.push(") AND ");
                }
                self.push("search LIKE ");
                self.bind(SqlValue::Text(pattern));
                self.push(" ESCAPE '\\'");
            }
            Predicate::CustomValue { .. } => {
                self.push("id IN (");
                self.custom_values_of(p);
                self.push(")");
            }
            Predicate::Any(ps) | Predicate::All(ps) => {
                let (empty, joiner) =
                    if matches!(p, Predicate::Any(_)) { ("1 = 0", " OR ") } else { ("1 = 1", " AND ") };
                if ps.is_empty() {
                    self.push(empty);
                    return;
                }
                let all = matches!(p, Predicate::All(_));
                let saved = if all { self.unguard_siblings(ps) } else { self.unguarded.len() };
                self.push("(");
                for (i, p) in ps.iter().enumerate() {
                    if i > 0 {
                        self.push(joiner);
                    }
                    self.push("(");
                    self.predicate(p);
                    self.push(")");
                }
                self.push(")");
                self.unguarded.truncate(saved);
            }
        }
    }

    /// The ids of the records whose custom value satisfies a `CustomValue` predicate.
    fn custom_values_of(&mut self, p: &Predicate) {
        let Predicate::CustomValue { entity, key, number, op, values, .. } = p else {
            self.push("SELECT NULL WHERE 1 = 0");
            return;
        };
        debug_assert!(is_safe_key(key) || key == TAGS_KEY);
        let column = if *number { "n" } else { "t" };
        self.push(&format!(
            "SELECT record_id FROM custom_values WHERE entity = '{e}' AND key = '{key}' AND {column}",
            e = entity.as_str()
        ));
        if let [one] = values.as_slice() {
            self.push(op.sql());
            self.bind(one.clone());
        } else {
            self.push(" IN ");
            self.bind_list(values.iter().cloned());
        }
    }

    /// How many records (up to `cap`) satisfy a `CustomValue` predicate: under the cap
    /// the table finds them at once; at it, they are common enough that testing the
    /// rows in order finds a page sooner than sorting them all.
    pub fn custom_value_probe(dialect: Dialect, p: &Predicate, cap: u32) -> Sql {
        let mut sql = Sql::new(dialect);
        sql.push("SELECT COUNT(*) FROM (");
        sql.custom_values_of(p);
        sql.push(&format!(" LIMIT {cap}) x"));
        sql
    }

    /// ` AND (p1) AND (p2)…` after a `WHERE org_id = $1`.
    pub fn and_all(&mut self, ps: &[Predicate]) {
        let saved = self.unguard_siblings(ps);
        for p in ps {
            self.push(" AND (");
            self.predicate(p);
            self.push(")");
        }
        self.unguarded.truncate(saved);
    }

    /// The sort key, never NULL, so that keyset comparisons see a total order: text
    /// sorts missing values first, numbers last. Indexes are built on this same text.
    pub(super) fn sort_expr(&mut self, s: &SortExpr) {
        self.key_expr(&s.col);
    }

    fn key_expr(&mut self, col: &Col) {
        self.push("COALESCE(");
        self.col(col);
        self.push(", ");
        self.push(stand_in(col.kind()).0);
        self.push(")");
    }

    /// The condition that a row's number (`rowid`, `rn`) is among `list`, a JSON list.
    pub fn row_among(&mut self, list: &str) {
        match self.dialect {
            Dialect::Sqlite => {
                self.push("rowid IN (SELECT value FROM json_each(");
                self.bind(list.into());
                self.push("))");
            }
            Dialect::Postgres => {
                // An array literal: the planner knows its length, and seeks each.
                self.push("rn = ANY(CAST(");
                let inner = list.trim_start_matches('[').trim_end_matches(']');
                self.bind(format!("{{{inner}}}").into());
                self.push(" AS bigint[]))");
            }
        }
    }

    /// The keyset condition: rows strictly after `(values, id)` in the sort order, or the
    /// part of them that `part` names.
    pub fn after(&mut self, sort: &[SortExpr], values: &[SqlValue], id: &str, part: After) {
        let id_desc = sort.first().is_some_and(|s| s.desc);
        self.after_from(sort, values, id, id_desc, part);
    }

    fn after_from(&mut self, sort: &[SortExpr], values: &[SqlValue], id: &str, id_desc: bool, part: After) {
        let (Some(first), Some(v)) = (sort.first(), values.first()) else {
            return self.after_rest(&[], &[], id, id_desc);
        };
        self.push(" AND ");
        self.sort_expr(first);
        match part {
            // The first key's bound on its own: SQLite seeks an index on expressions to a
            // plain range, not to a row value, so without it page 1,000 walks the 25,000
            // rows before.
            After::All => {
                self.push(if first.desc { " <= " } else { " >= " });
                self.bind(v.clone());
                self.after_rest(sort, values, id, id_desc);
            }
            After::SameFirst => {
                self.push(" = ");
                self.bind(v.clone());
                self.after_from(&sort[1..], &values[1..], id, id_desc, After::All);
            }
            After::PastFirst => {
                self.push(if first.desc { " < " } else { " > " });
                self.bind(v.clone());
            }
        }
    }

    fn after_rest(&mut self, sort: &[SortExpr], values: &[SqlValue], id: &str, id_desc: bool) {
        // One direction throughout: a row-value comparison, which an index on the sort
        // keys answers with a seek, so page 1,000 costs what page 1 does.
        if sort.iter().all(|s| s.desc == id_desc) {
            self.push(" AND (");
            for s in sort {
                self.sort_expr(s);
                self.push(", ");
            }
            self.push(if id_desc { "id) < (" } else { "id) > (" });
            for v in values.iter().take(sort.len()) {
                self.bind(v.clone());
                self.push(", ");
            }
            self.bind(SqlValue::Text(id.to_owned()));
            self.push(")");
            return;
        }
        self.push(" AND (");
        // (k1 > v1) OR (k1 = v1 AND k2 > v2) OR … OR (k1 = v1 AND … AND id > last_id)
        for i in 0..=sort.len() {
            if i > 0 {
                self.push(" OR ");
            }
            self.push("(");
            for (j, s) in sort.iter().take(i).enumerate() {
                self.sort_expr(s);
                self.push(" = ");
                self.bind(values[j].clone());
                self.push(" AND ");
            }
            if i < sort.len() {
                let s = &sort[i];
                self.sort_expr(s);
                self.push(if s.desc { " < " } else { " > " });
                self.bind(values[i].clone());
            } else {
                self.push("id");
                self.push(if id_desc { " < " } else { " > " });
                self.bind(SqlValue::Text(id.to_owned()));
            }
            self.push(")");
        }
        self.push(")");
    }

    pub fn order_by(&mut self, sort: &[SortExpr]) {
        self.order_by_with(sort, true, 0);
    }

    /// `ORDER BY`; without `by_index`, written so that SQLite cannot answer it by walking
    /// a sort index (a unary `+` is not the indexed expression): it then finds the rows
    /// through another index, such as the trigram index, and sorts those. The first
    /// `fixed` keys are left out: an equality holds them (`After::SameFirst`), and SQLite
    /// sorts rather than walk the index when they are named.
    pub fn order_by_with(&mut self, sort: &[SortExpr], by_index: bool, fixed: usize) {
        let id_desc = sort.first().is_some_and(|s| s.desc);
        self.push(" ORDER BY ");
        for s in sort.iter().skip(fixed) {
            match (by_index, self.dialect) {
                (true, _) => self.sort_expr(s),
                (false, Dialect::Sqlite) => {
                    self.push("+");
                    self.sort_expr(s);
                }
                // PostgreSQL has no unary `+` on text: an operation that changes nothing.
                (false, Dialect::Postgres) => {
                    self.push("(");
                    self.sort_expr(s);
                    self.push(match s.col.kind() {
                        ColKind::Text | ColKind::Bool => " || '')",
                        ColKind::Int | ColKind::Float => " + 0)",
                    });
                }
            }
            self.push(if s.desc { " DESC, " } else { " ASC, " });
        }
        self.push(if id_desc { "id DESC" } else { "id ASC" });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_checked() {
        assert!(is_safe_key("deal_size_2"));
        assert!(!is_safe_key("x'); DROP TABLE contacts; --"));
        assert!(!is_safe_key("Upper"));
        assert!(!is_safe_key(""));
    }

    #[test]
    fn keyset_condition_orders_binds() {
        let key = |name: &'static str, desc: bool| SortExpr {
            field: name.into(),
            col: Col::Builtin { name, kind: ColKind::Text, indexed: true },
            desc,
        };
        // One direction: the first key's range an index seeks to, then a row-value comparison.
        let mut sql = Sql::new(Dialect::Postgres);
        sql.after(&[key("last_name", false)], &[SqlValue::Text("b".into())], "id9", After::All);
        assert_eq!(sql.text, " AND COALESCE(last_name, '') >= $1 AND (COALESCE(last_name, ''), id) > ($2, $3)");
        assert_eq!(
            sql.binds,
            vec![SqlValue::Text("b".into()), SqlValue::Text("b".into()), SqlValue::Text("id9".into())]
        );
        // Mixed directions: spelled out key by key.
        let mut sql = Sql::new(Dialect::Postgres);
        let values = [SqlValue::Text("b".into()), SqlValue::Text("x".into())];
        sql.after(&[key("last_name", false), key("title", true)], &values, "id9", After::All);
        assert_eq!(
            sql.text,
            " AND COALESCE(last_name, '') >= $1 AND ((COALESCE(last_name, '') > $2) OR (COALESCE(last_name, '') = $3 \
             AND COALESCE(title, '') < $4) OR (COALESCE(last_name, '') = $5 AND COALESCE(title, '') = $6 AND id > $7))"
        );
        // Resumed in two seeks: the rest of the cursor's run, then past it.
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.after(&[key("last_name", false), key("title", true)], &values, "id9", After::SameFirst);
        assert_eq!(
            sql.text,
            " AND COALESCE(last_name, '') = $1 AND COALESCE(title, '') <= $2 AND ((COALESCE(title, '') < $3) \
             OR (COALESCE(title, '') = $4 AND id > $5))"
        );
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.after(&[key("last_name", true), key("title", true)], &values, "id9", After::PastFirst);
        assert_eq!(sql.text, " AND COALESCE(last_name, '') < $1");
    }

    #[test]
    fn a_sibling_that_refuses_null_spares_the_guard() {
        let email = Col::Builtin { name: "email", kind: ColKind::Text, indexed: true };
        let cmp = |op, v: &str| Predicate::Compare { col: email.clone(), op, value: SqlValue::Text(v.into()) };
        // Alone, `< 'user13'` would let NULL's stand-in '' through: the row is looked at.
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.and_all(&[cmp(CmpOp::Lt, "user13")]);
        assert_eq!(sql.text, " AND ((email IS NOT NULL AND COALESCE(email, '') < $1))");
        // Beside `>= 'user12'`, which no NULL passes, the index answers both.
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.predicate(&Predicate::All(vec![cmp(CmpOp::Gte, "user12"), cmp(CmpOp::Lt, "user13")]));
        assert_eq!(sql.text, "((COALESCE(email, '') >= $1) AND (COALESCE(email, '') < $2))");
        // Not across an OR.
        let mut sql = Sql::new(Dialect::Sqlite);
        sql.predicate(&Predicate::Any(vec![cmp(CmpOp::Gte, "user12"), cmp(CmpOp::Lt, "user13")]));
        assert_eq!(sql.text, "((COALESCE(email, '') >= $1) OR ((email IS NOT NULL AND COALESCE(email, '') < $2)))");
    }
}
