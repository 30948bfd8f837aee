//! Creating, reading, updating and deleting contacts and companies through tools.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn contacts_and_companies_round_trip() {
    let app = spawn_app().await;
    let companies = app.create_companies(json!([{"name": "Acme", "domain": "https://ACME.com/about", "industry": "Manufacturing", "tags": ["key account"]}])).await;
    let acme = companies[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(companies[0]["domain"], "acme.com", "a pasted URL becomes its domain");
    let contacts = app
        .create_contacts(json!([
            {"first_name": "Ada", "last_name": "Lovelace", "email": "Ada@Example.com", "company_id": acme, "tags": ["vip", "vip", "engineer"]},
            {"first_name": "Grace", "last_name": "Hopper", "phone": "+1 555 0100"}
        ]))
        .await;
    assert_eq!(contacts.len(), 2);
    let ada = contacts[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(contacts[0]["email"], "ada@example.com");
    assert_eq!(contacts[0]["tags"], json!(["vip", "engineer"]));
    assert_eq!(contacts[0]["entity"], "contact");

    // get_records returns relations.
    let got = app
        .ok("get_records", json!({"records": [{"entity": "contact", "id": ada}, {"entity": "company", "id": acme}]}))
        .await;
    let items = got["items"].as_array().unwrap();
    assert_eq!(items[0]["company"]["name"], "Acme");
    assert_eq!(items[1]["contact_count"], 1);
    assert_eq!(items[1]["contacts"][0]["name"], "Ada Lovelace");

    // Partial update: given fields change, absent ones stay, null clears.
    let updated =
        app.ok("update_contacts", json!({"contacts": [{"id": ada, "title": "Countess", "company_id": null}]})).await;
    let c = &updated["items"][0];
    assert_eq!(c["title"], "Countess");
    assert_eq!(c["first_name"], "Ada");
    assert!(c["company_id"].is_null());
    assert!(c["updated_at"].as_str().unwrap() > contacts[0]["updated_at"].as_str().unwrap());

    let updated =
        app.ok("update_companies", json!({"companies": [{"id": acme, "industry": null, "name": "Acme Corp"}]})).await;
    assert_eq!(updated["items"][0]["name"], "Acme Corp");
    assert!(updated["items"][0]["industry"].is_null());
    assert_eq!(updated["items"][0]["domain"], "acme.com");

    // Counts and workspace agree.
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 2);
    assert_eq!(app.ok("get_workspace", json!({})).await["counts"]["companies"], 1);

    // Delete: all or nothing.
    let missing = "01a20000-0000-7000-8000-000000000000";
    let err = app.err("delete_records", json!({"entity": "contact", "ids": [ada, missing]})).await;
    assert!(err.contains("not found") && err.contains(missing), "{err}");
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 2);
    let done = app.ok("delete_records", json!({"entity": "contact", "ids": [ada]})).await;
    assert_eq!(done["deleted"], json!([ada]));
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": ada}]})).await;
    assert_eq!(got["missing"], json!([{"entity": "contact", "id": ada}]));
    // Several companies at once: each with its own contacts.
    let made = app.create_companies(json!([{"name": "Initech"}, {"name": "Globex"}])).await;
    let (initech, globex) = (made[0]["id"].as_str().unwrap(), made[1]["id"].as_str().unwrap());
    app.create_contacts(json!([{"first_name": "Gil", "company_id": initech}])).await;
    app.create_contacts(json!([{"first_name": "Hank", "company_id": globex}])).await;
    app.create_contacts(json!([{"first_name": "Ida", "company_id": globex}])).await;
    let both = json!([{"entity": "company", "id": initech}, {"entity": "company", "id": globex}]);
    let got = app.ok("get_records", json!({"records": both})).await;
    let counts: Vec<&serde_json::Value> =
        got["items"].as_array().unwrap().iter().map(|c| &c["contact_count"]).collect();
    assert_eq!(counts, [1, 2], "{got}");
    assert_eq!(got["items"][1]["contacts"][0]["name"], "Ida", "newest first: {got}");
}

#[tokio::test]
async fn deleting_a_company_keeps_its_contacts() {
    let app = spawn_app().await;
    let acme = app.create_companies(json!([{"name": "Acme"}])).await[0]["id"].as_str().unwrap().to_owned();
    let ada = app.create_contacts(json!([{"first_name": "Ada", "company_id": acme}])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok("delete_records", json!({"entity": "company", "ids": [acme]})).await;
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": ada}]})).await;
    assert!(got["items"][0]["company_id"].is_null());
}

#[tokio::test]
async fn batches_are_all_or_nothing() {
    let app = spawn_app().await;
    let err = app.err("create_contacts", json!({"contacts": [{"first_name": "Ok"}, {"email": "not-an-email"}]})).await;
    assert!(err.contains("contacts[1].email"), "{err}");
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 0);

    app.create_companies(json!([{"name": "Acme", "domain": "acme.com"}])).await;
    let err = app
        .err(
            "create_companies",
            json!({"companies": [{"name": "B", "domain": "b.com"}, {"name": "Acme 2", "domain": "ACME.com"}]}),
        )
        .await;
    assert!(err.contains("already exists"), "{err}");
    let err = app
        .err(
            "create_companies",
            json!({"companies": [{"name": "C", "domain": "c.com"}, {"name": "C2", "domain": "c.com"}]}),
        )
        .await;
    assert!(err.contains("twice"), "{err}");
    assert_eq!(app.ok("count_records", json!({"entity": "company"})).await["count"], 1);

    let too_many: Vec<_> = (0..101).map(|i| json!({"first_name": format!("P{i}")})).collect();
    let err = app.err("create_contacts", json!({"contacts": too_many})).await;
    assert!(err.contains("1 to 100"), "{err}");
    let err = app.err("create_contacts", json!({"contacts": []})).await;
    assert!(err.contains("1 to 100"), "{err}");

    let err = app.err("create_contacts", json!({"contacts": [{"title": "No name"}]})).await;
    assert!(err.contains("first_name, last_name or email"), "{err}");
    let err = app
        .err(
            "create_contacts",
            json!({"contacts": [{"first_name": "A", "company_id": "01a20000-0000-7000-8000-000000000000"}]}),
        )
        .await;
    assert!(err.contains("company"), "{err}");
    let err = app.err("create_contacts", json!({"contacts": [{"first_name": "A", "owner_id": "nobody"}]})).await;
    assert!(err.contains("owner_id"), "{err}");
    let err = app.err("create_contacts", json!({"contacts": [{"first_name": "A", "custom": {"size": 3}}]})).await;
    assert!(err.contains("custom.size") && err.contains("none"), "{err}");
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 0);
}

#[tokio::test]
async fn concurrent_updates_lose_nothing() {
    let app = spawn_app().await;
    let id = app.create_contacts(json!([{"first_name": "Ada"}])).await[0]["id"].as_str().unwrap().to_owned();
    let fields = ["last_name", "title", "phone", "email"];
    let values = ["Lovelace", "Countess", "+44 20 0000", "ada@example.com"];
    let calls = fields.iter().zip(values).map(|(f, v)| {
        let mut patch = serde_json::Map::new();
        patch.insert("id".into(), json!(id));
        patch.insert((*f).into(), json!(v));
        app.call("update_contacts", json!({"contacts": [patch]}))
    });
    for r in futures::future::join_all(calls).await {
        r.expect("update succeeds");
    }
    let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": id}]})).await;
    for (f, v) in fields.iter().zip(values) {
        assert_eq!(got["items"][0][*f], v, "{f} kept");
    }
}
