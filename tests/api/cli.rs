//! The CLI as a user runs it: `rapport keys create|list`, `orgs`, with and without `--json`.

use std::process::Command;

use serde_json::Value;

use crate::helpers::fresh_database;

fn rapport(db: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rapport"))
        .args(args)
        .env("RAPPORT_DATABASE_URL", db)
        .env("RAPPORT_LOG", "warn")
        .output()
        .expect("rapport runs")
}

#[tokio::test]
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

#[tokio::test]
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
