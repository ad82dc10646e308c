//! `alma-cohort prune`: the files of runs that ended long ago deleted; the journal keeps them.

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::journal::Journal;
use alma_cohort_core::pipeline::retention;
use alma_cohort_core::settings::{self, Settings};

use super::terminal::print_json;
use crate::cli::PruneArgs;
use crate::out::outln;

pub fn prune(settings: Settings, args: PruneArgs) -> Result<Exit, Error> {
    let days = match args.older_than {
        Some(d) => d,
        None => settings::retention_days()?,
    };
    // Read-only on a state dir that does not exist: nothing to prune, nothing created.
    let pruned = if let Some(journal) = Journal::open_existing(&settings.state_dir)? {
        retention::prune(&settings.state_dir, &journal, days, args.dry_run)?
    } else {
        retention::Pruned {
            older_than_days: days,
            dry_run: args.dry_run,
            ..Default::default()
        }
    };
    if args.json {
        print_json(&pruned)?;
    } else {
        outln!("{}", pruned.summary(&settings.state_dir))?;
    }
    Ok(Exit::Done)
}
