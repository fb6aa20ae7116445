//! An n8n task id outlives the process that issued it: one `orchestrator` process schedules,
//! others read and cancel it, before and after n8n itself restarts. Nothing is shared
//! between the processes but the configuration (the id key).
#![cfg(feature = "n8n")]

use std::process::Command;
use std::time::{Duration, Instant};

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

#[test]
fn an_id_issued_by_one_process_is_read_by_others_and_after_an_n8n_restart() {
    let data = std::env::temp_dir().join(unique("n8n-restart"));
    let port = free_port().to_string();
    let data_arg = data.to_string_lossy().into_owned();
    let args = ["--port", port.as_str(), "--data-dir", data_arg.as_str()];
    let Some(mut server) = N8nServer::start_version(&n8n_default_version(), &args) else {
        return;
    };
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
    let mut server =
        N8nServer::start_version(&n8n_default_version(), &args).expect("n8n restarted");
    let after_stop = finished_status(&server, &mid_stop);
    let after = finished_status(&server, &id);
    assert_eq!(after["state"], before["state"], "{after}");
    assert_eq!(after["result"], before["result"], "{after}");
    let (code, out, err) = cli(&server, &["cancel", &id, "--json"]);
    assert_eq!(code, 1, "a finished task is not cancelled: {out} {err}");

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
    let server = N8nServer::start_version(&n8n_default_version(), &args).expect("n8n restarted");
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
    drop(server);
    let _ = std::fs::remove_dir_all(&data);
}

/// Outbox mode from the command line: `schedule` stores the dispatch and returns, a
/// long-running `orchestrator dispatch` delivers it and stops cleanly on SIGTERM; `health`
/// warns that the outbox Redis has no AOF.
fn outbox_dispatches_are_delivered_by_orchestrator_dispatch(server: &N8nServer) {
    let redis = orchestrator_testkit::engines::RedisServer::start().expect("redis");
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
    let run = |args: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORCHESTRATOR_")) {
            cmd.env_remove(k);
        }
        cmd.arg("--config")
            .arg(&config)
            .args(args)
            .env("ORCHESTRATOR_ROUTE_INTEGRATION", "n8n");
        cmd
    };
    let options = serde_json::json!({
        "n8n": {"webhookUrl": format!("{}/webhook/orchestrator-test-respond", server.url())}
    })
    .to_string();
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
    let id = v["taskId"].as_str().expect("taskId").to_string();
    // `schedule` only stored it: nothing delivers until a dispatcher runs.
    std::thread::sleep(Duration::from_millis(500));
    let out = run(&["status", &id, "--json"]).output().expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    assert_eq!(v["nativeState"], "queued", "{v}");

    let mut dispatch = run(&["dispatch"]).spawn().expect("dispatch");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = run(&["status", &id, "--json"]).output().expect("status");
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
    let pid = dispatch.id().to_string();
    let _ = Command::new("kill").args(["-TERM", &pid]).status();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = dispatch.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "dispatch did not stop"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");

    let out = run(&["health"]).output().expect("health");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("appendonly"), "no AOF warning: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}
