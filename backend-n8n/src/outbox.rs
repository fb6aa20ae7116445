//! The durable outbox: dispatch records in Redis (through a bb8 pool), claimed by
//! dispatchers under a lease so a crashed dispatcher's work is taken over.
//!
//! Keys, under `prefix` (default `orchestrator:n8n`):
//! * `<prefix>:d:<dispatch id>`: hash with `state` (queued, retrying, delivering, delivered,
//!   failed, cancelled) and `rec` (the JSON [`Record`]);
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

const CLAIM: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], ARGV[1], id)
  redis.call('HSET', ARGV[4] .. id, 'state', 'retrying')
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], ARGV[2], id)
  redis.call('HSET', ARGV[4] .. id, 'state', 'delivering')
end
return ids
";

const CANCEL: &str = r"
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return 'missing' end
if st == 'queued' or st == 'retrying' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', 'cancelled')
  return 'cancelled'
end
return st
";

/// What a cancel found.
pub(crate) enum CancelState {
    Cancelled,
    Missing,
    Other(String),
}

pub(crate) struct Outbox {
    pub(crate) cfg: OutboxConfig,
    pool: bb8::Pool<RedisConnectionManager>,
    claim: redis::Script,
    cancel: redis::Script,
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
        let manager = RedisConnectionManager::new(cfg.redis_url.as_str()).map_err(|e| {
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
                &[("state", "queued".to_string()), ("rec", Self::encode(rec)?)],
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
            .arg(now + self.cfg.lease_ms)
            .arg(n)
            .arg(format!("{}:d:", self.cfg.prefix))
            .invoke_async(&mut *c)
            .await
            .map_err(|e| redis_err(e, "claim"))
    }

    /// The state and record of a dispatch.
    pub(crate) async fn get(&self, id: &str) -> Result<Option<(String, Record)>> {
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
        state: &str,
        rec: &Record,
        retry_at: Option<u64>,
    ) -> Result<()> {
        let mut c = self.conn().await?;
        let mut p = redis::pipe();
        p.atomic()
            .hset_multiple(
                self.key(id),
                &[("state", state.to_string()), ("rec", Self::encode(rec)?)],
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
        let r: String = self
            .cancel
            .key(self.key(id))
            .key(self.due())
            .arg(id)
            .invoke_async(&mut *c)
            .await
            .map_err(|e| redis_err(e, "cancel"))?;
        Ok(match r.as_str() {
            "cancelled" => CancelState::Cancelled,
            "missing" => CancelState::Missing,
            _ => CancelState::Other(r),
        })
    }

    /// Ping Redis.
    pub(crate) async fn ping(&self) -> Result<()> {
        let mut c = self.conn().await?;
        let _: String = c.ping().await.map_err(|e| redis_err(e, "ping"))?;
        Ok(())
    }
}
