//! A whole organization as a folder of JSON lines (SPEC 13): `rapport export --all` writes
//! it, `rapport import --all` brings it into another database with the same ids and times.
//! Records go in the answers' form, one file per entity, beside the custom fields,
//! pipelines and users they need. Restored records pass the checks a create would; the
//! whole restore is one `request_id`, so it can be undone whole.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use rapport_tools::inputs::{CreateCustomFieldInput, CreatePipelineInput, UpdatePipelineInput};
use rapport_tools::{Entity, FieldType, Scope};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::export::{Export, ExportFormat};
use super::records::RowWriter;
use super::{CrmError, Principal, changes, schema};
use crate::store::{ChangeAction, Record, RecordId, Store, StoreError};
use crate::time;

/// The archive's table of contents, written last: a folder without it is not a whole
/// archive.
pub const MANIFEST: &str = "rapport.json";
const FORMAT: &str = "rapport-archive";
const VERSION: u64 = 1;
const USERS: &str = "users.jsonl";
const CUSTOM_FIELDS: &str = "custom_fields.jsonl";
const PIPELINES: &str = "pipelines.jsonl";
/// Records checked and written per transaction.
const BATCH: usize = 1_000;
/// Failures a report lists; the count covers them all.
const MAX_LISTED: usize = 100;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    /// The folder is not an archive, or cannot go into this organization; the message
    /// says why. Nothing was written.
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Crm(#[from] CrmError),
}

