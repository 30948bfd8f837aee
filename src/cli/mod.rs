//! The command line: each command works on the database directly; `--json` prints one
//! JSON value on stdout and nothing else; errors go to stderr with a non-zero status.

mod data;

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::Server;
use crate::auth::key::PlainKey;
use rapport_tools::approvals::{ApprovalKind, ApprovalPolicy};

use crate::config::{
    ApprovalsCommand, ChangesCommand, ChangesListArgs, Cli, Command, KeysCommand, KeysCreateArgs, KeysListArgs,
    OrgsCommand, RevertArgs, UsersCommand,
};
use crate::crm::Principal;
use crate::keys::{self, NewKeyRequest};
use crate::store::{Org, Store};

pub async fn run(cli: Cli) -> ExitCode {
    match dispatch(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Serve { args, limit } => serve(&cli, args, limit.max_active_keys).await,
        Command::Migrate => {
            open(&cli).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Keys(KeysCommand::Create(args)) => keys_create(&cli, args).await,
        Command::Keys(KeysCommand::List(args)) => keys_list(&cli, args).await,
        Command::Keys(cmd) => keys_lifecycle(&cli, cmd).await,
        Command::Users(cmd) => users(&cli, cmd).await,
        Command::Connect(args) => connect(&cli, args).await,
        Command::SetupLink(args) => {
            let store = open(&cli).await?;
            let org = org(store.as_ref(), &args.org.org).await?;
            let link = keys::access::setup_link(
                store.as_ref(),
                &Principal::cli(org),
                args.email.as_deref(),
                args.base.url().map_err(anyhow::Error::msg)?.as_str(),
            )
            .await?;
            if args.json.json {
                println!(
                    "{}",
                    serde_json::json!({ "url": link.url, "email": link.user.email, "expires_at": crate::time::rfc3339(link.expires_at) })
                );
            } else {
                println!(
                    "Open this link to set the console password of {} (works once, for 24 hours):",
                    link.user.email
                );
                println!("{}", link.url);
            }
            Ok(())
        }
        Command::Import(args) => data::import(&cli, args).await,
        Command::Export(args) => data::export(&cli, args).await,
        Command::Backup(args) => data::backup(&cli, args).await,
        Command::Restore(args) => data::restore(&cli, args).await,
        Command::Privacy(cmd) => data::privacy(&cli, cmd).await,
        Command::Changes(ChangesCommand::List(args)) => changes_list(&cli, args).await,
        Command::Approvals(cmd) => approvals(&cli, cmd).await,
        Command::Changes(ChangesCommand::Revert(args)) => changes_revert(&cli, args).await,
        Command::Audit { org: o, limit, json } => {
            let store = open(&cli).await?;
            let org = org(store.as_ref(), &o.org).await?;
            let page =
                keys::audit::list(store.as_ref(), &Principal::cli(org), &Default::default(), *limit, None).await?;
            if json.json {
                println!("{}", serde_json::to_string(&page.items)?);
            } else {
                println!("{:<24}  {:<16} {:<6} {:<38} {:<15} DETAILS", "AT", "ACTION", "ACTOR", "TARGET", "ADDRESS");
                for e in &page.items {
                    println!(
                        "{:<24}  {:<16} {:<6} {:<38} {:<15} {}",
                        e.at,
                        e.action,
                        e.actor,
                        e.target_id.as_deref().unwrap_or("-"),
                        e.ip.as_deref().unwrap_or("-"),
                        e.details
                    );
                }
            }
            Ok(())
        }
        Command::Orgs(OrgsCommand::Create { name, json }) => {
            let store = open(&cli).await?;
            let (org, owner) = keys::create_org(store.as_ref(), name, crate::store::Actor::Cli).await?;
            if json.json {
                println!(
                    "{}",
                    serde_json::json!({ "id": org.id, "name": org.name, "owner": owner.email, "created_at": crate::time::rfc3339(org.created_at) })
                );
            } else {
                println!("Created organization {} with owner {}.", org.name, owner.email);
            }
            Ok(())
        }
        Command::Orgs(OrgsCommand::List { json }) => {
            let store = open(&cli).await?;
            let orgs = store.list_orgs().await?;
            if json.json {
                let list: Vec<_> = orgs
                    .iter()
                    .map(|o| serde_json::json!({ "id": o.id, "name": o.name, "created_at": crate::time::rfc3339(o.created_at) }))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                println!("{:<38} NAME", "ID");
                for o in orgs {
                    println!("{:<38} {}", o.id, o.name);
                }
            }
            Ok(())
        }
    }
}

/// Opens and migrates the database; an empty one gets its default organization.
async fn open(cli: &Cli) -> anyhow::Result<Arc<Store>> {
    let store = Arc::new(
        Store::connect(&cli.database_url, crate::webhooks::announcer()).await.context("cannot open the database")?,
    );
    keys::bootstrap(store.as_ref()).await?;
    Ok(store)
}

async fn org(store: &Store, name: &str) -> anyhow::Result<Org> {
    store.org_by_name(name).await?.with_context(|| format!("no organization `{name}`; `rapport orgs list` shows them"))
}

async fn serve(cli: &Cli, args: &crate::config::ServeArgs, max_active_keys: u32) -> anyhow::Result<()> {
    let server = Server::build(args, &cli.database_url, max_active_keys).await?;
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }
    // A closed stdout (a supervisor that stopped reading) must not take the server down.
    let mut out = std::io::stdout();
    let _ = writeln!(out, "rapport listening on http://{}", server.addr());
    let _ = writeln!(out, "MCP endpoint: {}/api/v1/mcp", server.state().settings.public_url);
    let _ = writeln!(out, "Web console: {}/", server.state().settings.public_url);
    if let Some(link) = server.setup_link() {
        let _ = writeln!(out, "Set up the console (this link works once, for 24 hours): {link}");
    }
    let _ = out.flush();
    server.run(shutdown).await
}

