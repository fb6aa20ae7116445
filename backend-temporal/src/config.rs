//! Configuration of the `temporal` backend (`[backends.temporal]`).

use std::fmt;
use std::time::Duration;

use orchestrator_core::{Error, Result, Secret};
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
#[derive(Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TemporalConfig {
    /// Frontend gRPC address, `http://host:port` (or `https://` for TLS).
    pub url: String,
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
    pub connect_timeout_ms: u64,
    /// How long one call may take before `Timeout`.
    #[serde(default = "default_rpc_ms")]
    pub rpc_timeout_ms: u64,
}

fn default_namespace() -> String {
    "default".into()
}

fn default_connect_ms() -> u64 {
    5000
}

fn default_rpc_ms() -> u64 {
    10_000
}

impl fmt::Debug for TemporalConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TemporalConfig")
            .field("url", &orchestrator_core::config::redact_url(&self.url))
            .field("namespace", &self.namespace)
            .field("task_queue", &self.task_queue)
            .field("identity", &self.identity)
            .field("api_key", &self.api_key)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("rpc_timeout_ms", &self.rpc_timeout_ms)
            .finish()
    }
}

impl TemporalConfig {
    /// A configuration for `url` in namespace `default`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            namespace: default_namespace(),
            task_queue: None,
            identity: None,
            api_key: None,
            connect_timeout_ms: default_connect_ms(),
            rpc_timeout_ms: default_rpc_ms(),
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
        self.connect_timeout_ms = u64::try_from(connect.as_millis()).unwrap_or(u64::MAX);
        self.rpc_timeout_ms = u64::try_from(rpc.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Check the settings without connecting.
    pub fn validate(&self) -> Result<()> {
        let url = url::Url::parse(&self.url).map_err(|e| {
            Error::config(format!(
                "backends.temporal.url `{}` is not a URL (expected http://host:port): {e}",
                orchestrator_core::config::redact_url(&self.url)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Error::config(format!(
                "backends.temporal.url must start with http:// or https://, not {}://",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config("backends.temporal.url has no host"));
        }
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
        if self.connect_timeout_ms == 0 || self.rpc_timeout_ms == 0 {
            return Err(Error::config(
                "backends.temporal timeouts must be greater than 0",
            ));
        }
        Ok(())
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    pub(crate) fn rpc_timeout(&self) -> Duration {
        Duration::from_millis(self.rpc_timeout_ms)
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
            assert!(TemporalConfig::new(bad).validate().is_err(), "{bad}");
        }
        assert!(
            TemporalConfig::new("http://h:1")
                .namespace(" ")
                .validate()
                .is_err()
        );
    }
}
