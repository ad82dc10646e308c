//! Alma as the ledger: one intent (query + period) makes at most one set, one job and one letter
//! per user whichever machine, state dir or working folder runs it — each case driven through the
//! real binary the way cron and an operator would, and counted in the simulator (sets, instances,
//! letters).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use alma_sim::{Fault, FaultKind, Target};

use crate::cli::temp_dir;
use crate::execute::{
    all_users_query, assert_done_once, command, execute_run, last_json, output, run, runs_json, sim_config,
};
use crate::support::*;

pub const PERIOD: &str = "2027-spring";

/// (sets, job instances, letters) in the simulator.
pub fn counts(sim: &Sim) -> (usize, usize, usize) {
    (
        sim.handle.sets().len(),
        sim.handle.job_instances().len(),
        sim.handle.outbox().len(),
    )
}

/// No user has two letters.
pub fn assert_no_second_letter(sim: &Sim) {
    let mut seen = HashMap::new();
    for l in sim.handle.outbox() {
        *seen.entry(l.user_primary_id.to_lowercase()).or_insert(0) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "users with two letters: {twice:?}");
}

/// Starts the scheduled command and kills it (SIGKILL) once the simulator has answered the first
/// request to `target`; returns whether it was killed.
async fn kill_after(sim: &Sim, state: &Path, query: &str, target: Target) -> bool {
    kill_once_answered(
        sim,
        state,
        &["run", query, "--period", PERIOD, "--execute", "--yes"],
        target,
    )
    .await
}

