//! Every route and every guard over a real socket, on the in-memory engines: status codes,
//! problem+json bodies, the token, `Host` and `Origin` checks, the body cap.

use std::net::SocketAddr;
use std::time::Duration;

use orchestrator_server::{ServerConfig, router};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A server on a free loopback port; its base URL.
async fn start(config: ServerConfig) -> String {
    let orch = orchestrator_testkit::in_memory().orchestrator;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router(orch, config)).await });
    format!("http://{addr}")
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// A problem's status, content type and kind.
async fn problem(r: reqwest::Response) -> (StatusCode, Value) {
    let status = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert_eq!(ct, "application/problem+json", "{status}");
    let body: Value = r.json().await.expect("json");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    (status, body)
}

#[tokio::test]
async fn tasks_are_scheduled_read_waited_on_cancelled_listed_and_counted() {
    let base = start(ServerConfig::default()).await;
    let http = client();
    let r = http
        .post(format!("{base}/v1/tasks"))
        .json(&json!({"name": "emails", "payload": {"to": "a@b.c"}, "options": {"taskType": "SIMPLE", "attempts": 3}}))
        .send()
        .await
        .expect("post");
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.expect("json")["taskId"]
        .as_str()
        .expect("id")
        .to_string();
    // Ids in paths percent-encoded (`:` here) or not.
    for path in [id.clone(), id.replace(':', "%3A")] {
        let s: Value = http
            .get(format!("{base}/v1/tasks/{path}"))
            .send()
            .await
            .expect("get")
            .json()
            .await
            .expect("json");
        assert_eq!(
            (s["taskId"].as_str(), s["state"].as_str()),
            (Some(id.as_str()), Some("PENDING"))
        );
    }
    // Nobody serves the queue: the wait ends still running.
    let w: Value = http
        .post(format!("{base}/v1/tasks/{id}/wait?timeout=200ms"))
        .send()
        .await
        .expect("wait")
        .json()
        .await
        .expect("json");
    assert_eq!(w["outcome"], "STILL_RUNNING", "{w}");
    let (status, p) = problem(
        http.post(format!("{base}/v1/tasks/{id}/wait?timeout=2h"))
            .send()
            .await
            .expect("wait"),
    )
    .await;
    assert_eq!(
        (status, p["kind"].as_str()),
        (StatusCode::BAD_REQUEST, Some("INVALID_INPUT"))
    );

    // Bulk: one result per task, in order.
    let r: Value = http
        .post(format!("{base}/v1/tasks:bulk"))
        .json(&json!({"tasks": [
            {"name": "emails", "payload": {"n": 1}},
            {"name": "flow", "payload": null, "options": {"taskType": "COMPLEX", "temporal": {"workflowType": "flow", "taskQueue": "q"}}}
        ]}))
        .send()
        .await
        .expect("bulk")
        .json()
        .await
        .expect("json");
    let results = r["results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{r}");
    assert!(results.iter().all(|x| x["taskId"].is_string()), "{r}");

    // List and counts, with the list's filters as query parameters.
    let page: Value = http
        .get(format!("{base}/v1/tasks?type=simple&limit=1"))
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(1), "{page}");
    let next = page["next"].as_str().expect("a next page").to_string();
    let page: Value = http
        .get(format!("{base}/v1/tasks"))
        .query(&[
            ("type", "SIMPLE"),
            ("limit", "5"),
            ("cursor", next.as_str()),
        ])
        .send()
        .await
        .expect("list")
        .json()
        .await
        .expect("json");
    assert_eq!(page["tasks"].as_array().map(Vec::len), Some(1), "{page}");
    assert!(page["next"].is_null(), "{page}");
    let counts: Value = http
        .get(format!("{base}/v1/counts?backend=memory-bullmq"))
        .send()
        .await
        .expect("counts")
        .json()
        .await
        .expect("json");
    let pending: u64 = counts["counts"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["state"] == "PENDING")
        .filter_map(|r| r["count"].as_u64())
        .sum();
    assert_eq!(pending, 2, "{counts}");

    // Cancel: 200 with the outcome; an unknown task 404 with the same shape.
    let c: Value = http
        .delete(format!("{base}/v1/tasks/{id}"))
        .send()
        .await
        .expect("delete")
        .json()
        .await
        .expect("json");
    assert_eq!(
        (c["outcome"].as_str(), c["cancelled"].as_bool()),
        (Some("CANCELLED"), Some(true))
    );
    let r = http
        .delete(format!("{base}/v1/tasks/memory-bullmq:emails:999"))
        .send()
        .await
        .expect("delete");
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        r.json::<Value>().await.expect("json")["outcome"],
        "NOT_FOUND"
    );

    let ready = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), StatusCode::OK);
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), StatusCode::OK);
}

