//! Approvals (SPEC 12): a key's policy holds some calls for a person. A held call writes
//! nothing but the approval; a person approves it (it then runs as the key, if what it
//! would change is still what they saw) or denies it. No key can decide one.

use std::collections::{BTreeMap, HashSet};

use rapport_tools::approvals::{ApprovalKind, ApprovalPolicy, ApprovalView, GetApprovalInput};
use rapport_tools::{Access, Scope, ToolCall, ToolDef};
use serde_json::{Map, Value, json};

use super::{Failure, ToolError, run};
use crate::crm::{Acting, CrmError, Principal, timeline};
use crate::state::AppState;
use crate::store::{
    Approval, ApprovalFilter, ApprovalState, Change, ChangeAction, ChangeActor, ChangeEntity, KeyId, OrgEvent,
    Requested, Target,
};
use crate::time::{self, DAY_MS, Millis};

/// How long a held call waits for a person.
pub const WAITS_MS: Millis = 7 * DAY_MS;

/// Why a decision could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// Decided already (by someone else, or it expired).
    #[error("{0}")]
    Decided(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Domain(#[from] CrmError),
}

impl From<crate::store::StoreError> for DecideError {
    fn from(e: crate::store::StoreError) -> Self {
        DecideError::Domain(CrmError::Store(e))
    }
}

/// The kinds of `policy` a call of `def` with these changes is; none: it runs.
pub fn kinds_needed(def: &ToolDef, policy: &ApprovalPolicy, changes: &[Change]) -> Vec<ApprovalKind> {
    let mut kinds: Vec<ApprovalKind> =
        def.tool.approval_kinds().iter().copied().filter(|k| policy.kinds.contains(k)).collect();
    if policy.kinds.contains(&ApprovalKind::Bulk) && touched(changes) > policy.bulk_limit as usize {
        kinds.push(ApprovalKind::Bulk);
    }
    kinds.sort();
    kinds
}

/// How many distinct records the changes touch.
fn touched(changes: &[Change]) -> usize {
    changes.iter().map(|c| (c.entity.as_str(), c.record_id.as_str())).collect::<HashSet<_>>().len()
}

/// `deleted 3 contacts, updated 1 deal`.
fn summary(def: &ToolDef, changes: &[Change]) -> String {
    let mut counts: BTreeMap<(&str, String), usize> = BTreeMap::new();
    for c in changes {
        *counts.entry((c.action.as_str(), c.entity.words())).or_default() += 1;
    }
    let parts: Vec<String> = counts
        .into_iter()
        .map(
            |((action, entity), n)| {
                if n == 1 { format!("{action} 1 {entity}") } else { format!("{action} {n} {entity}s") }
            },
        )
        .collect();
    if parts.is_empty() {
        format!("{}: changes no record", def.name)
    } else {
        format!("{}: {}", def.name, parts.join(", "))
    }
}

fn entries(changes: Vec<Change>) -> Vec<Value> {
    changes.into_iter().map(|c| serde_json::to_value(timeline::entry(c)).unwrap_or_default()).collect()
}

/// The view every reader gets (the key that asked, REST, webhooks, the console).
pub fn view(a: &Approval) -> ApprovalView {
    ApprovalView {
        id: a.id.clone(),
        status: a.state.as_str().to_owned(),
        tool: a.tool.clone(),
        kinds: a.kinds.clone(),
        summary: a.summary.clone(),
        key_id: a.key_id.to_string(),
        created_at: time::rfc3339(a.created_at),
        expires_at: time::rfc3339(a.expires_at),
        decided_at: a.decided_at.map(time::rfc3339),
        decided_by: a.decided_by_email.clone(),
        reason: a.reason.clone(),
        result: a.result.clone(),
        changes: a.changes.iter().filter_map(|c| serde_json::from_value(c.clone()).ok()).collect(),
    }
}

/// What a held call answers, as a normal tool result.
fn held_answer(a: &Approval) -> Value {
    let status = match a.state {
        ApprovalState::Pending => "pending_approval",
        other => other.as_str(),
    };
    let mut out = json!({
        "status": status,
        "approval_id": a.id,
        "summary": a.summary,
        "changes": a.changes,
        "expires_at": time::rfc3339(a.expires_at),
    });
    if let Some(r) = &a.result {
        out["result"] = r.clone();
    }
    if let Some(r) = &a.reason {
        out["reason"] = json!(r);
    }
    out
}

/// An approval's webhook event (SPEC 12).
fn event(a: &Approval, event_type: &str, actor: &Principal) -> OrgEvent {
    let now = time::now_ms();
    let who = timeline::actor(actor.change_actor());
    let body = json!({
        "type": event_type,
        "timestamp": time::rfc3339(now),
        "data": { "id": a.id, "entity": "approval", "record": view(a), "actor": who },
    });
    OrgEvent {
        org_id: a.org_id.clone(),
        id: format!("{}:{event_type}", a.id),
        event_type: event_type.to_owned(),
        entity: "approval".into(),
        record_id: a.id.clone(),
        at: now,
        body: body.to_string(),
        needs: Scope::AuditRead,
    }
}

/// The approval the key asked with this idempotency key, as the held call answers it.
pub(super) async fn asked_before(state: &AppState, p: &Principal, idem: &str) -> Result<Option<Value>, ToolError> {
    let Some(key_id) = p.key_id() else { return Ok(None) };
    expire(state).await;
    let found = state.store.approval_by_idempotency(key_id, idem).await.map_err(CrmError::Store)?;
    Ok(found.map(|a| held_answer(&a)))
}

/// Holds a call for a person: writes the approval (and its audit entry and events) and
/// nothing else.
pub(super) async fn hold(
    state: &AppState,
    p: &Principal,
    def: &ToolDef,
    arguments: Map<String, Value>,
    idempotency_key: Option<String>,
    kinds: Vec<ApprovalKind>,
    changes: Vec<Change>,
) -> Result<Value, ToolError> {
    let key_id = p.key_id().expect("only keys carry a policy").to_owned();
    let now = time::now_ms();
    let a = Approval {
        id: uuid::Uuid::now_v7().to_string(),
        org_id: p.org_id().clone(),
        key_id,
        tool: def.name.to_owned(),
        arguments,
        idempotency_key,
        kinds,
        summary: summary(def, &changes),
        changes: entries(changes),
        via: p.via.clone(),
        state: ApprovalState::Pending,
        created_at: now,
        expires_at: now + WAITS_MS,
        decided_at: None,
        decided_by: None,
        decided_by_email: None,
        reason: None,
        result: None,
    };
    let audit = p.audit(
        "approval.request",
        Target::Approval(&a.id),
        json!({ "tool": a.tool, "kinds": a.kinds, "summary": a.summary }),
    );
    match state
        .store
        .request_approval(&a, &audit, &[event(&a, "approval.requested", p)])
        .await
        .map_err(CrmError::Store)?
    {
        Requested::New => Ok(held_answer(&a)),
        Requested::Existing(before) => Ok(held_answer(&before)),
        Requested::Full => Err(ToolError::of(
            Failure::Conflict,
            format!(
                "this key has {} calls waiting for approval already, the most it may; ask a person to decide them on the console's Approvals page first",
                crate::store::MAX_PENDING_PER_KEY
            ),
        )),
    }
}

/// Ends what waited too long; a failure only delays it.
async fn expire(state: &AppState) {
    if let Err(e) = state.store.expire_approvals(time::now_ms()).await {
        tracing::warn!(error = %e, "could not expire approvals");
    }
}

/// `get_approval`: only the key that asked may read it.
pub(super) async fn get(state: &AppState, p: &Principal, input: GetApprovalInput) -> Result<ApprovalView, CrmError> {
    expire(state).await;
    let id = input.approval_id.trim();
    match state.store.approval(p.org_id(), id).await? {
        Some(a) if Some(&a.key_id) == p.key_id() => Ok(view(&a)),
        _ => Err(CrmError::Missing(format!("no approval {id} asked by this key"))),
    }
}

/// One approval for REST and the console (`audit:read`).
pub async fn show(state: &AppState, p: &Principal, id: &str) -> Result<ApprovalView, CrmError> {
    p.require_audited(&state.store, Scope::AuditRead).await.map_err(CrmError::Forbidden)?;
    expire(state).await;
    let a = state.store.approval(p.org_id(), id.trim()).await?;
    a.map(|a| view(&a)).ok_or_else(|| CrmError::Missing(format!("no approval {id}")))
}

/// A page of approvals, newest first (`audit:read`).
pub async fn list(
    state: &AppState,
    p: &Principal,
    filter: ApprovalFilter,
    before: Option<(Millis, String)>,
    limit: u32,
) -> Result<Vec<Approval>, CrmError> {
    // Every person sees what waits (as they see Activity) and decides what their role
    // covers; a key lists approvals only with `audit:read`.
    if !matches!(p.acting, Acting::Person(_)) {
        p.require_audited(&state.store, Scope::AuditRead).await.map_err(CrmError::Forbidden)?;
    }
    if let Some(s) = &filter.state
        && ApprovalState::parse(s).is_none()
    {
        return Err(CrmError::invalid(format!("`state` is pending, approved, denied, stale or expired, got {s:?}")));
    }
    expire(state).await;
    Ok(state.store.list_approvals(p.org_id(), &filter, before, limit).await?)
}

/// How many approvals wait (the console's navigation count).
pub async fn pending(state: &AppState, p: &Principal) -> u64 {
    state.store.count_pending_approvals(p.org_id(), time::now_ms()).await.map_or(0, |n| n.max(0) as u64)
}

fn def_of(name: &str) -> Result<&'static ToolDef, DecideError> {
    ToolDef::find(name).ok_or_else(|| DecideError::Invalid(format!("this server has no tool {name} any more")))
}

