//! SPEC 5, profiles: the lean catalog (the default) and the full one list different tools
//! and reach the same CRM; what an agent pays for each is held to its budget.

use std::collections::BTreeMap;

use rapport_tools::{Entity, Tool};
use serde_json::{Value, json};

use crate::helpers::{TestApp, spawn_app};

const LEAN_OWNER: usize = 12 * 1024;
const LEAN_MEMBER: usize = 9 * 1024;
const FULL_OWNER: usize = 64 * 1024;

fn bytes(v: &Value) -> usize {
    serde_json::to_vec(v).unwrap().len()
}

/// The compact JSON of `{"tools": [...]}` as `key` lists it at `query`.
async fn catalog_bytes(app: &TestApp, key: &str, query: &str) -> usize {
    let v = app.rpc_json_at(key, query, "tools/list", json!({})).await;
    bytes(&json!({ "tools": v["result"]["tools"] }))
}

#[tokio::test]
async fn each_profile_fits_its_budget() {
    let app = spawn_app().await;
    let member = app.key_with(Some("member"), &[]).await;
    let lean_owner = catalog_bytes(&app, &app.key, "").await;
    let lean_member = catalog_bytes(&app, &member, "").await;
    let full_owner = catalog_bytes(&app, &app.key, "?profile=full").await;
    assert!(lean_owner <= LEAN_OWNER, "an owner's lean catalog is {lean_owner} bytes, over {LEAN_OWNER}");
    assert!(lean_member <= LEAN_MEMBER, "a member's lean catalog is {lean_member} bytes, over {LEAN_MEMBER}");
    assert!(full_owner <= FULL_OWNER, "an owner's full catalog is {full_owner} bytes, over {FULL_OWNER}");
    assert_eq!(catalog_bytes(&app, &app.key, "?profile=lean").await, lean_owner, "lean is the default");
    for e in Entity::ALL {
        let d = app.ok("describe_entity", json!({"entity": e.as_str()})).await;
        assert!(bytes(&d) <= 3 * 1024, "describe_entity {e} is {} bytes in the lean profile", bytes(&d));
        assert!(d["operators"]["text"].is_array() || *e == Entity::Note, "{d}");
    }

    // The full catalog lists every tool but the lean families; records are described once,
    // by describe_entity, not in every tool's output schema.
    let v = app.rpc_json_at(&app.key, "?profile=full", "tools/list", json!({})).await;
    let tools = v["result"]["tools"].as_array().unwrap();
    let families = rapport_tools::catalog().iter().filter(|t| t.tool.is_family()).count();
    assert_eq!(tools.len(), rapport_tools::catalog().len() - families, "an owner sees every tool");
    for t in tools {
        let out = t["outputSchema"].to_string();
        assert!(out.len() < 600, "{}'s output schema is {} bytes", t["name"], out.len());
        assert!(!t.to_string().contains("\"format\":\"uint"), "{} uses a non-standard format", t["name"]);
    }
}

