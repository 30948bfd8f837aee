//! The connect helper (SPEC section 6): what a user pastes or clicks to use Rapport from an
//! agent, with a key in it. The key is the one the caller supplied; else a new one, shown
//! in this answer only: the organization's first key when it has no enabled key, or a key
//! named after the client.

use rapport_clients::{Client, Install, Kind};

use crate::config::PublicUrl;
use serde::Serialize;

use rapport_tools::Scope;

use super::{KeyError, NewKeyRequest, check};
use crate::auth::key::PlainKey;
use crate::crm::Principal;
use crate::store::{KeyId, KeyStatus, Store};

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
    pub key_id: KeyId,
    pub key_preview: String,
    pub alternatives: Vec<rapport_clients::Alternative>,
    /// What may keep `value` from working, said before the user finds out (a connector
    /// called from the internet given a URL the internet cannot reach).
    pub warnings: Vec<String>,
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
    /// Whether the server accepts `?api_key=` (`RAPPORT_QUERY_KEYS`): connector URLs need it.
    pub query_keys: bool,
    pub key: KeySource<'a>,
    /// Who owns a key made for the connection; default: the organization's first owner.
    pub user_email: Option<&'a str>,
    /// The catalog the client lists (SPEC 5): `full` rides in the URL as `?profile=full`.
    pub profile: rapport_tools::Profile,
}

pub async fn connect(
    store: &Store,
    creator: &Principal,
    req: ConnectRequest<'_>,
    max_active: u32,
) -> Result<Vec<Connection>, KeyError> {
    check(store, creator, Scope::KeysManage).await?;
    let org = &creator.org;
    let mut clients = Client::select(req.client).map_err(|e| KeyError::Invalid(e.to_string()))?.to_vec();
    let name = req.name.unwrap_or(rapport_clients::DEFAULT_NAME);
    rapport_clients::validate_name(name).map_err(|e| KeyError::Invalid(e.to_string()))?;
    // What the helper hands out must work: a base the server itself would take, and no
    // `?api_key=` URL the server would refuse.
    let public = PublicUrl::parse(req.public_url).map_err(KeyError::Invalid)?;
    if !req.query_keys {
        let by_url = |c: &Client| c.takes_url_only();
        if let [one] = clients.as_slice()
            && by_url(one)
        {
            return Err(KeyError::Invalid(format!(
                "{one} takes only a URL, so its key must ride in `?api_key=`, which this server refuses (RAPPORT_QUERY_KEYS=false); turn query keys on, or connect another client"
            )));
        }
        clients.retain(|c| !by_url(c));
    }
    let (secret, key_id, key_preview, key_created) = match req.key {
        KeySource::Supplied(key) => {
            let found = store.key_for_auth(&key.digest()).await?;
            let auth = found
                .filter(|a| a.key.org_id == org.id && !a.via_grace)
                .ok_or_else(|| KeyError::NotFound(format!("that key is not a key of organization {}", org.name)))?;
            match auth.key.status {
                KeyStatus::Enabled => {}
                KeyStatus::Disabled => {
                    return Err(KeyError::Invalid(format!(
                        "key {} is disabled; enable it (`rapport keys enable {}`) or use another",
                        auth.key.name, auth.key.id
                    )));
                }
                KeyStatus::Revoked => {
                    return Err(KeyError::Revoked(format!(
                        "key {} is revoked for good; run without --key to get a new one, or pass another",
                        auth.key.name
                    )));
                }
            }
            (key.expose().to_owned(), auth.key.id, auth.key.preview, false)
        }
        KeySource::Create => {
            let existing = store.list_keys(&org.id, true).await?;
            let has_enabled = existing.iter().any(|k| k.status == KeyStatus::Enabled);
            let base = match (has_enabled, clients.as_slice()) {
                (false, _) => "default",
                (true, [one]) => one.as_str(),
                (true, _) => "all clients",
            };
            // A second key for a client gets a name of its own, so the list tells them apart.
            let taken = |n: &str| existing.iter().any(|k| k.name == n);
            let key_name = (1..)
                .map(|i| if i == 1 { base.to_owned() } else { format!("{base} {i}") })
                .find(|n| !taken(n))
                .expect("some number is free");
            let new = NewKeyRequest {
                name: key_name,
                role: Some(NEW_KEY_ROLE.into()),
                user_email: req.user_email.map(str::to_owned),
                ..Default::default()
            };
            let created = super::create(store, creator, new, max_active).await.map_err(|e| match e {
                KeyError::Limit(n) => KeyError::Invalid(format!(
                    "cannot create a key for this connection: organization {} already has {n} enabled keys, the most RAPPORT_MAX_ACTIVE_KEYS allows. Pass an existing key (--key KEY), or disable or revoke a key first",
                    org.name
                )),
                other => other,
            })?;
            (created.key, created.id, created.preview, true)
        }
    };
    let mut url = rapport_clients::mcp_url(public.as_str());
    if req.profile != rapport_tools::Profile::default() {
        url = format!("{url}?profile={}", req.profile.as_str());
    }
    Ok(clients
        .iter()
        .map(|c| {
            let Install { client, kind, value, instructions, alternatives } =
                rapport_clients::render(*c, &url, name, &secret);
            let warnings = if client.takes_url_only() { unreachable_from_internet(&public, client) } else { vec![] };
            Connection {
                client,
                kind,
                value,
                instructions,
                key_created,
                key_id: key_id.clone(),
                key_preview: key_preview.clone(),
                alternatives,
                warnings,
            }
        })
        .collect())
}

/// Claude Desktop's and ChatGPT's connectors are called from their makers' servers, over
/// the internet: a plain-http URL, or one on a loopback or private address, cannot work there.
fn unreachable_from_internet(public: &PublicUrl, client: Client) -> Vec<String> {
    let mut out = Vec::new();
    let host = public.host().map(|h| h.to_string()).unwrap_or_default();
    let ip = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().ok();
    let local_name = host == "localhost"
        || [".localhost", ".local", ".internal", ".lan", ".home.arpa"].iter().any(|s| host.ends_with(s));
    let private = ip.is_some_and(|ip| crate::webhooks::guard::refused(ip).is_some()) || local_name;
    if private {
        out.push(format!(
            "{client}'s connectors are called from the internet, and {host} is a loopback or private address they cannot reach; set RAPPORT_PUBLIC_URL to the https address the server is published at (a tunnel or reverse proxy)"
        ));
    }
    if !public.is_https() {
        out.push(format!(
            "{client}'s connectors need https; {} is plain http: publish the server behind TLS and set RAPPORT_PUBLIC_URL to that https address",
            public.as_str()
        ));
    }
    out
}
