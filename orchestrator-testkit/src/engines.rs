//! Throwaway real engines for integration tests: a `redis-server` on a free loopback port.
//!
//! [`required`] tells whether a missing engine must fail the test (`ORCH_TEST_REQUIRE=1`,
//! set by the project's test command) or only print a skip line.

use std::net::TcpListener;
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

/// A free TCP port on 127.0.0.1 (free when asked; bind it soon).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free loopback port: {e}"))
}

/// A `redis-server` (from `$REDIS_SERVER` or `PATH`) on a free loopback port, without
/// persistence, killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    child: Child,
    /// The port it listens on.
    pub port: u16,
}

impl RedisServer {
    /// Start one; `None` (after a skip line) when `redis-server` is missing and engines are
    /// not required.
    pub fn start() -> Option<Self> {
        Self::start_with(&[])
    }

    /// Start one with extra arguments (for example `["--requirepass", "x"]`).
    pub fn start_with(extra: &[&str]) -> Option<Self> {
        let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
        for _ in 0..5 {
            let port = free_port();
            let child = match Command::new(&bin)
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
                Err(e) => {
                    return missing(
                        "redis-server",
                        &format!(
                            "cannot run `{bin}` ({e}); run scripts/setup.sh, which installs it (apt-get install redis-server)"
                        ),
                    );
                }
            };
            let mut server = RedisServer { child, port };
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Some(server);
                }
                if let Ok(Some(_)) = server.child.try_wait() {
                    break; // the port was taken in between: try another
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            server.stop();
        }
        panic!("redis-server did not start on a free loopback port after 5 tries");
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kill it now.
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
