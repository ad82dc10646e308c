//! The simulator's command line (feature `cli`): the flags of `alma-sim` and of
//! `alma-cohort sim`, turned into a [`SimConfig`], and the server that runs until Ctrl-C.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Args;

use crate::{ApiKey, Fault, SimConfig, UPDATE_NOTIFY_USERS, parse_offset};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Port on 127.0.0.1 (0 picks a free one)
    #[arg(long, default_value_t = 8089)]
    pub port: u16,
    /// Address to listen on
    #[arg(long, default_value = "127.0.0.1")]
    pub listen: std::net::IpAddr,
    /// Once listening, write the port to this file (for a test suite that starts it with --port 0); removed when stopped
    #[arg(long, value_name = "FILE")]
    pub port_file: Option<std::path::PathBuf>,
    /// Let clients that are not on this machine use /_sim/* with this token (header
    /// `X-Sim-Token`); without it /_sim/* answers only on loopback
    #[arg(long, env = "ALMA_SIM_INSPECT_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub inspect_token: Option<String>,
    /// Number of seeded users (at most 2 000 000)
    #[arg(long, default_value_t = 20_000, value_parser = user_count)]
    pub users: usize,
    /// Seed for the institution's data (same seed, same data)
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Serve a CSV file as a saved report: PATH=FILE.csv (header row = headings)
    #[arg(long = "report", value_name = "PATH=FILE")]
    pub reports: Vec<String>,
    /// Accept another API key: KEY=area:r|rw[,...] with areas analytics, conf, users
    #[arg(long = "key", value_name = "KEY=GRANTS")]
    pub keys: Vec<String>,
    /// Latency of a report's first page, in milliseconds
    #[arg(long, default_value_t = 0)]
    pub first_page_latency_ms: u64,
    /// Latency of each later page, in milliseconds
    #[arg(long, default_value_t = 0)]
    pub page_latency_ms: u64,
    /// Latency of each user read (GET /users/{id}), in milliseconds, ±50 % at random
    #[arg(long, default_value_t = 0)]
    pub user_latency_ms: u64,
    /// "Still loading" answers (no rows, IsFinished=false) before a report's rows
    #[arg(long, default_value_t = 0)]
    pub still_loading: u32,
    /// Say IsFinished=true after this many pages even with rows left
    #[arg(long)]
    pub premature_finish_after: Option<u32>,
    /// Inject a fault: KIND@TARGET[,skip=N][,count=N][,ms=N][,after=TARGET]; KIND is 5xx, 429,
    /// daily, drop, drop-after, slow or 420033; TARGET is analytics, analytics-first,
    /// analytics-next, set-list, set-create, set-get, add-members (or set-op), set-delete,
    /// set-members, job-list, job-get, job-run, job-instances, job-poll, user-get, letter-list,
    /// letter-get or any
    #[arg(long = "fault", value_name = "SPEC")]
    pub faults: Vec<String>,
    /// How Update/Notify Users runs end
    #[arg(long, default_value = "success", value_parser = ["success", "warning", "completed-failed", "failed", "never-finishes"])]
    pub job_outcome: String,
    /// Simulated seconds from a job's submission to its end
    #[arg(long, default_value_t = 60.0)]
    pub job_duration_secs: f64,
    /// Requests per second before 429 PER_SECOND_THRESHOLD (0: no limit)
    #[arg(long, default_value_t = 25)]
    pub rate_limit: u32,
    /// API calls allowed per (simulated) day before 429 DAILY_THRESHOLD
    #[arg(long, default_value_t = 1_000_000)]
    pub daily_quota: u64,
    /// Freeze simulated time; move it with POST /_sim/clock/advance?seconds=N
    #[arg(long)]
    pub manual_clock: bool,
    /// Compact analytics pages instead of Alma's one-element-per-line layout
    #[arg(long)]
    pub compact: bool,
    /// The institution's time zone, e.g. -05:00: job instance names and the instance list's
    /// submit_date_from/to are in local time, as Alma's are
    #[arg(long, default_value = "Z", allow_hyphen_values = true)]
    pub timezone: String,
    /// A new job instance shows in instance lists only this many seconds (sim clock) after it
    /// was submitted
    #[arg(long, default_value_t = 0.0)]
    pub instance_listing_lag_secs: f64,
    /// A new set shows in set lists (GET /conf/sets) only this many seconds (sim clock) after
    /// it was created; GET by id and the duplicate-name check see it at once
    #[arg(long, default_value_t = 0.0)]
    pub set_listing_lag_secs: f64,
    /// Finished Update/Notify Users instances of other runs, 2-3 hours before the start
    #[arg(long, default_value_t = 0)]
    pub past_instances: usize,
    /// Send an answer shape that real Alma sends (may repeat; docs/simulator.md)
    #[arg(long = "quirk", value_name = "NAME", value_enum)]
    pub quirks: Vec<crate::Quirk>,
    /// The User Notifications Letter: standard (emails the temporary password), disabled, sms
    /// (not emailed), no-password (rewritten without the password, as some institutions have it),
    /// broken-xsl (saved half-edited: not XML)
    #[arg(long, value_name = "STATE", default_value = "standard", value_parser = ["standard", "disabled", "sms", "no-password", "broken-xsl", "reworded"])]
    pub letter: String,
    /// When staff last edited the letter (RFC 3339, e.g. 2026-11-20T09:00:00Z): its update_date,
    /// and updated_by another person
    #[arg(long, value_name = "RFC3339")]
    pub letter_edited_at: Option<String>,
    /// After the reports were built, N eligible users changed in Alma (the reports still show
    /// them as before): KIND=N, KIND one of inactive, external, no_email, staff, expired (may repeat)
    #[arg(long = "drift", value_name = "KIND=N")]
    pub drift: Vec<String>,
}

