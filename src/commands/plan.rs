//! `alma-cohort plan QUERY` (and `run` without `--execute`): what a run would do, changing
//! nothing in Alma; with `--save`, the plan frozen for `approve` and `apply`.

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::pipeline::flow::{self, PlanRequest};
use alma_cohort_core::settings::Settings;

use super::terminal::Terminal;
use crate::cli::PlanArgs;
use crate::out::outln;

pub async fn plan(settings: Settings, args: PlanArgs, quiet: bool) -> Result<Exit, Error> {
    let req = PlanRequest {
        query: &args.query.query,
        params: &args.query.params,
        period: args.period.as_deref(),
        save: args.save,
    };
    let mut terminal = Terminal::new(args.json, quiet, false);
    let planned = match flow::plan(&settings, &req, &mut terminal).await {
        Ok(planned) => planned,
        Err(e) => {
            // `--json` ends stdout with one object, also when the plan stops before it has one.
            if args.json {
                outln!("{}", super::terminal::error_object(&e))?;
            }
            return Err(e);
        }
    };
    let plan = &planned.plan;
    if args.json {
        outln!("{}", planned.object)?;
    } else {
        outln!("{}", plan.summary())?;
        if planned.saved.is_none() && planned.approval.required > 0 {
            outln!(
                "Approval {}; approvals: {} (`plan --save`, then approve and apply)",
                planned.approval.describe(),
                planned.approval.kind()
            )?;
        }
        if let Some(superseded) = &planned.saved {
            let id = &plan.run_id;
            outln!(
                "\nsaved plan {id}: {} users, frozen; {} (the query's [approval]){}",
                plan.cohort.ids.len(),
                planned.approval.describe(),
                match superseded.len() {
                    0 => String::new(),
                    _ => format!("; it supersedes plan {}", superseded.join(", ")),
                }
            )?;
            outln!("digest:  {}", planned.object["digest"].as_str().unwrap_or("-"))?;
            outln!("approvals: {}", planned.approval.kind())?;
            let [page, text] = match &settings.review_dir {
                Some(review) => alma_cohort_core::pipeline::execute::review_files(review, id),
                None => {
                    let folder = settings.state_dir.join("runs").join(id);
                    [folder.join("report.html"), folder.join("plan.txt")]
                }
            };
            outln!(
                "review:  {} and {} (the text an approval approves and a signature signs: `alma-cohort plans show {id} --text`)",
                page.display(),
                text.display()
            )?;
            match (&planned.approval.allowed_signers, planned.approval.required) {
                (_, 0) => {}
                (Some(_), _) => outln!("approve: `alma-cohort approve {id} --ssh-key ~/.ssh/id_ed25519`")?,
                (None, _) => outln!("approve: `alma-cohort approve {id}`")?,
            }
            outln!("apply:   `alma-cohort apply {id} --execute`")?;
        }
    }
    if let Some(refusal) = plan.refusal_error(args.save) {
        return Err(refusal);
    }
    Ok(Exit::Done)
}
