//! Every filter operator, `any` groups, sorting, custom fields, and the errors that teach
//! the model the syntax.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

struct Fixture {
    app: TestApp,
    acme: String,
    globex: String,
    ada: String,
    grace: String,
    linus: String,
}

async fn fixture() -> Fixture {
    let app = spawn_app().await;
    for (key, ty, options) in [
        ("employees", "number", "[]"),
        ("public", "boolean", "[]"),
        ("renewal", "date", "[]"),
        ("tier", "select", r#"["gold","silver"]"#),
    ] {
        let stmt: &'static str = Box::leak(
            format!(
                "INSERT INTO custom_fields (id, org_id, entity, key, label, field_type, options, created_at) \
                 VALUES ('cf-{key}', $1, 'company', '{key}', '{key}', '{ty}', '{options}', 0)"
            )
            .into_boxed_str(),
        );
        app.sql(stmt, app.default_org.id.as_str()).await;
    }
    let cos = app
        .create_companies(json!([
            {"name": "Acme", "domain": "acme.com", "industry": "Software", "tags": ["partner"],
             "custom": {"employees": 120, "public": true, "renewal": "2027-03-01", "tier": "gold"}},
            {"name": "Globex", "domain": "globex.com", "industry": "Retail",
             "custom": {"employees": "15", "public": false, "renewal": "2026-12-24"}},
            {"name": "Initech"}
        ]))
        .await;
    let (acme, globex) = (cos[0]["id"].as_str().unwrap().to_owned(), cos[1]["id"].as_str().unwrap().to_owned());
    let cs = app
        .create_contacts(json!([
            {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@acme.com", "title": "CTO", "company_id": acme, "tags": ["vip", "engineer"]},
            {"first_name": "Grace", "last_name": "Hopper", "email": "grace@globex.com", "title": "Admiral", "company_id": globex, "tags": ["engineer"]},
            {"first_name": "Linus", "email": "linus@example.org"}
        ]))
        .await;
    let id = |i: usize| cs[i]["id"].as_str().unwrap().to_owned();
    Fixture { ada: id(0), grace: id(1), linus: id(2), acme, globex, app }
}

impl Fixture {
    async fn ids(&self, entity: &str, filters: Value) -> BTreeSet<String> {
        self.app.search_ids(json!({"entity": entity, "filters": filters})).await.into_iter().collect()
    }

    fn set(&self, ids: &[&String]) -> BTreeSet<String> {
        ids.iter().map(|s| (*s).clone()).collect()
    }
}

#[tokio::test]
async fn every_operator_selects_what_it_says() {
    let f = fixture().await;
    let (ada, grace, linus) = (&f.ada, &f.grace, &f.linus);
    let c = |field: &str, op: &str, value: Value| json!([{"field": field, "op": op, "value": value}]);

    assert_eq!(f.ids("contact", c("email", "eq", json!("ADA@acme.com"))).await, f.set(&[ada]));
    assert_eq!(
        f.ids("contact", c("last_name", "ne", json!("Hopper"))).await,
        f.set(&[ada, linus]),
        "ne keeps missing values"
    );
    assert_eq!(f.ids("contact", c("last_name", "contains", json!("OPP"))).await, f.set(&[grace]));
    assert_eq!(f.ids("contact", c("email", "starts_with", json!("li"))).await, f.set(&[linus]));
    assert_eq!(f.ids("contact", c("email", "starts_with", json!("GRACE@"))).await, f.set(&[grace]));
    assert_eq!(f.ids("contact", c("email", "starts_with", json!("ada@acme.co~"))).await, f.set(&[]));
    assert_eq!(f.ids("company", c("domain", "starts_with", json!("acme."))).await, f.set(&[&f.acme]));
    assert_eq!(f.ids("contact", c("first_name", "in", json!(["Ada", "Linus", "Nobody"]))).await, f.set(&[ada, linus]));
    assert_eq!(f.ids("contact", c("first_name", "not_in", json!(["Ada"]))).await, f.set(&[grace, linus]));
    assert_eq!(f.ids("contact", json!([{"field": "last_name", "op": "is_null"}])).await, f.set(&[linus]));
    // Comparisons on an indexed column run on its sort key, where a missing value is '':
    // still, a contact without a last name or title matches none of them.
    assert_eq!(f.ids("contact", c("title", "eq", json!("Admiral"))).await, f.set(&[grace]));
    assert_eq!(f.ids("contact", c("title", "in", json!(["CTO", "Nobody"]))).await, f.set(&[ada]));
    assert_eq!(f.ids("contact", c("last_name", "starts_with", json!("lo"))).await, f.set(&[ada]));
    assert_eq!(f.ids("contact", json!([{"field": "company_id", "op": "is_not_null"}])).await, f.set(&[ada, grace]));
    assert_eq!(f.ids("contact", c("company_id", "eq", json!(f.acme))).await, f.set(&[ada]));
    assert_eq!(f.ids("contact", c("company_id", "has_any", json!([f.globex]))).await, f.set(&[grace]));
    assert_eq!(f.ids("contact", c("company_id", "has_none", json!([f.globex]))).await, f.set(&[ada, linus]));
    assert_eq!(f.ids("contact", c("tags", "has_any", json!(["vip", "x"]))).await, f.set(&[ada]));
    assert_eq!(f.ids("contact", c("tags", "has_none", json!(["engineer"]))).await, f.set(&[linus]));
    assert_eq!(f.ids("contact", json!([{"field": "tags", "op": "is_null"}])).await, f.set(&[linus]));
    assert_eq!(f.ids("contact", c("created_at", "in_last_days", json!(1))).await.len(), 3);
    assert_eq!(f.ids("contact", c("created_at", "gt", json!("2020-01-01"))).await.len(), 3);
    assert_eq!(f.ids("contact", c("created_at", "gte", json!("2999-01-01T00:00:00Z"))).await.len(), 0);
    assert_eq!(f.ids("contact", c("created_at", "lt", json!("2020-01-01"))).await.len(), 0);
    assert_eq!(f.ids("contact", c("updated_at", "lte", json!("2999-01-01"))).await.len(), 3);
    assert_eq!(f.ids("contact", c("created_at", "between", json!(["2020-01-01", "2999-12-31"]))).await.len(), 3);
    assert_eq!(f.ids("contact", c("id", "eq", json!(ada))).await, f.set(&[ada]));

    // Custom fields: numbers, booleans, dates, selects.
    let (acme, globex) = (&f.acme, &f.globex);
    assert_eq!(f.ids("company", c("custom.employees", "gt", json!(100))).await, f.set(&[acme]));
    assert_eq!(f.ids("company", c("custom.employees", "between", json!([10, "20"]))).await, f.set(&[globex]));
    assert_eq!(f.ids("company", c("custom.employees", "lte", json!(15))).await, f.set(&[globex]));
    assert_eq!(f.ids("company", c("custom.public", "eq", json!(true))).await, f.set(&[acme]));
    assert_eq!(f.ids("company", c("custom.public", "eq", json!(false))).await, f.set(&[globex]));
    assert_eq!(f.ids("company", c("custom.renewal", "lt", json!("2027-01-01"))).await, f.set(&[globex]));
    assert_eq!(f.ids("company", c("custom.tier", "in", json!(["gold"]))).await, f.set(&[acme]));
    assert_eq!(f.ids("company", json!([{"field": "custom.tier", "op": "is_null"}])).await.len(), 2);
    // Relations from the company side.
    assert_eq!(f.ids("company", c("contact_ids", "has_any", json!([ada]))).await, f.set(&[acme]));
    assert_eq!(f.ids("company", json!([{"field": "contact_ids", "op": "is_null"}])).await.len(), 1);
    assert_eq!(f.ids("company", c("industry", "eq", json!("Software"))).await, f.set(&[acme]));
}

#[tokio::test]
async fn conditions_combine() {
    let f = fixture().await;
    let either = json!([{"any": [
        {"field": "first_name", "op": "eq", "value": "Ada"},
        {"field": "email", "op": "contains", "value": "example.org"}
    ]}]);
    assert_eq!(f.ids("contact", either).await, f.set(&[&f.ada, &f.linus]));
    let both = json!([
        {"field": "tags", "op": "has_any", "value": ["engineer"]},
        {"any": [{"field": "title", "op": "eq", "value": "Admiral"}, {"field": "title", "op": "eq", "value": "Nope"}]}
    ]);
    assert_eq!(f.ids("contact", both).await, f.set(&[&f.grace]));
    assert!(f.ids("contact", json!([{"any": []}])).await.is_empty());
    // Free text: every word, any field, any case.
    let ids = f.app.search_ids(json!({"entity": "contact", "query": "LOVE cto"})).await;
    assert_eq!(ids, vec![f.ada.clone()]);
    let n = f.app.ok("count_records", json!({"entity": "contact", "query": "engineer"})).await;
    assert_eq!(n["count"], 2);
    // Free text beside conditions on related records, which name the searched table.
    let ids = f
        .app
        .search_ids(json!({"entity": "company", "query": "com", "filters": [{"field": "contact_ids", "op": "has_any", "value": [f.grace]}]}))
        .await;
    assert_eq!(ids, vec![f.globex.clone()]);
    let ids = f
        .app
        .search_ids(
            json!({"entity": "company", "query": "com", "filters": [{"field": "contact_ids", "op": "is_null"}]}),
        )
        .await;
    assert!(ids.is_empty(), "Initech has no contacts and no `com`: {ids:?}");
}

#[tokio::test]
async fn sorting_orders_results() {
    let f = fixture().await;
    let names = |v: Value| -> Vec<String> {
        v["items"].as_array().unwrap().iter().map(|i| i["first_name"].as_str().unwrap().to_owned()).collect()
    };
    let asc = f.app.ok("search_records", json!({"entity": "contact", "sort": [{"field": "first_name"}]})).await;
    assert_eq!(names(asc), ["Ada", "Grace", "Linus"]);
    let desc = f
        .app
        .ok("search_records", json!({"entity": "contact", "sort": [{"field": "email", "direction": "desc"}]}))
        .await;
    assert_eq!(names(desc), ["Linus", "Grace", "Ada"]);
    let newest = f.app.ok("search_records", json!({"entity": "contact"})).await;
    assert_eq!(names(newest).len(), 3);
}

#[tokio::test]
async fn mistakes_are_explained() {
    let f = fixture().await;
    let err = f
        .app
        .err(
            "search_records",
            json!({"entity": "contact", "filters": [{"field": "shoe_size", "op": "eq", "value": 1}]}),
        )
        .await;
    assert!(
        err.contains("unknown field `shoe_size`") && err.contains("first_name") && err.contains("company_id"),
        "{err}"
    );
    let err = f
        .app
        .err("search_records", json!({"entity": "contact", "filters": [{"field": "tags", "op": "gt", "value": 1}]}))
        .await;
    assert!(err.contains("operator `gt`") && err.contains("has_any"), "{err}");
    let err = f
        .app
        .err(
            "search_records",
            json!({"entity": "contact", "filters": [{"field": "email", "op": "like", "value": "a"}]}),
        )
        .await;
    assert!(err.contains("unknown variant `like`") && err.contains("starts_with"), "{err}");
    let err =
        f.app.err("search_records", json!({"entity": "contact", "filters": [{"field": "email", "op": "eq"}]})).await;
    assert!(err.contains("needs a `value`"), "{err}");
    let err = f
        .app
        .err(
            "search_records",
            json!({"entity": "contact", "filters": [{"field": "created_at", "op": "gt", "value": "yesterday"}]}),
        )
        .await;
    assert!(err.contains("2026-01-31"), "{err}");
    let err = f
        .app
        .err(
            "search_records",
            json!({"entity": "contact", "filters": [{"field": "first_name", "op": "in", "value": "Ada"}]}),
        )
        .await;
    assert!(err.contains("list"), "{err}");
    let err = f.app.err("search_records", json!({"entity": "contact", "filters": [{"field": "created_at", "op": "between", "value": ["2020-01-01"]}]})).await;
    assert!(err.contains("two values"), "{err}");
    let err = f
        .app
        .err(
            "search_records",
            json!({"entity": "company", "filters": [{"field": "custom.employees", "op": "gt", "value": "many"}]}),
        )
        .await;
    assert!(err.contains("a number"), "{err}");
    let err = f.app.err("search_records", json!({"entity": "contact", "sort": [{"field": "phone"}]})).await;
    assert!(err.contains("sortable fields") && err.contains("last_name"), "{err}");
    let err = f.app.err("search_records", json!({"entity": "contact", "filters": ["email = 'a'"]})).await;
    assert!(err.contains("is an object like"), "{err}");
    let err = f.app.err("search_records", json!({"entity": "lead"})).await;
    assert!(err.contains("unknown variant `lead`") && err.contains("contact") && err.contains("deal"), "{err}");
    let err = f.app.err("search_records", json!({"entity": "contact", "limit": 0})).await;
    assert!(err.contains("1 to 100"), "{err}");
    let err = f.app.err("search_records", json!({"entity": "contact", "limit": 101})).await;
    assert!(err.contains("1 to 100"), "{err}");
}

#[tokio::test]
async fn describe_entity_lists_fields_operators_and_custom_fields() {
    let f = fixture().await;
    // The full profile names each field's operators; the lean one each type's, once.
    let full =
        f.app.call_at(&f.app.key, "?profile=full", "describe_entity", json!({"entity": "company"})).await.unwrap();
    let industry = full["fields"].as_array().unwrap().iter().find(|x| x["name"] == "industry").unwrap();
    assert!(industry["operators"].as_array().unwrap().contains(&json!("contains")));
    let d = f.app.ok("describe_entity", json!({"entity": "company"})).await;
    let fields = d["fields"].as_array().unwrap();
    let industry = fields.iter().find(|x| x["name"] == "industry").unwrap();
    assert!(d["operators"][industry["type"].as_str().unwrap()].as_array().unwrap().contains(&json!("contains")));
    assert_eq!(industry["sortable"], true);
    let custom = d["custom_fields"].as_array().unwrap();
    let tier = custom.iter().find(|x| x["key"] == "tier").unwrap();
    assert_eq!(tier["type"], "select");
    assert_eq!(tier["options"], json!(["gold", "silver"]));
    let d = f.app.ok("describe_entity", json!({"entity": "contact"})).await;
    let company = d["fields"].as_array().unwrap().iter().find(|x| x["name"] == "company_id").unwrap().clone();
    assert_eq!(company["references"], "company");
}

/// Time operators and time sorting on records of different ages: back-dated rows, so the
/// test fails if an operator or a sort is ignored.
#[tokio::test]
async fn time_filters_see_the_age_of_records() {
    let app = crate::helpers::spawn_app().await;
    let made =
        app.create_contacts(json!([{"first_name": "Old"}, {"first_name": "Recent"}, {"first_name": "New"}])).await;
    let ids: Vec<String> = made.iter().map(|c| c["id"].as_str().unwrap().to_owned()).collect();
    let day = rapport::time::DAY_MS;
    let now = rapport::time::now_ms();
    // Ages against the order of creation: ids alone would sort them the other way.
    for (id, age_days) in [(&ids[1], 40), (&ids[2], 10)] {
        let at = (now - age_days * day).to_string();
        let stmt: &'static str = Box::leak(
            format!(
                "UPDATE contacts SET created_at = CAST($1 AS BIGINT), updated_at = CAST($1 AS BIGINT) WHERE id = '{id}'"
            )
            .into_boxed_str(),
        );
        app.sql(stmt, &at).await;
    }
    let search = |filters: serde_json::Value| {
        let app = &app;
        async move { app.search_ids(json!({"entity": "contact", "filters": filters})).await }
    };
    let set = |v: Vec<String>| v.into_iter().collect::<std::collections::BTreeSet<_>>();
    let of = |i: &[usize]| i.iter().map(|n| ids[*n].clone()).collect::<std::collections::BTreeSet<_>>();
    assert_eq!(set(search(json!([{"field": "created_at", "op": "in_last_days", "value": 7}])).await), of(&[0]));
    assert_eq!(set(search(json!([{"field": "created_at", "op": "in_last_days", "value": 30}])).await), of(&[0, 2]));
    let twenty_days_ago = rapport::time::rfc3339(now - 20 * day);
    assert_eq!(set(search(json!([{"field": "created_at", "op": "gt", "value": twenty_days_ago}])).await), of(&[0, 2]));
    assert_eq!(set(search(json!([{"field": "updated_at", "op": "lt", "value": twenty_days_ago}])).await), of(&[1]));
    let window = json!([rapport::time::rfc3339(now - 50 * day), rapport::time::rfc3339(now - 5 * day)]);
    assert_eq!(set(search(json!([{"field": "created_at", "op": "between", "value": window}])).await), of(&[1, 2]));
    // Sorting follows the real ages, both ways, and so does paging.
    let asc = app.search_ids(json!({"entity": "contact", "sort": [{"field": "created_at", "direction": "asc"}]})).await;
    assert_eq!(asc, vec![ids[1].clone(), ids[2].clone(), ids[0].clone()]);
    let newest = app.search_ids(json!({"entity": "contact"})).await;
    assert_eq!(newest, vec![ids[0].clone(), ids[2].clone(), ids[1].clone()]);
    let page = app.ok("search_records", json!({"entity": "contact", "limit": 1})).await;
    let next = app.search_ids(json!({"entity": "contact", "limit": 1, "cursor": page["next_cursor"]})).await;
    assert_eq!(next, vec![ids[2].clone()]);

    // Dates and times of other fields: deals' close_date, tasks' due_at.
    let deals = app
        .ok(
            "create_deals",
            json!({"deals": [
                {"name": "Q1", "close_date": "2027-02-15"},
                {"name": "Q2", "close_date": "2027-05-01"},
                {"name": "None"}
            ]}),
        )
        .await["items"]
        .as_array()
        .unwrap()
        .clone();
    let deal_ids = |v: Vec<String>| v;
    let between = app
        .search_ids(json!({"entity": "deal", "filters": [{"field": "close_date", "op": "between", "value": ["2027-01-01", "2027-03-31"]}]}))
        .await;
    assert_eq!(deal_ids(between), vec![deals[0]["id"].as_str().unwrap().to_owned()]);
    let sorted =
        app.search_ids(json!({"entity": "deal", "sort": [{"field": "close_date", "direction": "desc"}]})).await;
    assert_eq!(sorted[0], deals[1]["id"].as_str().unwrap());
    let tasks = app
        .ok(
            "create_tasks",
            json!({"tasks": [
                {"title": "overdue", "due_at": rapport::time::rfc3339(now - 2 * day)},
                {"title": "later", "due_at": rapport::time::rfc3339(now + 3 * day)},
                {"title": "someday"}
            ]}),
        )
        .await["items"]
        .as_array()
        .unwrap()
        .clone();
    let overdue = app
        .search_ids(json!({"entity": "task", "filters": [{"field": "due_at", "op": "lt", "value": rapport::time::rfc3339(now)}, {"field": "status", "op": "eq", "value": "open"}]}))
        .await;
    assert_eq!(overdue, vec![tasks[0]["id"].as_str().unwrap().to_owned()]);
    let task = |i: usize| tasks[i]["id"].as_str().unwrap().to_owned();
    // A task without a due date is not due after any time (its sort key is the largest).
    let after = app
        .search_ids(json!({"entity": "task", "filters": [{"field": "due_at", "op": "gt", "value": rapport::time::rfc3339(now - 10 * day)}]}))
        .await;
    assert_eq!(after.into_iter().collect::<BTreeSet<_>>(), [task(0), task(1)].into_iter().collect());
    let by_due = app.search_ids(json!({"entity": "task", "sort": [{"field": "due_at", "direction": "asc"}]})).await;
    assert_eq!(by_due, vec![task(0), task(1), task(2)], "missing due dates sort last");
}

