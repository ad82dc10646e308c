//! The crate's error type, wrapping each layer's, and the exit codes of the command-line contract.

use std::path::PathBuf;
use std::process::ExitCode;

/// Exit codes (DESIGN.md): 0 done; 1 the job ended failed or partial; 2 usage or invalid query
/// file; 3 Alma or network error; 4 refused by a guard or by the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    JobFailed = 1,
    Usage = 2,
    Alma = 3,
    Refused = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Settings(#[from] crate::settings::Error),
    #[error(transparent)]
    Query(#[from] crate::query::Error),
    #[error(transparent)]
    Alma(#[from] alma_client::Error),
    #[error(transparent)]
    Transform(#[from] crate::transform::Error),
    #[error(transparent)]
    Journal(#[from] crate::journal::Error),
    /// The simulator could not start (port taken, unreadable CSV report, bad knob).
    #[error("simulator could not start: {0}")]
    SimStart(String),
    #[error("invalid setting: {0}")]
    Usage(String),
    /// Alma refused the job submission for its execution thresholds; nothing was submitted.
    #[error(
        "Alma did not start the job (run {run_id}): {source}\nhint: {}",
        threshold_hint(code, run_id)
    )]
    JobThreshold {
        code: String,
        run_id: String,
        #[source]
        source: Box<alma_client::Error>,
    },
    /// A run stopped part-way; the journal holds where it was.
    #[error(
        "run {run_id} stopped: {source}\nhint: nothing is lost and nothing was done twice; continue with `alma-cohort resume {run_id}`"
    )]
    Interrupted {
        run_id: String,
        #[source]
        source: Box<Error>,
    },
    /// The journal (or the state machine) refuses what was asked: exit 4, nothing changed.
    #[error("{message}\nhint: {hint}")]
    Refused { message: String, hint: String },
    /// The job submission's answer was lost and Alma does not list an instance under the run's
    /// name: Alma may have started it. Nothing is submitted again without the operator.
    #[error("{0}")]
    JobMaybeStarted(Box<MaybeStarted>),
    /// The set's creation may have reached Alma and no set of the run's name is listed.
    #[error(
        "Alma may have created the set of run {run_id}: {cause}; no set named {set_name:?} is listed\n\
         hint: nothing will be created again on its own. In Alma, open Admin > Manage Sets and search for {set_name:?}.\n\
         hint: if it is there: `alma-cohort resume {run_id}` finds it and goes on (Alma can list a new set some minutes late)\n\
         hint: if there is none: `alma-cohort resume {run_id} --recreate-set` creates it (docs/operating.md)"
    )]
    SetMaybeCreated {
        run_id: String,
        set_name: String,
        cause: String,
    },
    /// More than one job instance carries this run's name: Alma may have run the job twice.
    #[error(
        "Alma lists more than one instance of job {job_id} under the name of run {run_id} ({instances}): the job may have run twice\n\
         hint: check them in Alma's Monitor Jobs; none is followed. When you know what happened, end the run with `alma-cohort abandon {run_id} --reason \"…\" --i-checked-alma`"
    )]
    SeveralInstances {
        run_id: String,
        job_id: String,
        instances: String,
    },
    /// Alma took the job (a 2xx) but named no instance, and none is listed under the run's name yet.
    #[error(
        "Alma took the job of run {run_id} (it answered the submission with success) but lists no instance named {instance_name:?} for job {job_id} yet\n\
         hint: the job is not submitted again; `alma-cohort resume {run_id}` looks for it again and follows it (Monitor Jobs in Alma shows it as \"{instance_name} - <date> <time>\")"
    )]
    InstanceNotListed {
        run_id: String,
        job_id: String,
        instance_name: String,
    },
    /// The operator did not confirm (or could not be asked).
    #[error("{0}")]
    NotConfirmed(String),
    #[error("{}{}: {message}", path.display(), line.map(|l| format!(":{l}")).unwrap_or_default())]
    Input {
        path: PathBuf,
        line: Option<usize>,
        message: String,
    },
    /// A guard refused the cohort; nothing was written to Alma.
    #[error("refused by the guard {guard}: {detail}\nhint: {hint}")]
    Guard {
        guard: &'static str,
        detail: String,
        hint: String,
    },
    #[error("cannot write {path}: {source}")]
    Output {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::Settings(crate::settings::Error::Service { .. }) => Exit::Refused,
            Error::Settings(_) | Error::Query(_) | Error::SimStart(_) | Error::Usage(_) | Error::Output { .. } => {
                Exit::Usage
            }
            Error::Input { .. } => Exit::Usage,
            Error::JobThreshold { .. }
            | Error::JobMaybeStarted(_)
            | Error::InstanceNotListed { .. }
            | Error::SetMaybeCreated { .. }
            | Error::SeveralInstances { .. } => Exit::Alma,
            Error::Refused { .. } => Exit::Refused,
            Error::Interrupted { source, .. } => source.exit(),
            Error::NotConfirmed(_) => Exit::Refused,
            Error::Journal(
                crate::journal::Error::Locked { .. }
                | crate::journal::Error::StateMoved { .. }
                | crate::journal::Error::PlanMoved { .. },
            ) => Exit::Refused,
            Error::Journal(_) => Exit::Usage,
            Error::Guard { .. } => Exit::Refused,
            Error::Alma(alma_client::Error::Setting(_)) => Exit::Usage,
            // The query names a report Alma does not have: fix the query file.
            Error::Alma(alma_client::Error::ReportNotFound { .. }) => Exit::Usage,
            Error::Alma(_) => Exit::Alma,
            Error::Transform(e) => match e {
                crate::transform::Error::UnknownHeading { .. } | crate::transform::Error::BadWhere { .. } => {
                    Exit::Usage
                }
                crate::transform::Error::InvalidId { .. } => Exit::Refused,
                _ => Exit::Alma,
            },
        }
    }
}

