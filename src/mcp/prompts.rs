//! Prompts for everyday sales work (SPEC 5), and completion for their arguments and for the
//! resource templates. A prompt is a message that tells the model which tools to call and
//! how, with what the server can settle first (today's date, the caller's id, which
//! company or pipeline is meant) already settled. Lookups run through the tools, so they
//! see what the key may see and nothing else.

use rapport_tools::{Entity, Tool};
use rmcp::ErrorData as McpError;
use rmcp::model::{
    ArgumentInfo, CompleteResult, CompletionInfo, GetPromptResult, Prompt, PromptArgument, PromptMessage, Reference,
    Role,
};
use serde_json::{Map, Value, json};

use super::run_tool;
use crate::auth::Principal;
use crate::state::AppState;

/// Most values a completion offers.
const MAX_VALUES: usize = 20;

struct Def {
    name: &'static str,
    title: &'static str,
    description: &'static str,
    arguments: &'static [(&'static str, &'static str, bool)],
}

const PROMPTS: &[Def] = &[
    Def {
        name: "daily_briefing",
        title: "Daily briefing",
        description: "Your open tasks due today or overdue, and the deals that moved lately.",
        arguments: &[("days", "How many days back to look for deals that moved; default 1.", false)],
    },
    Def {
        name: "log_interaction",
        title: "Log an interaction",
        description: "Record a call, meeting, email or message with a contact, company or deal as an activity, and a follow-up task.",
        arguments: &[
            ("record", "Who or what it was with: a name, an email or a domain.", true),
            ("summary", "What happened.", true),
            ("kind", "call, meeting, email or message; default: what the summary says.", false),
            ("follow_up", "When to follow up, YYYY-MM-DD; default in 3 days.", false),
        ],
    },
    Def {
        name: "pipeline_review",
        title: "Review a pipeline",
        description: "Open deals of a pipeline by stage, with totals and the deals that need attention.",
        arguments: &[("pipeline", "The pipeline, such as sales.", true), ("stage", "Only this stage.", false)],
    },
    Def {
        name: "account_brief",
        title: "Brief me on an account",
        description: "A company: the people we know there, its deals, tasks, notes, activities and recent changes.",
        arguments: &[("company", "The company's name or domain.", true)],
    },
];

pub fn list() -> Vec<Prompt> {
    PROMPTS
        .iter()
        .map(|d| {
            let args = d
                .arguments
                .iter()
                .map(|(name, doc, required)| PromptArgument::new(*name).with_description(*doc).with_required(*required))
                .collect();
            Prompt::new(d.name, Some(d.description), Some(args)).with_title(d.title)
        })
        .collect()
}

fn invalid(message: String) -> McpError {
    McpError::invalid_params(message, None)
}

fn arg(args: &Map<String, Value>, name: &str) -> Option<String> {
    args.get(name).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn required(args: &Map<String, Value>, prompt: &str, name: &str) -> Result<String, McpError> {
    arg(args, name).ok_or_else(|| invalid(format!("{prompt} needs the argument `{name}`")))
}

fn today() -> String {
    crate::time::rfc3339(crate::time::now_ms())[..10].to_owned()
}

/// The pipelines of the organization, with their stages in order.
async fn pipelines(state: &AppState, p: &Principal) -> Vec<(String, Vec<String>)> {
    let Ok(d) = run_tool(state, p, Tool::DescribeEntity, json!({ "entity": "deal" })).await else { return vec![] };
    d["pipelines"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|pl| {
            let stages = pl["stages"].as_array().into_iter().flatten();
            let stages = stages.filter_map(|s| s["name"].as_str().map(str::to_owned)).collect();
            (pl["name"].as_str().unwrap_or_default().to_owned(), stages)
        })
        .collect()
}

pub async fn get(
    state: &AppState,
    p: &Principal,
    name: &str,
    args: Map<String, Value>,
) -> Result<GetPromptResult, McpError> {
    let def = PROMPTS.iter().find(|d| d.name == name).ok_or_else(|| {
        let names: Vec<&str> = PROMPTS.iter().map(|d| d.name).collect();
        invalid(format!("no prompt {name}; prompts: {}", names.join(", ")))
    })?;
    if let Some(other) = args.keys().find(|k| !def.arguments.iter().any(|(a, ..)| a == k)) {
        return Err(invalid(format!("{name} takes no argument `{other}`")));
    }
    let text = match name {
        "daily_briefing" => daily_briefing(p, &args)?,
        "log_interaction" => log_interaction(p, &args)?,
        "pipeline_review" => pipeline_review(state, p, &args).await?,
        _ => account_brief(state, p, &args).await?,
    };
    Ok(GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)]).with_description(def.description))
}

