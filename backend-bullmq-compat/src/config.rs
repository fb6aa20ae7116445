//! Configuration of the `bullmq` backend (`[backends.bullmq]`).

use std::time::Duration;

use bullmq::options::RedisConnectionOptions;
use orchestrator_core::{Error, Millis, RedactedUrl, Result, Secret};
use serde::Deserialize;

/// Settings of the `bullmq` backend.
///
/// ```toml
/// [backends.bullmq]
/// url = "redis://127.0.0.1:6379/0"     # rediss:// for TLS; user:password@ accepted
/// prefix = "bull"                      # BullMQ's key prefix, shared with Node producers/workers
/// connect_timeout_ms = 5000
/// command_timeout_ms = 5000
/// max_payload_bytes = 1048576          # largest job data (JSON) accepted; Redis keeps it in memory
/// queues = ["emails", "reports"]       # listed and counted even before discovery finds them
/// ```
///
/// Environment: `ORCHESTRATOR_BULLMQ_URL`, `ORCHESTRATOR_BULLMQ_PREFIX`,
/// `ORCHESTRATOR_BULLMQ_PASSWORD`, `ORCHESTRATOR_BULLMQ_QUEUES=emails,reports`, …
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct BullmqConfig {
    /// Redis URL: `redis://[user[:password]@]host[:port][/db]` or `rediss://…` for TLS.
    pub url: RedactedUrl,
    /// BullMQ key prefix (Node's `prefix` option).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// Username for Redis ACLs, when not in the URL.
    #[serde(default)]
    pub username: Option<String>,
    /// Password, when not in the URL. Never printed.
    #[serde(default)]
    pub password: Option<Secret>,
    /// How long to wait for the first connection before reporting `Unavailable`.
    #[serde(default = "default_timeout_ms")]
    pub connect_timeout_ms: Millis,
    /// How long one call (schedule, status, cancel) may take before `Timeout`.
    #[serde(default = "default_timeout_ms")]
    pub command_timeout_ms: Millis,
    /// The largest job data (serialized JSON, bytes) accepted; larger is `InvalidInput`
    /// before any I/O. Default 1 MiB: BullMQ keeps every job's data in Redis memory.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    /// Queues `list` and `counts` cover besides those discovered (every queue whose
    /// `<prefix>:<queue>:meta` key exists, as Node's and our `Queue` handles write it). A
    /// comma-separated list in the environment.
    #[serde(default, deserialize_with = "list_or_commas")]
    #[schemars(with = "Vec<String>")]
    pub queues: Vec<String>,
}

/// A list of names, as a TOML array or a comma-separated string (environment values).
fn list_or_commas<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Names {
        List(Vec<String>),
        Text(String),
        Number(u64),
    }
    Ok(match Names::deserialize(d)? {
        Names::List(l) => l,
        Names::Text(t) => t
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(String::from)
            .collect(),
        Names::Number(n) => vec![n.to_string()],
    })
}

fn default_max_payload() -> usize {
    crate::spec::DEFAULT_MAX_PAYLOAD
}

fn default_prefix() -> String {
    "bull".to_string()
}

fn default_timeout_ms() -> Millis {
    Millis::new(5000)
}

