//! A run's whole flow, as each command starts it: the query's lock, the journal's admission, the
//! plan, the operator's confirmation, the run journaled, then set → members → job → follow
//! ([`execute::continue_run`]), and the retention rule after it. `run --execute` takes the query's
//! lock, then the planning lock until the cohort is journaled; `plan --save` takes the planning
//! lock; `apply`, `resume`, `abandon` and `withdraw` take the query's lock.
//!
//! The caller passes in how the operator is told and asked ([`Operator`]) and prints what comes
//! back: a run's [`RunResult`], a [`Skip`], or a [`Stopped`] with the JSON object that `--json`
//! ends stdout with.

use std::path::{Path, PathBuf};

use alma_client::{AlmaClient, Progress};
use serde_json::{Value, json};

use super::execute::{self, ContinueOptions, RunResult};
use super::state::{self, Admission};
use super::{Plan, PlanOptions, approval, ledger, retention, run_files};
use crate::error::Error;
use crate::journal::{self, Journal, RunRecord, SavedPlan};
use crate::query::{self, QuerySpec};
use crate::settings::Settings;

/// How a flow tells the operator what it does, and asks before users are reset.
pub trait Operator: Send {
    /// A line for the person at the terminal: the plan's summary, the saved plan about to be
    /// applied (the binary prints it on stdout, on stderr with `--json`).
    /// A write that fails (standard output closed or full) stops the command before it writes
    /// anything to Alma.
    fn say(&mut self, text: &str) -> Result<(), Error>;
    /// A line that is never data (always stderr for the binary).
    fn note(&mut self, text: &str);
    /// The report is about to be read.
    fn reading(&mut self) {}
    /// One page of the report was read.
    fn page(&mut self, _progress: Progress) {}
    /// The report is read (or its reading failed).
    fn read(&mut self) {}
    /// The cohort's members are being looked up in Alma (start, done so far, end).
    fn lookups(&mut self, _progress: super::eligibility::LookupProgress) {}
    /// Asks before the passwords of `users` users are reset; an `Err` stops the flow before
    /// anything is journaled or written to Alma.
    fn confirm(&mut self, users: usize) -> Result<(), Error>;
}

/// How a flow that was admitted ended.
#[derive(Debug)]
pub enum Ended {
    /// A run was taken to its end (or found ended).
    Ran(Box<RunResult>),
    /// Nothing to do (exit 4): the period is done, or no plan is ready.
    Skipped(Skip),
    /// `apply` without `--execute`: the plan was shown, nothing was done.
    Shown,
}

/// Nothing was done, and why.
#[derive(Debug)]
pub struct Skip {
    /// The lines for stderr (`skipped: …`, with a hint).
    pub message: String,
    /// The object `--json` prints.
    pub object: Value,
}

/// A flow that stopped: the error, and the object `--json` ends stdout with (the run to resume,
/// or why nothing ran) when there is one.
#[derive(Debug)]
pub struct Stopped {
    pub error: Error,
    pub object: Option<Value>,
}

impl<E: Into<Error>> From<E> for Stopped {
    fn from(e: E) -> Self {
        Stopped {
            error: e.into(),
            object: None,
        }
    }
}

impl Stopped {
    fn with(error: Error, object: Value) -> Self {
        Stopped {
            error,
            object: Some(object),
        }
    }
}

/// Loads and validates the query a command names, with its `--param` values.
pub fn load_query(path: &Path, params: &[String]) -> Result<QuerySpec, Error> {
    Ok(query::load(path, &query::parse_params(params)?)?)
}

/// `plan` and `run` without `--execute`: what a run would do; with `save`, the plan frozen in
/// the journal for `approve` and `apply`.
pub struct PlanRequest<'a> {
    pub query: &'a Path,
    pub params: &'a [String],
    pub period: Option<&'a str>,
    pub save: bool,
}

/// A plan, and what `plan --json` prints of it.
pub struct Planned {
    pub plan: Plan,
    pub object: Value,
    /// Saved: the plans it supersedes.
    pub saved: Option<Vec<String>>,
    /// The query's `[approval]`, as the plan's lines say it.
    pub approval: query::ApprovalSpec,
}

