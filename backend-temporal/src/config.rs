//! Configuration of the `temporal` backend (`[backends.temporal]`).

use std::time::Duration;

use orchestrator_core::{Error, Millis, RedactedUrl, Result, Secret};
use serde::Deserialize;

/// Settings of the `temporal` backend.
///
/// ```toml
/// [backends.temporal]
/// url = "http://127.0.0.1:7233"   # https:// for TLS
/// namespace = "default"
/// task_queue = "migrations"        # used when a task sets no temporal.taskQueue
/// identity = "billing-api@host"
/// api_key = "…"                    # sent as a bearer token; never printed
/// connect_timeout_ms = 5000
/// rpc_timeout_ms = 10000
/// ```
///
/// Environment: `ORCHESTRATOR_TEMPORAL_URL`, `ORCHESTRATOR_TEMPORAL_NAMESPACE`, …
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TemporalConfig {
    /// Frontend gRPC address, `http://host:port` (or `https://` for TLS).
    pub url: RedactedUrl,
    /// Namespace every workflow is started in.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Task queue for tasks that set none.
    #[serde(default)]
    pub task_queue: Option<String>,
    /// Client identity recorded on the workflows' history.
    #[serde(default)]
    pub identity: Option<String>,
    /// API key (Temporal Cloud); never printed.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// How long connecting may take before `Unavailable`.
    #[serde(default = "default_connect_ms")]
    pub connect_timeout_ms: Millis,
    /// How long one call may take before `Timeout`.
    #[serde(default = "default_rpc_ms")]
    pub rpc_timeout_ms: Millis,
    /// The largest payload (serialized JSON, bytes) accepted, the workflow arguments
    /// included; larger is `InvalidInput` before any I/O. Default 1.5 MiB, at most 2 MB:
    /// Temporal refuses larger payloads.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
}

fn default_max_payload() -> usize {
    orchestrator_core::validate::DEFAULT_MAX_PAYLOAD_COMPLEX
}

/// Temporal's own limit for one payload (its default `limit.blobSize.error`).
const TEMPORAL_BLOB_LIMIT: usize = 2_000_000;

fn default_namespace() -> String {
    "default".into()
}

fn default_connect_ms() -> Millis {
    Millis::new(5000)
}

fn default_rpc_ms() -> Millis {
    Millis::new(10_000)
}

impl TemporalConfig {
    /// A configuration for `url` in namespace `default`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: RedactedUrl::new(url),
            namespace: default_namespace(),
            task_queue: None,
            identity: None,
            api_key: None,
            connect_timeout_ms: default_connect_ms(),
            rpc_timeout_ms: default_rpc_ms(),
            max_payload_bytes: default_max_payload(),
        }
    }

    /// Use `namespace`.
    #[must_use]
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// Default task queue for tasks that set none.
    #[must_use]
    pub fn task_queue(mut self, queue: impl Into<String>) -> Self {
        self.task_queue = Some(queue.into());
        self
    }

    /// Set both timeouts.
    #[must_use]
    pub fn timeouts(mut self, connect: Duration, rpc: Duration) -> Self {
        self.connect_timeout_ms = Millis::from_duration(connect);
        self.rpc_timeout_ms = Millis::from_duration(rpc);
        self
    }

    /// Check the settings without connecting.
    pub fn validate(&self) -> Result<()> {
        self.url
            .check("backends.temporal.url", &["http", "https"])?;
        if self.namespace.trim().is_empty() {
            return Err(Error::config(
                "backends.temporal.namespace must not be empty",
            ));
        }
        if self
            .task_queue
            .as_deref()
            .is_some_and(|q| q.trim().is_empty())
        {
            return Err(Error::config(
                "backends.temporal.task_queue must not be empty",
            ));
        }
        if self.max_payload_bytes == 0 || self.max_payload_bytes > TEMPORAL_BLOB_LIMIT {
            return Err(Error::config(format!(
                "backends.temporal.max_payload_bytes must be between 1 and {TEMPORAL_BLOB_LIMIT} (Temporal's payload limit)"
            )));
        }
        self.connect_timeout_ms
            .check_positive("backends.temporal.connect_timeout_ms")?;
        self.rpc_timeout_ms
            .check_positive("backends.temporal.rpc_timeout_ms")?;
        Ok(())
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout_ms.get()
    }

    pub(crate) fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout_ms.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validation_and_redaction() {
        let c: TemporalConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:7233", "api_key": "tk-secret-123"
        }))
        .expect("config");
        c.validate().expect("valid");
        assert_eq!(c.namespace, "default");
        assert!(!format!("{c:?}").contains("tk-secret-123"));
        for bad in ["127.0.0.1:7233", "grpc://h:1", "http://"] {
            let e = TemporalConfig::new(bad).validate().expect_err(bad);
            assert_eq!(
                e.kind(),
                orchestrator_core::ErrorKind::InvalidConfig,
                "{bad}"
            );
            assert!(
                e.to_string().contains("backends.temporal.url"),
                "{bad}: {e}"
            );
        }
        let e = TemporalConfig::new("http://h:1")
            .namespace(" ")
            .validate()
            .expect_err("namespace");
        assert_eq!(e.kind(), orchestrator_core::ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("namespace"), "{e}");
    }
}
