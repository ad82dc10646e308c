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
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        outln!("all {} checks passed", checks.len())?;
        Ok(Exit::Done)
    } else {
        outln!("{failed} of {} checks failed", checks.len())?;
        Ok(Exit::Alma)
    }
}
