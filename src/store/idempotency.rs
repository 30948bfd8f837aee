//! Idempotency keys: a repeated call with the same key by the same API key within 24
//! hours gets the first call's answer and writes nothing.

use super::*;
use crate::time::{DAY_MS, Millis};

/// What a claim on an idempotency key found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// Nobody used the key in the last 24 hours: run the call, then `finish_idempotency`.
    Fresh,
    /// The first call's answer.
    Done(String),
    /// The first call is still running.
    Running,
    /// The key was used with other arguments.
    Mismatch,
}

impl Store {
    pub async fn claim_idempotency(
        &self,
        org_id: &OrgId,
        key_id: &KeyId,
        idem: &str,
        tool: &str,
        hash: &str,
        now: Millis,
    ) -> StoreResult<Claim> {
        let mut tx = self.begin().await?;
        let found = tx
            .fetch_one(
                "SELECT request_hash, response, created_at, tool FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2",
                &[key_id.into(), idem.into()],
            )
            .await?;
        if let Some(mut r) = found {
            let (stored_hash, response, at, stored_tool) =
                (r.need_text("request_hash")?, r.text("response")?, r.need_int("created_at")?, r.need_text("tool")?);
            if at > now - DAY_MS {
                return Ok(match response {
                    _ if stored_hash != hash || stored_tool != tool => Claim::Mismatch,
                    Some(answer) => Claim::Done(answer),
                    None => Claim::Running,
                });
            }
            tx.execute(
                "DELETE FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2",
                &[key_id.into(), idem.into()],
            )
            .await?;
        }
        let inserted = tx
            .execute(
                "INSERT INTO idempotency_keys (key_id, idem_key, org_id, tool, request_hash, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
                &[key_id.into(), idem.into(), org_id.into(), tool.into(), hash.into(), now.into()],
            )
            .await?;
        tx.commit().await?;
        Ok(if inserted == 1 { Claim::Fresh } else { Claim::Running })
    }

    /// Keeps the answer of a claimed call, or (`None`, the call failed) frees the key so
    /// that a retry runs again.
    pub async fn finish_idempotency(&self, key_id: &KeyId, idem: &str, response: Option<&str>) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        match response {
            Some(answer) => {
                tx.execute(
                    "UPDATE idempotency_keys SET response = $3 WHERE key_id = $1 AND idem_key = $2",
                    &[key_id.into(), idem.into(), answer.into()],
                )
                .await?
            }
            None => {
                tx.execute(
                    "DELETE FROM idempotency_keys WHERE key_id = $1 AND idem_key = $2",
                    &[key_id.into(), idem.into()],
                )
                .await?
            }
        };
        tx.commit().await
    }

    /// Forgets keys older than 24 hours.
    pub async fn expire_idempotency(&self, now: Millis) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        tx.execute("DELETE FROM idempotency_keys WHERE created_at < $1", &[(now - DAY_MS).into()]).await?;
        tx.commit().await
    }
}
