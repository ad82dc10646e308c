//! Runs a parsed command line: turns flags into library settings and calls the library.

use std::net::SocketAddr;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::alma::{AlmaClient, Progress};
use crate::cli::{
    AbandonArgs, Cli, Command, ExtractArgs, ListArgs, PlanArgs, QueryArgs, ResumeArgs, RunArgs, ShowArgs, SimArgs,
    ValidateArgs,
};
use crate::error::{Error, Exit};
use crate::journal::{self, Journal};
use crate::output::Output;
use crate::pipeline;
use crate::pipeline::execute::{self, ContinueOptions, RunResult};
use crate::pipeline::state::{self, Admission};
use crate::query::{self, Params};
use crate::settings::Settings;
use crate::sim::{ApiKey, Fault, SimConfig};
use crate::transform;

pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Validate(args) => validate(Settings::from_args(&cli.global)?, args).await,
        Command::Plan(args) => plan(Settings::from_args(&cli.global)?, args, quiet).await,
        Command::Run(args) if !args.execute => plan(Settings::from_args(&cli.global)?, args.plan, quiet).await,
        Command::Run(args) => execute(Settings::from_args(&cli.global)?, args, quiet).await,
        Command::Resume(args) => resume(Settings::from_args(&cli.global)?, args).await,
        Command::Abandon(args) => abandon(Settings::from_args(&cli.global)?, args),
        Command::Runs(args) => runs(Settings::from_args(&cli.global)?, args),
        Command::Show(args) => show(Settings::from_args(&cli.global)?, args),
        Command::Demo(args) => crate::demo::run(args, quiet).await,
        Command::Doctor(args) => crate::doctor::run(Settings::from_args(&cli.global)?, args).await,
        Command::Completions(args) => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            clap_complete::generate(args.shell, &mut cmd, "alma-cohort", &mut std::io::stdout());
            Ok(Exit::Done)
        }
        Command::Man => {
            let cmd = <Cli as clap::CommandFactory>::command();
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|source| Error::Output {
                    path: "-".into(),
                    source,
                })?;
            Ok(Exit::Done)
        }
        Command::Extract(args) => extract(Settings::from_args(&cli.global)?, args, quiet).await,
        Command::Sim(args) => sim(args).await,
        Command::Prune(args) => prune(Settings::from_args(&cli.global)?, args),
        Command::Plans(args) => plans(Settings::from_args(&cli.global)?, args),
        Command::Approve(args) => approve(Settings::from_args(&cli.global)?, args),
        Command::Apply(args) => apply(Settings::from_args(&cli.global)?, args).await,
        Command::Withdraw(args) => withdraw(Settings::from_args(&cli.global)?, args),
    }
}

/// Loads and validates the query a command names.
pub fn load_query(args: &QueryArgs) -> Result<query::QuerySpec, Error> {
    Ok(query::load(&args.query, &parse_params(&args.params)?)?)
}

pub fn parse_params(raw: &[String]) -> Result<Params, Error> {
    let mut params = Params::new();
    for p in raw {
        let (k, v) = query::parse_param(p)?;
        if params.contains_key(&k) {
            return Err(Error::Usage(format!(
                "--param {k} is given twice; give each placeholder one value (nothing was done)"
            )));
        }
        params.insert(k, v);
    }
    Ok(params)
}

async fn validate(settings: Settings, args: ValidateArgs) -> Result<Exit, Error> {
    let spec = load_query(&args.query)?;
    pipeline::check_offline(&spec)?;
    // After the ok line: what `run --period` would refuse.
    let note = || {
        if let Some(problem) = spec.period_set_name_problem() {
            println!(
                "note: run --period refuses this query: {}",
                problem.lines().next().unwrap_or_default()
            );
        }
    };
    let report = match &spec.origin {
        query::Origin::File(file) => {
            // A list file is checked offline, whole: readable, and with the headings the query names.
            let (rows, notes) = pipeline::check_list_file(&spec, file)?;
            println!(
                "ok: {} is valid; its file {} has the headings it names ({rows} rows; {})",
                args.query.query.display(),
                file.path.display(),
                notes.join("; ")
            );
            note();
            return Ok(Exit::Done);
        }
        query::Origin::Report(r) => r,
    };
    // Offline, the query is checked as far as it can be, and the line says what kept Alma out —
    // a key file that is refused is that, not "no key".
    let why_offline = match (&settings.base_url, settings.api_key()) {
        (Some(_), Ok(_)) => None,
        (None, _) => Some("give --base-url (or --region) and an API key to check them".to_string()),
        (Some(_), Err(crate::settings::Error::NoKey)) => {
            Some("give an API key (ALMA_API_KEY or --api-key-file) to check them".to_string())
        }
        (Some(_), Err(e)) => Some(format!(
            "the API key was not read: {}",
            e.to_string().replace('\n', "; ")
        )),
    };
    if let Some(why) = why_offline {
        println!(
            "ok: {} is valid (its report's headings were not checked: {why})",
            args.query.query.display()
        );
        note();
        return Ok(Exit::Done);
    }
    let client = AlmaClient::new(settings.client_config()?)?;
    let headings = client.report_headings(&pipeline::report_query(report)).await?;
    let refs: Vec<&str> = headings.iter().map(String::as_str).collect();
    pipeline::check_report_headings(&spec, &refs)?;
    println!(
        "ok: {} is valid; its report has the headings it names ({} headings: {})",
        args.query.query.display(),
        headings.len(),
        headings.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
    );
    note();
    Ok(Exit::Done)
}

