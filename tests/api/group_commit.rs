//! Group commit (issue 26): on SQLite, writes that arrive together share one commit, each in
//! its own savepoint. Seen from outside: concurrent writers are each answered once their
//! write is durable; one failing write fails alone; idempotency keys, `if_updated_at` and
//! uniqueness inside a group behave as they do alone; a server killed under that load keeps
//! every write it acknowledged. Run on PostgreSQL too, where each write commits alone.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::helpers::{TestApp, on_postgres, spawn_app, start_other_process};

/// `(commits, writes they held)` from `/metrics` (SQLite).
async fn commits(app: &TestApp) -> (u64, u64) {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let count = |name: &str| -> u64 {
        let line = format!("{name} ");
        text.lines().find_map(|l| l.strip_prefix(&line)).expect("the counter").parse().unwrap()
    };
    (count("rapport_sqlite_commits_total"), count("rapport_sqlite_grouped_writes_total"))
}

async fn all<F: std::future::Future<Output = Result<Value, String>>>(calls: Vec<F>) -> Vec<Result<Value, String>> {
    futures::future::join_all(calls).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_commits_and_a_failing_one_fails_alone() {
    let app = spawn_app().await;
    let before = if on_postgres() { None } else { Some(commits(&app).await) };
    // 48 writers at once: 40 good companies, 8 that all claim one domain (unique), and
    // 8 contacts naming a company that does not exist.
    let mut calls = Vec::new();
    for i in 0..40 {
        calls.push(app.call(
            "create_companies",
            json!({"companies": [{"name": format!("Good {i}"), "domain": format!("good{i}.io")}]}),
        ));
    }
    for i in 0..8 {
        calls.push(
            app.call("create_companies", json!({"companies": [{"name": format!("Dup {i}"), "domain": "dup.io"}]})),
        );
    }
    for i in 0..8 {
        calls.push(app.call(
            "create_contacts",
            json!({"contacts": [{"first_name": format!("Orphan {i}"), "company_id": "01a20000-0000-7000-8000-000000000000"}]}),
        ));
    }
    let answers = all(calls).await;
    assert!(answers[..40].iter().all(|a| a.is_ok()), "{answers:?}");
    let dups: Vec<&Result<Value, String>> = answers[40..48].iter().collect();
    assert_eq!(dups.iter().filter(|a| a.is_ok()).count(), 1, "one takes the domain: {dups:?}");
    assert!(dups.iter().filter_map(|a| a.as_ref().err()).all(|e| e.contains("domain already exists")), "{dups:?}");
    assert!(answers[48..].iter().all(|a| a.as_ref().is_err_and(|e| e.contains("company"))), "{answers:?}");
    // Every answered write is there, and nothing else.
    let companies = app.ok("count_records", json!({"entity": "company"})).await;
    assert_eq!(companies["count"], 41);
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 0);
    let (_, log) = app.api(&app.key, reqwest::Method::GET, "/changes?limit=100", None).await;
    assert_eq!(log["items"].as_array().unwrap().len(), 41, "one change-log entry per stored company: {log}");
    if let Some((c0, w0)) = before {
        let (c1, w1) = commits(&app).await;
        // 41 good writes, plus the empty commits of groups that held only failures.
        assert!(w1 - w0 >= 41, "{w0} → {w1}");
        assert!(
            c1 - c0 < w1 - w0,
            "writes arriving together share commits: {} commits for {} writes",
            c1 - c0,
            w1 - w0
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_and_if_updated_at_inside_a_group_behave_as_alone() {
    let app = spawn_app().await;
    // Sixteen retries of one create at once: one contact, every answer its id or "running".
    let same = json!({"contacts": [{"first_name": "Once"}], "idempotency_key": "retry-1"});
    let answers = all((0..16).map(|_| app.call("create_contacts", same.clone())).collect()).await;
    let ids: std::collections::HashSet<String> = answers
        .iter()
        .filter_map(|a| a.as_ref().ok())
        .map(|v| v["items"][0]["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    for a in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert!(a.contains("idempotency"), "{a}");
    }
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 1);
    // Sixteen updates that all read the record at the same time: one wins, the others
    // are told it changed, and it holds exactly the winner's title.
    let id = ids.into_iter().next().unwrap();
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": id}]})).await;
    let read_at = got["items"][0]["updated_at"].clone();
    let calls = (0..16)
        .map(|i| {
            app.call(
                "update_contacts",
                json!({"contacts": [{"id": id, "title": format!("T{i}"), "if_updated_at": read_at}]}),
            )
        })
        .collect();
    let answers = all(calls).await;
    let won: Vec<usize> = answers.iter().enumerate().filter(|(_, a)| a.is_ok()).map(|(i, _)| i).collect();
    assert_eq!(won.len(), 1, "{answers:?}");
    for a in answers.iter().filter_map(|a| a.as_ref().err()) {
        assert!(a.contains("changed since you read it"), "{a}");
    }
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": id}]})).await;
    assert_eq!(got["items"][0]["title"], format!("T{}", won[0]));
}

/// A server killed with SIGKILL while sixteen writers keep it busy: every write it answered
/// is in the database afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_server_killed_under_concurrent_writes_keeps_every_write_it_acknowledged() {
    let app = spawn_app().await;
    let other = start_other_process(&app.db_url, &[("RAPPORT_RATE_LIMIT", "0")]);
    let stop = Instant::now() + Duration::from_millis(1500);
    let writers: Vec<_> = (0..16)
        .map(|w| {
            let (client, url, key) =
                (reqwest::Client::new(), format!("{}/api/v1/contacts", other.base), app.key.clone());
            tokio::spawn(async move {
                let mut acknowledged = Vec::new();
                for i in 0.. {
                    let body = json!({"first_name": format!("W{w}-{i}")});
                    let sent = client.post(&url).header("x-api-key", &key).json(&body).send().await;
                    // An answer in full, with the record's id, is an acknowledgement; the kill
                    // cuts the others off.
                    let Ok(res) = sent else { break };
                    let Ok(v) = res.json::<Value>().await else { break };
                    acknowledged.push(v["id"].as_str().expect("a created contact").to_owned());
                    if Instant::now() > stop + Duration::from_secs(5) {
                        break;
                    }
                }
                acknowledged
            })
        })
        .collect();
    tokio::time::sleep_until(stop.into()).await;
    drop(other); // SIGKILL, with writes in flight.
    let mut acknowledged = Vec::new();
    for w in writers {
        acknowledged.extend(w.await.unwrap());
    }
    assert!(acknowledged.len() > 50, "the load ran: {} writes", acknowledged.len());
    for chunk in acknowledged.chunks(100) {
        let records: Vec<Value> = chunk.iter().map(|id| json!({"entity": "contact", "id": id})).collect();
        let got = app.ok("get_records", json!({"records": records})).await;
        assert_eq!(got["items"].as_array().unwrap().len(), chunk.len(), "every acknowledged write is there: {got}");
    }
}
