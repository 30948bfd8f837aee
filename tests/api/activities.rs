//! Activities (SPEC 5): calls, meetings, emails and messages as records, and
//! `last_activity_at` on contacts, companies and deals kept exact by every write.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const DAY: i64 = 86_400_000;

fn days_ago(n: i64) -> String {
    rapport::time::rfc3339(rapport::time::now_ms() - n * DAY)
}

/// `last_activity_at` of each record, as `get_records` gives it.
async fn last(app: &TestApp, records: &[(&str, &Value)]) -> Vec<Value> {
    let wanted: Vec<Value> = records.iter().map(|(e, id)| json!({"entity": e, "id": id})).collect();
    let got = app.ok("get_records", json!({"records": wanted})).await;
    records
        .iter()
        .map(|(_, id)| {
            let item = got["items"].as_array().unwrap().iter().find(|i| i["id"] == **id).expect("read back");
            item["last_activity_at"].clone()
        })
        .collect()
}

async fn log(app: &TestApp, activity: Value) -> Value {
    app.ok("log_activities", json!({"activities": [activity]})).await["items"][0].clone()
}

async fn update(app: &TestApp, changes: Value) -> Value {
    app.ok("update_activities", json!({"activities": [changes]})).await["items"][0].clone()
}

#[tokio::test]
async fn last_activity_at_follows_every_write_of_an_activity() {
    let app = spawn_app().await;
    let acme = app.create_companies(json!([{"name": "Acme", "domain": "acme.com"}])).await[0]["id"].clone();
    let people = app
        .create_contacts(
            json!([{"first_name": "Ada", "company_id": acme}, {"first_name": "Bob"}, {"first_name": "Carl"}]),
        )
        .await;
    let (ada, bob, carl) = (people[0]["id"].clone(), people[1]["id"].clone(), people[2]["id"].clone());
    let deal = app.ok("create_deals", json!({"deals": [{"name": "Acme renewal", "company_id": acme}]})).await["items"]
        [0]["id"]
        .clone();
    let all = [("contact", &ada), ("contact", &bob), ("contact", &carl), ("company", &acme), ("deal", &deal)];
    assert_eq!(last(&app, &all).await, vec![Value::Null; 5], "nobody has been contacted yet");

    let (d10, d20, d2, d1) = (days_ago(10), days_ago(20), days_ago(2), days_ago(1));
    let call = log(
        &app,
        json!({"kind": "call", "subject": "Intro", "outcome": "connected", "duration_minutes": 12, "direction": "outbound",
               "occurred_at": d10, "record": {"entity": "contact", "id": ada}, "participant_ids": [bob]}),
    )
    .await;
    assert_eq!(call["kind"], "call");
    assert_eq!(call["participant_ids"], json!([bob]));
    // The record it is about and its participants; the company does not inherit its contact's.
    assert_eq!(last(&app, &all).await, vec![json!(d10), json!(d10), Value::Null, Value::Null, Value::Null]);
    // On the timelines of the contact it is about and of the one who took part; not Carl's.
    for (who, shows) in [(&ada, true), (&bob, true), (&carl, false)] {
        let t = app.ok("get_timeline", json!({"entity": "contact", "id": who})).await;
        let has =
            t["items"].as_array().unwrap().iter().any(|e| e["entity"] == "activity" && e["record_id"] == call["id"]);
        assert_eq!(has, shows, "{who}: {t}");
    }

    let meeting = log(
        &app,
        json!({"kind": "meeting", "subject": "Demo", "occurred_at": d2, "record": {"entity": "deal", "id": deal}, "participant_ids": [ada]}),
    )
    .await;
    assert_eq!(last(&app, &all).await, vec![json!(d2), json!(d10), Value::Null, Value::Null, json!(d2)]);
    // participant_ids filters like a deal's contact_ids.
    for (op, want) in [("has_any", &meeting["id"]), ("has_none", &call["id"])] {
        let ids = app
            .search_ids(
                json!({"entity": "activity", "filters": [{"field": "participant_ids", "op": op, "value": [ada]}]}),
            )
            .await;
        assert_eq!(ids, vec![want.as_str().unwrap().to_owned()], "{op}");
    }

    // Back-dated: the newest is the call again.
    update(&app, json!({"id": meeting["id"], "occurred_at": d20})).await;
    assert_eq!(last(&app, &all).await, vec![json!(d10), json!(d10), Value::Null, Value::Null, json!(d20)]);

    // Moved from Ada to Acme, then back.
    update(&app, json!({"id": call["id"], "record": {"entity": "company", "id": acme}})).await;
    assert_eq!(last(&app, &all).await, vec![json!(d20), json!(d10), Value::Null, json!(d10), json!(d20)]);
    update(&app, json!({"id": call["id"], "record": {"entity": "contact", "id": ada}})).await;
    assert_eq!(last(&app, &all).await, vec![json!(d10), json!(d10), Value::Null, Value::Null, json!(d20)]);

    // Participants changed by an update, then by link_records and unlink_records.
    update(&app, json!({"id": call["id"], "participant_ids": [carl]})).await;
    assert_eq!(last(&app, &all).await, vec![json!(d10), Value::Null, json!(d10), Value::Null, json!(d20)]);
    let link =
        json!({"links": [{"from": {"entity": "activity", "id": call["id"]}, "to": {"entity": "contact", "id": bob}}]});
    app.ok("link_records", link.clone()).await;
    assert_eq!(last(&app, &all).await, vec![json!(d10), json!(d10), json!(d10), Value::Null, json!(d20)]);
    app.ok("unlink_records", link).await;
    assert_eq!(last(&app, &all).await, vec![json!(d10), Value::Null, json!(d10), Value::Null, json!(d20)]);

    // Deleted, then restored.
    app.ok("delete_records", json!({"entity": "activity", "ids": [call["id"]]})).await;
    assert_eq!(last(&app, &all).await, vec![json!(d20), Value::Null, Value::Null, Value::Null, json!(d20)]);
    app.ok("restore_records", json!({"entity": "activity", "ids": [call["id"]]})).await;
    assert_eq!(last(&app, &all).await, vec![json!(d10), Value::Null, json!(d10), Value::Null, json!(d20)]);

    // A merge brings the merged contact's activities, and their time, to the kept one.
    log(
        &app,
        json!({"kind": "email", "outcome": "replied", "occurred_at": d1, "record": {"entity": "contact", "id": carl}}),
    )
    .await;
    app.ok("merge_records", json!({"entity": "contact", "keep_id": bob, "merge_ids": [carl]})).await;
    assert_eq!(last(&app, &[("contact", &bob)]).await, vec![json!(d1)]);

    // "Not spoken to in 15 days": filter and sort on the derived field.
    let quiet = app
        .search_ids(json!({"entity": "contact", "filters": [{"any": [
            {"field": "last_activity_at", "op": "lt", "value": days_ago(15)},
            {"field": "last_activity_at", "op": "is_null"}]}]}))
        .await;
    assert!(quiet.is_empty(), "Ada (10 days) and Bob (1 day) were spoken to: {quiet:?}");
    let recent = app
        .search_ids(
            json!({"entity": "contact", "filters": [{"field": "last_activity_at", "op": "in_last_days", "value": 5}],
                           "sort": [{"field": "last_activity_at", "direction": "desc"}]}),
        )
        .await;
    assert_eq!(recent, vec![bob.as_str().unwrap().to_owned()]);
    let by_time =
        app.search_ids(json!({"entity": "contact", "sort": [{"field": "last_activity_at", "direction": "asc"}]})).await;
    assert_eq!(by_time, vec![ada.as_str().unwrap().to_owned(), bob.as_str().unwrap().to_owned()]);
}

