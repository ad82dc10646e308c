//! Query files and `plan` against the simulator: the shipped examples give the cohorts their
//! definitions say, guards refuse, and every malformed query file gets its own clear error.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use alma_sim::{SimConfig, Target};

use crate::cli::{alma_cohort, temp_dir};
use crate::support::*;

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// The institution the shipped examples are written for (their exclusion file names its IDs).
fn example_sim() -> SimConfig {
    SimConfig::default().users(20_000).seed(42).manual_clock().rate_limit(0)
}

async fn plan_json(sim: &Sim, query: &Path, extra: &[&str], state: &Path) -> (i32, serde_json::Value, String) {
    let base = sim.handle.base_url();
    let mut args = vec![
        "--base-url",
        &base,
        "--state-dir",
        state.to_str().unwrap(),
        "plan",
        query.to_str().unwrap(),
        "--json",
    ];
    args.extend_from_slice(extra);
    let run = alma_cohort(&args, Some(KEY)).await;
    let json = serde_json::from_str(run.stdout.trim()).unwrap_or(serde_json::Value::Null);
    (run.code, json, run.stderr)
}

#[tokio::test]
async fn the_shipped_examples_plan_the_cohorts_they_describe() {
    let sim = sim(example_sim()).await;
    let users = sim.handle.users();
    let state = temp_dir("examples");

    // The example leaves out users without an email address (their letter could not arrive).
    let expected = users
        .iter()
        .filter(|u| eligible(&sim, u) && (u.user_group == "UGRAD" || u.user_group == "GRAD"))
        .count();
    let (code, plan, err) = plan_json(&sim, &repo("queries/term-start-students.toml"), &[], &state).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(plan["cohort_size"], expected);

    let in_range = |d: &Option<String>| d.as_deref().is_some_and(|d| ("2026-06-01"..="2026-06-30").contains(&d));
    let expected = users
        .iter()
        .filter(|u| eligible(&sim, u) && in_range(&u.expiry_date))
        .count();
    assert!(expected > 0);
    let (code, plan, err) = plan_json(
        &sim,
        &repo("queries/expiring-accounts.toml"),
        &["--param", "from=2026-06-01", "--param", "to=2026-06-30"],
        &state,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(plan["cohort_size"], expected);

    let protected: HashSet<String> = std::fs::read_to_string(repo("queries/protected-staff.txt"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split('#')
                .next()
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_lowercase)
        })
        .collect();
    let staff: Vec<_> = users
        .iter()
        .filter(|u| reachable(&sim, u, true) && u.user_group == "STAFF")
        .collect();
    let expected = staff
        .iter()
        .filter(|u| !protected.contains(&u.primary_id.to_lowercase()))
        .count();
    assert_eq!(staff.len() - expected, 3, "all three protected IDs are staff");
    let (code, plan, err) = plan_json(&sim, &repo("queries/staff-reset.toml"), &[], &state).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(plan["cohort_size"], expected);
    let excluded = plan["dropped"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["reason"] == "excluded")
        .unwrap();
    assert_eq!(excluded["rows"], 3);

    // Read in two partitions at once: the same cohort as term-start-students.
    let students = users
        .iter()
        .filter(|u| eligible(&sim, u) && (u.user_group == "UGRAD" || u.user_group == "GRAD"))
        .count();
    let before = sim.handle.requests().len();
    let (code, partitioned, err) = plan_json(&sim, &repo("queries/term-start-partitioned.toml"), &[], &state).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(partitioned["cohort_size"], students);
    let parts = partitioned["report"]["partitions"].as_array().unwrap();
    assert_eq!(
        parts.iter().map(|p| p[0].as_str().unwrap()).collect::<Vec<_>>(),
        ["undergraduates", "graduates"]
    );
    assert_eq!(
        parts.iter().map(|p| p[1].as_u64().unwrap()).sum::<u64>(),
        partitioned["report"]["rows"].as_u64().unwrap()
    );
    // Exactly ⌈rows/limit⌉ report calls per partition (limit 1000), one first call each.
    let log = sim.handle.requests();
    let analytics = |t: Target| log[before..].iter().filter(|r| r.target == t).count();
    let pages: u64 = parts.iter().map(|p| p[1].as_u64().unwrap().div_ceil(1000).max(1)).sum();
    assert_eq!(analytics(Target::AnalyticsFirst), 2);
    assert_eq!(
        (analytics(Target::AnalyticsFirst) + analytics(Target::AnalyticsNext)) as u64,
        pages
    );

    // The list-file example: ten users of the default simulator, no call to Alma.
    let before = sim.handle.requests().len();
    let (code, listed, err) = plan_json(&sim, &repo("queries/registrar-list.toml"), &[], &state).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(listed["cohort_size"], 10);
    let known: HashSet<String> = users.iter().map(|u| u.primary_id.clone()).collect();
    assert!(
        listed["sample_ids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|id| known.contains(id.as_str().unwrap()))
    );
    assert_eq!(sim.handle.requests().len(), before, "a list file needs no Alma call");

    // The cohort file holds exactly the cohort, and nothing was written to Alma.
    let csv = std::fs::read_to_string(plan["cohort_file"].as_str().unwrap()).unwrap();
    assert_eq!(csv.lines().count(), expected + 1);
    assert!(sim.handle.requests().iter().all(|r| r.method == "GET"));
    assert!(sim.handle.sets().is_empty());
}

#[tokio::test]
async fn the_text_summary_and_the_max_members_guard() {
    let sim = sim(example_sim()).await;
    let dir = temp_dir("guard");
    let q = dir.join("q.toml");
    std::fs::write(
        &q,
        std::fs::read_to_string(repo("queries/term-start-students.toml"))
            .unwrap()
            .replace("max_members = 20000", "max_members = 10"),
    )
    .unwrap();
    let base = sim.handle.base_url();
    let run = alma_cohort(
        &[
            "--base-url",
            &base,
            "--state-dir",
            dir.to_str().unwrap(),
            "plan",
            q.to_str().unwrap(),
        ],
        Some(KEY),
    )
    .await;
    assert_eq!(run.code, 4, "{}", run.stderr);
    assert!(run.stdout.contains("Guard max_members  REFUSED"), "{}", run.stdout);
    assert!(run.stdout.contains("by User Group: UGRAD"), "{}", run.stdout);
    assert!(run.stdout.contains("sample IDs: "));
    assert!(run.stdout.contains("Nothing was changed in Alma."));
    let err: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(err.len(), 1);
    assert!(
        err[0].contains("refused by the guard max_members") && run.stderr.contains("hint: if "),
        "{}",
        run.stderr
    );

    // `run` without --execute is plan.
    let run2 = alma_cohort(
        &[
            "--base-url",
            &base,
            "--state-dir",
            dir.to_str().unwrap(),
            "run",
            q.to_str().unwrap(),
            "--period",
            "2026-spring",
        ],
        Some(KEY),
    )
    .await;
    assert_eq!(run2.code, 4);
    assert!(sim.handle.sets().is_empty());
}

#[tokio::test]
async fn validate_checks_headings_against_the_report() {
    let sim = sim(example_sim()).await;
    let base = sim.handle.base_url();
    let q = repo("queries/staff-reset.toml");
    let run = alma_cohort(&["--base-url", &base, "validate", q.to_str().unwrap()], Some(KEY)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with("ok: ") && run.stdout.contains("\"Account Type\""),
        "{}",
        run.stdout
    );
    let offline = alma_cohort(&["validate", q.to_str().unwrap()], None).await;
    assert_eq!(offline.code, 0, "{}", offline.stderr);
    assert!(offline.stdout.contains("not checked"));
}

#[tokio::test]
async fn every_malformed_query_file_gets_its_own_clear_error() {
    let sim = sim(example_sim()).await;
    let base = sim.handle.base_url();
    let dir = repo("fixtures/queries/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 20);
    let mut messages = HashSet::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("# expect: line");
        let extra = text
            .lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("# args: "))
            .unwrap_or("");
        let mut args = vec!["--base-url", base.as_str(), "validate", file.to_str().unwrap()];
        if let Some(value) = extra.strip_prefix("--param ") {
            args.extend(["--param", value]);
        }
        let run = alma_cohort(&args, Some(KEY)).await;
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        let errors: Vec<&str> = run.stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(errors.len(), 1, "{name}: one error line: {}", run.stderr);
        assert!(
            run.stderr.contains(expect),
            "{name}: expected {expect:?} in {}",
            run.stderr
        );
        assert!(!run.stderr.contains("panicked"), "{name}");
        messages.insert(errors[0].to_string());
    }
    assert!(messages.len() >= 20, "each case has its own message");
    assert!(
        sim.handle.requests().iter().all(|r| r.method == "GET"),
        "no write to Alma"
    );
}

