//! The durable outbox: dispatch records in Redis (through a bb8 pool), claimed by
//! dispatchers under a lease so a crashed dispatcher's work is taken over.
//!
//! Keys, under `prefix` (default `orchestrator:n8n`):
//! * `<prefix>:d:<dispatch id>`: hash with `state` (a [`DispatchState`]) and `rec` (the
//!   JSON [`Record`]);
//! * `<prefix>:due`: zset of dispatch ids waiting for delivery, scored by due time (ms);
//! * `<prefix>:lease`: zset of ids being delivered, scored by lease expiry (ms).
//!
//! Delivery is at least once: a dispatcher that dies after n8n accepted a call but before
//! recording it leaves the lease to expire, and the call is made again.

use bb8_redis::RedisConnectionManager;
use orchestrator_core::{Error, ErrorKind, Result};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::backend::NAME;
use crate::config::OutboxConfig;

/// One dispatch, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Record {
    pub(crate) task_name: String,
    pub(crate) url: Option<String>,
    pub(crate) workflow_id: Option<String>,
    pub(crate) body: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) attempts_made: u32,
    pub(crate) created_at: u64,
    pub(crate) finished_at: Option<u64>,
    pub(crate) execution_id: Option<String>,
    pub(crate) response: Option<serde_json::Value>,
    pub(crate) error: Option<String>,
}

/// Where a dispatch is. Stored as its [`DispatchState::as_str`] in the record's `state`
/// field; the Lua scripts receive the names they write as arguments, so this enum is the one
/// spelling of every state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DispatchState {
    /// Stored, waiting for its first delivery.
    Queued,
    /// A delivery failed (or a dispatcher's lease expired); waiting for the next one.
    Retrying,
    /// A dispatcher holds it and is calling n8n.
    Delivering,
    /// n8n acknowledged the call.
    Delivered,
    /// Delivery gave up.
    Failed,
    /// Cancelled before delivery.
    Cancelled,
}

impl DispatchState {
    const ALL: [DispatchState; 6] = [
        DispatchState::Queued,
        DispatchState::Retrying,
        DispatchState::Delivering,
        DispatchState::Delivered,
        DispatchState::Failed,
        DispatchState::Cancelled,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            DispatchState::Queued => "queued",
            DispatchState::Retrying => "retrying",
            DispatchState::Delivering => "delivering",
            DispatchState::Delivered => "delivered",
            DispatchState::Failed => "failed",
            DispatchState::Cancelled => "cancelled",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == s)
    }
}

// ARGV: now, lease expiry, max ids, record key prefix, `retrying`, `delivering`.
const CLAIM: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
  redis.call('HSET', ARGV[4] .. id, 'state', ARGV[5])
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  redis.call('HSET', ARGV[4] .. id, 'state', ARGV[6])
end
return ids
";

// ARGV: dispatch id, `queued`, `retrying`, `cancelled`. Returns the state found (false when
// the record is missing); a queued or retrying dispatch becomes cancelled.
const CANCEL: &str = r"
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return false end
if st == ARGV[2] or st == ARGV[3] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', ARGV[4])
end
return st
";

/// What a cancel found: `None` when the dispatch does not exist, otherwise the state it was
/// in (`Queued` or `Retrying` means it is now cancelled).
pub(crate) type CancelState = Option<DispatchState>;

pub(crate) struct Outbox {
    pub(crate) cfg: OutboxConfig,
    pool: bb8::Pool<RedisConnectionManager>,
    claim: redis::Script,
    cancel: redis::Script,
}

fn parse_state(s: &str, id: &str) -> Result<DispatchState> {
    DispatchState::parse(s).ok_or_else(|| {
        Error::backend(
            NAME,
            ErrorKind::Unexpected,
            format!("outbox record {id} has an unknown state `{s}`"),
        )
    })
}

fn redis_err(e: impl std::error::Error + Send + Sync + 'static, what: &str) -> Error {
    Error::backend(
        NAME,
        ErrorKind::Unavailable,
        format!("outbox {what}: {e}; is Redis reachable at backends.n8n.outbox.redis_url?"),
    )
    .with_source(e)
}

impl Outbox {
    pub(crate) fn new(cfg: OutboxConfig, timeout: std::time::Duration) -> Result<Self> {
        let manager = RedisConnectionManager::new(cfg.redis_url.expose()).map_err(|e| {
            Error::backend(
                NAME,
                ErrorKind::InvalidConfig,
                format!("backends.n8n.outbox.redis_url: {e}"),
            )
            .with_source(e)
        })?;
        // No connection until first use, so a Redis that is down does not stop start-up.
        let pool = bb8::Pool::builder()
            .max_size(8)
            .connection_timeout(timeout)
            .build_unchecked(manager);
        Ok(Self {
            cfg,
            pool,
            claim: redis::Script::new(CLAIM),
            cancel: redis::Script::new(CANCEL),
        })
    }

