//! Alma as the ledger when its listings lag and staff tidy up in Manage Sets: a set's letters are
//! dated by the job run on it, a period's set name is the intent's alone, what staff took out of
//! a set stays out, a job whose set is gone stops the runs it may concern, and a copied journal
//! never drives another installation's run. Each case through the binary, counted in the
//! simulator (sets, job instances, letters).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use alma_sim::{Fault, FaultKind, Target};

use crate::cli::temp_dir;
use crate::execute::{all_users_query, assert_done_once, execute_run, last_json, run, runs_json, sim_config};
use crate::ledger::{PERIOD, assert_no_second_letter, counts, students_query};
use crate::support::*;

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

fn the_only_run(runs: &serde_json::Value) -> String {
    runs[0]["run_id"].as_str().unwrap().to_string()
}

/// A run stops before its job; its set is eight days old when it is resumed and mails. The next
/// installation's overlapping query dates that set's letters by its job (today), not by the set's
/// creation: the undergraduates it mailed are left out — nobody gets two letters.
#[tokio::test]
async fn a_set_made_days_before_its_job_counts_from_its_letters() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("aged-set");
    let ugrad = students_query(&dir, "undergraduates", "'UGRAD'");
    let all = students_query(&dir, "all-students", "'UGRAD', 'GRAD'");
    let a = dir.join("a");
    stop_before_the_job(&sim);
    let stopped = execute_run(&sim, &a, ugrad.to_str().unwrap(), &["--period", PERIOD]).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    let set_id = sim.handle.sets()[0].id.clone();
    sim.handle.age_set(&set_id, 8).unwrap();
    sim.handle.clear_faults();
    let run_id = the_only_run(&runs_json(&sim, &a).await);
    let resumed = run(&sim, &a, &["resume", &run_id]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let mailed = sim.handle.outbox().len();
    assert!(mailed > 0);
    // Another installation, its own journal, an overlapping query of the same period.
    let b = dir.join("b");
    let second = execute_run(&sim, &b, all.to_str().unwrap(), &["--period", PERIOD, "--json"]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_no_second_letter(&sim);
    let graduates = sim
        .handle
        .users()
        .iter()
        .filter(|u| u.user_group == "GRAD" && eligible(&sim, u))
        .count();
    assert_eq!(
        last_json(&second.stdout)["cohort_size"].as_u64(),
        Some(graduates as u64),
        "only the graduates: {}",
        second.stderr
    );
    let id = last_json(&second.stdout)["run_id"].as_str().unwrap().to_string();
    let listed = std::fs::read_to_string(b.join("runs").join(id).join("recently-reset.csv")).unwrap();
    assert!(listed.contains(&format!("alma set {set_id}")), "{listed}");
    assert_eq!(
        listed.lines().count() - 1,
        mailed,
        "every undergraduate mailed: {listed}"
    );
}

/// Two servers hold copies of one query whose `[set] name` differ, and their crons fire at once
/// while Alma lists new sets and job instances 20 s late: both name the period's set alike, Alma
/// refuses the second with 402263 — one set, one job, one letter each.
#[tokio::test]
async fn edited_copies_of_a_query_at_once_make_one_set() {
    let sim = sim(sim_config()
        .set_listing_lag(Duration::from_secs(20))
        .instance_listing_lag(Duration::from_secs(20)))
    .await;
    let dir = temp_dir("edited-copies");
    let mut queries = Vec::new();
    for (server, template) in [
        ("one", "User Password Reset {query} {period}"),
        ("two", "Term start {period}: {query} (library systems)"),
    ] {
        let folder = dir.join(server);
        std::fs::create_dir_all(&folder).unwrap();
        queries.push(write_query(
            &folder,
            "everyone.toml",
            &format!(
                "name = \"everyone\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[set]\nname = \"{template}\"\n[guard]\nmax_members = 5000\n"
            ),
        ));
        let v = run(
            &sim,
            &folder.join("state"),
            &["validate", queries.last().unwrap().to_str().unwrap()],
        )
        .await;
        assert_eq!(v.code, 0, "{}", v.stderr);
        assert!(
            v.stdout.contains(
                "run --period 2027-spring names its set \"User Password Reset everyone 2027-spring (alma-cohort)\""
            ),
            "{}",
            v.stdout
        );
    }
    let (qa, qb) = (queries[0].to_str().unwrap(), queries[1].to_str().unwrap());
    let (sa, sb) = (dir.join("one").join("state"), dir.join("two").join("state"));
    let a = execute_run(&sim, &sa, qa, &["--period", PERIOD]);
    let b = execute_run(&sim, &sb, qb, &["--period", PERIOD]);
    let (a, b) = tokio::join!(a, b);
    let mut codes = [a.code, b.code];
    codes.sort();
    assert_eq!(codes, [0, 4], "{}\n{}", a.stderr, b.stderr);
    let refused = if a.code == 4 { &a } else { &b };
    assert!(
        refused.stderr.contains("because a set of that name exists") || refused.stderr.contains("Alma already holds"),
        "{}",
        refused.stderr
    );
    assert_eq!(refused.stderr.matches("error:").count(), 1, "{}", refused.stderr);
    let (sets, instances, _) = counts(&sim);
    assert_eq!((sets, instances), (1, 1));
    assert_done_once(&sim);
    // The set's name is the intent's; the winning copy's own words went to its description.
    let set = &sim.handle.sets()[0];
    assert_eq!(set.name, "User Password Reset everyone 2027-spring (alma-cohort)");
    if b.code == 0 {
        assert!(
            set.description.starts_with("Term start 2027-spring: everyone"),
            "{}",
            set.description
        );
    }
}

/// The daily quota stops a run between two add_members calls; staff take a user out of the set in
/// Manage Sets; `resume` does not add them back: not in the set, no letter, named in the summary
/// and left-out.csv. The same for a user taken out after the members were in, before the job.
#[tokio::test]
async fn what_staff_took_out_of_the_set_stays_out() {
    for between_batches in [true, false] {
        let sim = sim(sim_config()).await;
        let dir = temp_dir("taken-out");
        let state = dir.join("state");
        let q = all_users_query(&dir, 5000);
        assert!(eligible_ids(&sim).len() > 1000, "two add_members calls");
        if between_batches {
            sim.handle.add_fault(
                Fault::new(FaultKind::DailyThreshold, Target::SetOp)
                    .skip(1)
                    .count(1_000_000),
            );
        } else {
            stop_before_the_job(&sim);
        }
        let stopped = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
        assert_eq!(stopped.code, 3, "{}", stopped.stderr);
        let set_id = sim.handle.sets()[0].id.clone();
        let members = sim.handle.set_members(&set_id).unwrap();
        assert_eq!(members.len() > 1000, !between_batches, "{between_batches}");
        let out = members[3].clone();
        sim.handle.remove_member_as_staff(&set_id, &out.to_uppercase()).unwrap();
        sim.handle.clear_faults();
        let run_id = the_only_run(&runs_json(&sim, &state).await);
        let resumed = run(&sim, &state, &["resume", &run_id, "--json"]).await;
        assert_eq!(resumed.code, 0, "{between_batches}: {}", resumed.stderr);
        let set = sim.handle.set_members(&set_id).unwrap();
        assert!(!set.iter().any(|m| m.eq_ignore_ascii_case(&out)), "not added back");
        assert_eq!(set.len(), eligible_ids(&sim).len() - 1, "everyone else is in");
        let letters: Vec<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
        assert!(
            !letters.iter().any(|l| l.eq_ignore_ascii_case(&out)),
            "no letter for them"
        );
        assert_eq!(letters.len(), set.len(), "one letter each for the others");
        assert_eq!(sim.handle.job_instances().len(), 1);
        assert_nobody_locked_out(&sim);
        let result = last_json(&resumed.stdout);
        let left: Vec<&serde_json::Value> = result["left_out"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["reason"] == "removed_in_alma")
            .collect();
        assert_eq!(left.len(), 1, "{result}");
        assert!(left[0]["id"].as_str().unwrap().eq_ignore_ascii_case(&out));
        let file = std::fs::read_to_string(state.join("runs").join(&run_id).join("left-out.csv")).unwrap();
        assert!(
            file.lines()
                .any(|l| l.starts_with(&out) && l.contains("removed_in_alma")),
            "{file}"
        );
        let text = run(&sim, &state, &["show", &run_id]).await;
        assert!(text.stdout.contains("removed from the set in Alma"), "{}", text.stdout);
    }
}

/// A completed run's set deleted by staff: the same period from another installation, and an
/// overlapping query of another installation within the cooldown, find the run's job in Alma's
/// instances and stop (exit 4) — Alma cannot tell whom it mailed. Nobody gets a second letter.
#[tokio::test]
async fn a_job_whose_set_staff_deleted_stops_the_runs_it_may_concern() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("deleted-set");
    let everyone = all_users_query(&dir, 5000);
    let students = students_query(&dir, "all-students", "'UGRAD', 'GRAD'");
    let done = execute_run(&sim, &dir.join("a"), everyone.to_str().unwrap(), &["--period", PERIOD]).await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    let set_id = sim.handle.sets()[0].id.clone();
    sim.handle.delete_set_as_staff(&set_id).unwrap();
    let before = counts(&sim);
    for (state, query, extra) in [
        ("b", everyone.to_str().unwrap(), vec!["--period", PERIOD]),
        ("c", students.to_str().unwrap(), vec!["--period", PERIOD]),
        ("d", students.to_str().unwrap(), vec![]),
    ] {
        let mut args = extra.clone();
        args.push("--json");
        let r = execute_run(&sim, &dir.join(state), query, &args).await;
        assert_eq!(r.code, 4, "{state}: {}", r.stderr);
        assert!(
            r.stderr.contains("which Alma no longer shows") && r.stderr.contains("Monitor Jobs"),
            "{state}: {}",
            r.stderr
        );
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
        assert_eq!(counts(&sim), before, "{state}: nothing new in Alma");
    }
    assert_no_second_letter(&sim);
    // The installation that ran it knows whom it mailed: its overlapping query goes on, without
    // them.
    let a_again = execute_run(&sim, &dir.join("a"), students.to_str().unwrap(), &[]).await;
    assert_eq!(a_again.code, 4, "{}", a_again.stderr);
    assert!(
        a_again.stderr.contains("cohort is empty") || a_again.stderr.contains("empty"),
        "{}",
        a_again.stderr
    );
    // --force, on the operator's word, runs the period again.
    let forced = execute_run(
        &sim,
        &dir.join("b"),
        everyone.to_str().unwrap(),
        &["--period", PERIOD, "--force"],
    )
    .await;
    assert_eq!(forced.code, 0, "{}", forced.stderr);
}

