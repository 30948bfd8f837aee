//! The connect helper end to end (SPEC section 6): for every client, take what it was
//! given, pull out the URL and the credential exactly as that client would send them, and
//! list the tools with them.

use std::collections::HashMap;
use std::process::Command;

use base64::Engine;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, fresh_database, spawn_app};

const CLIENTS: [&str; 8] =
    ["claude-code", "codex", "vscode", "cursor", "gemini", "windsurf", "claude-desktop", "chatgpt"];

/// How a client will call the server: URL and headers.
fn as_the_client_would(client: &str, value: &str) -> (String, Vec<(String, String)>) {
    let header = |h: &str| {
        let (k, v) = h.split_once(':').expect("a header");
        vec![(k.trim().to_owned(), v.trim().to_owned())]
    };
    let json_headers = |v: &Value| -> Vec<(String, String)> {
        v.as_object().unwrap().iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect()
    };
    match client {
        "claude-code" => {
            let argv = shell_words::split(value).unwrap();
            assert_eq!(argv[..5], ["claude", "mcp", "add", "--transport", "http"]);
            let h = argv.iter().position(|a| a == "--header").unwrap();
            (argv[6].clone(), header(&argv[h + 1]))
        }
        "gemini" => {
            let argv = shell_words::split(value).unwrap();
            assert_eq!(argv[..3], ["gemini", "mcp", "add"]);
            let h = argv.iter().position(|a| a == "--header").unwrap();
            (argv.last().unwrap().clone(), header(&argv[h + 1]))
        }
        "codex" => {
            // `export VAR=KEY && codex mcp add NAME --url URL --bearer-token-env-var VAR`
            let argv = shell_words::split(value).unwrap();
            let mut env = HashMap::new();
            let (k, v) = argv[1].split_once('=').unwrap();
            assert_eq!(argv[0], "export");
            env.insert(k.to_owned(), v.to_owned());
            let url = argv[argv.iter().position(|a| a == "--url").unwrap() + 1].clone();
            let var = &argv[argv.iter().position(|a| a == "--bearer-token-env-var").unwrap() + 1];
            (url, vec![("authorization".into(), format!("Bearer {}", env[var]))])
        }
        "vscode" => {
            let argv = shell_words::split(value).unwrap();
            assert_eq!(argv[..2], ["code", "--add-mcp"]);
            let cfg: Value = serde_json::from_str(&argv[2]).unwrap();
            assert_eq!(cfg["type"], "http");
            (cfg["url"].as_str().unwrap().to_owned(), json_headers(&cfg["headers"]))
        }
        "cursor" => {
            let query = value.split_once('?').unwrap().1;
            let params: HashMap<String, String> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
            let raw = base64::engine::general_purpose::STANDARD.decode(&params["config"]).unwrap();
            let cfg: Value = serde_json::from_slice(&raw).unwrap();
            (cfg["url"].as_str().unwrap().to_owned(), json_headers(&cfg["headers"]))
        }
        "windsurf" => {
            let cfg: Value = serde_json::from_str(value).unwrap();
            let (_, server) = cfg["mcpServers"].as_object().unwrap().iter().next().unwrap();
            (server["serverUrl"].as_str().unwrap().to_owned(), json_headers(&server["headers"]))
        }
        "claude-desktop" | "chatgpt" => (value.to_owned(), vec![]),
        other => panic!("unknown client {other}"),
    }
}

