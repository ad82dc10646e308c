//! Each person checked live in Alma before the set: whoever changed since the report (inactive,
//! external, no preferred email, a staff role, expired) or is not in Alma is left out by name,
//! never put in the set, never reset; the rest get one letter each; nobody is locked out.
//! Counted in the simulator's reset log and outbox, through the binary.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use alma_sim::{DriftKind, Target, UserSeed};
use serde_json::Value;

use crate::cli::temp_dir;
use crate::execute::{against, last_json, output, run, sim_config};
use crate::letter::students;
use crate::support::*;

fn reason_of(kind: DriftKind) -> &'static str {
    match kind {
        DriftKind::Inactive => "inactive",
        DriftKind::External => "external",
        DriftKind::NoEmail => "no_email",
        DriftKind::Staff => "staff_role",
        DriftKind::Expired => "expired",
    }
}

/// `left_out` of a plan or run as ID (lower-cased) → reason.
fn left_out(json: &Value) -> HashMap<String, String> {
    json["left_out"]
        .as_array()
        .unwrap_or_else(|| panic!("left_out in {json}"))
        .iter()
        .map(|l| {
            (
                l["id"].as_str().unwrap().to_lowercase(),
                l["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn reset_ids(sim: &Sim) -> HashSet<String> {
    sim.handle
        .resets()
        .into_iter()
        .map(|r| r.user_primary_id.to_lowercase())
        .collect()
}

#[tokio::test]
async fn who_changed_in_alma_since_the_report_is_left_out_by_name_and_never_reset() {
    let mut config = sim_config().users(1500);
    for kind in DriftKind::all() {
        config = config.drift(*kind, 6);
    }
    let sim = sim(config).await;
    let drifted = sim.handle.drifted();
    assert_eq!(drifted.len(), 30);
    let dir = temp_dir("drift");
    let q = students(&dir, "");
    let state = dir.join("state");
    let q = q.to_str().unwrap();

    let plan = run(&sim, &state, &["plan", q, "--json"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let json = last_json(&plan.stdout);
    let named = left_out(&json);
    for (id, kind) in &drifted {
        assert_eq!(
            named.get(&id.to_lowercase()).map(String::as_str),
            Some(reason_of(*kind)),
            "{id} ({kind:?}) is named with its reason"
        );
    }
    // Nobody is named who could read the letter: the plan names the ineligible, not the cohort.
    let users: HashMap<String, alma_sim::UserSummary> = sim
        .handle
        .users()
        .into_iter()
        .map(|u| (u.primary_id.to_lowercase(), u))
        .collect();
    for id in named.keys() {
        assert!(
            !eligible(&sim, &users[id]),
            "{id} is left out only if the letter cannot reach them"
        );
    }
    assert!(named.len() < json["cohort_size"].as_u64().unwrap() as usize / 5);
    assert_eq!(json["eligibility"]["source"], "alma");
    assert!(
        plan.stderr
            .lines()
            .all(|l| !drifted.iter().any(|(id, _)| l.contains(id.as_str()))),
        "logs carry counts, never IDs:\n{}",
        plan.stderr
    );
    let csv = std::fs::read_to_string(json["left_out_file"].as_str().unwrap()).unwrap();
    assert!(csv.starts_with("primary_id,reason,alma_said"), "{csv}");
    assert_eq!(csv.lines().count(), named.len() + 1);

    let text = run(&sim, &state, &["plan", q]).await;
    assert!(
        text.stdout.contains("left out: not ACTIVE") && text.stdout.contains("rules: in Alma, INTERNAL"),
        "{}",
        text.stdout
    );

    let r = run(
        &sim,
        &state,
        &["run", q, "--period", "fall", "--execute", "--yes", "--json"],
    )
    .await;
    assert_eq!(
        r.code, 0,
        "left-out users are not refused: the run ends 0\n{}",
        r.stderr
    );
    let result = last_json(&r.stdout);
    let members = the_set(&sim);
    for (id, kind) in &drifted {
        assert!(
            !members.contains(&id.to_lowercase()),
            "{id} ({kind:?}) never in the set"
        );
    }
    assert_eq!(left_out(&result), named, "the run names the same people");
    let reset = reset_ids(&sim);
    assert_eq!(reset, members, "exactly the set's members were reset");
    assert!(members.iter().all(|m| eligible(&sim, &users[m])));
    let lettered = sim.handle.outbox().into_iter().filter(|l| l.carries_password).count();
    assert_eq!(lettered, members.len(), "one letter each");
    assert_nobody_locked_out(&sim);
    let run_id = result["run_id"].as_str().unwrap();
    let html = std::fs::read_to_string(state.join("runs").join(run_id).join("report.html")).unwrap();
    assert!(
        html.contains("Left out") && html.contains(drifted[0].0.as_str()),
        "report.html names them"
    );
}

/// The people of a rehearsal: `n` seeded users `L0001…`, internal, active, with an address.
fn people(n: usize) -> Vec<UserSeed> {
    (1..=n)
        .map(|i| UserSeed {
            primary_id: format!("L{i:04}"),
            ..UserSeed::default()
        })
        .collect()
}

/// `run Q --execute --yes --json` with the state dir in `dir`.
async fn execute_json(sim: &Sim, dir: &Path, q: &Path) -> crate::cli::Run {
    run(
        sim,
        &dir.join("state"),
        &["run", q.to_str().unwrap(), "--execute", "--yes", "--json"],
    )
    .await
}

fn list_query(dir: &Path, ids: &[String], extra: &str) -> PathBuf {
    std::fs::write(dir.join("ids.txt"), ids.join("\n")).unwrap();
    write_query(
        dir,
        "list.toml",
        &format!(
            "name = \"registrar\"\n[file]\npath = \"ids.txt\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 100\n{extra}"
        ),
    )
}

#[tokio::test]
async fn a_list_of_25_with_5_changed_users_resets_the_20() {
    let sim = sim(sim_config().users(50).user_seeds(people(25))).await;
    let ids: Vec<String> = (1..=25).map(|i| format!("L{i:04}")).collect();
    let changed: Vec<(String, DriftKind)> = DriftKind::all()
        .iter()
        .enumerate()
        .map(|(i, k)| (ids[i * 5].clone(), *k))
        .collect();
    for (id, kind) in &changed {
        sim.handle.change_user(id, *kind).unwrap();
    }
    let dir = temp_dir("list25");
    let q = list_query(&dir, &ids, "");
    let r = execute_json(&sim, &dir, &q).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = last_json(&r.stdout);
    let named = left_out(&json);
    assert_eq!(named.len(), 5, "{named:?}");
    for (id, kind) in &changed {
        assert_eq!(named[&id.to_lowercase()], reason_of(*kind));
    }
    assert_eq!(the_set(&sim).len(), 20);
    assert_eq!(reset_ids(&sim).len(), 20, "the 5 were not reset");
    assert_eq!(sim.handle.outbox().len(), 20, "20 letters");
    assert_nobody_locked_out(&sim);
}

#[tokio::test]
async fn a_user_alma_does_not_know_is_left_out_before_the_set_and_too_many_refuse() {
    let sim = sim(sim_config().users(50).user_seeds(people(20))).await;
    let mut ids: Vec<String> = (1..=20).map(|i| format!("L{i:04}")).collect();
    ids.push("NOSUCH01".into());
    let dir = temp_dir("unknown");
    // One unknown of 21 is more than the default 1 %: refused before any write.
    let q = list_query(&dir, &ids, "");
    let refused = run(
        &sim,
        &dir.join("state"),
        &["run", q.to_str().unwrap(), "--execute", "--yes"],
    )
    .await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(refused.stderr.contains("not_in_alma"), "{}", refused.stderr);
    assert!(sim.handle.sets().is_empty());
    // Allowed by the query: the unknown is left out, named, and the run ends 0.
    let q = list_query(&dir, &ids, "max_refused_ratio = 0.1\n");
    let r = execute_json(&sim, &dir, &q).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(left_out(&last_json(&r.stdout))["nosuch01"], "not_in_alma");
    assert_eq!(the_set(&sim).len(), 20);
}

#[tokio::test]
async fn each_rule_can_be_relaxed_and_the_simulator_counts_who_it_locks_out() {
    let sim = sim(sim_config().users(50).user_seeds(people(6))).await;
    let ids: Vec<String> = (1..=6).map(|i| format!("L{i:04}")).collect();
    sim.handle.change_user(&ids[0], DriftKind::Staff).unwrap();
    sim.handle.change_user(&ids[1], DriftKind::NoEmail).unwrap();
    let dir = temp_dir("relaxed");
    let q = list_query(
        &dir,
        &ids,
        "[eligibility]\nstaff = \"include\"\nrequire_email = false\n",
    );
    let plan = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap()]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let r = execute_json(&sim, &dir, &q).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(left_out(&last_json(&r.stdout)).is_empty());
    assert_eq!(
        the_set(&sim).len(),
        6,
        "the staff member and the one without an address stay in"
    );
    // The query said so: the one without a preferred address is reset and cannot read the letter.
    assert_eq!(sim.handle.locked_out(), vec![ids[1].clone()]);
}

#[tokio::test]
async fn without_lookups_the_report_decides_and_the_plan_says_it_may_lag() {
    let sim = sim(sim_config().users(400).drift(DriftKind::Inactive, 3)).await;
    let dir = temp_dir("no-lookup");
    let q = write_query(
        &dir,
        "report-rules.toml",
        &format!(
            "name = \"by-report\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 5000\n\
             [eligibility]\nlookup = false\naccount_type_column = \"Account Type\"\nstatus_column = \"Status\"\nexpiry_column = \"Expiry Date\"\nemail_column = \"Preferred Email\"\n"
        ),
    );
    let plan = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap(), "--json"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let json = last_json(&plan.stdout);
    assert_eq!(json["eligibility"]["source"], "report");
    let named = left_out(&json);
    assert!(named.values().any(|r| r == "external") && named.values().any(|r| r == "inactive"));
    // The report lags: who turned inactive in Alma since is still in (the price of lookup = false).
    for (id, _) in sim.handle.drifted() {
        assert!(!named.contains_key(&id.to_lowercase()));
    }
    let text = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap()]).await;
    assert!(text.stdout.contains("may lag Alma"), "{}", text.stdout);
    assert!(
        sim.handle.requests().iter().all(|r| r.target != Target::UserGet),
        "no user lookups"
    );
}

#[tokio::test]
async fn resume_looks_up_again_when_the_lookups_are_old_and_takes_the_changed_out_of_the_set() {
    let sim = sim(sim_config().users(50).user_seeds(people(8))).await;
    let ids: Vec<String> = (1..=8).map(|i| format!("L{i:04}")).collect();
    let dir = temp_dir("stale");
    // Lookups are never fresh enough (0 hours): resume looks every member up again.
    let q = list_query(&dir, &ids, "[eligibility]\nmax_age_hours = 0\n");
    let state = dir.join("state");
    // Alma fails the job-instance listing that comes right before the submission: the run stops
    // with its set made and filled, before the job.
    stop_before_the_job(&sim);
    let first = run(
        &sim,
        &state,
        &["run", q.to_str().unwrap(), "--execute", "--yes", "--json"],
    )
    .await;
    assert_eq!(first.code, 3, "{}", first.stderr);
    let run_id = last_json(&first.stdout)["run_id"].as_str().unwrap().to_string();
    assert!(sim.handle.job_instances().is_empty());
    assert_eq!(the_set(&sim).len(), 8);
    sim.handle.clear_faults();

    // Meanwhile two of them change in Alma.
    sim.handle.change_user(&ids[2], DriftKind::Inactive).unwrap();
    sim.handle.change_user(&ids[5], DriftKind::Expired).unwrap();
    let done = run(&sim, &state, &["resume", &run_id, "--yes", "--json"]).await;
    assert_eq!(done.code, 0, "{}", done.stderr);
    let json = last_json(&done.stdout);
    let named = left_out(&json);
    assert_eq!(named.get(&ids[2].to_lowercase()).map(String::as_str), Some("inactive"));
    assert_eq!(named.get(&ids[5].to_lowercase()).map(String::as_str), Some("expired"));
    let members = the_set(&sim);
    assert_eq!(members.len(), 6, "taken out of the set before the job: {members:?}");
    assert_eq!(reset_ids(&sim), members);
    assert_nobody_locked_out(&sim);
}

#[tokio::test]
async fn eligibility_settings_and_rehearsal_files_that_cannot_be_used_are_usage_errors() {
    let sim = sim(sim_config().users(20)).await;
    let dir = temp_dir("elig-bad");
    for (extra, words) in [
        ("[eligibility]\nstaf = \"include\"\n", "staf"),
        ("[eligibility]\nstaff = \"maybe\"\n", "eligibility.staff"),
        ("[eligibility]\nlookup = false\n", "eligibility.lookup"),
        ("[eligibility]\nmax_age_hours = -1\n", "eligibility.max_age_hours"),
    ] {
        let q = list_query(&dir, &["A1".to_string()], extra);
        let r = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap()]).await;
        assert_eq!(r.code, 2, "{extra}\n{}", r.stderr);
        let errors: Vec<&str> = r.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{}", r.stderr);
        assert!(r.stderr.contains(words), "{extra}: {}", r.stderr);
    }
    assert!(sim.handle.requests().is_empty(), "nothing reached Alma");
    // --users-from a file the list reader refuses: one error line, exit 2, no simulator served.
    let binary = dir.join("bin.txt");
    std::fs::write(&binary, b"A1\n\x00\x01PK\n").unwrap();
    for file in [binary.clone(), dir.join("missing.txt"), dir.join("list.toml")] {
        let out = Command::new(env!("CARGO_BIN_EXE_alma-cohort"))
            .args(["sim", "--port", "0", "--users-from"])
            .arg(&file)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{}: {err}", file.display());
        assert_eq!(err.lines().filter(|l| l.starts_with("error:")).count(), 1, "{err}");
    }
}

/// `sim --users-from FILE`: a library's own list, created in the simulator, runs end to end.
#[tokio::test]
async fn a_library_rehearses_its_own_list_on_the_simulator() {
    use std::io::{BufRead, BufReader};
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = temp_dir("rehearse");
    let ids: Vec<String> = ["0012345", "0012346", "AB00001", "ab00002"].map(String::from).to_vec();
    std::fs::write(
        dir.join("report.csv"),
        "Primary Identifier,User Group,Account Type,Status,Preferred Email\n0012345,UGRAD,Internal,Active,a@x.edu\n0012346,GRAD,Internal,Inactive,b@x.edu\nAB00001,UGRAD,External,Active,c@x.edu\nab00002,UGRAD,Internal,Active,\n",
    )
    .unwrap();
    let port_file = dir.join("sim.port");
    let child = Command::new(env!("CARGO_BIN_EXE_alma-cohort"))
        .args([
            "sim",
            "--port",
            "0",
            "--users",
            "5",
            "--rate-limit",
            "0",
            "--users-from",
        ])
        .arg(dir.join("report.csv"))
        .arg("--port-file")
        .arg(&port_file)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Running(child);
    let mut stderr = BufReader::new(child.0.stderr.take().unwrap());
    let mut banner = String::new();
    while !banner.contains("inspect:") {
        let mut line = String::new();
        assert_ne!(
            stderr.read_line(&mut line).unwrap(),
            0,
            "the simulator stopped: {banner}"
        );
        banner.push_str(&line);
    }
    assert!(banner.contains("4 people from"), "{banner}");
    let port = std::fs::read_to_string(&port_file).unwrap().trim().to_string();
    let q = list_query(&dir, &ids, "max_refused_ratio = 0.5\n");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
    cmd.args(["--base-url", &format!("http://127.0.0.1:{port}"), "--state-dir"])
        .arg(dir.join("state"))
        .env("ALMA_API_KEY", KEY)
        .env("ALMA_COHORT_POLL_INTERVAL", "0.05")
        .args(["run", q.to_str().unwrap(), "--execute", "--yes", "--json"]);
    crate::cli::isolate_home(&mut cmd);
    let r = output(cmd).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let json = last_json(&r.stdout);
    let named = left_out(&json);
    assert_eq!(named.get("0012346").map(String::as_str), Some("inactive"), "{named:?}");
    assert_eq!(named.get("ab00001").map(String::as_str), Some("external"));
    assert_eq!(named.get("ab00002").map(String::as_str), Some("no_email"));
    assert_eq!(json["members_added"], 1, "only 0012345 can read the letter");
    let _ = against;
}

/// A cohort the `max_members` guard refuses is not looked up: a report gone wrong costs no call
/// per row. Without lookups and without a staff column, the plan says the staff rule is not
/// checked.
#[tokio::test]
async fn no_lookups_for_a_cohort_the_guard_refuses_and_the_staff_rule_said_when_unchecked() {
    let sim = sim(sim_config().users(300)).await;
    let dir = temp_dir("elig-skip");
    let q = write_query(
        &dir,
        "big.toml",
        &format!(
            "name = \"big\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 10\n"
        ),
    );
    let plan = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap()]).await;
    assert_eq!(plan.code, 4, "{}", plan.stderr);
    assert!(plan.stdout.contains("NOT LOOKED UP"), "{}", plan.stdout);
    assert!(
        sim.handle.requests().iter().all(|r| r.target != Target::UserGet),
        "no user lookups"
    );
    let q = write_query(
        &dir,
        "report-rules.toml",
        &format!(
            "name = \"by-report\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 5000\n{}",
            RULES_FROM_FILE
        ),
    );
    let plan = run(&sim, &dir.join("state"), &["plan", q.to_str().unwrap()]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("Guard staff_rule") && plan.stdout.contains("NOT CHECKED"),
        "{}",
        plan.stdout
    );
}
