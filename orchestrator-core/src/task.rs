//! The seed's task model: task types and the option object passed to `scheduleTask`.
//!
//! Every type here deserializes from the seed's TypeScript option objects unchanged
//! (camelCase keys, `"SIMPLE"`-style enum values). Core knows the generic options (`delay`,
//! `priority`, `attempts`, `backoff`); every other key belongs to an engine, which declares
//! it in its descriptor. [`TaskOptions::from_json`] refuses a key no linked backend owns,
//! and admission refuses a key the target backend does not own, so an option the
//! orchestrator would not honour is an error instead of being dropped silently.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ValidationError;

/// Which engine family a task belongs to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Default,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TaskType {
    /// Short, stateless jobs on a BullMQ-compatible queue.
    #[default]
    Simple,
    /// Stateful, long-running workflows on Temporal.
    Complex,
    /// External integrations delivered to n8n.
    Integration,
}

impl TaskType {
    /// All task types, in routing order.
    pub const ALL: [TaskType; 3] = [TaskType::Simple, TaskType::Complex, TaskType::Integration];

    /// The seed's spelling: `SIMPLE`, `COMPLEX` or `INTEGRATION`.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Simple => "SIMPLE",
            TaskType::Complex => "COMPLEX",
            TaskType::Integration => "INTEGRATION",
        }
    }
}

impl fmt::Display for TaskType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskType {
    type Err = ValidationError;

    /// Accepts `simple`/`SIMPLE`, `complex`/`COMPLEX`, `integration`/`INTEGRATION`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "SIMPLE" => Ok(TaskType::Simple),
            "COMPLEX" => Ok(TaskType::Complex),
            "INTEGRATION" => Ok(TaskType::Integration),
            _ => Err(ValidationError::new(
                "taskType",
                format!("`{s}` is not one of SIMPLE, COMPLEX, INTEGRATION"),
            )),
        }
    }
}

/// How long to wait between attempts.
///
/// Deserializes from BullMQ's two spellings: a number (fixed delay in ms) or
/// `{ "type": "fixed" | "exponential", "delay": ms }`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(from = "BackoffRepr", into = "BackoffObject")]
pub enum Backoff {
    /// The same delay before every retry.
    Fixed {
        /// Delay in milliseconds.
        delay_ms: u64,
    },
    /// `delay * 2^(attempt-1)` before retry number `attempt`.
    Exponential {
        /// Base delay in milliseconds.
        delay_ms: u64,
    },
}

impl Backoff {
    /// A fixed backoff of `delay_ms` milliseconds.
    pub fn fixed(delay_ms: u64) -> Self {
        Backoff::Fixed { delay_ms }
    }

    /// An exponential backoff with base `delay_ms` milliseconds.
    pub fn exponential(delay_ms: u64) -> Self {
        Backoff::Exponential { delay_ms }
    }