/// Runs the binary with `args` and kills it (SIGKILL) as soon as a call to `target` was
/// answered; false when it ended before that.
pub async fn kill_once_answered(sim: &Sim, state: &Path, args: &[&str], target: Target) -> bool {
    let mut child = command(sim, state, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..5000 {
        if sim
            .handle
            .requests()
            .iter()
            .any(|r| r.target == target && r.status.is_some())
        {
            child.kill().unwrap();
            let _ = child.wait();
            return true;
        }
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("the run never reached {target:?}");
}

/// The same `run --period P --execute --yes` from a second state dir (a second installation, a
/// lost journal): after a completed run, and after a run killed once its set exists, once its
/// members are in, once its job was submitted. Refused (exit 4) naming the set and its maker;
/// nothing new in Alma; the first run's own `resume` still ends it once.
#[tokio::test]
async fn a_second_state_dir_finds_the_period_in_alma() {
    for kill_at in [None, Some(Target::SetCreate), Some(Target::SetOp), Some(Target::JobRun)] {
        // Every answer takes a little while, so the kill lands right after the one it waits for.
        let sim = sim(sim_config()
            .job_duration(Duration::from_secs(30))
            .manual_clock_at(chrono::Utc::now())
            .fault(Fault::new(FaultKind::Slow(Duration::from_millis(30)), Target::Any).count(1_000_000)))
        .await;
        let dir = temp_dir("second-dir");
        let (first, second) = (dir.join("first"), dir.join("second"));
        let q = all_users_query(&dir, 5000);
        let q = q.to_str().unwrap();
        let case = format!("{kill_at:?}");
        match kill_at {
            None => {
                sim.handle.clock().advance(Duration::from_secs(60));
                let done = execute_run(&sim, &first, q, &["--period", PERIOD, "--job-deadline", "1"]).await;
                assert!(matches!(done.code, 0 | 3), "{case}: {}", done.stderr);
                sim.handle.clock().advance(Duration::from_secs(60));
            }
            Some(target) => assert!(kill_after(&sim, &first, q, target).await, "{case}: killed"),
        }
        let before = counts(&sim);
        assert_eq!(before.0, 1, "{case}: the first run's set");
        let again = execute_run(&sim, &second, q, &["--period", PERIOD, "--json"]).await;
        assert_eq!(again.code, 4, "{case}: {}", again.stderr);
        assert!(
            again.stderr.contains("Alma already holds the set")
                && again
                    .stderr
                    .contains("User Password Reset everyone 2027-spring (alma-cohort)")
                && again.stderr.contains("which this journal")
                && again.stderr.contains("--force"),
            "{case}: {}",
            again.stderr
        );
        assert_eq!(again.stderr.matches("error:").count(), 1, "{}", again.stderr);
        assert_eq!(last_json(&again.stdout)["status"], "refused", "{}", again.stdout);
        assert_eq!(counts(&sim), before, "{case}: nothing new in Alma");
        if kill_at == Some(Target::SetCreate) {
            assert_eq!(before.1, 0, "killed once its set exists: no job");
        }
        // The first installation goes on with its own journal: one set, one job, one letter each.
        let runs = runs_json(&sim, &first).await;
        let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
        for _ in 0..5 {
            if runs_json(&sim, &first).await[0]["status"] != "running" {
                break;
            }
            // The job runs on Alma's clock: let it pass, then the operator resumes.
            sim.handle.clock().advance(Duration::from_secs(60));
            let resumed = run(&sim, &first, &["resume", &run_id, "--job-deadline", "1"]).await;
            if resumed.code == 3 && resumed.stderr.contains("Alma may have") {
                let mut next = vec!["resume", run_id.as_str(), "--job-deadline", "1"];
                next.extend(operator_flag(&sim, &resumed.stderr));
                run(&sim, &first, &next).await;
            }
        }
        assert_eq!(runs_json(&sim, &first).await[0]["status"], "completed", "{case}");
        assert_done_once(&sim);
        // And the second installation still refuses.
        let later = execute_run(&sim, &second, q, &["--period", PERIOD]).await;
        assert_eq!(later.code, 4, "{case}: {}", later.stderr);
        assert_done_once(&sim);
    }
}

/// Two installations start the same period at the same moment: Alma's duplicate-name refusal
/// (402263) lets one set through; the other run is refused — one set, one job, one letter each.
#[tokio::test]
async fn two_state_dirs_at_once_make_one_set() {
    for round in 0..3 {
        let sim = sim(sim_config().page_latency(Duration::from_millis(40))).await;
        let dir = temp_dir("at-once");
        let q = all_users_query(&dir, 5000);
        let q = q.to_str().unwrap();
        let (da, db) = (dir.join("a"), dir.join("b"));
        let a = execute_run(&sim, &da, q, &["--period", PERIOD]);
        let b = execute_run(&sim, &db, q, &["--period", PERIOD]);
        let (a, b) = tokio::join!(a, b);
        let mut codes = [a.code, b.code];
        codes.sort();
        assert_eq!(codes, [0, 4], "round {round}: {}\n{}", a.stderr, b.stderr);
        let refused = if a.code == 4 { &a } else { &b };
        // Refused by the set Alma holds; or, when the other set was already filled as this run
        // looked, by the cooldown that leaves its users out (an empty cohort).
        assert!(
            refused.stderr.contains("Alma already holds the set")
                || refused.stderr.contains("notified by a run within the cooldown"),
            "{}",
            refused.stderr
        );
        assert_done_once(&sim);
    }
}

/// A command run with no --state-dir, as cron and an operator would from two folders.
fn in_folder(sim: &Sim, cwd: &Path, home: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
    cmd.current_dir(cwd)
        .arg("--base-url")
        .arg(sim.handle.base_url())
        .args(args)
        .env("ALMA_API_KEY", KEY)
        .env("ALMA_COHORT_RETRY_DELAY", "0")
        .env("ALMA_COHORT_PACE", "1000")
        .env("ALMA_COHORT_POLL_INTERVAL", "0.05")
        .env_remove("ALMA_COHORT_STATE")
        .env_remove("ALMA_COHORT_PROFILE")
        .env_remove("XDG_STATE_HOME")
        .env("HOME", home)
        .stdin(Stdio::null());
    cmd
}

fn folder(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// cron does `cd /srv/alma-cohort`; an operator runs the same command from their home folder.
/// With no --state-dir both use the per-user state folder: one journal, exit 4, nothing new.
/// Another account (another HOME: another journal) is refused by what Alma holds.
#[tokio::test]
async fn the_same_command_from_two_working_folders() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("folders");
    let home = folder(&dir, "home");
    let q = all_users_query(&dir, 5000);
    let args = ["run", q.to_str().unwrap(), "--period", PERIOD, "--execute", "--yes"];
    let cron = output(in_folder(&sim, &folder(&dir, "srv"), &home, &args)).await;
    assert_eq!(cron.code, 0, "{}", cron.stderr);
    assert!(home.join(".local/state/alma-cohort/journal.sqlite").is_file());
    assert!(!dir.join("srv/.alma-cohort").exists(), "nothing in the working folder");
    let operator = output(in_folder(&sim, &folder(&dir, "elsewhere"), &home, &args)).await;
    assert_eq!(operator.code, 4, "{}", operator.stderr);
    assert!(operator.stderr.contains("skipped"), "{}", operator.stderr);
    let other_account = output(in_folder(
        &sim,
        &folder(&dir, "elsewhere"),
        &folder(&dir, "home2"),
        &args,
    ))
    .await;
    assert_eq!(other_account.code, 4, "{}", other_account.stderr);
    assert!(
        other_account.stderr.contains("Alma already holds the set"),
        "{}",
        other_account.stderr
    );
    assert_done_once(&sim);
    // runs prints which journal it read.
    let runs = output(in_folder(&sim, &folder(&dir, "elsewhere"), &home, &["runs"])).await;
    assert!(
        runs.stderr.contains(&format!(
            "journal: {}",
            home.join(".local/state/alma-cohort/journal.sqlite").display()
        )),
        "{}",
        runs.stderr
    );
}

/// A journal that an earlier version left in ./.alma-cohort is never silently ignored: run and
/// resume stop (exit 2) naming both folders until the operator chooses; nothing reaches Alma.
#[tokio::test]
async fn an_old_journal_beside_an_empty_new_default() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("legacy");
    let work = folder(&dir, "srv");
    let home = folder(&dir, "home");
    let q = all_users_query(&dir, 5000);
    let q = q.to_str().unwrap();
    // What an earlier version did by default: the journal in the working folder.
    let old = execute_run(&sim, &work.join(".alma-cohort"), q, &["--period", "2026-fall"]).await;
    assert_eq!(old.code, 0, "{}", old.stderr);
    // After the upgrade someone looks around first: runs, plan and doctor on the new default
    // (a plan journals nothing but leaves its files there). None of it is a choice.
    let listed = output(in_folder(&sim, &work, &home, &["runs"])).await;
    assert!(
        listed.stderr.contains("an earlier alma-cohort left a journal"),
        "{}",
        listed.stderr
    );
    assert!(
        !home.join(".local/state/alma-cohort/journal.sqlite").exists(),
        "runs creates nothing"
    );
    // doctor names it also before the new default exists.
    let first = output(in_folder(&sim, &work, &home, &["doctor"])).await;
    assert_eq!(first.code, 3, "{}", first.stdout);
    assert!(
        first.stdout.contains("an earlier alma-cohort left a journal") && first.stdout.contains("mkdir -p "),
        "{}",
        first.stdout
    );
    // (Its cohort is empty: Alma's stamped set of the old run puts everyone in the cooldown.)
    let planned = output(in_folder(&sim, &work, &home, &["plan", q])).await;
    assert!(
        planned.stderr.contains("notified by a run within the cooldown"),
        "{}",
        planned.stderr
    );
    output(in_folder(&sim, &work, &home, &["doctor"])).await;
    let before = sim.handle.requests().len();
    let args = ["run", q, "--period", PERIOD, "--execute", "--yes"];
    let stopped = output(in_folder(&sim, &work, &home, &args)).await;
    assert_eq!(stopped.code, 2, "{}", stopped.stderr);
    assert_eq!(stopped.stderr.matches("error:").count(), 1, "{}", stopped.stderr);
    let legacy = work.join(".alma-cohort");
    assert!(
        stopped
            .stderr
            .contains(&legacy.join("journal.sqlite").display().to_string())
            && stopped
                .stderr
                .contains(&home.join(".local/state/alma-cohort").display().to_string())
            && stopped.stderr.contains("--state-dir")
            && stopped.stderr.contains("mv "),
        "{}",
        stopped.stderr
    );
    assert_eq!(sim.handle.requests().len(), before, "no call to Alma");
    assert!(stopped.stderr.contains("rm -r"), "{}", stopped.stderr);
    let resumed = output(in_folder(&sim, &work, &home, &["resume", "20260101T000000Z-0000"])).await;
    assert_eq!(resumed.code, 2, "{}", resumed.stderr);
    let doctor = output(in_folder(&sim, &work, &home, &["doctor"])).await;
    assert!(
        doctor.stdout.contains("an earlier alma-cohort left a journal"),
        "{}",
        doctor.stdout
    );
    // The operator's choice: that journal, named.
    let legacy_arg = legacy.display().to_string();
    let mut chosen = vec!["--state-dir", legacy_arg.as_str()];
    chosen.extend(args);
    // (--force: the earlier run mailed the same users within the cooldown.)
    chosen.push("--force");
    let go = output(in_folder(&sim, &work, &home, &chosen)).await;
    assert_eq!(go.code, 0, "{}", go.stderr);
}

/// `2027-Spring`, then `2027-spring ` (and `2027_spring`): one intent. Periods with other
/// characters are refused before anything is written anywhere.
#[tokio::test]
async fn periods_are_one_intent_whatever_their_case_and_spaces() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("periods");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let q = q.to_str().unwrap();
    let first = execute_run(&sim, &state, q, &["--period", "2027-Spring", "--json"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        last_json(&first.stdout)["period"],
        "2027-spring",
        "journaled normalized"
    );
    for same in ["2027-spring ", "2027_spring", " 2027 SPRING"] {
        let again = execute_run(&sim, &state, q, &["--period", same]).await;
        assert_eq!(again.code, 4, "{same:?}: {}", again.stderr);
        assert!(
            again.stderr.contains("already completed for period \"2027-spring\""),
            "{}",
            again.stderr
        );
    }
    // From another state dir too (Alma's set carries the normalized period).
    let other = execute_run(&sim, &dir.join("other"), q, &["--period", "2027 Spring"]).await;
    assert_eq!(other.code, 4, "{}", other.stderr);
    assert_done_once(&sim);
    let requests = sim.handle.requests().len();
    let long = "x".repeat(10_000);
    for bad in ["../../etc", "2027/spring", "a\nb", "", long.as_str()] {
        let fresh = dir.join(format!("fresh-{}", bad.len()));
        let r = execute_run(&sim, &fresh, q, &["--period", bad]).await;
        assert_eq!(r.code, 2, "{bad:?}: {}", r.stderr);
        assert_eq!(
            r.stderr.lines().filter(|l| l.starts_with("error:")).count(),
            1,
            "{}",
            r.stderr
        );
        assert!(
            r.stderr.lines().count() <= 3,
            "no line broken by the period: {}",
            r.stderr
        );
        assert!(!fresh.exists(), "{bad:?}: no journal");
    }
    assert_eq!(sim.handle.requests().len(), requests, "nothing sent to Alma");
}

/// A period run's set is named after its intent whatever the `[set] name` template says (without
/// `{period}`, with `{run_id}` or `{date}`): the template's words go to the set's description, and
/// `validate` says the name a period run will use.
#[tokio::test]
async fn a_period_runs_set_is_named_after_its_intent_whatever_the_template() {
    for name in [
        "Reset {query}",
        "Reset {query} {period} {run_id}",
        "Reset {period} {date}",
    ] {
        let sim = sim(sim_config()).await;
        let dir = temp_dir("set-name");
        let q = write_query(
            &dir,
            "q.toml",
            &format!(
                "name = \"everyone\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[set]\nname = \"{name}\"\n[guard]\nmax_members = 5000\n"
            ),
        );
        let state = dir.join("state");
        let v = run(&sim, &state, &["validate", q.to_str().unwrap()]).await;
        assert_eq!(v.code, 0, "{}", v.stderr);
        assert!(
            v.stdout
                .contains("note: run --period 2027-spring names its set \"User Password Reset everyone 2027-spring (alma-cohort)\""),
            "validate says so: {}",
            v.stdout
        );
        let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--period", PERIOD]).await;
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let set = &sim.handle.sets()[0];
        assert_eq!(
            set.name, "User Password Reset everyone 2027-spring (alma-cohort)",
            "{name}"
        );
        assert!(set.description.starts_with("Reset "), "{name}: {}", set.description);
        assert!(
            set.description.contains("alma-cohort:{"),
            "the stamp: {}",
            set.description
        );
        assert_done_once(&sim);
    }
}

/// Two query files of one name in a folder would name one period's set: `validate` names both
/// (exit 2).
#[tokio::test]
async fn validate_names_two_queries_of_one_name() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("same-name");
    let text = format!(
        "name = \"everyone\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 5000\n"
    );
    let a = write_query(&dir, "a.toml", &text);
    write_query(&dir, "b.toml", &text);
    let v = run(&sim, &dir.join("state"), &["validate", a.to_str().unwrap()]).await;
    assert_eq!(v.code, 2, "{}", v.stderr);
    assert!(
        v.stderr.contains("a.toml") && v.stderr.contains("b.toml") && v.stderr.contains("\"everyone\""),
        "{}",
        v.stderr
    );
    assert_eq!(v.stderr.matches("error:").count(), 1, "{}", v.stderr);
}

