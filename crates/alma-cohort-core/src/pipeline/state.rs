//! What the run's state machine ([`RunState`], kept in the journal) lets start: a new run of a
//! query and period (admission), a `resume` with its flags, and whether Alma may have run a job.

use crate::error::Error;
pub use crate::journal::RunState;
use crate::journal::{Journal, RunRecord};

/// The run's history note when Alma answered a submission with 60347.
pub const ON_SET_NOTE: &str = "Alma answered 60347: a job already runs on the run's set";
/// The run's history note when Alma listed, before a submission, a job that is not the run's on
/// one of its period's sets or for its period: its users may have been mailed.
pub const STRANGER_NOTE: &str = "Alma lists a job that is not this run's on its set or for its period";

/// Whether Alma once said a job runs on this run's set (60347): then no submission is made on the
/// operator's word alone (`--resubmit-job` is refused), since that job may be someone else's.
pub fn job_ran_on_set(record: &RunRecord) -> bool {
    record.events.iter().any(|e| e.detail.starts_with(ON_SET_NOTE))
}

/// Whether Alma may have started this run's job: it reached `job_submitting`, or a submission
/// that Alma did not refuse for sure is on record (an operator's `--resubmit-job` keeps it), or
/// Alma showed a job on its set or for its period that is not the run's (its users may have been
/// mailed by it, whoever started it).
pub fn job_may_have_run(record: &RunRecord) -> bool {
    let state = match record.state {
        // Abandoned: where it was when the operator ended it (a run abandoned before its job
        // mailed no one; the state's own order would say it may have).
        RunState::Abandoned => record
            .events
            .iter()
            .rev()
            // The transition into abandoned, not a note made since (a prune's, say).
            .find(|e| e.to == RunState::Abandoned && e.from != Some(RunState::Abandoned))
            .and_then(|e| e.from)
            .unwrap_or(RunState::Abandoned),
        s => s,
    };
    state.job_may_have_run()
        || record.job_submissions > 0
        || record
            .events
            .iter()
            .any(|e| e.detail.starts_with(ON_SET_NOTE) || e.detail.starts_with(STRANGER_NOTE))
}

/// What `run --execute` may do, from the journal.
#[derive(Debug, PartialEq, Eq)]
pub enum Admission {
    /// Start a new run.
    Start,
    /// The period is done: skip (exit 4, `skipped` in the JSON).
    Skip { previous: String },
}

/// Decides whether a new run of `query` may start: never while a run of it is unfinished (with or
/// without `--period`, with or without `--force`); with `--period`, not when the period is done or
/// its last run may have mailed part of the cohort, unless `--force`.
pub fn admit(journal: &Journal, query: &str, period: Option<&str>, force: bool) -> Result<Admission, Error> {
    if let Some(open) = journal.unfinished(query)? {
        return Err(Error::Refused {
            message: format!(
                "run {} of query {query:?} is unfinished (state {}, started {}){}; a new run could reset the same users twice",
                open.run_id,
                open.state,
                open.started_at,
                open.period
                    .as_deref()
                    .map(|p| format!(", period {p:?}"))
                    .unwrap_or_default()
            ),
            hint: format!(
                "continue it with `alma-cohort resume {0}` (next: {1}); if it must not go on, end it with `alma-cohort abandon {0} --reason \"…\"{2}`",
                open.run_id,
                open.state.next_step(),
                if job_may_have_run(&open) {
                    " --i-checked-alma"
                } else {
                    ""
                }
            ),
        });
    }
    let Some(period) = period else {
        return Ok(Admission::Start);
    };
    if force {
        return Ok(Admission::Start);
    }
    let ended = journal.ended_for_period(query, period)?;
    if let Some(done) = ended.iter().find(|r| r.state == RunState::Completed) {
        return Ok(Admission::Skip {
            previous: done.run_id.clone(),
        });
    }
    if let Some(mailed) = ended
        .iter()
        .find(|r| job_may_have_run(r) && r.state != RunState::Completed)
    {
        return Err(Error::Refused {
            message: format!(
                "query {query:?} for period {period:?} ended {} in run {} after its job was submitted (job status {}): Alma may have mailed part of the cohort",
                mailed.state,
                mailed.run_id,
                mailed.job_status.as_deref().unwrap_or("unknown")
            ),
            hint: format!(
                "read its report (`alma-cohort show {}`) and check the job in Alma's Monitor Jobs; to run the period again anyway, pass --force",
                mailed.run_id
            ),
        });
    }
    Ok(Admission::Start)
}

/// Checks that `resume` may go on with this run as asked: `--resubmit-job` only where the job's
/// submission is unknown, `--recreate-set` only where the set's creation is.
pub fn check_resume(record: &RunRecord, resubmit_job: bool, recreate_set: bool) -> Result<(), Error> {
    if recreate_set && record.state != RunState::SetCreating {
        return Err(Error::Refused {
            message: format!(
                "--recreate-set does not apply to run {}: it is in state {}, not set_creating{}",
                record.run_id,
                record.state,
                record
                    .set_id
                    .as_deref()
                    .map(|s| format!(" (its set is {s})"))
                    .unwrap_or_default()
            ),
            hint: "--recreate-set is only for a run whose set creation was lost and whose set the operator did not find in Alma".into(),
        });
    }
    // In members_done after a submission that may have started a job (an operator's earlier
    // --resubmit-job that was refused or stopped), the operator's word is asked again.
    let resubmittable = record.state == RunState::JobSubmitting
        || (record.state == RunState::MembersDone && record.job_submissions > 0);
    if resubmit_job && job_ran_on_set(record) {
        return Err(Error::Refused {
            message: format!(
                "--resubmit-job is refused for run {}: Alma answered one of its submissions that a job already runs on its set {} (60347) — this run's own, listed late, or one someone started on the set",
                record.run_id,
                record.set_id.as_deref().unwrap_or("(unknown)")
            ),
            hint: format!(
                "in Alma, open Admin > Monitor Jobs and look for any instance on the set {0}: if it is named for this run, `alma-cohort resume {1}` follows it; if it is someone else's, it mailed the users — when it has ended, `alma-cohort abandon {1} --reason \"…\" --i-checked-alma`",
                record.set_id.as_deref().unwrap_or("(unknown)"),
                record.run_id
            ),
        });
    }
    if resubmit_job && !resubmittable {
        let why = match record.state {
            RunState::JobSubmitted => format!(
                "Alma took its job (instance {}); submitting it again would send every letter twice",
                record.job_instance_id.as_deref().unwrap_or("to be found by name")
            ),
            s if s.is_finished() => format!("it has ended ({s})"),
            s => format!("its job has not been submitted yet (state {s}); `resume` without it will submit it"),
        };
        return Err(Error::Refused {
            message: format!(
                "--resubmit-job does not apply to run {}: {why}",
                record.run_id
            ),
            hint: "--resubmit-job is only for a run whose job submission was lost and whose instance the operator did not find in Monitor Jobs".into(),
        });
    }
    Ok(())
}
