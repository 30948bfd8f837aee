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

/// What differs between two runs of the same call: generated ids, times, request ids and
/// secrets. Everything else must be equal.
fn normalized(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "id" | "record_id"
                            | "at"
                            | "created_at"
                            | "updated_at"
                            | "via"
                            | "secret"
                            | "matches"
                            | "next_attempt_at"
                            | "previous_secret_expires_at"
                            | "restored"
                            | "deleted"
                    )
                })
                .map(|(k, v)| (k.clone(), normalized(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalized).collect()),
        Value::String(s) if s.len() >= 32 && s.chars().filter(|c| *c == '-').count() == 4 => json!("<id>"),
        Value::String(s) if s.starts_with("msg_") || s.starts_with("wh_") => json!("<id>"),
        // A time the call stamps (`done_at`): when it ran.
        Value::String(s) if s.len() > 19 && s.as_bytes()[4] == b'-' && s.as_bytes()[10] == b'T' => json!("<time>"),
        other => other.clone(),
    }
}

/// Runs `tool` as a dry run, checks it wrote nothing and answered a preview, then runs it for
/// real and checks the preview was what the real call answered and wrote.
async fn both_ways(app: &TestApp, tool: &str, args: Value) -> Value {
    let before = app.row_counts().await;
    let mut dry_args = args.clone();
    dry_args["dry_run"] = json!(true);
    let dry = app.call(tool, dry_args).await.unwrap_or_else(|e| panic!("{tool} dry: {e}"));
    assert_eq!(dry["dry_run"], true, "{tool}: {dry}");
    assert_eq!(app.row_counts().await, before, "{tool}: a dry run wrote nothing");
    let real = app.call(tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}"));
    assert_eq!(normalized(&dry["result"]), normalized(&real), "{tool}: the preview answers as the call does");
    let n = dry["changes"].as_array().unwrap().len();
    let (_, log) = app.api(&app.key, Method::GET, &format!("/changes?tool={tool}&limit=100"), None).await;
    let written: Vec<Value> = log["items"].as_array().unwrap().iter().take(n).cloned().collect();
    assert_eq!(written.len(), n, "{tool}");
    let mut previewed = dry["changes"].as_array().unwrap().clone();
    let order = |v: &Value| format!("{}{}{}", v["entity"], v["action"], v["changes"]);
    previewed.sort_by_key(order);
    let mut written = written;
    written.sort_by_key(order);
    assert_eq!(normalized(&json!(previewed)), normalized(&json!(written)), "{tool}: the preview's change entries");
    real
}

