//! `run --execute` and `resume`: set → members → job → follow → report, driven by the run's
//! state ([`RunState`]) in the journal. Each state is written before the call that cannot be
//! repeated and its result right after it. Whatever happened before — a crash, a lost answer, a
//! second attempt — the next step first asks Alma what is already there, so a run never makes a
//! second set, submits a second job, or sends a second letter; when Alma cannot tell, the run
//! stops and says what the operator should check.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

use super::state::RunState;
use super::{Plan, ledger, members, run_files};
use crate::error::Error;
use crate::journal::{Execution, Journal, RunRecord, SendOutcome, now, operator};
use crate::query::{Escape, QuerySpec, fill};
use alma_client::{self as alma, AlmaClient, InstanceId, InstanceStatus, JobId, PollPolicy, SetId, WriteFate};

/// Refused IDs looked up one by one to say why.
const EXPLAIN_REFUSED: usize = 20;

/// How an executing run behaves (from the command line).
#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub period: Option<String>,
    pub force: bool,
    pub poll: PollPolicy,
}

/// What `run --execute` or `resume` ended with.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub run_id: String,
    pub query: String,
    pub period: Option<String>,
    pub cohort_size: usize,
    pub set_id: Option<String>,
    pub set_name: Option<String>,
    pub members_added: Option<usize>,
    pub invalid_ids: Vec<String>,
    pub job_id: Option<String>,
    pub job_instance_id: Option<String>,
    pub job_status: Option<String>,
    pub resumed: bool,
    pub skipped: bool,
    /// completed | failed | abandoned | running | skipped
    pub status: String,
    /// The run's state (`None` when skipped).
    pub state: Option<RunState>,
    pub counters: Vec<(String, String, String)>,
    pub alerts: Vec<(String, String)>,
    /// Cohort IDs protected since the plan: taken out of the set before the job, no letter.
    pub protected_ids: Vec<String>,
    /// Each ID left out, with its reason (not_in_alma, external, inactive, expired, no_email,
    /// staff_role, recently_reset, protected) and what Alma said: never put in the set, or
    /// taken out of it before the job.
    pub left_out: Vec<super::eligibility::LeftOut>,
    /// Why a completed run is not a plain success (the job's COMPLETED_WARNING, users Alma
    /// refused): such a run exits 1.
    pub warnings: Vec<String>,
    pub report_file: Option<String>,
}

impl RunResult {
    pub fn skipped(query: &str, period: &str, previous: &str) -> Self {
        RunResult {
            run_id: previous.to_string(),
            query: query.to_string(),
            period: Some(period.to_string()),
            cohort_size: 0,
            set_id: None,
            set_name: None,
            members_added: None,
            invalid_ids: Vec::new(),
            job_id: None,
            job_instance_id: None,
            job_status: None,
            resumed: false,
            skipped: true,
            status: "skipped".into(),
            state: None,
            counters: Vec::new(),
            alerts: Vec::new(),
            protected_ids: Vec::new(),
            left_out: Vec::new(),
            warnings: Vec::new(),
            report_file: None,
        }
    }

    /// The job failed, or the run completed with warnings (exit 1).
    pub fn job_failed(&self) -> bool {
        self.status == "failed" || !self.warnings.is_empty()
    }

    /// The run's state as its summary's first line says it.
    pub fn outcome(&self) -> String {
        let state = self.state.map(|s| s.as_str()).unwrap_or(&self.status);
        if self.warnings.is_empty() {
            state.to_string()
        } else {
            format!("{state} with warnings")
        }
    }
}

/// The Alma-side plan of a new run: set name and description filled in (the name always carries
/// the run id, so it is unique and can be found again), the job's parameters.
pub fn execution(spec: &QuerySpec, run_id: &str, period: Option<&str>) -> Result<Execution, Error> {
    let values: std::collections::BTreeMap<String, String> = [
        ("query", spec.name.clone()),
        ("period", period.unwrap_or("no-period").to_string()),
        ("date", chrono::Utc::now().format("%Y-%m-%d").to_string()),
        ("run_id", run_id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let fill_set =
        |t: &str| fill(t, &values, Escape::Plain).map_err(|e| Error::Usage(format!("set name template: {e:?}")));
    // A period run's set is named after its intent alone (Alma refuses a second one with
    // 402263); any other run's carries its run id.
    let set_base_name = period.map(|p| period_set_base(spec, p)).transpose()?;
    let set_name = match &set_base_name {
        Some(base) => base.clone(),
        None => ledger::set_name(&fill_set(&spec.set.name)?, run_id, false),
    };
    let instance = ledger::instance_name(&spec.name, period, run_id);
    let mut job_parameters = vec![
        ("job_name".to_string(), instance.clone()),
        ("SEND_Notification_To_User_Active".to_string(), "true".to_string()),
        (
            "SEND_Notification_To_User_Value".to_string(),
            spec.job.notification.clone(),
        ),
    ];
    if let Some(file) = &spec.job.payload_file {
        job_parameters = super::payload::read_payload(file, &instance)?;
    }
    // [job.parameters] cannot name set_id, job_name or the notification (refused when the query
    // is loaded); the checks below run on the list as it will be sent.
    for (k, v) in &spec.job.parameters {
        job_parameters.retain(|(name, _)| name != k);
        job_parameters.push((k.clone(), v.clone()));
    }
    // One value a parameter: with two, which one Alma takes is anyone's guess, and the checks
    // below (and the letter's) would read one while Alma runs the other.
    let mut seen = HashSet::new();
    if let Some((twice, _)) = job_parameters
        .iter()
        .find(|(k, _)| !seen.insert(k.trim().to_ascii_lowercase()))
    {
        return Err(Error::Input {
            path: spec.job.payload_file.clone().unwrap_or_else(|| spec.file.clone()),
            line: None,
            message: format!("the job parameter {twice:?} is given twice; give each parameter once"),
        });
    }
    super::payload::check_parameters(&job_parameters, &spec.job.notification, spec.job.allow_user_updates).map_err(
        |message| Error::Input {
            path: spec.job.payload_file.clone().unwrap_or_else(|| spec.file.clone()),
            line: None,
            message,
        },
    )?;
    // A period run's name is the intent's alone: what its `[set] name` template says (a server's
    // own words, which another server's copy of the query may not share) goes first in the
    // description instead.
    let mut set_description = fill_set(&spec.set.description)?;
    if let Some(base) = &set_base_name {
        let filled = fill_set(&spec.set.name)?;
        if !filled.trim().is_empty() && ledger::set_name(&filled, "", true) != *base {
            set_description = match set_description.trim() {
                "" => filled,
                more => format!("{filled}: {more}"),
            };
        }
    }
    Ok(Execution {
        set_name,
        set_description,
        set_private: spec.set.private,
        job_name: spec.job.name.clone(),
        job_id: spec.job.id.clone(),
        job_parameters,
        set_base_name,
        forced: false,
        cooldown_days: spec.guard.cooldown_days,
        max_refused_ratio: Some(spec.guard.max_refused_ratio),
        // Filled by `start_run` with the files as the plan read them.
        exclusions: Vec::new(),
        normalize: Some(spec.cohort.normalize.clone()),
        letter_code: Some(spec.job.letter.clone()),
        // Filled by `run_record` with what the plan saw.
        letter: None,
        eligibility: None,
        approved_letter: None,
    })
}

/// The name of a `--period` run's sets before any `#n`: the query's name and the period alone
/// ([`ledger::period_set_name`]) — the same on every machine, every day and whatever a copy of
/// the query's `[set] name` says, so that Alma's own 402263 (which does not lag behind like its
/// set list) refuses a second installation's set for the same period.
pub fn period_set_base(spec: &QuerySpec, period: &str) -> Result<String, Error> {
    Ok(ledger::period_set_name(&spec.name, period))
}

/// Records a confirmed plan as a new run in the journal (state `planned`). `period` is the
/// normalized period ([`ledger::normalize_period`]); `forced` the operator's `--force`.
pub fn start_run(
    journal: &mut Journal,
    plan: &Plan,
    params: &[(String, String)],
    period: Option<&str>,
    forced: bool,
) -> Result<RunRecord, Error> {
    let record = run_record(journal, plan, params, period, forced)?;
    journal.create_run(&record, &plan.cohort.ids)?;
    Ok(record)
}

/// Saves a plan (`plan --save`): the run it would start, and its cohort, frozen in the journal
/// for `approve` and `apply`; its report beside its cohort.csv. The ids of the saved plans it
/// supersedes come back.
pub fn save_plan(
    journal: &mut Journal,
    state_dir: &Path,
    plan: &Plan,
    params: &[(String, String)],
    period: Option<&str>,
    alma: Option<&str>,
    review_dir: Option<&Path>,
) -> Result<(Vec<String>, String), Error> {
    let mut record = run_record(journal, plan, params, period, false)?;
    record.run_by = super::approval::person().0;
    // What an approval approves: the plan's canonical text, beside the reviewer's page.
    let text = super::digest::canonical(&super::digest::Facts::of_record(&record, &plan.cohort.ids, alma));
    // The reviewer's page first: a plan is never saved without it.
    run_files::write_run_files(state_dir, &record, &plan.cohort.ids)?;
    let text_file = state_dir.join("runs").join(&record.run_id).join(PLAN_TEXT_FILE);
    crate::files::write(&text_file, text.as_bytes()).map_err(|source| Error::Output {
        path: text_file.clone(),
        source,
    })?;
    if let Some(review) = review_dir {
        copy_for_reviewers(review, text_file.parent().unwrap_or(state_dir), &record.run_id)?;
    }
    let superseded = journal.save_plan(&record, &plan.cohort.ids, alma, &text)?;
    Ok((superseded, super::digest::digest(&text)))
}

/// A saved plan's canonical text, beside its report.html (`plans show PLAN_ID` prints it too).
pub const PLAN_TEXT_FILE: &str = "plan.txt";

/// Copies a saved plan's `report.html` and canonical text into the review folder as
/// `PLAN_ID-report.html` and `PLAN_ID-plan.txt` (see [`review_files`]), readable by the review
/// folder's group (0640) — and nothing else of the run. The group comes from the folder, setgid as
/// docs/scheduling.md makes it; the files lie in it directly, since a folder made inside loses its
/// setgid bit when the service account (not in that group) sets its mode.
fn copy_for_reviewers(review: &Path, run_folder: &Path, plan_id: &str) -> Result<(), Error> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Output { path, source }
    };
    if !review.is_dir() {
        return Err(Error::Output {
            path: review.to_path_buf(),
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "the profile's review_dir is not a folder (make it: install -d -m 2750 -o SERVICE -g REVIEWERS DIR)",
            ),
        });
    }
    for (name, to) in [run_files::REPORT_HTML_FILE, PLAN_TEXT_FILE]
        .into_iter()
        .zip(review_files(review, plan_id))
    {
        let from = run_folder.join(name);
        let bytes = std::fs::read(&from).map_err(io(&from))?;
        std::fs::write(&to, bytes).map_err(io(&to))?;
        #[cfg(unix)]
        std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o640)).map_err(io(&to))?;
    }
    Ok(())
}

