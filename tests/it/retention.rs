//! Patron data kept no longer than needed: the files of runs that ended more than `[retention]
//! days` ago go — with `prune`, and after each `run --execute` — while the journal keeps each
//! run's record and IDs, so the period and the cooldown still hold.

use std::path::Path;

use crate::cli::{Run, temp_dir};
use crate::execute::{all_users_query, command, execute_run, output, run, runs_json, sim_config};
use crate::support::*;

async fn with_config(sim: &Sim, state: &Path, config: &Path, args: &[&str]) -> Run {
    let mut cmd = command(sim, state, args);
    cmd.env("ALMA_COHORT_CONFIG", config);
    output(cmd).await
}

/// Moves a run's end (and start) back by `days` in the journal, as if it ran then.
fn age(state: &Path, run_id: &str, days: i64) {
    let db = rusqlite::Connection::open(state.join("journal.sqlite")).unwrap();
    let then = (chrono::Utc::now() - chrono::Duration::days(days)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    db.execute(
        "UPDATE runs SET started_at = ?1, finished_at = CASE WHEN finished_at IS NULL THEN NULL ELSE ?1 END WHERE run_id = ?2",
        [&then, run_id],
    )
    .unwrap();
}

fn folder_count(state: &Path) -> usize {
    std::fs::read_dir(state.join("runs")).map(|d| d.count()).unwrap_or(0)
}

#[tokio::test]
async fn old_runs_files_go_and_their_record_stays() {
    let sim = sim(sim_config().users(40)).await;
    let dir = temp_dir("retention");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    // Each period mails everyone again (the cooldown would leave them all out).
    let text = std::fs::read_to_string(&q).unwrap() + "cooldown_days = 0\n";
    std::fs::write(&q, text).unwrap();
    let q = q.to_str().unwrap();
    for period in ["2026-spring", "2026-summer"] {
        let r = execute_run(&sim, &state, q, &["--period", period, "--force"]).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    // An unfinished run (stopped by the refused share) and a plan that never executed.
    let refusing = dir.join("refusing.toml");
    std::fs::write(
        &refusing,
        format!("name = \"refusing\"\n[file]\npath = \"ids.csv\"\n[cohort]\nid_column = \"User name\"\n[guard]\nmax_members = 10\ncooldown_days = 0\n{RULES_FROM_FILE}"),
    )
    .unwrap();
    let mut ids = sim.ids(true, 3);
    ids.push("NOT-IN-ALMA".into());
    std::fs::write(dir.join("ids.csv"), list_csv(&ids)).unwrap();
    let stopped = execute_run(&sim, &state, refusing.to_str().unwrap(), &[]).await;
    assert_eq!(stopped.code, 4, "{}", stopped.stderr);
    let plan = run(&sim, &state, &["plan", q]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let runs = runs_json(&sim, &state).await;
    let ids: Vec<String> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["run_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 3);
    for id in &ids {
        age(&state, id, 100);
    }
    // The plan's folder, made 100 days ago.
    let plan_folder = std::fs::read_dir(state.join("runs"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .find(|n| !ids.contains(n))
        .unwrap();
    std::fs::rename(
        state.join("runs").join(&plan_folder),
        state.join("runs/20250801T020000Z-0abc"),
    )
    .unwrap();
    // Something of the operator's own in runs/ is not ours to delete.
    std::fs::create_dir_all(state.join("runs/notes")).unwrap();
    assert_eq!(folder_count(&state), 5);

    let dry = run(&sim, &state, &["prune", "--dry-run"]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains("would delete the files of 2 ended runs and 1 plans older than 90 days")
            && dry.stdout.contains("kept the files of 1 unfinished runs"),
        "{}",
        dry.stdout
    );
    assert_eq!(folder_count(&state), 5, "a dry run deletes nothing");

    let pruned = run(&sim, &state, &["prune", "--json"]).await;
    assert_eq!(pruned.code, 0, "{}", pruned.stderr);
    let v: serde_json::Value = serde_json::from_str(pruned.stdout.trim()).unwrap();
    assert_eq!(
        (
            v["runs"].as_array().unwrap().len(),
            v["plans"].as_array().unwrap().len()
        ),
        (2, 1)
    );
    assert!(
        v["files"].as_u64().unwrap() >= 9 && v["bytes"].as_u64().unwrap() > 0,
        "{v}"
    );
    assert_eq!(folder_count(&state), 2, "the unfinished run's folder and notes/ stay");
    assert!(state.join("runs/notes").is_dir());
    // The record stays, says so, and the period still holds.
    let completed = v["runs"][0].as_str().unwrap();
    let show = run(&sim, &state, &["show", completed]).await;
    assert!(show.stdout.contains("files pruned"), "{}", show.stdout);
    assert_eq!(runs_json(&sim, &state).await.as_array().unwrap().len(), 3);
    let again = execute_run(&sim, &state, q, &["--period", "2026-spring"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    // Resuming a pruned run writes no files back.
    let resumed = run(&sim, &state, &["resume", completed]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert!(!state.join("runs").join(completed).exists());

    // After a run --execute, the config's [retention] days apply on their own.
    let config = dir.join("alma-cohort.toml");
    std::fs::write(&config, "[retention]\ndays = 30\n").unwrap();
    let r = with_config(
        &sim,
        &state,
        &config,
        &["run", q, "--execute", "--yes", "--period", "2026-fall", "--force"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let unfinished = ids
        .iter()
        .find(|i| state.join("runs").join(i).is_dir())
        .unwrap()
        .clone();
    assert_eq!(
        folder_count(&state),
        3,
        "notes/, the unfinished run's and the new run's"
    );
    let newest = runs_json(&sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    age(&state, &newest, 40);
    let r = with_config(
        &sim,
        &state,
        &config,
        &["run", q, "--execute", "--yes", "--period", "2026-winter", "--force"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        !state.join("runs").join(&newest).exists(),
        "ended 40 days ago, retention 30"
    );
    assert!(
        state.join("runs").join(&unfinished).is_dir(),
        "never an unfinished run's"
    );

    // Bad retention values: one error line, exit 2, nothing deleted.
    let before = folder_count(&state);
    for (config_text, args) in [
        ("[retention]\ndays = 0\n", vec!["prune"]),
        ("[retention]\ndays = -5\n", vec!["prune"]),
        ("[retention]\ndays = 1\n", vec!["prune", "--older-than", "0"]),
        ("[retention]\ndays = 1\n", vec!["prune", "--older-than", "-3"]),
    ] {
        std::fs::write(&config, config_text).unwrap();
        let r = with_config(&sim, &state, &config, &args).await;
        assert_eq!(r.code, 2, "{config_text} {args:?}: {}", r.stderr);
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
        assert_eq!(folder_count(&state), before);
    }
    // prune on a state dir that does not exist creates nothing.
    let missing = dir.join("no-such-state");
    let r = run(&sim, &missing, &["prune"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(!missing.exists());
}

/// A run abandoned before its job mailed no one; pruning its files must not make it look like
/// one that may have (the prune's line in its history is not how it ended): the period runs again.
#[tokio::test]
async fn a_pruned_run_abandoned_before_its_job_still_mailed_no_one() {
    let sim = sim(sim_config().users(40)).await;
    let dir = temp_dir("prune-abandoned");
    let state = dir.join("state");
    let q = dir.join("q.toml");
    std::fs::write(
        &q,
        format!("name = \"listed\"\n[file]\npath = \"ids.csv\"\n[cohort]\nid_column = \"User name\"\n[guard]\nmax_members = 10\n{RULES_FROM_FILE}"),
    )
    .unwrap();
    let mut ids = sim.ids(true, 3);
    ids.push("NOT-IN-ALMA".into());
    std::fs::write(dir.join("ids.csv"), list_csv(&ids)).unwrap();
    let q = q.to_str().unwrap();
    let stopped = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(stopped.code, 4, "{}", stopped.stderr);
    let run_id = runs_json(&sim, &state).await[0]["run_id"].as_str().unwrap().to_string();
    let abandoned = run(&sim, &state, &["abandon", &run_id, "--reason", "wrong list"]).await;
    assert_eq!(abandoned.code, 0, "{}", abandoned.stderr);
    age(&state, &run_id, 100);
    let pruned = run(&sim, &state, &["prune"]).await;
    assert!(
        pruned.stdout.contains("deleted the files of 1 ended runs"),
        "{}",
        pruned.stdout
    );
    // The period is open again: the next run gets as far as Alma's refusals, not "may have mailed".
    let again = execute_run(&sim, &state, q, &["--period", "2027-spring"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert!(
        again.stderr.contains("Alma refused 1 of run ") && !again.stderr.contains("may have mailed"),
        "{}",
        again.stderr
    );
    assert_eq!(sim.handle.job_instances().len(), 0);
}