pub async fn plan(settings: &Settings, req: &PlanRequest<'_>, ui: &mut dyn Operator) -> Result<Planned, Error> {
    let spec = load_query(req.query, req.params)?;
    if req.save {
        settings.service_allows(None, req.query, Some(&spec.approval))?;
    }
    super::check_offline(&spec)?;
    let period = super::run_period(req.period)?;
    // A saved plan is one intent: refused where a run of it would be (an unfinished run, a done
    // period). The cooldown counts runs, not saved plans: two plans over the same users are
    // stopped at the second one's job, by the cooldown read again there.
    let (planning, mut journal) = if req.save {
        settings.refuse_legacy_journal()?;
        let planning = journal::lock_planning(&settings.state_dir)?;
        let journal = Journal::open(&settings.state_dir)?;
        if let Admission::Skip { previous } = state::admit(&journal, &spec.name, period.as_deref(), false)? {
            return Err(Error::Refused {
                message: format!(
                    "query {:?} already completed for period {:?} in run {previous}; a plan for it would be refused when applied; nothing was saved",
                    spec.name,
                    period.as_deref().unwrap_or_default()
                ),
                hint: "plan another period".into(),
            });
        }
        (Some(planning), Some(journal))
    } else {
        (None, None)
    };
    // A list file needs no Alma: no address, no key, no call — unless a plan is saved and Alma is
    // given, when the period's sets and other installations' cooldown are asked as a run would.
    // A saved plan is checked against Alma as it is now (the lookups, the letter, the period's
    // sets): without an address and a key it is not saved at all — an approver would approve an
    // unchecked plan. (The key's problem is the error: a key file others can read, say.)
    let client = match (spec.report(), req.save) {
        (Some(_), _) | (None, true) => Some(AlmaClient::new(settings.client_config()?)?),
        (None, false) => None,
    };
    let params = query::parse_params(req.params)?.into_iter().collect::<Vec<_>>();
    let approval = spec.approval.clone();
    let options = PlanOptions {
        period: period.clone(),
        force: false,
        execute: false,
    };
    let plan = read_and_plan(settings, client.as_ref(), spec, ui, &options).await?;
    let mut object = serde_json::to_value(plan.to_json()).map_err(|e| Error::Usage(e.to_string()))?;
    let saved = match journal.as_mut() {
        // A plan a guard refuses is never saved: it could never be applied.
        Some(journal) if plan.refusal(true).is_none() => {
            let alma = match (&client, &settings.base_url, settings.api_key()) {
                (Some(_), Some(base), Ok(key)) => Some(approval::alma_binding(base, &key, &plan.run_id)),
                _ => None,
            };
            let (superseded, digest) = execute::save_plan(
                journal,
                &settings.state_dir,
                &plan,
                &params,
                period.as_deref(),
                alma.as_deref(),
                settings.review_dir.as_deref(),
            )?;
            object["plan_id"] = plan.run_id.clone().into();
            object["digest"] = digest.into();
            object["approval"] = approval.describe().into();
            object["approval_kind"] = approval.kind().into();
            object["superseded"] = superseded.clone().into();
            Some(superseded)
        }
        _ => None,
    };
    drop(planning);
    Ok(Planned {
        plan,
        object,
        saved,
        approval,
    })
}

/// `run --execute`.
pub struct RunRequest<'a> {
    pub query: &'a Path,
    pub params: &'a [String],
    pub period: Option<&'a str>,
    pub force: bool,
    /// `--save` was given too: refused (a saved plan is applied with `apply`).
    pub save: bool,
}