impl From<StoreError> for ArchiveError {
    fn from(e: StoreError) -> Self {
        ArchiveError::Crm(CrmError::Store(e))
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveError + '_ {
    move |source| ArchiveError::Io { path: path.to_owned(), source }
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    version: u64,
    org: String,
    exported_at: String,
    /// Records per entity, by plural name.
    records: HashMap<String, u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ArchivedUser {
    id: String,
    email: String,
    name: Option<String>,
}

/// The entities in an order where every record's references point to records already
/// written: companies before the contacts that name them, and records before the tasks
/// and notes about them.
fn order() -> Vec<Entity> {
    let mut left: Vec<Entity> = Entity::ALL.to_vec();
    let mut out: Vec<Entity> = Vec::new();
    while !left.is_empty() {
        let ready = |e: &Entity| {
            e.def().stored().all(|f| match (f.ty, f.target) {
                (FieldType::RecordRef, _) => left.iter().all(|o| o == e || refers_by_ref(*o)),
                (_, Some(t)) => t == *e || out.contains(&t),
                _ => true,
            })
        };
        let i = left.iter().position(ready).unwrap_or(0);
        out.push(left.remove(i));
    }
    out
}

/// Whether the entity points at records of any entity (a task's or note's `record`).
fn refers_by_ref(e: Entity) -> bool {
    e.def().stored().any(|f| f.ty == FieldType::RecordRef)
}

fn file_of(e: Entity) -> String {
    format!("{}.jsonl", e.plural())
}

/// What `export --all` wrote.
#[derive(Debug, Serialize)]
pub struct ExportSummary {
    pub dir: String,
    pub records: Vec<(String, u64)>,
    pub custom_fields: u64,
    pub pipelines: u64,
    pub users: u64,
}

/// Writes every live record of the organization, its custom fields, pipelines and users
/// into `dir`, the manifest last.
pub async fn export_all(store: &Store, p: &Principal, dir: &Path) -> Result<ExportSummary, ArchiveError> {
    p.require(Scope::OrgManage)?;
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let org = p.org_id();
    let users: Vec<Value> = store
        .list_users(org)
        .await?
        .into_iter()
        .map(|u| json!(ArchivedUser { id: u.id.as_str().to_owned(), email: u.email, name: u.name }))
        .collect();
    write_lines(&dir.join(USERS), &users)?;
    let mut fields = Vec::new();
    for e in Entity::ALL {
        for d in store.custom_fields(org, *e).await? {
            fields.push(json!({
                "entity": e.as_str(), "key": d.key, "label": d.label, "type": d.field_type.as_str(),
                "options": if d.options.is_empty() { Value::Null } else { json!(d.options) },
            }));
        }
    }
    write_lines(&dir.join(CUSTOM_FIELDS), &fields)?;
    let pipelines: Vec<Value> =
        store.pipelines(org).await?.iter().map(|pl| json!({ "name": pl.name, "stages": pl.stages })).collect();
    write_lines(&dir.join(PIPELINES), &pipelines)?;
    let mut records = Vec::new();
    for e in order() {
        let path = dir.join(file_of(e));
        let mut out = BufWriter::new(std::fs::File::create(&path).map_err(io(&path))?);
        let mut export = Export::new(store, p, e, ExportFormat::JsonLines, None, &[]).await?;
        while let Some(bytes) = export.next(store, p).await? {
            out.write_all(&bytes).map_err(io(&path))?;
        }
        out.flush().map_err(io(&path))?;
        records.push((e.plural().to_owned(), export.rows));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        version: VERSION,
        org: p.org.name.clone(),
        exported_at: time::rfc3339(time::now_ms()),
        records: records.iter().cloned().collect(),
    };
    let path = dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
    std::fs::write(&path, text + "\n").map_err(io(&path))?;
    Ok(ExportSummary {
        dir: dir.display().to_string(),
        records,
        custom_fields: fields.len() as u64,
        pipelines: pipelines.len() as u64,
        users: users.len() as u64,
    })
}

fn write_lines(path: &Path, items: &[Value]) -> Result<(), ArchiveError> {
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(io(path))?);
    for item in items {
        serde_json::to_writer(&mut out, item).map_err(|e| ArchiveError::Invalid(e.to_string()))?;
        out.write_all(b"\n").map_err(io(path))?;
    }
    out.flush().map_err(io(path))
}

/// A line of an archive's file: its number and its object.
type Line = Result<(u64, Map<String, Value>), ArchiveError>;

/// Each line of a JSON-lines file as an object, with its line number; blank lines skipped.
fn read_lines(path: &Path) -> Result<impl Iterator<Item = Line> + use<>, ArchiveError> {
    let file = match std::fs::File::open(path) {
        Ok(f) => Some(f),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(io(path)(e)),
    };
    let lines = file.into_iter().flat_map(|f| BufReader::new(f).lines()).enumerate();
    let name = path.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let path = path.to_owned();
    Ok(lines.filter_map(move |(i, line)| {
        let n = i as u64 + 1;
        match line {
            Err(e) => Some(Err(io(&path)(e))),
            Ok(l) if l.trim().is_empty() => None,
            Ok(l) => Some(match serde_json::from_str::<Value>(&l) {
                Ok(Value::Object(o)) => Ok((n, o)),
                Ok(_) => Err(ArchiveError::Invalid(format!("{name} line {n}: not a JSON object"))),
                Err(e) => Err(ArchiveError::Invalid(format!("{name} line {n}: {e}"))),
            }),
        }
    }))
}

/// A record that could not be restored, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RestoreFailure {
    pub file: String,
    pub line: u64,
    pub id: Option<String>,
    pub reason: String,
}

/// What `import --all` did.
#[derive(Debug, Default, Serialize)]
pub struct RestoreReport {
    pub request_id: String,
    /// Records written per entity, by plural name, in the order they went in.
    pub created: Vec<(String, u64)>,
    pub failed: u64,
    pub custom_fields_created: u64,
    pub pipelines_created: u64,
    pub pipelines_updated: u64,
    /// Users of the archive found here by email; the records of the others went to the owner.
    pub users_matched: u64,
    pub users_to_owner: u64,
    /// The first failures, by file and line.
    pub failures: Vec<RestoreFailure>,
}

impl RestoreReport {
    fn fail(&mut self, file: &str, line: u64, id: Option<&str>, reason: String) {
        self.failed += 1;
        if self.failures.len() < MAX_LISTED {
            self.failures.push(RestoreFailure { file: file.to_owned(), line, id: id.map(str::to_owned), reason });
        }
    }
}

