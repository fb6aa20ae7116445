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

pub use orchestrator_testkit::engines::required;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("root")
        .to_path_buf()
}

pub fn installed(version: &str) -> bool {
    let cache = std::env::var("ORCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/orchestrator")
        });
    cache.join(format!("n8n-{version}/.n8n-version")).exists()
}

/// The n8n version the tests target (`N8N_VERSION`, default 2.40.7).
pub fn default_version() -> String {
    std::env::var("N8N_VERSION").unwrap_or_else(|_| "2.40.7".into())
}

/// A running n8n, stopped on drop.
pub struct N8nServer {
    pub env: HashMap<String, String>,
    pid: String,
}

impl N8nServer {
    pub fn start() -> Option<Self> {
        Self::start_version(&default_version(), &[])
    }

    /// Start n8n `version` with extra `n8n-up.sh` arguments (`--port P`, `--data-dir D`).
    pub fn start_version(version: &str, args: &[&str]) -> Option<Self> {
        if !required() && !installed(version) {
            println!(
                "SKIPPED (real engine missing): n8n {version} is not installed; run N8N_VERSION={version} scripts/n8n-install.sh (or scripts/test.sh)"
            );
            return None;
        }
        let out = Command::new(root().join("scripts/n8n-up.sh"))
            .args(args)
            .env("N8N_VERSION", version)
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
