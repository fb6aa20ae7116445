//! The outbox dispatcher: claims due dispatches from Redis and delivers them with backoff.

use super::*;
use crate::outbox::DispatchState;

impl N8nBackend {
    /// Start the outbox dispatcher if the outbox is configured and none runs yet. It is
    /// started by the first `schedule`; call this at start-up to deliver what a previous
    /// process left pending. It stops when the last clone of this backend is dropped.
    pub fn start_dispatcher(&self) {
        if self.inner.outbox.is_none() || tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut slot = lock(&self.inner.dispatcher);
        if slot.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        *slot = Some(tokio::spawn(async move {
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let backend = N8nBackend { inner };
                let poll = backend
                    .inner
                    .outbox
                    .as_ref()
                    .map_or(Duration::from_millis(100), |o| o.cfg.poll_ms.get());
                let busy = match backend.dispatch_round().await {
                    Ok(n) => n > 0,
                    Err(e) => {
                        tracing::warn!(error = %e, "n8n outbox dispatcher round failed");
                        *lock(&backend.inner.dispatcher_error) = Some(e.to_string());
                        false
                    }
                };
                drop(backend);
                if !busy {
                    tokio::time::sleep(poll).await;
                }
            }
        }));
    }

    /// Run the outbox dispatcher in this task until `stop` completes (`orchestrator
    /// dispatch` does this). `stop` is looked at between rounds, so a round in flight (each
    /// delivery bounded by `request_timeout_ms`) finishes and is recorded. A failed round is
    /// logged and retried after `poll_ms`, except one refused by the outbox Redis's
    /// credentials, which ends the run with that `Unauthorized` error. Returns how many delivery outcomes this run
    /// could not record (those dispatches are delivered again once their lease expires).
    pub async fn dispatch_until(&self, stop: impl std::future::Future<Output = ()>) -> Result<u64> {
        use futures::FutureExt;
        let Some(outbox) = &self.inner.outbox else {
            return Err(err(
                ErrorKind::InvalidConfig,
                "there is nothing to dispatch without an outbox: set this backend's `outbox.redis_url`",
            ));
        };
        let poll = outbox.cfg.poll_ms.get();
        let mut stop = std::pin::pin!(stop);
        let before = self
            .inner
            .unrecorded
            .load(std::sync::atomic::Ordering::Relaxed);
        let lost = || {
            self.inner
                .unrecorded
                .load(std::sync::atomic::Ordering::Relaxed)
                - before
        };
        loop {
            let busy = match self.dispatch_round().await {
                Ok(n) => n > 0,
                // Refused credentials do not fix themselves: retrying would hide them.
                Err(e) if e.kind() == ErrorKind::Unauthorized => return Err(e),
                Err(e) => {
                    tracing::warn!(error = %e, "n8n outbox dispatcher round failed");
                    false
                }
            };
            if busy {
                if stop.as_mut().now_or_never().is_some() {
                    return Ok(lost());
                }
            } else {
                tokio::select! {
                    () = &mut stop => return Ok(lost()),
                    () = tokio::time::sleep(poll) => {}
                }
            }
        }
    }

    /// Claim due dispatches and deliver them; returns how many were claimed.
    pub(crate) async fn dispatch_round(&self) -> Result<usize> {
        let Some(outbox) = &self.inner.outbox else {
            return Ok(0);
        };
        let (token, ids) = outbox.claim(self.inner.config.max_in_flight).await?;
        let rounds = ids.iter().map(|id| self.dispatch_one(outbox, id, &token));
        // A failed bookkeeping write leaves the lease to expire, so the dispatch is retried;
        // the round still reports the failure.
        let failed = futures::future::join_all(rounds)
            .await
            .into_iter()
            .find_map(Result::err);
        match failed {
            Some(e) => Err(e),
            None => {
                *lock(&self.inner.dispatcher_error) = None;
                Ok(ids.len())
            }
        }
    }

    pub(crate) async fn dispatch_one(&self, outbox: &Outbox, id: &str, token: &str) -> Result<()> {
        let Some((_, mut rec)) = outbox.get(id).await? else {
            return Ok(());
        };
        let target = match (&rec.url, &rec.workflow_id) {
            (Some(url), wf) => Ok(Target {
                url: url.clone(),
                method: Method::POST,
                workflow_id: wf.clone(),
            }),
            (None, Some(wf)) => self.resolve(wf).await,
            (None, None) => Err(err(ErrorKind::Rejected, "dispatch has no target")),
        };
        let result = match target {
            Ok(t) => match self.check_allowed(&t.url) {
                Ok(()) => {
                    self.deliver(&t, rec.body.clone().into_bytes(), &rec.headers, 1)
                        .await
                }
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        rec.attempts_made += 1;
        let now = orchestrator_core::raw::now_ms();
        let finished = async {
            let finished = match result {
                Ok((_, headers, text)) => {
                    let response = parse_body(&text);
                    rec.execution_id = execution_id_from(&headers, &response);
                    rec.response = Some(response);
                    rec.error = None;
                    rec.finished_at = Some(now);
                    outbox
                        .finish(id, token, DispatchState::Delivered, &rec, None)
                        .await?
                }
                Err(e) => {
                    rec.error = Some(e.to_string());
                    if e.is_retryable() && rec.attempts_made < outbox.cfg.max_attempts {
                        let wait = Backoff::exponential(self.inner.config.backoff_ms.0)
                            .delay_after(rec.attempts_made)
                            .min(outbox.cfg.max_backoff_ms.get());
                        outbox
                            .finish(id, token, DispatchState::Retrying, &rec, Some(wait))
                            .await?
                    } else {
                        rec.finished_at = Some(now);
                        outbox
                            .finish(id, token, DispatchState::Failed, &rec, None)
                            .await?
                    }
                }
            };
            Ok::<_, Error>(finished)
        }
        .await;
        // The delivery was made (or tried): an outcome we could not write is counted.
        let unrecorded = |this: &Self| {
            this.inner
                .unrecorded
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let finished = finished.inspect_err(|_| unrecorded(self))?;
        if finished == crate::outbox::Finished::LeaseLost {
            unrecorded(self);
            // Another dispatcher took the dispatch over, or it was cancelled: its record is
            // theirs now (the delivery may have happened twice: at least once).
            tracing::warn!(
                dispatch = id,
                "outbox lease lost before the outcome was recorded; not written"
            );
        }
        Ok(())
    }
}
