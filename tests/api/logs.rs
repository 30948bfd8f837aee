//! No key ever reaches a log line: the real binary at the most verbose level, a key sent
//! every way, then every byte it logged is searched.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::helpers::fresh_database;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_logs_never_hold_a_key() {
    let (db, _dir) = fresh_database().await;
    let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["keys", "create", "--name", "logged", "--json"])
        .env("RAPPORT_DATABASE_URL", &db)
        .output()
        .unwrap();
    let created: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let key = created["key"].as_str().unwrap().to_owned();
    let secret_part = key[12..].to_owned();

    for format in ["pretty", "json"] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rapport"))
            .arg("serve")
            .env("RAPPORT_DATABASE_URL", &db)
            .env("RAPPORT_ADDR", "127.0.0.1:0")
            .env("RAPPORT_LOG", "trace")
            .env("RAPPORT_LOG_FORMAT", format)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Read the log as it comes: at trace level it outgrows a pipe's buffer, and a
        // server blocked on a full pipe answers nothing.
        let mut stderr = child.stderr.take().unwrap();
        let log_reader = std::thread::spawn(move || {
            let mut logged = String::new();
            let _ = stderr.read_to_string(&mut logged);
            logged
        });
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !line.contains("listening on") {
            line.clear();
            stdout.read_line(&mut line).unwrap();
            assert!(Instant::now() < deadline, "server did not start");
        }
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        let url = format!("{base}/api/v1/mcp");
        let client = reqwest::Client::new();
        let body = serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "get_workspace", "arguments": {}}});
        let accept = "application/json, text/event-stream";
        let sends = [
            client.post(format!("{url}?api_key={key}&toolsets=contacts")).header("accept", accept),
            client.post(&url).header("accept", accept).header("x-api-key", &key),
            client.post(&url).header("accept", accept).header("authorization", format!("Bearer {key}")),
            client.post(&url).header("accept", accept).header("authorization", format!("ApiKey {key}")),
            // Refusals log too: a malformed variant and a conflicting pair.
            client.post(&url).header("accept", accept).header("x-api-key", format!("{key}x")),
            client.post(format!("{url}?api_key={key}")).header("accept", accept).header("x-api-key", "rpk_other"),
        ];
        let mut statuses = Vec::new();
        for req in sends {
            statuses.push(req.json(&body).send().await.unwrap().status().as_u16());
        }
        assert_eq!(&statuses[..4], &[200, 200, 200, 200], "{format}: {statuses:?}");
        child.kill().unwrap();
        child.wait().unwrap();
        let logged = log_reader.join().unwrap();
        assert!(logged.contains("/api/v1/mcp"), "{format}: requests were logged");
        assert!(logged.contains("REDACTED"), "{format}: the query is logged redacted");
        assert!(!logged.contains(&secret_part), "{format}: a key leaked into the logs");
    }
}