#[tokio::test]
async fn activities_are_refused_with_a_clear_error_and_nothing_written() {
    let app = spawn_app().await;
    let ada = app.create_contacts(json!([{"first_name": "Ada"}])).await[0]["id"].clone();
    let task = app.ok("create_tasks", json!({"tasks": [{"title": "Call Ada"}]})).await["items"][0]["id"].clone();
    let about = json!({"entity": "contact", "id": ada});
    let in_an_hour = days_ago(-1);
    for (item, needle) in [
        (json!({"subject": "No kind", "record": about}), "kind"),
        (json!({"kind": "fax", "record": about}), "call, meeting, email, message"),
        (json!({"kind": "call", "occurred_at": in_an_hour, "record": about}), "in the future"),
        (json!({"kind": "call", "outcome": "held", "record": about}), "a call has one of these outcomes"),
        (json!({"kind": "call", "duration_minutes": -5, "record": about}), "minutes from 0"),
        (json!({"kind": "call", "record": {"entity": "task", "id": task}}), "contact, a company, a deal"),
        (json!({"kind": "call", "participant_ids": ["01a20000-0000-7000-8000-000000000000"]}), "not found"),
        (json!({"kind": "call", "last_activity_at": "2026-01-01T00:00:00Z"}), "last_activity_at"),
    ] {
        let err =
            app.err("log_activities", json!({"activities": [item.clone(), {"kind": "call", "record": about}]})).await;
        assert!(err.contains(needle), "{item}: {err}");
    }
    let err = app
        .err("update_contacts", json!({"contacts": [{"id": ada, "last_activity_at": "2026-01-01T00:00:00Z"}]}))
        .await;
    assert!(err.contains("last_activity_at"), "{err}");
    assert_eq!(app.ok("count_records", json!({"entity": "activity"})).await["count"], 0, "nothing was written");
    assert_eq!(last(&app, &[("contact", &ada)]).await, vec![Value::Null]);
}

