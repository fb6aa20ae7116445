//! The HTTP API on real engines: a Redis (a Rust worker serving one queue), a Temporal dev
//! server (a Python worker) and n8n behind one server. Every route answers for each engine
//! with its source, ids with `:`, `/`, `{` and `%` travel percent-encoded, and each error
//! status of the kind table comes from a real engine's refusal: invalid input, unknown id,
//! a duplicate workflow id, an option an engine cannot honour, refused engine credentials,
//! a stopped Redis, a silent one past the request timeout (and the monitoring cap meanwhile).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orchestrator::bullmq::{BullmqBackend, BullmqConfig, JobContext, WorkerConfig};
use orchestrator::n8n::{N8nBackend, N8nConfig};
use orchestrator::temporal::{TemporalBackend, TemporalConfig};
use orchestrator::{Orchestrator, TaskType};
use orchestrator_server::ServerConfig;
use orchestrator_testkit::engines::{
    N8nServer, RedisServer, SilentPort, TemporalServer, python_worker, unique,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// `orch` served on a free loopback port until the test ends; its base URL.
async fn serve(orch: Orchestrator, config: ServerConfig) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr: SocketAddr = listener.local_addr().expect("addr");
    tokio::spawn(orchestrator_server::serve_on(
        orch,
        config,
        listener,
        std::future::pending(),
    ));
    format!("http://{addr}")
}

/// A task id as one path segment.
fn segment(id: &str) -> String {
    id.replace('%', "%25")
        .replace('/', "%2F")
        .replace(':', "%3A")
        .replace('{', "%7B")
        .replace('}', "%7D")
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(base: String) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("client");
        Self { base, http }
    }

    /// `method path` with an optional JSON body: the status and the JSON answer.
    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut r = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            r = r.json(&b);
        }
        let r = r.send().await.expect("request");
        let status = r.status();
        let v = r.json().await.unwrap_or(Value::Null);
        (status, v)
    }

    /// `POST /v1/tasks`: the new task's id (panics unless `201`).
    async fn schedule(&self, name: &str, payload: Value, options: Value) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/v1/tasks",
                Some(json!({"name": name, "payload": payload, "options": options})),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        v["taskId"].as_str().expect("taskId").to_string()
    }

    /// `POST /v1/tasks/{id}/wait` until the task finishes (30 s).
    async fn finished(&self, id: &str) -> Value {
        let (s, v) = self
            .call(
                "POST",
                &format!("/v1/tasks/{}/wait?timeout=30s", segment(id)),
                None,
            )
            .await;
        assert_eq!(
            (s, v["outcome"].as_str()),
            (StatusCode::OK, Some("FINISHED")),
            "{v}"
        );
        v["status"].clone()
    }

    /// The problem answered to `method path`: its status and kind.
    async fn problem(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let (s, v) = self.call(method, path, body).await;
        assert_eq!(v["status"], s.as_u16(), "not a problem: {v}");
        (
            s.as_u16(),
            v["kind"].as_str().unwrap_or_default().to_string(),
        )
    }
}

