//! `orchestrator worker --exec` against a real Redis, including a worker killed with
//! SIGKILL mid-job whose job another worker recovers.

use orchestrator_testkit::Checked;
use std::time::Duration;

use orchestrator::raw::Backend;
use orchestrator::testkit::conformance::wait_finished;
use orchestrator::{ScheduleRequest, TaskOptions, TaskState};
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

async fn exec_worker_returns_stdout_and_fails_on_nonzero_exit() {
    let redis = RedisServer::start();
    let b = bullmq(&redis);
    let q = unique("exec");
    let mut w = worker(
        &redis.url(),
        &q,
        r#"if grep -q fail; then echo "it failed" >&2; exit 3; fi; echo "{\"attempt\": $ORCHESTRATOR_ATTEMPT}""#,
        &["--concurrency", "2"],
    );
    let ok = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({"x": "ok"}), TaskOptions::simple())
                .expect("req"),
        )
        .await
        .expect("schedule");
    let bad = b
        .checked()
        .schedule(
            ScheduleRequest::new(q.as_str(), json!({"x": "fail"}), TaskOptions::simple())
                .expect("req"),
        )
        .await
        .expect("schedule");
    let s = wait_finished(&b.checked(), &ok, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!({"attempt": 1})));
    let s = wait_finished(&b.checked(), &bad, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::Failed);
    assert_eq!(s.error.as_deref(), Some("it failed"));
    let _ = w.kill().await;
}

