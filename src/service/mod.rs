//! The tool layer every front-end calls: a tool and its arguments become a typed `ToolCall`
//! once, run against the domain, and come back as the tool's answer. MCP and REST reach the
//! domain only through here. Every domain error becomes a message the model can act on;
//! this is the one place that mapping happens.

use rapport_tools::inputs::*;
use rapport_tools::{ArgumentsError, Effect, ToolCall, ToolDef};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::auth::Principal;
use crate::crm::{
    Acting, CrmError, MAX_BATCH, MAX_PAGE, links, merge, records, revert, schema, timeline, trash, workspace,
};
use crate::state::AppState;
use crate::store::{Claim, Via};
use crate::time;
use crate::webhooks::endpoints as hooks;

pub mod approvals;

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

    /// A member's error as the caller of its family reads it: `write_records` takes
    /// `items`, not `contacts`.
    fn for_member_of(mut self, called: &ToolDef, def: &ToolDef) -> Self {
        if let (
            rapport_tools::Tool::WriteRecords,
            rapport_tools::Tool::Create(e) | rapport_tools::Tool::Update(e) | rapport_tools::Tool::Upsert(e),
        ) = (called.tool, def.tool)
        {
            self.message = self.message.replace(&format!("{}[", e.plural()), "items[");
        }
        self
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

/// A dry run's answer (SPEC 12): the call's own answer, with any secret it would show left
/// out, and the change entries it would write.
fn dry_answer(mut result: Value, changes: Vec<crate::store::Change>) -> Value {
    if let Some(secret) = result.get_mut("secret") {
        *secret = Value::Null;
    }
    let entries: Vec<Value> =
        changes.into_iter().map(|c| serde_json::to_value(crate::crm::timeline::entry(c)).unwrap_or_default()).collect();
    serde_json::json!({ "dry_run": true, "result": result, "changes": entries })
}

tokio::task_local! {
    /// A REST request asked for `?dry_run=true` for the tool it runs; the dry run's answer
    /// is left here, for the route to answer with whatever it answers otherwise.
    pub static REST_DRY_RUN: std::sync::Arc<std::sync::Mutex<Option<Value>>>;
}

tokio::task_local! {
    /// A REST request's call was held for approval: the held answer is left here, for the
    /// route to answer 202 with.
    pub static REST_HELD: std::sync::Arc<std::sync::Mutex<Option<Value>>>;
}

/// A held call's answer, noted for REST.
fn held(answer: Value) -> Value {
    let _ = REST_HELD.try_with(|cell| *cell.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer.clone()));
    answer
}

fn rest_dry_run() -> bool {
    REST_DRY_RUN.try_with(|_| ()).is_ok()
}

fn out<T: Serialize>(v: T) -> Result<Value, ToolError> {
    serde_json::to_value(v).map_err(|e| ToolError::of(Failure::Internal, format!("could not encode the result: {e}")))
}

/// A tool call as MCP and the REST API make it: the key's scopes checked, the call run,
/// counted, and a refusal audited.
pub async fn invoke(
    state: &AppState,
    principal: &Principal,
    called: &ToolDef,
    args: Map<String, Value>,
) -> Result<Value, ToolError> {
    // The tool that ran is written beside every change and audit entry it makes; a read
    // writes none, and keeps the principal as it is.
    let named;
    let principal = if called.tool.effect() == Effect::Read {
        principal
    } else {
        named =
            Principal { via: Via { tool: Some(called.name.to_owned()), ..principal.via.clone() }, ..principal.clone() };
        &named
    };
    // A family's call (SPEC 5, lean) is a call of the member it names: scopes, approvals,
    // idempotency and the answer are the member's; messages name what the caller called.
    let outcome = match called.tool.resolve(args) {
        Err(e) => Err(ToolError::arguments(called, e)),
        Ok((tool, args)) => {
            let def = ToolDef::of(tool);
            if def.access.allows(&principal.scopes) {
                call(state, principal, Named { called, def }, args).await.map_err(|e| e.for_member_of(called, def))
            } else {
                Err(ToolError::scope(def))
            }
        }
    };
    state.metrics.tool_call(called.name, outcome.is_ok());
    if let Err(e) = &outcome
        && e.denied()
    {
        let mut entry = principal.refusal(serde_json::json!({ "reason": "insufficient_scope", "tool": called.name }));
        entry.via.tool = Some(called.name.to_owned());
        if let Err(e) = state.store.insert_audit(&entry).await {
            tracing::warn!(error = %e, "could not audit a refused tool call");
        }
    }
    outcome
}