/// Free text goes through a trigram index (FTS5 on SQLite, pg_trgm on PostgreSQL); what it
/// finds must follow every write: create, update, delete, restore, and words too short for
/// the index or holding LIKE's wildcards.
#[tokio::test]
async fn free_text_follows_every_write() {
    let app = spawn_app().await;
    let created =
        app.create_companies(json!([{"name": "Acme Rockets", "domain": "acme.test"}, {"name": "100%_Pure"}])).await;
    let id = created[0]["id"].as_str().unwrap().to_owned();
    let find = |q: &'static str| app.search_ids(json!({"entity": "company", "query": q}));
    assert_eq!(find("cme").await, vec![id.clone()], "a substring, not a word prefix");
    assert_eq!(find("ACME rock").await, vec![id.clone()], "case-insensitive, every word");
    assert_eq!(find("me").await, vec![id.clone()], "two letters: no trigram, still found");
    assert_eq!(find("0%_p").await.len(), 1, "wildcards are literal");
    assert!(find("rockets acme globex").await.is_empty());
    app.ok("update_companies", json!({"companies": [{"id": id, "name": "Globex"}]})).await;
    assert!(find("cme rock").await.is_empty(), "the old name is gone from the index");
    assert_eq!(find("lobe").await, vec![id.clone()], "the new name is in it");
    app.ok("delete_records", json!({"entity": "company", "ids": [id]})).await;
    assert!(find("lobe").await.is_empty(), "deleted records are not found");
    app.ok("restore_records", json!({"entity": "company", "ids": [id]})).await;
    assert_eq!(find("globex").await, vec![id.clone()], "restored records are");
}