/// A journal copied to a second state dir holds the same run: the copy's `resume` finds the
/// run's set stamped with the other journal and refuses (exit 4); the original finishes once.
#[tokio::test]
async fn a_copied_journal_never_drives_the_other_installations_run() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("copied-journal");
    let q = all_users_query(&dir, 5000);
    let (a, b) = (dir.join("a"), dir.join("b"));
    stop_before_the_job(&sim);
    let stopped = execute_run(&sim, &a, q.to_str().unwrap(), &["--period", PERIOD]).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    sim.handle.clear_faults();
    copy_dir(&a, &b);
    let run_id = the_only_run(&runs_json(&sim, &a).await);
    let copy = run(&sim, &b, &["resume", &run_id]).await;
    assert_eq!(copy.code, 4, "{}", copy.stderr);
    assert!(
        copy.stderr.contains("two installations hold this run") && copy.stderr.contains(a.to_str().unwrap()),
        "{}",
        copy.stderr
    );
    assert!(sim.handle.job_instances().is_empty());
    let original = run(&sim, &a, &["resume", &run_id]).await;
    assert_eq!(original.code, 0, "{}", original.stderr);
    assert_done_once(&sim);
}

/// A set search that does not list this journal's own set, which Alma holds (by its id) under a
/// name with the marker and made long ago, cannot see any installation's: the cooldown stops
/// (exit 3) naming the search, rather than reading nobody.
#[tokio::test]
async fn a_set_search_blind_to_our_own_sets_stops() {
    let sim = sim(sim_config().set_listing_lag(Duration::from_secs(30 * 86_400))).await;
    let dir = temp_dir("blind-search");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let done = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
    assert_eq!(done.code, 0, "a new set not listed yet is no alarm: {}", done.stderr);
    let set_id = sim.handle.sets()[0].id.clone();
    sim.handle.age_set(&set_id, 1).unwrap();
    let plan = run(&sim, &state, &["plan", q.to_str().unwrap()]).await;
    assert_eq!(plan.code, 3, "{}", plan.stderr);
    assert!(
        plan.stderr.contains("q=name~alma-cohort") && plan.stderr.contains(&set_id),
        "{}",
        plan.stderr
    );
    assert_eq!(plan.stderr.matches("error:").count(), 1, "{}", plan.stderr);
    let mailed: HashSet<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
    assert_eq!(mailed.len(), sim.handle.outbox().len());
}

