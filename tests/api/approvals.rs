//! Approvals (SPEC 12), as an agent and the people deciding meet them: a key's policy holds
//! some calls, a held call writes nothing, a person approves (the call then runs as the
//! key, unless the records moved or the key was turned off) or denies it, no key decides,
//! and each step is audited and announced.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};
use rapport::service::approvals::{self, DecideError};
use rapport_tools::approvals::{ApprovalKind, ApprovalPolicy};

/// An admin agent key of owner@localhost whose `kinds` wait for a person; its key and id.
async fn held_key(app: &TestApp, kinds: &[ApprovalKind], bulk_limit: Option<u32>) -> (String, rapport::store::KeyId) {
    let (key, id) = app.key_of("owner@localhost", "agent", Some("admin"), &[]).await;
    let policy = ApprovalPolicy::new(kinds.iter().copied(), bulk_limit).unwrap();
    rapport::keys::set_approval(&app.store, &app.cli(), &id, policy).await.unwrap();
    (key, id)
}

/// The owner, as a person deciding in the console.
async fn owner(app: &TestApp) -> rapport::crm::Principal {
    let user = app.store.user_by_email(&app.default_org.id, "owner@localhost").await.unwrap().unwrap();
    rapport::crm::Principal::person(app.default_org.clone(), user, None)
}

/// The tables a held call must leave alone.
async fn record_rows(app: &TestApp) -> Vec<(&'static str, i64)> {
    let skip = ["audit_log", "webhook_deliveries", "api_keys"];
    app.row_counts().await.into_iter().filter(|(t, _)| !skip.contains(t)).collect()
}

async fn contacts(app: &TestApp, n: usize) -> Vec<String> {
    let items: Vec<Value> = (0..n).map(|i| json!({ "first_name": format!("P{i}"), "title": "CTO" })).collect();
    app.create_contacts(json!(items)).await.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn a_held_call_writes_nothing_until_a_person_approves_it_and_then_runs_as_the_key() {
    let app = spawn_app().await;
    let ids = contacts(&app, 2).await;
    let (agent, agent_id) = held_key(&app, &[ApprovalKind::Delete], None).await;
    let before = record_rows(&app).await;

    // A dry run says it would wait, and holds nothing.
    let dry = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": ids, "dry_run": true })).await;
    assert_eq!(dry.unwrap()["needs_approval"], json!(["delete"]));
    let (_, listed) = app.api(&app.key, Method::GET, "/approvals", None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 0, "a dry run creates no approval");

    let held = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": ids })).await.unwrap();
    assert_eq!(held["status"], "pending_approval", "{held}");
    assert_eq!(held["summary"], "delete_records: deleted 2 contacts");
    assert_eq!(held["changes"].as_array().unwrap().len(), 2);
    let expires = rapport::time::parse_instant(held["expires_at"].as_str().unwrap()).unwrap();
    let week = 7 * rapport::time::DAY_MS;
    assert!((expires - rapport::time::now_ms() - week).abs() < 60_000, "{held}");
    assert_eq!(record_rows(&app).await, before, "a held call writes nothing");
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 2);
    let id = held["approval_id"].as_str().unwrap().to_owned();

    // The key that asked reads it; no other key does. REST lists it, and decides nothing.
    let got = app.call_as(&agent, "get_approval", json!({ "approval_id": id })).await.unwrap();
    assert_eq!(got["status"], "pending");
    let other = app.key_with(Some("admin"), &[]).await;
    let e = app.call_as(&other, "get_approval", json!({ "approval_id": id })).await.unwrap_err();
    assert!(e.contains("no approval"), "{e}");
    let (status, one) = app.api(&app.key, Method::GET, &format!("/approvals/{id}"), None).await;
    assert_eq!(status, StatusCode::OK, "{one}");
    assert_eq!(one["key_id"], agent_id.as_str());
    for path in [format!("/approvals/{id}/approve"), format!("/approvals/{id}")] {
        let (status, _) = app.api(&app.key, Method::POST, &path, Some(json!({}))).await;
        assert!(matches!(status, StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED), "{path}: {status}");
    }
    // No key decides one, whatever its powers.
    let as_key = rapport::auth::authenticate(
        &app.store,
        &Default::default(),
        &rapport::auth::key::PlainKey::parse(&app.key).unwrap(),
        "127.0.0.1".parse().unwrap(),
    )
    .await
    .unwrap();
    assert!(matches!(approvals::approve(&app.state, &as_key, &id).await, Err(DecideError::Forbidden(_))));

    // A person approves: it runs as the key, with the change log naming the key and the
    // call that asked.
    let done = approvals::approve(&app.state, &owner(&app).await, &id).await.unwrap();
    assert_eq!(done.status, "approved", "{done:?}");
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 0);
    let got = app.call_as(&agent, "get_approval", json!({ "approval_id": id })).await.unwrap();
    assert_eq!(got["status"], "approved");
    assert_eq!(got["result"]["deleted"].as_array().map(Vec::len), Some(2), "{got}");
    assert_eq!(got["decided_by"], "owner@localhost");
    let (_, log) = app.api(&app.key, Method::GET, "/changes?tool=delete_records", None).await;
    assert_eq!(log["items"].as_array().unwrap().len(), 2);
    assert_eq!(log["items"][0]["actor"]["id"], agent_id.as_str(), "{log}");
    assert_eq!(log["items"][0]["via"]["route"], "mcp");
    // Decided once.
    let again = approvals::approve(&app.state, &owner(&app).await, &id).await;
    assert!(matches!(again, Err(DecideError::Decided(_))), "{again:?}");
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 20).await.unwrap();
    let actions: Vec<(&str, &str)> = audit.iter().map(|e| (e.action.as_str(), e.actor.kind())).collect();
    assert!(actions.contains(&("approval.request", "key")), "{actions:?}");
    assert!(actions.contains(&("approval.approve", "user")), "{actions:?}");
}