/// Brings an archive into the organization: custom fields and pipelines first, then the
/// records with their own ids and times. Refused before anything is written when the
/// folder is not a whole archive or any of its ids is taken here; a record that fails its
/// checks is reported by file and line and does not stop the others. `progress` hears
/// each entity's count as it goes.
pub async fn import_all(
    store: &Store,
    p: &Principal,
    dir: &Path,
    mut progress: impl FnMut(Entity, u64),
) -> Result<RestoreReport, ArchiveError> {
    p.require(Scope::SchemaManage)?;
    p.require(Scope::OrgManage)?;
    let manifest = read_manifest(dir)?;
    let mut p = p.clone();
    let request_id = p.via.request_id.clone().unwrap_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple()));
    p.via.request_id = Some(request_id.clone());
    let p = &p;
    let mut report = RestoreReport { request_id, ..RestoreReport::default() };

    // Read through once before writing: a broken line or a taken id refuses the whole archive.
    for e in order() {
        check_ids(store, e, &dir.join(file_of(e)), manifest.records.get(e.plural()).copied().unwrap_or(0)).await?;
    }
    let owners = users(store, p, dir, &mut report).await?;
    let (fields, pipelines) = schema_plan(store, p, dir).await?;

    for input in fields {
        schema::create_custom_field(store, p, input).await?;
        report.custom_fields_created += 1;
    }
    for (input, exists) in pipelines {
        if exists {
            let update = UpdatePipelineInput { name: input.name.clone(), new_name: None, stages: Some(input.stages) };
            schema::update_pipeline(store, p, update).await?;
            report.pipelines_updated += 1;
        } else {
            schema::create_pipeline(store, p, input).await?;
            report.pipelines_created += 1;
        }
    }
    for e in order() {
        let n = restore_entity(store, p, e, dir, &owners, &mut report, &mut progress).await?;
        report.created.push((e.plural().to_owned(), n));
    }
    Ok(report)
}

fn read_manifest(dir: &Path) -> Result<Manifest, ArchiveError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            ArchiveError::Invalid(format!(
                "{} holds no {MANIFEST}: give a folder written by `rapport export --all --out DIR` (an export stopped midway has none)",
                dir.display()
            ))
        } else {
            io(&path)(e)
        }
    })?;
    let m: Manifest = serde_json::from_str(&text)
        .map_err(|e| ArchiveError::Invalid(format!("{MANIFEST} is not an archive's manifest: {e}")))?;
    if m.format != FORMAT || m.version > VERSION {
        return Err(ArchiveError::Invalid(format!(
            "{MANIFEST} says format {:?} version {}; this Rapport reads {FORMAT:?} up to version {VERSION}",
            m.format, m.version
        )));
    }
    Ok(m)
}

/// Every line of the entity's file parses, the count is the manifest's, and no id is
/// taken here (in this organization or another, in the trash or not).
async fn check_ids(store: &Store, e: Entity, path: &Path, expected: u64) -> Result<(), ArchiveError> {
    let name = file_of(e);
    let mut seen = 0u64;
    let mut taken = 0u64;
    let mut example = None;
    let mut chunk = Vec::with_capacity(BATCH);
    let mut lines = read_lines(path)?.peekable();
    while let Some(line) = lines.next() {
        let (n, obj) = line?;
        seen += 1;
        let id = obj.get("id").and_then(Value::as_str).filter(|s| !s.trim().is_empty());
        chunk.push(RecordId::from(
            id.ok_or_else(|| ArchiveError::Invalid(format!("{name} line {n}: the record has no `id`")))?,
        ));
        if chunk.len() == BATCH || lines.peek().is_none() {
            let here = store.taken_record_ids(e, &chunk).await?;
            taken += here.len() as u64;
            if example.is_none() {
                example = here.into_iter().next();
            }
            chunk.clear();
        }
    }
    if seen != expected {
        return Err(ArchiveError::Invalid(format!(
            "{name} holds {seen} records where {MANIFEST} says {expected}: the archive is not whole"
        )));
    }
    if let Some(id) = example {
        return Err(ArchiveError::Invalid(format!(
            "{taken} {} of the archive are already in this database (such as {id}); `import --all` restores records with their own ids, so it goes into a database that does not hold them. Nothing was written.",
            e.plural()
        )));
    }
    Ok(())
}

