//! What operators touch: doctor, profiles, completions and man page, report.html, `--help`.

use std::path::Path;

use crate::cli::{alma_cohort, temp_dir};
use crate::support::*;

const COMMANDS: &[&str] = &[
    "validate",
    "plan",
    "run",
    "resume",
    "abandon",
    "runs",
    "show",
    "extract",
    "sim",
    "demo",
    "doctor",
    "completions",
    "man",
];

#[tokio::test]
async fn doctor_with_a_good_key_a_read_only_key_and_a_wrong_address() {
    let sim = sim(config(50)).await;
    let dir = temp_dir("doctor");
    let base = sim.handle.base_url();
    let state = dir.join("state");
    let query = Path::new(env!("CARGO_MANIFEST_DIR")).join("queries/term-start-students.toml");
    let args = [
        "--base-url",
        base.as_str(),
        "--state-dir",
        state.to_str().unwrap(),
        "doctor",
        query.to_str().unwrap(),
    ];
    let good = alma_cohort(&args, Some(KEY)).await;
    assert_eq!(good.code, 0, "{}{}", good.stdout, good.stderr);
    assert!(
        !good.stdout.contains("FAIL") && good.stdout.contains("all 12 checks passed"),
        "{}",
        good.stdout
    );
    for line in [
        "ok   Alma reachable",
        "ok   key may write Configuration",
        "ok   report:",
        "ok   job: job M",
        "ok   letter: UserNotificationsLetter is enabled",
        "ok   state dir",
        "ok   daily API quota",
    ] {
        assert!(good.stdout.contains(line), "{line}: {}", good.stdout);
    }

    let ro = alma_cohort(&args, Some("sim-ro")).await;
    assert_eq!(ro.code, 3);
    assert!(
        ro.stdout.contains("FAIL key may write Configuration")
            && ro.stdout.contains(
                "fix: in the Ex Libris Developer Network, give this key the API permission \"Configuration — Read/write"
            ),
        "{}",
        ro.stdout
    );
    assert_eq!(ro.stdout.matches("FAIL").count(), 1, "{}", ro.stdout);

    let wrong = alma_cohort(
        &[
            "--base-url",
            "http://127.0.0.1:9",
            "--state-dir",
            state.to_str().unwrap(),
            "doctor",
        ],
        Some(KEY),
    )
    .await;
    assert_eq!(wrong.code, 3);
    assert!(
        wrong.stdout.contains("FAIL Alma reachable") && wrong.stdout.contains("fix: check --base-url/--region"),
        "{}",
        wrong.stdout
    );
    assert!(sim.handle.sets().is_empty(), "doctor writes nothing");
}