fn daily_briefing(p: &Principal, args: &Map<String, Value>) -> Result<String, McpError> {
    let days = match arg(args, "days") {
        None => 1,
        Some(d) => d
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=90).contains(d))
            .ok_or_else(|| invalid(format!("daily_briefing: `days` is a whole number from 1 to 90, got {d:?}")))?,
    };
    let today = today();
    let mine = p
        .user()
        .map_or_else(String::new, |u| format!(r#", {{"field": "assignee_id", "op": "eq", "value": "{}"}}"#, u.id));
    Ok(format!(
        r#"Prepare my daily briefing for {today} from the CRM.

1. My open tasks due today or overdue: search_records with {{"entity": "task", "filters": [{{"field": "status", "op": "eq", "value": "open"}}, {{"field": "due_at", "op": "lte", "value": "{today}T23:59:59Z"}}{mine}], "sort": [{{"field": "due_at", "direction": "asc"}}]}}.
2. Deals that moved in the last {days} day(s): search_records with {{"entity": "deal", "filters": [{{"field": "updated_at", "op": "in_last_days", "value": {days}}}], "fields": ["name", "stage", "status", "value", "currency", "company_id"]}}; call get_timeline on a deal when you need to see how its stage changed.
3. Answer with three short lists: what I must do today (overdue first), deals that advanced or were won, deals that were lost or stalled. Name records as people know them, not by id."#
    ))
}

fn log_interaction(p: &Principal, args: &Map<String, Value>) -> Result<String, McpError> {
    use rapport_tools::entities::activity::{KINDS, OUTCOMES};
    let record = required(args, "log_interaction", "record")?;
    let summary = required(args, "log_interaction", "summary")?;
    let kind = match arg(args, "kind") {
        None => "<call, meeting, email or message: what the summary describes>".to_owned(),
        Some(k) if KINDS.contains(&k.as_str()) => k,
        Some(k) => {
            return Err(invalid(format!("log_interaction: `kind` is one of {}, got {k:?}", KINDS.join(", "))));
        }
    };
    let outcomes: Vec<String> = OUTCOMES.iter().map(|(k, o)| format!("{k}: {}", o.join(", "))).collect();
    // Where the key may not log activities, the interaction becomes a note, as before
    // activities existed (SPEC 5's prompts).
    let write = if p.scopes.contains(&Entity::Activity.def().write) {
        format!(
            r#"2. Log it as an activity on that record: write_records with {{"entity": "activity", "mode": "create", "items": [{{"kind": "{kind}", "subject": "<the topic, in a few words>", "body": "<what happened, in a sentence or two>", "outcome": "<if the summary says; {}>", "record": {{"entity": "<its entity>", "id": "<its id>"}}, "participant_ids": ["<the contacts who took part, when you found them>"]}}]}}. It happened now unless the summary says when (occurred_at, RFC 3339, never in the future)."#,
            outcomes.join("; ")
        )
    } else {
        r#"2. Write it down on that record: write_records with {"entity": "note", "mode": "create", "items": [{"body": "<what happened, in a sentence or two>", "record": {"entity": "<its entity>", "id": "<its id>"}}]}."#.to_owned()
    };
    let follow_up = match arg(args, "follow_up") {
        None => "three days from today".to_owned(),
        Some(d) if d.len() == 10 && chrono::NaiveDate::parse_from_str(&d, "%Y-%m-%d").is_ok() => d,
        Some(d) => return Err(invalid(format!("log_interaction: `follow_up` is a date YYYY-MM-DD, got {d:?}"))),
    };
    Ok(format!(
        r#"Log this interaction in the CRM.

With: {record}
What happened: {summary}

1. Find the record: search_all with {{"query": {record:?}}}. If several records could be meant, ask me which one before writing anything.
{write}
3. Add a follow-up task due {follow_up}: write_records with {{"entity": "task", "mode": "create", "items": [{{"title": "Follow up: <topic>", "due_at": "<the date>T09:00:00Z", "record": {{"entity": "<its entity>", "id": "<its id>"}}}}]}}.
4. Tell me in one line what you logged and when the follow-up is due."#
    ))
}

async fn pipeline_review(state: &AppState, p: &Principal, args: &Map<String, Value>) -> Result<String, McpError> {
    let wanted = required(args, "pipeline_review", "pipeline")?;
    let all = pipelines(state, p).await;
    let names: Vec<&str> = all.iter().map(|(n, _)| n.as_str()).collect();
    let (pipeline, stages) = all
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(&wanted))
        .ok_or_else(|| invalid(format!("no pipeline {wanted:?}; pipelines: {}", names.join(", "))))?;
    let mut filters = vec![
        json!({"field": "pipeline", "op": "eq", "value": pipeline}),
        json!({"field": "status", "op": "eq", "value": "open"}),
    ];
    if let Some(stage) = arg(args, "stage") {
        let stage = stages.iter().find(|s| s.eq_ignore_ascii_case(&stage)).ok_or_else(|| {
            invalid(format!("pipeline {pipeline} has no stage {stage:?}; its stages: {}", stages.join(", ")))
        })?;
        filters.push(json!({"field": "stage", "op": "eq", "value": stage}));
    }
    let filters = Value::Array(filters);
    Ok(format!(
        r#"Review the {pipeline} pipeline (stages in order: {stages}).

1. Totals per stage: count_records with {{"entity": "deal", "filters": {filters}, "group_by": "stage"}} (each group sums the value per currency).
2. The deals: search_records with {{"entity": "deal", "filters": {filters}, "sort": [{{"field": "close_date", "direction": "asc"}}], "limit": 100}}; follow next_cursor if there are more.
3. Flag the deals that need attention: a close_date before {today}, no close_date, no contacts (contact_ids empty), or no change in 14 days (updated_at). get_timeline shows what happened to one.
4. Answer with a short table per stage (count, value) and the five deals that most need attention, each with the next step you suggest."#,
        stages = stages.join(", "),
        today = today(),
    ))
}