/// A saved plan's two files in the review folder: its page and its canonical text.
pub fn review_files(review: &Path, plan_id: &str) -> [std::path::PathBuf; 2] {
    [
        review.join(format!("{plan_id}-{}", run_files::REPORT_HTML_FILE)),
        review.join(format!("{plan_id}-{PLAN_TEXT_FILE}")),
    ]
}

/// The run a plan starts, as the journal records it (state `planned`).
fn run_record(
    journal: &Journal,
    plan: &Plan,
    params: &[(String, String)],
    period: Option<&str>,
    forced: bool,
) -> Result<RunRecord, Error> {
    let mut execution = execution(&plan.spec, &plan.run_id, period)?;
    execution.exclusions = plan.exclusions.clone();
    execution.letter = plan.letter.clone();
    execution.eligibility = Some(plan.eligibility.clone());
    execution.forced = forced;
    if forced {
        execution.cooldown_days = 0;
    }
    // The stamp: who made the set, readable by any installation that finds it in Alma.
    let stamp = ledger::Stamp {
        query: plan.spec.name.clone(),
        period: period.map(str::to_string),
        run: plan.run_id.clone(),
        host: ledger::host(),
        journal: ledger::journal_path(journal),
    };
    execution.set_description = match execution.set_description.trim() {
        "" => stamp.line(),
        human => format!("{human} {}", stamp.line()),
    };
    let record = RunRecord {
        run_id: plan.run_id.clone(),
        query: plan.spec.name.clone(),
        // Absolute: a saved plan is applied (and a run resumed) from any working folder.
        query_file: std::path::absolute(&plan.spec.file)
            .unwrap_or_else(|_| plan.spec.file.clone())
            .display()
            .to_string(),
        query_hash: crate::files::sha256_hex(plan.spec.source.as_bytes()),
        input_file: plan.file.as_ref().map(|f| {
            std::path::absolute(&f.path)
                .map(|p| p.display().to_string())
                .unwrap_or_else(|_| f.path.clone())
        }),
        input_hash: plan.file.as_ref().map(|f| f.sha256.clone()),
        params: params.to_vec(),
        period: period.map(str::to_string),
        started_at: now(),
        finished_at: None,
        status: RunState::Planned.status().into(),
        state: RunState::Planned,
        run_by: operator(),
        cohort_size: plan.cohort.ids.len(),
        execution,
        set_id: None,
        members_added: None,
        invalid_ids: Vec::new(),
        job_id: None,
        job_submit_started_at: None,
        job_submissions: 0,
        job_instance_id: None,
        job_status: None,
        counters: Vec::new(),
        alerts: Vec::new(),
        error: None,
        plan: serde_json::to_value(plan.to_json()).unwrap_or_default(),
        refused_accepted: None,
        protected_ids: Vec::new(),
        files_pruned_at: None,
        steps: Vec::new(),
        batches: Vec::new(),
        taken_out: Vec::new(),
        events: Vec::new(),
    };
    Ok(record)
}

/// How `continue_run` goes on.
#[derive(Clone, Debug, Default)]
pub struct ContinueOptions {
    /// Called from `resume` (reported in the result).
    pub resumed: bool,
    /// The operator saw no instance of this run's job in Alma: submit it again, once, if the
    /// lookup still finds none (`resume --resubmit-job`).
    pub resubmit_job: bool,
    /// The operator checked the IDs Alma refused and lets the run go on with those in the set
    /// (`resume --accept-refused`).
    pub accept_refused: bool,
    /// The operator saw no set of this run's name in Alma: create it again, once, if the lookup
    /// still finds none (`resume --recreate-set`).
    pub recreate_set: bool,
}

/// Takes a journaled run from wherever it stopped to its end. Used by `run --execute` right after
/// `start_run`, and by `resume`.
pub async fn continue_run(
    client: &AlmaClient,
    journal: &Journal,
    state_dir: &Path,
    run_id: &str,
    options: &ContinueOptions,
    poll: &PollPolicy,
) -> Result<RunResult, Error> {
    // A resumed run that has not submitted its job asks first whether it may write at all: the
    // letter and the job as Alma holds them now.
    let state = journal.run(run_id)?.state;
    let before_job = matches!(
        state,
        RunState::Planned | RunState::SetCreating | RunState::SetCreated | RunState::MembersDone
    );
    let checked = match (options.resumed && before_job, journal.run(run_id)) {
        (true, Ok(record)) => super::eligibility::may_write(client, &record.execution).await.map(drop),
        _ => Ok(()),
    };
    if let Err(e) = match checked {
        Ok(()) => drive(client, journal, run_id, options, poll).await,
        Err(e) => Err(e),
    } {
        let _ = journal.note_error(run_id, &crate::error::chain(&e));
        // The report shows where the run stopped.
        if let (Ok(record), Ok(cohort)) = (journal.run(run_id), journal.cohort(run_id)) {
            let _ = run_files::write_run_files(state_dir, &record, &cohort);
        }
        return Err(match e {
            e @ (Error::JobThreshold { .. }
            | Error::JobMaybeStarted(_)
            | Error::SetMaybeCreated { .. }
            | Error::SeveralInstances { .. }
            | Error::Refused { .. }) => e,
            e => Error::Interrupted {
                run_id: run_id.to_string(),
                source: Box::new(e),
            },
        });
    }
    let record = journal.run(run_id)?;
    let cohort = journal.cohort(run_id)?;
    let report_file = run_files::write_run_files(state_dir, &record, &cohort)?;
    Ok(result(&record, options.resumed, report_file))
}

pub fn result(record: &RunRecord, resumed: bool, report_file: Option<PathBuf>) -> RunResult {
    RunResult {
        run_id: record.run_id.clone(),
        query: record.query.clone(),
        period: record.period.clone(),
        cohort_size: record.cohort_size,
        set_id: record.set_id.clone(),
        set_name: Some(record.execution.set_name.clone()),
        members_added: record.members_added,
        invalid_ids: record.invalid_ids.clone(),
        job_id: record.job_id.clone(),
        job_instance_id: record.job_instance_id.clone(),
        job_status: record.job_status.clone(),
        resumed,
        skipped: false,
        status: record.status.clone(),
        state: Some(record.state),
        counters: record.counters.clone(),
        alerts: record.alerts.clone(),
        protected_ids: run_files::protected_only(record),
        left_out: run_files::left_out(record),
        warnings: warnings(record),
        report_file: report_file.map(|p| p.display().to_string()),
    }
}

/// What keeps a completed run from being a plain success.
fn warnings(record: &RunRecord) -> Vec<String> {
    if record.state != RunState::Completed {
        return Vec::new();
    }
    let mut warnings = Vec::new();
    if record.job_status.as_deref() == Some("COMPLETED_WARNING") {
        warnings.push(
            "the job completed with warnings (COMPLETED_WARNING): read its alerts and counters, and Alma's job report (Monitor Jobs > History)".into(),
        );
    }
    if !record.invalid_ids.is_empty() {
        let shown: Vec<&str> = record.invalid_ids.iter().take(5).map(String::as_str).collect();
        warnings.push(format!(
            "{} not in Alma: no letter ({}{}; all in {})",
            record.invalid_ids.len(),
            shown.join(", "),
            if record.invalid_ids.len() > shown.len() {
                ", …"
            } else {
                ""
            },
            run_files::REFUSED_FILE
        ));
    }
    warnings
}

/// The state machine's driver: one step for the state the journal holds, until the run ends or a
/// step stops it.
async fn drive(
    client: &AlmaClient,
    journal: &Journal,
    run_id: &str,
    options: &ContinueOptions,
    poll: &PollPolicy,
) -> Result<(), Error> {
    let mut resubmit = options.resubmit_job;
    let mut recreate = options.recreate_set;
    loop {
        let record = journal.run(run_id)?;
        match record.state {
            RunState::Planned | RunState::SetCreating => {
                let recreate_now = std::mem::take(&mut recreate);
                ensure_set(client, journal, &record, poll, recreate_now).await?
            }
            RunState::SetCreated => add_members(client, journal, &record).await?,
            RunState::MembersDone => {
                // After an earlier submission that may have started the job, only the operator's
                // --resubmit-job of this invocation lets it go again (used once).
                let may_resubmit = std::mem::take(&mut resubmit);
                submit_job(client, journal, &record, poll, options, may_resubmit).await?
            }
            RunState::JobSubmitting => {
                // With the operator's word this goes back to members_done, where it is used once.
                recover_submission(client, journal, &record, poll, resubmit).await?
            }
            RunState::JobSubmitted => follow(client, journal, &record, poll).await?,
            RunState::Completed | RunState::Failed | RunState::Abandoned => return Ok(()),
        }
    }
}

