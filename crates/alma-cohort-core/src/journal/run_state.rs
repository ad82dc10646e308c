//! The run's state machine: where a journaled run is and which step may follow.
//!
//! ```text
//!  planned ◄─► set_creating ──► set_created ──► members_done ──► job_submitting ──► job_submitted ──► completed
//!     │             │               │              ▲    │              │    │            │      └──► failed
//!     │             │               │              │    │              │    │            │
//!     │             │               │              └────┼── refused ───┘    │            │
//!     │             │               │                   │   (or resume      │            │
//!     │             │               │                   │   --resubmit-job) │            │
//!     └─────────────┴───────────────┴───────────────────┴──────► abandoned ◄┴────────────┘
//!                                                           (after job_submitting: --i-checked-alma)
//! ```
//!
//! Each state names the Alma call it guards: `set_creating` is written before `POST /conf/sets`,
//! `set_created` when the set id is known, `members_done` once every `add_members` batch has
//! landed, `job_submitting` before `POST /conf/jobs/{id}?op=run`, `job_submitted` as soon as any
//! 2xx answer (or a lookup by the run's instance name) shows that Alma took the job. Once
//! `job_submitting` is written, only a definite refusal from Alma or the operator's
//! `resume --resubmit-job` leads back to `members_done`: the tool never decides on its own that a
//! job it may have submitted was not submitted.

use serde::{Deserialize, Serialize};

/// Where a run is. Stored in the journal (`runs.state`); every change is one transaction that also
/// writes an event row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// Recorded with its cohort; nothing written to Alma yet.
    Planned,
    /// The set may have been created (the POST was about to be sent, or was sent).
    SetCreating,
    /// The set exists in Alma (its id is in the journal); members are being added.
    SetCreated,
    /// Every member was added or refused; the job has not been submitted.
    MembersDone,
    /// The job run may have been sent: it must be found, never sent again by the tool itself.
    JobSubmitting,
    /// Alma took the job; the instance id is known, or to be found by the run's instance name.
    JobSubmitted,
    Completed,
    Failed,
    Abandoned,
}

impl RunState {
    pub const ALL: [RunState; 9] = [
        RunState::Planned,
        RunState::SetCreating,
        RunState::SetCreated,
        RunState::MembersDone,
        RunState::JobSubmitting,
        RunState::JobSubmitted,
        RunState::Completed,
        RunState::Failed,
        RunState::Abandoned,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Planned => "planned",
            RunState::SetCreating => "set_creating",
            RunState::SetCreated => "set_created",
            RunState::MembersDone => "members_done",
            RunState::JobSubmitting => "job_submitting",
            RunState::JobSubmitted => "job_submitted",
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<RunState> {
        RunState::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// An ended run changes no more.
    pub fn is_finished(self) -> bool {
        matches!(self, RunState::Completed | RunState::Failed | RunState::Abandoned)
    }

    /// The coarse status kept beside the state (`running` until the run ends).
    pub fn status(self) -> &'static str {
        match self {
            RunState::Completed => "completed",
            RunState::Failed => "failed",
            RunState::Abandoned => "abandoned",
            _ => "running",
        }
    }

    /// The transitions the pipeline may make. Everything else is a bug, refused by the journal.
    pub fn can_go_to(self, next: RunState) -> bool {
        use RunState::*;
        matches!(
            (self, next),
            (Planned, SetCreating)
                | (SetCreating, SetCreated)
                // Alma refused the set for sure: nothing was created.
                | (SetCreating, Planned)
                | (SetCreated, MembersDone)
                | (MembersDone, JobSubmitting)
                | (JobSubmitting, JobSubmitted)
                // Alma refused the run for sure, or the operator saw no instance (--resubmit-job).
                | (JobSubmitting, MembersDone)
                | (JobSubmitted, Completed)
                | (JobSubmitted, Failed)
        ) || (next == Abandoned && !self.is_finished())
    }

    /// From here on Alma may have started the job, so letters may have gone out.
    pub fn job_may_have_run(self) -> bool {
        self >= RunState::JobSubmitting
    }

    /// What `resume` will do next from this state, in words.
    pub fn next_step(self) -> &'static str {
        match self {
            RunState::Planned => "create the set",
            RunState::SetCreating => "look for the set by its name, create it if Alma has none",
            RunState::SetCreated => "add the members the set does not hold yet",
            RunState::MembersDone => "submit the job",
            RunState::JobSubmitting => "look for the job instance by the run's instance name (never resubmit)",
            RunState::JobSubmitted => "follow the job instance to its end",
            RunState::Completed | RunState::Failed | RunState::Abandoned => "nothing: the run has ended",
        }
    }
}

impl std::fmt::Display for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_order_follows_the_pipeline() {
        for s in RunState::ALL {
            assert_eq!(RunState::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_string(&s).unwrap(), format!("\"{}\"", s.as_str()));
        }
        assert!(RunState::Planned < RunState::JobSubmitting);
        assert!(!RunState::MembersDone.job_may_have_run());
        assert!(RunState::JobSubmitting.job_may_have_run());
        assert_eq!(RunState::parse("nope"), None);
    }

    #[test]
    fn only_the_drawn_transitions_are_allowed() {
        use RunState::*;
        let allowed: Vec<(RunState, RunState)> = RunState::ALL
            .into_iter()
            .flat_map(|a| RunState::ALL.into_iter().map(move |b| (a, b)))
            .filter(|(a, b)| a.can_go_to(*b))
            .collect();
        assert_eq!(
            allowed,
            [
                (Planned, SetCreating),
                (Planned, Abandoned),
                (SetCreating, Planned),
                (SetCreating, SetCreated),
                (SetCreating, Abandoned),
                (SetCreated, MembersDone),
                (SetCreated, Abandoned),
                (MembersDone, JobSubmitting),
                (MembersDone, Abandoned),
                (JobSubmitting, MembersDone),
                (JobSubmitting, JobSubmitted),
                (JobSubmitting, Abandoned),
                (JobSubmitted, Completed),
                (JobSubmitted, Failed),
                (JobSubmitted, Abandoned),
            ]
        );
        // Never back past a submission except from job_submitting (refused / --resubmit-job).
        assert!(!JobSubmitted.can_go_to(MembersDone));
        assert!(!JobSubmitted.can_go_to(JobSubmitting));
    }
}
