//! Equality terms of the live records, for conditions that combine.
//!
//! A tag, a custom field's value and a built-in text column each have an index of their
//! own, but a condition on two of them that both match a quarter of a million records
//! (and together nothing) leaves SQLite walking one and testing the other row by row:
//! 320 ms to find no page, 340 ms to count a tag. Here every live record is one document
//! of a contentless FTS5 table, `{table}_terms`, sharing the table's rowids, whose tokens
//! are its `field = value` facts scoped to its organization. An equality, an `in` or a
//! `has_any` on them, and any `and`/`or` of those (`Terms`), is then an intersection and
//! union of each token's rowids, held in memory as bitmaps (`bitmaps.rs`): counted
//! without reading a row, or a page's few candidates found at once.
//!
//! A token is `hex(org_id) x hex(key) x hex(value)`: letters and digits only, which FTS5's
//! `ascii` tokenizer keeps whole. Keys are `.name` for a built-in column, `#tags` for the
//! tags, the custom field's key for a custom value (text, `true`/`false`, each option of a
//! multi-select), as `custom_values` types them. Values over `MAX_CHARS` are left out, and
//! a condition on such a value does not use the table. Triggers keep it in step with the
//! table: a trashed record leaves it, a restored one comes back.
//!
//! PostgreSQL has no terms table: a token's matches come from the column's index or from
//! `custom_values` (`source`), and a changed record's tokens are computed from its row here
//! (`tokens_of`), by the same rules.

use rapport_tools::{Entity, Field, FieldType, Storage};

use super::query::{CmpOp, Col, Predicate, TAGS_KEY, table};
use super::{Dialect, OrgId, SqlValue};

/// The longest value, in characters, that gets a token.
const MAX_CHARS: usize = 200;

/// The value part of the token that marks a value too long for one, and the one that
/// marks a missing value: hex has neither letter.
const LONG: &str = "z";
const MISSING: &str = "y";

/// Bump when what a row's tokens are changes: the table is refilled on the next start.
const VERSION: u32 = 1;

/// Whether a built-in field's equality conditions are answered from the terms: the
/// columns whose values many records share (titles, stages, owners, companies), not
/// addresses and numbers.
fn is_term_field(f: &Field) -> bool {
    f.storage == Storage::Column
        && matches!(
            f.ty,
            FieldType::Text | FieldType::Select | FieldType::User | FieldType::Relation | FieldType::CurrencyCode
        )
}

/// The name of the trigger whose presence says the table is filled and kept, this version.
pub(super) fn trigger_name(entity: Entity) -> String {
    format!("{}_terms_v{VERSION}", table(entity))
}

/// The columns a record's tokens come from.
fn watched(entity: Entity) -> Vec<&'static str> {
    entity
        .def()
        .columns()
        .filter(|f| is_term_field(f) || f.ty == FieldType::Tags)
        .map(|f| f.name)
        .chain(["custom", "deleted_at", "org_id"])
        .collect()
}

/// The statements that create `entity`'s terms table (if missing) and its triggers, and
/// those that drop the triggers of earlier versions.
pub(super) fn ddl(entity: Entity) -> (Vec<String>, Vec<String>) {
    let t = table(entity);
    let name = trigger_name(entity);
    let watched = watched(entity);
    let new = tokens_expr(entity, "new");
    let create = vec![
        format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS {t}_terms USING fts5(v, content='', contentless_delete=1, \
             detail=none, tokenize='ascii')"
        ),
        format!("CREATE VIRTUAL TABLE IF NOT EXISTS {t}_terms_vocab USING fts5vocab({t}_terms, 'row')"),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name} AFTER INSERT ON {t} WHEN new.deleted_at IS NULL BEGIN \
             INSERT INTO {t}_terms (rowid, v) VALUES (new.rowid, {new}); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE OF {} ON {t} BEGIN \
             DELETE FROM {t}_terms WHERE rowid = old.rowid AND old.deleted_at IS NULL; \
             INSERT INTO {t}_terms (rowid, v) SELECT new.rowid, {new} WHERE new.deleted_at IS NULL; END",
            watched.join(", ")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {t} WHEN old.deleted_at IS NULL BEGIN \
             DELETE FROM {t}_terms WHERE rowid = old.rowid; END"
        ),
    ];
    let dropped = (1..VERSION)
        .flat_map(|v| ["", "_update", "_delete"].map(|s| format!("DROP TRIGGER IF EXISTS {t}_terms_v{v}{s}")))
        .collect();
    (create, dropped)
}