    /// The delay before the retry that follows `attempts_made` failed attempts (≥ 1),
    /// computed as BullMQ does.
    pub fn delay_after(&self, attempts_made: u32) -> std::time::Duration {
        let ms = match *self {
            Backoff::Fixed { delay_ms } => delay_ms,
            Backoff::Exponential { delay_ms } => {
                let exp = attempts_made.saturating_sub(1).min(32);
                delay_ms.saturating_mul(1u64 << exp)
            }
        };
        std::time::Duration::from_millis(ms)
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
enum BackoffRepr {
    Millis(u64),
    Object(BackoffObject),
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct BackoffObject {
    #[serde(rename = "type")]
    kind: BackoffKind,
    #[serde(default)]
    delay: u64,
}

#[derive(Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum BackoffKind {
    Fixed,
    Exponential,
}

impl From<BackoffRepr> for Backoff {
    fn from(r: BackoffRepr) -> Self {
        match r {
            BackoffRepr::Millis(delay_ms) => Backoff::Fixed { delay_ms },
            BackoffRepr::Object(o) => o.into(),
        }
    }
}

impl From<BackoffObject> for Backoff {
    fn from(o: BackoffObject) -> Self {
        match o.kind {
            BackoffKind::Fixed => Backoff::Fixed { delay_ms: o.delay },
            BackoffKind::Exponential => Backoff::Exponential { delay_ms: o.delay },
        }
    }
}

impl From<Backoff> for BackoffObject {
    fn from(b: Backoff) -> Self {
        match b {
            Backoff::Fixed { delay_ms } => BackoffObject {
                kind: BackoffKind::Fixed,
                delay: delay_ms,
            },
            Backoff::Exponential { delay_ms } => BackoffObject {
                kind: BackoffKind::Exponential,
                delay: delay_ms,
            },
        }
    }
}

/// A typed block of engine options, owned by one engine (`temporal`, `n8n`): the block's
/// key in the option object and its shape. The engine's descriptor declares it
/// ([`crate::EngineOption::block`]) and validates it; the orchestrator carries it as
/// JSON, unchanged on the wire.
pub trait OptionBlock: Serialize + DeserializeOwned + JsonSchema {
    /// The block's key in the option object.
    const KEY: &'static str;
}

/// The option object of `scheduleTask`: the seed's generic fields, plus every key an
/// engine owns (BullMQ's `jobId`, `lifo`…, the `temporal` and `n8n` blocks), kept as JSON
/// in [`TaskOptions::engine_options`] and checked by the target backend's descriptor: a
/// key it does not own is refused, never dropped.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskOptions {
    /// Which engine family runs the task (`SIMPLE` when omitted).
    #[serde(default)]
    pub task_type: TaskType,
    /// Priority: 1 is the highest; unset or 0 means none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<u32>,
    /// Total attempts (first run included); at least 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// Delay before the task may start, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<u64>,
    /// Wait between attempts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Engine options, by key (see each engine's descriptor).
    #[serde(flatten)]
    engine: serde_json::Map<String, serde_json::Value>,
}

fn duration_ms(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl TaskOptions {
    /// Options for a SIMPLE task.
    pub fn simple() -> Self {
        Self::default()
    }

    /// Options for a COMPLEX task with its engine's block (`TemporalOptions`).
    pub fn complex(block: impl OptionBlock) -> Self {
        Self::default().task_type(TaskType::Complex).with(block)
    }

    /// Options for an INTEGRATION task with its engine's block (`N8nOptions`).
    pub fn integration(block: impl OptionBlock) -> Self {
        Self::default().task_type(TaskType::Integration).with(block)
    }

    /// Parse the seed's JSON option object, turning serde's message into a typed error.
    /// Keys that are not generic options are kept as engine options for the target
    /// backend to accept or refuse; a key that no backend linked into this binary owns
    /// ([`crate::Registry::global`]) is refused here as a likely typo. (A backend
    /// registered only on a private registry: set its keys with
    /// [`TaskOptions::engine_option`], or deserialize with serde, which keeps every key.)
    pub fn from_json(value: serde_json::Value) -> Result<Self, ValidationError> {
        // Deserializing recurses with the nesting: refuse deep input first.
        if let Err(e) = crate::validate::json_nesting("options", &value) {
            crate::validate::drop_deep(value);
            return Err(e);
        }
        // The path of the offending key goes in the message (`backoff.delay: invalid …`).
        let options: Self = serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                ValidationError::new("options", inner.to_string())
            } else {
                ValidationError::new("options", format!("{path}: {inner}"))
            }
        })?;
        let registry = crate::registry::Registry::global();
        for (key, value) in &options.engine {
            let Some(option) = registry.engine_option(key) else {
                let mut all: Vec<&str> = ["taskType", "priority", "attempts", "delay", "backoff"]
                    .into_iter()
                    .chain(registry.engine_option_keys())
                    .collect();
                all.sort_unstable();
                all.dedup();
                return Err(ValidationError::new(
                    "options",
                    format!(
                        "unknown option `{key}`; the options this build knows are {}",
                        all.join(", ")
                    ),
                ));
            };
            if !value.is_null() {
                option
                    .check_shape(value)
                    .map_err(|e| ValidationError::new("options", format!("{key}: {e}")))?;
            }
        }
        Ok(options)
    }

    /// Set the priority (1 = highest).
    #[must_use]
    pub fn priority(mut self, priority: u32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Set the total number of attempts.
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = Some(attempts);
        self
    }

    /// Delay the start.
    #[must_use]
    pub fn delay(mut self, delay: std::time::Duration) -> Self {
        self.delay = Some(duration_ms(delay));
        self
    }

    /// Wait between attempts.
    #[must_use]
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = Some(backoff);
        self
    }

    /// Force the task type.
    #[must_use]
    pub fn task_type(mut self, task_type: TaskType) -> Self {
        self.task_type = task_type;
        self
    }

    /// Set engine block `block` (under `B::KEY`).
    #[must_use]
    pub fn with<B: OptionBlock>(self, block: B) -> Self {
        // Serializing a derived struct into a `Value` cannot fail (string keys only).
        let value = serde_json::to_value(block).unwrap_or(serde_json::Value::Null);
        self.engine_option(B::KEY, value)
    }

    /// Set engine option `key` to `value` (`null` removes it).
    #[must_use]
    pub fn engine_option(mut self, key: &str, value: serde_json::Value) -> Self {
        if value.is_null() {
            self.engine.remove(key);
        } else {
            self.engine.insert(key.to_string(), value);
        }
        self
    }

    /// Engine option `key`, as JSON.
    pub fn get_engine_option(&self, key: &str) -> Option<&serde_json::Value> {
        self.engine.get(key)
    }

    /// Every engine option set, by key.
    pub fn engine_options(&self) -> impl Iterator<Item = (&str, &serde_json::Value)> {
        self.engine.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Block `B`, parsed (`None` when not set); a block of the wrong shape is an
    /// `InvalidInput` naming the offending field.
    pub fn block<B: OptionBlock>(&self) -> Result<Option<B>, ValidationError> {
        let Some(value) = self.engine.get(B::KEY) else {
            return Ok(None);
        };
        serde_path_to_error::deserialize(value)
            .map(Some)
            .map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                if path == "." {
                    ValidationError::new(B::KEY, inner.to_string())
                } else {
                    ValidationError::new(format!("{}.{path}", B::KEY), inner.to_string())
                }
            })
    }

    /// Take engine option `key` out (to drop a deep value without recursion).
    pub(crate) fn take_engine_options(&mut self) -> serde_json::Map<String, serde_json::Value> {
        std::mem::take(&mut self.engine)
    }
}
