//! `alma-cohort sim`: the simulator (the `alma-sim` crate) served until Ctrl-C, with the flags
//! of its own binary.

use alma_cohort_core::error::{Error, Exit};
use alma_sim::cli::SimArgs;

pub async fn sim(args: Box<SimArgs>) -> Result<Exit, Error> {
    // A flag the simulator refuses is a usage error (exit 2), like any other.
    alma_sim::cli::sim_config(&args).map_err(Error::Usage)?;
    alma_sim::cli::serve(&args, "alma-cohort simulator")
        .await
        .map_err(Error::SimStart)?;
    Ok(Exit::Done)
}
