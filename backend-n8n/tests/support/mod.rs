//! A real n8n per test, started and provisioned by scripts/n8n-up.sh (which installs n8n
//! once into ~/.cache/orchestrator), stopped by scripts/n8n-down.sh.
//!
//! Under scripts/test.sh (`ORCH_TEST_REQUIRE=1`) everything is installed on demand and a
//! failure to start fails the test. Under a plain `cargo test` the tests print one skip line
//! when n8n has not been installed yet.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use backend_n8n::{N8nBackend, N8nConfig};

pub fn required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE").is_ok_and(|v| v == "1")
}

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf()
}

fn installed() -> bool {
    let cache = std::env::var("ORCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/orchestrator")
        });
    let version = std::env::var("N8N_VERSION").unwrap_or_else(|_| "2.40.7".into());
    cache.join(format!("n8n-{version}/.n8n-version")).exists()
}

/// A running n8n, stopped on drop.
pub struct N8nServer {
    pub env: HashMap<String, String>,
    pid: String,
}

impl N8nServer {
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Start with extra `n8n-up.sh` arguments (`--port P`, `--data-dir D`).
    pub fn start_with(args: &[&str]) -> Option<Self> {
        if !required() && !installed() {
            println!(
                "SKIPPED (real engine missing): n8n is not installed; run scripts/n8n-install.sh (or scripts/test.sh)"
            );
            return None;
        }
        let out = Command::new(root().join("scripts/n8n-up.sh"))
            .args(args)
            .output()
            .expect("run n8n-up.sh");
        assert!(
            out.status.success(),
            "scripts/n8n-up.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let pid = env.get("N8N_PID").cloned().expect("N8N_PID");
        Some(Self { env, pid })
    }

    pub fn url(&self) -> &str {
        &self.env["N8N_URL"]
    }

    pub fn api_key(&self) -> &str {
        &self.env["N8N_API_KEY"]
    }

    pub fn config(&self) -> N8nConfig {
        N8nConfig::new(self.url()).api_key(self.api_key()).delivery(
            Duration::from_secs(10),
            3,
            Duration::from_millis(100),
        )
    }

    pub fn backend(&self) -> N8nBackend {
        N8nBackend::new(self.config()).expect("backend")
    }

    pub fn stop(&mut self) {
        if !self.pid.is_empty() {
            let _ = Command::new(root().join("scripts/n8n-down.sh"))
                .arg(&self.pid)
                .status();
            self.pid.clear();
        }
    }
}

impl Drop for N8nServer {
    fn drop(&mut self) {
        self.stop();
    }
}
