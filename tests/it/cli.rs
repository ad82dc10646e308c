//! The real binary, driven the way the contract says: exit codes, one-line errors, outputs.

use std::path::{Path, PathBuf};
use std::process::Output;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::support::*;

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `alma-cohort` with `args` and `ALMA_API_KEY=key`, retries without waiting.
pub async fn alma_cohort(args: &[&str], key: Option<&str>) -> Run {
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let key = key.map(str::to_string);
    let out: Output = tokio::task::spawn_blocking(move || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
        cmd.args(&args)
            .env_remove("ALMA_API_KEY")
            .env_remove("ALMA_BASE_URL")
            .env("ALMA_COHORT_RETRY_DELAY", "0")
            .env("ALMA_COHORT_PACE", "1000")
            .env("NO_COLOR", "1");
        isolate_home(&mut cmd);
        if let Some(k) = key {
            cmd.env("ALMA_API_KEY", k);
        }
        cmd.output().expect("the binary runs")
    })
    .await
    .expect("join");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Points the per-user state folder (and HOME) of a spawned alma-cohort at this test process's
/// own temp folder: a test never reads or writes the real home.
pub fn isolate_home(cmd: &mut std::process::Command) {
    let home = std::env::temp_dir().join(format!("it-home-{}", std::process::id()));
    cmd.env_remove("ALMA_COHORT_STATE")
        .env_remove("ALMA_COHORT_CONFIG")
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("HOME", home);
}

pub fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("it-{tag}-{}-{}", std::process::id(), rand_suffix()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn rand_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// A query file over `report` in `dir`.
pub fn query_file(dir: &Path, report: &str, extra: &str) -> PathBuf {
    let p = dir.join("q.toml");
    std::fs::write(
        &p,
        format!(
            "name = \"it-query\"\n{extra}\n[report]\npath = \"{report}\"\nlimit = 1000\n[cohort]\nid_column = \"Primary Identifier\"\n[guard]\nmax_members = 100000\n"
        ),
    )
    .unwrap();
    p
}

/// `--base-url BASE extract QUERY --out OUT` with `key` in `ALMA_API_KEY`.
async fn extract(base: &str, query: &Path, out: &Path, key: Option<&str>) -> Run {
    alma_cohort(
        &[
            "--base-url",
            base,
            "extract",
            query.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        key,
    )
    .await
}

fn error_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("error:")).collect()
}

#[tokio::test]
async fn extract_writes_csv_and_parquet_and_stdout() {
    let sim = sim(config(2600)).await;
    let dir = temp_dir("extract");
    let q = query_file(&dir, ALL_USERS, "");
    let base = sim.handle.base_url();
    let out = dir.join("all.csv");
    let run = extract(&base, &q, &out, Some(KEY)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("extracted 2600 rows × 9 columns (0.4 MB in memory) from 3 pages"),
        "{}",
        run.stderr
    );
    let csv = std::fs::read_to_string(&out).unwrap();
    assert_eq!(csv.lines().count(), 2601);
    let first_id = sim.handle.users()[0].primary_id.clone();
    assert!(
        csv.lines().nth(1).unwrap().starts_with(&first_id),
        "ids keep their leading zeros"
    );
    assert!(
        std::fs::read_dir(&dir)
            .unwrap()
            .all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".partial"))
    );

    let pq = dir.join("all.parquet");
    let run = extract(&base, &q, &pq, Some(KEY)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(&std::fs::read(&pq).unwrap()[..4], b"PAR1");

    let run = alma_cohort(
        &["-q", "--base-url", &base, "extract", q.to_str().unwrap(), "--out", "-"],
        Some(KEY),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, csv, "stdout carries the same CSV");
    assert!(run.stderr.is_empty(), "quiet: {}", run.stderr);
}

#[tokio::test]
async fn alma_refusals_exit_3_with_one_line_and_no_file() {
    let sim = sim(config(50)).await;
    let dir = temp_dir("refusals");
    let base = sim.handle.base_url();
    let out = dir.join("out.csv");
    let q = query_file(&dir, "/shared/Example University/Reports/Nope", "");
    let run = extract(&base, &q, &out, Some(KEY)).await;
    // A report Alma does not have is the query file's to fix: exit 2, not "try again later".
    assert_eq!(run.code, 2);
    let lines = error_lines(&run.stderr);
    assert_eq!(lines.len(), 1, "{}", run.stderr);
    assert!(
        lines[0].contains("report \"/shared/Example University/Reports/Nope\" was not found in Alma Analytics")
            && lines[0].contains("HTTP 400 INTERNAL_SERVER_ERROR")
            && lines[0].contains("trackingId")
            && run.stderr.contains("hint: check the report's path in Alma Analytics"),
        "{}",
        lines[0]
    );
    assert!(!out.exists());

    let q = query_file(&dir, ALL_USERS, "");
    let run = extract(&base, &q, &out, Some("not-a-key")).await;
    assert_eq!(run.code, 3);
    assert!(
        run.stderr.contains("UNAUTHORIZED") && !run.stderr.contains("not-a-key"),
        "{}",
        run.stderr
    );
    assert!(!out.exists());
}

