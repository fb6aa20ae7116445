//! A library user who adds `orchestrator` with default features compiles no CLI or
//! log-subscriber crate (those live in `orchestrator-cli`), and no engine client.

use std::process::Command;

#[test]
fn default_features_pull_no_cli_crates() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "-p",
            "orchestrator",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--offline",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(tree.contains("orchestrator-core"), "{tree}");
    // No CLI or subscriber crate, and no engine client: the default build has each
    // engine's spec (its option types) but none of its clients.
    for unwanted in [
        "clap ",
        "clap_builder ",
        "tracing-subscriber ",
        "libtest-mimic ",
        "redis ",
        "bb8 ",
        "reqwest ",
        "tonic ",
        "temporalio-client ",
        "bullmq-official ",
    ] {
        assert!(
            !tree.lines().any(|l| l.starts_with(unwanted)),
            "`{unwanted}` is a default dependency of orchestrator:\n{tree}"
        );
    }
}
