//! From a tool name and its arguments to the domain call and back. Every domain error
//! becomes a message the model can act on; this is the one place that mapping happens.

use rapport_tools::ToolDef;
use rapport_tools::inputs::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::app::AppState;
use crate::auth::Principal;
use crate::crm::{CrmError, MAX_BATCH, MAX_PAGE, records, workspace};
use crate::time;

/// A failed call, as the model will read it.
#[derive(Debug)]
pub struct ToolError {
    pub message: String,
    /// The key lacks a scope: a refused use, audited.
    pub denied: bool,
}

impl ToolError {
    pub fn scope(def: &ToolDef) -> Self {
        ToolError {
            message: format!(
                "this API key may not call {}: it lacks the scopes the tool needs. get_workspace lists the key's scopes; ask an administrator for a key with more",
                def.name
            ),
            denied: true,
        }
    }
}

impl From<CrmError> for ToolError {
    fn from(e: CrmError) -> Self {
        let message = match &e {
            CrmError::Store(inner) if inner.is_unavailable() => {
                "the database is unavailable right now; try again in a few seconds".to_owned()
            }
            CrmError::Store(inner) => {
                tracing::error!(error = %inner, "tool call failed in storage");
                "an internal error occurred; it has been logged. Try again, and report it if it persists".to_owned()
            }
            other => other.to_string(),
        };
        ToolError { message, denied: matches!(e, CrmError::Forbidden(_)) }
    }
}

fn parse<T: DeserializeOwned>(def: &ToolDef, args: Map<String, Value>) -> Result<T, ToolError> {
    serde_path_to_error::deserialize(Value::Object(args)).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { String::new() } else { format!(" at `{path}`") };
        let example = def.description.rsplit("Example: ").next().unwrap_or("").trim();
        ToolError {
            message: format!("invalid arguments for {}{at}: {}. Example: {example}", def.name, e.inner()),
            denied: false,
        }
    })
}

fn out<T: Serialize>(v: T) -> Result<Value, ToolError> {
    serde_json::to_value(v)
        .map_err(|e| ToolError { message: format!("could not encode the result: {e}"), denied: false })
}

pub async fn call(
    state: &AppState,
    principal: &Principal,
    def: &ToolDef,
    args: Map<String, Value>,
) -> Result<Value, ToolError> {
    let store = state.store.as_ref();
    let caller = &principal.caller;
    match def.name {
        "get_workspace" => {
            let NoArguments {} = parse(def, args)?;
            let counts = workspace::counts(store, caller).await?;
            out(Workspace {
                organization: NamedId { id: principal.org.id.clone(), name: principal.org.name.clone() },
                user: WorkspaceUser {
                    id: principal.user.id.clone(),
                    email: principal.user.email.clone(),
                    name: principal.user.name.clone(),
                    role: principal.user.role,
                },
                key: WorkspaceKey {
                    id: principal.key_id.clone(),
                    name: principal.key_name.clone(),
                    preview: principal.key_preview.clone(),
                    expires_at: principal.key_expires_at.map(time::rfc3339),
                },
                scopes: caller.scopes.iter().map(|s| s.as_str().to_owned()).collect(),
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
            out(workspace::describe(store, caller, input.entity).await?)
        }
        "search_records" => out(records::search(store, caller, parse(def, args)?).await?),
        "count_records" => out(records::count(store, caller, parse(def, args)?).await?),
        "get_records" => out(records::get(store, caller, parse(def, args)?).await?),
        "create_contacts" => out(records::create_contacts(store, caller, parse(def, args)?).await?),
        "update_contacts" => out(records::update_contacts(store, caller, parse(def, args)?).await?),
        "create_companies" => out(records::create_companies(store, caller, parse(def, args)?).await?),
        "update_companies" => out(records::update_companies(store, caller, parse(def, args)?).await?),
        "delete_records" => out(records::delete(store, caller, parse(def, args)?).await?),
        other => {
            Err(ToolError { message: format!("tool {other} is listed but not served; this is a bug"), denied: false })
        }
    }
}
