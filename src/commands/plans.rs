//! `alma-cohort plans`: the saved plans and where each is (saved, approved, applied, …).

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::journal::Journal;
use alma_cohort_core::pipeline::approval;
use alma_cohort_core::settings::Settings;

use super::terminal::say_journal;
use crate::cli::ListArgs;
use crate::out::outln;

pub fn plans(settings: Settings, args: ListArgs) -> Result<Exit, Error> {
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
        outln!("{}", serde_json::Value::Array(rows))?;
        return Ok(Exit::Done);
    }
    if rows.is_empty() {
        outln!("no saved plans in {}", path.display())?;
        return Ok(Exit::Done);
    }
    outln!(
        "{:<21}  {:<24} {:<14} {:<11} {:>7}  {:<12} approvals",
        "plan",
        "query",
        "period",
        "state",
        "cohort",
        "planned by"
    )?;
    for (p, row) in saved.iter().zip(&rows) {
        outln!(
            "{:<21}  {:<24} {:<14} {:<11} {:>7}  {:<12} {}",
            p.plan_id,
            p.query,
            p.period.as_deref().unwrap_or("-"),
            row["state"].as_str().unwrap_or("-"),
            p.record.cohort_size,
            p.planned_by,
            p.approvers().unwrap_or_else(|| "none".into())
        )?;
    }
    Ok(Exit::Done)
}
