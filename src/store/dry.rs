//! Dry runs (SPEC 12): a call run inside `dry::run` does all its work, reads, checks and
//! writes included, inside transactions that are rolled back instead of committed. The change
//! entries it would have written are collected, so it can answer exactly what it would do.
//! Nothing it does outlives it: no record, change entry, webhook delivery, audit entry or
//! idempotency record.

use std::sync::Mutex;

use super::Change;

tokio::task_local! {
    static DRY_RUN: Mutex<Vec<Change>>;
}

/// Runs `f` as a dry run; answers what it answered and the change entries it wrote, all of
/// them rolled back.
pub async fn run<F: Future>(f: F) -> (F::Output, Vec<Change>) {
    DRY_RUN
        .scope(Mutex::new(Vec::new()), async move {
            let out = f.await;
            let changes = DRY_RUN.with(|c| std::mem::take(&mut *c.lock().unwrap_or_else(|p| p.into_inner())));
            (out, changes)
        })
        .await
}

/// Whether the current task is a dry run.
pub fn active() -> bool {
    DRY_RUN.try_with(|_| ()).is_ok()
}

/// Keeps the entries a dry run's transaction appends.
pub(super) fn note(changes: &[Change]) {
    let _ = DRY_RUN.try_with(|c| c.lock().unwrap_or_else(|p| p.into_inner()).extend_from_slice(changes));
}
