//! Runs a parsed command line: turns flags into library settings and calls the library.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::alma::{AlmaClient, PagingPolicy, Progress, ReportQuery};
use crate::cli::{Cli, Command, ExtractArgs, SimArgs};
use crate::error::{Error, Exit};
use crate::query::{self, Params, QuerySpec};
use crate::settings::Settings;
use crate::sim::{ApiKey, Fault, SimConfig};
use crate::transform;

pub async fn run(cli: Cli) -> Result<Exit, Error> {
    let quiet = cli.global.quiet;
    match cli.command {
        Command::Extract(args) => extract(Settings::from_args(&cli.global)?, args, quiet).await,
        Command::Sim(args) => sim(args).await,
    }
}

/// Where `extract` writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Stdout,
    Csv(PathBuf),
    Parquet(PathBuf),
}

impl Output {
    pub fn parse(path: &Path) -> Result<Self, Error> {
        if path.as_os_str() == "-" {
            return Ok(Output::Stdout);
        }
        let ext = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let out = match ext.as_deref() {
            Some("csv") => Output::Csv(path.to_path_buf()),
            Some("parquet") => Output::Parquet(path.to_path_buf()),
            _ => {
                return Err(Error::Usage(format!(
                    "--out {}: use a name ending in .csv or .parquet, or - for CSV on stdout",
                    path.display()
                )));
            }
        };
        let folder = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !folder.is_dir() {
            return Err(Error::Usage(format!(
                "--out {}: the folder {} does not exist",
                path.display(),
                folder.display()
            )));
        }
        Ok(out)
    }
}

pub fn parse_params(raw: &[String]) -> Result<Params, Error> {
    let mut params = Params::new();
    for p in raw {
        let (k, v) = query::parse_param(p)?;
        params.insert(k, v);
    }
    Ok(params)
}

/// The report part of a query as the Alma client wants it.
pub fn report_query(spec: &QuerySpec) -> ReportQuery {
    ReportQuery {
        path: spec.report.path.clone(),
        limit: spec.report.limit,
        filter: spec.report.filter.clone(),
    }
}

async fn extract(settings: Settings, args: ExtractArgs, quiet: bool) -> Result<Exit, Error> {
    let params = parse_params(&args.params)?;
    let spec = query::load(&args.query, &params)?;
    let output = Output::parse(&args.out)?;
    let client = AlmaClient::new(settings.client_config()?)?;
    let bar = progress_bar(quiet);
    let mut on_page = {
        let bar = bar.clone();
        move |p: Progress| {
            let rate = p.rows as f64 / p.elapsed.as_secs_f64().max(1e-3);
            bar.set_message(format!("page {} · {} rows · {rate:.0} rows/s", p.pages, p.rows));
        }
    };
    let started = std::time::Instant::now();
    let fetched = client
        .fetch_report(&report_query(&spec), &PagingPolicy::default(), &mut on_page)
        .await;
    bar.finish_and_clear();
    let report = fetched?;
    let mut table = transform::report_to_table(&report)?;
    let target = write_output(&output, &mut table)?;
    if !quiet {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "extracted {} rows × {} columns from {} pages in {secs:.1} s ({:.0} rows/s, {} requests{}) → {target}",
            report.rows(),
            table.width(),
            report.pages,
            report.rows() as f64 / secs.max(1e-3),
            report.requests,
            if report.restarts > 0 {
                format!(", {} restarts", report.restarts)
            } else {
                String::new()
            },
        );
    }
    Ok(Exit::Done)
}

fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    // Hidden by indicatif itself when stderr is not a terminal.
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").unwrap_or(ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// Writes the frame; a file is written beside its final name and renamed into place, so a
/// failure never leaves a partial file behind.
fn write_output(output: &Output, table: &mut transform::Table) -> Result<String, Error> {
    match output {
        Output::Stdout => {
            let mut buffer = Vec::new();
            table.write_csv(&mut buffer)?;
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(&buffer).and_then(|()| stdout.flush()) {
                // A reader that stopped early (`| head`) is not an error.
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Error::Output {
                    path: "-".into(),
                    source: e,
                }),
                _ => Ok("stdout".into()),
            }
        }
        Output::Csv(path) | Output::Parquet(path) => {
            let file_name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let temp = path.with_file_name(format!(".{file_name}.{}.partial", std::process::id()));
            let io = |source| Error::Output {
                path: path.clone(),
                source,
            };
            let result = (|| -> Result<(), Error> {
                let file = std::fs::File::create(&temp).map_err(io)?;
                let mut writer = std::io::BufWriter::new(file);
                match output {
                    Output::Parquet(_) => table.write_parquet(&mut writer)?,
                    _ => table.write_csv(&mut writer)?,
                }
                writer.flush().map_err(io)?;
                writer
                    .into_inner()
                    .map_err(|e| io(e.into_error()))?
                    .sync_all()
                    .map_err(io)?;
                std::fs::rename(&temp, path).map_err(io)
            })();
            if result.is_err() {
                let _ = std::fs::remove_file(&temp);
            }
            result.map(|()| path.display().to_string())
        }
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
        .job_outcome(args.job_outcome.parse().map_err(Error::Usage)?)
        .rate_limit(args.rate_limit)
        .daily_quota(args.daily_quota);
    if !(args.job_duration_secs.is_finite() && args.job_duration_secs >= 0.0) {
        return Err(Error::Usage(format!(
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
            .ok_or_else(|| Error::Usage(format!("--report {spec:?}: expected PATH=FILE.csv")))?;
        config = config.csv_report(path, file);
    }
    for spec in &args.keys {
        // The key itself is never echoed back in an error.
        let key: ApiKey = spec.parse().map_err(|e| Error::Usage(format!("--key: {e}")))?;
        config = config.key(key);
    }
    for spec in &args.faults {
        let fault: Fault = spec.parse().map_err(|e| Error::Usage(format!("--fault: {e}")))?;
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
        let Command::Sim(args) = cli.command else { panic!("sim") };
        let c = sim_config(&args).unwrap();
        assert_eq!(
            (c.users, c.faults.len(), c.keys.len(), c.manual_clock),
            (10, 1, 4, true)
        );
        let bad = Cli::try_parse_from(["alma-cohort", "sim", "--fault", "boom@analytics"]).unwrap();
        let Command::Sim(args) = bad.command else { panic!("sim") };
        assert!(sim_config(&args).unwrap_err().to_string().contains("unknown kind"));
    }
}
