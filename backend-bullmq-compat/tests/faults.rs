//! Bad input and faults against a real Redis: typed errors, bounded waits, no panics.

mod support;

use orchestrator_testkit::Checked;
use std::time::{Duration, Instant};

use backend_bullmq_compat::{BullmqBackend, BullmqConfig, HandlerError, JobContext, WorkerConfig};
use orchestrator_core::raw::Backend;
use orchestrator_core::{
    ErrorKind, Orchestrator, ScheduleRequest, TaskOptions, TaskState, TaskType,
};
use orchestrator_testkit::conformance::wait_finished;
use serde_json::{Value, json};
use support::{RedisServer, unique};

fn req(queue: &str) -> ScheduleRequest {
    ScheduleRequest::new(queue, json!({}), TaskOptions::simple()).expect("valid")
}

async fn redis_down_is_unavailable_within_the_timeout() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let b = BullmqBackend::new(
        BullmqConfig::new(format!("redis://127.0.0.1:{port}"))
            .timeouts(Duration::from_millis(800), Duration::from_secs(1)),
    )
    .expect("backend");
    let t = Instant::now();
    let e = b.checked().schedule(req("q")).await.expect_err("down");
    // A refused connection is `Unavailable` at once, not a timeout.
    assert_eq!(e.kind(), ErrorKind::Unavailable, "{e}");
    assert!(e.is_retryable());
    assert!(
        t.elapsed() < Duration::from_millis(700),
        "took {:?}",
        t.elapsed()
    );
    let h = b.health().await.expect_err("down");
    assert_eq!(h.kind(), ErrorKind::Unavailable, "{h}");
}

async fn refused_auth_is_typed_and_the_password_never_shows() {
    let redis = RedisServer::start_with(&["--requirepass", "s3cret-pass"]);
    for url in [
        redis.url(),
        format!("redis://:wrong-pass-xyz@127.0.0.1:{}", redis.port),
    ] {
        let b = BullmqBackend::new(
            BullmqConfig::new(url).timeouts(Duration::from_secs(2), Duration::from_secs(2)),
        )
        .expect("backend");
        let t = Instant::now();
        let e = b.checked().schedule(req("q")).await.expect_err("auth");
        assert!(t.elapsed() < Duration::from_secs(4));
        // NOAUTH (no password) and WRONGPASS are both a refusal, not an outage.
        assert_eq!(e.kind(), ErrorKind::Unauthorized, "{e}");
        assert!(!e.is_retryable(), "{e}");
        let mut text = format!("{e} {e:?} {b:?}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            text.push_str(&s.to_string());
            src = s.source();
        }
        assert!(
            !text.contains("wrong-pass-xyz") && !text.contains("s3cret-pass"),
            "{text}"
        );
    }
    let ok = BullmqBackend::new(BullmqConfig::new(format!(
        "redis://:s3cret-pass@127.0.0.1:{}",
        redis.port
    )))
    .expect("backend");
    ok.checked()
        .schedule(req("q"))
        .await
        .expect("right password works");
}

async fn wrong_type_key_is_rejected_not_a_panic() {
    let redis = RedisServer::start();
    let mut conn = support::redis_conn(&redis).await;
    let q = unique("wrongtype");
    let _: () = redis::cmd("SET")
        .arg(format!("bull:{q}:wait"))
        .arg("not a list")
        .query_async(&mut conn)
        .await
        .expect("set");
    let b = support::backend(&redis);
    let e = b.checked().schedule(req(&q)).await.expect_err("wrong type");
    assert!(
        matches!(e.kind(), ErrorKind::Rejected | ErrorKind::Unexpected),
        "{e}"
    );
    assert!(e.to_string().to_lowercase().contains("wrong"), "{e}");
}

