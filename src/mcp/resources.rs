//! Resources (SPEC 5): `rapport://{entity}/{id}`, a record as `get_records` gives it, and
//! `rapport://schema/{entity}`, what `describe_entity` answers. Each is read through the
//! same tools, so scopes and organizations hold exactly as for tool calls; whatever the
//! key may not see, or that does not exist, is the protocol's not-found error and says
//! nothing more.

use rapport_tools::{Entity, Profile, Tool};
use rmcp::ErrorData as McpError;
use rmcp::model::{ReadResourceResult, Resource, ResourceContents, ResourceTemplate};
use serde_json::{Value, json};

use super::run_tool;
use crate::auth::Principal;
use crate::state::AppState;

const SCHEME: &str = "rapport://";
const JSON: &str = "application/json";

/// What a URI names.
enum Named {
    Schema(Entity),
    Record(Entity, String),
}

fn parse(uri: &str) -> Option<Named> {
    let rest = uri.strip_prefix(SCHEME)?;
    let (first, second) = rest.split_once('/')?;
    if first == "schema" {
        return Entity::parse(second).map(Named::Schema);
    }
    let entity = Entity::parse(first)?;
    let id = second.trim();
    (!id.is_empty() && !id.contains('/')).then(|| Named::Record(entity, id.to_owned()))
}

pub fn templates() -> Vec<ResourceTemplate> {
    vec![
        ResourceTemplate::new(format!("{SCHEME}{{entity}}/{{id}}"), "record")
            .with_title("A record")
            .with_description(format!("A record ({}) by id, as get_records gives it.", Entity::listed()))
            .with_mime_type(JSON),
        ResourceTemplate::new(format!("{SCHEME}schema/{{entity}}"), "schema")
            .with_title("An entity's fields")
            .with_description("What describe_entity answers: fields, operators, custom fields, pipelines.")
            .with_mime_type(JSON),
    ]
}

/// The schema resources of the entities the key may read.
pub fn list(principal: &Principal) -> Vec<Resource> {
    Entity::ALL
        .iter()
        .filter(|e| principal.scopes.contains(&e.def().read))
        .map(|e| {
            Resource::new(format!("{SCHEME}schema/{e}"), format!("{e} schema"))
                .with_title(format!("Fields of {}", e.plural()))
                .with_description(e.def().doc)
                .with_mime_type(JSON)
        })
        .collect()
}

fn not_found(uri: &str) -> McpError {
    McpError::resource_not_found(format!("no resource {uri}"), Some(json!({ "uri": uri })))
}

pub async fn read(
    state: &AppState,
    principal: &Principal,
    profile: Profile,
    uri: &str,
) -> Result<ReadResourceResult, McpError> {
    let answer: Value = match parse(uri).ok_or_else(|| not_found(uri))? {
        Named::Schema(entity) => {
            if !principal.scopes.contains(&entity.def().read) {
                return Err(not_found(uri));
            }
            let mut d = run_tool(state, principal, Tool::DescribeEntity, json!({ "entity": entity }))
                .await
                .map_err(|_| not_found(uri))?;
            if profile == Profile::Lean {
                rapport_tools::lean::compact_answer(Tool::DescribeEntity, &mut d, false);
            }
            d
        }
        Named::Record(entity, id) => {
            if !principal.scopes.contains(&entity.def().read) {
                return Err(not_found(uri));
            }
            let got =
                run_tool(state, principal, Tool::GetRecords, json!({ "records": [{ "entity": entity, "id": id }] }))
                    .await
                    .map_err(|_| not_found(uri))?;
            match got["items"].as_array().and_then(|items| items.first()) {
                Some(record) => record.clone(),
                None => return Err(not_found(uri)),
            }
        }
    };
    let contents = ResourceContents::TextResourceContents {
        uri: uri.to_owned(),
        mime_type: Some(JSON.into()),
        text: answer.to_string(),
        meta: None,
    };
    Ok(ReadResourceResult::new(vec![contents]))
}
