//! Custom field definitions. Deleting one moves it and its values to the trash, out of
//! every record's sight, until the purge removes them for good.

use rapport_tools::Entity;

use super::db::Tx;
use super::query::{is_safe_key, json_get, json_remove};
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

    /// Moves the definition to the trash with the values every record of the entity holds
    /// for it (trashed records too), taking those values out of the records.
    pub async fn trash_custom_field(
        &mut self,
        org_id: &OrgId,
        def: &CustomFieldDef,
        at: crate::time::Millis,
        changes: &[Change],
    ) -> StoreResult<u64> {
        if !is_safe_key(&def.key) {
            return Err(StoreError::Corrupt(format!("custom field key {:?}", def.key)));
        }
        self.execute(
            "INSERT INTO trashed_custom_fields (id, org_id, entity, key, label, field_type, options, created_at, deleted_at) \
             SELECT id, org_id, entity, key, label, field_type, options, created_at, $3 FROM custom_fields \
             WHERE org_id = $1 AND id = $2",
            &[org_id.into(), (&def.id).into(), at.into()],
        )
        .await?;
        let table = def.entity.def().plural;
        let value = json_get(self.dialect(), "custom", &def.key);
        let kept = self
            .execute(
                &format!(
                    "INSERT INTO trashed_custom_values (field_id, record_id, value) \
                     SELECT $1, id, {value} FROM {table} WHERE org_id = $2 AND {value} IS NOT NULL"
                ),
                &[(&def.id).into(), org_id.into()],
            )
            .await?;
        self.execute("DELETE FROM custom_fields WHERE org_id = $1 AND id = $2", &[org_id.into(), (&def.id).into()])
            .await?;
        let expr = json_remove(self.dialect(), "custom", &def.key);
        self.execute(
            &format!("UPDATE {table} SET custom = {expr} WHERE org_id = $1 AND {value} IS NOT NULL"),
            &[org_id.into()],
        )
        .await?;
        self.append_changes(changes).await?;
        Ok(kept)
    }

    /// Brings back the newest trashed field of `entity` named `key`, with the values its
    /// records held, for records that still exist: a revert of its deletion. `None` when no
    /// such field is in the trash (it was purged); `Conflict` when a live field has the key.
    pub async fn restore_custom_field(
        &mut self,
        org_id: &OrgId,
        entity: Entity,
        key: &str,
        changes: &[Change],
    ) -> StoreResult<Option<u64>> {
        if !is_safe_key(key) {
            return Err(StoreError::Corrupt(format!("custom field key {key:?}")));
        }
        let row = self
            .fetch_one(
                "SELECT id FROM trashed_custom_fields WHERE org_id = $1 AND entity = $2 AND key = $3 \
                 ORDER BY deleted_at DESC LIMIT 1",
                &[org_id.into(), entity.as_str().into(), key.into()],
            )
            .await?;
        let Some(mut row) = row else { return Ok(None) };
        let field_id = row.need_text("id")?;
        self.execute(
            "INSERT INTO custom_fields (id, org_id, entity, key, label, field_type, options, created_at) \
             SELECT id, org_id, entity, key, label, field_type, options, created_at FROM trashed_custom_fields \
             WHERE id = $1",
            &[field_id.as_str().into()],
        )
        .await
        .map_err(|e| e.on_write("a custom field with this key"))?;
        let table = entity.def().plural;
        let set = match self.dialect() {
            Dialect::Sqlite => format!("custom = json_set({table}.custom, '$.{key}', json(v.value))"),
            Dialect::Postgres => {
                format!("custom = ({table}.custom::jsonb || jsonb_build_object('{key}', v.value::jsonb))::text")
            }
        };
        let restored = self
            .execute(
                &format!(
                    "UPDATE {table} SET {set} FROM trashed_custom_values v \
                     WHERE v.field_id = $1 AND {table}.id = v.record_id AND {table}.org_id = $2"
                ),
                &[field_id.as_str().into(), org_id.into()],
            )
            .await?;
        self.execute("DELETE FROM trashed_custom_fields WHERE id = $1", &[field_id.as_str().into()]).await?;
        self.append_changes(changes).await?;
        Ok(Some(restored))
    }

    /// Removes for good the custom fields trashed before `before`, with their values;
    /// answers `(org, entity, key)` of each, for the change log.
    pub async fn purge_custom_fields(
        &mut self,
        before: crate::time::Millis,
    ) -> StoreResult<Vec<(OrgId, String, String)>> {
        let rows = self
            .fetch(
                "DELETE FROM trashed_custom_fields WHERE deleted_at < $1 RETURNING org_id, entity, key",
                &[before.into()],
            )
            .await?;
        rows.into_iter()
            .map(|mut r| Ok((OrgId::from(r.need_text("org_id")?), r.need_text("entity")?, r.need_text("key")?)))
            .collect()
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
        let ty = r.need_text("field_type")?;
        Ok(Some(CustomFieldDef {
            id: r.need_text("id")?,
            entity,
            key: key.to_owned(),
            label: r.need_text("label")?,
            field_type: CustomType::parse(&ty).ok_or_else(|| StoreError::Corrupt(format!("custom field type {ty}")))?,
            options: parse_json(&r.need_text("options")?, "options")?,
        }))
    }
}