/// A run of this journal stopped before its job and abandoned; staff then run Update/Notify Users
/// on its set from Alma's UI (it mailed the undergraduates). An overlapping query of the same
/// journal leaves them out: the cooldown reads this journal's own sets that a UI job ran on.
#[tokio::test]
async fn a_ui_job_on_our_abandoned_set_counts_in_the_cooldown() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("ui-on-ours");
    let ugrad = students_query(&dir, "undergraduates", "'UGRAD'");
    let all = students_query(&dir, "all-students", "'UGRAD', 'GRAD'");
    let state = dir.join("state");
    stop_before_the_job(&sim);
    let stopped = execute_run(&sim, &state, ugrad.to_str().unwrap(), &[]).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    sim.handle.clear_faults();
    let run_id = the_only_run(&runs_json(&sim, &state).await);
    let abandoned = run(&sim, &state, &["abandon", &run_id, "--reason", "staff will run it"]).await;
    assert_eq!(abandoned.code, 0, "{}", abandoned.stderr);
    let set_id = sim.handle.sets()[0].id.clone();
    sim.handle.run_job_from_ui(&set_id).unwrap();
    sim.handle.advance(Duration::from_secs(1));
    let mailed = sim.handle.outbox().len();
    assert!(mailed > 0, "the UI job mailed the set");
    let second = execute_run(&sim, &state, all.to_str().unwrap(), &["--json"]).await;
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert_no_second_letter(&sim);
    assert!(
        second
            .stderr
            .contains(&format!("Cooldown 7 days: {mailed} users notified")),
        "{}",
        second.stderr
    );
}

