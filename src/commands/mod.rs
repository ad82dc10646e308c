//! One module per command: each turns its flags into the library's settings and requests, calls
//! the library, and prints what comes back. What a run does is in `alma_cohort_core`.

mod approve;
mod doctor;
mod extract;
mod plan;
mod plans;
mod prune;
mod resume;
mod run;
mod runs;
mod sim;
mod terminal;
mod validate;

use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::settings::Settings;

use crate::cli::{Cli, Command};

pub use terminal::print_result;

pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let quiet = cli.global.quiet;
    let settings = || Settings::from_options(&cli.global.options());
    match cli.command {
        Command::Validate(args) => validate::validate(settings()?, args).await,
        Command::Plan(args) => plan::plan(settings()?, args, quiet).await,
        Command::Run(args) if !args.execute => plan::plan(settings()?, args.plan, quiet).await,
        Command::Run(args) => run::execute(settings()?, args, quiet).await,
        Command::Resume(args) => resume::resume(settings()?, args).await,
        Command::Abandon(args) => resume::abandon(settings()?, args),
        Command::Runs(args) => runs::runs(settings()?, args),
        Command::Show(args) => runs::show(settings()?, args),
        Command::Demo(args) => crate::demo::run(args, quiet).await,
        Command::Doctor(args) => doctor::doctor(settings()?, args).await,
        Command::Completions(args) => {
            let mut cmd = crate::cli::command();
            let mut script = Vec::new();
            clap_complete::generate(args.shell, &mut cmd, "alma-cohort", &mut script);
            crate::out::write_all(&script)?;
            Ok(Exit::Done)
        }
        Command::Man(args) => {
            let cmd = crate::cli::command();
            match args.dir {
                // Every page the main one names (alma-cohort-plan(1), …), so none is missing.
                Some(dir) => {
                    std::fs::create_dir_all(&dir).map_err(|source| Error::Output {
                        path: dir.clone(),
                        source,
                    })?;
                    clap_mangen::generate_to(cmd, &dir).map_err(|source| Error::Output {
                        path: dir.clone(),
                        source,
                    })?;
                    crate::out::outln!("wrote alma-cohort.1 and a page for each command to {}", dir.display())?;
                }
                None => {
                    let mut page = Vec::new();
                    clap_mangen::Man::new(cmd.disable_help_subcommand(true))
                        .render(&mut page)
                        .map_err(crate::out::error)?;
                    crate::out::write_all(&page)?;
                }
            }
            Ok(Exit::Done)
        }
        Command::Extract(args) => extract::extract(settings()?, args, quiet).await,
        Command::Sim(args) => sim::sim(args).await,
        Command::Prune(args) => prune::prune(settings()?, args),
        Command::Plans(args) => match args.action {
            None => plans::plans(settings()?, args.list),
            Some(crate::cli::PlansAction::Show(show)) => plans::show(settings()?, show),
        },
        Command::Approve(args) => approve::approve(settings()?, args),
        Command::Apply(args) => run::apply(settings()?, args).await,
        Command::Withdraw(args) => approve::withdraw(settings()?, args),
    }
}
