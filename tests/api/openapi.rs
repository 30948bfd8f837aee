//! The OpenAPI document: public, pinned by a snapshot (a change to the REST surface is a
//! visible diff), and true: every path and method it lists is served.

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::helpers::spawn_app;

const SNAPSHOT: &str = "tests/snapshots/openapi.json";

#[tokio::test]
async fn the_document_is_public_and_pinned() {
    let app = spawn_app().await;
    let res = reqwest::get(format!("{}/api/v1/openapi.json", app.base)).await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "no key is needed");
    let doc: Value = res.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    // Every reference points into the document itself.
    fn refs<'a>(v: &'a Value, out: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => m.iter().for_each(|(k, v)| match (k.as_str(), v) {
                ("$ref", Value::String(r)) => out.push(r),
                _ => refs(v, out),
            }),
            Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
            _ => {}
        }
    }
    let mut found = Vec::new();
    refs(&doc, &mut found);
    let dangling: Vec<&&str> = found.iter().filter(|r| doc.pointer(r.trim_start_matches('#')).is_none()).collect();
    assert!(dangling.is_empty(), "references to nothing: {dangling:?}");
    let pretty = serde_json::to_string_pretty(&doc).unwrap() + "\n";
    if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
        std::fs::write(SNAPSHOT, &pretty).unwrap();
    }
    let pinned = std::fs::read_to_string(SNAPSHOT).unwrap_or_default();
    assert!(
        pinned == pretty,
        "the OpenAPI document differs from {SNAPSHOT}; if the change is meant, run UPDATE_SNAPSHOTS=1 cargo test --test api openapi and commit the diff"
    );
}

#[tokio::test]
async fn every_documented_route_is_served() {
    let app = spawn_app().await;
    let doc: Value = reqwest::get(format!("{}/api/v1/openapi.json", app.base)).await.unwrap().json().await.unwrap();
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        let concrete = path
            .replace("{id}", "0193a8f2-7c1e-7d3a-9b2f-5e8d4c3b2a10")
            .replace("{entity}", "contact")
            .replace("{key}", "nokey")
            .replace("{name}", "nopipeline")
            .replace("{email}", "nobody@example.com");
        for method in ["get", "post", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            let m = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let body = (m != Method::GET).then(|| serde_json::json!({}));
            let (status, answer) = app.api(&app.key, m.clone(), &concrete, body).await;
            let unrouted = status == StatusCode::METHOD_NOT_ALLOWED
                || (status == StatusCode::NOT_FOUND && answer["error"]["message"] == "no such API route");
            assert!(!unrouted, "{m} {path} is documented but not served: {status} {answer}");
            checked += 1;
        }
    }
    assert!(checked > 50, "only {checked} operations");
    for admin in ["/keys", "/keys/{id}/rotate", "/users/{email}", "/audit", "/connect"] {
        assert!(doc["paths"].get(admin).is_some(), "{admin} is served but not documented");
    }
}

#[tokio::test]
async fn the_docs_page_serves_everything_itself() {
    let app = spawn_app().await;
    let page = reqwest::get(format!("{}/api/docs", app.base)).await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && csp.contains("connect-src 'self'"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"spec-url="/api/v1/openapi.json""#) && html.contains(r#"load-fonts="false""#));
    for src in html.split("src=\"").skip(1).map(|s| s.split('"').next().unwrap()) {
        assert!(src.starts_with('/'), "{src} is not served by Rapport");
        let res = reqwest::get(format!("{}{src}", app.base)).await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{src}");
    }
    let license = reqwest::get(format!("{}/api/docs/LICENSE.txt", app.base)).await.unwrap().text().await.unwrap();
    assert!(license.starts_with("MIT License"));
    let (status, _) = app.api(&app.key, Method::GET, "/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK, "with a key as well as without");
}

#[tokio::test]
async fn metrics_answer_loopback_and_the_token_only() {
    let mut args = crate::helpers::serve_args();
    args.trusted_proxies = vec!["127.0.0.1/32".into()];
    args.metrics_token = Some("s3cret-metrics-token".into());
    let app = crate::helpers::spawn_app_with(args).await;
    app.api(&app.key, Method::GET, "/contacts", None).await;
    app.api(&app.key, Method::GET, "/contacts/0193a8f2-7c1e-7d3a-9b2f-5e8d4c3b2a10", None).await;
    app.api("rpk_wrong", Method::GET, "/contacts", None).await;
    let url = format!("{}/metrics", app.base);
    let local = app.client.get(&url).send().await.unwrap();
    assert_eq!(local.status(), StatusCode::OK);
    let text = local.text().await.unwrap();
    for series in [
        r#"rapport_http_requests_total{route="/api/v1/contacts",method="GET",status="200"} 1"#,
        r#"rapport_http_requests_total{route="/api/v1/contacts/{id}",method="GET",status="404"} 1"#,
        r#"rapport_http_request_duration_seconds_bucket{route="/api/v1/contacts",le="+Inf"} "#,
        r#"rapport_auth_failures_total{code="malformed_api_key"} 1"#,
        r#"rapport_tool_calls_total{tool="search_records",outcome="ok"} 1"#,
        "# TYPE rapport_webhook_deliveries_total counter",
        r#"rapport_db_pool_connections{pool="#,
    ] {
        assert!(text.contains(series), "no {series} in:\n{text}");
    }
    // Through the proxy, a remote caller: refused, unless it brings the token.
    let remote = app.client.get(&url).header("x-forwarded-for", "203.0.113.9").send().await.unwrap();
    assert_eq!(remote.status(), StatusCode::FORBIDDEN);
    let wrong = app.client.get(&url).header("x-forwarded-for", "203.0.113.9").bearer_auth("nope").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let with = app
        .client
        .get(&url)
        .header("x-forwarded-for", "203.0.113.9")
        .bearer_auth("s3cret-metrics-token")
        .send()
        .await
        .unwrap();
    assert_eq!(with.status(), StatusCode::OK);
    assert!(!format!("{:?}", app.state.settings).contains("s3cret"), "the token never prints");
}
