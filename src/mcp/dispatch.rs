//! From a tool name and its arguments to the domain call and back. Every domain error
//! becomes a message the model can act on; this is the one place that mapping happens.

use rapport_tools::inputs::*;
use rapport_tools::{Call, Entity, ToolDef};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::auth::Principal;
use crate::crm::{Acting, CrmError, MAX_BATCH, MAX_PAGE, links, merge, records, schema, timeline, trash, workspace};
use crate::store::Claim;
use crate::time;
use crate::webhooks::endpoints as hooks;

/// What kind of failure a call met: the REST API answers it with a status, MCP with the
/// message alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The arguments are wrong; the message says how.
    Invalid,
    NotFound,
    /// The data forbids it now (a unique value taken, a stale `if_updated_at`, an
    /// idempotency key in use).
    Conflict,
    /// The key lacks a scope: a refused use, audited.
    Denied,
    Unavailable,
    Internal,
}

/// A failed call, as the model will read it.
#[derive(Debug)]
pub struct ToolError {
    pub message: String,
    pub kind: Failure,
}

impl ToolError {
    fn plain(message: String) -> Self {
        ToolError { message, kind: Failure::Invalid }
    }

    fn of(kind: Failure, message: String) -> Self {
        ToolError { message, kind }
    }

    pub fn denied(&self) -> bool {
        self.kind == Failure::Denied
    }

    /// Arguments that do not fit the tool, with the tool's example call.
    fn arguments(def: &ToolDef, what: impl std::fmt::Display) -> Self {
        ToolError::plain(format!("invalid arguments for {}{what}. Example: {}", def.name, def.example()))
    }

    pub fn scope(def: &ToolDef) -> Self {
        ToolError {
            message: format!(
                "this API key may not call {}: it lacks the scopes the tool needs. get_workspace lists the key's scopes; ask an administrator for a key with more",
                def.name
            ),
            kind: Failure::Denied,
        }
    }

    /// A domain error for the model to read; invalid arguments come with the tool's example.
    fn domain(def: &ToolDef, e: CrmError) -> Self {
        let invalid = matches!(e, CrmError::Invalid(_));
        let mut err = ToolError::from(e);
        if invalid {
            err.message = format!("{} Example: {}", err.message, def.example());
        }
        err
    }
}

impl From<CrmError> for ToolError {
    fn from(e: CrmError) -> Self {
        let (kind, message) = match &e {
            CrmError::Store(crate::store::StoreError::Invalid(m)) => (Failure::Invalid, m.clone()),
            CrmError::Store(inner) if inner.is_unavailable() => {
                (Failure::Unavailable, "the database is unavailable right now; try again in a few seconds".to_owned())
            }
            CrmError::Store(inner) => {
                tracing::error!(error = %inner, "tool call failed in storage");
                let m = "an internal error occurred; it has been logged. Try again, and report it if it persists";
                (Failure::Internal, m.to_owned())
            }
            CrmError::Invalid(_) => (Failure::Invalid, e.to_string()),
            CrmError::NotFound(_) | CrmError::Missing(_) => (Failure::NotFound, e.to_string()),
            CrmError::Conflict(_) => (Failure::Conflict, e.to_string()),
            CrmError::Forbidden(_) | CrmError::Denied(_) => (Failure::Denied, e.to_string()),
        };
        ToolError { message, kind }
    }
}

fn parse<T: DeserializeOwned>(def: &ToolDef, args: Map<String, Value>) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!(" at `{path}`") };
        ToolError::arguments(def, format!("{at}: {}", e.inner()))
    })
}

fn out<T: Serialize>(v: T) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::of(Failure::Internal, format!("could not encode the result: {e}")))
}

/// The records list of a write tool: `{"contacts": [...]}` (and an `idempotency_key`,
/// taken off before this is called).
fn items(def: &ToolDef, entity: Entity, mut args: Map<String, Value>) -> Result<Vec<Value>, ToolError> {
    let list = entity.plural();
    let invalid = |message: String| ToolError::arguments(def, format!(": {message}"));
    if let Some(other) = args.keys().find(|k| k.as_str() != list) {
        return Err(invalid(format!("unknown field `{other}`, expected `{list}`")));
    }
    match args.remove(list) {
        Some(Value::Array(items)) => Ok(items),
        Some(other) => Err(invalid(format!("`{list}` takes a list of objects, got {other}"))),
        None => Err(invalid(format!("missing field `{list}`"))),
    }
}

/// Tools that take an `idempotency_key`.
fn takes_idempotency_key(def: &ToolDef) -> bool {
    matches!(def.call, Call::Create(_) | Call::Upsert(_)) || matches!(def.name, "merge_records" | "link_records")
}

