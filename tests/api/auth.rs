//! SPEC section 4: every way to send a key, every refusal with its code.

use reqwest::StatusCode;
use serde_json::{Value, json};

use rapport_tools::Role;

use crate::helpers::spawn_app;

fn list_tools() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

async fn refusal(res: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(res.status(), status, "expected {code}");
    if status == StatusCode::UNAUTHORIZED {
        assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"rapport\"");
    }
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().len() > 10, "{body}");
}

#[tokio::test]
async fn each_way_of_sending_a_key_is_accepted() {
    let app = spawn_app().await;
    let post = || app.client.post(app.mcp_url()).header("accept", "application/json, text/event-stream");
    let ways = [
        post().header("x-api-key", &app.key),
        post().header("authorization", format!("Bearer {}", app.key)),
        post().header("authorization", format!("ApiKey {}", app.key)),
        post().header("authorization", format!("bearer {}", app.key)),
        app.client
            .post(format!("{}?api_key={}", app.mcp_url(), app.key))
            .header("accept", "application/json, text/event-stream"),
    ];
    for req in ways {
        let res = req.json(&list_tools()).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let v: Value = res.json().await.unwrap();
        assert!(!v["result"]["tools"].as_array().unwrap().is_empty());
    }
    // The same key twice is one key.
    let res = post()
        .header("x-api-key", &app.key)
        .header("authorization", format!("Bearer {}", app.key))
        .json(&list_tools())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn refusals_carry_their_codes() {
    let app = spawn_app().await;
    let post = || app.client.post(app.mcp_url()).header("accept", "application/json, text/event-stream");

    refusal(post().json(&list_tools()).send().await.unwrap(), StatusCode::UNAUTHORIZED, "missing_api_key").await;
    refusal(
        post().header("x-api-key", "rpk_short").json(&list_tools()).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "malformed_api_key",
    )
    .await;
    // Right shape, wrong checksum: refused before any database access.
    let mut bad = app.key.clone().into_bytes();
    bad[20] = if bad[20] == b'A' { b'B' } else { b'A' };
    let bad = String::from_utf8(bad).unwrap();
    refusal(
        post().header("x-api-key", &bad).json(&list_tools()).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "malformed_api_key",
    )
    .await;
    // A well-formed key that does not exist.
    let unknown = rapport::auth::key::PlainKey::generate();
    refusal(
        post().header("x-api-key", unknown.expose()).json(&list_tools()).send().await.unwrap(),
        StatusCode::UNAUTHORIZED,
        "invalid_api_key",
    )
    .await;
    // Two different keys.
    let other = app.key_with(Some("viewer"), &[]).await;
    refusal(
        post()
            .header("x-api-key", &app.key)
            .header("authorization", format!("Bearer {other}"))
            .json(&list_tools())
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "conflicting_api_keys",
    )
    .await;
    refusal(
        app.client
            .post(format!("{}?api_key={other}", app.mcp_url()))
            .header("x-api-key", &app.key)
            .json(&list_tools())
            .send()
            .await
            .unwrap(),
        StatusCode::BAD_REQUEST,
        "conflicting_api_keys",
    )
    .await;
}

#[tokio::test]
async fn expired_disabled_and_address_bound_keys_are_refused() {
    use rapport::keys::{NewKeyRequest, create};
    let app = spawn_app().await;
    let post = |key: &str| {
        app.client
            .post(app.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .header("x-api-key", key.to_owned())
            .json(&list_tools())
    };
    // A key bound to another network.
    let req = NewKeyRequest {
        name: "office only".into(),
        allowed_cidrs: vec!["203.0.113.0/24".into()],
        ..Default::default()
    };
    let fenced = create(app.store.as_ref(), &app.cli(), req, 100).await.unwrap();
    refusal(post(&fenced.key).send().await.unwrap(), StatusCode::FORBIDDEN, "ip_not_allowed").await;
    // ...and one bound to loopback, which is us.
    let req = NewKeyRequest {
        name: "local".into(),
        allowed_cidrs: vec!["127.0.0.0/8".into(), "::1/128".into()],
        ..Default::default()
    };
    let local = create(app.store.as_ref(), &app.cli(), req, 100).await.unwrap();
    assert_eq!(post(&local.key).send().await.unwrap().status(), StatusCode::OK);
    // The refusal is in the audit log, without the key.
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 50).await.unwrap();
    let refused = audit.iter().find(|e| e.action == "key.refused").expect("refusal audited");
    assert_eq!(refused.key_id.as_ref(), Some(&fenced.id));
    assert_eq!(refused.ip.as_deref(), Some("127.0.0.1"));
    assert!(!format!("{audit:?}").contains(&fenced.key));
}

#[tokio::test]
async fn key_states_and_owner_states_are_enforced() {
    let app = spawn_app().await;
    let post = |key: &str| {
        app.client
            .post(app.mcp_url())
            .header("accept", "application/json, text/event-stream")
            .header("x-api-key", key.to_owned())
            .json(&list_tools())
    };
    let key_id = |key: &str| rapport::auth::key::PlainKey::parse(key).unwrap().preview();

    let disabled = app.key_with(Some("member"), &[]).await;
    app.sql("UPDATE api_keys SET status = 'disabled' WHERE preview = $1", &key_id(&disabled)).await;
    refusal(post(&disabled).send().await.unwrap(), StatusCode::UNAUTHORIZED, "api_key_disabled").await;

    let expired = app.key_with(Some("member"), &[]).await;
    app.sql("UPDATE api_keys SET expires_at = 1000 WHERE preview = $1", &key_id(&expired)).await;
    refusal(post(&expired).send().await.unwrap(), StatusCode::UNAUTHORIZED, "api_key_expired").await;

    let revoked = app.key_with(Some("member"), &[]).await;
    app.sql("UPDATE api_keys SET status = 'revoked' WHERE preview = $1", &key_id(&revoked)).await;
    refusal(post(&revoked).send().await.unwrap(), StatusCode::UNAUTHORIZED, "invalid_api_key").await;

    // Demoting the owner narrows the key on its next call; deactivating stops it.
    assert!(app.tool_names(&app.key, "").await.contains(&"delete_records".to_owned()));
    let owner = app.store.first_owner(&app.default_org.id).await.unwrap().unwrap();
    // Straight in the database: the domain would refuse to demote the last owner. As from
    // another process, it holds within a second.
    app.sql("UPDATE users SET role = 'viewer' WHERE id = $1", owner.id.as_str()).await;
    let narrowed = crate::helpers::holds_within(crate::helpers::PROPAGATION, || async {
        !app.tool_names(&app.key, "").await.contains(&"delete_records".to_owned())
    });
    assert!(narrowed.await, "demoted in the database, narrowed within a second");
    let names = app.tool_names(&app.key, "").await;
    assert!(
        !names.contains(&"delete_records".to_owned()) && !names.contains(&"create_contacts".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"search_records".to_owned()));
    let err = app.err("create_contacts", json!({"contacts": [{"first_name": "X"}]})).await;
    assert!(err.contains("may not call"), "{err}");
    app.sql("UPDATE users SET active = FALSE WHERE id = $1", owner.id.as_str()).await;
    let stopped = crate::helpers::holds_within(crate::helpers::PROPAGATION, || async {
        post(&app.key).send().await.unwrap().status() == StatusCode::UNAUTHORIZED
    });
    assert!(stopped.await, "deactivated in the database, refused within a second");
    refusal(post(&app.key).send().await.unwrap(), StatusCode::UNAUTHORIZED, "api_key_disabled").await;

    // Each refusal of an existing key is audited, and the audit never holds a key.
    let audit = app.store.list_audit(&app.default_org.id, &Default::default(), None, 100).await.unwrap();
    let reasons: Vec<String> = audit
        .iter()
        .filter(|e| e.action == "key.refused")
        .map(|e| e.details["reason"].as_str().unwrap().to_owned())
        .collect();
    for code in ["api_key_disabled", "api_key_expired", "invalid_api_key"] {
        assert!(reasons.iter().any(|r| r == code), "{code} audited: {reasons:?}");
    }
    let dump = format!("{audit:?}");
    for k in [&disabled, &expired, &revoked, &app.key] {
        assert!(!dump.contains(k.as_str()));
    }
}

#[tokio::test]
async fn a_key_disabled_by_another_process_is_refused_within_a_second() {
    let app = spawn_app().await;
    let key = app.key_with(Some("member"), &[]).await;
    let id = app
        .store
        .list_keys(&app.default_org.id, false)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.preview == key[..12])
        .unwrap()
        .id;
    // Used once, so the server has it cached.
    assert_eq!(app.tool_names(&key, "").await.len(), crate::helpers::tools_for(Role::Member).len());
    // Another process on the same database (as the CLI is) disables it...
    let other = rapport::store::Store::connect(&app.db_url, rapport::webhooks::announcer()).await.unwrap();
    rapport::keys::disable(&other, &app.cli(), &id).await.unwrap();
    // ...and it is refused within a second (on SQLite, on the very next request).
    let send = || {
        app.client
            .post(app.mcp_url())
            .header("x-api-key", &key)
            .header("accept", "application/json, text/event-stream")
            .json(&list_tools())
            .send()
    };
    let refused = crate::helpers::holds_within(crate::helpers::PROPAGATION, || async {
        send().await.unwrap().status() == StatusCode::UNAUTHORIZED
    });
    assert!(refused.await, "disabled by another process");
    refusal(send().await.unwrap(), StatusCode::UNAUTHORIZED, "api_key_disabled").await;
    rapport::keys::enable(&other, &app.cli(), &id, 10).await.unwrap();
    let back = crate::helpers::holds_within(crate::helpers::PROPAGATION, || async {
        app.mcp_status(&key).await == StatusCode::OK
    });
    assert!(back.await, "enabled again by another process");
    assert_eq!(app.tool_names(&key, "").await.len(), crate::helpers::tools_for(Role::Member).len());
}

#[tokio::test]
async fn no_oauth_metadata_is_advertised() {
    let app = spawn_app().await;
    for path in ["/.well-known/oauth-protected-resource", "/.well-known/oauth-authorization-server"] {
        let res = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
    }
    let res = app.client.post(app.mcp_url()).json(&list_tools()).send().await.unwrap();
    let challenge = res.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert_eq!(challenge, "Bearer realm=\"rapport\"");
    assert!(!challenge.contains("resource_metadata"));
}

#[tokio::test]
async fn health_endpoints_need_no_key() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz", "/metrics"] {
        let res = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{path}");
    }
    let metrics = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains("rapport_http_requests_total"));
}

#[tokio::test]
async fn every_api_route_needs_a_key() {
    let app = spawn_app().await;
    let res = app.client.get(format!("{}/api/v1/anything", app.base)).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let res =
        app.client.get(format!("{}/api/v1/anything", app.base)).header("x-api-key", &app.key).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
}