/// A new password: asked twice on a terminal without echo, else one line of stdin.
fn read_password(email: &str) -> anyhow::Result<crate::auth::session::Password> {
    use std::io::IsTerminal;
    let parse = |s: &str| crate::auth::session::Password::parse(s).map_err(|e| anyhow::anyhow!(e));
    if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("New password for {email}: "))?;
        let again = rpassword::prompt_password("Type it again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ; nothing was changed");
        parse(&first)
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).context("could not read the password from stdin")?;
        parse(line.trim_end_matches(['\r', '\n']))
    }
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

async fn keys_create(cli: &Cli, args: &KeysCreateArgs) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let org = org(store.as_ref(), &args.org.org).await?;
    let req = NewKeyRequest {
        name: args.name.clone(),
        role: args.role.clone(),
        scopes: args.scopes.clone(),
        expires_in_days: args.expires_in_days,
        allowed_cidrs: args.allow_cidr.clone(),
        user_email: args.user.clone(),
        approval: policy(&args.require_approval, args.bulk_limit)?,
    };
    let created = keys::create(store.as_ref(), &Principal::cli(org.clone()), req, args.limit.max_active_keys).await?;
    if args.json.json {
        println!("{}", serde_json::to_string(&created)?);
    } else {
        println!("Created key {} ({}) in organization {}.", created.name, created.id, org.name);
        println!();
        println!("    {}", created.key);
        println!();
        println!("Copy it now: it is shown this once and cannot be recovered.");
        println!("Scopes: {}", created.scopes.join(", "));
        if let Some(at) = &created.expires_at {
            println!("Expires: {at}");
        }
        if let Some(p) = &created.approval {
            println!("Waits for a person's approval: {}", p.words());
        }
    }
    Ok(())
}

async fn keys_list(cli: &Cli, args: &KeysListArgs) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let org = org(store.as_ref(), &args.org.org).await?;
    let list = keys::list(store.as_ref(), &Principal::cli(org.clone()), args.all).await?;
    if args.json.json {
        println!("{}", serde_json::to_string(&list)?);
        return Ok(());
    }
    if list.is_empty() {
        println!("No keys in organization {}. Create one with `rapport keys create --name NAME`.", org.name);
        return Ok(());
    }
    println!("{:<38} {:<24} {:<16} {:<9} {:<25} {:<25}", "ID", "NAME", "KEY", "STATUS", "LAST USED", "CREATED");
    for k in list {
        println!(
            "{:<38} {:<24} {:<16} {:<9} {:<25} {:<25}",
            k.id,
            truncate(&k.name, 24),
            format!("{}…", k.preview),
            k.status,
            k.last_used_at.unwrap_or_else(|| "never".into()),
            k.created_at
        );
    }
    Ok(())
}