/// A tool call as MCP and the REST API make it: the key's scopes checked, the call run,
/// counted, and a refusal audited.
pub async fn invoke(
    state: &AppState,
    principal: &Principal,
    def: &ToolDef,
    args: Map<String, Value>,
) -> Result<Value, ToolError> {
    let outcome = if def.access.allows(&principal.scopes) {
        call(state, principal, def, args).await
    } else {
        Err(ToolError::scope(def))
    };
    state.metrics.tool_call(def.name, outcome.is_ok());
    if let Err(e) = &outcome
        && e.denied()
    {
        let entry = principal.refusal(serde_json::json!({ "reason": "insufficient_scope", "tool": def.name }));
        if let Err(e) = state.store.insert_audit(&entry).await {
            tracing::warn!(error = %e, "could not audit a refused tool call");
        }
    }
    outcome
}

/// Runs a call once per `idempotency_key` (and API key) within 24 hours: a repeat answers
/// what the first call answered; the same key with other arguments is refused.
pub async fn call(
    state: &AppState,
    principal: &Principal,
    def: &ToolDef,
    mut args: Map<String, Value>,
) -> Result<Value, ToolError> {
    let idem = match (takes_idempotency_key(def), args.remove("idempotency_key")) {
        (true, Some(Value::String(k))) if (1..=200).contains(&k.chars().count()) => Some(k),
        (true, Some(Value::Null)) | (_, None) => None,
        (true, Some(other)) => {
            return Err(ToolError::arguments(def, format!(": `idempotency_key` is 1 to 200 characters, got {other}")));
        }
        (false, Some(_)) => {
            return Err(ToolError::arguments(def, ": unknown field `idempotency_key`; only creating calls take it"));
        }
    };
    let (Some(idem), Some(key_id)) = (idem, principal.key_id()) else {
        return run(state, principal, def, args).await;
    };
    let store = state.store.as_ref();
    let hash = crate::crm::cursor::fingerprint(&[def.name, &Value::Object(args.clone()).to_string()]);
    let unavailable = |e: crate::store::StoreError| ToolError::from(CrmError::Store(e));
    match store
        .claim_idempotency(principal.org_id(), key_id, &idem, def.name, &hash, time::now_ms())
        .await
        .map_err(unavailable)?
    {
        Claim::Done(answer) => serde_json::from_str(&answer)
            .map_err(|e| ToolError::of(Failure::Internal, format!("could not read the stored answer: {e}"))),
        Claim::Running => Err(ToolError::of(
            Failure::Conflict,
            format!(
                "a call with idempotency_key {idem:?} is still running; wait a moment and repeat it to get its answer"
            ),
        )),
        Claim::Mismatch => Err(ToolError::of(
            Failure::Conflict,
            format!(
                "idempotency_key {idem:?} was used in the last 24 hours for a different call; use a new key for new work"
            ),
        )),
        Claim::Fresh => {
            let outcome = run(state, principal, def, args).await;
            let answer = outcome.as_ref().ok().map(Value::to_string);
            if let Err(e) = store.finish_idempotency(key_id, &idem, answer.as_deref()).await {
                tracing::warn!(error = %e, "could not record an idempotent call's answer");
            }
            outcome
        }
    }
}

