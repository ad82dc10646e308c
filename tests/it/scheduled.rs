//! The shipped schedule (`contrib/`): the wrapper cron and systemd run says nothing when the reset
//! ran or the period was already done, and speaks (with a failing exit code) when a person is
//! needed; its log is private.

use std::path::Path;
use std::process::Command;

use crate::cli::{Run, temp_dir};
use crate::execute::{against, all_users_query, output, sim_config};
use crate::support::*;

async fn scheduled(sim: &Sim, state: &Path, log: &Path, query: &Path) -> Run {
    scheduled_as(sim, state, log, query, "run").await
}

async fn scheduled_as(sim: &Sim, state: &Path, log: &Path, query: &Path, mode: &str) -> Run {
    let mut cmd = Command::new("sh");
    cmd.env("ALMA_COHORT_MODE", mode);
    cmd.arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/alma-cohort-scheduled"))
        .arg(query)
        .env("ALMA_COHORT_BIN", env!("CARGO_BIN_EXE_alma-cohort"))
        .env("ALMA_COHORT_LOG", log);
    against(&mut cmd, sim, state);
    output(cmd).await
}

#[tokio::test]
async fn the_wrapper_speaks_only_when_a_person_is_needed() {
    let sim = sim(sim_config().users(30)).await;
    let dir = temp_dir("scheduled");
    let state = dir.join("state");
    let log = dir.join("log/scheduled.log");
    std::fs::create_dir_all(log.parent().unwrap()).unwrap();
    let q = all_users_query(&dir, 5000);

    let first = scheduled(&sim, &state, &log, &q).await;
    assert_eq!(
        (first.code, first.stdout.as_str(), first.stderr.as_str()),
        (0, "", ""),
        "the reset ran: quiet"
    );
    assert_eq!(sim.handle.job_instances().len(), 1);
    let again = scheduled(&sim, &state, &log, &q).await;
    assert_eq!(
        (again.code, again.stdout.as_str(), again.stderr.as_str()),
        (0, "", ""),
        "already done: quiet"
    );
    assert_eq!(sim.handle.job_instances().len(), 1);
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.matches("== ").count(), 2, "{text}");
    assert!(
        text.contains("exit 0") && text.contains("exit 4") && text.contains("\"skipped\":true"),
        "{text}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the log is private");
    }

    // A run that stops before its job (Alma refused too many): exit 4, and the words a person needs.
    let list = dir.join("list.toml");
    std::fs::write(
        &list,
        format!("name = \"listed\"\n[file]\npath = \"ids.csv\"\n[cohort]\nid_column = \"User name\"\n[guard]\nmax_members = 10\ncooldown_days = 0\n{RULES_FROM_FILE}"),
    )
    .unwrap();
    let mut ids = sim.ids(true, 3);
    ids.push("NOT-IN-ALMA".into());
    std::fs::write(dir.join("ids.csv"), list_csv(&ids)).unwrap();
    let stopped = scheduled(&sim, &state, &log, &list).await;
    assert_eq!(stopped.code, 4, "{}", stopped.stderr);
    assert!(
        stopped.stderr.contains("exited 4; this needs a person")
            && stopped.stderr.contains("result: {")
            && stopped.stderr.contains("\"run_id\"")
            && stopped.stderr.contains("error: Alma refused 1 of run "),
        "{}",
        stopped.stderr
    );
    assert_eq!(sim.handle.job_instances().len(), 1, "no job for the stopped run");

    // A query that requires an approved plan: the timer applies it once approved, and is quiet
    // while there is none.
    let reviewed = dir.join("reviewed.toml");
    std::fs::write(
        &reviewed,
        "name = \"reviewed\"\n[file]\npath = \"ok-ids.txt\"\n[cohort]\nid_column = \"User name\"\n[guard]\nmax_members = 10\ncooldown_days = 0\n[approval]\nrequired = 1\n",
    )
    .unwrap();
    std::fs::write(dir.join("ok-ids.txt"), sim.ids(true, 3).join("\n")).unwrap();
    let waiting = scheduled_as(&sim, &state, &log, &reviewed, "apply").await;
    assert_eq!(
        (waiting.code, waiting.stdout.as_str(), waiting.stderr.as_str()),
        (0, "", ""),
        "no approved plan yet: quiet"
    );
    let period = chrono::Local::now().format("%Y-%m").to_string();
    let saved = crate::execute::run(
        &sim,
        &state,
        &[
            "plan",
            reviewed.to_str().unwrap(),
            "--period",
            &period,
            "--save",
            "--json",
        ],
    )
    .await;
    let id = crate::execute::last_json(&saved.stdout)["plan_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut approve = crate::execute::command(&sim, &state, &["approve", &id]);
    approve.envs(crate::support::sudo_env("bin"));
    assert_eq!(output(approve).await.code, 0);
    let applied = scheduled_as(&sim, &state, &log, &reviewed, "apply").await;
    assert_eq!((applied.code, applied.stderr.as_str()), (0, ""), "applied: quiet");
    assert_eq!(sim.handle.job_instances().len(), 2);
    let done = scheduled_as(&sim, &state, &log, &reviewed, "apply").await;
    assert_eq!((done.code, done.stderr.as_str()), (0, ""), "done: quiet");
    assert_eq!(sim.handle.job_instances().len(), 2);
}