async fn keys_lifecycle(cli: &Cli, cmd: &KeysCommand) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let s = store.as_ref();
    match cmd {
        KeysCommand::Create(_) | KeysCommand::List(_) => unreachable!("handled by dispatch"),
        KeysCommand::Show { org: o, id, json } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let key = keys::KeyView::from(&keys::show(s, &p, id).await?);
            if json.json {
                println!("{}", serde_json::to_string(&key)?);
            } else {
                print_key(&key);
            }
        }
        KeysCommand::Rename { org: o, id, name } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let key = keys::rename(s, &p, id, name).await?;
            println!("Renamed key {} to {}.", key.id, key.name);
        }
        KeysCommand::Disable { org: o, id } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let key = keys::disable(s, &p, id).await?;
            println!("Disabled key {} ({}). It is refused until enabled again.", key.name, key.id);
        }
        KeysCommand::Enable { org: o, id, limit } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let key = keys::enable(s, &p, id, limit.max_active_keys).await?;
            println!("Enabled key {} ({}).", key.name, key.id);
        }
        KeysCommand::Rotate { org: o, id, grace_hours, json } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let key = keys::rotate(s, &p, id, *grace_hours).await?;
            if json.json {
                println!("{}", serde_json::to_string(&key)?);
            } else {
                println!("Rotated key {} ({}). The new secret:", key.name, key.id);
                println!();
                println!("    {}", key.key);
                println!();
                println!("Copy it now: it is shown this once.");
                match grace_hours.filter(|h| *h > 0) {
                    Some(h) => println!("The old secret keeps working for {h} hours (never past the key's expiry)."),
                    None => println!("The old secret is refused from now on."),
                }
            }
        }
        KeysCommand::Revoke { org: o, id } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let key = keys::revoke(s, &p, id).await?;
            println!(
                "Revoked key {} ({}). It is refused for good; `keys list --all` still shows it.",
                key.name, key.id
            );
        }
        KeysCommand::SetApproval { org: o, id, kinds, bulk_limit } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let list: Vec<String> = if kinds.trim() == "none" {
                Vec::new()
            } else {
                kinds.split(',').map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()).collect()
            };
            anyhow::ensure!(
                !list.is_empty() || kinds.trim() == "none",
                "give the kinds, comma-separated (delete, bulk, schema, webhooks), or `none`"
            );
            let key = keys::set_approval(s, &p, id, policy(&list, *bulk_limit)?).await?;
            match &key.approval {
                Some(a) => {
                    println!("Key {} ({}) now waits for a person's approval on: {}.", key.name, key.id, a.words())
                }
                None => println!("Key {} ({}) no longer waits for approval.", key.name, key.id),
            }
        }
        KeysCommand::Delete { org: o, id, yes } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let key = keys::delete(s, &p, id, *yes, None).await?;
            println!("Deleted key {} ({}).", key.name, key.id);
        }
    }
    Ok(())
}

async fn connect(cli: &Cli, args: &crate::config::ConnectArgs) -> anyhow::Result<()> {
    use keys::connect::{ConnectRequest, KeySource};
    let store = open(cli).await?;
    let org = org(store.as_ref(), &args.org.org).await?;
    let supplied = args.key.as_deref().map(|k| PlainKey::parse(k.trim())).transpose().context("--key")?;
    let public_url = args.base.url().map_err(anyhow::Error::msg)?;
    let req = ConnectRequest {
        client: &args.client,
        name: args.name.as_deref(),
        public_url: public_url.as_str(),
        query_keys: args.query_keys,
        key: supplied.as_ref().map_or(KeySource::Create, KeySource::Supplied),
        user_email: None,
        profile: rapport_tools::Profile::parse(&args.profile).context("--profile is lean or full")?,
    };
    let list = keys::connect::connect(store.as_ref(), &Principal::cli(org), req, args.limit.max_active_keys).await?;
    if args.json {
        match list.as_slice() {
            [one] => println!("{}", serde_json::to_string(one)?),
            many => println!("{}", serde_json::to_string(many)?),
        }
        return Ok(());
    }
    for c in &list {
        if list.len() > 1 {
            println!("== {} ==", c.client.title());
        }
        for w in &c.warnings {
            eprintln!("warning: {w}");
        }
        println!("{}", c.value);
        println!();
        println!("{}", c.instructions);
        for alt in &c.alternatives {
            println!();
            println!("Or: {}", alt.instructions);
            println!("{}", alt.value);
        }
        println!();
    }
    if !args.query_keys && args.client.trim().eq_ignore_ascii_case("all") {
        eprintln!(
            "note: Claude Desktop and ChatGPT are left out: they take only a URL, and this server refuses keys in URLs (RAPPORT_QUERY_KEYS=false)"
        );
    }
    if let Some(first) = list.first()
        && first.key_created
    {
        println!(
            "Created the key {}… (id {}) with role {} for this: it appears in this output only.",
            first.key_preview,
            first.key_id,
            keys::connect::NEW_KEY_ROLE
        );
    }
    Ok(())
}

