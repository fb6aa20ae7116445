//! Every duration a flag takes, bounded where it is parsed: a value the rest of the
//! program (deadlines, `grace + 5s`, Redis lock lengths in ms) could not hold is a usage
//! error naming the flag's range, never a panic or a worker that cannot fetch.
// The long-running commands' flags exist only with their features; the bounds stay
// tested in every build.
#![cfg_attr(not(feature = "bullmq"), allow(dead_code))]

use std::time::Duration;

const SECOND: Duration = Duration::from_secs(1);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A human duration (`30s`, `500ms`, `5m`).
pub(crate) fn parse(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is not a duration ({e}); write it like 30s, 500ms or 5m"))
}

fn within(s: &str, min: Duration, max: Duration, why: &str) -> Result<Duration, String> {
    let d = parse(s)?;
    if d < min || d > max {
        return Err(format!(
            "`{s}` is outside {}..{}{why}",
            humantime::format_duration(min),
            humantime::format_duration(max)
        ));
    }
    Ok(d)
}

/// `wait --timeout`: up to 24h (the longest wait; wait again to wait longer).
pub(crate) fn wait_timeout(s: &str) -> Result<Duration, String> {
    within(s, Duration::ZERO, DAY, " (wait again to wait longer)")
}

/// `list --timeout`, `counts --timeout`: 1ms..5m (each instance's answer time).
pub(crate) fn monitor_timeout(s: &str) -> Result<Duration, String> {
    within(
        s,
        Duration::from_millis(1),
        orchestrator::MAX_MONITOR_TIMEOUT,
        " (how long each instance may take)",
    )
}

/// `list --since/--until`: a duration back from now (`1h`) or an RFC 3339 time
/// (`2026-12-04T10:00:00Z`), as epoch milliseconds.
pub(crate) fn instant(s: &str) -> Result<u64, String> {
    let now = std::time::SystemTime::now();
    let at = match humantime::parse_rfc3339_weak(s) {
        Ok(t) => t,
        Err(_) => {
            let back = within(
                s,
                Duration::ZERO,
                100 * 365 * DAY,
                " (or give an RFC 3339 time)",
            )
            .map_err(|e| format!("{e}; or give an RFC 3339 time like 2026-12-04T10:00:00Z"))?;
            now.checked_sub(back)
                .ok_or_else(|| format!("`{s}` reaches before the epoch"))?
        }
    };
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| format!("`{s}` is before 1970"))?
        .as_millis();
    u64::try_from(ms).map_err(|_| format!("`{s}` is too far in the future"))
}

/// `--lock-duration`, `--stalled-interval`: 1s..24h. Under 1s a lock expires while jobs
/// run and they run twice; Redis keeps the lock length in milliseconds.
pub(crate) fn lock(s: &str) -> Result<Duration, String> {
    within(
        s,
        SECOND,
        DAY,
        ": under 1s a lock expires while jobs run and they run twice",
    )
}

/// `--retry-delay`: 10ms..1h (BullMQ's `runRetryDelay`).
pub(crate) fn retry_delay(s: &str) -> Result<Duration, String> {
    within(s, Duration::from_millis(10), HOUR, "")
}

/// `worker --timeout`: a job's command runs at most 1ms..30 days.
pub(crate) fn job_timeout(s: &str) -> Result<Duration, String> {
    within(s, Duration::from_millis(1), 30 * DAY, "")
}

/// `--grace`: how long a shutdown waits for running work, up to 24h.
pub(crate) fn grace(s: &str) -> Result<Duration, String> {
    within(s, Duration::ZERO, DAY, "")
}

/// `track --hold`: how long one check waits on a workflow, up to 1h.
pub(crate) fn hold(s: &str) -> Result<Duration, String> {
    within(s, Duration::ZERO, HOUR, "")
}

/// `track --recheck`: 10ms..24h between two checks of an open workflow.
pub(crate) fn recheck(s: &str) -> Result<Duration, String> {
    within(s, Duration::from_millis(10), DAY, "")
}

/// The same bound in milliseconds, for the `--*-ms` aliases.
pub(crate) const MAX_MS: u64 = 24 * 3600 * 1000;

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Parser = fn(&str) -> Result<Duration, String>;

    /// Every flag's parser with its bounds.
    const FLAGS: [(&str, Parser, Duration, Duration); 8] = [
        ("wait --timeout", wait_timeout, Duration::ZERO, DAY),
        (
            "list/counts --timeout",
            monitor_timeout,
            Duration::from_millis(1),
            orchestrator::MAX_MONITOR_TIMEOUT,
        ),
        ("--lock-duration", lock, SECOND, DAY),
        (
            "--retry-delay",
            retry_delay,
            Duration::from_millis(10),
            HOUR,
        ),
        (
            "worker --timeout",
            job_timeout,
            Duration::from_millis(1),
            Duration::from_secs(30 * 24 * 3600),
        ),
        ("--grace", grace, Duration::ZERO, DAY),
        ("track --hold", hold, Duration::ZERO, HOUR),
        ("track --recheck", recheck, Duration::from_millis(10), DAY),
    ];

    fn check(text: &str) -> Result<(), TestCaseError> {
        for (flag, parse, min, max) in FLAGS {
            if let Ok(d) = parse(text) {
                prop_assert!(d >= min && d <= max, "{flag} accepted {text} = {d:?}");
                // What the program does with it cannot overflow.
                prop_assert!(d.checked_add(Duration::from_secs(5)).is_some());
                prop_assert!(tokio::time::Instant::now().checked_add(d).is_some());
                prop_assert!(u64::try_from(d.as_millis()).is_ok());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Any number with any unit: inside the flag's range, or refused (never a panic).
        #[test]
        fn durations_are_bounded_for_every_flag(
            n in prop_oneof![any::<u64>(), 0u64..100_000],
            unit in prop_oneof![
                Just("ns"), Just("us"), Just("ms"), Just("s"), Just("m"), Just("h"),
                Just("d"), Just("w"), Just("M"), Just("y"), Just("")
            ],
        ) {
            check(&format!("{n}{unit}"))?;
        }

        /// Any text at all.
        #[test]
        fn any_text_is_a_bounded_duration_or_refused(text in ".{0,24}") {
            check(&text)?;
        }

        /// `list --since/--until`: any number with any unit, any RFC 3339-like text, any
        /// text: a time no later than now (durations count back) or in range, or refused.
        #[test]
        fn instants_are_bounded_or_refused(
            n in prop_oneof![any::<u64>(), 0u64..100_000],
            unit in prop_oneof![Just("ms"), Just("s"), Just("h"), Just("d"), Just("y"), Just("")],
            year in 0u32..100_000,
            text in ".{0,32}",
        ) {
            let now = u64::try_from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .expect("clock")
                    .as_millis(),
            )
            .expect("ms");
            if let Ok(at) = instant(&format!("{n}{unit}")) {
                prop_assert!(at <= now + 1_000, "{n}{unit} = {at}");
            }
            let _ = instant(&format!("{year:04}-12-04T10:00:00Z"));
            let _ = instant(&text);
        }
    }

    #[test]
    fn the_reported_cases_are_refused() {
        for (flag, parse, text) in [
            ("--grace", grace as Parser, "18446744073709551615s"),
            ("track --hold", hold, "18446744073709551615s"),
            ("--lock-duration", lock, "1000000000y"),
        ] {
            let e = parse(text).expect_err(flag);
            assert!(
                e.contains("outside") || e.contains("not a duration"),
                "{flag}: {e}"
            );
        }
    }
}