#[tokio::test]
async fn usage_errors_exit_2() {
    let sim = sim(config(10)).await;
    let dir = temp_dir("usage");
    let base = sim.handle.base_url();
    let q = query_file(&dir, ALL_USERS, "");
    let q = q.to_str().unwrap();
    let run = alma_cohort(&["--base-url", &base, "extract", q, "--out", "x.json"], Some(KEY)).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains(".csv or .parquet"), "{}", run.stderr);
    let run = alma_cohort(
        &["--base-url", &base, "extract", q, "--out", "/no/such/folder/x.csv"],
        Some(KEY),
    )
    .await;
    assert_eq!(run.code, 2);
    let run = alma_cohort(&["--base-url", &base, "extract", q, "--out", "-"], None).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("ALMA_API_KEY"), "{}", run.stderr);
    let run = alma_cohort(&["extract", q, "--out", "-"], Some(KEY)).await;
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("--base-url"), "{}", run.stderr);
    let bad = query_file(&dir, ALL_USERS, "colour = \"blue\"");
    let run = alma_cohort(
        &["--base-url", &base, "extract", bad.to_str().unwrap(), "--out", "-"],
        Some(KEY),
    )
    .await;
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("q.toml:2:1") && run.stderr.contains("colour"),
        "{}",
        run.stderr
    );
    let run = alma_cohort(&["--base-url", &base, "extract"], Some(KEY)).await;
    assert_eq!(run.code, 2, "clap usage errors are 2 too");
}

