//! Indexes derived from the entity descriptions, so that every entity, and every field
//! marked sortable, gets them the same way without a migration per field:
//!
//! - one per sortable column, on `(org_id, <sort key>, id)` of the live rows (`WHERE
//!   deleted_at IS NULL`, as every search and count says), where the sort key is the very
//!   expression `ORDER BY`, the keyset cursor and comparisons on the column use
//!   (`Sql::sort_expr`): the first page and page 1,000 are both an index walk, and counting
//!   the rows that equal a value reads the index alone;
//! - a trigram index on each table's `search` text, which free-text search (`cme` finds
//!   Acme) uses: an FTS5 `trigram` table kept by triggers on SQLite, `pg_trgm` on
//!   PostgreSQL.
//!
//! - on SQLite, the equality terms of each table's live records (`terms.rs`), which
//!   conditions on several fields at once use, and on both the log of the records whose
//!   terms may have changed, which the bitmaps held in memory follow (`bitmaps.rs`);
//! - triggers that keep `custom_values` (migration 0005), the typed value of each custom
//!   field and each built-in tag (under `TAGS_KEY`), in step with each table's `custom` and
//!   `tags` JSON, so that filters on them are index ranges.
//!
//! `CREATE … IF NOT EXISTS` makes this a few catalog lookups on every start.

use rapport_tools::Entity;

use super::query::{Col, SortExpr, Sql, TAGS_KEY, col_kind, table};
use super::{Dialect, Store, StoreResult};

/// The statements that create the indexes of `entity` (without the trigram index on
/// PostgreSQL, whose operator class is looked up first).
pub fn sort_indexes(dialect: Dialect, entity: Entity) -> Vec<String> {
    let t = table(entity);
    entity
        .def()
        .fields
        .iter()
        .filter(|f| f.indexed())
        .map(|f| {
            // The order `Schema::parse_sort` gives: the field, then age, then id.
            let mut keys = Sql::new(dialect);
            let col = Col::Builtin { name: f.name, kind: col_kind(f.ty), indexed: true };
            keys.sort_expr(&SortExpr { field: f.name.to_owned(), col, desc: false });
            if f.name != "created_at" {
                keys.push(", ");
                keys.sort_expr(&SortExpr::created_at(false));
            }
            let (index, keys) = (sort_index(entity, f), keys.text);
            if f.window {
                // Counts over a range of it, narrowed and grouped by the fields that sort
                // records into a few kinds, read this index alone.
                let held = window_held(entity).join(", ");
                format!(
                    "CREATE INDEX IF NOT EXISTS {index} ON {t} (org_id, {keys}, id, {held}) WHERE deleted_at IS NULL"
                )
            } else {
                format!("CREATE INDEX IF NOT EXISTS {index} ON {t} (org_id, {keys}, id) WHERE deleted_at IS NULL")
            }
        })
        .collect()
}

/// The name of the index on `field`'s sort key (an indexed field of `entity`).
pub fn sort_index(entity: Entity, field: &rapport_tools::Field) -> String {
    let kind = if field.window { "window" } else { "by" };
    format!("{}_{kind}_{}", table(entity), field.name)
}

/// The columns a window index holds besides its key: those that group records into a few
/// kinds (selects, flags, people, a parent record).
fn window_held(entity: Entity) -> Vec<&'static str> {
    use rapport_tools::FieldType as T;
    let kinds = |f: &&rapport_tools::Field| matches!(f.ty, T::Select | T::Boolean | T::User | T::Relation);
    entity.def().columns().filter(kinds).map(|f| f.name).collect()
}

/// Indexes of earlier releases that the ones above replace.
fn replaced_indexes(entity: Entity) -> Vec<String> {
    let t = table(entity);
    let fields = entity.def().fields.iter().filter(|f| f.indexed());
    let was = |f: &rapport_tools::Field| if f.window { &["sort", "live", "by"][..] } else { &["sort", "live"][..] };
    fields.flat_map(|f| was(f).iter().map(move |was| format!("DROP INDEX IF EXISTS {t}_{was}_{}", f.name))).collect()
}

/// FTS5 over the `search` column, sharing the table's rowids (external content: the text
/// is not stored twice), and the triggers that keep it in step.
fn sqlite_search_index(t: &str) -> [String; 4] {
    [
        format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS {t}_search USING fts5(search, content='{t}', content_rowid='rowid', \
             tokenize='trigram')"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {t}_search_insert AFTER INSERT ON {t} BEGIN \
             INSERT INTO {t}_search (rowid, search) VALUES (new.rowid, new.search); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {t}_search_delete AFTER DELETE ON {t} BEGIN \
             INSERT INTO {t}_search ({t}_search, rowid, search) VALUES ('delete', old.rowid, old.search); END"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {t}_search_update AFTER UPDATE OF search ON {t} BEGIN \
             INSERT INTO {t}_search ({t}_search, rowid, search) VALUES ('delete', old.rowid, old.search); \
             INSERT INTO {t}_search (rowid, search) VALUES (new.rowid, new.search); END"
        ),
    ]
}

