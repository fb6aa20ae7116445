//! Cross-language interop with the real Node BullMQ package (`interop/node6`, or the
//! major in `BULLMQ_NODE_MAJOR`), on a throwaway Redis per test.

mod support;

use backend_bullmq_compat::BullmqBackend;
use backend_bullmq_compat::spec::JobOptionsExt;
use orchestrator_testkit::Checked;
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_bullmq_compat::{HandlerError, JobContext, WorkerConfig};
use orchestrator_core::raw::Backend;
use orchestrator_core::{Backoff, CancelOutcome, ScheduleRequest, TaskOptions, TaskState};
use orchestrator_testkit::conformance::wait_finished;
use serde_json::{Value, json};
use support::{RedisServer, node, node_spawn, unique};

macro_rules! engines {
    () => {{
        let redis = RedisServer::start();
        support::node_dir(support::node_major());
        redis
    }};
}

async fn schedule(
    b: &BullmqBackend,
    queue: &str,
    data: Value,
    o: TaskOptions,
) -> orchestrator_core::TaskId {
    b.checked()
        .schedule(ScheduleRequest::new(queue, data, o).expect("valid"))
        .await
        .expect("schedule")
}

async fn rust_schedules_node_worker_processes() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("r2n");
    let plain = schedule(
        &b,
        &q,
        json!({"x": 1, "s": "héllo ✓"}),
        TaskOptions::simple(),
    )
    .await;
    let custom = schedule(
        &b,
        &q,
        json!({"x": 2}),
        TaskOptions::simple().job_id("order-1").job_name("custom"),
    )
    .await;
    let out = node(&redis.url(), "worker.js", &[&q, "echo"]).await;
    let processed = out["processed"].as_array().expect("processed");
    assert_eq!(processed.len(), 2, "{out}");
    assert_eq!(processed[1]["name"], "custom");
    // What Node saw: our job ids, our data, a first attempt.
    for (seen, (id, data)) in processed.iter().zip([
        (&plain, json!({"x": 1, "s": "héllo ✓"})),
        (&custom, json!({"x": 2})),
    ]) {
        let job_id = id.native().split_once(':').expect("native").1;
        assert_eq!(seen["id"], json!(job_id), "{seen}");
        assert_eq!(seen["data"], data, "{seen}");
        assert_eq!(seen["attemptsMade"], json!(0), "{seen}");
    }
    assert_eq!(processed[1]["id"], "order-1");
    for id in [&plain, &custom] {
        let s = b.status(id).await.expect("status");
        assert_eq!(s.state, TaskState::Completed, "{s:?}");
        assert_eq!(s.result.as_ref().expect("result")["node"], json!(true));
        assert_eq!(s.attempts_made, 1);
        assert!(s.finished_at.is_some());
    }
    assert_eq!(
        b.status(&plain).await.expect("status").result.expect("r")["data"]["s"],
        "héllo ✓"
    );
}

async fn node_adds_rust_worker_processes() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("n2r");
    let added = node(
        &redis.url(),
        "add.js",
        &[
            &q,
            r#"[{"name":"a","data":{"x":1}},{"name":"b","data":{"x":2}}]"#,
        ],
    )
    .await;
    let worker = b
        .worker(&q, WorkerConfig::default().name("rust-w"), |ctx: JobContext<Value>| async move {
            Ok::<_, HandlerError>(json!({"ok": ctx.data["x"]}))
        })
        .await
        .expect("worker");
    let ids: Vec<String> = added["ids"]
        .as_array()
        .expect("ids")
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect();
    for id in &ids {
        let tid = orchestrator_core::TaskId::new("bullmq", &format!("{q}:{id}")).expect("id");
        wait_finished(&b.checked(), &tid, Duration::from_secs(10)).await;
    }
    worker.close(Duration::from_secs(5)).await.expect("close");
    let mut args = vec![q.as_str()];
    args.extend(ids.iter().map(String::as_str));
    let got = node(&redis.url(), "get.js", &args).await;
    let jobs = got["jobs"].as_array().expect("jobs");
    assert_eq!(jobs.len(), ids.len(), "{got}");
    for (i, job) in jobs.iter().enumerate() {
        assert_eq!(job["state"], "completed", "{job}");
        assert_eq!(job["returnvalue"], json!({"ok": i + 1}), "{job}");
        assert!(job["finishedOn"].as_u64().is_some(), "{job}");
        assert_eq!(job["attemptsMade"], 1);
    }
}