/// The state dir moved (or a container's hostname changed): the run's set names another journal,
/// so `resume` refuses (exit 4); on the operator's word (`--take-over`, recorded) it goes on, once.
/// The word holds for this installation only: a copy of the journal made since refuses.
#[tokio::test]
async fn a_moved_state_dir_is_taken_over_on_the_operators_word() {
    let sim = sim(sim_config()).await;
    let dir = temp_dir("moved-state");
    let q = all_users_query(&dir, 5000);
    let (old, new, third) = (dir.join("old"), dir.join("new"), dir.join("third"));
    stop_before_the_job(&sim);
    let stopped = execute_run(&sim, &old, q.to_str().unwrap(), &["--period", PERIOD]).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    std::fs::rename(&old, &new).unwrap();
    let run_id = the_only_run(&runs_json(&sim, &new).await);
    let refused = run(&sim, &new, &["resume", &run_id]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused.stderr.contains(&format!("resume {run_id} --take-over")),
        "{}",
        refused.stderr
    );
    // Taken over; Alma still fails the instance list, so the run stops again before its job.
    let taken = run(&sim, &new, &["resume", &run_id, "--take-over"]).await;
    assert_eq!(taken.code, 3, "{}", taken.stderr);
    copy_dir(&new, &third);
    sim.handle.clear_faults();
    let copy = run(&sim, &third, &["resume", &run_id]).await;
    assert_eq!(copy.code, 4, "the copy is another installation: {}", copy.stderr);
    let taken = run(&sim, &new, &["resume", &run_id]).await;
    assert_eq!(taken.code, 0, "{}", taken.stderr);
    assert_done_once(&sim);
    let shown = run(&sim, &new, &["show", &run_id]).await;
    assert!(shown.stdout.contains("taken over by"), "{}", shown.stdout);
}
