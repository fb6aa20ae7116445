//! One job's command, for `orchestrator worker --exec`: the exec worker's contract.
//!
//! * The command runs as `sh -c CMD` in its own process group, with the job's data as JSON
//!   on stdin; stdin, stdout and stderr are pumped concurrently, so a command that writes
//!   before it reads never deadlocks against us.
//! * The group dies with the worker, however the worker dies (SIGKILL, OOM, panic): the
//!   command runs under `orchestrator exec-guard`, which watches the worker's end of the
//!   stdout pipe and kills the group within 100 ms of the worker's death (`guard`).
//! * stdout (at most `max_stdout` bytes, JSON) is the job's return value; more fails the
//!   attempt and kills the group. stderr is kept up to `max_stderr` bytes (its end, where
//!   errors usually are) as the failure reason of a non-zero exit; the rest is read and
//!   dropped.
//! * With a timeout, a command still running then is killed with its whole process group
//!   (grandchildren included) and the attempt fails. When the command exits, whatever it
//!   left running in its group is killed too: the job ends with its command. A process
//!   that left the group (`setsid`, `setpgid`) is not ours to kill: it runs on, and its
//!   copy of the pipes is read for at most 500 ms after the command exits.
//! * The environment is cleared except `PATH`, `HOME`, `LANG`, the per-job variables
//!   (`ORCHESTRATOR_TASK_ID`, `_JOB_ID`, `_JOB_NAME`, `_ATTEMPT`) and the names passed with
//!   `--env`: the worker's own secrets (Redis password, API keys) do not leak into jobs.

use std::collections::HashSet;
use std::ffi::OsString;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orchestrator::bullmq::{HandlerError, JobContext};
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

/// Variables every job's command receives from the worker's environment.
pub(crate) const ALLOWED_ENV: &[&str] = &["PATH", "HOME", "LANG"];

/// How the worker runs each job's command.
#[derive(Debug, Clone)]
pub(crate) struct ExecPolicy {
    /// The shell command.
    pub cmd: String,
    /// Kill the command (and its group) after this long.
    pub timeout: Option<Duration>,
    /// The most stdout kept; more fails the attempt.
    pub max_stdout: usize,
    /// The most stderr kept as the failure reason.
    pub max_stderr: usize,
    /// The variables passed to the command, read once at start.
    pub env: Vec<(String, OsString)>,
}

impl ExecPolicy {
    /// The environment the command gets: [`ALLOWED_ENV`] plus `extra` names, those set.
    pub(crate) fn environment(extra: &[String]) -> Vec<(String, OsString)> {
        ALLOWED_ENV
            .iter()
            .map(|s| s.to_string())
            .chain(extra.iter().cloned())
            .filter_map(|name| std::env::var_os(&name).map(|v| (name, v)))
            .collect()
    }
}

/// The process groups of the commands running now, so a shutdown can kill them.
#[derive(Debug, Clone, Default)]
pub(crate) struct Running(Arc<Mutex<HashSet<i32>>>);

impl Running {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<i32>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Kill every running command's process group.
    /// Kill every command still running; how many there were.
    pub(crate) fn kill_all(&self) -> usize {
        let groups: Vec<i32> = self.lock().drain().collect();
        for pgid in &groups {
            kill_group(*pgid);
        }
        groups.len()
    }

