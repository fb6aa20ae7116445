//! Orchestrator configuration: routing plus one table per backend, from TOML and/or
//! `ORCHESTRATOR_*` environment variables.
//!
//! ```toml
//! [routing]            # optional: a task type goes to the one backend that runs it
//! simple = "bullmq"
//! complex = "temporal"
//! integration = "n8n"
//!
//! [backends.bullmq]
//! url = "redis://127.0.0.1:6379"
//!
//! [backends.temporal]
//! url = "http://127.0.0.1:7233"
//! namespace = "default"
//! ```
//!
//! Instances: `[backends.<instance>]` with `kind = "<kind>"` (default: the instance's name),
//! so two Redis deployments are `[backends.bullmq-eu] kind = "bullmq"` and
//! `[backends.bullmq-us] kind = "bullmq"`; task ids start with the instance name and routes
//! name instances.
//!
//! Environment (values override the file):
//! * `ORCHESTRATOR_BACKENDS__<INSTANCE>__<KEY>` sets `backends.<instance>.<key>`; `_` in
//!   INSTANCE stands for `-` (`ORCHESTRATOR_BACKENDS__BULLMQ_EU__URL`,
//!   `ORCHESTRATOR_BACKENDS__BULLMQ_EU__KIND=bullmq`);
//! * `ORCHESTRATOR_<KIND>_<KEY>` sets `backends.<kind>.<key>` for the instance named after a
//!   compiled-in kind (`ORCHESTRATOR_BULLMQ_URL`, `ORCHESTRATOR_N8N_API_KEY`);
//! * `ORCHESTRATOR_ROUTE_<TYPE>` sets a route; `ORCHESTRATOR_CONFIG` names a TOML file;
//! * `ORCHESTRATOR_SERVE_<KEY>` sets `serve.<key>` (`ORCHESTRATOR_SERVE_TOKEN`,
//!   `ORCHESTRATOR_SERVE_BIND`), read by `orchestrator serve`;
//! * `ORCHESTRATOR_LOG` (log filter) and the exec worker's per-job variables
//!   ([`NON_CONFIG_VARS`]) are accepted and ignored; any other `ORCHESTRATOR_*` variable is
//!   refused with the list of valid forms.

use std::collections::BTreeMap;
use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::task::TaskType;

/// A secret string (password, API key). Never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself; only call this where it is sent to the engine.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Environment values that look like numbers arrive as numbers; a secret is text.
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Secret(s)),
            serde_json::Value::Number(n) => Ok(Secret(n.to_string())),
            serde_json::Value::Bool(b) => Ok(Secret(b.to_string())),
            _ => Err(serde::de::Error::custom("a secret must be a string")),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Which backend instance runs each task type. An unset entry routes the task type to the
/// one configured instance whose kind runs it (an error at schedule time names the choices
/// when there are none or several).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    /// Backend for SIMPLE tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simple: Option<String>,
    /// Backend for COMPLEX tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub complex: Option<String>,
    /// Backend for INTEGRATION tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
}

impl Routing {
    /// The backend instance explicitly routed for `task_type`, if any.
    pub fn backend_for(&self, task_type: TaskType) -> Option<&str> {
        match task_type {
            TaskType::Simple => self.simple.as_deref(),
            TaskType::Complex => self.complex.as_deref(),
            TaskType::Integration => self.integration.as_deref(),
        }
    }

    /// Route `task_type` to `backend`.
    pub fn set(&mut self, task_type: TaskType, backend: String) {
        match task_type {
            TaskType::Simple => self.simple = Some(backend),
            TaskType::Complex => self.complex = Some(backend),
            TaskType::Integration => self.integration = Some(backend),
        }
    }
}

/// The whole configuration.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OrchestratorConfig {
    /// Task type → backend name.
    #[serde(default)]
    pub routing: Routing,
    /// Backend name → that backend's configuration table (see each backend's schema).
    #[serde(default)]
    pub backends: BTreeMap<String, serde_json::Value>,
    /// The `[serve]` table: how `orchestrator serve` listens and what it runs beside the
    /// API. Its keys are `orchestrator_server::ServeSettings`, which refuses unknown ones.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub serve: serde_json::Map<String, serde_json::Value>,
}

