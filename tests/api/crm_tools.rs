//! The CRM tools beyond create and update: upsert, links, merge, trash, grouping,
//! search across entities, timelines, custom fields, pipelines, safe retries.

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

async fn timeline(app: &TestApp, entity: &str, id: &str) -> Vec<Value> {
    app.ok("get_timeline", json!({"entity": entity, "id": id, "limit": 100})).await["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn upsert_reports_each_item() {
    let app = spawn_app().await;
    let first =
        app.ok("upsert_contacts", json!({"contacts": [{"email": "Ada@Example.com", "first_name": "Ada"}]})).await;
    assert_eq!(first["items"][0]["status"], "created");
    let ada = id(&first["items"][0]["record"]);
    // Two items with one key are refused before anything is written.
    let err = app
        .err("upsert_contacts", json!({"contacts": [{"email": "ada@example.com"}, {"email": "ADA@example.com"}]}))
        .await;
    assert!(err.contains("same email"), "{err}");
    let v = app.ok("upsert_contacts", json!({"contacts": [{"email": "ada@example.com", "first_name": "Ada"}]})).await;
    assert_eq!(v["items"][0]["status"], "unchanged");
    let v = app.ok("upsert_contacts", json!({"contacts": [{"email": "ada@example.com", "title": "CTO"}]})).await;
    assert_eq!(v["items"][0]["status"], "updated");
    assert_eq!(v["items"][0]["record"]["title"], "CTO");
    assert_eq!(v["items"][0]["matches"], json!([ada]));
    // Two records with one email: ambiguous, nothing written for that item.
    app.create_contacts(json!([{"email": "twin@example.com"}, {"email": "twin@example.com"}])).await;
    let v = app
        .ok(
            "upsert_contacts",
            json!({"contacts": [{"email": "twin@example.com", "title": "X"}, {"email": "new@example.com"}]}),
        )
        .await;
    assert_eq!(v["items"][0]["status"], "ambiguous");
    assert_eq!(v["items"][0]["matches"].as_array().unwrap().len(), 2);
    assert!(v["items"][0]["record"].is_null());
    assert_eq!(v["items"][1]["status"], "created");
    let titled =
        app.search_ids(json!({"entity": "contact", "filters": [{"field": "title", "op": "eq", "value": "X"}]})).await;
    assert!(titled.is_empty(), "the ambiguous item wrote nothing");
    let err = app.err("upsert_contacts", json!({"contacts": [{"first_name": "No key"}]})).await;
    assert!(err.contains("needs `email`"), "{err}");

    let v = app.ok("upsert_companies", json!({"companies": [{"name": "Acme", "domain": "https://ACME.com/"}]})).await;
    assert_eq!(v["items"][0]["status"], "created");
    let v = app.ok("upsert_companies", json!({"companies": [{"name": "Acme Inc", "domain": "acme.com"}]})).await;
    assert_eq!(
        (v["items"][0]["status"].as_str(), v["items"][0]["record"]["name"].as_str()),
        (Some("updated"), Some("Acme Inc"))
    );
}

#[tokio::test]
async fn links_work_either_way_round_and_are_checked() {
    let app = spawn_app().await;
    let acme = id(&app.create_companies(json!([{"name": "Acme"}])).await[0]);
    let ada = id(&app.create_contacts(json!([{"first_name": "Ada"}])).await[0]);
    let deal = id(&app.ok("create_deals", json!({"deals": [{"name": "Renewal"}]})).await["items"][0]);
    let task = id(&app.ok("create_tasks", json!({"tasks": [{"title": "Call"}]})).await["items"][0]);
    let link = |a: (&str, &str), b: (&str, &str)| json!({"from": {"entity": a.0, "id": a.1}, "to": {"entity": b.0, "id": b.1}});
    let v = app
        .ok(
            "link_records",
            json!({"links": [
                link(("company", &acme), ("contact", &ada)),
                link(("deal", &deal), ("contact", &ada)),
                link(("deal", &deal), ("company", &acme)),
                link(("deal", &deal), ("task", &task)),
            ]}),
        )
        .await;
    assert_eq!(v["changed"], 3, "the contact, the deal and the task changed");
    let got = app
        .ok(
            "get_records",
            json!({"records": [{"entity": "contact", "id": ada}, {"entity": "deal", "id": deal}, {"entity": "task", "id": task}]}),
        )
        .await;
    assert_eq!(got["items"][0]["company_id"], acme);
    assert_eq!(got["items"][1]["contact_ids"], json!([ada]));
    assert_eq!(got["items"][1]["company_id"], acme);
    assert_eq!(got["items"][2]["record"], json!({"entity": "deal", "id": deal}));
    // Linking again changes nothing; both sides have it on their timelines.
    assert_eq!(
        app.ok("link_records", json!({"links": [link(("contact", &ada), ("company", &acme))]})).await["changed"],
        0
    );
    let actions: Vec<String> =
        timeline(&app, "company", &acme).await.iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    assert!(actions.contains(&"linked".to_owned()), "{actions:?}");

    let v = app.ok("unlink_records", json!({"links": [link(("contact", &ada), ("deal", &deal))]})).await;
    assert_eq!(v["changed"], 1);
    let got = app.ok("get_records", json!({"records": [{"entity": "deal", "id": deal}]})).await;
    assert_eq!(got["items"][0]["contact_ids"], json!([]));

    let err = app.err("link_records", json!({"links": [link(("contact", &ada), ("contact", &ada))]})).await;
    assert!(err.contains("cannot be linked"), "{err}");
    let err = app.err("link_records", json!({"links": [link(("contact", &ada), ("company", "nope"))]})).await;
    assert!(err.contains("not found"), "{err}");
    let viewer = app.key_with(Some("viewer"), &[]).await;
    let err =
        app.call_as(&viewer, "link_records", json!({"links": [link(("contact", &ada), ("company", &acme))]})).await;
    assert!(err.unwrap_err().contains("may not call"));
    let contacts_only = app.key_with(None, &["contacts:read", "contacts:write", "companies:read"]).await;
    let err = app
        .call_as(&contacts_only, "link_records", json!({"links": [link(("contact", &ada), ("company", &acme))]}))
        .await
        .unwrap_err();
    assert!(err.contains("companies:write"), "write on both sides: {err}");
}

#[tokio::test]
async fn merge_moves_everything_to_the_kept_record() {
    let app = spawn_app().await;
    let acme = id(&app.create_companies(json!([{"name": "Acme"}])).await[0]);
    let people = app
        .create_contacts(json!([
            {"first_name": "Ada", "tags": ["vip"]},
            {"first_name": "Ada L.", "last_name": "Lovelace", "email": "ada@example.com", "company_id": acme, "tags": ["engineer"]}
        ]))
        .await;
    let (keep, dup) = (id(&people[0]), id(&people[1]));
    let deal = id(&app.ok("create_deals", json!({"deals": [{"name": "D", "contact_ids": [dup]}]})).await["items"][0]);
    app.ok("add_notes", json!({"notes": [{"body": "met", "record": {"entity": "contact", "id": dup}}]})).await;
    let v = app.ok("merge_records", json!({"entity": "contact", "keep_id": keep, "merge_ids": [dup]})).await;
    let kept = &v["record"];
    assert_eq!(kept["first_name"], "Ada", "the kept record's own values stay");
    assert_eq!(kept["last_name"], "Lovelace", "empty fields are filled");
    assert_eq!(kept["email"], "ada@example.com");
    assert_eq!(kept["company_id"], acme);
    assert_eq!(kept["tags"], json!(["vip", "engineer"]));
    assert_eq!(kept["notes"][0]["body"], "met", "notes move along");
    let got = app
        .ok("get_records", json!({"records": [{"entity": "deal", "id": deal}, {"entity": "contact", "id": dup}]}))
        .await;
    assert_eq!(got["items"][0]["contact_ids"], json!([keep]));
    assert_eq!(got["missing"], json!([{"entity": "contact", "id": dup}]), "the merged record is in the trash");
    let actions: Vec<String> =
        timeline(&app, "contact", &keep).await.iter().map(|e| e["action"].as_str().unwrap().to_owned()).collect();
    assert!(actions.contains(&"merged".to_owned()), "{actions:?}");
    let err = app.err("merge_records", json!({"entity": "deal", "keep_id": deal, "merge_ids": [deal]})).await;
    assert!(err.contains("contacts or companies"), "{err}");
    let member = app.key_with(Some("member"), &[]).await;
    let err =
        app.call_as(&member, "merge_records", json!({"entity": "contact", "keep_id": keep, "merge_ids": [dup]})).await;
    assert!(err.unwrap_err().contains("may not call"), "merging needs delete");
}

#[tokio::test]
async fn the_trash_restores_records_with_their_links_until_purged() {
    let app = spawn_app().await;
    let acme = id(&app.create_companies(json!([{"name": "Acme", "domain": "acme.com"}])).await[0]);
    let ada = id(&app.create_contacts(json!([{"first_name": "Ada", "company_id": acme}])).await[0]);
    app.ok("delete_records", json!({"entity": "company", "ids": [acme, acme]})).await;
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": ada}]})).await;
    assert!(got["items"][0]["company_id"].is_null(), "references to a trashed record are cleared");
    // The domain is free while its company is in the trash...
    let other = id(&app.create_companies(json!([{"name": "Acme 2", "domain": "acme.com"}])).await[0]);
    let err = app.err("restore_records", json!({"entity": "company", "ids": [acme]})).await;
    assert!(err.contains("domain"), "...so the restore is refused while it is taken: {err}");
    app.ok("delete_records", json!({"entity": "company", "ids": [other]})).await;
    let v = app.ok("restore_records", json!({"entity": "company", "ids": [acme]})).await;
    assert_eq!(v["restored"], json!([acme]));
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": ada}]})).await;
    assert_eq!(got["items"][0]["company_id"], acme, "the link is back");
    let err = app.err("restore_records", json!({"entity": "company", "ids": [acme]})).await;
    assert!(err.contains("not all of these companies are in the trash"), "{err}");

    // Deleted 31 days ago: purged by housekeeping, and no longer restorable.
    app.ok("delete_records", json!({"entity": "contact", "ids": [ada]})).await;
    let long_ago = (rapport::time::now_ms() - 31 * rapport::time::DAY_MS).to_string();
    app.sql("UPDATE contacts SET deleted_at = CAST($1 AS BIGINT)", &long_ago).await;
    let err = app.err("restore_records", json!({"entity": "contact", "ids": [ada]})).await;
    assert!(err.contains("30 days"), "{err}");
    app.state.housekeeping().await;
    let err = app.err("restore_records", json!({"entity": "contact", "ids": [ada]})).await;
    assert!(err.contains("not all"), "{err}");
    // A trashed record keeps its history.
    let items = timeline(&app, "company", &other).await;
    assert_eq!(items[0]["action"], "deleted");
}

#[tokio::test]
async fn deals_group_by_stage_with_exact_sums() {
    let app = spawn_app().await;
    app.ok(
        "create_deals",
        json!({"deals": [
            {"name": "A", "value": "0.10", "currency": "EUR", "stage": "proposal"},
            {"name": "B", "value": "0.20", "currency": "EUR", "stage": "proposal"},
            {"name": "C", "value": "100", "currency": "USD", "stage": "proposal"},
            {"name": "D", "value": "5.5", "currency": "EUR", "stage": "won"},
            {"name": "E", "stage": "lead"}
        ]}),
    )
    .await;
    let v = app.ok("count_records", json!({"entity": "deal", "group_by": "stage"})).await;
    assert_eq!(v["count"], 5);
    let groups = v["groups"].as_array().unwrap();
    let proposal = groups.iter().find(|g| g["value"] == "proposal").unwrap();
    assert_eq!(proposal["count"], 3);
    assert_eq!(proposal["sum"], json!({"EUR": "0.30", "USD": "100"}));
    let lead = groups.iter().find(|g| g["value"] == "lead").unwrap();
    assert_eq!(lead["sum"], json!({}));
    let v = app
        .ok("count_records", json!({"entity": "deal", "group_by": "status", "filters": [{"field": "currency", "op": "eq", "value": "EUR"}]}))
        .await;
    assert_eq!(v["count"], 3);
    let err = app.err("count_records", json!({"entity": "deal", "group_by": "contact_ids"})).await;
    assert!(err.contains("cannot group") && err.contains("stage"), "{err}");
    let err = app.err("count_records", json!({"entity": "contact", "group_by": "nope"})).await;
    assert!(err.contains("cannot group"), "{err}");
}

#[tokio::test]
async fn search_all_finds_every_kind() {
    let app = spawn_app().await;
    app.create_companies(json!([{"name": "Zephyr Labs", "domain": "zephyr.io"}])).await;
    app.create_contacts(json!([{"first_name": "Zephyr", "last_name": "Cole"}, {"first_name": "Other"}])).await;
    app.ok("create_deals", json!({"deals": [{"name": "Zephyr expansion"}]})).await;
    let v = app.ok("search_all", json!({"query": "zephyr"})).await;
    let entities: Vec<&str> = v["items"].as_array().unwrap().iter().map(|i| i["entity"].as_str().unwrap()).collect();
    assert_eq!(entities.len(), 3);
    for e in ["contact", "company", "deal"] {
        assert!(entities.contains(&e), "{entities:?}");
    }
    let contacts_only = app.key_with(None, &["contacts:read"]).await;
    let v = app.call_as(&contacts_only, "search_all", json!({"query": "zephyr"})).await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "only what the key may read");
    assert!(app.err("search_all", json!({"query": " "})).await.contains("1 to 200"));
}