#[tokio::test]
async fn an_unknown_profile_is_refused_with_the_choices() {
    let app = spawn_app().await;
    let v = app.rpc_json_at(&app.key, "?profile=tiny", "tools/list", json!({})).await;
    let message = v["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("lean") && message.contains("full"), "{v}");
}

#[tokio::test]
async fn the_lean_profile_calls_every_full_tool_and_says_how_to_fix_a_write() {
    let app = spawn_app().await;
    // A tool the lean list does not show is still called by name.
    let made =
        app.ok("create_contacts", json!({"contacts": [{"first_name": "Ada", "email": "ada@example.com"}]})).await;
    assert_eq!(made["items"][0]["email"], "ada@example.com");

    let wrong = app
        .err("write_records", json!({"entity": "contact", "mode": "create", "items": [{"frist_name": "Ada"}]}))
        .await;
    assert!(wrong.contains("items[0]: unknown field `frist_name`"), "{wrong}");
    assert!(wrong.contains("first_name, last_name, email") && wrong.contains("describe_entity"), "{wrong}");
    let misspelt = app.err("write_records", json!({"entity": "contacts", "mode": "create", "items": [{}]})).await;
    assert!(misspelt.contains("contact, company, deal, task, note"), "{misspelt}");
    let mode = app.err("write_records", json!({"entity": "deal", "mode": "upsert", "items": [{"name": "x"}]})).await;
    assert!(mode.contains("contacts (by email)") && mode.contains("companies (by domain)"), "{mode}");
    let action = app.err("manage_pipelines", json!({"action": "remove", "name": "sales"})).await;
    assert!(action.contains("create, update"), "{action}");
    // Nothing was written by the refused calls.
    let all = app.ok("count_records", json!({"entity": "contact"})).await;
    assert_eq!(all["count"], 1);
}

#[tokio::test]
async fn lean_searches_answer_compact_records_unless_fields_ask_for_more() {
    let app = spawn_app().await;
    app.create_contacts(json!([
        {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com", "title": "CTO", "phone": "+44 20 7946 0000"},
        {"first_name": "Bob", "email": "bob@example.com", "title": "CFO"}
    ]))
    .await;
    let args = json!({
        "entity": "contact",
        "filters": [{"field": "title", "op": "eq", "value": "CTO"}, {"any": [{"field": "phone", "op": "is_not_null"}]}],
        "sort": [{"field": "created_at"}]
    });
    let lean = app.ok("search_records", args.clone()).await;
    let item = lean["items"][0].as_object().unwrap();
    let mut keys: Vec<&str> = item.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["created_at", "first_name", "id", "last_name", "phone", "title", "updated_at"]);
    let full = app.call_at(&app.key, "?profile=full", "search_records", args.clone()).await.unwrap();
    assert!(full["items"][0]["custom"].is_object() && full["items"][0]["created_at"].is_string(), "{full}");
    let mut asked = args;
    asked["fields"] = json!(["created_at"]);
    let asked = app.ok("search_records", asked).await;
    assert!(asked["items"][0]["created_at"].is_string() && asked["items"][0].get("email").is_none(), "{asked}");

    let everywhere = app.ok("search_all", json!({"query": "ada"})).await;
    let found = everywhere["items"][0].as_object().unwrap();
    assert!(
        found.contains_key("first_name") && !found.contains_key("phone") && !found.contains_key("custom"),
        "{found:?}"
    );
}

/// How one organization's scenario is written: through the lean families or the typed tools.
struct Writer<'a> {
    app: &'a TestApp,
    key: String,
    lean: bool,
}

impl Writer<'_> {
    async fn call(&self, tool: &str, args: Value) -> Value {
        let query = if self.lean { "" } else { "?profile=full" };
        match self.app.call_at(&self.key, query, tool, args.clone()).await {
            Ok(v) => v,
            Err(e) => panic!("{tool} {args}: {e}"),
        }
    }

    /// Creates, updates or upserts records of `entity`.
    async fn write(&self, entity: Entity, mode: &str, items: Value) -> Vec<Value> {
        let answer = if self.lean {
            self.call("write_records", json!({"entity": entity.as_str(), "mode": mode, "items": items})).await
        } else {
            let tools = entity.def().tools;
            let tool = match mode {
                "create" => tools.create,
                "update" => tools.update,
                _ => tools.upsert.unwrap(),
            };
            self.call(tool, json!({ entity.plural(): items })).await
        };
        answer["items"].as_array().unwrap().clone()
    }

    /// An administrative call: a family's action, or the member tool it names.
    async fn admin(&self, family: Tool, action: &str, mut args: Value) -> Value {
        if self.lean {
            args["action"] = json!(action);
            self.call(family.name(), args).await
        } else {
            let member = family.members().iter().find(|(a, _)| *a == action).unwrap().1;
            self.call(member.name(), args).await
        }
    }
}

