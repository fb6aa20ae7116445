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

/// The task id a backend of [`config`] on `server` issues for dispatch `dispatch` and
/// execution `exec`, computed here from the documented scheme (HMAC-SHA256 over
/// `n8n:<dispatch>[:<exec>]`, keyed by `orchestrator n8n task ids|<url>`, first 16 bytes in
/// hex): an id the backend accepts as its own, naming whatever the test wants.
pub fn signed_id(
    server: &N8nServer,
    dispatch: &str,
    exec: Option<&str>,
) -> orchestrator_core::TaskId {
    use hmac::{Hmac, KeyInit, Mac};
    let key = format!(
        "orchestrator n8n task ids|{}",
        server.url().trim_end_matches('/')
    );
    let body = match exec {
        Some(e) => format!("{dispatch}:{e}"),
        None => dispatch.to_string(),
    };
    let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(key.as_bytes()).expect("key");
    mac.update(format!("n8n:{body}").as_bytes());
    let sig = hex::encode(&mac.finalize().into_bytes()[..16]);
    format!("n8n:{body}.{sig}")
        .parse()
        .expect("a well-formed id")
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