#[tokio::test]
async fn every_write_reaches_the_timeline_once() {
    let app = spawn_app().await;
    let ada = app.create_contacts(json!([{"first_name": "Ada", "email": "ada@example.com"}])).await[0].clone();
    let ada_id = id(&ada);
    app.ok("update_contacts", json!({"contacts": [{"id": ada_id, "title": "CTO"}]})).await;
    // A change that changes nothing writes nothing.
    let same = app
        .ok("update_contacts", json!({"contacts": [{"id": ada_id, "title": "CTO", "email": "ADA@example.com"}]}))
        .await;
    assert_eq!(same["items"][0]["title"], "CTO");
    app.ok("add_notes", json!({"notes": [{"body": "hello", "record": {"entity": "contact", "id": ada_id}}]})).await;
    let items = timeline(&app, "contact", &ada_id).await;
    let actions: Vec<(&str, &str)> =
        items.iter().map(|e| (e["entity"].as_str().unwrap(), e["action"].as_str().unwrap())).collect();
    assert_eq!(actions, vec![("note", "created"), ("contact", "updated"), ("contact", "created")]);
    assert_eq!(items[1]["changes"], json!({"title": {"before": null, "after": "CTO"}}));
    assert_eq!(items[1]["actor"]["type"], "key");
    assert_eq!(items[1]["actor"]["name"], "test owner");
    assert_eq!(items[1]["actor"]["user_email"], "owner@localhost");
    // Paging by cursor.
    let page = app.ok("get_timeline", json!({"entity": "contact", "id": ada_id, "limit": 2})).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let rest = app
        .ok("get_timeline", json!({"entity": "contact", "id": ada_id, "limit": 2, "cursor": page["next_cursor"]}))
        .await;
    assert_eq!(rest["items"][0]["action"], "created");
    assert!(rest["next_cursor"].is_null());
    // Another organization cannot read it.
    let (_, other) = app.new_org("beta").await;
    let err = app.call_as(&other, "get_timeline", json!({"entity": "contact", "id": ada_id})).await.unwrap_err();
    assert!(err.contains("not found"), "{err}");
    // Stale updates are refused with the record as it is.
    let err = app
        .err(
            "update_contacts",
            json!({"contacts": [{"id": ada_id, "title": "CEO", "if_updated_at": ada["updated_at"]}]}),
        )
        .await;
    assert!(err.contains("changed since you read it") && err.contains("\"title\":\"CTO\""), "{err}");
    let now = app.ok("get_records", json!({"records": [{"entity": "contact", "id": ada_id}]})).await["items"][0]["updated_at"].clone();
    let v =
        app.ok("update_contacts", json!({"contacts": [{"id": ada_id, "title": "CEO", "if_updated_at": now}]})).await;
    assert_eq!(v["items"][0]["title"], "CEO");
}

