//! `orchestrator worker --exec` against a real Redis, including a worker killed with
//! SIGKILL mid-job whose job another worker recovers.
#![cfg(feature = "bullmq")]

use std::time::Duration;

use orchestrator::testkit::conformance::wait_finished;
use orchestrator::{Backend, ScheduleRequest, TaskOptions, TaskState};
use orchestrator_testkit::engines::{RedisServer, unique};
use serde_json::json;

fn bullmq(redis: &RedisServer) -> orchestrator::bullmq::BullmqBackend {
    orchestrator::bullmq::BullmqBackend::new(orchestrator::bullmq::BullmqConfig::new(redis.url()))
        .expect("backend")
}

fn worker(url: &str, queue: &str, exec: &str, extra: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["worker", queue, "--exec", exec])
        .args(extra)
        .env("ORCHESTRATOR_BULLMQ_URL", url)
        .kill_on_drop(true)
        .spawn()
        .expect("spawn worker")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_worker_returns_stdout_and_fails_on_nonzero_exit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = bullmq(&redis);
    let q = unique("exec");
    let mut w = worker(
        &redis.url(),
        &q,
        r#"if grep -q fail; then echo "it failed" >&2; exit 3; fi; echo "{\"attempt\": $ORCHESTRATOR_ATTEMPT}""#,
        &["--concurrency", "2"],
    );
    let ok = b
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({"x": "ok"}), TaskOptions::simple())
                .expect("req"),
        )
        .await
        .expect("schedule");
    let bad = b
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({"x": "fail"}), TaskOptions::simple())
                .expect("req"),
        )
        .await
        .expect("schedule");
    let s = wait_finished(&b, &ok, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!({"attempt": 1})));
    let s = wait_finished(&b, &bad, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.error.as_deref(), Some("it failed"));
    let _ = w.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_job_loses_nothing() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = bullmq(&redis);
    let q = unique("sigkill");
    let stall = [
        "--lock-duration-ms",
        "1000",
        "--stalled-interval-ms",
        "1000",
    ];
    let id = b
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({"n": 42}), TaskOptions::simple()).expect("req"),
        )
        .await
        .expect("schedule");
    let mut first = worker(&redis.url(), &q, "sleep 60", &stall);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let s = b.status(&id).await.expect("status");
        if s.state == TaskState::Running {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never started: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    first.start_kill().expect("SIGKILL"); // tokio's kill is SIGKILL
    first.wait().await.expect("reaped");
    let killed = tokio::time::Instant::now();
    let mut second = worker(&redis.url(), &q, "cat", &stall);
    let s = wait_finished(&b, &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!({"n": 42})));
    println!(
        "FIGURES worker_sigkill: the job completed on a second worker {:.2} s after the first \
         was SIGKILLed (lock 1 s, stalled check every 1 s)",
        killed.elapsed().as_secs_f64()
    );
    let _ = second.kill().await;
}

/// A worker serving instance `bullmq-eu` (configured through the instance environment
/// syntax, human durations): its child sees task ids of that instance and can itself call
/// `orchestrator status` with the per-job variables set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_of_the_worker_can_call_the_cli_on_its_own_task() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let eu = orchestrator::bullmq::BullmqBackend::named(
        "bullmq-eu",
        orchestrator::bullmq::BullmqConfig::new(redis.url()),
    )
    .expect("backend");
    let q = unique("child");
    let exec = format!(
        r#"{} status "$ORCHESTRATOR_TASK_ID" --json"#,
        env!("CARGO_BIN_EXE_orchestrator")
    );
    let mut w = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["worker", &q, "--exec", &exec, "--backend", "bullmq-eu"])
        .args(["--lock-duration", "10s", "--grace", "2s"])
        // The command's environment is cleared: pass what the child's CLI needs.
        .args(["--env", "ORCHESTRATOR_BACKENDS__BULLMQ_EU__KIND"])
        .args(["--env", "ORCHESTRATOR_BACKENDS__BULLMQ_EU__URL"])
        .env("ORCHESTRATOR_BACKENDS__BULLMQ_EU__KIND", "bullmq")
        .env("ORCHESTRATOR_BACKENDS__BULLMQ_EU__URL", redis.url())
        .env("ORCHESTRATOR_LOG", "info")
        .kill_on_drop(true)
        .spawn()
        .expect("spawn worker");
    let id = eu
        .schedule(ScheduleRequest::new(q.as_str(), json!({}), TaskOptions::simple()).expect("req"))
        .await
        .expect("schedule");
    assert!(id.to_string().starts_with("bullmq-eu:"), "{id}");
    let s = wait_finished(&eu, &id, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    // The child's `orchestrator status` saw its own task running.
    let seen = s.result.expect("the child's status JSON");
    assert_eq!(seen["taskId"], json!(id.to_string()), "{seen}");
    assert_eq!(seen["state"], json!("RUNNING"), "{seen}");
    let _ = w.kill().await;
}