    /// How many commands run now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

fn kill_group(pgid: i32) {
    if let Some(pid) = rustix::process::Pid::from_raw(pgid) {
        // The group may be gone already; nothing to do then.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Removes a process group from [`Running`] and kills what is left of it, however the job
/// ends (including a dropped future).
struct Group {
    pgid: i32,
    running: Running,
}

impl Drop for Group {
    fn drop(&mut self) {
        self.running.lock().remove(&self.pgid);
        kill_group(self.pgid);
    }
}

/// What reading one output stream found (so far).
#[derive(Default)]
struct Captured {
    bytes: Vec<u8>,
    /// More came than the cap.
    overflowed: bool,
}

/// How long the pipes are still read once the command has exited: output a process left
/// running outside its group (`setsid`) keeps open is not waited for longer.
const DRAIN: Duration = Duration::from_millis(500);

/// Read `reader` to its end into `into`, keeping at most `cap` bytes: the first ones
/// (`keep_end` false, stopping at the cap) or the last ones (`keep_end`, reading on).
/// What was read stays in `into` if the read is abandoned.
async fn capture(
    mut reader: impl AsyncRead + Unpin,
    into: &mut Captured,
    cap: usize,
    keep_end: bool,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        into.bytes.extend_from_slice(&buf[..n]);
        if into.bytes.len() > cap {
            into.overflowed = true;
            if !keep_end {
                into.bytes.truncate(cap);
                break;
            }
            let cut = into.bytes.len() - cap;
            into.bytes.drain(..cut);
        }
    }
}

/// Run one job's command under `policy`.
pub(crate) async fn run(
    policy: &ExecPolicy,
    running: &Running,
    ctx: JobContext<Value>,
) -> Result<Value, HandlerError> {
    let input = serde_json::to_vec(&ctx.data)?;
    // The command runs under our own `exec-guard`, which kills its whole group if this
    // worker dies (see `guard`).
    let guard = std::env::current_exe()
        .map_err(|e| format!("cannot find this program to start the exec guard: {e}"))?;
    let mut child = tokio::process::Command::new(guard)
        .arg("exec-guard")
        .arg("--")
        .arg(&policy.cmd)
        .env_clear()
        .envs(policy.env.iter().map(|(k, v)| (k, v)))
        .env("ORCHESTRATOR_TASK_ID", ctx.task_id.to_string())
        .env("ORCHESTRATOR_JOB_ID", &ctx.job_id)
        .env("ORCHESTRATOR_JOB_NAME", &ctx.job_name)
        .env("ORCHESTRATOR_ATTEMPT", ctx.attempt.to_string())
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start `sh -c {}`: {e}", policy.cmd))?;
    let pgid = child
        .id()
        .and_then(|p| i32::try_from(p).ok())
        .ok_or("the command exited before it could be tracked")?;
    running.lock().insert(pgid);
    let _group = Group {
        pgid,
        running: running.clone(),
    };
    let (Some(mut stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("the command's pipes were not set up".into());
    };
    let feed = async move {
        // A command that exits without reading all its input closes the pipe: fine.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
    };
    let (mut out, mut err) = (Captured::default(), Captured::default());
    let status = {
        let pumps = async {
            tokio::join!(
                feed,
                async {
                    capture(stdout, &mut out, policy.max_stdout, false).await;
                    if out.overflowed {
                        // The pump stopped reading: kill now, or the command blocks on a
                        // full pipe.
                        kill_group(pgid);
                    }
                },
                capture(stderr, &mut err, policy.max_stderr, true),
            )
        };
        tokio::pin!(pumps);
        // The timeout bounds the command's run; the drain after it has its own bound, so a
        // command that exits in time is never reported timed out.
        let run = async {
            tokio::select! {
                status = child.wait() => (status, false),
                _ = &mut pumps => (child.wait().await, true),
            }
        };
        let (status, drained) = match policy.timeout {
            Some(limit) => match tokio::time::timeout(limit, run).await {
                Ok(r) => r,
                // Dropping `_group` kills the process group.
                Err(_) => {
                    return Err(format!(
                        "timed out after {}; the command's process group was killed",
                        humantime::format_duration(limit)
                    )
                    .into());
                }
            },
            None => run.await,
        };
        // The job ends with its command: what it left running in its group goes, which
        // also closes the pipes those processes held. A process that left the group keeps
        // its copy open: the pipes are read for `DRAIN` more, then dropped.
        kill_group(pgid);
        if !drained {
            let _ = tokio::time::timeout(DRAIN, &mut pumps).await;
        }
        status
    };
    if out.overflowed {
        return Err(format!(
            "stdout exceeded {} bytes (--max-stdout); the command's process group was killed",
            policy.max_stdout
        )
        .into());
    }
    let status = status?;
    if !status.success() {
        let mut reason = String::from_utf8_lossy(&err.bytes).trim().to_string();
        if reason.is_empty() {
            reason = format!("command failed: {status}");
        } else if err.overflowed {
            reason = format!(
                "[stderr cut to its last {} bytes] {reason}",
                policy.max_stderr
            );
        }
        return Err(reason.into());
    }
    let stdout = String::from_utf8_lossy(&out.bytes);
    if stdout.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(stdout.trim()).map_err(|e| {
        let shown: String = stdout.trim().chars().take(200).collect();
        format!("command output is not JSON ({e}): {shown}").into()
    })
}
