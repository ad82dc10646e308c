//! Runs a parsed command line: turns flags into library settings and calls the library.

use std::net::SocketAddr;
use std::time::Duration;

use crate::cli::{Cli, Command, SimArgs};
use crate::error::{Error, Exit};
use crate::sim::{ApiKey, Fault, SimConfig};

pub async fn run(cli: Cli) -> Result<Exit, Error> {
    match cli.command {
        Command::Sim(args) => sim(args).await,
    }
}

async fn sim(args: SimArgs) -> Result<Exit, Error> {
    let addr = SocketAddr::new(args.listen, args.port);
    let config = sim_config(&args)?;
    let users = config.users;
    let handle = config.serve(addr).await.map_err(Error::SimStart)?;
    let job = handle.job_id(crate::sim::UPDATE_NOTIFY_USERS).unwrap_or_default();
    tracing::info!(base_url = %handle.base_url(), users, update_notify_users = %job, "simulator listening; Ctrl-C stops it");
    eprintln!(
        "alma-cohort simulator on {} ({users} users; Update/Notify Users is job {job})",
        handle.base_url()
    );
    eprintln!(
        "inspect: {0}/_sim/state  {0}/_sim/outbox  {0}/_sim/requests",
        handle.base_url()
    );
    if let Err(e) = tokio::signal::ctrl_c().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C; serving until killed");
        handle.wait().await;
        return Ok(Exit::Done);
    }
    tracing::info!("interrupted; stopping the simulator");
    handle.shutdown().await;
    Ok(Exit::Done)
}

/// The simulator's settings from `alma-cohort sim` flags.
pub fn sim_config(args: &SimArgs) -> Result<SimConfig, Error> {
    let mut config = SimConfig::default()
        .users(args.users)
        .seed(args.seed)
        .first_page_latency(Duration::from_millis(args.first_page_latency_ms))
        .page_latency(Duration::from_millis(args.page_latency_ms))
        .still_loading(args.still_loading)
        .job_outcome(args.job_outcome.parse().map_err(Error::Settings)?)
        .rate_limit(args.rate_limit)
        .daily_quota(args.daily_quota);
    if !(args.job_duration_secs.is_finite() && args.job_duration_secs >= 0.0) {
        return Err(Error::Settings(format!(
            "--job-duration-secs must be 0 or more, got {}",
            args.job_duration_secs
        )));
    }
    config = config.job_duration(Duration::from_secs_f64(args.job_duration_secs));
    if let Some(n) = args.premature_finish_after {
        config = config.premature_finish_after(n);
    }
    for spec in &args.reports {
        let (path, file) = spec
            .split_once('=')
            .ok_or_else(|| Error::Settings(format!("--report {spec:?}: expected PATH=FILE.csv")))?;
        config = config.csv_report(path, file);
    }
    for spec in &args.keys {
        // The key itself is never echoed back in an error.
        let key: ApiKey = spec.parse().map_err(|e| Error::Settings(format!("--key: {e}")))?;
        config = config.key(key);
    }
    for spec in &args.faults {
        let fault: Fault = spec.parse().map_err(|e| Error::Settings(format!("--fault: {e}")))?;
        config = config.fault(fault);
    }
    if args.manual_clock {
        config = config.manual_clock();
    }
    if args.compact {
        config = config.compact();
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn sim_flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "alma-cohort",
            "sim",
            "--port",
            "0",
            "--users",
            "10",
            "--fault",
            "5xx@analytics-next,count=2",
            "--key",
            "k=analytics:r",
            "--job-outcome",
            "failed",
            "--manual-clock",
        ])
        .unwrap();
        let Command::Sim(args) = cli.command;
        let c = sim_config(&args).unwrap();
        assert_eq!(
            (c.users, c.faults.len(), c.keys.len(), c.manual_clock),
            (10, 1, 4, true)
        );
        let bad = Cli::try_parse_from(["alma-cohort", "sim", "--fault", "boom@analytics"]).unwrap();
        let Command::Sim(args) = bad.command;
        assert!(sim_config(&args).unwrap_err().to_string().contains("unknown kind"));
    }
}
