//! `POST /api/v1/leads/inbound`: each rule of SPEC section 7, JSON and form-encoded, the CORS
//! that lets a static site post, and a `leads:write`-only key that can do nothing else.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_lead_upserts_the_contact_and_its_company_and_keeps_the_message() {
    let app = spawn_app().await;
    let lead_key = app.key_with(None, &["leads:write"]).await;
    let lead = json!({
        "email": "Ada.Quist@Acme-Robotics.example", "name": "Ada van Quist", "phone": "+31 20 555 0100",
        "title": "CTO", "message": "Please call me about a demo.", "source": "website", "tags": ["demo"]
    });
    let (status, r) = app.api(&lead_key, Method::POST, "/leads/inbound", Some(lead)).await;
    assert_eq!(status, StatusCode::CREATED, "{r}");
    assert_eq!(r["status"], "created");
    let contact_id = r["contact_id"].as_str().unwrap().to_owned();
    let (_, c) = app.api(&app.key, Method::GET, &format!("/contacts/{contact_id}"), None).await;
    assert_eq!((c["first_name"].as_str(), c["last_name"].as_str()), (Some("Ada"), Some("van Quist")), "name split");
    assert_eq!(c["email"], "ada.quist@acme-robotics.example");
    assert_eq!(c["tags"], json!(["demo", "inbound", "source:website"]));
    assert_eq!(c["company_id"], r["company_id"], "linked to the company");
    let (_, co) =
        app.api(&app.key, Method::GET, &format!("/companies/{}", r["company_id"].as_str().unwrap()), None).await;
    assert_eq!(
        (co["domain"].as_str(), co["name"].as_str()),
        (Some("acme-robotics.example"), Some("acme-robotics.example"))
    );
    let (_, note) = app.api(&app.key, Method::GET, &format!("/notes/{}", r["note_id"].as_str().unwrap()), None).await;
    assert_eq!(note["body"], "Please call me about a demo.");
    assert_eq!(note["record"]["id"], contact_id.as_str());

    // The same person again: matched by email (any case), updated, tags kept and added.
    let again = json!({ "email": "ada.quist@acme-robotics.example", "company": "Acme Robotics", "tags": ["webinar"] });
    let (status, r2) = app.api(&lead_key, Method::POST, "/leads/inbound", Some(again)).await;
    assert_eq!(status, StatusCode::OK, "{r2}");
    assert_eq!((r2["status"].as_str(), r2["contact_id"].as_str()), (Some("updated"), Some(contact_id.as_str())));
    assert!(r2["note_id"].is_null(), "no message, no note");
    let (_, c) = app.api(&app.key, Method::GET, &format!("/contacts/{contact_id}"), None).await;
    assert_eq!(c["tags"], json!(["demo", "inbound", "source:website", "webinar"]));
    assert_eq!(c["first_name"], "Ada", "fields not sent are kept");
    let (_, co) =
        app.api(&app.key, Method::GET, &format!("/companies/{}", r2["company_id"].as_str().unwrap()), None).await;
    assert_eq!(co["name"], "Acme Robotics", "a company name given renames the domain placeholder");
    let (_, n) = app.api(&app.key, Method::POST, "/contacts/count", Some(json!({}))).await;
    assert_eq!(n["count"], 1);

    // Free mail says nothing about a company; a domain given does.
    let (_, free) = app.api(&lead_key, Method::POST, "/leads/inbound", Some(json!({ "email": "bob@gmail.com" }))).await;
    assert!(free["company_id"].is_null(), "{free}");
    let given = json!({ "email": "carol@gmail.com", "domain": "https://www.carol-co.example/about" });
    let (_, g) = app.api(&lead_key, Method::POST, "/leads/inbound", Some(given)).await;
    let (_, co) =
        app.api(&app.key, Method::GET, &format!("/companies/{}", g["company_id"].as_str().unwrap()), None).await;
    assert_eq!(co["domain"], "www.carol-co.example", "a URL reduced to its host, as for any company");

    // Refused: no email, a field that is not a lead's; nothing written.
    let (status, e) = app.api(&lead_key, Method::POST, "/leads/inbound", Some(json!({ "name": "No Email" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
    assert!(e["error"]["message"].as_str().unwrap().contains("email"));
    let (status, _) =
        app.api(&lead_key, Method::POST, "/leads/inbound", Some(json!({ "email": "x@y.example", "budget": 5 }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "unknown fields are refused, not dropped");
    let (status, _) =
        app.api(&lead_key, Method::POST, "/leads/inbound", Some(json!({ "email": "not an email" }))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, n) = app.api(&app.key, Method::POST, "/contacts/count", Some(json!({}))).await;
    assert_eq!(n["count"], 3);
}

#[tokio::test]
async fn a_web_form_posts_with_cors_and_the_key_in_the_query() {
    let app = spawn_app().await;
    let lead_key = app.key_with(None, &["leads:write"]).await;
    let url = format!("{}/api/v1/leads/inbound?api_key={lead_key}", app.base);
    // The browser's preflight: no key needed, any origin.
    let pre = app
        .client
        .request(Method::OPTIONS, &url)
        .header("origin", "https://www.example.org")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.status(), StatusCode::NO_CONTENT);
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(pre.headers()["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    let res = app
        .client
        .post(&url)
        .header("origin", "https://www.example.org")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=dana%40dana-labs.example&first_name=Dana&tags=newsletter%2C+events&message=Hi&submit=Send")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_eq!(res.headers()["access-control-allow-origin"], "*");
    let r: Value = res.json().await.unwrap();
    let (_, c) =
        app.api(&app.key, Method::GET, &format!("/contacts/{}", r["contact_id"].as_str().unwrap()), None).await;
    assert_eq!(c["tags"], json!(["newsletter", "events", "inbound"]));
    // A refusal is readable by the page too.
    let bad = app.client.post(format!("{}/api/v1/leads/inbound", app.base)).json(&json!({})).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(bad.headers()["access-control-allow-origin"], "*");
    // No other route allows other origins.
    let other = app.client.request(Method::OPTIONS, format!("{}/api/v1/contacts", app.base)).send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn a_leads_key_can_do_nothing_else() {
    let app = spawn_app().await;
    let lead_key = app.key_with(None, &["leads:write"]).await;
    for (m, path, body) in [
        (Method::GET, "/contacts", None),
        (Method::POST, "/contacts", Some(json!({ "email": "a@b.example" }))),
        (Method::POST, "/notes", Some(json!({ "body": "x" }))),
        (Method::GET, "/changes", None),
        (Method::GET, "/keys", None),
    ] {
        let (status, e) = app.api(&lead_key, m.clone(), path, body).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{m} {path}: {e}");
    }
    // Over MCP it sees only get_workspace, which every key has (it describes the key).
    assert_eq!(app.tool_names(&lead_key, "").await, ["get_workspace"]);
}
