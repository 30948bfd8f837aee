//! The equality terms' matches held in memory as compressed bitmaps of row numbers (the
//! rowid on SQLite, `rn` on PostgreSQL).
//!
//! FTS5 with `detail=none` merges two doclists by reading both whole: a quarter of a
//! million CTOs and as many `nurture` tags cost 20 ms to find that no record has both, a
//! grouped count one such merge per value, and a page of a dense pair 5 to 10 ms. As roaring
//! bitmaps the same intersection takes microseconds. Each token's bitmap is read from the
//! terms table the first time a query needs it, then kept, up to `BUDGET` bytes per table,
//! the least recently used going first.
//!
//! Writes reach it through `{table}_terms_log`, which triggers fill with the rowid of every
//! record whose terms may have changed, whichever process (or the CLI) wrote it. Before
//! each use the entries since the last are read, those records' bitmap bits cleared, and
//! their tokens computed again from their rows: a read sees every write committed before
//! it began, as reads of the rows do. On PostgreSQL sequence numbers are taken before
//! commit, so an entry may appear below one read already: each read also asks for the
//! entries that the snapshot of the one before did not see (`pg_visible_in_snapshot`),
//! which are all those that can still appear below.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, LazyLock};

use rapport_tools::Entity;
use roaring::RoaringBitmap;
use tokio::sync::Mutex;

use super::query::table;
use super::terms::{self, Terms};
use super::{Dialect, SqlValue, Store, StoreResult};

/// The bytes one table's bitmaps may hold, about (a million records: a title or a tag
/// held by a quarter of them is 130 KB).
const BUDGET: usize = 32 << 20;

/// More changes than this since a table's bitmaps were last brought up to date: they are
/// dropped and read again as needed, rather than patched.
const MAX_PATCH: usize = 5_000;

/// The most tokens one query may read that are not held yet (a `group_by` of up to 1,000
/// values with its filter); more, and the rows answer it instead.
const MAX_LOADS: usize = 1_100;

/// What an entry costs besides its bitmap: the map's slot, its key's allocation.
const ENTRY_BYTES: usize = 100;

/// Log entries kept behind the newest; a process further behind reads its bitmaps again.
pub(super) const LOG_KEPT: i64 = 100_000;

/// Row numbers per block of the age bounds (`Store::newest_below`): 2^8.
const BLOCK_BITS: u32 = 8;

/// The last block of row numbers that fit in 32 bits, as the bitmaps' do.
const MAX_BLOCK: usize = (u32::MAX >> BLOCK_BITS) as usize;

/// The block of the age bounds that holds row number `rid`, if it fits.
fn block_of(rid: i64) -> Option<usize> {
    usize::try_from(rid >> BLOCK_BITS).ok().filter(|b| *b <= MAX_BLOCK)
}

/// Each table's bitmaps, in one process.
pub(super) struct TermBitmaps {
    tables: HashMap<Entity, Mutex<Cache>>,
}

impl TermBitmaps {
    pub fn new() -> TermBitmaps {
        TermBitmaps { tables: Entity::ALL.iter().map(|e| (*e, Mutex::new(Cache::default()))).collect() }
    }
}

#[derive(Default)]
struct Cache {
    /// The last log entry applied.
    seq: i64,
    /// PostgreSQL: the snapshot of the last read of the log (`pg_snapshot` as text): the
    /// entries it did not see may lie below `seq`.
    pending: String,
    tokens: HashMap<String, Entry>,
    bytes: usize,
    /// Counts uses, for least-recently-used eviction.
    clock: u64,
    /// A rowid past 32 bits: this table is left to FTS5.
    unusable: bool,
    /// Per block of row numbers, the newest age (`created_at`) of a live row in it, or
    /// above: raised by every change the log names, never lowered (a trashed row leaves
    /// it as it was), so a bound (`Store::newest_below`).
    ages: Option<Vec<i64>>,
}

struct Entry {
    bits: Arc<RoaringBitmap>,
    bytes: usize,
    used: u64,
}