/// Bump when what the log's triggers watch changes (2: the age too, which the bounds of
/// `Store::newest_below` follow).
const LOG_VERSION: u32 = 2;

/// The statements that create the log of the records whose terms or age may have changed,
/// which the bitmaps each process holds read (`bitmaps.rs`), and the triggers that fill it
/// (named with `LOG_VERSION`; earlier ones dropped). Its key is an `INTEGER PRIMARY KEY`,
/// which `VACUUM` keeps.
///
/// On PostgreSQL a sequence number is taken before its transaction commits, so entries
/// appear out of order: each carries its transaction, and a reader also reads again the
/// entries of the transactions in progress at its last read (`bitmaps.rs`). There the
/// statements run only when `log_trigger` is missing (`CREATE TRIGGER` has no `IF NOT
/// EXISTS`).
pub(super) fn log_ddl(dialect: Dialect, entity: Entity) -> Vec<String> {
    let t = table(entity);
    let watched = watched(entity).join(", ") + ", created_at";
    let name = format!("{t}_terms_log_v{LOG_VERSION}");
    if dialect == Dialect::Postgres {
        let mut out: Vec<String> = (1..LOG_VERSION)
            .flat_map(|v| {
                let triggers = ["insert", "update", "delete"]
                    .map(|s| format!("DROP TRIGGER IF EXISTS {t}_terms_log_v{v}_{s} ON {t}"));
                triggers.into_iter().chain([format!("DROP FUNCTION IF EXISTS {t}_terms_log_v{v}()")])
            })
            .collect();
        out.extend([
            format!(
                "CREATE TABLE IF NOT EXISTS {t}_terms_log (seq BIGSERIAL PRIMARY KEY, rid BIGINT NOT NULL, \
                 xid xid8 NOT NULL DEFAULT pg_current_xact_id())"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_terms_log_xid ON {t}_terms_log (xid)"),
            format!(
                "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN \
                 IF TG_OP = 'DELETE' THEN INSERT INTO {t}_terms_log (rid) VALUES (OLD.rn); \
                 ELSE INSERT INTO {t}_terms_log (rid) VALUES (NEW.rn); END IF; RETURN NULL; END $f$"
            ),
            format!(
                "CREATE TRIGGER {name}_insert AFTER INSERT ON {t} FOR EACH ROW WHEN (NEW.deleted_at IS NULL) \
                 EXECUTE FUNCTION {name}()"
            ),
            format!(
                "CREATE TRIGGER {name}_update AFTER UPDATE OF {watched} ON {t} FOR EACH ROW \
                 WHEN (OLD.deleted_at IS NULL OR NEW.deleted_at IS NULL) EXECUTE FUNCTION {name}()"
            ),
            format!(
                "CREATE TRIGGER {name}_delete AFTER DELETE ON {t} FOR EACH ROW WHEN (OLD.deleted_at IS NULL) \
                 EXECUTE FUNCTION {name}()"
            ),
        ]);
        return out;
    }
    let mut out: Vec<String> = (1..LOG_VERSION)
        .flat_map(|v| ["insert", "update", "delete"].map(|s| format!("DROP TRIGGER IF EXISTS {t}_terms_log_v{v}_{s}")))
        .collect();
    out.extend([
        format!("CREATE TABLE IF NOT EXISTS {t}_terms_log (seq INTEGER PRIMARY KEY, rid INTEGER NOT NULL)"),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name}_insert AFTER INSERT ON {t} WHEN new.deleted_at IS NULL BEGIN \
             INSERT INTO {t}_terms_log (rid) VALUES (new.rowid); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE OF {watched} ON {t} \
             WHEN old.deleted_at IS NULL OR new.deleted_at IS NULL BEGIN \
             INSERT INTO {t}_terms_log (rid) VALUES (new.rowid); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {t} WHEN old.deleted_at IS NULL BEGIN \
             INSERT INTO {t}_terms_log (rid) VALUES (old.rowid); END"
        ),
    ]);
    out
}

/// The trigger whose presence says the log is kept, this version.
pub(super) fn log_trigger(entity: Entity) -> String {
    format!("{}_terms_log_v{LOG_VERSION}_update", table(entity))
}

