//! Issue 26: plain `tools/call` and `tools/list` POSTs are answered by Rapport's lean path
//! (src/http/mcp.rs) rather than rmcp's per-request service, and the answer is byte for
//! byte the one rmcp gives. An `Accept` with a parameter sends the same request through rmcp;
//! `/metrics` counts which path answered, so a test cannot pass with both on one path.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// How each path is asked for: rmcp alone parses `Accept` parameters.
const DIRECT: &str = "application/json, text/event-stream";
const RMCP: &str = "application/json, text/event-stream;q=0.9";

#[derive(Debug, PartialEq)]
struct Answer {
    status: StatusCode,
    content_type: Option<String>,
    body: Vec<u8>,
}

async fn post(app: &TestApp, key: &str, query: &str, accept: &str, extra: &[(&str, &str)], body: &Value) -> Answer {
    let mut req = app
        .client
        .post(format!("{}{query}", app.mcp_url()))
        .header("x-api-key", key)
        .header("accept", accept)
        .header("content-type", "application/json");
    if !extra.iter().any(|(k, _)| *k == "mcp-protocol-version") {
        req = req.header("mcp-protocol-version", "2025-06-18");
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res = req.body(serde_json::to_vec(body).unwrap()).send().await.expect("request sent");
    let status = res.status();
    let content_type = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    Answer { status, content_type, body: res.bytes().await.unwrap().to_vec() }
}

/// `(rmcp, direct)` from `/metrics`.
async fn posts(app: &TestApp) -> (u64, u64) {
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    let count = |path: &str| {
        let line = format!("rapport_mcp_posts_total{{path=\"{path}\"}} ");
        text.lines().find_map(|l| l.strip_prefix(&line)).expect("the counter").parse().unwrap()
    };
    (count("rmcp"), count("direct"))
}

/// Sends `body` through both paths; asserts that each path answered once and that the two
/// answers are the same bytes. Returns the answer, parsed.
async fn same_both_ways(app: &TestApp, key: &str, query: &str, body: Value) -> Value {
    let (rmcp, direct) = posts(app).await;
    let lean = post(app, key, query, DIRECT, &[], &body).await;
    let through_rmcp = post(app, key, query, RMCP, &[], &body).await;
    assert_eq!(posts(app).await, (rmcp + 1, direct + 1), "one answer from each path: {body}");
    assert_eq!(
        String::from_utf8_lossy(&lean.body),
        String::from_utf8_lossy(&through_rmcp.body),
        "the same bytes for {query} {body}"
    );
    assert_eq!(lean, through_rmcp, "{body}");
    serde_json::from_slice(&lean.body).unwrap_or(Value::Null)
}

fn call(id: Value, tool: &str, args: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": "tools/call", "params": {"name": tool, "arguments": args}})
}

#[tokio::test]
async fn the_lean_path_answers_what_rmcp_answers_over_the_whole_catalog() {
    let app = spawn_app().await;
    let company = app.create_companies(json!([{"name": "Acme", "domain": "acme.example"}])).await;
    let company_id = company[0]["id"].as_str().unwrap().to_owned();
    let contacts = app
        .create_contacts(json!([
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@acme.example", "company_id": company_id,
             "tags": ["vip"]},
            {"first_name": "Alan", "last_name": "Turing", "email": "alan@acme.example",
             "title": "R&D \\ \"Ops\" <lead>", "custom": {}},
            {"first_name": "Zoë", "last_name": "Ünal 🚀", "email": "zoe@acme.example", "title": "tab\there"}
        ]))
        .await;
    let ada = contacts[0]["id"].as_str().unwrap().to_owned();
    let deal = app
        .ok(
            "create_deals",
            json!({"deals": [{"name": "Renewal", "company_id": company_id,
        "contact_ids": [ada], "value": "1200.00", "currency": "EUR"}]}),
        )
        .await;
    let deal_id = deal["items"][0]["id"].as_str().unwrap().to_owned();
    app.ok("add_notes", json!({"notes": [{"body": "Met at the fair", "record": {"entity": "contact", "id": ada}}]}))
        .await;
    app.ok(
        "log_activities",
        json!({"activities": [{"kind": "call", "outcome": "connected",
        "record": {"entity": "deal", "id": deal_id}, "participant_ids": [ada]}]}),
    )
    .await;
    let viewer = app.key_with(Some("viewer"), &[]).await;

    // The lists, in both profiles, narrowed, for each role, with a string id.
    for (key, query) in [(&app.key, ""), (&app.key, "?profile=full"), (&app.key, "?toolsets=deals"), (&viewer, "")] {
        let list =
            same_both_ways(&app, key, query, json!({"jsonrpc": "2.0", "id": "list", "method": "tools/list"})).await;
        assert!(list["result"]["tools"].as_array().is_some_and(|t| !t.is_empty()), "{list}");
    }
    let paged = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {"cursor": "x"}});
    same_both_ways(&app, &app.key, "", paged).await;

    // Every tool of each profile, called with no arguments: an answer or a clear refusal.
    let mut refused = 0;
    for (query, profile) in [("", rapport_tools::Profile::Lean), ("?profile=full", rapport_tools::Profile::Full)] {
        for def in rapport_tools::catalog().iter().filter(|d| d.listed_in(profile)) {
            let v = same_both_ways(&app, &app.key, query, call(json!(1), def.name, json!({}))).await;
            refused += usize::from(v["result"]["isError"] == json!(true));
        }
    }
    assert!(refused > 10, "most tools want arguments, and say so");

    // Reads that find something, in both profiles.
    let record = |entity: &str, id: &str| json!({"entity": entity, "id": id});
    let reads = [
        ("get_workspace", json!({})),
        ("describe_entity", json!({"entity": "deal"})),
        ("get_records", json!({"records": [record("contact", &ada), record("company", &company_id)]})),
        ("get_records", json!({"records": [record("deal", &deal_id)], "fields": ["name", "value"]})),
        ("search_records", json!({"entity": "contact", "query": "ada"})),
        ("search_records", json!({"entity": "contact", "limit": 10})),
        (
            "search_records",
            json!({"entity": "contact", "filters": [{"field": "tags", "op": "has_any", "value": ["vip"]}],
                   "sort": [{"field": "last_name", "direction": "desc"}], "limit": 1}),
        ),
        ("count_records", json!({"entity": "contact", "group_by": "company_id"})),
        ("count_records", json!({"entity": "deal", "group_by": "stage"})),
        ("search_all", json!({"query": "acme"})),
        ("get_timeline", json!({"entity": "contact", "id": ada})),
        ("find_duplicates", json!({"entity": "contact"})),
    ];
    for query in ["", "?profile=full"] {
        for (id, (tool, args)) in reads.iter().enumerate() {
            // Numbers and strings (with a quote to escape) as ids.
            let id = if query.is_empty() { json!(id) } else { json!(format!("read \"{id}\"")) };
            let v = same_both_ways(&app, &app.key, query, call(id, tool, args.clone())).await;
            assert!(v["result"]["isError"] != json!(true), "{tool} {args}: {v}");
        }
    }

    // Refusals: a write by a viewer, a stale `if_updated_at`, an unknown tool, a bad profile.
    let update = json!({"contacts": [{"id": ada, "title": "CTO", "if_updated_at": "2020-01-01T00:00:00Z"}]});
    let v = same_both_ways(&app, &viewer, "?profile=full", call(json!(3), "update_contacts", update.clone())).await;
    assert_eq!(v["result"]["isError"], json!(true), "{v}");
    let v = same_both_ways(&app, &app.key, "?profile=full", call(json!(4), "update_contacts", update)).await;
    assert_eq!(v["result"]["isError"], json!(true), "{v}");
    let v = same_both_ways(&app, &app.key, "", call(json!(5), "no_such_tool", json!({}))).await;
    assert!(v["error"]["message"].as_str().unwrap().contains("unknown tool"), "{v}");
    let v = same_both_ways(&app, &app.key, "?profile=huge", call(json!(6), "get_workspace", json!({}))).await;
    assert!(v["error"]["message"].as_str().unwrap().contains("unknown profile"), "{v}");

    // Nothing was written by the refused update, on either path.
    let v = app.ok("get_records", json!({"records": [record("contact", &ada)]})).await;
    assert_eq!(v["items"][0]["title"], Value::Null);
}