/// `run --execute`: the query's lock, admission, the plan, the operator's confirmation, the run
/// journaled, then set → members → job → follow.
pub async fn run(settings: &Settings, req: &RunRequest<'_>, ui: &mut dyn Operator) -> Result<Ended, Stopped> {
    settings.service_allows(Some("run --execute"), req.query, None)?;
    let spec = load_query(req.query, req.params)?;
    super::check_offline(&spec)?;
    // Everything that can be refused without Alma or the journal is, before either is touched.
    let period = super::run_period(req.period)?;
    if req.save {
        return Err(Error::Usage(
            "--save and --execute: a saved plan is applied with `alma-cohort apply PLAN_ID --execute`; save it with `alma-cohort plan QUERY --save`".into(),
        ).into());
    }
    if spec.approval.required > 0 {
        let q = req.query.display();
        let p = period.as_deref().map(|p| format!(" --period {p}")).unwrap_or_default();
        return Err(Stopped::with(
            Error::Refused {
                message: format!(
                    "query {:?} must be approved before a run ({}; [approval] required = {}); run --execute would reset a cohort nobody reviewed; nothing was done",
                    spec.name,
                    spec.approval.describe(),
                    spec.approval.required
                ),
                hint: format!(
                    "`alma-cohort plan {q}{p} --save`, then someone approves it (`alma-cohort approve PLAN_ID{}`), then `alma-cohort apply PLAN_ID --execute`",
                    if spec.approval.allowed_signers.is_some() {
                        " --ssh-key ~/.ssh/id_ed25519"
                    } else {
                        ""
                    }
                ),
            },
            json!({"query": spec.name, "period": period, "status": "refused", "skipped": false, "refused": "the query requires an approved saved plan"}),
        ));
    }
    settings.refuse_legacy_journal()?;
    let _lock = journal::lock_query(&settings.state_dir, &spec.name)?;
    // From the plan until the cohort is journaled: a run of another query planned meanwhile
    // waits, so that its cooldown sees this cohort.
    let planning = journal::lock_planning(&settings.state_dir)?;
    let mut journal = Journal::open(&settings.state_dir)?;
    // Scripts reading --json learn why nothing ran (exit 4 also means "already done"), and the
    // unfinished run to resume when that is why.
    let refused = |e: Error| {
        let unfinished = journal.unfinished(&spec.name).ok().flatten().map(|r| r.run_id);
        let object = json!({
            "query": spec.name,
            "period": period,
            "run_id": unfinished,
            "status": "refused",
            "skipped": false,
            "exit": e.exit() as u8,
            "refused": e.to_string(),
        });
        Stopped::with(e, object)
    };
    let admission = state::admit(&journal, &spec.name, period.as_deref(), req.force).map_err(refused)?;
    if let Admission::Skip { previous } = admission {
        let period = period.as_deref().unwrap_or_default();
        let skipped = RunResult::skipped(&spec.name, period, &previous);
        return Ok(Ended::Skipped(Skip {
            message: format!(
                "skipped: query {:?} already completed for period {period:?} in run {previous}\nhint: pass --force to run it again for this period",
                spec.name
            ),
            object: serde_json::to_value(&skipped).map_err(|e| Error::Usage(e.to_string()))?,
        }));
    }
    let params = query::parse_params(req.params)?.into_iter().collect::<Vec<_>>();
    let client = AlmaClient::new(settings.client_config()?)?;
    let options = PlanOptions {
        period: period.clone(),
        force: req.force,
        execute: true,
    };
    // Nothing was journaled if this fails: the JSON says why (Alma unreachable, a refusal, a bad
    // file).
    let plan = read_and_plan(settings, Some(&client), spec.clone(), ui, &options)
        .await
        .map_err(refused)?;
    // The plan's last line says nothing was changed: true now, not for long.
    ui.say(&plan.summary().replace(
        "Nothing was changed in Alma.",
        "Nothing was changed in Alma yet: the run starts once confirmed.",
    ))?;
    if let Some(refusal) = plan.refusal_error(true) {
        return Err(refusal.into());
    }
    ui.confirm(plan.cohort.ids.len())?;
    let record = execute::start_run(&mut journal, &plan, &params, period.as_deref(), req.force)?;
    drop(planning);
    tracing::info!(run_id = %record.run_id, "run started");
    go_on(settings, &client, &journal, &record.run_id, &ContinueOptions::default()).await
}

/// `apply PLAN_ID`, or the timer's `apply --query Q --period P`.
pub struct ApplyRequest<'a> {
    pub plan_id: Option<&'a str>,
    pub query: Option<&'a str>,
    pub period: Option<&'a str>,
    /// Without it, the plan is shown and nothing is done.
    pub execute: bool,
}

