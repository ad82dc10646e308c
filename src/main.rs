//! The `alma-cohort` binary: parse the command line, start logging, run the command, map the
//! result to an exit code. The command line is here (`cli`, one module per command in
//! `commands`, `demo`); what a run does is in the `alma-cohort-core` library.

use std::process::ExitCode;

use std::io::IsTerminal;

use clap::FromArgMatches;
use tracing_subscriber::EnvFilter;

use cli::{Cli, ColorChoice, LogFormat};

mod cli;
mod commands;
mod demo;
mod out;

fn main() -> ExitCode {
    let matches = match cli::command().try_get_matches() {
        Ok(matches) => matches,
        // --help and --version go to standard output as every other output does: a closed pipe
        // ends quietly, a full disk is one error line (clap's own print ignores both).
        Err(e) if !e.use_stderr() => {
            let text = if std::io::stdout().is_terminal() {
                e.render().ansi().to_string()
            } else {
                e.render().to_string()
            };
            return match out::write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(err) if out::is_closed_pipe(&err) => ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("error: {}", alma_cohort_core::error::chain(&err));
                    err.exit().into()
                }
            };
        }
        Err(e) => e.exit(),
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    out::set_invocation(cli::given_options(&matches));
    init_logging(
        cli.global.verbose,
        cli.global.quiet,
        cli.global.log_format,
        cli.global.color,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(3);
        }
    };
    let writes = cli.command.writes();
    match runtime.block_on(commands::run(cli)) {
        Ok(exit) => exit.into(),
        // Standard output closed by its reader (`| head`): the end, quietly, as ripgrep ends —
        // for a command that only reads. One that writes stopped before its work was done.
        Err(e) if out::is_closed_pipe(&e) && !writes => ExitCode::SUCCESS,
        Err(e) if out::is_closed_pipe(&e) => {
            out::errln!(
                "error: standard output was closed by its reader before the command ended; it stopped there (`alma-cohort runs` and `alma-cohort plans` say where things are)"
            );
            ExitCode::from(2)
        }
        Err(e) => {
            out::errln!("error: {}", alma_cohort_core::error::chain(&e));
            e.exit().into()
        }
    }
}

/// Colour only where a person reads it: stderr is a terminal and NO_COLOR (https://no-color.org)
/// is unset or empty — unless `--color` says otherwise. Cron mail and log files get plain text.
fn use_color(choice: ColorChoice) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
        }
    }
}

fn init_logging(verbose: u8, quiet: bool, format: LogFormat, color: ColorChoice) {
    let default = match (quiet, verbose) {
        (true, _) => "warn",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    // Our crates' targets (`alma_cohort`, `alma_cohort_core`, `alma_client`, `alma_sim`) at that
    // level; the dependencies' stay quiet.
    let directives = format!("alma_cohort={default},alma_client={default},alma_sim={default}");
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(directives));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(use_color(color)).init(),
        // JSON logs are for machines: never colour.
        LogFormat::Json => builder.json().with_ansi(false).init(),
    }
}
