//! `alma-cohort plans`: the saved plans and where each is (saved, approved, applied, …).

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::journal::Journal;
use alma_cohort_core::pipeline::approval;
use alma_cohort_core::settings::Settings;

use super::terminal::say_journal;
use crate::cli::{ListArgs, PlanShowArgs};
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

/// `plans show PLAN_ID`: the canonical text a reviewer reads and an approver signs, its digest,
/// who planned it, who approved it (principal and key), and who applied it.
pub fn show(settings: Settings, args: PlanShowArgs) -> Result<Exit, Error> {
    let journal = Journal::open_existing(&settings.state_dir)?
        .ok_or_else(|| alma_cohort_core::journal::Error::NoSuchPlan(args.plan_id.clone()))?;
    let plan = journal.plan(&args.plan_id)?;
    let Some(text) = plan.canonical.clone() else {
        return Err(Error::Refused {
            message: format!(
                "plan {} was saved by an earlier alma-cohort, before plans had a canonical text",
                plan.plan_id
            ),
            hint: "plan again with --save".into(),
        });
    };
    let digest = alma_cohort_core::pipeline::digest::digest(&text);
    let spec = approval::plan_query(&plan).ok();
    let judged: Vec<serde_json::Value> = match &spec {
        Some(spec) => approval::judged(&plan, &spec.approval)
            .into_iter()
            .map(|(a, who, why)| {
                serde_json::json!({
                    "approver": who,
                    "os_user": a.os_user,
                    "at": a.at,
                    "digest": a.digest,
                    "signed": a.signature.is_some(),
                    "key": a.key,
                    "note": a.note,
                    "counts": why.is_none(),
                    "why_not": why,
                })
            })
            .collect(),
        None => Vec::new(),
    };
    let applied_by = journal.find_run(&plan.plan_id)?.map(|r| r.run_by);
    if args.text {
        crate::out::write_all(text.as_bytes())?;
        return Ok(Exit::Done);
    }
    if args.json {
        outln!(
            "{}",
            serde_json::json!({
                "plan_id": plan.plan_id,
                "digest": digest,
                "canonical": text,
                "planned_by": plan.planned_by,
                "planned_at": plan.planned_at,
                "approval_kind": spec.as_ref().map(|s| s.approval.kind()),
                "approvals": judged,
                "applied_by": applied_by,
                "applied_at": plan.applied_at,
                "edited_since_saved": approval::edited_since_saved(&plan),
            })
        )?;
        return Ok(Exit::Done);
    }
    crate::out::write_all(text.as_bytes())?;
    outln!("digest: {digest}")?;
    outln!("planned by: {} at {}", plan.planned_by, plan.planned_at)?;
    if let Some(spec) = &spec {
        outln!("approvals: {}", spec.approval.kind())?;
    }
    for a in &judged {
        outln!(
            "approved by: {} at {}{}{}",
            a["approver"].as_str().unwrap_or("-"),
            a["at"].as_str().unwrap_or("-"),
            a["key"]
                .as_str()
                .map(|k| format!(", signed with {k}"))
                .unwrap_or_default(),
            match a["why_not"].as_str() {
                Some(why) => format!(" — does not count: {why}"),
                None => String::new(),
            }
        )?;
    }
    if judged.is_empty() {
        outln!("approved by: nobody yet")?;
    }
    match (&applied_by, &plan.applied_at) {
        (Some(who), Some(at)) => outln!("applied by: {who} at {at}")?,
        _ => outln!("applied by: not applied")?,
    }
    if let Some(what) = approval::edited_since_saved(&plan) {
        outln!("warning: the plan changed in the journal since it was saved: {what}")?;
    }
    Ok(Exit::Done)
}
