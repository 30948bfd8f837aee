//! Rows to domain values, written once for every driver: sqlx's SQLite and PostgreSQL rows
//! and rusqlite's rows all implement `Cols`.

use rapport_tools::records::Entity;
use rapport_tools::{Role, Scope, Scopes};
use serde_json::{Map, Value};

use super::*;

pub(super) trait Cols {
    fn text_at(&self, i: usize) -> StoreResult<Option<String>>;
    fn int_at(&self, i: usize) -> StoreResult<Option<i64>>;
    fn bool_at(&self, i: usize) -> StoreResult<bool>;
    fn index_of(&self, name: &str) -> StoreResult<usize>;

    fn text(&self, name: &str) -> StoreResult<Option<String>> {
        self.text_at(self.index_of(name)?)
    }

    fn int(&self, name: &str) -> StoreResult<Option<i64>> {
        self.int_at(self.index_of(name)?)
    }

    fn need_text_at(&self, i: usize) -> StoreResult<String> {
        self.text_at(i)?.ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    fn need_int_at(&self, i: usize) -> StoreResult<i64> {
        self.int_at(i)?.ok_or_else(|| StoreError::Corrupt(format!("column {i} is NULL")))
    }

    fn need_text(&self, name: &str) -> StoreResult<String> {
        self.text(name)?.ok_or_else(|| StoreError::Corrupt(format!("{name} is NULL")))
    }

    fn need_int(&self, name: &str) -> StoreResult<i64> {
        self.int(name)?.ok_or_else(|| StoreError::Corrupt(format!("{name} is NULL")))
    }
}

macro_rules! sqlx_cols {
    ($row:ty) => {
        impl Cols for $row {
            fn text_at(&self, i: usize) -> StoreResult<Option<String>> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn int_at(&self, i: usize) -> StoreResult<Option<i64>> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn bool_at(&self, i: usize) -> StoreResult<bool> {
                Ok(sqlx::Row::try_get(self, i)?)
            }
            fn index_of(&self, name: &str) -> StoreResult<usize> {
                Ok(sqlx::Column::ordinal(sqlx::Row::try_column(self, name)?))
            }
        }
    };
}
sqlx_cols!(sqlx::sqlite::SqliteRow);
sqlx_cols!(sqlx::postgres::PgRow);

impl Cols for rusqlite::Row<'_> {
    fn text_at(&self, i: usize) -> StoreResult<Option<String>> {
        self.get(i).map_err(fast_error)
    }
    fn int_at(&self, i: usize) -> StoreResult<Option<i64>> {
        self.get(i).map_err(fast_error)
    }
    fn bool_at(&self, i: usize) -> StoreResult<bool> {
        self.get(i).map_err(fast_error)
    }
    fn index_of(&self, name: &str) -> StoreResult<usize> {
        self.as_ref().column_index(name).map_err(fast_error)
    }
}

pub(super) fn fast_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if matches!(f.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) =>
        {
            StoreError::Unavailable(e.to_string())
        }
        _ => StoreError::Corrupt(format!("sqlite: {e}")),
    }
}