/// The statements that empty the terms table and fill it from the live rows.
pub(super) fn refill(entity: Entity) -> [String; 2] {
    let t = table(entity);
    [
        format!("INSERT INTO {t}_terms ({t}_terms) VALUES ('delete-all')"),
        format!(
            "INSERT INTO {t}_terms (rowid, v) SELECT src.rowid, {} FROM {t} AS src WHERE src.deleted_at IS NULL",
            tokens_expr(entity, "src")
        ),
    ]
}

/// The SQL of the tokens of the row `src`, space-separated, as the terms table holds them
/// for a live row (uppercase: the tokenizer folds case).
pub(super) fn row_tokens(entity: Entity) -> String {
    tokens_expr(entity, "src")
}

/// The SQL of a row's tokens, space-separated; `src` names the row.
fn tokens_expr(entity: Entity, src: &str) -> String {
    let org = format!("hex({src}.org_id) || 'x'");
    let fits = |v: &str| format!("length({v}) BETWEEN 1 AND {MAX_CHARS}");
    let mut parts: Vec<String> = entity
        .def()
        .columns()
        .filter(|f| is_term_field(f))
        .map(|f| {
            // A missing value, and one too long for a token, leave a mark of their own, so
            // that grouping finds all three kinds without reading a row.
            let col = format!("{src}.{}", f.name);
            let key = hex_of(&builtin_key(f.name));
            format!(
                "{org} || '{key}x' || CASE WHEN {} THEN hex({col}) WHEN length({col}) > {MAX_CHARS} THEN '{LONG}' \
                 ELSE '{MISSING}' END",
                fits(&col)
            )
        })
        .collect();
    if super::indexes::has_tags(entity) {
        parts.push(format!(
            "(SELECT group_concat({org} || '{}x' || hex(g.value), ' ') FROM json_each({src}.tags) g \
             WHERE g.type = 'text' AND {})",
            hex_of(TAGS_KEY),
            fits("g.value")
        ));
    }
    parts.push(format!(
        "(SELECT group_concat({org} || hex(f.key) || 'x' || hex(CASE f.type WHEN 'text' THEN f.value ELSE f.type END), ' ') \
         FROM json_each({src}.custom) f WHERE f.type IN ('text', 'true', 'false') AND {})",
        fits("f.value")
    ));
    parts.push(format!(
        "(SELECT group_concat({org} || hex(f.key) || 'x' || hex(o.value), ' ') FROM json_each({src}.custom) f, \
         json_each(f.value) o WHERE f.type = 'array' AND o.type = 'text' AND {})",
        fits("o.value")
    ));
    format!("concat_ws(' ', {})", parts.join(", "))
}

fn builtin_key(name: &str) -> String {
    format!(".{name}")
}

fn hex_of(s: &str) -> String {
    hex::encode_upper(s.as_bytes())
}

/// Equality conditions as tokens: one token, or all or any of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Terms {
    /// As the vocabulary lists it (lowercase).
    Token(String),
    All(Vec<Terms>),
    Any(Vec<Terms>),
}

impl Terms {
    /// Every token it names.
    pub fn tokens(&self) -> Vec<&str> {
        match self {
            Terms::Token(t) => vec![t.as_str()],
            Terms::All(ts) | Terms::Any(ts) => ts.iter().flat_map(Terms::tokens).collect(),
        }
    }
}

/// A filter as the terms table can answer it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Matcher {
    /// The conditions it answers.
    pub terms: Terms,
    /// Whether it answers every condition of the filter: its matches are the filter's.
    pub whole: bool,
}

/// The part of `filter` (conditions that hold together) that the terms of `entity`
/// answer, if any.
pub(super) fn matcher(org_id: &OrgId, entity: Entity, filter: &[Predicate]) -> Option<Matcher> {
    let org = hex_of(org_id.as_str());
    let mut parts: Vec<Terms> = filter.iter().filter_map(|p| term_query(&org, entity, p)).collect();
    let whole = parts.len() == filter.len();
    let terms = match parts.len() {
        0 => return None,
        1 => parts.remove(0),
        _ => Terms::All(parts),
    };
    Some(Matcher { terms, whole })
}