impl Cache {
    fn clear(&mut self) {
        self.tokens.clear();
        self.bytes = 0;
        self.ages = None;
    }

    /// Whether it holds nothing the log must keep up to date.
    fn idle(&self) -> bool {
        self.tokens.is_empty() && self.ages.is_none()
    }

    fn raise_age(&mut self, rid: i64, age: i64) {
        let (Some(ages), Some(block)) = (self.ages.as_mut(), block_of(rid)) else {
            return;
        };
        if ages.len() <= block {
            ages.resize(block + 1, i64::MIN);
        }
        ages[block] = ages[block].max(age);
    }

    /// Drops the least recently used bitmaps until within the budget, never one used now.
    fn evict(&mut self, now: u64) {
        if self.bytes <= BUDGET {
            return;
        }
        let mut by_age: Vec<(u64, String)> =
            self.tokens.iter().filter(|(_, e)| e.used < now).map(|(t, e)| (e.used, t.clone())).collect();
        by_age.sort_unstable();
        for (_, token) in by_age {
            if self.bytes <= BUDGET {
                break;
            }
            if let Some(e) = self.tokens.remove(&token) {
                self.bytes -= e.bytes;
            }
        }
    }
}

/// The bitmaps of the tokens a query named, as they were when it asked.
pub(super) struct Snapshot(HashMap<String, Arc<RoaringBitmap>>);

static EMPTY: LazyLock<RoaringBitmap> = LazyLock::new(RoaringBitmap::new);

impl Snapshot {
    /// The rowids of the live records that hold `token`.
    pub fn get(&self, token: &str) -> &RoaringBitmap {
        self.0.get(token).map_or(&EMPTY, |b| b.as_ref())
    }

    /// The rowids of the live records that meet `terms`.
    pub fn eval(&self, terms: &Terms) -> RoaringBitmap {
        match terms {
            Terms::Token(t) => self.get(t).clone(),
            Terms::Any(ts) => ts.iter().fold(RoaringBitmap::new(), |mut acc, t| {
                match t {
                    Terms::Token(t) => acc |= self.get(t),
                    other => acc |= self.eval(other),
                }
                acc
            }),
            Terms::All(ts) => {
                let mut parts: Vec<RoaringBitmap> = ts.iter().map(|t| self.eval(t)).collect();
                parts.sort_unstable_by_key(RoaringBitmap::len);
                let mut parts = parts.into_iter();
                let mut acc = parts.next().unwrap_or_default();
                for p in parts {
                    if acc.is_empty() {
                        break;
                    }
                    acc &= p;
                }
                acc
            }
        }
    }
}

/// A rowid as a bitmap holds it.
pub(super) fn bit(rowid: i64) -> Option<u32> {
    u32::try_from(rowid).ok()
}

impl Store {
    /// The bitmaps of `tokens` in `entity`'s terms, up to date. `None` when the table's row
    /// numbers do not fit in 32 bits.
    pub(super) async fn bitmaps(&self, entity: Entity, tokens: &[&str]) -> StoreResult<Option<Snapshot>> {
        let Some(cache) = self.bitmaps.tables.get(&entity) else {
            return Ok(None);
        };
        let mut cache = cache.lock().await;
        self.bring_up_to_date(entity, &mut cache).await?;
        if cache.unusable {
            return Ok(None);
        }
        let missing: Vec<&str> = tokens.iter().copied().filter(|t| !cache.tokens.contains_key(*t)).collect();
        if missing.len() > MAX_LOADS {
            return Ok(None);
        }
        for &token in &missing {
            let Some(bits) = self.load(entity, token).await? else {
                cache.unusable = true;
                cache.clear();
                return Ok(None);
            };
            let bytes = entry_size(token, &bits);
            cache.bytes += bytes;
            cache.tokens.insert(token.to_owned(), Entry { bits: Arc::new(bits), bytes, used: 0 });
        }
        // Each read has a snapshot of its own: a record changed between the catch-up and a
        // load would be in its new state there and in its old one in the bitmaps held. The
        // log has it, so a second catch-up puts it in its new state everywhere.
        if !missing.is_empty() {
            self.bring_up_to_date(entity, &mut cache).await?;
            if cache.unusable {
                return Ok(None);
            }
        }
        cache.clock += 1;
        let now = cache.clock;
        let mut out = HashMap::with_capacity(tokens.len());
        for &token in tokens {
            if let Some(e) = cache.tokens.get_mut(token) {
                e.used = now;
                out.insert(token.to_owned(), e.bits.clone());
            }
        }
        cache.evict(now);
        Ok(Some(Snapshot(out)))
    }