/// A week of sales work, the same through either profile; answers the records' ids by label.
async fn scenario(w: &Writer<'_>) {
    w.admin(
        Tool::ManageCustomFields,
        "create",
        json!({"entity": "company", "key": "tier", "label": "Tier", "type": "select", "options": ["gold", "silver"]}),
    )
    .await;
    w.admin(
        Tool::ManageCustomFields,
        "create",
        json!({"entity": "contact", "key": "source", "label": "Source", "type": "text"}),
    )
    .await;
    w.admin(Tool::ManageCustomFields, "update", json!({"entity": "contact", "key": "source", "label": "Lead source"}))
        .await;
    w.admin(Tool::ManagePipelines, "create", json!({"name": "renewals", "stages": [{"name": "due"}, {"name": "renewed", "kind": "won"}, {"name": "churned", "kind": "lost"}]})).await;
    w.admin(Tool::ManagePipelines, "update", json!({"name": "renewals", "stages": [{"name": "upcoming", "was": "due"}, {"name": "renewed", "kind": "won"}, {"name": "churned", "kind": "lost"}]})).await;
    let companies = w
        .write(
            Entity::Company,
            "create",
            json!([
                {"name": "Acme", "domain": "acme.com", "custom": {"tier": "gold"}},
                {"name": "Globex", "domain": "globex.com"}
            ]),
        )
        .await;
    let (acme, globex) = (companies[0]["id"].clone(), companies[1]["id"].clone());
    let contacts = w
        .write(
            Entity::Contact,
            "create",
            json!([
                {"first_name": "Ada", "email": "ada@acme.com", "company_id": acme, "custom": {"source": "fair"}},
                {"first_name": "Bob", "email": "bob@acme.com", "tags": ["a"]},
                {"first_name": "Bobby", "email": "bobby@acme.com", "phone": "+1 555 0100", "tags": ["b"]},
                {"first_name": "Carol", "email": "carol@globex.com"}
            ]),
        )
        .await;
    let id = |i: usize| contacts[i]["id"].clone();
    let upserted = w
        .write(
            Entity::Contact,
            "upsert",
            json!([
                {"email": "ada@acme.com", "title": "CTO"},
                {"email": "dan@new.com", "first_name": "Dan"}
            ]),
        )
        .await;
    assert_eq!(upserted.iter().map(|u| u["status"].clone()).collect::<Vec<_>>(), [json!("updated"), json!("created")]);
    w.write(Entity::Company, "upsert", json!([{"name": "Acme", "domain": "acme.com", "industry": "anvils"}])).await;
    let deals = w
        .write(Entity::Deal, "create", json!([
            {"name": "Acme renewal", "pipeline": "renewals", "value": "1200.50", "currency": "EUR", "company_id": acme, "contact_ids": [id(0)]},
            {"name": "Globex pilot", "value": "300", "currency": "USD"}
        ]))
        .await;
    w.write(
        Entity::Deal,
        "update",
        json!([{"id": deals[0]["id"], "stage": "renewed"}, {"id": deals[1]["id"], "stage": "qualified"}]),
    )
    .await;
    let tasks = w
        .write(
            Entity::Task,
            "create",
            json!([
                {"title": "Send the invoice", "record": {"entity": "deal", "id": deals[0]["id"]}},
                {"title": "Call Carol"}
            ]),
        )
        .await;
    w.write(Entity::Task, "update", json!([{"id": tasks[0]["id"], "status": "done"}])).await;
    let notes = w
        .write(
            Entity::Note,
            "create",
            json!([{"body": "Met at the fair", "record": {"entity": "contact", "id": id(0)}}]),
        )
        .await;
    w.write(Entity::Note, "update", json!([{"id": notes[0]["id"], "body": "Met at the spring fair"}])).await;
    w.call(
        "link_records",
        json!({"links": [
            {"from": {"entity": "contact", "id": id(3)}, "to": {"entity": "company", "id": globex}},
            {"from": {"entity": "deal", "id": deals[1]["id"]}, "to": {"entity": "company", "id": globex}},
            {"from": {"entity": "task", "id": tasks[1]["id"]}, "to": {"entity": "contact", "id": id(3)}}
        ]}),
    )
    .await;
    w.call("unlink_records", json!({"links": [{"from": {"entity": "deal", "id": deals[1]["id"]}, "to": {"entity": "company", "id": globex}}]})).await;
    w.call("merge_records", json!({"entity": "contact", "keep_id": id(2), "merge_ids": [id(1)]})).await;
    w.call("delete_records", json!({"entity": "contact", "ids": [id(3)]})).await;
    w.call("restore_records", json!({"entity": "contact", "ids": [id(3)]})).await;
    w.call("delete_records", json!({"entity": "task", "ids": [tasks[1]["id"]]})).await;
    w.admin(Tool::ManageWebhooks, "create", json!({"url": "https://hooks.example.com/crm", "events": ["deal.*"]}))
        .await;
    let hooks = w.admin(Tool::ManageWebhooks, "list", json!({})).await;
    let hook = hooks["items"][0]["id"].clone();
    w.admin(Tool::ManageWebhooks, "update", json!({"id": hook, "events": ["deal.*", "contact.created"]})).await;
    w.admin(Tool::ManageWebhooks, "create", json!({"url": "https://hooks.example.com/old", "events": ["*"]})).await;
    let hooks = w.admin(Tool::ManageWebhooks, "list", json!({})).await;
    let old = hooks["items"].as_array().unwrap().iter().find(|h| h["url"] == "https://hooks.example.com/old").unwrap()
        ["id"]
        .clone();
    w.admin(Tool::ManageWebhooks, "delete", json!({"id": old})).await;
    w.admin(Tool::ManageWebhooks, "deliveries", json!({"id": hook})).await;
    w.admin(Tool::ManageCustomFields, "delete", json!({"entity": "contact", "key": "source"})).await;
}

