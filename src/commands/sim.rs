//! `alma-cohort sim`: the simulator (the `alma-sim` crate) served until Ctrl-C, with the flags
//! of its own binary, and `--users-from FILE`: a library's own people, read by the tool's list
//! reader, created in the simulator for a rehearsal.

use alma_cohort_core::error::{Error, Exit};
use alma_sim::UserSeed;

use crate::cli::SimCommand;

pub async fn sim(args: Box<SimCommand>) -> Result<Exit, Error> {
    // A flag the simulator refuses is a usage error (exit 2), like any other.
    let mut config = alma_sim::cli::sim_config(&args.sim).map_err(Error::Usage)?;
    if let Some(file) = &args.users_from {
        let people = alma_cohort_core::listfile::people(file, &args.users_id_column)?;
        eprintln!(
            "{} people from {} created in the simulator",
            people.len(),
            file.display()
        );
        config = config.user_seeds(people.into_iter().map(seed).collect());
    }
    alma_sim::cli::serve_config(&args.sim, config, "alma-cohort simulator")
        .await
        .map_err(Error::SimStart)?;
    Ok(Exit::Done)
}

/// A person of the file as the simulator creates them: what the file does not say is the
/// simulator's default (an internal, active patron with an address).
fn seed(p: alma_cohort_core::listfile::Person) -> UserSeed {
    UserSeed {
        primary_id: p.id,
        user_group: p.user_group,
        internal: p.internal,
        active: p.active,
        email: p.email,
        expiry_date: p.expiry_date,
    }
}
