//! A throwaway n8n, started and provisioned by `scripts/n8n-up.sh`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::{required, unavailable, workspace_root};

/// Whether n8n `version` is installed in the cache (`$ORCH_CACHE`, else
/// `~/.cache/orchestrator`).
pub fn n8n_installed(version: &str) -> bool {
    let cache = std::env::var("ORCH_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/orchestrator")
        });
    cache.join(format!("n8n-{version}/.n8n-version")).exists()
}

/// The n8n version the tests target (`N8N_VERSION`, default 2.40.7).
pub fn n8n_default_version() -> String {
    std::env::var("N8N_VERSION").unwrap_or_else(|_| "2.40.7".into())
}

/// A running n8n, started and provisioned (owner, API key, test workflows) by
/// `scripts/n8n-up.sh`, stopped by `scripts/n8n-down.sh` on drop.
#[derive(Debug)]
pub struct N8nServer {
    /// What `n8n-up.sh` printed (`N8N_URL`, `N8N_API_KEY`, `N8N_PID`, …).
    pub env: HashMap<String, String>,
    pid: String,
    /// The data directory `n8n-up.sh` made (removed on stop); `None` when the caller gave one.
    own_data: Option<PathBuf>,
}

impl N8nServer {
    /// Start the default version.
    pub fn start() -> Self {
        Self::start_version(&n8n_default_version(), &[])
    }

    /// Start n8n `version` with extra `n8n-up.sh` arguments (`--port P`, `--data-dir D`).
    /// Under [`required`] the script installs it on demand.
    pub fn start_version(version: &str, args: &[&str]) -> Self {
        if !required() && !n8n_installed(version) {
            unavailable(
                &format!("n8n {version}"),
                &format!("run N8N_VERSION={version} scripts/n8n-install.sh (or scripts/test.sh)"),
            );
        }
        let out = Command::new(workspace_root().join("scripts/n8n-up.sh"))
            .args(args)
            .env("N8N_VERSION", version)
            .output()
            .unwrap_or_else(|e| panic!("cannot run scripts/n8n-up.sh: {e}"));
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
        let pid = env
            .get("N8N_PID")
            .cloned()
            .unwrap_or_else(|| panic!("scripts/n8n-up.sh printed no N8N_PID: {env:?}"));
        let own_data = (!args.contains(&"--data-dir"))
            .then(|| env.get("N8N_DATA_DIR").map(PathBuf::from))
            .flatten();
        Self { env, pid, own_data }
    }

    /// n8n's base URL.
    pub fn url(&self) -> &str {
        &self.env["N8N_URL"]
    }

    /// The provisioned public API key.
    pub fn api_key(&self) -> &str {
        &self.env["N8N_API_KEY"]
    }

    /// SIGKILL n8n (its whole process group), as a crash would; unlike [`N8nServer::stop`]
    /// it keeps the data directory, for a restart on it.
    pub fn kill(&mut self) {
        if !self.pid.is_empty() {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.pid)])
                .status();
            let _ = Command::new("kill").args(["-KILL", &self.pid]).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
                && Instant::now() < deadline
            {
                std::thread::sleep(Duration::from_millis(50));
            }
            self.pid.clear();
        }
    }

    /// Stop it now.
    pub fn stop(&mut self) {
        if !self.pid.is_empty() {
            let _ = Command::new(workspace_root().join("scripts/n8n-down.sh"))
                .arg(&self.pid)
                .status();
            self.pid.clear();
        }
        // Each start makes a data directory (SQLite database, logs): do not let runs pile
        // up, but keep it (and n8n.log) when a test failed.
        if let Some(dir) = self.own_data.take() {
            if std::thread::panicking() {
                eprintln!("n8n data and log kept in {}", dir.display());
            } else {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}

impl Drop for N8nServer {
    fn drop(&mut self) {
        self.stop();
    }
}
