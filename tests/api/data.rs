//! Data in and out (SPEC 13) as a user meets it: real-world CSV exports imported through the
//! CLI and REST, bad files refused with nothing written, an import killed and rerun, exports
//! with formulas neutralised, a backup taken under writes and restored.

use std::io::Write;
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, on_postgres, rapport, serve_args, spawn_app, spawn_app_on};

fn ok_json(out: &std::process::Output) -> Value {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON value")
}

fn file(dir: &tempfile::TempDir, name: &str, bytes: &[u8]) -> String {
    let path = dir.path().join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path.display().to_string()
}

/// A HubSpot-like export: BOM, semicolons, CRLF, quoted cells with the delimiter, quotes and
/// a line break inside, a formula, a bad email, a ragged row, a blank line.
const HUBSPOT: &[u8] =
    b"\xEF\xBB\xBFFirst Name;Last Name;E-mail Address;Company Name;Phone Number;Job Title;Lifecycle Stage;Tags\r\n\
Ada;Lovelace;ADA@Example.com;Acme Inc;+49 30 1234;CTO;lead;\"vip, board\"\r\n\
Bob;Byte;bob@;acme inc;;;customer;\r\n\
Cara;\"Smith; Jr.\";cara@example.com;acme.io;;\"=HYPERLINK(\"\"http://evil\"\")\";;\r\n\
;;;;;;;\r\n\
Dan;Ragged\r\n\
Eve;\"Multi\r\nLine\";eve@example.com;Acme Inc;;\"Head of \"\"Ops\"\"\";customer;\r\n";

