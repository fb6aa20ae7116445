//! A throwaway `redis-server`.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{Need, free_port, kill, unavailable};

fn spawn_redis(port: u16, extra: &[String]) -> Child {
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
        Ok(c) => c,
        Err(e) => unavailable(
            "redis-server",
            &format!("cannot run `{bin}` ({e}); {}", Need::Redis.how()),
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
    /// Start one (a missing `redis-server` panics, saying how to install it).
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Start one with extra arguments (for example `["--requirepass", "x"]`).
    pub fn start_with(extra: &[&str]) -> Self {
        let mut extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        for _ in 0..5 {
            let port = free_port();
            let child = spawn_redis(port, &extra);
            let mut server = RedisServer { child, port, extra };
            if server.serves() {
                return server;
            }
            // The port was taken in between: try another.
            server.stop();
            extra = std::mem::take(&mut server.extra);
        }
        panic!("redis-server did not start on a free loopback port after 5 tries");
    }

    /// Start one on `port` (for example one a test held silent until now).
    pub fn start_on(port: u16, extra: &[&str]) -> Self {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let child = spawn_redis(port, &extra);
        let mut server = RedisServer { child, port, extra };
        assert!(server.serves(), "redis-server did not start on port {port}");
        server
    }

    /// SIGKILL it (if still running) and start it again on the same port with the same
    /// arguments (with `--appendonly yes --dir D` it reloads its data). Returns once it
    /// accepts connections (it may still answer `LOADING` while it replays the AOF).
    pub fn restart(&mut self) {
        self.stop();
        self.child = spawn_redis(self.port, &self.extra);
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
