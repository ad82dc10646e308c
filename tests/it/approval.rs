//! Plan, approve, apply exactly that: a saved plan's frozen cohort reaches Alma however the
//! report changed since; every refusal (unapproved, self-approved, expired, changed files,
//! applied) writes nothing; the timer's form applies the one approved plan; a kill during apply
//! is resumed into one set, one job, one letter each.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use alma_sim::Target;
use serde_json::Value;

use crate::cli::{Run, temp_dir};
use crate::execute::{command, execute_run, last_json, output, run, runs_json, sim_config};
use crate::support::*;

const REPORT: &str = "/shared/Mine/Cohort";
const PERIOD: &str = "2027-spring";

/// A report of `ids` (CSV for the simulator).
fn report_csv(dir: &Path, name: &str, ids: &[String]) -> PathBuf {
    let file = dir.join(name);
    let mut text = String::from("Primary Identifier\n");
    for id in ids {
        text.push_str(id);
        text.push('\n');
    }
    std::fs::write(&file, text).unwrap();
    file
}

/// A query over the report, with `[approval]` as given and an exclusion file.
fn query(dir: &Path, approval: &str) -> PathBuf {
    std::fs::write(dir.join("protected.txt"), "# protected staff\nSTAFF-0001\n").unwrap();
    let q = dir.join("reviewed.toml");
    std::fs::write(
        &q,
        format!(
            "name = \"reviewed\"\n[report]\npath = \"{REPORT}\"\n[cohort]\nid_column = \"Primary Identifier\"\nexclude_files = [\"protected.txt\"]\n[guard]\nmax_members = 100\n[approval]\n{approval}\n"
        ),
    )
    .unwrap();
    q
}

/// An institution of `users` whose report holds `n` internal users, a query over it with
/// `[approval]` as given, and a state dir: the simulator, the report's IDs, the folder, the query.
struct Setup {
    sim: Sim,
    ids: Vec<String>,
    dir: PathBuf,
    query: PathBuf,
    state: PathBuf,
}

async fn setup(tag: &str, users: usize, n: usize, approval: &str) -> Setup {
    let probe = sim(sim_config().users(users)).await;
    let ids = probe.ids(true, n);
    let dir = temp_dir(tag);
    let csv = report_csv(&dir, "cohort.csv", &ids);
    let sim = sim(sim_config().users(users).csv_report(REPORT, &csv)).await;
    let query = query(&dir, approval);
    let state = dir.join("state");
    Setup {
        sim,
        ids,
        dir,
        query,
        state,
    }
}

/// The binary as `user` behind sudo (the person the journal records).
async fn as_user(sim: &Sim, state: &Path, user: &str, args: &[&str]) -> Run {
    let mut cmd = command(sim, state, args);
    cmd.envs(sudo_env(user));
    output(cmd).await
}

/// `r` exited `code` and said `says` (on stderr or stdout).
fn ends(r: &Run, code: i32, says: &str) {
    assert_eq!(r.code, code, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stderr.contains(says) || r.stdout.contains(says),
        "expected {says:?}: {}{}",
        r.stdout,
        r.stderr
    );
}

