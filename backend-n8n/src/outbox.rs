//! The durable outbox: dispatch records in Redis (through a bb8 pool), claimed by
//! dispatchers under a lease so a crashed dispatcher's work is taken over.
//!
//! Keys, under `prefix` (default `orchestrator:n8n`):
//! * `<prefix>:d:<dispatch id>`: hash with `state` (a [`DispatchState`]) and `rec` (the
//!   JSON [`Record`]);
//! * `<prefix>:due`: zset of dispatch ids waiting for delivery, scored by due time (ms);
//! * `<prefix>:lease`: zset of ids being delivered, scored by lease expiry (ms);
//! * `<prefix>:idx`: zset of every dispatch, scored by its `created_at` (ms): what `list`
//!   and `counts` read;
//! * `<prefix>:gone`: zset of finished dispatches, scored by when their record expires:
//!   every write trims both indexes of what has expired (at most 100 at a time).
//!
//! Besides `state` and `rec`, a record's hash holds `sum`, the [`Summary`] `list` reads
//! (the record without its body, headers and n8n's answer).
//!
//! Times are Redis server time (`TIME` in the scripts), so dispatchers' clocks do not
//! matter. Each claim writes a lease token into the record; recording an attempt's outcome
//! checks that token atomically, so a dispatcher whose lease expired (another took the
//! dispatch over, or it was cancelled meanwhile) writes nothing: a cancelled dispatch is
//! never revived. The lease outlives one delivery attempt (`lease_ms` ≥ 2 ×
//! `request_timeout_ms`, checked at configuration). Finished records (delivered, failed,
//! cancelled) expire after `finished_ttl_ms`.
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

/// What `list` and `counts` read of a record: small, whatever the payload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) task_name: String,
    pub(crate) attempts_made: u32,
    pub(crate) created_at: u64,
    pub(crate) finished_at: Option<u64>,
    pub(crate) execution_id: Option<String>,
    pub(crate) error: Option<String>,
}

impl Summary {
    pub(crate) fn of(rec: &Record) -> Self {
        Self {
            task_name: rec.task_name.clone(),
            attempts_made: rec.attempts_made,
            created_at: rec.created_at,
            finished_at: rec.finished_at,
            execution_id: rec.execution_id.clone(),
            error: rec.error.clone(),
        }
    }
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

/// Redis server time in ms, for the scripts.
const NOW: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
";

/// Trims the indexes (`idx`, `gone` as the last two keys), for the writing scripts.
const TRIM_INDEXES: &str = r"
local nk = #KEYS
local expired = redis.call('ZRANGEBYSCORE', KEYS[nk], '-inf', now, 'LIMIT', 0, 100)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[nk - 1], id)
  redis.call('ZREM', KEYS[nk], id)
end
";

// KEYS: due, lease. ARGV: lease ms, max ids, record key prefix, `retrying`, `delivering`,
// this claim's token. Expired leases go back to due (their token cleared); due ids are
// claimed with the token.
const CLAIM: &str = r"
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now)
for _, id in ipairs(expired) do
  redis.call('ZREM', KEYS[2], id)
  redis.call('ZADD', KEYS[1], now, id)
  redis.call('HSET', ARGV[3] .. id, 'state', ARGV[4])
  redis.call('HDEL', ARGV[3] .. id, 'lease')
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), id)
  redis.call('HSET', ARGV[3] .. id, 'state', ARGV[5], 'lease', ARGV[6])
end
return ids
";

// KEYS: record, due, idx, gone. ARGV: id, record JSON, `queued`, summary JSON, created
// ms. Due now (server time).
const ENQUEUE: &str = r"
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'rec', ARGV[2], 'sum', ARGV[4])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZADD', KEYS[3], tonumber(ARGV[5]), ARGV[1])
return 1
";

// KEYS: record, lease, due, idx, gone. ARGV: id, token, state, record JSON, retry wait
// ms or '', `delivering`, finished TTL ms or '', summary JSON. Writes only while this
// token holds the lease.
const FINISH: &str = r"
if redis.call('HGET', KEYS[1], 'lease') ~= ARGV[2]
  or redis.call('HGET', KEYS[1], 'state') ~= ARGV[6] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[3], 'rec', ARGV[4], 'sum', ARGV[8])
