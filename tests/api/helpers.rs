//! `spawn_app()`: the real server on port 0 with a fresh database: a SQLite file in a temp
//! directory, or, when RAPPORT_TEST_DATABASE_URL names a PostgreSQL database, a fresh
//! schema inside it.

use std::sync::Arc;

use rapport::app::Server;
use rapport::config::ServeArgs;
use rapport::keys::{self, NewKeyRequest};
use rapport::store::{Actor, KeyId, Org, Store};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

pub struct TestApp {
    pub base: String,
    pub store: Arc<Store>,
    pub state: rapport::state::AppState,
    pub db_url: String,
    /// An owner key of the `default` organization.
    pub key: String,
    pub default_org: Org,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn serve_args() -> ServeArgs {
    ServeArgs {
        addr: "127.0.0.1:0".into(),
        public_url: None,
        rate_limit: 0,
        allowed_origins: vec![],
        trusted_proxies: vec![],
        query_keys: true,
        trash_days: 30,
        metrics_token: None,
        // Test receivers listen on 127.0.0.1; the guard's own tests turn this off.
        webhook_allow_private: true,
        webhook_sender: true,
    }
}

/// A database URL for one test, and the temp dir that holds it (SQLite).
pub async fn fresh_database() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("RAPPORT_TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            let schema = format!("t_{}", uuid::Uuid::now_v7().simple());
            let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
                .await
                .expect("connect to RAPPORT_TEST_DATABASE_URL");
            sqlx::Executor::execute(&mut conn, sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                .await
                .expect("create test schema");
            let sep = if base.contains('?') { '&' } else { '?' };
            (format!("{base}{sep}options[search_path]={schema}"), None)
        }
        _ => {
            let dir = tempfile::tempdir().expect("temp dir");
            let url = format!("sqlite://{}", dir.path().join("rapport.db").display());
            (url, Some(dir))
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(serve_args()).await
}

pub async fn spawn_app_with(args: ServeArgs) -> TestApp {
    let (db_url, dir) = fresh_database().await;
    spawn_app_on(args, db_url, dir).await
}

/// The server on a database URL of the caller's (a fresh one, or one behind a proxy).
pub async fn spawn_app_on(args: ServeArgs, db_url: String, dir: Option<tempfile::TempDir>) -> TestApp {
    init_logs();
    let server = Server::build(&args, &db_url, 10).await.expect("server builds");
    let addr = server.addr();
    let store = server.state().store.clone();
    let state = server.state().clone();
    let shutdown = CancellationToken::new();
    tokio::spawn(server.run(shutdown.clone()));
    let default_org = store.org_by_name("default").await.unwrap().expect("bootstrapped");
    let key = create_key(store.as_ref(), &default_org, "test owner", Some("owner"), &[]).await;
    TestApp {
        base: format!("http://{addr}"),
        store,
        state,
        db_url,
        key,
        default_org,
        client: reqwest::Client::new(),
        shutdown,
        _dir: dir,
    }
}

fn init_logs() {
    if std::env::var("TEST_LOG").is_ok() {
        rapport::telemetry::init(&rapport::config::Telemetry {
            filter: "debug".into(),
            format: rapport::config::LogFormat::Pretty,
        });
    }
}

pub async fn create_key(store: &Store, org: &Org, name: &str, role: Option<&str>, scopes: &[&str]) -> String {
    let req = NewKeyRequest {
        name: name.into(),
        role: role.map(Into::into),
        scopes: scopes.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    };
    keys::create(store, &rapport::crm::Principal::cli(org.clone()), req, 1000).await.expect("key created").key
}

impl TestApp {
    /// The command line, acting in the `default` organization.
    pub fn cli(&self) -> rapport::crm::Principal {
        rapport::crm::Principal::cli(self.default_org.clone())
    }

    pub fn mcp_url(&self) -> String {
        format!("{}/api/v1/mcp", self.base)
    }

    pub async fn new_org(&self, name: &str) -> (Org, String) {
        let (org, _owner) = keys::create_org(self.store.as_ref(), name, Actor::Cli).await.expect("org created");
        let key = create_key(self.store.as_ref(), &org, "owner key", Some("owner"), &[]).await;
        (org, key)
    }

    pub async fn key_with(&self, role: Option<&str>, scopes: &[&str]) -> String {
        create_key(self.store.as_ref(), &self.default_org, "scoped", role, scopes).await
    }

    /// A person of the `default` organization with `role`, made from the command line.
    pub async fn person(&self, email: &str, role: &str) {
        keys::users::create(self.store.as_ref(), &self.cli(), email, None, role).await.expect("user created");
    }

    /// A key owned by `email`, with a role or scopes; answers the key and its id.
    pub async fn key_of(&self, email: &str, name: &str, role: Option<&str>, scopes: &[&str]) -> (String, KeyId) {
        let req = NewKeyRequest {
            name: name.into(),
            role: role.map(Into::into),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            user_email: Some(email.into()),
            ..Default::default()
        };
        let created = keys::create(self.store.as_ref(), &self.cli(), req, 1000).await.expect("key created");
        (created.key, created.id)
    }

    /// The id of the key named `name` in the `default` organization.
    pub async fn key_id(&self, name: &str) -> KeyId {
        let keys = self.store.list_keys(&self.default_org.id, true).await.unwrap();
        keys.into_iter().find(|k| k.name == name).expect("a key of that name").id
    }

    /// POSTs a JSON-RPC message to the MCP endpoint with `x-api-key`.
    pub async fn rpc(&self, key: &str, body: Value) -> reqwest::Response {
        self.rpc_at(key, "", body).await
    }

    /// The same, to the endpoint URL with `query` (such as `?profile=full`).
    pub async fn rpc_at(&self, key: &str, query: &str, body: Value) -> reqwest::Response {
        self.client
            .post(format!("{}{query}", self.mcp_url()))
            .header("x-api-key", key)
            .header("accept", "application/json, text/event-stream")
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    pub async fn rpc_json(&self, key: &str, method: &str, params: Value) -> Value {
        self.rpc_json_at(key, "", method, params).await
    }

    pub async fn rpc_json_at(&self, key: &str, query: &str, method: &str, params: Value) -> Value {
        let res = self.rpc_at(key, query, json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).await;
        assert_eq!(res.status(), StatusCode::OK, "{method}");
        res.json().await.expect("JSON-RPC answer")
    }

    /// Calls a tool; `Ok(structuredContent)` or `Err(error text)`.
    pub async fn call_as(&self, key: &str, tool: &str, args: Value) -> Result<Value, String> {
        self.call_at(key, "", tool, args).await
    }

    /// Calls a tool through the endpoint URL with `query`.
    pub async fn call_at(&self, key: &str, query: &str, tool: &str, args: Value) -> Result<Value, String> {
        let v = self.rpc_json_at(key, query, "tools/call", json!({"name": tool, "arguments": args})).await;
        let result = &v["result"];
        assert!(result.is_object(), "tools/call {tool} gave no result: {v}");
        if result["isError"] == json!(true) {
            Err(result["content"][0]["text"].as_str().unwrap_or_default().to_owned())
        } else {
            let structured = result["structuredContent"].clone();
            let text: Value = serde_json::from_str(result["content"][0]["text"].as_str().unwrap()).unwrap();
            assert_eq!(structured, text, "structuredContent and text agree");
            Ok(structured)
        }
    }

    pub async fn call(&self, tool: &str, args: Value) -> Result<Value, String> {
        self.call_as(&self.key, tool, args).await
    }

    pub async fn ok(&self, tool: &str, args: Value) -> Value {
        match self.call(tool, args.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{tool} {args} failed: {e}"),
        }
    }

    pub async fn err(&self, tool: &str, args: Value) -> String {
        match self.call(tool, args.clone()).await {
            Ok(v) => panic!("{tool} {args} should fail, gave {v}"),
            Err(e) => e,
        }
    }

    pub async fn tool_names(&self, key: &str, query: &str) -> Vec<String> {
        let res = self
            .client
            .post(format!("{}{query}", self.mcp_url()))
            .header("x-api-key", key)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        let v: Value = res.json().await.unwrap();
        v["result"]["tools"].as_array().unwrap().iter().map(|t| t["name"].as_str().unwrap().to_owned()).collect()
    }

    pub async fn create_contacts(&self, contacts: Value) -> Vec<Value> {
        self.ok("create_contacts", json!({ "contacts": contacts })).await["items"].as_array().unwrap().clone()
    }

    pub async fn create_companies(&self, companies: Value) -> Vec<Value> {
        self.ok("create_companies", json!({ "companies": companies })).await["items"].as_array().unwrap().clone()
    }

    /// Ids of a search's items.
    pub async fn search_ids(&self, args: Value) -> Vec<String> {
        let v = self.ok("search_records", args).await;
        v["items"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect()
    }
}

impl TestApp {
    /// Runs one statement with one text parameter directly on the test database, to set up
    /// states the API cannot reach quickly (an expiry in the past, a row as another writer
    /// would leave it).
    pub async fn sql(&self, statement: &'static str, param: &str) {
        if self.db_url.starts_with("postgres") {
            let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.db_url).await.unwrap();
            sqlx::query(statement).bind(param).execute(&mut c).await.unwrap();
        } else {
            let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.db_url).await.unwrap();
            sqlx::query(statement).bind(param).execute(&mut c).await.unwrap();
        }
    }
}

impl TestApp {
    /// How many rows each table that a write may touch holds: equal before and after means
    /// nothing was written.
    pub async fn row_counts(&self) -> Vec<(&'static str, i64)> {
        const TABLES: &[&str] = &[
            "changes",
            "audit_log",
            "idempotency_keys",
            "webhook_deliveries",
            "webhook_events",
            "webhook_endpoints",
            "contacts",
            "companies",
            "deals",
            "tasks",
            "notes",
            "record_links",
            "custom_fields",
            "trashed_custom_fields",
            "pipelines",
            "api_keys",
            "users",
        ];
        let mut out = Vec::new();
        for t in TABLES {
            let sql = format!("SELECT COUNT(*) FROM {t}");
            let n: i64 = if self.db_url.starts_with("postgres") {
                let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await.unwrap()
            } else {
                let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&self.db_url).await.unwrap();
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await.unwrap()
            };
            out.push((*t, n));
        }
        out
    }

    /// A second server process on the same database, as when several run behind a load
    /// balancer.
    /// The same database and keys, as served at another address (another process's).
    pub fn at(&self, base: &str) -> TestApp {
        TestApp {
            base: base.to_owned(),
            store: self.store.clone(),
            state: self.state.clone(),
            db_url: self.db_url.clone(),
            key: self.key.clone(),
            default_org: self.default_org.clone(),
            client: reqwest::Client::new(),
            shutdown: CancellationToken::new(),
            _dir: None,
        }
    }

    pub async fn second_server(&self) -> TestApp {
        self.second_server_with(serve_args()).await
    }

    pub async fn second_server_with(&self, args: ServeArgs) -> TestApp {
        let server = Server::build(&args, &self.db_url, 10).await.expect("second server builds");
        let addr = server.addr();
        let store = server.state().store.clone();
        let state = server.state().clone();
        let shutdown = CancellationToken::new();
        tokio::spawn(server.run(shutdown.clone()));
        TestApp {
            base: format!("http://{addr}"),
            store,
            state,
            db_url: self.db_url.clone(),
            key: self.key.clone(),
            default_org: self.default_org.clone(),
            client: reqwest::Client::new(),
            shutdown,
            _dir: None,
        }
    }

    /// A REST call with `x-api-key`; returns the status and the JSON body.
    pub async fn api(
        &self,
        key: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}/api/v1{path}", self.base)).header("x-api-key", key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Writes the key uses held in memory, as the periodic flush does.
    pub async fn flush_usage(&self) {
        self.state.usage.flush(self.store.as_ref()).await;
    }

    /// Status of a `tools/list` with this key.
    pub async fn mcp_status(&self, key: &str) -> StatusCode {
        self.rpc(key, json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await.status()
    }
}

/// The test database is PostgreSQL (else SQLite).
pub fn on_postgres() -> bool {
    std::env::var("RAPPORT_TEST_DATABASE_URL").is_ok_and(|u| !u.is_empty())
}

/// SPEC section 1: a change made through one process is honoured by every other within
/// this long.
pub const PROPAGATION: std::time::Duration = std::time::Duration::from_secs(1);

/// Polls `check` every 20 ms until it holds or `limit` has passed; whether it held.
pub async fn holds_within<F, Fut>(limit: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    loop {
        if check().await {
            return true;
        }
        if start.elapsed() >= limit {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The tools a key with this role sees, as the catalog says.
/// The tools `role` sees in the default (lean) profile.
pub fn tools_for(role: rapport_tools::Role) -> Vec<&'static str> {
    let scopes = role.scopes();
    rapport_tools::catalog()
        .iter()
        .filter(|t| t.listed_in(rapport_tools::Profile::Lean) && t.access.allows(&scopes))
        .map(|t| t.name)
        .collect()
}

/// A real `rapport serve` process on the same database, killed when dropped.
pub struct OtherProcess {
    child: std::process::Child,
    pub base: String,
    pub mcp_url: String,
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Drop for OtherProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start_other_process(db_url: &str, env: &[(&str, &str)]) -> OtherProcess {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rapport"))
        .arg("serve")
        .env("RAPPORT_DATABASE_URL", db_url)
        .env("RAPPORT_ADDR", "127.0.0.1:0")
        .env("RAPPORT_LOG", "warn")
        .envs(env.iter().copied())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("listening on") {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err);
            panic!("the other process did not start: {err}");
        }
    }
    // Its log goes on being read, so a full pipe never stops it.
    let mut err = child.stderr.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut err, &mut std::io::sink()));
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    OtherProcess { child, mcp_url: format!("{base}/api/v1/mcp"), base, _stdout: out }
}

/// A TCP proxy between a server and PostgreSQL that a test can cut (every connection
/// closed, new ones refused) and restore, to play a database outage without stopping the
/// cluster the other tests share.
pub struct DbProxy {
    pub port: u16,
    upstream: String,
    tasks: std::sync::Arc<std::sync::Mutex<tokio::task::JoinSet<()>>>,
}

impl DbProxy {
    pub async fn start(upstream: &str) -> DbProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = DbProxy { port, upstream: upstream.to_owned(), tasks: Default::default() };
        proxy.serve(listener);
        proxy
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (upstream, tasks) = (self.upstream.clone(), self.tasks.clone());
        let accept = async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                tasks.lock().unwrap().spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        };
        self.tasks.lock().unwrap().spawn(accept);
    }

    /// Closes every connection and stops accepting: the database is gone.
    pub fn cut(&self) {
        self.tasks.lock().unwrap().abort_all();
    }

    /// Accepts again on the same port: the database is back.
    pub async fn restore(&self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port)).await.expect("rebind the proxy port");
        self.serve(listener);
    }

    /// `url` with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let mut u = reqwest::Url::parse(url).unwrap();
        u.set_host(Some("127.0.0.1")).unwrap();
        u.set_port(Some(self.port)).unwrap();
        u.to_string()
    }
}

/// `host:port` of a PostgreSQL URL.
pub fn pg_address(url: &str) -> String {
    let u = reqwest::Url::parse(url).unwrap();
    format!("{}:{}", u.host_str().unwrap_or("127.0.0.1"), u.port().unwrap_or(5432))
}

/// The command line on a database, as a user runs it.
pub fn rapport(db: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(args)
        .env("RAPPORT_DATABASE_URL", db)
        .env("RAPPORT_LOG", "warn")
        .output()
        .expect("rapport runs")
}