fn print_key(k: &keys::KeyView) {
    println!("id:            {}", k.id);
    println!("name:          {}", k.name);
    println!("key:           {}…", k.preview);
    println!("status:        {}", k.status);
    println!("role:          {}", k.role.map_or("-".to_owned(), |r| r.to_string()));
    println!("scopes:        {}", k.scopes.join(", "));
    println!("created:       {}", k.created_at);
    println!("expires:       {}", k.expires_at.as_deref().unwrap_or("never"));
    println!(
        "allowed from:  {}",
        if k.allowed_cidrs.is_empty() { "anywhere".to_owned() } else { k.allowed_cidrs.join(", ") }
    );
    println!(
        "last used:     {} {}",
        k.last_used_at.as_deref().unwrap_or("never"),
        k.last_used_ip.as_deref().unwrap_or("")
    );
    if let Some(r) = &k.revoked_at {
        println!("revoked:       {r}");
    }
    if let Some(r) = &k.rotated_from {
        println!("rotated from:  {r}…");
    }
}

async fn users(cli: &Cli, cmd: &UsersCommand) -> anyhow::Result<()> {
    use keys::users;
    let store = open(cli).await?;
    let s = store.as_ref();
    let done = |u: users::UserView, what: &str| {
        println!("{what} {} ({}, {}).", u.email, u.role, if u.active { "active" } else { "deactivated" })
    };
    match cmd {
        UsersCommand::Create { org: o, email, name, role } => {
            let p = Principal::cli(org(s, &o.org).await?);
            done(users::create(s, &p, email, name.as_deref(), role).await?, "Created");
        }
        UsersCommand::SetRole { org: o, email, role } => {
            let p = Principal::cli(org(s, &o.org).await?);
            done(users::set_role(s, &p, email, role).await?, "Updated");
        }
        UsersCommand::Deactivate { org: o, email } => {
            let p = Principal::cli(org(s, &o.org).await?);
            done(users::set_active(s, &p, email, false).await?, "Deactivated");
        }
        UsersCommand::Activate { org: o, email } => {
            let p = Principal::cli(org(s, &o.org).await?);
            done(users::set_active(s, &p, email, true).await?, "Activated");
        }
        UsersCommand::SetPassword { org: o, email } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let password = read_password(email)?;
            let u = keys::access::set_password(s, &p, email, password).await?;
            println!("Set the console password of {}; their console sessions ended.", u.email);
        }
        UsersCommand::List { org: o, json } => {
            let p = Principal::cli(org(s, &o.org).await?);
            let list = users::list(s, &p).await?;
            if json.json {
                println!("{}", serde_json::to_string(&list)?);
            } else {
                println!("{:<38} {:<32} {:<7} STATUS", "ID", "EMAIL", "ROLE");
                for u in list {
                    println!(
                        "{:<38} {:<32} {:<7} {}",
                        u.id,
                        u.email,
                        u.role.as_str(),
                        if u.active { "active" } else { "deactivated" }
                    );
                }
            }
        }
    }
    Ok(())
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}

/// A policy from `delete,bulk` and a bulk limit; none when no kind is given.
fn policy(kinds: &[String], bulk_limit: Option<u32>) -> anyhow::Result<Option<ApprovalPolicy>> {
    let kinds =
        kinds.iter().map(|k| ApprovalKind::parse(k)).collect::<Result<Vec<_>, _>>().map_err(anyhow::Error::msg)?;
    ApprovalPolicy::new(kinds, bulk_limit).map_err(anyhow::Error::msg)
}

/// An `App` as `serve` would make it from this environment, to run what a person approves.
fn offline_app(store: Arc<Store>) -> anyhow::Result<crate::state::AppState> {
    use clap::Parser;
    let env = crate::config::ServerEnv::try_parse_from(["rapport"])?;
    let addr = env.serve.addr.parse().unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 8080)));
    let settings = crate::state::Settings::new(&env.serve, addr, env.limit.max_active_keys)?;
    Ok(crate::state::App::offline(store, settings))
}

