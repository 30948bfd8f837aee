//! Import, export and personal data in the console (SPEC 13). An upload is kept in a
//! temporary file named after the person and a random token; its columns are mapped
//! automatically and can be changed, its first rows are checked as the import would check
//! them, and the import then runs in the background while its page follows it from the
//! database (so it shows imports run by any process, the command line's too).

use std::path::PathBuf;

use askama::Template;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use rapport_tools::{Entity, Scope};
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::keys::Choice;
use super::session::{Posted, Session};
use super::{Chrome, Flash, PageError, PageResult, ago, cleared, render, take_flash, title, when};
use crate::crm::export::{Export, ExportFormat};
use crate::crm::import::{self, ImportError, ImportView, OnMatch, Options, Preview, mapping};
use crate::crm::{CrmError, privacy};
use crate::state::AppState;
use crate::store::ImportState;

const PAGE: &str = "/imports";
/// Uploads waiting for their import are named `rapport-upload-USER-TOKEN`.
const UPLOAD_PREFIX: &str = "rapport-upload-";
/// An upload not imported within this long is removed.
const UPLOAD_TTL: std::time::Duration = std::time::Duration::from_secs(3600);
/// Rows the preview checks and shows.
const PREVIEW_ROWS: usize = 10;

impl From<ImportError> for PageError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::Crm(e) => e.into(),
            ImportError::File(import::FileError::Io(e)) => {
                tracing::error!(error = %e, "an upload could not be read back");
                PageError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The uploaded file could not be read back; upload it again.",
                )
            }
            other => PageError::new(StatusCode::UNPROCESSABLE_ENTITY, other.to_string()),
        }
    }
}

/// The entities this person may import into, as choices.
fn writable(s: &Session, selected: Option<Entity>) -> Vec<Choice> {
    Entity::ALL
        .iter()
        .filter(|e| s.principal.scopes.contains(&e.def().write))
        .map(|e| Choice { value: e.plural().to_owned(), label: title(e.plural()), selected: Some(*e) == selected })
        .collect()
}

/// `1 note`, `2 notes`, `3 change-log entries`.
fn counted(n: impl Into<u64>, one: &str) -> String {
    let n = n.into();
    match (n, one.strip_suffix('y')) {
        (1, _) => format!("1 {one}"),
        (_, Some(stem)) => format!("{n} {stem}ies"),
        _ => format!("{n} {one}s"),
    }
}

/// A message as a sentence of its own.
fn capitalized(m: &str) -> String {
    let m = title(m.trim_end_matches('.'));
    format!("{m}.")
}

fn entity(s: &Session, name: &str) -> Result<Entity, PageError> {
    let e = import::entity_named(name).map_err(|m| PageError::new(StatusCode::BAD_REQUEST, m))?;
    s.require(e.def().write)?;
    Ok(e)
}

fn upload_path(s: &Session, token: &str) -> Result<PathBuf, PageError> {
    if token.len() != 32 || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(gone());
    }
    Ok(std::env::temp_dir().join(format!("{UPLOAD_PREFIX}{}-{token}", s.user.id)))
}

fn gone() -> PageError {
    PageError::new(
        StatusCode::GONE,
        "This upload is no longer here (uploads are kept for an hour). Upload the file again.",
    )
}

/// Removes uploads older than an hour, whoever made them.
fn sweep_uploads() {
    let Ok(dir) = std::fs::read_dir(std::env::temp_dir()) else { return };
    for entry in dir.flatten() {
        let old = entry.metadata().and_then(|m| m.modified()).is_ok_and(|t| t.elapsed().is_ok_and(|a| a > UPLOAD_TTL));
        if old && entry.file_name().to_string_lossy().starts_with(UPLOAD_PREFIX) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

pub struct ImportRow {
    pub href: String,
    pub file_name: String,
    pub entity: String,
    pub state: String,
    pub progress: String,
    pub counts: String,
    pub started: String,
}

#[derive(Template)]
#[template(path = "imports.html")]
struct ListPage {
    c: Chrome,
    entities: Vec<Choice>,
    imports: Vec<ImportRow>,
    max_mb: u64,
}

fn state_text(v: &ImportView) -> &'static str {
    match (v.state, v.dry_run) {
        (ImportState::Running, _) => "Running",
        (ImportState::Done, true) => "Checked (dry run)",
        (ImportState::Done, false) => "Done",
        (ImportState::Failed, _) => "Stopped by an error",
        (ImportState::Interrupted, _) => "Interrupted",
    }
}

fn counts_text(v: &ImportView) -> String {
    format!("{} created, {} updated, {} skipped, {} failed", v.created, v.updated, v.skipped, v.failed)
}

#[derive(Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    entity: Option<String>,
}