/// The tool a call runs, and the one the caller named (a lean family, or the same).
#[derive(Clone, Copy)]
struct Named<'a> {
    called: &'a ToolDef,
    def: &'static ToolDef,
}

/// Runs a call once per `idempotency_key` (and API key) within 24 hours: a repeat answers
/// what the first call answered; the same key with other arguments is refused.
async fn call(
    state: &AppState,
    principal: &Principal,
    named: Named<'_>,
    mut args: Map<String, Value>,
) -> Result<Value, ToolError> {
    let Named { called, def } = named;
    let idem = match (def.tool.takes_idempotency_key(), args.remove("idempotency_key")) {
        (true, Some(Value::String(k))) if (1..=200).contains(&k.chars().count()) => Some(k),
        (true, Some(Value::Null)) | (_, None) => None,
        (true, Some(other)) => {
            return Err(ToolError::arguments(
                called,
                format!(": `idempotency_key` is 1 to 200 characters, got {other}"),
            ));
        }
        (false, Some(_)) => {
            return Err(ToolError::arguments(called, ": unknown field `idempotency_key`; only creating calls take it"));
        }
    };
    let writes = def.tool.effect() != Effect::Read;
    let dry = match (writes, args.remove("dry_run")) {
        (true, Some(Value::Bool(b))) => b,
        (true, None | Some(Value::Null)) => false,
        (true, Some(other)) => {
            return Err(ToolError::arguments(called, format!(": `dry_run` is true or false, got {other}")));
        }
        (false, Some(_)) => {
            return Err(ToolError::arguments(called, ": unknown field `dry_run`; a read changes nothing"));
        }
        (false, None) => false,
    } || (writes && rest_dry_run());
    let hash = crate::crm::cursor::fingerprint(&[def.name, &Value::Object(args.clone()).to_string()]);
    let arguments = args.clone();
    let parsed = ToolCall::parse(def.tool, args).map_err(|e: ArgumentsError| ToolError::arguments(called, e))?;
    // Approvals (SPEC 12): the key's policy may hold this call for a person. What it would
    // change is worked out by a dry run; the same idempotency key gives back the same
    // approval.
    if let Some(policy) = principal.approval_policy().filter(|_| writes) {
        if let Some(idem) = idem.as_deref().filter(|_| !dry)
            && let Some(answer) = approvals::asked_before(state, principal, idem).await?
        {
            return Ok(held(answer));
        }
        let (result, changes) = crate::store::dry::run(run(state, principal, called, parsed.clone())).await;
        let result = result?;
        let kinds = approvals::kinds_needed(def, policy, &changes);
        if dry {
            let mut answer = dry_answer(result, changes);
            if !kinds.is_empty() {
                answer["needs_approval"] = serde_json::json!(kinds);
            }
            let _ =
                REST_DRY_RUN.try_with(|cell| *cell.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer.clone()));
            return Ok(answer);
        }
        if !kinds.is_empty() {
            return approvals::hold(state, principal, def, arguments, idem, kinds, changes).await.map(held);
        }
    }
    if dry {
        // Spends no idempotency key: the same key may make the real call afterwards.
        let (result, changes) = crate::store::dry::run(run(state, principal, called, parsed)).await;
        let answer = dry_answer(result?, changes);
        let _ = REST_DRY_RUN.try_with(|cell| *cell.lock().unwrap_or_else(|p| p.into_inner()) = Some(answer.clone()));
        return Ok(answer);
    }
    let (Some(idem), Some(key_id)) = (idem, principal.key_id()) else {
        return run(state, principal, called, parsed).await;
    };
    let store = state.store.as_ref();
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
            let outcome = run(state, principal, called, parsed).await;
            let answer = outcome.as_ref().ok().map(Value::to_string);
            if let Err(e) = store.finish_idempotency(key_id, &idem, answer.as_deref()).await {
                tracing::warn!(error = %e, "could not record an idempotent call's answer");
            }
            outcome
        }
    }
}

