//! The real Node BullMQ package, run through `interop/scripts`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{unavailable, workspace_root};

/// The Node BullMQ major the interop tests target (`BULLMQ_NODE_MAJOR`: 5 or 6, default 6).
/// Any other value is refused rather than read as the default.
pub fn node_major() -> u32 {
    match std::env::var("BULLMQ_NODE_MAJOR") {
        Err(_) => 6,
        Ok(v) => match v.trim() {
            "5" => 5,
            "6" => 6,
            other => panic!("BULLMQ_NODE_MAJOR={other}: expected 5 or 6"),
        },
    }
}

/// `interop/node<major>`, where `npm ci` installed Node BullMQ `major`.x.
pub fn node_dir(major: u32) -> PathBuf {
    let dir = workspace_root().join(format!("interop/node{major}"));
    if !node_installed(&dir) {
        unavailable(
            &format!("Node BullMQ {major}.x"),
            &format!(
                "run scripts/test.sh (it runs `npm ci` in {})",
                dir.display()
            ),
        );
    }
    dir
}

pub(super) fn node_installed(dir: &std::path::Path) -> bool {
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    dir.join("node_modules/bullmq/package.json").exists() && node_ok
}

/// Run `interop/scripts/<script>` with Node against `redis_url`. Returns stdout parsed as
/// JSON (the scripts print one JSON document); a non-zero exit fails the test.
pub async fn node(redis_url: &str, script: &str, args: &[&str]) -> serde_json::Value {
    let dir = node_dir(node_major());
    let out = tokio::process::Command::new("node")
        .arg(workspace_root().join("interop/scripts").join(script))
        .args(args)
        .env("BULLMQ_DIR", &dir)
        .env("REDIS_URL", redis_url)
        .output()
        .await
        .unwrap_or_else(|e| panic!("cannot run node: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let out: serde_json::Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("node {script} printed no JSON ({e}):\n{stdout}\n{stderr}"));
    assert_node_bullmq(&out);
    out
}

/// Panic unless a script's output says it loaded BullMQ [`node_major`]`.x` (the scripts
/// print `"bullmq": "<version>"` with every result).
pub fn assert_node_bullmq(out: &serde_json::Value) {
    let major = node_major();
    let loaded = out["bullmq"].as_str().unwrap_or_default();
    assert!(
        loaded.starts_with(&format!("{major}.")),
        "Node loaded bullmq `{loaded}`, expected {major}.x: {out}"
    );
}

/// Start `interop/scripts/<script>` in the background (a long-running Node worker), killed
/// when dropped.
pub fn node_spawn(redis_url: &str, script: &str, args: &[&str]) -> tokio::process::Child {
    let dir = node_dir(node_major());
    tokio::process::Command::new("node")
        .arg(workspace_root().join("interop/scripts").join(script))
        .args(args)
        .env("BULLMQ_DIR", &dir)
        .env("REDIS_URL", redis_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run node: {e}"))
}

/// Wait (at most `timeout`) for a script started with [`node_spawn`] to exit successfully
/// and return the JSON object it printed last (`events.js` prints its events so).
pub async fn node_output(mut child: tokio::process::Child, timeout: Duration) -> serde_json::Value {
    let mut stdout = child.stdout.take().expect("node_spawn pipes stdout");
    let read = async {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut stdout, &mut text)
            .await
            .expect("read the script's output");
        (text, child.wait().await.expect("the script exits"))
    };
    let (text, status) = tokio::time::timeout(timeout, read)
        .await
        .unwrap_or_else(|_| panic!("the node script did not finish within {timeout:?}"));
    assert!(
        status.success(),
        "the node script exited with {status}: {text}"
    );
    let last = text.trim().lines().last().unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
