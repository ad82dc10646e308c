//! The API key never shows: the whole pipeline runs at trace level, in text and JSON logs, with a
//! recognisable key, and every output is searched for it — stdout, stderr, the journal, the run
//! files, error messages, the simulator's request log. Patrons' emails stay out of logs above DEBUG.

use std::path::Path;
use std::process::Command;

use alma_sim::{Access, ApiKey, Area, SimConfig};

use crate::cli::temp_dir;
use crate::support::*;

const SECRET: &str = "SECRET-KEY-4b1d-recognisable-x9q7";

fn all_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test]
async fn the_key_appears_nowhere() {
    let key = ApiKey {
        key: SECRET.into(),
        grants: vec![
            (Area::Analytics, Access::Read),
            (Area::Configuration, Access::ReadWrite),
            (Area::Users, Access::Read),
        ],
    };
    let sim = sim(SimConfig::default()
        .users(300)
        .seed(3)
        .rate_limit(0)
        .job_duration(std::time::Duration::ZERO)
        .key(key))
    .await;
    let dir = temp_dir("secrets");
    let state = dir.join("state");
    let key_file = dir.join("alma.key");
    std::fs::write(&key_file, format!("{SECRET}\n")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let q = crate::cli::query_file(&dir, ALL_USERS, "");
    let bad_path = dir.join("bad");
    std::fs::create_dir_all(&bad_path).unwrap();
    let bad = crate::cli::query_file(&bad_path, "/shared/Example University/Reports/Nope", "");
    let base = sim.handle.base_url();
    let q = q.to_str().unwrap().to_string();
    let bad = bad.to_str().unwrap().to_string();
    let out_csv = dir.join("out.csv");
    let runs: Vec<Vec<String>> = vec![
        vec!["validate".into(), q.clone()],
        vec!["plan".into(), q.clone(), "--json".into()],
        vec![
            "extract".into(),
            q.clone(),
            "--out".into(),
            out_csv.to_str().unwrap().into(),
        ],
        vec![
            "run".into(),
            q.clone(),
            "--execute".into(),
            "--yes".into(),
            "--json".into(),
        ],
        vec!["runs".into()],
        vec!["runs".into(), "--json".into()],
        vec!["doctor".into(), q.clone()],
        vec!["plan".into(), bad.clone()],
        vec!["--help".into()],
    ];
    let mut seen = String::new();
    for (i, args) in runs.iter().enumerate() {
        for (format, via_file) in [("text", false), ("json", true)] {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_alma-cohort"));
            cmd.args([
                "-vv",
                "--log-format",
                format,
                "--base-url",
                &base,
                "--state-dir",
                state.to_str().unwrap(),
            ])
            .args(args)
            .env("ALMA_COHORT_RETRY_DELAY", "0")
            .env("ALMA_COHORT_POLL_INTERVAL", "0.05")
            .env("RUST_LOG", "trace")
            .env_remove("ALMA_BASE_URL");
            if via_file {
                cmd.arg("--api-key-file").arg(&key_file).env_remove("ALMA_API_KEY");
            } else {
                cmd.env("ALMA_API_KEY", SECRET);
            }
            let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
                .await
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(!text.contains(SECRET), "run {i} ({format}): the key leaked:\n{text}");
            assert!(!text.contains("4b1d-recognisable"), "run {i}: part of the key leaked");
            seen.push_str(&text);
        }
    }
    assert!(
        seen.contains("TRACE") || seen.contains("\"level\":\"TRACE\"") || seen.contains("DEBUG"),
        "the logs were verbose"
    );
    assert!(
        seen.contains("INTERNAL_SERVER_ERROR"),
        "an error message was among the outputs"
    );

    let mut files = Vec::new();
    all_files(&dir, &mut files);
    assert!(files.iter().any(|f| f.ends_with("journal.sqlite")));
    assert!(files.iter().any(|f| f.ends_with("report.html")));
    for f in files.iter().filter(|f| !f.ends_with("alma.key")) {
        let bytes = std::fs::read(f).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains(SECRET), "{} holds the key", f.display());
    }
    let log = serde_json::to_string(&sim.handle.requests()).unwrap();
    assert!(!log.contains(SECRET) && !log.contains("apikey"));
}

#[tokio::test]
async fn emails_stay_out_of_logs_above_debug() {
    let sim = sim(SimConfig::default()
        .users(300)
        .seed(3)
        .rate_limit(0)
        .job_duration(std::time::Duration::ZERO))
    .await;
    let dir = temp_dir("pii");
    let q = crate::cli::query_file(&dir, ALL_USERS, "");
    let run = crate::cli::alma_cohort(
        &[
            "--base-url",
            &sim.handle.base_url(),
            "--state-dir",
            dir.join("state").to_str().unwrap(),
            "plan",
            q.to_str().unwrap(),
            "--json",
        ],
        Some(KEY),
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        !run.stderr.contains("@example.edu"),
        "an email in the logs: {}",
        run.stderr
    );
}