/// What the operator needs to check when a job submission's outcome is unknown.
#[derive(Debug)]
pub struct MaybeStarted {
    pub run_id: String,
    pub job_id: String,
    pub set_id: String,
    pub instance_name: String,
    /// The dates the instances were listed over.
    pub window: String,
    pub cause: String,
    /// Alma said a job already runs on the run's set (60347): maybe not this run's at all.
    pub on_set: bool,
}

impl std::fmt::Display for MaybeStarted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let MaybeStarted {
            run_id,
            job_id,
            set_id,
            instance_name,
            window,
            cause,
            on_set,
        } = self;
        if *on_set {
            return write!(
                f,
                "Alma may have started the job of run {run_id}: {cause}; Alma says a job already runs on the run's set {set_id}, and no instance named {instance_name:?} is listed among job {job_id}'s instances from {window}\n\
                 hint: that job is this run's own earlier submission, or one someone started on the set (e.g. from Alma's Run a Job page); nothing will be submitted again on its own. In Alma, open Admin > Monitor Jobs (Running and History) and look for any instance of job {job_id} on the set {set_id}, whatever its name.\n\
                 hint: if it is named \"{instance_name} - <date> <time>\": `alma-cohort resume {run_id}` finds and follows it (Alma can list a new instance some minutes late)\n\
                 hint: if it is someone else's, it is mailing the run's users: do not use --resubmit-job; when it has ended, end this run with `alma-cohort abandon {run_id} --reason \"…\" --i-checked-alma` (docs/operating.md)"
            );
        }
        write!(
            f,
            "Alma may have started the job of run {run_id}: {cause}; no instance named {instance_name:?} is listed among job {job_id}'s instances from {window}\n\
             hint: nothing will be submitted again on its own. In Alma, open Admin > Monitor Jobs (the Running and the History tabs) and look for an instance named \"{instance_name} - <date> <time>\" (job {job_id}, set {set_id}).\n\
             hint: if it is there: `alma-cohort resume {run_id}` finds and follows it (Alma can list a new instance some minutes late)\n\
             hint: if there is none: `alma-cohort resume {run_id} --resubmit-job` submits the job again (docs/operating.md)"
        )
    }
}

fn threshold_hint(code: &str, run_id: &str) -> String {
    let why = match code {
        "402222" => "Alma runs at most 3 API-submitted jobs at once; try again when one of them has finished",
        "402223" => "Alma runs one job at most 5 times an hour; try again within the hour",
        _ => "the job is already running on this set; wait for it to end",
    };
    format!("{why}, with `alma-cohort resume {run_id}` (the set and its members are kept)")
}

/// An error and its causes on one line, `outer: cause: root cause`, leaving out a cause whose
/// text the line already holds (several of our messages quote their source).
pub fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = s.source();
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer: {0}")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn chains_read_as_one_line_without_repeats() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(chain(&e), "outer: inner");
        let e = Error::Usage("x".into());
        assert_eq!(chain(&e), "invalid setting: x");
    }
}