    fn key(&self, id: &str) -> String {
        format!("{}:d:{id}", self.cfg.prefix)
    }

    fn due(&self) -> String {
        format!("{}:due", self.cfg.prefix)
    }

    fn lease(&self) -> String {
        format!("{}:lease", self.cfg.prefix)
    }

    async fn conn(&self) -> Result<bb8::PooledConnection<'_, RedisConnectionManager>> {
        self.pool
            .get()
            .await
            .map_err(|e| redis_err(e, "connection"))
    }

    fn encode(rec: &Record) -> Result<String> {
        serde_json::to_string(rec)
            .map_err(|e| Error::backend(NAME, ErrorKind::Unexpected, format!("outbox record: {e}")))
    }

    /// Store a new dispatch, due now.
    pub(crate) async fn enqueue(&self, id: &str, rec: &Record) -> Result<()> {
        let mut c = self.conn().await?;
        let _: () = redis::pipe()
            .atomic()
            .hset_multiple(
                self.key(id),
                &[
                    ("state", DispatchState::Queued.as_str().to_string()),
                    ("rec", Self::encode(rec)?),
                ],
            )
            .zadd(self.due(), id, rec.created_at)
            .query_async(&mut *c)
            .await
            .map_err(|e| redis_err(e, "enqueue"))?;
        Ok(())
    }

    /// Take up to `n` due dispatches (and re-queue those whose lease expired).
    pub(crate) async fn claim(&self, now: u64, n: usize) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        self.claim
            .key(self.due())
            .key(self.lease())
            .arg(now)
            .arg(now.saturating_add(self.cfg.lease_ms.0))
            .arg(n)
            .arg(format!("{}:d:", self.cfg.prefix))
            .arg(DispatchState::Retrying.as_str())
            .arg(DispatchState::Delivering.as_str())
            .invoke_async(&mut *c)
            .await
            .map_err(|e| redis_err(e, "claim"))
    }

    /// The state and record of a dispatch.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<(DispatchState, Record)>> {
        let mut c = self.conn().await?;
        let (state, rec): (Option<String>, Option<String>) = redis::cmd("HMGET")
            .arg(self.key(id))
            .arg("state")
            .arg("rec")
            .query_async(&mut *c)
            .await
            .map_err(|e| redis_err(e, "read"))?;
        match (state, rec) {
            (Some(s), Some(r)) => {
                let s = parse_state(&s, id)?;
                let rec = serde_json::from_str(&r).map_err(|e| {
                    Error::backend(
                        NAME,
                        ErrorKind::Unexpected,
                        format!("outbox record {id} is corrupt: {e}"),
                    )
                })?;
                Ok(Some((s, rec)))
            }
            _ => Ok(None),
        }
    }

    /// Record the outcome of an attempt: `retry_at` re-queues, otherwise `state` is final.
    pub(crate) async fn finish(
        &self,
        id: &str,
        state: DispatchState,
        rec: &Record,
        retry_at: Option<u64>,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let mut p = redis::pipe();
        p.atomic()
            .hset_multiple(
                self.key(id),
                &[
                    ("state", state.as_str().to_string()),
                    ("rec", Self::encode(rec)?),
                ],
            )
            .zrem(self.lease(), id);
        if let Some(at) = retry_at {
            p.zadd(self.due(), id, at);
        }
        let _: () = p
            .query_async(&mut *c)
            .await
            .map_err(|e| redis_err(e, "update"))?;
        Ok(())
    }

    /// Cancel a dispatch that has not been delivered.
    pub(crate) async fn cancel(&self, id: &str) -> Result<CancelState> {
        let mut c = self.conn().await?;
        let found: Option<String> = self
            .cancel
            .key(self.key(id))
            .key(self.due())
            .arg(id)
            .arg(DispatchState::Queued.as_str())
            .arg(DispatchState::Retrying.as_str())
            .arg(DispatchState::Cancelled.as_str())
            .invoke_async(&mut *c)
            .await
            .map_err(|e| redis_err(e, "cancel"))?;
        found.map(|s| parse_state(&s, id)).transpose()
    }

    /// Ping Redis.
    pub(crate) async fn ping(&self) -> Result<()> {
        let mut c = self.conn().await?;
        let _: String = c.ping().await.map_err(|e| redis_err(e, "ping"))?;
        Ok(())
    }
}
