//! Oversight of agents (SPEC 12): how every change came. Attribution is written beside the
//! actor in every change and audit entry; the change log filters by it; the Activity page
//! shows the changes of one call together.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A `tools/call` as a client with this `User-Agent` (and optional `_meta` and headers)
/// sends it.
async fn call_as_client(
    app: &TestApp,
    ua: &str,
    meta: Option<Value>,
    extra: &[(&str, &str)],
    tool: &str,
    args: Value,
) -> Value {
    let mut params = json!({ "name": tool, "arguments": args });
    if let Some(m) = meta {
        params["_meta"] = m;
    }
    let mut req = app
        .client
        .post(app.mcp_url())
        .header("x-api-key", &app.key)
        .header("accept", "application/json, text/event-stream")
        .header("user-agent", ua);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let res =
        req.json(&json!({ "jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params })).send().await.unwrap();
    let status = res.status();
    let v: Value = res.json().await.unwrap_or(Value::Null);
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(v["result"]["isError"] != json!(true), "{v}");
    v["result"]["structuredContent"].clone()
}

fn log(v: &Value) -> Vec<Value> {
    v["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn every_change_says_how_it_came_and_the_log_filters_by_it() {
    let app = spawn_app().await;
    let trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    // Three clients: curl by its User-Agent, a Python client, and a 2026-07-28 client that
    // names itself in `_meta` (which beats its User-Agent).
    let curl = call_as_client(
        &app,
        "curl/8.5.0",
        None,
        &[("traceparent", trace)],
        "create_contacts",
        json!({ "contacts": [{ "first_name": "Ada" }, { "first_name": "Bob" }] }),
    )
    .await;
    let meta = json!({ "io.modelcontextprotocol/clientInfo": { "name": "claude-code", "version": "2.1.0" },
        "io.modelcontextprotocol/protocolVersion": "2026-07-28", "io.modelcontextprotocol/clientCapabilities": {} });
    let headers =
        [("mcp-protocol-version", "2026-07-28"), ("mcp-method", "tools/call"), ("mcp-name", "create_companies")];
    call_as_client(
        &app,
        "node",
        Some(meta),
        &headers,
        "create_companies",
        json!({ "companies": [{ "name": "Acme" }] }),
    )
    .await;
    call_as_client(&app, "python-httpx/0.28.1", None, &[], "create_deals", json!({ "deals": [{ "name": "Big" }] }))
        .await;
    // And REST, which names the route and the tool behind it.
    let (status, _) = app
        .api(
            &app.key,
            Method::POST,
            "/notes",
            Some(json!({ "body": "hi",
        "record": { "entity": "contact", "id": curl["items"][0]["id"] } })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);

    let (_, all) = app.api(&app.key, Method::GET, "/changes", None).await;
    let entries = log(&all);
    let by_entity = |e: &str| entries.iter().find(|c| c["entity"] == e).unwrap().clone();
    let contact = by_entity("contact");
    assert_eq!(contact["via"]["client"], json!({ "name": "curl", "version": "8.5.0" }));
    assert_eq!(contact["via"]["tool"], "create_contacts");
    assert_eq!(contact["via"]["route"], "mcp");
    assert_eq!(contact["via"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(by_entity("company")["via"]["client"], json!({ "name": "claude-code", "version": "2.1.0" }));
    assert_eq!(by_entity("deal")["via"]["client"]["name"], "python-httpx");
    let note = by_entity("note");
    assert_eq!(note["via"]["tool"], "add_notes", "REST names the tool behind the route");
    assert_eq!(note["via"]["route"], "POST /api/v1/notes");
    assert!(note["via"]["client"].is_null(), "a request without a User-Agent names no client: {note}");

    // One call, one request id: both contacts share theirs, and no other call has it.
    let contacts: Vec<&Value> = entries.iter().filter(|c| c["entity"] == "contact").collect();
    assert_eq!(contacts.len(), 2);
    let request = contacts[0]["via"]["request_id"].as_str().unwrap().to_owned();
    assert_eq!(contacts[1]["via"]["request_id"], request.as_str());
    assert!(entries.iter().filter(|c| c["via"]["request_id"] == request.as_str()).count() == 2);

    // Filters: by client, tool, request id, trace id, and time.
    let count = |q: &str| {
        let q = q.to_owned();
        let app = &app;
        async move {
            let (status, v) = app.api(&app.key, Method::GET, &format!("/changes?{q}"), None).await;
            assert_eq!(status, StatusCode::OK, "{q}: {v}");
            log(&v).len()
        }
    };
    assert_eq!(count("client=curl").await, 2);
    assert_eq!(count("client=claude-code").await, 1);
    assert_eq!(count("tool=create_deals").await, 1);
    assert_eq!(count(&format!("request_id={request}")).await, 2);
    assert_eq!(count("trace_id=4bf92f3577b34da6a3ce929d0e0e4736").await, 2);
    assert_eq!(count("user=owner@localhost").await, entries.len());
    assert_eq!(count("user=nobody@example.com").await, 0);
    assert_eq!(count("until=2000-01-01T00:00:00Z").await, 0);
    assert_eq!(count("since=2000-01-01T00:00:00Z").await, entries.len());
    let (status, e) = app.api(&app.key, Method::GET, "/changes?since=yesterday", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("since"));

    // The timeline carries it too.
    let t = app.ok("get_timeline", json!({ "entity": "deal", "id": by_entity("deal")["record_id"] })).await;
    assert_eq!(t["items"][0]["via"]["tool"], "create_deals");
}

#[tokio::test]
async fn audit_entries_say_how_they_came_too() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(format!("{}/api/v1/keys", app.base))
        .header("x-api-key", &app.key)
        .header("user-agent", "zapier/1.2")
        .json(&json!({ "name": "from zapier", "role": "viewer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    let entries = app.store.list_audit(&app.default_org.id, &Default::default(), None, 5).await.unwrap();
    let created = entries.iter().find(|e| e.action == "key.create").unwrap();
    assert_eq!(created.via.client.as_ref().map(|c| c.name.as_str()), Some("zapier"));
    assert_eq!(created.via.route.as_deref(), Some("POST /api/v1/keys"));
    assert!(created.via.request_id.as_deref().is_some_and(|r| r.starts_with("req_")));
}

/// Keys made with a role follow the role as it is now (SPEC 3): admin keys carry
/// `changes:revert`, which the admin preset gained.
#[tokio::test]
async fn an_admin_key_carries_changes_revert() {
    let app = spawn_app().await;
    let admin = app.key_with(Some("admin"), &[]).await;
    let w = app.call_as(&admin, "get_workspace", json!({})).await.unwrap();
    assert!(w["scopes"].as_array().unwrap().contains(&json!("changes:revert")), "{w}");
    let member = app.key_with(Some("member"), &[]).await;
    let w = app.call_as(&member, "get_workspace", json!({})).await.unwrap();
    assert!(!w["scopes"].as_array().unwrap().contains(&json!("changes:revert")));
}
