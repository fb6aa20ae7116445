//! The testkit's shared `engines`, plus the backend built on a throwaway dev server.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use backend_temporal::{TemporalBackend, TemporalConfig};

pub use orchestrator_testkit::engines::*;

/// A `temporal` backend on `server`, with short timeouts.
pub fn backend(server: &TemporalServer) -> TemporalBackend {
    TemporalBackend::new(
        TemporalConfig::new(server.url()).timeouts(Duration::from_secs(5), Duration::from_secs(10)),
    )
    .expect("backend")
}