/// `apply`: the saved plan's run, exactly its frozen cohort, through the same admission, state
/// machine and output as `run --execute`.
pub async fn apply(settings: &Settings, req: &ApplyRequest<'_>, ui: &mut dyn Operator) -> Result<Ended, Stopped> {
    let mut started = false;
    apply_plan(settings, req, ui, &mut started).await.map_err(|mut s| {
        // Scripts reading --json learn why nothing was applied (a started run says its own).
        if !started {
            s.object = Some(json!({
                "plan_id": req.plan_id,
                "query": req.query,
                "period": req.period,
                "status": "refused",
                "skipped": false,
                "exit": s.error.exit() as u8,
                "refused": crate::error::chain(&s.error),
            }));
        }
        s
    })
}

async fn apply_plan(
    settings: &Settings,
    req: &ApplyRequest<'_>,
    ui: &mut dyn Operator,
    started: &mut bool,
) -> Result<Ended, Stopped> {
    settings.refuse_legacy_journal()?;
    // No journal: a wrong state dir (the timer's account, ALMA_COHORT_STATE), never "nothing
    // approved yet" — a timer pointed at the wrong journal would never apply anything.
    let Some(journal) = Journal::open_existing(&settings.state_dir)? else {
        return Err(match req.plan_id {
            Some(id) => Error::from(journal::Error::NoSuchPlan(id.to_string())),
            None => Error::Usage(format!(
                "no journal in {}, so no saved plan: is this the state dir the plans were saved in (--state-dir, ALMA_COHORT_STATE)?",
                settings.state_dir.display()
            )),
        }
        .into());
    };
    let plan_id = match (req.plan_id, req.query, req.period) {
        (Some(id), _, _) => journal.plan(id)?.plan_id,
        (None, Some(query), Some(period)) => match approval::timer_plan(&journal, query, period)? {
            (_, _, Some(plan)) => plan.plan_id,
            (name, period, None) => {
                return Ok(skip_apply(
                    req,
                    &format!("no approved, unexpired, unapplied plan of query {name:?} for period {period:?}"),
                ));
            }
        },
        _ => return Err(Error::Usage("give a PLAN_ID, or --query and --period".into()).into()),
    };
    let saved = journal.plan(&plan_id)?;
    settings.service_allows(
        None,
        Path::new(&saved.record.query_file),
        approval::plan_query(&saved).ok().map(|s| s.approval).as_ref(),
    )?;
    let query = saved.query;
    let _lock = journal::lock_query(&settings.state_dir, &query)?;
    let alma_now = match (&settings.base_url, settings.api_key()) {
        (Some(base), Ok(key)) => Some(approval::alma_binding(base, &key, &plan_id)),
        _ => None,
    };
    // Read under the lock: another apply may have taken it meanwhile.
    let (plan, cohort) = match approval::ready(&journal, &plan_id, alma_now.as_deref())? {
        approval::Ready::Go { plan, cohort } => (plan, cohort),
        approval::Ready::Skip { why } => return Ok(skip_apply(req, &why)),
    };
    ui.say(&applying(&plan, cohort.len()))?;
    if !req.execute {
        ui.say("(nothing was done: add --execute to apply it)")?;
        return Ok(Ended::Shown);
    }
    ui.confirm(cohort.len())?;
    // Checked again after the question: a prompt left open may outlast the plan.
    let (plan, cohort) = match approval::ready(&journal, &plan_id, alma_now.as_deref())? {
        approval::Ready::Go { plan, cohort } => (plan, cohort),
        approval::Ready::Skip { why } => return Ok(skip_apply(req, &why)),
    };
    let client = AlmaClient::new(settings.client_config()?)?;
    let mut journal = journal;
    let mut record = approval::run_of(&plan, &journal);
    // May it write at all? The letter and the job as Alma holds them now (exit 4 before any
    // write); then who changed since the plan's lookups, when they are older than the rules allow.
    let preflight = super::eligibility::may_write(&client, &record.execution).await?;
    // The approved text, built again with the letter as Alma holds it now: what was approved is
    // what goes out, or nothing does.
    if !plan.approvals.is_empty()
        && let Some(saved) = &plan.canonical
    {
        let now = approval::plan_text(&plan, Some(&preflight.letter.digest));
        if &now != saved {
            return Err(Error::Refused {
                message: format!(
                    "plan {} is not what was approved: {} changed since (digest {} approved, {} now; the letter last changed by {} on {}); nothing was written",
                    plan.plan_id,
                    super::digest::changes(saved, &now).join("; "),
                    super::digest::digest(saved),
                    super::digest::digest(&now),
                    preflight.letter.updated_by,
                    preflight.letter.update_date
                ),
                hint: format!(
                    "put it back as it was approved, or plan again (`alma-cohort plan {} --save{}`) and have the new plan approved",
                    plan.record.query_file,
                    plan.period.as_deref().map(|p| format!(" --period {p}")).unwrap_or_default()
                ),
            }
            .into());
        }
    }
    if let Some(then) = &record.execution.letter
        && then.digest != preflight.letter.digest
        && !plan.approvals.is_empty()
    {
        // What the approvers saw is not what would go out.
        return Err(Error::Refused {
            message: format!(
                "letter {} changed since plan {} was approved (digest {} then, {} now; last changed by {} on {}); nothing was written",
                preflight.letter.code,
                plan.plan_id,
                &then.digest.chars().take(12).collect::<String>(),
                &preflight.letter.digest.chars().take(12).collect::<String>(),
                preflight.letter.updated_by,
                preflight.letter.update_date
            ),
            hint: "plan again (`alma-cohort plan QUERY --period P --save`) and have the new plan approved".into(),
        }
        .into());
    }
    if let Some(then) = &record.execution.letter
        && then.digest != preflight.letter.digest
    {
        ui.note(&format!(
            "note: letter {} changed since the plan (digest {} then, {} now; last changed by {} on {})",
            preflight.letter.code,
            &then.digest.chars().take(12).collect::<String>(),
            &preflight.letter.digest.chars().take(12).collect::<String>(),
            preflight.letter.updated_by,
            preflight.letter.update_date
        ));
    }
    if !plan.approvals.is_empty() {
        record.execution.approved_letter = Some(preflight.letter.digest.clone());
    }
    record.execution.letter = Some(preflight.letter);
    let mut cohort = cohort;
    let refreshed = super::eligibility::refresh(&client, record.execution.eligibility.as_ref(), &cohort, &mut |p| {
        ui.lookups(p)
    })
    .await?;
    if let Some((checked, newly)) = refreshed {
        super::eligibility::check_not_in_alma(
            &newly,
            cohort.len(),
            record.execution.max_refused_ratio,
            &format!("plan {} looked up again before it is applied", plan.plan_id),
        )?;
        if !newly.is_empty() {
            ui.note(&format!(
                "{} of the plan's cohort changed in Alma since the plan's lookups and are left out (runs/{}/{})",
                newly.len(),
                record.run_id,
                super::run_files::LEFT_OUT_FILE
            ));
            let gone = super::eligibility::left_out_ids(&newly);
            cohort.retain(|id| !gone.contains(&id.to_lowercase()));
            record.cohort_size = cohort.len();
        }
        record.execution.eligibility = Some(checked);
    }
    if cohort.is_empty() {
        return Err(Error::Refused {
            message: format!(
                "plan {}: nobody in its cohort can be reached by the letter now; nothing was written",
                plan.plan_id
            ),
            hint: "plan again".into(),
        }
        .into());
    }
    journal.apply_plan(&plan.plan_id, &record, &cohort)?;
    *started = true;
    tracing::info!(run_id = %record.run_id, "saved plan applied; run started");
    go_on(settings, &client, &journal, &record.run_id, &ContinueOptions::default()).await
}