/// One condition as tokens, when every part of it is an equality the terms hold.
fn term_query(org: &str, entity: Entity, p: &Predicate) -> Option<Terms> {
    let any_of = |key: &str, values: &[SqlValue]| -> Option<Terms> {
        let mut tokens = values
            .iter()
            .map(|v| match v {
                SqlValue::Text(s) if !s.is_empty() && s.chars().count() <= MAX_CHARS => {
                    Some(Terms::Token(token(org, key, &hex_of(s))))
                }
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?;
        match tokens.len() {
            0 => None,
            1 => tokens.pop(),
            _ => Some(Terms::Any(tokens)),
        }
    };
    let builtin = |col: &Col| match col {
        Col::Builtin { name, .. } => entity.def().columns().find(|f| f.name == *name && is_term_field(f)),
        _ => None,
    };
    match p {
        Predicate::Compare { col, op: CmpOp::Eq, value } => {
            builtin(col).and_then(|f| any_of(&builtin_key(f.name), std::slice::from_ref(value)))
        }
        Predicate::In { col, values, negate: false } => builtin(col).and_then(|f| any_of(&builtin_key(f.name), values)),
        Predicate::CustomValue { entity: e, key, number: false, op: CmpOp::Eq, values, .. } if *e == entity => {
            any_of(key, values)
        }
        Predicate::All(ps) | Predicate::Any(ps) if !ps.is_empty() => {
            let parts = ps.iter().map(|p| term_query(org, entity, p)).collect::<Option<Vec<_>>>()?;
            Some(if matches!(p, Predicate::All(_)) { Terms::All(parts) } else { Terms::Any(parts) })
        }
        _ => None,
    }
}

/// The FTS5 query of one token.
pub(super) fn token_query(token: &str) -> String {
    format!("\"{token}\"")
}

/// The token of `key` = `value` (already hex) in the organization `org` (hex).
fn token(org: &str, key: &str, value: &str) -> String {
    format!("{org}x{}x{value}", hex_of(key)).to_ascii_lowercase()
}

/// The tokens of one built-in column's values in an organization, as the vocabulary
/// lists them (lowercase): those from `.0` up to, not including, `.1`. `None` when the
/// column has no terms.
pub(super) fn column_tokens(org_id: &OrgId, entity: Entity, name: &str) -> Option<(String, String)> {
    entity.def().columns().find(|f| f.name == name && is_term_field(f))?;
    let prefix = token(&hex_of(org_id.as_str()), &builtin_key(name), "");
    let end = format!("{}y", &prefix[..prefix.len() - 1]);
    Some((prefix, end))
}

/// What a token of `column_tokens` stands for.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ColumnValue {
    Value(String),
    Missing,
    /// Longer than a token holds: only the rows know it.
    TooLong,
}

pub(super) fn column_value(token: &str, prefix: &str) -> Option<ColumnValue> {
    Some(match token.strip_prefix(prefix)? {
        LONG => ColumnValue::TooLong,
        MISSING => ColumnValue::Missing,
        hexed => ColumnValue::Value(String::from_utf8(hex::decode(hexed).ok()?).ok()?),
    })
}

/// The token of a built-in column's value (`None`: missing), as the vocabulary lists it;
/// `None` for a value too long to have one.
pub(super) fn column_token(org_id: &OrgId, name: &str, value: Option<&str>) -> Option<String> {
    let value = match value.filter(|v| !v.is_empty()) {
        None => MISSING.to_owned(),
        Some(v) if v.chars().count() > MAX_CHARS => return None,
        Some(v) => hex_of(v),
    };
    Some(token(&hex_of(org_id.as_str()), &builtin_key(name), &value))
}

/// The built-in columns whose values get tokens.
pub(super) fn term_columns(entity: Entity) -> impl Iterator<Item = &'static str> {
    entity.def().columns().filter(|f| is_term_field(f)).map(|f| f.name)
}

/// Whether a value gets a token of its own (`tokens_expr`'s `fits`).
fn fits(v: &str) -> bool {
    (1..=MAX_CHARS).contains(&v.chars().count())
}

