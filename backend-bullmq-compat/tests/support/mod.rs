//! Real engines for the tests: a throwaway `redis-server` per test on a free loopback
//! port, and the real Node BullMQ package driven through small scripts.
//!
//! Under the README's test command (`scripts/test.sh`, which sets `ORCH_TEST_REQUIRE=1`) a
//! missing engine fails the test with a message saying how to get it; under a plain
//! `cargo test` the test prints one skip line and returns.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backend_bullmq_compat::{BullmqBackend, BullmqConfig};

pub fn required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE").is_ok_and(|v| v == "1")
}

/// Fail (required) or print a skip line (not required).
pub fn missing(what: &str, how: &str) -> Option<std::convert::Infallible> {
    let msg = format!("{what} is not available: {how}");
    assert!(!required(), "{msg}");
    println!("SKIPPED (real engine missing): {msg}");
    None
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A redis-server process on a free port, killed on drop.
pub struct RedisServer {
    child: Child,
    pub port: u16,
}

impl RedisServer {
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Start with extra `redis-server` arguments (for example `--requirepass x`).
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        for _ in 0..5 {
            let port = free_port();
            let child = Command::new(&bin)
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                ])
                .args(extra)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn();
            let child = match child {
                Ok(c) => c,
                Err(e) => {
                    missing(
                        "redis-server",
                        &format!(
                            "cannot run `{bin}` ({e}); run scripts/test.sh, which installs it (apt-get install redis-server)"
                        ),
                    )?;
                    unreachable!()
                }
            };
            let mut server = RedisServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // port raced away: try another
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = server.child.kill();
        }
        panic!("redis-server did not start on a free loopback port after 5 tries");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn backend(&self) -> BullmqBackend {
        BullmqBackend::new(
            BullmqConfig::new(self.url()).timeouts(Duration::from_secs(3), Duration::from_secs(5)),
        )
        .expect("backend")
    }

    /// Run a raw Redis command through redis-cli-free means: the backend's crate.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
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
