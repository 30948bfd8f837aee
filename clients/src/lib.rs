//! Install commands, deeplinks and config snippets that connect an MCP client to Rapport.
//!
//! Pure functions: the server's MCP URL (`RAPPORT_PUBLIC_URL` + `/api/v1/mcp`, see
//! [`mcp_url`]), a server name (default [`DEFAULT_NAME`]) and an API key go in; what the user
//! pastes into a terminal, clicks, or merges into a config file comes out, as an [`Install`].
//! Nothing here reads the environment, touches the file system or stores the key.
//!
//! Every shell command is built so that it runs unchanged in a POSIX shell (sh, dash, bash,
//! zsh) whatever the URL, name or key contain: each argument that needs it is single-quoted by
//! [`shell_quote`]. JSON is built with `serde_json`, TOML strings are escaped per TOML 1.0, and
//! everything placed in a URL query is percent-encoded (RFC 3986 unreserved characters are
//! left alone), so each value decodes back to exactly the input.
//!
//! ```
//! use rapport_clients::{Client, Kind, render};
//!
//! let install = render(Client::ClaudeCode, "https://crm.example.com/api/v1/mcp", "rapport", "rpk_abc");
//! assert_eq!(install.kind, Kind::Command);
//! assert_eq!(
//!     install.value,
//!     r#"claude mcp add --transport http rapport https://crm.example.com/api/v1/mcp --header "x-api-key: rpk_abc""#,
//! );
//! ```
//!
//! The server hands these out through `rapport connect CLIENT` and `POST /api/v1/connect`;
//! `docs/clients.md` describes, per client, what running each one writes where and how to
//! remove it again.

mod quote;

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

pub use quote::shell_quote;
use quote::{percent_encode, toml_key, toml_string};

/// The server name used when the caller gives none.
pub const DEFAULT_NAME: &str = "rapport";

/// The path of the MCP endpoint under `RAPPORT_PUBLIC_URL`.
pub const MCP_PATH: &str = "/api/v1/mcp";

/// The request header that carries the key in commands and configs.
pub const API_KEY_HEADER: &str = "x-api-key";

/// The query parameter that carries the key in connector URLs.
pub const API_KEY_QUERY: &str = "api_key";

/// The environment variable Codex reads the key from (sent as `Authorization: Bearer KEY`).
pub const API_KEY_ENV: &str = "RAPPORT_API_KEY";

/// The MCP endpoint for a public base URL: `public_url` without trailing slashes, plus
/// [`MCP_PATH`].
///
/// ```
/// assert_eq!(rapport_clients::mcp_url("https://crm.example.com/"), "https://crm.example.com/api/v1/mcp");
/// ```
pub fn mcp_url(public_url: &str) -> String {
    format!("{}{MCP_PATH}", public_url.trim_end_matches('/'))
}

/// An MCP client Rapport knows how to connect.
///
/// Serialized as its [`Client::as_str`] name; deserialized through [`Client::parse`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", try_from = "String")]
pub enum Client {
    /// Anthropic's Claude Code CLI: `claude-code`.
    ClaudeCode,
    /// OpenAI's Codex CLI: `codex`.
    Codex,
    /// Visual Studio Code (GitHub Copilot agent mode): `vscode`.
    Vscode,
    /// The Cursor editor: `cursor`.
    Cursor,
    /// Google's Gemini CLI: `gemini`.
    Gemini,
    /// The Windsurf editor: `windsurf`.
    Windsurf,
    /// The Claude Desktop app (and claude.ai) custom connectors: `claude-desktop`.
    ClaudeDesktop,
    /// ChatGPT connectors in developer mode: `chatgpt`.
    Chatgpt,
}