/// The archive's user ids mapped to users here with the same email; the others to the
/// organization's first owner.
async fn users(
    store: &Store,
    p: &Principal,
    dir: &Path,
    report: &mut RestoreReport,
) -> Result<(HashMap<String, String>, String), ArchiveError> {
    let here = store.list_users(p.org_id()).await?;
    let owner = store
        .first_owner(p.org_id())
        .await?
        .ok_or_else(|| ArchiveError::Invalid("this organization has no owner to give records to".into()))?;
    let mut map = HashMap::new();
    for line in read_lines(&dir.join(USERS))? {
        let (n, obj) = line?;
        let u: ArchivedUser = serde_json::from_value(Value::Object(obj))
            .map_err(|e| ArchiveError::Invalid(format!("{USERS} line {n}: {e}")))?;
        match here.iter().find(|h| h.email.eq_ignore_ascii_case(&u.email)) {
            Some(h) => {
                report.users_matched += 1;
                map.insert(u.id, h.id.as_str().to_owned());
            }
            None => {
                report.users_to_owner += 1;
                map.insert(u.id, owner.id.as_str().to_owned());
            }
        }
    }
    Ok((map, owner.id.as_str().to_owned()))
}

/// The custom fields to create and the pipelines to create or update (`true`): checked
/// against what the organization has before anything is written.
#[allow(clippy::type_complexity)]
async fn schema_plan(
    store: &Store,
    p: &Principal,
    dir: &Path,
) -> Result<(Vec<CreateCustomFieldInput>, Vec<(CreatePipelineInput, bool)>), ArchiveError> {
    let mut fields = Vec::new();
    for line in read_lines(&dir.join(CUSTOM_FIELDS))? {
        let (n, obj) = line?;
        let input: CreateCustomFieldInput = serde_json::from_value(Value::Object(obj))
            .map_err(|e| ArchiveError::Invalid(format!("{CUSTOM_FIELDS} line {n}: {e}")))?;
        let here = store.custom_fields(p.org_id(), input.entity).await?;
        match here.iter().find(|d| d.key == input.key) {
            Some(d) if d.field_type.as_str() == input.field_type => {}
            Some(d) => {
                return Err(ArchiveError::Invalid(format!(
                    "{} has a custom field `{}` of type {} here, where the archive's is {}; nothing was written",
                    input.entity,
                    input.key,
                    d.field_type.as_str(),
                    input.field_type
                )));
            }
            None => fields.push(input),
        }
    }
    let here = store.pipelines(p.org_id()).await?;
    let mut pipelines = Vec::new();
    for line in read_lines(&dir.join(PIPELINES))? {
        let (n, obj) = line?;
        let input: CreatePipelineInput = serde_json::from_value(Value::Object(obj))
            .map_err(|e| ArchiveError::Invalid(format!("{PIPELINES} line {n}: {e}")))?;
        match here.iter().find(|pl| pl.name == input.name) {
            Some(pl) => {
                let same = pl.stages.len() == input.stages.len()
                    && pl
                        .stages
                        .iter()
                        .zip(&input.stages)
                        .all(|(a, b)| a.name == b.name && b.kind.as_deref().is_none_or(|k| k == a.kind.as_str()));
                if !same {
                    pipelines.push((input, true));
                }
            }
            None => pipelines.push((input, false)),
        }
    }
    Ok((fields, pipelines))
}

