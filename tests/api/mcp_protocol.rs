//! SPEC section 5 at the protocol level: both eras, the tool list, transport refusals.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn meta(version: &str) -> Value {
    json!({
        "io.modelcontextprotocol/protocolVersion": version,
        "io.modelcontextprotocol/clientInfo": {"name": "test", "version": "1"},
        "io.modelcontextprotocol/clientCapabilities": {}
    })
}

#[tokio::test]
async fn initialize_negotiates_and_briefs_the_agent() {
    let app = spawn_app().await;
    for version in ["2025-03-26", "2025-06-18", "2025-11-25"] {
        let v = app
            .rpc_json(
                &app.key,
                "initialize",
                json!({"protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}}),
            )
            .await;
        assert_eq!(v["result"]["protocolVersion"], version);
        let instructions = v["result"]["instructions"].as_str().unwrap();
        assert!(instructions.contains("\"default\""), "names the organization: {instructions}");
        assert!(instructions.contains("in_last_days"), "explains filters");
        assert!(instructions.contains("Start with get_workspace"), "names the first call");
        assert!(instructions.contains("lean profile") && instructions.contains("write_records"), "names the profile");
        for capability in ["tools", "resources", "prompts", "completions"] {
            assert!(v["result"]["capabilities"][capability].is_object(), "{capability}");
        }
    }
    let params =
        json!({"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}});
    let v = app.rpc_json_at(&app.key, "?profile=full", "initialize", params).await;
    let instructions = v["result"]["instructions"].as_str().unwrap();
    assert!(instructions.contains("full profile") && instructions.contains("create_*"), "{instructions}");
}

#[tokio::test]
async fn stateless_revision_is_discoverable_and_served() {
    let app = spawn_app().await;
    let res = app
        .client
        .post(app.mcp_url())
        .header("x-api-key", &app.key)
        .header("accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "server/discover")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "server/discover", "params": {"_meta": meta("2026-07-28")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    let versions = v["result"]["supportedVersions"].as_array().unwrap();
    for version in ["2025-03-26", "2025-06-18", "2025-11-25", "2026-07-28"] {
        assert!(versions.contains(&json!(version)), "{version} in {versions:?}");
    }
    assert!(v["result"]["instructions"].as_str().unwrap().contains("\"default\""));
    assert_eq!(v["result"]["cacheScope"], "private");

    let res = app
        .client
        .post(app.mcp_url())
        .header("x-api-key", &app.key)
        .header("accept", "application/json, text/event-stream")
        .header("MCP-Protocol-Version", "2026-07-28")
        .header("Mcp-Method", "tools/call")
        .header("Mcp-Name", "get_workspace")
        .json(&json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
            "params": {"name": "get_workspace", "arguments": {}, "_meta": meta("2026-07-28")}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["result"]["structuredContent"]["organization"]["name"], "default", "{v}");
}

#[tokio::test]
async fn tools_are_fully_described() {
    let app = spawn_app().await;
    let lean_only = ["write_records", "manage_custom_fields", "manage_pipelines", "manage_webhooks"];
    let full_only = ["create_contacts", "update_contacts", "upsert_companies", "add_notes", "create_webhook"];
    for (query, listed, unlisted) in
        [("", &lean_only[..], &full_only[..]), ("?profile=full", &full_only[..], &lean_only[..])]
    {
        let v = app.rpc_json_at(&app.key, query, "tools/list", json!({})).await;
        let tools = v["result"]["tools"].as_array().unwrap();
        let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
        let both = ["get_workspace", "describe_entity", "search_records", "count_records", "get_records", "search_all"];
        let more =
            ["get_timeline", "link_records", "unlink_records", "merge_records", "delete_records", "restore_records"];
        for expected in both.iter().chain(&more).chain(&["get_approval", "revert_changes"]).chain(listed) {
            assert!(names.contains(expected), "{expected} listed at {query:?}");
        }
        for other in unlisted {
            assert!(!names.contains(other), "{other} not listed at {query:?}");
        }
        for t in tools {
            let name = t["name"].as_str().unwrap();
            assert!(t["title"].is_string(), "{name} title");
            assert!(t["description"].as_str().unwrap().contains("Example: "), "{name} example");
            assert_eq!(t["inputSchema"]["type"], "object", "{name}");
            assert_eq!(t["inputSchema"]["additionalProperties"], false, "{name}");
            assert_eq!(t["outputSchema"]["type"], "object", "{name}");
            let a = &t["annotations"];
            assert!(a["readOnlyHint"].is_boolean(), "{name} readOnlyHint");
            // The other two hints mean something only for a tool that changes things.
            if a["readOnlyHint"] == false {
                assert!(a["destructiveHint"].is_boolean() && a["idempotentHint"].is_boolean(), "{name} hints");
            }
            assert_eq!(a["openWorldHint"], false, "{name}");
        }
        let delete = tools.iter().find(|t| t["name"] == "delete_records").unwrap();
        assert_eq!(delete["annotations"]["destructiveHint"], true);
        let search = tools.iter().find(|t| t["name"] == "search_records").unwrap();
        assert_eq!(search["annotations"]["readOnlyHint"], true);
    }
}

#[tokio::test]
async fn tool_list_follows_scopes_and_toolsets() {
    let app = spawn_app().await;
    let viewer = app.key_with(Some("viewer"), &[]).await;
    let names = app.tool_names(&viewer, "").await;
    assert!(names.contains(&"search_records".into()) && names.contains(&"get_workspace".into()));
    assert!(!names.iter().any(|n| n.starts_with("create_") || n.starts_with("update_") || n == "delete_records"));

    let contacts_only = app.key_with(None, &["contacts:read", "contacts:write"]).await;
    let names = app.tool_names(&contacts_only, "?profile=full").await;
    assert!(names.contains(&"create_contacts".into()) && !names.contains(&"create_companies".into()));
    let names = app.tool_names(&contacts_only, "").await;
    assert!(names.contains(&"write_records".into()) && !names.contains(&"create_contacts".into()));
    assert!(!names.contains(&"manage_custom_fields".into()) && !names.contains(&"delete_records".into()));
    // Scopes are checked again per entity when a tool is called.
    let err = app.call_as(&contacts_only, "search_records", json!({"entity": "company"})).await.unwrap_err();
    assert!(err.contains("companies:read"), "{err}");
    let err = app.call_as(&viewer, "create_contacts", json!({"contacts": [{"first_name": "A"}]})).await.unwrap_err();
    assert!(err.contains("may not call create_contacts"), "{err}");

    let names = app.tool_names(&app.key, "?toolsets=contacts&profile=full").await;
    assert!(names.contains(&"create_contacts".into()) && names.contains(&"search_records".into()));
    assert!(!names.contains(&"create_companies".into()));
    let names = app.tool_names(&app.key, "?toolsets=contacts").await;
    assert!(names.contains(&"write_records".into()) && !names.contains(&"manage_webhooks".into()));
}

#[tokio::test]
async fn transport_faults_get_protocol_answers() {
    let app = spawn_app().await;
    let post = || {
        app.client
            .post(app.mcp_url())
            .header("x-api-key", &app.key)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
    };
    // A batch.
    let res = post()
        .body(r#"[{"jsonrpc":"2.0","id":1,"method":"tools/list"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]"#)
        .send()
        .await
        .unwrap();
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], -32600);
    // Malformed JSON.
    let v: Value = post().body(r#"{"jsonrpc":"2.0","id":1,"#).send().await.unwrap().json().await.unwrap();
    assert_eq!(v["error"]["code"], -32700);
    // Over 1 MiB.
    let big =
        format!(r#"{{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{{"pad":"{}"}}}}"#, "x".repeat(1_100_000));
    assert_eq!(post().body(big).send().await.unwrap().status(), StatusCode::PAYLOAD_TOO_LARGE);
    // A foreign Origin.
    let res = post()
        .header("origin", "https://evil.example")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    // Every refusal has the API's one error shape, these included.
    let v: Value = res.json().await.expect("a JSON body");
    assert_eq!(v["error"]["code"], "origin_not_allowed", "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("RAPPORT_ALLOWED_ORIGINS"));
    // The server's own origin is fine.
    let res = post()
        .header("origin", app.base.clone())
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // A foreign Host.
    let res = post()
        .header("host", "evil.example")
        .body(r#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let v: Value = res.json().await.expect("a JSON body");
    assert_eq!(v["error"]["code"], "host_not_allowed", "{v}");
    // A client must accept both JSON and an event stream.
    let res = app
        .client
        .post(app.mcp_url())
        .header("x-api-key", &app.key)
        .header("accept", "application/json")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_ACCEPTABLE);
    let v: Value = res.json().await.expect("a JSON body");
    assert_eq!(v["error"]["code"], "not_acceptable", "{v}");
    // Only `/api/v1/mcp` is the endpoint: a path below it is no route at all.
    for path in ["/api/v1/mcp/anything", "/api/v1/mcp/"] {
        let res = app
            .client
            .post(format!("{}{path}", app.base))
            .header("x-api-key", &app.key)
            .header("accept", "application/json, text/event-stream")
            .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{path}");
        let v: Value = res.json().await.unwrap();
        assert_eq!(v["error"]["code"], "not_found", "{path}: {v}");
    }
    // No session to serve: GET and DELETE.
    let res = app
        .client
        .get(app.mcp_url())
        .header("x-api-key", &app.key)
        .header("accept", "text/event-stream")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let res = app.client.delete(app.mcp_url()).header("x-api-key", &app.key).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    // An unknown tool is a protocol error; a known one with bad arguments is a tool error.
    let v = app.rpc_json(&app.key, "tools/call", json!({"name": "no_such_tool", "arguments": {}})).await;
    assert_eq!(v["error"]["code"], -32602);
    // The server is still fine.
    assert!(app.call("get_workspace", json!({})).await.is_ok());
}

#[tokio::test]
async fn a_bare_tools_call_needs_no_handshake() {
    let app = spawn_app().await;
    let v = app.ok("get_workspace", json!({})).await;
    assert_eq!(v["organization"]["name"], "default");
    assert_eq!(v["user"]["email"], "owner@localhost");
    assert_eq!(v["key"]["name"], "test owner");
    assert!(v["key"]["preview"].as_str().unwrap().starts_with("rpk_"));
    assert_eq!(v["counts"]["contacts"], 0);
    assert_eq!(v["limits"]["max_batch"], 100);
}