redis.call('HDEL', KEYS[1], 'lease')
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[5] ~= '' then redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[1]) end
if ARGV[7] ~= '' then
  redis.call('PEXPIRE', KEYS[1], ARGV[7])
  redis.call('ZADD', KEYS[5], now + tonumber(ARGV[7]), ARGV[1])
end
return 1
";

// KEYS: record, due, idx, gone. ARGV: dispatch id, `queued`, `retrying`, `cancelled`,
// finished TTL ms. Returns the state found (false when the record is missing); a queued or
// retrying dispatch becomes cancelled.
const CANCEL: &str = r"
local st = redis.call('HGET', KEYS[1], 'state')
if not st then return false end
if st == ARGV[2] or st == ARGV[3] then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('HSET', KEYS[1], 'state', ARGV[4])
  redis.call('HDEL', KEYS[1], 'lease')
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  redis.call('ZADD', KEYS[4], now + tonumber(ARGV[5]), ARGV[1])
end
return st
";

/// Whether an attempt's outcome was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finished {
    /// Written.
    Recorded,
    /// This dispatcher's lease was gone (expired and taken over, or cancelled): nothing
    /// written.
    LeaseLost,
}

/// What a cancel found: `None` when the dispatch does not exist, otherwise the state it was
/// in (`Queued` or `Retrying` means it is now cancelled).
pub(crate) type CancelState = Option<DispatchState>;

pub(crate) struct Outbox {
    pub(crate) cfg: OutboxConfig,
    pool: bb8::Pool<RedisConnectionManager>,
    /// Set once a plain connection succeeded (see [`Outbox::conn`]).
    probed: orchestrator_core::raw::InitOnce<()>,
    /// The connection timeout.
    timeout: std::time::Duration,
    claim: redis::Script,
    enqueue: redis::Script,
    finish: redis::Script,
    cancel: redis::Script,
}

/// The most dispatches of one millisecond a listing resumes within (more are skipped).
const MAX_TIES: usize = 10_000;

/// Connections in the outbox's pool.
const POOL_SIZE: u32 = 8;

fn parse_state(s: &str, id: &str) -> Result<DispatchState> {
    DispatchState::parse(s).ok_or_else(|| {
        Error::engine(
            NAME,
            ErrorKind::Unexpected,
            format!("outbox record {id} has an unknown state `{s}`"),
        )
    })
}

fn redis_err(e: impl std::error::Error + Send + Sync + 'static, what: &str) -> Error {
    Error::engine(
        NAME,
        ErrorKind::Unavailable,
        format!("outbox {what}: {e}; is Redis reachable at this backend's `outbox.redis_url`?"),
    )
    .with_source(e)
}

/// A Redis answer refusing our credentials (`NOAUTH`, `WRONGPASS`, `NOPERM`) as
/// `Unauthorized`, anything else as [`redis_err`].
fn refused_or_unavailable(e: redis::RedisError, what: &str) -> Error {
    let code = e.code().unwrap_or_default().to_string();
    if e.kind() == redis::ErrorKind::AuthenticationFailed
        || matches!(code.as_str(), "NOAUTH" | "WRONGPASS" | "NOPERM")
    {
        return Error::engine(
            NAME,
            ErrorKind::Unauthorized,
            format!(
                "the outbox Redis refused our credentials ({code}); check the user and password in this backend's `outbox.redis_url`"
            ),
        );
    }
    redis_err(e, what)
}