/// The entity the upload form starts on: `?entity=` (the records lists' Import buttons say
/// theirs), else the first.
fn chosen(q: &PageQuery) -> Option<Entity> {
    q.entity.as_deref().and_then(|n| import::entity_named(n).ok())
}

pub async fn page(
    State(state): State<AppState>,
    s: Session,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> PageResult {
    let entities = writable(&s, chosen(&q));
    if entities.is_empty() {
        return Err(PageError::forbidden());
    }
    let flash = take_flash(&headers);
    let had = flash.is_some();
    let mut imports = Vec::new();
    for i in state.store.imports(s.principal.org_id(), 50).await? {
        if !s.principal.scopes.contains(&i.entity.def().read) {
            continue;
        }
        let v = import::view(&state.store, i, 0).await?;
        imports.push(ImportRow {
            href: format!("/imports/{}", v.id),
            file_name: v.file_name.clone(),
            entity: v.entity.plural().to_owned(),
            state: state_text(&v).to_owned(),
            progress: format!("{} of {}", v.rows_done, v.total_rows),
            counts: counts_text(&v),
            started: crate::time::parse_instant(&v.started_at).map(ago).unwrap_or_default(),
        });
    }
    let page = ListPage {
        c: Chrome::new(&s, "Import", "/records", flash),
        entities,
        imports,
        max_mb: crate::http::data::MAX_IMPORT_BYTES >> 20,
    };
    Ok(cleared(render(&page), had))
}

/// One column on the preview: what it fills now, and what it may fill.
pub struct ColumnChoice {
    pub index: usize,
    pub column: String,
    pub sample: String,
    pub choices: Vec<Choice>,
}

pub struct PreviewLine {
    pub line: u64,
    pub cells: Vec<String>,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "import_preview.html")]
struct PreviewPage {
    c: Chrome,
    token: String,
    entity: String,
    plural: String,
    file_name: String,
    format: &'static str,
    p: Preview,
    columns: Vec<ColumnChoice>,
    lines: Vec<PreviewLine>,
    matches: Vec<Choice>,
    on_match: Vec<Choice>,
    unmapped: Vec<String>,
    error: Option<String>,
}

/// What the preview and the start forms carry besides the mapping.
#[derive(Deserialize, Default)]
pub struct ImportForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    entity: String,
    #[serde(default)]
    file_name: String,
    #[serde(default, rename = "match")]
    match_on: String,
    #[serde(default)]
    on_match: String,
}

impl ImportForm {
    fn options(&self, entity: Entity, map: Vec<(String, String)>) -> Result<Options, PageError> {
        Ok(Options {
            entity,
            map,
            match_on: Some(self.match_on.clone()).filter(|m| !m.is_empty()),
            on_match: OnMatch::parse(if self.on_match.is_empty() { "skip" } else { &self.on_match })?,
            dry_run: false,
            file_name: self.file_name.clone(),
            json_lines: None,
        })
    }
}

