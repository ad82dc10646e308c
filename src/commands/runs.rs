//! `alma-cohort runs` and `alma-cohort show RUN_ID`: the journal read, nothing created.

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::journal::{self, Journal};
use alma_cohort_core::pipeline::run_files;
use alma_cohort_core::settings::Settings;

use super::terminal::{print_json, say_journal};
use crate::cli::{ListArgs, ShowArgs};
use crate::out::outln;

pub fn runs(settings: Settings, args: ListArgs) -> Result<Exit, Error> {
    let path = settings.state_dir.join("journal.sqlite");
    say_journal(&settings, &path);
    // Listing creates nothing: no journal is no runs.
    let runs = match Journal::open_existing(&settings.state_dir)? {
        Some(journal) => journal.runs()?,
        None => Vec::new(),
    };
    if args.json {
        print_json(&runs)?;
        return Ok(Exit::Done);
    }
    if runs.is_empty() {
        outln!("no runs in {}", path.display())?;
    } else {
        outln!(
            "{:<21}  {:<24} {:<14} {:<14} {:>13}  {:<24} job",
            "run",
            "query",
            "period",
            "state",
            "cohort",
            "set"
        )?;
    }
    for r in runs {
        outln!(
            "{:<21}  {:<24} {:<14} {:<14} {:>7} users  {:<24} {}",
            r.run_id,
            r.query,
            r.period.as_deref().unwrap_or("-"),
            r.state.as_str(),
            r.cohort_size,
            r.set_id.as_deref().unwrap_or("-"),
            r.job_status.as_deref().unwrap_or("-"),
        )?;
    }
    Ok(Exit::Done)
}

pub fn show(settings: Settings, args: ShowArgs) -> Result<Exit, Error> {
    say_journal(&settings, &settings.state_dir.join("journal.sqlite"));
    let journal =
        Journal::open_existing(&settings.state_dir)?.ok_or_else(|| journal::Error::NoSuchRun(args.run_id.clone()))?;
    let record = journal.run(&args.run_id)?;
    if args.json {
        print_json(&record)?;
    } else {
        outln!("{}", run_files::markdown(&record, &journal.cohort(&record.run_id)?))?;
        // A run that was a saved plan: who planned, approved (principal and key) and applied it.
        if let Some(plan) = journal.find_plan(&record.run_id)? {
            outln!(
                "Plan {}: planned by {} at {}",
                plan.plan_id,
                plan.planned_by,
                plan.planned_at
            )?;
            for a in &plan.approvals {
                outln!(
                    "  approved by {} at {}{}",
                    a.approver,
                    a.at,
                    a.key
                        .as_deref()
                        .map(|k| format!(", signed with {k}"))
                        .unwrap_or_default()
                )?;
            }
            outln!("  applied by {} at {}", record.run_by, record.started_at)?;
        }
    }
    Ok(Exit::Done)
}