impl BullmqConfig {
    /// A configuration for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: RedactedUrl::new(url),
            prefix: default_prefix(),
            username: None,
            password: None,
            connect_timeout_ms: default_timeout_ms(),
            command_timeout_ms: default_timeout_ms(),
            max_payload_bytes: default_max_payload(),
            queues: Vec::new(),
        }
    }

    /// `list` and `counts` cover `queues` besides those discovered.
    #[must_use]
    pub fn queues(mut self, queues: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.queues = queues.into_iter().map(Into::into).collect();
        self
    }

    /// Accept job data up to `bytes` of JSON.
    #[must_use]
    pub fn max_payload_bytes(mut self, bytes: usize) -> Self {
        self.max_payload_bytes = bytes;
        self
    }

    /// Use `prefix` instead of `bull`.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Set both timeouts.
    #[must_use]
    pub fn timeouts(mut self, connect: Duration, command: Duration) -> Self {
        self.connect_timeout_ms = Millis::from_duration(connect);
        self.command_timeout_ms = Millis::from_duration(command);
        self
    }

    /// Check the settings without connecting.
    pub fn validate(&self, instance: &str) -> Result<()> {
        let key = |k: &str| format!("backends.{instance}.{k}");
        self.url.check(&key("url"), &["redis", "rediss"])?;
        if self.prefix.is_empty() || self.prefix.contains(':') {
            return Err(Error::config(format!(
                "{} must be non-empty and must not contain `:`",
                key("prefix")
            )));
        }
        self.connect_timeout_ms
            .check_positive(&key("connect_timeout_ms"))?;
        self.command_timeout_ms
            .check_positive(&key("command_timeout_ms"))?;
        if self.queues.len() > crate::backend::MAX_QUEUE_HANDLES {
            return Err(Error::config(format!(
                "{} lists {} queues; at most {} are monitored",
                key("queues"),
                self.queues.len(),
                crate::backend::MAX_QUEUE_HANDLES
            )));
        }
        for q in &self.queues {
            crate::spec::queue_name(&key("queues"), q).map_err(|e| Error::config(e.to_string()))?;
        }
        if self.max_payload_bytes == 0 {
            return Err(Error::config(format!(
                "{} must be greater than 0",
                key("max_payload_bytes")
            )));
        }
        Ok(())
    }

    pub(crate) fn connect_timeout(&self) -> Duration {
        self.connect_timeout_ms.get()
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        self.command_timeout_ms.get()
    }

    /// The bullmq crate's connection options.
    pub(crate) fn connection(&self) -> RedisConnectionOptions {
        let mut url = self.url.expose().to_string();
        if self.username.is_some() || self.password.is_some() {
            if let Ok(mut u) = url::Url::parse(self.url.expose()) {
                if let Some(user) = &self.username {
                    let _ = u.set_username(user);
                }
                if let Some(p) = &self.password {
                    let _ = u.set_password(Some(p.expose()));
                }
                url = u.to_string();
            }
        }
        RedisConnectionOptions::new().url(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_checked_and_secrets_hidden() {
        let c: BullmqConfig = serde_json::from_value(serde_json::json!({
            "url": "redis://u:hunter2@127.0.0.1:6379/2", "password": "other-secret"
        }))
        .expect("config");
        c.validate("bullmq").expect("valid");
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("hunter2") && !dbg.contains("other-secret"),
            "{dbg}"
        );
        assert!(c.connection().url.contains("other-secret"));
        assert_eq!(c.prefix, "bull");

        for (bad, says) in [
            ("http://h", "must start with redis:// or rediss://"),
            ("not a url", "is not a URL"),
            ("redis://", "has no host"),
        ] {
            let e = BullmqConfig::new(bad).validate("bullmq").expect_err(bad);
            assert_eq!(
                e.kind(),
                orchestrator_core::ErrorKind::InvalidConfig,
                "{bad}"
            );
            assert!(e.to_string().contains("backends.bullmq.url"), "{e}");
            assert!(e.to_string().contains(says), "{bad}: {e}");
        }
        let e = BullmqConfig::new("redis://h")
            .prefix("a:b")
            .validate("bullmq")
            .expect_err("prefix");
        assert_eq!(e.kind(), orchestrator_core::ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("prefix"), "{e}");
        let e = BullmqConfig::new("redis://h")
            .timeouts(Duration::ZERO, Duration::from_secs(1))
            .validate("bullmq")
            .expect_err("zero timeout");
        assert!(e.to_string().contains("connect_timeout_ms"), "{e}");
        let e = serde_json::from_value::<BullmqConfig>(
            serde_json::json!({"url": "redis://h", "nope": 1}),
        )
        .expect_err("unknown key");
        assert!(e.to_string().contains("unknown field `nope`"), "{e}");
    }
}