async fn contact_by_email(app: &TestApp, email: &str) -> Value {
    let found = app
        .ok("search_records", json!({"entity": "contact", "filters": [{"field": "email", "op": "eq", "value": email}]}))
        .await;
    let Some(id) = found["items"][0]["id"].as_str() else { return Value::Null };
    app.ok("get_records", json!({"records": [{"entity": "contact", "id": id}]})).await["items"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_world_export_imports_through_the_cli() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "hubspot.csv", HUBSPOT);
    let failed = dir.path().join("failed.csv");
    let out = rapport(
        &app.db_url,
        &[
            "import",
            "contacts",
            &path,
            "--map",
            "Lifecycle Stage=custom.lifecycle_stage",
            "--failed-rows",
            failed.to_str().unwrap(),
            "--json",
        ],
    );
    let report = ok_json(&out);
    assert_eq!(report["state"], "done");
    assert_eq!(report["total_rows"], 6);
    assert_eq!(report["rows_done"], 6);
    assert_eq!(report["created"], 3, "{report}");
    assert_eq!(report["failed"], 2, "{report}");
    assert_eq!(report["skipped"], 1, "the blank row: {report}");
    assert_eq!(report["companies_created"], 2, "Acme Inc (any case) and acme.io: {report}");
    assert_eq!(report["report"]["format"], "csv (semicolon)");
    let columns: Vec<(String, Value)> = report["report"]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["column"].as_str().unwrap().to_owned(), c["field"].clone()))
        .collect();
    assert_eq!(columns[2], ("E-mail Address".to_owned(), json!("email")));
    assert_eq!(columns[3], ("Company Name".to_owned(), json!("company")));
    assert_eq!(columns[6], ("Lifecycle Stage".to_owned(), json!("custom.lifecycle_stage")));
    let failures = report["failures"].as_array().unwrap();
    assert_eq!(failures[0]["line"], 3);
    assert!(failures[0]["reason"].as_str().unwrap().contains("email"), "{failures:?}");
    assert_eq!(failures[1]["line"], 6);
    assert!(failures[1]["reason"].as_str().unwrap().contains("2 cells"), "{failures:?}");

    let ada = contact_by_email(&app, "ada@example.com").await;
    assert_eq!(ada["title"], "CTO");
    assert_eq!(ada["phone"], "+49 30 1234");
    assert_eq!(ada["tags"], json!(["vip", "board"]));
    assert_eq!(ada["custom"]["lifecycle_stage"], "lead");
    let eve = contact_by_email(&app, "eve@example.com").await;
    assert_eq!(eve["last_name"], "Multi\nLine");
    assert_eq!(eve["title"], "Head of \"Ops\"");
    assert_eq!(eve["company_id"], ada["company_id"], "one Acme Inc whatever the case");
    let cara = contact_by_email(&app, "cara@example.com").await;
    assert_eq!(cara["last_name"], "Smith; Jr.");
    assert_eq!(cara["title"], "=HYPERLINK(\"http://evil\")", "a formula is stored as the text it is");
    let acme_io = app.ok("get_records", json!({"records": [{"entity": "company", "id": cara["company_id"]}]})).await;
    assert_eq!(acme_io["items"][0]["domain"], "acme.io");

    // The failed rows, as CSV with their line and reason.
    let text = std::fs::read_to_string(&failed).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "First Name,Last Name,E-mail Address,Company Name,Phone Number,Job Title,Lifecycle Stage,Tags,line,error"
    );
    assert!(lines.next().unwrap().starts_with("Bob,Byte,bob@,acme inc,,,customer,,3,"));

    // One import, one request id: the change log holds it all, and one undo reverts it.
    let request = report["request_id"].as_str().unwrap().to_owned();
    let (_, log) = app.api(&app.key, Method::GET, &format!("/changes?request_id={request}&limit=100"), None).await;
    let entries = log["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3 + 2 + 1, "3 contacts, 2 companies, 1 custom field: {log}");
    let out = rapport(&app.db_url, &["changes", "revert", "--request-id", &request, "--yes", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(contact_by_email(&app, "ada@example.com").await.is_null(), "the undo removed the import's records");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rerun_matches_on_email_and_updates_when_asked() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = file(&dir, "c.csv", b"Email,First Name,Title\nann@x.io,Ann,CEO\nANN@x.io,Ann,Chair\nbo@x.io,Bo,\n");
    let first = ok_json(&rapport(&app.db_url, &["import", "contacts", &path, "--json"]));
    assert_eq!((first["created"].as_i64(), first["skipped"].as_i64()), (Some(2), Some(1)), "{first}");
    let again = ok_json(&rapport(&app.db_url, &["import", "contacts", &path, "--json"]));
    assert_eq!((again["created"].as_i64(), again["skipped"].as_i64()), (Some(0), Some(3)), "{again}");
    let update = ok_json(&rapport(&app.db_url, &["import", "contacts", &path, "--on-match", "update", "--json"]));
    assert_eq!(update["updated"], 1, "{update}");
    assert_eq!(contact_by_email(&app, "ann@x.io").await["title"], "Chair", "the last row wins");
    let none = ok_json(&rapport(&app.db_url, &["import", "contacts", &path, "--match", "none", "--dry-run", "--json"]));
    assert_eq!(none["created"], 3, "a dry run reports what it would do: {none}");
    let count = app.ok("count_records", json!({"entity": "contact"})).await;
    assert_eq!(count["count"], 2, "and writes nothing");
}

async fn import_over_rest(
    app: &TestApp,
    key: &str,
    query: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (StatusCode, Value) {
    let res = app
        .client
        .post(format!("{}/api/v1/imports?{query}", app.base))
        .header("x-api-key", key)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn finished(app: &TestApp, id: &str) -> Value {
    for _ in 0..200 {
        let (status, v) = app.api(&app.key, Method::GET, &format!("/imports/{id}"), None).await;
        assert_eq!(status, StatusCode::OK, "{v}");
        if v["state"] != "running" {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("import {id} did not finish");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_imports_csv_and_json_lines_and_reports_progress() {
    let app = spawn_app().await;
    let (status, started) =
        import_over_rest(&app, &app.key, "entity=contacts&map=Lifecycle%20Stage%3D", "text/csv", HUBSPOT.to_vec())
            .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let done = finished(&app, started["id"].as_str().unwrap()).await;
    assert_eq!(done["state"], "done");
    assert_eq!(done["created"], 3, "{done}");
    assert_eq!(done["report"]["unmapped"], json!(["Lifecycle Stage"]), "a column left out is listed");
    let res = app
        .client
        .get(format!("{}/api/v1/imports/{}/failures", app.base, done["id"].as_str().unwrap()))
        .header("x-api-key", &app.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = res.text().await.unwrap();
    assert_eq!(csv.lines().count(), 3, "header and two failed rows: {csv}");

    // JSON lines: keys map like columns; a line that is not JSON fails alone.
    let lines = b"{\"name\": \"Globex\", \"website\": \"https://www.globex.com/about\", \"industry\": \"Energy\"}\nnot json\n{\"name\": \"Initech\", \"domain\": \"initech.com\", \"custom\": {}}\n";
    let (status, started) =
        import_over_rest(&app, &app.key, "entity=companies", "application/jsonl", lines.to_vec()).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{started}");
    let done = finished(&app, started["id"].as_str().unwrap()).await;
    assert_eq!((done["created"].as_i64(), done["failed"].as_i64()), (Some(2), Some(1)), "{done}");
    assert_eq!(done["failures"][0]["line"], 2);
    let globex = app.ok("search_records", json!({"entity": "company", "query": "globex", "fields": ["domain"]})).await;
    assert_eq!(globex["items"][0]["domain"], "www.globex.com", "a pasted URL is reduced to its host");

    // A key without write on the entity is refused before the body is read.
    let viewer = app.key_with(Some("viewer"), &[]).await;
    let (status, v) = import_over_rest(&app, &viewer, "entity=contacts", "text/csv", HUBSPOT.to_vec()).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    // Options that make no sense are named.
    let (status, v) =
        import_over_rest(&app, &app.key, "entity=contacts&match=phone", "text/csv", HUBSPOT.to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(v["error"]["message"].as_str().unwrap_or_default().contains("matched on email"), "{v}");
    let (status, v) =
        import_over_rest(&app, &app.key, "entity=contacts&map=Nope%3Demail", "text/csv", HUBSPOT.to_vec()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_refused_with_nothing_written() {
    let app = spawn_app().await;
    let before = app.row_counts().await;
    let mut long = b"First Name,Email\nAda,ada@x.io\n\"".to_vec();
    long.extend(std::iter::repeat_n(b'x', 3 << 20));
    long.extend(b"\",b@x.io\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("binary", b"First Name,Email\nAda,a@x.io\n\x00\x01\x02\x03".to_vec(), "binary"),
        ("workbook", b"PK\x03\x04\x14\x00\x06\x00".to_vec(), "spreadsheet"),
        ("latin-1", b"First Name,Email\nJos\xe9,jose@x.io\n".to_vec(), "not UTF-8"),
        ("utf-16", b"\xff\xfeF\x00i\x00".to_vec(), "UTF-16"),
        ("unclosed quote", b"First Name,Email\nAda,ada@x.io\n\"Bob,bob@x.io\nCy,cy@x.io\n".to_vec(), "never closed"),
        ("header only", b"First Name,Email\r\n".to_vec(), "no rows"),
        ("empty", Vec::new(), "empty"),
        ("a row too long", long, "longer than 1 MiB"),
    ];
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes, says) in cases {
        let (status, v) = import_over_rest(&app, &app.key, "entity=contacts", "text/csv", bytes.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{name}: {v}");
        assert_eq!(v["error"]["code"], "invalid_file", "{name}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{name}: {v}");
        let path = file(&dir, "bad.csv", &bytes);
        let out = rapport(&app.db_url, &["import", "contacts", &path]);
        assert!(!out.status.success(), "{name}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(says),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let after = app.row_counts().await;
    assert_eq!(before, after, "no record, change or delivery was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_import_killed_halfway_goes_on_when_run_again() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let rows = 30_000;
    let mut text = String::from("Email,First Name,Company\n");
    for i in 0..rows {
        text.push_str(&format!("p{i}@kill.io,P{i},Firm {}\n", i % 300));
    }
    let path = file(&dir, "big.csv", text.as_bytes());
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["import", "contacts", &path, "--match", "email"])
        .env("RAPPORT_DATABASE_URL", &app.db_url)
        .env("RAPPORT_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Killed once some batches are in and before the end.
    let mut killed_at = 0;
    for _ in 0..600 {
        let n = app.ok("count_records", json!({"entity": "contact"})).await["count"].as_i64().unwrap();
        if n >= 2_000 {
            killed_at = n;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(killed_at > 0 && killed_at < rows, "killed mid-way at {killed_at}");
    let report = ok_json(&rapport(&app.db_url, &["import", "contacts", &path, "--match", "email", "--json"]));
    assert_eq!(report["state"], "done", "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    let count = app.ok("count_records", json!({"entity": "contact"})).await;
    assert_eq!(count["count"], rows, "none lost, none duplicated");
    let res = app
        .client
        .get(format!("{}/api/v1/contacts/export?format=jsonl", app.base))
        .header("x-api-key", &app.key)
        .send()
        .await
        .unwrap();
    let emails: std::collections::HashSet<String> = res
        .text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["email"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(emails.len(), rows as usize, "every row's email once");
    let companies = app.ok("count_records", json!({"entity": "company"})).await;
    assert_eq!(companies["count"], 300, "each company once");
    // The rerun went on with the same import: one request id holds every row.
    let (_, list) = app.api(&app.key, Method::GET, "/imports", None).await;
    let real: Vec<&Value> = list["items"].as_array().unwrap().iter().filter(|i| i["dry_run"] == false).collect();
    assert_eq!(real.len(), 1, "{list}");
    assert_eq!(real[0]["rows_done"], rows);
}

/// The indexes of the contacts table, and what a killed import left set aside (SQLite).
async fn contact_indexes(db_url: &str) -> (Vec<String>, i64) {
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(db_url).await.unwrap();
    let names = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'contacts' ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM deferred_indexes").fetch_one(&mut c).await.unwrap();
    (names, left)
}

/// A large import into a small table builds the table's indexes once at its end (SQLite),
/// keeping the one its rows are matched by; killed half way, the next process to open the
/// database builds them back, and sorted lists read right again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_import_builds_its_indexes_at_the_end_even_when_killed() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let rows = 20_000;
    let mut text = String::from("Email,First Name,Last Name\n");
    for i in 0..rows {
        // Last names run backwards, so the first of a sorted list is the file's last row.
        text.push_str(&format!("q{i}@defer.io,Q{i},L{:05}\n", rows - i));
    }
    let path = file(&dir, "large.csv", text.as_bytes());
    let sqlite = !on_postgres();
    let before = if sqlite { Some(contact_indexes(&app.db_url).await) } else { None };
    let import = |json: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_rapport"));
        c.args(["import", "contacts", &path, "--match", "email"])
            .args(json.then_some("--json"))
            .env("RAPPORT_DATABASE_URL", &app.db_url)
            .env("RAPPORT_LOG", "warn")
            // As a million-row import would: 20,000 rows count as large here.
            .env("RAPPORT_IMPORT_DEFER_ROWS", "1000");
        c
    };
    let mut child =
        import(false).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let mut seen = 0;
    for _ in 0..600 {
        seen = app.ok("count_records", json!({"entity": "contact"})).await["count"].as_i64().unwrap();
        if seen >= 2_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if let Some((before, _)) = &before {
        let (during, left) = contact_indexes(&app.db_url).await;
        assert!(!during.contains(&"contacts_by_last_name".to_owned()), "set aside while the rows load: {during:?}");
        assert!(during.contains(&"contacts_org_live_email".to_owned()), "the match field keeps its index: {during:?}");
        // Each one set aside is recorded, with the value table's two value indexes.
        assert_eq!(left as usize, before.len() - during.len() + 2, "each one set aside is recorded");
    }
    // Reads stay right meanwhile, only without those indexes.
    let found = contact_by_email(&app, "q1@defer.io").await;
    assert_eq!(found["last_name"], format!("L{:05}", rows - 1));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seen >= 2_000 && seen < rows, "killed mid-way at {seen}");
    if let Some(before) = &before {
        assert!(contact_indexes(&app.db_url).await.1 > 0, "the killed import left indexes to build");
        // Any process that opens the database builds them back.
        assert!(rapport(&app.db_url, &["migrate"]).status.success());
        assert_eq!(&contact_indexes(&app.db_url).await, &(before.0.clone(), 0));
    }
    // Run again, large again: set aside once more, and built at the end.
    let report = ok_json(&import(true).output().unwrap());
    assert_eq!(report["state"], "done", "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    if let Some(before) = &before {
        assert_eq!(&contact_indexes(&app.db_url).await, &(before.0.clone(), 0));
        let url = app.db_url.clone();
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
        let verdict: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut c).await.unwrap();
        assert_eq!(verdict, "ok");
    }
    let count = app.ok("count_records", json!({"entity": "contact"})).await;
    assert_eq!(count["count"], rows, "none lost, none duplicated");
    let first = app
        .ok(
            "search_records",
            json!({"entity": "contact", "sort": [{"field": "last_name", "direction": "asc"}], "limit": 2}),
        )
        .await;
    let names: Vec<&str> =
        first["items"].as_array().unwrap().iter().map(|r| r["last_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["L00001", "L00002"], "{first}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_stream_with_filters_and_neutralise_formulas() {
    let app = spawn_app().await;
    app.create_contacts(json!([
        {"first_name": "=cmd|' /C calc'!A0", "last_name": "@SUM", "email": "f@x.io", "phone": "+49 30 1234", "tags": ["a", "b"]},
        {"first_name": "Plain", "email": "p@x.io", "title": "-minus"},
    ]))
    .await;
    let get = |path: String| {
        let app = &app;
        async move {
            let res = app
                .client
                .get(format!("{}/api/v1{path}", app.base))
                .header("x-api-key", &app.key)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            (res.headers()["content-type"].to_str().unwrap().to_owned(), res.text().await.unwrap())
        }
    };
    let (ct, csv) = get("/contacts/export".into()).await;
    assert_eq!(ct, "text/csv; charset=utf-8");
    assert!(csv.starts_with(
        "id,first_name,last_name,email,phone,title,company_id,owner_id,tags,last_activity_at,created_at,updated_at"
    ));
    assert!(csv.contains(",'=cmd|' /C calc'!A0,'@SUM,f@x.io,+49 30 1234,,"), "{csv}");
    assert!(csv.contains("'-minus"), "{csv}");
    assert!(csv.contains("\"a, b\""), "{csv}");
    let filter = urlencode(r#"[{"field":"email","op":"eq","value":"p@x.io"}]"#);
    let (ct, jsonl) = get(format!("/contacts/export?format=jsonl&filter={filter}")).await;
    assert!(ct.starts_with("application/jsonl"));
    let lines: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["title"], "-minus", "JSON lines keep values as they are");
    // A query the database cannot take is refused with an answer, not a broken stream.
    let res = app
        .client
        .get(format!("{}/api/v1/contacts/export?q=%00", app.base))
        .header("x-api-key", &app.key)
        .send()
        .await
        .unwrap();
    assert!(!res.status().is_server_error(), "{}", res.status());
    assert!(res.text().await.is_ok(), "the body arrives whole");
    // A key that may not read contacts exports none of them.
    let deals_only = app.key_with(None, &["deals:read"]).await;
    let res = app
        .client
        .get(format!("{}/api/v1/contacts/export", app.base))
        .header("x-api-key", &deals_only)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // The CLI writes one file per entity.
    let dir = tempfile::tempdir().unwrap();
    let out = rapport(&app.db_url, &["export", "--format", "jsonl", "--out", dir.path().to_str().unwrap(), "--json"]);
    let written = ok_json(&out);
    assert_eq!(written.as_array().unwrap().len(), rapport_tools::Entity::ALL.len(), "one file per entity");
    let text = std::fs::read_to_string(dir.path().join("contacts.jsonl")).unwrap();
    assert_eq!(text.lines().count(), 2);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_restores_and_serves() {
    if on_postgres() {
        return; // PostgreSQL is backed up with pg_dump (README).
    }
    let app = spawn_app().await;
    // Writes go on while the backup runs.
    let writer = {
        let base = app.base.clone();
        let key = app.key.clone();
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut acknowledged = Vec::new();
            for i in 0..400 {
                let res = client
                    .post(format!("{base}/api/v1/contacts"))
                    .header("x-api-key", &key)
                    .json(&json!({"first_name": format!("W{i}")}))
                    .send()
                    .await
                    .unwrap();
                if res.status() == StatusCode::CREATED {
                    let v: Value = res.json().await.unwrap();
                    acknowledged.push((std::time::Instant::now(), v["id"].as_str().unwrap().to_owned()));
                }
            }
            acknowledged
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("nightly.db");
    let began = std::time::Instant::now();
    let out = rapport(&app.db_url, &["backup", backup.to_str().unwrap(), "--json"]);
    let made = ok_json(&out);
    assert!(made["bytes"].as_u64().unwrap() > 0);
    let acknowledged = writer.await.unwrap();
    let before: Vec<&String> = acknowledged.iter().filter(|(at, _)| *at < began).map(|(_, id)| id).collect();
    assert!(!before.is_empty());
    // The copy passes its integrity check.
    let url = format!("sqlite://{}", backup.display());
    let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url).await.unwrap();
    let verdict: String = sqlx::query_scalar("PRAGMA integrity_check").fetch_one(&mut c).await.unwrap();
    assert_eq!(verdict, "ok");
    drop(c);
    // Restored into a new database and served, it holds every write acknowledged before
    // the backup began.
    let target = dir.path().join("restored.db");
    let target_url = format!("sqlite://{}", target.display());
    let out = rapport(&target_url, &["restore", backup.to_str().unwrap(), "--yes"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let restored = spawn_app_on(serve_args(), target_url, None).await;
    let refs: Vec<Value> = before.iter().map(|id| json!({"entity": "contact", "id": id})).collect();
    for chunk in refs.chunks(100) {
        let got = restored.ok("get_records", json!({"records": chunk})).await;
        assert_eq!(got["missing"], json!([]), "{got}");
    }
    // A backup refuses to overwrite, and a restore refuses what is not a Rapport database.
    let out = rapport(&app.db_url, &["backup", backup.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("exists already"));
    let junk = file(&dir, "junk.db", b"not a database at all");
    let out = rapport(&format!("sqlite://{}", dir.path().join("other.db").display()), &["restore", &junk, "--yes"]);
    assert!(!out.status.success());
}

/// Every text cell of every table that holds `needle` (any case), as `table.column`.
async fn tables_holding(app: &TestApp, needle: &str) -> Vec<String> {
    let pattern = format!("%{}%", needle.to_lowercase());
    let mut found = Vec::new();
    if app.db_url.starts_with("postgres") {
        let mut c = <sqlx::PgConnection as sqlx::Connection>::connect(&app.db_url).await.unwrap();
        let cols: Vec<(String, String)> = sqlx::query_as(
            "SELECT table_name::text, column_name::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND data_type IN ('text', 'character varying', 'json', 'jsonb')",
        )
        .fetch_all(&mut c)
        .await
        .unwrap();
        for (t, col) in cols {
            let sql = format!("SELECT COUNT(*) FROM {t} WHERE lower({col}::text) LIKE $1");
            let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(&pattern).fetch_one(&mut c).await.unwrap();
            if n > 0 {
                found.push(format!("{t}.{col}"));
            }
        }
    } else {
        let mut c = <sqlx::SqliteConnection as sqlx::Connection>::connect(&app.db_url).await.unwrap();
        let tables: Vec<String> =
            sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'").fetch_all(&mut c).await.unwrap();
        for t in tables {
            let cols: Vec<String> =
                sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT name FROM pragma_table_info('{t}')")))
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            for col in cols {
                let sql = format!("SELECT COUNT(*) FROM \"{t}\" WHERE lower(CAST(\"{col}\" AS TEXT)) LIKE ?1");
                let n: i64 =
                    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(&pattern).fetch_one(&mut c).await.unwrap();
                if n > 0 {
                    found.push(format!("{t}.{col}"));
                }
            }
        }
    }
    found
}

/// A webhook receiver that answers with what it got, as some do.
async fn echo_receiver() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let app = axum::Router::new().route("/hook", axum::routing::post(|body: String| async move { body }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_is_exported_then_erased_from_every_table() {
    let app = spawn_app().await;
    let email = "adelina.q@example.org";
    let phone = "+44 20 7946 0999";
    app.ok("create_webhook", json!({"url": echo_receiver().await, "events": ["*"]})).await;
    app.ok("create_custom_field", json!({"entity": "contact", "key": "hobby", "label": "Hobby", "type": "text"})).await;
    // Created with an idempotency key (its answer is stored), then changed (the log keeps both).
    let created = app
        .ok(
            "create_contacts",
            json!({"contacts": [{"first_name": "Adelina", "last_name": "Quixotica", "email": email, "phone": phone, "custom": {"hobby": "falconry"}}], "idempotency_key": "first-add"}),
        )
        .await;
    let id = created["items"][0]["id"].as_str().unwrap().to_owned();
    app.ok(
        "update_contacts",
        json!({"contacts": [{"id": id, "title": "Chief Falconer", "last_name": "Quixotica-Lind"}]}),
    )
    .await;
    let note = app
        .ok(
            "add_notes",
            json!({"notes": [{"body": "Call about the falcons", "record": {"entity": "contact", "id": id}}]}),
        )
        .await;
    app.ok(
        "create_tasks",
        json!({"tasks": [{"title": "Send Adelina the brochure", "record": {"entity": "contact", "id": id}}]}),
    )
    .await;
    let deal = app.ok("create_deals", json!({"deals": [{"name": "Falcon deal", "contact_ids": [id]}]})).await;
    let company = app.create_companies(json!([{"name": "Aviary Ltd"}])).await;
    // An activity about her (erased with her), one about the deal that she and Bob took
    // part in (kept, without her).
    let bob = app.create_contacts(json!([{"first_name": "Bob"}])).await[0]["id"].clone();
    let deal_id = deal["items"][0]["id"].clone();
    app.ok("log_activities", json!({"activities": [
        {"kind": "call", "subject": "Falconry call", "occurred_at": "2026-03-01T10:00:00Z", "record": {"entity": "contact", "id": id}, "participant_ids": [bob]},
        {"kind": "meeting", "subject": "Deal review", "occurred_at": "2026-02-01T10:00:00Z", "record": {"entity": "deal", "id": deal_id}, "participant_ids": [id, bob]}]}))
        .await;
    // Free text elsewhere that names her stays as it is (SPEC 13).
    app.ok("add_notes", json!({"notes": [{"body": "Met Adelina at the fair", "record": {"entity": "company", "id": company[0]["id"]}}]})).await;
    // A failed import row holding her email.
    let (status, started) = import_over_rest(
        &app,
        &app.key,
        "entity=contacts",
        "text/csv",
        format!("First Name,Email,Phone\nAdelina,{email}\n").into_bytes(),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    finished(&app, started["id"].as_str().unwrap()).await;
    // The deliveries went out and the receiver's answers (echoing her data) were recorded.
    assert!(
        crate::helpers::holds_within(Duration::from_secs(20), || async {
            tables_holding(&app, email).await.iter().any(|t| t == "webhook_attempts.response")
        })
        .await,
        "the echo was recorded: {:?}",
        tables_holding(&app, email).await
    );

    // Export: a member may not; an owner gets everything.
    let member = app.key_with(Some("member"), &[]).await;
    let (status, _) = app.api(&member, Method::GET, &format!("/privacy/export?email={email}"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, data) =
        app.api(&app.key, Method::GET, &format!("/privacy/export?email={}", email.to_uppercase()), None).await;
    assert_eq!(status, StatusCode::OK, "{data}");
    assert_eq!(data["contacts"][0]["phone"], phone);
    assert_eq!(data["notes"][0]["id"], note["items"][0]["id"]);
    assert_eq!(data["tasks"].as_array().unwrap().len(), 1);
    let subjects: Vec<&str> =
        data["activities"].as_array().unwrap().iter().map(|a| a["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects, ["Falconry call", "Deal review"], "about her, then with her: {data}");
    assert!(data["timelines"][&id].as_array().unwrap().len() >= 2, "{data}");

    // Erasure: owners only.
    let admin = app.key_with(Some("admin"), &[]).await;
    let (status, v) = app.api(&admin, Method::POST, "/privacy/erase", Some(json!({"email": email}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, done) = app.api(&app.key, Method::POST, "/privacy/erase", Some(json!({"email": email}))).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert_eq!(done["erased"]["contacts"], 1);
    assert_eq!(done["erased"]["activities"], 1);
    for needle in [email, phone, "falconry", "Quixotica"] {
        let left = tables_holding(&app, needle).await;
        assert!(left.is_empty(), "{needle} is still in {left:?}");
    }
    // No structured field holds her name; the company's free-text note still does.
    let left = tables_holding(&app, "\"Adelina\"").await;
    assert!(left.is_empty(), "{left:?}");
    assert!(tables_holding(&app, "Met Adelina at the fair").await.iter().any(|t| t == "notes.body"));
    // Gone for good, trash included; the deal no longer lists her.
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": id}]})).await;
    assert_eq!(got["items"], json!([]));
    let d = app.ok("get_records", json!({"records": [{"entity": "deal", "id": deal["items"][0]["id"]}]})).await;
    assert!(d["items"][0]["contact_ids"].as_array().is_none_or(|a| a.is_empty()), "{d}");
    // The deal's meeting stays with Bob alone; Bob's last activity is no longer her call.
    let kept = app.search_ids(json!({"entity": "activity"})).await;
    assert_eq!(kept.len(), 1);
    let meeting = app.ok("get_records", json!({"records": [{"entity": "activity", "id": kept[0]}]})).await;
    assert_eq!(meeting["items"][0]["participant_ids"], json!([bob]), "{meeting}");
    let b = app.ok("get_records", json!({"records": [{"entity": "contact", "id": bob}]})).await;
    assert_eq!(b["items"][0]["last_activity_at"], "2026-02-01T10:00:00.000Z", "{b}");
    // The change log keeps that something happened, as "[erased]".
    let (_, log) = app.api(&app.key, Method::GET, &format!("/changes?record_id={id}"), None).await;
    let text = log.to_string();
    assert!(text.contains("[erased]"), "{log}");
    // The audit log says an erasure happened, not what was erased.
    let (_, audit) = app.api(&app.key, Method::GET, "/audit", None).await;
    let entry = audit["items"].as_array().unwrap().iter().find(|e| e["action"] == "person.erased").cloned();
    assert!(entry.is_some(), "{audit}");
    assert!(!entry.unwrap().to_string().contains("adelina"));
    // A second erasure finds nothing.
    let (status, _) = app.api(&app.key, Method::POST, "/privacy/erase", Some(json!({"email": email}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

/// Every record of an organization in the answers' form, by entity, with user ids mapped
/// through `users` (ids of one database to the other's).
async fn everything(app: &TestApp, users: &[(String, String)]) -> Vec<(String, Vec<Value>)> {
    let mut out = Vec::new();
    for entity in rapport_tools::Entity::ALL.iter().map(|e| e.plural()) {
        let res = app
            .client
            .get(format!("{}/api/v1/{entity}/export?format=jsonl", app.base))
            .header("x-api-key", &app.key)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let mut text = res.text().await.unwrap();
        for (from, to) in users {
            text = text.replace(from.as_str(), to.as_str());
        }
        let mut records: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        records.sort_by_key(|r| r["id"].as_str().unwrap().to_owned());
        out.push((entity.to_owned(), records));
    }
    out
}

async fn user_id(app: &TestApp, email: &str) -> String {
    app.store.user_by_email(&app.default_org.id, email).await.unwrap().expect("user").id.as_str().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_all_then_import_all_gives_back_the_same_organization() {
    let a = spawn_app().await;
    a.person("sam@example.com", "member").await;
    a.person("lee@example.com", "member").await;
    let (sam, lee) = (user_id(&a, "sam@example.com").await, user_id(&a, "lee@example.com").await);
    a.ok(
        "create_custom_field",
        json!({"entity": "contact", "key": "source", "label": "Source", "type": "select", "options": ["web", "fair"]}),
    )
    .await;
    a.ok("create_custom_field", json!({"entity": "deal", "key": "score", "label": "Score", "type": "number"})).await;
    a.ok("create_pipeline", json!({"name": "partners", "stages": [{"name": "talk"}, {"name": "signed", "kind": "won"}, {"name": "gone", "kind": "lost"}]})).await;
    let company = a
        .create_companies(json!([{"name": "Acme", "domain": "acme.io", "tags": ["key"], "owner_id": sam}]))
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let contacts = a
        .create_contacts(json!([
            {"first_name": "Ada", "email": "ada@acme.io", "company_id": company, "owner_id": lee, "custom": {"source": "fair"}, "tags": ["vip"]},
            {"first_name": "Bob", "email": "bob@acme.io", "phone": "+49 30 1234"},
            {"first_name": "Gone", "email": "gone@acme.io"},
        ]))
        .await;
    let ids: Vec<String> = contacts.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
    a.ok("delete_records", json!({"entity": "contact", "ids": [ids[2]]})).await;
    let deal = a.ok("create_deals", json!({"deals": [{"name": "Acme pilot", "pipeline": "partners", "stage": "signed", "value": "1200.50", "currency": "EUR", "company_id": company, "contact_ids": [ids[0], ids[1]], "custom": {"score": 7}}]})).await["items"][0]["id"].as_str().unwrap().to_owned();
    a.ok("create_tasks", json!({"tasks": [{"title": "Send contract", "record": {"entity": "deal", "id": deal}, "assignee_id": sam, "due_at": "2026-01-05T09:00:00Z"}]})).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let task = a.search_ids(json!({"entity": "task"})).await[0].clone();
    a.ok("update_tasks", json!({"tasks": [{"id": task, "status": "done"}]})).await;
    a.ok("add_notes", json!({"notes": [{"body": "Met at the fair", "record": {"entity": "contact", "id": ids[0]}}]}))
        .await;
    a.ok("update_contacts", json!({"contacts": [{"id": ids[1], "title": "Buyer"}]})).await;
    // An activity about the deal with both contacts, a back-dated one about Ada: their
    // participants and every last_activity_at must come back as they were.
    a.ok("log_activities", json!({"activities": [
        {"kind": "meeting", "subject": "Kick-off", "record": {"entity": "deal", "id": deal}, "participant_ids": [ids[0], ids[1]], "owner_id": sam},
        {"kind": "call", "outcome": "voicemail", "occurred_at": "2026-02-01T10:00:00Z", "record": {"entity": "contact", "id": ids[0]}}]}))
        .await;

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("archive");
    let summary = ok_json(&rapport(&a.db_url, &["export", "--all", "--out", archive.to_str().unwrap(), "--json"]));
    assert_eq!(summary["custom_fields"], 2);
    assert!(archive.join("rapport.json").is_file());

    // Another, empty database where sam exists and lee does not.
    let b = spawn_app().await;
    b.person("sam@example.com", "member").await;
    let before = everything(&b, &[]).await;
    assert!(before.iter().all(|(_, r)| r.is_empty()));
    let report = ok_json(&rapport(&b.db_url, &["import", "--all", archive.to_str().unwrap(), "--json"]));
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["custom_fields_created"], 2, "{report}");
    assert_eq!(report["pipelines_created"], 1, "{report}");
    assert_eq!(report["users_to_owner"], 1, "lee is not here: {report}");

    let (a_owner, b_owner) = (user_id(&a, "owner@localhost").await, user_id(&b, "owner@localhost").await);
    let b_sam = user_id(&b, "sam@example.com").await;
    let mapped = [(a_owner, b_owner.clone()), (sam, b_sam), (lee, b_owner)];
    let (was, now) = (everything(&a, &mapped).await, everything(&b, &[]).await);
    for ((entity, a_records), (_, b_records)) in was.iter().zip(&now) {
        assert_eq!(a_records.len(), b_records.len(), "{entity}");
        for (x, y) in a_records.iter().zip(b_records) {
            for (field, value) in x.as_object().unwrap() {
                assert_eq!(&y[field], value, "{entity} {} field {field}", x["id"]);
            }
        }
    }
    let of = |all: &[(String, Vec<Value>)], e: &str| all.iter().find(|(n, _)| n == e).unwrap().1.clone();
    assert_eq!(of(&was, "contacts").len(), 2, "the trashed contact is not in the archive");
    assert!(of(&now, "contacts").iter().all(|c| c["last_activity_at"].is_string()), "{now:?}");
    assert_eq!(of(&now, "activities")[0]["participant_ids"].as_array().unwrap().len(), 2);
    let deal_b = &of(&now, "deals")[0];
    assert_eq!(deal_b["status"], "won");
    assert_eq!(deal_b["contact_ids"].as_array().unwrap().len(), 2);
    let task_b = &of(&now, "tasks")[0];
    assert_eq!(task_b["status"], "done");
    assert_ne!(task_b["created_at"], task_b["updated_at"]);
    for tool in ["describe_entity"] {
        let (x, y) = (a.ok(tool, json!({"entity": "deal"})).await, b.ok(tool, json!({"entity": "deal"})).await);
        assert_eq!(x["pipelines"], y["pipelines"]);
        assert_eq!(x["custom_fields"], y["custom_fields"]);
    }
    // Links answer from both sides: the company lists its contact.
    let acme = b.ok("get_records", json!({"records": [{"entity": "company", "id": company}]})).await;
    assert_eq!(acme["items"][0]["contacts"][0]["id"], json!(ids[0]), "{acme}");

    // Again into the same database: every id is taken, so nothing is written.
    let out = rapport(&b.db_url, &["import", "--all", archive.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already in this database") && err.contains("Nothing was written"), "{err}");
    assert_eq!(everything(&b, &[]).await, now);

    // A folder that is not a whole archive is refused before anything is written.
    let c = spawn_app().await;
    std::fs::OpenOptions::new()
        .append(true)
        .open(archive.join("notes.jsonl"))
        .unwrap()
        .write_all(b"{not json\n")
        .unwrap();
    let out = rapport(&c.db_url, &["import", "--all", archive.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("notes.jsonl line 2"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(archive.join("rapport.json")).unwrap();
    let out = rapport(&c.db_url, &["import", "--all", archive.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("export --all"));
    assert!(everything(&c, &[]).await.iter().all(|(_, r)| r.is_empty()));
    assert!(c.ok("describe_entity", json!({"entity": "deal"})).await["custom_fields"].as_array().unwrap().is_empty());
}

/// What a server answers equality conditions from (on SQLite, bitmaps it holds in memory)
/// follows writes made by another process: counts, pages and groups asked before a CLI
/// import, and again after it, see it, as do a trash and a restore.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_and_groups_follow_an_import_by_another_process() {
    let app = spawn_app().await;
    let people: Vec<Value> = (0..2100)
        .map(|i| json!({"first_name": format!("P{i}"), "title": if i % 3 == 0 { "CTO" } else { "CEO" }, "tags": ["lead"]}))
        .collect();
    for chunk in people.chunks(100) {
        app.create_contacts(json!(chunk)).await;
    }
    let cto_lead =
        json!([{"field": "title", "op": "eq", "value": "CTO"}, {"field": "tags", "op": "has_any", "value": ["lead"]}]);
    let count = |filters: Value| {
        let app = &app;
        async move { app.ok("count_records", json!({"entity": "contact", "filters": filters})).await["count"].clone() }
    };
    let groups = || async {
        let lead = json!([{"field": "tags", "op": "has_any", "value": ["lead"]}]);
        app.ok("count_records", json!({"entity": "contact", "filters": lead, "group_by": "title"})).await["groups"]
            .clone()
    };
    assert_eq!(count(cto_lead.clone()).await, 700);
    assert_eq!(groups().await, json!([{"value": "CEO", "count": 1400}, {"value": "CTO", "count": 700}]));

    let dir = tempfile::tempdir().unwrap();
    let path = file(
        &dir,
        "more.csv",
        b"Email,First Name,Title,Tags\nnew1@x.io,New1,CTO,lead\nnew2@x.io,New2,CTO,\"lead, vip\"\nnew3@x.io,New3,Chair,lead\n",
    );
    let out = ok_json(&rapport(&app.db_url, &["import", "contacts", &path, "--json"]));
    assert_eq!(out["created"], 3, "{out}");
    assert_eq!(count(cto_lead.clone()).await, 702, "the other process's contacts are counted");
    assert_eq!(
        groups().await,
        json!([{"value": "CEO", "count": 1400}, {"value": "CTO", "count": 702}, {"value": "Chair", "count": 1}])
    );
    let page = app.ok("search_records", json!({"entity": "contact", "filters": cto_lead, "limit": 2})).await;
    let names: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|c| c["first_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["New2", "New1"], "the newest page holds them");
    let vip =
        json!([{"field": "title", "op": "eq", "value": "CTO"}, {"field": "tags", "op": "has_any", "value": ["vip"]}]);
    assert_eq!(count(vip.clone()).await, 1);

    // Trashed and restored from the server: gone from the counts, then back.
    let new2 = contact_by_email(&app, "new2@x.io").await;
    let id = new2["id"].as_str().unwrap();
    app.ok("delete_records", json!({"entity": "contact", "ids": [id]})).await;
    assert_eq!((count(cto_lead.clone()).await, count(vip.clone()).await), (json!(701), json!(0)));
    app.ok("restore_records", json!({"entity": "contact", "ids": [id]})).await;
    assert_eq!((count(cto_lead).await, count(vip).await), (json!(702), json!(1)));
}