async fn account_brief(state: &AppState, p: &Principal, args: &Map<String, Value>) -> Result<String, McpError> {
    let wanted = required(args, "account_brief", "company")?;
    let found = run_tool(
        state,
        p,
        Tool::SearchRecords,
        json!({"entity": "company", "query": wanted, "limit": 5, "fields": ["name", "domain"]}),
    )
    .await
    .map_err(|e| invalid(e.message))?;
    let items = found["items"].as_array().cloned().unwrap_or_default();
    let exact = items.iter().find(|c| {
        c["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(&wanted))
            || c["domain"].as_str().is_some_and(|d| d.eq_ignore_ascii_case(&wanted))
    });
    let company = match (exact, items.as_slice()) {
        (Some(c), _) | (None, [c]) => c,
        (None, []) => return Err(invalid(format!("no company matches {wanted:?}"))),
        (None, many) => {
            let names: Vec<&str> = many.iter().filter_map(|c| c["name"].as_str()).collect();
            return Err(invalid(format!("{wanted:?} matches several companies: {}; name one", names.join(", "))));
        }
    };
    let (id, name) = (company["id"].as_str().unwrap_or_default(), company["name"].as_str().unwrap_or_default());
    Ok(format!(
        r#"Brief me on the account {name} (company id {id}).

1. The company, its contacts and newest notes: get_records with {{"records": [{{"entity": "company", "id": "{id}"}}]}}.
2. Its deals: search_records with {{"entity": "deal", "filters": [{{"field": "company_id", "op": "eq", "value": "{id}"}}], "fields": ["name", "stage", "status", "value", "currency", "close_date"]}}.
3. Open tasks about it: search_records with {{"entity": "task", "filters": [{{"field": "status", "op": "eq", "value": "open"}}], "query": {name:?}}}.
4. What changed lately: get_timeline with {{"entity": "company", "id": "{id}"}}.
5. Answer with: who we know there and their roles, the open deals (stage, value, close date), the last interactions, open tasks, and the next step you suggest."#
    ))
}

/// Values that start with `prefix`, case-insensitively, each once.
fn by_prefix(values: impl IntoIterator<Item = String>, prefix: &str) -> Vec<String> {
    let prefix = prefix.to_lowercase();
    let mut out: Vec<String> = Vec::new();
    for v in values {
        if v.to_lowercase().starts_with(&prefix) && !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

/// Labels of records of `entity` whose label starts with `prefix`, within the key's scopes.
async fn labels(state: &AppState, p: &Principal, entity: Entity, prefix: &str) -> Vec<String> {
    if !p.scopes.contains(&entity.def().read) {
        return vec![];
    }
    let label = entity.def().label;
    let field = label.first().copied().unwrap_or("name");
    let mut filters = vec![];
    if !prefix.is_empty() {
        filters.push(json!({"field": field, "op": "starts_with", "value": prefix}));
    }
    let args = json!({"entity": entity, "filters": filters, "fields": label, "limit": MAX_VALUES, "sort": [{"field": field, "direction": "asc"}]});
    let Ok(found) = run_tool(state, p, Tool::SearchRecords, args).await else { return vec![] };
    found["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| label.iter().filter_map(|f| r[*f].as_str()).collect::<Vec<_>>().join(" "))
        .filter(|l| !l.is_empty())
        .collect()
}

pub async fn complete(
    state: &AppState,
    p: &Principal,
    reference: &Reference,
    argument: &ArgumentInfo,
    context: Option<&std::collections::HashMap<String, String>>,
) -> Result<CompleteResult, McpError> {
    let prefix = argument.value.as_str();
    let readable = || Entity::ALL.iter().filter(|e| p.scopes.contains(&e.def().read)).map(|e| e.as_str().to_owned());
    let values = match (reference, argument.name.as_str()) {
        (Reference::Prompt(r), arg) => match (r.name.as_str(), arg) {
            ("pipeline_review", "pipeline") => by_prefix(pipelines(state, p).await.into_iter().map(|(n, _)| n), prefix),
            ("pipeline_review", "stage") => {
                let chosen = context.and_then(|c| c.get("pipeline"));
                let stages = pipelines(state, p)
                    .await
                    .into_iter()
                    .filter(|(n, _)| chosen.is_none_or(|c| n.eq_ignore_ascii_case(c)))
                    .flat_map(|(_, s)| s);
                by_prefix(stages, prefix)
            }
            ("account_brief", "company") => labels(state, p, Entity::Company, prefix).await,
            ("log_interaction", "record") => {
                let mut all = labels(state, p, Entity::Contact, prefix).await;
                all.extend(labels(state, p, Entity::Company, prefix).await);
                all.extend(labels(state, p, Entity::Deal, prefix).await);
                by_prefix(all, prefix)
            }
            ("log_interaction", "kind") => {
                by_prefix(rapport_tools::entities::activity::KINDS.iter().map(|k| (*k).to_owned()), prefix)
            }
            ("daily_briefing", "days") => by_prefix(["1", "3", "7", "14", "30"].map(str::to_owned), prefix),
            // Another prompt, or an argument without suggestions: nothing to offer.
            _ => vec![],
        },
        (Reference::Resource(r), "entity") if r.uri.starts_with("rapport://") => by_prefix(readable(), prefix),
        _ => vec![],
    };
    let total = values.len();
    let shown: Vec<String> = values.into_iter().take(MAX_VALUES).collect();
    let info = CompletionInfo::with_pagination(shown, Some(total as u32), total > MAX_VALUES)
        .map_err(|e| McpError::internal_error(e, None))?;
    Ok(CompleteResult::new(info))
}