#[tokio::test]
async fn a_run_from_a_profile() {
    let sim = sim(SimConfig::default()
        .users(300)
        .seed(5)
        .rate_limit(0)
        .job_duration(std::time::Duration::ZERO))
    .await;
    let dir = temp_dir("profile");
    let key_file = dir.join("main.key");
    std::fs::write(&key_file, "sim-rw\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    std::fs::write(
        dir.join("alma-cohort.toml"),
        format!(
            "[profiles.main]\ndisplay_name = \"Example University\"\nbase_url = \"{}\"\nkey_file = \"main.key\"\npace = 500\n\n[profiles.other]\nregion = \"eu\"\n",
            sim.handle.base_url()
        ),
    )
    .unwrap();
    let q = crate::cli::query_file(&dir, ALL_USERS, "");
    let run = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"))
                .current_dir(&dir)
                .args([
                    "--profile",
                    "main",
                    "run",
                    q.to_str().unwrap(),
                    "--execute",
                    "--yes",
                    "--json",
                ])
                .env_remove("ALMA_API_KEY")
                .env_remove("ALMA_BASE_URL")
                .env_remove("ALMA_COHORT_CONFIG")
                .env_remove("ALMA_COHORT_STATE")
                // The per-user state folder in the test's own folder, never the real home.
                .env("XDG_STATE_HOME", dir.join("xdg-state"))
                .env("HOME", dir.join("home"))
                .env("ALMA_COHORT_POLL_INTERVAL", "0.05")
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(stdout.contains("\"job_status\":\"COMPLETED_SUCCESS\""), "{stdout}");
    assert!(
        dir.join("xdg-state/alma-cohort/main/journal.sqlite").is_file(),
        "the profile's own journal, in the per-user state folder"
    );
    assert!(!dir.join(".alma-cohort").exists(), "nothing in the working folder");
    assert_eq!(sim.handle.sets().len(), 1);

    // report.html: one self-contained page that parses, with SVG bars and the IDs.
    let runs = std::fs::read_dir(dir.join("xdg-state/alma-cohort/main/runs"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let html = std::fs::read_to_string(runs.join("report.html")).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\"")
    );
    let mut reader = quick_xml::Reader::from_str(html.trim_start_matches("<!DOCTYPE html>"));
    let (mut rects, mut ids, mut depth_ok) = (0, 0, true);
    let mut in_ids = false;
    loop {
        match reader.read_event() {
            Ok(quick_xml::events::Event::Empty(e)) if e.local_name().as_ref() == "rect" => rects += 1,
            Ok(quick_xml::events::Event::Start(e)) if e.local_name().as_ref() == "div" => {
                if e.attributes().flatten().any(|a| &*a.value == "ids") {
                    in_ids = true;
                } else if in_ids {
                    ids += 1;
                }
            }
            Ok(quick_xml::events::Event::Eof) => break,
            Err(e) => {
                depth_ok = false;
                eprintln!("{e}");
                break;
            }
            _ => {}
        }
    }
    assert!(depth_ok, "report.html is well-formed");
    assert!(rects >= 3, "bar charts: {rects}");
    let sets = sim.handle.sets();
    assert_eq!(
        ids,
        sim.handle.set_members(&sets[0].id).unwrap().len(),
        "every ID in the set is listed"
    );

    let bad = alma_cohort(&["--profile", "nope", "runs"], None).await;
    assert_eq!(bad.code, 2);
    assert!(bad.stderr.contains("--profile nope"), "{}", bad.stderr);
}

#[tokio::test]
async fn completions_man_and_help() {
    for shell in ["bash", "zsh", "fish"] {
        let r = alma_cohort(&["completions", shell], None).await;
        assert_eq!(r.code, 0);
        assert!(
            r.stdout.contains("alma-cohort") && r.stdout.contains("resume"),
            "{shell}"
        );
    }
    let man = alma_cohort(&["man"], None).await;
    assert!(
        man.stdout.starts_with(".ie") || man.stdout.contains(".TH alma-cohort"),
        "{}",
        &man.stdout[..200.min(man.stdout.len())]
    );
    // Every page the main page names is written beside it; the exit codes are in it.
    let dir = crate::cli::temp_dir("man");
    let written = alma_cohort(&["man", "--dir", dir.to_str().unwrap()], None).await;
    assert_eq!(written.code, 0, "{}", written.stderr);
    let main_page = std::fs::read_to_string(dir.join("alma-cohort.1")).unwrap();
    assert!(main_page.contains("Exit codes:"));
    for named in main_page.split("alma\\-cohort\\-").skip(1) {
        let name = named.split('(').next().unwrap().replace("\\-", "-");
        assert!(dir.join(format!("alma-cohort-{name}.1")).exists(), "{name}");
    }
    assert!(dir.join("alma-cohort-plan.1").exists());
    let top = alma_cohort(&["--help"], None).await;
    golden("cli/help.txt", &top.stdout);
    for cmd in COMMANDS {
        let r = alma_cohort(&[cmd, "--help"], None).await;
        assert_eq!(r.code, 0, "{cmd}");
        golden(&format!("cli/help-{cmd}.txt"), &r.stdout);
    }
}

use alma_sim::SimConfig;