async fn plan(settings: Settings, args: PlanArgs, quiet: bool) -> Result<Exit, Error> {
    let spec = load_query(&args.query)?;
    pipeline::check_offline(&spec)?;
    let period = pipeline::run_period(&spec, args.period.as_deref())?;
    // A saved plan is one intent: refused where a run of it would be (an unfinished run, a done
    // period). The cooldown counts runs, not saved plans: two plans over the same users are
    // stopped at the second one's job, by the cooldown read again there.
    let (planning, mut journal) = if args.save {
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
    let client = match (
        spec.report(),
        args.save && settings.base_url.is_some() && settings.api_key().is_ok(),
    ) {
        (Some(_), _) | (None, true) => Some(AlmaClient::new(settings.client_config()?)?),
        (None, false) => None,
    };
    let params = parse_params(&args.query.params)?.into_iter().collect::<Vec<_>>();
    let approval = spec.approval.clone();
    let options = pipeline::PlanOptions {
        period: period.clone(),
        force: false,
    };
    let plan = plan_with_progress(&settings, client.as_ref(), spec, quiet, &options).await?;
    let mut out = serde_json::to_value(plan.to_json()).map_err(|e| Error::Usage(e.to_string()))?;
    let saved = match journal.as_mut() {
        // A plan a guard refuses is never saved: it could never be applied.
        Some(journal) if plan.refusal(true).is_none() => {
            let alma = match (&client, &settings.base_url, settings.api_key()) {
                (Some(_), Some(base), Ok(key)) => Some(pipeline::approval::alma_binding(base, &key, &plan.run_id)),
                _ => None,
            };
            let superseded = execute::save_plan(
                journal,
                &settings.state_dir,
                &plan,
                &params,
                period.as_deref(),
                alma.as_deref(),
            )?;
            out["plan_id"] = plan.run_id.clone().into();
            out["approval"] = approval.describe().into();
            out["superseded"] = superseded.clone().into();
            Some(superseded)
        }
        _ => None,
    };
    drop(planning);
    if args.json {
        println!("{out}");
    } else {
        println!("{}", plan.summary());
        if let Some(superseded) = &saved {
            let id = &plan.run_id;
            println!(
                "\nsaved plan {id}: {} users, frozen; {} (the query's [approval]){}",
                plan.cohort.ids.len(),
                approval.describe(),
                match superseded.len() {
                    0 => String::new(),
                    _ => format!("; it supersedes plan {}", superseded.join(", ")),
                }
            );
            println!(
                "review: {}",
                settings.state_dir.join("runs").join(id).join("report.html").display()
            );
            if approval.required > 0 {
                println!("approve: alma-cohort approve {id}");
            }
            println!("apply:   alma-cohort apply {id} --execute");
        }
    }
    if let Some(refusal) = plan.refusal_error(args.save) {
        return Err(refusal);
    }
    Ok(Exit::Done)
}

/// `run --execute`: plan, confirm, then set → members → job → follow, journaled.
pub async fn execute(settings: Settings, args: RunArgs, quiet: bool) -> Result<Exit, Error> {
    let json = args.plan.json;
    let spec = load_query(&args.plan.query)?;
    pipeline::check_offline(&spec)?;
    // Everything that can be refused without Alma or the journal is, before either is touched.
    let period = pipeline::run_period(&spec, args.plan.period.as_deref())?;
    if args.plan.save {
        return Err(Error::Usage(
            "--save and --execute: a saved plan is applied with `alma-cohort apply PLAN_ID --execute`; save it with `alma-cohort plan QUERY --save`".into(),
        ));
    }
    if spec.approval.required > 0 {
        if json {
            println!(
                "{}",
                serde_json::json!({"query": spec.name, "period": period, "status": "refused", "skipped": false, "refused": "the query requires an approved saved plan"})
            );
        }
        let q = args.plan.query.query.display();
        let p = period.as_deref().map(|p| format!(" --period {p}")).unwrap_or_default();
        return Err(Error::Refused {
            message: format!(
                "query {:?} requires {} before a run ([approval] required = {}); run --execute would reset a cohort nobody reviewed; nothing was done",
                spec.name,
                spec.approval.describe(),
                spec.approval.required
            ),
            hint: format!(
                "`alma-cohort plan {q}{p} --save`, then someone approves it (`alma-cohort approve PLAN_ID`), then `alma-cohort apply PLAN_ID --execute`"
            ),
        });
    }
    settings.refuse_legacy_journal()?;
    let _lock = journal::lock_query(&settings.state_dir, &spec.name)?;
    // From the plan until the cohort is journaled: a run of another query planned meanwhile
    // waits, so that its cooldown sees this cohort.
    let planning = journal::lock_planning(&settings.state_dir)?;
    let mut journal = Journal::open(&settings.state_dir)?;
    let refused_json = |e: &Error| {
        // Scripts reading --json learn why nothing ran (exit 4 also means "already done"), and
        // the unfinished run to resume when that is why.
        if json {
            let unfinished = journal.unfinished(&spec.name).ok().flatten().map(|r| r.run_id);
            let refused = serde_json::json!({
                "query": spec.name,
                "period": period,
                "run_id": unfinished,
                "status": "refused",
                "skipped": false,
                "exit": e.exit() as u8,
                "refused": e.to_string(),
            });
            println!("{refused}");
        }
    };
    let admission = match state::admit(&journal, &spec.name, period.as_deref(), args.force) {
        Ok(a) => a,
        Err(e) => {
            refused_json(&e);
            return Err(e);
        }
    };
    if let Admission::Skip { previous } = admission {
        let period = period.as_deref().unwrap_or_default();
        let skipped = RunResult::skipped(&spec.name, period, &previous);
        if json {
            println!(
                "{}",
                serde_json::to_string(&skipped).map_err(|e| Error::Usage(e.to_string()))?
            );
        }
        eprintln!(
            "skipped: query {:?} already completed for period {period:?} in run {previous}\nhint: pass --force to run it again for this period",
            spec.name
        );
        return Ok(Exit::Refused);
    }
    let params = parse_params(&args.plan.query.params)?.into_iter().collect::<Vec<_>>();
    let client = AlmaClient::new(settings.client_config()?)?;
    let options = pipeline::PlanOptions {
        period: period.clone(),
        force: args.force,
    };
    let plan = match plan_with_progress(&settings, Some(&client), spec.clone(), quiet, &options).await {
        Ok(plan) => plan,
        Err(e) => {
            // Nothing was journaled: the JSON says why (Alma unreachable, a refusal, a bad file).
            refused_json(&e);
            return Err(e);
        }
    };
    // With --json, stdout carries only the final JSON object.
    // The plan's last line says nothing was changed: true now, not for long.
    let summary = plan.summary().replace(
        "Nothing was changed in Alma.",
        "Nothing was changed in Alma yet: the run starts once confirmed.",
    );
    if json {
        eprintln!("{summary}");
    } else {
        println!("{summary}");
    }
    if let Some(refusal) = plan.refusal_error(true) {
        return Err(refusal);
    }
    confirm(&plan, args.yes)?;
    let record = execute::start_run(&mut journal, &plan, &params, period.as_deref(), args.force)?;
    drop(planning);
    tracing::info!(run_id = %record.run_id, "run started");
    go_on(&settings, &client, &journal, &record.run_id, json).await
}

/// A run just journaled (by `run --execute` or `apply`), taken to its end; then the retention
/// rule, whatever the run's outcome, and the result (with `--json` also when it stopped).
async fn go_on(
    settings: &Settings,
    client: &AlmaClient,
    journal: &Journal,
    run_id: &str,
    json: bool,
) -> Result<Exit, Error> {
    let result = execute::continue_run(
        client,
        journal,
        &settings.state_dir,
        run_id,
        &ContinueOptions::default(),
        &settings.poll_policy(),
    )
    .await;
    // Old runs' files go; never fatal to the run.
    auto_prune(settings, journal);
    let result = result.inspect_err(|e| stopped_json(journal, run_id, e, json))?;
    print_result(&result, json)
}

/// With `--json`, a run that stopped still ends stdout with one JSON object: the run to `resume`,
/// where it stopped, and why (the `error:` line goes to stderr as always).
fn stopped_json(journal: &Journal, run_id: &str, e: &Error, json: bool) {
    if !json {
        return;
    }
    let record = journal.run(run_id).ok();
    let stopped = serde_json::json!({
        "run_id": run_id,
        "query": record.as_ref().map(|r| r.query.clone()),
        "period": record.as_ref().and_then(|r| r.period.clone()),
        "status": "stopped",
        "state": record.as_ref().map(|r| r.state),
        "next": record.as_ref().map(|r| r.state.next_step()),
        "skipped": false,
        "exit": e.exit() as u8,
        "error": crate::error::chain(e),
    });
    println!("{stopped}");
}

/// The retention rule after a run: the files of runs that ended more than `[retention] days` ago
/// are deleted. A failure is a warning: the run's own outcome stands.
fn auto_prune(settings: &Settings, journal: &Journal) {
    let outcome = crate::settings::retention_days()
        .map_err(Error::from)
        .and_then(|days| pipeline::retention::prune(&settings.state_dir, journal, days, false));
    match outcome {
        Ok(p) if p.files > 0 => tracing::info!("{}", p.summary(&settings.state_dir)),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %crate::error::chain(&e), "old runs' files were not pruned"),
    }
}

