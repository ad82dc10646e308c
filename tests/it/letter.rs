//! The letter that carries the password, and the job, checked before anything is written: a
//! disabled, SMS or rewritten letter, or a job or notification type that is not there, refuses
//! the run (exit 4) with no write to Alma; fixed, the same command runs and sends one letter each.
//! Counted in the simulator: sets, job instances, resets, letters, locked-out users.

use std::path::{Path, PathBuf};

use alma_sim::LetterState;

use crate::cli::temp_dir;
use crate::execute::{last_json, run, sim_config};
use crate::support::*;

/// Undergraduates and graduates of the "Active internal users" report, as a term-start query.
pub fn students(dir: &Path, job: &str) -> PathBuf {
    write_query(
        dir,
        "students.toml",
        &format!(
            "name = \"students\"\n[report]\npath = \"/shared/Example University/Reports/Password Resets/Active internal users\"\n\
             [cohort]\nid_column = \"Primary Identifier\"\nwhere = \"\"\" \"User Group\" IN ('UGRAD', 'GRAD') \"\"\"\n\
             [set]\nname = \"Reset {{query}} {{period}}\"\n{job}\n[guard]\nmax_members = 5000\n"
        ),
    )
}

/// Nothing was written to Alma: no set, no job instance, no reset, no POST or DELETE at all.
fn nothing_written(sim: &Sim) {
    assert!(sim.handle.sets().is_empty(), "no set: {:?}", sim.handle.sets());
    assert!(sim.handle.job_instances().is_empty(), "no job");
    assert!(sim.handle.resets().is_empty(), "no password reset");
    let writes: Vec<String> = sim
        .handle
        .requests()
        .iter()
        .filter(|r| r.method != "GET" && !r.path.ends_with("/test"))
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert!(writes.is_empty(), "no write call: {writes:?}");
}

