//! Ids as types, so one kind cannot be passed where another is meant: a record lookup
//! takes an `OrgId` and a `RecordId`, never two strings in either order.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        /// A plain string on the wire and in the API's schemas.
        impl schemars::JsonSchema for $name {
            fn schema_name() -> std::borrow::Cow<'static, str> {
                String::schema_name()
            }

            fn inline_schema() -> bool {
                true
            }

            fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                String::json_schema(generator)
            }
        }

        impl $name {
            /// A new, time-ordered id (UUIDv7).
            pub fn generate() -> Self {
                $name(uuid::Uuid::now_v7().to_string())
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }

            pub fn into_string(self) -> String {
                self.0
            }

            /// The same id without the spaces a paste may bring.
            pub fn trimmed(&self) -> Self {
                $name(self.0.trim().to_owned())
            }
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                $name(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                $name(s.to_owned())
            }
        }

        impl std::str::FromStr for $name {
            type Err = std::convert::Infallible;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Ok($name(s.trim().to_owned()))
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self.0)
            }
        }

        impl From<&$name> for super::db::SqlValue {
            fn from(id: &$name) -> Self {
                super::db::SqlValue::Text(id.0.clone())
            }
        }

        impl From<&Option<$name>> for super::db::SqlValue {
            fn from(id: &Option<$name>) -> Self {
                id.as_ref().into()
            }
        }

        impl From<Option<&$name>> for super::db::SqlValue {
            fn from(id: Option<&$name>) -> Self {
                id.map(|id| id.as_str()).into()
            }
        }
    };
}

id_type!(
    /// An organization: the tenant every record, key and user belongs to.
    OrgId
);
id_type!(
    /// A record of any entity.
    RecordId
);
id_type!(
    /// A person who signs in to the console or owns keys.
    UserId
);
id_type!(
    /// An API key (its record, never its secret).
    KeyId
);
id_type!(
    /// A webhook endpoint.
    EndpointId
);
