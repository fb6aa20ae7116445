//! Input validation, run before any I/O: the task model's generic rules ([`task`]) and the
//! helpers engines build their own rules from (each engine's rules live in its crate and
//! are referenced from its [`crate::Descriptor`]).

use crate::error::ValidationError;
use crate::task::TaskOptions;

/// Longest task, queue, job or workflow name accepted.
pub const MAX_NAME_LEN: usize = 512;

/// Longest delay (and other durations of the task model) accepted: 10 years. The absolute
/// due time is also kept below 2^41 ms (year 2039), which engines that store
/// `due_ms * 4096` in a double (BullMQ) can represent exactly.
pub const MAX_DELAY_MS: u64 = 10 * 365 * 24 * 3600 * 1000;

const MAX_DUE_MS: u64 = 1 << 41;

/// Most attempts a task may ask for (the first run counts).
pub const MAX_ATTEMPTS: u32 = 1000;

/// The longest retry horizon (all backoff waits of all retries together) a task may ask
/// for: the delay cap.
pub const MAX_RETRY_HORIZON_MS: u64 = MAX_DELAY_MS;

type V = Result<(), ValidationError>;

/// Check a name used as a task, queue, job or workflow name.
pub fn name(field: &str, value: &str) -> V {
    if value.is_empty() {
        return Err(ValidationError::new(field, "must not be empty"));
    }
    if value.len() > MAX_NAME_LEN {
        return Err(ValidationError::new(
            field,
            format!("is {} bytes long; the limit is {MAX_NAME_LEN}", value.len()),
        ));
    }
    if value.trim() != value {
        return Err(ValidationError::new(
            field,
            "must not start or end with whitespace",
        ));
    }
    if value.chars().any(char::is_control) {
        return Err(ValidationError::new(
            field,
            "must not contain control characters",
        ));
    }
    Ok(())
}

/// Check an `http`/`https` URL with a host.
pub fn http_url(field: &str, value: &str) -> V {
    let url = url::Url::parse(value)
        .map_err(|e| ValidationError::new(field, format!("`{value}` is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ValidationError::new(
            field,
            format!("scheme `{}` is not http or https", url.scheme()),
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ValidationError::new(field, "the URL has no host"));
    }
    Ok(())
}

/// Validate a whole schedule request against the task model: the task name and the
/// generic bounds (`attempts`, `delay`, `backoff`), and engine options nested no deeper
/// than [`MAX_JSON_DEPTH`]. Which options a backend honours, and what an engine's own
/// options must look like, is its descriptor's business ([`crate::Descriptor::admit`]).
pub(crate) fn task(task_name: &str, o: &TaskOptions, now_ms: u64) -> V {
    name("name", task_name)?;
    if o.attempts == Some(0) {
        return Err(ValidationError::new(
            "attempts",
            "must be at least 1 (the first run counts as an attempt)",
        ));
    }
    if let Some(n) = o.attempts.filter(|n| *n > MAX_ATTEMPTS) {
        return Err(ValidationError::new(
            "attempts",
            format!("{n} is above the limit of {MAX_ATTEMPTS}"),
        ));
    }
    if let Some(b) = o.backoff {
        let (delay, exponential) = match b {
            crate::Backoff::Fixed { delay_ms } => (delay_ms, false),
            crate::Backoff::Exponential { delay_ms } => (delay_ms, true),
        };
        if delay > MAX_DELAY_MS {
            return Err(ValidationError::new(
                "backoff.delay",
                format!("{delay} ms is above the limit of {MAX_DELAY_MS} ms"),
            ));
        }
        let horizon = retry_horizon_ms(delay, exponential, o.attempts.unwrap_or(1));
        if horizon > MAX_RETRY_HORIZON_MS {
            return Err(ValidationError::new(
                "backoff",
                format!(
                    "all retries together would wait {} ms, above the limit of {MAX_RETRY_HORIZON_MS} ms (fewer attempts or a shorter delay)",
                    if horizon == u64::MAX {
                        "more than 2^64".to_string()
                    } else {
                        horizon.to_string()
                    }
                ),
            ));
        }
    }
    if let Some(d) = o.delay {
        if d > MAX_DELAY_MS || now_ms.saturating_add(d) >= MAX_DUE_MS {
            return Err(ValidationError::new(
                "delay",
                format!("{d} ms is too far in the future (limit {MAX_DELAY_MS} ms)"),
            ));
        }
    }
    for (key, value) in o.engine_options() {
        json_nesting(key, value)?;
    }
    Ok(())
}

/// A duration of the task model (`ttl`, a timeout, an age in ms) within [`MAX_DELAY_MS`].
pub fn duration_ms(field: &str, ms: u64) -> V {
    if ms > MAX_DELAY_MS {
        return Err(ValidationError::new(
            field,
            format!("{ms} ms is above the limit of {MAX_DELAY_MS} ms"),
        ));
    }
    Ok(())
}

/// The size of `value` serialized as JSON, without building the text.
pub fn json_size(value: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing a `Value` to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut n, value);
    n.0
}

/// The total wait of all retries: `attempts - 1` waits of `delay` (fixed), or
/// `delay * (2^(attempts-1) - 1)` (exponential); saturates at `u64::MAX`.
pub fn retry_horizon_ms(delay: u64, exponential: bool, attempts: u32) -> u64 {
    let retries = u64::from(attempts.saturating_sub(1));
    if !exponential {
        return delay.saturating_mul(retries);
    }
    if retries >= 64 {
        return if delay == 0 { 0 } else { u64::MAX };
    }
    delay.saturating_mul((1u64 << retries) - 1)
}

/// Refuse a payload larger than `limit` bytes of JSON (a backend's `max_payload_bytes`).
pub fn payload_size(payload: &serde_json::Value, limit: usize) -> V {
    let size = json_size(payload);
    if size > limit {
        return Err(ValidationError::new(
            "payload",
            format!(
                "is {size} bytes of JSON, above this backend's limit of {limit} bytes (max_payload_bytes)"
            ),
        ));
    }
    Ok(())
}

/// The deepest nesting of arrays and objects accepted in a payload or an options object:
/// 128, serde_json's own parsing limit, so whatever is written can be read back.
pub const MAX_JSON_DEPTH: usize = 128;

/// How deeply `value` nests arrays and objects (a scalar is 0), without recursion, giving
/// up (returning `limit + 1`) as soon as it is deeper than `limit`.
pub fn json_depth(value: &serde_json::Value, limit: usize) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, 0usize)];
    while let Some((v, depth)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &serde_json::Value>> = match v {
            serde_json::Value::Array(a) => Box::new(a.iter()),
            serde_json::Value::Object(m) => Box::new(m.values()),
            _ => continue,
        };
        let depth = depth + 1;
        if depth > limit {
            return limit + 1;
        }
        deepest = deepest.max(depth);
        stack.extend(children.map(|c| (c, depth)));
    }
    deepest
}

/// Refuse a JSON value nested deeper than [`MAX_JSON_DEPTH`].
pub fn json_nesting(field: &str, value: &serde_json::Value) -> V {
    if json_depth(value, MAX_JSON_DEPTH) > MAX_JSON_DEPTH {
        return Err(ValidationError::new(
            field,
            format!("nests arrays/objects deeper than {MAX_JSON_DEPTH} levels"),
        ));
    }
    Ok(())
}

/// Drop `value` without recursion (dropping a deeply nested value recursively can
/// overflow the stack).
pub fn drop_deep(value: serde_json::Value) {
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            serde_json::Value::Array(a) => stack.extend(a),
            serde_json::Value::Object(m) => stack.extend(m.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
}
