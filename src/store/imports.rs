//! Imports (SPEC 13): each one's row holds its options, its progress and its report. Its
//! progress moves in the transaction that stores each batch of its rows, so after a crash
//! `rows_done` says exactly which lines are in and a rerun goes on from there.

use rapport_tools::Entity;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::db::DbRow;
use super::*;
use crate::time::Millis;

const COLS: &str = "id, org_id, entity, file_name, fingerprint, options, request_id, actor_kind, actor_id, runner, \
     heartbeat_at, state, dry_run, total_rows, rows_done, created, updated, skipped, failed, companies_created, \
     report, error, started_at, finished_at";

/// Where an import stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ImportState {
    Running,
    Done,
    /// Stopped by a bad file or a fault: `error` says why; the rows stored before stay.
    Failed,
    /// Its process went away mid-way; rerunning the same file goes on from `rows_done`.
    Interrupted,
}

impl ImportState {
    pub fn as_str(self) -> &'static str {
        match self {
            ImportState::Running => "running",
            ImportState::Done => "done",
            ImportState::Failed => "failed",
            ImportState::Interrupted => "interrupted",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [ImportState::Running, ImportState::Done, ImportState::Failed, ImportState::Interrupted]
            .into_iter()
            .find(|st| st.as_str() == s)
    }
}

/// What an import's rows came to so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportCounts {
    /// Data rows read and settled (stored, skipped or failed), in file order.
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
    pub companies_created: i64,
}

/// One import.
#[derive(Debug, Clone)]
pub struct Import {
    pub id: String,
    pub org_id: OrgId,
    pub entity: Entity,
    pub file_name: String,
    pub fingerprint: String,
    /// The mapping, matching and the rest, as given (JSON).
    pub options: Value,
    pub request_id: String,
    /// `key`, `user` or `cli`, and the key's or user's id.
    pub actor_kind: String,
    pub actor_id: Option<String>,
    /// `host:pid` of the process running it.
    pub runner: String,
    pub heartbeat_at: Millis,
    pub state: ImportState,
    pub dry_run: bool,
    pub total_rows: i64,
    pub counts: ImportCounts,
    /// The columns, how they map, and what maps to nothing (JSON).
    pub report: Value,
    pub error: Option<String>,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
}

/// A row an import could not store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ImportFailure {
    /// The line of the file the row starts on (the header is line 1).
    pub line: i64,
    pub reason: String,
    /// The row's cells as read.
    pub cells: Vec<String>,
}

fn import(mut r: DbRow) -> StoreResult<Import> {
    let entity = r.need_text("entity")?;
    let state = r.need_text("state")?;
    Ok(Import {
        id: r.need_text("id")?,
        org_id: r.need_text("org_id")?.into(),
        entity: Entity::parse(&entity).ok_or_else(|| StoreError::Corrupt(format!("import entity {entity}")))?,
        file_name: r.need_text("file_name")?,
        fingerprint: r.need_text("fingerprint")?,
        options: parse_json(&r.need_text("options")?, "import options")?,
        request_id: r.need_text("request_id")?,
        actor_kind: r.need_text("actor_kind")?,
        actor_id: r.text("actor_id")?,
        runner: r.need_text("runner")?,
        heartbeat_at: r.need_int("heartbeat_at")?,
        state: ImportState::parse(&state).ok_or_else(|| StoreError::Corrupt(format!("import state {state}")))?,
        dry_run: r.bool("dry_run")?,
        total_rows: r.need_int("total_rows")?,
        counts: ImportCounts {
            rows_done: r.need_int("rows_done")?,
            created: r.need_int("created")?,
            updated: r.need_int("updated")?,
            skipped: r.need_int("skipped")?,
            failed: r.need_int("failed")?,
            companies_created: r.need_int("companies_created")?,
        },
        report: parse_json(&r.need_text("report")?, "import report")?,
        error: r.text("error")?,
        started_at: r.need_int("started_at")?,
        finished_at: r.int("finished_at")?,
    })
}

fn counts_values(c: &ImportCounts) -> [SqlValue; 6] {
    [
        c.rows_done.into(),
        c.created.into(),
        c.updated.into(),
        c.skipped.into(),
        c.failed.into(),
        c.companies_created.into(),
    ]
}

const SET_COUNTS: &str =
    "rows_done = $1, created = $2, updated = $3, skipped = $4, failed = $5, companies_created = $6";

