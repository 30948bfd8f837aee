//! Deals in pipelines, tasks and notes: defaults, rules, relations and refusals.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn deals_follow_their_pipeline() {
    let app = spawn_app().await;
    let acme = app.create_companies(json!([{"name": "Acme", "domain": "acme.com"}])).await[0]["id"].clone();
    let ada = app.create_contacts(json!([{"first_name": "Ada"}])).await[0]["id"].clone();
    let deal = app
        .ok("create_deals", json!({"deals": [{"name": "Acme renewal", "value": "1234.50", "currency": "eur", "company_id": acme, "contact_ids": [ada]}]}))
        .await["items"][0]
        .clone();
    assert_eq!(deal["pipeline"], "sales");
    assert_eq!(deal["stage"], "lead", "the pipeline's first stage");
    assert_eq!(deal["status"], "open");
    assert_eq!(deal["value"], "1234.50", "exact, as given");
    assert_eq!(deal["currency"], "EUR");
    assert_eq!(deal["contact_ids"], json!([ada]));
    let id = deal["id"].clone();

    let won = app.ok("update_deals", json!({"deals": [{"id": id, "stage": "won"}]})).await["items"][0].clone();
    assert_eq!(won["status"], "won", "a won stage sets the status");
    let back = app.ok("update_deals", json!({"deals": [{"id": id, "stage": "proposal"}]})).await["items"][0].clone();
    assert_eq!(back["status"], "open");

    for (args, needle) in [
        (json!({"name": "X", "stage": "signed"}), "not a stage of pipeline `sales`"),
        (json!({"name": "X", "pipeline": "partners"}), "no pipeline `partners`"),
        (json!({"name": "X", "value": "10"}), "needs a `currency`"),
        (json!({"name": "X", "value": "1e5", "currency": "EUR"}), "exact decimal"),
        (json!({"name": "X", "value": 10.5, "currency": "EUR"}), "exact decimal"),
        (json!({"name": "X", "value": "10", "currency": "EURO"}), "ISO 4217"),
        (json!({"name": "X", "status": "maybe"}), "open, won, lost"),
        (json!({"name": "X", "contact_ids": ["01a20000-0000-7000-8000-000000000000"]}), "not found"),
    ] {
        let err = app.err("create_deals", json!({"deals": [args.clone()]})).await;
        assert!(err.contains(needle), "{args}: {err}");
    }
    assert_eq!(app.ok("count_records", json!({"entity": "deal"})).await["count"], 1, "refused calls wrote nothing");

    // Filters on the links and on the decimal value.
    let ids = app
        .search_ids(json!({"entity": "deal", "filters": [{"field": "contact_ids", "op": "has_any", "value": [ada]}]}))
        .await;
    assert_eq!(ids, vec![id.as_str().unwrap().to_owned()]);
    let ids =
        app.search_ids(json!({"entity": "deal", "filters": [{"field": "value", "op": "gt", "value": 1000}]})).await;
    assert_eq!(ids.len(), 1);
    let ids = app
        .search_ids(json!({"entity": "deal", "filters": [{"field": "value", "op": "gt", "value": "1234.50"}]}))
        .await;
    assert!(ids.is_empty());
}

#[tokio::test]
async fn tasks_and_notes_attach_to_records() {
    let app = spawn_app().await;
    let ada = app.create_contacts(json!([{"first_name": "Ada"}])).await[0]["id"].clone();
    let task = app
        .ok("create_tasks", json!({"tasks": [{"title": "Call Ada", "due_at": "2027-01-15T09:00:00Z", "record": {"entity": "contact", "id": ada}}]}))
        .await["items"][0]
        .clone();
    assert_eq!(task["status"], "open");
    assert!(task["done_at"].is_null());
    let done =
        app.ok("update_tasks", json!({"tasks": [{"id": task["id"], "status": "done"}]})).await["items"][0].clone();
    assert!(done["done_at"].is_string(), "{done}");
    let reopened =
        app.ok("update_tasks", json!({"tasks": [{"id": task["id"], "status": "open"}]})).await["items"][0].clone();
    assert!(reopened["done_at"].is_null());

    let note = app
        .ok(
            "add_notes",
            json!({"notes": [{"body": "**Budget** approved", "record": {"entity": "contact", "id": ada}}]}),
        )
        .await;
    assert_eq!(note["items"][0]["body"], "**Budget** approved");
    let err = app.err("add_notes", json!({"notes": [{"body": "x"}]})).await;
    assert!(err.contains("missing field `record`"), "{err}");
    let err = app.err("add_notes", json!({"notes": [{"body": "x", "record": {"entity": "deal", "id": "nope"}}]})).await;
    assert!(err.contains("not found"), "{err}");
    let big = "x".repeat(100 * 1024 + 1);
    let err = app.err("add_notes", json!({"notes": [{"body": big, "record": {"entity": "contact", "id": ada}}]})).await;
    assert!(err.contains("bytes"), "{err}");
}
