//! Engines that accept TCP connections and never answer, and ports that refuse them: every
//! call ends with a typed `Timeout`/`Unavailable` within its configured timeout (a refusal
//! at once), never a hang. Figures go to RELIABILITY.md.
#![cfg(all(feature = "bullmq", feature = "temporal", feature = "n8n"))]

use std::time::{Duration, Instant};

use orchestrator::{
    BackendHandle, ErrorKind, N8nOptions, ScheduleRequest, TaskId, TaskOptions, TemporalOptions,
};
use orchestrator_testkit::engines::{HttpReply, HttpServer, SilentPort, refused_port};
use serde_json::json;

const LIMIT: Duration = Duration::from_secs(1);

/// The id key of the n8n backends here, so the silent one accepts an id the answering one
/// issued.
const ID_KEY: &str = "black-hole-test-key";

fn n8n_config(url: String) -> orchestrator::n8n::N8nConfig {
    let mut cfg = orchestrator::n8n::N8nConfig::new(url)
        .api_key("k")
        .delivery(LIMIT, 1, Duration::from_millis(10));
    cfg.id_key = Some(orchestrator::Secret::new(ID_KEY));
    cfg
}

/// An n8n task id with an execution id, signed with [`ID_KEY`]: issued by a backend whose
/// "n8n" is a local sink answering every webhook with execution 7.
async fn signed_n8n_id() -> TaskId {
    let sink = HttpServer::start(|_| {
        HttpReply::Json(
            json!({"executionId": "7"}),
            vec!["x-n8n-execution-id: 7".into()],
        )
    });
    let url = sink.url.clone();
    let b = orchestrator::n8n::N8nBackend::new(n8n_config(url.clone())).expect("n8n");
    let request = ScheduleRequest::new(
        "q",
        json!({}),
        TaskOptions::integration(N8nOptions::webhook(format!("{url}/webhook/x"))),
    )
    .expect("valid");
    BackendHandle::new(b)
        .schedule(request)
        .await
        .expect("signed by the sink")
}

fn backends(port: u16, n8n_id: &TaskId) -> Vec<(BackendHandle, TaskOptions, TaskId)> {
    let bullmq = orchestrator::bullmq::BullmqBackend::new(
        orchestrator::bullmq::BullmqConfig::new(format!("redis://127.0.0.1:{port}"))
            .timeouts(LIMIT, LIMIT),
    )
    .expect("bullmq");
    let mut temporal =
        orchestrator::temporal::TemporalConfig::new(format!("http://127.0.0.1:{port}"));
    temporal.connect_timeout_ms = orchestrator::Millis::from_duration(LIMIT);
    temporal.rpc_timeout_ms = orchestrator::Millis::from_duration(LIMIT);
    let temporal = orchestrator::temporal::TemporalBackend::new(temporal).expect("temporal");
    let n8n = orchestrator::n8n::N8nBackend::new(n8n_config(format!("http://127.0.0.1:{port}")))
        .expect("n8n");
    vec![
        (
            BackendHandle::new(bullmq),
            TaskOptions::simple(),
            "bullmq:q:1".parse().expect("id"),
        ),
        (
            BackendHandle::new(temporal),
            TaskOptions::complex(TemporalOptions::new("wf", "q")),
            "temporal:wf:00000000-0000-4000-8000-000000000000"
                .parse()
                .expect("id"),
        ),
        (
            BackendHandle::new(n8n),
            TaskOptions::integration(N8nOptions::webhook(format!(
                "http://127.0.0.1:{port}/webhook/x"
            ))),
            n8n_id.clone(),
        ),
    ]
}

/// Run `call`, return (elapsed, error kind).
async fn timed<T: std::fmt::Debug>(
    call: impl std::future::Future<Output = orchestrator::Result<T>>,
) -> (Duration, Option<ErrorKind>) {
    let t = Instant::now();
    // The outer bound only catches a hang; the backend's own timeout must come first.
    let r = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the call hung for 30 s");
    (t.elapsed(), r.err().map(|e| e.kind()))
}

/// Run a bulk `call`: (elapsed, the error kind every task got). A task scheduled, or tasks
/// failing with different kinds (other than `NotSent` after the first failure), fail the
/// test.
async fn timed_bulk(
    call: impl std::future::Future<Output = orchestrator::Result<Vec<orchestrator::Result<TaskId>>>>,
) -> (Duration, Option<ErrorKind>) {
    let t = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(30), call)
        .await
        .expect("the bulk call hung for 30 s");
    let took = t.elapsed();
    let results = match r {
        Err(e) => return (took, Some(e.kind())),
        Ok(results) => results,
    };
    let kinds: Vec<ErrorKind> = results
        .iter()
        .map(|r| {
            r.as_ref()
                .expect_err("a task was scheduled on a dead engine")
        })
        .filter(|e| !matches!(e, orchestrator::Error::NotSent { .. }))
        .map(orchestrator::Error::kind)
        .collect();
    assert!(
        kinds.windows(2).all(|w| w[0] == w[1]),
        "mixed errors: {kinds:?}"
    );
    (took, kinds.first().copied())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_refusing_engines_fail_typed_within_the_timeout() {
    let hole = SilentPort::bind();
    let (silent, closed) = (hole.port, refused_port());
    let n8n_id = signed_n8n_id().await;
    // A refusal is `Unavailable` at once (a generous bound: 200 tasks of a bulk and a loaded
    // machine); a silence is `Timeout` after the 1 s limit, except on Temporal, whose
    // client cannot tell a silent server from a missing one (`Unavailable`, "no server
    // answered", documented).
    for (label, port, bound) in [
        ("never answers", silent, LIMIT + Duration::from_millis(900)),
        ("refuses", closed, Duration::from_millis(900)),
    ] {
        for (b, options, id) in backends(port, &n8n_id) {
            let expected = match (label, b.descriptor().kind) {
                ("refuses", _) | (_, "temporal") => ErrorKind::Unavailable,
                _ => ErrorKind::Timeout,
            };
            let name = b.name().to_string();
            let request = ScheduleRequest::new("q", json!({}), options.clone()).expect("valid");
            let mut calls = vec![("schedule", timed(b.schedule(request)).await)];
            calls.push(("health", timed(b.health()).await));
            calls.push(("status", timed(b.status(&id)).await));
            calls.push(("cancel", timed(b.cancel(&id)).await));
            // A wait whose deadline is far: the first failed read ends it.
            calls.push(("wait", timed(b.wait(&id, Duration::from_secs(20))).await));
            let bulk: Vec<ScheduleRequest> = (0..200)
                .map(|_| ScheduleRequest::new("q", json!({}), options.clone()).expect("valid"))
                .collect();
            calls.push(("bulk", timed_bulk(b.schedule_bulk(bulk)).await));
            for (op, (took, kind)) in calls {
                println!("{name:<8} {label:<14} {op:<8} {kind:?} after {took:?}");
                assert_eq!(kind, Some(expected), "{name} {op} on a port that {label}");
                assert!(
                    took <= bound,
                    "{name} {op} on a port that {label} took {took:?}"
                );
            }
        }
    }
}