    /// One token's matches (from the terms table on SQLite); `None`: a row number past 32
    /// bits.
    async fn load(&self, entity: Entity, token: &str) -> StoreResult<Option<RoaringBitmap>> {
        let t = table(entity);
        match self.dialect() {
            Dialect::Sqlite => {
                let sql = format!("SELECT rowid FROM {t}_terms WHERE {t}_terms MATCH $1");
                self.db.scan_bits(&sql, &[SqlValue::Text(terms::token_query(token))]).await
            }
            Dialect::Postgres => match terms::source(entity, token) {
                Some((sql, binds)) => self.db.scan_bits(&sql, &binds).await,
                None => Err(super::StoreError::Corrupt(format!("{token} is not a term of {}", entity.as_str()))),
            },
        }
    }

    /// The records the log names since the last read, and where it now stands; `None` when
    /// the bitmaps were dropped instead (too far behind, or the log cut past them).
    async fn read_log(&self, entity: Entity, cache: &mut Cache) -> StoreResult<Option<BTreeSet<i64>>> {
        let t = table(entity);
        if self.dialect() == Dialect::Sqlite {
            let sql = format!(
                "SELECT rowid AS seq, rid FROM {t}_terms_log WHERE rowid > $1 ORDER BY rowid LIMIT {}",
                MAX_PATCH + 1
            );
            let mut entries = Vec::new();
            for mut r in self.db.fetch(&sql, &[SqlValue::Int(cache.seq)]).await? {
                entries.push((r.need_int("seq")?, r.need_int("rid")?));
            }
            let Some(&(last, _)) = entries.last() else {
                return Ok(Some(BTreeSet::new()));
            };
            // Too far behind, or the log was cut past where these stopped (it has no gaps).
            if entries.len() > MAX_PATCH || entries[0].0 != cache.seq + 1 {
                return Ok(None);
            }
            cache.seq = last;
            return Ok(Some(entries.into_iter().map(|(_, rid)| rid).collect()));
        }
        // One statement, so that the snapshot it reports is the one it read under. A
        // transaction may hold an entry below `seq` whether or not the snapshot lists it
        // (one with an id past the snapshot's `xmax` is running too): what it did not see.
        let sql = format!(
            "SELECT pg_current_snapshot()::text AS snap, \
             EXISTS (SELECT 1 FROM {t}_terms_log WHERE seq = $1) AS kept, \
             COALESCE((SELECT upto FROM terms_log_cuts WHERE tbl = '{t}') >= \
             CAST(CAST(pg_snapshot_xmin(CAST(NULLIF($2, '') AS pg_snapshot)) AS text) AS bigint), false) AS unseen_cut, \
             (SELECT json_agg(json_build_array(seq, rid))::text FROM (SELECT seq, rid FROM {t}_terms_log \
             WHERE seq > $1 OR (xid >= pg_snapshot_xmin(CAST(NULLIF($2, '') AS pg_snapshot)) \
             AND NOT pg_visible_in_snapshot(xid, CAST(NULLIF($2, '') AS pg_snapshot))) \
             ORDER BY seq LIMIT {}) e) AS entries",
            MAX_PATCH + 1
        );
        let binds = [SqlValue::Int(cache.seq), cache.pending.as_str().into()];
        let mut r = self.db.fetch_one(&sql, &binds).await?.ok_or(super::StoreError::NotFound)?;
        let entries: Vec<(i64, i64)> = match r.text("entries")? {
            Some(json) => serde_json::from_str(&json).map_err(|e| super::StoreError::Corrupt(e.to_string()))?,
            None => Vec::new(),
        };
        // Sequences have gaps (a rolled back write): a cut past the entries applied shows
        // as the last of them gone. (The log's first entry would say it too, but finding
        // it walks every entry cut and not vacuumed yet.)
        let cut = (cache.seq > 0 && !r.bool("kept")?) || r.bool("unseen_cut")?;
        cache.pending = r.need_text("snap")?;
        if entries.len() > MAX_PATCH || cut {
            return Ok(None);
        }
        cache.seq = entries.iter().map(|(seq, _)| *seq).fold(cache.seq, i64::max);
        Ok(Some(entries.into_iter().map(|(_, rid)| rid).collect()))
    }

