//! Imports (SPEC 13): a CSV or JSON-lines file becomes records through the checks a tool
//! call's items go through (validation, scopes, the entity's rules), in batches that each
//! commit with their change-log entries, webhook deliveries and the import's progress. A
//! bad row is reported by line and does not stop the others; a bad file is refused before
//! anything is written. The whole import is one `request_id`, so it can be undone whole.

pub mod file;
pub mod mapping;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use rapport_tools::approvals::ApprovalKind;
use rapport_tools::{Entity, FieldType, Scope};
use serde::Serialize;
use serde_json::{Map, Value};

use super::records::RowWriter;
use super::{CrmError, Principal, changes, validate};
use crate::store::{
    Change, CustomType, Import, ImportCounts, ImportFailure, ImportState, Record, RecordId, Store, StoreError,
};
use crate::time::{self, Millis};
pub use file::{FileError, Format};
use mapping::{Mapping, Target};

/// Rows stored per transaction: large enough that a million rows take few commits, small
/// enough that a batch holds little memory and a crash loses at most this many to redo.
const BATCH: usize = 1_000;
/// Batches between two checkpoints of SQLite's log (`Store::bulk_writes`): at a million
/// contacts a batch changes some 7,000 pages, so the log stays under about 450 MB.
const CHECKPOINT_EVERY: u64 = 16;
/// Company names and domains remembered between batches.
const COMPANY_CACHE: usize = 200_000;
/// An import whose runner on another machine has not reported for this long is gone.
const STALE_MS: Millis = 60_000;

/// Why an import cannot start or had to stop.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    File(#[from] FileError),
    /// The options are wrong; the message says how.
    #[error("{0}")]
    Invalid(String),
    /// The same file is being imported right now.
    #[error("{0}")]
    Busy(String),
    #[error(transparent)]
    Crm(#[from] CrmError),
}

impl From<StoreError> for ImportError {
    fn from(e: StoreError) -> Self {
        ImportError::Crm(CrmError::Store(e))
    }
}

/// An entity by its singular or plural name (`contact`, `contacts`), any case, for the
/// command line and the REST routes of imports and exports.
pub fn entity_named(name: &str) -> Result<Entity, String> {
    let n = name.trim().to_lowercase();
    Entity::ALL.iter().copied().find(|e| e.as_str() == n || e.plural() == n).ok_or_else(|| {
        let all: Vec<&str> = Entity::ALL.iter().map(|e| e.plural()).collect();
        format!("no entity {name:?}; use one of: {}", all.join(", "))
    })
}

/// What a matched row does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnMatch {
    Skip,
    Update,
}

impl OnMatch {
    pub fn parse(s: &str) -> Result<Self, ImportError> {
        match s {
            "skip" => Ok(OnMatch::Skip),
            "update" => Ok(OnMatch::Update),
            other => Err(ImportError::Invalid(format!("`on_match` is skip or update, got {other:?}"))),
        }
    }
}

/// How an import was asked for.
#[derive(Debug, Clone)]
pub struct Options {
    pub entity: Entity,
    /// `COLUMN=FIELD` changes to the guessed mapping.
    pub map: Vec<(String, String)>,
    /// `email`, `domain` or `none`; the entity's default when not given.
    pub match_on: Option<String>,
    pub on_match: OnMatch,
    pub dry_run: bool,
    /// The name the file is known by (for the list of imports).
    pub file_name: String,
    /// JSON lines rather than CSV; found from the content when not given.
    pub json_lines: Option<bool>,
}

impl Options {
    /// A `COLUMN=FIELD` pair as given on the command line or in `map=`.
    pub fn parse_map(s: &str) -> Result<(String, String), ImportError> {
        let (column, field) = s.rsplit_once('=').ok_or_else(|| {
            ImportError::Invalid(format!(
                "a mapping is COLUMN=FIELD (such as \"E-mail=email\" or \"Stage=custom.stage\"), got {s:?}"
            ))
        })?;
        Ok((column.trim().to_owned(), field.trim().to_owned()))
    }

    /// The field rows are matched on: `--match`, else the entity's upsert key.
    fn match_field(&self) -> Result<Option<&'static str>, ImportError> {
        let key = self.entity.def().upsert_key;
        match self.match_on.as_deref().map(str::trim) {
            None => Ok(key),
            Some("none") => Ok(None),
            Some(m) if Some(m) == key => Ok(key),
            Some(m) => Err(ImportError::Invalid(match key {
                Some(k) => format!("{} are matched on {k} or none, not {m:?}", self.entity.plural()),
                None => format!("{} have no field to match on: use match none", self.entity.plural()),
            })),
        }
    }
}

/// An import ready to run: its file checked, its columns mapped, its row written.
pub struct Prepared {
    pub import: Import,
    path: PathBuf,
    facts: file::Facts,
    mapping: Mapping,
    match_field: Option<&'static str>,
    on_match: OnMatch,
    /// Rows already settled by an earlier run of this import.
    pub resumed_from: u64,
}

/// How a report shows an import.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct ImportView {
    pub id: String,
    pub entity: Entity,
    pub file_name: String,
    pub state: ImportState,
    pub dry_run: bool,
    pub request_id: String,
    pub total_rows: i64,
    pub rows_done: i64,
    pub created: i64,
    pub updated: i64,
    pub skipped: i64,
    pub failed: i64,
    pub companies_created: i64,
    /// `format`, `columns` (each `column` with the `field` it fills, null for none),
    /// `unmapped` (the columns or keys that fill nothing), `match` and `on_match`.
    pub report: Value,
    pub error: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// The first failed rows, by line.
    pub failures: Vec<ImportFailure>,
}

