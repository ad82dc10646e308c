//! The fault matrix: every cell is an end-to-end `run --execute` (and `resume`s where the run
//! stops) against the simulator with one fault, ending either with the exact cohort in one set,
//! one job and one letter per internal member, or with a clean refusal and nothing written.

use std::time::Duration;

use alma_sim::{Fault, FaultKind, JobOutcome, SimConfig, Target};

use crate::cli::temp_dir;
use crate::execute::{all_users_query, assert_done_once, execute_run, last_json, run, runs_json, sim_config};
use crate::support::*;

const SET: &str = "Alma may have created the set";
const JOB: &str = "Alma may have started the job";

/// How a cell must end.
#[derive(Clone, Copy, Debug, PartialEq)]
enum End {
    /// Done in one run.
    Done,
    /// Exit 3 and nothing at all written to Alma.
    Refused,
    /// A creating call has an unknown outcome: the run stops with this message ("Alma may have
    /// created the set" / "… started the job"), a plain `resume` looks again and stops again; the
    /// operator checks Alma (the simulator's state), sees nothing, and resumes with
    /// `--recreate-set` / `--resubmit-job`.
    OperatorConfirms(&'static str),
}

async fn cell(name: &str, config: SimConfig, end: End, extra: &[&str]) {
    let sim = sim(config).await;
    let dir = temp_dir(&format!("fault-{name}"));
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let mut args = vec!["run", q.to_str().unwrap(), "--execute", "--yes", "--json"];
    args.extend_from_slice(extra);
    let first = run(&sim, &state, &args).await;
    match end {
        End::Done => {
            assert_eq!(first.code, 0, "{name}: {}", first.stderr);
            assert_done_once(&sim);
        }
        End::OperatorConfirms(what) => {
            assert_eq!(first.code, 3, "{name}: {}", first.stderr);
            assert!(first.stderr.contains(what), "{name}: {}", first.stderr);
            let runs: serde_json::Value = runs_json(&sim, &state).await;
            let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
            let looked = run(&sim, &state, &["resume", &run_id]).await;
            assert_eq!(
                looked.code, 3,
                "{name}: resume never writes again on its own: {}",
                looked.stderr
            );
            let flag = operator_flag(&sim, &looked.stderr).expect("Alma shows nothing");
            let resumed = run(&sim, &state, &["resume", &run_id, flag, "--json"]).await;
            assert_eq!(resumed.code, 0, "{name}: {}", resumed.stderr);
            assert_eq!(last_json(&resumed.stdout)["resumed"], true);
            assert_done_once(&sim);
        }
        End::Refused => {
            assert_eq!(first.code, 3, "{name}: {}", first.stderr);
            assert_eq!(
                first.stderr.lines().filter(|l| l.starts_with("error:")).count(),
                1,
                "{name}: {}",
                first.stderr
            );
            assert!(
                sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
                "{name}: nothing written"
            );
            assert!(
                sim.handle.requests().iter().all(|r| r.method == "GET"),
                "{name}: no write call"
            );
        }
    }
}

fn with(kind: FaultKind, target: Target, skip: u32, count: u32) -> SimConfig {
    sim_config().fault(Fault::new(kind, target).skip(skip).count(count))
}

#[tokio::test]
async fn storms_of_429() {
    for (name, target, count) in [
        ("429-analytics", Target::Analytics, 6),
        ("429-add-members", Target::SetOp, 4),
        ("429-polling", Target::JobInstance, 6),
    ] {
        cell(name, with(FaultKind::TooManyRequests, target, 0, count), End::Done, &[]).await;
    }
}

#[tokio::test]
async fn bursts_of_5xx_at_each_step() {
    // GETs are retried; POSTs that create things are not: the run stops cleanly and resume
    // looks before acting. A 5xx to the job's submission leaves its outcome unknown: only the
    // operator's word (after checking Alma) submits it again.
    for (name, target, end) in [
        ("5xx-first-page", Target::AnalyticsFirst, End::Done),
        ("5xx-page-3", Target::AnalyticsNext, End::Done),
        ("5xx-set-list", Target::SetList, End::Done),
        ("5xx-set-create", Target::SetCreate, End::OperatorConfirms(SET)),
        ("5xx-add-members", Target::SetOp, End::Done),
        ("5xx-job-list", Target::JobList, End::Done),
        ("5xx-job-run", Target::JobRun, End::OperatorConfirms(JOB)),
        ("5xx-polling", Target::JobInstance, End::Done),
    ] {
        let skip = if target == Target::AnalyticsNext { 1 } else { 0 };
        // Creating calls fail once (the first attempt); reads get a burst of two.
        let count = if matches!(end, End::OperatorConfirms(_)) { 1 } else { 2 };
        cell(name, with(FaultKind::ServerError, target, skip, count), end, &[]).await;
    }
}

#[tokio::test]
async fn dropped_connections_at_each_step() {
    for (name, kind, target) in [
        ("drop-first-page", FaultKind::DropBefore, Target::AnalyticsFirst),
        ("drop-mid-report", FaultKind::DropAfter, Target::AnalyticsNext),
        ("drop-before-set", FaultKind::DropBefore, Target::SetCreate),
        ("drop-after-set", FaultKind::DropAfter, Target::SetCreate),
        ("drop-after-members", FaultKind::DropAfter, Target::SetOp),
        ("drop-job-list", FaultKind::DropBefore, Target::JobList),
        ("drop-after-job-run", FaultKind::DropAfter, Target::JobRun),
        ("drop-polling", FaultKind::DropBefore, Target::JobInstance),
    ] {
        // A POST dropped before Alma saw it looks, to the client, like one whose answer was lost:
        // the lookup finds nothing, and only the operator creates the set again.
        let end = if kind == FaultKind::DropBefore && target == Target::SetCreate {
            End::OperatorConfirms(SET)
        } else {
            End::Done
        };
        cell(name, with(kind, target, 0, 1), end, &[]).await;
    }
}

#[tokio::test]
async fn slow_pages_still_loading_and_420033() {
    cell(
        "slow-page",
        with(FaultKind::Slow(Duration::from_secs(30)), Target::AnalyticsNext, 0, 1),
        End::Done,
        &["--request-timeout", "0.5"],
    )
    .await;
    cell("still-loading", sim_config().still_loading(3), End::Done, &[]).await;
    cell(
        "420033-mid-report",
        with(FaultKind::NoMoreRows, Target::AnalyticsNext, 0, 1),
        End::Refused,
        &[],
    )
    .await;
}

#[tokio::test]
async fn daily_threshold_mid_run_resumes_the_next_day() {
    // Today's quota is gone mid-run (after the set); tomorrow's is ample.
    // Each add-members call takes a moment, so that the quota runs out between two of them.
    let sim = sim(sim_config()
        .manual_clock()
        .daily_quota(100_000)
        .fault(Fault::new(FaultKind::Slow(Duration::from_millis(200)), Target::SetOp).count(1000)))
    .await;
    let dir = temp_dir("daily");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    // The plan's lookups fit in today's quota; other integrations use up the rest once the set
    // is made (the quota is the institution's, shared).
    let child = crate::execute::command(&sim, &state, &["run", q.to_str().unwrap(), "--execute", "--yes"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for _ in 0..20_000 {
        if sim
            .handle
            .requests()
            .iter()
            .any(|r| r.target == Target::SetCreate && r.status.is_some())
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    sim.handle.set_quota_remaining(2);
    let first = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let first_err = String::from_utf8_lossy(&first.stderr).into_owned();
    assert_eq!(first.status.code(), Some(3), "{first_err}");
    assert!(
        first_err.contains("DAILY_THRESHOLD") && suggests(&first_err, "resume"),
        "{first_err}"
    );
    let runs: serde_json::Value = runs_json(&sim, &state).await;
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        run(&sim, &state, &["resume", &run_id]).await.code,
        3,
        "still the same day"
    );
    // The next morning: the lookups are more than a day old, so resume looks everyone up again
    // (who expired overnight is taken out of the set before the job).
    sim.handle.advance(Duration::from_secs(30 * 3600));
    let next_day = run(&sim, &state, &["resume", &run_id, "--json"]).await;
    assert_eq!(next_day.code, 0, "{}", next_day.stderr);
    assert_done_once(&sim);
}

#[tokio::test]
async fn five_runs_an_hour_then_resume_later() {
    let sim = sim(sim_config().manual_clock()).await;
    sim.busy_jobs(5).await;
    let dir = temp_dir("402223");
    let state = dir.join("state");
    let first = execute_run(&sim, &state, all_users_query(&dir, 5000).to_str().unwrap(), &[]).await;
    assert_eq!(first.code, 3, "{}", first.stderr);
    assert!(
        first.stderr.contains("402223") && first.stderr.contains("5 times an hour"),
        "{}",
        first.stderr
    );
    sim.handle.advance(Duration::from_secs(3601));
    let runs: serde_json::Value = runs_json(&sim, &state).await;
    let resumed = run(&sim, &state, &["resume", runs[0]["run_id"].as_str().unwrap()]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let ours: Vec<_> = sim
        .handle
        .job_instances()
        .into_iter()
        .filter(|i| i.members == eligible_ids(&sim).len())
        .collect();
    assert_eq!(ours.len(), 1, "one job for our set");
}

#[tokio::test]
async fn a_job_that_never_finishes_within_the_deadline() {
    let sim = sim(sim_config().job_outcome(JobOutcome::NeverFinishes)).await;
    let dir = temp_dir("never");
    let r = run(
        &sim,
        &dir.join("state"),
        &[
            "--job-deadline",
            "0.5",
            "run",
            all_users_query(&dir, 5000).to_str().unwrap(),
            "--execute",
            "--yes",
        ],
    )
    .await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("has not ended") && suggests(&r.stderr, "resume"),
        "{}",
        r.stderr
    );
    assert_eq!(sim.handle.job_instances().len(), 1, "submitted once, still running");
}