impl fmt::Debug for OrchestratorConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted: BTreeMap<&String, serde_json::Value> = self
            .backends
            .iter()
            .map(|(k, v)| (k, redact(v.clone())))
            .collect();
        f.debug_struct("OrchestratorConfig")
            .field("routing", &self.routing)
            .field("backends", &redacted)
            .field(
                "serve",
                &redact(serde_json::Value::Object(self.serve.clone())),
            )
            .finish()
    }
}

/// Replace values of secret-looking keys and passwords inside URLs with `***`.
pub fn redact(value: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let lower = k.to_ascii_lowercase();
                    let secret = ["password", "secret", "token", "api_key", "apikey", "auth"]
                        .iter()
                        .any(|s| lower.contains(s));
                    (
                        k,
                        if secret {
                            Value::String("***".into())
                        } else {
                            redact(v)
                        },
                    )
                })
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(redact).collect()),
        Value::String(s) => Value::String(redact_url(&s)),
        other => other,
    }
}

/// `s` with the password of a URL's userinfo replaced by `***`. Works on text that does not
/// parse as a URL too (`redis://u:p@host:bad-port`), so a typo never leaks a password.
pub fn redact_url(s: &str) -> String {
    if let Ok(mut u) = url::Url::parse(s) {
        if u.password().is_some() {
            let _ = u.set_password(Some("***"));
        }
        return u.to_string();
    }
    let Some(scheme_end) = s.find("://").map(|i| i + 3) else {
        return s.to_string();
    };
    let rest = &s[scheme_end..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority.rfind('@') {
        Some(at) => {
            let user = authority[..at].split(':').next().unwrap_or_default();
            let password = if authority[..at].contains(':') {
                ":***"
            } else {
                ""
            };
            format!(
                "{}{user}{password}{}",
                &s[..scheme_end],
                &s[scheme_end + at..]
            )
        }
        None => s.to_string(),
    }
}

/// A URL from configuration. `Debug`, `Display` and every error show it with its password
/// replaced by `***`; [`RedactedUrl::expose`] gives the real one to the engine client.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(transparent)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    /// Wrap a URL.
    pub fn new(url: impl Into<String>) -> Self {
        RedactedUrl(url.into())
    }

    /// The URL itself, password included; only for the engine client.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Parse it and check its scheme is one of `schemes` and it has a host. Errors are
    /// [`Error::InvalidConfig`] naming `field` and showing the URL redacted.
    pub fn check(&self, field: &str, schemes: &[&str]) -> Result<url::Url> {
        let expected = schemes
            .iter()
            .map(|s| format!("{s}://"))
            .collect::<Vec<_>>()
            .join(" or ");
        let url = url::Url::parse(&self.0).map_err(|e| {
            Error::config(format!(
                "{field} `{self}` is not a URL ({e}); expected {expected}host[:port]"
            ))
        })?;
        if !schemes.contains(&url.scheme()) {
            return Err(Error::config(format!(
                "{field} must start with {expected}, not {}://",
                url.scheme()
            )));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(Error::config(format!("{field} `{self}` has no host")));
        }
        Ok(url)
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RedactedUrl")
            .field(&redact_url(&self.0))
            .finish()
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

/// A duration in whole milliseconds, as configuration tables spell it (`*_ms = 5000`), at
/// most [`Millis::MAX`] when read from configuration: a larger one would overflow what
/// Redis (`PEXPIRE`) and timers store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
#[serde(transparent)]
pub struct Millis(#[schemars(range(max = 315_360_000_000u64))] pub u64);

impl<'de> Deserialize<'de> for Millis {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let ms = u64::deserialize(d)?;
        if ms > Millis::MAX.0 {
            return Err(serde::de::Error::custom(format!(
                "{ms} ms is above the limit of {} ms (10 years)",
                Millis::MAX.0
            )));
        }
        Ok(Millis(ms))
    }
}

impl Millis {
    /// The longest duration a configuration accepts: 10 years.
    pub const MAX: Millis = Millis(crate::validate::MAX_DELAY_MS);

    /// `ms` milliseconds.
    pub const fn new(ms: u64) -> Self {
        Millis(ms)
    }

    /// From a [`std::time::Duration`] (saturating).
    pub fn from_duration(d: std::time::Duration) -> Self {
        Millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    /// As a [`std::time::Duration`].
    pub const fn get(self) -> std::time::Duration {
        std::time::Duration::from_millis(self.0)
    }

    /// `InvalidConfig` naming `field` unless it is above zero.
    pub fn check_positive(self, field: &str) -> Result<()> {
        if self.0 == 0 {
            return Err(Error::config(format!("{field} must be greater than 0")));
        }
        Ok(())
    }
}

fn scalar(raw: &str) -> serde_json::Value {
    match raw {
        "true" => serde_json::Value::Bool(true),
        "false" => serde_json::Value::Bool(false),
        _ => raw
            .parse::<u64>()
            .map(serde_json::Value::from)
            .unwrap_or_else(|_| serde_json::Value::String(raw.to_string())),
    }
}

impl OrchestratorConfig {
    /// Overlay `other`: its explicit routes win, and its backend keys replace ours one by
    /// one (a backend table is merged, not replaced).
    pub fn merge(&mut self, other: OrchestratorConfig) {
        for t in TaskType::ALL {
            if let Some(b) = other.routing.backend_for(t) {
                self.routing.set(t, b.to_string());
            }
        }
        for (name, table) in other.backends {
            match (self.backends.get_mut(&name), table) {
                (Some(serde_json::Value::Object(ours)), serde_json::Value::Object(theirs)) => {
                    ours.extend(theirs);
                }
                (_, table) => {
                    self.backends.insert(name, table);
                }
            }
        }
        // A token from the overlay replaces the file's, in whichever form it came.
        if other.serve.contains_key("token") || other.serve.contains_key("token_file") {
            self.serve.remove("token");
            self.serve.remove("token_file");
        }
        self.serve.extend(other.serve);
    }

    /// Parse a TOML document. An error names the line and column and what is wrong there,
    /// never the text itself (it may hold a password); the parser's error is not kept as
    /// the source for the same reason.
    pub fn from_toml_str(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let at = e.span().map_or_else(String::new, |span| {
                let before = &text.as_bytes()[..span.start.min(text.len())];
                let line = before.iter().filter(|b| **b == b'\n').count() + 1;
                let column = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
                format!(" at line {line}, column {column}")
            });
            Error::config(format!(
                "the TOML configuration is invalid{at}: {}",
                without_quoted(e.message())
            ))
        })
    }

    /// Read a TOML file, at most [`MAX_CONFIG_BYTES`].
    pub fn from_toml_file(path: impl AsRef<std::path::Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::File::open(path)
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot read configuration file {}: {e}", path.display()),
                )
            })
            .and_then(|f| {
                read_capped(
                    f,
                    MAX_CONFIG_BYTES,
                    &format!("configuration file {}", path.display()),
                )
            })
            .map_err(|e| Error::config(e.to_string()))?;
        Self::from_toml_str(&text)
    }

    /// `ORCHESTRATOR_CONFIG` (if set) overlaid with the process environment.
    /// `backend_names` are the names `ORCHESTRATOR_<BACKEND>_<KEY>` may refer to.
    pub fn from_env(backend_names: &[&str]) -> Result<Self> {
        Self::from_vars(std::env::vars(), backend_names)
    }

    /// Like [`OrchestratorConfig::from_env`], from explicit variables (for tests).
    pub fn from_vars(
        vars: impl IntoIterator<Item = (String, String)>,
        backend_names: &[&str],
    ) -> Result<Self> {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with("ORCHESTRATOR_"))
            .collect();
        let mut config = match vars.iter().find(|(k, _)| k == "ORCHESTRATOR_CONFIG") {
            Some((_, path)) if !path.is_empty() => Self::from_toml_file(path)?,
            _ => Self::default(),
        };
        let mut overlay = Self::default();
        overlay.apply_vars(&vars, backend_names)?;
        config.merge(overlay);
        Ok(config)
    }

    fn apply_vars(&mut self, vars: &[(String, String)], backend_names: &[&str]) -> Result<()> {
        // Which variable set each (instance, key): two that set one setting must agree.
        let mut set_by: BTreeMap<(String, String), (&str, &str)> = BTreeMap::new();
        // Longest names first, so `MEMORY_BULLMQ_X` is not read as backend `memory`.
        let mut names: Vec<(String, &str)> = backend_names
            .iter()
            .map(|n| (n.to_ascii_uppercase().replace('-', "_"), *n))
            .collect();
        names.sort_by_key(|(env, _)| std::cmp::Reverse(env.len()));
        for (key, value) in vars {
            let Some(rest) = key.strip_prefix("ORCHESTRATOR_") else {
                continue;
            };
            if NON_CONFIG_VARS.contains(&key.as_str()) {
                continue;
            }
            if let Some(ty) = rest.strip_prefix("ROUTE_") {
                let task_type: TaskType = ty.parse().map_err(|_| {
                    Error::config(format!(
                        "{key}: `{ty}` is not a task type (SIMPLE, COMPLEX, INTEGRATION)"
                    ))
                })?;
                self.routing.set(task_type, value.clone());
                continue;
            }
            if let Some(field) = rest.strip_prefix("SERVE_").filter(|f| !f.is_empty()) {
                self.serve.insert(field.to_ascii_lowercase(), scalar(value));
                continue;
            }
            let (instance, field) = if let Some(spec) = rest.strip_prefix("BACKENDS__") {
                // `BACKENDS__<INSTANCE>__<KEY>`: `_` in INSTANCE stands for `-`.
                let (inst, field) = spec
                    .split_once("__")
                    .filter(|(i, f)| !i.is_empty() && !f.is_empty() && !f.contains("__"))
                    .ok_or_else(|| {
                        Error::config(format!(
                            "{key}: expected ORCHESTRATOR_BACKENDS__<INSTANCE>__<KEY>"
                        ))
                    })?;
                let instance = inst.to_ascii_lowercase().replace('_', "-");
                if !is_instance_name(&instance) {
                    return Err(Error::config(format!(
                        "{key}: `{instance}` is not an instance name ([a-z][a-z0-9-]*)"
                    )));
                }
                (instance, field.to_ascii_lowercase())
            } else {
                let matched = names.iter().find_map(|(env, name)| {
                    rest.strip_prefix(env.as_str())
                        .and_then(|r| r.strip_prefix('_'))
                        .filter(|field| !field.is_empty())
                        .map(|field| (name.to_string(), field.to_ascii_lowercase()))
                });
                matched.ok_or_else(|| {
                    Error::config(format!(
                        "{key} is not a setting. Valid: ORCHESTRATOR_<KIND>_<KEY> with KIND one of {}; \
                         ORCHESTRATOR_BACKENDS__<INSTANCE>__<KEY>; ORCHESTRATOR_ROUTE_<SIMPLE|COMPLEX|INTEGRATION>; ORCHESTRATOR_SERVE_<KEY>; {}",
                        if backend_names.is_empty() {
                            "(none compiled in)".to_string()
                        } else {
                            backend_names
                                .iter()
                                .map(|n| n.to_ascii_uppercase().replace('-', "_"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        },
                        NON_CONFIG_VARS.join(", ")
                    ))
                })?
            };
            match set_by.get(&(instance.clone(), field.clone())) {
                Some((other, v)) if *v != value.as_str() => {
                    return Err(Error::config(format!(
                        "{other} and {key} both set backends.{instance}.{field}, to different values; keep one"
                    )));
                }
                _ => {
                    set_by.insert((instance.clone(), field.clone()), (key, value));
                }
            }
            let table = self
                .backends
                .entry(instance.clone())
                .or_insert_with(|| serde_json::Value::Object(Default::default()));
            match table {
                serde_json::Value::Object(map) => {
                    map.insert(field, scalar(value));
                }
                _ => {
                    return Err(Error::config(format!(
                        "backends.{instance} must be a table to apply {key}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// Every configured instance as `(instance, kind, table without `kind`)`. `kind`
    /// defaults to the instance's name, so `[backends.bullmq]` is a `bullmq` instance.
    pub fn instances(&self) -> Result<Vec<(String, String, serde_json::Value)>> {
        self.backends
            .iter()
            .map(|(instance, table)| {
                if !is_instance_name(instance) {
                    return Err(Error::config(format!(
                        "[backends.{instance}]: instance names are [a-z][a-z0-9-]* (at most 64 bytes)"
                    )));
                }
                let mut table = table.clone();
                let kind = match table.as_object_mut().and_then(|m| m.remove("kind")) {
                    None => instance.clone(),
                    Some(serde_json::Value::String(k)) => k,
                    Some(other) => {
                        return Err(Error::config(format!(
                            "backends.{instance}.kind must be a backend kind name, not {other}"
                        )));
                    }
                };
                Ok((instance.clone(), kind, table))
            })
            .collect()
    }
}

/// The largest configuration file read (1 MiB): a bigger one (or an endless one, like
/// `/dev/zero`) is refused as soon as it passes the cap.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

/// Read `reader` as UTF-8 text of at most `cap` bytes; what it names is `what` in the
/// errors. Every file or stdin input of the orchestrator goes through here.
pub fn read_capped(reader: impl std::io::Read, cap: u64, what: &str) -> std::io::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    reader.take(cap + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > cap {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{what} is larger than {cap} bytes"),
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "{what} is not UTF-8 text (byte {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })
}

/// `message` with every double-quoted value replaced by `"…"`: a parser's message may quote
/// the value it choked on, and that value may be a secret. Names in backticks stay.
fn without_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut quoted = false;
    for c in message.chars() {
        match (c, quoted) {
            ('"', false) => {
                quoted = true;
                out.push_str("\"…");
            }
            ('"', true) => {
                quoted = false;
                out.push('"');
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    // One line, and not much of it.
    out.lines()
        .next()
        .unwrap_or_default()
        .chars()
        .take(300)
        .collect()
}

/// `ORCHESTRATOR_*` variables that are not settings and that the loader accepts: the
/// config file, the log filter, and what `orchestrator worker --exec` sets for its child.
pub const NON_CONFIG_VARS: &[&str] = &[
    "ORCHESTRATOR_CONFIG",
    "ORCHESTRATOR_LOG",
    "ORCHESTRATOR_TASK_ID",
    "ORCHESTRATOR_JOB_ID",
    "ORCHESTRATOR_JOB_NAME",
    "ORCHESTRATOR_ATTEMPT",
];

/// `InvalidConfig` unless `name` is a backend instance name (see [`is_instance_name`]).
pub fn check_instance_name(name: &str) -> Result<()> {
    if is_instance_name(name) {
        return Ok(());
    }
    Err(Error::config(format!(
        "`{name}` is not a backend instance name: use [a-z][a-z0-9-]* (at most 64 bytes)"
    )))
}

/// Whether `name` is a backend instance name: `[a-z][a-z0-9-]*`, at most 64 bytes.
pub fn is_instance_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
}

/// Deserialize a backend's typed configuration from its table, with an error naming the
/// backend and the problem (a missing table says which variable or table to set).
pub fn parse_backend_config<T: serde::de::DeserializeOwned>(
    backend: &str,
    table: &serde_json::Value,
) -> Result<T> {
    if table.is_null() {
        return Err(Error::config(format!(
            "backend `{backend}` needs settings: a [backends.{backend}] table, or ORCHESTRATOR_BACKENDS__{}__URL (ORCHESTRATOR_{}_URL for an instance named after its kind)",
            backend.to_ascii_uppercase().replace('-', "_"),
            backend.to_ascii_uppercase().replace('-', "_")
        )));
    }
    // serde quotes the value it refused (`invalid type: string "…"`), and that value may be
    // a password: the message is redacted and the original error not kept as the source.
    serde_json::from_value(table.clone()).map_err(|e| Error::InvalidConfig {
        message: format!("backends.{backend}: {}", without_quoted(&e.to_string())),
        source: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn env_maps_to_backend_tables() {
        let c = OrchestratorConfig::from_vars(
            vars(&[
                ("ORCHESTRATOR_BULLMQ_URL", "redis://127.0.0.1:1234"),
                ("ORCHESTRATOR_N8N_API_KEY", "12345"),
                ("ORCHESTRATOR_MEMORY_BULLMQ_CONCURRENCY", "4"),
                ("ORCHESTRATOR_ROUTE_SIMPLE", "memory-bullmq"),
                ("PATH", "/bin"),
            ]),
            &["bullmq", "n8n", "memory-bullmq"],
        )
        .expect("config");
        assert_eq!(c.backends["bullmq"]["url"], "redis://127.0.0.1:1234");
        assert_eq!(c.backends["n8n"]["api_key"], 12345);
        assert_eq!(c.backends["memory-bullmq"]["concurrency"], 4);
        assert_eq!(
            c.routing.backend_for(TaskType::Simple),
            Some("memory-bullmq")
        );
        assert_eq!(c.routing.backend_for(TaskType::Complex), None);
    }

    #[test]
    fn the_serve_table_comes_from_toml_and_env_and_hides_its_token() {
        let dir = std::env::temp_dir().join(format!("orch-serve-{}", std::process::id()));
        std::fs::write(
            &dir,
            "[serve]\nbind = \"127.0.0.1:9000\"\ntoken_file = \"/run/token\"\n",
        )
        .expect("write");
        let c = OrchestratorConfig::from_vars(
            vars(&[
                ("ORCHESTRATOR_CONFIG", dir.to_str().expect("path")),
                ("ORCHESTRATOR_SERVE_TOKEN", "from-env-token"),
                ("ORCHESTRATOR_SERVE_MAX_WAITS", "8"),
            ]),
            &[],
        )
        .expect("config");
        std::fs::remove_file(&dir).expect("remove");
        assert_eq!(c.serve["bind"], "127.0.0.1:9000");
        assert_eq!(c.serve["token"], "from-env-token");
        assert!(
            !c.serve.contains_key("token_file"),
            "the variable replaces the file's token"
        );
        assert_eq!(c.serve["max_waits"], 8);
        let shown = format!("{c:?}");
        assert!(!shown.contains("from-env-token"), "{shown}");
        assert!(shown.contains("127.0.0.1:9000"), "{shown}");
    }

    #[test]
    fn env_errors_are_typed() {
        let e = OrchestratorConfig::from_vars(vars(&[("ORCHESTRATOR_NOPE_URL", "x")]), &["bullmq"])
            .expect_err("unknown backend");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig);
        let e = OrchestratorConfig::from_vars(vars(&[("ORCHESTRATOR_ROUTE_FAST", "x")]), &[])
            .expect_err("bad type");
        assert!(e.to_string().contains("not a task type"));
    }

    #[test]
    fn secrets_are_redacted() {
        let c = OrchestratorConfig::from_toml_str(
            r#"
            [backends.n8n]
            url = "http://127.0.0.1:5678"
            api_key = "sekret-key"
            [backends.bullmq]
            url = "redis://user:hunter2@127.0.0.1:6379/0"
            "#,
        )
        .expect("toml");
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("sekret-key"), "{dbg}");
        assert!(!dbg.contains("hunter2"), "{dbg}");
        assert!(format!("{:?}", Secret::new("hunter2")) == "Secret(***)");
    }

    #[test]
    fn urls_are_redacted_even_when_they_do_not_parse() {
        for (raw, shown) in [
            ("redis://u:hunter2@h:6379/0", "redis://u:***@h:6379/0"),
            ("redis://u:hunter2@h:notaport", "redis://u:***@h:notaport"),
            ("redis://:hunter2@h", "redis://:***@h"),
            ("http://h:1/x", "http://h:1/x"),
        ] {
            assert_eq!(redact_url(raw), shown, "{raw}");
            assert!(!format!("{:?}", RedactedUrl::new(raw)).contains("hunter2"));
        }
        let e = RedactedUrl::new("ftp://u:hunter2@h")
            .check("backends.x.url", &["redis", "rediss"])
            .expect_err("scheme");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig);
        let e = RedactedUrl::new("redis://u:hunter2@h:notaport")
            .check("backends.x.url", &["redis"])
            .expect_err("port");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("backends.x.url"), "{e}");
        let parsed: Millis = serde_json::from_value(serde_json::json!(5000)).expect("ms");
        assert_eq!(parsed.get(), std::time::Duration::from_secs(5));
        assert!(Millis::new(0).check_positive("x_ms").is_err());
    }

    #[test]
    fn refused_values_are_not_echoed() {
        #[derive(Debug, Deserialize)]
        #[allow(dead_code)]
        struct Port {
            port: u16,
        }
        let e = parse_backend_config::<Port>("x", &serde_json::json!({"port": "hunter2"}))
            .expect_err("a string is no port");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("string \"…\""), "{e}");
        assert!(std::error::Error::source(&e).is_none());
        // A TOML error on the line holding the secret names the place, not the text.
        let e = OrchestratorConfig::from_toml_str("[backends.x]\nurl = \"redis://:hunter2@h\" x\n")
            .expect_err("junk after the value");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("line 2"), "{e}");
        assert_eq!(
            without_quoted(r#"expected "a" got "b" in `k`"#),
            r#"expected "…" got "…" in `k`"#
        );
        let too_long = serde_json::json!(Millis::MAX.0 + 1);
        assert!(serde_json::from_value::<Millis>(too_long).is_err());
        assert_eq!(
            serde_json::from_value::<Millis>(serde_json::json!(Millis::MAX.0)).expect("10 years"),
            Millis::MAX
        );
    }

    #[test]
    fn bad_toml_is_typed() {
        let e = OrchestratorConfig::from_toml_str("[routing]\nsimple = 3").expect_err("bad");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig);
        let e = OrchestratorConfig::from_toml_str("[nope]").expect_err("unknown key");
        assert_eq!(e.kind(), crate::ErrorKind::InvalidConfig);
    }
}