/// Whether `scopes` cover the call: the tool's own access, and for each record it would
/// change, the scope that change takes.
pub fn covers(scopes: &rapport_tools::Scopes, a: &Approval) -> bool {
    let Ok(def) = def_of(&a.tool) else { return false };
    let tool_ok = match def.access {
        Access::AnyEntity(_) => true,
        other => other.allows(scopes),
    };
    tool_ok
        && changes_of(a).iter().all(|c| match (c.entity.record(), c.action) {
            (Some(e), ChangeAction::Deleted | ChangeAction::Merged | ChangeAction::Restored) => {
                scopes.contains(&e.def().delete)
            }
            (Some(e), _) => scopes.contains(&e.def().write),
            (None, _) => true,
        })
}

/// The person deciding: never a key; their role must cover the call.
async fn decider<'a>(
    state: &AppState,
    p: &'a Principal,
    id: &str,
) -> Result<(Approval, &'a crate::store::User), DecideError> {
    let user = match &p.acting {
        Acting::Person(u) => u,
        _ => {
            return Err(DecideError::Forbidden(
                "only a person decides an approval: on the console's Approvals page, or with `rapport approvals approve|deny ID --as EMAIL`".into(),
            ));
        }
    };
    expire(state).await;
    let a = state
        .store
        .approval(p.org_id(), id.trim())
        .await?
        .ok_or_else(|| DecideError::NotFound(format!("no approval {id}")))?;
    if a.state != ApprovalState::Pending {
        return Err(DecideError::Decided(format!("approval {} is {} already", a.id, a.state.as_str())));
    }
    if !covers(&p.scopes, &a) {
        let entry = p.refusal(json!({ "reason": "approval_beyond_role", "approval": a.id, "tool": a.tool }));
        state.store.insert_audit(&entry).await?;
        return Err(DecideError::Forbidden(format!(
            "your role ({}) does not cover this call ({}); a person whose role does must decide it",
            user.role, a.summary
        )));
    }
    Ok((a, user))
}