async fn invalid_queue_names_and_payloads_are_rejected_before_io() {
    // Not even a server: validation comes first.
    let b = BullmqBackend::new(BullmqConfig::new("redis://127.0.0.1:1")).expect("backend");
    let orch = Orchestrator::builder()
        .backend(std::sync::Arc::new(b))
        .route(TaskType::Simple, "bullmq")
        .build()
        .expect("orch");
    for name in ["a:b", "", " q"] {
        let e = orch
            .schedule_simple_task(name, json!({}), TaskOptions::simple())
            .await
            .expect_err(name);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{name}: {e}");
    }
    let mut bad = std::collections::BTreeMap::new();
    bad.insert(vec![1u8], 1);
    let e = orch
        .schedule_simple_task("q", bad, TaskOptions::simple())
        .await
        .expect_err("payload");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    let e = orch
        .get_task_status("bullmq:no-job-part")
        .await
        .expect_err("malformed");
    assert_eq!(e.kind(), ErrorKind::InvalidTaskId);
    // A worker's retry delay outside 10ms..1h is refused before connecting.
    let b = BullmqBackend::new(BullmqConfig::new("redis://127.0.0.1:1")).expect("backend");
    for delay in [Duration::ZERO, Duration::from_secs(7200)] {
        let e = b
            .worker(
                "q",
                WorkerConfig::default().retry_delay(delay),
                |_: JobContext<Value>| async { Ok::<_, HandlerError>(()) },
            )
            .await
            .expect_err("retry delay");
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{delay:?}: {e}");
    }
}

async fn a_panicking_handler_fails_the_job_and_the_worker_lives() {
    let redis = RedisServer::start();
    let b = support::backend(&redis);
    let q = unique("panic");
    let w = b
        .worker(
            &q,
            WorkerConfig::default(),
            |ctx: JobContext<Value>| async move {
                if ctx.data["panic"] == json!(true) {
                    panic!("handler exploded");
                }
                Ok::<_, HandlerError>(json!("fine"))
            },
        )
        .await
        .expect("worker");
    let boom = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({"panic": true}), TaskOptions::simple())
                .expect("valid"),
        )
        .await
        .expect("schedule");
    let s = wait_finished(&b.checked(), &boom, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Failed);
    assert!(
        s.error
            .as_deref()
            .unwrap_or_default()
            .contains("handler exploded"),
        "{s:?}"
    );
    let fine = b.checked().schedule(req(&q)).await.expect("schedule");
    let s = wait_finished(&b.checked(), &fine, Duration::from_secs(10)).await;
    assert_eq!(
        s.state,
        TaskState::Completed,
        "the worker survived the panic"
    );
    w.close(Duration::from_secs(5)).await.expect("close");
}

async fn mismatched_data_fails_without_retry() {
    let redis = RedisServer::start();
    let b = support::backend(&redis);
    let q = unique("typed");
    let typed = b
        .worker(
            &q,
            WorkerConfig::default(),
            |ctx: JobContext<u32>| async move { Ok::<_, HandlerError>(ctx.data + 1) },
        )
        .await
        .expect("worker");
    // Three attempts allowed: a data mismatch must not use them.
    let wrong = b
        .checked()
        .schedule(
            ScheduleRequest::new(
                q.as_str(),
                json!({"not": "a number"}),
                TaskOptions::simple().attempts(3),
            )
            .expect("valid"),
        )
        .await
        .expect("schedule");
    let s = wait_finished(&b.checked(), &wrong, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert_eq!(s.attempts_made, 1, "{s:?}");
    assert!(
        s.error
            .as_deref()
            .unwrap_or_default()
            .contains("does not match the handler's input type"),
        "{s:?}"
    );
    let right = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), json!(41), TaskOptions::simple()).expect("valid"),
        )
        .await
        .expect("schedule");
    let s = wait_finished(&b.checked(), &right, Duration::from_secs(10)).await;
    assert_eq!(s.result, Some(json!(42)), "{s:?}");
    typed.close(Duration::from_secs(2)).await.expect("close");
}

async fn health_reports_the_redis_version() {
    let redis = RedisServer::start();
    let h = support::backend(&redis).health().await.expect("health");
    // The version the server itself reports, so the check reads the real server.
    let info = support::info(&mut support::redis_conn(&redis).await, "server").await;
    let version = info
        .lines()
        .find_map(|l| l.strip_prefix("redis_version:"))
        .expect("redis_version")
        .trim()
        .to_string();
    assert!(h.ok, "{h:?}");
    assert!(
        h.detail.starts_with(&format!("redis {version}")),
        "{h:?} vs {version}"
    );
}

orchestrator_testkit::engine_tests! {
    [Redis] async: redis_down_is_unavailable_within_the_timeout, refused_auth_is_typed_and_the_password_never_shows, wrong_type_key_is_rejected_not_a_panic, invalid_queue_names_and_payloads_are_rejected_before_io, a_panicking_handler_fails_the_job_and_the_worker_lives, mismatched_data_fails_without_retry, health_reports_the_redis_version;
}