#[tokio::test]
async fn bulk_calls_wait_and_the_same_idempotency_key_gives_back_the_same_approval() {
    let app = spawn_app().await;
    let (agent, _) = held_key(&app, &[ApprovalKind::Bulk], Some(2)).await;
    let three = json!({ "contacts": [{ "first_name": "A" }, { "first_name": "B" }, { "first_name": "C" }], "idempotency_key": "import-1" });
    let first = app.call_as(&agent, "create_contacts", three.clone()).await.unwrap();
    assert_eq!(first["status"], "pending_approval", "{first}");
    let again = app.call_as(&agent, "create_contacts", three).await.unwrap();
    assert_eq!(again["approval_id"], first["approval_id"]);
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 0);
    // Two records are within the limit: they run at once.
    let two = json!({ "contacts": [{ "first_name": "D" }, { "first_name": "E" }] });
    let ran = app.call_as(&agent, "create_contacts", two).await.unwrap();
    assert_eq!(ran["items"].as_array().unwrap().len(), 2, "{ran}");
    // Over REST a held call answers 202 with the approval.
    let (status, body) = app
        .api(
            &agent,
            Method::POST,
            "/contacts",
            Some(json!({ "items": [{ "first_name": "F" }, { "first_name": "G" }, { "first_name": "H" }] })),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "pending_approval");
    // Approved, the created records get their own ids; the approval's answer names them.
    let id = first["approval_id"].as_str().unwrap();
    let done = approvals::approve(&app.state, &owner(&app).await, id).await.unwrap();
    assert_eq!(done.status, "approved", "{done:?}");
    assert_eq!(done.result.unwrap()["items"].as_array().unwrap().len(), 3);
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 5);
}

