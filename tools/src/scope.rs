//! Scopes and role presets (SPEC section 3). A key carries scopes; a role is a named set.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

macro_rules! scopes {
    ($($variant:ident => $name:literal),+ $(,)?) => {
        /// One permission a key can carry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        #[repr(u8)]
        pub enum Scope { $($variant),+ }

        impl Scope {
            pub const ALL: &'static [Scope] = &[$(Scope::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $(Scope::$variant => $name),+ }
            }
        }

        impl FromStr for Scope {
            type Err = UnknownScope;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s { $($name => Ok(Scope::$variant),)+ _ => Err(UnknownScope(s.to_owned())) }
            }
        }
    };
}

scopes! {
    ContactsRead => "contacts:read", ContactsWrite => "contacts:write", ContactsDelete => "contacts:delete",
    CompaniesRead => "companies:read", CompaniesWrite => "companies:write", CompaniesDelete => "companies:delete",
    DealsRead => "deals:read", DealsWrite => "deals:write", DealsDelete => "deals:delete",
    TasksRead => "tasks:read", TasksWrite => "tasks:write", TasksDelete => "tasks:delete",
    NotesRead => "notes:read", NotesWrite => "notes:write", NotesDelete => "notes:delete",
    ActivitiesRead => "activities:read", ActivitiesWrite => "activities:write", ActivitiesDelete => "activities:delete",
    LeadsWrite => "leads:write",
    SchemaManage => "schema:manage",
    KeysManage => "keys:manage",
    WebhooksManage => "webhooks:manage",
    AuditRead => "audit:read",
    UsersManage => "users:manage",
    ChangesRevert => "changes:revert",
    OrgManage => "org:manage",
}

/// A scope's schema is the enum of its names.
impl JsonSchema for Scope {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Scope".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        schemars::json_schema!({ "type": "string", "enum": names })
    }
}

/// A scope name that is not one of [`Scope::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownScope(pub String);

impl fmt::Display for UnknownScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let valid: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        write!(f, "unknown scope `{}`; valid scopes: {}", self.0, valid.join(", "))
    }
}

impl std::error::Error for UnknownScope {}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A set of scopes: a bitset, so checking and copying one on every request costs nothing.
/// Iteration follows the order of [`Scope::ALL`].
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Scopes(u32);

impl Scopes {
    pub const fn empty() -> Self {
        Scopes(0)
    }

    pub fn all() -> Self {
        Scope::ALL.iter().copied().collect()
    }

    fn bit(s: Scope) -> u32 {
        1 << (s as u32)
    }

    pub fn contains(&self, s: &Scope) -> bool {
        self.0 & Self::bit(*s) != 0
    }

    /// True when the scope was not already present.
    pub fn insert(&mut self, s: Scope) -> bool {
        let new = !self.contains(&s);
        self.0 |= Self::bit(s);
        new
    }

    pub fn len(&self) -> usize {
        self.0.count_ones() as usize
    }

    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    pub fn is_subset(&self, other: &Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn intersection(&self, other: &Scopes) -> Scopes {
        Scopes(self.0 & other.0)
    }

    /// The first scope of this set that `holder` lacks. SPEC 3's Authority rule asks that
    /// there be none before anyone hands these powers out or takes them over.
    pub fn first_beyond(&self, holder: &Scopes) -> Option<Scope> {
        Scopes(self.0 & !holder.0).iter().next()
    }

    pub fn iter(&self) -> impl Iterator<Item = Scope> + '_ {
        Scope::ALL.iter().copied().filter(|s| self.contains(s))
    }
}

impl FromIterator<Scope> for Scopes {
    fn from_iter<I: IntoIterator<Item = Scope>>(iter: I) -> Self {
        let mut set = Scopes::empty();
        set.extend(iter);
        set
    }
}

impl Extend<Scope> for Scopes {
    fn extend<I: IntoIterator<Item = Scope>>(&mut self, iter: I) {
        for s in iter {
            self.insert(s);
        }
    }
}

impl fmt::Debug for Scopes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter().map(Scope::as_str)).finish()
    }
}

/// A user's role, and the preset of scopes a key gets from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Viewer,
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const ALL: &'static [Role] = &[Role::Viewer, Role::Member, Role::Admin, Role::Owner];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// The scopes this role grants (SPEC section 3); the record scopes come from the
    /// entity descriptions.
    pub fn scopes(self) -> Scopes {
        use Scope::*;
        let entities = crate::entities::Entity::ALL.iter().map(|e| e.def());
        let mut set: Scopes = entities.clone().map(|d| d.read).collect();
        if self >= Role::Member {
            set.extend(entities.clone().map(|d| d.write));
            set.insert(LeadsWrite);
        }
        if self >= Role::Admin {
            set.extend(entities.map(|d| d.delete));
            set.extend([SchemaManage, KeysManage, WebhooksManage, AuditRead, UsersManage, ChangesRevert]);
        }
        if self == Role::Owner {
            set.insert(OrgManage);
        }
        set
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            other => Err(format!("unknown role `{other}`; valid roles: viewer, member, admin, owner")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_nest() {
        assert_eq!(Role::Viewer.scopes().len(), 6);
        assert_eq!(Role::Member.scopes().len(), 13);
        assert_eq!(Role::Admin.scopes().len(), 25);
        assert_eq!(Role::Owner.scopes().len(), Scope::ALL.len());
        assert!(Role::Viewer.scopes().is_subset(&Role::Member.scopes()));
    }

    #[test]
    fn scope_names_round_trip() {
        for s in Scope::ALL {
            assert_eq!(s.as_str().parse::<Scope>().unwrap(), *s);
        }
        assert!("contacts:admin".parse::<Scope>().unwrap_err().to_string().contains("contacts:read"));
    }
}