/// Denies a held call, with the reason the key will read.
pub async fn deny(state: &AppState, p: &Principal, id: &str, reason: &str) -> Result<ApprovalView, DecideError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1000 {
        return Err(DecideError::Invalid(
            "a denial needs a reason, 1 to 1000 characters, for the agent to read".into(),
        ));
    }
    let (a, user) = decider(state, p, id).await?;
    let now = time::now_ms();
    let denied = Approval {
        state: ApprovalState::Denied,
        decided_at: Some(now),
        decided_by: Some(user.id.clone()),
        decided_by_email: Some(user.email.clone()),
        reason: Some(reason.to_owned()),
        ..a.clone()
    };
    let audit = p.audit("approval.deny", Target::Approval(&a.id), json!({ "tool": a.tool, "reason": reason }));
    let events = [event(&denied, "approval.decided", p)];
    if !state.store.decide_approval(&denied, &audit, &events).await? {
        return Err(DecideError::Decided(format!("approval {} was decided meanwhile", a.id)));
    }
    Ok(view(&denied))
}

/// Approves a held call and runs it as the key, with the key's scopes as they are now; if
/// what it would change now differs from what was approved, or the key is no longer
/// enabled, it does not run and the approval is `stale`.
pub async fn approve(state: &AppState, p: &Principal, id: &str) -> Result<ApprovalView, DecideError> {
    let (a, user) = decider(state, p, id).await?;
    let now = time::now_ms();
    let audit = p.audit("approval.approve", Target::Approval(&a.id), json!({ "tool": a.tool, "summary": a.summary }));
    let decided = Approval {
        state: ApprovalState::Approved,
        decided_at: Some(now),
        decided_by: Some(user.id.clone()),
        decided_by_email: Some(user.email.clone()),
        ..a.clone()
    };
    if !state.store.decide_approval(&decided, &audit, &[]).await? {
        return Err(DecideError::Decided(format!("approval {} was decided meanwhile", a.id)));
    }
    let done = match run_approved(state, &decided).await {
        Ok(result) => Approval { result: Some(result), ..decided },
        Err(why) => Approval { state: ApprovalState::Stale, reason: Some(why), ..decided },
    };
    let stale_audit = (done.state == ApprovalState::Stale).then(|| {
        p.audit("approval.stale", Target::Approval(&done.id), json!({ "tool": done.tool, "reason": done.reason }))
    });
    state.store.finish_approval(&done, stale_audit.as_ref(), &[event(&done, "approval.decided", p)]).await?;
    Ok(view(&done))
}