#[tokio::test]
async fn writes_on_the_lean_path_behave_as_before() {
    let app = spawn_app().await;
    let (rmcp, direct) = posts(&app).await;
    let create = call(
        json!(1),
        "create_contacts",
        json!({"contacts": [{"email": "grace@navy.example"}], "idempotency_key": "grace-1"}),
    );
    let lean = post(&app, &app.key, "?profile=full", DIRECT, &[], &create).await;
    assert_eq!(lean.status, StatusCode::OK);
    let v: Value = serde_json::from_slice(&lean.body).unwrap();
    let id = v["result"]["structuredContent"]["items"][0]["id"].as_str().expect("created").to_owned();
    // The same call through rmcp is the idempotent replay of the first, byte for byte.
    let again = post(&app, &app.key, "?profile=full", RMCP, &[], &create).await;
    assert_eq!(String::from_utf8_lossy(&again.body), String::from_utf8_lossy(&lean.body));
    assert_eq!(posts(&app).await, (rmcp + 1, direct + 1));
    let found = app.ok("search_records", json!({"entity": "contact", "query": "grace@navy"})).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1, "one contact: {found}");
    // The change log names the key, as it did through rmcp.
    let changes = app.ok("get_timeline", json!({"entity": "contact", "id": id})).await;
    assert!(changes.to_string().contains("grace@navy.example"), "{changes}");
}

#[tokio::test]
async fn what_the_lean_path_does_not_take_goes_to_rmcp_unchanged() {
    let app = spawn_app().await;
    let list = json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"});
    let (rmcp, direct) = posts(&app).await;
    // A page of another origin: refused exactly as before, in the API's shape.
    let refused = post(&app, &app.key, "", DIRECT, &[("origin", "https://evil.example")], &list).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(String::from_utf8_lossy(&refused.body).contains("origin_not_allowed"));
    // The 2026-07-28 revision, an initialize, a notification and an Accept without an event
    // stream: rmcp's.
    let modern = post(&app, &app.key, "", DIRECT, &[("mcp-protocol-version", "2026-07-28")], &list).await;
    assert_eq!(modern.status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(&modern.body));
    let init = json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": "2025-06-18",
        "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}});
    assert_eq!(post(&app, &app.key, "", DIRECT, &[], &init).await.status, StatusCode::OK);
    let note = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    assert_eq!(post(&app, &app.key, "", DIRECT, &[], &note).await.status, StatusCode::ACCEPTED);
    let json_only = post(&app, &app.key, "", "application/json", &[], &list).await;
    assert_eq!(json_only.status, StatusCode::NOT_ACCEPTABLE);
    assert_eq!(posts(&app).await, (rmcp + 5, direct), "all five through rmcp");
}
