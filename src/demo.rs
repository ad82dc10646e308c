//! `alma-cohort demo`: the simulator in-process on a free port and the term-start example query
//! executed end to end against it, then the run's report and the simulator's outbox.

use std::time::Duration;

use alma_client::Progress;
use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::pipeline::{
    self,
    flow::{self, Ended, Operator, RunRequest},
};
use alma_cohort_core::settings::{Options, Settings};
use alma_sim::{DriftKind, SimConfig};

use crate::cli::DemoArgs;
use crate::out::outln;

const EXAMPLE: &str = include_str!("../queries/term-start-students.toml");

pub async fn run(args: DemoArgs, quiet: bool) -> Result<Exit, Error> {
    // Alma changed since the report, as it does: a few of the report's students are now
    // inactive, external, without an email, staff or expired — the plan leaves them out by name.
    let mut config = SimConfig::default()
        .users(args.users)
        .seed(42)
        .job_duration(Duration::from_secs(3))
        // Not paced: the demo's lookups go as fast as the machine allows.
        .rate_limit(0);
    if args.users >= 200 {
        for kind in DriftKind::all() {
            config = config.drift(*kind, 2);
        }
    }
    let sim = config.start().await.map_err(Error::SimStart)?;
    let work = std::env::temp_dir().join(format!("alma-cohort-demo-{}", pipeline::new_run_id()));
    alma_cohort_core::files::create_dir(&work).map_err(|source| Error::Output {
        path: work.clone(),
        source,
    })?;
    let query_file = work.join("term-start-students.toml");
    std::fs::write(&query_file, EXAMPLE).map_err(|source| Error::Output {
        path: query_file.clone(),
        source,
    })?;
    let state_dir = work.join("state");
    eprintln!(
        "demo: simulated Alma at {} ({} users); state in {}",
        sim.base_url(),
        args.users,
        state_dir.display()
    );

    // The demo's run goes the way `run --execute --yes` does: the library's flow, with its lock,
    // admission, plan and journal, against the simulator with its demo key.
    let key_file = work.join("api-key");
    alma_cohort_core::files::write(&key_file, "sim-rw").map_err(|source| Error::Output {
        path: key_file.clone(),
        source,
    })?;
    let settings = Settings::from_options(&Options {
        base_url: Some(sim.base_url()),
        state_dir: Some(state_dir),
        api_key_file: Some(key_file),
        request_timeout: 30.0,
        poll_interval: 0.5,
        job_deadline: 60.0,
        pace: Some(1000),
        max_retries: 6,
        retry_delay: 0.2,
        ..Options::default()
    })?;
    let req = RunRequest {
        query: &query_file,
        params: &[],
        period: Some("demo"),
        force: false,
        save: false,
    };
    let result = match flow::run(&settings, &req, &mut Demo { quiet }).await {
        Ok(Ended::Ran(result)) => *result,
        Ok(_) => return Err(Error::Usage("the demo's run did not start".into())),
        Err(stopped) => return Err(stopped.error),
    };
    let html = result
        .report_file
        .as_deref()
        .map(|r| std::path::Path::new(r).with_file_name("report.html"));
    let mut shown = result.clone();
    shown.report_file = None;
    let exit = crate::commands::print_result(&shown, false)?;
    let letters = sim.outbox();
    let resets = sim.resets();
    outln!(
        "The simulator's outbox holds {} letters with a temporary password; {} passwords were reset; {} users locked out (reset without a letter that carries the password).",
        letters.iter().filter(|l| l.carries_password).count(),
        resets.len(),
        sim.locked_out().len(),
    )?;
    sim.shutdown().await;
    if args.keep {
        if let Some(html) = html {
            outln!("report: {}", html.display())?;
        }
        outln!(
            "The demo's folder (query, journal, run files) stays in {}.",
            work.display()
        )?;
    } else {
        let removed = std::fs::remove_dir_all(&work);
        outln!(
            "The demo's folder {} was {}; `alma-cohort demo --keep` keeps it, with the run's report.html.",
            work.display(),
            if removed.is_ok() { "removed" } else { "not removed" }
        )?;
    }
    Ok(exit)
}

/// The demo's operator: it has said yes by running the demo; with `--quiet` the plan is not shown.
struct Demo {
    quiet: bool,
}

impl Operator for Demo {
    fn say(&mut self, text: &str) -> Result<(), Error> {
        if !self.quiet {
            outln!("{text}\n")?;
        }
        Ok(())
    }

    fn note(&mut self, text: &str) {
        eprintln!("{text}");
    }

    fn page(&mut self, _progress: Progress) {}

    fn confirm(&mut self, _users: usize) -> Result<(), Error> {
        Ok(())
    }
}