/// One entity's file, in batches that each commit with their change-log entries.
async fn restore_entity(
    store: &Store,
    p: &Principal,
    e: Entity,
    dir: &Path,
    (users, owner): &(HashMap<String, String>, String),
    report: &mut RestoreReport,
    progress: &mut impl FnMut(Entity, u64),
) -> Result<u64, ArchiveError> {
    let name = file_of(e);
    let writer = RowWriter::new(store, p, e).await?;
    let user_fields: Vec<&str> = e.def().stored().filter(|f| f.ty == FieldType::User).map(|f| f.name).collect();
    let mut done = 0u64;
    let mut batch: Vec<(u64, Record)> = Vec::with_capacity(BATCH);
    let mut lines = read_lines(&dir.join(&name))?.peekable();
    while let Some(line) = lines.next() {
        let (n, mut obj) = line?;
        for f in &user_fields {
            if let Some(Value::String(id)) = obj.get(*f) {
                let mapped = users.get(id).unwrap_or(owner).clone();
                obj.insert((*f).to_owned(), Value::String(mapped));
            }
        }
        match writer.restore(p, &obj) {
            Ok(r) => batch.push((n, r)),
            Err(err) => report.fail(&name, n, obj.get("id").and_then(Value::as_str), err.to_string()),
        }
        if batch.len() == BATCH || lines.peek().is_none() {
            done += write_batch(store, p, &writer, &name, std::mem::take(&mut batch), report).await?;
            progress(e, done);
        }
    }
    Ok(done)
}

/// Writes the records that pass the reference checks, in one transaction; when one
/// breaks a unique rule (an email already here), each alone, so only it fails.
async fn write_batch(
    store: &Store,
    p: &Principal,
    writer: &RowWriter,
    file: &str,
    batch: Vec<(u64, Record)>,
    report: &mut RestoreReport,
) -> Result<u64, ArchiveError> {
    let records: Vec<Record> = batch.iter().map(|(_, r)| r.clone()).collect();
    let batch = if writer.check(store, p, &records).await.is_ok() {
        batch
    } else {
        let mut keep = Vec::new();
        for (n, r) in batch {
            match writer.check(store, p, std::slice::from_ref(&r)).await {
                Ok(()) => keep.push((n, r)),
                Err(CrmError::Store(e)) => return Err(e.into()),
                Err(err) => report.fail(file, n, Some(r.id.as_str()), err.to_string()),
            }
        }
        keep
    };
    let now = time::now_ms();
    let entry = |r: &Record| {
        changes::entry(p, now, ChangeAction::Created, r.entity.into(), r.id.as_str(), changes::diff(None, r))
    };
    let records: Vec<Record> = batch.iter().map(|(_, r)| r.clone()).collect();
    let entries: Vec<_> = records.iter().map(entry).collect();
    let mut tx = store.begin().await?;
    match tx.insert_records(p.org_id(), &records, &entries).await {
        Ok(()) => {
            tx.commit().await?;
            Ok(records.len() as u64)
        }
        Err(StoreError::Conflict(_)) => {
            drop(tx);
            let mut written = 0;
            for (n, r) in batch {
                let mut tx = store.begin().await?;
                match tx.insert_records(p.org_id(), std::slice::from_ref(&r), &[entry(&r)]).await {
                    Ok(()) => {
                        tx.commit().await?;
                        written += 1;
                    }
                    Err(StoreError::Conflict(why)) => report.fail(file, n, Some(r.id.as_str()), why),
                    Err(other) => return Err(other.into()),
                }
            }
            Ok(written)
        }
        Err(other) => Err(other.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_go_in_before_what_points_at_them() {
        let o = order();
        assert_eq!(o.len(), Entity::ALL.len());
        let at = |e: Entity| o.iter().position(|x| *x == e).unwrap();
        for e in Entity::ALL {
            for f in e.def().stored() {
                if let Some(t) = f.target
                    && t != *e
                {
                    assert!(at(t) < at(*e), "{t} before {e}");
                }
                if f.ty == FieldType::RecordRef {
                    for other in Entity::ALL.iter().filter(|o| !refers_by_ref(**o)) {
                        assert!(at(*other) < at(*e), "{other} before {e}");
                    }
                }
            }
        }
    }
}
