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
//! `CREATE … IF NOT EXISTS` makes this a few catalog lookups on every start.

use rapport_tools::Entity;

use super::query::{Col, SortExpr, Sql, col_kind, table};
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
            format!(
                "CREATE INDEX IF NOT EXISTS {t}_by_{name} ON {t} (org_id, {keys}, id) WHERE deleted_at IS NULL",
                name = f.name,
                keys = keys.text
            )
        })
        .collect()
}

/// Indexes of earlier releases that the ones above replace.
fn replaced_indexes(entity: Entity) -> Vec<String> {
    let t = table(entity);
    let fields = entity.def().fields.iter().filter(|f| f.indexed());
    fields.flat_map(|f| ["sort", "live"].map(|was| format!("DROP INDEX IF EXISTS {t}_{was}_{}", f.name))).collect()
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

impl Store {
    /// Creates whatever derived index is missing; a new search index is filled from the
    /// table at once.
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
                }
                Dialect::Postgres => {
                    if let Some(ops) = &trgm_ops {
                        let ddl = format!("CREATE INDEX IF NOT EXISTS {t}_search_trgm ON {t} USING gin (search {ops})");
                        tx.execute(&ddl, &[]).await?;
                    }
                }
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
            let schema = tx.fetch_one(sql, &[]).await.ok()??.need_text(0).ok()?;
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
