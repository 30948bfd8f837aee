//! Command line and environment (SPEC section 1): every flag is also an environment variable.

use crate::store::KeyId;
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(name = "rapport", version, about = "A self-hosted CRM for AI agents, over MCP")]
pub struct Cli {
    /// `sqlite://FILE` (created if missing) or `postgres://…`.
    #[arg(long, env = "RAPPORT_DATABASE_URL", default_value = "sqlite://rapport.db", global = true)]
    pub database_url: String,

    /// Tracing filter, e.g. `info` or `rapport=debug,info`.
    #[arg(long, env = "RAPPORT_LOG", default_value = "info", global = true)]
    pub log: String,

    /// How logs are written to stderr: `pretty` for people, `json` (one object per line)
    /// for a log collector.
    #[arg(long, env = "RAPPORT_LOG_FORMAT", value_enum, default_value_t = LogFormat::Pretty, global = true)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Readable lines, coloured on a terminal.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `RAPPORT_MAX_ACTIVE_KEYS`, for the commands that enable keys.
#[derive(Debug, Clone, Copy, Args)]
pub struct KeyLimit {
    /// Enabled keys allowed per organization.
    #[arg(long, env = "RAPPORT_MAX_ACTIVE_KEYS", default_value_t = 10)]
    pub max_active_keys: u32,
}

/// `--json`: one JSON value on stdout and nothing else.
#[derive(Debug, Clone, Copy, Args)]
pub struct JsonArg {
    /// Print one JSON value and nothing else on stdout.
    #[arg(long)]
    pub json: bool,
}

pub struct Telemetry {
    pub filter: String,
    pub format: LogFormat,
}

impl Cli {
    pub fn telemetry(&self) -> Telemetry {
        Telemetry { filter: self.log.clone(), format: self.log_format }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP server (MCP endpoint, REST API).
    Serve {
        #[command(flatten)]
        args: ServeArgs,
        #[command(flatten)]
        limit: KeyLimit,
    },
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage organizations.
    #[command(subcommand)]
    Orgs(OrgsCommand),
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Print what to paste or click to use Rapport from an MCP client.
    Connect(ConnectArgs),
    /// Print a fresh one-time link to the web console's setup page, where the owner (or
    /// --email) chooses a password: for a new install, or an owner locked out.
    SetupLink(SetupLinkArgs),
    /// Read and undo the change log (what keys and people changed in the records).
    #[command(subcommand)]
    Changes(ChangesCommand),
    /// Calls held for a person's approval: list them, approve or deny them as a person.
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Import records from a CSV or JSON-lines file; columns map to fields by their names
    /// (change with --map). Rerunning an interrupted import goes on where it stopped.
    Import(ImportArgs),
    /// Write records to CSV or JSON-lines files, one per entity.
    Export(ExportArgs),
    /// Write a consistent copy of the SQLite database to FILE while the server runs.
    Backup(BackupArgs),
    /// Put a backup made by `rapport backup` in place of the database (server stopped).
    Restore(RestoreArgs),
    /// Personal-data requests: everything held about a person, or its erasure.
    #[command(subcommand)]
    Privacy(PrivacyCommand),
    /// Show the audit log, newest first.
    Audit {
        #[command(flatten)]
        org: OrgArg,
        /// How many entries, newest first (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// List approvals, newest first.
    List {
        #[command(flatten)]
        org: OrgArg,
        /// Only those in this state.
        #[arg(long, value_parser = ["pending", "approved", "denied", "stale", "expired"])]
        state: Option<String>,
        /// How many, newest first (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Show one approval with the changes it would make.
    Show {
        #[command(flatten)]
        org: OrgArg,
        /// The approval's id (`rapport approvals list` shows them).
        id: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Approve a held call, as a person (their password is asked at the terminal); it
    /// then runs as its key.
    Approve {
        #[command(flatten)]
        org: OrgArg,
        /// The approval's id.
        id: String,
        /// The email of the person deciding; their role must cover the call.
        #[arg(long = "as", value_name = "EMAIL")]
        as_person: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Deny a held call, as a person, with the reason the agent will read.
    Deny {
        #[command(flatten)]
        org: OrgArg,
        /// The approval's id.
        id: String,
        /// The email of the person deciding; their role must cover the call.
        #[arg(long = "as", value_name = "EMAIL")]
        as_person: String,
        /// Why, for the agent to read.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        json: JsonArg,
    },
}

/// What `serve` would take from the environment, for commands that act as the server
/// does (running an approved call).
#[derive(Debug, clap::Parser)]
pub struct ServerEnv {
    #[command(flatten)]
    pub serve: ServeArgs,
    #[command(flatten)]
    pub limit: KeyLimit,
}

#[derive(Debug, Subcommand)]
pub enum ChangesCommand {
    /// List changes, newest first, with their ids and the request id of the call that made
    /// them.
    List(ChangesListArgs),
    /// Undo changes: given ids, one call's (--request-id), or everything one key did in a
    /// time window (--key with --since). Shows what it would do and asks first at a terminal.
    Revert(RevertArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ChangesListArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// Only what this key did (its id).
    #[arg(long)]
    pub key: Option<String>,
    /// Only what this person did, directly or through their keys (an email).
    #[arg(long)]
    pub user: Option<String>,
    /// Only the changes of one call.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Only what this tool did, e.g. update_contacts.
    #[arg(long)]
    pub tool: Option<String>,
    /// Only what came from this client, e.g. claude-code.
    #[arg(long)]
    pub client: Option<String>,
    /// Made at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<String>,
    /// Made before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<String>,
    /// How many entries, newest first (1 to 500).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct RevertArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// A change to undo, by id (repeatable; `rapport changes list` shows them).
    #[arg(long = "change")]
    pub change: Vec<String>,
    /// Undo every change of one call.
    #[arg(long)]
    pub request_id: Option<String>,
    /// Undo what this key did (its id), from --since to --until.
    #[arg(long, requires = "since")]
    pub key: Option<String>,
    /// With --key: the window's start (RFC 3339).
    #[arg(long, requires = "key")]
    pub since: Option<String>,
    /// With --key: the window's end (RFC 3339; default now).
    #[arg(long, requires = "key")]
    pub until: Option<String>,
    /// Undo what has no conflict and skip the rest (a later change is never overwritten).
    #[arg(long)]
    pub force: bool,
    /// Show what it would do and write nothing.
    #[arg(long, conflicts_with = "yes")]
    pub dry_run: bool,
    /// Undo without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Subcommand)]
pub enum OrgsCommand {
    /// Create an organization and its owner `owner@NAME`.
    Create {
        /// A slug: lowercase letters, digits, `-`.
        name: String,
        #[command(flatten)]
        json: JsonArg,
    },
    /// List organizations.
    List {
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, env = "RAPPORT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,

    /// Base URL used in install commands and links; default `http://{addr}`.
    #[arg(long, env = "RAPPORT_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Requests per key per minute; 0 turns it off.
    #[arg(long, env = "RAPPORT_RATE_LIMIT", default_value_t = 600)]
    pub rate_limit: u32,

    /// Extra browser origins allowed to call /api/v1/mcp (comma-separated).
    #[arg(long, env = "RAPPORT_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,

    /// CIDRs whose X-Forwarded-For is believed (comma-separated).
    #[arg(long, env = "RAPPORT_TRUSTED_PROXIES", value_delimiter = ',')]
    pub trusted_proxies: Vec<String>,

    /// Accept `?api_key=` (connectors need it).
    #[arg(long, env = "RAPPORT_QUERY_KEYS", default_value_t = true, action = clap::ArgAction::Set)]
    pub query_keys: bool,

    /// When set, `/metrics` also answers remote callers sending it as a bearer token.
    #[arg(long, env = "RAPPORT_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,

    /// Days a deleted record can be restored before it is purged.
    #[arg(long, env = "RAPPORT_TRASH_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub trash_days: u32,

    /// Let webhook endpoints use plain http and private, loopback or link-local addresses
    /// (a receiver on the same machine or network). Off, such targets are refused.
    #[arg(long, env = "RAPPORT_WEBHOOK_ALLOW_PRIVATE", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_private: bool,

    /// Send webhook deliveries from this process. Every process may (each delivery goes
    /// out once); turn it off to keep a process to HTTP alone.
    #[arg(long, env = "RAPPORT_WEBHOOK_SENDER", default_value_t = true, action = clap::ArgAction::Set)]
    pub webhook_sender: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is printed this once.
    Create(KeysCreateArgs),
    /// List keys (enabled and disabled; `--all` adds revoked ones).
    List(KeysListArgs),
    /// Show one key.
    Show {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list` shows them).
        id: KeyId,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Rename a key.
    Rename {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list` shows them).
        id: KeyId,
        /// The new name.
        name: String,
    },
    /// Refuse a key until it is enabled again.
    Disable {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list` shows them).
        id: KeyId,
    },
    /// Accept a disabled key again (counts against the enabled-key limit).
    Enable {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list` shows them).
        id: KeyId,
        #[command(flatten)]
        limit: KeyLimit,
    },
    /// Give a key a new secret; the old one is refused at once or after --grace-hours.
    Rotate {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list` shows them).
        id: KeyId,
        /// Keep accepting the old secret this many hours (never past the key's expiry).
        #[arg(long)]
        grace_hours: Option<u32>,
        #[command(flatten)]
        json: JsonArg,
    },
    /// Refuse a key for good; its record stays for the audit trail.
    Revoke {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list --all` shows them).
        id: KeyId,
    },
    /// Set the calls of a key that wait for a person's approval, or `none`.
    SetApproval {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list --all` shows them).
        id: KeyId,
        /// Comma-separated kinds (delete, bulk, schema, webhooks), or `none`.
        kinds: String,
        /// With bulk: a call touching more records than this waits (default 25).
        #[arg(long)]
        bulk_limit: Option<u32>,
    },
    /// Remove a key's record (a key used in the last 24 hours needs --yes).
    Delete {
        #[command(flatten)]
        org: OrgArg,
        /// The key's id (`rapport keys list --all` shows them).
        id: KeyId,
        /// Delete even though the key was used in the last 24 hours.
        #[arg(long)]
        yes: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Add a user to the organization.
    Create {
        #[command(flatten)]
        org: OrgArg,
        /// Their email address, which they log in with.
        #[arg(long)]
        email: String,
        /// Their name, as the console and the change log show it.
        #[arg(long)]
        name: Option<String>,
        /// What they and their keys may do at most.
        #[arg(long, value_parser = ["viewer", "member", "admin", "owner"])]
        role: String,
    },
    /// Change a user's role; their keys follow on their next request.
    SetRole {
        #[command(flatten)]
        org: OrgArg,
        /// The user's email.
        email: String,
        /// The new role.
        #[arg(value_parser = ["viewer", "member", "admin", "owner"])]
        role: String,
    },
    /// Stop a user and every key they own.
    Deactivate {
        #[command(flatten)]
        org: OrgArg,
        /// The user's email.
        email: String,
    },
    /// Let a deactivated user (and their keys) back in.
    Activate {
        #[command(flatten)]
        org: OrgArg,
        /// The user's email.
        email: String,
    },
    /// Set a user's console password (asked on the terminal, or one line on stdin); ends
    /// their console sessions.
    SetPassword {
        #[command(flatten)]
        org: OrgArg,
        /// The user's email.
        email: String,
    },
    /// List users.
    List {
        #[command(flatten)]
        org: OrgArg,
        #[command(flatten)]
        json: JsonArg,
    },
}

#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// claude-code, codex, vscode, cursor, gemini, windsurf, claude-desktop, chatgpt, or all.
    pub client: String,
    /// Use this key (default: create one, shown in this output only).
    #[arg(long)]
    pub key: Option<String>,
    /// The catalog the client lists: lean (a few generic tools, for clients that load every
    /// tool into the model) or full (one typed tool per entity and action, for clients that
    /// load tools only when needed).
    #[arg(long, default_value = "lean", value_parser = ["lean", "full"])]
    pub profile: String,
    /// The server name the client shows.
    #[arg(long, default_value = "rapport")]
    pub name: Option<String>,
    #[command(flatten)]
    pub base: BaseUrl,
    /// Whether the server accepts `?api_key=` (as `serve` reads it): connector URLs need it.
    #[arg(long, env = "RAPPORT_QUERY_KEYS", default_value_t = true, action = clap::ArgAction::Set)]
    pub query_keys: bool,
    #[command(flatten)]
    pub limit: KeyLimit,
    /// Print one JSON value (an object, or a list for `all`) and nothing else on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SetupLinkArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// The user who will choose a password (default: the organization's first owner).
    #[arg(long)]
    pub email: Option<String>,
    #[command(flatten)]
    pub base: BaseUrl,
    #[command(flatten)]
    pub json: JsonArg,
}

/// `RAPPORT_PUBLIC_URL`: an absolute http(s) base URL without a query or fragment, where
/// people and agents reach the server. Parsed once, so that nothing builds links from a
/// value that would break them (`crm.example.com`, `https://crm.example.com/?x=1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl {
    /// Without a trailing slash.
    base: String,
    url: url::Url,
}

impl PublicUrl {
    pub fn parse(raw: &str) -> Result<PublicUrl, String> {
        let s = raw.trim();
        let example = "such as https://crm.example.com";
        let url = url::Url::parse(s)
            .map_err(|_| format!("RAPPORT_PUBLIC_URL `{s}` is not an absolute URL; give one {example}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
            return Err(format!("RAPPORT_PUBLIC_URL `{s}` must be an http or https URL with a host, {example}"));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "RAPPORT_PUBLIC_URL `{s}` may not have a query or fragment: links and the MCP URL are built on it"
            ));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("RAPPORT_PUBLIC_URL `{s}` may not hold credentials"));
        }
        let base = url.as_str().trim_end_matches('/').to_owned();
        Ok(PublicUrl { base, url })
    }

    pub fn as_str(&self) -> &str {
        &self.base
    }

    /// `scheme://host[:port]`.
    pub fn origin(&self) -> String {
        self.url.origin().ascii_serialization()
    }

    pub fn host(&self) -> Option<url::Host<&str>> {
        self.url.host()
    }

    pub fn port(&self) -> Option<u16> {
        self.url.port()
    }

    pub fn is_https(&self) -> bool {
        self.url.scheme() == "https"
    }
}

/// Where links point: `RAPPORT_PUBLIC_URL`, else the listen address.
#[derive(Debug, Clone, Args)]
pub struct BaseUrl {
    /// Base URL people reach the server at; default `http://{addr}`.
    #[arg(long, env = "RAPPORT_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The listen address, for the default public URL.
    #[arg(long, env = "RAPPORT_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
}

impl BaseUrl {
    /// The public URL, checked as `serve` checks it.
    pub fn url(&self) -> Result<PublicUrl, String> {
        PublicUrl::parse(&self.public_url.clone().unwrap_or_else(|| format!("http://{}", self.addr)))
    }
}

#[derive(Debug, Clone, Args)]
pub struct OrgArg {
    /// Organization (slug).
    #[arg(long, default_value = "default")]
    pub org: String,
}

#[derive(Debug, Clone, Args)]
pub struct KeysCreateArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// A name that says where the key is used, e.g. `claude-code on laptop`.
    #[arg(long)]
    pub name: String,
    /// Role preset for the key's scopes: viewer, member, admin or owner (default: member, or
    /// the owning user's role where that is less).
    #[arg(long, value_parser = ["viewer", "member", "admin", "owner"])]
    pub role: Option<String>,
    /// Explicit scopes instead of a role, comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "role")]
    pub scopes: Vec<String>,
    /// Expire the key after this many days.
    #[arg(long)]
    pub expires_in_days: Option<u32>,
    /// Accept the key only from this network (repeatable).
    #[arg(long = "allow-cidr")]
    pub allow_cidr: Vec<String>,
    /// The user who owns the key (default: the organization's first owner).
    #[arg(long)]
    pub user: Option<String>,
    /// Calls that wait for a person's approval, comma-separated: delete, bulk, schema,
    /// webhooks.
    #[arg(long, value_delimiter = ',', value_parser = ["delete", "bulk", "schema", "webhooks"])]
    pub require_approval: Vec<String>,
    /// With bulk: a call touching more records than this waits (default 25).
    #[arg(long, requires = "require_approval")]
    pub bulk_limit: Option<u32>,
    #[command(flatten)]
    pub limit: KeyLimit,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct KeysListArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// Include revoked keys.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub json: JsonArg,
}

/// An entity's name as given, once it names one.
fn entity_name(s: &str) -> Result<String, String> {
    let known = rapport_tools::Entity::ALL.iter().any(|e| e.as_str() == s || e.plural() == s);
    if known {
        Ok(s.to_owned())
    } else {
        Err(format!("not an entity; the entities are {}", rapport_tools::Entity::listed_plural()))
    }
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// What the rows are: an entity, by plural or singular name (contacts, contact, …).
    #[arg(required_unless_present = "all", value_parser = entity_name)]
    pub entity: Option<String>,
    /// A CSV file (comma or semicolon, UTF-8) or JSON lines (one object a line).
    #[arg(required_unless_present = "all")]
    pub file: Option<std::path::PathBuf>,
    /// Bring back a whole organization from a folder written by `export --all`: records
    /// keep their ids and times; users are matched by email, else records go to the owner.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["entity", "file", "map", "match_on", "dry_run", "failed_rows"])]
    pub all: Option<std::path::PathBuf>,
    /// COLUMN=FIELD: fill FIELD (a field, custom.KEY, or company) from COLUMN; an empty
    /// FIELD leaves the column out. custom.KEY with a new KEY creates a text custom field.
    #[arg(long = "map", value_name = "COLUMN=FIELD")]
    pub map: Vec<String>,
    /// Match rows to existing records on this field: email (contacts, the default), domain
    /// (companies, the default), or none (always create).
    #[arg(long = "match", value_name = "email|domain|none")]
    pub match_on: Option<String>,
    /// What a matched row does.
    #[arg(long, value_parser = ["skip", "update"], default_value = "skip")]
    pub on_match: String,
    /// Check every row and report what would happen; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also write the rows that failed, with their line and reason, to this CSV file.
    #[arg(long, value_name = "FILE")]
    pub failed_rows: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub org: OrgArg,
    /// An entity to export, by plural or singular name (repeatable; default: all of them).
    #[arg(long = "entity", value_parser = entity_name)]
    pub entity: Vec<String>,
    /// The whole organization as JSON lines, for `import --all`: every record, custom
    /// fields, pipelines and users, with ids and times.
    #[arg(long, conflicts_with_all = ["entity", "format"])]
    pub all: bool,
    /// CSV (formulas neutralised) or JSON lines (values as the API gives them).
    #[arg(long, value_parser = ["csv", "jsonl"], default_value = "csv")]
    pub format: String,
    /// The folder to write ENTITY.csv or ENTITY.jsonl into (created if missing).
    #[arg(long, default_value = ".")]
    pub out: std::path::PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Where to write the copy; it must not exist yet.
    pub file: std::path::PathBuf,
    #[command(flatten)]
    pub json: JsonArg,
}

#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// A file written by `rapport backup`.
    pub file: std::path::PathBuf,
    /// Replace the database without asking (needed when stdin is not a terminal).
    #[arg(long)]
    pub yes: bool,
}

#[derive(Debug, Clone, Subcommand)]
pub enum PrivacyCommand {
    /// Print everything held about the person with this email, as JSON: their contacts,
    /// the notes and tasks about them, and their timelines.
    Export {
        #[command(flatten)]
        org: OrgArg,
        /// The person's email address.
        email: String,
    },
    /// Delete the person's contacts, and the notes and tasks about them, for good (trash
    /// included), and erase their values from the change log, webhook bodies and stored
    /// answers. Earlier backups still hold them.
    Erase {
        #[command(flatten)]
        org: OrgArg,
        /// The person's email address.
        email: String,
        /// Erase without asking (needed when stdin is not a terminal).
        #[arg(long)]
        yes: bool,
        #[command(flatten)]
        json: JsonArg,
    },
}
