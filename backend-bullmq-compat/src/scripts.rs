//! The crate's own Lua scripts: reading a job in O(log N), and cancelling it atomically.
//!
//! Reading: BullMQ's own `getState` scans the `wait` and `active` lists (`LRANGE 0 -1`, or
//! `LPOS`): O(depth), and Redis serves nobody else meanwhile. Here the sorted sets are asked
//! with `ZSCORE` and an active job is recognised by its lock key, which a worker holds while
//! it runs the job; a job that exists but is in no set and holds no lock is waiting (or is an
//! active job whose worker died, which BullMQ's stalled check moves back to wait). The read
//! script writes nothing, never creates a queue's keys, and reads only the fields a status
//! shows (a job's `data` may be megabytes).
//!
//! Cancelling: reading the state and then calling BullMQ's `removeJob` leaves a window in
//! which a worker can take the job and finish it, and the removal then deletes a completed
//! job's result. The cancel script checks and removes in one atomic step, with the effects
//! of BullMQ's `removeJob` on a plain job: the job leaves its list or set, its keys and its
//! deduplication key (if it still owns it) are deleted, and a `removed` event goes to the
//! queue's event stream, which Node `QueueEvents` listeners receive. A job in a flow (with
//! a parent or children) or made by a job scheduler is left to BullMQ's own `removeJob`,
//! which knows those structures (see [`Cancel::Flow`]).
//!
//! Both run through `EVALSHA`: the script text crosses the network once per connection.

use std::collections::HashMap;
use std::sync::LazyLock;

use bullmq::JobState;

/// KEYS: job hash, completed, failed, delayed, prioritized, waiting-children, lock,
/// cancelled. ARGV: job id, then the hash fields to read. Returns `false` for a missing job,
/// `{'removed', {'finishedOn', ms}}` for one our cancel removed, else
/// `{state, {field, value, …}}` with the fields present.
static READ: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local id = ARGV[1]
if redis.call('EXISTS', KEYS[1]) == 0 then
  local at = redis.call('ZSCORE', KEYS[8], id)
  if at then return {'removed', {'finishedOn', at}} end
  return false
end
local state
if redis.call('ZSCORE', KEYS[2], id) then state = 'completed'
elseif redis.call('ZSCORE', KEYS[3], id) then state = 'failed'
elseif redis.call('ZSCORE', KEYS[4], id) then state = 'delayed'
elseif redis.call('ZSCORE', KEYS[5], id) then state = 'prioritized'
elseif redis.call('ZSCORE', KEYS[6], id) then state = 'waiting-children'
elseif redis.call('EXISTS', KEYS[7]) == 1 then state = 'active'
else state = 'waiting' end
local names = {unpack(ARGV, 2)}
local values = redis.call('HMGET', KEYS[1], unpack(names))
local fields = {}
for i, name in ipairs(names) do
  if values[i] then
    fields[#fields + 1] = name
    fields[#fields + 1] = values[i]
  end
end
return {state, fields}
",
    )
});

/// KEYS: job hash, completed, failed, delayed, prioritized, waiting-children, lock,
/// cancelled, wait, paused, meta, events. ARGV: job id, the queue's key prefix (`bull:q:`),
/// how long (ms) and how many cancels the `cancelled` set remembers.
/// Returns one word: `missing`, `cancelled` (by an earlier cancel), `completed`, `failed`,
/// `active`, `flow`, or `removed:<prev>`.
///
/// A job in no set, no list and without a lock is in `active` with an expired lock (its
/// worker died): BullMQ's stalled check owns it, so it is reported active and left alone.
static CANCEL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local job, id, prefix = KEYS[1], ARGV[1], ARGV[2]
if redis.call('EXISTS', job) == 0 then
  if redis.call('ZSCORE', KEYS[8], id) then return 'cancelled' end
  return 'missing'
end
if redis.call('ZSCORE', KEYS[2], id) then return 'completed' end
if redis.call('ZSCORE', KEYS[3], id) then return 'failed' end
if redis.call('EXISTS', KEYS[7]) == 1 then return 'active' end
if redis.call('HEXISTS', job, 'parentKey') == 1 or redis.call('HEXISTS', job, 'rjk') == 1
  or redis.call('EXISTS', job .. ':dependencies', job .. ':processed', job .. ':failed',
                job .. ':unsuccessful') > 0 then
  return 'flow'