impl Store {
    pub async fn insert_import(&self, i: &Import) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute(
            &format!(
                "INSERT INTO imports ({COLS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
                 $15, $16, $17, $18, $19, $20, $21, $22, $23, $24)"
            ),
            &[
                (&i.id).into(),
                (&i.org_id).into(),
                i.entity.as_str().into(),
                (&i.file_name).into(),
                (&i.fingerprint).into(),
                json_text(&i.options).into(),
                (&i.request_id).into(),
                (&i.actor_kind).into(),
                (&i.actor_id).into(),
                (&i.runner).into(),
                i.heartbeat_at.into(),
                i.state.as_str().into(),
                i.dry_run.into(),
                i.total_rows.into(),
                i.counts.rows_done.into(),
                i.counts.created.into(),
                i.counts.updated.into(),
                i.counts.skipped.into(),
                i.counts.failed.into(),
                i.counts.companies_created.into(),
                json_text(&i.report).into(),
                (&i.error).into(),
                i.started_at.into(),
                i.finished_at.into(),
            ],
        )
        .await?;
        tx.commit().await
    }

    pub async fn import(&self, org_id: &OrgId, id: &str) -> StoreResult<Option<Import>> {
        let sql = format!("SELECT {COLS} FROM imports WHERE org_id = $1 AND id = $2");
        self.db.fetch_one(&sql, &[org_id.into(), id.into()]).await?.map(import).transpose()
    }

    /// The organization's imports, newest first.
    pub async fn imports(&self, org_id: &OrgId, limit: u32) -> StoreResult<Vec<Import>> {
        let sql = format!(
            "SELECT {COLS} FROM imports WHERE org_id = $1 ORDER BY started_at DESC, id DESC LIMIT {}",
            limit.min(500)
        );
        self.db.fetch(&sql, &[org_id.into()]).await?.into_iter().map(import).collect()
    }

    /// The unfinished, real (not dry) import of this file into this entity, if any.
    pub async fn unfinished_import(
        &self,
        org_id: &OrgId,
        entity: Entity,
        fingerprint: &str,
    ) -> StoreResult<Option<Import>> {
        let sql = format!(
            "SELECT {COLS} FROM imports WHERE org_id = $1 AND fingerprint = $2 AND entity = $3 \
             AND state IN ('running', 'interrupted') AND dry_run = $4 ORDER BY started_at DESC LIMIT 1"
        );
        self.db
            .fetch_one(&sql, &[org_id.into(), fingerprint.into(), entity.as_str().into(), false.into()])
            .await?
            .map(import)
            .transpose()
    }

    /// Takes over an import whose runner is gone: only if nobody else did meanwhile.
    pub async fn take_over_import(&self, i: &Import, runner: &str, now: Millis) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let n = tx
            .execute(
                "UPDATE imports SET runner = $1, heartbeat_at = $2, state = 'running' \
                 WHERE id = $3 AND runner = $4 AND heartbeat_at = $5",
                &[runner.into(), now.into(), (&i.id).into(), (&i.runner).into(), i.heartbeat_at.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    /// Progress of a run that writes no records (a dry run), and its failed rows.
    pub async fn import_progress(
        &self,
        id: &str,
        counts: &ImportCounts,
        failures: &[ImportFailure],
        now: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.import_progress(id, counts, failures, now).await?;
        tx.commit().await
    }

    /// Ends an import: its last counts, its state, and why it failed.
    pub async fn finish_import(
        &self,
        id: &str,
        state: ImportState,
        counts: &ImportCounts,
        error: Option<&str>,
        now: Millis,
    ) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        let mut args = counts_values(counts).to_vec();
        args.extend([state.as_str().into(), error.into(), now.into(), id.into()]);
        tx.execute(
            &format!(
                "UPDATE imports SET {SET_COUNTS}, state = $7, error = $8, finished_at = $9, heartbeat_at = $9 \
                 WHERE id = $10"
            ),
            &args,
        )
        .await?;
        tx.commit().await
    }

    pub async fn set_import_report(&self, id: &str, report: &Value) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute("UPDATE imports SET report = $1 WHERE id = $2", &[json_text(report).into(), id.into()]).await?;
        tx.commit().await
    }

    /// An import's failed rows from line `after` on, in file order.
    pub async fn import_failures(&self, id: &str, after: i64, limit: u32) -> StoreResult<Vec<ImportFailure>> {
        let sql = format!(
            "SELECT line, reason, cells FROM import_failures WHERE import_id = $1 AND line > $2 \
             ORDER BY line LIMIT {}",
            limit.min(10_000)
        );
        self.db
            .fetch(&sql, &[id.into(), after.into()])
            .await?
            .into_iter()
            .map(|mut r| {
                Ok(ImportFailure {
                    line: r.need_int("line")?,
                    reason: r.need_text("reason")?,
                    cells: parse_json(&r.need_text("cells")?, "import failure cells")?,
                })
            })
            .collect()
    }
}

impl Tx {
    /// Moves an import on, in the transaction that stored its rows: a crash keeps both or
    /// neither. A failure already noted for a line (a resumed batch) is kept as it was.
    pub async fn import_progress(
        &mut self,
        id: &str,
        counts: &ImportCounts,
        failures: &[ImportFailure],
        now: Millis,
    ) -> StoreResult<()> {
        let mut args = counts_values(counts).to_vec();
        args.extend([now.into(), id.into()]);
        self.execute(&format!("UPDATE imports SET {SET_COUNTS}, heartbeat_at = $7 WHERE id = $8"), &args).await?;
        for chunk in failures.chunks(100) {
            let mut sql = super::query::Sql::new(self.dialect());
            sql.push("INSERT INTO import_failures (import_id, line, reason, cells)");
            for (i, f) in chunk.iter().enumerate() {
                sql.push(if i == 0 { " VALUES " } else { ", " });
                sql.bind_list([id.into(), f.line.into(), (&f.reason).into(), json_text(&f.cells).into()]);
            }
            sql.push(" ON CONFLICT DO NOTHING");
            self.execute(&sql.text, &sql.binds).await?;
        }
        Ok(())
    }
}