fn prune(settings: Settings, args: crate::cli::PruneArgs) -> Result<Exit, Error> {
    let days = match args.older_than {
        Some(d) => d,
        None => crate::settings::retention_days()?,
    };
    // Read-only on a state dir that does not exist: nothing to prune, nothing created.
    let pruned = if let Some(journal) = Journal::open_existing(&settings.state_dir)? {
        pipeline::retention::prune(&settings.state_dir, &journal, days, args.dry_run)?
    } else {
        pipeline::retention::Pruned {
            older_than_days: days,
            dry_run: args.dry_run,
            ..Default::default()
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&pruned).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        println!("{}", pruned.summary(&settings.state_dir));
    }
    Ok(Exit::Done)
}

fn plans(settings: Settings, args: ListArgs) -> Result<Exit, Error> {
    use pipeline::approval;
    let path = settings.state_dir.join("journal.sqlite");
    say_journal(&settings, &path);
    // Listing creates nothing: no journal is no plans.
    let saved = match Journal::open_existing(&settings.state_dir)? {
        Some(journal) => journal.plans()?,
        None => Vec::new(),
    };
    let at = chrono::Utc::now();
    let rows: Vec<serde_json::Value> = saved
        .iter()
        .map(|p| {
            let spec = approval::plan_query(p).ok();
            let state = spec
                .as_ref()
                .map(|s| approval::state(p, &s.approval, at).as_str())
                .unwrap_or("unreadable query");
            serde_json::json!({
                "plan_id": p.plan_id,
                "query": p.query,
                "period": p.period,
                "state": state,
                "cohort_size": p.record.cohort_size,
                "planned_by": p.planned_by,
                "planned_at": p.planned_at,
                "approvals": p.approvals,
                "requires": spec.as_ref().map(|s| s.approval.describe()),
                "applied_at": p.applied_at,
                "superseded_by": p.superseded_by,
            })
        })
        .collect();
    if args.json {
        println!("{}", serde_json::Value::Array(rows));
        return Ok(Exit::Done);
    }
    if rows.is_empty() {
        println!("no saved plans in {}", path.display());
        return Ok(Exit::Done);
    }
    println!(
        "{:<21}  {:<24} {:<14} {:<11} {:>7}  {:<12} approvals",
        "plan", "query", "period", "state", "cohort", "planned by"
    );
    for (p, row) in saved.iter().zip(&rows) {
        println!(
            "{:<21}  {:<24} {:<14} {:<11} {:>7}  {:<12} {}",
            p.plan_id,
            p.query,
            p.period.as_deref().unwrap_or("-"),
            row["state"].as_str().unwrap_or("-"),
            p.record.cohort_size,
            p.planned_by,
            match p.approvals.len() {
                0 => "none".to_string(),
                _ => p
                    .approvals
                    .iter()
                    .map(|a| a.approver.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        );
    }
    Ok(Exit::Done)
}

fn approve(settings: Settings, args: crate::cli::ApproveArgs) -> Result<Exit, Error> {
    settings.refuse_legacy_journal()?;
    let mut journal = Journal::open_existing(&settings.state_dir)?
        .ok_or_else(|| crate::journal::Error::NoSuchPlan(args.plan_id.clone()))?;
    let plan = pipeline::approval::approve(
        &mut journal,
        &args.plan_id,
        args.note.as_deref(),
        args.as_name.as_deref(),
    )?;
    let spec = pipeline::approval::plan_query(&plan)?;
    let state = pipeline::approval::state(&plan, &spec.approval, chrono::Utc::now());
    let last = plan.approvals.last().map(|a| a.approver.as_str()).unwrap_or_default();
    println!(
        "plan {} approved by {last}; it is {} ({} of {} approvals that count){}",
        plan.plan_id,
        state.as_str(),
        pipeline::approval::counted(&plan, &spec.approval).len(),
        spec.approval.required,
        if state == pipeline::approval::PlanState::Approved {
            format!("; apply: alma-cohort apply {} --execute", plan.plan_id)
        } else {
            String::new()
        }
    );
    Ok(Exit::Done)
}

fn withdraw(settings: Settings, args: crate::cli::WithdrawArgs) -> Result<Exit, Error> {
    settings.refuse_legacy_journal()?;
    let mut journal = Journal::open_existing(&settings.state_dir)?
        .ok_or_else(|| crate::journal::Error::NoSuchPlan(args.plan_id.clone()))?;
    let reason = args.reason.trim();
    if reason.is_empty() || reason.chars().any(char::is_control) {
        return Err(Error::Usage("--reason: say why in one line".into()));
    }
    let plan = journal.plan(&args.plan_id)?;
    let _lock = journal::lock_query(&settings.state_dir, &plan.query)?;
    let (who, _) = pipeline::approval::person();
    journal.withdraw_plan(&args.plan_id, &who, reason)?;
    println!(
        "plan {} withdrawn by {who}: {reason}; apply refuses it from now on",
        args.plan_id
    );
    Ok(Exit::Done)
}

/// `apply PLAN_ID` (or `--query Q --period P`): the saved plan's run, exactly its frozen cohort,
/// through the same admission, state machine and output as `run --execute`.
async fn apply(settings: Settings, args: crate::cli::ApplyArgs) -> Result<Exit, Error> {
    let json = args.json;
    let (plan_id, query, period) = (args.plan_id.clone(), args.query.clone(), args.period.clone());
    let mut started = false;
    let outcome = apply_plan(settings, args, &mut started).await;
    outcome.inspect_err(|e| {
        // Scripts reading --json learn why nothing was applied (a started run printed its own).
        if json && !started {
            println!(
                "{}",
                serde_json::json!({
                    "plan_id": plan_id,
                    "query": query,
                    "period": period,
                    "status": "refused",
                    "skipped": false,
                    "exit": e.exit() as u8,
                    "refused": crate::error::chain(e),
                })
            );
        }
    })
}

async fn apply_plan(settings: Settings, args: crate::cli::ApplyArgs, started: &mut bool) -> Result<Exit, Error> {
    use pipeline::approval;
    let json = args.json;
    settings.refuse_legacy_journal()?;
    // No journal: a wrong state dir (the timer's account, ALMA_COHORT_STATE), never "nothing
    // approved yet" — a timer pointed at the wrong journal would never apply anything.
    let Some(journal) = Journal::open_existing(&settings.state_dir)? else {
        return Err(match &args.plan_id {
            Some(id) => crate::journal::Error::NoSuchPlan(id.clone()).into(),
            None => Error::Usage(format!(
                "no journal in {}, so no saved plan: is this the state dir the plans were saved in (--state-dir, ALMA_COHORT_STATE)?",
                settings.state_dir.display()
            )),
        });
    };
    let plan_id = match (&args.plan_id, &args.query, &args.period) {
        (Some(id), _, _) => journal.plan(id)?.plan_id,
        (None, Some(query), Some(period)) => match approval::timer_plan(&journal, query, period)? {
            (_, _, Some(plan)) => plan.plan_id,
            (name, period, None) => {
                return skip_apply(
                    &args,
                    &format!("no approved, unexpired, unapplied plan of query {name:?} for period {period:?}"),
                );
            }
        },
        _ => return Err(Error::Usage("give a PLAN_ID, or --query and --period".into())),
    };
    let query = journal.plan(&plan_id)?.query;
    let _lock = journal::lock_query(&settings.state_dir, &query)?;
    let alma_now = match (&settings.base_url, settings.api_key()) {
        (Some(base), Ok(key)) => Some(approval::alma_binding(base, &key, &plan_id)),
        _ => None,
    };
    // Read under the lock: another apply may have taken it meanwhile.
    let (plan, cohort) = match approval::ready(&journal, &plan_id, alma_now.as_deref())? {
        approval::Ready::Go { plan, cohort } => (plan, cohort),
        approval::Ready::Skip { why } => return skip_apply(&args, &why),
    };
    // With --json, stdout carries only the final JSON object.
    let say = |line: String| if json { eprintln!("{line}") } else { println!("{line}") };
    say(format!(
        "plan {} of query {:?}{}: {} users, planned by {} at {}, approved by {}",
        plan.plan_id,
        plan.query,
        plan.period
            .as_deref()
            .map(|p| format!(" for period {p:?}"))
            .unwrap_or_default(),
        cohort.len(),
        plan.planned_by,
        plan.planned_at,
        match plan.approvals.len() {
            0 => "nobody (none required)".to_string(),
            _ => plan
                .approvals
                .iter()
                .map(|a| a.approver.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }
    ));
    if !args.execute {
        say("(nothing was done: add --execute to apply it)".into());
        return Ok(Exit::Done);
    }
    confirm_count(cohort.len(), args.yes)?;
    // Checked again after the question: a prompt left open may outlast the plan.
    let (plan, cohort) = match approval::ready(&journal, &plan_id, alma_now.as_deref())? {
        approval::Ready::Go { plan, cohort } => (plan, cohort),
        approval::Ready::Skip { why } => return skip_apply(&args, &why),
    };
    let client = AlmaClient::new(settings.client_config()?)?;
    let mut journal = journal;
    let record = approval::run_of(&plan, &journal);
    journal.apply_plan(&plan.plan_id, &record, &cohort)?;
    *started = true;
    tracing::info!(run_id = %record.run_id, "saved plan applied; run started");
    go_on(&settings, &client, &journal, &record.run_id, json).await
}

/// Nothing to apply (the timer fires again later): exit 4, `"skipped": true` with `--json`.
fn skip_apply(args: &crate::cli::ApplyArgs, why: &str) -> Result<Exit, Error> {
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "query": args.query,
                "period": args.period,
                "status": "skipped",
                "skipped": true,
                "why": why,
            })
        );
    }
    eprintln!("skipped: {why}; nothing was done");
    Ok(Exit::Refused)
}