pub fn students_query(dir: &Path, name: &str, groups: &str) -> PathBuf {
    write_query(
        dir,
        &format!("{name}.toml"),
        &format!(
            "name = \"{name}\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\nwhere = \"\\\"User Group\\\" IN ({groups})\"\n[guard]\nmax_members = 5000\n"
        ),
    )
}

/// Undergraduates, then all students, for the same period: nobody gets two letters — in one
/// journal, and across two (Alma's stamped sets are read). `--force` includes them on purpose.
#[tokio::test]
async fn overlapping_queries_send_nobody_two_letters() {
    for two_journals in [false, true] {
        let sim = sim(sim_config()).await;
        let dir = temp_dir("overlap");
        let ugrad = students_query(&dir, "undergraduates", "'UGRAD'");
        let all = students_query(&dir, "all-students", "'UGRAD', 'GRAD'");
        let first = execute_run(&sim, &dir.join("a"), ugrad.to_str().unwrap(), &["--period", PERIOD]).await;
        assert_eq!(first.code, 0, "{}", first.stderr);
        let mailed: HashSet<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
        assert!(!mailed.is_empty());
        let state = dir.join(if two_journals { "b" } else { "a" });
        let second = execute_run(&sim, &state, all.to_str().unwrap(), &["--period", PERIOD, "--json"]).await;
        assert_eq!(second.code, 0, "{two_journals}: {}", second.stderr);
        assert_no_second_letter(&sim);
        // Who the letter can reach in each group (the others are left out before the set).
        let group = |g: &str| {
            sim.handle
                .users()
                .iter()
                .filter(|u| u.user_group == g && eligible(&sim, u))
                .count()
        };
        let (grads, ugrads) = (group("GRAD"), group("UGRAD"));
        assert!(
            second.stderr.contains(&format!(
                "Cooldown 7 days: {ugrads} users notified by a run within them are left out"
            )),
            "{}",
            second.stderr
        );
        let result = last_json(&second.stdout);
        assert_eq!(result["cohort_size"].as_u64(), Some(grads as u64), "only the graduates");
        let run_id = result["run_id"].as_str().unwrap();
        let listed = std::fs::read_to_string(state.join("runs").join(run_id).join("recently-reset.csv")).unwrap();
        assert!(
            listed.starts_with("primary_id,run_id,query,notified_at,source\n"),
            "{listed}"
        );
        assert!(listed.contains(",undergraduates,"), "{listed}");
        assert_eq!(listed.lines().count() - 1, ugrads, "every undergraduate of the cohort");
        if two_journals {
            assert!(listed.contains("alma set"), "found in Alma: {listed}");
        }
        // --force resets them again, on the operator's word (a new period here: the old one ran).
        let forced = execute_run(
            &sim,
            &state,
            ugrad.to_str().unwrap(),
            &["--period", "2027-summer", "--force", "--json"],
        )
        .await;
        assert_eq!(forced.code, 0, "{}", forced.stderr);
        assert_eq!(last_json(&forced.stdout)["cohort_size"].as_u64(), Some(ugrads as u64));
    }
}