/// The most users the simulator seeds (each takes memory; the largest Alma institutions have
/// a few hundred thousand).
pub const MOST_USERS: usize = 2_000_000;

/// `--users N`: a whole number up to [`MOST_USERS`].
pub fn user_count(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= MOST_USERS => Ok(n),
        _ => Err(format!("{s:?} is not a number of users from 0 to {MOST_USERS}")),
    }
}

/// The simulator's settings from its flags; an `Err` is the one line to print.
pub fn sim_config(args: &SimArgs) -> Result<SimConfig, String> {
    let mut config = SimConfig::default()
        .users(args.users)
        .seed(args.seed)
        .first_page_latency(Duration::from_millis(args.first_page_latency_ms))
        .page_latency(Duration::from_millis(args.page_latency_ms))
        .user_latency(Duration::from_millis(args.user_latency_ms))
        .still_loading(args.still_loading)
        .job_outcome(args.job_outcome.parse()?)
        .rate_limit(args.rate_limit)
        .daily_quota(args.daily_quota);
    if !(args.job_duration_secs.is_finite() && args.job_duration_secs >= 0.0) {
        return Err(format!(
            "--job-duration-secs must be 0 or more, got {}",
            args.job_duration_secs
        ));
    }
    config = config.job_duration(Duration::from_secs_f64(args.job_duration_secs));
    if let Some(n) = args.premature_finish_after {
        config = config.premature_finish_after(n);
    }
    for spec in &args.reports {
        let (path, file) = spec
            .split_once('=')
            .ok_or_else(|| format!("--report {spec:?}: expected PATH=FILE.csv"))?;
        config = config.csv_report(path, file);
    }
    for spec in &args.keys {
        // The key itself is never echoed back in an error.
        let key: ApiKey = spec.parse().map_err(|e| format!("--key: {e}"))?;
        config = config.key(key);
    }
    for spec in &args.faults {
        let fault: Fault = spec.parse().map_err(|e| format!("--fault: {e}"))?;
        config = config.fault(fault);
    }
    if args.manual_clock {
        config = config.manual_clock();
    }
    config = config.timezone(parse_offset(&args.timezone).map_err(|e| format!("--timezone: {e}"))?);
    if !(args.instance_listing_lag_secs.is_finite() && args.instance_listing_lag_secs >= 0.0) {
        return Err(format!(
            "--instance-listing-lag-secs must be 0 or more, got {}",
            args.instance_listing_lag_secs
        ));
    }
    // As the instance lag's check, and no panic for a number too large for a Duration.
    let set_listing_lag = Some(args.set_listing_lag_secs)
        .filter(|s| s.is_finite() && *s >= 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            format!(
                "--set-listing-lag-secs must be 0 or more, got {}",
                args.set_listing_lag_secs
            )
        })?;
    config = config
        .instance_listing_lag(Duration::from_secs_f64(args.instance_listing_lag_secs))
        .set_listing_lag(set_listing_lag)
        .past_instances(args.past_instances);
    for &quirk in &args.quirks {
        config = config.quirk(quirk);
    }
    if args.compact {
        config = config.compact();
    }
    config = config.letter(args.letter.parse().map_err(|e| format!("--letter: {e}"))?);
    if let Some(t) = &args.letter_edited_at {
        let t = chrono::DateTime::parse_from_rfc3339(t.trim())
            .map_err(|e| format!("--letter-edited-at {t:?}: expected RFC 3339 like 2026-11-20T09:00:00Z ({e})"))?;
        config = config.letter_edited_at(t.with_timezone(&chrono::Utc));
    }
    for spec in &args.drift {
        let (kind, n) = spec
            .split_once('=')
            .ok_or_else(|| format!("--drift {spec:?}: expected KIND=N, e.g. inactive=5"))?;
        let kind: crate::DriftKind = kind.trim().parse().map_err(|e| format!("--drift: {e}"))?;
        let n: usize = n
            .trim()
            .parse()
            .map_err(|_| format!("--drift {spec:?}: N must be a whole number"))?;
        config = config.drift(kind, n);
    }
    if let Some(token) = &args.inspect_token {
        config = config.inspect_token(token)?;
    }
    Ok(config)
}