    /// Applies the log entries since the last: the records they name lose their bits,
    /// then get those of the tokens their rows hold now.
    async fn bring_up_to_date(&self, entity: Entity, cache: &mut Cache) -> StoreResult<()> {
        if cache.idle() {
            return self.log_end(entity, cache).await;
        }
        let Some(rids) = self.read_log(entity, cache).await? else {
            cache.clear();
            return self.log_end(entity, cache).await;
        };
        if rids.is_empty() {
            return Ok(());
        }
        let Some(bits) = rids.iter().map(|r| bit(*r)).collect::<Option<Vec<u32>>>() else {
            cache.unusable = true;
            cache.clear();
            return Ok(());
        };
        // The log is read past these entries: failing now, the bitmaps must go.
        let rows = match self.row_tokens(entity, rids).await {
            Ok(rows) => rows,
            Err(e) => {
                cache.clear();
                return Err(e);
            }
        };
        // Only the bitmaps that change are written (and copied, if a query holds them).
        let mut touched = std::collections::HashSet::new();
        for (token, e) in cache.tokens.iter_mut() {
            if bits.iter().any(|r| e.bits.contains(*r)) {
                let b = Arc::make_mut(&mut e.bits);
                for &r in &bits {
                    b.remove(r);
                }
                touched.insert(token.clone());
            }
        }
        for (rid, age, tokens) in rows {
            cache.raise_age(rid, age);
            for token in tokens {
                if let (Some(e), Some(b)) = (cache.tokens.get_mut(&token), bit(rid)) {
                    Arc::make_mut(&mut e.bits).insert(b);
                    touched.insert(token);
                }
            }
        }
        for token in touched {
            if let Some(e) = cache.tokens.get_mut(&token) {
                let bytes = entry_size(&token, &e.bits);
                cache.bytes = cache.bytes - e.bytes + bytes;
                e.bytes = bytes;
            }
        }
        Ok(())
    }

    /// The age and the tokens (lowercase) of the live records among `rids` now, by row
    /// number.
    async fn row_tokens(&self, entity: Entity, rids: BTreeSet<i64>) -> StoreResult<Vec<(i64, i64, Vec<String>)>> {
        let t = table(entity);
        let rids: Vec<i64> = rids.into_iter().collect();
        let mut out = Vec::with_capacity(rids.len());
        if self.dialect() == Dialect::Sqlite {
            // The triggers' own expression, run off the runtime threads.
            let sql = format!(
                "SELECT src.rowid AS rid, {AGE} AS age, {} AS v FROM {t} AS src \
                 WHERE src.rowid IN (SELECT value FROM json_each($1)) AND src.deleted_at IS NULL",
                terms::row_tokens(entity)
            );
            let list = serde_json::Value::from(rids).to_string();
            for mut r in self.db.fetch_scan(&sql, &[SqlValue::Text(list)]).await? {
                let (rid, age) = (r.need_int("rid")?, r.need_int("age")?);
                let v = r.text("v")?.unwrap_or_default();
                let tokens = v.split(' ').filter(|s| !s.is_empty()).map(str::to_ascii_lowercase).collect();
                out.push((rid, age, tokens));
            }
            return Ok(out);
        }
        let columns: Vec<&str> = terms::term_columns(entity).collect();
        let tags = super::indexes::has_tags(entity);
        let mut select: Vec<String> = columns.iter().map(|c| format!("{c}::text AS {c}")).collect();
        select.extend(tags.then(|| "tags".to_owned()));
        let sql = format!(
            "SELECT rn, {AGE} AS age, org_id, custom, {} FROM {t} WHERE rn = ANY(CAST($1 AS bigint[])) \
             AND deleted_at IS NULL",
            select.join(", ")
        );
        let list = format!("{{{}}}", rids.iter().map(i64::to_string).collect::<Vec<_>>().join(","));
        for mut r in self.db.fetch(&sql, &[SqlValue::Text(list)]).await? {
            let (rid, age) = (r.need_int("rn")?, r.need_int("age")?);
            let values = columns.iter().map(|c| r.text(c)).collect::<StoreResult<Vec<_>>>()?;
            let column = |name: &str| columns.iter().position(|c| *c == name).and_then(|i| values[i].clone());
            let tags = if tags { r.text("tags")? } else { None };
            let tokens = terms::tokens_of(
                entity,
                &r.need_text("org_id")?,
                column,
                tags.as_deref(),
                r.text("custom")?.as_deref(),
            );
            out.push((rid, age, tokens));
        }
        Ok(out)
    }

