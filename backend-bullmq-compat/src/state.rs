//! A job's state and fields in one read-only script, O(log N) at any queue depth.
//!
//! BullMQ's own `getState` scans the `wait` and `active` lists (`LRANGE 0 -1`, or `LPOS`):
//! O(depth), and Redis serves nobody else meanwhile. Here the sorted sets are asked with
//! `ZSCORE` and an active job is recognised by its lock key, which a worker holds while it
//! runs the job; a job that exists but is in no set and holds no lock is waiting (or is an
//! active job whose worker died, which BullMQ's stalled check moves back to wait). The
//! script writes nothing, never creates a queue's keys for a status read, and reads only
//! the fields a status shows (a job's `data` may be megabytes).

use std::collections::HashMap;

use bullmq::JobState;

/// KEYS: job hash, completed, failed, delayed, prioritized, waiting-children, lock.
/// ARGV: job id, then the hash fields to read. Returns `false` for a missing job, else
/// `{state, {field, value, …}}` with the fields present. Only the fields a status shows are
/// read: never `data`, which can be megabytes.
const SCRIPT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return false end
local id = ARGV[1]
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
";

/// The job hash fields a status reads (BullMQ's names: `atm` is attempts made).
const STATUS_FIELDS: &[&str] = &[
    "atm",
    "timestamp",
    "processedOn",
    "finishedOn",
    "returnvalue",
    "failedReason",
    "progress",
];

/// The `EVAL` command reading job `job_id` of `queue` under `prefix`.
pub(crate) fn command(prefix: &str, queue: &str, job_id: &str) -> redis::Cmd {
    let base = format!("{prefix}:{queue}");
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(SCRIPT)
        .arg(7)
        .arg(format!("{base}:{job_id}"))
        .arg(format!("{base}:completed"))
        .arg(format!("{base}:failed"))
        .arg(format!("{base}:delayed"))
        .arg(format!("{base}:prioritized"))
        .arg(format!("{base}:waiting-children"))
        .arg(format!("{base}:{job_id}:lock"))
        .arg(job_id)
        .arg(STATUS_FIELDS);
    cmd
}

/// The script's answer: `None` for a missing job, else its state and hash.
pub(crate) type Answer = Option<(String, HashMap<String, String>)>;

/// The BullMQ state named by the script.
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