/// Filters on custom fields read the typed value table: it follows every change to a
/// record's values, to the records themselves and to the field.
#[tokio::test]
async fn custom_field_filters_follow_every_change() {
    let app = spawn_app().await;
    for args in [
        json!({"entity": "company", "key": "seats", "label": "Seats", "type": "number"}),
        json!({"entity": "company", "key": "arr", "label": "ARR", "type": "currency"}),
        json!({"entity": "company", "key": "regions", "label": "Regions", "type": "multi_select", "options": ["emea", "apac", "amer"]}),
        json!({"entity": "company", "key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
    ] {
        app.ok("create_custom_field", args).await;
    }
    let cos = app
        .create_companies(json!([
            {"name": "A", "custom": {"seats": 10, "arr": {"amount": "1200.50", "currency": "EUR"}, "regions": ["emea", "apac"], "tier": "gold"}},
            {"name": "B", "custom": {"seats": 200, "regions": ["amer"]}},
            {"name": "C"}
        ]))
        .await;
    let [a, b, c] = [0, 1, 2].map(|i| cos[i]["id"].as_str().unwrap().to_owned());
    let find = |field: &str, op: &str, value: Value| json!({"entity": "company", "filters": [{"field": field, "op": op, "value": value}]});
    let set = |ids: &[&String]| ids.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
    let ids = |args: Value| {
        let app = &app;
        async move { app.search_ids(args).await.into_iter().collect::<HashSet<String>>() }
    };
    assert_eq!(ids(find("custom.seats", "gte", json!(10))).await, set(&[&a, &b]));
    assert_eq!(ids(find("custom.seats", "in", json!([200, 7]))).await, set(&[&b]));
    assert_eq!(ids(find("custom.arr", "gt", json!(1000))).await, set(&[&a]));
    assert_eq!(ids(find("custom.regions", "has_any", json!(["apac", "amer"]))).await, set(&[&a, &b]));
    assert_eq!(
        ids(find("custom.regions", "has_none", json!(["emea"]))).await,
        set(&[&b, &c]),
        "missing matches has_none"
    );
    assert_eq!(ids(find("custom.tier", "ne", json!("gold"))).await, set(&[&b, &c]), "missing matches ne");

    // A changed value, a cleared one, a new one.
    app.ok(
        "update_companies",
        json!({"companies": [
            {"id": a, "custom": {"seats": 300, "regions": null}},
            {"id": c, "custom": {"seats": 50, "regions": ["emea"]}}
        ]}),
    )
    .await;
    assert_eq!(ids(find("custom.seats", "gt", json!(100))).await, set(&[&a, &b]));
    assert_eq!(ids(find("custom.seats", "lt", json!(100))).await, set(&[&c]));
    assert_eq!(ids(find("custom.regions", "has_any", json!(["apac", "emea"]))).await, set(&[&c]));

    // In the trash a record matches nothing; restored, it matches again.
    app.ok("delete_records", json!({"entity": "company", "ids": [b]})).await;
    assert_eq!(ids(find("custom.seats", "gt", json!(100))).await, set(&[&a]));
    app.ok("restore_records", json!({"entity": "company", "ids": [b]})).await;
    assert_eq!(ids(find("custom.seats", "gt", json!(100))).await, set(&[&a, &b]));

    // Merged, the survivor keeps its values and takes what it lacked.
    app.ok("merge_records", json!({"entity": "company", "keep_id": c, "merge_ids": [b]})).await;
    assert_eq!(ids(find("custom.seats", "gt", json!(100))).await, set(&[&a]));
    assert_eq!(ids(find("custom.regions", "has_any", json!(["amer", "emea"]))).await, set(&[&c]));

    // A deleted field's values go with it; a new field of the same key starts empty.
    app.ok("delete_custom_field", json!({"entity": "company", "key": "seats"})).await;
    app.ok("create_custom_field", json!({"entity": "company", "key": "seats", "label": "Seats", "type": "number"}))
        .await;
    assert_eq!(ids(find("custom.seats", "gt", json!(0))).await, set(&[]));
}

/// Tags are in the value table too (issue 26): tag filters follow every change to a
/// record's tags, to the record, and give the same answers for a tag few records hold (read
/// in the table) as for one many hold (read in the rows).
#[tokio::test]
async fn tag_filters_follow_every_change_common_or_rare() {
    let app = spawn_app().await;
    let made = app
        .create_contacts(json!([
            {"first_name": "A", "tags": ["vip", "lead"]},
            {"first_name": "B", "tags": ["lead"]},
            {"first_name": "C"}
        ]))
        .await;
    let [a, b, c] = [0, 1, 2].map(|i| made[i]["id"].as_str().unwrap().to_owned());
    let set = |ids: &[&String]| ids.iter().map(|s| s.to_string()).collect::<HashSet<String>>();
    let ids = |op: &str, tags: Value| {
        let app = &app;
        let args = json!({"entity": "contact", "filters": [{"field": "tags", "op": op, "value": tags}]});
        async move { app.search_ids(args).await.into_iter().collect::<HashSet<String>>() }
    };
    assert_eq!(ids("has_any", json!(["vip"])).await, set(&[&a]));
    assert_eq!(ids("has_any", json!(["lead", "nobody"])).await, set(&[&a, &b]));
    assert_eq!(ids("has_none", json!(["lead"])).await, set(&[&c]), "no tags matches has_none");
    app.ok("update_contacts", json!({"contacts": [{"id": a, "tags": ["customer"]}, {"id": c, "tags": ["vip"]}]})).await;
    assert_eq!(ids("has_any", json!(["vip"])).await, set(&[&c]));
    assert_eq!(ids("has_any", json!(["customer"])).await, set(&[&a]));
    app.ok("delete_records", json!({"entity": "contact", "ids": [b]})).await;
    assert_eq!(ids("has_any", json!(["lead"])).await, set(&[]), "the trash matches nothing");
    app.ok("restore_records", json!({"entity": "contact", "ids": [b]})).await;
    assert_eq!(ids("has_any", json!(["lead"])).await, set(&[&b]));

    // 2,200 more with `common`, three of them `rare` as well: both read right, in counts
    // and in the newest page.
    for batch in 0..22 {
        let contacts: Vec<Value> = (0..100)
            .map(|i| {
                let n = batch * 100 + i;
                let tags = if n % 1000 == 7 { json!(["common", "rare"]) } else { json!(["common"]) };
                json!({"first_name": format!("P{n}"), "tags": tags})
            })
            .collect();
        app.create_contacts(json!(contacts)).await;
    }
    for (tag, want) in [("common", 2200), ("rare", 3)] {
        let filters = json!([{"field": "tags", "op": "has_any", "value": [tag]}]);
        let count = app.ok("count_records", json!({"entity": "contact", "filters": filters})).await["count"].clone();
        assert_eq!(count, want, "count of {tag}");
        let page = app.ok("search_records", json!({"entity": "contact", "filters": filters, "limit": 5})).await;
        let names: Vec<&str> =
            page["items"].as_array().unwrap().iter().map(|c| c["first_name"].as_str().unwrap()).collect();
        let expected: Vec<String> =
            (0..2200).rev().filter(|n| tag == "common" || n % 1000 == 7).take(5).map(|n| format!("P{n}")).collect();
        assert_eq!(names, expected, "newest of {tag}");
    }
    // Page by page through the rare ones, sorted by name: every one once, in order.
    let mut args = json!({"entity": "contact", "filters": [{"field": "tags", "op": "has_any", "value": ["rare"]}],
        "sort": [{"field": "first_name", "direction": "asc"}], "limit": 2});
    let mut seen = Vec::new();
    loop {
        let page = app.ok("search_records", args.clone()).await;
        seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["first_name"].as_str().unwrap().to_owned()));
        match page["next_cursor"].as_str() {
            Some(c) => args["cursor"] = json!(c),
            None => break,
        }
    }
    assert_eq!(seen, ["P1007", "P2007", "P7"]);
}