async fn a_worker_killed_mid_job_loses_nothing() {
    let redis = RedisServer::start();
    let b = bullmq(&redis);
    let q = unique("sigkill");
    let stall = [
        "--lock-duration-ms",
        "1000",
        "--stalled-interval-ms",
        "1000",
    ];
    let id = b
        .checked()
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
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(20)).await;
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
async fn a_child_of_the_worker_can_call_the_cli_on_its_own_task() {
    let redis = RedisServer::start();
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
        .checked()
        .schedule(ScheduleRequest::new(q.as_str(), json!({}), TaskOptions::simple()).expect("req"))
        .await
        .expect("schedule");
    assert!(id.to_string().starts_with("bullmq-eu:"), "{id}");
    let s = wait_finished(&eu.checked(), &id, Duration::from_secs(15)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    // The child's `orchestrator status` saw its own task running.
    let seen = s.result.expect("the child's status JSON");
    assert_eq!(seen["taskId"], json!(id.to_string()), "{seen}");
    assert_eq!(seen["state"], json!("RUNNING"), "{seen}");
    let _ = w.kill().await;
}

/// `orchestrator wait ID`: exit 0 and the status when the task completed; exit 1 when it
/// failed, was cancelled or still runs at the deadline; exit 2 for a bad `--timeout`.
async fn wait_exits_by_outcome() {
    let redis = RedisServer::start();
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
            b.checked()
                .schedule(
                    ScheduleRequest::new(q.as_str(), data, TaskOptions::simple()).expect("req"),
                )
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
    b.checked()
        .schedule(ScheduleRequest::new(q, data, TaskOptions::simple()).expect("req"))
        .await
        .expect("schedule")
}

/// The exec worker's contract: pipes pumped together (a command that writes 200 KB before
/// reading its 100 KB of input completes), stdout capped (`yes` fails the attempt at the
/// cap), a timeout kills the whole process group, and the command's environment holds no
/// secret of the worker's.
async fn exec_worker_pumps_caps_times_out_and_clears_the_environment() {
    let redis = RedisServer::start();
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
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!({"read": 100_011})), "{s:?}");
    let _ = w.kill().await;

    // `yes` never ends: the attempt fails at the stdout cap.
    let q = unique("yes");
    let mut w = spawn(&q, "yes", &["--max-stdout", "1MiB"]);
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(20)).await;
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
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(20)).await;
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
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(20)).await;
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
async fn sigterm_finishes_the_running_job_and_exits_in_bounded_time() {
    let mut redis = RedisServer::start();
    let b = bullmq(&redis);
    // The grace runs out while the job runs: it is killed, and this worker never records
    // its outcome (it runs again once its lock expires): exit 3, counted in the last line.
    let q = unique("sigterm-grace");
    let w = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["worker", &q, "--exec", "sleep 30", "--grace", "1s"])
        .env("ORCHESTRATOR_BULLMQ_URL", redis.url())
        .stderr(std::process::Stdio::piped())
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
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid_of(&w)])
        .status();
    let out = tokio::time::timeout(Duration::from_secs(15), w.wait_with_output())
        .await
        .expect("the worker exited in bounded time")
        .expect("wait");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr
            .lines()
            .last()
            .is_some_and(|l| l.contains("stopped: 1 job outcome(s) could not be recorded")),
        "{stderr}"
    );
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
        if redis_down {
            // The job ran, but its outcome could not be written: exit 3, not 0.
            assert_eq!(status.code(), Some(3), "{status}");
        } else {
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

/// Hardening 4 (issue #32): `wait` on a job removed when it completed reads it completed;
/// a command that leaves a process holding its stdout still ends; a failure's text is
/// escaped for the terminal.
async fn wait_removed_jobs_detached_output_and_escaped_errors() {
    let redis = RedisServer::start();
    let b = bullmq(&redis);
    let cli = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .args(args)
            .env("ORCHESTRATOR_BULLMQ_URL", redis.url())
            .output()
            .expect("run")
    };
    // removeOnComplete: the wait sees the completion, not the missing job.
    let q = unique("rmc-wait");
    let id = b
        .checked()
        .schedule(
            ScheduleRequest::new(
                q.as_str(),
                json!({"n": 1}),
                TaskOptions::from_json(json!({"removeOnComplete": true})).expect("options"),
            )
            .expect("req"),
        )
        .await
        .expect("schedule");
    let waiter = {
        let (url, id) = (redis.url(), id.to_string());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
                .args(["wait", &id, "--timeout", "20s", "--json"])
                .env("ORCHESTRATOR_BULLMQ_URL", url)
                .output()
                .expect("run")
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut w = worker(&redis.url(), &q, "sleep 0.5; cat", &[]);
    let out = waiter.await.expect("join");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("COMPLETED"), "{text}");
    let _ = w.kill().await;

    // A command that leaves a process (in a session of its own) holding stdout: the job
    // ends with the command, its pipes drained for a bounded time.
    let q = unique("detached");
    let pidfile = std::env::temp_dir().join(unique("detached-pid"));
    let cmd = format!(
        r#"setsid sh -c 'echo $$ > {}; exec sleep 30' & echo '"ok"'"#,
        pidfile.display()
    );
    let mut w = worker(&redis.url(), &q, &cmd, &[]);
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(10)).await;
    // The detached process is not the worker's to kill: the test cleans it up.
    if let Ok(pid) = std::fs::read_to_string(&pidfile) {
        let _ = std::process::Command::new("kill").arg(pid.trim()).status();
    }
    let _ = std::fs::remove_file(&pidfile);
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!("ok")));
    let _ = w.kill().await;

    // Escape sequences and newlines in a failure reach the terminal escaped.
    let q = unique("escape");
    let mut w = worker(
        &redis.url(),
        &q,
        r#"printf '\033]0;pwned\007\033[2J\nFAKE: everything is fine' >&2; exit 1"#,
        &[],
    );
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(10)).await;
    assert_eq!(s.state, TaskState::Failed, "{s:?}");
    let out = cli(&["status", &id.to_string()]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        !text.contains('\u{1b}') && !text.contains('\u{7}'),
        "{text:?}"
    );
    assert!(!text.lines().any(|l| l.starts_with("FAKE")), "{text}");
    assert!(
        text.contains("FAKE"),
        "the text is still there, escaped: {text}"
    );
    let _ = w.kill().await;
}