async fn run(
    state: &AppState,
    principal: &Principal,
    def: &ToolDef,
    args: Map<String, Value>,
) -> Result<Value, ToolError> {
    let store = state.store.as_ref();
    let p = principal;
    let domain = |e: CrmError| ToolError::domain(def, e);
    match def.call {
        Call::Create(entity) => {
            return out(Box::pin(records::create(store, p, entity, items(def, entity, args)?))
                .await
                .map_err(domain)?);
        }
        Call::Update(entity) => {
            return out(Box::pin(records::update(store, p, entity, items(def, entity, args)?))
                .await
                .map_err(domain)?);
        }
        Call::Upsert(entity) => {
            return out(Box::pin(records::upsert(store, p, entity, items(def, entity, args)?))
                .await
                .map_err(domain)?);
        }
        Call::Fixed => {}
    }
    match def.name {
        "get_workspace" => {
            let NoArguments {} = parse(def, args)?;
            let counts = Box::pin(workspace::counts(store, p)).await.map_err(domain)?;
            let (key_id, key_name, key_preview, expires_at) = match &p.acting {
                Acting::Key { id, name, preview, expires_at, .. } => {
                    (id.clone(), name.clone(), preview.clone(), *expires_at)
                }
                Acting::Person(_) => (String::new(), "console".to_owned(), String::new(), None),
                Acting::Cli | Acting::System => (String::new(), "cli".to_owned(), String::new(), None),
            };
            let user = p.acting_user().map_err(domain)?;
            out(Workspace {
                organization: NamedId { id: p.org.id.to_string(), name: p.org.name.clone() },
                user: WorkspaceUser {
                    id: user.id.clone(),
                    email: user.email.clone(),
                    name: user.name.clone(),
                    role: user.role,
                },
                key: WorkspaceKey {
                    id: key_id,
                    name: key_name,
                    preview: key_preview,
                    expires_at: expires_at.map(time::rfc3339),
                },
                scopes: p.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
                limits: Limits {
                    max_batch: MAX_BATCH as u32,
                    max_page: MAX_PAGE,
                    rate_limit_per_minute: state.settings.rate_limit,
                    max_active_keys: state.settings.max_active_keys,
                },
                counts,
            })
        }
        "describe_entity" => {
            let input: DescribeEntityInput = parse(def, args)?;
            out(Box::pin(workspace::describe(store, p, input.entity)).await.map_err(domain)?)
        }
        "search_records" => {
            let r = records::search(store, p, parse(def, args)?).await.map_err(domain)?;
            let mut v = Map::new();
            v.insert("items".into(), Value::Array(r.items.into_iter().map(Value::Object).collect()));
            v.insert("next_cursor".into(), r.next_cursor.map_or(Value::Null, Value::String));
            Ok(Value::Object(v))
        }
        "count_records" => out(Box::pin(records::count(store, p, parse(def, args)?)).await.map_err(domain)?),
        "get_records" => {
            // Built by moving the records in: `out` would copy every value once more.
            let r = records::get(store, p, parse(def, args)?).await.map_err(domain)?;
            let mut v = Map::new();
            v.insert("items".into(), Value::Array(r.items.into_iter().map(Value::Object).collect()));
            v.insert("missing".into(), out(r.missing)?);
            Ok(Value::Object(v))
        }
        "search_all" => out(Box::pin(records::search_all(store, p, parse(def, args)?)).await.map_err(domain)?),
        "get_timeline" => out(Box::pin(timeline::timeline(store, p, parse(def, args)?)).await.map_err(domain)?),
        "link_records" => {
            let input: LinkRecordsInput = parse(def, args)?;
            out(Box::pin(links::set(store, p, &input.links, true)).await.map_err(domain)?)
        }
        "unlink_records" => {
            let input: UnlinkRecordsInput = parse(def, args)?;
            out(Box::pin(links::set(store, p, &input.links, false)).await.map_err(domain)?)
        }
        "merge_records" => out(Box::pin(merge::merge(store, p, parse(def, args)?)).await.map_err(domain)?),
        "delete_records" => out(Box::pin(trash::delete(store, p, parse(def, args)?)).await.map_err(domain)?),
        "restore_records" => {
            let days = state.settings.trash_days;
            out(Box::pin(trash::restore(store, p, parse(def, args)?, days)).await.map_err(domain)?)
        }
        "create_custom_field" => {
            out(Box::pin(schema::create_custom_field(store, p, parse(def, args)?)).await.map_err(domain)?)
        }
        "update_custom_field" => {
            out(Box::pin(schema::update_custom_field(store, p, parse(def, args)?)).await.map_err(domain)?)
        }
        "delete_custom_field" => {
            out(Box::pin(schema::delete_custom_field(store, p, parse(def, args)?)).await.map_err(domain)?)
        }
        "create_pipeline" => {
            out(Box::pin(schema::create_pipeline(store, p, parse(def, args)?)).await.map_err(domain)?)
        }
        "update_pipeline" => {
            out(Box::pin(schema::update_pipeline(store, p, parse(def, args)?)).await.map_err(domain)?)
        }
        "create_webhook" => {
            let private = state.settings.webhook_allow_private;
            out(Box::pin(hooks::create(store, p, parse(def, args)?, private)).await.map_err(domain)?)
        }
        "update_webhook" => {
            let private = state.settings.webhook_allow_private;
            out(Box::pin(hooks::update(store, p, parse(def, args)?, private)).await.map_err(domain)?)
        }
        "delete_webhook" => out(Box::pin(hooks::delete(store, p, parse(def, args)?)).await.map_err(domain)?),
        "list_webhooks" => {
            let NoArguments {} = parse(def, args)?;
            out(Box::pin(hooks::list(store, p)).await.map_err(domain)?)
        }
        "list_webhook_deliveries" => {
            out(Box::pin(hooks::deliveries(store, p, parse(def, args)?)).await.map_err(domain)?)
        }
        "resend_webhook_delivery" => out(Box::pin(hooks::resend(store, p, parse(def, args)?)).await.map_err(domain)?),
        other => Err(ToolError::of(Failure::Internal, format!("tool {other} is listed but not served; this is a bug"))),
    }
}
