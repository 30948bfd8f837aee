//! The storage contract, run against whichever database the suite is on.

use rapport::auth::key::PlainKey;
use rapport::config::ServeArgs;
use rapport::store::query::{Col, ColKind, Query, SortExpr};
use rapport::store::{KeyUse, OrgId, Record, RecordId, StoreError};
use rapport_tools::Entity;
use serde_json::json;

use crate::helpers::{create_key, serve_args, spawn_app, spawn_app_with};

#[tokio::test]
async fn records_round_trip_and_updates_are_checked() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let org = &app.default_org.id;
    let other = OrgId::from("other");
    let mut record = Record::new(Entity::Contact, RecordId::from("c1"), 10);
    record.values.insert("first_name".into(), json!("Ada"));
    record.values.insert("tags".into(), json!(["a"]));
    let mut tx = store.begin().await.unwrap();
    tx.insert_records(org, std::slice::from_ref(&record), &[]).await.unwrap();
    tx.commit().await.unwrap();
    let got = store.get_records(org, Entity::Contact, &[RecordId::from("c1")]).await.unwrap();
    assert_eq!(got, vec![record.clone()]);
    // Another organization sees nothing.
    assert!(store.get_records(&other, Entity::Contact, &[RecordId::from("c1")]).await.unwrap().is_empty());

    let mut changed = record.clone();
    changed.values.insert("title".into(), json!("CTO"));
    changed.updated_at = 11;
    // A stale expectation is refused; the right one wins.
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(tx.update_records(org, &[(changed.clone(), 9)], &[]).await, Err(StoreError::Stale)));
    drop(tx);
    let mut tx = store.begin().await.unwrap();
    tx.update_records(org, &[(changed.clone(), 10)], &[]).await.unwrap();
    tx.commit().await.unwrap();
    let mut tx = store.begin().await.unwrap();
    assert!(matches!(tx.update_records(&other, &[(changed.clone(), 11)], &[]).await, Err(StoreError::NotFound)));
    drop(tx);

    let q = Query {
        entity: Entity::Contact,
        filter: vec![],
        sort: vec![SortExpr {
            field: "created_at".into(),
            col: Col::Builtin { name: "created_at", kind: ColKind::Int, indexed: true },
            desc: true,
        }],
        after: None,
        limit: 10,
    };
    assert_eq!(store.search(org, &q).await.unwrap().len(), 1);
    assert_eq!(store.count(org, Entity::Contact, &[]).await.unwrap(), 1);
    let mut tx = store.begin().await.unwrap();
    let both = [RecordId::from("c1"), RecordId::from("nope")];
    assert!(matches!(tx.trash_records(org, Entity::Contact, &both, 20).await, Err(StoreError::NotFound)));
    drop(tx);
    assert_eq!(store.count(org, Entity::Contact, &[]).await.unwrap(), 1, "a failed delete deletes nothing");
    let mut tx = store.begin().await.unwrap();
    tx.trash_records(org, Entity::Contact, &[RecordId::from("c1")], 20).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.count(org, Entity::Contact, &[]).await.unwrap(), 0);
    assert!(store.get_records(org, Entity::Contact, &[RecordId::from("c1")]).await.unwrap().is_empty());
}

#[tokio::test]
async fn keys_are_found_by_digest_and_uses_recorded() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let key = create_key(store, &app.default_org, "contract", Some("admin"), &[]).await;
    let plain = PlainKey::parse(&key).unwrap();
    let auth = store.key_for_auth(&plain.digest()).await.unwrap().expect("found");
    assert_eq!(auth.org.name, "default");
    assert_eq!(auth.user.email, "owner@localhost");
    assert_eq!(auth.key.preview, plain.preview());
    assert!(store.key_for_auth(&PlainKey::generate().digest()).await.unwrap().is_none());

    store.record_key_uses(&[KeyUse { key_id: auth.key.id.clone(), at: 5_000, ip: "192.0.2.1".into() }]).await.unwrap();
    // An older use never overwrites a newer one.
    store.record_key_uses(&[KeyUse { key_id: auth.key.id.clone(), at: 4_000, ip: "192.0.2.2".into() }]).await.unwrap();
    let keys = store.list_keys(&app.default_org.id, false).await.unwrap();
    let k = keys.iter().find(|k| k.id == auth.key.id).unwrap();
    assert_eq!(k.last_used_at, Some(5_000));
    assert_eq!(k.last_used_ip.as_deref(), Some("192.0.2.1"));
}