/// The line `apply` says of the plan it applies.
fn applying(plan: &SavedPlan, users: usize) -> String {
    format!(
        "plan {} of query {:?}{}: {users} users, planned by {} at {}, approved by {}",
        plan.plan_id,
        plan.query,
        plan.period
            .as_deref()
            .map(|p| format!(" for period {p:?}"))
            .unwrap_or_default(),
        plan.planned_by,
        plan.planned_at,
        plan.approvers().unwrap_or_else(|| "nobody (none required)".into())
    )
}

/// Nothing to apply (the timer fires again later): exit 4, `"skipped": true` with `--json`.
fn skip_apply(req: &ApplyRequest<'_>, why: &str) -> Ended {
    Ended::Skipped(Skip {
        message: format!("skipped: {why}; nothing was done"),
        object: json!({
            "query": req.query,
            "period": req.period,
            "status": "skipped",
            "skipped": true,
            "why": why,
        }),
    })
}

/// `resume RUN_ID` and its flags.
pub struct ResumeRequest<'a> {
    pub run_id: &'a str,
    pub resubmit_job: bool,
    pub recreate_set: bool,
    pub accept_refused: bool,
    pub take_over: bool,
}

/// `resume`: under the query's lock, the run taken on from its journaled step.
pub async fn resume(settings: &Settings, req: &ResumeRequest<'_>, ui: &mut dyn Operator) -> Result<Ended, Stopped> {
    settings.refuse_legacy_journal()?;
    // A run to go on with is in a journal that exists: nothing is created for an unknown one.
    let journal = Journal::open_existing(&settings.state_dir)?
        .ok_or_else(|| journal::Error::NoSuchRun(req.run_id.to_string()))?;
    let record = journal.run(req.run_id)?;
    let _lock = journal::lock_query(&settings.state_dir, &record.query)?;
    // Read again under the lock: another process may have moved it meanwhile.
    let record = journal.run(req.run_id)?;
    state::check_resume(&record, req.resubmit_job, req.recreate_set)?;
    if req.accept_refused && (record.invalid_ids.is_empty() || record.state != state::RunState::MembersDone) {
        return Err(Error::Usage(format!(
            "--accept-refused: run {} is not waiting on IDs Alma refused (state {}, {} refused); nothing was done",
            record.run_id,
            record.state,
            record.invalid_ids.len()
        ))
        .into());
    }
    if record.state.is_finished() {
        ui.note(&format!(
            "run {} has already ended ({}); nothing to resume",
            record.run_id, record.state
        ));
        return Ok(Ended::Ran(Box::new(execute::result(&record, true, None))));
    }
    if req.take_over {
        journal.note(
            &record.run_id,
            record.state,
            &format!(
                "{} by {}: this installation {} drives the run whatever its set's stamp names",
                ledger::TAKE_OVER_NOTE,
                journal::operator(),
                ledger::take_over_where(&ledger::host(), &ledger::journal_path(&journal))
            ),
            &[],
        )?;
    }
    let client = AlmaClient::new(settings.client_config()?)?;
    tracing::info!(run_id = %record.run_id, state = %record.state, next = record.state.next_step(), "resuming");
    let options = ContinueOptions {
        resumed: true,
        resubmit_job: req.resubmit_job,
        recreate_set: req.recreate_set,
        accept_refused: req.accept_refused,
    };
    let result = execute::continue_run(
        &client,
        &journal,
        &settings.state_dir,
        &record.run_id,
        &options,
        &settings.poll_policy(),
    )
    .await;
    result
        .map(|r| Ended::Ran(Box::new(r)))
        .map_err(|e| stopped(&journal, &record.run_id, e))
}

