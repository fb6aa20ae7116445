//! The `orchestrator` command line: output shapes and exit codes.
#![cfg(feature = "testkit")]

use std::process::Command;

fn cli(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_orchestrator"));
    cmd.args(args);
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("ORCHESTRATOR_")) {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("run orchestrator");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn schema_is_json_with_config_and_options() {
    let (code, out, err) = cli(&["schema"], &[]);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("schema is JSON");
    assert!(v["config"]["properties"]["backends"].is_object());
    assert!(v["serve"]["properties"]["token_file"].is_object(), "{v}");
    assert!(v["taskOptions"]["properties"]["temporal"].is_object());
}

#[test]
fn backends_lists_every_compiled_backend() {
    let (code, out, _) = cli(&["backends"], &[]);
    assert_eq!(code, 0);
    let names = orchestrator::Registry::global().names();
    assert!(!names.is_empty());
    for name in names {
        assert!(out.contains(name), "{name} missing from:\n{out}");
    }
}

#[test]
fn schedule_prints_the_task_id_as_json() {
    let env = [("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq")];
    let (code, out, err) = cli(
        &[
            "schedule",
            "emails",
            "--type",
            "simple",
            "--data",
            r#"{"to":"a"}"#,
            "--options",
            r#"{"priority":2,"attempts":3}"#,
            "--json",
        ],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(
        v["taskId"]
            .as_str()
            .expect("taskId")
            .starts_with("memory-bullmq:emails:")
    );
}

#[test]
fn exit_codes() {
    // Usage errors: 2.
    assert_eq!(cli(&["schedule", "q"], &[]).0, 2, "missing --type");
    assert_eq!(
        cli(&["schedule", "q", "--type", "simple", "--data", "{"], &[]).0,
        2
    );
    // Operation failures: 1, with a message saying what to set.
    let (code, _, err) = cli(&["schedule", "q", "--type", "simple"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("ORCHESTRATOR_BULLMQ_URL"), "{err}");
    let (code, _, err) = cli(&["status", "garbage"], &[]);
    assert_eq!(code, 1);
    assert!(err.contains("no `<backend>:` prefix"), "{err}");
    let env = [("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq")];
    let (code, _, err) = cli(
        &[
            "schedule",
            "q",
            "--type",
            "simple",
            "--options",
            r#"{"attempts":0}"#,
        ],
        &env,
    );
    assert_eq!(code, 1);
    assert!(err.contains("attempts"), "{err}");
}

#[test]
fn documented_variables_are_accepted_and_typos_refused_with_the_list() {
    // The log switch and the exec worker's per-job variables are not settings.
    let env = [
        ("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq"),
        ("ORCHESTRATOR_LOG", "debug"),
        ("ORCHESTRATOR_TASK_ID", "bullmq:q:1"),
        ("ORCHESTRATOR_JOB_ID", "1"),
        ("ORCHESTRATOR_ATTEMPT", "1"),
    ];
    let (code, out, err) = cli(&["schedule", "q", "--type", "SIMPLE", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("memory-bullmq:q:"), "{out}");
    assert!(
        err.contains("DEBUG"),
        "ORCHESTRATOR_LOG=debug shows debug logs: {err}"
    );

    let (code, _, err) = cli(
        &["schedule", "q", "--type", "simple"],
        &[("ORCHESTRATOR_BULMQ_URL", "redis://127.0.0.1:1")],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ORCHESTRATOR_BULMQ_URL is not a setting"),
        "{err}"
    );
    for valid in [
        "ORCHESTRATOR_BACKENDS__<INSTANCE>__<KEY>",
        "ORCHESTRATOR_ROUTE_",
        "BULLMQ",
        "ORCHESTRATOR_LOG",
    ] {
        assert!(err.contains(valid), "the message lists {valid}: {err}");
    }
}

#[test]
fn instances_from_the_environment() {
    let env = [
        ("ORCHESTRATOR_ROUTE_SIMPLE", "mem-eu"),
        ("ORCHESTRATOR_BACKENDS__MEM_EU__KIND", "memory-bullmq"),
    ];
    let (code, out, err) = cli(&["schedule", "q", "--type", "Simple", "--json"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"mem-eu:q:1\""), "{out}");
}

/// `--data @FILE` reads at most 64 MiB: a larger file is a one-line usage error, before any
/// backend is involved.
#[test]
fn data_from_a_file_is_capped() {
    let file = std::env::temp_dir().join(format!("orchestrator-data-{}.json", std::process::id()));
    std::fs::write(&file, vec![b' '; (64 << 20) + 1]).expect("write");
    let arg = format!("@{}", file.display());
    let (code, _, err) = cli(
        &["schedule", "q", "--type", "simple", "--data", &arg],
        &[("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq")],
    );
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("larger than 67108864 bytes"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

/// Run the CLI with a config file holding `text`; (exit code, stderr, time taken).
fn with_config_text(text: &[u8], args: &[&str]) -> (i32, String, std::time::Duration) {
    let file = std::env::temp_dir().join(format!(
        "orchestrator-cfg-{}-{}.toml",
        std::process::id(),
        text.len()
    ));
    std::fs::write(&file, text).expect("write");
    let path = file.display().to_string();
    let mut all = vec!["--config", path.as_str()];
    all.extend_from_slice(args);
    let started = std::time::Instant::now();
    let (code, _, err) = cli(&all, &[]);
    let _ = std::fs::remove_file(&file);
    (code, err, started.elapsed())
}

/// Hardening 4 (issue #32): configuration input is bounded and never echoed.
#[test]
fn configuration_input_is_bounded_and_never_echoed() {
    // An endless file: refused at its cap, at once, in one short line.
    let started = std::time::Instant::now();
    let (code, _, err) = cli(
        &["--config", "/dev/zero", "status", "memory-bullmq:q:1"],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(err.contains("larger than"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    // A parse error names the line and column, not the source (secrets are in it).
    for (text, secret) in [
        (
            "[backends.bullmq]\nurl = \"redis://:pa55word-in-url@h:6379\" junk\n",
            "pa55word",
        ),
        ("[backends.bullmq]\npassword = s3cret-unquoted\n", "s3cret"),
    ] {
        let (code, err, _) = with_config_text(text.as_bytes(), &["status", "memory-bullmq:q:1"]);
        assert_eq!(code, 1, "{err}");
        assert!(!err.contains(secret), "the error echoes a secret: {err}");
        assert!(err.contains("line "), "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
    // 10 MB of junk: a short error.
    let junk: Vec<u8> = (0..10_000_000u32)
        .map(|i| b"a=\x01[]\"\n"[(i % 7) as usize])
        .collect();
    let (code, err, _) = with_config_text(&junk, &["status", "memory-bullmq:q:1"]);
    assert_eq!(code, 1, "{}", &err[..err.len().min(300)]);
    assert!(err.len() < 2000, "{} bytes of error", err.len());
    // Junk under the cap, on one line: the parse error is short too.
    let junk = vec![b'x'; 900_000];
    let (code, err, _) = with_config_text(&junk, &["status", "memory-bullmq:q:1"]);
    assert_eq!(code, 1, "{}", &err[..err.len().min(300)]);
    assert!(err.len() < 2000, "{} bytes of error", err.len());
}

/// Hardening 4 (issue #32): `--config` and `ORCHESTRATOR_CONFIG` naming two files is a
/// usage error (they were merged, the variable's file silently winning); naming one file
/// twice is fine.
#[test]
fn one_configuration_file_named_once() {
    let file = std::env::temp_dir().join(format!("orchestrator-one-{}.toml", std::process::id()));
    std::fs::write(&file, "[routing]\nsimple = \"memory-bullmq\"\n").expect("write");
    let path = file.display().to_string();
    let (code, _, err) = cli(
        &["--config", &path, "schedule", "q", "--type", "simple"],
        &[("ORCHESTRATOR_CONFIG", "/nonexistent/other.toml")],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("two files"), "{err}");
    let (code, _, err) = cli(
        &["--config", &path, "schedule", "q", "--type", "simple"],
        &[("ORCHESTRATOR_CONFIG", path.as_str())],
    );
    let _ = std::fs::remove_file(&file);
    assert_eq!(code, 0, "{err}");
}

/// Hardening 4 (issue #32): two variables that set the same setting to different values
/// are refused, naming both; the same value twice is fine.
#[test]
fn two_variables_for_one_setting_are_refused_unless_equal() {
    let (code, out, err) = cli(
        &["backends"],
        &[
            ("ORCHESTRATOR_MEMORY_BULLMQ_CONCURRENCY", "2"),
            ("ORCHESTRATOR_BACKENDS__MEMORY_BULLMQ__CONCURRENCY", "3"),
            ("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq"),
        ],
    );
    assert_eq!(
        code, 0,
        "backends prints the config error without failing: {err}"
    );
    assert!(
        out.contains("configured: none") && out.contains("ORCHESTRATOR_MEMORY_BULLMQ_CONCURRENCY"),
        "{out}"
    );
    let (code, _, err) = cli(
        &["schedule", "q", "--type", "simple"],
        &[
            ("ORCHESTRATOR_MEMORY_BULLMQ_CONCURRENCY", "2"),
            ("ORCHESTRATOR_BACKENDS__MEMORY_BULLMQ__CONCURRENCY", "3"),
            ("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("ORCHESTRATOR_MEMORY_BULLMQ_CONCURRENCY")
            && err.contains("ORCHESTRATOR_BACKENDS__MEMORY_BULLMQ__CONCURRENCY"),
        "{err}"
    );
    let (code, _, err) = cli(
        &["schedule", "q", "--type", "simple"],
        &[
            ("ORCHESTRATOR_MEMORY_BULLMQ_CONCURRENCY", "2"),
            ("ORCHESTRATOR_BACKENDS__MEMORY_BULLMQ__CONCURRENCY", "2"),
            ("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq"),
        ],
    );
    assert_eq!(code, 0, "{err}");
}

/// `orchestrator serve` reads `[serve]` (here from `ORCHESTRATOR_SERVE_*`): an unknown key
/// is refused by name, `bind` and `token` are honoured, the token is never printed.
#[test]
fn serve_reads_the_serve_table() {
    let (code, _, err) = cli(&["serve"], &[("ORCHESTRATOR_SERVE_PORT", "80")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("serve.port"), "{err}");
    let (code, _, err) = cli(&["serve"], &[("ORCHESTRATOR_SERVE_BIND", "0.0.0.0:0")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("needs a token"), "{err}");
    let (code, _, err) = cli(
        &["serve"],
        &[
            ("ORCHESTRATOR_SERVE_BIND", "0.0.0.0:0"),
            ("ORCHESTRATOR_SERVE_TOKEN", "s3cret-env-token"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no backend is configured"), "{err}");
    // An error about the token itself does not show it.
    let (code, _, err) = cli(
        &["serve"],
        &[
            ("ORCHESTRATOR_SERVE_TOKEN", "s3cret-env-token"),
            ("ORCHESTRATOR_SERVE_TOKEN_FILE", "/nonexistent/token"),
        ],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("both set"), "{err}");
    assert!(!err.contains("s3cret-env-token"), "{err}");
    let (code, _, err) = cli(&["serve"], &[("ORCHESTRATOR_SERVE_MAX_WAITS", "0")]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("max_waits must be greater than 0"), "{err}");
}

/// `orchestrator serve`: refuses to listen beyond loopback without a token; with one, the
/// API answers 401 without it and serves with it; SIGTERM ends it with exit 0.
#[test]
fn serve_guards_its_api_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader, Read, Write};
    let (code, _, err) = cli(&["serve", "--bind", "0.0.0.0:0"], &[]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("needs a token"), "{err}");

    let dir = std::env::temp_dir().join(format!("orch-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let token = dir.join("token");
    std::fs::write(&token, "s3cret-serve-token\n").expect("token");
    // Beyond loopback with a token but nothing configured: refused, not in-memory engines.
    let (code, _, err) = cli(
        &[
            "serve",
            "--bind",
            "0.0.0.0:0",
            "--token-file",
            token.to_str().expect("path"),
        ],
        &[],
    );
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("no backend is configured"), "{err}");
    let mut server = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["serve", "--bind", "127.0.0.1:0", "--token-file"])
        .arg(&token)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = BufReader::new(server.stderr.take().expect("stderr"));
    let mut line = String::new();
    while !line.starts_with("serving on") {
        line.clear();
        assert!(
            stderr.read_line(&mut line).expect("a line") > 0,
            "no address"
        );
    }
    let addr = line
        .trim()
        .strip_prefix("serving on http://")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    // One HTTP/1.1 request (`head`: request line and headers), the whole answer.
    let fetch = |head: &str, body: &str| -> String {
        let mut s = std::net::TcpStream::connect(&addr).expect("connect");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        write!(
            s,
            "{head}Host: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .expect("write");
        let mut answer = String::new();
        let _ = s.read_to_string(&mut answer);
        answer
    };
    // Its status code.
    let request = |head: &str, body: &str| -> u16 {
        let answer = fetch(head, body);
        answer
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or_else(|| panic!("{answer}"))
    };
    assert_eq!(request("GET /v1/counts HTTP/1.1\r\n", ""), 401);
    let auth = "Authorization: Bearer s3cret-serve-token\r\n";
    assert_eq!(
        request(&format!("GET /v1/counts HTTP/1.1\r\n{auth}"), ""),
        200
    );
    assert_eq!(request("GET /healthz HTTP/1.1\r\n", ""), 200);
    // Nothing configured: the in-memory engines serve.
    assert_eq!(
        request(
            &format!("POST /v1/tasks HTTP/1.1\r\n{auth}Content-Type: application/json\r\n"),
            r#"{"name":"emails","payload":{}}"#
        ),
        201
    );
    // The metrics, behind the token, count it.
    assert_eq!(request("GET /metrics HTTP/1.1\r\n", ""), 401);
    let metrics = fetch(&format!("GET /metrics HTTP/1.1\r\n{auth}"), "");
    assert!(metrics.starts_with("HTTP/1.1 200"), "{metrics}");
    assert!(
        metrics.contains(
            r#"orchestrator_schedule_total{backend="memory-bullmq",kind="memory-bullmq",type="SIMPLE",outcome="ok"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("orchestrator_operation_duration_seconds_bucket"),
        "{metrics}"
    );
    let _ = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status();
    let status = server.wait().expect("wait");
    let mut rest = String::new();
    let _ = stderr.read_to_string(&mut rest);
    assert!(status.success(), "{status}: {rest}");
    assert!(rest.contains("stopped"), "{rest}");
    assert!(!rest.contains("s3cret"), "{rest}");
    let _ = std::fs::remove_dir_all(&dir);
}