/// Inserts the `custom_values` rows of the `custom` JSON of `src`, a row of `entity`'s
/// table: one per value, one per option of a multi-select, typed. `from` introduces `src`
/// (empty in a trigger, where `src` is `new`).
fn custom_value_insert(dialect: Dialect, entity: Entity, src: &str, from: &str) -> String {
    let e = entity.as_str();
    let rows = match dialect {
        Dialect::Sqlite => format!(
            "SELECT '{e}', {src}.id, f.key, \
             CASE f.type WHEN 'text' THEN f.value WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' END, \
             CASE f.type WHEN 'integer' THEN f.value WHEN 'real' THEN f.value \
             WHEN 'object' THEN CAST(json_extract(f.value, '$.amount') AS REAL) END \
             FROM {from}json_each({src}.custom) f WHERE f.type NOT IN ('array', 'null') \
             UNION ALL SELECT '{e}', {src}.id, f.key, o.value, NULL FROM {from}json_each({src}.custom) f, \
             json_each(f.value) o WHERE f.type = 'array' AND o.type = 'text'"
        ),
        Dialect::Postgres => format!(
            "SELECT '{e}', {src}.id, f.key, \
             CASE jsonb_typeof(x.v) WHEN 'string' THEN x.v #>> '{{}}' WHEN 'boolean' THEN x.v::text END, \
             CASE jsonb_typeof(x.v) WHEN 'number' THEN (x.v #>> '{{}}')::double precision \
             WHEN 'object' THEN (x.v ->> 'amount')::double precision END \
             FROM {from}jsonb_each({src}.custom::jsonb) f CROSS JOIN LATERAL jsonb_array_elements(\
             CASE jsonb_typeof(f.value) WHEN 'array' THEN f.value ELSE jsonb_build_array(f.value) END) AS x(v) \
             WHERE jsonb_typeof(x.v) <> 'null'"
        ),
    };
    let tags = if has_tags(entity) {
        match dialect {
            Dialect::Sqlite => format!(
                " UNION ALL SELECT '{e}', {src}.id, '{TAGS_KEY}', g.value, NULL FROM {from}json_each({src}.tags) g \
                 WHERE g.type = 'text'"
            ),
            Dialect::Postgres => format!(
                " UNION ALL SELECT '{e}', {src}.id, '{TAGS_KEY}', g.v, NULL FROM {from}jsonb_array_elements_text(\
                 CASE jsonb_typeof({src}.tags::jsonb) WHEN 'array' THEN {src}.tags::jsonb ELSE '[]'::jsonb END) AS g(v)"
            ),
        }
    } else {
        String::new()
    };
    format!("INSERT INTO custom_values (entity, record_id, key, t, n) {rows}{tags}")
}

/// Whether `entity` has built-in tags, which `custom_values` holds under `TAGS_KEY`.
pub(super) fn has_tags(entity: Entity) -> bool {
    entity.def().fields.iter().any(|f| f.ty == rapport_tools::FieldType::Tags)
}

/// The triggers that keep `custom_values` in step with `entity`'s table (custom fields and
/// built-in tags), their name, and the statements that drop those of earlier releases
/// (custom fields only), which they replace.
fn custom_value_triggers(dialect: Dialect, entity: Entity) -> (String, Vec<String>, Vec<String>) {
    let (t, e) = (table(entity), entity.as_str());
    let insert = custom_value_insert(dialect, entity, "new", "");
    let forget = |row: &str| format!("DELETE FROM custom_values WHERE entity = '{e}' AND record_id = {row}.id");
    let of = if has_tags(entity) { "custom, tags" } else { "custom" };
    let name = format!("{t}_values");
    let (ddl, old) = match dialect {
        Dialect::Sqlite => (
            vec![
                format!("CREATE TRIGGER IF NOT EXISTS {name} AFTER INSERT ON {t} BEGIN {insert}; END"),
                format!(
                    "CREATE TRIGGER IF NOT EXISTS {name}_update AFTER UPDATE OF {of} ON {t} BEGIN {}; {insert}; END",
                    forget("old")
                ),
                format!("CREATE TRIGGER IF NOT EXISTS {name}_delete AFTER DELETE ON {t} BEGIN {}; END", forget("old")),
            ],
            ["", "_update", "_delete"].iter().map(|s| format!("DROP TRIGGER IF EXISTS {t}_custom_values{s}")).collect(),
        ),
        Dialect::Postgres => (
            vec![
                format!(
                    "CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN \
                     IF TG_OP <> 'INSERT' THEN {}; END IF; IF TG_OP <> 'DELETE' THEN {insert}; END IF; \
                     RETURN NULL; END $f$",
                    forget("OLD")
                ),
                format!(
                    "CREATE TRIGGER {name} AFTER INSERT OR DELETE OR UPDATE OF {of} ON {t} \
                     FOR EACH ROW EXECUTE FUNCTION {name}()"
                ),
            ],
            vec![
                format!("DROP TRIGGER IF EXISTS {t}_custom_values ON {t}"),
                format!("DROP FUNCTION IF EXISTS {t}_custom_values()"),
            ],
        ),
    };
    (name, ddl, old)
}