#[tokio::test]
async fn a_week_of_activities_counts_per_kind_and_person_through_rest_and_both_profiles() {
    let app = spawn_app().await;
    let ada = app.create_contacts(json!([{"first_name": "Ada"}])).await[0]["id"].clone();
    let about = json!({"entity": "contact", "id": ada});
    // Through the full profile, the lean one, and REST.
    log(&app, json!({"kind": "call", "occurred_at": days_ago(1), "record": about})).await;
    log(&app, json!({"kind": "call", "occurred_at": days_ago(3), "record": about})).await;
    app.ok("write_records", json!({"entity": "activity", "mode": "create", "items": [
        {"kind": "meeting", "subject": "Quarterly review", "occurred_at": days_ago(2), "record": about, "participant_ids": [ada]}]}))
        .await;
    let (status, body) = app
        .api(
            &app.key,
            Method::POST,
            "/activities",
            Some(json!({"kind": "email", "occurred_at": days_ago(4), "record": about})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    // An old call, outside the week.
    log(&app, json!({"kind": "call", "occurred_at": days_ago(40), "record": about})).await;

    let week = json!([{"field": "occurred_at", "op": "in_last_days", "value": 7}]);
    let groups = app.ok("count_records", json!({"entity": "activity", "filters": week, "group_by": "kind"})).await;
    assert_eq!(groups["count"], 4);
    let per_kind: Vec<(String, i64)> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["value"].as_str().unwrap().to_owned(), g["count"].as_i64().unwrap()))
        .collect();
    assert_eq!(per_kind[0], ("call".to_owned(), 2), "{groups}");
    assert!(per_kind.contains(&("meeting".to_owned(), 1)) && per_kind.contains(&("email".to_owned(), 1)));
    let calls = json!([{"field": "occurred_at", "op": "in_last_days", "value": 7}, {"field": "kind", "op": "eq", "value": "call"}]);
    let per_person =
        app.ok("count_records", json!({"entity": "activity", "filters": calls, "group_by": "owner_id"})).await;
    assert_eq!(per_person["count"], 2, "{per_person}");

    let (status, list) = app.api(&app.key, Method::GET, "/activities?sort=occurred_at:desc", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["items"].as_array().unwrap().len(), 5);
    let times: Vec<&str> =
        list["items"].as_array().unwrap().iter().map(|i| i["occurred_at"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let (_, contact) = app.api(&app.key, Method::GET, &format!("/contacts/{}", ada.as_str().unwrap()), None).await;
    assert!(contact["last_activity_at"].as_str().is_some_and(|t| t.starts_with(&days_ago(1)[..10])), "{contact}");
    let found = app.ok("search_all", json!({"query": "quarterly"})).await;
    assert!(found["items"].as_array().unwrap().iter().any(|i| i["entity"] == "activity"), "{found}");
}

#[tokio::test]
async fn a_weaker_key_cannot_log_activities_or_add_participants_it_may_not_write() {
    let app = spawn_app().await;
    let ada = app.create_contacts(json!([{"first_name": "Ada"}])).await[0]["id"].clone();
    let about = json!({"entity": "contact", "id": ada});
    let viewer = app.key_with(Some("viewer"), &[]).await;
    let err = app.call_as(&viewer, "log_activities", json!({"activities": [{"kind": "call", "record": about}]})).await;
    let err = err.unwrap_err();
    assert!(err.contains("activities:write") || err.contains("log_activities"), "{err}");
    // Activities but not contacts: taking part links the contact, which takes contacts:write.
    let logger = app.key_with(None, &["activities:read", "activities:write", "contacts:read"]).await;
    let err = app
        .call_as(
            &logger,
            "log_activities",
            json!({"activities": [{"kind": "call", "record": about, "participant_ids": [ada]}]}),
        )
        .await
        .unwrap_err();
    assert!(err.contains("contacts:write"), "{err}");
    assert_eq!(app.ok("count_records", json!({"entity": "activity"})).await["count"], 0, "nothing was written");
    app.call_as(&logger, "log_activities", json!({"activities": [{"kind": "call", "record": about}]})).await.unwrap();
}