#[tokio::test]
async fn errors_are_problems_with_the_table_s_status() {
    let base = start(ServerConfig::default()).await;
    let http = client();
    let cases: Vec<(reqwest::RequestBuilder, StatusCode, Option<&str>)> = vec![
        (
            http.post(format!("{base}/v1/tasks"))
                .json(&json!({"name": "", "payload": {}})),
            StatusCode::BAD_REQUEST,
            Some("INVALID_INPUT"),
        ),
        (
            http.post(format!("{base}/v1/tasks"))
                .json(&json!({"name": "x", "options": {"delay": -1}})),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            http.post(format!("{base}/v1/tasks"))
                .body("not json")
                .header("content-type", "application/json"),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            http.get(format!("{base}/v1/tasks/nonsense")),
            StatusCode::BAD_REQUEST,
            Some("INVALID_TASK_ID"),
        ),
        (
            http.get(format!("{base}/v1/tasks/memory-bullmq:emails:999")),
            StatusCode::NOT_FOUND,
            Some("NOT_FOUND"),
        ),
        (
            http.get(format!("{base}/v1/tasks/nowhere:q:1")),
            StatusCode::SERVICE_UNAVAILABLE,
            Some("NO_BACKEND"),
        ),
        (
            http.get(format!("{base}/v1/tasks?state=bogus")),
            StatusCode::BAD_REQUEST,
            Some("INVALID_INPUT"),
        ),
        (
            http.get(format!("{base}/v1/tasks?limit=0")),
            StatusCode::BAD_REQUEST,
            Some("INVALID_INPUT"),
        ),
        (
            http.get(format!("{base}/v1/tasks?cursor=junk")),
            StatusCode::BAD_REQUEST,
            Some("INVALID_INPUT"),
        ),
        (
            http.get(format!("{base}/v1/tasks?unknown=1")),
            StatusCode::BAD_REQUEST,
            None,
        ),
        (
            http.get(format!("{base}/v1/counts?state=PENDING")),
            StatusCode::BAD_REQUEST,
            Some("INVALID_INPUT"),
        ),
        (
            http.get(format!("{base}/v2/nothing")),
            StatusCode::NOT_FOUND,
            None,
        ),
    ];
    for (request, want, kind) in cases {
        let (status, body) = problem(request.send().await.expect("send")).await;
        assert_eq!(status, want, "{body}");
        if let Some(kind) = kind {
            assert_eq!(body["kind"].as_str(), Some(kind), "{body}");
        }
    }
}