/// `abandon`: under the query's lock, the run ended as the operator decided; its files written
/// again. Returns the record and the report, when the run's files are still there.
pub fn abandon(
    settings: &Settings,
    run_id: &str,
    reason: &str,
    checked_alma: bool,
) -> Result<(RunRecord, Option<PathBuf>), Error> {
    settings.refuse_legacy_journal()?;
    // A run to go on with is in a journal that exists: nothing is created for an unknown one.
    let journal =
        Journal::open_existing(&settings.state_dir)?.ok_or_else(|| journal::Error::NoSuchRun(run_id.to_string()))?;
    let record = journal.run(run_id)?;
    let _lock = journal::lock_query(&settings.state_dir, &record.query)?;
    let record = execute::abandon(&journal, run_id, reason, checked_alma)?;
    let cohort = journal.cohort(&record.run_id)?;
    let report = run_files::write_run_files(&settings.state_dir, &record, &cohort)?;
    Ok((record, report))
}

/// `withdraw`: under the query's lock, a saved plan that `apply` refuses from now on. Returns
/// who withdrew it.
pub fn withdraw(settings: &Settings, plan_id: &str, reason: &str) -> Result<String, Error> {
    settings.refuse_legacy_journal()?;
    let mut journal =
        Journal::open_existing(&settings.state_dir)?.ok_or_else(|| journal::Error::NoSuchPlan(plan_id.to_string()))?;
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().any(char::is_control) {
        return Err(Error::Usage("--reason: say why in one line".into()));
    }
    let plan = journal.plan(plan_id)?;
    let _lock = journal::lock_query(&settings.state_dir, &plan.query)?;
    let (who, _) = approval::person();
    journal.withdraw_plan(plan_id, &who, reason)?;
    Ok(who)
}