async fn run(state: &AppState, p: &Principal, def: &ToolDef, call: ToolCall) -> Result<Value, ToolError> {
    let store = state.store.as_ref();
    let domain = |e: CrmError| ToolError::domain(def, e);
    let private = state.settings.webhook_allow_private;
    match call {
        ToolCall::Create(entity, items) => {
            out(Box::pin(records::create(store, p, entity, items)).await.map_err(domain)?)
        }
        ToolCall::Update(entity, items) => {
            out(Box::pin(records::update(store, p, entity, items)).await.map_err(domain)?)
        }
        ToolCall::Upsert(entity, items) => {
            out(Box::pin(records::upsert(store, p, entity, items)).await.map_err(domain)?)
        }
        ToolCall::FindDuplicates(input) => {
            out(Box::pin(crate::crm::duplicates::find(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::GetWorkspace => {
            let counts = Box::pin(workspace::counts(store, p)).await.map_err(domain)?;
            let (key_id, key_name, key_preview, expires_at) = match &p.acting {
                Acting::Key { id, name, preview, expires_at, .. } => {
                    (id.to_string(), name.clone(), preview.clone(), *expires_at)
                }
                Acting::Person(_) => (String::new(), "console".to_owned(), String::new(), None),
                Acting::Cli | Acting::System => (String::new(), "cli".to_owned(), String::new(), None),
            };
            let user = p.acting_user().map_err(domain)?;
            out(Workspace {
                organization: NamedId { id: p.org.id.to_string(), name: p.org.name.clone() },
                user: WorkspaceUser {
                    id: user.id.to_string(),
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
        ToolCall::DescribeEntity(input) => {
            out(Box::pin(workspace::describe(store, p, input.entity)).await.map_err(domain)?)
        }
        ToolCall::SearchRecords(input) => {
            let r = records::search(store, p, input).await.map_err(domain)?;
            let mut v = Map::new();
            v.insert("items".into(), Value::Array(r.items.into_iter().map(Value::Object).collect()));
            v.insert("next_cursor".into(), r.next_cursor.map_or(Value::Null, Value::String));
            Ok(Value::Object(v))
        }
        ToolCall::CountRecords(input) => out(Box::pin(records::count(store, p, input)).await.map_err(domain)?),
        ToolCall::GetRecords(input) => {
            // Built by moving the records in: `out` would copy every value once more.
            let r = records::get(store, p, input).await.map_err(domain)?;
            let mut v = Map::new();
            v.insert("items".into(), Value::Array(r.items.into_iter().map(Value::Object).collect()));
            v.insert("missing".into(), out(r.missing)?);
            Ok(Value::Object(v))
        }
        ToolCall::SearchAll(input) => out(Box::pin(records::search_all(store, p, input)).await.map_err(domain)?),
        ToolCall::GetTimeline(input) => out(Box::pin(timeline::timeline(store, p, input)).await.map_err(domain)?),
        ToolCall::LinkRecords(input) => {
            out(Box::pin(links::set(store, p, &input.links, true)).await.map_err(domain)?)
        }
        ToolCall::UnlinkRecords(input) => {
            out(Box::pin(links::set(store, p, &input.links, false)).await.map_err(domain)?)
        }
        ToolCall::MergeRecords(input) => out(Box::pin(merge::merge(store, p, input)).await.map_err(domain)?),
        ToolCall::DeleteRecords(input) => out(Box::pin(trash::delete(store, p, input)).await.map_err(domain)?),
        ToolCall::RestoreRecords(input) => {
            let days = state.settings.trash_days;
            out(Box::pin(trash::restore(store, p, input, days)).await.map_err(domain)?)
        }
        ToolCall::CreateCustomField(input) => {
            out(Box::pin(schema::create_custom_field(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::UpdateCustomField(input) => {
            out(Box::pin(schema::update_custom_field(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::DeleteCustomField(input) => {
            out(Box::pin(schema::delete_custom_field(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::CreatePipeline(input) => {
            out(Box::pin(schema::create_pipeline(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::UpdatePipeline(input) => {
            out(Box::pin(schema::update_pipeline(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::CreateWebhook(input) => {
            out(Box::pin(hooks::create(store, p, input, private)).await.map_err(domain)?)
        }
        ToolCall::UpdateWebhook(input) => {
            out(Box::pin(hooks::update(store, p, input, private)).await.map_err(domain)?)
        }
        ToolCall::DeleteWebhook(input) => out(Box::pin(hooks::delete(store, p, input)).await.map_err(domain)?),
        ToolCall::ListWebhooks => out(Box::pin(hooks::list(store, p)).await.map_err(domain)?),
        ToolCall::ListWebhookDeliveries(input) => {
            out(Box::pin(hooks::deliveries(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::ResendWebhookDelivery(input) => {
            out(Box::pin(hooks::resend(store, p, input)).await.map_err(domain)?)
        }
        ToolCall::RevertChanges(input) => out(Box::pin(revert::revert(store, p, input)).await.map_err(domain)?),
        ToolCall::GetApproval(input) => out(Box::pin(approvals::get(state, p, input)).await.map_err(domain)?),
    }
}
