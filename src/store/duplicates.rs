//! What `find_duplicates` reads (SPEC 5): live records that share a key the database keeps
//! (an email, a phone number's digits, a company's name in any case), a key at a time in
//! key order, and contacts company by company for comparing their names.

use rapport_tools::Entity;

use super::query::table;
use super::*;

/// A key records may share, and the column that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DuplicateKey {
    /// A contact's email, stored lowercase.
    Email,
    /// A contact's phone number in digits (`phone_key`, migration 0012).
    Phone,
    /// A company's name, lowercase and trimmed (`name_key`).
    Name,
}

impl DuplicateKey {
    fn column(self) -> &'static str {
        match self {
            DuplicateKey::Email => "email",
            DuplicateKey::Phone => "phone_key",
            DuplicateKey::Name => "name_key",
        }
    }
}

/// A key two or more live records share, with those records oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedKey {
    pub key: String,
    pub ids: Vec<RecordId>,
}

/// A live contact at a company, with its name as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Colleague {
    pub company_id: String,
    pub id: RecordId,
    pub name: String,
}

/// Rows `(key, id)` in key order, folded into the keys they share.
fn fold(rows: Vec<db::DbRow>) -> StoreResult<Vec<SharedKey>> {
    let mut out: Vec<SharedKey> = Vec::new();
    for mut r in rows {
        let (key, id) = (r.need_text("k")?, RecordId::from(r.need_text("id")?));
        match out.last_mut() {
            Some(last) if last.key == key => last.ids.push(id),
            _ => out.push(SharedKey { key, ids: vec![id] }),
        }
    }
    Ok(out)
}

impl Store {
    /// Up to `limit` keys after `after` that two or more live records of `entity` share.
    pub async fn shared_keys(
        &self,
        org_id: &OrgId,
        entity: Entity,
        key: DuplicateKey,
        after: &str,
        limit: u32,
    ) -> StoreResult<Vec<SharedKey>> {
        let (t, c) = (table(entity), key.column());
        let sql = format!(
            "SELECT r.{c} AS k, r.id AS id FROM {t} r JOIN \
             (SELECT {c} AS k FROM {t} WHERE org_id = $1 AND deleted_at IS NULL AND {c} IS NOT NULL AND {c} > $2 \
              GROUP BY {c} HAVING COUNT(*) > 1 ORDER BY {c} LIMIT $3) g ON r.{c} = g.k \
             WHERE r.org_id = $1 AND r.deleted_at IS NULL ORDER BY r.{c}, r.created_at, r.id"
        );
        fold(self.db.fetch(&sql, &[org_id.into(), after.into(), i64::from(limit).into()]).await?)
    }

    /// The live records of `entity` whose `key` is one of `keys`, folded by key (a key
    /// one record alone holds comes back with one id).
    pub async fn sharing(
        &self,
        org_id: &OrgId,
        entity: Entity,
        key: DuplicateKey,
        keys: &[String],
    ) -> StoreResult<Vec<SharedKey>> {
        if keys.is_empty() {
            return Ok(vec![]);
        }
        let (t, c) = (table(entity), key.column());
        let mut sql = query::Sql::new(self.dialect());
        sql.push(&format!("SELECT {c} AS k, id FROM {t} WHERE org_id = "));
        sql.bind(org_id.into());
        sql.push(&format!(" AND deleted_at IS NULL AND {c} IN "));
        sql.bind_list(keys.iter().map(|k| SqlValue::from(k.as_str())));
        sql.push(&format!(" ORDER BY {c}, created_at, id"));
        fold(self.db.fetch(&sql.text, &sql.binds).await?)
    }

    /// The keys of live records `ids` of `entity`: `(id, key)` where the record has one.
    pub async fn keys_of(
        &self,
        org_id: &OrgId,
        entity: Entity,
        key: DuplicateKey,
        ids: &[RecordId],
    ) -> StoreResult<Vec<(RecordId, String)>> {
        let (t, c) = (table(entity), key.column());
        let mut sql = query::Sql::new(self.dialect());
        sql.push(&format!("SELECT id, {c} AS k FROM {t} WHERE org_id = "));
        sql.bind(org_id.into());
        sql.push(&format!(" AND deleted_at IS NULL AND {c} IS NOT NULL AND id IN "));
        sql.bind_list(ids.iter().map(SqlValue::from));
        let rows = self.db.fetch(&sql.text, &sql.binds).await?;
        rows.into_iter().map(|mut r| Ok((RecordId::from(r.need_text("id")?), r.need_text("k")?))).collect()
    }

    /// Live contacts at a company, company by company after `after`, oldest first within
    /// each: at most `limit` rows, so the last company may be cut short.
    pub async fn colleagues(&self, org_id: &OrgId, after: &str, limit: u32) -> StoreResult<Vec<Colleague>> {
        let sql = format!(
            "SELECT {COLLEAGUE_COLS} FROM contacts WHERE org_id = $1 AND deleted_at IS NULL AND company_id > $2 \
             ORDER BY company_id, created_at, id LIMIT $3"
        );
        let rows = self.db.fetch(&sql, &[org_id.into(), after.into(), i64::from(limit).into()]).await?;
        rows.into_iter().map(colleague).collect()
    }

    /// Every live contact at `company_id`, oldest first.
    pub async fn colleagues_at(&self, org_id: &OrgId, company_id: &str) -> StoreResult<Vec<Colleague>> {
        let sql = format!(
            "SELECT {COLLEAGUE_COLS} FROM contacts WHERE org_id = $1 AND deleted_at IS NULL AND company_id = $2 \
             ORDER BY created_at, id"
        );
        let rows = self.db.fetch(&sql, &[org_id.into(), company_id.into()]).await?;
        rows.into_iter().map(colleague).collect()
    }

    /// The names of live records `ids` of `entity` (a contact's first and last name).
    pub async fn names_of(
        &self,
        org_id: &OrgId,
        entity: Entity,
        ids: &[RecordId],
    ) -> StoreResult<Vec<(RecordId, String)>> {
        let cols = if entity == Entity::Contact {
            "id, first_name, last_name"
        } else {
            "id, name AS first_name, '' AS last_name"
        };
        let mut sql = query::Sql::new(self.dialect());
        sql.push(&format!("SELECT {cols} FROM {} WHERE org_id = ", table(entity)));
        sql.bind(org_id.into());
        sql.push(" AND deleted_at IS NULL AND id IN ");
        sql.bind_list(ids.iter().map(SqlValue::from));
        sql.push(" ORDER BY created_at, id");
        let rows = self.db.fetch(&sql.text, &sql.binds).await?;
        rows.into_iter()
            .map(|mut r| {
                Ok((RecordId::from(r.need_text("id")?), full_name(r.text("first_name")?, r.text("last_name")?)))
            })
            .collect()
    }
}

fn full_name(first: Option<String>, last: Option<String>) -> String {
    [first, last].into_iter().flatten().collect::<Vec<_>>().join(" ").trim().to_owned()
}

/// What `colleague` reads.
const COLLEAGUE_COLS: &str = "company_id, id, first_name, last_name";

fn colleague(mut r: db::DbRow) -> StoreResult<Colleague> {
    Ok(Colleague {
        company_id: r.need_text("company_id")?,
        id: RecordId::from(r.need_text("id")?),
        name: full_name(r.text("first_name")?, r.text("last_name")?),
    })
}
