//! What an agent asks before it works: what exists and how to query it.

use rapport_tools::inputs::{CustomFieldInfo, EntityDescription, FieldInfo, RecordCounts};
use rapport_tools::records::Entity;

use super::fields::{self, custom_type};
use super::records::read_scope;
use super::{Caller, CrmError};
use crate::store::Store;

pub async fn describe(store: &dyn Store, caller: &Caller, entity: Entity) -> Result<EntityDescription, CrmError> {
    caller.require(read_scope(entity))?;
    let defs = store.custom_fields(&caller.org_id, entity).await?;
    let fields = fields::fields(entity)
        .iter()
        .map(|f| FieldInfo {
            name: f.name.to_owned(),
            field_type: f.ty,
            description: f.description.to_owned(),
            operators: fields::spec_operators(f).to_vec(),
            sortable: f.sortable,
            writable: f.writable,
            references: f.references,
        })
        .collect();
    let custom_fields = defs
        .into_iter()
        .filter_map(|d| {
            let ty = custom_type(&d.field_type)?;
            Some(CustomFieldInfo {
                key: d.key,
                label: d.label,
                field_type: ty,
                options: d.options,
                operators: fields::operators(ty, false).to_vec(),
            })
        })
        .collect();
    Ok(EntityDescription { entity, description: fields::description(entity).to_owned(), fields, custom_fields })
}

/// Record counts for the entities the caller may read (0 for the others).
pub async fn counts(store: &dyn Store, caller: &Caller) -> Result<RecordCounts, CrmError> {
    let mut counts = RecordCounts { contacts: 0, companies: 0 };
    for entity in Entity::ALL {
        if caller.scopes.contains(&read_scope(*entity)) {
            let n = store.count(&caller.org_id, *entity, &[]).await?;
            match entity {
                Entity::Contact => counts.contacts = n,
                Entity::Company => counts.companies = n,
            }
        }
    }
    Ok(counts)
}