/// A row's cells laid out under the file's columns: a JSON line's values by key, a CSV row
/// with too few cells padded (and one with too many cut) so that its result stays in the
/// result column.
fn laid_out(format: &str, columns: &[mapping::MappedColumn], cells: &[String]) -> Vec<String> {
    if format == import::Format::JsonLines.name()
        && let [line] = cells
        && let Ok(serde_json::Value::Object(o)) = serde_json::from_str::<serde_json::Value>(line)
    {
        return columns
            .iter()
            .map(|c| match o.get(&c.column) {
                None | Some(serde_json::Value::Null) => String::new(),
                Some(serde_json::Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
            })
            .collect();
    }
    let mut cells = cells.to_vec();
    if cells.len() > columns.len() && !columns.is_empty() {
        let extra = cells.split_off(columns.len() - 1);
        cells.push(extra.join(" | "));
    }
    cells.resize(columns.len(), String::new());
    cells
}

/// The upload's format and columns, read through once per request.
async fn scan(path: &std::path::Path) -> Result<import::file::Facts, PageError> {
    Ok(import::scan(path, None).await?)
}

/// A CSV's mapping, the automatic one changed by `map`, with each column that fills the
/// same field as an earlier one left out, and what was left out; `None` when no two
/// columns fill one field (or for JSON lines, whose lines may name a field differently).
fn without_clashes(
    entity: Entity,
    custom: &[crate::store::CustomFieldDef],
    facts: &import::file::Facts,
    map: &[(String, String)],
) -> Option<(Vec<(String, String)>, String)> {
    if facts.format == import::Format::JsonLines {
        return None;
    }
    let mut fields: Vec<(String, String)> = facts
        .columns
        .iter()
        .map(|c| {
            let guessed = mapping::plan(entity, std::slice::from_ref(c), custom, &[], true)
                .ok()
                .and_then(|m| m.report().pop())
                .and_then(|m| m.field)
                .unwrap_or_default();
            let chosen = map.iter().find(|(column, _)| column == c).map(|(_, f)| f.trim().to_owned());
            (c.clone(), chosen.unwrap_or(guessed))
        })
        .collect();
    let mut clashes = Vec::new();
    for i in 0..fields.len() {
        let field = fields[i].1.clone();
        if field.is_empty() || field == "-" {
            continue;
        }
        if let Some((earlier, _)) = fields[..i].iter().find(|(_, f)| *f == field) {
            clashes
                .push(format!("“{earlier}” and “{}” both fill {field}, so “{}” is left out", fields[i].0, fields[i].0));
            fields[i].1 = String::new();
        }
    }
    if clashes.is_empty() {
        return None;
    }
    let message = format!("{}. Choose another field for it, or keep it left out.", title(&clashes.join("; ")));
    Some((fields, message))
}

/// How the preview names a file's format.
fn format_text(format: &str) -> &'static str {
    match format {
        "csv (semicolon)" => "CSV separated by semicolons",
        "jsonl" => "JSON lines",
        _ => "CSV",
    }
}

/// The preview page for an upload, with the mapping `map` (the guessed one when empty);
/// `refused` says why starting it did not work.
async fn preview_page(
    state: &AppState,
    s: &Session,
    form: &ImportForm,
    (map, facts): (Vec<(String, String)>, import::file::Facts),
    refused: Option<String>,
) -> Result<Response, PageError> {
    let entity = entity(s, &form.entity)?;
    let path = upload_path(s, &form.token)?;
    let custom = state.store.custom_fields(s.principal.org_id(), entity).await?;
    let preview = |map: Vec<(String, String)>| async {
        let options = form.options(entity, map)?;
        let scanned = Some(facts.clone());
        Ok::<_, PageError>(import::preview(&state.store, &s.principal, &path, scanned, options, PREVIEW_ROWS).await)
    };
    let (p, error) = match preview(map.clone()).await? {
        Ok(p) => (p, refused),
        Err(ImportError::Invalid(m)) => {
            // Two columns on one field (a CSV's "Phone" and "Mobile Phone"): the later is
            // left out, the other choices kept, and the page says so.
            let mut shown = None;
            if let Some((fixed, clash)) = without_clashes(entity, &custom, &facts, &map)
                && let Ok(p) = preview(fixed).await?
            {
                shown = Some((p, Some(clash)));
            }
            // A mapping refused for another reason: the automatic one instead.
            if shown.is_none() && !map.is_empty() {
                let guessed = without_clashes(entity, &custom, &facts, &[]).map(|(g, _)| g).unwrap_or_default();
                let p = preview(guessed).await??;
                shown = Some((p, Some(format!("{} The automatic mapping is shown instead.", capitalized(&m)))));
            }
            shown.ok_or_else(|| PageError::from(ImportError::Invalid(m)))?
        }
        Err(e) => return Err(e.into()),
    };
    let all = mapping::choices(entity, &custom);
    let first = p.rows.first().map(|r| laid_out(p.format, &p.columns, &r.cells)).unwrap_or_default();
    let columns = p
        .columns
        .iter()
        .enumerate()
        .map(|(index, c)| {
            let now = c.field.clone().unwrap_or_default();
            let mut choices =
                vec![Choice { value: String::new(), label: "(leave out)".into(), selected: now.is_empty() }];
            choices.extend(all.iter().map(|(v, l)| Choice { value: v.clone(), label: l.clone(), selected: *v == now }));
            let fresh = format!("custom.{}", mapping::key_of(&c.column));
            if !all.iter().any(|(v, _)| *v == fresh) && crate::store::query::is_safe_key(&fresh[7..]) {
                let label = format!("new custom field {fresh} (text)");
                choices.push(Choice { selected: now == fresh, value: fresh, label });
            }
            ColumnChoice {
                index,
                column: c.column.clone(),
                sample: first.get(index).cloned().unwrap_or_default(),
                choices,
            }
        })
        .collect();
    let key = entity.def().upsert_key;
    let mut matches: Vec<Choice> = key
        .map(|k| Choice { value: k.to_owned(), label: format!("Match on {k}"), selected: p.match_field == Some(k) })
        .into_iter()
        .collect();
    matches.push(Choice { value: "none".into(), label: "Always create".into(), selected: p.match_field.is_none() });
    let update = form.on_match == "update";
    let on_match = vec![
        Choice { value: "skip".into(), label: "Skip the row".into(), selected: !update },
        Choice { value: "update".into(), label: "Update the record".into(), selected: update },
    ];
    let unmapped = p.columns.iter().filter(|c| c.field.is_none()).map(|c| c.column.clone()).collect();
    let lines = p
        .rows
        .iter()
        .map(|r| PreviewLine { line: r.line, cells: laid_out(p.format, &p.columns, &r.cells), error: r.error.clone() })
        .collect();
    let page = PreviewPage {
        c: Chrome::new(s, "Import preview", "/records", None),
        token: form.token.clone(),
        entity: entity.plural().to_owned(),
        plural: entity.plural().to_owned(),
        file_name: form.file_name.clone(),
        format: format_text(p.format),
        p,
        columns,
        lines,
        matches,
        on_match,
        unmapped,
        error,
    };
    Ok(render(&page))
}

