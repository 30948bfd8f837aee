//! The connect helper (SPEC section 6): what a user pastes or clicks to use Rapport from an
//! agent, with a key in it. The key is the one the caller supplied; else a new one, shown
//! in this answer only: the organization's first key when it has no enabled key, or a key
//! named after the client.

use rapport_clients::{Client, Install, Kind};
use serde::Serialize;

use super::{Creator, KeyError, NewKeyRequest};
use crate::auth::key::PlainKey;
use crate::store::{KeyStatus, Org, Store};

/// Role of keys the helper creates: agents read and write records; deleting and
/// administering take a key made on purpose (`rapport keys create --role …`).
pub const NEW_KEY_ROLE: &str = "member";

/// One client's answer: the fields SPEC section 6 names, plus other ways to install.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Connection {
    pub client: Client,
    pub kind: Kind,
    pub value: String,
    pub instructions: String,
    pub key_created: bool,
    pub key_id: String,
    pub key_preview: String,
    pub alternatives: Vec<rapport_clients::Alternative>,
}

/// Where the key comes from.
pub enum KeySource<'a> {
    /// A key given by the caller (`--key`, or the key of the HTTP call).
    Supplied(&'a PlainKey),
    /// Make one if needed.
    Create,
}

pub struct ConnectRequest<'a> {
    /// `claude-code`, …, or `all`.
    pub client: &'a str,
    /// The server name the client shows; default `rapport`.
    pub name: Option<&'a str>,
    pub public_url: &'a str,
    pub key: KeySource<'a>,
    /// Who owns a key made for the connection; default: the organization's first owner.
    pub user_email: Option<&'a str>,
}

pub async fn connect(
    store: &Store,
    org: &Org,
    creator: &Creator,
    req: ConnectRequest<'_>,
    max_active: u32,
) -> Result<Vec<Connection>, KeyError> {
    let clients = Client::select(req.client).map_err(|e| KeyError::Invalid(e.to_string()))?;
    let name = req.name.unwrap_or(rapport_clients::DEFAULT_NAME);
    rapport_clients::validate_name(name).map_err(|e| KeyError::Invalid(e.to_string()))?;
    let (secret, key_id, key_preview, key_created) = match req.key {
        KeySource::Supplied(key) => {
            let found = store.key_for_auth(&key.digest()).await?;
            let auth = found
                .filter(|a| a.key.org_id == org.id && !a.via_grace)
                .ok_or_else(|| KeyError::NotFound(format!("that key is not a key of organization {}", org.name)))?;
            if auth.key.status != KeyStatus::Enabled {
                return Err(KeyError::Invalid(format!(
                    "key {} is {}; enable it or use another",
                    auth.key.name,
                    auth.key.status.as_str()
                )));
            }
            (key.expose().to_owned(), auth.key.id, auth.key.preview, false)
        }
        KeySource::Create => {
            let has_enabled = store.list_keys(&org.id, false).await?.iter().any(|k| k.status == KeyStatus::Enabled);
            let key_name = match (has_enabled, clients) {
                (false, _) => "default".to_owned(),
                (true, [one]) => one.as_str().to_owned(),
                (true, _) => "all clients".to_owned(),
            };
            let new = NewKeyRequest {
                name: key_name,
                role: Some(NEW_KEY_ROLE.into()),
                user_email: req.user_email.map(str::to_owned),
                ..Default::default()
            };
            let created = super::create(store, org, creator, new, max_active).await.map_err(|e| match e {
                KeyError::Limit(n) => KeyError::Invalid(format!(
                    "cannot create a key for this connection: organization {} already has {n} enabled keys, the most RAPPORT_MAX_ACTIVE_KEYS allows. Pass an existing key (--key KEY), or disable or revoke a key first",
                    org.name
                )),
                other => other,
            })?;
            (created.key, created.id, created.preview, true)
        }
    };
    let url = rapport_clients::mcp_url(req.public_url);
    Ok(clients
        .iter()
        .map(|c| {
            let Install { client, kind, value, instructions, alternatives } =
                rapport_clients::render(*c, &url, name, &secret);
            Connection {
                client,
                kind,
                value,
                instructions,
                key_created,
                key_id: key_id.clone(),
                key_preview: key_preview.clone(),
                alternatives,
            }
        })
        .collect())
}