/// The names of the tools the client is shown.
async fn tools_list_as(app: &TestApp, client: &str, value: &str) -> Vec<String> {
    let (url, headers) = as_the_client_would(client, value);
    assert!(url.starts_with(&app.base), "{client}: {url} points at the server");
    let mut req = app.client.post(&url).header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{client}");
    let v: Value = res.json().await.unwrap();
    let tools = v["result"]["tools"].as_array().unwrap();
    assert!(tools.len() >= 5, "{client}: {v}");
    tools.iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helper_hands_out_either_profile() {
    let app = spawn_app().await;
    for (profile, shown, hidden) in
        [(None, "write_records", "create_contacts"), (Some("full"), "create_contacts", "write_records")]
    {
        let body = json!({"client": "all", "profile": profile});
        let (s, all) = app.api(&app.key, Method::POST, "/connect", Some(body)).await;
        assert_eq!(s, StatusCode::OK, "{all}");
        for c in all.as_array().unwrap() {
            let client = c["client"].as_str().unwrap();
            let names = tools_list_as(&app, client, c["value"].as_str().unwrap()).await;
            assert!(
                names.iter().any(|n| n == shown) && !names.iter().any(|n| n == hidden),
                "{client} {profile:?}: {names:?}"
            );
        }
    }
    let (s, v) = app.api(&app.key, Method::POST, "/connect", Some(json!({"client": "codex", "profile": "huge"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("lean or full"), "{v}");
    // The command line gives the same.
    let url = app.base.clone();
    let out = connect_cli(&app.db_url, &url, &["chatgpt", "--profile", "full", "--key", &app.key]);
    let value = String::from_utf8(out.stdout).unwrap();
    assert!(value.contains("/api/v1/mcp?profile=full&api_key="), "{value}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clients_output_works_over_http() {
    let app = spawn_app().await;
    let (s, all) = app.api(&app.key, Method::POST, "/connect", Some(json!({"client": "all"}))).await;
    assert_eq!(s, StatusCode::OK, "{all}");
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), CLIENTS.len());
    for (c, expected) in all.iter().zip(CLIENTS) {
        assert_eq!(c["client"], expected);
        for field in ["kind", "value", "instructions", "key_created", "key_id", "key_preview"] {
            assert!(c.get(field).is_some(), "{field} in {c}");
        }
        assert_eq!(c["key_created"], false, "the caller's own key is used");
        // Cursor carries it base64-encoded; the others in plain sight.
        assert!(c["value"].as_str().unwrap().contains(&app.key) || expected == "cursor", "{expected}");
        tools_list_as(&app, expected, c["value"].as_str().unwrap()).await;
    }
    let (s, one) = app.api(&app.key, Method::POST, "/connect", Some(json!({"client": "cursor", "name": "crm"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(one["kind"], "deeplink");
    assert!(one["value"].as_str().unwrap().contains("name=crm"));
    let (s, v) = app.api(&app.key, Method::POST, "/connect", Some(json!({"client": "emacs"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(v["error"]["message"].as_str().unwrap().contains("claude-code"));
    let viewer = app.key_with(Some("viewer"), &[]).await;
    let (s, _) = app.api(&viewer, Method::POST, "/connect", Some(json!({"client": "codex"}))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
}

fn connect_cli(db: &str, public_url: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rapport"))
        .arg("connect")
        .args(args)
        .env("RAPPORT_DATABASE_URL", db)
        .env("RAPPORT_PUBLIC_URL", public_url)
        .env("RAPPORT_LOG", "warn")
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_creates_a_key_when_it_must() {
    let (db, _dir) = fresh_database().await;
    // No enabled key yet: the first key of the organization is created.
    let out = connect_cli(&db, "http://127.0.0.1:9", &["claude-code", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let first: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(first["key_created"], true);
    // Keys exist: a key named after the client.
    let out = connect_cli(&db, "http://127.0.0.1:9", &["gemini", "--json"]);
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(second["key_created"], true);
    assert_ne!(second["key_id"], first["key_id"]);
    let keys: Value = serde_json::from_slice(
        &Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["keys", "list", "--json"])
            .env("RAPPORT_DATABASE_URL", &db)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let names: Vec<&str> = keys.as_array().unwrap().iter().map(|k| k["name"].as_str().unwrap()).collect();
    assert!(names.contains(&"default") && names.contains(&"gemini"), "{names:?}");
    // Created keys are audited and never shown again.
    let audit = String::from_utf8(
        Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["audit", "--json"])
            .env("RAPPORT_DATABASE_URL", &db)
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    assert_eq!(audit.matches("key.create").count(), 2);
    let secret =
        shell_words::split(first["value"].as_str().unwrap()).unwrap()[8].trim_start_matches("x-api-key: ").to_owned();
    assert!(!audit.contains(&secret) && !String::from_utf8_lossy(&keys.to_string().into_bytes()).contains(&secret));

    // The limit is reported plainly.
    let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["connect", "codex"])
        .env("RAPPORT_DATABASE_URL", &db)
        .env("RAPPORT_MAX_ACTIVE_KEYS", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already has 2 enabled keys") && err.contains("--key"), "{err}");
    // A supplied key is used as is.
    let out = connect_cli(&db, "http://127.0.0.1:9", &["codex", "--key", &secret, "--json"]);
    let third: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((third["key_created"].as_bool(), third["key_id"].as_str()), (Some(false), first["key_id"].as_str()));
    let out = connect_cli(&db, "http://127.0.0.1:9", &["codex", "--key", "rpk_nonsense"]);
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clients_cli_output_works_against_the_server() {
    let app = spawn_app().await;
    for client in CLIENTS {
        let out = connect_cli(&app.db_url, &app.base, &[client, "--key", &app.key, "--json"]);
        assert!(out.status.success(), "{client}: {}", String::from_utf8_lossy(&out.stderr));
        let c: Value = serde_json::from_slice(&out.stdout).unwrap();
        tools_list_as(&app, client, c["value"].as_str().unwrap()).await;
    }
    // Human output: the value, then where to put it.
    let out = connect_cli(&app.db_url, &app.base, &["windsurf", "--key", &app.key]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("mcp_config.json") && text.contains("serverUrl"));
}

/// What the helper hands out must work (SPEC 6): a public URL `serve` would refuse is refused
/// here too; connectors called from the internet are warned about an http or local URL; with
/// keys in URLs turned off no `?api_key=` URL is given; a second key for a client is named
/// apart; a revoked key is called what it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_helper_hands_out_only_what_can_work() {
    let (db, _dir) = fresh_database().await;
    for bad in [
        "crm.example.com",
        "https://crm.example.com/?toolsets=deals",
        "ftp://crm.example.com",
        "https://crm.example.com/#x",
    ] {
        let out = connect_cli(&db, bad, &["claude-code", "--json"]);
        assert!(!out.status.success(), "{bad} was taken");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("RAPPORT_PUBLIC_URL"), "{bad}: {err}");
        assert!(out.stdout.is_empty(), "no half answer on stdout");
    }
    let keys = |db: &str| -> Vec<Value> {
        let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["keys", "list", "--all", "--json"])
            .env("RAPPORT_DATABASE_URL", db)
            .output()
            .unwrap();
        serde_json::from_slice::<Value>(&out.stdout).unwrap().as_array().unwrap().clone()
    };
    assert!(keys(&db).is_empty(), "nothing was created for a refused URL");

    // Plain http or a local address: Claude Desktop and ChatGPT get a warning; others none.
    let out = connect_cli(&db, "http://127.0.0.1:9", &["all", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    for c in all.as_array().unwrap() {
        let warnings = c["warnings"].as_array().unwrap();
        match c["client"].as_str().unwrap() {
            "claude-desktop" | "chatgpt" => {
                let text = Value::Array(warnings.clone()).to_string();
                assert!(text.contains("https") && text.contains("127.0.0.1"), "{text}");
            }
            other => assert!(warnings.is_empty(), "{other}: {warnings:?}"),
        }
    }
    let out = connect_cli(&db, "https://crm.example.com", &["chatgpt", "--json"]);
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(c["warnings"], json!([]), "a public https URL is fine");
    assert!(c["value"].as_str().unwrap().starts_with("https://crm.example.com/api/v1/mcp?api_key=rpk_"));

    // Keys in URLs off: no connector URL for those clients.
    let no_query = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rapport"))
            .arg("connect")
            .args(args)
            .env("RAPPORT_DATABASE_URL", &db)
            .env("RAPPORT_PUBLIC_URL", "https://crm.example.com")
            .env("RAPPORT_QUERY_KEYS", "false")
            .output()
            .unwrap()
    };
    let out = no_query(&["claude-desktop", "--json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("RAPPORT_QUERY_KEYS=false"));
    let out = no_query(&["all", "--json"]);
    assert!(out.status.success());
    let all: Value = serde_json::from_slice(&out.stdout).unwrap();
    let clients: Vec<&str> = all.as_array().unwrap().iter().map(|c| c["client"].as_str().unwrap()).collect();
    assert_eq!(clients, ["claude-code", "codex", "vscode", "cursor", "gemini", "windsurf"]);
    assert!(!out.stdout.windows(8).any(|w| w == b"api_key="));

    // Each run for one client makes a key with a name of its own.
    for _ in 0..2 {
        assert!(connect_cli(&db, "https://crm.example.com", &["cursor", "--json"]).status.success());
    }
    let names: Vec<String> = keys(&db).iter().map(|k| k["name"].as_str().unwrap().to_owned()).collect();
    assert!(names.contains(&"cursor".to_owned()) && names.contains(&"cursor 2".to_owned()), "{names:?}");

    // A revoked key: revoked for good, not "enable it".
    let out = connect_cli(&db, "https://crm.example.com", &["codex", "--json"]);
    let c: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = shell_words::split(c["value"].as_str().unwrap()).unwrap()[1].split_once('=').unwrap().1.to_owned();
    let revoke = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["keys", "revoke", c["key_id"].as_str().unwrap()])
        .env("RAPPORT_DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(revoke.status.success());
    let out = connect_cli(&db, "https://crm.example.com", &["codex", "--key", &secret]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("revoked") && !err.contains("enable it"), "{err}");
}

/// Over HTTP the same checks hold, with the server's own settings.
#[tokio::test]
async fn the_http_helper_warns_and_refuses_alike() {
    let mut args = crate::helpers::serve_args();
    args.query_keys = false;
    let app = crate::helpers::spawn_app_with(args).await;
    let (s, v) = app.api(&app.key, Method::POST, "/connect", Some(json!({"client": "chatgpt"}))).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("RAPPORT_QUERY_KEYS=false"));
    let app = spawn_app().await;
    let (s, v) = app.api(&app.key, Method::POST, "/connect", Some(json!({"client": "claude-desktop"}))).await;
    assert_eq!(s, StatusCode::OK);
    assert!(v["warnings"].as_array().unwrap().len() == 2, "http and loopback: {v}");
}