fn confirm(plan: &pipeline::Plan, yes: bool) -> Result<(), Error> {
    confirm_count(plan.cohort.ids.len(), yes)
}

/// Asks before a run resets `users` passwords (`--yes` skips the question; without a terminal it
/// is required).
fn confirm_count(users: usize, yes: bool) -> Result<(), Error> {
    use std::io::{BufRead, IsTerminal};
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "stdin is not a terminal, so nobody can confirm this run; pass --yes to run without asking (nothing was changed in Alma)".into(),
        ));
    }
    eprint!(
        "Reset the passwords of {users} users and have Alma email each of them a temporary password? Type yes to go on: "
    );
    let mut answer = String::new();
    let _ = std::io::stdin().lock().read_line(&mut answer);
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(Error::NotConfirmed("not confirmed; nothing was changed in Alma".into()))
    }
}

async fn resume(settings: Settings, args: ResumeArgs) -> Result<Exit, Error> {
    settings.refuse_legacy_journal()?;
    // A run to go on with is in a journal that exists: nothing is created for an unknown one.
    let journal = Journal::open_existing(&settings.state_dir)?
        .ok_or_else(|| crate::journal::Error::NoSuchRun(args.run_id.clone()))?;
    let record = journal.run(&args.run_id)?;
    let _lock = journal::lock_query(&settings.state_dir, &record.query)?;
    // Read again under the lock: another process may have moved it meanwhile.
    let record = journal.run(&args.run_id)?;
    state::check_resume(&record, args.resubmit_job, args.recreate_set)?;
    if args.accept_refused && (record.invalid_ids.is_empty() || record.state != state::RunState::MembersDone) {
        return Err(Error::Usage(format!(
            "--accept-refused: run {} is not waiting on IDs Alma refused (state {}, {} refused); nothing was done",
            record.run_id,
            record.state,
            record.invalid_ids.len()
        )));
    }
    let result = if !record.state.is_finished() {
        let client = AlmaClient::new(settings.client_config()?)?;
        tracing::info!(run_id = %record.run_id, state = %record.state, next = record.state.next_step(), "resuming");
        execute::continue_run(
            &client,
            &journal,
            &settings.state_dir,
            &record.run_id,
            &ContinueOptions {
                resumed: true,
                resubmit_job: args.resubmit_job,
                recreate_set: args.recreate_set,
                accept_refused: args.accept_refused,
            },
            &settings.poll_policy(),
        )
        .await
        .inspect_err(|e| stopped_json(&journal, &record.run_id, e, args.json))?
    } else {
        eprintln!(
            "run {} has already ended ({}); nothing to resume",
            record.run_id, record.state
        );
        execute::result(&record, true, None)
    };
    print_result(&result, args.json)
}