/// A period run stopped by Alma's threshold (402222: three "busy" jobs of `job_secs` hold it) in
/// members_done, on a simulator whose manual clock starts now, with `lag` of instance listing.
struct Stopped {
    sim: Sim,
    state: PathBuf,
    query: PathBuf,
    run_id: String,
    set_id: String,
}

async fn stopped_by_the_threshold(tag: &str, job_secs: u64, lag: u64) -> Stopped {
    let sim = sim(sim_config()
        .manual_clock_at(chrono::Utc::now())
        .job_duration(Duration::from_secs(job_secs))
        .instance_listing_lag(Duration::from_secs(lag)))
    .await;
    sim.busy_jobs(3).await;
    let dir = temp_dir(tag);
    let state = dir.join("state");
    let query = all_users_query(&dir, 5000);
    let stopped = execute_run(&sim, &state, query.to_str().unwrap(), &["--period", PERIOD]).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    assert!(stopped.stderr.contains("402222"), "{}", stopped.stderr);
    let runs = runs_json(&sim, &state).await;
    assert_eq!(runs[0]["state"], "members_done");
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let set_id = runs[0]["set_id"].as_str().unwrap().to_string();
    Stopped {
        sim,
        state,
        query,
        run_id,
        set_id,
    }
}

/// The letters in the outbox (lower-cased user ids), but the busy jobs' one member's; none twice.
/// Who the letter can reach, but the busy jobs' one member.
fn reachable_but_busy(sim: &Sim) -> usize {
    let busy = sim.ids(true, 1)[0].to_lowercase();
    eligible_ids(sim).into_iter().filter(|i| *i != busy).count()
}

