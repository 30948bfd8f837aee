//! One description per entity: its fields (type, operators, sortable, writable, required),
//! relations, free-text search fields, upsert key, scopes and tool names. Validation,
//! filters, sorting, cursors, the wire shape, the stored columns, `describe_entity` and the
//! tool schemas are all derived from these descriptions.
//!
//! Adding a plain field is one line in the entity's file (plus a migration per dialect);
//! adding an entity is one new file here and one line in `entities!` below.

pub mod activity;
mod company;
mod contact;
mod deal;
mod note;
mod task;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::scope::Scope;

macro_rules! entities {
    ($($variant:ident => $module:ident::$def:ident),+ $(,)?) => {
        // The kinds of record Rapport keeps (inlined where used: a `$ref` costs more).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
        #[serde(rename_all = "lowercase")]
        #[schemars(inline)]
        pub enum Entity { $($variant),+ }

        impl Entity {
            pub const ALL: &'static [Entity] = &[$(Entity::$variant),+];

            /// The entity's description.
            pub fn def(self) -> &'static EntityDef {
                match self { $(Entity::$variant => &$module::$def),+ }
            }
        }
    };
}

entities! {
    Contact => contact::CONTACT,
    Company => company::COMPANY,
    Deal => deal::DEAL,
    Task => task::TASK,
    Note => note::NOTE,
    Activity => activity::ACTIVITY,
}

impl Entity {
    pub fn as_str(self) -> &'static str {
        self.def().name
    }

    pub fn plural(self) -> &'static str {
        self.def().plural
    }

    pub fn parse(s: &str) -> Option<Entity> {
        Entity::ALL.iter().copied().find(|e| e.as_str() == s)
    }

    /// Every entity's name, for prose: "contact, company, … or activity".
    pub fn listed() -> String {
        Self::prose(Entity::ALL.iter().map(|e| e.as_str()))
    }

    /// Every entity's plural, for prose: "contacts, companies, … or activities".
    pub fn listed_plural() -> String {
        Self::prose(Entity::ALL.iter().map(|e| e.plural()))
    }

    fn prose<'a>(names: impl Iterator<Item = &'a str>) -> String {
        let names: Vec<&str> = names.collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A field's type: what values it takes, how it is stored and filtered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Id,
    Text,
    /// Markdown text, up to the field's `max_chars`.
    Markdown,
    /// Stored lowercase.
    Email,
    Phone,
    Url,
    /// A bare lowercase domain such as `acme.com`; a pasted URL is reduced to its host.
    Domain,
    Number,
    /// An exact decimal written as a string: `"1234.50"` stays `"1234.50"`.
    Decimal,
    /// An ISO 4217 code such as `EUR`.
    CurrencyCode,
    /// `{"amount": "12.50", "currency": "EUR"}` (custom fields).
    Currency,
    Boolean,
    /// `YYYY-MM-DD`.
    Date,
    /// RFC 3339.
    Datetime,
    /// One of the field's options.
    Select,
    /// Several of the field's options (custom fields).
    MultiSelect,
    Tags,
    /// The id of one record of another entity.
    Relation,
    /// Ids of several records of another entity.
    Relations,
    /// `{"entity", "id"}` of any record.
    RecordRef,
    /// The id of a user of the organization.
    User,
}

impl FieldType {
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Id => "id",
            FieldType::Text => "text",
            FieldType::Markdown => "markdown",
            FieldType::Email => "email",
            FieldType::Phone => "phone",
            FieldType::Url => "url",
            FieldType::Domain => "domain",
            FieldType::Number => "number",
            FieldType::Decimal => "decimal",
            FieldType::CurrencyCode => "currency_code",
            FieldType::Currency => "currency",
            FieldType::Boolean => "boolean",
            FieldType::Date => "date",
            FieldType::Datetime => "datetime",
            FieldType::Select => "select",
            FieldType::MultiSelect => "multi_select",
            FieldType::Tags => "tags",
            FieldType::Relation => "relation",
            FieldType::Relations => "relations",
            FieldType::RecordRef => "record_ref",
            FieldType::User => "user",
        }
    }
}

