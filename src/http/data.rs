//! Data in and out over REST (SPEC 13): `POST /imports` takes a CSV or JSON-lines body of up
//! to 256 MB, spools it to a file, checks it, answers 202 with the import, and runs it in
//! the background; `GET /imports/{id}` follows it. `GET /{entity}/export` streams records.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures_util::StreamExt;
use rapport_tools::Entity;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

use super::error::ApiError;
use super::extract::ApiQuery;
use crate::auth::Principal;
use crate::crm::CrmError;
use crate::crm::export::{Export, ExportFormat};
use crate::crm::import::{self, ImportError, OnMatch, Options};
use crate::service::ToolError;
use crate::state::AppState;

/// The largest import body.
pub const MAX_IMPORT_BYTES: u64 = 256 << 20;

type Caller = Extension<Arc<Principal>>;

impl From<CrmError> for ApiError {
    fn from(e: CrmError) -> Self {
        ToolError::from(e).into()
    }
}

impl From<ImportError> for ApiError {
    fn from(e: ImportError) -> Self {
        match e {
            ImportError::File(import::FileError::Bad(m)) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_file", m)
            }
            ImportError::File(import::FileError::Io(e)) => {
                tracing::error!(error = %e, "an import's spooled file could not be read");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the uploaded file could not be read back")
            }
            ImportError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m),
            ImportError::Busy(m) => ApiError::new(StatusCode::CONFLICT, "conflict", m),
            ImportError::Crm(e) => e.into(),
        }
    }
}

/// `POST /imports` query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// An entity, by plural or singular name (`contacts`, `contact`, …).
    pub entity: String,
    /// `COLUMN=FIELD` pairs separated by commas, such as `E-mail=email,Stage=custom.stage`; an
    /// empty FIELD leaves the column out.
    pub map: Option<String>,
    /// `email` (contacts, the default), `domain` (companies, the default) or `none`.
    #[serde(rename = "match")]
    pub match_on: Option<String>,
    /// `skip` (default) or `update`: what a matched row does.
    pub on_match: Option<String>,
    /// Check every row and report; write no record.
    pub dry_run: Option<bool>,
    /// The file's name, for the list of imports.
    pub file_name: Option<String>,
}

/// `GET /imports/{id}` query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImportShowQuery {
    /// How many failed rows to include, 0 to 1000; default 100.
    pub failures: Option<u32>,
}

/// `GET /privacy/export` query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrivacyQuery {
    /// The person's email address.
    pub email: String,
}

/// `POST /privacy/erase` body.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    /// The person's email address: their contacts, and the notes and tasks about them, are
    /// deleted for good.
    pub email: String,
}

/// `GET /{entity}/export` query.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `csv` (default) or `jsonl`.
    pub format: Option<String>,
    /// Free text, as the list's `q`.
    pub q: Option<String>,
    /// The JSON filter list of `search_records`, as the list's `filter`.
    pub filter: Option<String>,
}

fn entity_named(name: &str) -> Result<Entity, ApiError> {
    import::entity_named(name).map_err(|m| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_request", m))
}

pub fn routes() -> Router<AppState> {
    let mut r = Router::new()
        .route("/imports", post(start).get(list))
        .route("/imports/{id}", get(show))
        .route("/imports/{id}/failures", get(failures))
        .route("/privacy/export", get(privacy_export))
        .route("/privacy/erase", post(privacy_erase));
    for e in Entity::ALL {
        let entity = *e;
        r = r.route(
            &format!("/{}/export", e.plural()),
            get(move |state: State<AppState>, p: Caller, q: ApiQuery<ExportQuery>| export(state, p, q, entity)),
        );
    }
    r
}

/// Removes the spooled file whatever happens to the import.
struct Spool(std::path::PathBuf);

impl Drop for Spool {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

async fn start(
    State(state): State<AppState>,
    Extension(p): Caller,
    ApiQuery(q): ApiQuery<ImportQuery>,
    req: Request,
) -> Result<Response, ApiError> {
    let entity = entity_named(&q.entity)?;
    // Refused before a byte is read when the key may not write the entity.
    p.require(entity.def().write).map_err(ApiError::from)?;
    let map = q
        .map
        .as_deref()
        .map(|m| m.split(',').filter(|s| !s.trim().is_empty()).map(Options::parse_map).collect::<Result<Vec<_>, _>>())
        .transpose()?
        .unwrap_or_default();
    let on_match = OnMatch::parse(q.on_match.as_deref().unwrap_or("skip"))?;
    let content_type =
        req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").to_lowercase();
    let json_lines =
        if content_type.contains("jsonl") || content_type.contains("ndjson") || content_type.contains("json-seq") {
            Some(true)
        } else if content_type.starts_with("text/csv") {
            Some(false)
        } else {
            None
        };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_IMPORT_BYTES) {
        return Err(too_large());
    }
    let spool = Spool(std::env::temp_dir().join(format!("rapport-import-{}", uuid::Uuid::now_v7().simple())));
    let mut file = tokio::fs::File::create(&spool.0).await.map_err(|e| {
        tracing::error!(error = %e, "cannot spool an import");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the upload could not be stored; try again")
    })?;
    let mut stream = req.into_body().into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad_request(format!("the upload broke off: {e}")))?;
        size += chunk.len() as u64;
        if size > MAX_IMPORT_BYTES {
            return Err(too_large());
        }
        file.write_all(&chunk).await.map_err(|e| {
            tracing::error!(error = %e, "cannot spool an import");
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", "the upload could not be stored; try again")
        })?;
    }
    file.flush().await.ok();
    drop(file);
    let options = Options {
        entity,
        map,
        match_on: q.match_on,
        on_match,
        dry_run: q.dry_run.unwrap_or(false),
        file_name: q.file_name.unwrap_or_else(|| "upload".to_owned()),
        json_lines,
    };
    let prepared = import::prepare(&state.store, &p, &spool.0, None, options).await?;
    let view = import::view(&state.store, prepared.import.clone(), 0).await?;
    let background = state.clone();
    tokio::spawn(async move {
        let spool = spool;
        let store = background.store.clone();
        if let Err(e) = import::run(&store, &p, prepared, |_| {}).await {
            tracing::warn!(error = %e, "an import stopped");
        }
        drop(spool);
    });
    let location = format!("/api/v1/imports/{}", view.id);
    Ok((StatusCode::ACCEPTED, [(header::LOCATION, location)], Json(view)).into_response())
}

fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!(
            "an import body is at most {} MB; split the file, or use `rapport import` on the server",
            MAX_IMPORT_BYTES >> 20
        ),
    )
}

async fn list(State(state): State<AppState>, Extension(p): Caller) -> Result<Response, ApiError> {
    let mut items = Vec::new();
    for i in state.store.imports(p.org_id(), 100).await.map_err(CrmError::from)? {
        if p.scopes.contains(&i.entity.def().read) {
            items.push(import::view(&state.store, i, 0).await?);
        }
    }
    Ok(Json(json!({ "items": items })).into_response())
}

async fn show(
    State(state): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ImportShowQuery>,
) -> Result<Response, ApiError> {
    let i = import::get(&state.store, &p, &id).await?;
    let n = q.failures.unwrap_or(100).min(1_000);
    Ok(Json(import::view(&state.store, i, n).await?).into_response())
}

/// The failed rows as CSV: the file's columns, then `line` and `error`.
async fn failures(
    State(state): State<AppState>,
    Extension(p): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    Ok(failures_answer(&state.store, &p, &id).await?)
}

/// An import's failed rows as a CSV download (the REST route and the console's link).
pub async fn failures_answer(store: &crate::store::Store, p: &Principal, id: &str) -> Result<Response, CrmError> {
    let i = import::get(store, p, id).await?;
    let bytes = import::failed_rows_csv(store, &i, Vec::new()).await?;
    let name = format!("attachment; filename=\"{}-failed-rows.csv\"", i.id);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, name)], bytes)
        .into_response())
}

async fn export(
    State(state): State<AppState>,
    Extension(p): Caller,
    ApiQuery(q): ApiQuery<ExportQuery>,
    entity: Entity,
) -> Result<Response, ApiError> {
    let format = ExportFormat::parse(q.format.as_deref().unwrap_or("csv"))?;
    let filters: Vec<Value> = match q.filter.as_deref().filter(|f| !f.trim().is_empty()) {
        None => Vec::new(),
        Some(f) => match serde_json::from_str::<Value>(f) {
            Ok(Value::Array(list)) => list,
            Ok(one @ Value::Object(_)) => vec![one],
            _ => return Err(ApiError::bad_request("`filter` is the JSON filter list of search_records")),
        },
    };
    let export = Export::new(&state.store, &p, entity, format, q.q.as_deref(), &filters).await?;
    Ok(export_answer(export, state.store.clone(), (*p).clone()).await?)
}

/// An export as a streamed download. The first page is read before the status is sent: a
/// query the database refuses (a NUL on PostgreSQL) is an error answer, not a body that
/// breaks off.
pub async fn export_answer(
    mut export: Export,
    store: Arc<crate::store::Store>,
    p: Principal,
) -> Result<Response, CrmError> {
    let first = export.next(&store, &p).await?;
    let name = format!("attachment; filename=\"{}.{}\"", export.entity().plural(), export.format().extension());
    let content_type = export.format().content_type().to_owned();
    let head = futures_util::stream::iter(first.map(Ok::<_, std::io::Error>));
    let rest = futures_util::stream::unfold(Some((export, store, p)), |cursor| async move {
        let (mut export, store, p) = cursor?;
        match export.next(&store, &p).await {
            Ok(Some(bytes)) => Some((Ok::<_, std::io::Error>(bytes), Some((export, store, p)))),
            Ok(None) => None,
            Err(e) => {
                // The status is sent already: the body breaks off, which the client sees.
                tracing::warn!(error = %e, "an export stopped");
                Some((Err(std::io::Error::other(e.to_string())), None))
            }
        }
    });
    Ok((
        [(header::CONTENT_TYPE, content_type), (header::CONTENT_DISPOSITION, name)],
        Body::from_stream(head.chain(rest)),
    )
        .into_response())
}

async fn privacy_export(
    State(state): State<AppState>,
    Extension(p): Caller,
    ApiQuery(q): ApiQuery<PrivacyQuery>,
) -> Result<Response, ApiError> {
    Ok(Json(crate::crm::privacy::export(&state.store, &p, &q.email).await?).into_response())
}

async fn privacy_erase(
    State(state): State<AppState>,
    Extension(p): Caller,
    super::extract::ApiJson(body): super::extract::ApiJson<EraseBody>,
) -> Result<Response, ApiError> {
    Ok(Json(crate::crm::privacy::erase(&state.store, &p, &body.email).await?).into_response())
}