impl Client {
    /// Every client, in the order the console shows them.
    pub const ALL: &'static [Client] = &[
        Client::ClaudeCode,
        Client::Codex,
        Client::Vscode,
        Client::Cursor,
        Client::Gemini,
        Client::Windsurf,
        Client::ClaudeDesktop,
        Client::Chatgpt,
    ];

    /// The name used on the command line and over HTTP, e.g. `claude-code`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::Codex => "codex",
            Client::Vscode => "vscode",
            Client::Cursor => "cursor",
            Client::Gemini => "gemini",
            Client::Windsurf => "windsurf",
            Client::ClaudeDesktop => "claude-desktop",
            Client::Chatgpt => "chatgpt",
        }
    }

    /// Whether the client takes only a URL (its connector is called from the internet), so
    /// that the key rides in the URL's `?api_key=`.
    pub fn takes_url_only(&self) -> bool {
        matches!(self, Client::ClaudeDesktop | Client::Chatgpt)
    }

    /// The product's display name, e.g. `Claude Code` (for tabs and headings).
    pub fn title(&self) -> &'static str {
        match self {
            Client::ClaudeCode => "Claude Code",
            Client::Codex => "Codex",
            Client::Vscode => "VS Code",
            Client::Cursor => "Cursor",
            Client::Gemini => "Gemini CLI",
            Client::Windsurf => "Windsurf",
            Client::ClaudeDesktop => "Claude Desktop",
            Client::Chatgpt => "ChatGPT",
        }
    }

    /// Parses a client name. Surrounding whitespace, ASCII case and `_` for `-` are forgiven
    /// (`Claude_Code` is `claude-code`). `all` is not a client: see [`Client::select`].
    pub fn parse(s: &str) -> Result<Client, UnknownClient> {
        Client::find(s).copied().ok_or_else(|| UnknownClient { given: s.to_owned() })
    }

    fn find(s: &str) -> Option<&'static Client> {
        let wanted = s.trim().to_ascii_lowercase().replace('_', "-");
        Client::ALL.iter().find(|c| c.as_str() == wanted)
    }

    /// Parses a client name or `all` (every client, in [`Client::ALL`] order).
    ///
    /// ```
    /// use rapport_clients::Client;
    /// assert_eq!(Client::select("all").unwrap(), Client::ALL);
    /// assert_eq!(Client::select("codex").unwrap(), &[Client::Codex]);
    /// ```
    pub fn select(s: &str) -> Result<&'static [Client], UnknownClient> {
        if s.trim().eq_ignore_ascii_case("all") {
            return Ok(Client::ALL);
        }
        Client::find(s).map(std::slice::from_ref).ok_or_else(|| UnknownClient { given: s.to_owned() })
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Client {
    type Err = UnknownClient;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Client::parse(s)
    }
}

impl TryFrom<String> for Client {
    type Error = UnknownClient;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        Client::parse(&s)
    }
}

/// A client name that is not one of [`Client::ALL`]. Its message lists the valid names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownClient {
    /// What was given, as given.
    pub given: String,
}

impl fmt::Display for UnknownClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown client {:?}: expected one of ", self.given)?;
        for client in Client::ALL {
            write!(f, "{client}, ")?;
        }
        f.write_str("or all")
    }
}

impl std::error::Error for UnknownClient {}

/// A client's schema is the enum of its names.
impl schemars::JsonSchema for Client {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Client".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let names: Vec<&str> = Client::ALL.iter().map(|c| c.as_str()).collect();
        schemars::json_schema!({ "type": "string", "description": "An MCP client.", "enum": names })
    }
}

/// What the user does with an [`Install`] value or an [`Alternative`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(description = "What to do with `value`.")]
pub enum Kind {
    /// A shell command to run in a terminal.
    Command,
    /// A link to open (click, or paste into a browser's address bar).
    Deeplink,
    /// A config file snippet to merge into the named file.
    Config,
    /// A URL to paste into the client's "add connector" form.
    ConnectorUrl,
}

impl Kind {
    /// The serialized name: `command`, `deeplink`, `config` or `connector_url`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Command => "command",
            Kind::Deeplink => "deeplink",
            Kind::Config => "config",
            Kind::ConnectorUrl => "connector_url",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to paste or click to connect one client.
///
/// `value` holds the API key in plain text (except Codex's TOML alternative, which names the
/// environment variable instead), so `Debug` prints it redacted. Show it to the user once;
/// never log or store it.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Install {
    /// The client this is for.
    pub client: Client,
    /// What to do with `value`.
    pub kind: Kind,
    /// The command, link, config snippet or connector URL. May span lines (configs).
    pub value: String,
    /// One line: where to run, click or paste `value`, and what that writes where.
    pub instructions: String,
    /// Other ways to the same result, e.g. Codex's `~/.codex/config.toml` table or VS Code's
    /// `vscode:mcp/install` link. Often empty.
    pub alternatives: Vec<Alternative>,
}

/// Another way to install the same server, with its own instructions.
#[derive(Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Alternative {
    /// What to do with `value`.
    pub kind: Kind,
    /// The command, link, config snippet or connector URL.
    pub value: String,
    /// One line: where to run, click or paste `value`.
    pub instructions: String,
}

struct Redacted<'a>(&'a str);

impl fmt::Debug for Redacted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0.len())
    }
}

impl fmt::Debug for Install {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Install")
            .field("client", &self.client)
            .field("kind", &self.kind)
            .field("value", &Redacted(&self.value))
            .field("instructions", &self.instructions)
            .field("alternatives", &self.alternatives)
            .finish()
    }
}

impl fmt::Debug for Alternative {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alternative")
            .field("kind", &self.kind)
            .field("value", &Redacted(&self.value))
            .field("instructions", &self.instructions)
            .finish()
    }
}

/// A server name that the clients' own CLIs may refuse (see [`validate_name`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidName {
    /// What was given, as given.
    pub given: String,
}

