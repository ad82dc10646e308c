//! `run --execute` and `resume` end to end: the real binary against the simulator, killed for
//! real at the unsafe moments, and the simulator's state checked afterwards — one set with exactly
//! the cohort, one job instance, one letter per INTERNAL member.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use alma_sim::{Fault, FaultKind, JobOutcome, SimConfig, Target};
use serde_json::Value;

use crate::cli::{Run, temp_dir};
use crate::support::*;

/// A query over "All users": the cohort is every user (externals too, so the set holds people
/// who must get no letter).
pub fn all_users_query(dir: &Path, max_members: usize) -> PathBuf {
    let p = dir.join("everyone.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"everyone\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = {max_members}\n"
        ),
    )
    .unwrap();
    p
}

pub fn command(sim: &Sim, state: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
    against(&mut cmd, sim, state);
    cmd.args(args);
    cmd
}

/// Points `cmd` (the binary, or a script that runs it with its flags after its own) at the
/// simulator and `state`, with the test's key, no retry waits, no pace and quick polls.
pub fn against(cmd: &mut Command, sim: &Sim, state: &Path) {
    cmd.arg("--base-url")
        .arg(sim.handle.base_url())
        .arg("--state-dir")
        .arg(state)
        .env("ALMA_API_KEY", KEY)
        .env("ALMA_COHORT_RETRY_DELAY", "0")
        .env("ALMA_COHORT_PACE", "1000")
        .env("ALMA_COHORT_POLL_INTERVAL", "0.05")
        .env_remove("ALMA_BASE_URL")
        .stdin(Stdio::null());
    crate::cli::isolate_home(cmd);
}

pub async fn run(sim: &Sim, state: &Path, args: &[&str]) -> Run {
    output(command(sim, state, args)).await
}

/// Runs `cmd` to its end off the async threads: its exit code and output.
pub async fn output(mut cmd: Command) -> Run {
    let out = tokio::task::spawn_blocking(move || cmd.output().expect("runs"))
        .await
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `run QUERY --execute --yes [extra…]`.
pub async fn execute_run(sim: &Sim, state: &Path, query: &str, extra: &[&str]) -> Run {
    let mut args = vec!["run", query, "--execute", "--yes"];
    args.extend_from_slice(extra);
    run(sim, state, &args).await
}

/// The journal's runs (`runs --json`), newest first.
pub async fn runs_json(sim: &Sim, state: &Path) -> Value {
    serde_json::from_str(&run(sim, state, &["runs", "--json"]).await.stdout).unwrap_or_default()
}

pub fn last_json(stdout: &str) -> Value {
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null)
}

/// One set holding exactly the cohort the letter can reach (every user Alma says is internal,
/// active, unexpired, with a preferred email and no staff role: the others are left out before
/// the set), one job instance, one letter with the password per member, nobody locked out.
pub fn assert_done_once(sim: &Sim) {
    let sets = sim.handle.sets();
    assert_eq!(sets.len(), 1, "exactly one set: {sets:?}");
    let members: HashSet<String> = sim
        .handle
        .set_members(&sets[0].id)
        .unwrap()
        .into_iter()
        .map(|m| m.to_lowercase())
        .collect();
    assert_eq!(
        members,
        eligible_ids(sim),
        "the set holds exactly who can read the letter"
    );
    let instances = sim.handle.job_instances();
    assert_eq!(instances.len(), 1, "exactly one job instance: {instances:?}");
    assert_eq!(instances[0].status, "COMPLETED_SUCCESS");
    let letters = sim.handle.outbox();
    let lettered: Vec<String> = letters
        .iter()
        .filter(|l| l.carries_password)
        .map(|l| l.user_primary_id.to_lowercase())
        .collect();
    assert_eq!(lettered.len(), members.len(), "one letter per member");
    assert_eq!(
        lettered.into_iter().collect::<HashSet<_>>(),
        members,
        "and none for anyone else"
    );
    assert_eq!(sim.handle.resets().len(), members.len(), "one reset per member");
    assert_nobody_locked_out(sim);
}

pub fn sim_config() -> SimConfig {
    SimConfig::default()
        .users(2600)
        .seed(11)
        .rate_limit(0)
        .job_duration(Duration::ZERO)
}

