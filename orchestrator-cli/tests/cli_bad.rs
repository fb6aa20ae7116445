//! Bad command lines, every subcommand and flag: the exit code, a one-line error, and
//! nothing written to the engine (a real Redis is configured and checked with `DBSIZE`).

use std::process::Command;

use orchestrator_testkit::engines::RedisServer;

/// (arguments, expected exit code, text the error line must contain)
fn rows() -> Vec<(Vec<&'static str>, i32, &'static str)> {
    vec![
        // global
        (vec![], 2, "subcommand"),
        (vec!["bogus"], 2, "bogus"),
        (vec!["--config"], 2, "--config"),
        (
            vec![
                "--config",
                "/nonexistent/orchestrator.toml",
                "status",
                "bullmq:q:1",
            ],
            1,
            "nonexistent",
        ),
        // ids that name one of BullMQ's own keys (issue #32)
        (vec!["status", "bullmq:q:repeat:nightly"], 1, "malformed"),
        (vec!["status", "bullmq:q:42:logs"], 1, "malformed"),
        (vec!["cancel", "bullmq:q:de:abc"], 1, "malformed"),
        (
            vec!["wait", "bullmq:q:repeat:x", "--timeout", "1s"],
            1,
            "malformed",
        ),
        // durations bounded where they are parsed (issue #32)
        (
            vec!["wait", "bullmq:q:1", "--timeout", "25h"],
            2,
            "--timeout",
        ),
        (
            vec![
                "worker",
                "q",
                "--exec",
                "true",
                "--grace",
                "18446744073709551615s",
            ],
            2,
            "--grace",
        ),
        (
            vec![
                "worker",
                "q",
                "--exec",
                "true",
                "--lock-duration",
                "1000000000y",
            ],
            2,
            "--lock-duration",
        ),
        (
            vec![
                "worker",
                "q",
                "--exec",
                "true",
                "--timeout",
                "18446744073709551615s",
            ],
            2,
            "--timeout",
        ),
        (
            vec!["track", "q", "--hold", "18446744073709551615s"],
            2,
            "--hold",
        ),
        (
            vec!["track", "q", "--recheck", "100000000y"],
            2,
            "--recheck",
        ),
        (vec!["track", "q", "--grace", "100000000y"], 2, "--grace"),
        // schedule
        (vec!["schedule"], 2, "NAME"),
        (vec!["schedule", "q"], 2, "--type"),
        (vec!["schedule", "q", "--type", "bogus"], 2, "bogus"),
        (vec!["schedule", "q", "--type"], 2, "--type"),
        (
            vec!["schedule", "q", "--type", "simple", "--data", "{"],
            2,
            "--data",
        ),
        (
            vec!["schedule", "q", "--type", "simple", "--data"],
            2,
            "--data",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--data",
                "@/nonexistent/payload.json",
            ],
            2,
            "cannot open",
        ),
        (
            vec!["schedule", "q", "--type", "simple", "--options", "nope"],
            2,
            "--options",
        ),
        (
            vec!["schedule", "q", "--type", "simple", "--options"],
            2,
            "--options",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"taskType":"COMPLEX"}"#,
            ],
            2,
            "conflicts",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"priority":"high"}"#,
            ],
            1,
            "priority",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"unknownKey":1}"#,
            ],
            1,
            "unknownKey",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"attempts":1000000000}"#,
            ],
            1,
            "attempts",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"attempts":0}"#,
            ],
            1,
            "attempts",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"delay":-1}"#,
            ],
            1,
            "delay",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"attempts":2,"backoff":{"type":"fixed","delay":18446744073709551615}}"#,
            ],
            1,
            "backoff",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"deduplication":{"id":"d","ttl":18446744073709551615}}"#,
            ],
            1,
            "ttl",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"jobId":"meta"}"#,
            ],
            1,
            "jobId",
        ),
        (
            vec![
                "schedule",
                "q",
                "--type",
                "simple",
                "--options",
                r#"{"priority":3,"lifo":true}"#,
            ],
            1,
            "lifo",
        ),
        (vec!["schedule", "a:b", "--type", "simple"], 1, "name"),
        (vec!["schedule", "", "--type", "simple"], 1, "name"),
        (vec!["schedule", "q", "--type", "complex"], 1, "COMPLEX"),
        (
            vec!["schedule", "q", "--type", "simple", "--bogus"],
            2,
            "--bogus",
        ),
        (
            vec!["schedule", "q", "--type", "simple", "extra"],
            2,
            "extra",
        ),
        (
            vec!["schedule", "q", "--type", "simple", "--json", "--json"],
            2,
            "--json",
        ),
        // status
        (vec!["status"], 2, "TASK_ID"),
        (vec!["status", "nocolon"], 1, "nocolon"),
        (vec!["status", "bullmq:q:meta"], 1, "bullmq:q:meta"),
        (vec!["status", "bullmq:nojob"], 1, "bullmq:nojob"),
        (vec!["status", "unknown-backend:x"], 1, "unknown-backend"),
        (vec!["status", "bullmq:q:1", "--bogus"], 2, "--bogus"),
        (vec!["status", "bullmq:q:1", "extra"], 2, "extra"),
        // wait
        (vec!["wait"], 2, "TASK_ID"),
        (vec!["wait", "bullmq:q:1", "--timeout", "soon"], 2, "soon"),
        (vec!["wait", "bullmq:q:1", "--timeout"], 2, "--timeout"),
        (vec!["wait", "nocolon"], 1, "nocolon"),
        (
            vec!["wait", "bullmq:q:meta", "--timeout", "1s"],
            1,
            "bullmq:q:meta",
        ),
        (vec!["wait", "bullmq:q:1", "--json", "--json"], 2, "--json"),
        // cancel
        (vec!["cancel"], 2, "TASK_ID"),
        (vec!["cancel", "nocolon"], 1, "nocolon"),
        (vec!["cancel", "bullmq:q:meta"], 1, "bullmq:q:meta"),
        (
            vec!["cancel", "bullmq:q:1", "--json", "--json"],
            2,
            "--json",
        ),
        (vec!["cancel", "bullmq:q:1", "--bogus"], 2, "--bogus"),
        // backends, health, schema
        (vec!["backends", "extra"], 2, "extra"),
        (vec!["health", "extra"], 2, "extra"),
        (vec!["schema", "--json"], 2, "--json"),
        // worker
        (vec!["worker"], 2, "QUEUE"),
        (vec!["worker", "q"], 2, "--exec"),
        (vec!["worker", "q", "--exec"], 2, "--exec"),
        (vec!["worker", "q", "--exec", ""], 2, "empty"),
        (vec!["worker", "q", "--exec", "   "], 2, "empty"),
        (
            vec!["worker", "q", "--exec", "cat", "--concurrency", "0"],
            2,
            "concurrency",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--concurrency", "1001"],
            2,
            "concurrency",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--concurrency", "x"],
            2,
            "concurrency",
        ),
        (vec!["worker", "q", "--exec", "cat", "--name"], 2, "--name"),
        (
            vec!["worker", "q", "--exec", "cat", "--lock-duration", "500ms"],
            2,
            "under 1s",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--lock-duration", "0s"],
            2,
            "under 1s",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--lock-duration", "soon"],
            2,
            "duration",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--lock-duration-ms", "0"],
            2,
            "lock-duration-ms",
        ),
        (
            vec![
                "worker",
                "q",
                "--exec",
                "cat",
                "--lock-duration",
                "30s",
                "--lock-duration-ms",
                "5000",
            ],
            2,
            "cannot be used",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--stalled-interval", "10ms"],
            2,
            "under 1s",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--stalled-interval-ms", "5"],
            2,
            "stalled-interval-ms",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--retry-delay", "2h"],
            2,
            "outside 10ms..1h",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--grace", "forever"],
            2,
            "duration",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--grace-ms", "x"],
            2,
            "grace-ms",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--timeout", "0s"],
            2,
            "outside 1ms",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--timeout", "abc"],
            2,
            "duration",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--max-stdout", "0"],
            2,
            "greater than 0",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--max-stdout", "lots"],
            2,
            "size",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--max-stderr", "5XB"],
            2,
            "size",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--env", "1BAD"],
            2,
            "environment variable",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--env", "A=B"],
            2,
            "environment variable",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--backend", "nope"],
            1,
            "nope",
        ),
        (
            vec!["worker", "q", "--exec", "cat", "--backend"],
            2,
            "--backend",
        ),
        (vec!["worker", "a:b", "--exec", "cat"], 1, "queue"),
        // track
        (vec!["track"], 2, "QUEUE"),
        (vec!["track", "q", "--recheck", "10ms"], 1, "recheck"),
        (vec!["track", "q", "--recheck", "x"], 2, "duration"),
        (vec!["track", "q", "--hold", "x"], 2, "duration"),
        (vec!["track", "q", "--concurrency", "0"], 2, "concurrency"),
        (vec!["track", "q", "--grace", "?"], 2, "duration"),
        (vec!["track", "q", "--backend", "nope"], 1, "nope"),
        (vec!["track", "a:b"], 1, "queue"),
    ]
}

