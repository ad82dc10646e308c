//! At most once, whatever happens: the run's state machine against a simulator that disagrees
//! with the client's assumptions (time zones, listing lag, odd but real answer shapes), each case
//! followed by the next action a real operator or cron would take.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use alma_sim::{Fault, FaultKind, JobOutcome, Quirk, SimConfig, Target, parse_offset};
use chrono::{NaiveTime, Utc};
use serde_json::Value;

use crate::cli::temp_dir;
use crate::execute::{all_users_query, assert_done_once, execute_run, last_json, run, runs_json, sim_config};
use crate::support::*;

/// A manual clock today (UTC date of the machine) at `hh:mm` UTC: the client's dates come from
/// the real clock, Alma's from the simulator's, and the two agree on the UTC day as in life.
fn today_at(hh: u32, mm: u32) -> chrono::DateTime<Utc> {
    Utc::now()
        .date_naive()
        .and_time(NaiveTime::from_hms_opt(hh, mm, 0).unwrap())
        .and_utc()
}

/// The job instances this tool submitted (other staff's runs left out).
fn our_instances(sim: &Sim) -> Vec<alma_sim::InstanceSummary> {
    sim.handle
        .job_instances()
        .into_iter()
        .filter(|i| {
            i.parameters
                .iter()
                .any(|(k, v)| k == "job_name" && v.starts_with("alma-cohort "))
        })
        .collect()
}

/// One letter per user the letter can reach, and none twice.
fn assert_one_letter_each(sim: &Sim) {
    let letters = sim.handle.outbox();
    let unique: HashSet<&str> = letters.iter().map(|l| l.user_primary_id.as_str()).collect();
    assert_eq!(unique.len(), letters.len(), "a user got two letters");
    assert_eq!(letters.len(), eligible_ids(sim).len(), "one letter per member");
    assert_nobody_locked_out(sim);
}