async fn every_route_and_error_status_on_real_engines() {
    let (mut redis, temporal) = (RedisServer::start(), TemporalServer::start().await);
    let n8n = N8nServer::start();
    let pyq = unique("httppy");
    let _python = python_worker(&temporal, &pyq, 300).await;
    let bullmq = BullmqBackend::new(BullmqConfig::new(redis.url())).expect("bullmq");
    let n8n_config = N8nConfig::new(n8n.url()).api_key(n8n.api_key());
    let orch = Orchestrator::builder()
        .backend(Arc::new(bullmq.clone()))
        .backend(Arc::new(
            TemporalBackend::new(TemporalConfig::new(temporal.url())).expect("temporal"),
        ))
        .backend(Arc::new(N8nBackend::new(n8n_config).expect("n8n")))
        .route(TaskType::Simple, "bullmq")
        .route(TaskType::Complex, "temporal")
        .route(TaskType::Integration, "n8n")
        .build()
        .expect("orchestrator");
    let served = unique("httpq");
    let _worker = bullmq
        .worker(
            &served,
            WorkerConfig::default(),
            |ctx: JobContext<Value>| async move { Ok(json!({ "echo": ctx.data })) },
        )
        .await
        .expect("worker");
    let api = Api::new(serve(orch.clone(), ServerConfig::default()).await);
    let hidden = Api::new(
        serve(
            orch.clone(),
            ServerConfig {
                hide_results: true,
                ..ServerConfig::default()
            },
        )
        .await,
    );

    // One task per engine, scheduled, waited on and read back with its source.
    // `py_echo(obj, n)` and `py_sleep(seconds)`.
    let temporal_options = |wf: &str, id: &str| {
        let args = if wf == "py_echo" {
            json!([{"from": "http"}, 1])
        } else {
            json!([60])
        };
        json!({"taskType": "COMPLEX", "temporal": {
            "workflowType": wf, "taskQueue": pyq, "workflowId": id, "idConflictPolicy": "FAIL",
            "workflowArgs": args
        }})
    };
    let simple = api
        .schedule(&served, json!({"n": 1}), json!({"taskType": "SIMPLE"}))
        .await;
    // A workflow id with every character a path must encode.
    let odd = format!("{}/a{{b}}%c:d", unique("wf"));
    let complex = api
        .schedule("flow", Value::Null, temporal_options("py_echo", &odd))
        .await;
    let integration = api
        .schedule(
            "hook",
            json!({"n": 3}),
            json!({"taskType": "INTEGRATION", "n8n": {"workflowId": "otConfEcho000001"}}),
        )
        .await;
    for (id, source) in [
        (&simple, "BULLMQ"),
        (&complex, "TEMPORAL"),
        (&integration, "N8N"),
    ] {
        let done = api.finished(id).await;
        assert_eq!(
            (done["state"].as_str(), done["source"].as_str()),
            (Some("COMPLETED"), Some(source)),
            "{done}"
        );
        let (s, read) = api
            .call("GET", &format!("/v1/tasks/{}", segment(id)), None)
            .await;
        assert_eq!((s, &read["taskId"]), (StatusCode::OK, &json!(id)), "{read}");
        assert!(read.get("result").is_some(), "{read}");
        // A server that hides results answers the same without them.
        let (_, shown) = hidden
            .call("GET", &format!("/v1/tasks/{}", segment(id)), None)
            .await;
        assert_eq!(shown["state"], "COMPLETED", "{shown}");
        assert!(shown.get("result").is_none(), "{shown}");
    }
    assert!(complex.contains("%c:d"), "{complex}");

    // Bulk across the three engines: one id per item, in order.
    let (s, bulk) = api
        .call(
            "POST",
            "/v1/tasks:bulk",
            Some(json!({"tasks": [
                {"name": served, "payload": {"n": 2}, "options": {"taskType": "SIMPLE"}},
                {"name": "flow", "payload": null, "options": temporal_options("py_echo", &unique("bulkwf"))},
                {"name": "hook", "payload": {}, "options": {"taskType": "INTEGRATION", "n8n": {"workflowId": "otConfEcho000001"}}},
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{bulk}");
    let ids: Vec<&str> = bulk["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["taskId"].as_str().expect("an id per item"))
        .collect();
    assert_eq!(
        ids.iter().map(|i| i.split(':').next()).collect::<Vec<_>>(),
        [Some("bullmq"), Some("temporal"), Some("n8n")]
    );
    for id in &ids {
        api.finished(id).await;
    }

    // Cancel: a job nobody serves and a sleeping workflow are cancelled (200); cancelling a
    // finished task is 200 with its outcome; an unknown one is 404.
    let idle = api
        .schedule(&unique("idleq"), json!({}), json!({"taskType": "SIMPLE"}))
        .await;
    let sleeping = api
        .schedule(
            "nap",
            Value::Null,
            temporal_options("py_sleep", &unique("nap")),
        )
        .await;
    for id in [&idle, &sleeping] {
        let (s, v) = api
            .call("DELETE", &format!("/v1/tasks/{}", segment(id)), None)
            .await;
        assert_eq!((s, &v["cancelled"]), (StatusCode::OK, &json!(true)), "{v}");
    }
    let (s, v) = api
        .call("DELETE", &format!("/v1/tasks/{}", segment(&simple)), None)
        .await;
    assert_eq!(
        (s, v["outcome"].as_str(), &v["cancelled"]),
        (
            StatusCode::OK,
            Some("NOT_CANCELLABLE_FINISHED"),
            &json!(false)
        ),
        "{v}"
    );
    let (s, v) = api
        .call(
            "DELETE",
            &format!("/v1/tasks/{}", segment(&format!("bullmq:{served}:nope"))),
            None,
        )
        .await;
    assert_eq!(
        (s, v["outcome"].as_str()),
        (StatusCode::NOT_FOUND, Some("NOT_FOUND")),
        "{v}"
    );

    // List and counts with the list's filters.
    let (s, page) = api
        .call(
            "GET",
            &format!("/v1/tasks?backend=bullmq&name={served}&limit=10"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{page}");
    let listed: Vec<&str> = page["tasks"]
        .as_array()
        .expect("tasks")
        .iter()
        .filter_map(|t| t["taskId"].as_str())
        .collect();
    assert!(
        listed.contains(&simple.as_str()) && listed.contains(&ids[0]),
        "{page}"
    );
    let (s, counts) = api.call("GET", "/v1/counts?type=simple", None).await;
    assert_eq!(
        (s, &counts["errors"]),
        (StatusCode::OK, &json!([])),
        "{counts}"
    );
    let (s, ready) = api.call("GET", "/readyz", None).await;
    assert_eq!(s, StatusCode::OK, "{ready}");
    assert_eq!(
        ready["backends"].as_array().map(Vec::len),
        Some(3),
        "{ready}"
    );

    // Each error status from a real engine's answer.
    assert_eq!(
        api.problem(
            "POST",
            "/v1/tasks",
            Some(json!({"name": "", "options": {"taskType": "SIMPLE"}}))
        )
        .await,
        (400, "INVALID_INPUT".into())
    );
    assert_eq!(
        api.problem(
            "GET",
            &format!(
                "/v1/tasks/{}",
                segment(&format!(
                    "temporal:{}:00000000-0000-4000-8000-000000000000",
                    unique("none")
                ))
            ),
            None
        )
        .await,
        (404, "NOT_FOUND".into())
    );
    let taken = unique("taken");
    api.schedule("nap", Value::Null, temporal_options("py_sleep", &taken))
        .await;
    assert_eq!(
        api.problem(
            "POST",
            "/v1/tasks",
            Some(json!({"name": "nap", "payload": null, "options": temporal_options("py_sleep", &taken)}))
        )
        .await,
        (409, "ALREADY_EXISTS".into())
    );
    let mut delayed = temporal_options("py_echo", &unique("late"));
    delayed["delay"] = json!(1000);
    assert_eq!(
        api.problem(
            "POST",
            "/v1/tasks",
            Some(json!({"name": "late", "options": delayed}))
        )
        .await,
        (422, "UNSUPPORTED".into())
    );

    // n8n refusing our API key is 502 (never 401, which is for this server's token).
    let wrong_key = Orchestrator::builder()
        .backend(Arc::new(
            N8nBackend::new(N8nConfig::new(n8n.url()).api_key("not-the-key")).expect("n8n"),
        ))
        .build()
        .expect("orchestrator");
    let refused = Api::new(serve(wrong_key, ServerConfig::default()).await);
    assert_eq!(
        refused
            .problem("GET", &format!("/v1/tasks/{}", segment(&integration)), None)
            .await,
        (502, "UNAUTHORIZED".into())
    );

    // A silent Redis: the engine's own timeout is 504 with kind TIMEOUT; this server's
    // read timeout, shorter, is 504 of the HTTP layer; while one `list` waits on it, a
    // second monitoring request is 429 at once.
    let silent = SilentPort::bind();
    let blackholed = Orchestrator::builder()
        .backend(Arc::new(
            BullmqBackend::new(BullmqConfig::new(format!(
                "redis://127.0.0.1:{}",
                silent.port
            )))
            .expect("bullmq"),
        ))
        .build()
        .expect("orchestrator");
    let status_path = format!("/v1/tasks/{}", segment(&simple));
    let capped = Api::new(
        serve(
            blackholed.clone(),
            ServerConfig {
                max_monitor_requests: 1,
                ..ServerConfig::default()
            },
        )
        .await,
    );
    assert_eq!(
        capped.problem("GET", &status_path, None).await,
        (504, "TIMEOUT".into())
    );
    let (held, second) = tokio::join!(capped.call("GET", "/v1/tasks?timeout=2s", None), async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        capped.problem("GET", "/v1/counts", None).await
    });
    assert_eq!(second, (429, String::new()));
    // The held `list` ends naming the silent instance.
    assert_eq!(
        (held.0, held.1["errors"][0]["kind"].as_str()),
        (StatusCode::OK, Some("TIMEOUT")),
        "{}",
        held.1
    );
    let slow = Api::new(
        serve(
            blackholed,
            ServerConfig {
                request_timeout: Duration::from_millis(300),
                ..ServerConfig::default()
            },
        )
        .await,
    );
    let started = std::time::Instant::now();
    let (s, v) = slow.call("GET", &status_path, None).await;
    assert!(
        s == StatusCode::GATEWAY_TIMEOUT
            && v["type"] == "about:blank"
            && started.elapsed() < Duration::from_millis(900),
        "{s} after {:?}: {v}",
        started.elapsed()
    );

    // A stopped Redis: scheduling is 503 (retryable) and the server is not ready.
    redis.stop();
    let (s, v) = api
        .call(
            "POST",
            "/v1/tasks",
            Some(json!({"name": served, "options": {"taskType": "SIMPLE"}})),
        )
        .await;
    assert_eq!(
        (s, v["kind"].as_str(), &v["retryable"]),
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Some("UNAVAILABLE"),
            &json!(true)
        ),
        "{v}"
    );
    let (s, ready) = api.call("GET", "/readyz", None).await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
}

orchestrator_testkit::engine_tests! {
    [Redis, Temporal, Python, N8n] async: every_route_and_error_status_on_real_engines;
}