#[tokio::test]
async fn the_active_key_limit_holds_under_concurrency() {
    let app = spawn_app().await;
    // The test owner key takes one place; leave exactly one more.
    let max = 2;
    let tasks = (0..20).map(|i| {
        let store = app.store.clone();
        let org = app.default_org.clone();
        tokio::spawn(async move {
            let req = rapport::keys::NewKeyRequest { name: format!("race {i}"), ..Default::default() };
            rapport::keys::create(store.as_ref(), &rapport::crm::Principal::cli(org.clone()), req, max).await
        })
    });
    let results = futures::future::join_all(tasks).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let limited = results.iter().filter(|r| matches!(r, Ok(Err(rapport::keys::KeyError::Limit(2))))).count();
    assert_eq!((ok, limited), (1, 19));
}

/// The webhook outbox: deliveries are queued with the change, for subscribed endpoints
/// only; only the oldest pending delivery of a record is due, so a record's events go out
/// in order; a lease keeps a claimed delivery from a second claimer.
#[tokio::test]
async fn the_webhook_outbox_queues_with_the_change_and_keeps_each_record_in_order() {
    use rapport::store::{Attempt, Endpoint, Outcome};
    // This test claims deliveries itself: the server's own sender stays off.
    let app = spawn_app_with(ServeArgs { webhook_sender: false, ..serve_args() }).await;
    let store = app.store.as_ref();
    let org = &app.default_org.id;
    // Endpoints carry their creator's powers: here the owner's.
    let owner = store.first_owner(org).await.unwrap().unwrap();
    let endpoint = |id: &str, events: &[&str]| Endpoint {
        created_by: Some(owner.id.clone()),
        created_by_key: None,
        scopes: None,
        id: id.into(),
        org_id: org.clone(),
        url: "http://127.0.0.1:9/hook".into(),
        events: events.iter().map(|s| (*s).to_owned()).collect(),
        description: None,
        enabled: true,
        secret: rapport::webhooks::sign::Secret::generate(),
        old_secret: None,
        old_secret_until: None,
        created_at: 1,
        updated_at: 1,
        failing_since: None,
        disabled_reason: None,
    };
    let mut tx = store.begin().await.unwrap();
    tx.insert_endpoint(&endpoint("wh_deals", &["deal.*"])).await.unwrap();
    tx.insert_endpoint(&endpoint("wh_contacts", &["contact.created", "contact.updated"])).await.unwrap();
    tx.insert_endpoint(&endpoint("wh_gone", &["contact.created"])).await.unwrap();
    tx.commit().await.unwrap();

    let id = app.create_contacts(json!([{ "first_name": "Ada" }])).await[0]["id"].as_str().unwrap().to_owned();
    app.ok("update_contacts", json!({ "contacts": [{ "id": id, "title": "CTO" }] })).await;
    // A no-op update writes no change, so it announces nothing.
    app.ok("update_contacts", json!({ "contacts": [{ "id": id, "title": "CTO" }] })).await;
    app.ok("delete_records", json!({ "entity": "contact", "ids": [id] })).await;

    // A write queues its events, naming their endpoints; the sender fans them out into
    // deliveries, skipping an endpoint deleted meanwhile.
    let now = rapport::time::now_ms();
    assert!(store.claim_deliveries(now, now + 60_000, 10, &[]).await.unwrap().is_empty(), "not fanned out yet");
    let mut tx = store.begin().await.unwrap();
    tx.delete_endpoint(org, &"wh_gone".into()).await.unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.fan_out(1).await.unwrap(), 1, "oldest first, a batch at a time");
    assert_eq!(store.fan_out(100).await.unwrap(), 1);
    assert_eq!(store.fan_out(100).await.unwrap(), 0);
    let first = store.claim_deliveries(now, now + 60_000, 10, &[]).await.unwrap();
    assert_eq!(first.len(), 1, "only the oldest delivery of the record is due: {first:?}");
    assert_eq!(first[0].delivery.event_type, "contact.created");
    assert_eq!(first[0].endpoint.id, "wh_contacts");
    assert!(store.claim_deliveries(now, now + 60_000, 10, &[]).await.unwrap().is_empty(), "leased");
    store.release_deliveries(&first).await.unwrap();
    assert!(store.claim_deliveries(now, now + 60_000, 10, &["wh_contacts"]).await.unwrap().is_empty(), "busy");
    let first = store.claim_deliveries(now, now + 60_000, 10, &[]).await.unwrap();
    assert_eq!(first.len(), 1, "given back, claimed again");
    let done = |state: &'static str| Outcome {
        attempt: Attempt { at: now, status: Some(200), duration_ms: 3, error: None, response: Some("ok".into()) },
        state,
        next_attempt_at: now,
        success: true,
    };
    store.finish_attempts(&[(first[0].clone(), done("delivered"))]).await.unwrap();
    let second = store.claim_deliveries(now, now + 60_000, 10, &[]).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].delivery.event_type, "contact.updated", "deleted is not subscribed, created went out");
    store.finish_attempts(&[(second[0].clone(), done("delivered"))]).await.unwrap();
    assert!(store.claim_deliveries(now, now + 60_000, 10, &[]).await.unwrap().is_empty());

    let listed = store.deliveries(org, &"wh_contacts".into(), &["contact"], None, 10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|d| d.delivery.state == "delivered" && d.attempts.len() == 1));
    assert!(
        store
            .deliveries(&OrgId::from("other"), &"wh_contacts".into(), &["contact"], None, 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A resend queues the delivery again under its id; a failed attempt starts the
    // endpoint's failure run, and a later one keeps its start.
    let who = rapport::store::AuditEntry::new(
        org,
        &rapport::store::Actor::Cli,
        None,
        "webhook.resend",
        rapport::store::Target::Webhook(&"wh_contacts".into()),
        json!({}),
    );
    let again = store.resend_delivery(org, &first[0].delivery.id, now, &who).await.unwrap().unwrap();
    assert_eq!((again.id.as_str(), again.state.as_str()), (first[0].delivery.id.as_str(), "pending"));
    let retry = store.claim_deliveries(now, now + 60_000, 10, &[]).await.unwrap();
    assert_eq!(retry.len(), 1);
    let failed = |at: i64| Outcome {
        attempt: Attempt { at, status: Some(500), ..done("pending").attempt },
        success: false,
        ..done("pending")
    };
    assert_eq!(store.finish_attempts(&[(retry[0].clone(), failed(now))]).await.unwrap()[0], Some(Some(now)));
    let retry = store.claim_deliveries(now + 1, now + 60_001, 10, &[]).await.unwrap();
    assert_eq!(store.finish_attempts(&[(retry[0].clone(), failed(now + 1))]).await.unwrap()[0], Some(Some(now)));
    // A claim that no longer holds records nothing: its attempt is not counted twice.
    assert_eq!(store.finish_attempts(&[(retry[0].clone(), failed(now + 2))]).await.unwrap()[0], None);
    let listed = store.deliveries(org, &"wh_contacts".into(), &["contact"], None, 10).await.unwrap();
    assert_eq!(listed.iter().map(|d| d.attempts.len()).sum::<usize>(), 4);
}
