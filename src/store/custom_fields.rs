//! Custom field definitions; removing one removes its values from every record.

use rapport_tools::Entity;

use super::db::Tx;
use super::query::{is_safe_key, json_remove};
use super::*;

impl Tx {
    /// `Conflict` when the entity already has the key.
    pub async fn insert_custom_field(
        &mut self,
        org_id: &OrgId,
        def: &CustomFieldDef,
        at: crate::time::Millis,
        changes: &[Change],
    ) -> StoreResult<()> {
        self.execute(
            "INSERT INTO custom_fields (id, org_id, entity, key, label, field_type, options, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                (&def.id).into(),
                org_id.into(),
                def.entity.as_str().into(),
                (&def.key).into(),
                (&def.label).into(),
                def.field_type.as_str().into(),
                json_text(&def.options).into(),
                at.into(),
            ],
        )
        .await
        .map_err(|e| e.on_write("a custom field with this key"))?;
        self.append_changes(changes).await
    }

    pub async fn update_custom_field(
        &mut self,
        org_id: &OrgId,
        def: &CustomFieldDef,
        changes: &[Change],
    ) -> StoreResult<()> {
        let done = self
            .execute(
                "UPDATE custom_fields SET label = $3, options = $4 WHERE org_id = $1 AND id = $2",
                &[org_id.into(), (&def.id).into(), (&def.label).into(), json_text(&def.options).into()],
            )
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        self.append_changes(changes).await
    }

    /// Removes the definition and its values from every record of the entity (trashed
    /// ones too).
    pub async fn delete_custom_field(
        &mut self,
        org_id: &OrgId,
        def: &CustomFieldDef,
        changes: &[Change],
    ) -> StoreResult<()> {
        if !is_safe_key(&def.key) {
            return Err(StoreError::Corrupt(format!("custom field key {:?}", def.key)));
        }
        self.execute("DELETE FROM custom_fields WHERE org_id = $1 AND id = $2", &[org_id.into(), (&def.id).into()])
            .await?;
        let table = def.entity.def().plural;
        let expr = json_remove(self.dialect(), "custom", &def.key);
        self.execute(&format!("UPDATE {table} SET custom = {expr} WHERE org_id = $1"), &[org_id.into()]).await?;
        self.append_changes(changes).await
    }

    pub async fn custom_field(
        &mut self,
        org_id: &OrgId,
        entity: Entity,
        key: &str,
    ) -> StoreResult<Option<CustomFieldDef>> {
        let row = self
            .fetch_one(
                "SELECT id, label, field_type, options FROM custom_fields WHERE org_id = $1 AND entity = $2 AND key = $3",
                &[org_id.into(), entity.as_str().into(), key.into()],
            )
            .await?;
        let Some(mut r) = row else { return Ok(None) };
        let ty = r.need_text(2)?;
        Ok(Some(CustomFieldDef {
            id: r.need_text(0)?,
            entity,
            key: key.to_owned(),
            label: r.need_text(1)?,
            field_type: CustomType::parse(&ty).ok_or_else(|| StoreError::Corrupt(format!("custom field type {ty}")))?,
            options: parse_json(&r.need_text(3)?, "options")?,
        }))
    }
}