/// Where a field's values live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// `id`, `created_at`, `updated_at`: columns every entity has.
    System,
    /// A column of the entity's table named after the field (a record reference takes
    /// two: `NAME_entity` and `NAME_id`).
    Column,
    /// Read-only: the records of `entity` whose `field` points here.
    Reverse { entity: Entity, field: &'static str },
    /// Pairs in the links table (a deal's contacts).
    Links,
}

/// One field of an entity.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub ty: FieldType,
    pub doc: &'static str,
    pub storage: Storage,
    pub sortable: bool,
    pub writable: bool,
    /// Must be given on create and cannot be cleared.
    pub required: bool,
    /// For relations: the entity pointed to.
    pub target: Option<Entity>,
    /// For selects: the allowed values.
    pub options: &'static [&'static str],
    /// Longest text accepted, in characters.
    pub max_chars: usize,
    /// Counts over a range of it ("this week's calls per person") are read from one index
    /// that also holds every field they can be grouped or narrowed by (src/store/indexes.rs).
    pub window: bool,
}

/// Default longest text.
pub const MAX_TEXT: usize = 1_000;

impl Field {
    pub const fn new(name: &'static str, ty: FieldType, doc: &'static str) -> Field {
        Field {
            name,
            ty,
            doc,
            storage: Storage::Column,
            sortable: false,
            writable: true,
            required: false,
            target: None,
            options: &[],
            max_chars: MAX_TEXT,
            window: false,
        }
    }

    pub const fn sortable(mut self) -> Field {
        self.sortable = true;
        self
    }

    /// Sortable, and the window of the grouped counts of its entity.
    pub const fn window(mut self) -> Field {
        self.sortable = true;
        self.window = true;
        self
    }

    pub const fn read_only(mut self) -> Field {
        self.writable = false;
        self
    }

    pub const fn required(mut self) -> Field {
        self.required = true;
        self
    }

    pub const fn to(mut self, target: Entity) -> Field {
        self.target = Some(target);
        self
    }

    pub const fn options(mut self, options: &'static [&'static str]) -> Field {
        self.options = options;
        self
    }

    pub const fn max_chars(mut self, n: usize) -> Field {
        self.max_chars = n;
        self
    }

    const fn system(mut self) -> Field {
        self.storage = Storage::System;
        self.writable = false;
        self
    }

    /// Read-only: the `entity` records whose `field` names this record.
    pub const fn reverse(name: &'static str, entity: Entity, field: &'static str, doc: &'static str) -> Field {
        let mut f = Field::new(name, FieldType::Relations, doc).to(entity).read_only();
        f.storage = Storage::Reverse { entity, field };
        f
    }

    /// Kept in the links table, one row per related record.
    pub const fn links(mut self) -> Field {
        self.storage = Storage::Links;
        self
    }

    /// Stored in a column of the entity's table.
    pub fn is_column(&self) -> bool {
        self.storage == Storage::Column
    }

    /// Has an index on its sort key (src/store/indexes.rs), which sorting, keyset cursors
    /// and comparisons on it use.
    pub fn indexed(&self) -> bool {
        self.sortable && matches!(self.storage, Storage::Column | Storage::System)
    }
}

pub const ID: Field = Field::new("id", FieldType::Id, "The record's id.").system();
pub const CREATED_AT: Field = Field::new("created_at", FieldType::Datetime, "When it was created.").system().sortable();
pub const UPDATED_AT: Field =
    Field::new("updated_at", FieldType::Datetime, "When it last changed.").system().sortable();
pub const TAGS: Field = Field::new("tags", FieldType::Tags, "Free labels.");
/// The newest `occurred_at` of the activities about the record (SPEC 5), kept by the store in
/// each activity's transaction; never written by a record write.
pub const LAST_ACTIVITY_AT: Field = Field::new(
    "last_activity_at",
    FieldType::Datetime,
    "When its newest activity (call, meeting, email, message) happened; read-only.",
)
.read_only()
.sortable();
pub const OWNER: Field =
    Field::new("owner_id", FieldType::User, "Id of the user responsible for it (see get_workspace).");