/// A value many records hold is found by testing rows in order, one few hold through the
/// value table: the answers are the same either way.
#[tokio::test]
async fn common_and_rare_custom_values_give_the_same_answers() {
    let app = spawn_app().await;
    app.ok("create_custom_field", json!({"entity": "company", "key": "seats", "label": "Seats", "type": "number"}))
        .await;
    for batch in 0..22 {
        let companies: Vec<Value> = (0..100)
            .map(|i| json!({"name": format!("Co{}", batch * 100 + i), "custom": {"seats": (batch * 100 + i) % 3}}))
            .collect();
        app.create_companies(json!(companies)).await;
    }
    for (op, value, want) in
        [("gte", json!(0), 2200), ("eq", json!(1), 733), ("in", json!([1, 2]), 1466), ("lt", json!(1), 734)]
    {
        let filters = json!([{"field": "custom.seats", "op": op, "value": value}]);
        let count = app.ok("count_records", json!({"entity": "company", "filters": filters})).await["count"].clone();
        assert_eq!(count, want, "count of seats {op} {value}");
        let page = app.ok("search_records", json!({"entity": "company", "filters": filters, "limit": 50})).await;
        let names: Vec<u64> = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap()[2..].parse().unwrap())
            .collect();
        let expected: Vec<u64> = (0..2200u64)
            .rev()
            .filter(|n| match op {
                "gte" => true,
                "eq" => n % 3 == 1,
                "in" => n % 3 != 0,
                _ => n % 3 == 0,
            })
            .take(50)
            .collect();
        assert_eq!(names, expected, "newest 50 with seats {op} {value}");
    }
}