/// What an organization holds, with ids replaced by the labels of what they name, so two
/// organizations that did the same work compare equal.
async fn holdings(w: &Writer<'_>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut records: Vec<(Entity, Value)> = Vec::new();
    for e in Entity::ALL {
        let page = w
            .app
            .call_at(&w.key, "?profile=full", "search_records", json!({"entity": e.as_str(), "limit": 100}))
            .await
            .unwrap();
        records.extend(page["items"].as_array().unwrap().iter().map(|r| (*e, r.clone())));
    }
    let label = |r: &Value| {
        ["email", "domain", "name", "title", "body"].iter().find_map(|k| r[*k].as_str()).unwrap_or("?").to_owned()
    };
    let names: BTreeMap<String, String> =
        records.iter().map(|(_, r)| (r["id"].as_str().unwrap().to_owned(), label(r))).collect();
    fn relabel(v: &Value, names: &BTreeMap<String, String>) -> Value {
        match v {
            Value::String(s) => names.get(s).map_or_else(|| v.clone(), |n| json!(n)),
            Value::Array(a) => {
                let mut items: Vec<Value> = a.iter().map(|x| relabel(x, names)).collect();
                items.sort_by_key(|x| x.to_string());
                Value::Array(items)
            }
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| !matches!(k.as_str(), "id" | "created_at" | "updated_at" | "done_at"))
                    .map(|(k, x)| (k.clone(), relabel(x, names)))
                    .collect(),
            ),
            other => other.clone(),
        }
    }
    for (e, r) in &records {
        out.insert(format!("{e} {}", label(r)), relabel(r, &names));
    }
    for e in [Entity::Contact, Entity::Company] {
        let d = w.app.call_at(&w.key, "?profile=full", "describe_entity", json!({"entity": e.as_str()})).await.unwrap();
        out.insert(format!("{e} custom fields"), d["custom_fields"].clone());
    }
    let deals = w.app.call_at(&w.key, "?profile=full", "describe_entity", json!({"entity": "deal"})).await.unwrap();
    out.insert("pipelines".into(), deals["pipelines"].clone());
    let counts = w
        .app
        .call_at(&w.key, "?profile=full", "count_records", json!({"entity": "deal", "group_by": "stage"}))
        .await
        .unwrap();
    out.insert("deals by stage".into(), counts);
    let hooks = w.app.call_at(&w.key, "?profile=full", "list_webhooks", json!({})).await.unwrap();
    let hooks: Vec<Value> = hooks["items"].as_array().unwrap().iter().map(|h| json!([h["url"], h["events"]])).collect();
    out.insert("webhooks".into(), json!(hooks));
    out
}