/// One set, one job, one letter with the password for each member of the set, nobody locked out.
fn one_letter_each(sim: &Sim) {
    let sets = sim.handle.sets();
    assert_eq!(sets.len(), 1, "{sets:?}");
    assert_eq!(sim.handle.job_instances().len(), 1);
    let members = sim.handle.set_members(&sets[0].id).unwrap();
    let letters: Vec<_> = sim.handle.outbox().into_iter().filter(|l| l.carries_password).collect();
    assert_eq!(letters.len(), members.len(), "one letter with the password each");
    assert_eq!(sim.handle.resets().len(), members.len(), "one reset each");
    assert_nobody_locked_out(sim);
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

#[tokio::test]
async fn a_letter_that_cannot_carry_the_password_refuses_the_run_until_it_is_fixed() {
    for (state, words) in [
        (LetterState::Disabled, "not enabled"),
        (LetterState::Sms, "SMS"),
        (
            LetterState::NoPasswordBranch,
            "no branch for notification type NOTIFY_PASSWORD_CHANGE",
        ),
        (LetterState::BrokenXsl, "not XML"),
    ] {
        let sim = sim(sim_config().users(400).letter(state)).await;
        let dir = temp_dir("letter");
        let q = students(&dir, "");
        let state_dir = dir.join("state");
        let q = q.to_str().unwrap();

        let doctor = run(&sim, &state_dir, &["doctor", q]).await;
        assert_ne!(doctor.code, 0, "{state:?}: doctor fails\n{}", doctor.stdout);
        let all = format!("{}{}", doctor.stdout, doctor.stderr);
        assert!(
            all.contains("UserNotificationsLetter") && all.contains(words) && all.contains("Letters"),
            "{state:?}: doctor names the letter, what is wrong and where to fix it:\n{all}"
        );
        let plain = run(&sim, &state_dir, &["doctor"]).await;
        assert_ne!(plain.code, 0, "{state:?}: doctor without a query checks the letter too");

        let plan = run(&sim, &state_dir, &["plan", q]).await;
        assert_eq!(plan.code, 0, "{state:?}: plan shows it\n{}", plan.stderr);
        assert!(plan.stdout.contains("CANNOT CARRY THE PASSWORD"), "{}", plan.stdout);

        let r = run(
            &sim,
            &state_dir,
            &["run", q, "--period", "fall", "--execute", "--yes", "--json"],
        )
        .await;
        assert_eq!(r.code, 4, "{state:?}: refused\n{}", r.stderr);
        let errors = error_lines(&r.stderr);
        assert_eq!(errors.len(), 1, "{state:?}: one error line\n{}", r.stderr);
        assert!(
            errors[0].contains("UserNotificationsLetter") && errors[0].contains(words),
            "{state:?}: {}",
            errors[0]
        );
        assert!(
            r.stderr.contains("hint:") && r.stderr.contains("Letters"),
            "{}",
            r.stderr
        );
        assert_eq!(last_json(&r.stdout)["status"], "refused");
        nothing_written(&sim);

        // The librarian fixes the letter; the same command (a cron's next run) goes through.
        sim.handle.set_letter(LetterState::Standard);
        let again = run(
            &sim,
            &state_dir,
            &["run", q, "--period", "fall", "--execute", "--yes", "--json"],
        )
        .await;
        assert_eq!(again.code, 0, "{state:?}: runs once fixed\n{}", again.stderr);
        let json = last_json(&again.stdout);
        assert_eq!(json["job_status"], "COMPLETED_SUCCESS");
        one_letter_each(&sim);
        // And the run's report names the letter with its digest.
        let report = std::fs::read_to_string(
            state_dir
                .join("runs")
                .join(json["run_id"].as_str().unwrap())
                .join("report.html"),
        )
        .unwrap();
        assert!(
            report.contains("UserNotificationsLetter") && report.contains("digest"),
            "report names the letter"
        );
    }
}

#[tokio::test]
async fn a_job_or_notification_that_is_not_there_is_refused_before_any_write() {
    for (job, code, key) in [
        ("[job]\nname = \"Update/Notify User\"", 4, "[job] name"),
        ("[job]\nid = \"M99999999\"", 4, "[job] id"),
        (
            "[job]\nnotification = \"NOTIFY_PASSWORD_CHANG\"",
            4,
            "[job] notification",
        ),
        (
            "[job]\nnotification = \"notify password change\"",
            2,
            "job.notification",
        ),
        ("[job]\nletter = \"User Notifications/../Letter\"", 2, "job.letter"),
        ("[job]\nletter = \"OverdueLetter\"", 4, "OverdueLetter"),
    ] {
        let sim = sim(sim_config().users(200)).await;
        let dir = temp_dir("job");
        let q = students(&dir, job);
        let r = run(
            &sim,
            &dir.join("state"),
            &["run", q.to_str().unwrap(), "--period", "fall", "--execute", "--yes"],
        )
        .await;
        assert_eq!(r.code, code, "{job}\n{}", r.stderr);
        let errors = error_lines(&r.stderr);
        assert_eq!(errors.len(), 1, "{job}: one error line\n{}", r.stderr);
        assert!(errors[0].contains(key), "{job}: names {key}: {}", errors[0]);
        nothing_written(&sim);
        // The librarian fixes the query; the same command (the scheduler's next run) goes
        // through: one set, one job, one letter each, nobody locked out.
        let fixed = students(&dir, "");
        let again = run(
            &sim,
            &dir.join("state"),
            &["run", fixed.to_str().unwrap(), "--period", "fall", "--execute", "--yes"],
        )
        .await;
        assert_eq!(again.code, 0, "{job}: {}", again.stderr);
        one_letter_each(&sim);
    }
}

#[tokio::test]
async fn resume_checks_the_letter_again_before_the_job() {
    // The run stops before its job: Alma fails the instance listing that comes right before the
    // submission, the retries too.
    let sim = sim(sim_config().users(400)).await;
    stop_before_the_job(&sim);
    let dir = temp_dir("letter-resume");
    let q = students(&dir, "");
    let state = dir.join("state");
    let first = run(
        &sim,
        &state,
        &["run", q.to_str().unwrap(), "--execute", "--yes", "--json"],
    )
    .await;
    assert_eq!(first.code, 3, "stopped\n{}", first.stderr);
    let run_id = last_json(&first.stdout)["run_id"].as_str().unwrap().to_string();
    assert!(sim.handle.job_instances().is_empty());
    sim.handle.clear_faults();

    // Meanwhile someone disables the letter: resume refuses, before the job.
    sim.handle.set_letter(LetterState::Disabled);
    let refused = run(&sim, &state, &["resume", &run_id, "--yes"]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(refused.stderr.contains("UserNotificationsLetter"), "{}", refused.stderr);
    assert!(
        sim.handle.job_instances().is_empty(),
        "no job on a letter that cannot carry the password"
    );
    assert!(sim.handle.resets().is_empty());

    // Fixed: resume goes on to one job and one letter each.
    sim.handle.set_letter(LetterState::Standard);
    let done = run(&sim, &state, &["resume", &run_id, "--yes"]).await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    one_letter_each(&sim);
}

#[tokio::test]
async fn apply_checks_the_letter_before_the_run_is_journaled() {
    let sim = sim(sim_config().users(300)).await;
    let dir = temp_dir("letter-apply");
    let q = students(&dir, "");
    let state = dir.join("state");
    let saved = run(
        &sim,
        &state,
        &["plan", q.to_str().unwrap(), "--period", "p1", "--save", "--json"],
    )
    .await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let plan_id = last_json(&saved.stdout)["plan_id"].as_str().unwrap().to_string();
    sim.handle.set_letter(LetterState::NoPasswordBranch);
    let refused = run(&sim, &state, &["apply", &plan_id, "--execute", "--yes"]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(refused.stderr.contains("UserNotificationsLetter"), "{}", refused.stderr);
    nothing_written(&sim);
    sim.handle.set_letter(LetterState::Standard);
    let applied = run(&sim, &state, &["apply", &plan_id, "--execute", "--yes"]).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    one_letter_each(&sim);
}

#[tokio::test]
async fn the_plan_says_when_the_letter_changed_since_the_last_run() {
    let sim = sim(sim_config().users(300)).await;
    let dir = temp_dir("letter-changed");
    let q = students(&dir, "");
    let state = dir.join("state");
    let q = q.to_str().unwrap();
    let first = run(&sim, &state, &["run", q, "--period", "a", "--execute", "--yes"]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let same = run(&sim, &state, &["plan", q, "--json"]).await;
    assert!(
        last_json(&same.stdout)["letter_changed_since"].is_null(),
        "{}",
        same.stdout
    );
    // Staff edit the letter (and keep the password branch).
    sim.handle.set_letter(LetterState::Sms);
    sim.handle.set_letter(LetterState::Standard);
    let changed = run(&sim, &state, &["plan", q]).await;
    assert!(
        changed.stdout.contains("CHANGED since the last completed run"),
        "{}",
        changed.stdout
    );
}