/// The output of `child`, or `None` (and the child killed) when it runs longer than `limit`.
fn output_within(
    mut child: std::process::Child,
    limit: std::time::Duration,
) -> Option<std::process::Output> {
    let deadline = std::time::Instant::now() + limit;
    while child.try_wait().ok()?.is_none() {
        if std::time::Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    child.wait_with_output().ok()
}

fn bad_command_lines_exit_with_one_line_and_write_nothing() {
    let redis = RedisServer::start();
    let dbsize = || -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &redis.port.to_string(), "DBSIZE"])
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let first = dbsize();
    let mut before = first.clone();
    #[allow(unused_mut)]
    let mut rows = rows();
    #[cfg(feature = "n8n")]
    rows.extend([
        (vec!["dispatch", "extra"], 2, "extra"),
        (vec!["dispatch", "--backend"], 2, "--backend"),
        (vec!["dispatch", "--backend", "nope"], 1, "nope"),
        (vec!["dispatch"], 1, "none is configured"),
        (vec!["dispatch", "--backend", "bullmq"], 1, "kind `bullmq`"),
    ]);
    assert!(rows.len() >= 60, "{} rows", rows.len());
    let mut failures = Vec::new();
    for (args, code, needle) in &rows {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
        for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORCHESTRATOR_")) {
            cmd.env_remove(k);
        }
        let child = cmd
            .args(args)
            .env("ORCHESTRATOR_BULLMQ_URL", redis.url())
            .env("ORCHESTRATOR_ROUTE_SIMPLE", "bullmq")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("run orchestrator");
        // A bad command line must end: one that runs on (a worker accepting a flag it
        // should refuse) is a failed row, killed after 10 s.
        let Some(out) = output_within(child, std::time::Duration::from_secs(10)) else {
            failures.push(format!("{args:?}: still running after 10 s"));
            continue;
        };
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        let got = out.status.code().unwrap_or(-1);
        if got != *code || lines.len() != 1 || !lines[0].contains(needle) {
            failures.push(format!("{args:?}: exit {got} (want {code}), stderr {stderr:?} (want one line with {needle:?})"));
        }
        // Each row against the size after the previous one: one row that writes is
        // reported alone, not with every row after it.
        let now = dbsize();
        if now != before {
            failures.push(format!(
                "{args:?}: wrote to Redis (DBSIZE {before} -> {now})"
            ));
            before = now;
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
    // The check sees writes: a good command line changes DBSIZE.
    let out = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["schedule", "control", "--type", "simple"])
        .env("ORCHESTRATOR_BULLMQ_URL", redis.url())
        .env("ORCHESTRATOR_ROUTE_SIMPLE", "bullmq")
        .output()
        .expect("run orchestrator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_ne!(dbsize(), first, "a good schedule wrote nothing DBSIZE sees");
}

orchestrator_testkit::engine_tests! {
    [Redis] sync: bad_command_lines_exit_with_one_line_and_write_nothing;
}