fn abandon(settings: Settings, args: AbandonArgs) -> Result<Exit, Error> {
    settings.refuse_legacy_journal()?;
    // A run to go on with is in a journal that exists: nothing is created for an unknown one.
    let journal = Journal::open_existing(&settings.state_dir)?
        .ok_or_else(|| crate::journal::Error::NoSuchRun(args.run_id.clone()))?;
    let record = journal.run(&args.run_id)?;
    let _lock = journal::lock_query(&settings.state_dir, &record.query)?;
    let record = execute::abandon(&journal, &args.run_id, &args.reason, args.i_checked_alma)?;
    let cohort = journal.cohort(&record.run_id)?;
    let report = pipeline::report::write_run_files(&settings.state_dir, &record, &cohort)?;
    println!(
        "run {} abandoned ({}); recorded in the journal. Report: {}",
        record.run_id,
        record.events.last().map(|e| e.detail.as_str()).unwrap_or_default(),
        report.map_or("none (the run's files were pruned)".to_string(), |r| r
            .display()
            .to_string())
    );
    Ok(Exit::Done)
}

/// Prints a run's result: its summary (first line: the outcome; then warnings, alerts and
/// counters) or one JSON object; the exit code it means.
pub fn print_result(result: &RunResult, json: bool) -> Result<Exit, Error> {
    if json {
        println!(
            "{}",
            serde_json::to_string(result).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        let protected = match result.protected_ids.len() {
            0 => String::new(),
            n => format!(", {n} protected since the plan and taken out"),
        };
        println!(
            "run {} {}: set {} ({}), {} members added, {} not in Alma{protected}; job {} instance {} ended {}",
            result.run_id,
            result.outcome(),
            result.set_name.as_deref().unwrap_or("-"),
            result.set_id.as_deref().unwrap_or("-"),
            result.members_added.unwrap_or(0),
            result.invalid_ids.len(),
            result.job_id.as_deref().unwrap_or("-"),
            result.job_instance_id.as_deref().unwrap_or("-"),
            result.job_status.as_deref().unwrap_or("-"),
        );
        for w in &result.warnings {
            println!("  warning: {w}");
        }
        for (code, desc) in &result.alerts {
            println!("  alert {code}: {desc}");
        }
        for (code, desc, value) in &result.counters {
            println!("  {}: {value}", if desc.is_empty() { code } else { desc });
        }
        if let Some(r) = &result.report_file {
            println!("report: {r}");
        }
    }
    Ok(if result.job_failed() {
        Exit::JobFailed
    } else {
        Exit::Done
    })
}

/// Says which journal a read-only command reads (on stderr: stdout carries data), and a journal
/// an earlier version left in the working folder.
fn say_journal(settings: &Settings, path: &std::path::Path) {
    eprintln!("journal: {}", path.display());
    if let Some(legacy) = settings.legacy_journal() {
        eprintln!(
            "note: an earlier alma-cohort left a journal in {}; pass --state-dir {} to read it",
            legacy.join("journal.sqlite").display(),
            legacy.display()
        );
    }
}

fn runs(settings: Settings, args: ListArgs) -> Result<Exit, Error> {
    let path = settings.state_dir.join("journal.sqlite");
    say_journal(&settings, &path);
    // Listing creates nothing: no journal is no runs.
    let runs = match Journal::open_existing(&settings.state_dir)? {
        Some(journal) => journal.runs()?,
        None => Vec::new(),
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&runs).map_err(|e| Error::Usage(e.to_string()))?
        );
        return Ok(Exit::Done);
    }
    if runs.is_empty() {
        println!("no runs in {}", path.display());
    } else {
        println!(
            "{:<21}  {:<24} {:<14} {:<14} {:>13}  {:<24} job",
            "run", "query", "period", "state", "cohort", "set"
        );
    }
    for r in runs {
        println!(
            "{:<21}  {:<24} {:<14} {:<14} {:>7} users  {:<24} {}",
            r.run_id,
            r.query,
            r.period.as_deref().unwrap_or("-"),
            r.state.as_str(),
            r.cohort_size,
            r.set_id.as_deref().unwrap_or("-"),
            r.job_status.as_deref().unwrap_or("-"),
        );
    }
    Ok(Exit::Done)
}