#[tokio::test]
async fn every_writing_tool_previews_exactly_what_it_does_and_writes_nothing() {
    let app = spawn_app().await;
    let id = |v: &Value| v["items"][0]["id"].as_str().unwrap().to_owned();
    let co = id(&both_ways(
        &app,
        "create_companies",
        json!({ "companies": [{ "name": "Acme", "domain": "acme.example" }] }),
    )
    .await);
    let ada = id(&both_ways(
        &app,
        "create_contacts",
        json!({ "contacts": [{ "first_name": "Ada", "email": "ada@acme.example" }] }),
    )
    .await);
    let bob = id(&app
        .ok("create_contacts", json!({ "contacts": [{ "first_name": "Bob", "email": "bob@acme.example" }] }))
        .await);
    let deal = id(&both_ways(
        &app,
        "create_deals",
        json!({ "deals": [{ "name": "Big", "value": "100.00", "currency": "EUR" }] }),
    )
    .await);
    let task = id(&both_ways(
        &app,
        "create_tasks",
        json!({ "tasks": [{ "title": "Call", "record": { "entity": "contact", "id": ada } }] }),
    )
    .await);
    let note = id(&both_ways(
        &app,
        "add_notes",
        json!({ "notes": [{ "body": "hi", "record": { "entity": "contact", "id": ada } }] }),
    )
    .await);
    both_ways(&app, "update_companies", json!({ "companies": [{ "id": co, "industry": "robots" }] })).await;
    both_ways(&app, "update_contacts", json!({ "contacts": [{ "id": ada, "title": "CTO" }] })).await;
    both_ways(&app, "update_deals", json!({ "deals": [{ "id": deal, "stage": "won" }] })).await;
    both_ways(&app, "update_tasks", json!({ "tasks": [{ "id": task, "status": "done" }] })).await;
    both_ways(&app, "update_notes", json!({ "notes": [{ "id": note, "body": "hello" }] })).await;
    both_ways(&app, "upsert_contacts", json!({ "contacts": [{ "email": "ada@acme.example", "phone": "+1 555" }, { "email": "cy@acme.example", "first_name": "Cy" }] })).await;
    both_ways(&app, "upsert_companies", json!({ "companies": [{ "domain": "acme.example", "name": "Acme Inc" }] }))
        .await;
    let link =
        json!({ "links": [{ "from": { "entity": "contact", "id": bob }, "to": { "entity": "company", "id": co } }] });
    both_ways(&app, "link_records", link.clone()).await;
    both_ways(&app, "unlink_records", link).await;
    both_ways(&app, "merge_records", json!({ "entity": "contact", "keep_id": ada, "merge_ids": [bob] })).await;
    both_ways(&app, "delete_records", json!({ "entity": "deal", "ids": [deal] })).await;
    both_ways(&app, "restore_records", json!({ "entity": "deal", "ids": [deal] })).await;
    both_ways(
        &app,
        "create_custom_field",
        json!({ "entity": "company", "key": "tier", "label": "Tier", "type": "text" }),
    )
    .await;
    both_ways(&app, "update_custom_field", json!({ "entity": "company", "key": "tier", "label": "Level" })).await;
    both_ways(&app, "delete_custom_field", json!({ "entity": "company", "key": "tier" })).await;
    both_ways(
        &app,
        "create_pipeline",
        json!({ "name": "renewals", "stages": [{ "name": "due" }, { "name": "done", "kind": "won" }] }),
    )
    .await;
    both_ways(&app, "update_pipeline", json!({ "name": "renewals", "new_name": "renewal" })).await;
    // Webhook changes write no change entries; the preview still answers as the call does,
    // without a secret.
    let before = app.row_counts().await;
    let dry =
        app.ok("create_webhook", json!({ "url": "http://127.0.0.1:9/h", "events": ["*"], "dry_run": true })).await;
    assert_eq!((dry["dry_run"].as_bool(), dry["result"]["secret"].is_null()), (Some(true), true), "{dry}");
    assert_eq!(app.row_counts().await, before);
    let hook = app.ok("create_webhook", json!({ "url": "http://127.0.0.1:9/h", "events": ["*"] })).await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let before = app.row_counts().await;
    let dry = app.ok("update_webhook", json!({ "id": hook_id, "rotate_secret": true, "dry_run": true })).await;
    assert!(dry["result"]["secret"].is_null(), "a key or secret it would make is null: {dry}");
    app.ok("delete_webhook", json!({ "id": hook_id, "dry_run": true })).await;
    assert_eq!(app.row_counts().await, before, "nothing changed");
    assert_eq!(app.ok("list_webhooks", json!({})).await["items"].as_array().unwrap().len(), 1);
    // A dry run spends no idempotency key: the real call with the same key then runs.
    let args = json!({ "contacts": [{ "first_name": "Idem" }], "idempotency_key": "once" });
    let mut dry_args = args.clone();
    dry_args["dry_run"] = json!(true);
    app.ok("create_contacts", dry_args).await;
    let real = app.ok("create_contacts", args.clone()).await;
    assert_eq!(app.ok("create_contacts", args).await, real, "the key was spent by the real call only");
    // A read takes no dry_run.
    let e = app.err("search_records", json!({ "entity": "contact", "dry_run": true })).await;
    assert!(e.contains("dry_run"), "{e}");
}

#[tokio::test]
async fn rest_dry_runs_answer_200_with_the_preview_and_write_nothing() {
    let app = spawn_app().await;
    let before = app.row_counts().await;
    let (status, v) =
        app.api(&app.key, Method::POST, "/contacts?dry_run=true", Some(json!({ "first_name": "Ada" }))).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["dry_run"], true);
    assert_eq!(v["changes"][0]["action"], "created");
    assert_eq!(v["result"]["items"][0]["first_name"], "Ada");
    assert_eq!(app.row_counts().await, before);
    let c = app.create_contacts(json!([{ "first_name": "Bob" }])).await;
    let id = c[0]["id"].as_str().unwrap();
    let before = app.row_counts().await;
    let (status, v) = app.api(&app.key, Method::DELETE, &format!("/contacts/{id}?dry_run=true"), None).await;
    assert_eq!(status, StatusCode::OK, "a delete's preview has a body: {v}");
    assert_eq!(v["changes"][0]["action"], "deleted");
    assert_eq!(app.row_counts().await, before);
    // Routes that are no tool's refuse it rather than act for real.
    let (status, e) = app.api(&app.key, Method::POST, "/keys?dry_run=true", Some(json!({ "name": "x" }))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("dry_run"));
    assert_eq!(app.row_counts().await, before);
}