/// The tools that write an entity's records.
#[derive(Debug, Clone, Copy)]
pub struct WriteTools {
    pub create: &'static str,
    pub update: &'static str,
    pub upsert: Option<&'static str>,
}

/// Rules beyond single fields, each implemented once in the domain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// `pipeline` defaults to `sales`, `stage` to its first stage and must belong to it;
    /// `status` follows a won or lost stage; `value` needs a `currency`.
    PipelineStage,
    /// `status` defaults to `open`; `done_at` is set when it becomes `done`, cleared when
    /// it is opened again.
    Completion,
    /// An activity: `occurred_at` defaults to now and is at most 5 minutes ahead, its
    /// `outcome` is one its `kind` can have, its `record` is a contact, company or deal.
    Interaction,
}

/// Everything Rapport knows about an entity.
#[derive(Debug)]
pub struct EntityDef {
    pub name: &'static str,
    /// The list argument of its tools, its table and its toolset.
    pub plural: &'static str,
    pub doc: &'static str,
    /// Every field, system fields included, in the order answers show them.
    pub fields: &'static [Field],
    /// Fields whose text free-text `query` searches (tags always are).
    pub search: &'static [&'static str],
    /// A record needs at least one of these.
    pub required_any: &'static [&'static str],
    /// The field `upsert_*` matches on (case-insensitively).
    pub upsert_key: Option<&'static str>,
    /// A field no two live records of an organization may share.
    pub unique: Option<&'static str>,
    /// Fields whose values, joined, name a record in references and lists.
    pub label: &'static [&'static str],
    pub read: Scope,
    pub write: Scope,
    pub delete: Scope,
    pub tools: WriteTools,
    /// One typical new record, as JSON, for tool descriptions.
    pub example: &'static str,
    pub rules: &'static [Rule],
    /// A decimal field and the currency field it is in: `count_records` sums it by currency.
    pub amount: Option<(&'static str, &'static str)>,
}

impl EntityDef {
    pub fn field(&self, name: &str) -> Option<&'static Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    /// Fields kept in columns of the entity's table, in column order.
    pub fn columns(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.fields.iter().filter(|f| f.is_column())
    }

    /// Fields stored with the record, in a column or the links table.
    pub fn stored(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.fields.iter().filter(|f| matches!(f.storage, Storage::Column | Storage::Links))
    }

    pub fn has_rule(&self, rule: Rule) -> bool {
        self.rules.contains(&rule)
    }

    pub fn writable(&self) -> impl Iterator<Item = &'static Field> + '_ {
        self.fields.iter().filter(|f| f.writable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_are_consistent() {
        for e in Entity::ALL {
            let def = e.def();
            assert_eq!(Entity::parse(def.name), Some(*e));
            for name in def.search.iter().chain(def.required_any).chain(def.label).chain(def.upsert_key.iter()) {
                assert!(def.field(name).is_some_and(|f| f.is_column()), "{}.{name}", def.name);
            }
            for f in def.fields {
                assert_eq!(
                    f.target.is_some(),
                    matches!(f.ty, FieldType::Relation | FieldType::Relations),
                    "{}",
                    f.name
                );
                assert_eq!(!f.options.is_empty(), f.ty == FieldType::Select, "{}", f.name);
                assert_eq!(f.storage == Storage::Links, f.ty == FieldType::Relations && f.writable, "{}", f.name);
            }
            // Upserts compare the stored column with a lowercased key (store::find_by).
            if let Some(k) = def.upsert_key {
                let ty = def.field(k).map(|f| f.ty);
                assert!(
                    matches!(ty, Some(FieldType::Email | FieldType::Domain)),
                    "{}.{k} is stored lowercase",
                    def.name
                );
            }
            let example: serde_json::Value = serde_json::from_str(def.example).expect("example is JSON");
            for key in example.as_object().expect("an object").keys() {
                assert!(def.field(key).is_some_and(|f| f.writable) || key == "custom", "{}: {key}", def.name);
            }
        }
    }
}
