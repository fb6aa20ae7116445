//! The durable outbox on a real Redis and a real n8n: with n8n down, schedules succeed and
//! show queued/retrying; a dispatcher restart loses nothing; once n8n is up every dispatch
//! is delivered exactly once (n8n's executions list proves it). `list` and `counts` show
//! the undelivered dispatches from Redis alone, and the delivered ones as their executions,
//! under the ids `schedule` returned.

mod support;

use orchestrator_testkit::Checked;
use std::time::{Duration, Instant};

use backend_n8n::N8nOptions;
use backend_n8n::{N8nBackend, N8nConfig, OutboxConfig};
use orchestrator_core::raw::Backend;
use orchestrator_core::{
    CancelOutcome, ListFilter, Origin, ScheduleRequest, TaskId, TaskOptions, TaskState, TaskStatus,
};
use orchestrator_testkit::engines::{RedisServer, free_port};
use serde_json::{Value, json};
use support::N8nServer;

fn config(n8n_port: u16, redis: &RedisServer, prefix: &str) -> N8nConfig {
    N8nConfig::new(format!("http://127.0.0.1:{n8n_port}"))
        .delivery(Duration::from_secs(5), 3, Duration::from_millis(100))
        .outbox(OutboxConfig::new(redis.url()).prefix(prefix).retries(
            500,
            Duration::from_millis(500),
            Duration::from_secs(10),
        ))
}

/// Every task `b` lists, in pages of 2, with `status` checked to agree on each.
async fn listed(b: &N8nBackend) -> Vec<TaskStatus> {
    let mut out: Vec<TaskStatus> = Vec::new();
    let mut resume: Option<String> = None;
    for _ in 0..100 {
        let page = b
            .checked()
            .list(&ListFilter::all(), resume.as_deref(), 2)
            .await
            .expect("list");
        resume = page
            .tasks
            .last()
            .map(|l| l.resume.clone())
            .or(page.end.clone())
            .or(resume);
        for l in page.tasks {
            let s = b.status(&l.status.task_id).await.expect("status");
            assert_eq!(
                (s.state, s.origin, s.created_at),
                (l.status.state, l.status.origin, l.status.created_at),
                "{}",
                s.task_id
            );
            assert!(
                out.iter().all(|o| o.task_id != s.task_id),
                "{} twice",
                s.task_id
            );
            out.push(l.status);
        }
        if page.exhausted {
            return out;
        }
    }
    panic!("the listing did not end");
}