/// `planned`/`set_creating` → `set_created`. From `planned` the set is created — for a period
/// run only after Alma's sets were searched for the intent's name ([`ledger::judge`]); in
/// `set_creating` a creation may have reached Alma (its answer lost, or the process stopped), so
/// the set is looked up by the run's name (and, for a period run, its stamp), and when Alma does
/// not list it the run stops: only the operator's `--recreate-set` creates it again.
async fn ensure_set(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    poll: &PollPolicy,
    recreate: bool,
) -> Result<(), Error> {
    let run_id = &record.run_id;
    let mut name = record.execution.set_name.clone();
    if record.state == RunState::Planned {
        let mut execution = record.execution.clone();
        if let Some(period) = &record.period {
            // A period run journaled before sets were named after the intent has no base name:
            // its intent's sets are then found by their stamp alone.
            let base = record.execution.set_base_name.clone().unwrap_or_default();
            let job = job_of(client, record).await?;
            let verdict = ledger::check_intent(
                client,
                journal,
                &base,
                &record.query,
                period,
                Some(run_id),
                execution.forced,
                Some(&job),
            )
            .await
            .map_err(|e| in_run(e, record))?;
            match verdict {
                ledger::Verdict::Ours(set) => {
                    execution.set_name = set.name.clone();
                    journal.transition(
                        run_id,
                        RunState::Planned,
                        RunState::SetCreating,
                        &format!("the run's set {:?} is already in Alma", set.name),
                        &[("execution", &serde_json::to_string(&execution).unwrap_or_default())],
                    )?;
                    return adopt_set(journal, record, set.id, "found by its name and stamp");
                }
                ledger::Verdict::Create { n } => {
                    if !base.is_empty() {
                        name = ledger::numbered(&base, n);
                    }
                }
            }
            execution.set_name = name.clone();
        }
        journal.transition(
            run_id,
            RunState::Planned,
            RunState::SetCreating,
            &format!("creating the set {name:?}"),
            &[("execution", &serde_json::to_string(&execution).unwrap_or_default())],
        )?;
    } else {
        if let Some(found) = find_set(client, journal, record, poll).await? {
            tracing::info!(set_id = %found, "found the run's set from an earlier attempt");
            return adopt_set(journal, record, found, "found by its name after an earlier attempt");
        }
        if !recreate {
            return Err(Error::SetMaybeCreated {
                run_id: run_id.clone(),
                set_name: name.clone(),
                cause: "an earlier attempt to create it ended without Alma's answer".into(),
            });
        }
        journal.note(
            run_id,
            RunState::SetCreating,
            &format!(
                "resume --recreate-set by {}: the operator saw no set named {name:?} in Alma, and none is listed",
                operator()
            ),
            &[],
        )?;
    }
    journal.step_started(run_id, "set", Some(&name))?;
    match client
        .create_set(&name, &record.execution.set_description, record.execution.set_private)
        .await
    {
        Ok(set) => {
            tracing::info!(set_id = %set.id, name = %name, "set created");
            adopt_set(journal, record, set.id, "created")
        }
        // 402263: a set of this name is in Alma. This run's own (a repeat of a request Alma had
        // received after all), or another installation's that started at the same moment.
        Err(e) if e.alma_code().is_some_and(|(_, c)| c == "402263") => {
            let record = journal.run(run_id)?;
            if let Some(found) = find_set(client, journal, &record, poll).await? {
                return adopt_set(journal, &record, found, "found by its name after Alma said it exists");
            }
            journal.transition(
                run_id,
                RunState::SetCreating,
                RunState::Planned,
                &format!("Alma did not create the set: another set has its name ({e})"),
                &[],
            )?;
            let record = journal.run(run_id)?;
            let holder = client.find_set_by_name(&name).await?;
            Err(match (holder, &record.period) {
                (Some(set), Some(period)) => in_run(
                    ledger::not_ours(
                        &ledger::IntentSet { n: 1, set, stamp: None }.stamped(),
                        journal,
                        &record.query,
                        period,
                    )?,
                    &record,
                ),
                // Alma has the name but does not list the set (yet): for a period run, most
                // likely another installation creating this period's set right now.
                (None, Some(period)) => Error::Refused {
                    message: format!(
                        "Alma refused the set {name:?} of run {run_id} (period {period:?}) because a set of that name exists, but does not list it yet: another installation may be running this period right now; nothing was created"
                    ),
                    hint: format!(
                        "wait some minutes, then `alma-cohort resume {run_id}`: it reads that set's stamp and says who made it (Admin > Manage Sets shows it too). Do not rename that set — unless Manage Sets shows a set of that name without an alma-cohort stamp in its description (a person's, perhaps private): rename that one, then resume"
                    ),
                },
                _ => Error::Refused {
                    message: format!(
                        "Alma already holds a set named {name:?} that is not run {run_id}'s; nothing was created"
                    ),
                    hint: format!(
                        "look for {name:?} in Alma (Admin > Manage Sets): a person or another tool made it; rename that one there, then `alma-cohort resume {run_id}`"
                    ),
                },
            })
        }
        // Alma refused it: nothing was created; a plain resume creates it.
        Err(e) if e.fate() == WriteFate::NotApplied => {
            journal.transition(
                run_id,
                RunState::SetCreating,
                RunState::Planned,
                &format!("Alma did not create the set: {e}"),
                &[],
            )?;
            Err(e.into())
        }
        Err(e) => {
            // Alma may have created it before the answer was lost: look before deciding.
            tracing::warn!(error = %e, "creating the set failed; checking whether Alma created it anyway");
            let record = journal.run(run_id)?;
            match find_set(client, journal, &record, poll).await? {
                Some(found) => adopt_set(journal, &record, found, "found by its name after a lost answer"),
                None => Err(Error::SetMaybeCreated {
                    run_id: run_id.clone(),
                    set_name: name.clone(),
                    cause: e.to_string(),
                }),
            }
        }
    }
}

/// The run's set, looked up by its name (compared trimmed, spaces collapsed, ignoring case, in
/// case Alma normalizes names), a few times as for a job instance. A period run's name is its
/// intent's, not its own: the set is the run's only when its stamp names the run; a set of that
/// name made by anyone else refuses the run (exit 4).
async fn find_set(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    poll: &PollPolicy,
) -> Result<Option<SetId>, Error> {
    let name = &record.execution.set_name;
    let mut wait = lookup_wait(poll);
    for attempt in 1..=LOOKUPS {
        if let Some(found) = client.find_set_by_name(name).await? {
            let Some(period) = &record.period else {
                own_set(journal, record, &found)?;
                return Ok(Some(found.id));
            };
            if record.execution.set_base_name.is_none() {
                // A period run journaled before sets were named after the intent: its name
                // carries its run id.
                return Ok(Some(found.id));
            }
            let found = if found.description.trim().is_empty() {
                client.get_set(&found.id).await?
            } else {
                found
            };
            let stamp = ledger::Stamp::find(&found.description);
            if stamp.as_ref().is_some_and(|s| s.run == record.run_id) {
                own_set(journal, record, &found)?;
                return Ok(Some(found.id));
            }
            let n =
                ledger::number_in(record.execution.set_base_name.as_deref().unwrap_or(name), &found.name).unwrap_or(1);
            let set = ledger::IntentSet { n, set: found, stamp };
            return Err(in_run(ledger::not_ours(&set, journal, &record.query, period)?, record));
        }
        if attempt < LOOKUPS {
            wait_to_look_again(&format!("the run's set {name:?}"), attempt, wait).await;
            wait = wait.mul_f64(2.0).min(Duration::from_secs(120));
        }
    }
    Ok(None)
}

/// The run's set is this installation's: a stamp in its description that names this run but
/// another host or journal (a copied journal) stops the run (exit 4) before anything is written
/// to the set ([`ledger::this_installation`]).
fn own_set(journal: &Journal, record: &RunRecord, set: &alma::SetInfo) -> Result<(), Error> {
    match ledger::Stamp::find(&set.description).filter(|s| s.run == record.run_id) {
        Some(stamp) => ledger::this_installation(&stamp, set, journal).map_err(|e| in_run(e, record)),
        None => Ok(()),
    }
}

/// The set's members as its count agrees (lower-cased): the list a decision that someone was
/// taken out of the set by staff (no letter, out of the cooldown) is made on. A members list that
/// lags behind the set would make a member the job mails look taken out: when the count (read
/// just before) and the list disagree, or the count is missing while the list is not empty, the
/// run stops (exit 3) and nothing is recorded.
async fn members_as_counted(client: &AlmaClient, set: &SetId) -> Result<HashSet<String>, Error> {
    let count = client.get_set(set).await?.members;
    let members = lowercase_set(client.set_members(set).await?);
    agrees(set, count, members.len())?;
    Ok(members)
}

fn agrees(set: &SetId, count: usize, listed: usize) -> Result<(), Error> {
    if count == listed {
        return Ok(());
    }
    Err(Error::Alma(alma::Error::List {
        path: format!("/almaws/v1/conf/sets/{set}/members"),
        message: format!(
            "lists {listed} members while the set counts {count}: who was taken out of it in Alma cannot be told yet"
        ),
    }))
}

