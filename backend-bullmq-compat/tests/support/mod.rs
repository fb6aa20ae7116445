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
