//! Real engines for the tests (the testkit's shared `engines`), plus the backend built on
//! a throwaway Redis.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::time::Duration;

use backend_bullmq_compat::{BullmqBackend, BullmqConfig};

pub use orchestrator_testkit::engines::*;

/// A `bullmq` backend on `redis`, with short timeouts.
pub fn backend(redis: &RedisServer) -> BullmqBackend {
    BullmqBackend::new(
        BullmqConfig::new(redis.url()).timeouts(Duration::from_secs(3), Duration::from_secs(5)),
    )
    .expect("backend")
}

/// A plain connection to `redis`, for inspecting what the backend wrote.
pub async fn redis_conn(redis: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(redis.url())
        .expect("client")
        .get_multiplexed_async_connection()
        .await
        .expect("conn")
}

/// `INFO <section>`.
pub async fn info(conn: &mut redis::aio::MultiplexedConnection, section: &str) -> String {
    redis::cmd("INFO")
        .arg(section)
        .query_async(conn)
        .await
        .expect("info")
}

/// Reset Redis's command statistics, then run `work` and return `INFO commandstats`.
pub async fn commandstats_of<F: std::future::Future<Output = ()>>(
    conn: &mut redis::aio::MultiplexedConnection,
    work: F,
) -> String {
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(conn)
        .await
        .expect("resetstat");
    work.await;
    info(conn, "commandstats").await
}

/// Microseconds of Redis time per call of `command` in `INFO commandstats` output.
pub fn usec_per_call(stats: &str, command: &str) -> f64 {
    stats
        .lines()
        .find(|l| l.starts_with(&format!("cmdstat_{command}:")))
        .and_then(|l| l.split(',').find_map(|f| f.strip_prefix("usec_per_call=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {command} in:\n{stats}"))
}
