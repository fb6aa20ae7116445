//! `memory-bullmq`: BullMQ's rules, from `backend_bullmq_compat::spec`.

use backend_bullmq_compat::spec::{self, JobOptions, RemovePolicy};
use orchestrator_core::raw::now_ms;
use orchestrator_core::{
    Descriptor, Origin, Result, ScheduleRequest, TaskId, TaskOptions, TaskState,
};

use super::{Flavor, Placement, Record, State, memory_factory};

/// Descriptor of `memory-bullmq`: the `bullmq` spec under the fake's name.
pub const MEMORY_BULLMQ: Descriptor = spec::DESCRIPTOR.renamed(
    "memory-bullmq",
    "BULLMQ",
    "in-memory SIMPLE tasks with BullMQ's rules (tests, local runs)",
);

pub(super) struct Bullmq;

fn job(o: &TaskOptions) -> JobOptions {
    // Admission parsed these options already.
    JobOptions::of(o).unwrap_or_default()
}

impl Flavor for Bullmq {
    fn descriptor(&self) -> &'static Descriptor {
        &MEMORY_BULLMQ
    }

    fn default_concurrency(&self) -> usize {
        1
    }

    fn key_of(&self, req: &ScheduleRequest) -> String {
        req.name().to_string()
    }

    fn check_id(&self, id: &TaskId) -> Result<()> {
        spec::split_task_id(id)?;
        Ok(())
    }

    fn place(&self, st: &mut State, req: &ScheduleRequest) -> Result<Placement> {
        let queue = req.name();
        let job = job(req.options());
        if let Some(job_id) = &job.job_id {
            let native = format!("{queue}:{job_id}");
            // BullMQ ignores an add whose id exists; a job our cancel removed is gone.
            if let Some(existing) = st
                .tasks
                .get(&native)
                .filter(|r| r.state != TaskState::Cancelled)
            {
                return Ok(Placement::Existing(existing.id.clone()));
            }
            return Ok(Placement::New(native));
        }
        if let Some(d) = &job.deduplication {
            // BullMQ keeps the id reserved until the job finishes, or for `ttl` ms.
            let now = now_ms();
            if let Some(existing) = st.tasks.values().find(|r| {
                r.key == queue
                    && !r.state.is_finished()
                    && super::bullmq::job(&r.options)
                        .deduplication
                        .is_some_and(|x| {
                            x.id == d.id
                                && x.ttl
                                    .is_none_or(|ttl| r.created_at.saturating_add(ttl) > now)
                        })
            }) {
                return Ok(Placement::Existing(existing.id.clone()));
            }
        }
        let counter = st.counters.entry(queue.to_string()).or_default();
        *counter += 1;
        Ok(Placement::New(format!("{queue}:{counter}")))
    }

    fn waiting_word(&self, prioritized: bool) -> &'static str {
        if prioritized {
            "prioritized"
        } else {
            "waiting"
        }
    }

    /// As the bullmq backend: the job is removed and the cancel remembered.
    fn cancelled_word(&self) -> &'static str {
        "removed"
    }

    fn origin(&self) -> Origin {
        // BullMQ jobs carry no mark of who added them.
        Origin::Unknown
    }

    fn listed(&self, rec: &Record) -> bool {
        spec::split_task_id(&rec.id).is_ok_and(|(_, job)| !spec::is_tracking_job(job))
    }

    fn lifo(&self, options: &TaskOptions) -> bool {
        job(options).lifo == Some(true)
    }

    /// A BullMQ worker sees the job name, which defaults to the queue name.
    fn handler_name(&self, rec: &Record) -> String {
        job(&rec.options)
            .job_name
            .unwrap_or_else(|| rec.name.clone())
    }

    /// BullMQ's removeOnComplete/removeOnFail for the record `native` that just finished.
    fn after_finish(&self, st: &mut State, native: &str) {
        let Some(rec) = st.tasks.get(native) else {
            return;
        };
        let job = job(&rec.options);
        let policy = match rec.state {
            TaskState::Completed => job.remove_on_complete,
            TaskState::Failed => job.remove_on_fail,
            _ => None,
        };
        let (age, count) = match policy {
            None | Some(RemovePolicy::Remove(false)) => return,
            // `true` removes this job only; a count or an age trims the whole finished set.
            Some(RemovePolicy::Remove(true)) => {
                st.remove_finished(self, native);
                return;
            }
            Some(RemovePolicy::KeepCount(n)) => (None, Some(n)),
            Some(RemovePolicy::Keep { age, count }) => (age, count),
        };
        let (queue, state) = (rec.key.clone(), rec.state);
        let now = now_ms();
        let mut finished: Vec<(u64, String)> = st
            .tasks
            .iter()
            .filter(|(_, r)| r.key == queue && r.state == state)
            .map(|(k, r)| (r.finished_at.unwrap_or(0), k.clone()))
            .collect();
        finished.sort_by(|a, b| b.cmp(a));
        for (i, (at, k)) in finished.into_iter().enumerate() {
            let too_many = count.is_some_and(|c| i as u64 >= c);
            let too_old = age.is_some_and(|a| at.saturating_add(a * 1000) < now);
            if too_many || too_old {
                st.remove_finished(self, &k);
            }
        }
    }
}

memory_factory!(
    MemoryBullmqFactory,
    bullmq,
    MEMORY_BULLMQ,
    "The `memory-bullmq` kind."
);