/// [`own_set`], the set read from Alma by its id.
async fn check_own_set(client: &AlmaClient, journal: &Journal, record: &RunRecord) -> Result<(), Error> {
    let Some(id) = &record.set_id else {
        return Ok(());
    };
    let set = client.get_set(&SetId(id.clone())).await?;
    own_set(journal, record, &set)
}

fn adopt_set(journal: &Journal, record: &RunRecord, id: SetId, how: &str) -> Result<(), Error> {
    journal.transition(
        &record.run_id,
        RunState::SetCreating,
        RunState::SetCreated,
        &format!("set {} {how}", id.0),
        &[("set_id", &id.0)],
    )?;
    journal.step_finished(&record.run_id, "set", Some(&id.0))?;
    Ok(())
}

fn lowercase_set(ids: Vec<String>) -> HashSet<String> {
    ids.into_iter().map(|m| m.to_lowercase()).collect()
}

/// `set_created` → `members_done`: adds the cohort members the set does not hold yet, at most
/// 1000 a call, then records who Alma did not take. Each call's IDs are journaled before it is
/// made and its answer after ([`members::sort`]): an ID Alma took that is no longer in the set
/// was taken out by staff, and is never added again.
async fn add_members(client: &AlmaClient, journal: &Journal, record: &RunRecord) -> Result<(), Error> {
    let run_id = &record.run_id;
    let set = SetId(record.set_id.clone().ok_or_else(|| crate::journal::Error::Corrupt {
        run_id: run_id.clone(),
        message: "state set_created without a set id".into(),
    })?);
    let cohort = journal.cohort(run_id)?;
    // Before the first member is sent: the set is this installation's, not a copied journal's.
    check_own_set(client, journal, record).await?;
    journal.step_started(run_id, "members", Some(&format!("{} IDs", cohort.len())))?;
    let fresh = journal.sends(run_id)?.is_empty()
        && record.batches.is_empty()
        && !record.steps.iter().any(|s| s.step == "members");
    let mut present = if fresh {
        HashSet::new()
    } else {
        lowercase_set(client.set_members(&set).await?)
    };
    let mut attempts = 0;
    // Batches are numbered across attempts.
    let mut batch_no = record.batches.len();
    let mut last_count = None;
    loop {
        let sorted = members::sort(&journal.sends(run_id)?, &present);
        if !sorted.not_applied.is_empty() {
            tracing::warn!(
                calls = ?sorted.not_applied,
                "earlier add_members calls ended without an answer and none of their IDs is in the set: sending them again"
            );
        }
        let missing: Vec<String> = cohort
            .iter()
            .filter(|id| {
                let key = id.to_lowercase();
                !present.contains(&key) && !sorted.applied.contains(&key)
            })
            .cloned()
            .collect();
        let mut failed = None;
        // The cohort's members already in the set, counted once here and kept up to date per
        // batch (the cohort is deduped case-insensitively; counting per batch was O(cohort) a
        // call: 28 s of a 1 000 000-user run).
        let mut in_set = cohort.iter().filter(|id| present.contains(&id.to_lowercase())).count();
        for batch in missing.chunks(alma::sets::MAX_MEMBERS_PER_CALL) {
            let call = journal.send_started(run_id, batch)?;
            match client.add_members(&set, batch).await {
                Ok(info) => {
                    journal.send_answered(run_id, call, SendOutcome::Accepted, Some(info.members))?;
                    let before = in_set;
                    for id in batch {
                        if present.insert(id.to_lowercase()) {
                            in_set += 1;
                        }
                    }
                    last_count = Some(info.members);
                    journal.batch_done(run_id, batch_no, before, batch.len())?;
                    batch_no += 1;
                    tracing::info!(batch = batch_no, members = info.members, "members added");
                }
                Err(e) => {
                    if e.fate() == WriteFate::NotApplied {
                        journal.send_answered(run_id, call, SendOutcome::Refused, None)?;
                    }
                    failed = Some(e);
                    break;
                }
            }
        }
        let Some(e) = failed else { break };
        attempts += 1;
        // Adding a member twice is harmless (Alma refuses it with 60115); after a failure whose
        // effect is unknown, or one a repeat can fix, Alma's members list says what landed.
        let reread = match e.fate() {
            WriteFate::Unknown | WriteFate::Applied => true,
            WriteFate::NotApplied => e.is_retryable() || e.alma_code().is_some_and(|(_, c)| c == "60115"),
        };
        if attempts > 3 || !reread {
            return Err(e.into());
        }
        tracing::warn!(error = %e, "adding members failed; reading the set's members before going on");
        present = lowercase_set(client.set_members(&set).await?);
        last_count = None;
    }
    // Alma skips IDs it does not know (fail_on_invalid_id=false), and staff may have taken
    // members out while the run was stopped: the members list tells which, when the count
    // does not match.
    let count = match last_count {
        Some(n) => n,
        None => client.get_set(&set).await?.members,
    };
    let (invalid, taken_out): (Vec<String>, Vec<String>) = if count == cohort.len() {
        (Vec::new(), Vec::new())
    } else {
        let sends = journal.sends(run_id)?;
        let mut members = lowercase_set(client.set_members(&set).await?);
        if !members::sort(&sends, &members).taken_out.is_empty() {
            // Someone looks taken out: decided only on a list that agrees with the set's count.
            members = members_as_counted(client, &set).await?;
        }
        let taken: HashSet<String> = members::sort(&sends, &members).taken_out.into_iter().collect();
        cohort
            .iter()
            .filter(|id| !members.contains(&id.to_lowercase()))
            .cloned()
            .partition(|id| !taken.contains(&id.to_lowercase()))
    };
    if !taken_out.is_empty() {
        tracing::warn!(
            taken_out = taken_out.len(),
            "members Alma took are no longer in the set: taken out in Alma; not added again"
        );
        journal.take_out(run_id, &taken_out)?;
    }
    let why = explain_refused(client, &invalid).await;
    if !invalid.is_empty() {
        tracing::warn!(refused = invalid.len(), "Alma did not add some IDs: {why}");
    }
    let added = cohort.len() - invalid.len() - taken_out.len();
    let mut detail = match invalid.len() {
        0 => format!("{added} added, 0 refused"),
        n => format!("{added} added, {n} refused ({why})"),
    };
    if !taken_out.is_empty() {
        detail.push_str(&format!(
            "; {} taken out of the set in Alma since they were added (not added again, no letter)",
            taken_out.len()
        ));
    }
    journal.transition(
        run_id,
        RunState::SetCreated,
        RunState::MembersDone,
        &detail,
        &[
            ("members_added", &(added as i64)),
            (
                "invalid_ids",
                &serde_json::to_string(&invalid).unwrap_or_else(|_| "[]".into()),
            ),
        ],
    )?;
    journal.step_finished(run_id, "members", Some(&detail))?;
    Ok(())
}

/// Right before the job: the exclusion files of the plan, read again. A cohort ID that one of
/// them protects now is recorded (`protected_ids`) and then taken out of the set
/// (`op=delete_members`); whatever crashed in between, the next pass finds it in the journal
/// and takes out whoever the set still holds. A file that is gone or unreadable stops the run
/// (exit 2): the protection it held cannot be checked.
async fn recheck_protections(client: &AlmaClient, journal: &Journal, record: &RunRecord) -> Result<Vec<String>, Error> {
    let run_id = &record.run_id;
    let execution = &record.execution;
    let mut protected = record.protected_ids.clone();
    let mut seen = Vec::new();
    if let (false, Some(normalize)) = (execution.exclusions.is_empty(), &execution.normalize) {
        let files: Vec<PathBuf> = execution.exclusions.iter().map(|f| PathBuf::from(&f.path)).collect();
        let read = super::read_exclusions(&files).map_err(|e| match e {
            Error::Input { path, line, message } => Error::Input {
                path,
                line,
                message: format!(
                    "{message} — run {run_id}'s plan read this exclusion file and it is read again before the job; the job was not submitted. Restore the file, then `alma-cohort resume {run_id}`"
                ),
            },
            e => e,
        })?;
        seen = read.files.iter().map(|f| f.sha256.clone()).collect();
        let refused: HashSet<String> = record.invalid_ids.iter().map(|i| i.to_lowercase()).collect();
        let already: HashSet<String> = protected.iter().map(|i| i.to_lowercase()).collect();
        let in_set: Vec<String> = journal
            .cohort(run_id)?
            .into_iter()
            .filter(|id| !refused.contains(&id.to_lowercase()) && !already.contains(&id.to_lowercase()))
            .collect();
        let newly = crate::transform::protected_among(&in_set, &read.ids, normalize)?;
        if !newly.is_empty() {
            let changed: Vec<&str> = execution
                .exclusions
                .iter()
                .zip(&read.files)
                .filter(|(then, now)| then.sha256 != now.sha256)
                .map(|(then, _)| then.path.as_str())
                .collect();
            protected.extend(newly.iter().cloned());
            tracing::warn!(
                protected = newly.len(),
                files = ?changed,
                "exclusion files protect cohort members since the plan: taking them out of the set before the job"
            );
            journal.note(
                run_id,
                RunState::MembersDone,
                &format!(
                    "{} of the cohort protected since the plan (exclusion files changed: {}): taken out of the set before the job",
                    newly.len(),
                    if changed.is_empty() { "-".to_string() } else { changed.join(", ") }
                ),
                &[("protected_ids", &serde_json::to_string(&protected).unwrap_or_else(|_| "[]".into()))],
            )?;
        }
    }
    if protected.is_empty() {
        return Ok(seen);
    }
    let set = SetId(record.set_id.clone().unwrap_or_default());
    let wanted: HashSet<String> = protected.iter().map(|i| i.to_lowercase()).collect();
    let still: Vec<String> = client
        .set_members(&set)
        .await?
        .into_iter()
        .filter(|m| wanted.contains(&m.to_lowercase()))
        .collect();
    if still.is_empty() {
        // Taken out by an earlier pass whose answer was lost: the history says so once.
        if !record.events.iter().any(|e| e.detail.contains("op=delete_members")) {
            journal.note(
                run_id,
                RunState::MembersDone,
                &format!(
                    "{} protected IDs are out of set {} (op=delete_members by an earlier attempt; Alma's members list says so)",
                    protected.len(),
                    set.0
                ),
                &[],
            )?;
        }
        return Ok(seen);
    }
    for batch in still.chunks(alma::sets::MAX_MEMBERS_PER_CALL) {
        client.delete_members(&set, batch).await?;
    }
    // Alma's word that they are out, not its 200: the members again.
    let left: Vec<String> = client
        .set_members(&set)
        .await?
        .into_iter()
        .filter(|m| wanted.contains(&m.to_lowercase()))
        .collect();
    if let Some(first) = left.first() {
        return Err(Error::Refused {
            message: format!(
                "Alma still lists {} protected IDs (such as {first:?}) in run {run_id}'s set {} after op=delete_members; the job was not submitted",
                left.len(),
                set.0
            ),
            hint: format!(
                "take them out of the set {:?} in Alma (Admin > Manage Sets), then `alma-cohort resume {run_id}`; or `alma-cohort abandon {run_id} --reason \"…\"`",
                record.execution.set_name
            ),
        });
    }
    journal.note(
        run_id,
        RunState::MembersDone,
        &format!(
            "{} protected IDs taken out of set {} (op=delete_members)",
            still.len(),
            set.0
        ),
        &[],
    )?;
    Ok(seen)
}