#[tokio::test]
async fn custom_fields_are_typed_filterable_and_sortable() {
    let app = spawn_app().await;
    app.ok(
        "create_custom_field",
        json!({"entity": "company", "key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
    )
    .await;
    app.ok("create_custom_field", json!({"entity": "company", "key": "seats", "label": "Seats", "type": "number"}))
        .await;
    app.ok("create_custom_field", json!({"entity": "company", "key": "arr", "label": "ARR", "type": "currency"})).await;
    for (args, needle) in [
        (json!({"entity": "company", "key": "Bad Key", "label": "x", "type": "text"}), "lowercase"),
        (json!({"entity": "company", "key": "x", "label": "x", "type": "colour"}), "`type` is one of"),
        (json!({"entity": "company", "key": "x", "label": "x", "type": "select"}), "needs `options`"),
        (json!({"entity": "company", "key": "name", "label": "x", "type": "text"}), "built-in"),
        (json!({"entity": "company", "key": "tier", "label": "x", "type": "text"}), "already has"),
    ] {
        let err = app.err("create_custom_field", args.clone()).await;
        assert!(err.contains(needle), "{args}: {err}");
    }
    let cos = app
        .create_companies(json!([
            {"name": "A", "custom": {"tier": "gold", "seats": 10, "arr": {"amount": "1200.50", "currency": "eur"}}},
            {"name": "B", "custom": {"tier": "silver", "seats": "200"}}
        ]))
        .await;
    assert_eq!(cos[0]["custom"]["arr"], json!({"amount": "1200.50", "currency": "EUR"}));
    assert_eq!(cos[1]["custom"]["seats"], 200.0);
    let err = app.err("create_companies", json!({"companies": [{"name": "C", "custom": {"tier": "bronze"}}]})).await;
    assert!(err.contains("gold, silver"), "{err}");
    let err =
        app.err("create_companies", json!({"companies": [{"name": "C", "custom": {"arr": {"amount": 5}}}]})).await;
    assert!(err.contains("amount"), "{err}");
    let ids = app
        .search_ids(json!({"entity": "company", "filters": [{"field": "custom.seats", "op": "gt", "value": 50}]}))
        .await;
    assert_eq!(ids, vec![id(&cos[1])]);
    let ids =
        app.search_ids(json!({"entity": "company", "sort": [{"field": "custom.seats", "direction": "desc"}]})).await;
    assert_eq!(ids, vec![id(&cos[1]), id(&cos[0])]);
    app.ok(
        "update_custom_field",
        json!({"entity": "company", "key": "tier", "options": ["gold", "silver", "bronze"], "label": "Level"}),
    )
    .await;
    app.create_companies(json!([{"name": "C", "custom": {"tier": "bronze"}}])).await;
    let d = app.ok("describe_entity", json!({"entity": "company"})).await;
    assert_eq!(d["custom_fields"][0]["label"], "Level");
    app.ok("delete_custom_field", json!({"entity": "company", "key": "seats"})).await;
    let got = app.ok("get_records", json!({"records": [{"entity": "company", "id": id(&cos[1])}]})).await;
    assert!(got["items"][0]["custom"].get("seats").is_none(), "values go with the field");
    let member = app.key_with(Some("member"), &[]).await;
    let err = app
        .call_as(&member, "create_custom_field", json!({"entity": "deal", "key": "x", "label": "x", "type": "text"}))
        .await;
    assert!(err.unwrap_err().contains("may not call"));
}

#[tokio::test]
async fn pipelines_are_managed_and_carry_their_deals() {
    let app = spawn_app().await;
    app.ok(
        "create_pipeline",
        json!({"name": "partners", "stages": [{"name": "intro"}, {"name": "signed", "kind": "won"}, {"name": "dropped", "kind": "lost"}]}),
    )
    .await;
    let deal =
        app.ok("create_deals", json!({"deals": [{"name": "P", "pipeline": "partners"}]})).await["items"][0].clone();
    assert_eq!(deal["stage"], "intro");
    let err = app.err("update_deals", json!({"deals": [{"id": deal["id"], "stage": "proposal"}]})).await;
    assert!(err.contains("not a stage of pipeline `partners`") && err.contains("intro, signed, dropped"), "{err}");
    // A used stage cannot be dropped; renamed with `was`, its deals follow.
    let err = app
        .err("update_pipeline", json!({"name": "partners", "stages": [{"name": "signed", "kind": "won"}, {"name": "dropped", "kind": "lost"}]}))
        .await;
    assert!(err.contains("`intro` holds 1 deals"), "{err}");
    let v = app
        .ok(
            "update_pipeline",
            json!({"name": "partners", "new_name": "alliances", "stages": [{"name": "first call", "was": "intro"}, {"name": "signed", "kind": "won"}]}),
        )
        .await;
    assert_eq!(v["name"], "alliances");
    let got = app.ok("get_records", json!({"records": [{"entity": "deal", "id": deal["id"]}]})).await;
    assert_eq!(
        (got["items"][0]["pipeline"].as_str(), got["items"][0]["stage"].as_str()),
        (Some("alliances"), Some("first call"))
    );
    let d = app.ok("describe_entity", json!({"entity": "deal"})).await;
    let names: Vec<&str> = d["pipelines"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["sales", "alliances"]);
    assert_eq!(d["pipelines"][0]["stages"][4], json!({"name": "won", "kind": "won"}));
    for (args, needle) in [
        (json!({"name": "sales", "stages": [{"name": "x"}]}), "exists"),
        (json!({"name": "p2", "stages": []}), "1 to 30"),
        (json!({"name": "p2", "stages": [{"name": "a"}, {"name": "a"}]}), "twice"),
        (json!({"name": "p2", "stages": [{"name": "a", "kind": "maybe"}]}), "open, won or lost"),
    ] {
        let err = app.err("create_pipeline", args.clone()).await;
        assert!(err.contains(needle), "{args}: {err}");
    }
}

#[tokio::test]
async fn idempotency_keys_make_retries_safe() {
    let app = spawn_app().await;
    let call = json!({"deals": [{"name": "Once"}], "idempotency_key": "retry-1"});
    let first = app.ok("create_deals", call.clone()).await;
    let again = app.ok("create_deals", call.clone()).await;
    assert_eq!(first, again, "the first answer, again");
    assert_eq!(app.ok("count_records", json!({"entity": "deal"})).await["count"], 1);
    let err = app.err("create_deals", json!({"deals": [{"name": "Other"}], "idempotency_key": "retry-1"})).await;
    assert!(err.contains("different call"), "{err}");
    // Another key's identical call is its own.
    let other = app.key_with(Some("member"), &[]).await;
    app.call_as(&other, "create_deals", call.clone()).await.unwrap();
    assert_eq!(app.ok("count_records", json!({"entity": "deal"})).await["count"], 2);
    // A failed call leaves the key free for a fixed retry.
    let bad = json!({"notes": [{"body": "x", "record": {"entity": "contact", "id": "nope"}}], "idempotency_key": "n1"});
    app.err("add_notes", bad).await;
    let ada = id(&app.create_contacts(json!([{"first_name": "Ada"}])).await[0]);
    let good = json!({"notes": [{"body": "x", "record": {"entity": "contact", "id": ada}}], "idempotency_key": "n1"});
    app.ok("add_notes", good).await;
    // After 24 hours a key is forgotten.
    let day_ago = (rapport::time::now_ms() - rapport::time::DAY_MS - 1000).to_string();
    app.sql("UPDATE idempotency_keys SET created_at = CAST($1 AS BIGINT)", &day_ago).await;
    app.ok("create_deals", call).await;
    assert_eq!(app.ok("count_records", json!({"entity": "deal"})).await["count"], 3);
    let err = app.err("update_deals", json!({"deals": [{"id": "x"}], "idempotency_key": "k"})).await;
    assert!(err.contains("unknown field `idempotency_key`"), "{err}");
}

#[tokio::test]
async fn get_records_dedupes_projects_and_lists_missing() {
    let app = spawn_app().await;
    let ada = app.create_contacts(json!([{"first_name": "Ada", "email": "ada@example.com"}])).await[0].clone();
    let ada_id = id(&ada);
    for n in 0..4 {
        app.ok(
            "add_notes",
            json!({"notes": [{"body": format!("note {n}"), "record": {"entity": "contact", "id": ada_id}}]}),
        )
        .await;
    }
    let v = app
        .ok(
            "get_records",
            json!({"records": [{"entity": "contact", "id": ada_id}, {"entity": "contact", "id": ada_id}, {"entity": "deal", "id": "gone"}],
                   "fields": ["email", "notes"]}),
        )
        .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "a repeated id is read once");
    let item = v["items"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, vec!["email", "entity", "id", "notes"]);
    assert_eq!(item["notes"].as_array().unwrap().len(), 3, "the 3 newest notes");
    assert_eq!(item["notes"][0]["body"], "note 3");
    assert_eq!(v["missing"], json!([{"entity": "deal", "id": "gone"}]));
    let err =
        app.err("get_records", json!({"records": [{"entity": "contact", "id": ada_id}], "fields": ["nope"]})).await;
    assert!(err.contains("`fields` names `nope`"), "{err}");
    let v = app.ok("search_records", json!({"entity": "contact", "fields": ["first_name"]})).await;
    assert_eq!(v["items"][0].as_object().unwrap().len(), 3);
}