#[tokio::test]
async fn a_2600_member_cohort_end_to_end_and_the_json_contract() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("e2e");
    let q = all_users_query(&dir, 5000);
    let state = dir.join("state");
    let r = execute_run(
        &sim,
        &state,
        q.to_str().unwrap(),
        &["--json", "--period", "2026-spring"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = last_json(&r.stdout);
    for field in [
        "run_id",
        "query",
        "period",
        "cohort_size",
        "set_id",
        "set_name",
        "members_added",
        "invalid_ids",
        "job_id",
        "job_instance_id",
        "job_status",
        "resumed",
        "skipped",
    ] {
        assert!(v.get(field).is_some(), "{field} in {v}");
    }
    // Everyone the letter can reach: the others are left out before the set, by name.
    let reachable = eligible_ids(&sim).len() as u64;
    assert_eq!(
        (v["cohort_size"].as_u64(), v["members_added"].as_u64()),
        (Some(reachable), Some(reachable))
    );
    assert_eq!(
        v["left_out"].as_array().unwrap().len() as u64,
        2600 - reachable,
        "the others are named"
    );
    assert_eq!(
        (v["job_status"].as_str(), v["resumed"].as_bool(), v["skipped"].as_bool()),
        (Some("COMPLETED_SUCCESS"), Some(false), Some(false))
    );
    assert_eq!(v["period"], "2026-spring");
    // A period run's set is named after its intent (query and period), the same on every
    // machine, so that Alma itself refuses a second one; the run id is in its stamp.
    assert_eq!(
        v["set_name"].as_str().unwrap(),
        "User Password Reset everyone 2026-spring (alma-cohort)"
    );
    let set = &sim.handle.sets()[0];
    assert!(
        set.description
            .contains(&format!("\"run\":\"{}\"", v["run_id"].as_str().unwrap())),
        "the stamp names the run: {}",
        set.description
    );
    assert_done_once(&sim);
    // The API budget: ⌈rows/limit⌉ report pages, one set, ⌈members/1000⌉ add-members calls, one
    // job run.
    let calls = |t: Target| sim.handle.requests().iter().filter(|r| r.target == t).count();
    assert_eq!(
        [
            calls(Target::AnalyticsFirst) + calls(Target::AnalyticsNext),
            calls(Target::SetCreate),
            calls(Target::SetOp),
            calls(Target::JobRun)
        ],
        [3, 1, eligible_ids(&sim).len().div_ceil(1000), 1]
    );
    let run_dir = state.join("runs").join(v["run_id"].as_str().unwrap());
    for f in ["cohort.csv", "summary.json", "report.md"] {
        assert!(run_dir.join(f).is_file(), "{f}");
    }
    let report = std::fs::read_to_string(run_dir.join("report.md")).unwrap();
    assert!(
        report.contains("COMPLETED_SUCCESS") && report.contains(&format!("{} added", eligible_ids(&sim).len())),
        "{report}"
    );

    // The same period again is refused, with nothing done; --force runs it.
    let again = execute_run(
        &sim,
        &state,
        q.to_str().unwrap(),
        &["--json", "--period", "2026-spring"],
    )
    .await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert_eq!(last_json(&again.stdout)["skipped"], true);
    assert!(again.stderr.contains("--force"));
    assert_eq!(sim.handle.sets().len(), 1);
    let forced = execute_run(
        &sim,
        &state,
        q.to_str().unwrap(),
        &["--json", "--period", "2026-spring", "--force"],
    )
    .await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
    assert_eq!(sim.handle.sets().len(), 2);

    // runs and show read the journal.
    let runs = run(&sim, &state, &["runs", "--json"]).await;
    assert_eq!(
        serde_json::from_str::<Value>(&runs.stdout)
            .unwrap()
            .as_array()
            .unwrap()
            .len(),
        2
    );
    let show = run(&sim, &state, &["show", v["run_id"].as_str().unwrap()]).await;
    assert!(show.stdout.contains("# Password reset run"), "{}", show.stdout);
}

#[tokio::test]
async fn without_yes_and_without_a_terminal_nothing_happens() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("noyes");
    let q = all_users_query(&dir, 5000);
    let r = run(&sim, &dir.join("state"), &["run", q.to_str().unwrap(), "--execute"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--yes"), "{}", r.stderr);
    assert!(sim.handle.sets().is_empty());
}

/// Starts `run --execute`, waits until the simulator sees a request for `target` that it is
/// holding (a slow fault), kills the process there, and returns the run id from the journal.
async fn kill_at(sim: &Sim, state: &Path, query: &Path, target: Target, nth: usize) -> String {
    let mut child: Child = command(sim, state, &["run", query.to_str().unwrap(), "--execute", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    loop {
        let held = sim.handle.requests().iter().filter(|r| r.target == target).count();
        let in_flight = sim
            .handle
            .requests()
            .iter()
            .filter(|r| r.target == target)
            .nth(nth.saturating_sub(1))
            .is_some_and(|r| r.status.is_none());
        if held >= nth && in_flight {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before reaching {target:?}"
        );
        waited += 1;
        assert!(waited < 3000, "never reached {target:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill().unwrap(); // SIGKILL: no clean-up of any kind
    child.wait().unwrap();
    let runs = run(sim, state, &["runs", "--json"]).await;
    let runs: Value = serde_json::from_str(&runs.stdout).unwrap();
    assert_eq!(runs[0]["status"], "running");
    runs[0]["run_id"].as_str().unwrap().to_string()
}

async fn resume_to_the_end(sim: &Sim, state: &Path, run_id: &str) -> Value {
    let r = run(sim, state, &["resume", run_id, "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = last_json(&r.stdout);
    assert_eq!(
        (v["resumed"].as_bool(), v["job_status"].as_str()),
        (Some(true), Some("COMPLETED_SUCCESS"))
    );
    v
}

#[tokio::test]
async fn killed_after_set_creation() {
    let slow = Fault::new(FaultKind::Slow(Duration::from_secs(60)), Target::SetOp);
    let sim = sim(sim_config().fault(slow)).await;
    let dir = temp_dir("kill-set");
    let state = dir.join("state");
    let run_id = kill_at(&sim, &state, &all_users_query(&dir, 5000), Target::SetOp, 1).await;
    assert_eq!(sim.handle.sets().len(), 1);
    resume_to_the_end(&sim, &state, &run_id).await;
    assert_done_once(&sim);
}

#[tokio::test]
async fn killed_in_the_middle_of_adding_members() {
    let slow = Fault::new(FaultKind::Slow(Duration::from_secs(60)), Target::SetOp).skip(1);
    let sim = sim(sim_config().fault(slow)).await;
    let dir = temp_dir("kill-members");
    let state = dir.join("state");
    let run_id = kill_at(&sim, &state, &all_users_query(&dir, 5000), Target::SetOp, 2).await;
    assert_eq!(
        sim.handle.set_members(&sim.handle.sets()[0].id).unwrap().len(),
        1000,
        "one batch landed"
    );
    resume_to_the_end(&sim, &state, &run_id).await;
    assert_done_once(&sim);
}

#[tokio::test]
async fn killed_right_after_the_job_was_submitted() {
    let slow = Fault::new(FaultKind::Slow(Duration::from_secs(60)), Target::JobInstance);
    let sim = sim(sim_config().fault(slow)).await;
    let dir = temp_dir("kill-job");
    let state = dir.join("state");
    let run_id = kill_at(&sim, &state, &all_users_query(&dir, 5000), Target::JobInstance, 1).await;
    assert_eq!(sim.handle.job_instances().len(), 1);
    resume_to_the_end(&sim, &state, &run_id).await;
    assert_done_once(&sim);
}

#[tokio::test]
async fn killed_while_polling() {
    let slow = Fault::new(FaultKind::Slow(Duration::from_secs(60)), Target::JobInstance).skip(2);
    let sim = sim(sim_config().job_duration(Duration::from_millis(600)).fault(slow)).await;
    let dir = temp_dir("kill-poll");
    let state = dir.join("state");
    let run_id = kill_at(&sim, &state, &all_users_query(&dir, 5000), Target::JobInstance, 3).await;
    resume_to_the_end(&sim, &state, &run_id).await;
    assert_done_once(&sim);
}

#[tokio::test]
async fn lost_answers_to_set_creation_and_job_submission_make_nothing_twice() {
    let sim = sim(sim_config()
        .fault(Fault::new(FaultKind::DropAfter, Target::SetCreate))
        .fault(Fault::new(FaultKind::DropAfter, Target::SetOp).skip(1))
        .fault(Fault::new(FaultKind::DropAfter, Target::JobRun)))
    .await;
    let dir = temp_dir("lost-answers");
    let r = execute_run(
        &sim,
        &dir.join("state"),
        all_users_query(&dir, 5000).to_str().unwrap(),
        &["--json"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_done_once(&sim);
    let runs = sim.handle.requests();
    assert_eq!(
        runs.iter().filter(|r| r.target == Target::JobRun).count(),
        1,
        "the job was submitted once"
    );
    assert_eq!(
        runs.iter().filter(|r| r.target == Target::SetCreate).count(),
        1,
        "the set was created once"
    );
}

#[tokio::test]
async fn failed_jobs_exit_1_with_their_alerts() {
    for (outcome, status) in [
        (JobOutcome::CompletedFailed, "COMPLETED_FAILED"),
        (JobOutcome::Failed, "FAILED"),
    ] {
        let sim = sim(sim_config().job_outcome(outcome)).await;
        let dir = temp_dir("failed-job");
        let state = dir.join("state");
        let r = execute_run(&sim, &state, all_users_query(&dir, 5000).to_str().unwrap(), &[]).await;
        assert_eq!(r.code, 1, "{status}: {}", r.stderr);
        assert!(
            r.stdout.contains(status) && r.stdout.contains("alert alert_general_failure"),
            "{}",
            r.stdout
        );
        let report = std::fs::read_dir(state.join("runs"))
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.unwrap().path().join("report.md")).ok())
            .next()
            .unwrap();
        assert!(report.contains("## Job alerts") && report.contains(status), "{report}");
        assert!(sim.handle.outbox().is_empty());
    }
}

#[tokio::test]
async fn job_thresholds_say_when_to_try_again_and_leave_a_resumable_run() {
    let sim = sim(sim_config().job_outcome(JobOutcome::NeverFinishes)).await;
    // Three API jobs already running in this institution.
    sim.busy_jobs(3).await;
    let dir = temp_dir("threshold");
    let state = dir.join("state");
    let r = execute_run(&sim, &state, all_users_query(&dir, 5000).to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stderr.contains("402222")
            && r.stderr.contains("at most 3 API-submitted jobs")
            && suggests(&r.stderr, "resume"),
        "{}",
        r.stderr
    );
    assert_eq!(sim.handle.job_instances().len(), 3, "nothing submitted");
    let runs: Value = runs_json(&sim, &state).await;
    assert_eq!(
        (runs[0]["status"].as_str(), runs[0]["members_added"].as_u64()),
        (Some("running"), Some(eligible_ids(&sim).len() as u64))
    );
}

#[tokio::test]
async fn a_second_process_on_the_same_query_is_refused() {
    let slow = Fault::new(FaultKind::Slow(Duration::from_secs(60)), Target::SetOp);
    let sim = sim(sim_config().fault(slow)).await;
    let dir = temp_dir("lock");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let mut first = command(&sim, &state, &["run", q.to_str().unwrap(), "--execute", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut waited = 0;
    while !sim.handle.requests().iter().any(|r| r.target == Target::SetOp) {
        waited += 1;
        assert!(waited < 3000);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
    first.kill().unwrap();
    first.wait().unwrap();
    assert_eq!(second.code, 4, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another alma-cohort is running query \"everyone\""),
        "{}",
        second.stderr
    );
}

#[tokio::test]
async fn ids_alma_does_not_know_are_reported_and_transient_errors_survived() {
    let dir = temp_dir("unknown-ids");
    let csv = dir.join("cohort.csv");
    // The report carries what the eligibility rules need, and the query reads them there
    // (lookup = false): so unknown IDs reach the set step, as when a user is purged between the
    // plan and the set.
    let sim0 = sim(sim_config()).await;
    let mut text = reachable_report_csv(&sim0, 40);
    text.push_str("NO-SUCH-1,Internal,Active,,nobody@example.edu\nNO-SUCH-2,Internal,Active,,nobody2@example.edu\n");
    std::fs::write(&csv, text).unwrap();
    let sim = sim(sim_config()
        .csv_report("/shared/Mine/Cohort", &csv)
        .fault(Fault::new(FaultKind::TooManyRequests, Target::SetOp).count(2))
        .fault(Fault::new(FaultKind::ServerError, Target::JobInstance).count(3)))
    .await;
    let q = dir.join("mine.toml");
    std::fs::write(&q, "name = \"mine\"\n[report]\npath = \"/shared/Mine/Cohort\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 100\n[eligibility]\nlookup = false\naccount_type_column = \"Account Type\"\nstatus_column = \"Status\"\nexpiry_column = \"Expiry Date\"\nemail_column = \"Preferred Email\"\n").unwrap();
    let state = dir.join("state");
    // 2 of 42 refused is more than the default 1 %: the run stops before the job, the set kept.
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--json"]).await;
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("Alma refused 2 of run ")
            && r.stderr.contains("more than [guard] max_refused_ratio 0.01")
            && r.stderr.contains("leading zeros lost in Excel")
            && r.stderr.contains("--accept-refused"),
        "{}",
        r.stderr
    );
    assert_eq!((sim.handle.sets().len(), sim.handle.job_instances().len()), (1, 0));
    assert_eq!(sim.handle.set_members(&sim.handle.sets()[0].id).unwrap().len(), 40);
    let runs = runs_json(&sim, &state).await;
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    assert_eq!(runs[0]["state"], "members_done");
    let refused = std::fs::read_to_string(state.join("runs").join(&run_id).join("refused.csv")).unwrap();
    assert!(
        refused.starts_with("primary_id,alma,look_for\nNO-SUCH-1,not added: no user with this primary ID,"),
        "{refused}"
    );
    // cron fires again: the run is unfinished, nothing new in Alma.
    let again = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    // A plain resume stops the same way; --accept-refused goes on with those in the set.
    let plain = run(&sim, &state, &["resume", &run_id]).await;
    assert_eq!(plain.code, 4, "{}", plain.stderr);
    assert_eq!(sim.handle.job_instances().len(), 0);
    let accepted = run(
        &sim,
        &state,
        &["resume", &run_id, "--accept-refused", "--yes", "--json"],
    )
    .await;
    assert_eq!(accepted.code, 1, "completed with a warning: {}", accepted.stderr);
    let v = last_json(&accepted.stdout);
    assert_eq!(
        (v["state"].as_str(), v["members_added"].as_u64()),
        (Some("completed"), Some(40))
    );
    assert_eq!(v["invalid_ids"], serde_json::json!(["NO-SUCH-1", "NO-SUCH-2"]));
    assert!(
        v["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("2 not in Alma: no letter (NO-SUCH-1, NO-SUCH-2"),
        "{v}"
    );
    let report = std::fs::read_to_string(v["report_file"].as_str().unwrap()).unwrap();
    assert!(
        report.contains("2 refused (2 of the first 2 checked are not users in Alma)")
            && report.contains("## Not in Alma: no letter (2)")
            && report.contains("The operator let the run go on without them")
            && report.contains("`NO-SUCH-1`"),
        "{report}"
    );
    assert_eq!(sim.handle.job_instances().len(), 1);
    // One letter at most for each user in the set (the simulator's users without an address get
    // none), and none for anyone else.
    let members: std::collections::HashSet<String> = sim
        .handle
        .set_members(&sim.handle.sets()[0].id)
        .unwrap()
        .into_iter()
        .collect();
    let letters: Vec<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
    let unique: std::collections::HashSet<&String> = letters.iter().collect();
    assert!(
        !letters.is_empty() && unique.len() == letters.len() && letters.iter().all(|l| members.contains(l)),
        "{letters:?}"
    );
    // The flag on a run that is not waiting on refused IDs: exit 2, nothing done.
    let late = run(&sim, &state, &["resume", &run_id, "--accept-refused"]).await;
    assert_eq!(late.code, 2, "{}", late.stderr);
}

/// Follows a job of `duration` on the simulator's manual clock with `policy` (the waits move the
/// clock instead of sleeping): the statuses seen, and how long after the job's end its end was
/// seen (or the error).
async fn follow_on_the_clock(
    duration: Duration,
    outcome: JobOutcome,
    policy: &alma_client::jobs::PollPolicy,
) -> (Vec<String>, Result<Duration, String>) {
    let sim = sim(sim_config()
        .users(300)
        .manual_clock()
        .job_duration(duration)
        .job_outcome(outcome))
    .await;
    let client = crate::extract::client(&sim.handle.base_url(), KEY);
    let set = client.create_set("poll test", "", false).await.unwrap();
    let ids: Vec<String> = sim
        .handle
        .users()
        .iter()
        .take(50)
        .map(|u| u.primary_id.clone())
        .collect();
    client.add_members(&set.id, &ids).await.unwrap();
    let job = client.find_job_by_name("Update/Notify Users").await.unwrap();
    let params = [
        ("set_id".to_string(), set.id.0.clone()),
        ("job_name".to_string(), "poll test".to_string()),
        ("SEND_Notification_To_User_Active".to_string(), "true".to_string()),
        (
            "SEND_Notification_To_User_Value".to_string(),
            "NOTIFY_PASSWORD_CHANGE".to_string(),
        ),
    ];
    let clock = sim.handle.clock().clone();
    let submitted = clock.now();
    let instance = client
        .run_job(&job, &params)
        .await
        .unwrap()
        .instance
        .expect("the link names the instance");
    let mut seen = Vec::new();
    let moving = clock.clone();
    let end = client
        .follow_job_with_sleep(
            &job,
            &instance,
            policy,
            &mut |s| seen.push(s.status.clone()),
            &move |d| {
                moving.advance(d);
                Box::pin(async {})
            },
        )
        .await;
    let polls = sim
        .handle
        .requests()
        .iter()
        .filter(|r| r.target == Target::JobInstance)
        .count();
    assert_eq!(polls, seen.len());
    let late = end
        .map(|_| (clock.now() - submitted).to_std().unwrap().saturating_sub(duration))
        .map_err(|e| e.to_string());
    (seen, late)
}

/// Polling is bounded and prompt: a 30-minute job is polled at most 50 times with the default
/// policy (5 s growing ×1.5 to a minute, shortened as the progress predicts the end), and a
/// 60-second job's end is seen within 2.5 s. A job that never ends is given up at its deadline,
/// not before (`--job-deadline 5` waited 0.4 s before).
#[tokio::test]
async fn polls_are_bounded_and_see_the_end_promptly() {
    use alma_client::jobs::PollPolicy;
    let (seen, late) = follow_on_the_clock(
        Duration::from_secs(30 * 60),
        JobOutcome::Success,
        &PollPolicy::default(),
    )
    .await;
    let late = late.unwrap();
    assert!(seen.len() <= 50, "{} polls for a 30-minute job: {seen:?}", seen.len());
    assert!(seen.contains(&"RUNNING".to_string()), "{seen:?}");
    assert!(late <= Duration::from_secs(75), "seen {late:?} after the end");
    let (seen, late) = follow_on_the_clock(Duration::from_secs(60), JobOutcome::Success, &PollPolicy::default()).await;
    let late = late.unwrap();
    assert!(
        late <= Duration::from_millis(2500),
        "a 60 s job seen {late:?} after its end: {seen:?}"
    );
    assert!(seen.len() <= 15, "{} polls: {seen:?}", seen.len());
    let deadline = PollPolicy {
        deadline: Duration::from_secs(5),
        first: Duration::from_secs(15),
        ..PollPolicy::default()
    };
    let (_, given_up) = follow_on_the_clock(Duration::from_secs(60), JobOutcome::NeverFinishes, &deadline).await;
    let e = given_up.unwrap_err();
    assert!(
        e.contains("has not ended after 5 s of waiting (--job-deadline 5)"),
        "{e}"
    );
}

/// A run whose standard output cannot be written: to a full disk, the run still ends as its job
/// did (exit 0, one warning naming `show`); closed by its reader before anything was done, it
/// stops with one error line and exit 2 — never exit 0 as if done — and nothing is in Alma.
#[tokio::test]
async fn a_run_with_no_room_on_stdout_says_how_it_ended() {
    let sim = sim(sim_config().users(300)).await;
    let dir = crate::cli::temp_dir("run-stdout");
    let q = all_users_query(&dir, 5000);
    let q = q.to_str().unwrap();
    let mut closed = command(&sim, &dir.join("state-closed"), &["run", q, "--execute", "--yes"]);
    closed.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = closed.spawn().unwrap();
    drop(child.stdout.take());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(sim.handle.sets().is_empty(), "nothing in Alma");
    // The operator runs the same command again, from the same state dir, into a full disk.
    let mut full = command(
        &sim,
        &dir.join("state-closed"),
        &["run", q, "--execute", "--yes", "--json"],
    );
    full.stdout(std::fs::File::create("/dev/full").unwrap());
    let r = output(full).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains("warning: run ") && r.stderr.contains("alma-cohort"),
        "{}",
        r.stderr
    );
    assert!(!r.stderr.contains("error:"), "{}", r.stderr);
    assert_done_once(&sim);
}
