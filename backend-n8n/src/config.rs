//! Configuration of the `n8n` backend (`[backends.n8n]`).

use std::time::Duration;

use orchestrator_core::{Error, Millis, RedactedUrl, Result, Secret};
use serde::Deserialize;

/// Credentials for a webhook protected by n8n's "Header Auth".
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderAuth {
    /// Header name (e.g. `X-Token`).
    pub name: String,
    /// Header value; never printed.
    pub value: Secret,
}

/// Credentials for a webhook protected by n8n's "Basic Auth".
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub user: String,
    /// Password; never printed.
    pub password: Secret,
}

/// The durable outbox: `schedule` stores the delivery in Redis and returns at once; a
/// dispatcher delivers it with retries, and pending deliveries survive restarts.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OutboxConfig {
    /// Redis URL (`redis://[user[:password]@]host:port/db`).
    pub redis_url: RedactedUrl,
    /// Key prefix of the outbox's records.
    #[serde(default = "default_outbox_prefix")]
    pub prefix: String,
    /// Delivery attempts before a dispatch is marked failed.
    #[serde(default = "default_outbox_attempts")]
    pub max_attempts: u32,
    /// Longest wait between two attempts, in ms (the wait doubles from `backoff_ms`).
    #[serde(default = "default_outbox_max_backoff")]
    pub max_backoff_ms: Millis,
    /// How long a dispatcher owns a delivery in flight; after that another takes it over.
    #[serde(default = "default_outbox_lease")]
    pub lease_ms: Millis,
    /// How often an idle dispatcher looks for due deliveries, in ms.
    #[serde(default = "default_outbox_poll")]
    pub poll_ms: Millis,
    /// How long finished records (delivered, failed, cancelled) are kept, in ms; their
    /// status is `NotFound` afterwards. Default 7 days.
    #[serde(default = "default_outbox_finished_ttl")]
    pub finished_ttl_ms: Millis,
    /// Start a dispatcher in this process on the first `schedule` (default). Set false when
    /// `orchestrator dispatch` or another long-running process delivers: a short-lived
    /// process (the CLI's `schedule`, which sets it false) would otherwise start deliveries
    /// it dies in the middle of.
    #[serde(default = "default_true")]
    pub dispatch_in_process: bool,
}

fn default_true() -> bool {
    true
}

fn default_outbox_finished_ttl() -> Millis {
    Millis::new(7 * 24 * 3600 * 1000)
}

fn default_outbox_prefix() -> String {
    "orchestrator:n8n".into()
}

fn default_outbox_attempts() -> u32 {
    50
}

fn default_outbox_max_backoff() -> Millis {
    Millis::new(30_000)
}

fn default_outbox_lease() -> Millis {
    Millis::new(30_000)
}

fn default_outbox_poll() -> Millis {
    Millis::new(100)
}

impl OutboxConfig {
    /// An outbox in the Redis at `redis_url`, with default settings.
    pub fn new(redis_url: impl Into<String>) -> Self {
        Self {
            redis_url: RedactedUrl::new(redis_url),
            prefix: default_outbox_prefix(),
            max_attempts: default_outbox_attempts(),
            max_backoff_ms: default_outbox_max_backoff(),
            lease_ms: default_outbox_lease(),
            poll_ms: default_outbox_poll(),
            finished_ttl_ms: default_outbox_finished_ttl(),
            dispatch_in_process: true,
        }
    }

    /// Keep finished records for `ttl`.
    #[must_use]
    pub fn finished_ttl(mut self, ttl: Duration) -> Self {
        self.finished_ttl_ms = Millis::from_duration(ttl);
        self
    }

    /// Use `prefix` for the outbox keys.
    #[must_use]
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Retry limits: attempts, longest backoff, lease.
    #[must_use]
    pub fn retries(mut self, max_attempts: u32, max_backoff: Duration, lease: Duration) -> Self {
        self.max_attempts = max_attempts;
        self.max_backoff_ms = Millis::from_duration(max_backoff);
        self.lease_ms = Millis::from_duration(lease);
        self
    }
}

