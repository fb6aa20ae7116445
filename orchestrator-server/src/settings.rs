//! The `[serve]` table of the orchestrator's configuration (and its `ORCHESTRATOR_SERVE_*`
//! variables), as read by `orchestrator serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use orchestrator_core::{Error, Millis, Result, Secret};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};

use crate::security::ServerConfig;

/// Where `serve` listens when neither `--bind` nor `serve.bind` says.
pub const DEFAULT_BIND: &str = "127.0.0.1:8080";

/// The largest token file read.
const MAX_TOKEN_FILE: u64 = 4096;

/// `[serve]`: how `orchestrator serve` listens, guards its API and what it runs beside it.
/// Every key is optional; unset ones take [`ServerConfig::default`]'s values. Lists also
/// accept one comma-separated string (the form an environment variable gives).
///
/// ```toml
/// [serve]
/// bind = "0.0.0.0:8080"
/// token_file = "/run/secrets/orchestrator-token"
/// allowed_origins = ["https://app.example"]
/// hide_results = true
/// track = ["order-tracking"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServeSettings {
    /// Where to listen (default `127.0.0.1:8080`; `--bind` wins). Beyond loopback a token
    /// is required.
    #[serde(default)]
    pub bind: Option<SocketAddr>,
    /// The bearer token (`ORCHESTRATOR_SERVE_TOKEN`). Exclusive with `token_file`.
    #[serde(default)]
    pub token: Option<Secret>,
    /// A file holding the bearer token (read at start, at most 4 KiB, trimmed).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Host names the `Host` header may carry when no token is set (default: the loopback
    /// names).
    #[serde(default, deserialize_with = "one_or_many_opt")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Origins whose browser requests are served (default: none).
    #[serde(default, deserialize_with = "one_or_many")]
    pub allowed_origins: Vec<String>,
    /// Whether `/healthz` and `/readyz` answer without the token (default: true).
    #[serde(default)]
    pub public_health: Option<bool>,
    /// The largest request body, in bytes (default: 17 MiB).
    #[serde(default)]
    pub max_body_bytes: Option<usize>,
    /// How long a read (`GET`) may take, in ms (default: 30 s); then `504`. Writes are
    /// not cut mid-way.
    #[serde(default)]
    pub request_timeout_ms: Option<Millis>,
    /// The longest `wait` a request may ask for, in ms (default: 60 s).
    #[serde(default)]
    pub max_wait_ms: Option<Millis>,
    /// The most `wait` requests held at once (default: 256); more are `429`.
    #[serde(default)]
    pub max_waits: Option<usize>,
    /// The most `list`/`counts` requests served at once (default: 16); more are `429`.
    #[serde(default)]
    pub max_monitor_requests: Option<usize>,
    /// Leave tasks' `result` and `progress` out of every answer (default: false). Task
    /// payloads are never part of an answer.
    #[serde(default)]
    pub hide_results: bool,
    /// Record the metrics (`orchestrator_core::instruments`) and serve them at `GET
    /// /metrics` in Prometheus text format (default: true).
    #[serde(default)]
    pub metrics: Option<bool>,
    /// Whether `/metrics` answers without the token (default: false).
    #[serde(default)]
    pub public_metrics: bool,
    /// How often the `orchestrator_tasks` gauge is refreshed from `counts`, in ms (default:
    /// 15 s; each refresh is one `counts` of every instance).
    #[serde(default)]
    pub metrics_period_ms: Option<Millis>,
    /// Deliver each n8n outbox from this process (default: true). Instances whose
    /// `dispatch_in_process` is false are left to `orchestrator dispatch`.
    #[serde(default)]
    pub dispatch: Option<bool>,
    /// Tracking queues to serve from this process, as `orchestrator track QUEUE` would.
    #[serde(default, deserialize_with = "one_or_many")]
    pub track: Vec<String>,
    /// The bullmq instance holding the `track` queues (default: the SIMPLE route).
    #[serde(default)]
    pub track_backend: Option<String>,
}

fn split(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    use serde_json::Value;
    let text = |v: Value| match v {
        Value::String(s) => Ok(s),
        // An environment value that looks like a number or a boolean arrives as one.
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "expected a list of strings or one comma-separated string, not {other}"
        ))),
    };
    match Value::deserialize(d)? {
        Value::Array(items) => items.into_iter().map(text).collect(),
        one => Ok(split(&text(one)?)),
    }
}

fn one_or_many_opt<'de, D: Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Vec<String>>, D::Error> {
    one_or_many(d).map(Some)
}

impl ServeSettings {
    /// Read the `[serve]` table (`OrchestratorConfig::serve`). An unknown key or a value of
    /// the wrong type is `InvalidConfig` naming the key; a token is never echoed.
    pub fn from_table(table: &serde_json::Map<String, serde_json::Value>) -> Result<Self> {
        // One key at a time, so an error names the key without quoting its value.
        for (key, value) in table {
            let mut one = serde_json::Map::new();
            one.insert(key.clone(), value.clone());
            if let Err(e) = serde_json::from_value::<ServeSettings>(serde_json::Value::Object(one))
            {
                let why = if key == "token" {
                    "is not a string".to_string()
                } else {
                    e.to_string()
                };
                return Err(Error::config(format!("serve.{key}: {why}")));
            }
        }
        serde_json::from_value(serde_json::Value::Object(table.clone()))
            .map_err(|e| Error::config(format!("[serve]: {e}")))
    }