end
local prev
if redis.call('ZREM', KEYS[4], id) == 1 then prev = 'delayed'
elseif redis.call('ZREM', KEYS[5], id) == 1 then prev = 'prioritized'
elseif redis.call('ZREM', KEYS[6], id) == 1 then prev = 'waiting-children'
elseif redis.call('LREM', KEYS[9], 1, id) == 1 then prev = 'wait'
elseif redis.call('LREM', KEYS[10], 1, id) == 1 then prev = 'paused'
else return 'active' end
local dedup = redis.call('HGET', job, 'deid')
if dedup and redis.call('GET', prefix .. 'de:' .. dedup) == id then
  redis.call('DEL', prefix .. 'de:' .. dedup, prefix .. 'dn:' .. dedup)
end
redis.call('DEL', job, job .. ':logs')
local max_events = tonumber(redis.call('HGET', KEYS[11], 'opts.maxLenEvents')) or 10000
redis.call('XADD', KEYS[12], 'MAXLEN', '~', max_events, '*', 'event', 'removed',
  'jobId', id, 'prev', prev)
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[8], now, id)
redis.call('ZREMRANGEBYSCORE', KEYS[8], '-inf', now - tonumber(ARGV[3]))
redis.call('ZREMRANGEBYRANK', KEYS[8], 0, -tonumber(ARGV[4]) - 1)
redis.call('PEXPIRE', KEYS[8], ARGV[3])
return 'removed:' .. prev
",
    )
});

/// KEYS: one of a queue's lists or sorted sets. ARGV: how to read it (`list`: LRANGE;
/// `zasc`/`zrev`: ZRANGE/ZREVRANGE; `gone`: ZREVRANGE WITHSCORES of our cancelled set, whose
/// jobs have no hash), the offset, how many to return at most, how many entries to examine
/// at most, the window on `timestamp` (`since`, `until`; -1 for open), the job key base
/// (`bull:q:`), the tracking id prefix, then the hash fields to read (`timestamp` first).
/// Returns `{examined, fetched, {{id, index, {field, value, …}}, …}}`: `index` is the
/// entry's 1-based place among those fetched. Reads only: O(log N + examined) on sorted
/// sets, O(offset + examined) on lists.
static LIST: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(
        r"
local kind, offset = ARGV[1], tonumber(ARGV[2])
local want, budget = tonumber(ARGV[3]), tonumber(ARGV[4])
local since, untl, base, track = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local names = {unpack(ARGV, 9)}
local stop = offset + budget - 1
local raw
if kind == 'list' then raw = redis.call('LRANGE', KEYS[1], offset, stop)
elseif kind == 'zasc' then raw = redis.call('ZRANGE', KEYS[1], offset, stop)
elseif kind == 'zrev' then raw = redis.call('ZREVRANGE', KEYS[1], offset, stop)
else raw = redis.call('ZREVRANGE', KEYS[1], offset, stop, 'WITHSCORES') end
local fetched = #raw
if kind == 'gone' then fetched = #raw / 2 end
local out, examined = {}, 0
for i = 1, fetched do
  examined = i
  local id, score
  if kind == 'gone' then id, score = raw[2 * i - 1], raw[2 * i] else id = raw[i] end
  if string.sub(id, 1, #track) ~= track then
    if kind == 'gone' then
      if since < 0 and untl < 0 then out[#out + 1] = {id, i, {'finishedOn', score}} end
    else
      local values = redis.call('HMGET', base .. id, unpack(names))
      local ts = tonumber(values[1])
      if ts and (since < 0 or ts >= since) and (untl < 0 or ts < untl) then
        local fields = {}
        for j, name in ipairs(names) do
          if values[j] then
            fields[#fields + 1] = name
            fields[#fields + 1] = values[j]
          end
        end
        out[#out + 1] = {id, i, fields}
      end
    end
    if #out >= want then break end
  end
end
return {examined, fetched, out}
",
    )
});

/// The job hash fields a status reads (BullMQ's names: `atm` is attempts made).
/// `timestamp` first: the list script filters on it.
const STATUS_FIELDS: &[&str] = &[
    "timestamp",
    "atm",
    "processedOn",
    "finishedOn",
    "returnvalue",
    "failedReason",
    "progress",
];

/// The keys both scripts start with, in their order.
fn job_keys(inv: &mut redis::ScriptInvocation<'_>, base: &str, job_id: &str) {
    inv.key(format!("{base}:{job_id}"))
        .key(format!("{base}:completed"))
        .key(format!("{base}:failed"))
        .key(format!("{base}:delayed"))
        .key(format!("{base}:prioritized"))
        .key(format!("{base}:waiting-children"))
        .key(format!("{base}:{job_id}:lock"))
        .key(format!("{base}:{CANCELLED_KEY}"));
}

/// The sorted set (per queue) of the job ids our cancels removed, scored by the time of the
/// cancel: a status read of such a job says `CANCELLED` rather than `NotFound`. Its name is
/// refused as a job id ([`crate::spec::KEY_NAMES`]).
pub(crate) const CANCELLED_KEY: &str = "orchestrator-cancelled";

/// How long a cancel is remembered (24 hours); later, the job's status is `NotFound`.
pub const CANCEL_MEMORY: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// How many cancels a queue remembers at most (the oldest are forgotten first).
pub const CANCEL_MEMORY_MAX: u64 = 100_000;

/// The invocation reading job `job_id` of `queue` under `prefix`.
pub(crate) fn read(prefix: &str, queue: &str, job_id: &str) -> redis::ScriptInvocation<'static> {
    let base = format!("{prefix}:{queue}");
    let mut inv = READ.prepare_invoke();
    job_keys(&mut inv, &base, job_id);
    inv.arg(job_id).arg(STATUS_FIELDS);
    inv
}

/// The invocation cancelling job `job_id` of `queue` under `prefix`.
pub(crate) fn cancel(prefix: &str, queue: &str, job_id: &str) -> redis::ScriptInvocation<'static> {
    let base = format!("{prefix}:{queue}");
    let mut inv = CANCEL.prepare_invoke();
    job_keys(&mut inv, &base, job_id);
    inv.key(format!("{base}:wait"))
        .key(format!("{base}:paused"))
        .key(format!("{base}:meta"))
        .key(format!("{base}:events"))
        .arg(job_id)
        .arg(format!("{base}:"))
        .arg(u64::try_from(CANCEL_MEMORY.as_millis()).unwrap_or(u64::MAX))
        .arg(CANCEL_MEMORY_MAX);
    inv
}

/// The invocation reading entries of `set` (a key of a queue whose keys start with
/// `base`, `bull:q`): see the script's docs.
#[allow(clippy::too_many_arguments)]
pub(crate) fn list(
    base: &str,
    set: &str,
    how: &str,
    offset: u64,
    want: usize,
    budget: usize,
    window: (Option<u64>, Option<u64>),
) -> redis::ScriptInvocation<'static> {
    let bound = |t: Option<u64>| t.map_or(-1, |t| i64::try_from(t).unwrap_or(i64::MAX));
    let mut inv = LIST.prepare_invoke();
    inv.key(format!("{base}:{set}"))
        .arg(how)
        .arg(offset)
        .arg(want)
        .arg(budget)
        .arg(bound(window.0))
        .arg(bound(window.1))
        .arg(format!("{base}:"))
        .arg(orchestrator_core::raw::TRACKING_ID_PREFIX)
        .arg(STATUS_FIELDS);
    inv
}