/// Settings of the `n8n` backend.
///
/// ```toml
/// [backends.n8n]
/// url = "http://127.0.0.1:5678"      # n8n's base URL
/// api_key = "…"                       # public API key (X-N8N-API-KEY); never printed
/// owner_email = "owner@example.com"   # optional: n8n < 2.10 can only stop executions
/// owner_password = "…"                #   through its internal API, with the owner's login
/// request_timeout_ms = 10000
/// attempts = 3                        # delivery attempts (connection errors, 5xx, 429)
/// backoff_ms = 200                    # first retry delay, doubled each time
/// max_in_flight = 32                  # webhook calls at once
/// allowed_hosts = ["hooks.internal:8443"]  # more webhook hosts (host or host:port); default: only the n8n at `url`
/// hmac_secret = "…"                   # optional: X-Orchestrator-Signature: sha256=<hex>
/// ```
///
/// Environment: `ORCHESTRATOR_N8N_URL`, `ORCHESTRATOR_N8N_API_KEY`, …
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct N8nConfig {
    /// Base URL of n8n (`http://host:5678`).
    pub url: RedactedUrl,
    /// Public API key, for resolving workflows, reading and stopping executions.
    #[serde(default)]
    pub api_key: Option<Secret>,
    /// Owner e-mail, for the internal stop endpoint of n8n versions without a public one.
    #[serde(default)]
    pub owner_email: Option<String>,
    /// Owner password; never printed.
    #[serde(default)]
    pub owner_password: Option<Secret>,
    /// How long one HTTP request may take.
    #[serde(default = "default_timeout_ms")]
    pub request_timeout_ms: Millis,
    /// Delivery attempts when a task sets no `attempts`.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// First retry delay in ms, doubled on each retry.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: Millis,
    /// Most webhook calls in flight at once; more wait their turn (n8n runs a workflow per
    /// call, and a flood makes every call time out).
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// The hosts (`host` or `host:port`) webhook URLs may point at. Unset: only the n8n at
    /// `url` (same host and port). Credentials and signatures go only there; redirects are
    /// never followed.
    #[serde(default)]
    pub allowed_hosts: Option<Vec<String>>,
    /// Header auth sent to every webhook.
    #[serde(default)]
    pub header_auth: Option<HeaderAuth>,
    /// Basic auth sent to every webhook.
    #[serde(default)]
    pub basic_auth: Option<BasicAuth>,
    /// Secret for the `X-Orchestrator-Signature` HMAC-SHA256 header over the body.
    #[serde(default)]
    pub hmac_secret: Option<Secret>,
    /// Key that signs task ids, so any process of this deployment accepts the ids another
    /// issued and refuses forged ones; when unset ids are bound to `url` (made-up ids are
    /// still refused, but the URL is no secret). Changing it invalidates issued ids. Never
    /// printed.
    #[serde(default)]
    pub id_key: Option<Secret>,
    /// Durable outbox mode; direct delivery when unset.
    #[serde(default)]
    pub outbox: Option<OutboxConfig>,
    /// The largest payload (serialized JSON, bytes) accepted; larger is `InvalidInput`
    /// before any I/O. Default 16 MiB, n8n's own default request limit.
    #[serde(default = "default_max_payload")]
    pub max_payload_bytes: usize,
    /// The largest answer read from n8n (webhook or API), bytes; a longer one is an error
    /// and the rest is not read. Default 16 MiB.
    #[serde(default = "default_max_response")]
    pub max_response_bytes: usize,
}

fn default_max_response() -> usize {
    16 * 1024 * 1024
}

fn default_max_payload() -> usize {
    crate::spec::DEFAULT_MAX_PAYLOAD
}

/// The longest a direct-mode `schedule` may take with every retry (`attempts` requests of
/// `request_timeout_ms`, plus the backoff between them): 10 minutes. Longer delivery
/// belongs in the outbox, which retries in the background.
pub const MAX_DIRECT_SCHEDULE: Duration = Duration::from_secs(600);

fn default_timeout_ms() -> Millis {
    Millis::new(10_000)
}

fn default_attempts() -> u32 {
    3
}

fn default_backoff_ms() -> Millis {
    Millis::new(200)
}

fn default_max_in_flight() -> usize {
    32
}