async fn approvals(cli: &Cli, cmd: &ApprovalsCommand) -> anyhow::Result<()> {
    use crate::service::approvals as a;
    let store = open(cli).await?;
    let state = offline_app(store.clone())?;
    match cmd {
        ApprovalsCommand::List { org: o, state: st, limit, json } => {
            let p = Principal::cli(org(&store, &o.org).await?);
            let filter = crate::store::ApprovalFilter { state: st.clone(), key_id: None };
            anyhow::ensure!((1..=500).contains(limit), "--limit is 1 to 500");
            let list: Vec<_> = a::list(&state, &p, filter, None, *limit).await?.iter().map(a::view).collect();
            if json.json {
                println!("{}", serde_json::to_string(&list)?);
                return Ok(());
            }
            println!("{:<36}  {:<8} {:<24} {:<36} SUMMARY", "ID", "STATUS", "ASKED", "KEY");
            for v in &list {
                println!("{:<36}  {:<8} {:<24} {:<36} {}", v.id, v.status, v.created_at, v.key_id, v.summary);
            }
        }
        ApprovalsCommand::Show { org: o, id, json } => {
            let p = Principal::cli(org(&store, &o.org).await?);
            let v = a::show(&state, &p, id).await?;
            if json.json {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                print_approval(&v);
            }
        }
        ApprovalsCommand::Approve { org: o, id, as_person, json } => {
            let p = as_person_at_terminal(&store, &o.org, as_person).await?;
            let v = a::approve(&state, &p, id).await?;
            if json.json {
                println!("{}", serde_json::to_string(&v)?);
            } else if v.status == "approved" {
                println!("Approved {}: the call ran as its key.", v.id);
            } else {
                println!("Approved {}, but it did not run: {}.", v.id, v.reason.as_deref().unwrap_or("it went stale"));
            }
        }
        ApprovalsCommand::Deny { org: o, id, as_person, reason, json } => {
            let p = as_person_at_terminal(&store, &o.org, as_person).await?;
            let v = a::deny(&state, &p, id, reason).await?;
            if json.json {
                println!("{}", serde_json::to_string(&v)?);
            } else {
                println!("Denied {}; the agent reads why.", v.id);
            }
        }
    }
    Ok(())
}

/// The person `email`, once their console password is typed at this terminal: a decision
/// is a person's, never a script's.
async fn as_person_at_terminal(store: &Store, org_name: &str, email: &str) -> anyhow::Result<Principal> {
    use std::io::IsTerminal;
    anyhow::ensure!(
        std::io::stdin().is_terminal(),
        "approvals are decided by a person: run this at a terminal, where {email}'s password is asked"
    );
    org(store, org_name).await?;
    let password = rpassword::prompt_password(format!("Console password of {email}: "))?;
    // Counted with the console's logins, from the address `cli`.
    let (user, o) = crate::auth::session::login(store, email, &password, Some(org_name), "cli").await?;
    let mut p = Principal::person(o, user, None);
    p.via = crate::store::Via::call(p.via.client.clone(), "cli");
    Ok(p)
}

fn print_approval(v: &rapport_tools::approvals::ApprovalView) {
    println!("Approval {} ({})", v.id, v.status);
    println!("  {}", v.summary);
    println!("  asked by key {} at {}; waits until {}", v.key_id, v.created_at, v.expires_at);
    if let Some(by) = &v.decided_by {
        println!("  decided by {by} at {}", v.decided_at.as_deref().unwrap_or("-"));
    }
    if let Some(r) = &v.reason {
        println!("  reason: {r}");
    }
    for e in &v.changes {
        println!("  {} {} {}  {}", e.action, e.entity, e.record_id, fields_in_words(&e.changes));
    }
}

