//! Upgrading a database made by the first release: the data survives, references included
//! (SQLite rebuilds the companies table), and every organization gets its sales pipeline.

use serde_json::json;

use crate::helpers::fresh_database;

/// Runs `migrator` (a past release's migrations) on a fresh database, then `rows` in it.
async fn at_an_old_release(url: &str, migrator: &sqlx::migrate::Migrator, rows: &[String]) {
    if url.starts_with("postgres") {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for r in rows {
            sqlx::query(sqlx::AssertSqlSafe(r.clone())).execute(&pool).await.unwrap();
        }
        pool.close().await;
    } else {
        let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)
            .unwrap()
            .create_if_missing(true)
            .foreign_keys(true);
        let pool = sqlx::SqlitePool::connect_with(options).await.unwrap();
        migrator.run(&pool).await.unwrap();
        for r in rows {
            sqlx::query(sqlx::AssertSqlSafe(r.clone())).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }
}

#[tokio::test]
async fn a_database_from_the_first_release_upgrades_with_its_data() {
    let (url, _dir) = fresh_database().await;
    let postgres = url.starts_with("postgres");
    let dialect = if postgres { "postgres" } else { "sqlite" };
    // The first release's schema, exactly: its migration file alone.
    let old = tempfile::tempdir().unwrap();
    std::fs::copy(
        format!("{}/migrations/{dialect}/0001_foundation.sql", env!("CARGO_MANIFEST_DIR")),
        old.path().join("0001_foundation.sql"),
    )
    .unwrap();
    let first = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    let rows = [
        "INSERT INTO orgs (id, name, created_at) VALUES ('o1', 'default', 1)",
        "INSERT INTO users (id, org_id, email, role, created_at) VALUES ('u1', 'o1', 'owner@localhost', 'owner', 1)",
        "INSERT INTO companies (id, org_id, name, domain, created_at, updated_at) VALUES ('co1', 'o1', 'Acme', 'acme.com', 1, 1)",
        "INSERT INTO contacts (id, org_id, first_name, company_id, custom, tags, created_at, updated_at) \
         VALUES ('c1', 'o1', 'Ada', 'co1', '{\"size\": 12, \"regions\": [\"emea\", \"apac\"], \"vip\": true}', \
         '[\"lead\", \"board\"]', 2, 2)",
    ];
    let rows = rows.map(str::to_owned);
    at_an_old_release(&url, &first, &rows).await;

    // The server upgrades it on start.
    let mut args = crate::helpers::serve_args();
    args.rate_limit = 0;
    let server = rapport::app::Server::build(&args, &url, 10).await.expect("the upgrade runs");
    let store = server.state().store.clone();
    let org = store.org_by_name("default").await.unwrap().unwrap();
    let contact = store
        .get_records(&org.id, rapport_tools::Entity::Contact, &[rapport::store::RecordId::from("c1")])
        .await
        .unwrap();
    assert_eq!(contact[0].get("company_id"), &json!("co1"), "the contact still points at its company");
    let companies = store
        .get_records(&org.id, rapport_tools::Entity::Company, &[rapport::store::RecordId::from("co1")])
        .await
        .unwrap();
    assert_eq!(companies[0].get("domain"), &json!("acme.com"));
    // Custom values and tags written before the value table existed are in it.
    let values = "SELECT key, t, n FROM custom_values WHERE entity = 'contact' AND record_id = 'c1' ORDER BY key, t";
    let got: Vec<(String, Option<String>, Option<f64>)> = if postgres {
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        sqlx::query_as(values).fetch_all(&pool).await.unwrap()
    } else {
        let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
        sqlx::query_as(values).fetch_all(&pool).await.unwrap()
    };
    let want = [
        ("#tags", Some("board"), None),
        ("#tags", Some("lead"), None),
        ("regions", Some("apac"), None),
        ("regions", Some("emea"), None),
        ("size", None, Some(12.0)),
        ("vip", Some("true"), None),
    ];
    assert_eq!(got, want.map(|(k, t, n)| (k.to_owned(), t.map(str::to_owned), n)).to_vec());
    let pipelines = store.pipelines(&org.id).await.unwrap();
    assert_eq!(pipelines.len(), 1);
    assert_eq!(pipelines[0].name, "sales");
    assert_eq!(
        pipelines[0].stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
    );
}

/// Webhook endpoints made before they carried their creator's powers: one a person made in
/// the console carries that person's role; one made through a key (whose scopes were not
/// recorded) carries nothing and is turned off, audited, until someone takes it over.
#[tokio::test]
async fn webhooks_made_before_authority_carry_what_is_known_of_their_creator() {
    let (url, _dir) = fresh_database().await;
    let postgres = url.starts_with("postgres");
    let dialect = if postgres { "postgres" } else { "sqlite" };
    let old = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(format!("{}/migrations/{dialect}", env!("CARGO_MANIFEST_DIR"))).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_owned();
        if name.as_str() < "0008" {
            std::fs::copy(&path, old.path().join(&name)).unwrap();
        }
    }
    let before = sqlx::migrate::Migrator::new(old.path()).await.unwrap();
    let (on, secret) = (if postgres { "TRUE" } else { "1" }, "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let rows = [
        "INSERT INTO orgs (id, name, created_at) VALUES ('o1', 'default', 1)".to_owned(),
        "INSERT INTO users (id, org_id, email, role, created_at) VALUES ('u1', 'o1', 'owner@localhost', 'owner', 1)"
            .to_owned(),
        format!(
            "INSERT INTO webhook_endpoints (id, org_id, url, events, enabled, secret, created_at, updated_at) VALUES \
             ('wh_console', 'o1', 'https://a.example/h', '[\"*\"]', {on}, '{secret}', 1, 1), \
             ('wh_key', 'o1', 'https://b.example/h', '[\"*\"]', {on}, '{secret}', 1, 1)"
        ),
        "INSERT INTO audit_log (id, org_id, at, actor_type, actor_id, action, target_type, target_id, details) VALUES \
         ('a1', 'o1', 1, 'user', 'u1', 'webhook.create', 'webhook', 'wh_console', '{}'), \
         ('a2', 'o1', 1, 'key', 'u1', 'webhook.create', 'webhook', 'wh_key', '{}')"
            .to_owned(),
    ];
    at_an_old_release(&url, &before, &rows).await;
    let server = rapport::app::Server::build(&crate::helpers::serve_args(), &url, 10).await.expect("the upgrade runs");
    let store = server.state().store.clone();
    let org = store.org_by_name("default").await.unwrap().unwrap();
    let endpoints = store.endpoints(&org.id).await.unwrap();
    let console = endpoints.iter().find(|e| e.id == "wh_console").unwrap();
    assert!(console.enabled);
    assert_eq!((console.created_by.as_ref().map(|u| u.as_str()), console.scopes), (Some("u1"), None));
    assert_eq!(console.powers(Some(rapport_tools::Role::Owner)), rapport_tools::Role::Owner.scopes());
    let by_key = endpoints.iter().find(|e| e.id == "wh_key").unwrap();
    assert!(!by_key.enabled);
    assert!(by_key.disabled_reason.as_deref().unwrap().contains("take it over"));
    assert!(by_key.powers(Some(rapport_tools::Role::Owner)).is_empty());
    let filter = rapport::store::AuditFilter { action: Some("webhook.disabled".into()), key_id: None };
    let audit = store.list_audit(&org.id, &filter, None, 10).await.unwrap();
    assert_eq!(audit.iter().map(|e| e.target_id.as_deref()).collect::<Vec<_>>(), [Some("wh_key")]);
}