/// The tokens of a live row on PostgreSQL, those whose `source` finds it (lowercase; for
/// text values what `tokens_expr` makes on SQLite): `column` gives a built-in column's
/// text (`term_columns`), `tags` and `custom` the row's JSON.
pub(super) fn tokens_of(
    entity: Entity,
    org_id: &str,
    column: impl Fn(&str) -> Option<String>,
    tags: Option<&str>,
    custom: Option<&str>,
) -> Vec<String> {
    use serde_json::Value;
    let org = hex_of(org_id);
    let mut out: Vec<String> = term_columns(entity)
        .map(|name| {
            let value = match column(name) {
                Some(v) if fits(&v) => hex_of(&v),
                Some(v) if !v.is_empty() => LONG.to_owned(),
                _ => MISSING.to_owned(),
            };
            token(&org, &builtin_key(name), &value)
        })
        .collect();
    // As `custom_values` holds them on PostgreSQL, which `source` reads (indexes.rs): text
    // and flags, each element of an array; and every tag as text, numbers too.
    let parse = |json: Option<&str>| json.and_then(|j| serde_json::from_str::<Value>(j).ok());
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let fitting = |v: Option<String>| v.filter(|s| fits(s)).map(|s| hex_of(&s));
    if let Some(Value::Array(tags)) = parse(tags) {
        let tag = |v: &Value| fitting(if let Value::Number(n) = v { Some(n.to_string()) } else { text(v) });
        out.extend(tags.iter().filter_map(tag).map(|v| token(&org, TAGS_KEY, &v)));
    }
    if let Some(Value::Object(custom)) = parse(custom) {
        for (key, v) in &custom {
            let values = match v {
                Value::Array(options) => options.iter().filter_map(|o| fitting(text(o))).collect(),
                v => fitting(text(v)).into_iter().collect::<Vec<_>>(),
            };
            out.extend(values.iter().map(|v| token(&org, key, v)));
        }
    }
    out
}

/// The PostgreSQL query of a token's matches, the records' `rn`, and its binds: a built-in
/// column through its sort index's key, a tag or custom value through `custom_values`.
/// `None`: not a token of `entity`.
pub(super) fn source(entity: Entity, token: &str) -> Option<(String, Vec<SqlValue>)> {
    let mut parts = token.split('x');
    let (org, key, value_part) = (parts.next()?, parts.next()?, parts.next()?);
    let unhex = |h: &str| String::from_utf8(hex::decode(h).ok()?).ok();
    let (org, key) = (unhex(org)?, unhex(key)?);
    let t = table(entity);
    if let Some(name) = key.strip_prefix('.') {
        let f = entity.def().columns().find(|f| f.name == name && is_term_field(f))?;
        let live = format!("SELECT rn FROM {t} WHERE org_id = $1 AND deleted_at IS NULL AND ");
        let name = f.name;
        // A sortable column's index is on its sort key; another's, if any, on the column.
        let (value, missing) = if f.indexed() {
            (format!("COALESCE({name}, '')"), format!("COALESCE({name}, '') = ''"))
        } else {
            (name.to_owned(), format!("({name} IS NULL OR {name} = '')"))
        };
        return Some(match value_part {
            MISSING => (format!("{live}{missing}"), vec![org.into()]),
            LONG => (format!("{live}length({name}) > {MAX_CHARS}"), vec![org.into()]),
            v => (format!("{live}{value} = $2"), vec![org.into(), unhex(v)?.into()]),
        });
    }
    let sql = format!(
        "SELECT r.rn FROM custom_values v JOIN {t} r ON r.id = v.record_id \
         WHERE v.entity = $1 AND v.key = $2 AND v.t = $3 AND r.org_id = $4 AND r.deleted_at IS NULL"
    );
    Some((sql, vec![entity.as_str().into(), key.into(), unhex(value_part)?.into(), org.into()]))
}