async fn pending_dispatches_survive_n8n_down_and_a_dispatcher_restart() {
    let redis = RedisServer::start();
    let port = free_port();
    let prefix = format!("outbox-test-{}", orchestrator_core::raw::now_ms());
    let webhook = format!("http://127.0.0.1:{port}/webhook/orchestrator-test");
    let opts = || TaskOptions::integration(N8nOptions::webhook(webhook.clone()));

    // n8n is down: every schedule is accepted at once and stays pending.
    let first = N8nBackend::new(config(port, &redis, &prefix)).expect("backend");
    let t = Instant::now();
    let mut ids = Vec::new();
    for i in 0..5 {
        let req = ScheduleRequest::new("outbox", json!({"i": i}), opts()).expect("valid");
        ids.push(
            first
                .checked()
                .schedule(req)
                .await
                .expect("accepted while n8n is down"),
        );
    }
    assert!(
        t.elapsed() < Duration::from_secs(2),
        "schedule must not wait for n8n"
    );
    let cancelled = first
        .checked()
        .schedule(ScheduleRequest::new("outbox", json!({"i": "cancelled"}), opts()).expect("valid"))
        .await
        .expect("accepted");
    // A dispatch the dispatcher holds at this instant ("delivering") cannot be cancelled;
    // with n8n down that lasts one refused connection, then it is back to "retrying".
    let deadline = Instant::now() + Duration::from_secs(5);
    let outcome = loop {
        match first.cancel(&cancelled).await.expect("cancel") {
            CancelOutcome::NotCancellableRunning if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => break other,
        }
    };
    assert_eq!(outcome, CancelOutcome::Cancelled);
    tokio::time::sleep(Duration::from_millis(800)).await;
    for id in &ids {
        let s = first.status(id).await.expect("status");
        assert!(
            matches!(s.state, TaskState::Pending | TaskState::Delayed),
            "{s:?}"
        );
    }
    let s = first.status(&ids[0]).await.expect("status");
    assert_eq!(
        (s.state, s.native_state.as_str()),
        (TaskState::Delayed, "retrying"),
        "{s:?}"
    );
    assert!(s.error.is_some());
    // Listed from Redis alone while n8n is down: the records stream comes first, and a page
    // it fills never asks n8n.
    let lister = N8nBackend::new(config(port, &redis, &prefix).api_key("unused")).expect("backend");
    let page = lister
        .checked()
        .list(&ListFilter::all(), None, 6)
        .await
        .expect("list with n8n down");
    let mut scheduled: std::collections::HashSet<TaskId> = ids.iter().cloned().collect();
    scheduled.insert(cancelled.clone());
    let got: std::collections::HashSet<TaskId> = page
        .tasks
        .iter()
        .map(|l| l.status.task_id.clone())
        .collect();
    assert_eq!(got, scheduled);
    for l in &page.tasks {
        let want = if l.status.task_id == cancelled {
            TaskState::Cancelled
        } else {
            first.status(&l.status.task_id).await.expect("status").state
        };
        assert_eq!(
            (l.status.state, l.status.origin),
            (want, Origin::Orchestrator)
        );
    }

    // The dispatcher's process goes away.
    drop(first);

    // n8n comes up on the same port; a new process (new backend) takes over.
    let port_arg = port.to_string();
    let server = N8nServer::start_version(&support::n8n_default_version(), &["--port", &port_arg]);
    let second =
        N8nBackend::new(config(port, &redis, &prefix).api_key(server.api_key())).expect("backend");
    second.start_dispatcher();
    for (i, id) in ids.iter().enumerate() {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let s = second.status(id).await.expect("status");
            if s.state == TaskState::Completed {
                // This task's own payload came back, not just some payload.
                assert_eq!(
                    s.result.as_ref().expect("result")["received"],
                    json!({"i": i}),
                    "{s:?}"
                );
                break;
            }
            assert!(Instant::now() < deadline, "not delivered: {s:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    assert_eq!(
        second.status(&cancelled).await.expect("status").state,
        TaskState::Cancelled
    );

    // Exactly once: n8n ran the workflow once per dispatch, and never for the cancelled one.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let list = support::executions(&server, "otSyncEcho000001", 250).await;
    // Every execution of the workflow, whatever it received: exactly the five dispatched
    // payloads, the cancelled one absent.
    let executions = list["data"].as_array().expect("data");
    let mut seen: Vec<String> = executions
        .iter()
        .map(|e| {
            e.pointer("/data/resultData/runData/Echo/0/data/main/0/0/json/received")
                .cloned()
                .unwrap_or(Value::Null)
                .to_string()
        })
        .collect();
    seen.sort();
    let expected: Vec<String> = (0..5).map(|i| json!({"i": i}).to_string()).collect();
    assert_eq!(seen, expected, "{list}");
    assert!(
        !seen.contains(&json!({"i": "cancelled"}).to_string()),
        "n8n ran the cancelled dispatch"
    );

    // Delivered: each listed once, as its execution, under the id `schedule` returned; the
    // cancelled one as its record. Counts agree.
    let all = listed(&second).await;
    let got: std::collections::HashSet<TaskId> = all.iter().map(|s| s.task_id.clone()).collect();
    assert_eq!(got, scheduled);
    let of = |state| all.iter().filter(|s| s.state == state).count() as u64;
    assert_eq!((of(TaskState::Completed), of(TaskState::Cancelled)), (5, 1));
    let counts = second
        .checked()
        .counts(&ListFilter::all())
        .await
        .expect("counts");
    let mut counts: Vec<(TaskState, u64)> = counts.into_iter().filter(|(_, n)| *n > 0).collect();
    counts.sort_by_key(|(s, _)| s.as_str());
    assert_eq!(
        counts,
        [(TaskState::Cancelled, 1), (TaskState::Completed, 5)]
    );
    let by_name = second
        .checked()
        .counts(&ListFilter::all().with_name("outbox"))
        .await
        .expect("counts");
    assert_eq!(by_name.iter().map(|(_, n)| n).sum::<u64>(), 6);
}

orchestrator_testkit::engine_tests! {
    [Redis, N8n] async: pending_dispatches_survive_n8n_down_and_a_dispatcher_restart;
}
