//! `alma-cohort doctor`: the preflight checklist, one line per check, each failure with its fix.

use alma_cohort_core::doctor;
use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::settings::Settings;

use crate::cli::DoctorArgs;
use crate::out::outln;

pub async fn doctor(settings: Settings, args: DoctorArgs) -> Result<Exit, Error> {
    let checks = doctor::checks(&settings, args.query.as_deref(), &args.params).await;
    for c in &checks {
        let verdict = match (c.ok, c.warn) {
            (false, _) => "FAIL",
            (true, true) => "warn",
            (true, false) => "ok  ",
        };
        outln!("{verdict} {}: {}", c.name, c.detail)?;
        if let Some(fix) = &c.fix {
            outln!("     fix: {fix}")?;
        }
    }
    // Exit 0 only when every line is ok; a warning is exit 1, a failure exit 3 — each with one
    // line on stderr naming the checks, for cron's mail.
    let names = |keep: &dyn Fn(&doctor::Check) -> bool| {
        checks
            .iter()
            .filter(|c| keep(c))
            .map(|c| c.name.to_string())
            .collect::<Vec<_>>()
    };
    let failed = names(&|c| !c.ok);
    let warned = names(&|c| c.ok && c.warn);
    if !failed.is_empty() {
        outln!("{} of {} checks failed", failed.len(), checks.len())?;
        eprintln!(
            "error: doctor: {} of {} checks failed: {}",
            failed.len(),
            checks.len(),
            failed.join(", ")
        );
        Ok(Exit::Alma)
    } else if !warned.is_empty() {
        outln!("all {} checks passed, {} with a warning", checks.len(), warned.len())?;
        eprintln!("warning: doctor: {}", warned.join(", "));
        Ok(Exit::JobFailed)
    } else {
        outln!("all {} checks passed", checks.len())?;
        Ok(Exit::Done)
    }
}