impl Outbox {
    pub(crate) fn new(cfg: OutboxConfig, timeout: std::time::Duration) -> Result<Self> {
        let manager = RedisConnectionManager::new(cfg.redis_url.expose()).map_err(|e| {
            Error::engine(
                NAME,
                ErrorKind::InvalidConfig,
                format!("this backend's `outbox.redis_url`: {e}"),
            )
            .with_source(e)
        })?;
        // No connection until first use, so a Redis that is down does not stop start-up.
        let pool = bb8::Pool::builder()
            .max_size(POOL_SIZE)
            .connection_timeout(timeout)
            .build_unchecked(manager);
        Ok(Self {
            cfg,
            pool,
            probed: orchestrator_core::raw::InitOnce::default(),
            timeout,
            claim: redis::Script::new(&format!("{NOW}{CLAIM}")),
            enqueue: redis::Script::new(&format!("{NOW}{TRIM_INDEXES}{ENQUEUE}")),
            finish: redis::Script::new(&format!("{NOW}{TRIM_INDEXES}{FINISH}")),
            cancel: redis::Script::new(&format!("{NOW}{TRIM_INDEXES}{CANCEL}")),
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

    fn idx(&self) -> String {
        format!("{}:idx", self.cfg.prefix)
    }

    fn gone(&self) -> String {
        format!("{}:gone", self.cfg.prefix)
    }

    async fn conn(&self) -> Result<bb8::PooledConnection<'_, RedisConnectionManager>> {
        // The pool retries a refused connection until its timeout and then reports only
        // that it timed out; one plain connection first (and again after a failure) tells
        // refused credentials (`Unauthorized`, at once) from an unreachable server.
        self.probed.get_or_try_init(|| self.probe()).await?;
        match self.pool.get().await {
            Ok(c) => Ok(c),
            Err(e) => {
                // A full pool timed out waiting for a free connection: Redis answered.
                if self.pool.state().connections < POOL_SIZE {
                    self.probe().await?;
                }
                Err(redis_err(e, "connection"))
            }
        }
    }

    /// Open (and drop) one plain connection, with the pool's timeout.
    async fn probe(&self) -> Result<()> {
        let client = redis::Client::open(self.cfg.redis_url.expose())
            .map_err(|e| redis_err(e, "connection"))?;
        // A PING too: without a password in the URL the connection opens and the first
        // command is refused (NOAUTH), as is every command of an ACL user without rights.
        let check = async {
            let mut c = client.get_multiplexed_async_connection().await?;
            redis::cmd("PING").query_async::<String>(&mut c).await
        };
        match tokio::time::timeout(self.timeout, check).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(refused_or_unavailable(e, "connection")),
            Err(_) => Err(Error::engine(
                NAME,
                ErrorKind::Timeout,
                format!(
                    "outbox connection: Redis did not answer within {} ms; is it reachable at this backend's `outbox.redis_url`?",
                    self.timeout.as_millis()
                ),
            )),
        }
    }

    fn summary(rec: &Record) -> Result<String> {
        serde_json::to_string(&Summary::of(rec))
            .map_err(|e| Error::engine(NAME, ErrorKind::Unexpected, format!("outbox record: {e}")))
    }

    fn encode(rec: &Record) -> Result<String> {
        serde_json::to_string(rec)
            .map_err(|e| Error::engine(NAME, ErrorKind::Unexpected, format!("outbox record: {e}")))
    }

    /// Store a new dispatch, due now.
    pub(crate) async fn enqueue(&self, id: &str, rec: &Record) -> Result<()> {
        let mut c = self.conn().await?;
        let _: i64 = self
            .enqueue
            .key(self.key(id))
            .key(self.due())
            .key(self.idx())
            .key(self.gone())
            .arg(id)
            .arg(Self::encode(rec)?)
            .arg(DispatchState::Queued.as_str())
            .arg(Self::summary(rec)?)
            .arg(rec.created_at)
            .invoke_async(&mut *c)
            .await
            .map_err(|e| refused_or_unavailable(e, "enqueue"))?;
        Ok(())
    }

    /// Take up to `n` due dispatches (and re-queue those whose lease expired); returns the
    /// claim's lease token and the ids.
    pub(crate) async fn claim(&self, n: usize) -> Result<(String, Vec<String>)> {
        let token = uuid::Uuid::new_v4().to_string();
        let mut c = self.conn().await?;
        let ids = self
            .claim
            .key(self.due())
            .key(self.lease())
            .arg(self.cfg.lease_ms.0)
            .arg(n)
            .arg(format!("{}:d:", self.cfg.prefix))
            .arg(DispatchState::Retrying.as_str())
            .arg(DispatchState::Delivering.as_str())
            .arg(&token)
            .invoke_async(&mut *c)
            .await
            .map_err(|e| refused_or_unavailable(e, "claim"))?;
        Ok((token, ids))
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
            .map_err(|e| refused_or_unavailable(e, "read"))?;
        match (state, rec) {
            (Some(s), Some(r)) => {
                let s = parse_state(&s, id)?;
                let rec = serde_json::from_str(&r).map_err(|e| {
                    Error::engine(
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

    /// Up to `n` dispatches, newest first, after `(created, id)` (`None`: from the newest):
    /// `(id, created)` from the index.
    pub(crate) async fn newest(
        &self,
        after: Option<(u64, &str)>,
        n: usize,
    ) -> Result<Vec<(String, u64)>> {
        let mut c = self.conn().await?;
        let read = |e| refused_or_unavailable(e, "index read");
        let mut out: Vec<(String, u64)> = Vec::new();
        let below = match after {
            None => "+inf".to_string(),
            Some((created, id)) => {
                // The rest of its own millisecond first (newest first is descending id
                // among equal times), at most `n` of them.
                let ties: Vec<(String, u64)> = redis::cmd("ZREVRANGEBYSCORE")
                    .arg(self.idx())
                    .arg(created)
                    .arg(created)
                    .arg("WITHSCORES")
                    .arg("LIMIT")
                    .arg(0)
                    .arg(MAX_TIES)
                    .query_async(&mut *c)
                    .await
                    .map_err(read)?;
                out.extend(ties.into_iter().filter(|(m, _)| m.as_str() < id).take(n));
                format!("({created}")
            }
        };
        if out.len() < n {
            let more: Vec<(String, u64)> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(self.idx())
                .arg(below)
                .arg("-inf")
                .arg("WITHSCORES")
                .arg("LIMIT")
                .arg(0)
                .arg(n - out.len())
                .query_async(&mut *c)
                .await
                .map_err(read)?;
            out.extend(more);
        }
        Ok(out)
    }

    /// The state and summary of each of `ids` (`None`: its record expired).
    pub(crate) async fn summaries(
        &self,
        ids: &[String],
    ) -> Result<Vec<Option<(DispatchState, Summary)>>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut c = self.conn().await?;
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("HMGET").arg(self.key(id)).arg("state").arg("sum");
        }
        let rows: Vec<(Option<String>, Option<String>)> = pipe
            .query_async(&mut *c)
            .await
            .map_err(|e| refused_or_unavailable(e, "read"))?;
        let mut out = Vec::with_capacity(ids.len());
        for (id, (state, sum)) in ids.iter().zip(rows) {
            out.push(match (state, sum) {
                (Some(s), Some(sum)) => Some((
                    parse_state(&s, id)?,
                    serde_json::from_str(&sum).map_err(|e| {
                        Error::engine(
                            NAME,
                            ErrorKind::Unexpected,
                            format!("outbox record {id} is corrupt: {e}"),
                        )
                    })?,
                )),
                _ => None,
            });
        }
        Ok(out)
    }

    /// Record the outcome of an attempt made under lease `token`: `retry_in` re-queues
    /// after that long (server time), otherwise `state` is final and the record expires
    /// after `finished_ttl_ms`. Nothing is written once the lease is gone.
    pub(crate) async fn finish(
        &self,
        id: &str,
        token: &str,
        state: DispatchState,
        rec: &Record,
        retry_in: Option<std::time::Duration>,
    ) -> Result<Finished> {
        let mut c = self.conn().await?;
        let retry = retry_in.map_or(String::new(), |d| d.as_millis().to_string());
        let ttl = if retry_in.is_none() {
            self.cfg.finished_ttl_ms.0.to_string()
        } else {
            String::new()
        };
        let written: i64 = self
            .finish
            .key(self.key(id))
            .key(self.lease())
            .key(self.due())
            .key(self.idx())
            .key(self.gone())
            .arg(id)
            .arg(token)
            .arg(state.as_str())
            .arg(Self::encode(rec)?)
            .arg(retry)
            .arg(DispatchState::Delivering.as_str())
            .arg(ttl)
            .arg(Self::summary(rec)?)
            .invoke_async(&mut *c)
            .await
            .map_err(|e| refused_or_unavailable(e, "update"))?;
        Ok(if written == 1 {
            Finished::Recorded
        } else {
            Finished::LeaseLost
        })
    }

    /// Cancel a dispatch that has not been delivered.
    pub(crate) async fn cancel(&self, id: &str) -> Result<CancelState> {
        let mut c = self.conn().await?;
        let found: Option<String> = self
            .cancel
            .key(self.key(id))
            .key(self.due())
            .key(self.idx())
            .key(self.gone())
            .arg(id)
            .arg(DispatchState::Queued.as_str())
            .arg(DispatchState::Retrying.as_str())
            .arg(DispatchState::Cancelled.as_str())
            .arg(self.cfg.finished_ttl_ms.0)
            .invoke_async(&mut *c)
            .await
            .map_err(|e| refused_or_unavailable(e, "cancel"))?;
        found.map(|s| parse_state(&s, id)).transpose()
    }

    /// What makes the outbox Redis lose acknowledged dispatches: no AOF, or an evicting
    /// `maxmemory-policy`. A server that refuses `CONFIG GET` (managed Redis) is not
    /// second-guessed.
    pub(crate) async fn durability_warnings(&self) -> Result<Vec<String>> {
        let mut c = self.conn().await?;
        let mut warnings = Vec::new();
        let info: String = redis::cmd("INFO")
            .arg("persistence")
            .query_async(&mut *c)
            .await
            .map_err(|e| refused_or_unavailable(e, "INFO"))?;
        if info.lines().any(|l| l.trim() == "aof_enabled:0") {
            warnings.push(
                "the outbox Redis runs without AOF (appendonly no): dispatches accepted since its last snapshot are lost if it restarts; set appendonly yes".to_string(),
            );
        }
        let policy: redis::RedisResult<Vec<String>> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory-policy")
            .query_async(&mut *c)
            .await;
        if let Ok(kv) = policy {
            if let Some(p) = kv.get(1).filter(|p| p.as_str() != "noeviction") {
                warnings.push(format!(
                    "the outbox Redis may evict keys (maxmemory-policy {p}): pending dispatches can vanish under memory pressure; set maxmemory-policy noeviction"
                ));
            }
        }
        Ok(warnings)
    }

    /// Ping Redis.
    pub(crate) async fn ping(&self) -> Result<()> {
        let mut c = self.conn().await?;
        let _: String = c
            .ping()
            .await
            .map_err(|e| refused_or_unavailable(e, "ping"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use orchestrator_testkit::engines::{RedisServer, unique};

    use super::*;

    fn record() -> Record {
        Record {
            task_name: "t".into(),
            url: Some("http://127.0.0.1:1/webhook/x".into()),
            workflow_id: None,
            body: "{}".into(),
            headers: Vec::new(),
            attempts_made: 0,
            created_at: 0,
            finished_at: None,
            execution_id: None,
            response: None,
            error: None,
        }
    }

    fn outbox(redis: &RedisServer, lease: Duration, ttl: Duration) -> Outbox {
        let cfg = OutboxConfig::new(redis.url())
            .prefix(unique("ob"))
            .retries(3, Duration::from_millis(100), lease)
            .finished_ttl(ttl);
        Outbox::new(cfg, Duration::from_secs(2)).expect("outbox")
    }

    /// A dispatcher whose lease expired writes nothing: not over the dispatcher that took
    /// the dispatch over, and never over a cancel (a cancelled dispatch is not revived).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: scripts/test.sh runs the ignored unit tests (cargo test --lib -- --ignored)"]
    async fn a_lost_lease_writes_nothing_and_a_cancel_is_never_revived() {
        let redis = RedisServer::start();
        let ob = outbox(&redis, Duration::from_millis(200), Duration::from_secs(60));
        ob.enqueue("a", &record()).await.expect("enqueue");
        let (first, ids) = ob.claim(10).await.expect("claim");
        assert_eq!(ids, vec!["a".to_string()]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The lease expired: the next claim takes it over with another token.
        let (second, ids) = ob.claim(10).await.expect("claim");
        assert_eq!(ids, vec!["a".to_string()]);
        let late = ob
            .finish("a", &first, DispatchState::Failed, &record(), None)
            .await
            .expect("finish");
        assert_eq!(late, Finished::LeaseLost);
        let (state, _) = ob.get("a").await.expect("get").expect("record");
        assert_eq!(
            state,
            DispatchState::Delivering,
            "the late writer changed the record"
        );
        let now = ob
            .finish("a", &second, DispatchState::Delivered, &record(), None)
            .await
            .expect("finish");
        assert_eq!(now, Finished::Recorded);

        // Lease expires, the dispatch goes back to due and is cancelled; the dispatcher
        // that held the lease finishes late: still cancelled.
        ob.enqueue("b", &record()).await.expect("enqueue");
        let (token, _) = ob.claim(10).await.expect("claim");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let (_, none) = ob.claim(0).await.expect("requeue expired");
        assert!(none.is_empty());
        assert_eq!(
            ob.cancel("b").await.expect("cancel"),
            Some(DispatchState::Retrying)
        );
        for state in [DispatchState::Delivered, DispatchState::Retrying] {
            let retry = (state == DispatchState::Retrying).then_some(Duration::ZERO);
            let w = ob
                .finish("b", &token, state, &record(), retry)
                .await
                .expect("finish");
            assert_eq!(w, Finished::LeaseLost);
        }
        let (state, _) = ob.get("b").await.expect("get").expect("record");
        assert_eq!(state, DispatchState::Cancelled);
        let (_, ids) = ob.claim(10).await.expect("claim");
        assert!(
            ids.is_empty(),
            "a cancelled dispatch was claimed again: {ids:?}"
        );
    }

    /// Finished records (delivered, failed, cancelled) expire after `finished_ttl_ms`;
    /// pending ones do not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: scripts/test.sh runs the ignored unit tests (cargo test --lib -- --ignored)"]
    async fn finished_records_expire() {
        let redis = RedisServer::start();
        let ob = outbox(&redis, Duration::from_secs(10), Duration::from_millis(300));
        for id in ["done", "failed", "cancelled", "pending"] {
            ob.enqueue(id, &record()).await.expect("enqueue");
        }
        assert!(ob.cancel("cancelled").await.expect("cancel").is_some());
        let (token, ids) = ob.claim(2).await.expect("claim");
        assert_eq!(ids.len(), 2);
        let states = [DispatchState::Delivered, DispatchState::Failed];
        for (id, state) in ids.iter().zip(states) {
            ob.finish(id, &token, state, &record(), None)
                .await
                .expect("finish");
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
        for id in ids.iter().map(String::as_str).chain(["cancelled"]) {
            assert!(
                ob.get(id).await.expect("get").is_none(),
                "{id} did not expire"
            );
        }
        let left: Vec<String> = ["done", "failed", "pending"]
            .into_iter()
            .filter(|id| !ids.iter().any(|c| c == id))
            .map(str::to_string)
            .collect();
        for id in left.iter() {
            assert!(
                ob.get(id).await.expect("get").is_some(),
                "{id} expired while pending"
            );
        }
        // The next write trims the expired ones from the index `list` reads.
        ob.enqueue("later", &record()).await.expect("enqueue");
        let mut indexed: Vec<String> = ob
            .newest(None, 10)
            .await
            .expect("index")
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        indexed.sort();
        let mut expected = left;
        expected.push("later".into());
        expected.sort();
        assert_eq!(indexed, expected);
    }

    /// The index pages newest first, ties by descending id, resuming exactly after an entry.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs redis-server: scripts/test.sh runs the ignored unit tests (cargo test --lib -- --ignored)"]
    async fn the_index_pages_newest_first_and_resumes_after_an_entry() {
        let redis = RedisServer::start();
        let ob = outbox(&redis, Duration::from_secs(10), Duration::from_secs(60));
        for (id, at) in [("a", 10), ("b", 20), ("c", 20), ("d", 20), ("e", 30)] {
            let mut rec = record();
            rec.created_at = at;
            ob.enqueue(id, &rec).await.expect("enqueue");
        }
        let mut seen = Vec::new();
        let mut after: Option<(u64, String)> = None;
        loop {
            let page = ob
                .newest(after.as_ref().map(|(c, d)| (*c, d.as_str())), 2)
                .await
                .expect("page");
            let Some((last, at)) = page.last().cloned() else {
                break;
            };
            seen.extend(page.into_iter().map(|(id, at)| format!("{id}{at}")));
            after = Some((at, last));
        }
        assert_eq!(seen, ["e30", "d20", "c20", "b20", "a10"]);
        let sums = ob
            .summaries(&["c".into(), "zz".into()])
            .await
            .expect("summaries");
        assert!(matches!(&sums[0], Some((DispatchState::Queued, s)) if s.created_at == 20));
        assert!(sums[1].is_none());
    }
}
