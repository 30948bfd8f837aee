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

async fn tools_list_as(app: &TestApp, client: &str, value: &str) {
    let (url, headers) = as_the_client_would(client, value);
    assert!(url.starts_with(&app.base), "{client}: {url} points at the server");
    let mut req = app.client.post(&url).header("accept", "application/json, text/event-stream");
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let res = req.json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "{client}");
    let v: Value = res.json().await.unwrap();
    assert!(v["result"]["tools"].as_array().unwrap().len() >= 5, "{client}: {v}");
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
