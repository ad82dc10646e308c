//! `alma-sim`: the simulator on its own, for any project's tests. It listens on loopback unless
//! `--listen` says otherwise; `--port 0 --port-file FILE` picks a free port and says which.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A local Ex Libris Alma: Analytics reports, sets, jobs and users, with Alma's shapes, error
/// codes, quirks and faults
#[derive(Debug, Parser)]
#[command(name = "alma-sim", version)]
struct Cli {
    #[command(flatten)]
    sim: alma_sim::cli::SimArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("alma_sim=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour only on a terminal, and never with NO_COLOR set (no-color.org).
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    match runtime.block_on(alma_sim::cli::serve(&cli.sim, "alma-sim")) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