    /// The newest age (`created_at`) of the live rows of `entity` in the blocks of row
    /// numbers wholly below `below`'s, or more, and where `below`'s block starts: rows are
    /// written in time order, so this says, without reading a row, that none of them is as
    /// new as a page's last (`records.rs`, `page_among`). The bounds are read once (one
    /// pass over the table), then kept from the log.
    pub(super) async fn newest_below(&self, entity: Entity, below: i64) -> StoreResult<(i64, i64)> {
        let from = (below >> BLOCK_BITS) << BLOCK_BITS;
        let Some(cache) = self.bitmaps.tables.get(&entity) else {
            return Ok((i64::MAX, from));
        };
        let mut cache = cache.lock().await;
        self.bring_up_to_date(entity, &mut cache).await?;
        if cache.ages.is_none() {
            let t = table(entity);
            let row = super::records::row_number(self.dialect());
            let sql = format!(
                "SELECT {row} >> {BLOCK_BITS} AS b, MAX({AGE}) AS m FROM {t} WHERE deleted_at IS NULL GROUP BY 1"
            );
            let rows = self.db.fetch_scan(&sql, &[]).await?;
            cache.ages = Some(Vec::new());
            for mut r in rows {
                let (first, m) = (r.need_int("b")? << BLOCK_BITS, r.need_int("m")?);
                // Past 32 bits: no bounds (a block left out would make them wrong).
                if block_of(first).is_none() {
                    cache.ages = None;
                    return Ok((i64::MAX, from));
                }
                cache.raise_age(first, m);
            }
            // Rows written since the catch-up above were missed by neither or both.
            self.bring_up_to_date(entity, &mut cache).await?;
        }
        let Some(ages) = &cache.ages else {
            return Ok((i64::MAX, from));
        };
        let blocks = usize::try_from(below >> BLOCK_BITS).unwrap_or(0);
        Ok((ages.iter().take(blocks).copied().max().unwrap_or(i64::MIN), from))
    }

    /// Starts `cache` where the log stands now, with nothing to apply.
    async fn log_end(&self, entity: Entity, cache: &mut Cache) -> StoreResult<()> {
        let t = table(entity);
        let sql = match self.dialect() {
            Dialect::Sqlite => format!("SELECT COALESCE(MAX(rowid), 0) AS n, '' AS snap FROM {t}_terms_log"),
            Dialect::Postgres => {
                format!("SELECT COALESCE(MAX(seq), 0) AS n, pg_current_snapshot()::text AS snap FROM {t}_terms_log")
            }
        };
        let mut r = self.db.fetch_one(&sql, &[]).await?.ok_or(super::StoreError::NotFound)?;
        cache.seq = r.need_int("n")?;
        cache.pending = r.need_text("snap")?;
        Ok(())
    }
}