async fn mixed_node_and_rust_workers_process_every_job_once() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("mixed");
    let n = 300;
    let requests: Vec<ScheduleRequest> = (0..n)
        .map(|i| {
            ScheduleRequest::new(q.as_str(), json!({"i": i}), TaskOptions::simple()).expect("valid")
        })
        .collect();
    let ids: Vec<_> = b
        .checked()
        .schedule_bulk(requests)
        .await
        .expect("bulk")
        .into_iter()
        .map(|r| r.expect("scheduled"))
        .collect();
    let node_worker = node_spawn(&redis.url(), "worker.js", &[&q, "paced", "1500", "5"]);
    // Node starts slower than a Rust worker drains 300 jobs: wait until Node has completed
    // a job, so "both languages served the queue" is a fact the test can check.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    'node_ready: loop {
        for id in ids.iter().take(20) {
            let s = b.status(id).await.expect("status");
            if s.result.as_ref().is_some_and(|r| r["node"] == json!(true)) {
                break 'node_ready;
            }
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the Node worker never took a job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = Arc::new(Mutex::new(Vec::<i64>::new()));
    let rust_seen = seen.clone();
    let worker = b
        .worker(
            &q,
            WorkerConfig::default().concurrency(5),
            move |ctx: JobContext<Value>| {
                let seen = rust_seen.clone();
                async move {
                    seen.lock()
                        .expect("seen")
                        .push(ctx.data["i"].as_i64().expect("i"));
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    Ok::<_, HandlerError>(json!("rust"))
                }
            },
        )
        .await
        .expect("worker");
    for id in &ids {
        let s = wait_finished(&b.checked(), id, Duration::from_secs(30)).await;
        assert_eq!(s.state, TaskState::Completed);
    }
    worker.close(Duration::from_secs(5)).await.expect("close");
    let out = node_worker.wait_with_output().await.expect("node output");
    assert!(
        out.status.success(),
        "the Node worker exited with {}",
        out.status
    );
    let node_out: Value = serde_json::from_slice(&out.stdout).expect("json");
    support::assert_node_bullmq(&node_out);
    let node_seen: Vec<i64> = node_out["processed"]
        .as_array()
        .expect("p")
        .iter()
        .map(|p| p["data"]["i"].as_i64().expect("i"))
        .collect();
    let rust_seen = seen.lock().expect("seen").clone();
    let all: Vec<i64> = node_seen.iter().chain(rust_seen.iter()).copied().collect();
    let distinct: HashSet<i64> = all.iter().copied().collect();
    assert_eq!(
        all.len(),
        n,
        "a job ran twice or was lost: node {} + rust {}",
        node_seen.len(),
        rust_seen.len()
    );
    assert_eq!(distinct.len(), n);
    // Both languages really served the queue.
    assert!(
        !node_seen.is_empty() && !rust_seen.is_empty(),
        "node {} / rust {}",
        node_seen.len(),
        rust_seen.len()
    );
    println!(
        "mixed: node processed {}, rust processed {}",
        node_seen.len(),
        rust_seen.len()
    );
}

