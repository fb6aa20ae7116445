//! Self-routing task ids: `<backend>:<native id>`.
//!
//! The backend part names the backend instance that owns the task, so status and cancel
//! find their backend with no central lookup table. The native part is whatever the
//! engine needs to find the task again (for BullMQ `queue:jobId`, for Temporal
//! `workflowId:runId`…); callers should treat the whole id as opaque.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// Longest accepted task id string.
pub const MAX_TASK_ID_LEN: usize = 2048;

/// Why a string is not a [`TaskId`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskIdError {
    /// The string is empty.
    #[error("task id is empty")]
    Empty,
    /// The string is longer than [`MAX_TASK_ID_LEN`].
    #[error("task id is {0} bytes long; the limit is {MAX_TASK_ID_LEN}")]
    TooLong(usize),
    /// No `:` separates the backend from the native id.
    #[error("task id `{0}` has no `<backend>:` prefix")]
    MissingBackend(String),
    /// The backend part is not a backend name (`[a-z][a-z0-9_-]*`, at most 64 bytes).
    #[error("task id `{0}` has an invalid backend name `{1}` (expected [a-z][a-z0-9_-]*)")]
    InvalidBackend(String, String),
    /// Nothing follows the `<backend>:` prefix.
    #[error("task id `{0}` has an empty native id")]
    EmptyNative(String),
    /// The native part is malformed for its backend, or has control characters.
    #[error("task id `{id}` is malformed: {reason}")]
    Malformed {
        /// The offending id.
        id: String,
        /// What is wrong.
        reason: String,
    },
}

/// Whether `name` is a valid backend name: `[a-z][a-z0-9_-]*`, at most 64 bytes.
pub fn is_backend_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z'))
        && name.len() <= 64
        && bytes.all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'))
}

/// An opaque, self-routing task id.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    backend: Arc<str>,
    native: Arc<str>,
}

impl TaskId {
    /// Build an id from a backend name and a native id.
    pub fn new(backend: &str, native: &str) -> Result<Self, TaskIdError> {
        format!("{backend}:{native}").parse()
    }

    /// The backend that owns the task.
    pub fn backend(&self) -> &str {
        &self.backend
    }

    /// The engine's own id for the task (as the backend encoded it).
    pub fn native(&self) -> &str {
        &self.native
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.backend, self.native)
    }
}

impl fmt::Debug for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TaskId({self})")
    }
}

impl FromStr for TaskId {
    type Err = TaskIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(TaskIdError::Empty);
        }
        if s.len() > MAX_TASK_ID_LEN {
            return Err(TaskIdError::TooLong(s.len()));
        }
        let (backend, native) = s
            .split_once(':')
            .ok_or_else(|| TaskIdError::MissingBackend(s.to_string()))?;
        if !is_backend_name(backend) {
            return Err(TaskIdError::InvalidBackend(
                s.to_string(),
                backend.to_string(),
            ));
        }
        if native.is_empty() {
            return Err(TaskIdError::EmptyNative(s.to_string()));
        }
        if native.chars().any(char::is_control) {
            return Err(TaskIdError::Malformed {
                id: s.escape_debug().to_string(),
                reason: "control characters are not allowed".into(),
            });
        }
        Ok(TaskId {
            backend: backend.into(),
            native: native.into(),
        })
    }
}

impl Serialize for TaskId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TaskId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

impl schemars::JsonSchema for TaskId {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "TaskId".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "description": "Opaque task id `<backend>:<native id>`",
            "pattern": "^[a-z][a-z0-9_-]*:.+$"
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let id: TaskId = "bullmq:emails:42".parse().expect("valid");
        assert_eq!(id.backend(), "bullmq");
        assert_eq!(id.native(), "emails:42");
        assert_eq!(id.to_string().parse::<TaskId>().expect("valid"), id);
        let json = serde_json::to_string(&id).expect("ser");
        assert_eq!(json, "\"bullmq:emails:42\"");
        assert_eq!(serde_json::from_str::<TaskId>(&json).expect("de"), id);
    }

    #[test]
    fn garbage_is_typed() {
        assert_eq!("".parse::<TaskId>(), Err(TaskIdError::Empty));
        assert!(matches!(
            "nocolon".parse::<TaskId>(),
            Err(TaskIdError::MissingBackend(_))
        ));
        assert!(matches!(
            "Bull:1".parse::<TaskId>(),
            Err(TaskIdError::InvalidBackend(..))
        ));
        assert!(matches!(
            ":1".parse::<TaskId>(),
            Err(TaskIdError::InvalidBackend(..))
        ));
        assert!(matches!(
            "bullmq:".parse::<TaskId>(),
            Err(TaskIdError::EmptyNative(_))
        ));
        assert!(matches!(
            "bullmq:a\nb".parse::<TaskId>(),
            Err(TaskIdError::Malformed { .. })
        ));
        let long = format!("bullmq:{}", "x".repeat(MAX_TASK_ID_LEN));
        assert!(matches!(
            long.parse::<TaskId>(),
            Err(TaskIdError::TooLong(_))
        ));
        assert!(serde_json::from_str::<TaskId>("\"nope\"").is_err());
    }
}