/// `orchestrator wait ID`: exit 0 and the status when the task completed; exit 1 when it
/// failed, was cancelled or still runs at the deadline; exit 2 for a bad `--timeout`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_exits_by_outcome() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let url = redis.url();
    let wait = |id: String, timeout: &'static str| {
        let url = url.clone();
        tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args(["wait", &id, "--timeout", timeout, "--json"])
            .env("ORCHESTRATOR_BULLMQ_URL", url)
            .env("ORCHESTRATOR_ROUTE_SIMPLE", "bullmq")
            .output()
    };
    let b = bullmq(&redis);
    let q = unique("wait");
    let add = |data: serde_json::Value| {
        let b = b.clone();
        let q = q.clone();
        async move {
            b.schedule(ScheduleRequest::new(q.as_str(), data, TaskOptions::simple()).expect("req"))
                .await
                .expect("schedule")
        }
    };
    // Nothing serves the queue yet: still waiting at the deadline.
    let ok = add(json!({"x": "ok"})).await;
    let out = wait(ok.to_string(), "300ms").await.expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["state"], "PENDING", "{v}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("still"),
        "{out:?}"
    );

    let pending_wait = tokio::spawn(wait(ok.to_string(), "20s"));
    let bad = add(json!({"x": "fail"})).await;
    let mut w = worker(
        &redis.url(),
        &q,
        r#"if grep -q fail; then echo "it failed" >&2; exit 3; fi; echo '{"done": true}'"#,
        &[],
    );
    let out = pending_wait.await.expect("join").expect("run");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(
        (v["state"].clone(), v["result"].clone()),
        (json!("COMPLETED"), json!({"done": true}))
    );
    let out = wait(bad.to_string(), "20s").await.expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["state"], "FAILED", "{v}");
    let _ = w.kill().await;

    // Cancelled while waited on.
    let cancelled = add(json!({"x": "never"})).await;
    let waiting = tokio::spawn(wait(cancelled.to_string(), "20s"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(b.cancel(&cancelled).await.expect("cancel").is_cancelled());
    let out = waiting.await.expect("join").expect("run");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["state"], "CANCELLED", "{v}");

    let out = wait(cancelled.to_string(), "soon").await.expect("run");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

async fn schedule_data(
    b: &orchestrator::bullmq::BullmqBackend,
    q: &str,
    data: serde_json::Value,
) -> orchestrator::TaskId {
    b.schedule(ScheduleRequest::new(q, data, TaskOptions::simple()).expect("req"))
        .await
        .expect("schedule")
}

/// The exec worker's contract: pipes pumped together (a command that writes 200 KB before
/// reading its 100 KB of input completes), stdout capped (`yes` fails the attempt at the
/// cap), a timeout kills the whole process group, and the command's environment holds no
/// secret of the worker's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_worker_pumps_caps_times_out_and_clears_the_environment() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = bullmq(&redis);
    let url = redis.url();
    let spawn = |q: &str, exec: &str, extra: &[&str]| {
        tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args(["worker", q, "--exec", exec])
            .args(extra)
            .env("ORCHESTRATOR_BULLMQ_URL", &url)
            .env("WORKER_SECRET", "s3cr3t-value")
            .env("PASSED_ON", "visible")
            .kill_on_drop(true)
            .spawn()
            .expect("spawn worker")
    };

    // Write-first: 200 KB out before reading 100 KB in.
    let q = unique("writefirst");
    let mut w = spawn(
        &q,
        r#"head -c 200000 /dev/zero | tr '\0' ' '; wc -c | tr -d ' \n' | sed 's/.*/{"read": &}/'"#,
        &[],
    );
    let id = schedule_data(&b, &q, json!({"blob": "x".repeat(100_000)})).await;
    let s = wait_finished(&b, &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!({"read": 100_011})), "{s:?}");
    let _ = w.kill().await;

    // `yes` never ends: the attempt fails at the stdout cap.
    let q = unique("yes");
    let mut w = spawn(&q, "yes", &["--max-stdout", "1MiB"]);
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b, &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert!(
        s.error
            .as_deref()
            .unwrap_or("")
            .contains("stdout exceeded 1048576 bytes"),
        "{s:?}"
    );
    let _ = w.kill().await;

    // A command (and its grandchild) past --timeout: both killed.
    let q = unique("timeout");
    let pidfile = std::env::temp_dir().join(unique("grandchild.pid"));
    let exec = format!("sleep 300 & echo $! > {}; wait", pidfile.display());
    let mut w = spawn(&q, &exec, &["--timeout", "1s"]);
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b, &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    assert!(
        s.error
            .as_deref()
            .unwrap_or("")
            .contains("timed out after 1s"),
        "{s:?}"
    );
    let pid = std::fs::read_to_string(&pidfile).expect("pid file");
    // Gone, or a zombie nobody reaped yet (PID 1 of a container may not reap).
    let alive = || {
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .map(|stat| {
                !stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .trim_start()
                    .starts_with('Z')
            })
            .unwrap_or(false)
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    while alive() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        !alive(),
        "the grandchild {} survived the timeout",
        pid.trim()
    );
    let _ = std::fs::remove_file(&pidfile);
    let _ = w.kill().await;

    // The environment: PATH and the per-job variables, `--env` names, no worker secret.
    let q = unique("env");
    let mut w = spawn(
        &q,
        r#"python3 -c 'import json, os; print(json.dumps(dict(os.environ)))'"#,
        &["--env", "PASSED_ON"],
    );
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b, &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    let env = s.result.expect("the environment");
    assert!(env.get("PATH").is_some(), "{env}");
    assert_eq!(env["PASSED_ON"], "visible", "{env}");
    assert_eq!(env["ORCHESTRATOR_TASK_ID"], json!(id.to_string()), "{env}");
    let text = env.to_string();
    assert!(
        !text.contains("s3cr3t-value"),
        "a worker secret reached the job: {env}"
    );
    assert!(env.get("ORCHESTRATOR_BULLMQ_URL").is_none(), "{env}");
    let _ = w.kill().await;
}