    /// Where to listen: `serve.bind`, or [`DEFAULT_BIND`].
    pub fn bind(&self) -> SocketAddr {
        self.bind
            .unwrap_or_else(|| DEFAULT_BIND.parse().expect("the default address parses"))
    }

    /// The [`ServerConfig`] these settings describe, the token file read. Caps must be
    /// positive; `token` and `token_file` are exclusive.
    pub fn server_config(&self) -> Result<ServerConfig> {
        let token = match (&self.token, &self.token_file) {
            (Some(_), Some(_)) => {
                return Err(Error::config(
                    "serve.token and serve.token_file are both set; keep one",
                ));
            }
            (Some(t), None) => Some(t.clone()),
            (None, Some(path)) => Some(read_token_file(path)?),
            (None, None) => None,
        };
        let mut c = ServerConfig {
            token,
            allowed_origins: self.allowed_origins.clone(),
            hide_results: self.hide_results,
            public_metrics: self.public_metrics,
            ..ServerConfig::default()
        };
        if c.token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(Error::config("serve.token is empty"));
        }
        if let Some(hosts) = &self.allowed_hosts {
            c.allowed_hosts = hosts.clone();
        }
        if let Some(p) = self.public_health {
            c.public_health = p;
        }
        if let Some(n) = self.max_body_bytes {
            c.max_body_bytes = n;
        }
        if let Some(t) = self.request_timeout_ms {
            t.check_positive("serve.request_timeout_ms")?;
            c.request_timeout = t.get();
        }
        if let Some(t) = self.max_wait_ms {
            t.check_positive("serve.max_wait_ms")?;
            c.max_wait = t.get();
        }
        if let Some(n) = self.max_waits {
            c.max_waits = n;
        }
        if let Some(n) = self.max_monitor_requests {
            c.max_monitor_requests = n;
        }
        c.check()?;
        Ok(c)
    }
}

/// A token from `path`: at most 4 KiB, trimmed, not empty; errors name the file, never
/// its content.
pub fn read_token_file(path: &std::path::Path) -> Result<Secret> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::config(format!("token file {}: {e}", path.display())))?;
    let text = orchestrator_core::raw::read_capped(
        file,
        MAX_TOKEN_FILE,
        &format!("token file {}", path.display()),
    )
    .map_err(|e| Error::config(e.to_string()))?;
    let token = text.trim();
    if token.is_empty() {
        return Err(Error::config(format!(
            "token file {} is empty",
            path.display()
        )));
    }
    Ok(Secret::new(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn table(v: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
        v.as_object().expect("object").clone()
    }

    #[test]
    fn settings_fill_the_server_config_and_lists_take_commas() {
        let s = ServeSettings::from_table(&table(json!({
            "bind": "0.0.0.0:9000",
            "token": "t0k",
            "allowed_origins": "https://a.example, https://b.example",
            "max_wait_ms": 5000,
            "hide_results": true,
            "track": ["q1"],
        })))
        .expect("settings");
        assert_eq!(s.bind(), "0.0.0.0:9000".parse().expect("addr"));
        let c = s.server_config().expect("config");
        assert_eq!(c.allowed_origins.len(), 2);
        assert_eq!(c.max_wait, std::time::Duration::from_secs(5));
        assert!(c.hide_results);
        assert_eq!(s.track, ["q1"]);
        assert!(c.check_bind(s.bind()).is_ok());
        assert_eq!(
            ServeSettings::default().bind(),
            DEFAULT_BIND.parse().expect("addr")
        );
    }

    #[test]
    fn bad_settings_name_their_key_and_never_echo_a_token() {
        let e = ServeSettings::from_table(&table(json!({ "port": 80 }))).expect_err("unknown");
        assert!(e.to_string().contains("serve.port"), "{e}");
        let e = ServeSettings::from_table(&table(json!({ "token": ["s3cret-value"] })))
            .expect_err("not a string");
        assert!(e.to_string().contains("serve.token"), "{e}");
        assert!(!e.to_string().contains("s3cret-value"), "{e}");
        let e = ServeSettings::from_table(&table(json!({ "token_fil": "/x" }))).expect_err("typo");
        assert!(e.to_string().contains("unknown field"), "{e}");
        // `ORCHESTRATOR_SERVE_TRACK=2024` arrives as a number: still a queue name.
        let s = ServeSettings::from_table(&table(json!({ "track": 2024 }))).expect("track");
        assert_eq!(s.track, ["2024"]);
        let e = ServeSettings::from_table(&table(json!({ "bind": "nowhere" }))).expect_err("addr");
        assert!(e.to_string().contains("serve.bind"), "{e}");
        let both = ServeSettings::from_table(&table(json!({ "token": "a", "token_file": "/x" })))
            .expect("parses");
        assert!(both.server_config().is_err());
        let zero = ServeSettings::from_table(&table(json!({ "max_waits": 0 }))).expect("parses");
        assert!(zero.server_config().is_err());
        let dir = std::env::temp_dir().join(format!("orch-token-{}", std::process::id()));
        std::fs::write(&dir, "  \n").expect("write");
        let e = read_token_file(&dir).expect_err("empty");
        std::fs::write(&dir, "file-token\n").expect("write");
        assert_eq!(read_token_file(&dir).expect("token").expose(), "file-token");
        std::fs::remove_file(&dir).expect("remove");
        assert!(e.to_string().contains("is empty"), "{e}");
    }
}
