//! JSON ⇄ Temporal payloads, the way every SDK's default converter writes them.

use super::*;

/// A JSON value as a Temporal payload, the way every SDK's default converter writes it.
/// The memo field holding a workflow's tracking task id.
pub(super) const TRACKING_MEMO: &str = "orchestratorTrackingTaskId";

/// The memo field holding the task name of a workflow the orchestrator started.
pub(super) const NAME_MEMO: &str = "orchestratorTaskName";

pub(crate) fn json_payload(v: &serde_json::Value) -> Payload {
    if v.is_null() {
        return Payload {
            metadata: [("encoding".to_string(), b"binary/null".to_vec())].into(),
            ..Payload::default()
        };
    }
    Payload {
        metadata: [("encoding".to_string(), b"json/plain".to_vec())].into(),
        data: serde_json::to_vec(v).unwrap_or_default(),
        ..Payload::default()
    }
}

/// A payload back to JSON: `json/plain` parsed, `binary/null` or no encoding as null,
/// anything else as a description (never a panic).
pub(crate) fn payload_json(p: &Payload) -> serde_json::Value {
    match p.metadata.get("encoding").map(Vec::as_slice) {
        Some(b"json/plain") => serde_json::from_slice(&p.data).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&p.data).into_owned())
        }),
        None | Some(b"binary/null") => serde_json::Value::Null,
        Some(other) => serde_json::json!({
            "encoding": String::from_utf8_lossy(other),
            "bytes": p.data.len(),
        }),
    }
}

pub(super) fn millis(t: Option<SystemTime>) -> Option<u64> {
    t.and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