#[tokio::test]
async fn denied_stale_and_expired_calls_say_why_and_write_nothing() {
    let app = spawn_app().await;
    let ids = contacts(&app, 3).await;
    let (agent, agent_id) = held_key(&app, &[ApprovalKind::Bulk, ApprovalKind::Delete], Some(2)).await;
    let person = owner(&app).await;
    let update = |title: &str| json!({ "contacts": ids.iter().map(|id| json!({ "id": id, "title": title })).collect::<Vec<_>>() });
    let ask = |args: Value| {
        let agent = agent.clone();
        let app = &app;
        async move {
            let v = app.call_as(&agent, "update_contacts", args).await.unwrap();
            v["approval_id"].as_str().unwrap_or_else(|| panic!("held: {v}")).to_owned()
        }
    };

    // Denied, with a reason the agent reads; a reason is required.
    let id = ask(update("CEO")).await;
    let e = approvals::deny(&app.state, &person, &id, "  ").await.unwrap_err();
    assert!(e.to_string().contains("reason"), "{e}");
    approvals::deny(&app.state, &person, &id, "not before the board meets").await.unwrap();
    let got = app.call_as(&agent, "get_approval", json!({ "approval_id": id })).await.unwrap();
    assert_eq!((got["status"].as_str(), got["reason"].as_str()), (Some("denied"), Some("not before the board meets")));

    // Stale: a record moved since it was asked.
    let id = ask(update("CEO")).await;
    app.ok("update_contacts", json!({ "contacts": [{ "id": ids[0], "title": "Founder" }] })).await;
    let v = approvals::approve(&app.state, &person, &id).await.unwrap();
    assert_eq!(v.status, "stale", "{v:?}");
    assert!(v.reason.as_deref().unwrap().contains("moved"), "{v:?}");
    let got = app.ok("get_records", json!({ "records": [{ "entity": "contact", "id": ids[1] }] })).await;
    assert_eq!(got["items"][0]["title"], "CTO", "a stale call does not run");

    // Stale: the key was turned off meanwhile.
    let id = ask(update("CEO")).await;
    rapport::keys::disable(&app.store, &app.cli(), &agent_id).await.unwrap();
    let v = approvals::approve(&app.state, &person, &id).await.unwrap();
    assert_eq!((v.status.as_str(), v.reason.as_deref()), ("stale", Some("the key is no longer enabled")));
    rapport::keys::enable(&app.store, &app.cli(), &agent_id, 100).await.unwrap();

    // Expired after 7 days: told so, and no longer decided.
    let id = ask(update("CEO")).await;
    app.sql("UPDATE approvals SET expires_at = 1 WHERE id = $1", &id).await;
    let got = app.call_as(&agent, "get_approval", json!({ "approval_id": id })).await.unwrap();
    assert_eq!(got["status"], "expired");
    assert!(matches!(approvals::approve(&app.state, &person, &id).await, Err(DecideError::Decided(_))));

    // A member's role does not cover a delete: they cannot decide it.
    let held = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": [ids[0]] })).await.unwrap();
    let id = held["approval_id"].as_str().unwrap();
    app.person("member@example.com", "member").await;
    let member = app.store.user_by_email(&app.default_org.id, "member@example.com").await.unwrap().unwrap();
    let member = rapport::crm::Principal::person(app.default_org.clone(), member, None);
    let refused = approvals::approve(&app.state, &member, id).await;
    assert!(matches!(refused, Err(DecideError::Forbidden(_))), "{refused:?}");
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 3);
}