impl N8nConfig {
    /// A configuration for n8n at `url`, without an API key.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: RedactedUrl::new(url),
            api_key: None,
            owner_email: None,
            owner_password: None,
            request_timeout_ms: default_timeout_ms(),
            attempts: default_attempts(),
            backoff_ms: default_backoff_ms(),
            max_in_flight: default_max_in_flight(),
            allowed_hosts: None,
            header_auth: None,
            basic_auth: None,
            hmac_secret: None,
            id_key: None,
            outbox: None,
            max_payload_bytes: default_max_payload(),
            max_response_bytes: default_max_response(),
        }
    }

    /// Use this public-API key.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(Secret::new(key));
        self
    }

    /// Owner credentials for the internal stop endpoint (n8n < 2.10).
    #[must_use]
    pub fn owner(mut self, email: impl Into<String>, password: impl Into<String>) -> Self {
        self.owner_email = Some(email.into());
        self.owner_password = Some(Secret::new(password));
        self
    }

    /// Send header auth to webhooks.
    #[must_use]
    pub fn header_auth(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.header_auth = Some(HeaderAuth {
            name: name.into(),
            value: Secret::new(value),
        });
        self
    }

    /// Only deliver to these hosts.
    #[must_use]
    pub fn allowed_hosts(mut self, hosts: Vec<String>) -> Self {
        self.allowed_hosts = Some(hosts);
        self
    }

    /// Request timeout and delivery retries.
    #[must_use]
    pub fn delivery(mut self, timeout: Duration, attempts: u32, backoff: Duration) -> Self {
        self.request_timeout_ms = Millis::from_duration(timeout);
        self.attempts = attempts;
        self.backoff_ms = Millis::from_duration(backoff);
        self
    }

    /// Sign bodies with HMAC-SHA256 under `secret`.
    #[must_use]
    pub fn hmac_secret(mut self, secret: impl Into<String>) -> Self {
        self.hmac_secret = Some(Secret::new(secret));
        self
    }

    /// Deliver through a durable outbox in Redis.
    #[must_use]
    pub fn outbox(mut self, outbox: OutboxConfig) -> Self {
        self.outbox = Some(outbox);
        self
    }

    /// Check the settings of instance `instance` without connecting (errors name its keys:
    /// `backends.<instance>.url`).
    pub fn validate(&self, instance: &str) -> Result<()> {
        let key = |k: &str| format!("backends.{instance}.{k}");
        if let Some(o) = &self.outbox {
            o.redis_url
                .check(&key("outbox.redis_url"), &["redis", "rediss"])?;
            o.lease_ms.check_positive(&key("outbox.lease_ms"))?;
            o.poll_ms.check_positive(&key("outbox.poll_ms"))?;
            if o.max_attempts == 0 || o.prefix.is_empty() {
                return Err(Error::config(format!(
                    "{}: max_attempts must be > 0 and prefix non-empty",
                    key("outbox")
                )));
            }
            o.finished_ttl_ms
                .check_positive(&key("outbox.finished_ttl_ms"))?;
            // A lease must outlive the delivery attempt it covers, or a slow delivery is
            // taken over and made twice.
            if o.lease_ms.get() < self.timeout() * 2 {
                return Err(Error::config(format!(
                    "{} ({} ms) must be at least twice request_timeout_ms ({} ms), so a delivery never outlives its lease",
                    key("outbox.lease_ms"),
                    o.lease_ms.get().as_millis(),
                    self.timeout().as_millis()
                )));
            }
        }
        self.url.check(&key("url"), &["http", "https"])?;
        self.request_timeout_ms
            .check_positive(&key("request_timeout_ms"))?;
        if self.max_in_flight == 0 {
            return Err(Error::config(format!(
                "{} must be at least 1",
                key("max_in_flight")
            )));
        }
        if self.attempts == 0 {
            return Err(Error::config(format!(
                "{} must be at least 1",
                key("attempts")
            )));
        }
        if self.max_response_bytes == 0 {
            return Err(Error::config(format!(
                "{} must be greater than 0",
                key("max_response_bytes")
            )));
        }
        if self.max_payload_bytes == 0 {
            return Err(Error::config(format!(
                "{} must be greater than 0",
                key("max_payload_bytes")
            )));
        }
        if self.outbox.is_none() {
            let waits = orchestrator_core::raw::validate::retry_horizon_ms(
                u64::try_from(self.backoff_ms.get().as_millis()).unwrap_or(u64::MAX),
                true,
                self.attempts,
            );
            let requests = u64::try_from(self.timeout().as_millis())
                .unwrap_or(u64::MAX)
                .saturating_mul(u64::from(self.attempts));
            let worst = Duration::from_millis(waits.saturating_add(requests));
            if worst > MAX_DIRECT_SCHEDULE {
                return Err(Error::config(format!(
                    "backends.{instance}: in direct mode a schedule may take up to {} with attempts = {}, request_timeout_ms = {} and backoff_ms = {}; the limit is {} (fewer attempts, shorter timeouts, or the outbox)",
                    fmt_duration(worst),
                    self.attempts,
                    self.request_timeout_ms.get().as_millis(),
                    self.backoff_ms.get().as_millis(),
                    fmt_duration(MAX_DIRECT_SCHEDULE),
                )));
            }
        }
        if self.owner_email.is_some() != self.owner_password.is_some() {
            return Err(Error::config(format!(
                "{} and owner_password go together",
                key("owner_email")
            )));
        }
        Ok(())
    }

    pub(crate) fn timeout(&self) -> Duration {
        self.request_timeout_ms.get()
    }

    /// The base URL without a trailing slash.
    pub(crate) fn base(&self) -> &str {
        self.url.expose().trim_end_matches('/')
    }
}