/// `POST /imports`: the upload form (multipart, the token field before the file).
pub async fn upload(State(state): State<AppState>, s: Session, mut parts: Multipart) -> PageResult {
    let refuse = |m: String| PageError::new(StatusCode::BAD_REQUEST, m);
    let mut form = ImportForm::default();
    let mut checked = false;
    let mut stored = None;
    sweep_uploads();
    while let Some(mut field) = parts.next_field().await.map_err(|e| refuse(format!("The upload broke off: {e}")))? {
        match field.name().unwrap_or("") {
            "csrf" => {
                let token = field.text().await.map_err(|e| refuse(e.to_string()))?;
                s.check(&token)?;
                checked = true;
            }
            "entity" => form.entity = field.text().await.map_err(|e| refuse(e.to_string()))?,
            "file" => {
                // The form's token comes first: a file before it is a forged form, not kept.
                if !checked {
                    return Err(s.check("").expect_err("an empty token is refused"));
                }
                entity(&s, &form.entity)?;
                form.file_name = field.file_name().unwrap_or("upload").chars().take(200).collect();
                let mut raw = [0u8; 16];
                getrandom::fill(&mut raw).map_err(|e| refuse(e.to_string()))?;
                form.token = raw.iter().map(|b| format!("{b:02x}")).collect();
                let path = upload_path(&s, &form.token)?;
                let mut file = tokio::fs::File::create(&path).await.map_err(|e| {
                    tracing::error!(error = %e, "cannot keep an upload");
                    PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "The upload could not be stored; try again.")
                })?;
                let mut size = 0u64;
                while let Some(chunk) = field.chunk().await.map_err(|e| refuse(format!("The upload broke off: {e}")))? {
                    size += chunk.len() as u64;
                    if size > crate::http::data::MAX_IMPORT_BYTES {
                        drop(file);
                        let _ = std::fs::remove_file(&path);
                        return Err(PageError::new(
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!(
                                "A file is at most {} MB here; split it, or run `rapport import` on the server.",
                                crate::http::data::MAX_IMPORT_BYTES >> 20
                            ),
                        ));
                    }
                    file.write_all(&chunk).await.map_err(|e| {
                        tracing::error!(error = %e, "cannot keep an upload");
                        PageError::new(StatusCode::INTERNAL_SERVER_ERROR, "The upload could not be stored; try again.")
                    })?;
                }
                file.flush().await.ok();
                stored = Some(path);
            }
            _ => {}
        }
    }
    if !checked {
        return Err(s.check("").expect_err("an empty token is refused"));
    }
    let Some(path) = stored else { return Err(refuse("Choose a file to import.".into())) };
    let shown = async { preview_page(&state, &s, &form, (Vec::new(), scan(&path).await?), None).await };
    match shown.await {
        Ok(page) => Ok(page),
        Err(e) => {
            // A file refused outright (binary, wrong encoding…) is not kept.
            let _ = std::fs::remove_file(&path);
            Ok(super::back(PAGE, Flash::error(format!("{}: {}", form.file_name, e.message))))
        }
    }
}

