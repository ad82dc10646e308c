//! `alma-cohort demo`: the simulator in-process on a free port and the term-start example query
//! executed end to end against it, then the run's report and the simulator's outbox.

use std::time::Duration;

use alma_client::{AlmaClient, ClientConfig, PagingPolicy, PollPolicy, RetryPolicy};
use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::journal::Journal;
use alma_cohort_core::pipeline::{self, execute};
use alma_cohort_core::query::{self, Params};
use alma_sim::SimConfig;

use crate::cli::DemoArgs;

const EXAMPLE: &str = include_str!("../queries/term-start-students.toml");

pub async fn run(args: DemoArgs, quiet: bool) -> Result<Exit, Error> {
    let sim = SimConfig::default()
        .users(args.users)
        .seed(42)
        .job_duration(Duration::from_secs(3))
        .start()
        .await
        .map_err(Error::SimStart)?;
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

    let spec = query::load(&query_file, &Params::new())?;
    let mut config = ClientConfig::new(sim.base_url(), "sim-rw".to_string().into());
    config.retry = RetryPolicy {
        first_delay: Duration::from_millis(200),
        max_delay: Duration::from_secs(2),
        max_retries: 6,
        jitter: true,
    };
    let client = AlmaClient::new(config)?;
    let mut journal = Journal::open(&state_dir)?;
    let plan = pipeline::plan(
        Some(&client),
        spec,
        &state_dir,
        &PagingPolicy::default(),
        &mut |_| {},
        &pipeline::PlanOptions {
            period: Some("demo".into()),
            force: false,
        },
    )
    .await?;
    if !quiet {
        println!("{}\n", plan.summary());
    }
    if let Some(refusal) = plan.refusal_error(true) {
        return Err(refusal);
    }
    let record = execute::start_run(&mut journal, &plan, &[], Some("demo"), false)?;
    let poll = PollPolicy {
        first: Duration::from_millis(500),
        factor: 1.5,
        max: Duration::from_secs(2),
        deadline: Duration::from_secs(60),
        max_failures: 5,
        near_end: Duration::from_millis(200),
    };
    let result = execute::continue_run(
        &client,
        &journal,
        &state_dir,
        &record.run_id,
        &execute::ContinueOptions::default(),
        &poll,
    )
    .await?;
    let html = result
        .report_file
        .as_deref()
        .map(|r| std::path::Path::new(r).with_file_name("report.html"));
    let mut shown = result.clone();
    shown.report_file = None;
    let exit = crate::commands::print_result(&shown, false)?;
    let letters = sim.outbox();
    println!(
        "The simulator's outbox holds {} letters (Notify Password Change, one per member with an address).",
        letters.len(),
    );
    sim.shutdown().await;
    drop(journal);
    if args.keep {
        if let Some(html) = html {
            println!("report: {}", html.display());
        }
        println!(
            "The demo's folder (query, journal, run files) stays in {}.",
            work.display()
        );
    } else {
        let removed = std::fs::remove_dir_all(&work);
        println!(
            "The demo's folder {} was {}; `alma-cohort demo --keep` keeps it, with the run's report.html.",
            work.display(),
            if removed.is_ok() { "removed" } else { "not removed" }
        );
    }
    Ok(exit)
}
