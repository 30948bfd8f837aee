//! Indexes built after a large load rather than row by row (SQLite). Inserting a row into an
//! index keyed at random (names, emails, companies) costs a page read and a page write once
//! the index outgrows the cache; building the index afterwards sorts once. A million
//! contacts imported with every index took 205 s, with the indexes built at the end 91 s.
//!
//! What is set aside is written to `deferred_indexes` (migration 0017) in the transaction
//! that drops it, so an import killed half way loses nothing: the next process to open the
//! database builds them back (`Store::connect`). Queries stay correct without them, only
//! slower, and free-text search keeps its index throughout.

use rapport_tools::Entity;

use super::db::WRITE_CACHE_KIB;
use super::query::table;
use super::{Dialect, Store, StoreResult};

impl Store {
    /// Sets aside the indexes of `entity`'s table for a load of `rows` rows, when the table
    /// holds fewer than a quarter as many: unique indexes and those led (after `org_id`) by
    /// a field in `keep`, which the load looks rows up by, stay. The value table the rows'
    /// custom fields and tags go to (`custom_values`) sets aside its two value indexes on the
    /// same terms; the one by record, which its triggers read, stays. Answers whether any
    /// index was set aside; `Store::restore_indexes` builds them back. SQLite only:
    /// PostgreSQL locks a table for the length of a `CREATE INDEX`.
    pub async fn defer_indexes(&self, entity: Entity, rows: u64, keep: &[&str]) -> StoreResult<bool> {
        if self.dialect() != Dialect::Sqlite || rows == 0 {
            return Ok(false);
        }
        let mut tx = self.begin().await?;
        let mut set_aside = 0;
        let quarter = (rows / 4) as i64;
        for (t, keep) in [(table(entity), keep), ("custom_values", &["record_id"][..])] {
            let sql = format!("SELECT COUNT(*) FROM (SELECT 1 FROM {t} LIMIT $1)");
            if tx.scalar(&sql, &[quarter.into()]).await? >= quarter {
                continue;
            }
            // Indexes made by CREATE INDEX (not by a key or UNIQUE constraint), not unique,
            // with their second column (NULL for an expression).
            let sql = format!(
                "SELECT l.name AS name, m.sql AS ddl, \
                 (SELECT i.name FROM pragma_index_info(l.name) i WHERE i.seqno = 1) AS second \
                 FROM pragma_index_list('{t}') l JOIN sqlite_master m ON m.name = l.name \
                 WHERE l.origin = 'c' AND l.\"unique\" = 0 AND m.sql IS NOT NULL ORDER BY l.name"
            );
            for mut row in tx.fetch(&sql, &[]).await? {
                let (Some(name), Some(ddl)) = (row.text("name")?, row.text("ddl")?) else { continue };
                if row.text("second")?.is_some_and(|c| keep.contains(&c.as_str())) {
                    continue;
                }
                tx.execute(
                    "INSERT INTO deferred_indexes (name, ddl) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
                    &[name.as_str().into(), ddl.into()],
                )
                .await?;
                tx.execute(&format!("DROP INDEX \"{name}\""), &[]).await?;
                set_aside += 1;
            }
        }
        tx.commit().await?;
        Ok(set_aside > 0)
    }

    /// Builds back every index set aside by `defer_indexes`, one transaction each so that
    /// other writes go on between them.
    pub async fn restore_indexes(&self) -> StoreResult<()> {
        if self.dialect() != Dialect::Sqlite {
            return Ok(());
        }
        loop {
            let mut tx = self.begin().await?;
            let Some(mut row) =
                tx.fetch_one("SELECT name, ddl FROM deferred_indexes ORDER BY name LIMIT 1", &[]).await?
            else {
                return Ok(());
            };
            let (name, ddl) = (row.text("name")?.unwrap_or_default(), row.text("ddl")?.unwrap_or_default());
            // Another process may have built it back already.
            if tx.scalar("SELECT COUNT(*) FROM sqlite_master WHERE name = $1", &[name.as_str().into()]).await? == 0 {
                // The sort that builds an index takes as much memory as the page cache may,
                // on top of it: a smaller cache meanwhile keeps the process's peak where the
                // import had it.
                tx.execute(&format!("PRAGMA cache_size = -{}", WRITE_CACHE_KIB / 4), &[]).await?;
                let built = tx.execute(&ddl, &[]).await;
                tx.execute(&format!("PRAGMA cache_size = -{WRITE_CACHE_KIB}"), &[]).await?;
                built?;
            }
            tx.execute("DELETE FROM deferred_indexes WHERE name = $1", &[name.into()]).await?;
            tx.commit().await?;
        }
    }
}
