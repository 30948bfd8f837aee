//! SPEC 5, `find_duplicates`: planted duplicates are found, groups page without loss or
//! repeat, and each group is what `merge_records` takes.

use std::collections::BTreeSet;

use serde_json::{Value, json};

use crate::helpers::spawn_app;

fn ids(group: &Value) -> Vec<String> {
    group["ids"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn planted_duplicates_are_found_and_merge() {
    let app = spawn_app().await;
    let acme = app
        .ok("create_companies", json!({"companies": [{"name": "Acme"}, {"name": "ACME "}, {"name": "Globex"}]}))
        .await;
    let company = |i: usize| acme["items"][i]["id"].as_str().unwrap().to_owned();
    let made = app
        .create_contacts(json!([
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"},
            {"first_name": "Augusta", "last_name": "King", "email": "ADA@example.com"},
            {"first_name": "Bob", "phone": "+1 (555) 010-0100"},
            {"first_name": "Robert", "phone": "001 555 010 0100"},
            {"first_name": "Jon", "last_name": "Smith", "company_id": company(0)},
            {"first_name": "John", "last_name": "Smith", "company_id": company(0)},
            {"first_name": "John", "last_name": "Smith", "company_id": company(2)},
            {"first_name": "Mary", "last_name": "Major", "company_id": company(0)},
            {"first_name": "Trashed", "email": "ada@example.com"},
            {"first_name": "Short", "phone": "12"},
            {"first_name": "Other", "phone": "12"}
        ]))
        .await;
    let id = |i: usize| made[i]["id"].as_str().unwrap().to_owned();
    app.ok("delete_records", json!({"entity": "contact", "ids": [id(8)]})).await;
    // Another organization's twin of Ada is none of this one's business.
    let (_, stranger) = app.new_org("elsewhere").await;
    app.call_as(&stranger, "create_contacts", json!({"contacts": [{"first_name": "Ada", "email": "ada@example.com"}]}))
        .await
        .unwrap();

    let found = app.ok("find_duplicates", json!({"entity": "contact"})).await;
    let groups: Vec<(String, Vec<String>)> = found["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["reason"].as_str().unwrap().to_owned(), ids(g)))
        .collect();
    assert_eq!(
        groups,
        [
            ("same email".to_owned(), vec![id(0), id(1)]),
            ("same phone".to_owned(), vec![id(2), id(3)]),
            ("similar name at the same company".to_owned(), vec![id(4), id(5)]),
        ],
        "{found}"
    );
    assert_eq!(found["next_cursor"], Value::Null);
    let similar = &found["groups"][2]["score"];
    assert!(similar.as_f64().unwrap() >= 0.5 && similar.as_f64().unwrap() < 1.0, "{similar}");

    let companies = app.ok("find_duplicates", json!({"entity": "company"})).await;
    assert_eq!(ids(&companies["groups"][0]), [company(0), company(1)]);
    assert_eq!(companies["groups"][0]["reason"], "same name");

    // For given records: what shares a key with them, and names alike among them.
    let asked = app.ok("find_duplicates", json!({"entity": "contact", "ids": [id(5), id(6), id(1)]})).await;
    let reasons: Vec<(String, Vec<String>)> = asked["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["reason"].as_str().unwrap().to_owned(), ids(g)))
        .collect();
    assert!(reasons.contains(&("same email".to_owned(), vec![id(0), id(1)])), "{asked}");
    assert!(reasons.contains(&("similar name".to_owned(), vec![id(5), id(6)])), "{asked}");

    // A group is the input merge_records needs, the oldest kept.
    let g = ids(&found["groups"][0]);
    app.ok("merge_records", json!({"entity": "contact", "keep_id": g[0], "merge_ids": g[1..]})).await;
    let after = app.ok("find_duplicates", json!({"entity": "contact"})).await;
    assert!(after["groups"].as_array().unwrap().iter().all(|x| x["reason"] != "same email"), "{after}");
}

#[tokio::test]
async fn groups_page_without_loss_or_repeat() {
    let app = spawn_app().await;
    let mut contacts = Vec::new();
    for i in 0..7 {
        contacts.push(json!({"first_name": format!("E{i}"), "email": format!("p{i}@example.com")}));
        contacts.push(json!({"first_name": format!("F{i}"), "email": format!("P{i}@example.com")}));
        contacts.push(json!({"first_name": format!("G{i}"), "phone": format!("+1 555 010 {i:04}")}));
        contacts.push(json!({"first_name": format!("H{i}"), "phone": format!("1-555-010-{i:04}")}));
    }
    app.create_contacts(json!(contacts)).await;
    let whole = app.ok("find_duplicates", json!({"entity": "contact", "limit": 100})).await;
    let all: Vec<Value> = whole["groups"].as_array().unwrap().clone();
    assert_eq!(all.len(), 14);
    let mut walked = Vec::new();
    let mut cursor = Value::Null;
    for _ in 0..20 {
        let page = app.ok("find_duplicates", json!({"entity": "contact", "limit": 3, "cursor": cursor})).await;
        let groups = page["groups"].as_array().unwrap();
        assert!(groups.len() <= 3);
        walked.extend(groups.iter().cloned());
        cursor = page["next_cursor"].clone();
        if cursor.is_null() {
            break;
        }
    }
    assert_eq!(walked, all, "pages of 3 give the same groups as one page of 100");
    let distinct: BTreeSet<String> = walked.iter().map(|g| g["ids"].to_string()).collect();
    assert_eq!(distinct.len(), walked.len());
}

#[tokio::test]
async fn bad_calls_are_refused_with_what_is_right() {
    let app = spawn_app().await;
    let companies_only = app.key_with(None, &["companies:read"]).await;
    let e = app.call_as(&companies_only, "find_duplicates", json!({"entity": "contact"})).await.unwrap_err();
    assert!(e.contains("contacts:read"), "{e}");
    assert!(app.call_as(&companies_only, "find_duplicates", json!({"entity": "company"})).await.is_ok());
    for (args, says) in [
        (json!({"entity": "deal"}), "contacts or companies"),
        (json!({"entity": "contact", "limit": 0}), "1 to 100"),
        (json!({"entity": "contact", "cursor": "nonsense"}), "next_cursor"),
        (json!({"entity": "contact", "ids": []}), "1 to 100 ids"),
        (json!({"entity": "contact", "ids": ["x"], "cursor": "x"}), "leave out `cursor`"),
    ] {
        let e = app.err("find_duplicates", args.clone()).await;
        assert!(e.contains(says), "{args}: {e}");
    }
    // A company cursor is no contact cursor.
    app.ok("create_companies", json!({"companies": [{"name": "A"}, {"name": "a"}, {"name": "B"}, {"name": "b"}]}))
        .await;
    let page = app.ok("find_duplicates", json!({"entity": "company", "limit": 1})).await;
    let e = app.err("find_duplicates", json!({"entity": "contact", "cursor": page["next_cursor"]})).await;
    assert!(e.contains("next_cursor"), "{e}");
}