fn show(settings: Settings, args: ShowArgs) -> Result<Exit, Error> {
    say_journal(&settings, &settings.state_dir.join("journal.sqlite"));
    let journal = Journal::open_existing(&settings.state_dir)?
        .ok_or_else(|| crate::journal::Error::NoSuchRun(args.run_id.clone()))?;
    let record = journal.run(&args.run_id)?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&record).map_err(|e| Error::Usage(e.to_string()))?
        );
    } else {
        println!(
            "{}",
            pipeline::report::markdown(&record, &journal.cohort(&record.run_id)?)
        );
    }
    Ok(Exit::Done)
}

/// `pipeline::plan` with a progress bar while the report is read.
async fn plan_with_progress(
    settings: &Settings,
    client: Option<&AlmaClient>,
    spec: query::QuerySpec,
    quiet: bool,
    options: &pipeline::PlanOptions,
) -> Result<pipeline::Plan, Error> {
    let bar = progress_bar(quiet);
    let mut on_page = page_progress(&bar);
    let planned = pipeline::plan(
        client,
        spec,
        &settings.state_dir,
        &settings.paging_policy(),
        &mut on_page,
        options,
    )
    .await;
    bar.finish_and_clear();
    planned
}

fn page_progress(bar: &ProgressBar) -> impl FnMut(Progress) + Send + use<> {
    let bar = bar.clone();
    move |p: Progress| {
        let rate = p.rows as f64 / p.elapsed.as_secs_f64().max(1e-3);
        bar.set_message(format!("page {} · {} rows · {rate:.0} rows/s", p.pages, p.rows));
    }
}

