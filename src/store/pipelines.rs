//! Deal pipelines and their ordered stages; renames carry the deals along.

use super::db::{DbRow, Tx};
use super::*;

fn pipeline(mut r: DbRow) -> StoreResult<Pipeline> {
    Ok(Pipeline {
        id: r.need_text("id")?,
        name: r.need_text("name")?,
        stages: parse_json(&r.need_text("stages")?, "stages")?,
        created_at: r.need_int("created_at")?,
        updated_at: r.need_int("updated_at")?,
    })
}

const COLS: &str = "id, name, stages, created_at, updated_at";

impl Store {
    /// The organization's pipelines, oldest first (`sales` comes first).
    pub async fn pipelines(&self, org_id: &OrgId) -> StoreResult<Vec<Pipeline>> {
        let sql = format!("SELECT {COLS} FROM pipelines WHERE org_id = $1 ORDER BY created_at, id");
        self.db.fetch(&sql, &[org_id.into()]).await?.into_iter().map(pipeline).collect()
    }
}

impl Tx {
    pub async fn pipeline(&mut self, org_id: &OrgId, name: &str) -> StoreResult<Option<Pipeline>> {
        let sql = format!("SELECT {COLS} FROM pipelines WHERE org_id = $1 AND name = $2");
        self.fetch_one(&sql, &[org_id.into(), name.into()]).await?.map(pipeline).transpose()
    }

    /// `Conflict` when the name is taken.
    pub async fn insert_pipeline(&mut self, org_id: &OrgId, p: &Pipeline, changes: &[Change]) -> StoreResult<()> {
        self.execute(
            "INSERT INTO pipelines (id, org_id, name, stages, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                (&p.id).into(),
                org_id.into(),
                (&p.name).into(),
                json_text(&p.stages).into(),
                p.created_at.into(),
                p.updated_at.into(),
            ],
        )
        .await
        .map_err(|e| e.on_write("a pipeline with this name"))?;
        self.append_changes(changes).await
    }

    /// Replaces the pipeline `id` and moves its deals: `renames` maps old stage names to
    /// new ones; a new pipeline name is written to its deals too.
    pub async fn update_pipeline(
        &mut self,
        org_id: &OrgId,
        old_name: &str,
        p: &Pipeline,
        renames: &[(String, String)],
        changes: &[Change],
    ) -> StoreResult<()> {
        self.execute(
            "UPDATE pipelines SET name = $3, stages = $4, updated_at = $5 WHERE org_id = $1 AND id = $2",
            &[org_id.into(), (&p.id).into(), (&p.name).into(), json_text(&p.stages).into(), p.updated_at.into()],
        )
        .await
        .map_err(|e| e.on_write("a pipeline with this name"))?;
        for (from, to) in renames {
            self.execute(
                "UPDATE deals SET stage = $4 WHERE org_id = $1 AND pipeline = $2 AND stage = $3",
                &[org_id.into(), old_name.into(), from.into(), to.into()],
            )
            .await?;
        }
        if old_name != p.name {
            self.execute(
                "UPDATE deals SET pipeline = $3 WHERE org_id = $1 AND pipeline = $2",
                &[org_id.into(), old_name.into(), (&p.name).into()],
            )
            .await?;
        }
        self.append_changes(changes).await
    }

    /// Removes a pipeline that no deal (trashed ones included) is in: a revert of its
    /// creation. `Conflict` when deals use it.
    pub async fn delete_pipeline(&mut self, org_id: &OrgId, name: &str, changes: &[Change]) -> StoreResult<()> {
        let used: i64 = self
            .scalar("SELECT COUNT(*) FROM deals WHERE org_id = $1 AND pipeline = $2", &[org_id.into(), name.into()])
            .await?;
        if used > 0 {
            return Err(StoreError::Conflict(format!("pipeline `{name}` holds {used} deals, and so it")));
        }
        if self.execute("DELETE FROM pipelines WHERE org_id = $1 AND name = $2", &[org_id.into(), name.into()]).await?
            == 0
        {
            return Err(StoreError::NotFound);
        }
        self.append_changes(changes).await
    }

    /// How many deals (trashed ones too, so a restore finds its stage) sit in each stage.
    pub async fn deals_per_stage(&mut self, org_id: &OrgId, pipeline: &str) -> StoreResult<Vec<(String, u64)>> {
        let rows = self
            .fetch(
                "SELECT stage, COUNT(*) AS n FROM deals WHERE org_id = $1 AND pipeline = $2 GROUP BY stage",
                &[org_id.into(), pipeline.into()],
            )
            .await?;
        rows.into_iter().map(|mut r| Ok((r.need_text("stage")?, r.need_int("n")? as u64))).collect()
    }
}