fn letters_once_each_but_busy(sim: &Sim) -> Vec<String> {
    let busy = sim.ids(true, 1)[0].to_lowercase();
    let letters: Vec<String> = sim
        .handle
        .outbox()
        .into_iter()
        .map(|l| l.user_primary_id.to_lowercase())
        .filter(|u| *u != busy)
        .collect();
    let unique: HashSet<&String> = letters.iter().collect();
    assert_eq!(unique.len(), letters.len(), "a user got two letters");
    letters
}

/// After a threshold stop (402222: nothing submitted), staff run Update/Notify Users on the run's
/// set from Alma's UI. The next `resume` lists the job's instances before submitting, sees one
/// naming the run's set and refuses (exit 4). When Alma lists that instance late, the submission
/// meets 60347 and the run stops in job_submitting (exit 3); a plain resume never submits, and the
/// operator's --resubmit-job is refused (a job ran on the set): the UI job's letters are the only
/// ones.
#[tokio::test]
async fn a_ui_job_on_the_runs_set_is_never_doubled() {
    for lag in [0u64, 600] {
        let Stopped {
            sim,
            state,
            query: q,
            run_id,
            set_id,
        } = stopped_by_the_threshold("ui-job", 300, lag).await;
        // The busy jobs end; staff start the job on the run's set from the UI.
        sim.handle.clock().advance(Duration::from_secs(301));
        let ui = sim.handle.run_job_from_ui(&set_id).unwrap();
        let resumed = run(&sim, &state, &["resume", &run_id]).await;
        if lag == 0 {
            assert_eq!(resumed.code, 4, "{}", resumed.stderr);
            assert!(
                resumed.stderr.contains(&ui)
                    && resumed.stderr.contains("names this run's set")
                    && resumed.stderr.contains("--i-checked-alma"),
                "{}",
                resumed.stderr
            );
            // From now on the run may have mailed: a plain abandon is refused.
            let plain = run(&sim, &state, &["abandon", &run_id, "--reason", "x"]).await;
            assert_eq!(plain.code, 4, "{}", plain.stderr);
            assert_eq!(runs_json(&sim, &state).await[0]["state"], "members_done");
        } else {
            assert_eq!(resumed.code, 3, "{}", resumed.stderr);
            assert!(
                resumed.stderr.contains("60347")
                    && resumed.stderr.contains("Alma may have started the job")
                    && resumed.stderr.contains("any instance of job")
                    && resumed.stderr.contains("do not use --resubmit-job"),
                "{}",
                resumed.stderr
            );
            assert_eq!(runs_json(&sim, &state).await[0]["state"], "job_submitting");
            // A plain resume never submits, and still says what Alma said.
            let again = run(&sim, &state, &["resume", &run_id]).await;
            assert_eq!(again.code, 3, "{}", again.stderr);
            assert!(
                again.stderr.contains("earlier, ") && again.stderr.contains("60347"),
                "{}",
                again.stderr
            );
            assert!(again.stderr.contains("do not use --resubmit-job"), "{}", again.stderr);
            sim.handle.clock().advance(Duration::from_secs(lag + 1));
            // The operator sees no instance named for the run and tries --resubmit-job: refused,
            // since Alma said a job ran on the set (60347), whoever's it was.
            let resubmit = run(&sim, &state, &["resume", &run_id, "--resubmit-job"]).await;
            assert_eq!(resubmit.code, 4, "{}", resubmit.stderr);
            assert!(
                resubmit.stderr.contains("--resubmit-job is refused") && resubmit.stderr.contains("60347"),
                "{}",
                resubmit.stderr
            );
            // A plain resume still says so, and still submits nothing.
            let later = run(&sim, &state, &["resume", &run_id]).await;
            assert_eq!(later.code, 3, "{}", later.stderr);
            assert!(later.stderr.contains("do not use --resubmit-job"), "{}", later.stderr);
        }
        sim.handle.clock().advance(Duration::from_secs(1000));
        let on_set: Vec<_> = sim
            .handle
            .job_instances()
            .into_iter()
            .filter(|i| i.set_id == set_id)
            .collect();
        assert_eq!(on_set.len(), 1, "only the UI's job on the set: {on_set:?}");
        // The busy jobs mailed their one member three times; everyone else had one letter, the
        // UI job's.
        let letters = letters_once_each_but_busy(&sim);
        assert_eq!(letters.len(), reachable_but_busy(&sim), "the UI job's letters only");
        // The operator ends the run.
        let abandon = run(
            &sim,
            &state,
            &[
                "abandon",
                &run_id,
                "--reason",
                "staff ran it from the UI",
                "--i-checked-alma",
            ],
        )
        .await;
        assert_eq!(abandon.code, 0, "{}", abandon.stderr);
        assert_eq!(counts(&sim).1, 4, "3 busy jobs and the UI's");
        // The next scheduled run of the period: the UI job mailed it, so it stays closed.
        let sets = sim.handle.sets().len();
        let next = execute_run(&sim, &state, q.to_str().unwrap(), &["--period", PERIOD]).await;
        assert_eq!(next.code, 4, "{}", next.stderr);
        assert_eq!(
            (sim.handle.sets().len(), counts(&sim).1),
            (sets, 4),
            "nothing new in Alma"
        );
    }
}