impl Store {
    /// Creates whatever derived index is missing; a new search index, or a value table
    /// newly kept by triggers, is filled from the table at once.
    pub async fn ensure_indexes(&self) -> StoreResult<()> {
        let dialect = self.dialect();
        let mut tx = self.begin().await?;
        if dialect == Dialect::Postgres {
            // Processes starting together would race on the same index names.
            tx.execute("SELECT pg_advisory_xact_lock(7231048817)", &[]).await?;
        }
        let trgm_ops = match dialect {
            Dialect::Postgres => self.trigram_opclass(&mut tx).await,
            Dialect::Sqlite => None,
        };
        for entity in Entity::ALL.iter().copied() {
            let t = table(entity);
            for ddl in replaced_indexes(entity).into_iter().chain(sort_indexes(dialect, entity)) {
                tx.execute(&ddl, &[]).await?;
            }
            match dialect {
                Dialect::Sqlite => {
                    let exists = tx
                        .scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = $1", &[format!("{t}_search").into()])
                        .await?;
                    for ddl in sqlite_search_index(t) {
                        tx.execute(&ddl, &[]).await?;
                    }
                    if exists == 0 {
                        tx.execute(&format!("INSERT INTO {t}_search ({t}_search) VALUES ('rebuild')"), &[]).await?;
                    }
                    let kept = tx
                        .scalar(
                            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = $1",
                            &[super::terms::trigger_name(entity).into()],
                        )
                        .await?;
                    if kept == 0 {
                        let started = std::time::Instant::now();
                        let (create, dropped) = super::terms::ddl(entity);
                        for ddl in dropped.into_iter().chain(create).chain(super::terms::refill(entity)) {
                            tx.execute(&ddl, &[]).await?;
                        }
                        tracing::info!(table = t, ms = started.elapsed().as_millis() as u64, "equality terms indexed");
                    }
                    for ddl in super::terms::log_ddl(dialect, entity) {
                        tx.execute(&ddl, &[]).await?;
                    }
                }
                Dialect::Postgres => {
                    if let Some(ops) = &trgm_ops {
                        let ddl = format!("CREATE INDEX IF NOT EXISTS {t}_search_trgm ON {t} USING gin (search {ops})");
                        tx.execute(&ddl, &[]).await?;
                    }
                    let kept = tx
                        .scalar(
                            "SELECT COUNT(*) FROM pg_trigger WHERE tgname = $1 AND tgrelid = to_regclass($2)",
                            &[super::terms::log_trigger(entity).into(), t.into()],
                        )
                        .await?;
                    if kept == 0 {
                        for ddl in super::terms::log_ddl(dialect, entity) {
                            tx.execute(&ddl, &[]).await?;
                        }
                    }
                }
            }
            let (name, triggers, replaced) = custom_value_triggers(dialect, entity);
            let exists = match dialect {
                Dialect::Sqlite => "SELECT COUNT(*) FROM sqlite_master WHERE type = 'trigger' AND name = $1",
                Dialect::Postgres => "SELECT COUNT(*) FROM pg_trigger WHERE tgname = $1 AND tgrelid = to_regclass($2)",
            };
            let binds = [name.as_str().into(), t.into()];
            let binds = if dialect == Dialect::Sqlite { &binds[..1] } else { &binds[..] };
            if tx.scalar(exists, binds).await? == 0 {
                for ddl in replaced.into_iter().chain(triggers) {
                    tx.execute(&ddl, &[]).await?;
                }
                let e = entity.as_str();
                tx.execute(&format!("DELETE FROM custom_values WHERE entity = '{e}'"), &[]).await?;
                let from = match dialect {
                    Dialect::Sqlite => format!("{t} AS src, "),
                    Dialect::Postgres => format!("{t} AS src CROSS JOIN LATERAL "),
                };
                tx.execute(&custom_value_insert(dialect, entity, "src", &from), &[]).await?;
            }
        }
        tx.commit().await
    }

    /// `pg_trgm`'s operator class, qualified by the schema the extension lives in (it is
    /// per database, and may sit outside this schema's search path); `None`, with a
    /// warning, where the extension cannot be installed.
    async fn trigram_opclass(&self, tx: &mut super::Tx) -> Option<String> {
        async fn find(tx: &mut super::Tx) -> Option<String> {
            let sql = "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
                       WHERE e.extname = 'pg_trgm'";
            let schema = tx.fetch_one(sql, &[]).await.ok()??.need_text("nspname").ok()?;
            Some(format!("\"{schema}\".gin_trgm_ops"))
        }
        if let Some(ops) = find(tx).await {
            return Some(ops);
        }
        // Its own transaction: a failure must not abort the one creating the indexes.
        let created = async {
            let mut own = self.begin().await?;
            own.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm", &[]).await?;
            own.commit().await
        };
        if let Err(e) = created.await {
            tracing::warn!(error = %e, "pg_trgm is not available: free-text search will scan instead of using an index");
            return None;
        }
        find(tx).await
    }
}