/// Runs an approved call as its key; `Err` says why it went stale.
async fn run_approved(state: &AppState, a: &Approval) -> Result<Value, String> {
    let def = def_of(&a.tool).map_err(|e| e.to_string())?;
    let store = state.store.as_ref();
    let internal = |e: crate::store::StoreError| format!("could not read the key: {e}");
    let key = store.get_key(&a.org_id, &a.key_id).await.map_err(internal)?.ok_or("the key was deleted")?;
    let owner = store.user_by_id(&a.org_id, &key.user_id).await.map_err(internal)?.ok_or("the key's owner is gone")?;
    let now = time::now_ms();
    if key.status != crate::store::KeyStatus::Enabled || key.expires_at.is_some_and(|at| at <= now) || !owner.active {
        return Err("the key is no longer enabled".into());
    }
    let org = store.org_by_id(&a.org_id).await.map_err(internal)?.ok_or("the organization is gone")?;
    let principal = Principal { via: a.via.clone(), ..Principal::key(org, &key, owner, None) };
    if !def.access.allows(&principal.scopes) {
        return Err(format!("the key no longer holds the scopes {} needs", def.name));
    }
    let call =
        ToolCall::parse(def.tool, a.arguments.clone()).map_err(|e| format!("its arguments no longer parse{e}"))?;
    let (preview, changes) = crate::store::dry::run(run(state, &principal, def, call.clone())).await;
    if let Err(e) = preview {
        return Err(format!("it would fail now: {}", e.message));
    }
    if normalized(&entries(changes)) != normalized(&a.changes) {
        return Err("what it would change now differs from what was approved (the records moved since)".into());
    }
    run(state, &principal, def, call).await.map_err(|e| format!("it failed when run: {}", e.message))
}

/// Change entries without what differs from one run to the next: ids and times, and the
/// ids of records the call creates.
fn normalized(entries: &[Value]) -> Vec<Value> {
    let created: Vec<String> = entries
        .iter()
        .filter(|e| e["action"] == "created")
        .filter_map(|e| e["record_id"].as_str().map(str::to_owned))
        .collect();
    fn scrub(v: &Value, created: &[String]) -> Value {
        match v {
            Value::String(s) => match created.iter().position(|c| c == s) {
                Some(i) => json!(format!("<created {i}>")),
                None => v.clone(),
            },
            Value::Array(a) => Value::Array(a.iter().map(|x| scrub(x, created)).collect()),
            Value::Object(o) => Value::Object(
                o.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "created_at" | "updated_at"))
                    .map(|(k, x)| (k.clone(), scrub(x, created)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    entries
        .iter()
        .map(|e| {
            json!({
                "action": e["action"],
                "entity": e["entity"],
                "record_id": scrub(&e["record_id"], &created),
                "changes": scrub(&e["changes"], &created),
            })
        })
        .collect()
}

/// The changes an approval shows, as the change log holds them (to show them as Activity
/// does).
pub fn changes_of(a: &Approval) -> Vec<Change> {
    a.changes
        .iter()
        .filter_map(|v| serde_json::from_value::<rapport_tools::inputs::ChangeEntry>(v.clone()).ok())
        .filter_map(|e| {
            Some(Change {
                id: e.id,
                org_id: a.org_id.clone(),
                at: time::parse_instant(&e.at).unwrap_or(a.created_at),
                action: ChangeAction::parse(&e.action)?,
                entity: ChangeEntity::parse(&e.entity)?,
                record_id: e.record_id,
                actor: ChangeActor {
                    kind: ChangeActor::kind_of(&e.actor.kind),
                    id: e.actor.id.clone(),
                    name: e.actor.name,
                    user_email: e.actor.user_email,
                    user_id: None,
                    key_id: e.actor.id.map(KeyId::from),
                },
                via: a.via.clone(),
                reverts: e.reverts,
                changes: e.changes,
            })
        })
        .collect()
}