pub(super) fn parse_json<T: serde::de::DeserializeOwned>(s: &str, what: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(super) fn parse_role(s: &str) -> StoreResult<Role> {
    s.parse().map_err(StoreError::Corrupt)
}

fn parse_scopes(s: &str) -> StoreResult<Scopes> {
    let names: Vec<String> = parse_json(s, "scopes")?;
    // A scope dropped from a later release is ignored rather than locking the key out.
    Ok(names.iter().filter_map(|n| n.parse::<Scope>().ok()).collect())
}

pub(super) fn entity_name(s: &str) -> StoreResult<Entity> {
    match s {
        "contact" => Ok(Entity::Contact),
        "company" => Ok(Entity::Company),
        other => Err(StoreError::Corrupt(format!("unknown entity {other}"))),
    }
}

/// A user from `user_cols!()` starting at column `base`.
pub(super) fn user_at<R: Cols>(r: &R, base: usize) -> StoreResult<User> {
    Ok(User {
        id: r.need_text_at(base)?,
        org_id: r.need_text_at(base + 1)?,
        email: r.need_text_at(base + 2)?,
        name: r.text_at(base + 3)?,
        role: parse_role(&r.need_text_at(base + 4)?)?,
        active: r.bool_at(base + 5)?,
        created_at: r.need_int_at(base + 6)?,
    })
}

/// A key from `key_cols!()` at columns 0 to 14.
pub(super) fn key<R: Cols>(r: &R) -> StoreResult<KeyRecord> {
    let status = r.need_text_at(7)?;
    Ok(KeyRecord {
        id: r.need_text_at(0)?,
        org_id: r.need_text_at(1)?,
        user_id: r.need_text_at(2)?,
        name: r.need_text_at(3)?,
        preview: r.need_text_at(4)?,
        role: r.text_at(5)?.as_deref().map(parse_role).transpose()?,
        scopes: parse_scopes(&r.need_text_at(6)?)?,
        status: KeyStatus::parse(&status).ok_or_else(|| StoreError::Corrupt(format!("key status {status}")))?,
        created_at: r.need_int_at(8)?,
        expires_at: r.int_at(9)?,
        allowed_cidrs: parse_json(&r.need_text_at(10)?, "allowed_cidrs")?,
        last_used_at: r.int_at(11)?,
        last_used_ip: r.text_at(12)?,
        revoked_at: r.int_at(13)?,
        rotated_from: r.text_at(14)?,
    })
}

/// A row of `KEY_FOR_AUTH`: the key, its user from column 15, its organization.
pub(super) fn key_auth<R: Cols>(r: &R) -> StoreResult<KeyAuth> {
    let org = Org { id: r.need_text("o_id")?, name: r.need_text("o_name")?, created_at: r.need_int("o_created_at")? };
    let via_grace = r.bool_at(r.index_of("via_grace")?)?;
    Ok(KeyAuth { key: key(r)?, user: user_at(r, 15)?, org, via_grace, grace_until: r.int("grace_until")? })
}

pub(super) fn org<R: Cols>(r: &R) -> StoreResult<Org> {
    Ok(Org { id: r.need_text_at(0)?, name: r.need_text_at(1)?, created_at: r.need_int_at(2)? })
}

pub(super) fn audit<R: Cols>(r: &R) -> StoreResult<AuditEntry> {
    let kind = r.need_text("actor_type")?;
    let actor_id = r.text("actor_id")?;
    let key_id = r.text("key_id")?;
    let actor = match (kind.as_str(), actor_id) {
        ("cli", _) => Actor::Cli,
        ("key", Some(id)) => Actor::Key { key_id: key_id.clone().unwrap_or_default(), user_id: id },
        ("user", Some(id)) => Actor::User { user_id: id },
        _ => Actor::System,
    };
    Ok(AuditEntry {
        id: r.need_text("id")?,
        org_id: r.text("org_id")?,
        at: r.need_int("at")?,
        actor,
        action: r.need_text("action")?,
        target_type: r.text("target_type")?,
        target_id: r.text("target_id")?,
        key_id,
        ip: r.text("ip")?,
        details: parse_json(&r.need_text("details")?, "details")?,
    })
}

pub(super) fn custom_field<R: Cols>(r: &R) -> StoreResult<CustomFieldDef> {
    Ok(CustomFieldDef {
        id: r.need_text_at(0)?,
        entity: entity_name(&r.need_text_at(1)?)?,
        key: r.need_text_at(2)?,
        label: r.need_text_at(3)?,
        field_type: r.need_text_at(4)?,
        options: parse_json(&r.need_text_at(5)?, "options")?,
    })
}

/// A contact or company from `CONTACT_COLS` / `COMPANY_COLS`, by position (name lookups
/// showed up in load profiles).
pub(super) fn record<R: Cols>(entity: Entity, r: &R) -> StoreResult<Row> {
    Ok(match entity {
        // id, first_name, last_name, email, phone, title, company_id, owner_id, tags, custom, created_at, updated_at
        Entity::Contact => Row::Contact(ContactRow {
            id: r.need_text_at(0)?,
            first_name: r.text_at(1)?,
            last_name: r.text_at(2)?,
            email: r.text_at(3)?,
            phone: r.text_at(4)?,
            title: r.text_at(5)?,
            company_id: r.text_at(6)?,
            owner_id: r.text_at(7)?,
            tags: parse_json(&r.need_text_at(8)?, "tags")?,
            custom: parse_json::<Map<String, Value>>(&r.need_text_at(9)?, "custom")?,
            created_at: r.need_int_at(10)?,
            updated_at: r.need_int_at(11)?,
        }),
        // id, name, domain, industry, owner_id, tags, custom, created_at, updated_at
        Entity::Company => Row::Company(CompanyRow {
            id: r.need_text_at(0)?,
            name: r.need_text_at(1)?,
            domain: r.text_at(2)?,
            industry: r.text_at(3)?,
            owner_id: r.text_at(4)?,
            tags: parse_json(&r.need_text_at(5)?, "tags")?,
            custom: parse_json::<Map<String, Value>>(&r.need_text_at(6)?, "custom")?,
            created_at: r.need_int_at(7)?,
            updated_at: r.need_int_at(8)?,
        }),
    })
}
