//! `alma-cohort approve PLAN_ID` and `alma-cohort withdraw PLAN_ID`: a saved plan approved, or
//! taken back so that `apply` refuses it.

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::journal::{self, Journal};
use alma_cohort_core::pipeline::{approval, flow};
use alma_cohort_core::settings::Settings;

use crate::cli::{ApproveArgs, WithdrawArgs};
use crate::out::outln;

pub fn approve(settings: Settings, args: ApproveArgs) -> Result<Exit, Error> {
    settings.refuse_legacy_journal()?;
    let mut journal =
        Journal::open_existing(&settings.state_dir)?.ok_or_else(|| journal::Error::NoSuchPlan(args.plan_id.clone()))?;
    let saved = journal.plan(&args.plan_id)?;
    settings.service_allows(
        None,
        std::path::Path::new(&saved.record.query_file),
        approval::plan_query(&saved).ok().map(|s| s.approval).as_ref(),
    )?;
    let plan = approval::approve(
        &mut journal,
        &args.plan_id,
        args.note.as_deref(),
        args.as_name.as_deref(),
        match (&args.ssh_key, &args.signature) {
            (Some(key), _) => approval::Signing::SshKey(key),
            (None, Some(file)) => approval::Signing::File(file),
            (None, None) => approval::Signing::None,
        },
    )?;
    let spec = approval::plan_query(&plan)?;
    let state = approval::state(&plan, &spec.approval, chrono::Utc::now());
    let last = plan
        .approvals
        .last()
        .map(|a| match &a.key {
            Some(key) => format!("{} (signed with {key})", a.approver),
            None => a.approver.clone(),
        })
        .unwrap_or_default();
    outln!(
        "plan {} approved by {last}; it is {} ({} of {} approvals that count){}",
        plan.plan_id,
        state.as_str(),
        approval::counted(&plan, &spec.approval).len(),
        spec.approval.required,
        if state == approval::PlanState::Approved {
            format!("; apply: `alma-cohort apply {} --execute`", plan.plan_id)
        } else {
            String::new()
        }
    )?;
    Ok(Exit::Done)
}

pub fn withdraw(settings: Settings, args: WithdrawArgs) -> Result<Exit, Error> {
    let who = flow::withdraw(&settings, &args.plan_id, &args.reason)?;
    outln!(
        "plan {} withdrawn by {who}: {}; apply refuses it from now on",
        args.plan_id,
        args.reason.trim()
    )?;
    Ok(Exit::Done)
}
