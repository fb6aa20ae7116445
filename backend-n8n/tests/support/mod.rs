//! The testkit's shared `engines` (n8n started and provisioned by scripts/n8n-up.sh), plus
//! the backend built on it.
#![allow(dead_code, unused_imports, unreachable_pub)]

use std::time::Duration;

use backend_n8n::{N8nBackend, N8nConfig};

pub use orchestrator_testkit::engines::*;

/// The configuration of a backend on `server`: its URL and API key, 10 s timeout, 3 delivery
/// attempts 100 ms apart.
pub fn config(server: &N8nServer) -> N8nConfig {
    N8nConfig::new(server.url())
        .api_key(server.api_key())
        .delivery(Duration::from_secs(10), 3, Duration::from_millis(100))
}

/// An `n8n` backend on `server`.
pub fn backend(server: &N8nServer) -> N8nBackend {
    N8nBackend::new(config(server)).expect("backend")
}

/// n8n's own list of `workflow_id`'s executions, with their data (the API's JSON).
pub async fn executions(server: &N8nServer, workflow_id: &str, limit: u32) -> serde_json::Value {
    reqwest::Client::new()
        .get(format!(
            "{}/api/v1/executions?workflowId={workflow_id}&limit={limit}&includeData=true",
            server.url()
        ))
        .header("X-N8N-API-KEY", server.api_key())
        .send()
        .await
        .expect("list executions")
        .json()
        .await
        .expect("executions JSON")
}
