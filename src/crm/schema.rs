//! Schema management (`schema:manage`): custom fields and deal pipelines. Each change is
//! written to the change log like a record write.

use crate::store::{ChangeAction, ChangeEntity};
use rapport_tools::inputs::*;
use rapport_tools::{Entity, Scope};
use serde_json::{Map, Value};

use super::workspace::pipeline_info;
use super::{CrmError, Principal, changes};
use crate::store::query::is_safe_key;
use crate::store::{CustomFieldDef, CustomType, Pipeline, Stage, StageKind, Store, StoreError};
use crate::time;

const MAX_OPTIONS: usize = 100;
const MAX_STAGES: usize = 30;

fn label_of(label: &str) -> Result<String, CrmError> {
    let l = label.trim();
    if l.is_empty() || l.chars().count() > 100 || l.contains('\0') {
        return Err(CrmError::invalid("`label` is 1 to 100 characters"));
    }
    Ok(l.to_owned())
}

fn options_of(ty: CustomType, options: Option<Vec<String>>) -> Result<Vec<String>, CrmError> {
    let selects = matches!(ty, CustomType::Select | CustomType::MultiSelect);
    match (selects, options) {
        (true, Some(list)) => {
            let mut out: Vec<String> = Vec::new();
            for o in list {
                let o = o.trim().to_owned();
                if o.is_empty() || o.chars().count() > 100 {
                    return Err(CrmError::invalid("each option is 1 to 100 characters"));
                }
                if !out.contains(&o) {
                    out.push(o);
                }
            }
            if out.is_empty() || out.len() > MAX_OPTIONS {
                return Err(CrmError::invalid(format!("a select field takes 1 to {MAX_OPTIONS} options")));
            }
            Ok(out)
        }
        (true, None) => {
            Err(CrmError::invalid("a select or multi_select field needs `options`, such as [\"gold\", \"silver\"]"))
        }
        (false, Some(list)) if !list.is_empty() => {
            Err(CrmError::invalid("`options` are for select and multi_select fields only"))
        }
        (false, _) => Ok(Vec::new()),
    }
}

fn field_info(d: &CustomFieldDef) -> CustomFieldInfo {
    let ty = d.field_type.field_type();
    CustomFieldInfo {
        key: d.key.clone(),
        label: d.label.clone(),
        field_type: ty,
        options: d.options.clone(),
        operators: super::fields::operators(ty).to_vec(),
    }
}

fn field_change(
    p: &Principal,
    action: ChangeAction,
    d: &CustomFieldDef,
    diff: Map<String, Value>,
) -> crate::store::Change {
    changes::entry(
        p,
        time::now_ms(),
        action,
        crate::store::ChangeEntity::CustomField,
        &format!("{}.{}", d.entity, d.key),
        diff,
    )
}

fn gone(entity: Entity, key: &str) -> CrmError {
    CrmError::invalid(format!("{entity} has no custom field `{key}`; describe_entity lists them"))
}

