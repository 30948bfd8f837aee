//! The command line: each command works on the database directly; `--json` prints one
//! JSON value on stdout and nothing else; errors go to stderr with a non-zero status.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::app::Server;
use crate::config::{Cli, Command, KeysCommand, KeysCreateArgs, KeysListArgs, OrgsCommand};
use crate::keys::{self, Creator, NewKeyRequest};
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
        Command::Serve(args) => serve(&cli, args).await,
        Command::Migrate => {
            open(&cli).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Keys(KeysCommand::Create(args)) => keys_create(&cli, args).await,
        Command::Keys(KeysCommand::List(args)) => keys_list(&cli, args).await,
        Command::Orgs(OrgsCommand::Create { name, json }) => {
            let store = open(&cli).await?;
            let (org, owner) = keys::create_org(store.as_ref(), name, crate::store::Actor::Cli).await?;
            if *json {
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
            if *json {
                let list: Vec<_> = orgs
                    .iter()
                    .map(|o| serde_json::json!({ "id": o.id, "name": o.name, "created_at": crate::time::rfc3339(o.created_at) }))
                    .collect();
                println!("{}", serde_json::Value::Array(list));
            } else {
                for o in orgs {
                    println!("{:<38} {}", o.id, o.name);
                }
            }
            Ok(())
        }
    }
}

/// Opens and migrates the database; an empty one gets its default organization.
async fn open(cli: &Cli) -> anyhow::Result<Arc<dyn Store>> {
    let store = crate::store::connect(&cli.database_url).await.context("cannot open the database")?;
    keys::bootstrap(store.as_ref()).await?;
    Ok(store)
}

async fn org(store: &dyn Store, name: &str) -> anyhow::Result<Org> {
    store.org_by_name(name).await?.with_context(|| format!("no organization `{name}`; `rapport orgs list` shows them"))
}

async fn serve(cli: &Cli, args: &crate::config::ServeArgs) -> anyhow::Result<()> {
    let server = Server::build(args, &cli.database_url, cli.max_active_keys).await?;
    let shutdown = CancellationToken::new();
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            wait_for_signal().await;
            tracing::info!("shutting down");
            shutdown.cancel();
        });
    }
    println!("rapport listening on http://{}", server.addr());
    println!("MCP endpoint: {}/api/v1/mcp", server.state().settings.public_url);
    server.run(shutdown).await
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
    };
    let created = keys::create(store.as_ref(), &org, &Creator::cli(), req, cli.max_active_keys).await?;
    if args.json {
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
    }
    Ok(())
}

async fn keys_list(cli: &Cli, args: &KeysListArgs) -> anyhow::Result<()> {
    let store = open(cli).await?;
    let org = org(store.as_ref(), &args.org.org).await?;
    let list = keys::list(store.as_ref(), &org, args.all).await?;
    if args.json {
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

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n { s.to_owned() } else { format!("{}…", s.chars().take(n - 1).collect::<String>()) }
}