/// Alma is the ledger: an instance of this intent by another run, or any job on this run's set,
/// means letters went (or go) out without this run — refused (exit 4). This run's own instance
/// listed although no submission is on record (a journal restored from before it) is followed,
/// never submitted again: `true`, the run moved to `job_submitted`. `entry`: the run as it was
/// before this pass's checks — an instance found now ran on the set as it stood then, so whoever
/// this pass took out may have been mailed and counts as mailed again.
async fn ledger_lists_a_job(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    job: &JobId,
    entry: Option<&RunRecord>,
) -> Result<bool, Error> {
    let run_id = &record.run_id;
    let job = job.clone();
    let (from, to) = lookup_window(&intent_window_start(record));
    let instances = client.job_instances_between(&job, &from, &to).await?;
    let listing = ledger::sort_instances(&instances, record, &set_made_at(record));
    if let Some((stranger, why)) = listing.strangers.first() {
        // Kept in the run's history: from now on the run counts as one that may have mailed
        // (abandon asks --i-checked-alma, the period stays closed, the cooldown holds its users).
        journal.note(
            run_id,
            RunState::MembersDone,
            &format!(
                "{}: instance {} {:?}, {why}",
                super::state::STRANGER_NOTE,
                stranger.id,
                stranger.name
            ),
            &[],
        )?;
        let record = journal.run(run_id)?;
        return Err(ledger::stranger_refusal(&record, &job, stranger, why));
    }
    if let Some(own) = listing.ours.first() {
        // This run's name is listed although no submission is on record: a journal restored
        // from before the submission. Followed, never submitted again.
        let found = InstanceId(own.id.clone());
        if let Some(entry) = entry.filter(|e| e.protected_ids != record.protected_ids) {
            let execution = serde_json::to_string(&entry.execution).map_err(|e| Error::Usage(e.to_string()))?;
            let protected = serde_json::to_string(&entry.protected_ids).unwrap_or_else(|_| "[]".into());
            journal.note(
                run_id,
                RunState::MembersDone,
                &format!(
                    "instance {} ran on the set as it stood before this pass: the {} taken out of the set meanwhile may have been mailed, and count as mailed",
                    own.id,
                    record.protected_ids.len().saturating_sub(entry.protected_ids.len())
                ),
                &[("execution", &execution), ("protected_ids", &protected)],
            )?;
        }
        journal.transition(
            run_id,
            RunState::MembersDone,
            RunState::JobSubmitting,
            "the run's instance is already listed in Alma",
            &[
                ("job_id", &job.0),
                ("job_submissions", &(i64::from(record.job_submissions).max(1))),
            ],
        )?;
        let record = journal.run(run_id)?;
        job_submitted(
            journal,
            &record,
            Some(&found),
            "found by its instance name before submitting",
        )?;
        return Ok(true);
    }
    Ok(false)
}

/// The letter that goes with the job, journaled when it differs from the one the plan saw.
fn note_letter(journal: &Journal, record: &RunRecord, letter: &super::eligibility::LetterSeen) -> Result<(), Error> {
    let then = record.execution.letter.as_ref().map(|l| l.digest.as_str());
    if then == Some(letter.digest.as_str()) {
        return Ok(());
    }
    let mut execution = record.execution.clone();
    execution.letter = Some(letter.clone());
    let json = serde_json::to_string(&execution).map_err(|e| Error::Usage(e.to_string()))?;
    journal.note(
        &record.run_id,
        RunState::MembersDone,
        &format!(
            "letter {} {} since the plan (digest {}; last changed by {} on {}); it still carries the password",
            letter.code,
            if then.is_some() { "changed" } else { "read" },
            &letter.digest.chars().take(12).collect::<String>(),
            letter.updated_by,
            letter.update_date
        ),
        &[("execution", &json)],
    )?;
    Ok(())
}

/// Right before the job, when the run's lookups are older than its rules allow: the members in
/// the set are looked up again, and whoever changed in Alma since (inactive, expired, no email,
/// …) is recorded and taken out of the set with the protected IDs ([`recheck_protections`]).
async fn recheck_eligibility(client: &AlmaClient, journal: &Journal, record: &RunRecord) -> Result<(), Error> {
    let out: HashSet<String> = record
        .invalid_ids
        .iter()
        .chain(&record.protected_ids)
        .map(|i| i.to_lowercase())
        .collect();
    let ids: Vec<String> = journal
        .cohort(&record.run_id)?
        .into_iter()
        .filter(|id| !out.contains(&id.to_lowercase()))
        .collect();
    let Some((checked, newly)) =
        super::eligibility::refresh(client, record.execution.eligibility.as_ref(), &ids, &mut |_| {}).await?
    else {
        return Ok(());
    };
    super::eligibility::check_not_in_alma(
        &newly,
        ids.len(),
        record.execution.max_refused_ratio,
        &format!("run {} looked up again before its job", record.run_id),
    )?;
    let mut execution = record.execution.clone();
    execution.eligibility = Some(checked);
    let mut protected = record.protected_ids.clone();
    protected.extend(newly.iter().map(|l| l.id.clone()));
    let json = serde_json::to_string(&execution).map_err(|e| Error::Usage(e.to_string()))?;
    let counts: Vec<String> = execution
        .eligibility
        .as_ref()
        .map(|c| c.counts().iter().map(|(r, n)| format!("{} {n}", r.as_str())).collect())
        .unwrap_or_default();
    if !newly.is_empty() {
        tracing::warn!(
            left_out = newly.len(),
            "members changed in Alma since the plan's lookups: taking them out of the set before the job"
        );
    }
    journal.note(
        &record.run_id,
        RunState::MembersDone,
        &format!(
            "{} members looked up again (the lookups were older than [eligibility] max_age_hours): {} changed in Alma since the plan and {} (left out in all: {})",
            ids.len(),
            newly.len(),
            if newly.is_empty() {
                "nobody is taken out"
            } else {
                "are taken out of the set before the job"
            },
            if counts.is_empty() { "none".to_string() } else { counts.join(", ") }
        ),
        &[
            ("execution", &json),
            (
                "protected_ids",
                &serde_json::to_string(&protected).unwrap_or_else(|_| "[]".into()),
            ),
        ],
    )?;
    Ok(())
}

/// Whether an exclusion file's content differs from `seen` (the hashes [`recheck_protections`]
/// read): then it is read again before the job.
fn exclusions_changed(record: &RunRecord, seen: &[String]) -> bool {
    record.execution.exclusions.iter().zip(seen).any(|(file, then)| {
        crate::text::read_bytes(std::path::Path::new(&file.path), crate::text::limit::EXCLUSIONS)
            .map(|bytes| crate::files::sha256_hex(&bytes) != *then)
            .unwrap_or(true)
    })
}

/// Stops before the job when Alma refused a larger share of the cohort than `[guard]
/// max_refused_ratio` allows (lost zeros, another identifier type, purged users: the cohort may
/// not be the one meant), unless the operator accepted it (`resume --accept-refused`, recorded).
fn check_refused(journal: &Journal, record: &RunRecord, accept: bool) -> Result<(), Error> {
    let refused = record.invalid_ids.len();
    let Some(max) = record.execution.max_refused_ratio else {
        return Ok(());
    };
    if refused == 0 || record.refused_accepted.is_some() {
        return Ok(());
    }
    let share = refused as f64 / record.cohort_size.max(1) as f64;
    if share <= max {
        return Ok(());
    }
    let run_id = &record.run_id;
    if accept {
        let word = format!("{} at {}", operator(), now());
        journal.note(
            run_id,
            RunState::MembersDone,
            &format!(
                "the operator accepted that Alma refused {refused} of the cohort (resume --accept-refused): the job goes to those in the set"
            ),
            &[("refused_accepted", &word)],
        )?;
        return Ok(());
    }
    let normalize = record
        .execution
        .normalize
        .as_ref()
        .map(|n| {
            format!(
                "trim {}, strip_apostrophe {}, pad_numeric_to {}, case {:?}",
                n.trim,
                n.strip_apostrophe,
                n.pad_numeric_to.map_or("none".to_string(), |w| w.to_string()),
                n.case
            )
        })
        .unwrap_or_else(|| "unknown".into());
    Err(Error::Refused {
        message: format!(
            "Alma refused {refused} of run {run_id}'s {} IDs ({:.1}%, more than [guard] max_refused_ratio {max}): Alma knows no user by them, so the cohort may not be the one meant — the usual causes are leading zeros lost in Excel, IDs of another identifier type than the primary ID, or purged users (the plan's normalization: {normalize}); the set {} keeps the other {}, and the job was not submitted. The refused IDs are in runs/{run_id}/{}",
            record.cohort_size,
            share * 100.0,
            record.set_id.as_deref().unwrap_or("-"),
            record.cohort_size - refused,
            super::run_files::REFUSED_FILE,
        ),
        hint: format!(
            "look the refused IDs up in Alma; if the run is right without them, `alma-cohort resume {run_id} --accept-refused`; if the list or query is wrong, `alma-cohort abandon {run_id} --reason \"…\"` and plan again"
        ),
    })
}

