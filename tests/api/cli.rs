//! The CLI as a user runs it: `rapport keys create|list`, `orgs`, with and without `--json`.

use std::process::Command;

use serde_json::Value;

use crate::helpers::{fresh_database, rapport};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_create_and_list() {
    let (db, _dir) = fresh_database().await;
    let out = rapport(
        &db,
        &[
            "keys",
            "create",
            "--name",
            "laptop",
            "--role",
            "member",
            "--expires-in-days",
            "30",
            "--allow-cidr",
            "10.0.0.0/8",
            "--json",
        ],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    for field in
        ["id", "name", "key", "preview", "scopes", "role", "expires_at", "allowed_cidrs", "status", "created_at"]
    {
        assert!(created.get(field).is_some(), "{field} in {created}");
    }
    let key = created["key"].as_str().unwrap();
    assert_eq!(key.len(), 68);
    assert!(rapport::auth::key::PlainKey::parse(key).is_ok());
    assert_eq!(created["preview"], &key[..12]);
    assert_eq!(created["role"], "member");
    assert_eq!(created["status"], "enabled");
    assert_eq!(created["allowed_cidrs"][0], "10.0.0.0/8");
    assert!(created["scopes"].as_array().unwrap().iter().any(|s| s == "leads:write"));

    let out = rapport(&db, &["keys", "list", "--json"]);
    assert!(out.status.success());
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["preview"], created["preview"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains(key), "a list never shows the secret");

    let out = rapport(&db, &["keys", "list"]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(table.contains("laptop") && table.contains(&format!("{}…", &key[..12])) && !table.contains(key));

    let out = rapport(&db, &["keys", "create", "--name", "x", "--scopes", "contacts:read,contacts:admin"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("contacts:admin") && err.contains("contacts:read"), "{err}");
    let out = rapport(&db, &["keys", "create", "--name", "x", "--role", "root"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("viewer, member, admin, owner"));
    let out = rapport(&db, &["keys", "create", "--name", "x", "--org", "nope"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no organization `nope`"));
    let out = rapport(&db, &["keys", "create", "--name", "x", "--allow-cidr", "10.0.0.0/33"]);
    assert!(!out.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orgs_and_the_active_key_limit() {
    let (db, _dir) = fresh_database().await;
    let out = rapport(&db, &["orgs", "create", "acme-sales", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let org: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(org["owner"], "owner@acme-sales");
    let out = rapport(&db, &["orgs", "create", "Bad Name"]);
    assert!(!out.status.success());
    let out = rapport(&db, &["orgs", "list", "--json"]);
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = list.as_array().unwrap().iter().map(|o| o["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["acme-sales", "default"]);

    for i in 0..2 {
        let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
            .args(["keys", "create", "--org", "acme-sales", "--name", &format!("k{i}")])
            .env("RAPPORT_DATABASE_URL", &db)
            .env("RAPPORT_MAX_ACTIVE_KEYS", "2")
            .output()
            .unwrap();
        assert!(out.status.success());
    }
    let out = Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(["keys", "create", "--org", "acme-sales", "--name", "one too many"])
        .env("RAPPORT_DATABASE_URL", &db)
        .env("RAPPORT_MAX_ACTIVE_KEYS", "2")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already has 2 enabled keys"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_lifecycle_from_the_cli() {
    let (db, _dir) = fresh_database().await;
    let ok = |args: &[&str]| {
        let out = rapport(&db, args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let created: Value = serde_json::from_str(&ok(&["keys", "create", "--name", "ci", "--json"])).unwrap();
    let id = created["id"].as_str().unwrap();
    let shown: Value = serde_json::from_str(&ok(&["keys", "show", id, "--json"])).unwrap();
    assert_eq!(shown["name"], "ci");
    assert!(shown.get("key").is_none());
    ok(&["keys", "rename", id, "ci runner"]);
    ok(&["keys", "disable", id]);
    let shown: Value = serde_json::from_str(&ok(&["keys", "show", id, "--json"])).unwrap();
    assert_eq!((shown["name"].as_str(), shown["status"].as_str()), (Some("ci runner"), Some("disabled")));
    ok(&["keys", "enable", id]);
    let rotated: Value = serde_json::from_str(&ok(&["keys", "rotate", id, "--grace-hours", "1", "--json"])).unwrap();
    assert_ne!(rotated["key"], created["key"]);
    assert_eq!(rotated["id"], id);
    ok(&["keys", "revoke", id]);
    let out = rapport(&db, &["keys", "enable", id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("revoked"));
    let listed: Value = serde_json::from_str(&ok(&["keys", "list", "--json"])).unwrap();
    assert!(listed.as_array().unwrap().is_empty(), "revoked keys are listed only with --all");
    let listed: Value = serde_json::from_str(&ok(&["keys", "list", "--all", "--json"])).unwrap();
    assert_eq!(listed[0]["status"], "revoked");
    ok(&["keys", "delete", id]);
    let out = rapport(&db, &["keys", "show", id]);
    assert!(!out.status.success());

    ok(&["users", "create", "--email", "ana@example.com", "--role", "member"]);
    ok(&["users", "set-role", "ana@example.com", "admin"]);
    ok(&["users", "deactivate", "ana@example.com"]);
    let users: Value = serde_json::from_str(&ok(&["users", "list", "--json"])).unwrap();
    let ana = users.as_array().unwrap().iter().find(|u| u["email"] == "ana@example.com").unwrap();
    assert_eq!((ana["role"].as_str(), ana["active"].as_bool()), (Some("admin"), Some(false)));
    let out = rapport(&db, &["users", "deactivate", "owner@localhost"]);
    assert!(!out.status.success(), "the last owner stays");

    let audit: Value = serde_json::from_str(&ok(&["audit", "--json"])).unwrap();
    let actions: Vec<&str> = audit.as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for a in [
        "key.create",
        "key.rename",
        "key.disable",
        "key.enable",
        "key.rotate",
        "key.revoke",
        "key.delete",
        "user.create",
        "user.set_role",
        "user.deactivate",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert!(audit.as_array().unwrap().iter().all(|e| e["actor"] == "cli"));
    let text = audit.to_string();
    assert!(!text.contains(created["key"].as_str().unwrap()) && !text.contains(rotated["key"].as_str().unwrap()));
}

/// Without `--role` a key is a `member` key (SPEC 2), like the connect helper's: an agent's
/// key does not carry the owner's 22 scopes by accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_without_a_role_is_a_member_key() {
    let (db, _dir) = fresh_database().await;
    let out = rapport(&db, &["keys", "create", "--name", "laptop", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["role"], "member");
    assert!(!created["scopes"].as_array().unwrap().contains(&Value::from("org:manage")));
    // For a viewer it is a viewer key: never more than its owner may do.
    assert!(rapport(&db, &["users", "create", "--email", "v@example.com", "--role", "viewer"]).status.success());
    let out = rapport(&db, &["keys", "create", "--name", "theirs", "--user", "v@example.com", "--json"]);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["role"], "viewer");
    // `--role` takes only the four roles, and says so.
    let out = rapport(&db, &["keys", "create", "--name", "x", "--role", "superuser"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("viewer") && err.contains("owner"), "{err}");
}

/// Every command's `--help` describes every flag and argument it takes, and a flag shows
/// only on the commands it does something for.
#[test]
fn every_flag_and_argument_says_what_it_is_for() {
    use clap::CommandFactory;
    fn walk(cmd: &clap::Command, path: &mut Vec<String>, missing: &mut Vec<String>, seen: &mut Vec<Vec<String>>) {
        for a in cmd.get_arguments() {
            let id = a.get_id().as_str();
            if matches!(id, "help" | "version") {
                continue;
            }
            if a.get_help().is_none_or(|h| h.to_string().trim().is_empty()) {
                missing.push(format!("rapport {} {id}", path.join(" ")));
            }
        }
        seen.push(path.clone());
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            path.push(sub.get_name().to_owned());
            walk(sub, path, missing, seen);
            path.pop();
        }
    }
    let (mut missing, mut seen) = (Vec::new(), Vec::new());
    walk(&rapport::config::Cli::command(), &mut Vec::new(), &mut missing, &mut seen);
    assert!(missing.is_empty(), "flags or arguments without a description: {missing:#?}");
    assert!(seen.len() > 20, "{seen:?}");

    // As a user sees it: the real binary's help, for a few commands.
    let help = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_rapport")).args(args).arg("--help").output().unwrap();
        assert!(out.status.success());
        String::from_utf8(out.stdout).unwrap()
    };
    assert!(help(&["keys", "create"]).contains("--max-active-keys"));
    assert!(!help(&["keys", "list"]).contains("--max-active-keys"), "it does nothing there");
    assert!(!help(&["users", "list"]).contains("--max-active-keys"));
    let create = help(&["keys", "create"]);
    assert!(create.contains("viewer") && create.contains("owner") && create.contains("default: member"), "{create}");
    assert!(help(&["connect"]).contains("[default: rapport]"));
    assert!(help(&["users", "set-role"]).contains("<EMAIL>"));
}

/// Tables a person reads start with a header row, as `keys list` does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lists_have_header_rows() {
    let (db, _dir) = fresh_database().await;
    let text = |args: &[&str]| String::from_utf8(rapport(&db, args).stdout).unwrap();
    assert!(text(&["users", "list"]).starts_with("ID "), "{}", text(&["users", "list"]));
    assert!(text(&["audit"]).starts_with("AT "));
    assert!(text(&["orgs", "list"]).starts_with("ID "));
    assert!(rapport(&db, &["keys", "create", "--name", "x"]).status.success());
    assert!(text(&["keys", "list"]).starts_with("ID "));
    assert!(text(&["changes", "list"]).starts_with("AT "));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agents_call_is_found_previewed_and_undone_from_the_cli() {
    let app = crate::helpers::spawn_app().await;
    let ada = app.create_contacts(serde_json::json!([{ "first_name": "Ada", "title": "CTO" }])).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let agent = app.key_with(Some("admin"), &[]).await;
    let update = serde_json::json!({ "contacts": [{ "id": ada, "title": "CEO", "phone": "+1 555 0100" }] });
    app.call_as(&agent, "update_contacts", update).await.unwrap();
    let db = app.db_url.as_str();
    let title = || async {
        let got = app.ok("get_records", serde_json::json!({ "records": [{ "entity": "contact", "id": ada }] })).await;
        got["items"][0]["title"].clone()
    };

    let out = rapport(db, &["changes", "list", "--tool", "update_contacts", "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let request = listed[0]["via"]["request_id"].as_str().unwrap().to_owned();
    let text = String::from_utf8(rapport(db, &["changes", "list"]).stdout).unwrap();
    assert!(text.contains(&request) && text.contains("title: CTO → CEO"), "{text}");

    // Without a terminal it neither asks nor acts.
    let out = rapport(db, &["changes", "revert", "--request-id", &request]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--yes"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(title().await, "CEO");
    // The preview, in words and as JSON, writes nothing.
    let out = rapport(db, &["changes", "revert", "--request-id", &request, "--dry-run"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success() && text.contains("Would undo 1 change(s)") && text.contains("title: CEO → CTO"),
        "{text}"
    );
    let out = rapport(db, &["changes", "revert", "--request-id", &request, "--dry-run", "--json"]);
    let preview: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(preview["result"]["reverted"].as_array().unwrap().len(), 1, "{preview}");
    assert_eq!(title().await, "CEO");

    // Undone, as the CLI, and the undo says how to undo it.
    let out = rapport(db, &["changes", "revert", "--request-id", &request, "--yes"]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("Undid 1 change(s)") && text.contains("--request-id req_"), "{text}");
    assert_eq!(title().await, "CTO");
    let (_, log) = app.api(&app.key, reqwest::Method::GET, "/changes?tool=revert_changes", None).await;
    assert_eq!(log["items"][0]["via"]["client"]["name"], "rapport-cli", "{log}");
    assert_eq!(log["items"][0]["actor"]["type"], "cli", "{log}");

    // A change made since is a conflict: refused unless forced.
    app.ok("update_contacts", serde_json::json!({ "contacts": [{ "id": ada, "title": "Founder" }] })).await;
    let undo = log["items"][0]["via"]["request_id"].as_str().unwrap().to_owned();
    let out = rapport(db, &["changes", "revert", "--request-id", &undo, "--yes"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("nothing was reverted"), "{err}");
    assert_eq!(title().await, "Founder");
    // A window needs its key and its start.
    let out = rapport(db, &["changes", "revert", "--since", "2026-01-01T00:00:00Z", "--dry-run"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--key"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_policies_are_set_and_held_calls_decided_only_by_a_person_at_a_terminal() {
    use serde_json::json;
    let app = crate::helpers::spawn_app().await;
    let db = app.db_url.as_str();
    let ok = |out: &std::process::Output| assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A key made with a policy carries it; a kind that does not exist is refused.
    let out = rapport(db, &["keys", "create", "--name", "bot", "--role", "admin", "--require-approval", "frobnicate"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
    let args = ["keys", "create", "--name", "bot", "--role", "admin", "--require-approval", "delete,bulk"];
    let out = rapport(db, &[&args[..], &["--bulk-limit", "2", "--json"]].concat());
    ok(&out);
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(created["approval"], json!({ "kinds": ["delete", "bulk"], "bulk_limit": 2 }), "{created}");
    let (key, id) = (created["key"].as_str().unwrap().to_owned(), created["id"].as_str().unwrap().to_owned());

    // Held: the CLI lists and shows it.
    let three = json!({ "contacts": [{ "first_name": "A" }, { "first_name": "B" }, { "first_name": "C" }] });
    let held = app.call_as(&key, "create_contacts", three).await.unwrap();
    let approval = held["approval_id"].as_str().unwrap().to_owned();
    let out = rapport(db, &["approvals", "list", "--state", "pending", "--json"]);
    ok(&out);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed[0]["id"], approval.as_str(), "{listed}");
    let out = rapport(db, &["approvals", "show", &approval]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("create_contacts: created 3 contacts") && text.contains("pending"), "{text}");

    // Deciding needs the person's password at a terminal: without one, nothing is decided.
    for args in [
        vec!["approvals", "approve", approval.as_str(), "--as", "owner@localhost"],
        vec!["approvals", "deny", approval.as_str(), "--as", "owner@localhost", "--reason", "no"],
    ] {
        let out = rapport(db, &args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("terminal"), "{err}");
    }
    let got = app.call_as(&key, "get_approval", json!({ "approval_id": approval })).await.unwrap();
    assert_eq!(got["status"], "pending");
    assert_eq!(app.search_ids(json!({ "entity": "contact" })).await.len(), 0);

    // A person removes the policy: the same call runs at once.
    let out = rapport(db, &["keys", "set-approval", &id, "sometimes"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("sometimes"));
    ok(&rapport(db, &["keys", "set-approval", &id, "schema,webhooks"]));
    let (_, shown) = app.api(&app.key, reqwest::Method::GET, &format!("/keys/{id}"), None).await;
    assert_eq!(shown["approval"]["kinds"], json!(["schema", "webhooks"]), "{shown}");
    ok(&rapport(db, &["keys", "set-approval", &id, "none"]));
    let (_, shown) = app.api(&app.key, reqwest::Method::GET, &format!("/keys/{id}"), None).await;
    assert!(shown["approval"].is_null(), "{shown}");
    let three = json!({ "contacts": [{ "first_name": "A" }, { "first_name": "B" }, { "first_name": "C" }] });
    // The server learns of the CLI's change within SPEC 1's second; a dry run tells when.
    let dry = json!({ "contacts": three["contacts"], "dry_run": true });
    let freed = crate::helpers::holds_within(crate::helpers::PROPAGATION, || async {
        app.call_as(&key, "create_contacts", dry.clone()).await.unwrap().get("needs_approval").is_none()
    });
    assert!(freed.await, "the policy's removal reaches the server within a second");
    let ran = app.call_as(&key, "create_contacts", three).await.unwrap();
    assert_eq!(ran["items"].as_array().map(Vec::len), Some(3), "{ran}");
}