/// Every live record of the organization as `get_records` shows it, without times, by id.
async fn world(app: &TestApp) -> Vec<Value> {
    let mut out = Vec::new();
    for entity in ["contact", "company", "deal", "task", "note"] {
        let ids = app.search_ids(json!({ "entity": entity, "limit": 100 })).await;
        if ids.is_empty() {
            continue;
        }
        let records: Vec<Value> = ids.iter().map(|id| json!({ "entity": entity, "id": id })).collect();
        let got = app.ok("get_records", json!({ "records": records })).await;
        for mut r in got["items"].as_array().unwrap().clone() {
            let o = r.as_object_mut().unwrap();
            o.remove("updated_at");
            out.push(r);
        }
    }
    out.sort_by_key(|r| format!("{}{}", r["entity"], r["id"]));
    out
}

#[tokio::test]
async fn an_agents_burst_is_undone_exactly_and_the_undo_can_be_undone() {
    let app = spawn_app().await;
    // What a person had before the agent came.
    let acme = app.create_companies(json!([{ "name": "Acme", "domain": "acme.example" }])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ada = app
        .create_contacts(
            json!([{ "first_name": "Ada", "email": "ada@acme.example", "title": "CTO", "company_id": acme }]),
        )
        .await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deal = app
        .ok("create_deals", json!({ "deals": [{ "name": "Big", "company_id": acme, "contact_ids": [ada] }] }))
        .await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = world(&app).await;
    // Webhooks hear the burst and its undo (sent to a closed port: the queue is what counts).
    let hook = app.ok("create_webhook", json!({ "url": "http://127.0.0.1:9/hook", "events": ["*"] })).await;
    let hook = hook["id"].as_str().unwrap().to_owned();
    let since = chrono_now();
    std::thread::sleep(std::time::Duration::from_millis(5));

    // The agent, with its own key: a company and contacts, updates, links, a merge, a
    // trashed record and a stage move.
    let agent = app.key_with(Some("admin"), &[]).await;
    let call = |tool: &'static str, args: Value| {
        let agent = agent.clone();
        let app = &app;
        async move { app.call_as(&agent, tool, args).await.unwrap_or_else(|e| panic!("{tool}: {e}")) }
    };
    let globex = call("create_companies", json!({ "companies": [{ "name": "Globex", "domain": "globex.example" }] }))
        .await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let made = call(
        "create_contacts",
        json!({ "contacts": [
        { "first_name": "Hank", "email": "hank@globex.example" },
        { "first_name": "Ada", "last_name": "Duplicate", "email": "ada2@acme.example" }
    ] }),
    )
    .await;
    let (hank, ada2) =
        (made["items"][0]["id"].as_str().unwrap().to_owned(), made["items"][1]["id"].as_str().unwrap().to_owned());
    call("update_contacts", json!({ "contacts": [{ "id": ada, "title": "CEO", "phone": "+1 555 0100" }] })).await;
    call("link_records", json!({ "links": [{ "from": { "entity": "contact", "id": hank }, "to": { "entity": "company", "id": globex } }] })).await;
    call(
        "link_records",
        json!({ "links": [{ "from": { "entity": "deal", "id": deal }, "to": { "entity": "contact", "id": ada2 } }] }),
    )
    .await;
    call("merge_records", json!({ "entity": "contact", "keep_id": ada, "merge_ids": [ada2] })).await;
    call("delete_records", json!({ "entity": "company", "ids": [acme] })).await;
    call("update_deals", json!({ "deals": [{ "id": deal, "stage": "won" }] })).await;
    assert_ne!(world(&app).await, before);

    // The owner previews the undo of everything the key did since, then undoes it.
    let key_id = app
        .store
        .list_keys(&app.default_org.id, false)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.name == "scoped")
        .unwrap()
        .id;
    let revert = json!({ "key_id": key_id, "since": since });
    let mut dry = revert.clone();
    dry["dry_run"] = json!(true);
    let queued = || {
        let (app, hook) = (&app, hook.clone());
        async move {
            let got = app.ok("list_webhook_deliveries", json!({ "id": hook, "limit": 100 })).await;
            let mut events: Vec<(String, String)> = got["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| (d["type"].as_str().unwrap().to_owned(), d["record_id"].as_str().unwrap().to_owned()))
                .collect();
            events.reverse();
            events
        }
    };
    let heard = queued().await.len();
    // Deliveries are made from queued events by the sender, in the background: the listing,
    // which shows both, is what must not change.
    let counts = || async {
        let mut c = app.row_counts().await;
        c.retain(|(t, _)| *t != "webhook_deliveries");
        c
    };
    let before_preview = counts().await;
    let preview = app.ok("revert_changes", dry).await;
    assert_eq!(preview["dry_run"], true);
    assert!(!preview["result"]["reverted"].as_array().unwrap().is_empty(), "{preview}");
    assert_eq!(counts().await, before_preview, "the preview wrote nothing");
    assert_eq!(queued().await.len(), heard, "the preview queued no delivery");
    let (status, done) = app.api(&app.key, Method::POST, "/changes/revert", Some(revert)).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done["skipped"].as_array().unwrap().is_empty(), "{done}");
    assert_eq!(world(&app).await, before, "every record, link and field is as before");
    // The webhooks tell the same story: what the agent made goes, what it trashed comes
    // back, what it changed changes back.
    let undo: Vec<(String, String)> = queued().await.split_off(heard);
    let has = |event: &str, id: &str| undo.iter().any(|(e, r)| e == event && r == id);
    assert!(has("company.deleted", &globex), "{undo:#?}");
    assert!(has("contact.deleted", &hank), "{undo:#?}");
    assert!(has("company.restored", &acme), "{undo:#?}");
    assert!(has("contact.restored", &ada2), "{undo:#?}");
    assert!(has("contact.updated", &ada), "{undo:#?}");
    assert!(has("deal.stage_changed", &deal), "{undo:#?}");
    // The trash tells the same story: what the agent made is there, what it trashed is not.
    let trashed = app.ok("restore_records", json!({ "entity": "company", "ids": [globex], "dry_run": true })).await;
    assert_eq!(trashed["dry_run"], true, "the agent's company is in the trash: {trashed}");
    // The revert is itself changes that name what they revert, and can be undone in turn.
    let entries = done["changes"].as_array().unwrap();
    assert!(entries.iter().all(|e| !e["reverts"].as_array().unwrap().is_empty()), "{done}");
    let (_, log) = app.api(&app.key, Method::GET, "/changes?tool=revert_changes&limit=1", None).await;
    let request = log["items"][0]["via"]["request_id"].as_str().unwrap().to_owned();
    let again = app.ok("revert_changes", json!({ "request_id": request })).await;
    assert!(again["skipped"].as_array().unwrap().is_empty(), "{again}");
    let after_redo = world(&app).await;
    assert_ne!(after_redo, before, "undoing the undo brings the agent's work back");
    assert!(after_redo.iter().any(|r| r["name"] == "Globex"));
}

