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
/// name_attribute = "OrchestratorTaskName"   # Keyword search attribute holding the task name
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
    /// The Keyword search attribute that holds each task's name, so `list` and `counts`
    /// can filter by name (default `OrchestratorTaskName`). Temporal refuses a start that
    /// sets an attribute the namespace does not have, so the backend sets it only once it
    /// has seen it registered (`temporal server start-dev --search-attribute
    /// OrchestratorTaskName=Keyword`, or `temporal operator search-attribute create --name
    /// OrchestratorTaskName --type Keyword`); without it scheduling works and name filters
    /// answer `Unsupported`.
    #[serde(default = "default_name_attribute")]
    pub name_attribute: String,
}

fn default_name_attribute() -> String {
    crate::spec::NAME_ATTRIBUTE.into()
}

fn default_max_payload() -> usize {
    crate::spec::DEFAULT_MAX_PAYLOAD
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
            name_attribute: default_name_attribute(),
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

    /// Check the settings of instance `instance` without connecting (errors name its
    /// keys: `backends.<instance>.url`).
    pub fn validate(&self, instance: &str) -> Result<()> {
        let key = |k: &str| format!("backends.{instance}.{k}");
        self.url.check(&key("url"), &["http", "https"])?;
        if self.namespace.trim().is_empty() {
            return Err(Error::config(format!(
                "{} must not be empty",
                key("namespace")
            )));
        }
        if self
            .task_queue
            .as_deref()
            .is_some_and(|q| q.trim().is_empty())
        {
            return Err(Error::config(format!(
                "{} must not be empty",
                key("task_queue")
            )));
        }
        if self.max_payload_bytes == 0 || self.max_payload_bytes > TEMPORAL_BLOB_LIMIT {
            return Err(Error::config(format!(
                "{} must be between 1 and {TEMPORAL_BLOB_LIMIT} (Temporal's payload limit)",
                key("max_payload_bytes")
            )));
        }
        // It is written into List Filter queries: letters, digits and `_` only.
        let a = self.name_attribute.as_bytes();
        if a.is_empty()
            || a.len() > 64
            || !a[0].is_ascii_alphabetic()
            || !a.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
        {
            return Err(Error::config(format!(
                "{} must be a search attribute name: a letter, then up to 63 letters, digits or `_`",
                key("name_attribute")
            )));
        }
        self.connect_timeout_ms
            .check_positive(&key("connect_timeout_ms"))?;
        self.rpc_timeout_ms.check_positive(&key("rpc_timeout_ms"))?;
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
        c.validate("temporal").expect("valid");
        assert_eq!(c.namespace, "default");
        assert!(!format!("{c:?}").contains("tk-secret-123"));
        for bad in ["127.0.0.1:7233", "grpc://h:1", "http://"] {
            let e = TemporalConfig::new(bad)
                .validate("temporal")
                .expect_err(bad);
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
            .validate("temporal")
            .expect_err("namespace");
        assert_eq!(e.kind(), orchestrator_core::ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("namespace"), "{e}");
        for bad in ["", "1x", "a' OR 'b", "x-y", &"a".repeat(65)] {
            let mut c = TemporalConfig::new("http://h:1");
            c.name_attribute = bad.into();
            let e = c.validate("temporal").expect_err(bad);
            assert!(e.to_string().contains("name_attribute"), "{bad}: {e}");
        }
    }
}
