//! `alma-cohort resume RUN_ID` and `alma-cohort abandon RUN_ID`: a stopped run taken on, or ended
//! by the operator.

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::pipeline::flow::{self, ResumeRequest};
use alma_cohort_core::settings::Settings;

use super::terminal::Terminal;
use crate::cli::{AbandonArgs, ResumeArgs};
use crate::out::outln;

pub async fn resume(settings: Settings, args: ResumeArgs) -> Result<Exit, Error> {
    let req = ResumeRequest {
        run_id: &args.run_id,
        resubmit_job: args.resubmit_job,
        recreate_set: args.recreate_set,
        accept_refused: args.accept_refused,
        take_over: args.take_over,
    };
    let mut terminal = Terminal::new(args.json, false, true);
    let ended = flow::resume(&settings, &req, &mut terminal).await;
    terminal.finish(ended)
}

pub fn abandon(settings: Settings, args: AbandonArgs) -> Result<Exit, Error> {
    let (record, report) = flow::abandon(&settings, &args.run_id, &args.reason, args.i_checked_alma)?;
    outln!(
        "run {} abandoned ({}); recorded in the journal. Report: {}",
        record.run_id,
        record.events.last().map(|e| e.detail.as_str()).unwrap_or_default(),
        report.map_or("none (the run's files were pruned)".to_string(), |r| r
            .display()
            .to_string())
    )?;
    Ok(Exit::Done)
}