/// Serves the simulator its flags describe until Ctrl-C or SIGTERM. `name` is what the
/// banner calls it (`alma-sim`, `alma-cohort simulator`).
pub async fn serve(args: &SimArgs, name: &str) -> Result<(), String> {
    serve_config(args, sim_config(args)?, name).await
}

/// [`serve`] with a configuration built from `args` and then extended (people of a library's
/// own file, for a rehearsal).
pub async fn serve_config(args: &SimArgs, config: SimConfig, name: &str) -> Result<(), String> {
    let addr = SocketAddr::new(args.listen, args.port);
    let users = config.users;
    let handle = config.serve(addr).await?;
    if let Some(path) = &args.port_file {
        write_port_file(path, handle.addr().port())?;
    }
    let job = handle.job_id(UPDATE_NOTIFY_USERS).unwrap_or_default();
    tracing::info!(base_url = %handle.base_url(), users, update_notify_users = %job, "simulator listening; Ctrl-C stops it");
    eprintln!(
        "{name} on {} ({users} users; Update/Notify Users is job {job})",
        handle.base_url()
    );
    eprintln!(
        "inspect: {0}/_sim/state  {0}/_sim/outbox  {0}/_sim/resets  {0}/_sim/requests{1}",
        handle.base_url(),
        if args.listen.is_loopback() {
            ""
        } else if args.inspect_token.is_some() {
            " (from other machines: with the header X-Sim-Token)"
        } else {
            " (from this machine only: --inspect-token lets others in)"
        }
    );
    if let Err(e) = stop_asked().await {
        tracing::warn!(error = %e, "cannot listen for Ctrl-C; serving until killed");
        handle.wait().await;
        return Ok(());
    }
    tracing::info!("stopping the simulator");
    handle.shutdown().await;
    // A port file left behind would send the next test suite to a closed port.
    if let Some(path) = &args.port_file {
        let _ = std::fs::remove_file(path);
    }
    Ok(())
}

/// Ctrl-C, or (on Unix) the SIGTERM that a test suite's `kill` sends.
async fn stop_asked() -> std::io::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r,
            _ = term.recv() => Ok(()),
        }
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await
    }
}

