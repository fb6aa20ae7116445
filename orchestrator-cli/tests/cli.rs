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
    assert!(v["taskOptions"]["properties"]["temporal"].is_object());
}

#[test]
fn backends_lists_every_compiled_backend() {
    let (code, out, _) = cli(&["backends"], &[]);
    assert_eq!(code, 0);
    for name in orchestrator::compiled_backends() {
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
    assert!(err.contains("more than 67108864 bytes"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