/// `host:pid` of this process.
fn runner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".to_owned());
    format!("{host}:{}", std::process::id())
}

/// Whether the process running an import is still there.
fn runner_alive(i: &Import, now: Millis) -> bool {
    let here = runner();
    let host = here.rsplit_once(':').map_or("", |(h, _)| h);
    match i.runner.rsplit_once(':') {
        Some((h, pid)) if h == host => {
            pid.parse::<u32>().is_ok_and(|pid| pid == std::process::id() || Path::new(&format!("/proc/{pid}")).exists())
        }
        _ => now - i.heartbeat_at < STALE_MS,
    }
}

/// An import as shown: a running one whose process is gone reads as interrupted.
pub async fn view(store: &Store, i: Import, failures: u32) -> Result<ImportView, CrmError> {
    let state = if i.state == ImportState::Running && !runner_alive(&i, time::now_ms()) {
        ImportState::Interrupted
    } else {
        i.state
    };
    let failures = if failures > 0 { store.import_failures(&i.id, 0, failures).await? } else { Vec::new() };
    Ok(ImportView {
        state,
        dry_run: i.dry_run,
        request_id: i.request_id,
        total_rows: i.total_rows,
        rows_done: i.counts.rows_done,
        created: i.counts.created,
        updated: i.counts.updated,
        skipped: i.counts.skipped,
        failed: i.counts.failed,
        companies_created: i.counts.companies_created,
        report: i.report,
        error: i.error,
        started_at: time::rfc3339(i.started_at),
        finished_at: i.finished_at.map(time::rfc3339),
        failures,
        id: i.id,
        entity: i.entity,
        file_name: i.file_name,
    })
}

/// Who runs an import may read it: its organization's people and keys with read on its
/// entity.
pub async fn get(store: &Store, p: &Principal, id: &str) -> Result<Import, CrmError> {
    let i = store.import(p.org_id(), id.trim()).await?.ok_or_else(|| {
        CrmError::Missing(format!("no import {id} in this organization; GET /api/v1/imports lists them"))
    })?;
    p.require(i.entity.def().read)?;
    Ok(i)
}