impl fmt::Display for InvalidName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid server name {:?}: use 1 to 64 ASCII letters, digits, '-' or '_', not starting with '-'",
            self.given
        )
    }
}

impl std::error::Error for InvalidName {}

/// Checks a server name against what every supported client accepts: 1 to 64 ASCII letters,
/// digits, `-` and `_`, not starting with `-` (the CLIs would read that as an option; Codex
/// rejects anything else outright).
///
/// [`render`] itself accepts any string and quotes or escapes it correctly; call this where
/// the name comes in (`--name`, an HTTP body) to refuse names the clients would refuse.
pub fn validate_name(name: &str) -> Result<(), InvalidName> {
    let ok = (1..=64).contains(&name.len())
        && !name.starts_with('-')
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok { Ok(()) } else { Err(InvalidName { given: name.to_owned() }) }
}

/// Renders what connects `client` to the MCP server at `url` (the full endpoint, see
/// [`mcp_url`]) under the server name `name`, authenticating with `key`.
///
/// | client | kind | value |
/// |---|---|---|
/// | `claude-code` | command | `claude mcp add --transport http NAME URL --header "x-api-key: KEY"` |
/// | `codex` | command | `export RAPPORT_API_KEY=KEY && codex mcp add NAME --url URL --bearer-token-env-var RAPPORT_API_KEY`; alternative: the `~/.codex/config.toml` table |
/// | `vscode` | command | `code --add-mcp '{"name":NAME,"type":"http","url":URL,"headers":{"x-api-key":KEY}}'`; alternative: the `vscode:mcp/install?…` link |
/// | `cursor` | deeplink | `cursor://anysphere.cursor-deeplink/mcp/install?name=NAME&config=…`; alternative: the `~/.cursor/mcp.json` entry |
/// | `gemini` | command | `gemini mcp add --transport http --scope user --header "x-api-key: KEY" NAME URL` |
/// | `windsurf` | config | `{"mcpServers":{NAME:{"serverUrl":URL,"headers":{"x-api-key":KEY}}}}`, pretty-printed |
/// | `claude-desktop`, `chatgpt` | connector_url | `URL?api_key=KEY` (`&api_key=` if URL has a query) |
///
/// In commands each of NAME, URL and KEY is shell-quoted where needed. The header argument
/// is written in double quotes, as above, when the key needs no quoting (every Rapport key),
/// and single-quoted otherwise. Codex's two steps are joined with ` && ` into one line, so the
/// value is a single paste and `codex mcp add` runs only if the export did.
pub fn render(client: Client, url: &str, name: &str, key: &str) -> Install {
    let (kind, value, instructions, alternatives) = match client {
        Client::ClaudeCode => (
            Kind::Command,
            format!(
                "claude mcp add --transport http {} {} --header {}",
                shell_quote(name),
                shell_quote(url),
                header_arg(key),
            ),
            "Run in a terminal in your project directory; Claude Code saves the server in \
             ~/.claude.json for that project (add --scope user to use it in every project)."
                .to_owned(),
            Vec::new(),
        ),
        Client::Codex => (
            Kind::Command,
            format!(
                "export {API_KEY_ENV}={} && codex mcp add {} --url {} --bearer-token-env-var {API_KEY_ENV}",
                shell_quote(key),
                shell_quote(name),
                shell_quote(url),
            ),
            format!(
                "Run in a terminal; Codex saves the server in ~/.codex/config.toml and reads the \
                 key from {API_KEY_ENV} when it starts, so also put the export in your shell \
                 profile (~/.bashrc, ~/.zshrc)."
            ),
            vec![Alternative {
                kind: Kind::Config,
                value: format!(
                    "[mcp_servers.{}]\nurl = {}\nbearer_token_env_var = {}",
                    toml_key(name),
                    toml_string(url),
                    toml_string(API_KEY_ENV),
                ),
                instructions: format!(
                    "Add this table to ~/.codex/config.toml and set {API_KEY_ENV} to the key in \
                     the environment Codex starts from."
                ),
            }],
        ),
        Client::Vscode => {
            let config = json(&VscodeServer { name, kind: "http", url, headers: Headers { api_key: key } });
            (
                Kind::Command,
                format!("code --add-mcp {}", shell_quote(&config)),
                "Run in a terminal (needs VS Code's `code` command on your PATH); VS Code adds \
                 the server to your user mcp.json."
                    .to_owned(),
                vec![Alternative {
                    kind: Kind::Deeplink,
                    value: format!("vscode:mcp/install?{}", percent_encode(&config)),
                    instructions: "Open this link (click it, or paste it into a browser's \
                                   address bar); VS Code asks to install the server into your \
                                   user mcp.json."
                        .to_owned(),
                }],
            )
        }
        Client::Cursor => {
            let config = json(&UrlServer { url, headers: Headers { api_key: key } });
            let config = base64::engine::general_purpose::STANDARD.encode(config);
            (
                Kind::Deeplink,
                format!(
                    "cursor://anysphere.cursor-deeplink/mcp/install?name={}&config={}",
                    percent_encode(name),
                    percent_encode(&config),
                ),
                "Open this link (click it, or paste it into a browser's address bar); Cursor \
                 asks to install the server into ~/.cursor/mcp.json."
                    .to_owned(),
                vec![Alternative {
                    kind: Kind::Config,
                    value: json_pretty(&McpServers::one(name, UrlServer { url, headers: Headers { api_key: key } })),
                    instructions: "Merge into ~/.cursor/mcp.json (or .cursor/mcp.json in a \
                                   project), keeping any servers already under mcpServers."
                        .to_owned(),
                }],
            )
        }
        Client::Gemini => (
            Kind::Command,
            format!(
                "gemini mcp add --transport http --scope user --header {} {} {}",
                header_arg(key),
                shell_quote(name),
                shell_quote(url),
            ),
            "Run in a terminal; Gemini CLI saves the server in ~/.gemini/settings.json \
             (user scope, every project)."
                .to_owned(),
            Vec::new(),
        ),
        Client::Windsurf => (
            Kind::Config,
            json_pretty(&McpServers::one(name, WindsurfServer { server_url: url, headers: Headers { api_key: key } })),
            "Merge into ~/.codeium/windsurf/mcp_config.json (Windsurf: Settings, Cascade, MCP \
             servers, View raw config), keeping any servers already under mcpServers, then \
             refresh the server list."
                .to_owned(),
            Vec::new(),
        ),
        Client::ClaudeDesktop => (
            Kind::ConnectorUrl,
            connector_url(url, key),
            "In Claude Desktop open Settings → Connectors → Add custom connector, name it, and \
             paste this URL as the remote MCP server URL."
                .to_owned(),
            Vec::new(),
        ),
        Client::Chatgpt => (
            Kind::ConnectorUrl,
            connector_url(url, key),
            "In ChatGPT turn on developer mode (Settings → Connectors → Advanced), then \
             Settings → Connectors → Create: paste this URL as the MCP server URL, with no \
             authentication."
                .to_owned(),
            Vec::new(),
        ),
    };
    Install { client, kind, value, instructions, alternatives }
}