/// A stand-in for what sits between us and Alma when things go wrong: a proxy's HTML error page,
/// a broken XML page, a body cut off.
async fn misbehaving_upstream(kind: &'static str) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/almaws/v1/analytics/reports",
        get(move || async move {
            match kind {
                "html" => (StatusCode::BAD_GATEWAY, [(header::CONTENT_TYPE, "text/html")], "<html><body><h1>502 Bad Gateway</h1></body></html>".to_string()).into_response(),
                "html200" => (StatusCode::OK, [(header::CONTENT_TYPE, "text/html")], "<html><body>Please log in</body></html>".to_string()).into_response(),
                "malformed" => (StatusCode::OK, [(header::CONTENT_TYPE, "application/xml")], "<report><QueryResult><IsFinished>true</IsFinshed></QueryResult></report>".to_string()).into_response(),
                _ => (StatusCode::OK, [(header::CONTENT_TYPE, "application/xml")], "<report><QueryResult><IsFinished>true</IsFinished><ResultXml><rowset xmlns=\"urn:schemas-microsoft-com:xml-analysis:rowset\">".to_string()).into_response(),
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (format!("http://{addr}"), task)
}

#[tokio::test]
async fn bad_pages_exit_3_naming_the_page() {
    let dir = temp_dir("bad-pages");
    let q = query_file(&dir, ALL_USERS, "");
    let out = dir.join("out.csv");
    for (kind, expect) in [
        ("html", "unexpected answer (HTTP 502, text/html)"),
        ("html200", "unexpected answer (HTTP 200, text/html)"),
        ("malformed", "report page 1 could not be read: malformed XML"),
        (
            "truncated",
            "report page 1 could not be read: the page ends before its document does",
        ),
    ] {
        let (base, task) = misbehaving_upstream(kind).await;
        let run = extract(&base, &q, &out, Some(KEY)).await;
        task.abort();
        assert_eq!(run.code, 3, "{kind}: {}", run.stderr);
        let lines = error_lines(&run.stderr);
        assert_eq!(lines.len(), 1, "{kind}: {}", run.stderr);
        assert!(lines[0].contains(expect), "{kind}: {}", lines[0]);
        assert!(!out.exists(), "{kind}: no partial output");
    }
}

/// Standard output that cannot be written: a full disk (`/dev/full`) is one `error:` line, exit
/// 2, never a panic; a pipe whose reader has gone (`| head`) ends quietly, exit 0.
#[test]
#[cfg(target_os = "linux")]
fn stdout_full_or_closed_is_never_a_panic() {
    use std::process::{Command, Stdio};
    let dir = temp_dir("stdout");
    let state = dir.join("state");
    let q = query_file(&dir, "/shared/r", "");
    // A list's extract reaches no Alma: its rows go to standard output.
    std::fs::write(dir.join("ids.txt"), "0012345\n0012346\n").unwrap();
    let list = dir.join("list.toml");
    std::fs::write(
        &list,
        "name = \"list\"\n[file]\npath = \"ids.txt\"\n[cohort]\nid_column = \"User name\"\n[guard]\nmax_members = 10\n",
    )
    .unwrap();
    let commands: Vec<Vec<String>> = vec![
        vec!["--help".into()],
        vec!["plan".into(), "--help".into()],
        vec!["--version".into()],
        vec!["extract".into(), list.display().to_string(), "--out".into(), "-".into()],
        vec!["completions".into(), "bash".into()],
        vec!["man".into()],
        vec!["runs".into()],
        vec!["plans".into()],
        vec!["validate".into(), q.display().to_string()],
    ];
    for args in &commands {
        let bin = || {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
            isolate_home(&mut cmd);
            cmd.arg("--state-dir").arg(&state).args(args);
            cmd
        };
        let full = bin()
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&full.stderr);
        assert_eq!(full.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(error_lines(&stderr).len(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("cannot write standard output"), "{args:?}: {stderr}");
        // The reader closes the pipe before anything is written.
        let mut child = bin().stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && error_lines(&stderr).is_empty(),
            "{args:?}: {stderr}"
        );
        // Nothing read, nothing claimed.
        assert!(!stderr.contains("extracted"), "{args:?}: {stderr}");
    }
}

/// A journal that cannot be read (a folder in its place, a symlink loop) is an error naming it,
/// exit 2 — never "no runs", which would look like an empty journal.
#[test]
#[cfg(unix)]
fn an_unreadable_journal_is_never_an_empty_one() {
    let dir = temp_dir("unreadable-journal");
    let (folder, looped) = (dir.join("folder"), dir.join("loop"));
    std::fs::create_dir_all(folder.join("journal.sqlite")).unwrap();
    std::fs::create_dir_all(&looped).unwrap();
    std::os::unix::fs::symlink(looped.join("journal.sqlite"), looped.join("journal.sqlite")).unwrap();
    for state in [&folder, &looped] {
        for command in ["runs", "plans"] {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
            isolate_home(&mut cmd);
            let out = cmd.arg("--state-dir").arg(state).arg(command).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {}: {stderr}", state.display());
            assert!(stderr.contains("cannot read the journal"), "{stderr}");
            assert_eq!(error_lines(&stderr).len(), 1, "{stderr}");
            assert!(!String::from_utf8_lossy(&out.stdout).contains("no runs"));
        }
    }
}

/// `--json` ends stdout with one object also when a command stops before it has one of its own:
/// a bad `--period` (exit 2) names the status and the error.
#[test]
fn json_ends_with_one_object_when_a_run_stops_early() {
    let dir = temp_dir("json-early");
    let q = query_file(&dir, "/shared/r", "");
    for args in [
        vec![
            "run",
            q.to_str().unwrap(),
            "--execute",
            "--yes",
            "--period",
            "a/b",
            "--json",
        ],
        vec!["plan", q.to_str().unwrap(), "--period", "a/b", "--json"],
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
        isolate_home(&mut cmd);
        let out = cmd
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last: serde_json::Value = serde_json::from_str(stdout.trim().lines().last().unwrap_or("")).unwrap();
        assert_eq!(last["status"], "usage", "{stdout}");
        assert_eq!(last["exit"], 2);
        assert!(last["error"].as_str().unwrap().contains("--period"), "{stdout}");
    }
}

/// A suggested command carries the --profile/--state-dir this one was given, quoted for the
/// shell, inside its backticks: pasted, it reads the same journal.
#[test]
fn hints_can_be_pasted_as_they_are() {
    let dir = temp_dir("pasteable");
    let state = dir.join("my state");
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
    isolate_home(&mut cmd);
    let out = cmd
        .args(["show", "20260101T000000Z-0000", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let wanted = format!("`alma-cohort --state-dir '{}' runs`", state.display());
    assert!(stderr.contains(&wanted), "{wanted}: {stderr}");
}

/// A state dir that is the working folder by accident (a profile's `state_dir = ""`) or named
/// with a newline (`ALMA_COHORT_STATE` from a script) is refused: one error line, exit 2.
#[test]
fn a_state_dir_named_by_mistake_is_refused() {
    let dir = temp_dir("state-mistake");
    let config = dir.join("alma-cohort.toml");
    std::fs::write(&config, "[profiles.main]\nstate_dir = \"\"\n").unwrap();
    for (env, args, says) in [
        (
            ("ALMA_COHORT_CONFIG", config.display().to_string()),
            vec!["--profile", "main", "runs"],
            "state_dir is empty",
        ),
        (
            ("ALMA_COHORT_STATE", "\n".to_string()),
            vec!["runs"],
            "control character U+000A",
        ),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
        isolate_home(&mut cmd);
        let out = cmd.current_dir(&dir).env(env.0, &env.1).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert_eq!(error_lines(&stderr).len(), 1, "{stderr}");
    }
    assert!(!dir.join("journal.sqlite").exists(), "nothing in the working folder");
}