/// An import's failed rows as CSV into `out`: the file's columns, then `line` and `error`;
/// a cell a spreadsheet would run as a formula is neutralised.
pub async fn failed_rows_csv<W: std::io::Write>(store: &Store, i: &Import, out: W) -> Result<W, CrmError> {
    let fault = |e: String| CrmError::Store(StoreError::Unavailable(format!("could not write the failed rows: {e}")));
    let mut header: Vec<String> = i.report["columns"]
        .as_array()
        .map(|cols| cols.iter().filter_map(|c| c["column"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let width = header.len();
    header.extend(["line".to_owned(), "error".to_owned()]);
    // A ragged row keeps every cell: those beyond the header's come after its reason.
    let mut w = csv::WriterBuilder::new().flexible(true).from_writer(out);
    w.write_record(&header).map_err(|e| fault(e.to_string()))?;
    let mut after = 0;
    loop {
        let page = store.import_failures(&i.id, after, 5_000).await?;
        let Some(last) = page.last() else { break };
        after = last.line;
        for f in &page {
            let mut row: Vec<String> = f.cells.iter().map(|c| super::export::neutralise(c.clone())).collect();
            let extra = if row.len() > width { row.split_off(width) } else { Vec::new() };
            row.resize(width, String::new());
            row.extend([f.line.to_string(), f.reason.clone()]);
            row.extend(extra);
            w.write_record(&row).map_err(|e| fault(e.to_string()))?;
        }
    }
    w.into_inner().map_err(|e| fault(e.to_string()))
}

/// A file checked and its columns mapped, with the caller allowed to import it.
struct Plan {
    facts: file::Facts,
    mapping: Mapping,
    match_field: Option<&'static str>,
}

impl Plan {
    fn ready(self, import: Import, path: &Path, on_match: OnMatch, resumed_from: u64) -> Prepared {
        let Plan { facts, mapping, match_field } = self;
        Prepared { import, path: path.to_owned(), facts, mapping, match_field, on_match, resumed_from }
    }
}

/// Reads the file through once: its format, columns, rows and fingerprint.
pub async fn scan(path: &Path, json_lines: Option<bool>) -> Result<file::Facts, ImportError> {
    let owned = path.to_owned();
    tokio::task::spawn_blocking(move || file::scan(&owned, json_lines))
        .await
        .map_err(|e| ImportError::Invalid(format!("the file could not be read: {e}")))?
        .map_err(ImportError::from)
}

/// `scanned`: the file's facts when the caller has read it already.
async fn plan(
    store: &Store,
    p: &Principal,
    path: &Path,
    scanned: Option<file::Facts>,
    options: &Options,
) -> Result<Plan, ImportError> {
    let def = options.entity.def();
    p.require(def.write)?;
    let match_field = options.match_field()?;
    let facts = match scanned {
        Some(f) => f,
        None => scan(path, options.json_lines).await?,
    };
    let custom = store.custom_fields(p.org_id(), options.entity).await.map_err(CrmError::from)?;
    // JSON lines may name one field differently from line to line; a CSV row has one cell
    // per column, so two columns filling one field would lose one of them.
    let once = facts.format != Format::JsonLines;
    let mapping =
        mapping::plan(options.entity, &facts.columns, &custom, &options.map, once).map_err(ImportError::Invalid)?;
    if mapping.columns.iter().all(|(_, t)| *t == Target::Ignore) && facts.format != Format::JsonLines {
        return Err(ImportError::Invalid(format!(
            "no column of the file fills a field of {}: its columns are {}; map them with COLUMN=FIELD",
            def.plural,
            facts.columns.join(", ")
        )));
    }
    let creates_fields = !mapping.new_custom_fields().is_empty();
    if creates_fields {
        p.require(Scope::SchemaManage)?;
    }
    if mapping.columns.iter().any(|(_, t)| *t == Target::Company) {
        p.require(Scope::CompaniesRead)?;
    }
    // An import is one call of as many records as it has rows (SPEC 12, 13).
    if let Some(policy) = p.approval_policy() {
        let bulk = policy.kinds.contains(&ApprovalKind::Bulk) && facts.rows > u64::from(policy.bulk_limit);
        let schema = policy.kinds.contains(&ApprovalKind::Schema) && creates_fields;
        if bulk || schema {
            let why = if bulk {
                format!("calls of more than {} records wait for a person's approval", policy.bulk_limit)
            } else {
                "creating custom fields waits for a person's approval".to_owned()
            };
            return Err(ImportError::Crm(CrmError::Denied(format!(
                "this key's approval policy holds this import ({why}), and an import cannot wait for approval: \
                 a person can run it from the console's Import page or with `rapport import`"
            ))));
        }
    }
    Ok(Plan { facts, mapping, match_field })
}

/// Checks the file and the options, and writes the import's row (or takes over the
/// interrupted import of the same file, to go on where it stopped).
/// `scanned`: the file's facts when the caller has read it already (`scan`).
pub async fn prepare(
    store: &Store,
    p: &Principal,
    path: &Path,
    scanned: Option<file::Facts>,
    options: Options,
) -> Result<Prepared, ImportError> {
    let Plan { facts, mapping, match_field } = plan(store, p, path, scanned, &options).await?;
    let now = time::now_ms();
    let stored_options = stored_options(&options, match_field);
    let me = runner();
    if !options.dry_run
        && let Some(earlier) = store.unfinished_import(p.org_id(), options.entity, &facts.fingerprint).await?
    {
        if earlier.state == ImportState::Running && runner_alive(&earlier, now) {
            return Err(ImportError::Busy(format!(
                "this file is being imported right now (import {}, {} of {} rows done); wait for it to finish",
                earlier.id, earlier.counts.rows_done, earlier.total_rows
            )));
        }
        if earlier.options == stored_options && store.take_over_import(&earlier, &me, now).await? {
            let resumed_from = earlier.counts.rows_done as u64;
            let mut import = earlier;
            import.runner = me;
            import.state = ImportState::Running;
            return Ok(Plan { facts, mapping, match_field }.ready(import, path, options.on_match, resumed_from));
        }
        store
            .finish_import(&earlier.id, ImportState::Interrupted, &earlier.counts, earlier.error.as_deref(), now)
            .await?;
    }
    let import = new_import(p, &options, &facts, &mapping, match_field, me, now);
    store.insert_import(&import).await?;
    Ok(Plan { facts, mapping, match_field }.ready(import, path, options.on_match, 0))
}

fn stored_options(options: &Options, match_field: Option<&str>) -> Value {
    serde_json::json!({
        "map": options.map.iter().map(|(c, f)| format!("{c}={f}")).collect::<Vec<_>>(),
        "match": match_field.unwrap_or("none"),
        "on_match": options.on_match,
    })
}

/// An import's row as it starts.
fn new_import(
    p: &Principal,
    options: &Options,
    facts: &file::Facts,
    mapping: &Mapping,
    match_field: Option<&str>,
    runner: String,
    now: Millis,
) -> Import {
    let report = serde_json::json!({
        "format": facts.format.name(),
        "columns": mapping.report(),
        "unmapped": mapping.unmapped(),
        "match": match_field.unwrap_or("none"),
        "on_match": options.on_match,
    });
    let (actor_kind, actor_id) = match &p.acting {
        super::Acting::Key { id, .. } => ("key", Some(id.to_string())),
        super::Acting::Person(u) => ("user", Some(u.id.to_string())),
        _ => ("cli", None),
    };
    Import {
        id: format!("imp_{}", uuid::Uuid::now_v7().simple()),
        org_id: p.org_id().clone(),
        entity: options.entity,
        file_name: options.file_name.chars().take(200).collect(),
        fingerprint: facts.fingerprint.clone(),
        options: stored_options(options, match_field),
        request_id: p.via.request_id.clone().unwrap_or_else(|| format!("req_{}", uuid::Uuid::now_v7().simple())),
        actor_kind: actor_kind.to_owned(),
        actor_id,
        runner,
        heartbeat_at: now,
        state: ImportState::Running,
        dry_run: options.dry_run,
        total_rows: facts.rows as i64,
        counts: ImportCounts::default(),
        report,
        error: None,
        started_at: now,
        finished_at: None,
    }
}

/// The first rows of a file as an import would take them, for the console's Import page.
#[derive(Debug, Clone, Serialize)]
pub struct Preview {
    pub format: &'static str,
    pub total_rows: u64,
    /// Each column with the field it fills (`None`: left out).
    pub columns: Vec<mapping::MappedColumn>,
    pub match_field: Option<&'static str>,
    pub rows: Vec<PreviewRow>,
    /// What the previewed rows would do.
    pub counts: ImportCounts,
}

#[derive(Debug, Clone, Serialize)]
pub struct PreviewRow {
    pub line: u64,
    pub cells: Vec<String>,
    /// Why the row would fail; `None` when it would go in.
    pub error: Option<String>,
}

/// The first `n` rows of the file checked as a dry run would check them (validation,
/// companies, matching), with nothing stored, not even the import's row. `scanned`: the
/// file's facts when the caller has read it already (`scan`).
pub async fn preview(
    store: &Store,
    p: &Principal,
    path: &Path,
    scanned: Option<file::Facts>,
    mut options: Options,
    n: usize,
) -> Result<Preview, ImportError> {
    options.dry_run = true;
    let plan = plan(store, p, path, scanned, &options).await?;
    let import = new_import(p, &options, &plan.facts, &plan.mapping, plan.match_field, runner(), time::now_ms());
    let columns = plan.mapping.report();
    let match_field = plan.match_field;
    let prepared = plan.ready(import, path, options.on_match, 0);
    let owned = path.to_owned();
    let facts = prepared.facts.clone();
    let rows: Vec<file::Row> = tokio::task::spawn_blocking(move || {
        file::rows(&owned, &facts, 0).map(|rows| rows.take(n).collect::<Result<Vec<_>, _>>())
    })
    .await
    .map_err(|e| ImportError::Invalid(format!("the file could not be read: {e}")))???;
    let shown: Vec<(u64, Vec<String>)> = rows
        .iter()
        .map(|r| {
            let cells = match &r.data {
                file::RowData::Cells(c) => c.clone(),
                file::RowData::Object(o) => vec![Value::Object(o.clone()).to_string()],
                file::RowData::Unreadable(_) => Vec::new(),
            };
            (r.line, cells)
        })
        .collect();
    let mut run = Run::new(store, p, &prepared).await?;
    run.preview = Some(Vec::new());
    let mut counts = ImportCounts::default();
    run.batch(rows, &mut counts).await?;
    let failures = run.preview.take().unwrap_or_default();
    let rows = shown
        .into_iter()
        .map(|(line, cells)| PreviewRow {
            line,
            cells,
            error: failures.iter().find(|f| f.line as u64 == line).map(|f| f.reason.clone()),
        })
        .collect();
    Ok(Preview {
        format: prepared.facts.format.name(),
        total_rows: prepared.facts.rows,
        columns,
        match_field,
        rows,
        counts,
    })
}

/// Where a running import is, for whoever shows its progress.
pub enum Step<'a> {
    /// A batch is stored.
    Rows(&'a ImportCounts),
    /// Every row is stored; the indexes set aside for a large import are being built.
    Indexing,
}

/// The fewest rows for which an import builds its table's indexes once at the end rather
/// than row by row (`Store::defer_indexes`): `RAPPORT_IMPORT_DEFER_ROWS`, or 100,000. Below
/// that the indexes fit the cache and building them afterwards gains nothing.
fn defer_from() -> u64 {
    std::env::var("RAPPORT_IMPORT_DEFER_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(100_000)
}

/// Runs a prepared import to its end, calling `progress` after each batch. A fault stops
/// it with the rows stored so far kept and its state `failed`.
pub async fn run(
    store: &Store,
    p: &Principal,
    prepared: Prepared,
    mut progress: impl FnMut(Step<'_>),
) -> Result<Import, ImportError> {
    let id = prepared.import.id.clone();
    let mut counts = prepared.import.counts;
    let rows = (prepared.import.total_rows as u64).saturating_sub(prepared.resumed_from);
    let entity = prepared.import.entity;
    // What the rows are looked up by keeps its index.
    let keep: Vec<&str> = prepared.match_field.into_iter().chain(entity.def().unique).collect();
    let deferred = !prepared.import.dry_run && rows >= defer_from() && store.defer_indexes(entity, rows, &keep).await?;
    store.bulk_writes(true).await?;
    let outcome = run_batches(store, p, &prepared, &mut counts, &mut progress).await;
    store.bulk_writes(false).await?;
    let restored = if deferred {
        progress(Step::Indexing);
        store.restore_indexes().await
    } else {
        Ok(())
    };
    let now = time::now_ms();
    let (state, error) = match (&outcome, &restored) {
        (Ok(()), Ok(())) => (ImportState::Done, None),
        (Err(e), _) => (ImportState::Failed, Some(e.to_string())),
        (_, Err(e)) => {
            (ImportState::Failed, Some(format!("the rows are stored, but building the indexes failed: {e}")))
        }
    };
    store.finish_import(&id, state, &counts, error.as_deref(), now).await?;
    outcome?;
    restored?;
    Ok(store.import(p.org_id(), &id).await?.expect("written above"))
}

async fn run_batches(
    store: &Store,
    p: &Principal,
    prepared: &Prepared,
    counts: &mut ImportCounts,
    progress: &mut impl FnMut(Step<'_>),
) -> Result<(), ImportError> {
    // Every change of the import carries its request id: one undo reverts it whole.
    let mut principal = p.clone();
    principal.via.request_id = Some(prepared.import.request_id.clone());
    principal.via.tool = None;
    principal.via.route = Some("import".to_owned());
    let p = &principal;
    if !prepared.import.dry_run {
        create_fields(store, p, prepared.import.entity, &prepared.mapping).await?;
    }
    let mut run = Run::new(store, p, prepared).await?;
    // The file is read on a blocking thread, a batch ahead of the writes.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Result<Vec<file::Row>, FileError>>(2);
    let path = prepared.path.clone();
    let facts = prepared.facts.clone();
    let from = prepared.resumed_from;
    let reader = tokio::task::spawn_blocking(move || {
        let rows = match file::rows(&path, &facts, from) {
            Ok(rows) => rows,
            Err(e) => {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        };
        let mut batch = Vec::with_capacity(BATCH);
        for row in rows {
            match row {
                Ok(row) => batch.push(row),
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
            if batch.len() == BATCH && tx.blocking_send(Ok(std::mem::take(&mut batch))).is_err() {
                return;
            }
        }
        if !batch.is_empty() {
            let _ = tx.blocking_send(Ok(batch));
        }
    });
    let mut batches = 0u64;
    while let Some(batch) = rx.recv().await {
        let batch = batch?;
        run.batch(batch, counts).await?;
        progress(Step::Rows(counts));
        batches += 1;
        if batches.is_multiple_of(CHECKPOINT_EVERY) {
            store.checkpoint().await?;
        }
    }
    reader.await.map_err(|e| ImportError::Invalid(format!("the file could not be read: {e}")))?;
    if !run.unknown_keys.is_empty() {
        let mut report = prepared.import.report.clone();
        report["unmapped"] = serde_json::json!(run.unknown_keys);
        store.set_import_report(&prepared.import.id, &report).await?;
    }
    Ok(())
}

/// Creates the custom fields the mapping names new (text, labelled by their column).
async fn create_fields(store: &Store, p: &Principal, entity: Entity, mapping: &Mapping) -> Result<(), ImportError> {
    for (key, column) in mapping.new_custom_fields() {
        if store.custom_fields(p.org_id(), entity).await.map_err(CrmError::from)?.iter().any(|d| d.key == key) {
            continue;
        }
        let input = rapport_tools::inputs::CreateCustomFieldInput {
            entity,
            key,
            label: column.chars().take(100).collect(),
            field_type: "text".to_owned(),
            options: None,
        };
        super::schema::create_custom_field(store, p, input).await?;
    }
    Ok(())
}

/// A row made ready: its record, and the key it matches on.
struct Ready {
    line: u64,
    cells: Vec<String>,
    raw: Map<String, Value>,
    record: Record,
    key: Option<String>,
}

/// What a batch writes.
#[derive(Default)]
struct Writes {
    companies: Vec<Record>,
    inserts: Vec<(Record, u64, Vec<String>)>,
    /// Matched records: as they were, and as the rows leave them.
    updates: Vec<(Record, Record, u64, Vec<String>)>,
    failures: Vec<ImportFailure>,
    skipped: i64,
}

struct Run<'a> {
    store: &'a Store,
    p: &'a Principal,
    prepared: &'a Prepared,
    writer: RowWriter,
    /// For the `company` column: `None` when no column names companies, `Some(None)` when
    /// this caller may not create them.
    companies: Option<Option<RowWriter>>,
    /// Company names (lowercase) and domains already resolved to an id.
    company_ids: HashMap<String, RecordId>,
    /// A dry run's match keys so far (nothing is stored to find them by).
    seen: HashSet<String>,
    dry: bool,
    custom_types: HashMap<String, CustomType>,
    /// JSON-lines keys that fill nothing, in the order first seen.
    unknown_keys: Vec<String>,
    /// A preview's failures, kept here rather than stored.
    preview: Option<Vec<ImportFailure>>,
}

impl<'a> Run<'a> {
    async fn new(store: &'a Store, p: &'a Principal, prepared: &'a Prepared) -> Result<Run<'a>, ImportError> {
        let entity = prepared.import.entity;
        let writer = RowWriter::new(store, p, entity).await?;
        let companies = if prepared.mapping.columns.iter().any(|(_, t)| *t == Target::Company) {
            Some(RowWriter::new(store, p, Entity::Company).await.ok())
        } else {
            None
        };
        let mut custom_types = HashMap::new();
        for d in writer.custom_fields() {
            custom_types.insert(d.key.clone(), d.field_type);
        }
        for (key, _) in prepared.mapping.new_custom_fields() {
            custom_types.entry(key).or_insert(CustomType::Text);
        }
        Ok(Run {
            store,
            p,
            prepared,
            writer,
            companies,
            company_ids: HashMap::new(),
            seen: HashSet::new(),
            dry: prepared.import.dry_run,
            custom_types,
            unknown_keys: Vec::new(),
            preview: None,
        })
    }
}

fn fail(line: u64, cells: Vec<String>, reason: impl Into<String>) -> ImportFailure {
    ImportFailure { line: line as i64, reason: reason.into(), cells }
}

impl Run<'_> {
    async fn batch(&mut self, rows: Vec<file::Row>, counts: &mut ImportCounts) -> Result<(), ImportError> {
        let now = time::now_ms();
        let n = rows.len() as i64;
        let mut w = Writes::default();
        // Each row's fields, its company named.
        let mut fielded = Vec::with_capacity(rows.len());
        for row in rows {
            match self.fields(row) {
                Ok(f) => fielded.push(f),
                // A row of empty cells (a spreadsheet's blank line) is no row.
                Err(f) if f.line == 0 => w.skipped += 1,
                Err(f) => w.failures.push(f),
            }
        }
        self.resolve_companies(&mut fielded, &mut w, now).await?;
        let mut ready = Vec::with_capacity(fielded.len());
        for (line, cells, raw, company) in fielded {
            // Line 0: the row failed on its company.
            if line == 0 {
                continue;
            }
            let mut raw = raw;
            if let Some(name) = company {
                match self.company_ids.get(&company_key(&name)) {
                    Some(id) => {
                        raw.insert("company_id".into(), Value::String(id.as_str().to_owned()));
                    }
                    None => {
                        let reason = format!(
                            "the company {name:?} does not exist, and this key may not create companies (it lacks companies:write)"
                        );
                        w.failures.push(fail(line, cells, reason));
                        continue;
                    }
                }
            }
            match self.writer.create(self.p, raw.clone(), now) {
                Ok(record) => {
                    let key = self.prepared.match_field.and_then(|f| record.text(f)).map(str::to_lowercase);
                    ready.push(Ready { line, cells, raw, record, key });
                }
                Err(e) => w.failures.push(fail(line, cells, e.to_string())),
            }
        }
        self.settle_matches(ready, &mut w, now).await?;
        self.check_refs(&mut w).await?;
        self.drop_unused_companies(&mut w);
        let created = w.inserts.len() as i64;
        let companies = w.companies.len() as i64;
        let mut entries: Vec<Change> = w.companies.iter().map(|r| changes::created(self.p, r)).collect();
        let company_records = std::mem::take(&mut w.companies);
        let mut updates = Vec::new();
        let mut update_entries = Vec::new();
        let mut unchanged = 0;
        for (before, after, _, _) in &w.updates {
            match self.writer.updated(self.p, before, after.clone(), now) {
                Some((r, entry)) => {
                    updates.push((r, before.updated_at));
                    update_entries.push(entry);
                }
                None => unchanged += 1,
            }
        }
        let inserts: Vec<Record> = w.inserts.into_iter().map(|(r, _, _)| r).collect();
        let insert_entries: Vec<Change> = inserts.iter().map(|r| changes::created(self.p, r)).collect();
        counts.rows_done += n;
        counts.created += created;
        counts.updated += updates.len() as i64;
        counts.skipped += w.skipped + unchanged;
        counts.failed += w.failures.len() as i64;
        counts.companies_created += companies;
        if let Some(kept) = &mut self.preview {
            kept.extend(w.failures);
            return Ok(());
        }
        if self.dry {
            self.store.import_progress(&self.prepared.import.id, counts, &w.failures, now).await?;
            return Ok(());
        }
        let mut tx = self.store.begin().await?;
        let org = self.p.org_id();
        tx.insert_records(org, &company_records, &std::mem::take(&mut entries)).await.map_err(conflict)?;
        tx.insert_records(org, &inserts, &insert_entries).await.map_err(conflict)?;
        tx.update_records(org, &updates, &update_entries).await.map_err(|e| match e {
            StoreError::Stale | StoreError::NotFound => ImportError::Busy(
                "a record this import updates was changed by someone else at the same moment; run the import again: the rows stored so far are kept and it goes on from where it stopped".to_owned(),
            ),
            other => conflict(other),
        })?;
        tx.import_progress(&self.prepared.import.id, counts, &w.failures, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A row's cells as the fields they fill, and the company it names; or why it cannot
    /// be read.
    #[allow(clippy::type_complexity)]
    fn fields(
        &mut self,
        row: file::Row,
    ) -> Result<(u64, Vec<String>, Map<String, Value>, Option<String>), ImportFailure> {
        let mut raw = Map::new();
        let mut company = None;
        let columns = &self.prepared.mapping.columns;
        match row.data {
            file::RowData::Unreadable(why) => Err(fail(row.line, Vec::new(), why)),
            file::RowData::Cells(cells) => {
                if cells.len() != columns.len() {
                    let reason = format!(
                        "the row has {} cells where the header has {} columns (a missing or extra delimiter, or a quote not closed?)",
                        cells.len(),
                        columns.len()
                    );
                    return Err(fail(row.line, cells, reason));
                }
                if cells.iter().all(|c| c.trim().is_empty()) {
                    return Err(fail(0, cells, "empty"));
                }
                for ((_, target), cell) in columns.iter().zip(&cells) {
                    let cell = cell.trim();
                    if cell.is_empty() {
                        continue;
                    }
                    self.fill(&mut raw, &mut company, target, Value::String(cell.to_owned()));
                }
                Ok((row.line, cells, raw, company))
            }
            file::RowData::Object(obj) => {
                let cells = vec![Value::Object(obj.clone()).to_string()];
                for (k, v) in obj {
                    if v.is_null() || v.as_str().is_some_and(|s| s.trim().is_empty()) {
                        continue;
                    }
                    let target = columns.iter().find(|(c, _)| *c == k).map(|(_, t)| t.clone()).unwrap_or_else(|| {
                        mapping::plan(self.prepared.import.entity, std::slice::from_ref(&k), &[], &[], false)
                            .map_or(Target::Ignore, |m| m.columns[0].1.clone())
                    });
                    if target == Target::Ignore {
                        if k != "custom" && !self.unknown_keys.contains(&k) && self.unknown_keys.len() < 100 {
                            self.unknown_keys.push(k.clone());
                        }
                        if k == "custom"
                            && let Value::Object(custom) = v
                        {
                            raw.insert("custom".into(), Value::Object(custom));
                        }
                        continue;
                    }
                    let v = match v {
                        Value::String(s) => Value::String(s.trim().to_owned()),
                        other => other,
                    };
                    self.fill(&mut raw, &mut company, &target, v);
                }
                Ok((row.line, cells, raw, company))
            }
        }
    }

    fn fill(&self, raw: &mut Map<String, Value>, company: &mut Option<String>, target: &Target, v: Value) {
        match target {
            Target::Ignore => {}
            Target::Company => *company = v.as_str().map(str::to_owned),
            Target::Field(f) => {
                let v = match v {
                    Value::String(s) => field_value(f.ty, s),
                    other => other,
                };
                raw.insert(f.name.to_owned(), v);
            }
            Target::Custom { key, .. } => {
                let ty = self.custom_types.get(key).copied().unwrap_or(CustomType::Text);
                let v = match v {
                    Value::String(s) => custom_value(ty, s),
                    other => other,
                };
                let custom = raw.entry("custom").or_insert_with(|| Value::Object(Map::new()));
                if let Value::Object(m) = custom {
                    m.insert(key.clone(), v);
                }
            }
        }
    }

    /// Finds or creates the companies the batch's rows name: by domain when the name is
    /// one (`acme.com`), else by name in any case.
    #[allow(clippy::type_complexity)]
    async fn resolve_companies(
        &mut self,
        rows: &mut [(u64, Vec<String>, Map<String, Value>, Option<String>)],
        w: &mut Writes,
        now: Millis,
    ) -> Result<(), ImportError> {
        let Some(creator) = &self.companies else { return Ok(()) };
        // In row order, once per company: the first spelling names a new one.
        let mut keys = HashSet::new();
        let wanted: Vec<String> = rows
            .iter()
            .filter_map(|r| r.3.clone())
            .filter(|n| !self.company_ids.contains_key(&company_key(n)) && keys.insert(company_key(n)))
            .collect();
        if wanted.is_empty() {
            return Ok(());
        }
        if self.company_ids.len() > COMPANY_CACHE {
            self.company_ids.clear();
        }
        let (domains, names): (Vec<String>, Vec<String>) = wanted.iter().cloned().partition(|n| as_domain(n).is_some());
        let domains: Vec<String> = domains.iter().filter_map(|d| as_domain(d)).collect();
        let org = self.p.org_id();
        for r in self.store.find_by(org, Entity::Company, "domain", &domains).await? {
            if let Some(d) = r.text("domain") {
                self.company_ids.entry(d.to_owned()).or_insert(r.id.clone());
            }
        }
        for r in self.store.companies_named(org, &names).await? {
            if let Some(n) = r.text("name") {
                self.company_ids.entry(company_key(n)).or_insert(r.id.clone());
            }
        }
        let Some(creator) = creator else { return Ok(()) };
        for name in wanted {
            let key = company_key(&name);
            if self.company_ids.contains_key(&key) {
                continue;
            }
            let mut raw = Map::new();
            match as_domain(&name) {
                Some(domain) => {
                    raw.insert("name".into(), Value::String(name.clone()));
                    raw.insert("domain".into(), Value::String(domain));
                }
                None => {
                    raw.insert("name".into(), Value::String(name.clone()));
                }
            }
            match creator.create(self.p, raw, now) {
                Ok(company) => {
                    self.company_ids.insert(key, company.id.clone());
                    w.companies.push(company);
                }
                Err(e) => {
                    // The rows naming it fail with the reason.
                    for r in rows.iter_mut().filter(|r| r.3.as_deref().is_some_and(|n| company_key(n) == key)) {
                        r.3 = None;
                        w.failures.push(fail(r.0, std::mem::take(&mut r.1), format!("the company {name:?}: {e}")));
                        r.0 = 0;
                    }
                }
            }
        }
        Ok(())
    }

    /// Rows that match a stored record (or an earlier row) are skipped or update it; a
    /// value that must be unique and is taken fails its row.
    async fn settle_matches(&mut self, ready: Vec<Ready>, w: &mut Writes, now: Millis) -> Result<(), ImportError> {
        let def = self.prepared.import.entity.def();
        let entity = self.prepared.import.entity;
        let unique = def.unique.filter(|u| Some(*u) != self.prepared.match_field);
        let keys: Vec<String> = ready.iter().filter_map(|r| r.key.clone()).collect();
        let mut stored: HashMap<String, Vec<Record>> = HashMap::new();
        if let Some(field) = self.prepared.match_field {
            for r in self.store.find_by(self.p.org_id(), entity, field, &keys).await? {
                if let Some(k) = r.text(field) {
                    stored.entry(k.to_lowercase()).or_default().push(r);
                }
            }
        }
        let mut taken: HashSet<String> = HashSet::new();
        if let Some(u) = unique {
            let values: Vec<String> = ready.iter().filter_map(|r| r.record.text(u).map(str::to_lowercase)).collect();
            for r in self.store.find_by(self.p.org_id(), entity, u, &values).await? {
                if let Some(v) = r.text(u) {
                    taken.insert(v.to_lowercase());
                }
            }
        }
        // Rows of this batch by key: an index into inserts or updates.
        let mut pending: HashMap<String, (bool, usize)> = HashMap::new();
        for r in ready {
            if let Some(u) = unique
                && let Some(v) = r.record.text(u).map(str::to_lowercase)
                && !taken.insert(v.clone())
            {
                let reason = format!(
                    "a {} with the {u} {v} exists already (or comes earlier in the file); a {u} is unique",
                    entity
                );
                w.failures.push(fail(r.line, r.cells, reason));
                continue;
            }
            let Some(key) = r.key.clone() else {
                w.inserts.push((r.record, r.line, r.cells));
                continue;
            };
            if let Some(&(inserted, i)) = pending.get(&key) {
                if self.prepared.on_match == OnMatch::Skip {
                    w.skipped += 1;
                    continue;
                }
                let current = if inserted { &w.inserts[i].0 } else { &w.updates[i].1 };
                match self.writer.apply(self.p, current, r.raw, now) {
                    Ok(after) if inserted => w.inserts[i].0 = after,
                    Ok(after) => w.updates[i].1 = after,
                    Err(e) => w.failures.push(fail(r.line, r.cells, e.to_string())),
                }
                continue;
            }
            // Kept for later rows of the same key: they match the same record.
            let matches = stored.get(&key).cloned().unwrap_or_default();
            let seen_before = self.dry && self.seen.contains(&key);
            match matches.as_slice() {
                [] if seen_before => {
                    // A dry run stores nothing: an earlier batch's row is only remembered.
                    w.skipped += 1;
                }
                [] => {
                    if self.dry {
                        self.seen.insert(key.clone());
                    }
                    pending.insert(key, (true, w.inserts.len()));
                    w.inserts.push((r.record, r.line, r.cells));
                }
                [before] if self.prepared.on_match == OnMatch::Skip => {
                    let _ = before;
                    w.skipped += 1;
                }
                [before] => match self.writer.apply(self.p, before, r.raw, now) {
                    Ok(after) => {
                        pending.insert(key, (false, w.updates.len()));
                        w.updates.push((before.clone(), after, r.line, r.cells));
                    }
                    Err(e) => w.failures.push(fail(r.line, r.cells, e.to_string())),
                },
                several => {
                    let field = self.prepared.match_field.unwrap_or("key");
                    let reason = format!(
                        "{} {} have the {field} {key}: merge them first (find_duplicates, merge_records), or import with match none",
                        several.len(),
                        def.plural
                    );
                    w.failures.push(fail(r.line, r.cells, reason));
                }
            }
        }
        Ok(())
    }

    /// The owners and related records the rows name exist; a row naming one that does not
    /// fails alone.
    /// A company is created for a row only when the row goes in: one that only failed
    /// rows named is forgotten, so a later row creates it again.
    fn drop_unused_companies(&mut self, w: &mut Writes) {
        let used: HashSet<String> = w
            .inserts
            .iter()
            .map(|(r, _, _)| r)
            .chain(w.updates.iter().map(|(_, r, _, _)| r))
            .filter_map(|r| r.text("company_id").map(str::to_owned))
            .collect();
        let (keep, unused): (Vec<Record>, Vec<Record>) =
            std::mem::take(&mut w.companies).into_iter().partition(|c| used.contains(c.id.as_str()));
        w.companies = keep;
        if !unused.is_empty() {
            let gone: HashSet<&str> = unused.iter().map(|c| c.id.as_str()).collect();
            self.company_ids.retain(|_, id| !gone.contains(id.as_str()));
        }
    }

    async fn check_refs(&mut self, w: &mut Writes) -> Result<(), ImportError> {
        // The companies this batch creates are not stored yet: they exist all the same.
        let new: HashSet<&str> = w.companies.iter().map(|c| c.id.as_str()).collect();
        let as_checked = |r: &Record| {
            let mut r = r.clone();
            if r.text("company_id").is_some_and(|id| new.contains(id)) {
                r.values.remove("company_id");
            }
            r
        };
        let all: Vec<Record> = w
            .inserts
            .iter()
            .map(|(r, _, _)| as_checked(r))
            .chain(w.updates.iter().map(|(_, r, _, _)| as_checked(r)))
            .collect();
        if all.is_empty() || self.writer.check(self.store, self.p, &all).await.is_ok() {
            return Ok(());
        }
        let mut keep = Vec::new();
        for (r, line, cells) in std::mem::take(&mut w.inserts) {
            match self.writer.check(self.store, self.p, &[as_checked(&r)]).await {
                Ok(()) => keep.push((r, line, cells)),
                Err(CrmError::Store(e)) => return Err(e.into()),
                Err(e) => w.failures.push(fail(line, cells, e.to_string())),
            }
        }
        w.inserts = keep;
        let mut keep = Vec::new();
        for (before, r, line, cells) in std::mem::take(&mut w.updates) {
            match self.writer.check(self.store, self.p, &[as_checked(&r)]).await {
                Ok(()) => keep.push((before, r, line, cells)),
                Err(CrmError::Store(e)) => return Err(e.into()),
                Err(e) => w.failures.push(fail(line, cells, e.to_string())),
            }
        }
        w.updates = keep;
        w.failures.sort_by_key(|f| f.line);
        Ok(())
    }
}

fn conflict(e: StoreError) -> ImportError {
    match e {
        StoreError::Conflict(what) => ImportError::Busy(format!(
            "{what} was stored by someone else while this import ran; run the import again: the rows stored so far are kept and it goes on from where it stopped"
        )),
        other => other.into(),
    }
}

/// The cache key of a company named in a row.
fn company_key(name: &str) -> String {
    as_domain(name).unwrap_or_else(|| name.trim().to_lowercase())
}

/// The domain a company cell names, when it is one (`acme.com`, `https://www.acme.com/`).
fn as_domain(name: &str) -> Option<String> {
    let s = name.trim();
    if s.contains(' ') || !s.contains('.') {
        return None;
    }
    let at = validate::At { list: "row", index: 0 };
    validate::domain(&at, Some(s.to_owned())).ok().flatten().filter(|d| d.contains('.'))
}

/// A cell as the value a field of this type takes: numbers and booleans read, lists split
/// on commas; the rest as text, for validation to judge.
fn field_value(ty: FieldType, s: String) -> Value {
    match ty {
        FieldType::Number => {
            s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map_or(Value::String(s), Value::Number)
        }
        FieldType::Boolean => boolean(&s).map_or(Value::String(s), Value::Bool),
        FieldType::Tags | FieldType::MultiSelect | FieldType::Relations => list(&s),
        FieldType::RecordRef => serde_json::from_str::<Value>(&s).ok().filter(Value::is_object).unwrap_or_else(|| {
            match s.split_once(['/', ':']) {
                Some((e, id)) => serde_json::json!({ "entity": e.trim(), "id": id.trim() }),
                None => Value::String(s),
            }
        }),
        _ => Value::String(s),
    }
}

fn custom_value(ty: CustomType, s: String) -> Value {
    match ty {
        CustomType::Number => field_value(FieldType::Number, s),
        CustomType::Boolean => field_value(FieldType::Boolean, s),
        CustomType::MultiSelect => list(&s),
        CustomType::Currency => match s.rsplit_once(' ') {
            Some((amount, code)) if code.len() == 3 => serde_json::json!({ "amount": amount.trim(), "currency": code }),
            _ => Value::String(s),
        },
        _ => Value::String(s),
    }
}

fn boolean(s: &str) -> Option<bool> {
    match s.to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "x" => Some(true),
        "false" | "no" | "n" | "0" => Some(false),
        _ => None,
    }
}

fn list(s: &str) -> Value {
    Value::Array(
        s.split([',', ';']).map(str::trim).filter(|t| !t.is_empty()).map(|t| Value::String(t.to_owned())).collect(),
    )
}