/// A row's age as the age index sorts it (a missing one last).
const AGE: &str = "COALESCE(created_at, 9223372036854775807)";

fn entry_size(token: &str, b: &RoaringBitmap) -> usize {
    b.serialized_size() + token.len() + ENTRY_BYTES
}

/// The statements that cut each table's log towards its newest `LOG_KEPT` entries, 20,000
/// at a time, so that a cut after a large import holds the one writer briefly. PostgreSQL
/// then vacuums it: each cut would otherwise leave its entries for every later one to walk
/// past (and autovacuum may be off).
pub(super) fn log_upkeep(dialect: Dialect) -> Vec<String> {
    Entity::ALL
        .iter()
        .flat_map(|e| {
            let t = table(*e);
            let cut = format!(
                "DELETE FROM {t}_terms_log WHERE seq IN (SELECT seq FROM {t}_terms_log \
                 WHERE seq < (SELECT MAX(seq) FROM {t}_terms_log) - {LOG_KEPT} ORDER BY seq LIMIT 20000)"
            );
            let vacuum = (dialect == Dialect::Postgres).then(|| format!("VACUUM (SKIP_LOCKED) {t}_terms_log"));
            // Never an entry of a transaction still running: a reader that saw it in
            // progress reads it once it commits. One that committed may be cut before a
            // reader that saw it running reads again: the newest transaction cut is kept,
            // and such a reader drops its bitmaps (`read_log`).
            let cut = match dialect {
                Dialect::Sqlite => cut,
                Dialect::Postgres => format!(
                    "WITH gone AS ({} RETURNING xid) INSERT INTO terms_log_cuts (tbl, upto) \
                     SELECT '{t}', MAX(CAST(CAST(xid AS text) AS bigint)) FROM gone HAVING COUNT(*) > 0 \
                     ON CONFLICT (tbl) DO UPDATE SET upto = GREATEST(terms_log_cuts.upto, excluded.upto)",
                    cut.replace(" ORDER BY", " AND xid < pg_snapshot_xmin(pg_current_snapshot()) ORDER BY")
                ),
            };
            std::iter::once(cut).chain(vacuum)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(tokens: &[(&str, &[u32])]) -> Snapshot {
        Snapshot(tokens.iter().map(|(t, bits)| (t.to_string(), Arc::new(bits.iter().copied().collect()))).collect())
    }

    fn tok(t: &str) -> Terms {
        Terms::Token(t.into())
    }

    #[test]
    fn terms_combine_as_sets() {
        let s = snapshot(&[("cto", &[1, 2, 3, 9]), ("lead", &[2, 3, 4]), ("vip", &[9, 10])]);
        let all = Terms::All(vec![tok("cto"), Terms::Any(vec![tok("lead"), tok("vip")])]);
        assert_eq!(s.eval(&all).iter().collect::<Vec<_>>(), [2, 3, 9]);
        assert!(s.eval(&Terms::All(vec![tok("lead"), tok("vip")])).is_empty());
        assert!(s.eval(&tok("unknown")).is_empty(), "a token no query asked for matches nothing");
        assert_eq!(s.eval(&Terms::Any(vec![tok("vip"), tok("unknown")])).len(), 2);
    }

    #[test]
    fn the_least_recently_used_go_first_never_one_in_use() {
        let big: RoaringBitmap = (0..200_000).step_by(3).collect();
        let bytes = entry_size("t0", &big);
        let mut cache = Cache::default();
        let n = BUDGET / bytes + 2;
        for used in 0..n as u64 {
            cache.tokens.insert(format!("t{used}"), Entry { bits: Arc::new(big.clone()), bytes, used });
            cache.bytes += bytes;
        }
        let now = n as u64 - 1;
        cache.evict(now);
        assert!(cache.bytes <= BUDGET);
        assert!(!cache.tokens.contains_key("t0"), "the oldest went");
        assert!(cache.tokens.contains_key(&format!("t{now}")), "the one in use stayed");
        assert_eq!(cache.bytes, cache.tokens.values().map(|e| e.bytes).sum::<usize>());
    }
}
