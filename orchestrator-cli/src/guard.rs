//! `orchestrator exec-guard -- CMD` (hidden): the process between the exec worker and a
//! job's command, so the command dies with its worker however the worker dies.
//!
//! The worker starts the guard as the leader of a new process group, with the job's stdin,
//! stdout and stderr pipes; the guard runs `sh -c CMD`, which joins the group and uses the
//! same pipes. The guard holds its own copy of the stdout pipe and watches it: when the
//! worker dies (SIGKILL, an OOM kill, a panic), the kernel closes the worker's end, the
//! guard's copy reports it (`POLLERR`) within [`WATCH`], and the guard kills the whole
//! group, itself included. Nothing here needs `unsafe`, and unlike a parent-death signal
//! (`PR_SET_PDEATHSIG`, tied to the thread that forked, and to the direct child only) it
//! covers every process of the job, whichever worker thread started it.
//!
//! When the command exits, the guard exits the same way (its code, or its signal); the
//! worker then kills what the command left in the group, as before.

use std::process::ExitCode;
use std::time::Duration;

use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::process::{Signal, getpgrp, getpid, kill_process, kill_process_group};

/// How often the guard looks at its worker (a dead worker's job stops within this).
pub(crate) const WATCH: Duration = Duration::from_millis(100);

/// Run `sh -c cmd` and guard it; never returns while the command runs.
pub(crate) fn run(cmd: &str) -> ExitCode {
    let mut child = match std::process::Command::new("sh").arg("-c").arg(cmd).spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start `sh -c {cmd}`: {e}");
            return ExitCode::from(127);
        }
    };
    let stdout = std::io::stdout();
    let watch = Timespec {
        tv_sec: 0,
        tv_nsec: i64::try_from(WATCH.as_nanos()).unwrap_or(100_000_000),
    };
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return mirror(status),
            Ok(None) => {}
            Err(e) => {
                eprintln!("cannot wait for the job's command: {e}");
                kill_group();
                return ExitCode::from(1);
            }
        }
        // No event asked for: only an error or a hang-up (the reader is gone) wakes us.
        let mut fds = [PollFd::new(&stdout, PollFlags::empty())];
        if poll(&mut fds, Some(&watch)).is_ok()
            && fds[0].revents().intersects(PollFlags::ERR | PollFlags::HUP)
        {
            // The worker is gone: so is its job (this kills the guard too).
            kill_group();
            return ExitCode::from(1);
        }
    }
}

/// SIGKILL this process group: the command, what it started, and the guard.
fn kill_group() {
    let _ = kill_process_group(getpgrp(), Signal::KILL);
}

/// Exit as the command did: its exit code, or the signal that ended it.
fn mirror(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    if let Some(sig) = status.signal().and_then(Signal::from_named_raw) {
        let _ = kill_process(getpid(), sig);
    }
    ExitCode::from(128 + u8::try_from(status.signal().unwrap_or(0) & 0x7f).unwrap_or(0))
}