pub async fn create_custom_field(
    store: &Store,
    p: &Principal,
    input: CreateCustomFieldInput,
) -> Result<CustomFieldResult, CrmError> {
    p.require(Scope::SchemaManage)?;
    let key = input.key.trim();
    if !is_safe_key(key) {
        return Err(CrmError::invalid(format!(
            "`key` {key:?} must be 1 to 64 lowercase letters, digits and _, starting with a letter (such as deal_size)"
        )));
    }
    if input.entity.def().field(key).is_some() {
        return Err(CrmError::invalid(format!("`{key}` is a built-in field of {}; pick another key", input.entity)));
    }
    let ty = CustomType::parse(input.field_type.trim()).ok_or_else(|| {
        let valid: Vec<&str> = CustomType::ALL.iter().map(|t| t.as_str()).collect();
        CrmError::invalid(format!("`type` is one of {}; got {:?}", valid.join(", "), input.field_type))
    })?;
    let def = CustomFieldDef {
        id: uuid::Uuid::now_v7().to_string(),
        entity: input.entity,
        key: key.to_owned(),
        label: label_of(&input.label)?,
        field_type: ty,
        options: options_of(ty, input.options)?,
    };
    let mut diff = Map::new();
    diff.insert("type".into(), changes::pair(Value::Null, ty.as_str()));
    diff.insert("label".into(), changes::pair(Value::Null, def.label.clone()));
    let entry = field_change(p, ChangeAction::Created, &def, diff);
    let mut tx = store.begin().await?;
    tx.insert_custom_field(p.org_id(), &def, entry.at, &[entry]).await.map_err(|e| match e {
        StoreError::Conflict(_) => CrmError::Conflict(format!("{} already has a custom field `{key}`", input.entity)),
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(CustomFieldResult { entity: input.entity, custom_field: field_info(&def) })
}

pub async fn update_custom_field(
    store: &Store,
    p: &Principal,
    input: UpdateCustomFieldInput,
) -> Result<CustomFieldResult, CrmError> {
    p.require(Scope::SchemaManage)?;
    let mut tx = store.begin().await?;
    let before = tx
        .custom_field(p.org_id(), input.entity, input.key.trim())
        .await?
        .ok_or_else(|| gone(input.entity, &input.key))?;
    let mut after = before.clone();
    if let Some(l) = &input.label {
        after.label = label_of(l)?;
    }
    if input.options.is_some() {
        after.options = options_of(after.field_type, input.options)?;
    }
    let mut diff = Map::new();
    if after.label != before.label {
        diff.insert("label".into(), changes::pair(before.label.clone(), after.label.clone()));
    }
    if after.options != before.options {
        diff.insert("options".into(), changes::pair(before.options.clone(), after.options.clone()));
    }
    if !diff.is_empty() {
        let entry = field_change(p, ChangeAction::Updated, &after, diff);
        tx.update_custom_field(p.org_id(), &after, &[entry]).await?;
        tx.commit().await?;
    }
    Ok(CustomFieldResult { entity: input.entity, custom_field: field_info(&after) })
}

/// Deleting a field removes data from every record of its entity, so it takes writing and
/// deleting those records as well as `schema:manage` (SPEC 5). The field and its values go
/// to the trash, out of sight, and are purged after RAPPORT_TRASH_DAYS.
pub async fn delete_custom_field(
    store: &Store,
    p: &Principal,
    input: DeleteCustomFieldInput,
) -> Result<DeletedCustomField, CrmError> {
    p.require(Scope::SchemaManage)?;
    p.require(input.entity.def().write)?;
    p.require(input.entity.def().delete)?;
    let mut tx = store.begin().await?;
    let def = tx
        .custom_field(p.org_id(), input.entity, input.key.trim())
        .await?
        .ok_or_else(|| gone(input.entity, &input.key))?;
    let mut diff = Map::new();
    diff.insert("type".into(), changes::pair(def.field_type.as_str(), Value::Null));
    diff.insert("label".into(), changes::pair(def.label.clone(), Value::Null));
    if !def.options.is_empty() {
        // Kept so an undo after the purge can make the field again as it was.
        diff.insert(
            "options".into(),
            changes::pair(serde_json::to_value(&def.options).unwrap_or_default(), Value::Null),
        );
    }
    let entry = field_change(p, ChangeAction::Deleted, &def, diff);
    tx.trash_custom_field(p.org_id(), &def, entry.at, &[entry]).await?;
    tx.commit().await?;
    Ok(DeletedCustomField { entity: input.entity, deleted: def.key })
}

fn pipeline_name(name: &str) -> Result<String, CrmError> {
    let n = name.trim();
    if n.is_empty() || n.chars().count() > 100 || n.chars().any(char::is_control) {
        return Err(CrmError::invalid("a pipeline or stage name is 1 to 100 printable characters"));
    }
    Ok(n.to_owned())
}

/// Stages as given, checked: 1 to 30, unique names, kinds open, won or lost.
fn stages_of(input: &[StageInput]) -> Result<Vec<(Stage, Option<String>)>, CrmError> {
    if input.is_empty() || input.len() > MAX_STAGES {
        return Err(CrmError::invalid(format!("a pipeline has 1 to {MAX_STAGES} stages")));
    }
    let mut out: Vec<(Stage, Option<String>)> = Vec::new();
    for s in input {
        let name = pipeline_name(&s.name)?;
        if out.iter().any(|(o, _)| o.name == name) {
            return Err(CrmError::invalid(format!("the stage `{name}` appears twice")));
        }
        let kind = match s.kind.as_deref().map(str::trim) {
            None | Some("open") => StageKind::Open,
            Some("won") => StageKind::Won,
            Some("lost") => StageKind::Lost,
            Some(other) => {
                return Err(CrmError::invalid(format!("a stage's `kind` is open, won or lost; got {other:?}")));
            }
        };
        out.push((Stage { name, kind }, s.was.as_deref().map(str::trim).map(str::to_owned)));
    }
    Ok(out)
}

fn stages_json(p: &Pipeline) -> Value {
    serde_json::to_value(&p.stages).unwrap_or_default()
}

pub async fn create_pipeline(
    store: &Store,
    p: &Principal,
    input: CreatePipelineInput,
) -> Result<PipelineInfo, CrmError> {
    p.require(Scope::SchemaManage)?;
    let name = pipeline_name(&input.name)?;
    let stages = stages_of(&input.stages)?;
    if stages.iter().any(|(_, was)| was.is_some()) {
        return Err(CrmError::invalid("`was` renames a stage in update_pipeline; a new pipeline has none"));
    }
    let now = time::now_ms();
    let pipeline = Pipeline {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.clone(),
        stages: stages.into_iter().map(|(s, _)| s).collect(),
        created_at: now,
        updated_at: now,
    };
    let mut diff = Map::new();
    diff.insert("stages".into(), changes::pair(Value::Null, stages_json(&pipeline)));
    let entry = changes::entry(p, now, ChangeAction::Created, ChangeEntity::Pipeline, &name, diff);
    let mut tx = store.begin().await?;
    tx.insert_pipeline(p.org_id(), &pipeline, &[entry]).await.map_err(|e| match e {
        StoreError::Conflict(_) => {
            CrmError::Conflict(format!("a pipeline named `{name}` exists; update_pipeline changes it"))
        }
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(pipeline_info(&pipeline))
}

/// Renames the pipeline and replaces its stages. A stage given with `was` renames an old
/// one and keeps its deals; an old stage left out must hold no deals.
pub async fn update_pipeline(
    store: &Store,
    p: &Principal,
    input: UpdatePipelineInput,
) -> Result<PipelineInfo, CrmError> {
    p.require(Scope::SchemaManage)?;
    let old_name = input.name.trim().to_owned();
    let mut tx = store.begin().await?;
    let before = tx.pipeline(p.org_id(), &old_name).await?.ok_or_else(|| {
        CrmError::invalid(format!("there is no pipeline `{old_name}`; describe_entity for deal lists them"))
    })?;
    let mut after = before.clone();
    if let Some(n) = &input.new_name {
        after.name = pipeline_name(n)?;
    }
    let mut renames: Vec<(String, String)> = Vec::new();
    if let Some(given) = &input.stages {
        let stages = stages_of(given)?;
        for (s, was) in &stages {
            if let Some(was) = was {
                if before.stage(was).is_none() {
                    return Err(CrmError::invalid(format!("`was`: pipeline `{old_name}` has no stage `{was}`")));
                }
                if was != &s.name {
                    renames.push((was.clone(), s.name.clone()));
                }
            }
        }
        let kept: Vec<&str> = stages.iter().map(|(s, was)| was.as_deref().unwrap_or(&s.name)).collect();
        let in_use = tx.deals_per_stage(p.org_id(), &old_name).await?;
        for old in &before.stages {
            let n = in_use.iter().find(|(s, _)| *s == old.name).map_or(0, |(_, n)| *n);
            if !kept.contains(&old.name.as_str()) && n > 0 {
                return Err(CrmError::Conflict(format!(
                    "stage `{}` holds {n} deals (trashed ones included); move them to another stage first, or rename it with {{\"name\": \"new\", \"was\": \"{}\"}}",
                    old.name, old.name
                )));
            }
        }
        after.stages = stages.into_iter().map(|(s, _)| s).collect();
    }
    let mut diff = Map::new();
    if after.name != before.name {
        diff.insert("name".into(), changes::pair(before.name.clone(), after.name.clone()));
    }
    if after.stages != before.stages {
        diff.insert("stages".into(), changes::pair(stages_json(&before), stages_json(&after)));
    }
    if diff.is_empty() {
        return Ok(pipeline_info(&before));
    }
    after.updated_at = time::now_ms();
    let entry = changes::entry(p, after.updated_at, ChangeAction::Updated, ChangeEntity::Pipeline, &after.name, diff);
    tx.update_pipeline(p.org_id(), &old_name, &after, &renames, &[entry]).await.map_err(|e| match e {
        StoreError::Conflict(_) => CrmError::Conflict(format!("a pipeline named `{}` exists", after.name)),
        other => other.into(),
    })?;
    tx.commit().await?;
    Ok(pipeline_info(&after))
}
