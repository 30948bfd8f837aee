//! Keyset paging through 1,000 records: every record once, in order, whatever the sort.

use std::collections::HashSet;

use serde_json::{Value, json};

use crate::helpers::spawn_app;

async fn page_through(app: &crate::helpers::TestApp, mut args: Value, limit: u64) -> Vec<Value> {
    let mut all = Vec::new();
    let mut pages = 0;
    loop {
        args["limit"] = json!(limit);
        let v = app.ok("search_records", args.clone()).await;
        let items = v["items"].as_array().unwrap();
        assert!(items.len() as u64 <= limit);
        all.extend(items.iter().cloned());
        pages += 1;
        assert!(pages < 1000, "paging does not end");
        match v["next_cursor"].as_str() {
            Some(c) => args["cursor"] = json!(c),
            None => break,
        }
    }
    all
}

#[tokio::test]
async fn a_thousand_records_page_exactly() {
    let app = spawn_app().await;
    for batch in 0..10 {
        let contacts: Vec<Value> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                // Few distinct last names, some missing, so ties and NULLs are exercised.
                let last = if n % 7 == 0 { Value::Null } else { json!(format!("Name{}", n % 13)) };
                json!({"first_name": format!("P{n:04}"), "last_name": last, "email": format!("p{n}@example.com"), "tags": if n % 2 == 0 { json!(["even"]) } else { json!([]) }})
            })
            .collect();
        app.create_contacts(json!(contacts)).await;
    }
    assert_eq!(app.ok("count_records", json!({"entity": "contact"})).await["count"], 1000);

    for (sort, limit) in [
        (json!([]), 100),
        (json!([{"field": "last_name"}]), 37),
        (json!([{"field": "last_name", "direction": "desc"}, {"field": "first_name"}]), 100),
        (json!([{"field": "email", "direction": "desc"}]), 64),
    ] {
        let all = page_through(&app, json!({"entity": "contact", "sort": sort}), limit).await;
        assert_eq!(all.len(), 1000, "sort {sort}");
        let ids: HashSet<&str> = all.iter().map(|c| c["id"].as_str().unwrap()).collect();
        assert_eq!(ids.len(), 1000, "no duplicates with sort {sort}");
        // Pages that end inside a run of equal last names resume inside it (on SQLite
        // as two seeks: the rest of the run, then what follows).
        let text = |c: &Value, f: &str| c[f].as_str().unwrap_or("").to_owned();
        if sort == json!([{"field": "last_name"}]) {
            let keys: Vec<String> = all.iter().map(|c| text(c, "last_name")).collect();
            let mut sorted = keys.clone();
            sorted.sort();
            assert_eq!(keys, sorted, "ascending last_name");
        }
        if sort[0]["direction"] == "desc" && sort[0]["field"] == "last_name" {
            let keys: Vec<(String, String)> =
                all.iter().map(|c| (text(c, "last_name"), text(c, "first_name"))).collect();
            let mut sorted = keys.clone();
            sorted.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            assert_eq!(keys, sorted, "last_name descending, then first_name ascending");
        }
    }
    let evens = page_through(
        &app,
        json!({"entity": "contact", "filters": [{"field": "tags", "op": "has_any", "value": ["even"]}]}),
        100,
    )
    .await;
    assert_eq!(evens.len(), 500);

    // Free text, common and rare: on SQLite a common word's pages come from the rows in
    // order, a rare word's from the trigram index; either way each match once, in order.
    for (word, sort, expected) in
        [("example", json!([]), 1000), ("p00", json!([{"field": "last_name"}]), 100), ("p099", json!([]), 10)]
    {
        let all = page_through(&app, json!({"entity": "contact", "query": word, "sort": sort}), 25).await;
        let firsts: Vec<&str> = all.iter().map(|c| c["first_name"].as_str().unwrap()).collect();
        assert_eq!(firsts.len(), expected, "query {word}");
        assert_eq!(firsts.iter().collect::<HashSet<_>>().len(), expected, "no duplicates for {word}");
        assert!(firsts.iter().all(|f| f.to_lowercase().contains(word) || word == "example"), "{word}: {firsts:?}");
        if sort == json!([]) {
            // Newest first: created in order P0000, P0001, …
            let mut newest_first = firsts.clone();
            newest_first.sort_by(|a, b| b.cmp(a));
            assert_eq!(firsts, newest_first, "newest first for {word}");
        }
    }
}

#[tokio::test]
async fn a_cursor_belongs_to_its_search() {
    let app = spawn_app().await;
    let contacts: Vec<Value> = (0..5).map(|i| json!({"first_name": format!("P{i}")})).collect();
    app.create_contacts(json!(contacts)).await;
    let v = app.ok("search_records", json!({"entity": "contact", "limit": 2})).await;
    let cursor = v["next_cursor"].as_str().unwrap().to_owned();
    let err =
        app.err("search_records", json!({"entity": "contact", "limit": 2, "cursor": cursor, "query": "p1"})).await;
    assert!(err.contains("belongs to a search"), "{err}");
    let err = app.err("search_records", json!({"entity": "contact", "cursor": "not-a-cursor"})).await;
    assert!(err.contains("next_cursor"), "{err}");
    let v = app.ok("search_records", json!({"entity": "contact", "limit": 2, "cursor": cursor})).await;
    assert_eq!(v["items"].as_array().unwrap().len(), 2);
}

/// A word with many matches, none among the newest rows: on SQLite its newest matches by
/// rowid are tried first, which is exact only while rows are written in time order. A
/// record whose age says otherwise (a clock set back) must still come first.
#[tokio::test]
async fn free_text_pages_by_age_even_when_rows_are_out_of_order() {
    let app = spawn_app().await;
    for batch in 0..16 {
        let contacts: Vec<Value> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                // 600 matches, then 1,000 newer contacts that do not match.
                let last = if n < 600 { format!("Quillfeather{n:04}") } else { format!("Other{n:04}") };
                json!({"first_name": format!("P{n:04}"), "last_name": last})
            })
            .collect();
        app.create_contacts(json!(contacts)).await;
    }
    let newest = || async {
        let v = app.ok("search_records", json!({"entity": "contact", "query": "quillfeather", "limit": 25})).await;
        v["items"].as_array().unwrap().iter().map(|c| c["first_name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    let want: Vec<String> = (575..600).rev().map(|n| format!("P{n:04}")).collect();
    assert_eq!(newest().await, want, "newest matches first");

    // The first match written gets an age newer than any other record.
    let first = app
        .search_ids(json!({"entity": "contact", "filters": [{"field": "first_name", "op": "eq", "value": "P0000"}]}))
        .await;
    app.sql("UPDATE contacts SET created_at = created_at + 31536000000 WHERE id = $1", &first[0]).await;
    let got = newest().await;
    assert_eq!(got[0], "P0000", "the newest by age leads, whatever its place in the table: {got:?}");
    assert_eq!(got[1..], want[..24]);
}
