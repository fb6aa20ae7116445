//! [`InitOnce`]: a value a backend sets up once (a connection, a client, a lookup), where
//! concurrent callers share one attempt, its success *and* its failure.
//!
//! `tokio::sync::OnceCell::get_or_try_init` runs the initializer again for each waiter after
//! a failure, one after the other: a thousand calls that arrive together while the engine is
//! silent would take a thousand timeouts. Here every caller that waited on a failed attempt
//! gets that attempt's error at once; a caller that arrives after it starts a new attempt.

use std::future::Future;
use std::sync::Mutex;

use crate::{Error, Result};

/// A value initialized at most once by a fallible async initializer, sharing each attempt's
/// outcome with the callers that waited on it: a thousand calls that arrive together while
/// the engine is silent cost one timeout, not a thousand (`tokio::sync::OnceCell` would run
/// the initializer again for each waiter after a failure).
#[derive(Debug)]
pub struct InitOnce<T> {
    cell: tokio::sync::OnceCell<T>,
    /// How many attempts failed, and the last failure (without its source).
    failed: Mutex<(u64, Option<Error>)>,
}

impl<T> Default for InitOnce<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> InitOnce<T> {
    /// An empty cell.
    pub const fn new() -> Self {
        Self {
            cell: tokio::sync::OnceCell::const_new(),
            failed: Mutex::new((0, None)),
        }
    }

    /// The value, if an attempt succeeded.
    pub fn get(&self) -> Option<&T> {
        self.cell.get()
    }

    /// The value, initializing it with `init` if no attempt succeeded yet. Concurrent callers
    /// share one attempt: if it fails, the caller that ran it gets its error and every other
    /// caller that waited gets a copy ([`Error::clone_without_source`]) at once.
    pub async fn get_or_try_init<F, Fut>(&self, init: F) -> Result<&T>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let seen = self.failures().0;
        self.cell
            .get_or_try_init(|| async {
                if let (count, Some(e)) = &*self.failures() {
                    if *count != seen {
                        return Err(e.clone_without_source());
                    }
                }
                init().await.inspect_err(|e| {
                    let mut f = self.failures();
                    f.0 += 1;
                    f.1 = Some(e.clone_without_source());
                })
            })
            .await
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, (u64, Option<Error>)> {
        // Only plain assignments happen under this lock: a poisoned one is still whole.
        self.failed.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::ErrorKind;

    #[tokio::test]
    async fn waiters_share_a_failed_attempt_and_later_callers_retry() {
        let cell: Arc<InitOnce<u32>> = Arc::default();
        let attempts = Arc::new(AtomicU32::new(0));
        let call = |cell: Arc<InitOnce<u32>>, attempts: Arc<AtomicU32>, ok: bool| async move {
            cell.get_or_try_init(|| async {
                attempts.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(200)).await;
                if ok {
                    Ok(7)
                } else {
                    Err(Error::engine("x", ErrorKind::Timeout, "silent"))
                }
            })
            .await
            .copied()
        };
        let started = tokio::time::Instant::now();
        let results = futures::future::join_all(
            (0..50).map(|_| call(Arc::clone(&cell), Arc::clone(&attempts), false)),
        )
        .await;
        // One attempt, one timeout's worth of time, the same typed error for all.
        assert_eq!(attempts.load(Ordering::SeqCst), 1);
        assert!(started.elapsed() < Duration::from_millis(1000));
        for r in results {
            let e = r.expect_err("failed");
            assert_eq!(e.kind(), ErrorKind::Timeout);
            assert!(e.is_retryable());
            assert!(e.to_string().contains("silent"), "{e}");
        }
        // A caller after the failure makes a new attempt.
        assert_eq!(
            call(Arc::clone(&cell), Arc::clone(&attempts), true)
                .await
                .expect("ok"),
            7
        );
        assert_eq!(attempts.load(Ordering::SeqCst), 2);
        assert_eq!(cell.get(), Some(&7));
    }
}