#[tokio::test]
async fn partitions_are_paged_at_the_same_time_and_must_not_overlap() {
    let sim = sim(example_sim().first_page_latency(std::time::Duration::from_millis(400))).await;
    let state = temp_dir("partitions");
    let base = sim.handle.base_url();
    let query = repo("queries/term-start-partitioned.toml");
    let args = vec![
        "--base-url".to_string(),
        base.clone(),
        "--state-dir".to_string(),
        state.to_str().unwrap().to_string(),
        "plan".to_string(),
        query.to_str().unwrap().to_string(),
    ];
    let child = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"))
            .args(&args)
            .env("ALMA_API_KEY", KEY)
            .env("ALMA_COHORT_PACE", "1000")
            .output()
            .unwrap()
    });
    let mut most_in_flight = 0;
    for _ in 0..500 {
        let in_flight = sim
            .handle
            .requests()
            .iter()
            .filter(|r| r.target == alma_sim::Target::AnalyticsFirst && r.status.is_none())
            .count();
        most_in_flight = most_in_flight.max(in_flight);
        if child.is_finished() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let out = child.await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(most_in_flight, 2, "both partitions' first pages were asked for at once");
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("partition undergraduates") && summary.contains("partition graduates"),
        "{summary}"
    );

    // Two partitions that both hold the undergraduates are not disjoint.
    let dir = temp_dir("overlap");
    let overlapping = dir.join("overlap.toml");
    std::fs::write(
        &overlapping,
        std::fs::read_to_string(&query)
            .unwrap()
            .replace(
                "filters/group-grad.xml",
                &repo("queries/filters/group-ugrad.xml").display().to_string(),
            )
            .replace(
                "filters/group-ugrad.xml\"\n\n[[",
                &format!("{}\"\n\n[[", repo("queries/filters/group-ugrad.xml").display()),
            ),
    )
    .unwrap();
    let run = alma_cohort(
        &[
            "--base-url",
            &base,
            "--state-dir",
            state.to_str().unwrap(),
            "plan",
            overlapping.to_str().unwrap(),
        ],
        Some(KEY),
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("are not disjoint") && run.stderr.contains("\"undergraduates\" and \"graduates\""),
        "{}",
        run.stderr
    );
}