/// SIGTERM during a job: the job finishes and the worker exits within the grace, with Redis
/// up; with Redis down the worker still exits within grace + a few seconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_running_job_and_exits_in_bounded_time() {
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let b = bullmq(&redis);
    for redis_down in [false, true] {
        let q = unique("sigterm");
        let mut w = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args(["worker", &q, "--exec", r#"sleep 2; echo '{"done": true}'"#])
            .args(["--grace", "5s"])
            .env("ORCHESTRATOR_BULLMQ_URL", redis.url())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn worker");
        let id = schedule_data(&b, &q, json!({})).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while b.status(&id).await.expect("status").state != TaskState::Running {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the job never started"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if redis_down {
            redis.stop();
        }
        let pid = pid_of(&w);
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let started = tokio::time::Instant::now();
        let status = tokio::time::timeout(Duration::from_secs(15), w.wait())
            .await
            .expect("the worker exited in bounded time")
            .expect("wait");
        let took = started.elapsed();
        println!("SIGTERM (Redis down: {redis_down}): exited in {took:?} with {status}");
        assert!(took < Duration::from_secs(5 + 6), "took {took:?}");
        if !redis_down {
            assert!(status.success(), "{status}");
            let s = b.status(&id).await.expect("status");
            assert_eq!(
                s.state,
                TaskState::Completed,
                "the running job finished: {s:?}"
            );
        }
    }
}

fn pid_of(child: &tokio::process::Child) -> String {
    child.id().expect("running").to_string()
}

/// A payload whose JSON is exactly `size` bytes: `{"blob":"xxx…"}`.
fn payload_of(size: usize) -> String {
    format!(r#"{{"blob":"{}"}}"#, "x".repeat(size - 11))
}

/// Payloads at and just over the bullmq limit (1 MiB) through the CLI and the exec worker:
/// `schedule --data @FILE` at exactly the limit is scheduled and the command reads all of
/// it on stdin; one byte more is refused in one line and nothing reaches Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_at_and_over_the_limit_through_the_cli_and_the_exec_worker() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let b = bullmq(&redis);
    let q = unique("limit");
    let limit = orchestrator::validate::DEFAULT_MAX_PAYLOAD_SIMPLE;
    let dir = std::env::temp_dir().join(unique("payloads"));
    std::fs::create_dir_all(&dir).expect("dir");
    let schedule = |size: usize| {
        let file = dir.join(format!("{size}.json"));
        std::fs::write(&file, payload_of(size)).expect("write");
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORCHESTRATOR_")) {
            cmd.env_remove(k);
        }
        cmd.args(["schedule", &q, "--type", "simple", "--json", "--data"])
            .arg(format!("@{}", file.display()))
            .env("ORCHESTRATOR_BULLMQ_URL", redis.url())
            .output()
            .expect("run orchestrator")
    };
    let dbsize = || async {
        let mut conn = redis::Client::open(redis.url())
            .expect("client")
            .get_multiplexed_async_connection()
            .await
            .expect("conn");
        redis::cmd("DBSIZE")
            .query_async::<u64>(&mut conn)
            .await
            .expect("dbsize")
    };
    let before = dbsize().await;
    let over = schedule(limit + 1);
    assert_eq!(over.status.code(), Some(1), "{over:?}");
    let err = String::from_utf8_lossy(&over.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&limit.to_string()), "{err}");
    assert_eq!(dbsize().await, before, "a refused payload wrote to Redis");

    let at = schedule(limit);
    assert!(at.status.success(), "{at:?}");
    let v: serde_json::Value = serde_json::from_slice(&at.stdout).expect("json");
    let id: orchestrator::TaskId = v["taskId"].as_str().expect("taskId").parse().expect("id");
    let mut w = worker(&redis.url(), &q, "wc -c", &[]);
    let s = wait_finished(&b, &id, Duration::from_secs(30)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    // The command read the whole payload (the worker may end it with a newline).
    let read = s
        .result
        .as_ref()
        .and_then(serde_json::Value::as_u64)
        .expect("wc -c");
    assert!(
        read == limit as u64 || read == limit as u64 + 1,
        "read {read} bytes"
    );
    let _ = w.kill().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A worker started before Redis waits for it (as Node BullMQ workers do): it retries
/// every `--retry-delay`, serves once Redis is up, stops at once on SIGTERM while waiting,
/// and exits 1 at once when Redis refuses its credentials (retrying cannot help).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_started_before_redis_waits_for_it() {
    let port = orchestrator_testkit::engines::free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let q = unique("early");
    let mut w = worker(&url, &q, "echo 1", &["--retry-delay", "200ms"]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        w.try_wait().expect("try_wait").is_none(),
        "the worker gave up"
    );
    let Some(redis) = RedisServer::start_on(port, &[]) else {
        return;
    };
    let b = bullmq(&redis);
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b, &id, Duration::from_secs(15)).await;
    assert_eq!(s.result, Some(json!(1)), "{s:?}");
    let _ = w.kill().await;

    // SIGTERM while waiting for a Redis that never comes.
    let nowhere = format!(
        "redis://127.0.0.1:{}",
        orchestrator_testkit::engines::free_port()
    );
    let mut w = worker(&nowhere, &q, "echo 1", &["--retry-delay", "10s"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid_of(&w)])
        .status();
    let status = tokio::time::timeout(Duration::from_secs(3), w.wait())
        .await
        .expect("stopped within 3 s")
        .expect("wait");
    assert!(status.success(), "{status}");

    // Refused credentials: no retry.
    let Some(locked) = RedisServer::start_with(&["--requirepass", "pw-x"]) else {
        return;
    };
    let mut w = worker(&locked.url(), &q, "echo 1", &["--retry-delay", "200ms"]);
    let status = tokio::time::timeout(Duration::from_secs(5), w.wait())
        .await
        .expect("exited within 5 s")
        .expect("wait");
    assert_eq!(status.code(), Some(1), "{status}");
}