async fn extract(settings: Settings, args: ExtractArgs, quiet: bool) -> Result<Exit, Error> {
    let spec = load_query(&args.query)?;
    let output = Output::parse(&args.out)?;
    let client = match spec.report() {
        Some(_) => Some(AlmaClient::new(settings.client_config()?)?),
        None => None,
    };
    let bar = progress_bar(quiet);
    let mut on_page = page_progress(&bar);
    let started = std::time::Instant::now();
    let fetched = pipeline::extract(client.as_ref(), &spec, &settings.paging_policy(), &mut on_page).await;
    bar.finish_and_clear();
    let report = fetched?.report;
    let (rows, pages, requests, restarts) = (report.rows(), report.pages, report.requests, report.restarts);
    let mut table = transform::report_into_table(report)?;
    let target = output.write(&mut table)?;
    if !quiet {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "extracted {rows} rows × {} columns ({:.1} MB in memory) from {pages} pages in {secs:.1} s ({:.0} rows/s, {requests} requests{}) → {target}",
            table.width(),
            table.memory_bytes() as f64 / 1e6,
            rows as f64 / secs.max(1e-3),
            if restarts > 0 {
                format!(", {restarts} restarts")
            } else {
                String::new()
            },
        );
    }
    Ok(Exit::Done)
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    // Hidden by indicatif itself when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").unwrap_or(ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