/// [`render`] for every client in [`Client::ALL`] order.
pub fn render_all(url: &str, name: &str, key: &str) -> Vec<Install> {
    Client::ALL.iter().map(|&client| render(client, url, name, key)).collect()
}

/// The `--header` argument: `"x-api-key: KEY"` in double quotes as SPEC §6 writes it when
/// the key needs no quoting (nothing in it is special inside double quotes either), else the
/// whole argument single-quoted.
fn header_arg(key: &str) -> String {
    let header = format!("{API_KEY_HEADER}: {key}");
    if quote::is_bare(key) { format!("\"{header}\"") } else { shell_quote(&header) }
}

/// `url` with `api_key=KEY` added to its query (before any `#fragment`).
fn connector_url(url: &str, key: &str) -> String {
    let (base, fragment) = url.split_at(url.find('#').unwrap_or(url.len()));
    let separator = match base.find('?') {
        None => "?",
        Some(_) if base.ends_with('?') || base.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{base}{separator}{API_KEY_QUERY}={}{fragment}", percent_encode(key))
}

#[derive(Serialize)]
struct Headers<'a> {
    #[serde(rename = "x-api-key")]
    api_key: &'a str,
}

/// VS Code's server entry, with its name (the `--add-mcp` and install-link form).
#[derive(Serialize)]
struct VscodeServer<'a> {
    name: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    url: &'a str,
    headers: Headers<'a>,
}

/// Cursor's remote server entry.
#[derive(Serialize)]
struct UrlServer<'a> {
    url: &'a str,
    headers: Headers<'a>,
}

/// Windsurf's remote server entry.
#[derive(Serialize)]
struct WindsurfServer<'a> {
    #[serde(rename = "serverUrl")]
    server_url: &'a str,
    headers: Headers<'a>,
}

/// `{"mcpServers": {NAME: server}}`.
#[derive(Serialize)]
struct McpServers<'a, T> {
    #[serde(rename = "mcpServers")]
    servers: BTreeMap<&'a str, T>,
}

impl<'a, T> McpServers<'a, T> {
    fn one(name: &'a str, server: T) -> Self {
        McpServers { servers: BTreeMap::from([(name, server)]) }
    }
}

// Serializing these structs of strings into a String cannot fail (no non-string map keys, no
// I/O), so the `expect`s below never fire.

fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("JSON of strings serializes")
}

fn json_pretty<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("JSON of strings serializes")
}