/// Says why Alma refused IDs, for the first few: usually the user does not exist. Best effort: a
/// failed lookup (no Users permission, quota gone) is said and never stops the run.
async fn explain_refused(client: &AlmaClient, invalid: &[String]) -> String {
    let mut unknown = 0;
    let mut checked = 0;
    for id in invalid.iter().take(EXPLAIN_REFUSED) {
        match client.get_user(id).await {
            Ok(found) => {
                checked += 1;
                if found.is_none() {
                    unknown += 1;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not look up a refused ID (only to explain it; the run goes on)");
                break;
            }
        }
    }
    if checked == 0 && !invalid.is_empty() {
        return "not checked: the user lookup failed".into();
    }
    format!("{unknown} of the first {checked} checked are not users in Alma")
}

/// Just before the job: the set holds what this run put there. It is a public set by default, so
/// anyone can change it in Alma between a stop and a `resume`; the job must reach the cohort that
/// was planned, no one else. Members staff took out in Alma stay out: recorded (no letter), and
/// the job goes on with who is left; a member who is not of the cohort stops the run.
async fn check_set_unchanged(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    cohort: &[String],
    resumed: bool,
) -> Result<(), Error> {
    let Some(set_id) = &record.set_id else {
        return Ok(());
    };
    let gone: HashSet<String> = run_files::not_mailed(record);
    let expected: HashSet<String> = cohort
        .iter()
        .map(|i| i.to_lowercase())
        .filter(|i| !gone.contains(i))
        .collect();
    let nobody_left = |taken_out: usize| Error::Refused {
        message: format!(
            "run {} has nobody left to mail: of its cohort of {}, Alma refused {}, {} are protected since the plan and {} were taken out of the set in Alma; the job was not submitted",
            record.run_id,
            cohort.len(),
            record.invalid_ids.len(),
            record.protected_ids.len(),
            taken_out
        ),
        hint: format!(
            "end the run: `alma-cohort abandon {} --reason \"nobody left to mail\"`",
            record.run_id
        ),
    };
    if expected.is_empty() {
        return Err(nobody_left(record.taken_out.len()));
    }
    let set = SetId(set_id.clone());
    let info = client.get_set(&set).await?;
    // A set stamped with this run but by another machine or journal: a copied journal drives
    // another installation's run (exit 4).
    own_set(journal, record, &info)?;
    let now = info.members;
    // Resumed, time has passed and someone may have swapped a member for another (the count
    // alike); and the count may be missing or odd in an answer: then the members list is the word.
    if !resumed && now == expected.len() {
        return Ok(());
    }
    let members = lowercase_set(client.set_members(&set).await?);
    if let Some(stranger) = members.iter().find(|m| !expected.contains(*m)) {
        return Err(Error::Refused {
            message: format!(
                "the run's set {set_id} holds {stranger:?}, who is not in run {}'s cohort: it was changed in Alma since; the job was not submitted",
                record.run_id
            ),
            hint: format!(
                "check the set {:?} in Alma (Admin > Manage Sets); if it must not be used, `alma-cohort abandon {} --reason \"…\"` and run the query again",
                record.execution.set_name, record.run_id
            ),
        });
    }
    // Everyone in the set is of the cohort; whoever is missing was taken out in Alma.
    let taken_out: Vec<String> = cohort
        .iter()
        .filter(|i| {
            let key = i.to_lowercase();
            expected.contains(&key) && !members.contains(&key)
        })
        .cloned()
        .collect();
    if !taken_out.is_empty() {
        // Decided on this members list: it must agree with the count read just before it.
        agrees(&set, now, members.len())?;
        tracing::warn!(
            taken_out = taken_out.len(),
            "members were taken out of the run's set in Alma since they were added: no letter for them"
        );
        journal.take_out(&record.run_id, &taken_out)?;
        journal.note(
            &record.run_id,
            record.state,
            &format!(
                "{} members taken out of the set in Alma since they were added; the job goes to the {} left",
                taken_out.len(),
                members.len()
            ),
            &[],
        )?;
    }
    if members.is_empty() {
        return Err(nobody_left(record.taken_out.len() + taken_out.len()));
    }
    Ok(())
}

/// The job to run: the one recorded, the query's fixed id, or the one MANUAL job of that name.
async fn job_of(client: &AlmaClient, record: &RunRecord) -> Result<JobId, Error> {
    Ok(match (&record.job_id, &record.execution.job_id) {
        (Some(id), _) | (None, Some(id)) => JobId(id.clone()),
        (None, None) => client.find_job_by_name(&record.execution.job_name).await?,
    })
}

/// `members_done` → `job_submitting` → `job_submitted`: the job, submitted once. Any 2xx is a
/// submission; a definite refusal goes back to `members_done`; anything else is looked up by the
/// run's instance name, and when Alma does not list it the run stops in `job_submitting`.
async fn submit_job(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    poll: &PollPolicy,
    options: &ContinueOptions,
    may_resubmit: bool,
) -> Result<(), Error> {
    let run_id = &record.run_id;
    let job = job_of(client, record).await?;
    if record.job_submissions > 0 {
        // An earlier submission may have started the job (an operator resubmitted, and that try
        // was refused or stopped): look for it before anything else.
        if let Some(found) = find_instance(client, &job, record, poll).await? {
            journal.transition(
                run_id,
                RunState::MembersDone,
                RunState::JobSubmitting,
                "an earlier submission's instance is listed now",
                &[("job_id", &job.0)],
            )?;
            let record = journal.run(run_id)?;
            return job_submitted(journal, &record, Some(&found), "found by its instance name");
        }
        if !may_resubmit {
            return Err(maybe_started(record, &job, None));
        }
    }
    let set = record.set_id.clone().unwrap_or_default();
    let mut parameters = vec![("set_id".to_string(), set)];
    parameters.extend(
        record
            .execution
            .job_parameters
            .iter()
            .filter(|(k, _)| !k.trim().eq_ignore_ascii_case("set_id"))
            .cloned(),
    );
    // The set is this installation's (not a copied journal's) before anything else is done
    // about the job.
    check_own_set(client, journal, record).await?;
    // Alma is the ledger: an instance of this intent by another run, or any job on this run's
    // set, means letters went (or go) out without this run. Looked up before every submission.
    if ledger_lists_a_job(client, journal, record, &job, None).await? {
        return Ok(());
    }
    let entry = record.clone();
    // No job of this run or for its intent is listed: who is protected since the plan leaves the
    // set now (after the lookups: a job found above may have mailed them already), and a set
    // Alma filled with too few of the cohort stops here.
    // The operator's --accept-refused is recorded first: a protection that stops the run below
    // (an exclusion file gone) does not lose it.
    check_refused(journal, record, options.accept_refused)?;
    // Who changed in Alma since the lookups, when they are old (they leave the set below).
    recheck_eligibility(client, journal, &journal.run(run_id)?).await?;
    let seen = recheck_protections(client, journal, &journal.run(run_id)?).await?;
    // The cooldown again, now: a run of another query (another installation's, or one planned
    // here while this one waited) may have mailed some of this cohort since this run's plan.
    recheck_cooldown(client, journal, &journal.run(run_id)?, &job).await?;
    // An exclusion file changed during those calls: read again.
    if exclusions_changed(&journal.run(run_id)?, &seen) {
        recheck_protections(client, journal, &journal.run(run_id)?).await?;
    }
    let record = &journal.run(run_id)?;
    // The set holds exactly who the job must reach (read whole when protections took some out).
    check_set_unchanged(
        client,
        journal,
        record,
        &journal.cohort(run_id)?,
        options.resumed || !record.protected_ids.is_empty(),
    )
    .await?;
    // The letter as Alma holds it now, right before the job that sends it (exit 4, the run stays
    // here to resume once it is fixed) — and the one the approvers saw, for an approved plan.
    let preflight = super::eligibility::may_write_with(client, &record.execution, Some(&job)).await?;
    if let Some(approved) = &record.execution.approved_letter
        && *approved != preflight.letter.digest
    {
        return Err(Error::Refused {
            message: format!(
                "letter {} changed since run {}'s plan was approved (digest {} then, {} now; last changed by {} on {}); the job was not submitted",
                preflight.letter.code,
                run_id,
                &approved[..approved.len().min(12)],
                &preflight.letter.digest.chars().take(12).collect::<String>(),
                preflight.letter.updated_by,
                preflight.letter.update_date
            ),
            hint: format!(
                "put the letter back as it was approved and `alma-cohort resume {run_id}`, or `alma-cohort abandon {run_id} --reason \"…\"` and plan again"
            ),
        });
    }
    note_letter(journal, record, &preflight.letter)?;
    // Those checks can take long (a day-old run's lookups, a large set read whole, the letter's
    // retries): Alma's listing again, right before the submission, so that a job another
    // installation started meanwhile is seen.
    if ledger_lists_a_job(client, journal, &journal.run(run_id)?, &job, Some(&entry)).await? {
        return Ok(());
    }
    let record = &journal.run(run_id)?;
    // The lookup window starts at the first submission that may have started a job.
    let at = record.job_submit_started_at.clone().unwrap_or_else(now);
    journal.step_started(run_id, "job", Some(&job.0))?;
    let submissions = i64::from(record.job_submissions) + 1;
    journal.transition(
        run_id,
        RunState::MembersDone,
        RunState::JobSubmitting,
        &format!("submitting job {job} as {:?}", record.instance_name().unwrap_or("")),
        &[
            ("job_id", &job.0),
            ("job_submit_started_at", &at),
            ("job_submissions", &submissions),
        ],
    )?;
    let outcome = client.run_job(&job, &parameters).await;
    let record = journal.run(run_id)?;
    match outcome {
        Ok(submitted) => {
            let how = match &submitted.message {
                Some(m) => format!("Alma took the job: {m}"),
                None => "Alma took the job (HTTP 2xx)".into(),
            };
            let instance = submitted.instance.as_ref().map(|i| i.0.as_str()).unwrap_or("not named");
            tracing::info!(job = %job, instance, "job submitted");
            job_submitted(journal, &record, submitted.instance.as_ref(), &how)
        }
        // 60347 "overlaps with a running job on the same set": this run's own earlier submission
        // (whose answer was lost), or someone else's job on this run's set. Alma did not start
        // this one; which job runs is looked up by the run's instance name.
        Err(e) if e.alma_code().is_some_and(|(_, c)| c == "60347") => {
            tracing::warn!(error = %e, "Alma says a job already runs on this run's set; looking for this run's instance");
            // Kept in the run's history, whatever stops it next: a job ran on this set.
            journal.note(
                run_id,
                RunState::JobSubmitting,
                &format!("{} ({e})", super::state::ON_SET_NOTE),
                &[],
            )?;
            if let Some(found) = find_instance(client, &job, &record, poll).await? {
                return job_submitted(
                    journal,
                    &record,
                    Some(&found),
                    &format!("Alma says the run's job already runs on its set ({e})"),
                );
            }
            // Alma did not start this submission, but a job runs on the run's set: this run's
            // own earlier one listed late, or one someone started on it. Either may be mailing
            // the cohort: the run stays in job_submitting and only the operator goes on.
            Err(maybe_started(&record, &job, Some(&e)))
        }
        Err(e) => match e.fate() {
            // Only the refusals known to mean "not started" send the run back: the thresholds,
            // a parameter or operation refusal, the gateway's (no connection, quotas, the key).
            WriteFate::NotApplied if e.job_not_started() => {
                let submissions = (i64::from(record.job_submissions) - 1).max(0);
                // The first submission's time stays while an earlier one may have started a job.
                let since: &dyn rusqlite::ToSql = if submissions == 0 {
                    &rusqlite::types::Null
                } else {
                    &record.job_submit_started_at
                };
                journal.transition(
                    run_id,
                    RunState::JobSubmitting,
                    RunState::MembersDone,
                    &format!("Alma did not start the job: {e}"),
                    &[("job_submit_started_at", since), ("job_submissions", &submissions)],
                )?;
                if let Some((_, code @ ("402222" | "402223"))) = e.alma_code() {
                    return Err(Error::JobThreshold {
                        code: code.to_string(),
                        run_id: run_id.clone(),
                        source: Box::new(e),
                    });
                }
                Err(e.into())
            }
            // Any other refusal: Alma's word, but not one known to mean the job did not start.
            WriteFate::NotApplied => {
                tracing::warn!(error = %e, "Alma refused the submission with an answer not known to mean \"not started\"; looking for the instance");
                match find_instance(client, &job, &record, poll).await? {
                    Some(found) => job_submitted(
                        journal,
                        &record,
                        Some(&found),
                        &format!("found by its instance name after {e}"),
                    ),
                    None => Err(maybe_started(&record, &job, Some(&e))),
                }
            }
            WriteFate::Applied => job_submitted(journal, &record, None, &format!("Alma took the job ({e})")),
            WriteFate::Unknown => {
                tracing::warn!(error = %e, "the answer to the job submission was lost; looking for the instance");
                journal.note(
                    run_id,
                    RunState::JobSubmitting,
                    &format!("the answer to the submission was lost ({e}); looking for the instance by name"),
                    &[],
                )?;
                match find_instance(client, &job, &record, poll).await? {
                    Some(found) => job_submitted(
                        journal,
                        &record,
                        Some(&found),
                        "found by its instance name after a lost answer",
                    ),
                    None => Err(maybe_started(&record, &job, Some(&e))),
                }
            }
        },
    }
}

/// Right before the job: no member of this run's cohort was notified by another run within the
/// cooldown since it was planned. Refused (exit 4) naming who and by which run.
async fn recheck_cooldown(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    job: &JobId,
) -> Result<(), Error> {
    let days = record.execution.cooldown_days;
    if days == 0 {
        return Ok(());
    }
    // The other installations' sets this run's plan read, with their sizes then.
    let read_at_plan: std::collections::HashMap<String, usize> =
        serde_json::from_value(record.plan["recently_reset"]["alma_sets_read"].clone())
            .map(|sets: Vec<(String, usize)>| sets.into_iter().collect())
            .unwrap_or_default();
    let recent = ledger::recently_reset(
        Some(client),
        journal,
        days,
        Some(&record.run_id),
        &read_at_plan,
        Some(job),
    )
    .await
    .map_err(|e| in_run(e, record))?;
    let refused = run_files::not_mailed(record);
    let cohort = journal.cohort(&record.run_id)?;
    let overlap: Vec<(&String, &ledger::Recent)> = cohort
        .iter()
        .filter(|id| !refused.contains(&id.to_lowercase()))
        .filter_map(|id| recent.users.get(&id.to_lowercase()).map(|r| (id, r)))
        .collect();
    let Some((first, by)) = overlap.first() else {
        return Ok(());
    };
    Err(in_run(
        Error::Refused {
            message: format!(
                "{} of run {}'s users were notified by another run within the last {days} days since this run was planned — {first} by run {} of query {:?} ({}, {}); the job was not submitted",
                overlap.len(),
                record.run_id,
                by.run_id,
                by.query,
                by.at,
                by.source
            ),
            hint: "two runs over the same users ran at once. If those users must be mailed again anyway, end this run and run its query with --force; otherwise end this run and plan it again (the new plan leaves them out)".into(),
        },
        record,
    ))
}

/// A ledger refusal met inside a run (its set or job not made): the run stays unfinished, so the
/// operator is told how to end it before anything else (a new run of the query is refused while
/// it is open).
fn in_run(e: Error, record: &RunRecord) -> Error {
    match e {
        Error::Refused { message, hint } => Error::Refused {
            message: format!("{message} (run {} stays in state {})", record.run_id, record.state),
            hint: format!(
                "{hint}\nhint: whatever you decide, end run {0} first: `alma-cohort abandon {0} --reason \"…\"{1}`",
                record.run_id,
                if super::state::job_may_have_run(record) {
                    " --i-checked-alma"
                } else {
                    ""
                }
            ),
        },
        e => e,
    }
}

/// When the run's set was made: its `set` step, else the run's start.
fn set_made_at(record: &RunRecord) -> String {
    record
        .steps
        .iter()
        .find(|s| s.step == "set")
        .map(|s| s.started_at.clone())
        .unwrap_or_else(|| record.started_at.clone())
}

/// How far back the instances are listed before a submission: jobs on this run's set cannot be
/// older than the set; another run of the same period may be months older (its set deleted
/// since, or in another journal): [`super::mailings::INTENT_WINDOW_DAYS`] for a period run.
fn intent_window_start(record: &RunRecord) -> String {
    let set_made = set_made_at(record);
    if record.period.is_none() {
        return set_made;
    }
    let back = (chrono::Utc::now() - chrono::Duration::days(super::mailings::INTENT_WINDOW_DAYS))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    set_made.min(back)
}

fn job_submitted(journal: &Journal, record: &RunRecord, instance: Option<&InstanceId>, how: &str) -> Result<(), Error> {
    let run_id = &record.run_id;
    let detail = match instance {
        Some(i) => format!("{how}; instance {i}"),
        None => format!("{how}; the answer named no instance, so it is found by its name"),
    };
    match instance {
        Some(i) => journal.transition(
            run_id,
            RunState::JobSubmitting,
            RunState::JobSubmitted,
            &detail,
            &[("job_instance_id", &i.0)],
        )?,
        None => journal.transition(run_id, RunState::JobSubmitting, RunState::JobSubmitted, &detail, &[])?,
    }
    journal.step_finished(
        run_id,
        "job",
        Some(instance.map(|i| i.0.as_str()).unwrap_or("submitted")),
    )?;
    Ok(())
}

/// `job_submitting` on resume: the submission's answer was lost (or the process died). Look for
/// the instance; not found → stop, unless the operator said they saw none (`--resubmit-job`).
async fn recover_submission(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    poll: &PollPolicy,
    resubmit: bool,
) -> Result<(), Error> {
    let job = job_of(client, record).await?;
    if let Some(found) = find_instance(client, &job, record, poll).await? {
        tracing::info!(instance = %found, "found the run's job instance from an earlier attempt");
        return job_submitted(journal, record, Some(&found), "found by its instance name");
    }
    if !resubmit {
        return Err(maybe_started(record, &job, None));
    }
    journal.transition(
        &record.run_id,
        RunState::JobSubmitting,
        RunState::MembersDone,
        &format!(
            "resume --resubmit-job by {}: the operator saw no instance named {:?} in Monitor Jobs, and none is listed",
            operator(),
            record.instance_name().unwrap_or("")
        ),
        &[],
    )?;
    tracing::warn!("submitting the job again on the operator's word (--resubmit-job)");
    Ok(())
}

fn maybe_started(record: &RunRecord, job: &JobId, cause: Option<&alma::Error>) -> Error {
    let (from, to) = lookup_window(record.job_submit_started_at.as_deref().unwrap_or(&record.started_at));
    Error::JobMaybeStarted(Box::new(crate::error::MaybeStarted {
        run_id: record.run_id.clone(),
        job_id: job.0.clone(),
        set_id: record.set_id.clone().unwrap_or_default(),
        instance_name: record.instance_name().unwrap_or("").to_string(),
        window: format!("{from} to {to}"),
        cause: cause.map(|e| e.to_string()).unwrap_or_else(|| match &record.error {
            // The stop's own cause, as the journal holds it, rather than a guess.
            Some(last) if !last.trim().is_empty() => format!("earlier, {}", stop_cause(&record.run_id, last)),
            _ => "the process stopped before Alma's answer was recorded".into(),
        }),
        on_set: cause.and_then(|e| e.alma_code()).is_some_and(|(_, c)| c == "60347")
            || super::state::job_ran_on_set(record),
    }))
}

/// The cause of an earlier stop as the journal holds it (its first line), without the framing
/// this message adds again.
fn stop_cause(run_id: &str, last: &str) -> String {
    let mut cause = last.lines().next().unwrap_or(last).trim();
    let framing = format!("Alma may have started the job of run {run_id}: ");
    loop {
        let before = cause;
        cause = cause.strip_prefix(framing.as_str()).unwrap_or(cause);
        cause = cause.strip_prefix("earlier, ").unwrap_or(cause);
        if cause == before {
            break;
        }
    }
    for tail in ["; Alma says a job already runs on the run's set", "; no instance named"] {
        if let Some(at) = cause.find(tail) {
            cause = &cause[..at];
        }
    }
    cause.to_string()
}

/// The dates to list instances over for a submission made at `at` (UTC): Alma lists by the
/// institution's local date, which can be the day before or after the UTC date.
fn lookup_window(at: &str) -> (String, String) {
    let today = chrono::Utc::now().date_naive();
    let date = chrono::NaiveDate::parse_from_str(at.get(..10).unwrap_or(at), "%Y-%m-%d").unwrap_or(today);
    let day = chrono::Days::new(1);
    // From the day before the first submission to the day after today (a resumed run may look
    // days later; the instance can be listed under either local date).
    let from = date.checked_sub_days(day).unwrap_or(date);
    let to = date.max(today).checked_add_days(day).unwrap_or(today);
    (from.format("%Y-%m-%d").to_string(), to.format("%Y-%m-%d").to_string())
}

/// How often a lost submission is looked for before the run stops (Alma may list a new instance
/// only after a while).
const LOOKUPS: u32 = 3;

/// The first wait between those lookups: three times the poll policy's first wait (15 s, then
/// 30 s, at the default 5 s) — Alma's listings lag behind, and a stop here needs a person.
fn lookup_wait(poll: &PollPolicy) -> Duration {
    poll.first.mul_f64(3.0)
}

/// Says on screen what is waited for, and for how long, before a lookup's next try.
async fn wait_to_look_again(what: &str, attempt: u32, wait: Duration) {
    tracing::info!(
        "{what} is not listed in Alma yet; looking again in {:.0} s (look {attempt} of {LOOKUPS}; the run stops after the last and says what to check)",
        wait.as_secs_f64()
    );
    tokio::time::sleep(wait).await;
}

/// The run's job instance, found by its unique instance name ("alma-cohort RUN_ID - <local time>")
/// among the job's instances over the lookup window, every page.
async fn find_instance(
    client: &AlmaClient,
    job: &JobId,
    record: &RunRecord,
    poll: &PollPolicy,
) -> Result<Option<InstanceId>, Error> {
    let Some(name) = record.instance_name() else {
        return Ok(None);
    };
    let (from, to) = lookup_window(record.job_submit_started_at.as_deref().unwrap_or(&record.started_at));
    let mut wait = lookup_wait(poll);
    for attempt in 1..=LOOKUPS {
        let instances = client.job_instances_between(job, &from, &to).await?;
        let mut ours: Vec<InstanceStatus> = instances
            .into_iter()
            .filter(|i| i.name == name || i.name.starts_with(&format!("{name} ")))
            .collect();
        if ours.len() > 1 {
            // Two jobs under one run's name: letters may have gone out twice. Say so; never pick one.
            return Err(Error::SeveralInstances {
                run_id: record.run_id.clone(),
                job_id: job.0.clone(),
                instances: ours.iter().map(|i| i.id.clone()).collect::<Vec<_>>().join(", "),
            });
        }
        if let Some(found) = ours.pop() {
            return Ok(Some(InstanceId(found.id)));
        }
        if attempt < LOOKUPS {
            wait_to_look_again(&format!("the job instance {name:?} ({from} to {to})"), attempt, wait).await;
            wait = wait.mul_f64(2.0).min(Duration::from_secs(120));
        }
    }
    Ok(None)
}

/// `job_submitted` → `completed` | `failed`: follow the instance (found by name first when the
/// submission's answer named none).
async fn follow(client: &AlmaClient, journal: &Journal, record: &RunRecord, poll: &PollPolicy) -> Result<(), Error> {
    let run_id = &record.run_id;
    let job = job_of(client, record).await?;
    let instance = match &record.job_instance_id {
        Some(i) => InstanceId(i.clone()),
        None => match find_instance(client, &job, record, poll).await? {
            Some(found) => {
                journal.note(
                    run_id,
                    RunState::JobSubmitted,
                    &format!("instance {found} found by its name"),
                    &[("job_instance_id", &found.0)],
                )?;
                found
            }
            None => {
                return Err(Error::InstanceNotListed {
                    run_id: run_id.clone(),
                    job_id: job.0.clone(),
                    instance_name: record.instance_name().unwrap_or("").to_string(),
                });
            }
        },
    };
    journal.step_started(run_id, "follow", Some(&format!("job {job} instance {instance}")))?;
    let mut on_status = |s: &InstanceStatus| {
        tracing::info!(status = %s.status, progress = s.progress, "job");
        let _ = journal.job_progress(run_id, &s.status, &s.counters, &s.alerts);
    };
    let end = client.follow_job(&job, &instance, poll, &mut on_status).await?;
    journal.job_progress(run_id, &end.status, &end.counters, &end.alerts)?;
    journal.step_finished(run_id, "follow", Some(&end.status))?;
    let ok = matches!(end.status.as_str(), "COMPLETED_SUCCESS" | "COMPLETED_WARNING");
    journal.transition(
        run_id,
        RunState::JobSubmitted,
        if ok { RunState::Completed } else { RunState::Failed },
        &format!("job instance {instance} ended {}", end.status),
        &[("error", &rusqlite::types::Null)],
    )?;
    Ok(())
}

/// Ends an unfinished run on the operator's word. Before the job may have been submitted this
/// only closes the run; after, the operator must say they checked Alma (`--i-checked-alma`).
pub fn abandon(journal: &Journal, run_id: &str, reason: &str, checked_alma: bool) -> Result<RunRecord, Error> {
    let record = journal.run(run_id)?;
    if record.state.is_finished() {
        return Err(Error::Refused {
            message: format!("run {run_id} has already ended ({}); nothing to abandon", record.state),
            hint: format!("`alma-cohort show {run_id}` shows how it ended"),
        });
    }
    if reason.trim().is_empty() {
        return Err(Error::Usage(
            "--reason is empty: say why the run is abandoned (it is recorded in the journal)".into(),
        ));
    }
    if super::state::job_may_have_run(&record) && !checked_alma {
        return Err(Error::Refused {
            message: format!(
                "run {run_id} may have started its job (state {}): Alma may be resetting passwords and sending letters for it",
                record.state
            ),
            hint: format!(
                "in Alma, open Admin > Monitor Jobs (Running and History) and look for job {} instances named {:?}{}; cancel it there if it must not go on. Then run `alma-cohort abandon {run_id} --reason \"…\" --i-checked-alma`",
                record.job_id.as_deref().unwrap_or(&record.execution.job_name),
                record.instance_name().unwrap_or(""),
                record
                    .job_instance_id
                    .as_deref()
                    .map(|i| format!(" (instance {i})"))
                    .unwrap_or_default()
            ),
        });
    }
    journal.transition(
        run_id,
        record.state,
        RunState::Abandoned,
        &format!(
            "abandoned by {} in state {}: {}{}",
            operator(),
            record.state,
            reason.trim(),
            if checked_alma {
                " (the operator checked Alma's Monitor Jobs)"
            } else {
                ""
            }
        ),
        &[],
    )?;
    Ok(journal.run(run_id)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stop_keeps_its_own_cause_once() {
        let run = "R1";
        let first = "Alma may have started the job of run R1: POST …: Alma answered HTTP 400 60347: overlaps; Alma says a job already runs on the run's set 95, and no instance named \"x\" is listed\nhint: …";
        assert_eq!(stop_cause(run, first), "POST …: Alma answered HTTP 400 60347: overlaps");
        let again = "Alma may have started the job of run R1: earlier, POST …: timed out; no instance named \"x\"";
        assert_eq!(stop_cause(run, again), "POST …: timed out");
        assert_eq!(stop_cause(run, "something else"), "something else");
    }
}