#[tokio::test]
async fn the_lean_catalog_does_what_the_full_one_does() {
    let app = spawn_app().await;
    let (_, lean_key) = app.new_org("lean").await;
    let (_, full_key) = app.new_org("full").await;
    let lean = Writer { app: &app, key: lean_key, lean: true };
    let full = Writer { app: &app, key: full_key, lean: false };
    scenario(&lean).await;
    scenario(&full).await;
    let (a, b) = (holdings(&lean).await, holdings(&full).await);
    assert!(a.len() > 12, "the scenario left records: {a:?}");
    assert_eq!(a["contact bobby@acme.com"]["tags"], json!(["a", "b"]), "the merge joined tags");
    assert_eq!(a["deal Acme renewal"]["stage"], "renewed");
    for (k, v) in &a {
        assert_eq!(Some(v), b.get(k), "{k} differs between the profiles");
    }
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
}

#[tokio::test]
async fn a_six_call_task_costs_at_most_30_kb_in_the_lean_profile() {
    let app = spawn_app().await;
    let many: Vec<Value> = (0..40)
        .map(|i| json!({"first_name": format!("Person{i}"), "last_name": "Example", "email": format!("p{i}@example.com"), "title": "Buyer", "phone": "+1 555 0100", "tags": ["lead", "2026"]}))
        .collect();
    let made = app.create_contacts(json!(many)).await;
    let one = made[0]["id"].as_str().unwrap().to_owned();
    let mut read = 0;
    let rpc = |body: Value| {
        let app = &app;
        async move {
            let res = app.rpc(&app.key, body).await;
            let text = res.text().await.unwrap();
            assert!(!text.contains("\"isError\":true"), "{text}");
            text.len()
        }
    };
    let call = |name: &str, args: Value| json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": args}});
    read += rpc(json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})).await;
    read += rpc(call("describe_entity", json!({"entity": "contact"}))).await;
    read += rpc(call("search_records", json!({"entity": "contact", "query": "example", "limit": 25}))).await;
    read += rpc(call("get_records", json!({"records": [{"entity": "contact", "id": one}]}))).await;
    read += rpc(call(
        "write_records",
        json!({"entity": "contact", "mode": "update", "items": [{"id": one, "title": "Head of buying"}]}),
    ))
    .await;
    read += rpc(call("write_records", json!({"entity": "note", "mode": "create", "items": [{"body": "Called; wants a quote", "record": {"entity": "contact", "id": one}}]}))).await;
    read += rpc(call("get_timeline", json!({"entity": "contact", "id": one}))).await;
    assert!(read <= 30 * 1024, "the task read {read} bytes");
}

#[tokio::test]
async fn a_family_call_needs_what_the_tool_it_names_needs() {
    let app = spawn_app().await;
    let contacts_only = app.key_with(None, &["contacts:read", "contacts:write"]).await;
    let ok = app
        .call_as(
            &contacts_only,
            "write_records",
            json!({"entity": "contact", "mode": "create", "items": [{"first_name": "Ada"}]}),
        )
        .await;
    assert!(ok.is_ok(), "{ok:?}");
    let refused = app
        .call_as(
            &contacts_only,
            "write_records",
            json!({"entity": "company", "mode": "create", "items": [{"name": "Acme"}]}),
        )
        .await
        .unwrap_err();
    assert!(refused.contains("may not call create_companies"), "{refused}");
    let member = app.key_with(Some("member"), &[]).await;
    for (tool, args) in [
        ("manage_webhooks", json!({"action": "create", "url": "https://hooks.example.com/x", "events": ["*"]})),
        (
            "manage_custom_fields",
            json!({"action": "create", "entity": "contact", "key": "k", "label": "K", "type": "text"}),
        ),
        ("manage_pipelines", json!({"action": "create", "name": "p", "stages": [{"name": "a"}]})),
    ] {
        let e = app.call_as(&member, tool, args).await.unwrap_err();
        assert!(e.contains("may not call"), "{tool}: {e}");
    }
    // Nothing was written by the refused calls.
    assert_eq!(app.ok("count_records", json!({"entity": "company"})).await["count"], 0);
    assert!(app.ok("list_webhooks", json!({})).await["items"].as_array().unwrap().is_empty());
    let d = app.ok("describe_entity", json!({"entity": "contact"})).await;
    assert!(d["custom_fields"].as_array().unwrap().is_empty(), "{d}");
}
