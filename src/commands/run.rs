//! `alma-cohort run QUERY --execute` and `alma-cohort apply`: a run started, confirmed at the
//! terminal, and followed to its end (`alma_cohort_core::pipeline::flow`).

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::pipeline::flow::{self, ApplyRequest, RunRequest};
use alma_cohort_core::settings::Settings;

use super::terminal::Terminal;
use crate::cli::{ApplyArgs, RunArgs};

pub async fn execute(settings: Settings, args: RunArgs, quiet: bool) -> Result<Exit, Error> {
    let req = RunRequest {
        query: &args.plan.query.query,
        params: &args.plan.query.params,
        period: args.plan.period.as_deref(),
        force: args.force,
        save: args.plan.save,
    };
    let mut terminal = Terminal::new(args.plan.json, quiet, args.yes);
    let ended = flow::run(&settings, &req, &mut terminal).await;
    terminal.finish(ended)
}

pub async fn apply(settings: Settings, args: ApplyArgs) -> Result<Exit, Error> {
    let req = ApplyRequest {
        plan_id: args.plan_id.as_deref(),
        query: args.query.as_deref(),
        period: args.period.as_deref(),
        execute: args.execute,
    };
    let mut terminal = Terminal::new(args.json, false, args.yes);
    let ended = flow::apply(&settings, &req, &mut terminal).await;
    terminal.finish(ended)
}
