//! Tenant isolation: another organization's records are invisible by id and by filter.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn another_organizations_records_are_not_found() {
    let app = spawn_app().await;
    let (_other_org, other) = app.new_org("globex").await;
    let mine = app.create_companies(json!([{"name": "Acme", "domain": "acme.com"}])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let my_contact = app.create_contacts(json!([{"first_name": "Ada", "company_id": mine}])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The same domain is free in another organization.
    let theirs = app
        .call_as(&other, "create_companies", json!({"companies": [{"name": "Acme (theirs)", "domain": "acme.com"}]}))
        .await
        .unwrap();
    let their_company = theirs["items"][0]["id"].as_str().unwrap().to_owned();

    let not_found = |r: Result<serde_json::Value, String>| {
        let e = r.expect_err("must be refused");
        assert!(e.contains("not found"), "{e}");
    };
    // Reads by id list what they cannot see instead of failing.
    let got = app.call_as(&other, "get_records", json!({"records": [{"entity": "contact", "id": my_contact}]})).await;
    assert_eq!(got.unwrap()["missing"], json!([{"entity": "contact", "id": my_contact}]));
    not_found(
        app.call_as(&other, "update_contacts", json!({"contacts": [{"id": my_contact, "title": "pwned"}]})).await,
    );
    not_found(app.call_as(&other, "delete_records", json!({"entity": "company", "ids": [mine]})).await);
    // Linking to another organization's company is refused too.
    not_found(
        app.call_as(&other, "create_contacts", json!({"contacts": [{"first_name": "Eve", "company_id": mine}]})).await,
    );
    not_found(
        app.call_as(&other, "update_contacts", json!({"contacts": [{"id": my_contact, "company_id": their_company}]}))
            .await,
    );
    not_found(
        app.call("update_contacts", json!({"contacts": [{"id": my_contact, "company_id": their_company}]})).await,
    );

    // By filter: nothing of ours shows up for them.
    let v = app
        .call_as(
            &other,
            "search_records",
            json!({"entity": "contact", "filters": [{"field": "id", "op": "eq", "value": my_contact}]}),
        )
        .await
        .unwrap();
    assert!(v["items"].as_array().unwrap().is_empty());
    let v = app
        .call_as(
            &other,
            "search_records",
            json!({"entity": "contact", "filters": [{"field": "company_id", "op": "in", "value": [mine]}]}),
        )
        .await
        .unwrap();
    assert!(v["items"].as_array().unwrap().is_empty());
    let v = app.call_as(&other, "count_records", json!({"entity": "contact"})).await.unwrap();
    assert_eq!(v["count"], 0);
    let v = app.call_as(&other, "search_records", json!({"entity": "company", "query": "acme"})).await.unwrap();
    assert_eq!(v["items"].as_array().unwrap().len(), 1);
    assert_eq!(v["items"][0]["id"], their_company);

    // Ours is untouched.
    let v = app.ok("get_records", json!({"records": [{"entity": "contact", "id": my_contact}]})).await;
    assert!(v["items"][0]["title"].is_null());
    assert_eq!(v["items"][0]["company_id"], mine);
    let ws = app.call_as(&other, "get_workspace", json!({})).await.unwrap();
    assert_eq!(ws["organization"]["name"], "globex");
    assert_eq!(ws["user"]["email"], "owner@globex");
}

/// Deals, tasks, notes, links, merges, the trash, timelines and pipelines keep to their
/// organization: another organization's ids answer as not found everywhere.
#[tokio::test]
async fn every_entity_and_relation_keeps_to_its_organization() {
    let app = spawn_app().await;
    let (_, other) = app.new_org("initech").await;
    let ada = app.create_contacts(json!([{"first_name": "Ada"}])).await[0]["id"].as_str().unwrap().to_owned();
    let acme = app.create_companies(json!([{"name": "Acme"}])).await[0]["id"].as_str().unwrap().to_owned();
    let deal =
        app.ok("create_deals", json!({"deals": [{"name": "Mine", "contact_ids": [ada]}]})).await["items"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let theirs =
        app.call_as(&other, "create_contacts", json!({"contacts": [{"first_name": "Eve"}]})).await.unwrap()["items"][0]
            ["id"]
            .as_str()
            .unwrap()
            .to_owned();
    let refused = |r: Result<serde_json::Value, String>, what: &str| {
        let e = r.expect_err(what);
        assert!(e.contains("not found") || e.contains("not all of these"), "{what}: {e}");
    };
    let link = |a: (&str, &str), b: (&str, &str)| json!({"links": [{"from": {"entity": a.0, "id": a.1}, "to": {"entity": b.0, "id": b.1}}]});
    refused(app.call_as(&other, "link_records", link(("contact", &theirs), ("company", &acme))).await, "link to ours");
    refused(app.call_as(&other, "unlink_records", link(("deal", &deal), ("contact", &ada))).await, "unlink ours");
    refused(
        app.call_as(&other, "create_deals", json!({"deals": [{"name": "X", "contact_ids": [ada]}]})).await,
        "deal with our contact",
    );
    refused(
        app.call_as(
            &other,
            "create_tasks",
            json!({"tasks": [{"title": "X", "record": {"entity": "deal", "id": deal}}]}),
        )
        .await,
        "task on our deal",
    );
    refused(
        app.call_as(&other, "add_notes", json!({"notes": [{"body": "X", "record": {"entity": "contact", "id": ada}}]}))
            .await,
        "note on our contact",
    );
    refused(
        app.call_as(&other, "merge_records", json!({"entity": "contact", "keep_id": theirs, "merge_ids": [ada]})).await,
        "merge ours into theirs",
    );
    refused(app.call_as(&other, "get_timeline", json!({"entity": "deal", "id": deal})).await, "our timeline");
    refused(
        app.call_as(&other, "update_deals", json!({"deals": [{"id": deal, "stage": "won"}]})).await,
        "update our deal",
    );
    app.ok("delete_records", json!({"entity": "contact", "ids": [ada]})).await;
    refused(app.call_as(&other, "restore_records", json!({"entity": "contact", "ids": [ada]})).await, "restore ours");
    let v = app.call_as(&other, "get_records", json!({"records": [{"entity": "deal", "id": deal}]})).await.unwrap();
    assert_eq!(v["missing"], json!([{"entity": "deal", "id": deal}]));
    let v = app.call_as(&other, "search_all", json!({"query": "mine"})).await.unwrap();
    assert!(v["items"].as_array().unwrap().is_empty());
    // Their pipelines are their own: changing ours is not visible to them.
    app.ok("update_pipeline", json!({"name": "sales", "new_name": "acme sales"})).await;
    let d = app.call_as(&other, "describe_entity", json!({"entity": "deal"})).await.unwrap();
    assert_eq!(d["pipelines"][0]["name"], "sales");
    // Ours is intact, and the restore brings the deal's contact back.
    app.ok("restore_records", json!({"entity": "contact", "ids": [ada]})).await;
    let v = app.ok("get_records", json!({"records": [{"entity": "deal", "id": deal}]})).await;
    assert_eq!(v["items"][0]["contact_ids"], json!([ada]));
}