/// The process group of a process (field 5 of `/proc/<pid>/stat`), if it still exists.
fn pgrp_of(pid: &str) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is parenthesized and may hold spaces: split after it.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(2).map(str::to_string)
}

/// The processes of group `pgid` still alive (zombies do not count: they run nothing).
fn group_members(pgid: &str) -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|pid| pid.bytes().all(|b| b.is_ascii_digit()))
        .filter(|pid| pgrp_of(pid).as_deref() == Some(pgid))
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
                != Some(true)
        })
        .collect()
}

/// A worker SIGKILLed while its command runs takes the command down with it (issue #31):
/// the command's heartbeat stops within a second, no process of the job's group is left,
/// and the job runs again on another worker once its lock expires, and completes once.
async fn a_sigkilled_worker_takes_its_command_down() {
    let redis = RedisServer::start();
    let b = bullmq(&redis);
    let q = unique("orphan");
    let dir = std::env::temp_dir().join(unique("orphan"));
    std::fs::create_dir_all(&dir).expect("dir");
    let d = dir.display();
    // First run: note its group, then beat every 50 ms (a background child beats too, so
    // grandchildren are covered). Later runs: answer at once.
    let cmd = format!(
        r#"echo run >> {d}/runs
if [ -e {d}/started ]; then echo '"second"'; exit 0; fi
touch {d}/started
cut -d' ' -f5 /proc/$$/stat > {d}/pgid
(while :; do date +%s%N > {d}/beat-child; sleep 0.05; done) &
while :; do date +%s%N > {d}/beat; sleep 0.05; done"#
    );
    let stall = ["--lock-duration", "1s", "--stalled-interval", "1s"];
    let id = schedule_data(&b, &q, json!({})).await;
    let mut first = worker(&redis.url(), &q, &cmd, &stall);
    let beat = dir.join("beat");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while !(beat.exists() && dir.join("pgid").exists()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the command never beat"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let pgid = std::fs::read_to_string(dir.join("pgid"))
        .expect("pgid")
        .trim()
        .to_string();
    assert!(
        !group_members(&pgid).is_empty(),
        "the job's group is running"
    );
    first.start_kill().expect("SIGKILL");
    first.wait().await.expect("reaped");
    let killed = tokio::time::Instant::now();
    // Within a second both beats have stopped and the group is empty.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let left = group_members(&pgid);
    let (a, c) = (
        std::fs::read_to_string(&beat).expect("beat"),
        std::fs::read_to_string(dir.join("beat-child")).expect("beat"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (a2, c2) = (
        std::fs::read_to_string(&beat).expect("beat"),
        std::fs::read_to_string(dir.join("beat-child")).expect("beat"),
    );
    assert!(
        left.is_empty(),
        "processes of the job's group {pgid} left: {left:?}"
    );
    assert_eq!(a, a2, "the command still beats after its worker died");
    assert_eq!(
        c, c2,
        "the command's child still beats after its worker died"
    );
    // The job runs again elsewhere once its lock expires, and completes once.
    let mut second = worker(&redis.url(), &q, &cmd, &stall);
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(20)).await;
    assert_eq!(s.state, TaskState::Completed, "{s:?}");
    assert_eq!(s.result, Some(json!("second")));
    let runs = std::fs::read_to_string(dir.join("runs")).expect("runs");
    assert_eq!(
        runs.lines().count(),
        2,
        "one killed run, one completed run: {runs}"
    );
    println!(
        "FIGURES exec_orphan: command group {pgid} gone within 1 s of the worker's SIGKILL; \
         the job completed on a second worker {:.2} s after the kill (lock 1 s)",
        killed.elapsed().as_secs_f64()
    );
    let _ = second.kill().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// A worker whose Redis stops accepting writes while a job runs cannot record that job's
/// outcome: on SIGTERM it says how many outcomes were lost and exits 3 (issue #31).
async fn a_worker_that_could_not_record_an_outcome_exits_3() {
    let redis = RedisServer::start();
    let b = bullmq(&redis);
    let q = unique("unrecorded");
    let w = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["worker", &q, "--exec", r#"sleep 1; echo '{"done": true}'"#])
        .args(["--grace", "3s"])
        .env("ORCHESTRATOR_BULLMQ_URL", redis.url())
        .env("ORCHESTRATOR_BULLMQ_COMMAND_TIMEOUT_MS", "1000")
        .stderr(std::process::Stdio::piped())
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
    // Writes pause for longer than the test: the completion cannot be written.
    let mut conn = redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn");
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(30000)
        .arg("WRITE")
        .query_async(&mut conn)
        .await
        .expect("pause");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &pid_of(&w)])
        .status();
    let out = tokio::time::timeout(Duration::from_secs(20), w.wait_with_output())
        .await
        .expect("the worker exited in bounded time")
        .expect("wait");
    let _: () = redis::cmd("CLIENT")
        .arg("UNPAUSE")
        .query_async(&mut conn)
        .await
        .expect("unpause");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let last = stderr.lines().last().unwrap_or_default();
    println!(
        "FIGURES exec_unrecorded: exit {:?}, last line: {last}",
        out.status.code()
    );
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        last.contains("stopped: 1 job outcome(s) could not be recorded"),
        "{stderr}"
    );
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
async fn payloads_at_and_over_the_limit_through_the_cli_and_the_exec_worker() {
    let redis = RedisServer::start();
    let b = bullmq(&redis);
    let q = unique("limit");
    let limit = orchestrator::bullmq::spec::DEFAULT_MAX_PAYLOAD;
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
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(30)).await;
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
    let redis = RedisServer::start_on(port, &[]);
    let b = bullmq(&redis);
    let id = schedule_data(&b, &q, json!({})).await;
    let s = wait_finished(&b.checked(), &id, Duration::from_secs(15)).await;
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
    let locked = RedisServer::start_with(&["--requirepass", "pw-x"]);
    let mut w = worker(&locked.url(), &q, "echo 1", &["--retry-delay", "200ms"]);
    let status = tokio::time::timeout(Duration::from_secs(5), w.wait())
        .await
        .expect("exited within 5 s")
        .expect("wait");
    assert_eq!(status.code(), Some(1), "{status}");
}

/// `list` pages through every task exactly once, `counts` agrees, an instance that cannot
/// answer is reported (exit 1) while the others still list, and bad input is refused.
async fn list_and_counts_through_the_cli() {
    let redis = RedisServer::start();
    let url = redis.url();
    let down = format!(
        "redis://127.0.0.1:{}",
        orchestrator_testkit::engines::refused_port()
    );
    let run = |args: Vec<String>, with_down: bool| {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"));
        cmd.args(&args).env("ORCHESTRATOR_BULLMQ_URL", &url);
        if with_down {
            cmd.env("ORCHESTRATOR_BACKENDS__DOWN__KIND", "bullmq")
                .env("ORCHESTRATOR_BACKENDS__DOWN__URL", &down)
                .env("ORCHESTRATOR_BACKENDS__DOWN__CONNECT_TIMEOUT_MS", "500");
        }
        async move {
            let out = cmd.output().await.expect("run");
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    };
    let args = |a: &[&str]| a.iter().map(|s| (*s).to_string()).collect::<Vec<_>>();
    let b = bullmq(&redis);
    let q = unique("listed");
    let mut scheduled = std::collections::BTreeSet::new();
    for n in 0..5 {
        let id = b
            .checked()
            .schedule(
                ScheduleRequest::new(q.as_str(), json!({ "n": n }), TaskOptions::simple())
                    .expect("req"),
            )
            .await
            .expect("schedule");
        scheduled.insert(id.to_string());
    }
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let mut a = args(&["list", "--name", &q, "--limit", "2", "--json"]);
        if let Some(c) = &cursor {
            a.extend(["--cursor".to_string(), c.clone()]);
        }
        let (code, out, err) = run(a, false).await;
        assert_eq!(code, 0, "{err}");
        let page: serde_json::Value = serde_json::from_str(&out).expect("json");
        let tasks = page["tasks"].as_array().expect("tasks");
        assert!(tasks.len() <= 2, "{out}");
        for t in tasks {
            assert_eq!(t["state"], "PENDING", "{t}");
            assert_eq!(t["source"], "BULLMQ", "{t}");
            assert_eq!(t["origin"], "unknown", "{t}");
            let id = t["taskId"].as_str().expect("id").to_string();
            assert!(seen.insert(id.clone()), "{id} listed twice");
        }
        match page["next"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, scheduled);
    let (code, out, err) = run(args(&["counts", "--name", &q, "--json"]), false).await;
    assert_eq!(code, 0, "{err}");
    let counts: serde_json::Value = serde_json::from_str(&out).expect("json");
    let pending: u64 = counts["counts"]
        .as_array()
        .expect("counts")
        .iter()
        .filter(|r| r["backend"] == "bullmq" && r["state"] == "PENDING")
        .map(|r| r["count"].as_u64().expect("count"))
        .sum();
    assert_eq!(pending, 5, "{out}");
    // One instance down: the other still lists, the down one is in `errors`, exit 1.
    let started = std::time::Instant::now();
    let (code, out, err) = run(
        args(&["list", "--name", &q, "--json", "--timeout", "3s"]),
        true,
    )
    .await;
    assert_eq!(code, 1, "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let page: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(page["tasks"].as_array().expect("tasks").len(), 5, "{out}");
    let errors = page["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 1, "{out}");
    assert_eq!(errors[0]["backend"], "down");
    assert!(
        matches!(errors[0]["kind"].as_str(), Some("UNAVAILABLE" | "TIMEOUT")),
        "{out}"
    );
    let (code, _, err) = run(args(&["counts", "--name", &q]), true).await;
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("down"), "{err}");
    // Human output: an aligned table with every id.
    let (code, out, err) = run(args(&["list", "--name", &q]), false).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("TASK ID"), "{out}");
    assert!(
        scheduled.iter().all(|id| out.contains(id.as_str())),
        "{out}"
    );
    // Bad input: usage errors (2) for flags, a typed refusal (1) for a foreign cursor.
    for bad in [
        args(&["list", "--state", "sleeping"]),
        args(&["list", "--since", "yesterday-ish"]),
        args(&["list", "--timeout", "1h"]),
        args(&["list", "--limit", "lots"]),
    ] {
        let (code, _, err) = run(bad.clone(), false).await;
        assert_eq!(code, 2, "{bad:?}: {err}");
    }
    for (bad, says) in [
        (args(&["list", "--cursor", "junk"]), "cursor"),
        (args(&["list", "--limit", "0"]), "limit"),
        (args(&["list", "--backend", "nowhere"]), "nowhere"),
        (args(&["list", "--since", "1h", "--until", "2h"]), "since"),
        (args(&["counts", "--backend", "nowhere"]), "nowhere"),
    ] {
        let (code, _, err) = run(bad.clone(), false).await;
        assert_eq!(code, 1, "{bad:?}: {err}");
        assert!(err.contains(says), "{bad:?}: {err}");
    }
}

orchestrator_testkit::engine_tests! {
    [Redis] async: exec_worker_returns_stdout_and_fails_on_nonzero_exit, a_worker_killed_mid_job_loses_nothing, a_child_of_the_worker_can_call_the_cli_on_its_own_task, wait_exits_by_outcome, exec_worker_pumps_caps_times_out_and_clears_the_environment, sigterm_finishes_the_running_job_and_exits_in_bounded_time, a_sigkilled_worker_takes_its_command_down, a_worker_that_could_not_record_an_outcome_exits_3, wait_removed_jobs_detached_output_and_escaped_errors, payloads_at_and_over_the_limit_through_the_cli_and_the_exec_worker, a_worker_started_before_redis_waits_for_it, list_and_counts_through_the_cli;
}
