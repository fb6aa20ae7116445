//! A Temporal dev server (persisted with `--db-filename`) SIGKILLed and restarted while
//! workflows run (issue #15): nothing is lost, running workflows finish after the restart,
//! and the same backend and Rust worker carry on. Prints its figures (`-- --nocapture`).

mod support;

use orchestrator_testkit::Checked;
use std::time::{Duration, Instant};

use backend_temporal::TemporalOptions;
use orchestrator_core::raw::Backend;
use orchestrator_core::{ScheduleRequest, TaskId, TaskOptions, TaskState};
use serde_json::json;
use support::{TemporalServer, TestWorker, unique};

fn sleep_for(queue: &str, secs: u64) -> ScheduleRequest {
    ScheduleRequest::new(
        "restart",
        json!(null),
        TaskOptions::complex(TemporalOptions::new("sleep", queue).args(vec![json!(secs)])),
    )
    .expect("valid")
}

/// Wait until every id reads a finished state, retrying errors the backend calls retryable
/// (the client reconnects after the restart); panics after `timeout`.
async fn all_finished(
    b: &dyn Backend,
    ids: &[TaskId],
    timeout: Duration,
) -> Vec<orchestrator_core::TaskStatus> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        loop {
            match b.status(id).await {
                Ok(s) if s.state.is_finished() => {
                    out.push(s);
                    break;
                }
                Ok(s) => assert!(Instant::now() < deadline, "{id} still {s:?}"),
                Err(e) => {
                    assert!(e.is_retryable(), "{id}: {e}");
                    assert!(Instant::now() < deadline, "{id}: {e}");
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    out
}

async fn a_dev_server_restart_loses_no_workflow() {
    let dir = std::env::temp_dir().join(unique("temporal-db"));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut server = TemporalServer::start_persistent(dir.join("temporal.db")).await;
    let b = support::backend(&server);
    let q = unique("restart");
    let mut worker = TestWorker::start(&b, &q).await;
    let mut done_before = Vec::new();
    for _ in 0..10 {
        done_before.push(
            b.checked()
                .schedule(sleep_for(&q, 0))
                .await
                .expect("schedule"),
        );
    }
    all_finished(&b, &done_before, Duration::from_secs(30)).await;
    let mut running = Vec::new();
    for _ in 0..10 {
        running.push(
            b.checked()
                .schedule(sleep_for(&q, 4))
                .await
                .expect("schedule"),
        );
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for id in &running {
        assert_eq!(
            b.status(id).await.expect("status").state,
            TaskState::Running
        );
    }

    let killed = Instant::now();
    server.restart().await;
    let down = killed.elapsed();
    let restarted = Instant::now();
    // Workflows started while the server was just back.
    let mut after = Vec::new();
    for _ in 0..5 {
        let id = loop {
            match b.checked().schedule(sleep_for(&q, 0)).await {
                Ok(id) => break id,
                Err(e) => {
                    assert!(e.is_retryable(), "{e}");
                    assert!(restarted.elapsed() < Duration::from_secs(30), "{e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        after.push(id);
    }
    let before = all_finished(&b, &done_before, Duration::from_secs(30)).await;
    assert!(
        before.iter().all(|s| s.state == TaskState::Completed),
        "{before:?}"
    );
    let sleepers = all_finished(&b, &running, Duration::from_secs(60)).await;
    let sleepers_done = restarted.elapsed();
    assert!(
        sleepers
            .iter()
            .all(|s| s.state == TaskState::Completed && s.result == Some(json!("slept"))),
        "{sleepers:?}"
    );
    let new = all_finished(&b, &after, Duration::from_secs(60)).await;
    let all_done = restarted.elapsed();
    assert!(
        new.iter().all(|s| s.state == TaskState::Completed),
        "{new:?}"
    );
    println!(
        "FIGURES temporal_restart: 10 completed + 10 running (4 s timers) when the dev server \
         was SIGKILLed; back serving {:.1} s later (same --db-filename); after the restart: 10 \
         completed still COMPLETED, 10 running COMPLETED with their result {:.1} s after it, 5 \
         started after it COMPLETED ({:.1} s); lost 0; same backend and Rust worker throughout",
        down.as_secs_f64(),
        sleepers_done.as_secs_f64(),
        all_done.as_secs_f64(),
    );
    worker.stop().expect("the worker ran cleanly");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}

orchestrator_testkit::engine_tests! {
    [Temporal] async: a_dev_server_restart_loses_no_workflow;
}