/// A run just journaled (by `run --execute` or `apply`), taken to its end; then the retention
/// rule, whatever the run's outcome.
async fn go_on(
    settings: &Settings,
    client: &AlmaClient,
    journal: &Journal,
    run_id: &str,
    options: &ContinueOptions,
) -> Result<Ended, Stopped> {
    let result = execute::continue_run(
        client,
        journal,
        &settings.state_dir,
        run_id,
        options,
        &settings.poll_policy(),
    )
    .await;
    // Old runs' files go; never fatal to the run.
    auto_prune(settings, journal);
    result
        .map(|r| Ended::Ran(Box::new(r)))
        .map_err(|e| stopped(journal, run_id, e))
}

/// A run that stopped: the run to `resume`, where it stopped, and why, as `--json` prints it
/// (the `error:` line goes to stderr as always).
fn stopped(journal: &Journal, run_id: &str, e: Error) -> Stopped {
    let record = journal.run(run_id).ok();
    let object = json!({
        "run_id": run_id,
        "query": record.as_ref().map(|r| r.query.clone()),
        "period": record.as_ref().and_then(|r| r.period.clone()),
        "status": "stopped",
        "state": record.as_ref().map(|r| r.state),
        "next": record.as_ref().map(|r| r.state.next_step()),
        "skipped": false,
        "exit": e.exit() as u8,
        "error": crate::error::chain(&e),
    });
    Stopped::with(e, object)
}

/// The retention rule after a run: the files of runs that ended more than `[retention] days` ago
/// are deleted. A failure is a warning: the run's own outcome stands.
fn auto_prune(settings: &Settings, journal: &Journal) {
    let outcome = crate::settings::retention_days()
        .map_err(Error::from)
        .and_then(|days| retention::prune(&settings.state_dir, journal, days, false));
    match outcome {
        Ok(p) if p.files > 0 => tracing::info!("{}", p.summary(&settings.state_dir)),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %crate::error::chain(&e), "old runs' files were not pruned"),
    }
}

/// [`super::plan`], telling the operator while the report is read.
async fn read_and_plan(
    settings: &Settings,
    client: Option<&AlmaClient>,
    spec: QuerySpec,
    ui: &mut dyn Operator,
    options: &PlanOptions,
) -> Result<Plan, Error> {
    ui.reading();
    // The report's pages, then the lookups: one operator, told in turn.
    let ui = std::sync::Mutex::new(ui);
    let tell = |f: &mut dyn FnMut(&mut dyn Operator)| {
        if let Ok(mut ui) = ui.lock() {
            f(&mut **ui)
        }
    };
    let planned = super::plan(
        client,
        spec,
        &settings.state_dir,
        &settings.paging_policy(),
        &mut |p| tell(&mut |ui| ui.page(p)),
        &mut |p| {
            tell(&mut |ui| {
                if let super::eligibility::LookupProgress::Start(_) = p {
                    ui.read();
                }
                ui.lookups(p)
            })
        },
        options,
    )
    .await;
    tell(&mut |ui| ui.read());
    planned
}