/// The mapping a preview or start form carries: `colN` is what column N fills.
/// The upload is read through here, once for the request; its facts go along.
async fn posted_map(
    s: &Session,
    form: &ImportForm,
    pairs: &[(String, String)],
) -> Result<(Vec<(String, String)>, import::file::Facts), PageError> {
    entity(s, &form.entity)?;
    let path = upload_path(s, &form.token)?;
    if !path.is_file() {
        return Err(gone());
    }
    // The file's columns as they are: the automatic mapping may refuse (two columns on one
    // field) where the posted one does not.
    let facts = scan(&path).await?;
    let map = facts
        .columns
        .iter()
        .enumerate()
        .filter_map(|(i, c)| {
            let key = format!("col{i}");
            pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| (c.clone(), v.clone()))
        })
        .collect();
    Ok((map, facts))
}

pub async fn preview(State(state): State<AppState>, posted: Posted<ImportForm>) -> PageResult {
    let Posted { session: s, form, pairs } = posted;
    let map = posted_map(&s, &form, &pairs).await?;
    preview_page(&state, &s, &form, map, None).await
}

pub async fn start(State(state): State<AppState>, posted: Posted<ImportForm>) -> PageResult {
    let Posted { session: s, form, pairs } = posted;
    let (map, facts) = posted_map(&s, &form, &pairs).await?;
    let entity = entity(&s, &form.entity)?;
    let path = upload_path(&s, &form.token)?;
    let options = form.options(entity, map.clone())?;
    let mut p = s.principal.clone();
    p.via.route = Some("console import".into());
    let prepared = match import::prepare(&state.store, &p, &path, Some(facts.clone()), options).await {
        Ok(prepared) => prepared,
        // Shown on the preview, with what was refused and why.
        Err(ImportError::Invalid(m) | ImportError::Busy(m)) => {
            return preview_page(&state, &s, &form, (map, facts), Some(capitalized(&m))).await;
        }
        Err(e) => return Err(e.into()),
    };
    let id = prepared.import.id.clone();
    let store = state.store.clone();
    tokio::spawn(async move {
        if let Err(e) = import::run(&store, &p, prepared, |_| {}).await {
            tracing::warn!(error = %e, "a console import stopped");
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(Redirect::to(&format!("{PAGE}/{id}")).into_response())
}

#[derive(Template)]
#[template(path = "import_show.html")]
struct ShowPage {
    c: Chrome,
    v: ImportView,
    state: String,
    running: bool,
    plural: String,
    started: String,
    finished: String,
    unmapped: Vec<String>,
    can_undo: bool,
}

#[derive(Deserialize)]
pub struct ShowQuery {
    #[serde(default)]
    format: Option<String>,
}

pub async fn show(
    State(state): State<AppState>,
    s: Session,
    Path(id): Path<String>,
    Query(q): Query<ShowQuery>,
) -> PageResult {
    let i = import::get(&state.store, &s.principal, &id).await?;
    if q.format.as_deref() == Some("json") {
        let v = import::view(&state.store, i, 0).await?;
        let text = state_text(&v);
        return Ok(Json(serde_json::json!({
            "state": v.state, "state_text": text, "rows_done": v.rows_done, "total_rows": v.total_rows,
            "created": v.created, "updated": v.updated, "skipped": v.skipped, "failed": v.failed,
            "companies_created": v.companies_created,
        }))
        .into_response());
    }
    let v = import::view(&state.store, i, 100).await?;
    let unmapped = v.report["unmapped"]
        .as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    let page = ShowPage {
        c: Chrome::new(&s, format!("Import of {}", v.file_name), "/records", None),
        state: state_text(&v).to_owned(),
        running: v.state == ImportState::Running,
        plural: v.entity.plural().to_owned(),
        started: crate::time::parse_instant(&v.started_at).map(when).unwrap_or_default(),
        finished: v.finished_at.as_deref().and_then(crate::time::parse_instant).map(when).unwrap_or_default(),
        unmapped,
        can_undo: !v.dry_run && v.created + v.updated > 0 && s.principal.scopes.contains(&Scope::ChangesRevert),
        v,
    };
    Ok(render(&page))
}

pub async fn failures(State(state): State<AppState>, s: Session, Path(id): Path<String>) -> PageResult {
    Ok(crate::http::data::failures_answer(&state.store, &s.principal, &id).await?)
}

#[derive(Deserialize)]
pub struct ExportQuery {
    #[serde(default)]
    q: Option<String>,
}

/// `GET /records/{entity}/export`: the list as CSV, with its search.
pub async fn export(
    State(state): State<AppState>,
    s: Session,
    Path(segment): Path<String>,
    Query(q): Query<ExportQuery>,
) -> PageResult {
    let entity = super::entity_of(&segment).ok_or_else(PageError::not_found)?;
    s.require(entity.def().read)?;
    let text = q.q.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    let export = Export::new(&state.store, &s.principal, entity, ExportFormat::Csv, text.as_deref(), &[]).await?;
    Ok(crate::http::data::export_answer(export, state.store.clone(), s.principal.clone()).await?)
}

#[derive(Template)]
#[template(path = "privacy.html")]
struct PrivacyPage {
    c: Chrome,
    can_erase: bool,
    email: String,
}

const PRIVACY: &str = "/settings/privacy";

pub async fn privacy_page(s: Session, headers: HeaderMap) -> PageResult {
    s.require(Scope::OrgManage)?;
    let flash = take_flash(&headers);
    let had = flash.is_some();
    let page = PrivacyPage {
        c: Chrome::new(&s, "Personal data", PRIVACY, flash),
        can_erase: privacy::may_erase(&s.principal),
        email: String::new(),
    };
    Ok(cleared(render(&page), had))
}

#[derive(Deserialize)]
pub struct EmailQuery {
    #[serde(default)]
    email: String,
}

/// Everything held about a person, as a JSON download.
pub async fn privacy_export(State(state): State<AppState>, s: Session, Query(q): Query<EmailQuery>) -> PageResult {
    s.require(Scope::OrgManage)?;
    let email = q.email.trim();
    if email.is_empty() {
        return Ok(super::back(PRIVACY, Flash::error("Enter the person's email address.")));
    }
    let data = privacy::export(&state.store, &s.principal, email).await.map_err(PageError::from)?;
    let body = serde_json::to_vec_pretty(&data)
        .map_err(|e| PageError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
    let safe: String = data
        .email
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '@' | '.' | '-' | '_') { c } else { '_' })
        .collect();
    let name = format!("attachment; filename=\"personal-data-{safe}.json\"");
    Ok(([(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, name)], body)
        .into_response())
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    confirm: String,
}

pub async fn privacy_erase(State(state): State<AppState>, posted: Posted<EraseForm>) -> PageResult {
    let Posted { session: s, form, .. } = posted;
    s.require(Scope::OrgManage)?;
    let email = form.email.trim();
    if email.is_empty() || !form.confirm.trim().eq_ignore_ascii_case(email) {
        return Ok(super::back(
            PRIVACY,
            Flash::error("Type the email address a second time to confirm; nothing was erased."),
        ));
    }
    match privacy::erase(&state.store, &s.principal, email).await {
        Ok(done) => Ok(super::back(
            PRIVACY,
            Flash::ok(format!(
                "Erased {}: {}, {} and {} deleted for good, and their values erased from {}; earlier backups still hold them.",
                done.email,
                counted(done.erased.contacts, "contact"),
                counted(done.erased.notes, "note"),
                counted(done.erased.tasks, "task"),
                counted(done.erased.changes, "change-log entry"),
            )),
        )),
        Err(CrmError::Store(e)) => Err(e.into()),
        Err(e) => Ok(super::back(PRIVACY, Flash::error(e.to_string()))),
    }
}
