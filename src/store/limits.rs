//! Rate-limit buckets shared by every process on a PostgreSQL database (GCRA).

use super::{Store, StoreError, StoreResult};

/// The database's clock, so that processes on machines whose clocks differ agree.
const NOW_NS: &str = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000000)::BIGINT";

impl Store {
    /// Takes `n` tokens from `bucket`, which refills one token per `interval_ns` and holds
    /// at most `burst`: `Ok(None)` when taken, `Ok(Some(wait_ns))` when the bucket has too
    /// few. One statement: the row lock serializes concurrent takers in every process.
    pub async fn take_tokens(&self, bucket: &str, n: u32, interval_ns: i64, burst: u32) -> StoreResult<Option<u64>> {
        static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
            format!(
                "WITH now AS (SELECT {NOW_NS} AS t), \
                 old AS (SELECT tat FROM rate_limits WHERE bucket = $1), \
                 up AS (INSERT INTO rate_limits AS r (bucket, tat) SELECT $1, t + $2 FROM now \
                   ON CONFLICT (bucket) DO UPDATE SET tat = GREATEST(r.tat, (SELECT t FROM now)) + $2 \
                   WHERE GREATEST(r.tat, (SELECT t FROM now)) + $2 - (SELECT t FROM now) <= $3 RETURNING tat) \
                 SELECT (SELECT COUNT(*) FROM up) AS taken, (SELECT tat FROM old) AS tat, (SELECT t FROM now) AS now_ns"
            )
        });
        let cost = interval_ns.saturating_mul(i64::from(n));
        let tolerance = interval_ns.saturating_mul(i64::from(burst));
        let mut row = self
            .db
            .fetch_one(&SQL, &[bucket.into(), cost.into(), tolerance.into()])
            .await?
            .ok_or_else(|| StoreError::Corrupt("no row from a rate-limit check".into()))?;
        if row.need_int("taken")? == 1 {
            return Ok(None);
        }
        let (tat, now) = (row.int("tat")?.unwrap_or(0), row.need_int("now_ns")?);
        Ok(Some(tat.saturating_add(cost).saturating_sub(tolerance).saturating_sub(now).max(0) as u64))
    }

    /// Forgets buckets idle long enough to be full again.
    pub async fn forget_idle_limits(&self) -> StoreResult<()> {
        if self.dialect() == super::Dialect::Postgres {
            let mut tx = self.begin().await?;
            let sql = format!("DELETE FROM rate_limits WHERE tat < {NOW_NS} - 3600000000000");
            tx.execute(&sql, &[]).await?;
            tx.commit().await?;
        }
        Ok(())
    }
}