fn chrono_now() -> String {
    let ms = rapport::time::now_ms();
    rapport::time::rfc3339(ms)
}

#[tokio::test]
async fn a_revert_with_conflicts_is_refused_and_lists_them_unless_forced() {
    let app = spawn_app().await;
    let c = app.create_contacts(json!([{ "first_name": "Ada", "title": "CTO" }, { "first_name": "Bob" }])).await;
    let (ada, bob) = (c[0]["id"].as_str().unwrap().to_owned(), c[1]["id"].as_str().unwrap().to_owned());
    let agent = app.key_with(Some("admin"), &[]).await;
    app.call_as(
        &agent,
        "update_contacts",
        json!({ "contacts": [{ "id": ada, "title": "CEO" }, { "id": bob, "title": "Intern" }] }),
    )
    .await
    .unwrap();
    let (_, log) = app.api(&app.key, Method::GET, "/changes?tool=update_contacts", None).await;
    let request = log["items"][0]["via"]["request_id"].as_str().unwrap().to_owned();
    // Someone changes Ada's title after the agent did.
    app.ok("update_contacts", json!({ "contacts": [{ "id": ada, "title": "Founder" }] })).await;
    let e = app.err("revert_changes", json!({ "request_id": request })).await;
    assert!(e.contains("nothing was reverted") && e.contains("`title` was changed since"), "{e}");
    let get = |id: &str| {
        let id = id.to_owned();
        let app = &app;
        async move {
            app.ok("get_records", json!({ "records": [{ "entity": "contact", "id": id }] })).await["items"][0].clone()
        }
    };
    assert_eq!(get(&bob).await["title"], "Intern", "refused: nothing changed");
    // Forced: what has no conflict is undone, and the later change is never overwritten.
    let r = app.ok("revert_changes", json!({ "request_id": request, "force": true })).await;
    assert_eq!(r["skipped"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(get(&bob).await["title"], Value::Null);
    assert_eq!(get(&ada).await["title"], "Founder");
    // Bad selections are refused by name.
    assert!(app.err("revert_changes", json!({})).await.contains("one way"));
    assert!(app.err("revert_changes", json!({ "key_id": "x" })).await.contains("since"));
    assert!(app.err("revert_changes", json!({ "request_id": "req_nothing" })).await.contains("no change matches"));
    // Bringing back a company whose domain another company now holds would break the rule
    // that a domain is one company's.
    let acme = app.create_companies(json!([{ "name": "Acme", "domain": "acme.example" }])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.call_as(&agent, "delete_records", json!({ "entity": "company", "ids": [acme] })).await.unwrap();
    let (_, log) = app.api(&app.key, Method::GET, "/changes?tool=delete_records&limit=1", None).await;
    let trashed = log["items"][0]["id"].as_str().unwrap().to_owned();
    app.create_companies(json!([{ "name": "Acme Again", "domain": "acme.example" }])).await;
    let e = app.err("revert_changes", json!({ "change_ids": [trashed] })).await;
    assert!(e.contains("nothing was reverted") && e.contains("acme.example"), "{e}");
    // A member key may not revert.
    let member = app.key_with(Some("member"), &[]).await;
    let e = app.call_as(&member, "revert_changes", json!({ "request_id": request })).await.unwrap_err();
    assert!(e.contains("may not call revert_changes"), "{e}");
}

#[tokio::test]
async fn a_deleted_custom_field_comes_back_with_its_values_or_without_them_after_the_purge() {
    let app = spawn_app().await;
    app.ok("create_custom_field", json!({ "entity": "company", "key": "seats", "label": "Seats", "type": "number" }))
        .await;
    let acme = app.create_companies(json!([{ "name": "Acme", "custom": { "seats": 40 } }])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let seats = || async {
        app.ok("get_records", json!({ "records": [{ "entity": "company", "id": acme }] })).await["items"][0]["custom"]
            ["seats"]
            .clone()
    };
    let deleted = || async {
        let (_, log) = app.api(&app.key, Method::GET, "/changes?tool=delete_custom_field&limit=1", None).await;
        log["items"][0]["id"].as_str().unwrap().to_owned()
    };
    app.ok("delete_custom_field", json!({ "entity": "company", "key": "seats" })).await;
    let change = deleted().await;
    let r = app.ok("revert_changes", json!({ "change_ids": [change] })).await;
    assert!(r.get("notes").is_none(), "{r}");
    assert_eq!(seats().await, 40.0, "back with its values while they are in the trash");

    // Deleted again and purged from the trash: it comes back empty, and the preview says so.
    app.ok("delete_custom_field", json!({ "entity": "company", "key": "seats" })).await;
    let change = deleted().await;
    rapport::crm::trash::purge(&app.store, 0, rapport::time::now_ms() + 1).await.unwrap();
    let preview = app.ok("revert_changes", json!({ "change_ids": [change], "dry_run": true })).await;
    let note = preview["result"]["notes"][0].as_str().unwrap_or_default();
    assert!(note.contains("without its values"), "{preview}");
    app.ok("revert_changes", json!({ "change_ids": [change] })).await;
    assert_eq!(seats().await, Value::Null);
    app.ok("update_companies", json!({ "companies": [{ "id": acme, "custom": { "seats": 12 } }] })).await;
    assert_eq!(seats().await, 12.0, "the field works again");
}
