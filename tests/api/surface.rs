//! SPEC 5: resources, prompts and completion, with scopes and organizations holding exactly
//! as for tools.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// A JSON-RPC call's `result`, or its `error`.
async fn rpc(app: &TestApp, key: &str, method: &str, params: Value) -> Result<Value, Value> {
    let v = app.rpc_json(key, method, params).await;
    match v.get("error") {
        Some(e) => Err(e.clone()),
        None => Ok(v["result"].clone()),
    }
}

#[tokio::test]
async fn resources_read_records_and_schemas_within_the_keys_powers() {
    let app = spawn_app().await;
    let ada = app.create_contacts(json!([{"first_name": "Ada", "email": "ada@example.com"}])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let deal = app.ok("create_deals", json!({"deals": [{"name": "Big one"}]})).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let templates = rpc(&app, &app.key, "resources/templates/list", json!({})).await.unwrap();
    let uris: Vec<&str> =
        templates["resourceTemplates"].as_array().unwrap().iter().map(|t| t["uriTemplate"].as_str().unwrap()).collect();
    assert_eq!(uris, ["rapport://{entity}/{id}", "rapport://schema/{entity}"]);

    let read = rpc(&app, &app.key, "resources/read", json!({"uri": format!("rapport://contact/{ada}")})).await.unwrap();
    let content = &read["contents"][0];
    assert_eq!(content["mimeType"], "application/json");
    let record: Value = serde_json::from_str(content["text"].as_str().unwrap()).unwrap();
    assert_eq!(record["email"], "ada@example.com");
    let schema = rpc(&app, &app.key, "resources/read", json!({"uri": "rapport://schema/deal"})).await.unwrap();
    let schema: Value = serde_json::from_str(schema["contents"][0]["text"].as_str().unwrap()).unwrap();
    assert_eq!(schema["pipelines"][0]["name"], "sales");

    // A contacts-only key lists and reads contacts, and finds no deal: the same answer as
    // for a record that does not exist, or one of another organization.
    let contacts_only = app.key_with(None, &["contacts:read"]).await;
    let listed = rpc(&app, &contacts_only, "resources/list", json!({})).await.unwrap();
    let listed: Vec<&str> =
        listed["resources"].as_array().unwrap().iter().map(|r| r["uri"].as_str().unwrap()).collect();
    assert_eq!(listed, ["rapport://schema/contact"]);
    assert!(
        rpc(&app, &contacts_only, "resources/read", json!({"uri": format!("rapport://contact/{ada}")})).await.is_ok()
    );
    let (_, stranger) = app.new_org("elsewhere").await;
    let refusals = [
        rpc(&app, &contacts_only, "resources/read", json!({"uri": format!("rapport://deal/{deal}")}))
            .await
            .unwrap_err(),
        rpc(&app, &contacts_only, "resources/read", json!({"uri": "rapport://schema/deal"})).await.unwrap_err(),
        rpc(&app, &app.key, "resources/read", json!({"uri": "rapport://deal/no-such-id"})).await.unwrap_err(),
        rpc(&app, &stranger, "resources/read", json!({"uri": format!("rapport://contact/{ada}")})).await.unwrap_err(),
        rpc(&app, &app.key, "resources/read", json!({"uri": "rapport://planet/earth"})).await.unwrap_err(),
    ];
    for e in &refusals {
        assert_eq!(e["code"], -32002, "{e}");
        assert!(!e.to_string().contains("scope") && !e.to_string().contains("Big one"), "reveals nothing: {e}");
    }
}

#[tokio::test]
async fn prompts_point_the_model_at_the_right_tools() {
    let app = spawn_app().await;
    app.ok(
        "create_companies",
        json!({"companies": [{"name": "Acme", "domain": "acme.com"}, {"name": "Acorn", "domain": "acorn.io"}]}),
    )
    .await;
    let listed = rpc(&app, &app.key, "prompts/list", json!({})).await.unwrap();
    let names: Vec<&str> = listed["prompts"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["daily_briefing", "log_interaction", "pipeline_review", "account_brief"]);

    let text = |v: Value| v["messages"][0]["content"]["text"].as_str().unwrap().to_owned();
    let brief = text(
        rpc(&app, &app.key, "prompts/get", json!({"name": "account_brief", "arguments": {"company": "acme.com"}}))
            .await
            .unwrap(),
    );
    assert!(
        brief.contains("Acme (company id ") && brief.contains("get_records") && brief.contains("get_timeline"),
        "{brief}"
    );
    let daily = text(
        rpc(&app, &app.key, "prompts/get", json!({"name": "daily_briefing", "arguments": {"days": "7"}}))
            .await
            .unwrap(),
    );
    assert!(daily.contains("\"in_last_days\", \"value\": 7") && daily.contains("assignee_id"), "{daily}");
    let log = text(
        rpc(&app, &app.key, "prompts/get", json!({"name": "log_interaction", "arguments": {"record": "Acme", "summary": "Demo went well", "follow_up": "2027-01-15"}}))
            .await
            .unwrap(),
    );
    assert!(log.contains("search_all") && log.contains("write_records") && log.contains("2027-01-15"), "{log}");
    assert!(
        log.contains(r#""entity": "activity""#) && !log.contains(r#""entity": "note""#),
        "an activity, not a note: {log}"
    );
    let call = text(
        rpc(
            &app,
            &app.key,
            "prompts/get",
            json!({"name": "log_interaction", "arguments": {"record": "Acme", "summary": "Rang", "kind": "call"}}),
        )
        .await
        .unwrap(),
    );
    assert!(call.contains(r#""kind": "call""#) && call.contains("no_answer"), "{call}");
    let fax = rpc(
        &app,
        &app.key,
        "prompts/get",
        json!({"name": "log_interaction", "arguments": {"record": "Acme", "summary": "x", "kind": "fax"}}),
    )
    .await;
    assert!(fax.unwrap_err()["message"].as_str().unwrap().contains("call, meeting, email, message"));
    let review = text(
        rpc(
            &app,
            &app.key,
            "prompts/get",
            json!({"name": "pipeline_review", "arguments": {"pipeline": "sales", "stage": "proposal"}}),
        )
        .await
        .unwrap(),
    );
    assert!(review.contains("count_records") && review.contains(r#""value":"proposal""#), "{review}");

    // Wrong arguments are refused with what would be right.
    for (args, says) in [
        (json!({"name": "account_brief", "arguments": {"company": "Ac"}}), "matches several companies"),
        (json!({"name": "account_brief", "arguments": {"company": "Initech"}}), "no company"),
        (json!({"name": "pipeline_review", "arguments": {"pipeline": "nope"}}), "pipelines: sales"),
        (json!({"name": "pipeline_review", "arguments": {"pipeline": "sales", "stage": "nope"}}), "lead, qualified"),
        (json!({"name": "log_interaction", "arguments": {"record": "Acme"}}), "`summary`"),
        (json!({"name": "daily_briefing", "arguments": {"days": "lots"}}), "1 to 90"),
        (json!({"name": "weekly_report"}), "daily_briefing"),
    ] {
        let e = rpc(&app, &app.key, "prompts/get", args.clone()).await.unwrap_err();
        assert!(e["message"].as_str().unwrap().contains(says), "{args}: {e}");
    }

    // A key that may not read companies or deals learns nothing of them through a prompt.
    let contacts_only = app.key_with(None, &["contacts:read"]).await;
    let e = rpc(
        &app,
        &contacts_only,
        "prompts/get",
        json!({"name": "account_brief", "arguments": {"company": "acme.com"}}),
    )
    .await
    .unwrap_err();
    assert!(e["message"].as_str().unwrap().contains("companies:read") && !e.to_string().contains("Acme"), "{e}");
    let e = rpc(
        &app,
        &contacts_only,
        "prompts/get",
        json!({"name": "pipeline_review", "arguments": {"pipeline": "sales"}}),
    )
    .await
    .unwrap_err();
    assert!(!e.to_string().contains("lead, qualified"), "{e}");
}

#[tokio::test]
async fn completion_offers_names_by_prefix_within_the_keys_scopes() {
    let app = spawn_app().await;
    app.ok("create_companies", json!({"companies": [{"name": "Acme"}, {"name": "Acorn"}, {"name": "Globex"}]})).await;
    app.create_contacts(json!([{"first_name": "Ada", "last_name": "Lovelace"}])).await;
    app.ok("create_pipeline", json!({"name": "renewals", "stages": [{"name": "due"}, {"name": "done", "kind": "won"}, {"name": "gone", "kind": "lost"}]})).await;
    let complete = |key: String, reference: Value, name: &str, value: &str, context: Value| {
        let app = &app;
        let params =
            json!({"ref": reference, "argument": {"name": name, "value": value}, "context": {"arguments": context}});
        async move { rpc(app, &key, "completion/complete", params).await.unwrap()["completion"]["values"].clone() }
    };
    let prompt = |name: &str| json!({"type": "ref/prompt", "name": name});
    let key = app.key.clone();
    assert_eq!(
        complete(key.clone(), prompt("account_brief"), "company", "ac", json!({})).await,
        json!(["Acme", "Acorn"])
    );
    assert_eq!(
        complete(key.clone(), prompt("pipeline_review"), "pipeline", "RE", json!({})).await,
        json!(["renewals"])
    );
    assert_eq!(
        complete(key.clone(), prompt("pipeline_review"), "stage", "d", json!({"pipeline": "renewals"})).await,
        json!(["due", "done"])
    );
    assert_eq!(
        complete(key.clone(), prompt("log_interaction"), "record", "A", json!({})).await,
        json!(["Ada Lovelace", "Acme", "Acorn"])
    );
    let template = json!({"type": "ref/resource", "uri": "rapport://schema/{entity}"});
    assert_eq!(complete(key.clone(), template.clone(), "entity", "co", json!({})).await, json!(["contact", "company"]));
    // A contacts-only key is offered no company and no other entity.
    let contacts_only = app.key_with(None, &["contacts:read"]).await;
    assert_eq!(complete(contacts_only.clone(), prompt("account_brief"), "company", "ac", json!({})).await, json!([]));
    assert_eq!(
        complete(contacts_only.clone(), prompt("log_interaction"), "record", "A", json!({})).await,
        json!(["Ada Lovelace"])
    );
    assert_eq!(complete(contacts_only, template, "entity", "co", json!({})).await, json!(["contact"]));
    // Another organization's names are not offered.
    let (_, stranger) = app.new_org("elsewhere").await;
    assert_eq!(complete(stranger, prompt("account_brief"), "company", "ac", json!({})).await, json!([]));
}