fn state_of(runs: &Value, i: usize) -> &str {
    runs[i]["state"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn an_interrupted_scheduled_run_is_not_started_again_with_or_without_a_period() {
    for period in [Some("2027-spring"), None] {
        let sim = sim(sim_config().manual_clock().job_duration(Duration::from_secs(600))).await;
        let dir = temp_dir("rescheduled");
        let state = dir.join("state");
        let q = all_users_query(&dir, 5000);
        let q = q.to_str().unwrap();
        let mut scheduled = vec![];
        if let Some(p) = period {
            scheduled.extend(["--period", p]);
        }
        // Following stops (the deadline; in life 12 h, a reboot, 20 failed polls): exit 3.
        let mut first: Vec<&str> = scheduled.clone();
        first.extend(["--job-deadline", "1"]);
        let r = execute_run(&sim, &state, q, &first).await;
        assert_eq!(r.code, 3, "{period:?}: {}", r.stderr);
        let runs = runs_json(&sim, &state).await;
        let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
        assert_eq!(state_of(&runs, 0), "job_submitted");

        // The schedule fires again: refused, naming the run and how to go on; nothing in Alma.
        let again = execute_run(&sim, &state, q, &scheduled).await;
        assert_eq!(again.code, 4, "{period:?}: {}", again.stderr);
        assert!(
            again.stderr.contains(&run_id) && suggests(&again.stderr, &format!("resume {run_id}")),
            "{}",
            again.stderr
        );
        assert_eq!(again.stderr.matches("error:").count(), 1, "{}", again.stderr);
        // --force never runs over an unfinished run either.
        let mut forced = scheduled.clone();
        forced.push("--force");
        let forced = execute_run(&sim, &state, q, &forced).await;
        assert_eq!(forced.code, 4, "{}", forced.stderr);
        assert_eq!((sim.handle.sets().len(), sim.handle.job_instances().len()), (1, 1));
        assert_eq!(runs_json(&sim, &state).await.as_array().unwrap().len(), 1);

        // The operator resumes once the job has run; then the period is done.
        sim.handle.clock().advance(Duration::from_secs(600));
        let resumed = run(&sim, &state, &["resume", &run_id, "--json"]).await;
        assert_eq!(resumed.code, 0, "{}", resumed.stderr);
        assert_eq!(last_json(&resumed.stdout)["state"], "completed");
        if period.is_some() {
            let skipped = execute_run(&sim, &state, q, &scheduled).await;
            assert_eq!(skipped.code, 4, "{}", skipped.stderr);
        }
        assert_done_once(&sim);
    }
}

/// The answer to `op=run` is lost after Alma started the job, at institutions in three time
/// zones and with a listing lag: the run finds the instance by its name, never submits twice.
#[tokio::test]
async fn a_lost_job_answer_is_found_in_any_time_zone_and_after_a_listing_lag() {
    let cases: [(&str, SimConfig, bool); 4] = [
        ("UTC", sim_config().manual_clock_at(today_at(10, 0)), false),
        (
            "-05:00 at 23:30 local",
            sim_config()
                .manual_clock_at(today_at(4, 30))
                .timezone(parse_offset("-05:00").unwrap()),
            false,
        ),
        (
            "+13:00",
            sim_config()
                .manual_clock_at(today_at(12, 0))
                .timezone(parse_offset("+13:00").unwrap()),
            false,
        ),
        (
            "listing lag 300 s",
            sim_config()
                .manual_clock_at(today_at(10, 0))
                .instance_listing_lag(Duration::from_secs(300)),
            true,
        ),
    ];
    for (name, config, lagged) in cases {
        let sim = sim(config.fault(Fault::new(FaultKind::DropAfter, Target::JobRun))).await;
        let dir = temp_dir("lost-run");
        let state = dir.join("state");
        let q = all_users_query(&dir, 5000);
        let q = q.to_str().unwrap();
        let r = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
        if lagged {
            // Not listed yet: stop and say what to check; the cron's next run is refused.
            assert_eq!(r.code, 3, "{name}: {}", r.stderr);
            assert!(
                r.stderr.contains("Alma may have started the job")
                    && r.stderr.contains("Monitor Jobs")
                    && r.stderr.contains("--resubmit-job"),
                "{name}: {}",
                r.stderr
            );
            let runs = runs_json(&sim, &state).await;
            assert_eq!(state_of(&runs, 0), "job_submitting");
            let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
            assert_eq!(execute_run(&sim, &state, q, &["--period", "2027-spring"]).await.code, 4);
            let early = run(&sim, &state, &["resume", &run_id]).await;
            assert_eq!(
                early.code, 3,
                "{name}: resume looks again, never resubmits: {}",
                early.stderr
            );
            assert_eq!(sim.handle.job_instances().len(), 1, "{name}");
            sim.handle.clock().advance(Duration::from_secs(301));
            let later = run(&sim, &state, &["resume", &run_id]).await;
            assert_eq!(later.code, 0, "{name}: {}", later.stderr);
        } else {
            assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        }
        let runs = runs_json(&sim, &state).await;
        assert_eq!(state_of(&runs, 0), "completed", "{name}");
        assert_eq!(
            sim.handle
                .requests()
                .iter()
                .filter(|r| r.target == Target::JobRun)
                .count(),
            1,
            "{name}: submitted once"
        );
        assert_done_once(&sim);
    }
}

/// A busy institution: 150 other instances of the job in the window, `total_record_count` as a
/// string — the lookup reads every page and finds the run's instance on the second.
#[tokio::test]
async fn the_lookup_reads_every_page_with_a_string_total() {
    let sim = sim(sim_config()
        .manual_clock_at(today_at(10, 0))
        .past_instances(150)
        .quirk(Quirk::TotalRecordCountString)
        .fault(Fault::new(FaultKind::DropAfter, Target::JobRun)))
    .await;
    let dir = temp_dir("busy-lookup");
    let r = execute_run(
        &sim,
        &dir.join("state"),
        all_users_query(&dir, 5000).to_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(our_instances(&sim).len(), 1);
    let pages = sim
        .handle
        .requests()
        .iter()
        .filter(|r| r.target == Target::JobInstances)
        .count();
    assert!(pages >= 2, "{pages} instance-list pages read");
    assert_one_letter_each(&sim);
}

/// A 2xx to `op=run` is a submission whatever its body says: the instance comes from "Job no. N"
/// when there is no link, or is found by name; a lookup that does not find it yet stops the run
/// (it is never resubmitted, not even with --resubmit-job).
#[tokio::test]
async fn a_success_without_a_link_is_a_submission() {
    let sim1 = sim(sim_config().quirk(Quirk::RunWithoutLink)).await;
    let dir = temp_dir("no-link");
    let r = execute_run(
        &sim1,
        &dir.join("state"),
        all_users_query(&dir, 5000).to_str().unwrap(),
        &["--json"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        last_json(&r.stdout)["job_instance_id"].as_str(),
        Some(sim1.handle.job_instances()[0].id.as_str()),
        "the instance id read from \"Job no. N\""
    );
    assert_eq!(
        sim1.handle
            .requests()
            .iter()
            .filter(|r| r.target == Target::JobInstances)
            .count(),
        4,
        "the cooldown's at the plan and right before the job (when other runs' letters went), Alma's listing before the checks and right before the submission, no lookup after"
    );
    assert_done_once(&sim1);

    let sim2 = sim(sim_config()
        .manual_clock_at(today_at(10, 0))
        .quirk(Quirk::RunWithoutInstance)
        .instance_listing_lag(Duration::from_secs(120)))
    .await;
    let dir = temp_dir("no-instance");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let r = execute_run(&sim2, &state, q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("Alma took the job"), "{}", r.stderr);
    let runs = runs_json(&sim2, &state).await;
    assert_eq!(state_of(&runs, 0), "job_submitted");
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let refused = run(&sim2, &state, &["resume", &run_id, "--resubmit-job"]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("--resubmit-job does not apply"),
        "{}",
        refused.stderr
    );
    sim2.handle.clock().advance(Duration::from_secs(121));
    let resumed = run(&sim2, &state, &["resume", &run_id]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_done_once(&sim2);
}

/// Alma never got the job (the request timed out before it was processed): the run stops, a plain
/// `resume` looks again and stops again, and only the operator's `--resubmit-job` submits.
#[tokio::test]
async fn resubmission_only_on_the_operators_word() {
    let slow = Fault::new(FaultKind::Slow(Duration::from_secs(3)), Target::JobRun);
    let sim = sim(sim_config().fault(slow)).await;
    let dir = temp_dir("resubmit");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--request-timeout", "0.5"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("Alma may have started the job"), "{}", r.stderr);
    let run_id = runs_json(&sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    let again = run(&sim, &state, &["resume", &run_id]).await;
    assert_eq!(again.code, 3, "{}", again.stderr);
    assert!(sim.handle.job_instances().is_empty(), "Alma never started it");
    let resubmitted = run(&sim, &state, &["resume", &run_id, "--resubmit-job", "--json"]).await;
    assert_eq!(resubmitted.code, 0, "{}", resubmitted.stderr);
    let show = run(&sim, &state, &["show", &run_id]).await;
    assert!(show.stdout.contains("resume --resubmit-job by"), "{}", show.stdout);
    // And once the instance is known, --resubmit-job is refused.
    let known = run(&sim, &state, &["resume", &run_id, "--resubmit-job"]).await;
    assert_eq!(known.code, 4, "{}", known.stderr);
    assert_done_once(&sim);
}

fn query_with(dir: &Path, job: &str) -> String {
    write_query(
        dir,
        "params.toml",
        &format!(
            "name = \"params\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[job]\n{job}\n[guard]\nmax_members = 5000\n"
        ),
    )
    .display()
    .to_string()
}

#[tokio::test]
async fn reserved_job_parameters_and_user_updates_are_refused_before_any_write() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("reserved");
    let state = dir.join("state");
    for (key, value) in [
        ("job_name", "\"Spring reset\""),
        ("set_id", "\"123\""),
        ("SEND_Notification_To_User_Active", "\"false\""),
        ("SEND_Notification_To_User_Value", "\"NOTIFY_NOTHING\""),
    ] {
        let q = query_with(&dir, &format!("[job.parameters]\n{key} = {value}"));
        for args in [
            vec!["validate", q.as_str()],
            vec!["run", q.as_str(), "--execute", "--yes"],
        ] {
            let r = run(&sim, &state, &args).await;
            assert_eq!(r.code, 2, "{key}: {}", r.stderr);
            assert!(
                r.stderr.contains(&format!("job.parameters.{key}")),
                "{key}: {}",
                r.stderr
            );
        }
    }
    let q = query_with(&dir, "[job.parameters]\nUPDATE_User_Group_Active = \"true\"");
    let r = run(&sim, &state, &["run", q.as_str(), "--execute", "--yes"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("allow_user_updates"), "{}", r.stderr);
    let r = run(&sim, &state, &["validate", q.as_str()]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty());
    let q = query_with(
        &dir,
        "allow_user_updates = true\n[job.parameters]\nUPDATE_User_Group_Active = \"true\"",
    );
    assert_eq!(run(&sim, &state, &["validate", q.as_str()]).await.code, 0);
}

/// The Users API is down. With the live lookups on, nobody can be checked: the run stops before
/// anything is written (exit 3), naming the call and never an ID. With the report deciding
/// (`lookup = false`), the lookups that only explain refused IDs fail and the run goes on.
#[tokio::test]
async fn failing_user_lookups_stop_the_plan_but_never_block_a_job_that_needs_none() {
    let dir = temp_dir("explain");
    let csv = dir.join("cohort.csv");
    let probe = sim(sim_config()).await;

    let mut text = reachable_report_csv(&probe, 30);
    text.push_str("NO-SUCH-1,Internal,Active,,nobody@example.edu\n");
    std::fs::write(&csv, text).unwrap();
    let sim = sim(sim_config()
        .csv_report("/shared/Mine/Cohort", &csv)
        .fault(Fault::new(FaultKind::ServerError, Target::UserGet).count(100_000)))
    .await;
    let query = |extra: &str| {
        let q = dir.join("mine.toml");
        std::fs::write(&q, format!("name = \"mine\"\n[report]\npath = \"/shared/Mine/Cohort\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 100\nmax_refused_ratio = 0.05\n{extra}")).unwrap();
        q
    };
    let live = execute_run(&sim, &dir.join("state"), query("").to_str().unwrap(), &["--json"]).await;
    assert_eq!(live.code, 3, "{}", live.stderr);
    let errors: Vec<&str> = live.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{}", live.stderr);
    assert!(
        errors[0].contains("GET /almaws/v1/users/…") && !errors[0].contains("NO-SUCH"),
        "{}",
        errors[0]
    );
    assert!(
        sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
        "nothing written"
    );

    // 1 of 31 refused: within a 5 % share, so the job runs (and the run completes with a warning).
    let q = query(
        "[eligibility]\nlookup = false\naccount_type_column = \"Account Type\"\nstatus_column = \"Status\"\nexpiry_column = \"Expiry Date\"\nemail_column = \"Preferred Email\"\n",
    );
    let r = execute_run(&sim, &dir.join("state"), q.to_str().unwrap(), &["--json"]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v = last_json(&r.stdout);
    assert_eq!(
        (v["members_added"].as_u64(), v["state"].as_str()),
        (Some(30), Some("completed"))
    );
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("1 not in Alma: no letter (NO-SUCH-1"),
        "{v}"
    );
    assert_eq!(sim.handle.job_instances().len(), 1);
}

#[tokio::test]
async fn a_period_whose_job_failed_is_not_run_again_without_force() {
    let sim = sim(sim_config().job_outcome(JobOutcome::CompletedFailed)).await;
    let dir = temp_dir("failed-period");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let q = q.to_str().unwrap();
    let r = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let run_id = runs_json(&sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    let again = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert!(
        again.stderr.contains("may have mailed part of the cohort")
            && suggests(&again.stderr, &format!("show {run_id}"))
            && again.stderr.contains("--force"),
        "{}",
        again.stderr
    );
    assert_eq!(sim.handle.sets().len(), 1);
    let forced = execute_run(&sim, &state, q, &["--period", "2027-spring", "--force"]).await;
    assert_eq!(forced.code, 1, "{}", forced.stderr);
    assert_eq!(sim.handle.sets().len(), 2);
}

#[tokio::test]
async fn abandon_before_and_after_the_job_and_its_bad_input() {
    // A run stopped before its job: Alma refuses the submission for its thresholds.
    let sim = sim(sim_config().job_outcome(JobOutcome::NeverFinishes)).await;
    sim.busy_jobs(3).await;
    let dir = temp_dir("abandon");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let q = q.to_str().unwrap();
    let r = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    let runs = runs_json(&sim, &state).await;
    assert_eq!(
        state_of(&runs, 0),
        "members_done",
        "a definite refusal: the job was not started"
    );
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let before = std::fs::read(state.join("journal.sqlite")).unwrap().len();

    // Bad input: each one error line, exit 2 or 4, nothing changed.
    let no_reason = run(&sim, &state, &["abandon", &run_id, "--reason", " "]).await;
    assert_eq!(no_reason.code, 2, "{}", no_reason.stderr);
    let unknown = run(&sim, &state, &["abandon", "20990101T000000Z-0000", "--reason", "x"]).await;
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    let resubmit = run(&sim, &state, &["resume", &run_id, "--resubmit-job"]).await;
    assert_eq!(resubmit.code, 4, "{}", resubmit.stderr);
    for r in [&no_reason, &unknown, &resubmit] {
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    }
    assert_eq!(state_of(&runs_json(&sim, &state).await, 0), "members_done");

    let ok = run(&sim, &state, &["abandon", &run_id, "--reason", "term start moved"]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let show = run(&sim, &state, &["show", &run_id]).await;
    assert!(
        show.stdout.contains("abandoned by") && show.stdout.contains("term start moved"),
        "{}",
        show.stdout
    );
    let twice = run(&sim, &state, &["abandon", &run_id, "--reason", "again"]).await;
    assert_eq!(twice.code, 4, "{}", twice.stderr);
    assert!(before > 0);
    // Abandoned before its job: the period is open again, and the next run may start.
    assert_eq!(sim.handle.job_instances().len(), 3, "nothing of ours submitted");

    // A run whose job may have started: abandon needs --i-checked-alma, and the period stays shut.
    let sim2 = crate::support::sim(sim_config().manual_clock().job_duration(Duration::from_secs(600))).await;
    let sim = &sim2;
    let dir = temp_dir("abandon-after");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let q = q.to_str().unwrap();
    let r = execute_run(sim, &state, q, &["--period", "2027-spring", "--job-deadline", "1"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    let run_id = runs_json(sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    let unchecked = run(sim, &state, &["abandon", &run_id, "--reason", "wrong cohort"]).await;
    assert_eq!(unchecked.code, 4, "{}", unchecked.stderr);
    assert!(
        unchecked.stderr.contains("Monitor Jobs") && unchecked.stderr.contains("--i-checked-alma"),
        "{}",
        unchecked.stderr
    );
    let checked = run(
        sim,
        &state,
        &["abandon", &run_id, "--reason", "wrong cohort", "--i-checked-alma"],
    )
    .await;
    assert_eq!(checked.code, 0, "{}", checked.stderr);
    let again = execute_run(sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert!(again.stderr.contains("may have mailed"), "{}", again.stderr);
    assert_eq!(sim.handle.sets().len(), 1);
}

/// Journals written by the schema 1 and 2 code (fixtures/journal) are migrated in place: every
/// run gets the state its record implies, a run overtaken by a later one of the same period is
/// abandoned, and what comes next is safe — the period is skipped, a submission that was never
/// confirmed is looked up and never resubmitted.
#[tokio::test]
async fn journals_of_schema_1_and_2_are_migrated_and_stay_safe() {
    for version in ["v1", "v2"] {
        // The simulator the files were written against (`alma-cohort sim` defaults: seed 42).
        let sim = sim(sim_config().users(30).seed(42)).await;
        let dir = temp_dir(&format!("migrate-{version}"));
        let state = dir.join("state");
        std::fs::create_dir_all(&state).unwrap();
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/journal/{version}.sqlite"));
        std::fs::copy(&fixture, state.join("journal.sqlite")).unwrap();

        let runs = runs_json(&sim, &state).await;
        let by_query = |q: &str| -> Vec<(String, String)> {
            let mut v: Vec<(String, String)> = runs
                .as_array()
                .unwrap()
                .iter()
                .filter(|r| r["query"] == q)
                .map(|r| {
                    (
                        r["run_id"].as_str().unwrap().to_string(),
                        r["state"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            v.sort();
            v
        };
        let everyone = by_query("everyone");
        assert_eq!(
            everyone.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>(),
            ["abandoned", "completed"],
            "{version}: the overtaken run is abandoned"
        );
        assert_eq!(by_query("stuck-submit")[0].1, "job_submitting", "{version}");
        assert_eq!(by_query("following")[0].1, "job_submitted", "{version}");
        assert_eq!(by_query("stuck-members")[0].1, "members_done", "{version}");
        let journal = alma_cohort_core::journal::Journal::open(&state).unwrap();
        assert_eq!(
            journal.schema_version().unwrap(),
            alma_cohort_core::journal::SCHEMA_VERSION
        );
        drop(journal);
        let show = run(&sim, &state, &["show", &everyone[0].0]).await;
        assert!(
            show.stdout.contains("abandoned by the schema 3 migration"),
            "{}",
            show.stdout
        );

        // The scheduled command for the completed period: skipped, nothing written.
        let q = dir.join("everyone.toml");
        std::fs::write(&q, format!("name = \"everyone\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 5000\n")).unwrap();
        let skipped = execute_run(
            &sim,
            &state,
            q.to_str().unwrap(),
            &["--period", "2026-spring", "--json"],
        )
        .await;
        assert_eq!(skipped.code, 4, "{version}: {}", skipped.stderr);
        assert_eq!(last_json(&skipped.stdout)["skipped"], true);
        // The unconfirmed submission: looked up (this Alma has none), never resubmitted.
        let stuck = run(&sim, &state, &["resume", &by_query("stuck-submit")[0].0]).await;
        assert_eq!(stuck.code, 3, "{version}: {}", stuck.stderr);
        assert!(
            stuck.stderr.contains("Alma may have started the job"),
            "{}",
            stuck.stderr
        );
        // The overtaken run cannot be resumed.
        let overtaken = run(&sim, &state, &["resume", &everyone[0].0]).await;
        assert!(overtaken.stderr.contains("already ended"), "{}", overtaken.stderr);
        assert!(
            sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
            "{version}"
        );
    }
}

/// The operator resumes with --resubmit-job too early (Alma lists the first instance late): Alma
/// answers 60347, a job already runs on this run's own set — that job is this run's, so it is
/// followed, never submitted a third time, and no one gets two letters.
#[tokio::test]
async fn a_job_already_running_on_the_runs_set_is_the_runs_own() {
    let sim = sim(sim_config()
        .manual_clock_at(today_at(10, 0))
        .job_duration(Duration::from_secs(600))
        .instance_listing_lag(Duration::from_secs(300))
        .fault(Fault::new(FaultKind::DropAfter, Target::JobRun)))
    .await;
    let dir = temp_dir("overlap");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    let run_id = runs_json(&sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    let early = run(&sim, &state, &["resume", &run_id, "--resubmit-job"]).await;
    assert_eq!(early.code, 3, "{}", early.stderr);
    assert!(
        early.stderr.contains("Alma may have started the job") && early.stderr.contains("60347"),
        "{}",
        early.stderr
    );
    assert_eq!(
        sim.handle.job_instances().len(),
        1,
        "Alma refused the second submission (60347)"
    );
    // The cron fires again and a plain resume runs: it looks, and never submits on its own.
    let plain = run(&sim, &state, &["resume", &run_id]).await;
    assert_eq!(plain.code, 3, "{}", plain.stderr);
    assert_eq!(sim.handle.job_instances().len(), 1);
    sim.handle.clock().advance(Duration::from_secs(601));
    let resumed = run(&sim, &state, &["resume", &run_id]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_done_once(&sim);
}

/// Between a stop and `resume`, someone swaps a person of the run's (public) set for another in
/// Alma — the count stays the same: the job is not submitted on it.
#[tokio::test]
async fn a_set_changed_in_alma_is_not_used() {
    let sim = sim(sim_config().users(300).job_outcome(JobOutcome::NeverFinishes)).await;
    sim.busy_jobs(3).await;
    let dir = temp_dir("set-changed");
    let state = dir.join("state");
    let q = dir.join("some.toml");
    std::fs::write(
        &q,
        format!("name = \"some\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\nwhere = \"\\\"User Group\\\" = 'UGRAD'\"\n[guard]\nmax_members = 5000\n"),
    )
    .unwrap();
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    let runs = runs_json(&sim, &state).await;
    assert_eq!(state_of(&runs, 0), "members_done");
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let set_id = runs[0]["set_id"].as_str().unwrap().to_string();
    let outsider = sim
        .handle
        .users()
        .into_iter()
        .find(|u| u.user_group != "UGRAD")
        .unwrap()
        .primary_id;
    // One member swapped for another: the count is the same.
    let member = sim.handle.set_members(&set_id).unwrap()[0].clone();
    let removed = sim
        .post_json(
            &format!("conf/sets/{set_id}?op=delete_members"),
            &serde_json::json!({"members": {"member": [{"id": member}]}}),
        )
        .await;
    assert_eq!(removed.status, 200, "{}", removed.text);
    assert_eq!(sim.add_members(&set_id, &[outsider.as_str()], None).await.status, 200);
    let before = sim.handle.job_instances().len();
    let resumed = run(&sim, &state, &["resume", &run_id]).await;
    assert_eq!(resumed.code, 4, "{}", resumed.stderr);
    assert!(
        resumed.stderr.contains("it was changed in Alma since") && resumed.stderr.contains(&outsider),
        "{}",
        resumed.stderr
    );
    assert_eq!(sim.handle.job_instances().len(), before, "nothing submitted");
}

/// COMPLETED_WARNING is a completed run with a warning, not a plain success: the summary's first
/// line says so, the job's counters and alerts are in it (what cron mails), `--json` carries
/// `job_status` and `warnings`, and the exit code is 1. The period is done: cron's next firing
/// is refused (exit 4), no second job.
#[tokio::test]
async fn a_job_that_completed_with_warnings_exits_1_and_says_so() {
    let sim = sim(sim_config().job_outcome(JobOutcome::Warning)).await;
    let dir = temp_dir("completed-warning");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let q = q.to_str().unwrap();
    let r = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(r.code, 1, "{}", r.stderr);
    let first = r.stdout.lines().find(|l| l.starts_with("run ")).unwrap_or_default();
    assert!(
        first.contains(" completed with warnings: ") && first.contains("ended COMPLETED_WARNING"),
        "{}",
        r.stdout
    );
    assert!(
        r.stdout
            .contains("  warning: the job completed with warnings (COMPLETED_WARNING)")
            && r.stdout.contains("  alert ")
            && r.stdout
                .lines()
                .any(|l| l.starts_with("  ") && l.contains(": ") && !l.contains("alert") && !l.contains("warning")),
        "counters and alerts in the summary: {}",
        r.stdout
    );
    let run_id = runs_json(&sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    let show = run(&sim, &state, &["resume", &run_id, "--json"]).await;
    assert_eq!(show.code, 1, "{}", show.stderr);
    let v = last_json(&show.stdout);
    assert_eq!(v["job_status"], "COMPLETED_WARNING");
    assert!(v["warnings"][0].as_str().unwrap().contains("COMPLETED_WARNING"), "{v}");
    let again = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert_eq!(sim.handle.job_instances().len(), 1);
}