/// One contact of `equality_conditions_combine_alike`, as the test expects it to be stored.
#[derive(Clone)]
struct Person {
    n: usize,
    title: Option<String>,
    tags: Vec<&'static str>,
    segment: &'static str,
    interests: Vec<&'static str>,
    active: bool,
    live: bool,
}

impl Person {
    fn new(n: usize) -> Person {
        let mut tags = vec!["all"];
        for (every, tag) in [(2, "lead"), (5, "vip"), (97, "rare")] {
            if n.is_multiple_of(every) {
                tags.push(tag);
            }
        }
        if n % 3 == 1 {
            tags.push("nurture"); // never on a CTO
        }
        Person {
            n,
            title: (n % 10 != 9).then(|| ["CTO", "CEO", "Engineer"][n % 3].to_owned()),
            tags,
            segment: ["smb", "ent"][n % 2],
            interests: [vec!["ai"], vec!["ai", "crm"], vec![]][n % 3].clone(),
            active: n.is_multiple_of(4),
            live: true,
        }
    }

    fn json(&self) -> Value {
        let mut c = json!({"first_name": format!("P{}", self.n), "tags": self.tags,
            "custom": {"segment": self.segment, "interests": self.interests, "active": self.active}});
        if let Some(t) = &self.title {
            c["title"] = json!(t);
        }
        c
    }