/// `filter` with each value-table condition as its test on the row's JSON: what a few
/// candidate rows are checked against.
pub(super) fn on_rows(filter: &[Predicate]) -> Vec<Predicate> {
    filter
        .iter()
        .map(|p| match p {
            Predicate::CustomValue { json, .. } => (**json).clone(),
            Predicate::All(ps) => Predicate::All(on_rows(ps)),
            Predicate::Any(ps) => Predicate::Any(on_rows(ps)),
            other => other.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ColKind;

    fn title(v: &str) -> Predicate {
        let col = Col::Builtin { name: "title", kind: ColKind::Text, indexed: true };
        Predicate::Compare { col, op: CmpOp::Eq, value: SqlValue::Text(v.into()) }
    }

    fn tag(values: &[&str]) -> Predicate {
        let p =
            Predicate::TagsAny { custom: None, values: values.iter().map(|v| v.to_string()).collect(), negate: false };
        p.on_value_table(Entity::Contact, TAGS_KEY)
    }

    #[test]
    fn equalities_and_tags_combine_into_one_query() {
        let org = OrgId::from("o1");
        let m = matcher(&org, Entity::Contact, &[title("CTO"), tag(&["lead", "vip"])]).unwrap();
        assert!(m.whole);
        let (o, t, g) = (hex_of("o1"), hex_of(".title"), hex_of(TAGS_KEY));
        let tok = |k: &str, v: &str| Terms::Token(format!("{o}x{k}x{}", hex_of(v)).to_ascii_lowercase());
        let expected = Terms::All(vec![tok(&t, "CTO"), Terms::Any(vec![tok(&g, "lead"), tok(&g, "vip")])]);
        assert_eq!(m.terms, expected);
        assert_eq!(m.terms.tokens().len(), 3);
    }

    #[test]
    fn a_rows_tokens_are_what_its_conditions_ask_for() {
        let org = OrgId::from("o1");
        let custom = r#"{"tier": "gold", "vip": true, "langs": ["en", 7, "fr"], "score": 3, "note": ""}"#;
        let long = "x".repeat(201);
        let column = |name: &str| match name {
            "title" => Some("CTO".to_owned()),
            "first_name" => Some(long.clone()),
            _ => None,
        };
        let got = tokens_of(Entity::Contact, "o1", column, Some(r#"["lead", ""]"#), Some(custom));
        let asked = |p: Predicate| match matcher(&org, Entity::Contact, &[p]).unwrap().terms {
            Terms::Token(t) => t,
            other => panic!("{other:?}"),
        };
        assert!(got.contains(&asked(title("CTO"))));
        assert!(got.contains(&asked(tag(&["lead"]))));
        assert!(got.contains(&column_token(&org, "title", Some("CTO")).unwrap()));
        assert!(got.contains(&column_token(&org, "company_id", None).unwrap()), "a missing value has its mark");
        let (prefix, _) = column_tokens(&org, Entity::Contact, "first_name").unwrap();
        assert!(got.iter().any(|t| column_value(t, &prefix) == Some(ColumnValue::TooLong)), "a long value its own");
        let value = |k: &str, v: &str| token(&hex_of("o1"), k, &hex_of(v));
        for (k, v) in [("tier", "gold"), ("vip", "true"), ("langs", "en"), ("langs", "fr")] {
            assert!(got.contains(&value(k, v)), "{k} = {v}");
        }
        assert!(!got.iter().any(|t| *t == value("score", "3") || *t == value("note", "")), "numbers and blanks: none");
        // Each token names where PostgreSQL finds its matches.
        let (sql, binds) = source(Entity::Contact, &asked(title("CTO"))).unwrap();
        assert!(sql.contains("COALESCE(title, '') = $2"), "{sql}");
        assert_eq!(binds[1], SqlValue::Text("CTO".into()));
        let (sql, binds) = source(Entity::Contact, &value("langs", "fr")).unwrap();
        assert!(sql.contains("custom_values"), "{sql}");
        assert_eq!(binds[1..3], [SqlValue::Text("langs".into()), SqlValue::Text("fr".into())]);
        assert!(source(Entity::Contact, &value(".search", "x")).is_none(), "only columns with terms");
    }

    #[test]
    fn what_the_terms_do_not_hold_stays_with_the_rows() {
        let org = OrgId::from("o1");
        let email = Predicate::Compare {
            col: Col::Builtin { name: "email", kind: ColKind::Text, indexed: true },
            op: CmpOp::Eq,
            value: SqlValue::Text("a@b.c".into()),
        };
        let m = matcher(&org, Entity::Contact, &[title("CTO"), email.clone()]).unwrap();
        assert!(!m.whole);
        assert!(matcher(&org, Entity::Contact, &[email]).is_none());
        assert!(matcher(&org, Entity::Contact, &[title("")]).is_none(), "an empty value is also a missing one");
        assert!(matcher(&org, Entity::Contact, &[title(&"x".repeat(201))]).is_none());
        let ne = Predicate::Any(vec![
            title("CTO"),
            Predicate::Null { col: Col::Builtin { name: "title", kind: ColKind::Text, indexed: true }, negate: false },
        ]);
        assert!(matcher(&org, Entity::Contact, &[ne]).is_none());
    }
}