/// One entry the list script returned: job id, 1-based place among those fetched, fields.
pub(crate) type ListedJob = (String, u64, HashMap<String, String>);

/// The list script's answer: entries examined, entries fetched, the jobs that passed.
pub(crate) type ListAnswer = (u64, u64, Vec<ListedJob>);

/// The read script's answer: `None` for a missing job, else its state and hash.
pub(crate) type Answer = Option<(String, HashMap<String, String>)>;

/// What the cancel script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancel {
    /// Removed; it will not run.
    Removed,
    /// No such job.
    Missing,
    /// An earlier cancel removed it.
    AlreadyCancelled,
    /// Already completed or failed: left as it is, result kept.
    Finished,
    /// A worker holds it (or held it and died: BullMQ's stalled check owns it).
    Active,
    /// Part of a flow or made by a job scheduler: BullMQ's `removeJob` must do it.
    Flow,
}

/// The cancel script's word, as a [`Cancel`].
pub(crate) fn cancel_outcome(word: &str) -> Cancel {
    match word {
        "missing" => Cancel::Missing,
        "cancelled" => Cancel::AlreadyCancelled,
        "completed" | "failed" => Cancel::Finished,
        "flow" => Cancel::Flow,
        w if w.starts_with("removed:") => Cancel::Removed,
        _ => Cancel::Active,
    }
}

/// The BullMQ state named by the read script.
pub(crate) fn job_state(s: &str) -> JobState {
    match s {
        "completed" => JobState::Completed,
        "failed" => JobState::Failed,
        "delayed" => JobState::Delayed,
        "prioritized" => JobState::Prioritized,
        "waiting-children" => JobState::WaitingChildren,
        "active" => JobState::Active,
        "waiting" => JobState::Waiting,
        _ => JobState::Unknown,
    }
}
