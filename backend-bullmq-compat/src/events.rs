//! Waiting on a queue's event stream, the way Node's `job.waitUntilFinished` does, shared:
//! one listener per queue that has waiters, reading the queue's `events` stream (what
//! BullMQ writes for Node `QueueEvents`) on its own connection and telling waiters which
//! jobs finished (`completed`, `failed`, `removed`). A waiter re-reads the job's status on
//! each such event and at least every [`RECHECK`], so an event it could not see (stream
//! trimmed, listener lost) delays it by at most that much.
//!
//! Bounded: at most [`MAX_LISTENERS`] listeners (one Redis connection each) per backend;
//! beyond that, waits poll. A listener stops within a second of its last waiter leaving.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::AsyncCommands;
use redis::streams::{StreamRangeReply, StreamReadOptions, StreamReadReply};
use tokio::sync::broadcast;

use orchestrator_core::Result;

use crate::error;

/// The longest a waiter goes without re-reading the status.
pub(crate) const RECHECK: Duration = Duration::from_secs(5);

/// The most queues listened to at once by one backend.
pub(crate) const MAX_LISTENERS: usize = 64;

/// How long one `XREAD` blocks; also how late a listener notices it has no waiters.
const BLOCK: Duration = Duration::from_secs(1);

/// Finished-job notices buffered per queue; a waiter that falls further behind re-reads.
const CAPACITY: usize = 1024;

/// Entries read per `XREAD`.
const COUNT: usize = 1000;

/// The listeners of one backend, by queue.
#[derive(Default)]
pub(crate) struct Listeners {
    by_queue: Mutex<HashMap<String, broadcast::Sender<Arc<str>>>>,
}