/// A state dir that cannot be created: one error line, exit 2, nothing sent to Alma.
#[tokio::test]
async fn a_journal_path_that_cannot_be_created() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("no-journal");
    let file = dir.join("a-file");
    std::fs::write(&file, "x").unwrap();
    let q = all_users_query(&dir, 5000);
    let r = execute_run(&sim, &file.join("state"), q.to_str().unwrap(), &["--period", PERIOD]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    assert!(sim.handle.requests().is_empty(), "nothing sent to Alma");
}

/// Two cron lines fire at the same minute: undergraduates and all students, for the same period.
/// On one journal the second plan waits for the first (its cooldown then sees that cohort); on
/// two journals the cooldown is checked again right before each job. Nobody gets two letters.
#[tokio::test]
async fn overlapping_queries_at_the_same_minute() {
    for two_journals in [false, true] {
        let sim = sim(sim_config().page_latency(Duration::from_millis(30))).await;
        let dir = temp_dir("same-minute");
        let ugrad = students_query(&dir, "undergraduates", "'UGRAD'");
        let all = students_query(&dir, "all-students", "'UGRAD', 'GRAD'");
        let (da, db) = (dir.join("a"), dir.join(if two_journals { "b" } else { "a" }));
        let a = execute_run(&sim, &da, ugrad.to_str().unwrap(), &["--period", PERIOD]);
        let b = execute_run(&sim, &db, all.to_str().unwrap(), &["--period", PERIOD]);
        let (a, b) = tokio::join!(a, b);
        for r in [&a, &b] {
            assert!(matches!(r.code, 0 | 4), "{two_journals}: {}", r.stderr);
        }
        if !two_journals {
            // Whichever planned second leaves the other's users out (undergraduates planned
            // after all students is empty: exit 4).
            assert!(b.code == 0 || a.code == 0, "{}\n{}", a.stderr, b.stderr);
            assert!(
                [&a, &b]
                    .iter()
                    .all(|r| r.code == 0 || r.stderr.contains("notified by a run within the cooldown")),
                "{}\n{}",
                a.stderr,
                b.stderr
            );
        }
        assert_no_second_letter(&sim);
    }
}

