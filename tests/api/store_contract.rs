//! The storage contract, run against whichever database the suite is on.

use rapport::auth::key::PlainKey;
use rapport::store::query::{ColKind, Query, SortExpr};
use rapport::store::{ContactRow, KeyUse, Row, StoreError};
use rapport_tools::records::Entity;

use crate::helpers::{create_key, spawn_app};

#[tokio::test]
async fn rows_round_trip_and_updates_are_checked() {
    let app = spawn_app().await;
    let store = app.store.as_ref();
    let org = &app.default_org.id;
    let row = ContactRow {
        id: "c1".into(),
        first_name: Some("Ada".into()),
        tags: vec!["a".into()],
        created_at: 10,
        updated_at: 10,
        ..Default::default()
    };
    store.insert_rows(org, &[Row::Contact(row.clone())]).await.unwrap();
    let got = store.get_rows(org, Entity::Contact, &["c1".into()]).await.unwrap();
    assert_eq!(got, vec![Row::Contact(row.clone())]);
    // Another organization sees nothing.
    assert!(store.get_rows("other", Entity::Contact, &["c1".into()]).await.unwrap().is_empty());

    let mut changed = row.clone();
    changed.title = Some("CTO".into());
    changed.updated_at = 11;
    // A stale expectation is refused; the right one wins.
    assert!(matches!(store.update_rows(org, &[(Row::Contact(changed.clone()), 9)]).await, Err(StoreError::Stale)));
    store.update_rows(org, &[(Row::Contact(changed.clone()), 10)]).await.unwrap();
    assert!(matches!(
        store.update_rows("other", &[(Row::Contact(changed.clone()), 11)]).await,
        Err(StoreError::NotFound)
    ));

    let q = Query {
        entity: Entity::Contact,
        filter: vec![],
        sort: vec![SortExpr { column: "created_at", kind: ColKind::Int, desc: true }],
        after: None,
        limit: 10,
    };
    assert_eq!(store.search(org, &q).await.unwrap().len(), 1);
    assert_eq!(store.count(org, Entity::Contact, &[]).await.unwrap(), 1);
    assert!(matches!(
        store.delete_rows(org, Entity::Contact, &["c1".into(), "nope".into()]).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.count(org, Entity::Contact, &[]).await.unwrap(), 1, "a failed delete deletes nothing");
    store.delete_rows(org, Entity::Contact, &["c1".into()]).await.unwrap();
    assert_eq!(store.count(org, Entity::Contact, &[]).await.unwrap(), 0);
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