#[tokio::test]
async fn the_token_host_origin_and_body_cap_guard_every_route() {
    let mut config = ServerConfig::default().token("s3cret-token");
    config.max_body_bytes = 64 * 1024;
    let base = start(config).await;
    let http = client();
    for auth in [None, Some("Bearer wrong"), Some("s3cret-token")] {
        let mut r = http.get(format!("{base}/v1/counts"));
        if let Some(a) = auth {
            r = r.header("authorization", a);
        }
        let r = r.send().await.expect("send");
        assert_eq!(
            r.headers().get("www-authenticate").map(|v| v.as_bytes()),
            Some(&b"Bearer"[..])
        );
        let (status, body) = problem(r).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(!body.to_string().contains("s3cret"), "{body}");
    }
    let ok = http
        .get(format!("{base}/v1/counts"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status(), StatusCode::OK);
    // Health answers without the token.
    let health = http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("send");
    assert_eq!(health.status(), StatusCode::OK);
    // A browser page elsewhere: refused whatever it holds.
    let (status, _) = problem(
        http.get(format!("{base}/v1/counts"))
            .bearer_auth("s3cret-token")
            .header("origin", "https://evil.example")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A body over the cap: 413.
    let big = json!({"name": "emails", "payload": {"blob": "x".repeat(100 * 1024)}});
    let (status, _) = problem(
        http.post(format!("{base}/v1/tasks"))
            .bearer_auth("s3cret-token")
            .json(&big)
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

    // With a token the Host is not checked; an allowed Origin with the token is served.
    let mut config = ServerConfig::default()
        .token("s3cret-token")
        .allow_origin("https://app.example");
    config.public_health = false;
    let base = start(config).await;
    let r = http
        .get(format!("{base}/v1/counts"))
        .bearer_auth("s3cret-token")
        .header("host", "api.example")
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
    // Health behind the token when public_health is off; readyz names no detail.
    let r = http
        .get(format!("{base}/readyz"))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let ready: Value = http
        .get(format!("{base}/readyz"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .expect("send")
        .json()
        .await
        .expect("json");
    let first = &ready["backends"][0];
    assert_eq!(
        first.as_object().map(|o| o.len()),
        Some(2),
        "only backend and ok: {ready}"
    );

    // Without a token (loopback): only the loopback host names are served.
    let base = start(ServerConfig::default()).await;
    let (status, _) = problem(
        http.get(format!("{base}/v1/counts"))
            .header("host", "rebound.example")
            .send()
            .await
            .expect("send"),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let allowed = ServerConfig::default().allow_origin("https://app.example");
    let base = start(allowed).await;
    let r = http
        .get(format!("{base}/v1/counts"))
        .header("origin", "https://app.example")
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_openapi_document_is_served_and_every_route_in_it_answers() {
    let base = start(ServerConfig::default()).await;
    let http = client();
    let doc: Value = http
        .get(format!("{base}/openapi.json"))
        .send()
        .await
        .expect("get")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc["paths"].as_object().map(|p| p.len()),
        Some(9),
        "{}",
        doc["paths"]
    );
    // Every (method, path) the document lists reaches a handler: no fallback 404, no 405.
    for (method, path) in orchestrator_server::ROUTES {
        let path = path.replace("{id}", "memory-bullmq:q:1");
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).expect("method");
        let mut r = http.request(method.clone(), format!("{base}{path}"));
        if method == reqwest::Method::POST {
            r = r.json(&json!({"name": "q", "payload": {}}));
        }
        let r = r.send().await.expect("send");
        let status = r.status();
        let text = r.text().await.expect("text");
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}");
        assert!(!text.contains("no such route"), "{method} {path}: {text}");
    }
}

/// Under the default cap a 10 MB payload (an n8n task may carry 16 MiB) is scheduled; a
/// request announcing 100 MB is refused (`413`) from its headers, before a byte of its
/// body is read: the answer comes while the client has sent 11 bytes.
#[tokio::test]
async fn the_default_body_cap_takes_ten_megabytes_and_refuses_a_hundred_unread() {
    let base = start(ServerConfig::default()).await;
    let ten = json!({
        "name": "big",
        "payload": {"blob": "x".repeat(10_000_000)},
        "options": {"taskType": "INTEGRATION", "n8n": {"webhookUrl": "http://127.0.0.1:9/webhook/big"}}
    });
    let r = client()
        .post(format!("{base}/v1/tasks"))
        .json(&ten)
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), StatusCode::CREATED, "{:?}", r.text().await);

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    s.write_all(
        format!(
            "POST /v1/tasks HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{{\"name\": \"",
            100 * 1024 * 1024
        )
        .as_bytes(),
    )
    .await
    .expect("write");
    let mut answer = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut answer))
        .await
        .expect("answered without the body")
        .expect("read");
    let head = String::from_utf8_lossy(&answer[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
}

/// `/metrics`: `404` unless the application gives the text; then the text, behind the
/// token unless made public.
#[tokio::test]
async fn metrics_are_served_only_when_configured_and_behind_the_token() {
    let http = client();
    let off = start(ServerConfig::default()).await;
    let (status, _) = problem(
        http.get(format!("{off}/metrics"))
            .send()
            .await
            .expect("get"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let mut config = ServerConfig::default().token("s3cret-token");
    config.metrics = Some(orchestrator_server::MetricsText::new(|| {
        "orchestrator_schedule_total 1\n".to_string()
    }));
    let on = start(config.clone()).await;
    let (status, _) = problem(http.get(format!("{on}/metrics")).send().await.expect("get")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let r = http
        .get(format!("{on}/metrics"))
        .bearer_auth("s3cret-token")
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/plain; version=0.0.4")
    );
    assert_eq!(
        r.text().await.expect("text"),
        "orchestrator_schedule_total 1\n"
    );
    config.public_metrics = true;
    let public = start(config).await;
    let r = http
        .get(format!("{public}/metrics"))
        .send()
        .await
        .expect("get");
    assert_eq!(r.status(), StatusCode::OK);
}