impl Listeners {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, broadcast::Sender<Arc<str>>>> {
        // Only inserts, removals and subscriptions happen under this lock.
        self.by_queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver of the ids of `queue`'s jobs that finish from now on; `None` when
    /// [`MAX_LISTENERS`] queues are listened to already (the caller polls).
    pub(crate) async fn subscribe(
        self: &Arc<Self>,
        url: &str,
        stream_key: String,
        queue: &str,
        timeout: Duration,
    ) -> Result<Option<broadcast::Receiver<Arc<str>>>> {
        if let Some(tx) = self.lock().get(queue) {
            return Ok(Some(tx.subscribe()));
        }
        if self.lock().len() >= MAX_LISTENERS {
            return Ok(None);
        }
        let client = redis::Client::open(url)
            .map_err(|e| error::map_redis(&e, e.to_string()).with_source(e))?;
        let connect = client.get_multiplexed_async_connection();
        let mut conn = tokio::time::timeout(timeout, connect)
            .await
            .map_err(|_| error::timeout("connecting to Redis for events", timeout))?
            .map_err(|e| error::map_redis(&e, e.to_string()).with_source(e))?;
        // Start after the newest entry: what happened before is in the status the waiter
        // reads after subscribing.
        let newest: StreamRangeReply =
            tokio::time::timeout(timeout, conn.xrevrange_count(&stream_key, "+", "-", 1))
                .await
                .map_err(|_| error::timeout("reading the event stream", timeout))?
                .map_err(|e| error::map_redis(&e, e.to_string()).with_source(e))?;
        let from = newest
            .ids
            .first()
            .map_or_else(|| "0-0".to_string(), |e| e.id.clone());
        let mut map = self.lock();
        if let Some(tx) = map.get(queue) {
            // Another waiter started one meanwhile.
            return Ok(Some(tx.subscribe()));
        }
        let (tx, rx) = broadcast::channel(CAPACITY);
        map.insert(queue.to_string(), tx.clone());
        drop(map);
        tokio::spawn(listen(
            Arc::clone(self),
            queue.to_string(),
            conn,
            stream_key,
            from,
            tx,
            timeout,
        ));
        Ok(Some(rx))
    }
}

/// Read `stream_key` from `from` on, sending the ids of finished jobs, until no waiter is
/// left or Redis fails (waiters then see the channel closed and poll).
async fn listen(
    listeners: Arc<Listeners>,
    queue: String,
    mut conn: redis::aio::MultiplexedConnection,
    stream_key: String,
    mut from: String,
    tx: broadcast::Sender<Arc<str>>,
    timeout: Duration,
) {
    let block = usize::try_from(BLOCK.as_millis()).unwrap_or(1000);
    let opts = StreamReadOptions::default().block(block).count(COUNT);
    loop {
        {
            let mut map = listeners.lock();
            if tx.receiver_count() == 0 {
                if map.get(&queue).is_some_and(|t| t.same_channel(&tx)) {
                    map.remove(&queue);
                }
                return;
            }
        }
        let (keys, ids) = ([&stream_key], [&from]);
        let read = conn.xread_options::<_, _, Option<StreamReadReply>>(&keys, &ids, &opts);
        let reply = match tokio::time::timeout(BLOCK + timeout, read).await {
            Ok(Ok(reply)) => reply,
            Ok(Err(e)) => {
                tracing::debug!(queue, error = %e, "event listener stopped; waiters poll");
                break;
            }
            Err(_) => {
                tracing::debug!(queue, "event stream read timed out; waiters poll");
                break;
            }
        };
        for entry in reply.into_iter().flat_map(|r| r.keys).flat_map(|k| k.ids) {
            from.clone_from(&entry.id);
            let event: Option<String> = entry.get("event");
            if matches!(event.as_deref(), Some("completed" | "failed" | "removed")) {
                if let Some(job) = entry.get::<String>("jobId") {
                    // No receiver left is fine: the loop notices and stops.
                    let _ = tx.send(Arc::from(job));
                }
            }
        }
    }
    let mut map = listeners.lock();
    if map.get(&queue).is_some_and(|t| t.same_channel(&tx)) {
        map.remove(&queue);
    }
}

/// Entries read per `XREVRANGE` when looking back for a job's end.
pub(crate) const LOOKBACK_PAGE: usize = 200;

/// The most entries looked back through: BullMQ's default event stream cap, so a job whose
/// end is still in a default-sized stream is found.
pub(crate) const LOOKBACK_MAX: usize = 10_000;

/// How a job ended, as its queue's event stream recorded it.
#[derive(Debug, PartialEq)]
pub(crate) struct Ended {
    /// `completed` (else `failed`).
    pub(crate) completed: bool,
    /// The return value (JSON text) or the failure reason.
    pub(crate) value: String,
    /// When, in ms since the epoch (the entry id's time part).
    pub(crate) at_ms: Option<u64>,
}

/// What the newest-first `entries` say about `job`: `Some(Some(end))` when its newest event
/// there is `completed` or `failed`, `Some(None)` when it is `removed` or `added` (the job was
/// cancelled, or re-added after it ended), `None` when they do not mention its end.
pub(crate) fn last_word(entries: &[redis::streams::StreamId], job: &str) -> Option<Option<Ended>> {
    entries.iter().find_map(|entry| {
        if entry.get::<String>("jobId").as_deref() != Some(job) {
            return None;
        }
        let event: String = entry.get("event")?;
        let (completed, field) = match event.as_str() {
            "completed" => (true, "returnvalue"),
            "failed" => (false, "failedReason"),
            "removed" | "added" => return Some(None),
            _ => return None,
        };
        Some(Some(Ended {
            completed,
            value: entry.get(field).unwrap_or_default(),
            at_ms: entry.id.split('-').next().and_then(|t| t.parse().ok()),
        }))
    })
}

#[cfg(test)]
mod tests {
    use redis::streams::StreamId;

    use super::*;

    fn entry(id: &str, fields: &[(&str, &str)]) -> StreamId {
        StreamId {
            id: id.into(),
            map: fields
                .iter()
                .map(|(k, v)| {
                    (
                        (*k).to_string(),
                        redis::Value::BulkString(v.as_bytes().to_vec()),
                    )
                })
                .collect(),
            milliseconds_elapsed_from_delivery: None,
            delivered_count: None,
        }
    }

    #[test]
    fn the_newest_event_of_the_job_decides() {
        let done = entry(
            "17-0",
            &[
                ("event", "completed"),
                ("jobId", "7"),
                ("returnvalue", "42"),
            ],
        );
        let other = entry(
            "18-0",
            &[("event", "failed"), ("jobId", "8"), ("failedReason", "x")],
        );
        let progress = entry(
            "16-0",
            &[("event", "progress"), ("jobId", "7"), ("data", "1")],
        );
        assert_eq!(
            last_word(&[other.clone(), done.clone(), progress.clone()], "7"),
            Some(Some(Ended {
                completed: true,
                value: "42".into(),
                at_ms: Some(17)
            }))
        );
        let readded = entry("19-0", &[("event", "added"), ("jobId", "7"), ("name", "q")]);
        assert_eq!(last_word(&[readded, done], "7"), Some(None));
        assert_eq!(last_word(&[other, progress], "7"), None);
    }
}
