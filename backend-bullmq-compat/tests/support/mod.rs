//! Real engines for the tests: a throwaway `redis-server` per test on a free loopback
//! port, and the real Node BullMQ package driven through small scripts.
//!
//! Under the README's test command (`scripts/test.sh`, which sets `ORCH_TEST_REQUIRE=1`) a
//! missing engine fails the test with a message saying how to get it; under a plain
//! `cargo test` the test prints one skip line and returns.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use backend_bullmq_compat::{BullmqBackend, BullmqConfig};

pub use orchestrator_testkit::engines::{missing, required};

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// A throwaway redis-server (from the testkit) with a helper to build the backend.
pub struct RedisServer(orchestrator_testkit::engines::RedisServer);

impl std::ops::Deref for RedisServer {
    type Target = orchestrator_testkit::engines::RedisServer;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl RedisServer {
    pub fn start() -> Option<Self> {
        orchestrator_testkit::engines::RedisServer::start().map(Self)
    }

    pub fn start_with(extra: &[&str]) -> Option<Self> {
        orchestrator_testkit::engines::RedisServer::start_with(extra).map(Self)
    }

    pub fn backend(&self) -> BullmqBackend {
        BullmqBackend::new(
            BullmqConfig::new(self.url()).timeouts(Duration::from_secs(3), Duration::from_secs(5)),
        )
        .expect("backend")
    }
}

/// Node BullMQ major versions installed under `interop/node<major>`.
pub fn node_dir(major: u32) -> Option<PathBuf> {
    let dir = workspace_root().join(format!("interop/node{major}"));
    if dir.join("node_modules/bullmq/package.json").exists() && which("node") {
        Some(dir)
    } else {
        missing(
            &format!("Node BullMQ {major}.x"),
            &format!(
                "run scripts/test.sh (it runs `npm ci` in {})",
                dir.display()
            ),
        )?;
        unreachable!()
    }
}

fn which(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// The BullMQ major the interop tests target (`BULLMQ_NODE_MAJOR`, default 6).
pub fn node_major() -> u32 {
    std::env::var("BULLMQ_NODE_MAJOR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(6)
}

/// Run `interop/scripts/<script>` with Node against `redis_url`; `args` are JSON-able
/// strings. Returns stdout parsed as JSON (the scripts print one JSON document).
pub async fn node(redis_url: &str, script: &str, args: &[&str]) -> Option<serde_json::Value> {
    let dir = node_dir(node_major())?;
    let out = tokio::process::Command::new("node")
        .arg(workspace_root().join("interop/scripts").join(script))
        .args(args)
        .env("BULLMQ_DIR", &dir)
        .env("REDIS_URL", redis_url)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "node {script} failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    Some(
        serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("node {script} printed no JSON ({e}):\n{stdout}\n{stderr}")),
    )
}

/// Start `interop/scripts/<script>` in the background (a long-running Node worker).
pub fn node_spawn(redis_url: &str, script: &str, args: &[&str]) -> Option<tokio::process::Child> {
    let dir = node_dir(node_major())?;
    Some(
        tokio::process::Command::new("node")
            .arg(workspace_root().join("interop/scripts").join(script))
            .args(args)
            .env("BULLMQ_DIR", &dir)
            .env("REDIS_URL", redis_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn node"),
    )
}

pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}
