//! Rules that span fields, named in entity descriptions (`Rule`) and implemented once here.

use rapport_tools::Rule;
use serde_json::{Map, Value};

use super::CrmError;
use super::validate::At;
use crate::store::{CustomFieldDef, Pipeline, Record, StageKind};
use crate::time::{self, Millis};

/// What rules and custom fields need to know about the organization, read once per call.
pub struct Ctx<'a> {
    pub defs: &'a [CustomFieldDef],
    pub pipelines: &'a [Pipeline],
    pub now: Millis,
}

pub fn apply(
    rule: Rule,
    at: &At,
    ctx: &Ctx,
    given: &Map<String, Value>,
    before: Option<&Record>,
    r: &mut Record,
) -> Result<(), CrmError> {
    match rule {
        Rule::PipelineStage => pipeline_stage(at, ctx, given, before, r),
        Rule::Completion => completion(ctx, r),
        Rule::Interaction => interaction(at, ctx, before, r),
    }
}

/// How far ahead an activity may be dated: clocks differ a little; planned work is a task.
const AHEAD_MS: Millis = 5 * 60 * 1000;

fn interaction(at: &At, ctx: &Ctx, before: Option<&Record>, r: &mut Record) -> Result<(), CrmError> {
    use rapport_tools::entities::activity::{ABOUT, OUTCOMES};
    let occurred = match r.text("occurred_at").and_then(time::parse_instant) {
        Some(ms) => ms,
        None if before.is_some() => {
            return Err(CrmError::invalid(format!("{} cannot be cleared", at.field("occurred_at"))));
        }
        None => ctx.now,
    };
    if occurred > ctx.now + AHEAD_MS {
        return Err(CrmError::invalid(format!(
            "{} is in the future: an activity is something that happened (at most 5 minutes ahead); plan what is to come as a task",
            at.field("occurred_at")
        )));
    }
    r.values.insert("occurred_at".into(), Value::String(time::rfc3339(occurred)));
    let kind = r.text("kind").unwrap_or_default().to_owned();
    if let Some(outcome) = r.text("outcome")
        && let Some((_, fits)) = OUTCOMES.iter().find(|(k, _)| *k == kind)
        && !fits.contains(&outcome)
    {
        return Err(CrmError::invalid(format!(
            "{}: a {kind} has one of these outcomes: {}; got {outcome:?}",
            at.field("outcome"),
            fits.join(", ")
        )));
    }
    if let Some(minutes) = r.get("duration_minutes").as_f64()
        && !(0.0..=100_000.0).contains(&minutes)
    {
        return Err(CrmError::invalid(format!(
            "{} takes a number of minutes from 0 to 100000, got {minutes}",
            at.field("duration_minutes")
        )));
    }
    if let Some(entity) = r.get("record")["entity"].as_str()
        && !ABOUT.iter().any(|e| e.as_str() == entity)
    {
        let about: Vec<&str> = ABOUT.iter().map(|e| e.as_str()).collect();
        return Err(CrmError::invalid(format!(
            "{}: an activity is about a {}; got a {entity}",
            at.field("record"),
            about.join(", a ")
        )));
    }
    Ok(())
}

fn pipeline_stage(
    at: &At,
    ctx: &Ctx,
    given: &Map<String, Value>,
    before: Option<&Record>,
    r: &mut Record,
) -> Result<(), CrmError> {
    let name = r.text("pipeline").unwrap_or("sales").to_owned();
    let Some(pipeline) = ctx.pipelines.iter().find(|p| p.name == name) else {
        let names: Vec<&str> = ctx.pipelines.iter().map(|p| p.name.as_str()).collect();
        return Err(CrmError::invalid(format!(
            "{}: there is no pipeline `{name}`; pipelines: {}",
            at.field("pipeline"),
            names.join(", ")
        )));
    };
    r.values.insert("pipeline".into(), Value::String(name.clone()));
    let moved_pipeline = before.is_some_and(|b| b.text("pipeline") != Some(name.as_str()));
    let stage_given = given.get("stage").is_some_and(|v| !v.is_null());
    if !stage_given && (before.is_none() || moved_pipeline || r.text("stage").is_none()) {
        let first = pipeline.stages.first().map(|s| s.name.clone()).unwrap_or_default();
        r.values.insert("stage".into(), Value::String(first));
    }
    let stage_name = r.text("stage").unwrap_or_default().to_owned();
    let Some(stage) = pipeline.stage(&stage_name) else {
        let names: Vec<&str> = pipeline.stages.iter().map(|s| s.name.as_str()).collect();
        return Err(CrmError::invalid(format!(
            "{}: `{stage_name}` is not a stage of pipeline `{name}`; its stages, in order: {}",
            at.field("stage"),
            names.join(", ")
        )));
    };
    let stage_changed = before.is_none_or(|b| b.text("stage") != Some(stage_name.as_str()) || moved_pipeline);
    let status = match stage.kind {
        StageKind::Won | StageKind::Lost => stage.kind.as_str().to_owned(),
        StageKind::Open if given.get("status").is_some_and(|v| !v.is_null()) => {
            r.text("status").unwrap_or("open").to_owned()
        }
        StageKind::Open if stage_changed => "open".to_owned(),
        StageKind::Open => r.text("status").unwrap_or("open").to_owned(),
    };
    r.values.insert("status".into(), Value::String(status));
    if r.text("value").is_some() && r.text("currency").is_none() {
        return Err(CrmError::invalid(format!(
            "{} needs a `currency` (an ISO 4217 code such as EUR) alongside it",
            at.field("value")
        )));
    }
    Ok(())
}

fn completion(ctx: &Ctx, r: &mut Record) -> Result<(), CrmError> {
    let status = r.text("status").unwrap_or("open").to_owned();
    if status == "done" {
        if r.text("done_at").is_none() {
            r.values.insert("done_at".into(), Value::String(time::rfc3339(ctx.now)));
        }
    } else {
        r.values.remove("done_at");
    }
    r.values.insert("status".into(), Value::String(status));
    Ok(())
}