#[tokio::test]
async fn a_key_only_tightens_a_policy_and_a_key_it_makes_carries_at_least_its_own() {
    let app = spawn_app().await;
    let (agent, agent_id) = held_key(&app, &[ApprovalKind::Delete], None).await;
    let path = format!("/keys/{agent_id}");
    // Tighter: more kinds, a lower limit.
    let tighter = json!({ "approval": { "kinds": ["delete", "bulk"], "bulk_limit": 10 } });
    let (status, k) = app.api(&agent, Method::PATCH, &path, Some(tighter)).await;
    assert_eq!(status, StatusCode::OK, "{k}");
    assert_eq!(k["approval"], json!({ "kinds": ["delete", "bulk"], "bulk_limit": 10 }));
    // Looser, or none: refused for a key, and nothing changes.
    for looser in
        [json!({ "approval": null }), json!({ "approval": { "kinds": ["delete", "bulk"], "bulk_limit": 50 } })]
    {
        let (status, e) = app.api(&agent, Method::PATCH, &path, Some(looser)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{e}");
        assert!(e["error"]["message"].as_str().unwrap().contains("only tighten"), "{e}");
    }
    let (status, e) =
        app.api(&agent, Method::PATCH, &path, Some(json!({ "approval": { "kinds": ["everything"] } }))).await;
    assert!(status.is_client_error(), "{e}");
    // A key the agent makes carries at least its policy.
    let (status, made) =
        app.api(&agent, Method::POST, "/keys", Some(json!({ "name": "child", "role": "member" }))).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    assert_eq!(made["approval"]["kinds"], json!(["delete", "bulk"]));
    // A person removes it.
    let none = rapport::keys::set_approval(&app.store, &owner(&app).await, &agent_id, None).await.unwrap();
    assert!(none.approval.is_none());
    let ids = contacts(&app, 1).await;
    let ran = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": ids })).await.unwrap();
    assert!(ran.get("status").is_none(), "it runs at once again: {ran}");
}

#[tokio::test]
async fn a_key_has_at_most_a_hundred_calls_waiting() {
    let app = spawn_app().await;
    let ids = contacts(&app, 1).await;
    let (agent, agent_id) = held_key(&app, &[ApprovalKind::Delete], None).await;
    let held = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": ids })).await.unwrap();
    let id = held["approval_id"].as_str().unwrap().to_owned();
    // 99 more, as the table would hold them.
    for i in 0..99 {
        let copy = format!(
            "INSERT INTO approvals (id, org_id, key_id, tool, arguments, kinds, summary, changes, via, state, created_at, expires_at) \
             SELECT id || '-{i}', org_id, key_id, tool, arguments, kinds, summary, changes, via, state, created_at, expires_at \
             FROM approvals WHERE id = $1"
        );
        app.sql(Box::leak(copy.into_boxed_str()), &id).await;
    }
    let e = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": ids })).await.unwrap_err();
    assert!(e.contains("100 calls waiting"), "{e}");
    let (_, listed) = app.api(&app.key, Method::GET, &format!("/approvals?key_id={agent_id}&limit=500"), None).await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 100);
    let (status, e) = app.api(&app.key, Method::GET, "/approvals?state=maybe", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{e}");
}

#[tokio::test]
async fn approvals_are_sent_to_webhooks_that_ask_for_them() {
    let app = spawn_app().await;
    let hook = |events: Value| {
        let app = &app;
        async move {
            let v = app.ok("create_webhook", json!({ "url": "http://127.0.0.1:9/hook", "events": events })).await;
            v["id"].as_str().unwrap().to_owned()
        }
    };
    let approvals_hook = hook(json!(["approval.*"])).await;
    let contacts_hook = hook(json!(["contact.*"])).await;
    let ids = contacts(&app, 1).await;
    let (agent, _) = held_key(&app, &[ApprovalKind::Delete], None).await;
    let held = app.call_as(&agent, "delete_records", json!({ "entity": "contact", "ids": ids })).await.unwrap();
    let id = held["approval_id"].as_str().unwrap();
    approvals::deny(&app.state, &owner(&app).await, id, "keep them").await.unwrap();
    let types = |hook: String| {
        let app = &app;
        async move {
            let got = app.ok("list_webhook_deliveries", json!({ "id": hook })).await;
            let mut t: Vec<String> =
                got["items"].as_array().unwrap().iter().map(|d| d["type"].as_str().unwrap().to_owned()).collect();
            t.reverse();
            t
        }
    };
    assert_eq!(types(approvals_hook).await, ["approval.requested", "approval.decided"]);
    assert_eq!(types(contacts_hook).await, ["contact.created"], "a held delete announces no deletion");
}

#[tokio::test]
async fn an_admin_tightens_but_cannot_loosen_the_policy_of_an_owners_key() {
    let app = spawn_app().await;
    // The owner's own key, with owner powers and deletes held.
    let (_, owner_key) = app.key_of("owner@localhost", "owner agent", Some("owner"), &[]).await;
    let held = ApprovalPolicy::new([ApprovalKind::Delete], None).unwrap();
    rapport::keys::set_approval(&app.store, &owner(&app).await, &owner_key, held.clone()).await.unwrap();
    app.person("admin@example.com", "admin").await;
    let admin = app.store.user_by_email(&app.default_org.id, "admin@example.com").await.unwrap().unwrap();
    let admin = rapport::crm::Principal::person(app.default_org.clone(), admin, None);

    // Loosening it would hand the admin an owner's unwatched powers: refused, and nothing changes.
    for looser in [None, ApprovalPolicy::new([ApprovalKind::Bulk], None).unwrap()] {
        let refused = rapport::keys::set_approval(&app.store, &admin, &owner_key, looser).await;
        assert!(matches!(refused, Err(rapport::keys::KeyError::Forbidden(_))), "{refused:?}");
    }
    let (_, k) = app.api(&app.key, Method::GET, &format!("/keys/{owner_key}"), None).await;
    assert_eq!(k["approval"]["kinds"], json!(["delete"]), "{k}");
    // Tightening only holds it back more: allowed.
    let tighter = ApprovalPolicy::new([ApprovalKind::Delete, ApprovalKind::Schema], None).unwrap();
    let v = rapport::keys::set_approval(&app.store, &admin, &owner_key, tighter).await.unwrap();
    assert_eq!(v.approval.map(|p| p.kinds.len()), Some(2));
}