async fn priority_and_delay_order_hold_across_languages() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("order");
    let started = orchestrator_core::raw::now_ms();
    schedule(
        &b,
        &q,
        json!("delayed"),
        TaskOptions::simple().delay(Duration::from_millis(1000)),
    )
    .await;
    for p in [3u32, 1, 2] {
        schedule(
            &b,
            &q,
            json!(format!("p{p}")),
            TaskOptions::simple().priority(p),
        )
        .await;
    }
    schedule(&b, &q, json!("plain"), TaskOptions::simple()).await;
    let out = node(&redis.url(), "worker.js", &[&q, "echo", "2500"]).await;
    let order: Vec<Value> = out["processed"]
        .as_array()
        .expect("p")
        .iter()
        .map(|p| p["data"].clone())
        .collect();
    assert_eq!(
        order,
        vec![
            json!("plain"),
            json!("p1"),
            json!("p2"),
            json!("p3"),
            json!("delayed")
        ]
    );
    let delayed_at = out["processed"][4]["at"].as_u64().expect("at");
    assert!(
        delayed_at >= started + 1000,
        "delayed job ran {} ms after scheduling",
        delayed_at - started
    );

    // The other direction: Node adds, the Rust worker pops in the same order.
    let q2 = unique("order2");
    node(&redis.url(), "add.js", &[&q2, r#"[{"name":"j","data":"p3","opts":{"priority":3}},{"name":"j","data":"p1","opts":{"priority":1}},{"name":"j","data":"plain"}]"#]).await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let w = b
        .worker(
            &q2,
            WorkerConfig::default(),
            move |ctx: JobContext<Value>| {
                let s2 = s2.clone();
                async move {
                    s2.lock().expect("seen").push(ctx.data);
                    Ok::<_, HandlerError>(Value::Null)
                }
            },
        )
        .await
        .expect("worker");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    w.close(Duration::from_secs(5)).await.expect("close");
    assert_eq!(
        *seen.lock().expect("seen"),
        vec![json!("plain"), json!("p1"), json!("p3")]
    );
}

async fn fails_twice_then_succeeds_reports_three_attempts_on_both_sides() {
    let redis = engines!();
    let b = support::backend(&redis);
    // Rust schedules, Node's worker fails twice.
    let q = unique("retry");
    let opts = TaskOptions::simple()
        .attempts(3)
        .backoff(Backoff::exponential(100));
    let id = schedule(&b, &q, json!({}), opts).await;
    let out = node(&redis.url(), "worker.js", &[&q, "fail-twice", "2000"]).await;
    let at: Vec<u64> = out["processed"]
        .as_array()
        .expect("p")
        .iter()
        .map(|p| p["at"].as_u64().expect("at"))
        .collect();
    assert_eq!(at.len(), 3, "{out}");
    assert!(
        at[1] - at[0] >= 100 && at[2] - at[1] >= 200,
        "exponential gaps: {at:?}"
    );
    let s = b.status(&id).await.expect("status");
    assert_eq!(
        (s.state, s.attempts_made),
        (TaskState::Completed, 3),
        "{s:?}"
    );
    let job_id = id.native().split_once(':').expect("native").1.to_string();
    let got = node(&redis.url(), "get.js", &[&q, &job_id]).await;
    assert_eq!(got["jobs"][0]["attemptsMade"], 3);

    // Node adds, the Rust worker fails twice.
    let q2 = unique("retry2");
    let added = node(&redis.url(), "add.js", &[&q2, r#"[{"name":"j","data":{},"opts":{"attempts":3,"backoff":{"type":"exponential","delay":100}}}]"#]).await;
    let w = b
        .worker(
            &q2,
            WorkerConfig::default(),
            |ctx: JobContext<Value>| async move {
                if ctx.attempt < 3 {
                    Err::<Value, HandlerError>(
                        format!("rust attempt {} failed", ctx.attempt).into(),
                    )
                } else {
                    Ok(json!("third time"))
                }
            },
        )
        .await
        .expect("worker");
    let id2 = orchestrator_core::TaskId::new(
        "bullmq",
        &format!("{q2}:{}", added["ids"][0].as_str().expect("id")),
    )
    .expect("id");
    let s = wait_finished(&b.checked(), &id2, Duration::from_secs(10)).await;
    w.close(Duration::from_secs(5)).await.expect("close");
    assert_eq!(
        (s.state, s.attempts_made),
        (TaskState::Completed, 3),
        "{s:?}"
    );
    let got = node(
        &redis.url(),
        "get.js",
        &[&q2, added["ids"][0].as_str().expect("id")],
    )
    .await;
    assert_eq!(got["jobs"][0]["attemptsMade"], 3);
    assert_eq!(got["jobs"][0]["returnvalue"], "third time");
}

async fn custom_id_duplicates_add_nothing() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("dup");
    let first = schedule(
        &b,
        &q,
        json!({"v": 1}),
        TaskOptions::simple().job_id("order-7"),
    )
    .await;
    let second = schedule(
        &b,
        &q,
        json!({"v": 2}),
        TaskOptions::simple().job_id("order-7"),
    )
    .await;
    assert_eq!(first, second);
    let out = node(
        &redis.url(),
        "add.js",
        &[
            &q,
            r#"[{"name":"x","data":{"v":3},"opts":{"jobId":"order-7"}}]"#,
        ],
    )
    .await;
    assert_eq!(out["ids"][0], "order-7");
    assert_eq!(out["counts"]["waiting"], 1, "{out}");
    let got = node(&redis.url(), "get.js", &[&q, "order-7"]).await;
    assert_eq!(
        got["jobs"][0]["data"],
        json!({"v": 1}),
        "the first payload stays"
    );
}

async fn cancelled_delayed_job_never_reaches_a_node_worker() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("cancel");
    let id = schedule(
        &b,
        &q,
        json!("never"),
        TaskOptions::simple().delay(Duration::from_millis(300)),
    )
    .await;
    let keep = schedule(
        &b,
        &q,
        json!("kept"),
        TaskOptions::simple().delay(Duration::from_millis(300)),
    )
    .await;
    assert_eq!(
        b.cancel(&id).await.expect("cancel"),
        CancelOutcome::Cancelled
    );
    let out = node(&redis.url(), "worker.js", &[&q, "echo", "1500"]).await;
    let data: Vec<Value> = out["processed"]
        .as_array()
        .expect("p")
        .iter()
        .map(|p| p["data"].clone())
        .collect();
    assert_eq!(data, vec![json!("kept")]);
    assert_eq!(
        b.status(&id).await.expect("remembered").state,
        TaskState::Cancelled
    );
    assert_eq!(
        b.status(&keep).await.expect("status").state,
        TaskState::Completed
    );
}

async fn node_queue_events_see_rust_worker_events() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("events");
    let events = node_spawn(&redis.url(), "events.js", &[&q, "2"]);
    tokio::time::sleep(Duration::from_millis(700)).await; // let QueueEvents connect
    let ok = schedule(&b, &q, json!({"ok": true}), TaskOptions::simple()).await;
    let bad = schedule(&b, &q, json!({"ok": false}), TaskOptions::simple()).await;
    let w = b
        .worker(
            &q,
            WorkerConfig::default(),
            |ctx: JobContext<Value>| async move {
                ctx.progress(json!(50)).await.map_err(|e| e.to_string())?;
                if ctx.data["ok"] == json!(true) {
                    Ok::<_, HandlerError>(json!({"done": 1}))
                } else {
                    Err("bad job".into())
                }
            },
        )
        .await
        .expect("worker");
    wait_finished(&b.checked(), &ok, Duration::from_secs(10)).await;
    wait_finished(&b.checked(), &bad, Duration::from_secs(10)).await;
    w.close(Duration::from_secs(5)).await.expect("close");
    let v = support::node_output(events, Duration::from_secs(25)).await;
    support::assert_node_bullmq(&v);
    assert!(v.get("timeout").is_none(), "events.js timed out: {v}");
    let evs = v["events"].as_array().expect("events");
    let job =
        |id: &orchestrator_core::TaskId| json!(id.native().split_once(':').expect("native").1);
    let of = |event: &str, id: &orchestrator_core::TaskId| -> Vec<Value> {
        evs.iter()
            .filter(|e| e["event"] == event && e["jobId"] == job(id))
            .cloned()
            .collect()
    };
    let completed = of("completed", &ok);
    assert_eq!(completed.len(), 1, "{v}");
    assert_eq!(completed[0]["returnvalue"], json!({"done": 1}), "{v}");
    let failed = of("failed", &bad);
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["failedReason"], "bad job", "{v}");
    assert!(
        of("completed", &bad).is_empty() && of("failed", &ok).is_empty(),
        "{v}"
    );
    for id in [&ok, &bad] {
        assert!(
            of("progress", id).iter().any(|e| e["data"] == json!(50)),
            "{id}: {v}"
        );
        assert_eq!(of("active", id).len(), 1, "{id}: {v}");
    }
}

