//! The REST API over HTTP: routes derived from the entity descriptions, answering with the
//! same rules, messages and change-log entries as the MCP tools.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_contact_through_its_whole_life() {
    let app = spawn_app().await;
    let k = &app.key;
    // Create one: 201 with the record.
    let (status, c) = app
        .api(
            k,
            Method::POST,
            "/contacts",
            Some(json!({ "first_name": "Ada", "last_name": "Quist", "email": "Ada@Example.com" })),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{c}");
    assert_eq!(c["email"], "ada@example.com", "validated as over MCP: stored lowercase");
    let id = c["id"].as_str().unwrap().to_owned();
    // Read it, and only some fields.
    let (status, got) = app.api(k, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!((status, got["first_name"].clone()), (StatusCode::OK, json!("Ada")));
    let (_, some) = app.api(k, Method::GET, &format!("/contacts/{id}?fields=email"), None).await;
    assert!(some.get("first_name").is_none() && some["email"] == "ada@example.com", "{some}");

    // PATCH with If-Match: a stale updated_at is refused with 409 and nothing changes.
    let stale = "2020-01-01T00:00:00Z";
    let res = app
        .client
        .patch(format!("{}/api/v1/contacts/{id}", app.base))
        .header("x-api-key", k)
        .header("if-match", stale)
        .json(&json!({ "title": "CTO" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "conflict");
    assert!(body["error"]["message"].as_str().unwrap().contains("changed since you read it"));
    let res = app
        .client
        .patch(format!("{}/api/v1/contacts/{id}", app.base))
        .header("x-api-key", k)
        .header("if-match", c["updated_at"].as_str().unwrap())
        .json(&json!({ "title": "CTO" }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.json::<Value>().await.unwrap()["title"], "CTO");

    // Invalid input: 422 with the tool's message, nothing written.
    let (status, e) =
        app.api(k, Method::PATCH, &format!("/contacts/{id}"), Some(json!({ "email": "not an email" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("email"), "{e}");
    let (_, got) = app.api(k, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(got["email"], "ada@example.com");

    // Timeline: created, then the title.
    let (status, t) = app.api(k, Method::GET, &format!("/contacts/{id}/timeline"), None).await;
    assert_eq!(status, StatusCode::OK);
    let actions: Vec<&str> = t["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["updated", "created"]);

    // Delete (204), gone (404), restored (200), back.
    let (status, _) = app.api(k, Method::DELETE, &format!("/contacts/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, e) = app.api(k, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!((status, e["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
    let (status, _) = app.api(k, Method::POST, &format!("/contacts/{id}/restore"), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.api(k, Method::GET, &format!("/contacts/{id}"), None).await.0, StatusCode::OK);

    // The change log over REST, narrowed to this record.
    let (status, log) = app.api(k, Method::GET, &format!("/changes?record_id={id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{log}");
    let actions: Vec<&str> = log["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert_eq!(actions, ["restored", "deleted", "updated", "created"]);
}

#[tokio::test]
async fn lists_search_count_and_batches() {
    let app = spawn_app().await;
    let k = &app.key;
    let items: Vec<Value> = (0..30)
        .map(|i| json!({ "first_name": format!("P{i:02}"), "last_name": if i % 2 == 0 { "Even" } else { "Odd" }, "email": format!("p{i}@example.com") }))
        .collect();
    // A batch with an Idempotency-Key: repeated, it answers the same and writes nothing more.
    let send = || {
        app.client
            .post(format!("{}/api/v1/contacts", app.base))
            .header("x-api-key", k)
            .header("idempotency-key", "batch-1")
            .json(&json!({ "items": items }))
            .send()
    };
    let first = send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["items"].as_array().unwrap().len(), 30);
    let again: Value = send().await.unwrap().json().await.unwrap();
    assert_eq!(again["items"][0]["id"], first["items"][0]["id"]);

    // GET with filter, sort, fields, limit and the cursor.
    let filter =
        form_urlencoded::byte_serialize(br#"[{"field":"last_name","op":"eq","value":"Even"}]"#).collect::<String>();
    let path = format!("/contacts?filter={filter}&sort=first_name:desc&fields=first_name&limit=10");
    let (status, page) = app.api(k, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let names: Vec<&str> =
        page["items"].as_array().unwrap().iter().map(|r| r["first_name"].as_str().unwrap()).collect();
    assert_eq!(names, ["P28", "P26", "P24", "P22", "P20", "P18", "P16", "P14", "P12", "P10"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, next) = app
        .api(
            k,
            Method::GET,
            &format!("{path}&cursor={}", form_urlencoded::byte_serialize(cursor.as_bytes()).collect::<String>()),
            None,
        )
        .await;
    assert_eq!(next["items"].as_array().unwrap().len(), 5);
    assert!(next["next_cursor"].is_null());
    // Free text.
    let (_, found) = app.api(k, Method::GET, "/contacts?q=p17%40", None).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 1);
    // POST …/search and …/count take the tools' bodies.
    let body = json!({ "filters": [{ "field": "last_name", "op": "eq", "value": "Odd" }], "limit": 100 });
    let (_, found) = app.api(k, Method::POST, "/contacts/search", Some(body)).await;
    assert_eq!(found["items"].as_array().unwrap().len(), 15);
    let (_, count) = app.api(k, Method::POST, "/contacts/count", Some(json!({ "group_by": "last_name" }))).await;
    assert_eq!(count["count"], 30, "{count}");
    let (status, e) = app.api(k, Method::POST, "/contacts/search", Some(json!({ "entity": "deal" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    // Bad query strings are 400s in the error shape.
    let (status, e) = app.api(k, Method::GET, "/contacts?sort=last_name:sideways", None).await;
    assert_eq!((status, e["error"]["code"].clone()), (StatusCode::BAD_REQUEST, json!("bad_request")));
    let (status, _) = app.api(k, Method::GET, "/contacts?filter=nope", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = app.api(k, Method::GET, "/contacts?bogus=1", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Upsert by email: the second call updates.
    let (status, u) =
        app.api(k, Method::POST, "/contacts/upsert", Some(json!({ "email": "p3@example.com", "title": "VP" }))).await;
    assert_eq!(status, StatusCode::OK, "{u}");
    let (_, all) = app.api(k, Method::POST, "/contacts/count", Some(json!({}))).await;
    assert_eq!(all["count"], 30);

    // search_all, links, pipelines, custom fields.
    let (status, any) = app.api(k, Method::GET, "/search?q=p21%40", None).await;
    assert_eq!(status, StatusCode::OK, "{any}");
    let (_, co) =
        app.api(k, Method::POST, "/companies", Some(json!({ "name": "Acme", "domain": "acme.example" }))).await;
    let contact = first["items"][0]["id"].as_str().unwrap();
    let link = json!({ "links": [{ "from": { "entity": "contact", "id": contact }, "to": { "entity": "company", "id": co["id"] } }] });
    let (status, l) = app.api(k, Method::POST, "/links", Some(link)).await;
    assert_eq!(status, StatusCode::OK, "{l}");
    let (_, c) = app.api(k, Method::GET, &format!("/contacts/{contact}"), None).await;
    assert_eq!(c["company_id"], co["id"]);
    let (status, p) = app.api(k, Method::GET, "/pipelines", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(p["items"][0]["name"], "sales", "{p}");
    let field = json!({ "entity": "contact", "key": "tier", "label": "Tier", "type": "select", "options": ["a", "b"] });
    let (status, f) = app.api(k, Method::POST, "/custom-fields", Some(field)).await;
    assert_eq!(status, StatusCode::CREATED, "{f}");
    let (_, fields) = app.api(k, Method::GET, "/custom-fields", None).await;
    assert!(
        fields["items"].as_array().unwrap().iter().any(|f| f["key"] == "tier" && f["entity"] == "contact"),
        "{fields}"
    );
    let (status, _) =
        app.api(k, Method::PATCH, "/custom-fields/contact/tier", Some(json!({ "label": "Tier level" }))).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = app.api(k, Method::DELETE, "/custom-fields/contact/tier", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn errors_answer_in_one_shape() {
    let app = spawn_app().await;
    let k = &app.key;
    // Unknown route, wrong method, wrong content type, bad JSON.
    let (status, e) = app.api(k, Method::GET, "/widgets", None).await;
    assert_eq!((status, e["error"]["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
    let (status, e) = app.api(k, Method::PUT, "/contacts", Some(json!({}))).await;
    assert_eq!((status, e["error"]["code"].clone()), (StatusCode::METHOD_NOT_ALLOWED, json!("method_not_allowed")));
    let res = app
        .client
        .post(format!("{}/api/v1/contacts", app.base))
        .header("x-api-key", k)
        .header("content-type", "text/plain")
        .body("first_name=Ada")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "unsupported_media_type");
    let res = app
        .client
        .post(format!("{}/api/v1/contacts", app.base))
        .header("x-api-key", k)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], "bad_request");

    // A viewer may read but not write, and the refusal is audited.
    let viewer = app.key_with(Some("viewer"), &[]).await;
    let (status, _) = app.api(&viewer, Method::GET, "/contacts", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, e) = app.api(&viewer, Method::POST, "/contacts", Some(json!({ "first_name": "No" }))).await;
    assert_eq!((status, e["error"]["code"].clone()), (StatusCode::FORBIDDEN, json!("insufficient_scope")));
    let (status, _) = app.api(&viewer, Method::GET, "/changes", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 10).await.unwrap();
    assert!(audit.iter().filter(|e| e.action == "key.refused").count() >= 2);
    let (_, count) = app.api(k, Method::POST, "/contacts/count", Some(json!({}))).await;
    assert_eq!(count["count"], 0, "nothing was written");

    // Another organization's record is not found.
    let (_, their_key) = app.new_org("other").await;
    let (_, theirs) = app.api(&their_key, Method::POST, "/contacts", Some(json!({ "first_name": "Theirs" }))).await;
    let id = theirs["id"].as_str().unwrap();
    for (m, body) in [(Method::GET, None), (Method::PATCH, Some(json!({ "title": "x" }))), (Method::DELETE, None)] {
        let (status, e) = app.api(k, m.clone(), &format!("/contacts/{id}"), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{m}: {e}");
    }
    let (_, still) = app.api(&their_key, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(still["first_name"], "Theirs");
    assert!(still["title"].is_null());
}

#[tokio::test]
async fn a_nul_character_is_refused_not_a_server_error() {
    // Found by schemathesis: PostgreSQL text cannot hold U+0000, and ids are not checked
    // against a pattern, so a NUL reached the database and failed the statement.
    let app = spawn_app().await;
    let k = &app.key;
    let link = json!({ "links": [{ "from": { "entity": "contact", "id": "a\u{0}b" }, "to": { "entity": "company", "id": "x" } }] });
    let merge = json!({ "keep_id": "\u{0}6", "merge_ids": ["x"] });
    for (path, body) in
        [("/links", link), ("/contacts/merge", merge), ("/contacts/search", json!({ "query": "a\u{0}b" }))]
    {
        let (status, e) = app.api(k, Method::POST, path, Some(body)).await;
        assert!(status.is_client_error() || status == StatusCode::OK, "{path}: {status} {e}");
    }
    let (status, e) = app.api(k, Method::POST, "/contacts", Some(json!({ "first_name": "a\u{0}b" }))).await;
    assert!(status.is_client_error() || status == StatusCode::CREATED, "{status} {e}");
}