    fn title_is(&self, t: &str) -> bool {
        self.title.as_deref() == Some(t)
    }

    fn tagged(&self, t: &str) -> bool {
        self.tags.contains(&t)
    }
}

/// Conditions on titles, tags and custom values, alone and together, whether they match
/// many records, few or none: every count and page is what the records say, through
/// updates, the trash and another organization holding the same values.
#[tokio::test]
async fn equality_conditions_combine_alike() {
    let app = spawn_app().await;
    for field in [
        json!({"entity": "contact", "key": "segment", "label": "Segment", "type": "select", "options": ["smb", "ent"]}),
        json!({"entity": "contact", "key": "interests", "label": "Interests", "type": "multi_select", "options": ["ai", "crm"]}),
        json!({"entity": "contact", "key": "active", "label": "Active", "type": "boolean"}),
    ] {
        app.ok("create_custom_field", field).await;
    }
    let mut people: Vec<Person> = (0..2300).map(Person::new).collect();
    let mut ids = Vec::new();
    for chunk in people.chunks(100) {
        let made = app.create_contacts(json!(chunk.iter().map(Person::json).collect::<Vec<_>>())).await;
        ids.extend(made.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
    }
    // Another organization with the same values, which no count or page may show.
    let (_, other) = app.new_org("beta").await;
    for field in ["segment", "active"] {
        let ty = if field == "active" { "boolean" } else { "text" };
        app.call_as(
            &other,
            "create_custom_field",
            json!({"entity": "contact", "key": field, "label": field, "type": ty}),
        )
        .await
        .unwrap();
    }
    let theirs: Vec<Value> = (0..50)
        .map(|n| {
            json!({"first_name": format!("Q{n}"), "title": "CTO", "tags": ["all", "lead", "rare", "nurture"],
            "custom": {"segment": "ent", "active": true}})
        })
        .collect();
    app.call_as(&other, "create_contacts", json!({"contacts": theirs})).await.unwrap();

    type Test = Box<dyn Fn(&Person) -> bool>;
    let eq = |field: &str, v: Value| json!({"field": field, "op": "eq", "value": v});
    let tag = |tags: &[&str]| json!({"field": "tags", "op": "has_any", "value": tags});
    let cases: Vec<(&str, Value, Option<&str>, Test)> = vec![
        (
            "many and many",
            json!([eq("title", json!("CTO")), tag(&["lead"])]),
            None,
            Box::new(|p| p.title_is("CTO") && p.tagged("lead")),
        ),
        (
            "many and none in common",
            json!([eq("title", json!("CTO")), tag(&["nurture"])]),
            None,
            Box::new(|p| p.title_is("CTO") && p.tagged("nurture")),
        ),
        (
            "many and few",
            json!([eq("title", json!("CEO")), tag(&["rare"])]),
            None,
            Box::new(|p| p.title_is("CEO") && p.tagged("rare")),
        ),
        (
            "in, and a custom select",
            json!([{"field": "title", "op": "in", "value": ["CEO", "Engineer"]},
            eq("custom.segment", json!("ent"))]),
            None,
            Box::new(|p| (p.title_is("CEO") || p.title_is("Engineer")) && p.segment == "ent"),
        ),
        (
            "any of two fields",
            json!([{"any": [eq("title", json!("CTO")), tag(&["vip"])]}]),
            None,
            Box::new(|p| p.title_is("CTO") || p.tagged("vip")),
        ),
        (
            "a custom flag and a tag",
            json!([eq("custom.active", json!(true)), tag(&["lead", "rare"])]),
            None,
            Box::new(|p| p.active && (p.tagged("lead") || p.tagged("rare"))),
        ),
        (
            "an option and a title",
            json!([{"field": "custom.interests", "op": "has_any", "value": ["crm"]},
            eq("title", json!("CEO"))]),
            None,
            Box::new(|p| p.interests.contains(&"crm") && p.title_is("CEO")),
        ),
        (
            "a term and a prefix",
            json!([eq("title", json!("CTO")), {"field": "first_name", "op": "starts_with", "value": "P1"}]),
            None,
            Box::new(|p| p.title_is("CTO") && p.n.to_string().starts_with('1')),
        ),
        (
            "a common term and a rare test",
            json!([tag(&["all"]), {"field": "first_name", "op": "contains", "value": "99"}]),
            None,
            Box::new(|p| p.n.to_string().contains("99")),
        ),
        (
            "free text and a term",
            json!([eq("title", json!("Engineer"))]),
            Some("p12"),
            Box::new(|p| p.title_is("Engineer") && format!("p{}", p.n).contains("p12")),
        ),
        (
            "free text and a term everyone holds",
            json!([tag(&["all"])]),
            Some("p12"),
            Box::new(|p| format!("p{}", p.n).contains("p12")),
        ),
        ("a value nobody holds", json!([eq("title", json!("Astronaut")), tag(&["lead"])]), None, Box::new(|_| false)),
    ];
    let check = |people: &Vec<Person>, stage: &'static str| {
        let (app, ids, cases) = (&app, &ids, &cases);
        let people = people.clone();
        async move {
            for (name, filters, query, test) in cases {
                let want: Vec<&Person> = people.iter().filter(|p| p.live && test(p)).collect();
                let mut args = json!({"entity": "contact", "filters": filters});
                if let Some(q) = query {
                    args["query"] = json!(q);
                }
                let count = app.ok("count_records", args.clone()).await["count"].as_u64().unwrap();
                assert_eq!(count as usize, want.len(), "{stage}: count of {name}");
                let mut grouped = args.clone();
                grouped["group_by"] = json!("title");
                let got = app.ok("count_records", grouped).await;
                assert_eq!(
                    groups_of(&got),
                    expected_groups(want.iter().map(|p| p.title.clone())),
                    "{stage}: {name} by title"
                );
                args["limit"] = json!(5);
                let newest = app.search_ids(args.clone()).await;
                let expected: Vec<String> = want.iter().rev().take(5).map(|p| ids[p.n].clone()).collect();
                assert_eq!(newest, expected, "{stage}: newest of {name}");
                // Every match once, page by page, by name.
                args["sort"] = json!([{"field": "first_name", "direction": "asc"}]);
                args["limit"] = json!(100);
                let mut seen = Vec::new();
                loop {
                    let page = app.ok("search_records", args.clone()).await;
                    seen.extend(page["items"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_owned()));
                    match page["next_cursor"].as_str() {
                        Some(c) => args["cursor"] = json!(c),
                        None => break,
                    }
                }
                let mut by_name: Vec<&Person> = want.clone();
                by_name.sort_by_key(|p| format!("P{}", p.n));
                let expected: Vec<String> = by_name.iter().map(|p| ids[p.n].clone()).collect();
                assert_eq!(seen, expected, "{stage}: every {name} by name");
            }
        }
    };
    check(&people, "as created").await;

    // Titles, tags and custom values change; some go to the trash and one comes back.
    let changed: Vec<usize> = vec![2298, 2295, 2292, 1500, 97, 0];
    let mut updates = Vec::new();
    for &n in &changed {
        let p = &mut people[n];
        p.title = Some("CEO".into());
        p.tags = vec!["all", "rare", "nurture"];
        p.segment = "ent";
        p.active = !p.active;
        updates.push(json!({"id": ids[n], "title": "CEO", "tags": p.tags, "custom": {"segment": "ent", "active": p.active, "interests": p.interests}}));
    }
    app.ok("update_contacts", json!({"contacts": updates})).await;
    let trashed = [2299usize, 2297, 1000, 194, 1];
    app.ok(
        "delete_records",
        json!({"entity": "contact", "ids": trashed.iter().map(|&n| ids[n].clone()).collect::<Vec<_>>()}),
    )
    .await;
    for n in trashed {
        people[n].live = false;
    }
    app.ok("restore_records", json!({"entity": "contact", "ids": [ids[194]]})).await;
    people[194].live = true;
    check(&people, "after changes").await;

    // A value too long for the terms is still found, by reading the rows.
    let long = "x".repeat(250);
    app.create_contacts(json!([{"first_name": "Long", "title": long, "tags": ["lead"]}])).await;
    let args = json!({"entity": "contact", "filters": [eq("title", json!(long)), tag(&["lead"])]});
    assert_eq!(app.ok("count_records", args.clone()).await["count"], 1);
    assert_eq!(app.search_ids(args).await.len(), 1);
    let got =
        app.ok("count_records", json!({"entity": "contact", "filters": [tag(&["lead"])], "group_by": "title"})).await;
    let leads = people.iter().filter(|p| p.live && p.tagged("lead")).map(|p| p.title.clone());
    assert_eq!(groups_of(&got), expected_groups(leads.chain([Some(long)])), "the long title is a group of its own");
}

/// `count_records` groups as `(value, count)`.
fn groups_of(v: &Value) -> Vec<(Value, u64)> {
    v["groups"].as_array().unwrap().iter().map(|g| (g["value"].clone(), g["count"].as_u64().unwrap())).collect()
}

/// Groups of these values as `count_records` orders them: largest first, then by value,
/// the missing value first.
fn expected_groups(values: impl Iterator<Item = Option<String>>) -> Vec<(Value, u64)> {
    let mut counts: std::collections::BTreeMap<Option<String>, u64> = Default::default();
    values.for_each(|v| *counts.entry(v).or_default() += 1);
    let mut groups: Vec<(Option<String>, u64)> = counts.into_iter().collect();
    groups.sort_by(|(a, n), (b, m)| m.cmp(n).then_with(|| a.cmp(b)));
    groups.into_iter().map(|(v, n)| (json!(v), n)).collect()
}