/// Our cancel script removes a job as BullMQ's `removeJob` does: Node sees a `removed` event
/// with the job's previous state, the job is gone for Node, and its deduplication id is free.
async fn node_sees_a_rust_cancel_as_bullmq_removal() {
    let redis = engines!();
    let b = support::backend(&redis);
    let q = unique("removed");
    let events = node_spawn(&redis.url(), "events.js", &[&q, "4"]);
    tokio::time::sleep(Duration::from_millis(700)).await; // let QueueEvents connect
    let dedup = TaskOptions::simple().deduplication("d1", None);
    let waiting = schedule(&b, &q, json!("w"), dedup.clone()).await;
    let delayed = schedule(
        &b,
        &q,
        json!("d"),
        TaskOptions::simple().delay(Duration::from_secs(60)),
    )
    .await;
    let prioritized = schedule(&b, &q, json!("p"), TaskOptions::simple().priority(5)).await;
    let added = node(
        &redis.url(),
        "add.js",
        &[&q, r#"[{"name":"from-node","data":"n"}]"#],
    )
    .await;
    let node_id = added["ids"][0].as_str().expect("node id").to_string();
    let from_node =
        orchestrator_core::TaskId::new("bullmq", &format!("{q}:{node_id}")).expect("id");
    for id in [&waiting, &delayed, &prioritized, &from_node] {
        assert_eq!(
            b.cancel(id).await.expect("cancel"),
            CancelOutcome::Cancelled,
            "{id}"
        );
        assert_eq!(
            b.cancel(id).await.expect("cancel"),
            CancelOutcome::NotCancellableFinished,
            "{id}"
        );
        assert_eq!(
            b.status(id).await.expect("remembered").state,
            TaskState::Cancelled
        );
    }
    let job =
        |id: &orchestrator_core::TaskId| id.native().split_once(':').expect("native").1.to_string();
    let ids: Vec<String> = [&waiting, &delayed, &prioritized, &from_node]
        .map(job)
        .to_vec();
    let mut args = vec![q.as_str()];
    args.extend(ids.iter().map(String::as_str));
    let got = node(&redis.url(), "get.js", &args).await;
    for j in got["jobs"].as_array().expect("jobs") {
        assert_eq!(j["state"], "missing", "{got}");
    }
    for (state, n) in got["counts"].as_object().expect("counts") {
        assert_eq!(n, &json!(0), "{state} count after the cancels: {got}");
    }
    let v = support::node_output(events, Duration::from_secs(25)).await;
    assert!(v.get("timeout").is_none(), "events.js timed out: {v}");
    let removed: Vec<(String, String)> = v["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["event"] == "removed")
        .map(|e| {
            (
                e["jobId"].as_str().unwrap_or_default().to_string(),
                e["prev"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let expected: Vec<(String, String)> = ids
        .iter()
        .cloned()
        .zip(["wait", "delayed", "prioritized", "wait"].map(String::from))
        .collect();
    assert_eq!(removed, expected, "{v}");
    // The deduplication id died with its job: the same id schedules a new job.
    let again = schedule(&b, &q, json!("w2"), dedup).await;
    assert_ne!(again, waiting);
}

orchestrator_testkit::engine_tests! {
    [Redis, Node] async: rust_schedules_node_worker_processes, node_adds_rust_worker_processes, mixed_node_and_rust_workers_process_every_job_once, priority_and_delay_order_hold_across_languages, fails_twice_then_succeeds_reports_three_attempts_on_both_sides, custom_id_duplicates_add_nothing, cancelled_delayed_job_never_reaches_a_node_worker, node_queue_events_see_rust_worker_events, node_sees_a_rust_cancel_as_bullmq_removal;
}