async fn sim(args: SimArgs) -> Result<Exit, Error> {
    let addr = SocketAddr::new(args.listen, args.port);
    let config = sim_config(&args)?;
    let users = config.users;
    let handle = config.serve(addr).await.map_err(Error::SimStart)?;
    let job = handle.job_id(crate::sim::UPDATE_NOTIFY_USERS).unwrap_or_default();
    tracing::info!(base_url = %handle.base_url(), users, update_notify_users = %job, "simulator listening; Ctrl-C stops it");
    eprintln!(
        "alma-cohort simulator on {} ({users} users; Update/Notify Users is job {job})",
        handle.base_url()
    );
    eprintln!(
        "inspect: {0}/_sim/state  {0}/_sim/outbox  {0}/_sim/requests",
        handle.base_url()
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C; serving until killed");
        handle.wait().await;
        return Ok(Exit::Done);
    }
    tracing::info!("interrupted; stopping the simulator");
    handle.shutdown().await;
    Ok(Exit::Done)
}

/// The simulator's settings from `alma-cohort sim` flags.
pub fn sim_config(args: &SimArgs) -> Result<SimConfig, Error> {
    let mut config = SimConfig::default()
        .users(args.users)
        .seed(args.seed)
        .first_page_latency(Duration::from_millis(args.first_page_latency_ms))
        .page_latency(Duration::from_millis(args.page_latency_ms))
        .still_loading(args.still_loading)
        .job_outcome(args.job_outcome.parse().map_err(Error::Usage)?)
        .rate_limit(args.rate_limit)
        .daily_quota(args.daily_quota);
    if !(args.job_duration_secs.is_finite() && args.job_duration_secs >= 0.0) {
        return Err(Error::Usage(format!(
            "--job-duration-secs must be 0 or more, got {}",
            args.job_duration_secs
        )));
    }
    config = config.job_duration(Duration::from_secs_f64(args.job_duration_secs));
    if let Some(n) = args.premature_finish_after {
        config = config.premature_finish_after(n);
    }
    for spec in &args.reports {
        let (path, file) = spec
            .split_once('=')
            .ok_or_else(|| Error::Usage(format!("--report {spec:?}: expected PATH=FILE.csv")))?;
        config = config.csv_report(path, file);
    }
    for spec in &args.keys {
        // The key itself is never echoed back in an error.
        let key: ApiKey = spec.parse().map_err(|e| Error::Usage(format!("--key: {e}")))?;
        config = config.key(key);
    }
    for spec in &args.faults {
        let fault: Fault = spec.parse().map_err(|e| Error::Usage(format!("--fault: {e}")))?;
        config = config.fault(fault);
    }
    if args.manual_clock {
        config = config.manual_clock();
    }
    config = config
        .timezone(crate::sim::parse_offset(&args.timezone).map_err(|e| Error::Usage(format!("--timezone: {e}")))?);
    if !(args.instance_listing_lag_secs.is_finite() && args.instance_listing_lag_secs >= 0.0) {
        return Err(Error::Usage(format!(
            "--instance-listing-lag-secs must be 0 or more, got {}",
            args.instance_listing_lag_secs
        )));
    }
    config = config
        .instance_listing_lag(Duration::from_secs_f64(args.instance_listing_lag_secs))
        .past_instances(args.past_instances);
    for &quirk in &args.quirks {
        config = config.quirk(quirk);
    }
    if args.compact {
        config = config.compact();
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn sim_flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "alma-cohort",
            "sim",
            "--port",
            "0",
            "--users",
            "10",
            "--fault",
            "5xx@analytics-next,count=2",
            "--key",
            "k=analytics:r",
            "--job-outcome",
            "failed",
            "--manual-clock",
        ])
        .unwrap();
        let Command::Sim(args) = cli.command else { panic!("sim") };
        let c = sim_config(&args).unwrap();
        assert_eq!(
            (c.users, c.faults.len(), c.keys.len(), c.manual_clock),
            (10, 1, 4, true)
        );
        let bad = Cli::try_parse_from(["alma-cohort", "sim", "--fault", "boom@analytics"]).unwrap();
        let Command::Sim(args) = bad.command else { panic!("sim") };
        assert!(sim_config(&args).unwrap_err().to_string().contains("unknown kind"));
    }
}