/// A run of this journal abandoned before its job leaves its set in Alma; the period's next run
/// takes the next number (`… (alma-cohort) #2`) rather than reuse a set nobody checked since, and
/// mails each user once.
#[tokio::test]
async fn after_a_run_abandoned_before_its_job_the_next_set_is_numbered() {
    let Stopped {
        sim,
        state,
        query,
        run_id,
        ..
    } = stopped_by_the_threshold("numbered", 60, 0).await;
    let q = query.to_str().unwrap();
    let abandon = run(&sim, &state, &["abandon", &run_id, "--reason", "wrong term"]).await;
    assert_eq!(abandon.code, 0, "{}", abandon.stderr);
    sim.handle.clock().advance(Duration::from_secs(61));
    let again = execute_run(&sim, &state, q, &["--period", PERIOD, "--job-deadline", "1"]).await;
    assert!(matches!(again.code, 0 | 3), "{}", again.stderr);
    assert!(
        sim.handle
            .sets()
            .iter()
            .any(|s| s.name == "User Password Reset everyone 2027-spring (alma-cohort) #2"),
        "{:?}",
        sim.handle.sets()
    );
    sim.handle.clock().advance(Duration::from_secs(61));
    let new_id = runs_json(&sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    if again.code == 3 {
        let done = run(&sim, &state, &["resume", &new_id]).await;
        assert_eq!(done.code, 0, "{}", done.stderr);
    }
    let names: Vec<String> = sim.handle.sets().into_iter().map(|s| s.name).collect();
    assert_eq!(
        names.iter().filter(|n| n.contains("(alma-cohort)")).count(),
        2,
        "{names:?}"
    );
    let letters = letters_once_each_but_busy(&sim);
    assert_eq!(letters.len(), reachable_but_busy(&sim));
}

/// A run abandoned before its job, whose set staff then ran the job on from the UI: the period's
/// next run (set `#2`) sees that job on a set of its period before submitting and refuses — the
/// UI job mailed them. `--force` runs the period again on the operator's word.
#[tokio::test]
async fn a_ui_job_on_an_abandoned_runs_set_closes_the_period() {
    let Stopped {
        sim,
        state,
        query,
        run_id,
        set_id,
    } = stopped_by_the_threshold("abandoned-ui", 300, 0).await;
    let q = query.to_str().unwrap();
    let abandon = run(&sim, &state, &["abandon", &run_id, "--reason", "not this term"]).await;
    assert_eq!(abandon.code, 0, "{}", abandon.stderr);
    sim.handle.clock().advance(Duration::from_secs(301));
    sim.handle.run_job_from_ui(&set_id).unwrap();
    sim.handle.clock().advance(Duration::from_secs(301));
    let instances = counts(&sim).1;
    let next = execute_run(&sim, &state, q, &["--period", PERIOD]).await;
    assert_eq!(next.code, 4, "{}", next.stderr);
    // Refused at the plan now: the cooldown reads this journal's sets that a job from Alma's UI
    // ran on, and leaves everyone the UI job mailed out (an empty cohort); the job-time check
    // ("names a set of this run's period") stays behind it.
    assert!(
        next.stderr.contains("names a set of this run's period")
            || next.stderr.contains("notified by a run within the cooldown"),
        "{}",
        next.stderr
    );
    assert_eq!(counts(&sim).1, instances, "no second job");
    letters_once_each_but_busy(&sim);
}