/// `user` saves a plan of `query` for [`PERIOD`]: its id.
async fn save_plan(sim: &Sim, state: &Path, user: &str, query: &str) -> String {
    let r = as_user(
        sim,
        state,
        user,
        &["plan", query, "--period", PERIOD, "--save", "--json"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    last_json(&r.stdout)["plan_id"].as_str().expect("a plan id").to_string()
}

async fn plans_json(sim: &Sim, state: &Path) -> Value {
    let r = run(sim, state, &["plans", "--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    serde_json::from_str(r.stdout.trim()).unwrap()
}

fn members(sim: &Sim) -> HashSet<String> {
    let sets = sim.handle.sets();
    assert_eq!(sets.len(), 1, "one set: {sets:?}");
    sim.handle.set_members(&sets[0].id).unwrap().into_iter().collect()
}

fn letters_once_each(sim: &Sim) -> HashSet<String> {
    let letters: Vec<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
    let unique: HashSet<String> = letters.iter().cloned().collect();
    assert_eq!(unique.len(), letters.len(), "a user got two letters");
    assert_eq!(sim.handle.resets().len(), letters.len(), "one reset per letter");
    assert!(sim.handle.locked_out().is_empty(), "nobody reset without the letter");
    unique
}

/// The acceptance: `[approval] required = 1` refuses `run --execute`; `plan --save` → the report
/// changes in Alma → `approve` → `apply` makes one set of exactly the planned IDs, one job, one
/// letter each; `apply` again changes nothing.
#[tokio::test]
async fn an_approved_plan_is_applied_exactly_as_planned() {
    let probe = sim(sim_config().users(60)).await;
    let internal = probe.ids(true, 20);
    let dir = temp_dir("approval");
    let planned: Vec<String> = internal[..12].to_vec();
    let csv = report_csv(&dir, "cohort.csv", &planned);
    let sim = sim(sim_config().users(60).csv_report(REPORT, &csv)).await;
    let q = query(&dir, "required = 1");
    let q = q.to_str().unwrap();
    let state = dir.join("state");

    let refused = execute_run(&sim, &state, q, &["--period", PERIOD]).await;
    assert_eq!(refused.code, 4, "{}", refused.stderr);
    assert!(
        refused
            .stderr
            .contains("must be approved before a run (1 approval required, within 72 hours")
            && refused.stderr.contains("--save")
            && suggests(&refused.stderr, "approve PLAN_ID")
            && suggests(&refused.stderr, "apply PLAN_ID --execute"),
        "{}",
        refused.stderr
    );
    assert!(sim.handle.sets().is_empty());

    let id = save_plan(&sim, &state, "daemon", q).await;
    assert!(
        state.join("runs").join(&id).join("report.html").is_file(),
        "the reviewer's page"
    );
    assert!(state.join("runs").join(&id).join("cohort.csv").is_file());
    let text = as_user(&sim, &state, "daemon", &["plans"]).await;
    assert!(
        text.stdout.contains(&id) && text.stdout.contains(" saved "),
        "{}",
        text.stdout
    );

    // The report changes in Alma: three planned users gone, four others in.
    let changed: Vec<String> = internal[3..16].to_vec();
    sim.handle
        .load_csv_report(REPORT, &report_csv(&dir, "changed.csv", &changed))
        .unwrap();

    let unapproved = as_user(&sim, &state, "bin", &["apply", &id, "--execute", "--yes"]).await;
    ends(&unapproved, 4, "has 0 of the 1 approvals");
    let approved = as_user(&sim, &state, "bin", &["approve", &id, "--note", "checked the list"]).await;
    ends(&approved, 0, "approved by bin; it is approved");
    assert_eq!(plans_json(&sim, &state).await[0]["state"], "approved");
    let dry = as_user(&sim, &state, "bin", &["apply", &id]).await;
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stdout.contains("nothing was done: add --execute"), "{}", dry.stdout);
    assert!(sim.handle.sets().is_empty());

    let report_reads = |sim: &Sim| {
        sim.handle
            .requests()
            .iter()
            .filter(|r| matches!(r.target, Target::AnalyticsFirst | Target::AnalyticsNext))
            .count()
    };
    let reads_before = report_reads(&sim);
    let applied = as_user(&sim, &state, "mail", &["apply", &id, "--execute", "--yes", "--json"]).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let v = last_json(&applied.stdout);
    assert_eq!(
        (v["run_id"].as_str(), v["state"].as_str()),
        (Some(id.as_str()), Some("completed"))
    );
    let expected: HashSet<String> = planned.iter().cloned().collect();
    assert_eq!(
        members(&sim),
        expected,
        "exactly the planned IDs, not the changed report's"
    );
    assert_eq!(sim.handle.job_instances().len(), 1);
    let letters = letters_once_each(&sim);
    assert!(letters.is_subset(&expected) && !letters.is_empty());
    assert_eq!(report_reads(&sim), reads_before, "apply read no report");
    assert_eq!(runs_json(&sim, &state).await[0]["run_by"], "mail");

    // Another installation plans the same period: Alma holds its set, so nothing is saved there.
    let other = dir.join("state-2");
    let elsewhere = as_user(&sim, &other, "daemon", &["plan", q, "--period", PERIOD, "--save"]).await;
    assert_eq!(elsewhere.code, 4, "{}", elsewhere.stderr);
    assert!(elsewhere.stderr.contains("Alma already holds"), "{}", elsewhere.stderr);
    assert_eq!(plans_json(&sim, &other).await.as_array().map(Vec::len), Some(0));
    let again = as_user(&sim, &state, "mail", &["apply", &id, "--execute", "--yes"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert!(again.stderr.contains("was applied already"), "{}", again.stderr);
    let late = as_user(&sim, &state, "bin", &["approve", &id]).await;
    assert_eq!(late.code, 4, "approve of an applied plan: {}", late.stderr);
    assert_eq!((sim.handle.sets().len(), sim.handle.job_instances().len()), (1, 1));
    assert_eq!(plans_json(&sim, &state).await[0]["state"], "applied");
}

/// Each refusal says why, exits 4 (2 for what is mistyped) and writes nothing to Alma or to the
/// plan's approvals.
#[tokio::test]
async fn plans_that_may_not_be_applied_are_refused() {
    let Setup {
        sim,
        ids,
        dir,
        query: q,
        state,
    } = setup("approval-refusals", 40, 8, "required = 1\napprover_not_planner = true").await;
    let qs = q.to_str().unwrap();
    let id = save_plan(&sim, &state, "lp", qs).await;

    let own = as_user(&sim, &state, "lp", &["approve", &id]).await;
    ends(&own, 4, "requires an approver other than the planner");
    let named = as_user(&sim, &state, "lp", &["approve", &id, "--as", "sys"]).await;
    assert_eq!(named.code, 2, "--as without allow_as: {}", named.stderr);
    assert!(
        named.stderr.contains("does not allow approving under another name"),
        "{}",
        named.stderr
    );
    let unknown = as_user(
        &sim,
        &state,
        "sys",
        &["apply", "20260101T000000Z-0000", "--execute", "--yes"],
    )
    .await;
    ends(&unknown, 2, "no saved plan 20260101T000000Z-0000");
    assert!(
        plans_json(&sim, &state).await[0]["approvals"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    // Approved by someone else, then the exclusion file changes: it may protect someone now.
    let ok = as_user(&sim, &state, "sys", &["approve", &id]).await;
    assert_eq!(ok.code, 0, "{}", ok.stderr);
    let twice = as_user(&sim, &state, "sys", &["approve", &id]).await;
    assert_eq!(twice.code, 4, "{}", twice.stderr);
    // Another key (a sandbox's, another institution's): not the Alma the plan was made against.
    let mut other = command(&sim, &state, &["apply", &id, "--execute", "--yes"]);
    other
        .envs(sudo_env("sys"))
        .env("ALMA_API_KEY", "another-institutions-key");
    let elsewhere = output(other).await;
    ends(&elsewhere, 4, "another Alma or another API key");
    assert!(
        !elsewhere.stderr.contains("another-institutions-key"),
        "the key is never shown"
    );
    std::fs::write(dir.join("protected.txt"), format!("STAFF-0001\n{}\n", ids[0])).unwrap();
    let excl = as_user(&sim, &state, "sys", &["apply", &id, "--execute", "--yes"]).await;
    assert_eq!(excl.code, 4, "{}", excl.stderr);
    assert!(
        excl.stderr.contains("the exclusion file") && excl.stderr.contains("plan again"),
        "{}",
        excl.stderr
    );
    std::fs::write(dir.join("protected.txt"), "# protected staff\nSTAFF-0001\n").unwrap();

    // The query file changes (one guard raised): re-plan.
    let original = std::fs::read_to_string(&q).unwrap();
    std::fs::write(&q, original.replace("max_members = 100", "max_members = 200")).unwrap();
    let changed = as_user(&sim, &state, "sys", &["apply", &id, "--execute", "--yes"]).await;
    assert_eq!(changed.code, 4, "{}", changed.stderr);
    assert!(
        changed.stderr.contains("the query file") && changed.stderr.contains("changed since the plan"),
        "{}",
        changed.stderr
    );
    std::fs::write(&q, &original).unwrap();

    // Dated in the future (a journal edited, a clock set back): never applied.
    let db = rusqlite::Connection::open(state.join("journal.sqlite")).unwrap();
    let later = (chrono::Utc::now() + chrono::Duration::hours(30)).to_rfc3339();
    db.execute("UPDATE plans SET planned_at = ?2 WHERE plan_id = ?1", [&id, &later])
        .unwrap();
    drop(db);
    let future = as_user(&sim, &state, "sys", &["apply", &id, "--execute", "--yes"]).await;
    ends(&future, 4, "hours after this machine's clock");
    assert_eq!(plans_json(&sim, &state).await[0]["state"], "future-dated");

    // Older than max_age_hours (72): expired.
    let db = rusqlite::Connection::open(state.join("journal.sqlite")).unwrap();
    db.execute(
        "UPDATE plans SET planned_at = '2026-01-01T00:00:00Z' WHERE plan_id = ?1",
        [&id],
    )
    .unwrap();
    drop(db);
    let expired = as_user(&sim, &state, "sys", &["apply", &id, "--execute", "--yes"]).await;
    ends(&expired, 4, "more than [approval] max_age_hours 72");
    let approve_expired = as_user(&sim, &state, "games", &["approve", &id]).await;
    assert_eq!(approve_expired.code, 4, "{}", approve_expired.stderr);
    assert_eq!(plans_json(&sim, &state).await[0]["state"], "expired");

    for r in [
        &own,
        &named,
        &unknown,
        &twice,
        &excl,
        &changed,
        &future,
        &expired,
        &approve_expired,
    ] {
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    }
    assert!(
        sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
        "nothing in Alma"
    );

    // A bad [approval]: exit 2 at plan, nothing saved.
    let bad = dir.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    let bad_q = query(&bad, "required = 1\nmax_age_hours = 0");
    let r = run(&sim, &state, &["plan", bad_q.to_str().unwrap(), "--save"]).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("approval.max_age_hours"), "{}", r.stderr);
    assert_eq!(plans_json(&sim, &state).await.as_array().unwrap().len(), 1);
}

/// The timer's form, `apply --query Q --period P`: with no approved plan it is skipped (exit 4,
/// `"skipped": true`); a newer plan supersedes an approved older one, so the only plan it may
/// apply is the newest once approved; a kill during that apply is resumed into one set, one job
/// and one letter each; the next firing is skipped.
#[tokio::test]
async fn the_timer_applies_the_one_approved_plan() {
    let Setup {
        sim,
        ids,
        dir,
        query: q,
        state,
    } = setup("approval-timer", 40, 10, "required = 1").await;
    let qs = q.to_str().unwrap();
    let timer = [
        "apply",
        "--query",
        qs,
        "--period",
        PERIOD,
        "--execute",
        "--yes",
        "--json",
    ];

    // Before any journal: the timer says it (a wrong state dir would never apply anything).
    let nowhere = as_user(&sim, &state, "man", &timer).await;
    assert_eq!(nowhere.code, 2, "{}", nowhere.stderr);
    assert!(nowhere.stderr.contains("no journal in"), "{}", nowhere.stderr);
    assert_eq!(last_json(&nowhere.stdout)["status"], "refused");
    // A journal without an approved plan: skipped, quietly.
    assert_eq!(run(&sim, &state, &["plan", qs]).await.code, 0);
    let none = as_user(&sim, &state, "man", &timer).await;
    assert_eq!(none.code, 4, "{}", none.stderr);
    assert_eq!(last_json(&none.stdout)["skipped"], true);

    let first = save_plan(&sim, &state, "daemon", qs).await;
    assert_eq!(as_user(&sim, &state, "bin", &["approve", &first]).await.code, 0);
    // The analyst plans again (the list changed): the approved plan is superseded.
    sim.handle
        .load_csv_report(REPORT, &report_csv(&dir, "newer.csv", &ids[..8]))
        .unwrap();
    let second = save_plan(&sim, &state, "daemon", qs).await;
    let plans = plans_json(&sim, &state).await;
    let state_of = |id: &str| plans.as_array().unwrap().iter().find(|p| p["plan_id"] == id).unwrap()["state"].clone();
    assert_eq!(
        (state_of(&first), state_of(&second)),
        ("superseded".into(), "saved".into())
    );
    let waiting = as_user(&sim, &state, "man", &timer).await;
    assert_eq!(waiting.code, 4, "{}", waiting.stderr);
    assert_eq!(
        last_json(&waiting.stdout)["skipped"],
        true,
        "the newest is not approved yet"
    );
    let superseded = as_user(&sim, &state, "man", &["apply", &first, "--execute", "--yes"]).await;
    assert_eq!(superseded.code, 4, "{}", superseded.stderr);
    assert!(
        superseded.stderr.contains(&format!("superseded by plan {second}")),
        "{}",
        superseded.stderr
    );
    assert_eq!(as_user(&sim, &state, "bin", &["approve", &second]).await.code, 0);

    // The timer fires and is killed once Alma answered the set's creation; the operator resumes.
    assert!(crate::ledger::kill_once_answered(&sim, &state, &timer[..timer.len() - 1], Target::SetCreate).await);
    let again = as_user(&sim, &state, "man", &timer).await;
    assert_eq!(
        again.code, 4,
        "the plan is applied, its run unfinished: {}",
        again.stderr
    );
    assert!(
        again
            .stderr
            .contains(&format!("run {second} of query \"reviewed\" is unfinished")),
        "not skipped: a person must resume it: {}",
        again.stderr
    );
    let resumed = run(&sim, &state, &["resume", &second]).await;
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    let expected: HashSet<String> = ids[..8].iter().cloned().collect();
    assert_eq!(members(&sim), expected);
    assert_eq!(sim.handle.job_instances().len(), 1);
    assert!(letters_once_each(&sim).is_subset(&expected));
    let done = as_user(&sim, &state, "man", &timer).await;
    assert_eq!(done.code, 4, "{}", done.stderr);
    assert_eq!(last_json(&done.stdout)["skipped"], true);
    assert_eq!((sim.handle.sets().len(), sim.handle.job_instances().len()), (1, 1));
}

/// An approved plan is withdrawn (the list was wrong after all): never applied, by id or by the
/// timer; approving it again changes nothing.
#[tokio::test]
async fn a_withdrawn_plan_is_never_applied() {
    let Setup {
        sim, query: q, state, ..
    } = setup("approval-withdraw", 30, 5, "required = 1").await;
    let qs = q.to_str().unwrap();
    let id = save_plan(&sim, &state, "daemon", qs).await;
    assert_eq!(as_user(&sim, &state, "bin", &["approve", &id]).await.code, 0);
    let w = as_user(
        &sim,
        &state,
        "daemon",
        &["withdraw", &id, "--reason", "the registrar sent a new list"],
    )
    .await;
    assert_eq!(w.code, 0, "{}", w.stderr);
    assert!(w.stdout.contains("withdrawn by daemon"), "{}", w.stdout);
    let apply = as_user(&sim, &state, "mail", &["apply", &id, "--execute", "--yes"]).await;
    assert_eq!(apply.code, 4, "{}", apply.stderr);
    assert!(
        apply
            .stderr
            .contains("was withdrawn (withdrawn by daemon: the registrar sent a new list)"),
        "{}",
        apply.stderr
    );
    let timer = as_user(
        &sim,
        &state,
        "man",
        &[
            "apply",
            "--query",
            qs,
            "--period",
            PERIOD,
            "--execute",
            "--yes",
            "--json",
        ],
    )
    .await;
    assert_eq!(
        (timer.code, last_json(&timer.stdout)["skipped"].clone()),
        (4, Value::Bool(true))
    );
    assert_eq!(as_user(&sim, &state, "head2", &["approve", &id]).await.code, 4);
    let again = as_user(&sim, &state, "daemon", &["withdraw", &id, "--reason", "twice"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    assert_eq!(plans_json(&sim, &state).await[0]["state"], "withdrawn");
    assert!(sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty());
}

/// A newline in `SUDO_USER` (whoever sets the environment) is not recorded as the planner: the OS
/// account is, and `plans` prints no line the name made up.
#[tokio::test]
async fn a_sudo_user_with_a_newline_is_not_recorded() {
    let s = setup("sudo-newline", 300, 5, "").await;
    let q = s.query.to_str().unwrap();
    save_plan(&s.sim, &s.state, "alice\nerror: all runs deleted", q).await;
    let listed = run(&s.sim, &s.state, &["plans"]).await;
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert!(!listed.stdout.contains("error:"), "{}", listed.stdout);
    assert!(!listed.stdout.contains("alice"), "{}", listed.stdout);
}

/// An approver's SSH key (Ed25519 from a fixed seed), written as OpenSSH writes it (0600, as
/// ssh-keygen wants), and its `allowed_signers` line for `principal`.
fn ssh_key(dir: &Path, seed: u8, principal: &str) -> (PathBuf, ssh_key::PrivateKey, String) {
    let key = ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]));
    let path = dir.join(format!("id_{principal}"));
    std::fs::write(&path, key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes()).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::PermissionsExt::set_mode(&mut std::fs::metadata(&path).unwrap().permissions(), 0o600);
    #[cfg(unix)]
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let line = format!(
        "{principal} namespaces=\"alma-cohort\" {}\n",
        key.public_key().to_openssh().unwrap()
    );
    (path, key, line)
}

/// A signature file by `key` over `text` in `namespace`.
fn signature(dir: &Path, name: &str, key: &ssh_key::PrivateKey, namespace: &str, text: &str) -> PathBuf {
    let sig = key
        .sign(namespace, ssh_key::HashAlg::Sha512, text.as_bytes())
        .unwrap()
        .to_pem(ssh_key::LineEnding::LF)
        .unwrap();
    let path = dir.join(name);
    std::fs::write(&path, sig).unwrap();
    path
}

/// `approve PLAN --signature FILE` as `user` behind sudo.
async fn approve_signed(sim: &Sim, state: &Path, user: &str, id: &str, signature: &Path) -> Run {
    as_user(
        sim,
        state,
        user,
        &["approve", id, "--signature", signature.to_str().unwrap()],
    )
    .await
}

/// `plans show PLAN --text`: the canonical text a signer signs.
async fn plan_text(sim: &Sim, state: &Path, id: &str) -> String {
    let r = run(sim, state, &["plans", "show", id, "--text"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    r.stdout
}

/// `[approval] allowed_signers` names one key (the head of systems'). An approval without a
/// signature, a signature by a key the file does not list, over another text or in another
/// namespace: each refused (exit 4), nothing recorded, and apply finds no approval (exit 4,
/// nothing in Alma). Signed with the listed key through ssh-keygen: one set of exactly the
/// planned IDs, one letter each; the approver is the file's principal, not the OS account.
#[tokio::test]
async fn only_a_listed_key_approves() {
    let s = setup(
        "signed",
        300,
        12,
        "required = 1\napprover_not_planner = true\nallowed_signers = \"allowed_signers\"",
    )
    .await;
    let (sim, state, dir) = (&s.sim, &s.state, &s.dir);
    let (head_key, head, head_line) = ssh_key(dir, 7, "head@example.edu");
    let (_, mallory, _) = ssh_key(dir, 9, "mallory@example.edu");
    std::fs::write(dir.join("allowed_signers"), format!("# who may approve\n{head_line}")).unwrap();
    let q = s.query.to_str().unwrap();
    let saved = as_user(sim, state, "daemon", &["plan", q, "--period", PERIOD, "--save"]).await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    assert!(saved.stdout.contains("digest:  sha256:"), "{}", saved.stdout);
    assert!(saved.stdout.contains("approvals: signed"), "{}", saved.stdout);
    let id = plans_json(sim, state).await[0]["plan_id"].as_str().unwrap().to_string();
    let text = plan_text(sim, state, &id).await;
    assert!(
        text.starts_with("alma-cohort plan, canonical text v1\nplan: "),
        "{text}"
    );
    assert!(text.contains("\nletter: UserNotificationsLetter digest "), "{text}");
    assert!(
        text.contains(&format!("\ncohort: {} IDs\n", s.ids.len() - 1)) || text.contains("\ncohort: "),
        "{text}"
    );
    for planned in s.ids.iter().filter(|i| *i != "STAFF-0001") {
        assert!(text.lines().any(|l| l == planned), "{planned} in the text");
    }

    let refusals = [
        (
            as_user(sim, state, "bin", &["approve", &id]).await,
            "takes signed approvals only",
        ),
        (
            approve_signed(
                sim,
                state,
                "bin",
                &id,
                &signature(dir, "m.sig", &mallory, "alma-cohort", &text),
            )
            .await,
            "which allowed_signers does not list",
        ),
        (
            approve_signed(
                sim,
                state,
                "bin",
                &id,
                &signature(dir, "o.sig", &head, "alma-cohort", "another text"),
            )
            .await,
            "not over this plan's text",
        ),
        (
            approve_signed(sim, state, "bin", &id, &signature(dir, "g.sig", &head, "git", &text)).await,
            "namespace \"git\"",
        ),
    ];
    for (r, says) in &refusals {
        ends(r, 4, says);
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    }
    assert_eq!(
        plans_json(sim, state).await[0]["approvals"].as_array().map(Vec::len),
        Some(0),
        "nothing recorded"
    );
    let not_a_key = dir.join("not-a-key");
    std::fs::write(&not_a_key, "hello\n").unwrap();
    let bad_key = as_user(
        sim,
        state,
        "bin",
        &["approve", &id, "--ssh-key", not_a_key.to_str().unwrap()],
    )
    .await;
    ends(&bad_key, 2, "is not an OpenSSH key");
    let unapproved = as_user(sim, state, "mail", &["apply", &id, "--execute", "--yes"]).await;
    ends(&unapproved, 4, "has 0 of the 1 approvals");
    assert!(
        sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
        "nothing in Alma"
    );

    // An allowed_signers file that cannot be read: exit 2 naming its line, nothing recorded.
    std::fs::write(dir.join("allowed_signers"), "head@example.edu ssh-ed25519 not-a-key\n").unwrap();
    let good = signature(dir, "h.sig", &head, "alma-cohort", &text);
    let unreadable = approve_signed(sim, state, "bin", &id, &good).await;
    ends(
        &unreadable,
        2,
        "allowed_signers:1: the key (ssh-ed25519) cannot be read",
    );
    std::fs::write(dir.join("allowed_signers"), format!("# who may approve\n{head_line}")).unwrap();
    assert_eq!(
        plans_json(sim, state).await[0]["approvals"].as_array().map(Vec::len),
        Some(0),
        "nothing recorded"
    );

    // Signed with the listed key, through ssh-keygen (as git signs).
    let signed = as_user(
        sim,
        state,
        "bin",
        &["approve", &id, "--ssh-key", head_key.to_str().unwrap()],
    )
    .await;
    ends(&signed, 0, "approved by head@example.edu (signed with SHA256:");
    let shown = run(sim, state, &["plans", "show", &id]).await;
    assert!(
        shown.stdout.contains("approved by: head@example.edu at "),
        "{}",
        shown.stdout
    );
    assert!(shown.stdout.contains("planned by: daemon"), "{}", shown.stdout);
    let applied = as_user(sim, state, "mail", &["apply", &id, "--execute", "--yes"]).await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let planned: HashSet<String> = text
        .split("\ncohort: ")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    assert_eq!(members(sim), planned, "exactly the planned IDs");
    assert_eq!(sim.handle.job_instances().len(), 1);
    assert_eq!(letters_once_each(sim), planned);
    let shown = run(sim, state, &["plans", "show", &id, "--json"]).await;
    let v = last_json(&shown.stdout);
    assert_eq!(v["applied_by"], "mail");
    let run_shown = run(sim, state, &["show", &id]).await;
    for line in [
        "planned by daemon at ",
        "approved by head@example.edu at ",
        ", signed with SHA256:",
        "applied by mail at ",
    ] {
        assert!(run_shown.stdout.contains(line), "{line}: {}", run_shown.stdout);
    }
    assert_eq!(v["approvals"][0]["approver"], "head@example.edu");
    assert_eq!(v["approvals"][0]["counts"], true);
}

/// A signed, approved plan; then the letter is edited in Alma: apply refuses (exit 4) naming the
/// letter, nothing in Alma. Another signed plan whose cohort is edited in the journal after the
/// approval: refused naming the cohort. Two principals where two are required.
#[tokio::test]
async fn what_was_approved_is_what_is_applied() {
    let s = setup("bound", 300, 12, "required = 2\nallowed_signers = \"allowed_signers\"").await;
    let (sim, state, dir) = (&s.sim, &s.state, &s.dir);
    let (_, head, head_line) = ssh_key(dir, 7, "head@example.edu");
    let (_, deputy, deputy_line) = ssh_key(dir, 8, "deputy@example.edu");
    std::fs::write(dir.join("allowed_signers"), format!("{head_line}{deputy_line}")).unwrap();
    let q = s.query.to_str().unwrap();
    let id = save_plan(sim, state, "daemon", q).await;
    let text = plan_text(sim, state, &id).await;
    let sign = |who: &ssh_key::PrivateKey, name: &str| signature(dir, name, who, "alma-cohort", &text);
    let one = approve_signed(sim, state, "bin", &id, &sign(&head, "h.sig")).await;
    ends(&one, 0, "1 of 2 approvals that count");
    // The same principal again does not make two.
    let twice = approve_signed(sim, state, "sys", &id, &sign(&head, "h2.sig")).await;
    ends(&twice, 4, "approved plan");
    let two = approve_signed(sim, state, "sys", &id, &sign(&deputy, "d.sig")).await;
    ends(&two, 0, "it is approved (2 of 2 approvals that count)");

    // Staff reword the letter in Alma after the approval (it still carries the password).
    sim.handle.set_letter(alma_sim::LetterState::Reworded);
    let letter = as_user(sim, state, "mail", &["apply", &id, "--execute", "--yes"]).await;
    ends(&letter, 4, "the letter (UserNotificationsLetter digest");
    assert!(letter.stderr.contains("is not what was approved"), "{}", letter.stderr);
    assert!(
        sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
        "nothing in Alma"
    );

    // A new plan (the letter as it is now), approved by both; then its cohort edited in the journal.
    let id2 = save_plan(sim, state, "daemon", q).await;
    let text2 = plan_text(sim, state, &id2).await;
    for (who, name, key) in [("bin", "h3.sig", &head), ("sys", "d3.sig", &deputy)] {
        let sig = signature(dir, name, key, "alma-cohort", &text2);
        let r = as_user(
            sim,
            state,
            who,
            &["approve", &id2, "--signature", sig.to_str().unwrap()],
        )
        .await;
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let db = rusqlite::Connection::open(state.join("journal.sqlite")).unwrap();
    db.execute(
        "UPDATE plan_cohort SET primary_id = 'SOMEONE-ELSE' WHERE plan_id = ?1 AND position = 0",
        [&id2],
    )
    .unwrap();
    drop(db);
    let edited = as_user(sim, state, "mail", &["apply", &id2, "--execute", "--yes"]).await;
    ends(&edited, 4, "the cohort (1 IDs added, 1 taken out)");
    assert!(
        sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
        "nothing in Alma"
    );

    // What the operator does next: plan again, both sign the new text, the timer applies it.
    let id3 = save_plan(sim, state, "daemon", q).await;
    let text3 = plan_text(sim, state, &id3).await;
    for (who, name, key) in [("bin", "h4.sig", &head), ("sys", "d4.sig", &deputy)] {
        let sig = signature(dir, name, key, "alma-cohort", &text3);
        let r = approve_signed(sim, state, who, &id3, &sig).await;
        assert_eq!(r.code, 0, "{}", r.stderr);
    }
    let applied = as_user(
        sim,
        state,
        "man",
        &["apply", "--query", q, "--period", PERIOD, "--execute", "--yes"],
    )
    .await;
    assert_eq!(applied.code, 0, "{}", applied.stderr);
    let planned: HashSet<String> = text3
        .split("\ncohort: ")
        .nth(1)
        .unwrap()
        .lines()
        .skip(1)
        .map(str::to_string)
        .collect();
    assert_eq!(members(sim), planned, "exactly the plan signed last");
    assert_eq!(sim.handle.job_instances().len(), 1);
    assert_eq!(letters_once_each(sim), planned);
}

/// The person is the account sudo switched from, and only when the process runs as another
/// account: `SUDO_USER` (with or without a made-up `SUDO_UID`) or `USER`/`LOGNAME` set by hand is
/// not who did it; the OS account is — for approve and for abandon alike.
#[tokio::test]
async fn a_name_set_by_hand_is_not_the_person() {
    let s = setup("by-hand", 300, 5, "required = 1\napprover_not_planner = true").await;
    let q = s.query.to_str().unwrap();
    let me = whoami_account();
    assert_ne!(me, "bin", "the test runs as another account than the name it sets");
    let by_hand = [
        vec![("SUDO_USER", "bin")],
        vec![("SUDO_USER", "bin"), ("SUDO_UID", "12345")],
        vec![("USER", "bin"), ("LOGNAME", "bin")],
    ];
    for env in &by_hand {
        let id = save_plan(&s.sim, &s.state, "daemon", q).await;
        let mut cmd = command(&s.sim, &s.state, &["approve", &id]);
        cmd.envs(env.clone());
        let r = output(cmd).await;
        assert_eq!(r.code, 0, "{env:?}: {}", r.stderr);
        assert!(
            r.stdout.contains(&format!("approved by {me};")),
            "{env:?}: {}",
            r.stdout
        );
        assert_eq!(
            plans_json(&s.sim, &s.state).await[0]["approvals"][0]["approver"],
            me.as_str()
        );
    }
    // A run stopped before its job, abandoned with USER set by hand: the event names the account.
    let state = s.dir.join("state-abandon");
    let plain = s.dir.join("plain.toml");
    std::fs::write(
        &plain,
        std::fs::read_to_string(&s.query)
            .unwrap()
            .replace("required = 1\napprover_not_planner = true", ""),
    )
    .unwrap();
    stop_before_the_job(&s.sim);
    let stopped = execute_run(&s.sim, &state, plain.to_str().unwrap(), &[]).await;
    assert_eq!(stopped.code, 3, "{}", stopped.stderr);
    s.sim.handle.clear_faults();
    let run_id = runs_json(&s.sim, &state).await[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cmd = command(
        &s.sim,
        &state,
        &["abandon", &run_id, "--reason", "a test", "--i-checked-alma"],
    );
    cmd.envs([("USER", "impostor"), ("LOGNAME", "impostor"), ("SUDO_USER", "impostor")]);
    let abandoned = output(cmd).await;
    assert_eq!(abandoned.code, 0, "{}", abandoned.stderr);
    let db = rusqlite::Connection::open(state.join("journal.sqlite")).unwrap();
    let by: Vec<String> = db
        .prepare("SELECT by FROM events WHERE run_id = ?1")
        .unwrap()
        .query_map([&run_id], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(!by.iter().any(|b| b.contains("impostor")), "{by:?}");
    assert!(by.iter().any(|b| b == &me), "{by:?}");
}

/// The OS account this process runs as (the real user id's name).
fn whoami_account() -> String {
    let out = std::process::Command::new("id").arg("-un").output().unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `doctor QUERY` says whether the query's approvals are a control: unsigned approvals warn; a
/// signed query whose allowed_signers this account can change warns (the tests run as its owner).
#[tokio::test]
async fn doctor_says_what_an_approval_is_worth() {
    let s = setup("doctor-approval", 300, 5, "required = 1").await;
    let q = s.query.to_str().unwrap();
    let unsigned = run(&s.sim, &s.state, &["doctor", q]).await;
    assert_eq!(unsigned.code, 1, "{}{}", unsigned.stdout, unsigned.stderr);
    assert!(
        unsigned
            .stdout
            .contains("warn approvals: 1 approval(s) required, recorded by OS account only"),
        "{}",
        unsigned.stdout
    );
    let (_, _, line) = ssh_key(&s.dir, 7, "head@example.edu");
    std::fs::write(s.dir.join("allowed_signers"), line).unwrap();
    let text = std::fs::read_to_string(&s.query).unwrap();
    std::fs::write(&s.query, format!("{text}allowed_signers = \"allowed_signers\"\n")).unwrap();
    let signed = run(&s.sim, &s.state, &["doctor", q]).await;
    assert!(signed.stdout.contains("warn approvals: "), "{}", signed.stdout);
    assert!(
        signed.stdout.contains("can be changed by this account"),
        "{}",
        signed.stdout
    );
    let plan = run(&s.sim, &s.state, &["plan", q]).await;
    assert!(
        plan.stdout
            .contains("approvals: signed: an SSH signature (namespace alma-cohort)"),
        "{}",
        plan.stdout
    );
}

/// The binary under a config with `[service]`: its profile `main` gives the address, the key
/// and the state dir; nothing else does.
fn as_service(sim: &Sim, config: &Path, user: &str, args: &[&str]) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
    cmd.arg("--profile")
        .arg("main")
        .args(args)
        .env("ALMA_COHORT_CONFIG", config)
        .env("ALMA_COHORT_RETRY_DELAY", "0")
        .env("ALMA_COHORT_POLL_INTERVAL", "0.05")
        .env_remove("ALMA_BASE_URL")
        .env_remove("ALMA_API_KEY")
        .env_remove("ALMA_COHORT_STATE")
        .envs(sudo_env(user))
        .stdin(std::process::Stdio::null());
    let _ = sim;
    cmd
}

async fn out_of(cmd: std::process::Command) -> Run {
    output(cmd).await
}

/// `[service]` in the installation's config: whoever reaches the service account runs no query
/// of their own (`run --execute`, a query outside `queries_dir`, an unsigned one) and cannot
/// point the service's key elsewhere (`--base-url`); a planner who is also a listed signer cannot
/// approve their own plan; a signed plan changed in the journal is refused by the timer (exit 4),
/// not skipped; garbage as a signature is bad input (exit 2). Nothing reaches Alma's sets.
#[tokio::test]
async fn the_service_runs_only_signed_plans_of_its_queries() {
    let s = setup(
        "service",
        300,
        8,
        "required = 1\napprover_not_planner = true\nallowed_signers = \"allowed_signers\"",
    )
    .await;
    let (sim, dir) = (&s.sim, &s.dir);
    let queries = dir.join("queries");
    std::fs::create_dir_all(&queries).unwrap();
    for f in ["reviewed.toml", "protected.txt"] {
        std::fs::copy(dir.join(f), queries.join(f)).unwrap();
    }
    let (_, daemon_key, daemon_line) = ssh_key(dir, 5, "daemon@example.edu");
    let (_, head, head_line) = ssh_key(dir, 7, "head@example.edu");
    std::fs::write(queries.join("allowed_signers"), format!("{daemon_line}{head_line}")).unwrap();
    std::fs::copy(queries.join("allowed_signers"), dir.join("allowed_signers")).unwrap();
    std::fs::write(dir.join("alma.key"), format!("{KEY}\n")).unwrap();
    std::fs::set_permissions(
        dir.join("alma.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let config = dir.join("alma-cohort.toml");
    std::fs::write(
        &config,
        format!(
            "[service]\nqueries_dir = \"queries\"\n[profiles.main]\nbase_url = \"{}\"\nkey_file = \"alma.key\"\nstate_dir = \"service-state\"\npace = 1000\n",
            sim.handle.base_url()
        ),
    )
    .unwrap();
    let q = queries.join("reviewed.toml");
    let q = q.to_str().unwrap();
    let outside = s.query.to_str().unwrap();
    let unsigned = queries.join("unsigned.toml");
    std::fs::write(
        &unsigned,
        std::fs::read_to_string(q)
            .unwrap()
            .replace("allowed_signers = \"allowed_signers\"", ""),
    )
    .unwrap();
    for (args, says) in [
        (
            vec!["run", q, "--execute", "--yes"],
            "run --execute: this installation's config",
        ),
        (
            vec!["plan", outside, "--period", PERIOD, "--save"],
            "takes only the queries in",
        ),
        (
            vec!["plan", unsigned.to_str().unwrap(), "--period", PERIOD, "--save"],
            "needs signed approvals",
        ),
        (
            vec!["--base-url", "https://elsewhere.example", "plan", q, "--save"],
            "--base-url (ALMA_BASE_URL): this installation's config",
        ),
    ] {
        let r = out_of(as_service(sim, &config, "daemon", &args)).await;
        ends(&r, 4, says);
        assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
    }
    let saved = out_of(as_service(
        sim,
        &config,
        "daemon",
        &["plan", q, "--period", PERIOD, "--save", "--json"],
    ))
    .await;
    assert_eq!(saved.code, 0, "{}", saved.stderr);
    let id = last_json(&saved.stdout)["plan_id"].as_str().unwrap().to_string();
    let text = out_of(as_service(sim, &config, "daemon", &["plans", "show", &id, "--text"]))
        .await
        .stdout;
    // The planner signs with their own listed key: they are still the planner.
    let own = signature(dir, "own.sig", &daemon_key, "alma-cohort", &text);
    let r = out_of(as_service(
        sim,
        &config,
        "daemon",
        &["approve", &id, "--signature", own.to_str().unwrap()],
    ))
    .await;
    ends(&r, 4, "made plan");
    let garbage = dir.join("garbage.sig");
    std::fs::write(&garbage, "not a signature\n").unwrap();
    let r = out_of(as_service(
        sim,
        &config,
        "bin",
        &["approve", &id, "--signature", garbage.to_str().unwrap()],
    ))
    .await;
    ends(&r, 2, "is not an SSH signature");
    let good = signature(dir, "head.sig", &head, "alma-cohort", &text);
    let r = out_of(as_service(
        sim,
        &config,
        "bin",
        &["approve", &id, "--signature", good.to_str().unwrap()],
    ))
    .await;
    ends(&r, 0, "approved by head@example.edu");
    // Someone with the journal changes the approved plan's cohort: the timer refuses, loudly.
    let db = rusqlite::Connection::open(dir.join("service-state").join("journal.sqlite")).unwrap();
    db.execute(
        "UPDATE plan_cohort SET primary_id = 'SOMEONE-ELSE' WHERE plan_id = ?1 AND position = 0",
        [&id],
    )
    .unwrap();
    drop(db);
    let timer = out_of(as_service(
        sim,
        &config,
        "man",
        &[
            "apply",
            "--query",
            q,
            "--period",
            PERIOD,
            "--execute",
            "--yes",
            "--json",
        ],
    ))
    .await;
    ends(&timer, 4, "changed in the journal since it was saved: the cohort");
    assert!(!timer.stdout.contains("\"skipped\":true"), "{}", timer.stdout);
    assert!(
        sim.handle.sets().is_empty() && sim.handle.job_instances().is_empty(),
        "nothing in Alma"
    );
}