async fn changes_list(cli: &Cli, args: &ChangesListArgs) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let p = Principal::cli(org(store.as_ref(), &args.org.org).await?);
    let q = crate::crm::timeline::LogQuery {
        key_id: args.key.clone(),
        user: args.user.clone(),
        request_id: args.request_id.clone(),
        tool: args.tool.clone(),
        client: args.client.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        limit: Some(args.limit),
        ..Default::default()
    };
    let page = crate::crm::timeline::log(store.as_ref(), &p, q).await?;
    if args.json.json {
        println!("{}", serde_json::to_string(&page.items)?);
        return Ok(());
    }
    println!("{:<24}  {:<36}  {:<14} {:<40} {:<24} {:<36} CHANGES", "AT", "ID", "BY", "WHAT", "TOOL", "REQUEST");
    for e in &page.items {
        let by = e.actor.name.clone().unwrap_or_else(|| e.actor.kind.clone());
        println!(
            "{:<24}  {:<36}  {:<14} {:<40} {:<24} {:<36} {}",
            e.at,
            e.id,
            truncate(&by, 14),
            truncate(&format!("{} {} {}", e.action, e.entity, e.record_id), 40),
            e.via.tool.as_deref().unwrap_or("-"),
            e.via.request_id.as_deref().unwrap_or("-"),
            fields_in_words(&e.changes)
        );
    }
    Ok(())
}

/// Each changed field as `name: before → after`.
fn fields_in_words(changes: &serde_json::Map<String, serde_json::Value>) -> String {
    let short = |v: Option<&serde_json::Value>| match v {
        None | Some(serde_json::Value::Null) => "∅".to_owned(),
        Some(serde_json::Value::String(s)) => truncate(s, 40),
        Some(other) => truncate(&other.to_string(), 40),
    };
    let parts: Vec<String> =
        changes.iter().map(|(k, v)| format!("{k}: {} → {}", short(v.get("before")), short(v.get("after")))).collect();
    parts.join("; ")
}

async fn changes_revert(cli: &Cli, args: &RevertArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let store = open(cli).await?;
    let mut p = Principal::cli(org(store.as_ref(), &args.org.org).await?);
    p.via.tool = Some("revert_changes".into());
    let input = rapport_tools::inputs::RevertChangesInput {
        change_ids: (!args.change.is_empty()).then(|| args.change.clone()),
        request_id: args.request_id.clone(),
        key_id: args.key.clone(),
        since: args.since.clone(),
        until: args.until.clone(),
        force: Some(args.force),
    };
    let (preview, _) = crate::crm::revert::preview(store.as_ref(), &p, input.clone()).await?;
    let refused = !preview.skipped.is_empty() && !args.force;
    if args.dry_run {
        if args.json.json {
            println!("{}", serde_json::json!({ "dry_run": true, "result": preview, "refused": refused }));
        } else {
            print_revert(&preview, refused);
        }
        return Ok(());
    }
    if !args.yes {
        if args.json.json {
            anyhow::bail!("--json prints one answer and cannot ask: pass --yes to undo, or --dry-run to preview");
        }
        if !std::io::stdin().is_terminal() {
            anyhow::bail!(
                "stdin is not a terminal: pass --yes to undo without asking (--dry-run shows what it would do)"
            );
        }
        print_revert(&preview, refused);
        if refused {
            anyhow::bail!("nothing was undone: the revert has conflicts; --force undoes the rest and skips them");
        }
        print!("Undo {} change(s)? [y/N] ", preview.reverted.len());
        std::io::stdout().flush()?;
        let mut answer = String::new();
        std::io::stdin().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            println!("Nothing was undone.");
            return Ok(());
        }
    }
    let done = crate::crm::revert::revert(store.as_ref(), &p, input).await?;
    if args.json.json {
        println!("{}", serde_json::to_string(&done)?);
        return Ok(());
    }
    println!("Undid {} change(s), with {} new change entries.", done.reverted.len(), done.changes.len());
    for c in &done.skipped {
        println!("Skipped {}: {}", c.change_id, c.reason);
    }
    for n in &done.notes {
        println!("Note: {n}");
    }
    if let Some(r) = &p.via.request_id {
        println!("To undo this undo: rapport changes revert --org {} --request-id {r}", args.org.org);
    }
    Ok(())
}

fn print_revert(preview: &rapport_tools::inputs::RevertResult, refused: bool) {
    println!("Would undo {} change(s) by writing:", preview.reverted.len());
    for e in &preview.changes {
        println!("  {} {} {}  {}", e.action, e.entity, e.record_id, fields_in_words(&e.changes));
    }
    if !preview.skipped.is_empty() {
        let what = if refused { "Conflicts (they refuse the revert; --force skips them):" } else { "Skipped:" };
        println!("{what}");
        for c in &preview.skipped {
            println!("  {}: {}", c.change_id, c.reason);
        }
    }
    for n in &preview.notes {
        println!("Note: {n}");
    }
}