/// The port, written whole (a reader that polls the file never sees half of it).
fn write_port_file(path: &Path, port: u16) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    std::fs::write(&temp, format!("{port}\n"))
        .and_then(|()| std::fs::rename(&temp, path))
        .map_err(|e| format!("--port-file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn sim_flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "alma-sim",
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
        let c = sim_config(&cli.sim).unwrap();
        assert_eq!(
            (c.users, c.faults.len(), c.keys.len(), c.manual_clock),
            (10, 1, 4, true)
        );
        let bad = Cli::try_parse_from(["alma-sim", "--fault", "boom@analytics"]).unwrap();
        assert!(sim_config(&bad.sim).unwrap_err().contains("unknown kind"));
    }

    #[test]
    fn listing_lag_flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "alma-sim",
            "--set-listing-lag-secs",
            "90",
            "--instance-listing-lag-secs",
            "2.5",
        ])
        .unwrap();
        let c = sim_config(&cli.sim).unwrap();
        assert_eq!(
            (c.set_listing_lag, c.instance_listing_lag),
            (Duration::from_secs(90), Duration::from_millis(2500))
        );
        let default = Cli::try_parse_from(["alma-sim"]).unwrap();
        assert_eq!(sim_config(&default.sim).unwrap().set_listing_lag, Duration::ZERO);
        for (flag, value) in [
            ("--set-listing-lag-secs", "-1"),
            ("--set-listing-lag-secs", "NaN"),
            ("--set-listing-lag-secs", "inf"),
            ("--set-listing-lag-secs", "1e30"),
            ("--instance-listing-lag-secs", "-1"),
            ("--instance-listing-lag-secs", "NaN"),
        ] {
            // With `=`: a value that starts with `-` is not taken for a flag.
            let cli = Cli::try_parse_from(["alma-sim".to_string(), format!("{flag}={value}")]).unwrap();
            let e = sim_config(&cli.sim).unwrap_err();
            assert!(
                e.starts_with(&format!("{flag} must be 0 or more, got ")) && !e.contains('\n'),
                "{flag} {value}: {e}"
            );
        }
        assert!(Cli::try_parse_from(["alma-sim", "--set-listing-lag-secs", "soon"]).is_err());
    }

    #[test]
    fn letter_and_drift_flags_become_a_config() {
        let cli = Cli::try_parse_from([
            "alma-sim",
            "--letter",
            "no-password",
            "--letter-edited-at",
            "2026-11-20T09:30:00+01:00",
            "--drift",
            "inactive=3",
            "--drift",
            "no-email=2",
            "--drift",
            "staff=1",
        ])
        .unwrap();
        let c = sim_config(&cli.sim).unwrap();
        assert_eq!(c.letter, crate::LetterState::NoPasswordBranch);
        assert_eq!(
            c.letter_edited_at.map(|t| t.to_rfc3339()),
            Some("2026-11-20T08:30:00+00:00".to_string())
        );
        assert_eq!(
            c.drift,
            vec![
                (crate::DriftKind::Inactive, 3),
                (crate::DriftKind::NoEmail, 2),
                (crate::DriftKind::Staff, 1)
            ]
        );
        let default = Cli::try_parse_from(["alma-sim"]).unwrap();
        assert_eq!(sim_config(&default.sim).unwrap().letter, crate::LetterState::Standard);
        assert!(Cli::try_parse_from(["alma-sim", "--letter", "fax"]).is_err());
        for (flag, value, error) in [
            ("--drift", "inactive", "expected KIND=N"),
            ("--drift", "asleep=2", "unknown drift"),
            ("--drift", "staff=two", "whole number"),
            ("--letter-edited-at", "yesterday", "RFC 3339"),
        ] {
            let cli = Cli::try_parse_from(["alma-sim", flag, value]).unwrap();
            let e = sim_config(&cli.sim).unwrap_err();
            assert!(e.contains(error), "{flag} {value}: {e}");
        }
    }
}
