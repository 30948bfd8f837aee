//! Records as tools return them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The kinds of record Rapport keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    Contact,
    Company,
}

impl Entity {
    pub const ALL: &'static [Entity] = &[Entity::Contact, Entity::Company];

    pub fn as_str(self) -> &'static str {
        match self {
            Entity::Contact => "contact",
            Entity::Company => "company",
        }
    }

    pub fn plural(self) -> &'static str {
        match self {
            Entity::Contact => "contacts",
            Entity::Company => "companies",
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A pointer to one record.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordRef {
    /// `contact` or `company`.
    pub entity: Entity,
    /// The record's id.
    pub id: String,
}

/// A company named from another record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct CompanyRef {
    pub id: String,
    pub name: String,
}

/// A contact named from another record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ContactRef {
    pub id: String,
    /// First and last name joined, or the email when there is no name.
    pub name: String,
    pub email: Option<String>,
}

/// A person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Contact {
    pub id: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub title: Option<String>,
    pub company_id: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    /// Custom field values by key.
    pub custom: Map<String, Value>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// The contact's company (in `get_records` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<CompanyRef>,
}

/// An organization the contacts belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Company {
    pub id: String,
    pub name: String,
    /// Lowercase domain, unique in the organization.
    pub domain: Option<String>,
    pub industry: Option<String>,
    pub owner_id: Option<String>,
    pub tags: Vec<String>,
    /// Custom field values by key.
    pub custom: Map<String, Value>,
    /// RFC 3339, UTC.
    pub created_at: String,
    /// RFC 3339, UTC.
    pub updated_at: String,
    /// How many contacts belong to the company (in `get_records` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_count: Option<u64>,
    /// Up to 25 of its contacts, newest first (in `get_records` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<ContactRef>>,
}

/// Any record, tagged with its entity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "entity", rename_all = "lowercase")]
pub enum Record {
    Contact(Contact),
    Company(Company),
}

impl Record {
    pub fn id(&self) -> &str {
        match self {
            Record::Contact(c) => &c.id,
            Record::Company(c) => &c.id,
        }
    }
}
