//! An n8n task id outlives the process that issued it: one `orchestrator` process schedules,
//! others read and cancel it, before and after n8n itself restarts. Nothing is shared
//! between the processes but the configuration (the id key).

use std::process::Command;
use std::time::{Duration, Instant};

use orchestrator_testkit::engines::{HttpReply, HttpServer};
use orchestrator_testkit::engines::{N8nServer, free_port, n8n_default_version, unique};

/// Run the CLI with n8n's settings; `(exit code, stdout, stderr)`.
fn cli(server: &N8nServer, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORCHESTRATOR_")) {
        cmd.env_remove(k);
    }
    let out = cmd
        .args(args)
        .env("ORCHESTRATOR_ROUTE_INTEGRATION", "n8n")
        .env("ORCHESTRATOR_N8N_URL", server.url())
        .env("ORCHESTRATOR_N8N_API_KEY", server.api_key())
        .env(
            "ORCHESTRATOR_N8N_ID_KEY",
            "a-key-only-this-deployment-knows",
        )
        .output()
        .expect("run orchestrator");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `status --json` in a fresh process, polled until the task finished (15 s at most).
fn finished_status(server: &N8nServer, id: &str) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (code, out, err) = cli(server, &["status", id, "--json"]);
        assert_eq!(code, 0, "status {id}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
        if v["state"] != "RUNNING" && v["state"] != "PENDING" {
            return v;
        }
        assert!(Instant::now() < deadline, "{id} still {v}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn an_id_issued_by_one_process_is_read_by_others_and_after_an_n8n_restart() {
    let data = std::env::temp_dir().join(unique("n8n-restart"));
    let port = free_port().to_string();
    let data_arg = data.to_string_lossy().into_owned();
    let args = ["--port", port.as_str(), "--data-dir", data_arg.as_str()];
    let mut server = N8nServer::start_version(&n8n_default_version(), &args);
    let schedule_to = |server: &N8nServer, webhook: &str, data: &str| {
        let options = serde_json::json!({
            "n8n": {"webhookUrl": format!("{}/webhook/{webhook}", server.url())}
        })
        .to_string();
        let (code, out, err) = cli(
            server,
            &[
                "schedule",
                "respond",
                "--type",
                "integration",
                "--data",
                data,
                "--options",
                &options,
                "--json",
            ],
        );
        assert_eq!(code, 0, "schedule: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("schedule JSON");
        v["taskId"].as_str().expect("taskId").to_string()
    };
    let schedule =
        |server: &N8nServer| schedule_to(server, "orchestrator-test-respond", r#"{"x":1}"#);
    // An execution that waits 3 s in a Wait node, running when n8n goes down.
    let running = |server: &N8nServer| {
        let id = schedule_to(server, "orchestrator-test-wait", r#"{"seconds":3}"#);
        let (code, out, err) = cli(server, &["status", &id, "--json"]);
        assert_eq!(code, 0, "{err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("status JSON");
        assert_eq!(v["state"], "RUNNING", "{v}");
        id
    };
    let id = schedule(&server);
    let before = finished_status(&server, &id);
    assert_eq!(before["state"], "COMPLETED", "{before}");
    assert_eq!(before["source"], "N8N", "{before}");

    // A graceful stop (SIGTERM) while an execution runs, then a restart on the same data.
    let mid_stop = running(&server);
    let stop_started = Instant::now();
    server.stop();
    let stop_took = stop_started.elapsed();
    let mut server = N8nServer::start_version(&n8n_default_version(), &args);
    let after_stop = finished_status(&server, &mid_stop);
    let after = finished_status(&server, &id);
    assert_eq!(after["state"], before["state"], "{after}");
    assert_eq!(after["result"], before["result"], "{after}");
    let (code, out, err) = cli(&server, &["cancel", &id, "--json"]);
    assert_eq!(code, 1, "a finished task is not cancelled: {out} {err}");
    let answer: serde_json::Value = serde_json::from_str(out.trim()).expect("cancel --json");
    assert_eq!(answer["outcome"], "NOT_CANCELLABLE_FINISHED", "{answer}");
    assert_eq!(answer["cancelled"], false, "{answer}");

    // A process with another id key does not accept the id: it names no dispatch it made.
    let (code, _, err) = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["status", &id])
        .env("ORCHESTRATOR_ROUTE_INTEGRATION", "n8n")
        .env("ORCHESTRATOR_N8N_URL", server.url())
        .env("ORCHESTRATOR_N8N_API_KEY", server.api_key())
        .env("ORCHESTRATOR_N8N_ID_KEY", "another-deployment")
        .output()
        .map(|o| {
            (
                o.status.code().unwrap_or(-1),
                (),
                String::from_utf8_lossy(&o.stderr).into_owned(),
            )
        })
        .expect("run orchestrator");
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("not found") || err.contains("NotFound"),
        "{err}"
    );
    // And the restarted n8n takes new dispatches, read by yet another process.
    let second = schedule(&server);
    assert_eq!(finished_status(&server, &second)["state"], "COMPLETED");

    // A crash (SIGKILL) while an execution runs, then a restart on the same data: the id
    // still reads, with a finished state, from a fresh process.
    let mid_kill = running(&server);
    server.kill();
    let restart_started = Instant::now();
    let server = N8nServer::start_version(&n8n_default_version(), &args);
    let restart_took = restart_started.elapsed();
    let after_kill = finished_status(&server, &mid_kill);
    for v in [&after_stop, &after_kill] {
        assert!(
            ["COMPLETED", "FAILED", "CANCELLED"].contains(&v["state"].as_str().unwrap_or("")),
            "{v}"
        );
    }
    println!(
        "FIGURES n8n_restart: an execution in a 3 s Wait node during a graceful stop (SIGTERM, \
         took {:.1} s): after the restart {} (native {}, error {}); during a SIGKILL: after the restart \
         ({:.1} s to serve again) {} (native {}, error {}); the finished task before either \
         restart read the same after it",
        stop_took.as_secs_f64(),
        after_stop["state"],
        after_stop["nativeState"],
        after_stop["error"],
        restart_took.as_secs_f64(),
        after_kill["state"],
        after_kill["nativeState"],
        after_kill["error"],
    );

    outbox_dispatches_are_delivered_by_orchestrator_dispatch(&server);
    a_dispatcher_killed_after_n8n_answered_loses_nothing(&server);
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// The CLI with `--config config` and the INTEGRATION route to n8n, none of this process's
/// `ORCHESTRATOR_*` variables.
fn with_config(config: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORCHESTRATOR_")) {
        cmd.env_remove(k);
    }
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env("ORCHESTRATOR_ROUTE_INTEGRATION", "n8n");
    cmd
}

/// Poll `status --json` (fresh processes) until every id is COMPLETED, 60 s at most.
fn completed(config: &str, ids: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    for id in ids {
        loop {
            let out = with_config(config, &["status", id, "--json"])
                .output()
                .expect("status");
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            if v["state"] == "COMPLETED" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "never delivered: {v} {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// Outbox mode from the command line: `schedule` stores the dispatch and returns, a
/// long-running `orchestrator dispatch` (or `orchestrator serve`) delivers it and stops
/// cleanly on SIGTERM; `health` warns that the outbox Redis has no AOF.
fn outbox_dispatches_are_delivered_by_orchestrator_dispatch(server: &N8nServer) {
    let redis = orchestrator_testkit::engines::RedisServer::start();
    let dir = std::env::temp_dir().join(unique("outbox-cli"));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("orchestrator.toml");
    std::fs::write(
        &config,
        format!(
            "[backends.n8n]\nurl = \"{}\"\napi_key = \"{}\"\nid_key = \"outbox-key\"\n\n[backends.n8n.outbox]\nredis_url = \"{}\"\n",
            server.url(),
            server.api_key(),
            redis.url()
        ),
    )
    .expect("config");
    let config = config.to_string_lossy().into_owned();
    let run = |args: &[&str]| with_config(&config, args);
    let options = serde_json::json!({
        "n8n": {"webhookUrl": format!("{}/webhook/orchestrator-test-respond", server.url())}
    })
    .to_string();
    // `schedule` in a process of its own: the dispatch is stored, its id printed.
    let schedule = || {
        let out = run(&[
            "schedule",
            "outboxed",
            "--type",
            "integration",
            "--options",
            &options,
            "--json",
        ])
        .output()
        .expect("schedule");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["taskId"].as_str().expect("taskId").to_string()
    };
    let id = schedule();
    // `schedule` only stored it: nothing delivers until a dispatcher runs.
    std::thread::sleep(Duration::from_millis(500));
    let out = run(&["status", &id, "--json"]).output().expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(v["nativeState"], "queued", "{v}");

    let mut dispatch = run(&["dispatch"]).spawn().expect("dispatch");
    completed(&config, std::slice::from_ref(&id));
    terminate(&mut dispatch, Duration::from_secs(10));
    let status = dispatch.wait().expect("dispatch stopped");
    assert!(status.success(), "{status}");

    // `serve` delivers the outbox too: a dispatch stored while no dispatcher ran is
    // delivered once it starts, and SIGTERM stops it with every outcome recorded.
    let id = schedule();
    let mut serve = run(&["serve", "--bind", "127.0.0.1:0"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("serve");
    completed(&config, std::slice::from_ref(&id));
    terminate(&mut serve, Duration::from_secs(40));
    let out = serve.wait_with_output().expect("serve stops");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {err}", out.status);
    assert!(err.contains("dispatching the n8n outbox of `n8n`"), "{err}");
    assert!(err.contains("every background outcome recorded"), "{err}");

    let out = run(&["health"]).output().expect("health");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("appendonly"), "no AOF warning: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// SIGTERM `child` and wait until it has exited, at most `limit`.
fn terminate(child: &mut std::process::Child, limit: Duration) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        assert!(Instant::now() < deadline, "{} did not stop", child.id());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One command to the Redis on `port`; its reply as text.
fn redis_command(port: u16, args: &[&str]) -> String {
    let mut conn = redis::Client::open(format!("redis://127.0.0.1:{port}"))
        .expect("client")
        .get_connection()
        .expect("redis");
    let mut cmd = redis::cmd(args[0]);
    for a in &args[1..] {
        cmd.arg(*a);
    }
    cmd.query::<String>(&mut conn).expect("redis command")
}

/// Deliveries seen by a forwarder, by the payload's `i`.
type Deliveries = std::sync::Arc<std::sync::Mutex<std::collections::HashMap<u64, u32>>>;

/// A webhook host between the dispatcher and n8n: forwards each delivery to n8n's sync echo
/// webhook and relays n8n's answer `delay` later, counting deliveries by the payload's `i`.
/// With `pause_redis`, on the first answer from n8n it pauses Redis writes (`CLIENT PAUSE …
/// WRITE`) before relaying it, so the dispatcher that receives it cannot record it, and
/// tells the test.
fn start_forwarder(
    n8n: String,
    redis_port: Option<u16>,
    delay: Duration,
) -> (String, Deliveries, std::sync::mpsc::Receiver<()>) {
    use std::io::{Read, Write};
    let counts: Deliveries = std::sync::Arc::default();
    let (tx, rx) = std::sync::mpsc::channel();
    let seen = std::sync::Arc::clone(&counts);
    let paused = std::sync::atomic::AtomicBool::new(false);
    let server = HttpServer::start(move |req| {
        let i = req.json()["i"].as_u64().unwrap_or(u64::MAX);
        // Forward to n8n, one request per connection.
        let host = n8n.trim_start_matches("http://");
        let mut up = std::net::TcpStream::connect(host).expect("n8n");
        let head = format!(
            "POST /webhook/orchestrator-test HTTP/1.1\r\nhost: {host}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            req.body.len()
        );
        up.write_all(head.as_bytes()).expect("forward head");
        up.write_all(&req.body).expect("forward body");
        let mut answer = Vec::new();
        up.read_to_end(&mut answer).expect("n8n answer");
        *seen.lock().expect("counts").entry(i).or_default() += 1;
        std::thread::sleep(delay);
        let first = !paused.swap(true, std::sync::atomic::Ordering::SeqCst);
        if let (true, Some(port)) = (first, redis_port) {
            let r = redis_command(port, &["CLIENT", "PAUSE", "30000", "WRITE"]);
            assert_eq!(r, "OK", "CLIENT PAUSE");
            let _ = tx.send(());
        }
        HttpReply::Raw(answer)
    });
    (server.host_port(), counts, rx)
}

/// A dispatcher SIGKILLed after n8n acknowledged deliveries but before it recorded them:
/// a second dispatcher delivers them again once the leases expire. At least once: nothing
/// lost, the duplicates counted (n8n ran those twice). Then slow deliveries (1.5 s of a 3 s
/// request timeout, 6 s lease: room for a loaded machine) with two dispatchers polling:
/// each delivered once.
fn a_dispatcher_killed_after_n8n_answered_loses_nothing(server: &N8nServer) {
    let redis = orchestrator_testkit::engines::RedisServer::start();
    let (proxy, counts, answered) =
        start_forwarder(server.url().to_string(), Some(redis.port), Duration::ZERO);
    let (slow_proxy, slow_counts, _) =
        start_forwarder(server.url().to_string(), None, Duration::from_millis(1500));
    let dir = std::env::temp_dir().join(unique("outbox-kill"));
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("orchestrator.toml");
    std::fs::write(
        &config,
        format!(
            "[backends.n8n]\nurl = \"{}\"\napi_key = \"{}\"\nid_key = \"kill-key\"\nrequest_timeout_ms = 3000\nallowed_hosts = [\"{proxy}\", \"{slow_proxy}\"]\n\n[backends.n8n.outbox]\nredis_url = \"{}\"\nlease_ms = 6000\n",
            server.url(),
            server.api_key(),
            redis.url()
        ),
    )
    .expect("config");
    let config = config.to_string_lossy().into_owned();
    let run = |args: &[&str]| with_config(&config, args);
    let schedule = |proxy: &str, i: u64| {
        let options =
            serde_json::json!({"n8n": {"webhookUrl": format!("http://{proxy}/webhook/x")}})
                .to_string();
        let out = run(&[
            "schedule",
            "killed",
            "--type",
            "integration",
            "--data",
            &format!(r#"{{"i":{i}}}"#),
            "--options",
            &options,
            "--json",
        ])
        .output()
        .expect("schedule");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
        v["taskId"].as_str().expect("taskId").to_string()
    };
    let n = 5;
    let ids: Vec<String> = (0..n).map(|i| schedule(&proxy, i)).collect();

    let mut first = run(&["dispatch"]).spawn().expect("dispatch");
    answered
        .recv_timeout(Duration::from_secs(30))
        .expect("n8n answered a delivery");
    // Let the other deliveries of the round come back too, then kill the dispatcher while
    // its writes wait on the paused Redis.
    std::thread::sleep(Duration::from_millis(1000));
    first.kill().expect("SIGKILL");
    let _ = first.wait();
    let unpause = redis_command(redis.port, &["CLIENT", "UNPAUSE"]);
    assert_eq!(unpause, "OK");
    let acknowledged_before_kill: u32 = counts.lock().expect("counts").values().sum();

    let killed_at = Instant::now();
    let mut second = run(&["dispatch"]).spawn().expect("dispatch");
    completed(&config, &ids);
    let recovered = killed_at.elapsed();

    // Slow deliveries while two dispatchers poll the same outbox.
    let mut third = run(&["dispatch"]).spawn().expect("dispatch");
    let slow: Vec<String> = (0..n).map(|i| schedule(&slow_proxy, i)).collect();
    completed(&config, &slow);
    // A second round of leases would have expired by now: nothing is delivered again.
    std::thread::sleep(Duration::from_secs(7));
    for child in [&mut second, &mut third] {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let _ = child.wait();
    }
    let slow_counts = slow_counts.lock().expect("counts").clone();
    assert_eq!(slow_counts.len(), 5, "{slow_counts:?}");
    assert!(slow_counts.values().all(|c| *c == 1), "{slow_counts:?}");
    let counts = counts.lock().expect("counts").clone();
    for i in 0..n {
        assert!(
            counts.get(&i).copied().unwrap_or(0) >= 1,
            "dispatch {i} lost: {counts:?}"
        );
    }
    let total: u32 = counts.values().sum();
    let duplicates = total - u32::try_from(n).expect("n");
    assert!(
        duplicates >= 1 && duplicates <= acknowledged_before_kill,
        "{duplicates} duplicates, {acknowledged_before_kill} acknowledged before the kill: {counts:?}"
    );
    println!(
        "FIGURES outbox_kill: {n} dispatches; n8n acknowledged {acknowledged_before_kill} before \
         the dispatcher was SIGKILLed with their outcome unrecorded (Redis writes paused); a \
         second dispatcher delivered again after the 6 s lease: all {n} COMPLETED {:.1} s after \
         the kill, lost 0, duplicates {duplicates} (n8n ran those twice); {n} deliveries \
         taking 1.5 s (timeout 3 s, lease 6 s) with two dispatchers polling: each delivered \
         once",
        recovered.as_secs_f64()
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Hardening 4 (issue #32): refused outbox credentials are `Unauthorized` at once, for
/// `schedule` and for `dispatch` (which stops instead of retrying forever).
async fn refused_outbox_credentials_are_unauthorized_at_once() {
    let redis =
        orchestrator_testkit::engines::RedisServer::start_with(&["--requirepass", "right-pass"]);
    let dir = std::env::temp_dir().join(unique("outbox-auth"));
    std::fs::create_dir_all(&dir).expect("dir");
    // A wrong password (WRONGPASS at connection) and none at all (NOAUTH at the first
    // command).
    for (case, credentials) in [("wrong", ":wrong-pass@"), ("none", "")] {
        let config = dir.join(format!("{case}.toml"));
        std::fs::write(
            &config,
            format!(
                "[backends.n8n]\nurl = \"http://127.0.0.1:1\"\n\n[backends.n8n.outbox]\nredis_url = \"redis://{credentials}127.0.0.1:{}\"\n",
                redis.port
            ),
        )
        .expect("config");
        let config = config.to_string_lossy().into_owned();
        for args in [
            vec![
                "schedule",
                "hook",
                "--type",
                "integration",
                "--options",
                r#"{"n8n": {"webhookUrl": "http://127.0.0.1:1/webhook/x"}}"#,
            ],
            vec!["dispatch"],
        ] {
            let started = Instant::now();
            let out = tokio::time::timeout(
                Duration::from_secs(10),
                tokio::process::Command::new(env!("CARGO_BIN_EXE_orchestrator"))
                    .arg("--config")
                    .arg(&config)
                    .args(&args)
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .unwrap_or_else(|_| {
                panic!("{case} {args:?} kept retrying refused credentials for 10 s")
            })
            .expect("run");
            let took = started.elapsed();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{case} {args:?}: {err}");
            assert!(err.contains("Unauthorized"), "{case} {args:?}: {err}");
            assert!(!err.contains("wrong-pass"), "{case} {args:?}: {err}");
            assert!(
                took < Duration::from_secs(3),
                "{case} {args:?} took {took:?}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

orchestrator_testkit::engine_tests! {
    [Redis] async: refused_outbox_credentials_are_unauthorized_at_once;
    [Redis, N8n] sync: an_id_issued_by_one_process_is_read_by_others_and_after_an_n8n_restart;
}
