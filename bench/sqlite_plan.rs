//! `EXPLAIN QUERY PLAN` and the run time of one statement, through the SQLite Rapport
//! links (bundled, with its version and options), so the plan is the one the server gets:
//!
//!     sqlite_plan DB_FILE < {"sql": "...", "binds": [...]}     (one JSON object per line)
//!
//! bench/million.py runs it on the statements a traced server logged.

use std::io::BufRead;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags, types::Value as Sql};
use serde_json::Value;

fn bind(v: &Value) -> Sql {
    match v {
        Value::Null => Sql::Null,
        Value::Bool(b) => Sql::Integer(i64::from(*b)),
        Value::Number(n) => n.as_i64().map_or_else(|| Sql::Real(n.as_f64().unwrap_or(0.0)), Sql::Integer),
        Value::String(s) => Sql::Text(s.clone()),
        other => Sql::Text(other.to_string()),
    }
}

fn main() -> anyhow::Result<()> {
    let path = std::env::args().nth(1).ok_or_else(|| anyhow::anyhow!("usage: sqlite_plan DB_FILE < statements"))?;
    let c = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let q: Value = serde_json::from_str(&line)?;
        let sql = q["sql"].as_str().unwrap_or_default();
        let binds: Vec<Sql> = q["binds"].as_array().map(|a| a.iter().map(bind).collect()).unwrap_or_default();
        let named: Vec<(String, &Sql)> = binds.iter().enumerate().map(|(i, v)| (format!("${}", i + 1), v)).collect();
        let params: Vec<(&str, &dyn rusqlite::ToSql)> =
            named.iter().map(|(n, v)| (n.as_str(), *v as &dyn rusqlite::ToSql)).collect();
        let mut plan = c.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))?;
        let mut depth = std::collections::HashMap::new();
        let mut rows = plan.query(params.as_slice())?;
        while let Some(r) = rows.next()? {
            let (id, parent, detail): (i64, i64, String) = (r.get(0)?, r.get(1)?, r.get(3)?);
            let d = depth.get(&parent).map_or(0, |d| d + 1);
            depth.insert(id, d);
            println!("{}{detail}", "  ".repeat(d));
        }
        let mut stmt = c.prepare(sql)?;
        let start = Instant::now();
        let mut rows = stmt.query(params.as_slice())?;
        let mut n = 0;
        while rows.next()?.is_some() {
            n += 1;
        }
        println!("({n} rows in {:.1} ms, SQLite {})", start.elapsed().as_secs_f64() * 1000.0, rusqlite::version());
        println!("--");
    }
    Ok(())
}
