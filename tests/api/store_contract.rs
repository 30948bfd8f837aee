//! The storage contract, run against whichever database the suite is on.

use rapport::auth::key::PlainKey;
use rapport::store::query::{Col, ColKind, Query, SortExpr};
use rapport::store::{KeyUse, OrgId, Record, RecordId, StoreError};
use rapport_tools::Entity;
use serde_json::json;

use crate::helpers::{create_key, spawn_app};

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
            rapport::keys::create(store.as_ref(), &org, &rapport::keys::Creator::cli(), req, max).await
        })
    });
    let results = futures::future::join_all(tasks).await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Ok(_)))).count();
    let limited = results.iter().filter(|r| matches!(r, Ok(Err(rapport::keys::KeyError::Limit(2))))).count();
    assert_eq!((ok, limited), (1, 19));
}