fn fmt_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if secs >= 3600 {
        format!("{}h{:02}m", secs / 3600, secs % 3600 / 60)
    } else {
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let c: N8nConfig = serde_json::from_value(serde_json::json!({
            "url": "http://127.0.0.1:5678", "api_key": "eyJ-secret-key",
            "owner_email": "o@x", "owner_password": "pw-secret",
            "header_auth": {"name": "X-T", "value": "hdr-secret"}, "hmac_secret": "mac-secret"
        }))
        .expect("config");
        c.validate("n8n").expect("valid");
        let dbg = format!("{c:?}");
        for s in ["eyJ-secret-key", "pw-secret", "hdr-secret", "mac-secret"] {
            assert!(!dbg.contains(s), "{dbg}");
        }
        let e = N8nConfig::new("ftp://x")
            .validate("n8n")
            .expect_err("scheme");
        assert_eq!(e.kind(), orchestrator_core::ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("backends.n8n.url"), "{e}");
        let e = N8nConfig::new("http://x")
            .delivery(Duration::from_secs(1), 0, Duration::ZERO)
            .validate("n8n")
            .expect_err("attempts");
        assert_eq!(e.kind(), orchestrator_core::ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("attempts"), "{e}");
        let e = N8nConfig::new("http://x")
            .outbox(OutboxConfig::new("redis://u:hunter2@h:bad"))
            .validate("n8n")
            .expect_err("outbox url");
        assert!(e.to_string().contains("outbox.redis_url"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    /// Direct mode awaits every retry inside `schedule`: 20 attempts with doubling backoff
    /// (~29 hours) is refused, with the figure and the limit; the outbox takes it.
    #[test]
    fn direct_mode_retries_are_bounded() {
        let long = N8nConfig::new("http://x").delivery(
            Duration::from_secs(10),
            20,
            Duration::from_millis(200),
        );
        let e = long
            .clone()
            .validate("n8n")
            .expect_err("29 hours of retries");
        assert_eq!(e.kind(), orchestrator_core::ErrorKind::InvalidConfig);
        assert!(e.to_string().contains("10m00s"), "{e}");
        long.outbox(OutboxConfig::new("redis://127.0.0.1:6379"))
            .validate("n8n")
            .expect("the outbox retries in the background");
        N8nConfig::new("http://x")
            .delivery(Duration::from_secs(10), 3, Duration::from_millis(500))
            .validate("n8n")
            .expect("the defaults' order of magnitude is fine");
    }

    /// An outbox lease shorter than two request timeouts would let a slow delivery be
    /// taken over and made twice: refused.
    #[test]
    fn a_lease_must_outlive_a_delivery() {
        let outbox = |lease| {
            OutboxConfig::new("redis://127.0.0.1:6379").retries(5, Duration::from_secs(1), lease)
        };
        let e = N8nConfig::new("http://x")
            .delivery(Duration::from_secs(10), 3, Duration::from_millis(100))
            .outbox(outbox(Duration::from_secs(15)))
            .validate("n8n")
            .expect_err("lease < 2 × timeout");
        assert!(e.to_string().contains("lease_ms"), "{e}");
        N8nConfig::new("http://x")
            .delivery(Duration::from_secs(10), 3, Duration::from_millis(100))
            .outbox(outbox(Duration::from_secs(20)))
            .validate("n8n")
            .expect("lease = 2 × timeout");
    }
}
