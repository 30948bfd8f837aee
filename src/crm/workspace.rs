//! What an agent asks before it works: what exists and how to query it.

use rapport_tools::Entity;
use rapport_tools::inputs::{CustomFieldInfo, EntityDescription, FieldInfo, PipelineInfo, RecordCounts, StageInfo};

use super::fields;
use super::{CrmError, Principal};
use crate::store::{Pipeline, Store};

pub async fn describe(store: &Store, p: &Principal, entity: Entity) -> Result<EntityDescription, CrmError> {
    let def = entity.def();
    p.require(def.read)?;
    let defs = store.custom_fields(p.org_id(), entity).await?;
    let fields = def
        .fields
        .iter()
        .map(|f| FieldInfo {
            name: f.name.to_owned(),
            field_type: f.ty,
            description: f.doc.to_owned(),
            operators: fields::field_operators(f).to_vec(),
            sortable: f.sortable,
            writable: f.writable,
            required: f.required,
            references: f.target,
            options: f.options.iter().map(|o| (*o).to_owned()).collect(),
        })
        .collect();
    let custom_fields = defs
        .into_iter()
        .map(|d| {
            let ty = d.field_type.field_type();
            CustomFieldInfo {
                key: d.key,
                label: d.label,
                field_type: ty,
                options: d.options,
                operators: fields::operators(ty).to_vec(),
            }
        })
        .collect();
    let pipelines = if def.has_rule(rapport_tools::Rule::PipelineStage) {
        Some(store.pipelines(p.org_id()).await?.iter().map(pipeline_info).collect())
    } else {
        None
    };
    Ok(EntityDescription { entity, description: def.doc.to_owned(), fields, custom_fields, pipelines })
}

pub fn pipeline_info(p: &Pipeline) -> PipelineInfo {
    PipelineInfo {
        name: p.name.clone(),
        stages: p.stages.iter().map(|s| StageInfo { name: s.name.clone(), kind: s.kind.as_str().to_owned() }).collect(),
    }
}

/// Record counts by entity plural, for the entities the caller may read.
pub async fn counts(store: &Store, p: &Principal) -> Result<RecordCounts, CrmError> {
    let mut counts = RecordCounts::new();
    for entity in Entity::ALL {
        if p.scopes.contains(&entity.def().read) {
            counts.insert(entity.plural().to_owned(), store.count(p.org_id(), *entity, &[]).await?);
        }
    }
    Ok(counts)
}
