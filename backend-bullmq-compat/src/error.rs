//! Mapping of `bullmq` / `redis` errors to the orchestrator's error kinds, done once here.

use orchestrator_core::{Error, ErrorKind};

/// The kind's name: errors name it, and the orchestrator's handle renames it to the
/// instance.
pub(crate) const NAME: &str = crate::spec::KIND;

/// Map a `bullmq` crate error; the original stays reachable through `source()`.
pub(crate) fn map(err: bullmq::Error) -> Error {
    let (kind, message) = match &err {
        bullmq::Error::Redis(r) => return map_redis(r, err.to_string()).with_source(err),
        bullmq::Error::Serialization(_) | bullmq::Error::MsgPack(_) => (
            ErrorKind::InvalidInput,
            "the payload could not be encoded for BullMQ".to_string(),
        ),
        bullmq::Error::JobNotFound(id) => (ErrorKind::NotFound, format!("job {id} not found")),
        bullmq::Error::JobLocked(id) => (
            ErrorKind::Rejected,
            format!("job {id} is locked by a worker"),
        ),
        bullmq::Error::RateLimited { delay_ms } => (
            ErrorKind::RateLimited,
            format!("queue is rate limited for {delay_ms} ms"),
        ),
        bullmq::Error::InvalidConfig(m) => (ErrorKind::InvalidInput, m.clone()),
        bullmq::Error::ConnectionClosed => (
            ErrorKind::Unavailable,
            "the Redis connection is closed".to_string(),
        ),
        other => (ErrorKind::Unexpected, other.to_string()),
    };
    Error::engine(NAME, kind, message).with_source(err)
}

pub(crate) fn map_redis(r: &redis::RedisError, text: String) -> Error {
    let code = r.code().unwrap_or_default();
    if r.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(code, "NOAUTH" | "WRONGPASS" | "NOPERM")
    {
        return Error::engine(
            NAME,
            ErrorKind::Unauthorized,
            format!(
                "Redis refused our credentials ({code}); check the instance's user and password"
            ),
        );
    }
    if code == "WRONGTYPE" {
        return Error::engine(
            NAME,
            ErrorKind::Rejected,
            "a BullMQ key holds a value of the wrong type: another program wrote this queue's keys with a different layout",
        );
    }
    // Transient server states (replaying its AOF at start-up, a failover): retry later.
    if matches!(
        code,
        "LOADING" | "TRYAGAIN" | "MASTERDOWN" | "CLUSTERDOWN" | "READONLY"
    ) {
        return Error::engine(
            NAME,
            ErrorKind::Unavailable,
            format!("Redis is not serving yet ({code}): {text}; retry shortly"),
        );
    }
    if r.is_timeout() {
        return Error::engine(
            NAME,
            ErrorKind::Timeout,
            format!("Redis did not answer in time: {text}"),
        );
    }
    if r.is_connection_refusal() || r.is_io_error() || r.is_connection_dropped() {
        return Error::engine(
            NAME,
            ErrorKind::Unavailable,
            format!("cannot reach Redis: {text}; is redis-server running at the instance's `url`?"),
        );
    }
    Error::engine(NAME, ErrorKind::Unexpected, text)
}

/// The error for a call that outlived its timeout.
pub(crate) fn timeout(what: &str, after: std::time::Duration) -> Error {
    Error::engine(
        NAME,
        ErrorKind::Timeout,
        format!("{what} took longer than {after:?}; is Redis reachable at the instance's `url`?"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(reply: &str) -> redis::RedisError {
        match redis::parse_redis_value(format!("-{reply}\r\n").as_bytes()).expect("parse") {
            redis::Value::ServerError(e) => e.into(),
            other => panic!("not an error reply: {other:?}"),
        }
    }

    #[test]
    fn transient_server_states_are_retryable() {
        for reply in [
            "LOADING Redis is loading the dataset in memory",
            "TRYAGAIN Multiple keys request during rehashing of slot",
            "MASTERDOWN Link with MASTER is down",
            "READONLY You can't write against a read only replica.",
        ] {
            let e = map_redis(&server_error(reply), reply.to_string());
            assert_eq!(e.kind(), ErrorKind::Unavailable, "{reply}: {e}");
            assert!(e.is_retryable(), "{reply}");
        }
        let e = map_redis(&server_error("ERR unknown command"), "x".into());
        assert_eq!(e.kind(), ErrorKind::Unexpected);
    }
}
