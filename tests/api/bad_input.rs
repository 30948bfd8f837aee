//! Bad input: refused with a clear message, nothing stored, the server unharmed; odd but
//! valid text stored exactly as given.

use serde_json::json;

use crate::helpers::spawn_app;

#[tokio::test]
async fn wrong_types_and_unknown_fields_are_explained() {
    let app = spawn_app().await;
    let cases = [
        ("create_contacts", json!({"contacts": "Ada"}), "contacts"),
        ("create_contacts", json!({"contacts": [{"first_name": 42}]}), "contacts[0].first_name"),
        ("create_contacts", json!({"contacts": [{"first_name": "A", "emial": "a@b.co"}]}), "unknown field `emial`"),
        ("create_contacts", json!({"contacts": [{"first_name": "A", "tags": "vip"}]}), "contacts[0].tags"),
        ("create_contacts", json!({}), "missing field `contacts`"),
        ("create_companies", json!({"companies": [{"domain": "x.com"}]}), "missing field `name`"),
        ("update_contacts", json!({"contacts": [{"title": "x"}]}), "missing field `id`"),
        ("search_records", json!({"entity": "contact", "limit": "ten"}), "limit"),
        ("get_records", json!({"records": [{"entity": "contact"}]}), "missing field `id`"),
        ("get_workspace", json!({"verbose": true}), "unknown field `verbose`"),
        ("describe_entity", json!({"entity": 7}), "entity"),
        ("delete_records", json!({"entity": "contact", "ids": [1, 2]}), "ids[0]"),
    ];
    for (tool, args, needle) in cases {
        let err = app.err(tool, args.clone()).await;
        assert!(err.contains(needle), "{tool} {args}: {err}");
        assert!(err.contains("Example: "), "{tool}: the message shows a valid call: {err}");
    }
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 0);
    assert_eq!(app.ok("count_records", json!({"entity": "company"})).await["count"], 0);
}

#[tokio::test]
async fn sql_looking_and_unicode_text_is_stored_verbatim() {
    let app = spawn_app().await;
    let strange = [
        "Robert'); DROP TABLE contacts;--",
        "' OR '1'='1",
        "%_\\ wildcard* ?",
        "Zoë Ñandú 李小龍 Ελένη",
        "مرحبا بالعالم",
        "👩🏽‍💻 family: 👨‍👩‍👧‍👦",
        "e\u{301} combining",
        "zero\u{200b}width\u{feff}bom",
        "  spaces kept  ",
        "line\nbreak\ttab",
    ];
    let contacts: Vec<_> = strange.iter().map(|s| json!({"first_name": s, "title": s, "tags": [s]})).collect();
    let created = app.create_contacts(json!(contacts)).await;
    for (i, s) in strange.iter().enumerate() {
        let id = created[i]["id"].as_str().unwrap();
        let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": id}]})).await;
        assert_eq!(got["items"][0]["first_name"], *s);
        assert_eq!(got["items"][0]["tags"][0], *s);
        // Each is findable by exact match, and as a literal substring.
        let ids =
            app.search_ids(json!({"entity": "contact", "filters": [{"field": "title", "op": "eq", "value": s}]})).await;
        assert_eq!(ids, vec![id.to_owned()], "eq {s:?}");
        let ids = app
            .search_ids(json!({"entity": "contact", "filters": [{"field": "tags", "op": "has_any", "value": [s]}]}))
            .await;
        assert_eq!(ids, vec![id.to_owned()], "has_any {s:?}");
    }
    // LIKE wildcards in input are literal.
    let ids = app
        .search_ids(
            json!({"entity": "contact", "filters": [{"field": "first_name", "op": "contains", "value": "%_\\"}]}),
        )
        .await;
    assert_eq!(ids.len(), 1);
    let ids = app.search_ids(json!({"entity": "contact", "query": "%"})).await;
    assert_eq!(ids.len(), 1);
    let ids = app.search_ids(json!({"entity": "contact", "query": "ñandú"})).await;
    assert_eq!(ids.len(), 1, "free text folds non-ASCII case");
    // The tables are all still there.
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], strange.len());
}

#[tokio::test]
async fn limits_on_size_and_content_hold() {
    let app = spawn_app().await;
    let err = app.err("create_contacts", json!({"contacts": [{"first_name": "x".repeat(1001)}]})).await;
    assert!(err.contains("1000"), "{err}");
    let err = app.err("create_contacts", json!({"contacts": [{"first_name": "nul\u{0}byte"}]})).await;
    assert!(err.contains("NUL"), "{err}");
    let tags: Vec<String> = (0..51).map(|i| format!("t{i}")).collect();
    let err = app.err("create_contacts", json!({"contacts": [{"first_name": "A", "tags": tags}]})).await;
    assert!(err.contains("50 tags"), "{err}");
    let mut nested = json!({"field": "first_name", "op": "eq", "value": "x"});
    for _ in 0..6 {
        nested = json!({"any": [nested]});
    }
    let err = app.err("search_records", json!({"entity": "contact", "filters": [nested]})).await;
    assert!(err.contains("nest"), "{err}");
    let many: Vec<_> = (0..60).map(|_| json!({"field": "first_name", "op": "eq", "value": "x"})).collect();
    let err = app.err("search_records", json!({"entity": "contact", "filters": many})).await;
    assert!(err.contains("at most 50"), "{err}");
    let err = app.err("create_companies", json!({"companies": [{"name": "A", "domain": "not a domain"}]})).await;
    assert!(err.contains("acme.com"), "{err}");
    let err = app.err("create_companies", json!({"companies": [{"name": "   "}]})).await;
    assert!(err.contains("empty"), "{err}");
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 0);
}

#[tokio::test]
async fn odd_ids_answer_not_found() {
    let app = spawn_app().await;
    for id in ["", "' OR 1=1 --", "../../etc/passwd", "0", "🦀"] {
        let got = app.ok("get_records", json!({"records": [{"entity": "contact", "id": id}]})).await;
        assert_eq!(got["missing"], json!([{"entity": "contact", "id": id}]), "{id:?}");
        assert_eq!(got["items"], json!([]), "{id:?}");
        let err = app.err("update_contacts", json!({"contacts": [{"id": id, "title": "x"}]})).await;
        assert!(err.contains("not found"), "{id:?}: {err}");
    }
}
