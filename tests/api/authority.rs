//! SPEC 3, "Authority": nobody hands out or takes over more power than they hold. Each
//! probe of issue 20 as an outsider with an ordinary account would make it, over the real
//! server: admins and narrow keys against owners, keys planted for others, roles granted,
//! webhooks that read through a side door, timelines and the change log, custom fields and
//! links written without the scopes they take.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

/// An organization with a second owner, an admin and a member, each with a key of their role.
struct Team {
    app: TestApp,
    admin: String,
    admin_key_id: rapport::store::KeyId,
    member: String,
}

async fn team() -> Team {
    let app = spawn_app().await;
    app.person("owner2@example.com", "owner").await;
    app.person("admin@example.com", "admin").await;
    app.person("member@example.com", "member").await;
    let (admin, admin_key_id) = app.key_of("admin@example.com", "admin key", Some("admin"), &[]).await;
    let (member, _) = app.key_of("member@example.com", "member key", Some("member"), &[]).await;
    Team { app, admin, admin_key_id, member }
}

async fn user(app: &TestApp, email: &str) -> rapport::store::User {
    app.store.user_by_email(&app.default_org.id, email).await.unwrap().unwrap()
}

fn message(v: &Value) -> &str {
    v["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn rotating_or_enabling_a_key_beyond_ones_powers_is_refused_and_the_emergency_stop_stays_open() {
    let Team { app, admin, admin_key_id, .. } = team().await;
    let (_, spare) = app.key_of("owner@localhost", "owner spare", Some("owner"), &[]).await;
    let owner_key = app.key_id("test owner").await;

    // Rotating an owner's key would hand the admin its secret, and with it org:manage.
    let (status, e) = app.api(&admin, Method::POST, &format!("/keys/{owner_key}/rotate"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    assert!(message(&e).contains("org:manage") && message(&e).contains("disable, revoke or delete"), "{e}");
    assert_eq!(app.mcp_status(&app.key).await, StatusCode::OK, "the owner's secret still works");

    // Disabling stays open as an emergency stop; enabling it again is the owner's to do.
    let (status, e) = app.api(&admin, Method::POST, &format!("/keys/{spare}/disable"), None).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let (status, e) = app.api(&admin, Method::POST, &format!("/keys/{spare}/enable"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    let (_, k) = app.api(&app.key, Method::GET, &format!("/keys/{spare}"), None).await;
    assert_eq!(k["status"], "disabled", "the refusal changed nothing");
    let (status, _) = app.api(&app.key, Method::POST, &format!("/keys/{spare}/enable"), None).await;
    assert_eq!(status, StatusCode::OK, "an owner may");
    let (status, _) = app.api(&admin, Method::POST, &format!("/keys/{spare}/revoke"), None).await;
    assert_eq!(status, StatusCode::OK, "revoking stays open too");

    // Within the admin's powers: a member's key.
    let (_, member_key) = app.key_of("member@example.com", "member spare", Some("member"), &[]).await;
    let (status, rotated) = app.api(&admin, Method::POST, &format!("/keys/{member_key}/rotate"), None).await;
    assert_eq!(status, StatusCode::OK, "{rotated}");
    assert!(rotated["key"].as_str().unwrap().starts_with("rpk_"));

    // A keys:manage-only key holds no record scopes: it rotates nothing that has some.
    let (narrow, _) = app.key_of("admin@example.com", "keys only", None, &["keys:manage"]).await;
    let (status, e) = app.api(&narrow, Method::POST, &format!("/keys/{member_key}/rotate"), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    let (status, _) = app.api(&narrow, Method::POST, &format!("/keys/{member_key}/disable"), None).await;
    assert_eq!(status, StatusCode::OK);

    // The audit log names the key that acted, besides the key acted on.
    let (_, audit) = app.api(&app.key, Method::GET, "/audit?action=key.disable", None).await;
    let entry = &audit["items"][0];
    assert_eq!(entry["key_id"], member_key.as_str(), "{audit}");
    assert_eq!(entry["actor"], "key");
    let narrow_id = app.key_id("keys only").await;
    assert_eq!(entry["actor_key_id"], narrow_id.as_str(), "{audit}");
    let (_, by_actor) = app.api(&app.key, Method::GET, &format!("/audit?key_id={admin_key_id}"), None).await;
    let actions: Vec<&str> =
        by_actor["items"].as_array().unwrap().iter().filter_map(|e| e["action"].as_str()).collect();
    assert!(actions.contains(&"key.revoke") && actions.contains(&"key.rotate"), "{actions:?}");
}

#[tokio::test]
async fn an_admin_cannot_demote_deactivate_or_promote_past_their_own_role() {
    let Team { app, admin, member, .. } = team().await;
    for body in [json!({ "role": "viewer", "active": false }), json!({ "active": false }), json!({ "role": "admin" })] {
        let (status, e) = app.api(&admin, Method::PATCH, "/users/owner2@example.com", Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}: {e}");
        assert!(
            message(&e).contains("owner2@example.com has the role owner") || message(&e).contains("org:manage"),
            "{e}"
        );
    }
    let owner2 = user(&app, "owner2@example.com").await;
    assert_eq!((owner2.role, owner2.active), (rapport_tools::Role::Owner, true), "nothing changed");

    // Members and other admins are within an admin's powers; making an owner is not.
    let (status, e) =
        app.api(&admin, Method::PATCH, "/users/member@example.com", Some(json!({ "role": "admin" }))).await;
    assert_eq!(status, StatusCode::OK, "{e}");
    let (status, e) =
        app.api(&admin, Method::PATCH, "/users/member@example.com", Some(json!({ "role": "owner" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    let (status, _) =
        app.api(&admin, Method::POST, "/users", Some(json!({ "email": "o3@example.com", "role": "owner" }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(app.store.user_by_email(&app.default_org.id, "o3@example.com").await.unwrap().is_none());
    // A member holds no users:manage at all.
    let (status, _) =
        app.api(&member, Method::PATCH, "/users/admin@example.com", Some(json!({ "active": false }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // An owner may do all of it, and the audit entry names the acting key.
    let (status, _) =
        app.api(&app.key, Method::PATCH, "/users/owner2@example.com", Some(json!({ "role": "admin" }))).await;
    assert_eq!(status, StatusCode::OK);
    let (_, audit) = app.api(&app.key, Method::GET, "/audit?action=user.set_role", None).await;
    assert_eq!(audit["items"][0]["actor_key_id"], app.key_id("test owner").await.as_str(), "{audit}");
}

#[tokio::test]
async fn keys_for_someone_else_take_holding_all_of_their_powers() {
    let Team { app, admin, .. } = team().await;
    let before = app.store.list_keys(&app.default_org.id, true).await.unwrap().len();
    for role in ["admin", "viewer"] {
        let body = json!({ "name": "planted", "user": "owner@localhost", "role": role });
        let (status, e) = app.api(&admin, Method::POST, "/keys", Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{role}: {e}");
        assert!(message(&e).contains("owner@localhost"), "{e}");
    }
    assert_eq!(app.store.list_keys(&app.default_org.id, true).await.unwrap().len(), before, "no key was planted");

    // For a member, or for themselves, an admin may.
    let body = json!({ "name": "for the member", "user": "member@example.com", "role": "viewer" });
    assert_eq!(app.api(&admin, Method::POST, "/keys", Some(body)).await.0, StatusCode::CREATED);
    let body = json!({ "name": "mine", "role": "member" });
    let (status, mine) = app.api(&admin, Method::POST, "/keys", Some(body)).await;
    assert_eq!(status, StatusCode::CREATED, "{mine}");
    let admin_user = user(&app, "admin@example.com").await;
    let keys = app.store.list_keys(&app.default_org.id, true).await.unwrap();
    assert_eq!(keys.iter().find(|k| k.name == "mine").unwrap().user_id, admin_user.id);

    // Deactivating the admin stops every key they made for themselves.
    let (status, _) =
        app.api(&app.key, Method::PATCH, "/users/admin@example.com", Some(json!({ "active": false }))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.mcp_status(mine["key"].as_str().unwrap()).await, StatusCode::UNAUTHORIZED);
    assert_eq!(app.mcp_status(&admin).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_users_manage_only_key_grants_nothing_beyond_its_own_scopes() {
    let Team { app, .. } = team().await;
    let (narrow, _) = app.key_of("admin@example.com", "users only", None, &["users:manage"]).await;
    let attempts = [
        (Method::POST, "/users", json!({ "email": "new@example.com", "role": "viewer" })),
        (Method::POST, "/users", json!({ "email": "new@example.com", "role": "admin" })),
        (Method::PATCH, "/users/member@example.com", json!({ "role": "admin" })),
        (Method::PATCH, "/users/member@example.com", json!({ "active": false })),
        (Method::PATCH, "/users/owner2@example.com", json!({ "role": "viewer" })),
    ];
    for (m, path, body) in attempts {
        let (status, e) = app.api(&narrow, m.clone(), path, Some(body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{m} {path} {body}: {e}");
    }
    assert!(app.store.user_by_email(&app.default_org.id, "new@example.com").await.unwrap().is_none());
    let member = user(&app, "member@example.com").await;
    assert_eq!((member.role, member.active), (rapport_tools::Role::Member, true));
    // With a viewer's reads as well it may make viewers, and no more.
    let reads: Vec<String> = rapport_tools::Role::Viewer.scopes().iter().map(|s| s.as_str().to_owned()).collect();
    let mut scopes: Vec<&str> = reads.iter().map(String::as_str).collect();
    scopes.push("users:manage");
    let (viewers, _) = app.key_of("admin@example.com", "makes viewers", None, &scopes).await;
    let body = json!({ "email": "new@example.com", "role": "viewer" });
    assert_eq!(app.api(&viewers, Method::POST, "/users", Some(body)).await.0, StatusCode::CREATED);
    let body = json!({ "role": "member" });
    assert_eq!(app.api(&viewers, Method::PATCH, "/users/new@example.com", Some(body)).await.0, StatusCode::FORBIDDEN);
}

/// Deliveries queued for an endpoint, as an owner lists them.
async fn delivered(app: &TestApp, endpoint: &str) -> Vec<String> {
    let v = app.ok("list_webhook_deliveries", json!({ "id": endpoint, "limit": 100 })).await;
    v["items"].as_array().unwrap().iter().map(|d| d["type"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_webhook_carries_its_creators_powers_and_stops_with_them() {
    let Team { app, admin, .. } = team().await;
    let hook = |events: Value| json!({ "url": "http://127.0.0.1:9/hook", "events": events });
    // A webhooks:manage-only key reads nothing, so its endpoint on `*` delivers nothing.
    let (blind, _) = app.key_of("admin@example.com", "hooks only", None, &["webhooks:manage"]).await;
    let blind_hook = app.call_as(&blind, "create_webhook", hook(json!(["*"]))).await.unwrap();
    assert_eq!(blind_hook["created_by"], "admin@example.com");
    // With contacts:read it delivers contacts, and still no notes.
    let (contacts, _) =
        app.key_of("admin@example.com", "hooks and contacts", None, &["webhooks:manage", "contacts:read"]).await;
    let contacts_hook = app.call_as(&contacts, "create_webhook", hook(json!(["*"]))).await.unwrap();
    let admins_hook = app.call_as(&admin, "create_webhook", hook(json!(["*"]))).await.unwrap();

    let c = app.create_contacts(json!([{ "first_name": "Ada", "email": "ada@example.com" }])).await;
    let id = c[0]["id"].as_str().unwrap();
    app.ok(
        "add_notes",
        json!({ "notes": [{ "body": "private: budget is 40k", "record": { "entity": "contact", "id": id } }] }),
    )
    .await;
    assert!(delivered(&app, blind_hook["id"].as_str().unwrap()).await.is_empty());
    assert_eq!(delivered(&app, contacts_hook["id"].as_str().unwrap()).await, ["contact.created"]);
    let all = delivered(&app, admins_hook["id"].as_str().unwrap()).await;
    assert!(all.contains(&"note.created".to_owned()) && all.contains(&"contact.created".to_owned()), "{all:?}");

    // A narrow key cannot point a stronger endpoint elsewhere, nor rotate or re-enable it;
    // turning it off stays open.
    let admins_id = admins_hook["id"].as_str().unwrap();
    for args in [
        json!({ "id": admins_id, "url": "http://127.0.0.1:10/mine" }),
        json!({ "id": admins_id, "events": ["note.*"] }),
        json!({ "id": admins_id, "rotate_secret": true }),
    ] {
        let e = app.call_as(&blind, "update_webhook", args.clone()).await.unwrap_err();
        assert!(e.contains("carries the powers of admin@example.com"), "{args}: {e}");
    }
    let (status, _) = app
        .api(&blind, Method::PATCH, &format!("/webhooks/{admins_id}"), Some(json!({ "url": "http://127.0.0.1:10/x" })))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    app.call_as(&blind, "update_webhook", json!({ "id": admins_id, "enabled": false })).await.unwrap();
    let e = app.call_as(&blind, "update_webhook", json!({ "id": admins_id, "enabled": true })).await.unwrap_err();
    assert!(e.contains("carries the powers"), "{e}");
    app.call_as(&admin, "update_webhook", json!({ "id": admins_id, "enabled": true })).await.unwrap();
    // Taking it over makes it carry the taker's powers: here, none to read with.
    let taken = app
        .call_as(
            &blind,
            "update_webhook",
            json!({ "id": admins_id, "take_over": true, "url": "http://127.0.0.1:10/mine" }),
        )
        .await
        .unwrap();
    assert_eq!(taken["url"], "http://127.0.0.1:10/mine");
    app.create_contacts(json!([{ "first_name": "Bob" }])).await;
    assert_eq!(delivered(&app, admins_id).await, all, "it delivers nothing more");
    app.call_as(&admin, "update_webhook", json!({ "id": admins_id, "take_over": true })).await.unwrap();

    // Deactivating the creator turns their endpoints off, audited; new changes queue
    // nothing for them, and turning one on again takes taking it over.
    let (status, _) =
        app.api(&app.key, Method::PATCH, "/users/admin@example.com", Some(json!({ "active": false }))).await;
    assert_eq!(status, StatusCode::OK);
    let list = app.ok("list_webhooks", json!({})).await;
    for w in list["items"].as_array().unwrap() {
        assert_eq!(w["enabled"], false, "{w}");
        assert!(w["disabled_reason"].as_str().unwrap().contains("admin@example.com was deactivated"), "{w}");
    }
    let (_, audit) = app.api(&app.key, Method::GET, "/audit?action=webhook.disabled", None).await;
    assert_eq!(audit["items"].as_array().unwrap().len(), 3, "{audit}");
    let queued = delivered(&app, admins_id).await.len();
    app.create_contacts(json!([{ "first_name": "Cy" }])).await;
    assert_eq!(delivered(&app, admins_id).await.len(), queued);
    let e = app.err("update_webhook", json!({ "id": admins_id, "enabled": true })).await;
    assert!(e.contains("deactivated") && e.contains("take_over"), "{e}");
    let back = app.ok("update_webhook", json!({ "id": admins_id, "enabled": true, "take_over": true })).await;
    assert_eq!((back["enabled"].as_bool(), back["created_by"].as_str()), (Some(true), Some("owner@localhost")));
    app.create_contacts(json!([{ "first_name": "Di" }])).await;
    assert_eq!(delivered(&app, admins_id).await.len(), queued + 1, "the owner's powers now");
}

#[tokio::test]
async fn timelines_and_the_change_log_show_only_what_the_key_may_read() {
    let app = spawn_app().await;
    let deal = app.ok("create_deals", json!({ "deals": [{ "name": "Big one" }] })).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let note =
        json!({ "notes": [{ "body": "private: they will sign at 40k", "record": { "entity": "deal", "id": deal } }] });
    app.ok("add_notes", note).await;
    let task = json!({ "tasks": [{ "title": "Call the CFO", "record": { "entity": "deal", "id": deal } }] });
    app.ok("create_tasks", task).await;

    let everything = app.ok("get_timeline", json!({ "entity": "deal", "id": deal })).await;
    let entities = |v: &Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|e| e["entity"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(entities(&everything), ["task", "note", "deal"]);
    let deals_only = app.key_with(None, &["deals:read"]).await;
    let narrow = app.call_as(&deals_only, "get_timeline", json!({ "entity": "deal", "id": deal })).await.unwrap();
    assert_eq!(entities(&narrow), ["deal"]);
    assert!(!narrow.to_string().contains("40k"));
    let (_, rest) = app.api(&deals_only, Method::GET, &format!("/deals/{deal}/timeline"), None).await;
    assert!(!rest.to_string().contains("40k"), "{rest}");

    // `audit:read` tells who changed what; the values are for those who may read them.
    let auditor = app.key_with(None, &["audit:read"]).await;
    let (status, log) = app.api(&auditor, Method::GET, "/changes", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(log["items"].as_array().unwrap().is_empty(), "{log}");
    let deal_auditor = app.key_with(None, &["audit:read", "deals:read"]).await;
    let (_, log) = app.api(&deal_auditor, Method::GET, "/changes", None).await;
    assert_eq!(entities(&log), ["deal"]);
    let (_, log) = app.api(&app.key, Method::GET, "/changes?limit=2", None).await;
    assert_eq!(entities(&log), ["task", "note"], "paging counts only what is shown");
    // A custom field's entries go with its entity.
    app.ok(
        "create_custom_field",
        json!({ "entity": "contact", "key": "secret_score", "label": "Score", "type": "number" }),
    )
    .await;
    app.ok("create_custom_field", json!({ "entity": "deal", "key": "region", "label": "Region", "type": "text" }))
        .await;
    let (_, log) = app.api(&deal_auditor, Method::GET, "/changes?entity=custom_field", None).await;
    let ids: Vec<&str> = log["items"].as_array().unwrap().iter().filter_map(|e| e["record_id"].as_str()).collect();
    assert_eq!(ids, ["deal.region"]);
}

#[tokio::test]
async fn a_public_lead_key_fills_in_what_is_missing_and_never_overwrites() {
    let app = spawn_app().await;
    let lead_key = app.key_with(None, &["leads:write"]).await;
    let acme = app.create_companies(json!([{ "name": "Acme Robotics", "domain": "acme.example" }])).await;
    let other = app.create_companies(json!([{ "name": "Other Co", "domain": "other.example" }])).await;
    let acme_id = acme[0]["id"].as_str().unwrap();
    let contact = app
        .create_contacts(json!([{
            "first_name": "Ada", "last_name": "Quist", "email": "ada@acme.example", "title": "CTO",
            "company_id": acme_id
        }]))
        .await;
    let id = contact[0]["id"].as_str().unwrap();

    // A returning lead without a company field: no 422, nothing overwritten.
    let (status, r) = app
        .api(
            &lead_key,
            Method::POST,
            "/leads/inbound",
            Some(json!({ "email": "ada@acme.example", "phone": "+31 20 555 0100" })),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{r}");
    assert!(r["note_id"].is_null(), "nothing differed: {r}");
    let (_, c) = app.api(&app.key, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(c["phone"], "+31 20 555 0100", "an empty field is filled");

    // A hostile lead: other names, phone, title and company; none of it is applied.
    let hostile = json!({
        "email": "ADA@acme.example", "first_name": "Mallory", "last_name": "Evil", "phone": "+1 555 0000",
        "title": "Intern", "company": "Evil Corp", "domain": "other.example", "message": "hello"
    });
    let (status, r) = app.api(&lead_key, Method::POST, "/leads/inbound", Some(hostile)).await;
    assert_eq!(status, StatusCode::OK, "{r}");
    let (_, c) = app.api(&app.key, Method::GET, &format!("/contacts/{id}"), None).await;
    assert_eq!(
        (&c["first_name"], &c["last_name"], &c["phone"], &c["title"], &c["company_id"]),
        (&json!("Ada"), &json!("Quist"), &json!("+31 20 555 0100"), &json!("CTO"), &json!(acme_id)),
        "{c}"
    );
    assert!(c["tags"].as_array().unwrap().contains(&json!("inbound")), "tags are added");
    let (_, co) =
        app.api(&app.key, Method::GET, &format!("/companies/{}", other[0]["id"].as_str().unwrap()), None).await;
    assert_eq!(co["name"], "Other Co", "a known company is not renamed");
    // What differs is kept for a person, in the lead's note.
    let (_, note) = app.api(&app.key, Method::GET, &format!("/notes/{}", r["note_id"].as_str().unwrap()), None).await;
    let body = note["body"].as_str().unwrap();
    for given in ["hello", "Mallory", "Evil", "+1 555 0000", "Intern", "Evil Corp"] {
        assert!(body.contains(given), "{given} missing from {body}");
    }
    let (_, n) = app.api(&app.key, Method::POST, "/companies/count", Some(json!({}))).await;
    assert_eq!(n["count"], 2, "no company was made or renamed");
}

#[tokio::test]
async fn deleting_a_custom_field_takes_write_and_delete_and_keeps_its_values_in_the_trash() {
    let app = spawn_app().await;
    app.ok("create_custom_field", json!({ "entity": "contact", "key": "budget", "label": "Budget", "type": "number" }))
        .await;
    let c = app.create_contacts(json!([{ "first_name": "Ada", "custom": { "budget": 40000 } }])).await;
    let id = c[0]["id"].as_str().unwrap();
    let schema_only = app.key_with(None, &["schema:manage", "contacts:read"]).await;
    let e = app
        .call_as(&schema_only, "delete_custom_field", json!({ "entity": "contact", "key": "budget" }))
        .await
        .unwrap_err();
    assert!(e.contains("contacts:write"), "{e}");
    let (status, _) = app.api(&schema_only, Method::DELETE, "/custom-fields/contact/budget", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let read = |v: Value| v["items"][0]["custom"]["budget"].clone();
    assert_eq!(
        read(app.ok("get_records", json!({ "records": [{ "entity": "contact", "id": id }] })).await),
        json!(40000)
    );

    // With write and delete on contacts it goes, with a change entry, out of sight.
    app.ok("delete_custom_field", json!({ "entity": "contact", "key": "budget" })).await;
    assert!(read(app.ok("get_records", json!({ "records": [{ "entity": "contact", "id": id }] })).await).is_null());
    let e = app
        .err(
            "search_records",
            json!({ "entity": "contact", "filters": [{ "field": "custom.budget", "op": "gt", "value": 1 }] }),
        )
        .await;
    assert!(e.contains("custom.budget"), "{e}");
    let (_, log) = app.api(&app.key, Method::GET, "/changes?entity=custom_field", None).await;
    assert_eq!(log["items"][0]["action"], "deleted", "{log}");
    assert_eq!(log["items"][0]["record_id"], "contact.budget");
    // The values wait in the trash; a new field of the same key starts empty.
    app.ok("create_custom_field", json!({ "entity": "contact", "key": "budget", "label": "Budget", "type": "text" }))
        .await;
    assert!(read(app.ok("get_records", json!({ "records": [{ "entity": "contact", "id": id }] })).await).is_null());
    // After the trash period the purge removes them for good, and says so.
    app.sql("UPDATE trashed_custom_fields SET deleted_at = deleted_at - 2592000001 WHERE key = $1", "budget").await;
    let purged = rapport::crm::trash::purge(&app.store, 30, rapport::time::now_ms()).await.unwrap();
    assert_eq!(purged, 1);
    let (_, log) = app.api(&app.key, Method::GET, "/changes?entity=custom_field", None).await;
    assert_eq!(
        (log["items"][0]["action"].as_str(), log["items"][0]["record_id"].as_str()),
        (Some("purged"), Some("contact.budget"))
    );
}

#[tokio::test]
async fn setting_a_relation_takes_write_on_the_other_side() {
    let app = spawn_app().await;
    let co = app.create_companies(json!([{ "name": "Acme" }])).await[0]["id"].as_str().unwrap().to_owned();
    let ada = app.create_contacts(json!([{ "first_name": "Ada" }])).await[0]["id"].as_str().unwrap().to_owned();
    let contacts_writer = app.key_with(None, &["contacts:read", "contacts:write", "companies:read"]).await;
    let deals_writer = app.key_with(None, &["deals:read", "deals:write", "contacts:read"]).await;
    let attempts = [
        (&contacts_writer, "create_contacts", json!({ "contacts": [{ "first_name": "Bob", "company_id": co }] })),
        (&contacts_writer, "update_contacts", json!({ "contacts": [{ "id": ada, "company_id": co }] })),
        (&contacts_writer, "upsert_contacts", json!({ "contacts": [{ "email": "c@x.example", "company_id": co }] })),
        (&deals_writer, "create_deals", json!({ "deals": [{ "name": "D", "contact_ids": [ada] }] })),
    ];
    for (key, tool, args) in attempts {
        let e = app.call_as(key, tool, args.clone()).await.unwrap_err();
        assert!(e.contains("write") && e.contains("link_records"), "{tool}: {e}");
    }
    let (status, e) =
        app.api(&contacts_writer, Method::PATCH, &format!("/contacts/{ada}"), Some(json!({ "company_id": co }))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
    let (_, n) = app.api(&app.key, Method::POST, "/contacts/count", Some(json!({}))).await;
    assert_eq!(n["count"], 1, "nothing was written");
    let (_, n) = app.api(&app.key, Method::POST, "/deals/count", Some(json!({}))).await;
    assert_eq!(n["count"], 0);
    let (_, c) = app.api(&app.key, Method::GET, &format!("/contacts/{ada}"), None).await;
    assert!(c["company_id"].is_null());
    // Without the relation the same keys write as before.
    app.call_as(&contacts_writer, "update_contacts", json!({ "contacts": [{ "id": ada, "title": "CTO" }] }))
        .await
        .unwrap();
    app.call_as(&deals_writer, "create_deals", json!({ "deals": [{ "name": "D" }] })).await.unwrap();
}

#[tokio::test]
async fn url_values_are_http_https_or_mailto() {
    let app = spawn_app().await;
    app.ok("create_custom_field", json!({ "entity": "company", "key": "site", "label": "Site", "type": "url" })).await;
    for bad in [
        "javascript:alert(1)",
        " JavaScript:alert(document.cookie)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:x",
        "file:///etc/passwd",
        "not a url",
    ] {
        let e = app.err("create_companies", json!({ "companies": [{ "name": "X", "custom": { "site": bad } }] })).await;
        assert!(e.contains("http, https or mailto"), "{bad:?}: {e}");
    }
    let (_, n) = app.api(&app.key, Method::POST, "/companies/count", Some(json!({}))).await;
    assert_eq!(n["count"], 0, "nothing was written");
    for (given, stored) in [
        ("https://acme.example/pricing", "https://acme.example/pricing"),
        ("http://acme.example", "http://acme.example"),
        ("mailto:sales@acme.example", "mailto:sales@acme.example"),
        ("acme.example/about", "https://acme.example/about"),
    ] {
        let c = app.create_companies(json!([{ "name": given, "custom": { "site": given } }])).await;
        assert_eq!(c[0]["custom"]["site"], stored);
    }
}

/// A body queued under one holder is never sent for another who may not read it: taking an
/// endpoint over, or resending, sends nothing the new holder may not read; the deliveries of
/// what the caller may not read are not listed to them.
#[tokio::test]
async fn what_was_queued_under_one_holder_is_not_sent_for_another() {
    let Team { app, admin, .. } = team().await;
    // Nothing listens on port 9: the first attempt fails and the delivery waits to retry.
    let hook = app
        .call_as(&admin, "create_webhook", json!({ "url": "http://127.0.0.1:9/hook", "events": ["note.*"] }))
        .await
        .unwrap();
    let id = hook["id"].as_str().unwrap().to_owned();
    let c = app.create_contacts(json!([{ "first_name": "Ada" }])).await;
    let note = json!({ "notes": [{ "body": "private", "record": { "entity": "contact", "id": c[0]["id"] } }] });
    app.ok("add_notes", note).await;
    let attempted = || async {
        let v = app.ok("list_webhook_deliveries", json!({ "id": id })).await;
        v["items"][0]["attempts"].as_array().map_or(0, Vec::len)
    };
    let tried =
        crate::helpers::holds_within(std::time::Duration::from_secs(10), || async { attempted().await >= 1 }).await;
    assert!(tried, "the first attempt was made");

    // A webhooks:manage-only key sees none of it, and taking the endpoint over to its own
    // URL sends none of it there.
    let (blind, _) = app.key_of("admin@example.com", "hooks only", None, &["webhooks:manage"]).await;
    let listed = app.call_as(&blind, "list_webhook_deliveries", json!({ "id": id })).await.unwrap();
    assert!(listed["items"].as_array().unwrap().is_empty(), "{listed}");
    let args = json!({ "id": id, "take_over": true, "url": "http://127.0.0.1:10/mine" });
    app.call_as(&blind, "update_webhook", args).await.unwrap();
    app.sql("UPDATE webhook_deliveries SET next_attempt_at = 0 WHERE endpoint_id = $1", &id).await;
    let ended = crate::helpers::holds_within(std::time::Duration::from_secs(10), || async {
        let v = app.ok("list_webhook_deliveries", json!({ "id": id })).await;
        v["items"][0]["state"] == "failed"
    })
    .await;
    assert!(ended, "the delivery ended unsent");
    let v = app.ok("list_webhook_deliveries", json!({ "id": id })).await;
    assert!(v["items"][0]["attempts"][0]["error"].as_str().unwrap().starts_with("not sent"), "{v}");
    assert!(v["items"][0]["attempts"][0]["status"].is_null());
    // A resend is withheld the same way.
    let delivery = v["items"][0]["id"].as_str().unwrap().to_owned();
    app.call_as(&blind, "resend_webhook_delivery", json!({ "delivery_id": delivery })).await.unwrap();
    let withheld_again = crate::helpers::holds_within(std::time::Duration::from_secs(10), || async {
        let v = app.ok("list_webhook_deliveries", json!({ "id": id })).await;
        v["items"][0]["state"] == "failed" && v["items"][0]["attempts"].as_array().unwrap().len() >= 3
    })
    .await;
    assert!(withheld_again, "{}", app.ok("list_webhook_deliveries", json!({ "id": id })).await);

    // An endpoint whose creator is deactivated is steered only by taking it over.
    let mine = app.ok("create_webhook", json!({ "url": "http://127.0.0.1:9/owner", "events": ["*"] })).await;
    let mine_id = mine["id"].as_str().unwrap();
    app.call_as(&admin, "update_webhook", json!({ "id": mine_id, "take_over": true })).await.unwrap();
    let (status, _) =
        app.api(&app.key, Method::PATCH, "/users/admin@example.com", Some(json!({ "active": false }))).await;
    assert_eq!(status, StatusCode::OK);
    let e = app.err("update_webhook", json!({ "id": mine_id, "url": "http://127.0.0.1:10/else" })).await;
    assert!(e.contains("take it over"), "{e}");
    let w = app.ok("list_webhooks", json!({})).await;
    let still = w["items"].as_array().unwrap().iter().find(|w| w["id"] == mine_id).unwrap().clone();
    assert_eq!(still["url"], "http://127.0.0.1:9/owner", "nothing changed");
}
