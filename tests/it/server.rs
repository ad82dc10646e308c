//! Fit for a shared server: no colour codes in cron mail or log files, no secret echoed from a
//! mistyped base URL, patron data private to the account that runs the tool.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::cli::temp_dir;
use crate::execute::{all_users_query, last_json, sim_config};
use crate::support::*;

const BIN: &str = env!("CARGO_BIN_EXE_alma-cohort");

/// `plan` of a small query with stderr written to a file; the file's bytes.
fn plan_stderr_to_file(sim: &Sim, dir: &Path, extra_args: &[&str], env: &[(&str, &str)]) -> Vec<u8> {
    let q = all_users_query(dir, 5000);
    let log = dir.join(format!("plan-{}.log", extra_args.len() + env.len() * 10));
    let mut cmd = Command::new(BIN);
    cmd.arg("--base-url")
        .arg(sim.handle.base_url())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("-v")
        .args(extra_args)
        .arg("plan")
        .arg(&q)
        .env("ALMA_API_KEY", KEY)
        .env_remove("NO_COLOR")
        .env_remove("ALMA_COHORT_COLOR")
        .env_remove("ALMA_BASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(0));
    std::fs::read(&log).unwrap()
}

fn has_escape(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| w == b"\x1b[")
}

/// A colour (SGR) sequence, `ESC [ digits;… m` — on a terminal the progress bar also moves the
/// cursor with escapes, which are not colour.
fn has_colour(bytes: &[u8]) -> bool {
    bytes.windows(2).enumerate().any(|(i, w)| {
        w == b"\x1b["
            && bytes[i + 2..]
                .iter()
                .find(|b| !(b.is_ascii_digit() || **b == b';'))
                .is_some_and(|b| *b == b'm')
    })
}

/// `command` run on a pseudo-terminal (util-linux `script`), so stderr *is* a terminal; its output.
fn on_a_terminal(command: &str, env: &[(&str, &str)]) -> Vec<u8> {
    let mut cmd = Command::new("script");
    cmd.args(["-qec", command, "/dev/null"])
        .env_remove("NO_COLOR")
        .env_remove("ALMA_COHORT_COLOR")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("util-linux script runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn colour_only_on_a_terminal_and_never_with_no_color() {
    let sim = sim(sim_config().users(50)).await;
    let dir = temp_dir("colour");
    let plain = plan_stderr_to_file(&sim, &dir, &[], &[]);
    assert!(String::from_utf8_lossy(&plain).contains("DEBUG"), "there are log lines");
    assert!(!has_escape(&plain), "{}", String::from_utf8_lossy(&plain));
    assert!(has_escape(&plan_stderr_to_file(
        &sim,
        &dir,
        &["--color", "always"],
        &[]
    )));
    assert!(has_escape(&plan_stderr_to_file(
        &sim,
        &dir,
        &[],
        &[("ALMA_COHORT_COLOR", "always")]
    )));
    assert!(!has_escape(&plan_stderr_to_file(
        &sim,
        &dir,
        &["--log-format", "json", "--color", "always"],
        &[]
    )));

    // On a terminal, auto colours — unless NO_COLOR is set, or --color never.
    let q = all_users_query(&dir, 5000);
    let line = format!(
        "{BIN} -v --base-url {} --state-dir {} plan {} >/dev/null",
        sim.handle.base_url(),
        dir.join("state").display(),
        q.display()
    );
    let env = [("ALMA_API_KEY", KEY)];
    assert!(has_colour(&on_a_terminal(&line, &env)), "auto on a terminal colours");
    assert!(!has_colour(&on_a_terminal(
        &line,
        &[("ALMA_API_KEY", KEY), ("NO_COLOR", "1")]
    )));
    assert!(!has_colour(&on_a_terminal(&format!("{line} --color never"), &env)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mistyped_base_url_never_shows_its_secret() {
    let dir = temp_dir("url-secret");
    let q = all_users_query(&dir, 5000);
    for url in [
        "https://api-eu.hosted.exlibrisgroup.com/almaws/v1?apikey=SECRET",
        "http://user:SECRET@127.0.0.1:8089",
        "https//api-eu.hosted.exlibrisgroup.com?apikey=SECRET",
    ] {
        for args in [
            vec!["--base-url", url, "plan", q.to_str().unwrap()],
            vec!["--base-url", url, "doctor"],
        ] {
            let out = Command::new(BIN)
                .args(&args)
                .env("ALMA_API_KEY", "not-the-secret")
                .env("ALMA_COHORT_STATE", dir.join("state"))
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let (stdout, stderr) = (
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
            );
            assert!(
                !stdout.contains("SECRET") && !stderr.contains("SECRET"),
                "{url}: {stdout}{stderr}"
            );
            if args[2] == "plan" {
                assert_eq!(out.status.code(), Some(2), "{url}: {stderr}");
                assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
            }
        }
    }
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patron_data_is_private_whatever_the_umask() {
    let sim = sim(sim_config().users(100)).await;
    let dir = temp_dir("private");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    // The umask of a typical shared server.
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "umask 022; exec {BIN} --base-url {} --state-dir {} run {} --execute --yes --json",
            sim.handle.base_url(),
            state.display(),
            q.display()
        ))
        .env("ALMA_API_KEY", KEY)
        .env("ALMA_COHORT_RETRY_DELAY", "0")
        .env("ALMA_COHORT_POLL_INTERVAL", "0.05")
        .env_remove("ALMA_BASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let run_id = last_json(&String::from_utf8_lossy(&out.stdout))["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    let folder = state.join("runs").join(&run_id);
    assert_eq!(mode(&state), 0o700, "the state dir");
    for d in [state.join("runs"), folder.clone(), state.join("locks")] {
        assert_eq!(mode(&d), 0o700, "{}", d.display());
    }
    for f in ["cohort.csv", "report.md", "report.html", "summary.json"] {
        assert_eq!(mode(&folder.join(f)), 0o600, "{f}");
    }
    for entry in std::fs::read_dir(&state).unwrap() {
        let p = entry.unwrap().path();
        if p.is_file() {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
        }
    }
    assert_eq!(mode(&state.join("journal.sqlite")), 0o600);

    // doctor says when an older state dir is open to others, and how to fix it.
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
    let doctor = Command::new(BIN)
        .args(["--base-url", &sim.handle.base_url(), "--state-dir"])
        .arg(&state)
        .arg("doctor")
        .env("ALMA_API_KEY", KEY)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&doctor.stdout);
    assert!(
        text.contains("warn state dir")
            && text.contains("other accounts on this machine can read")
            && text.contains(&format!("chmod -R go-rwx {}", state.display())),
        "{text}"
    );
}

/// `alma-cohort sim` as another project's test suite starts it: `--port 0 --port-file FILE`,
/// listening on every address with an inspection token. The port file holds the port once the
/// banner is out; Alma's API and, from loopback, `/_sim/*` answer there; a short token is refused.
#[tokio::test]
async fn the_simulator_standing_alone_says_its_port_and_guards_its_inside() {
    use std::io::{BufRead, BufReader};
    let dir = temp_dir("standalone");
    let port_file = dir.join("sim.port");
    /// Stops the simulator however the test ends.
    struct Running(std::process::Child);
    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    let child = Command::new(BIN)
        .args(["sim", "--port", "0", "--users", "5", "--listen", "0.0.0.0"])
        .arg("--port-file")
        .arg(&port_file)
        .args(["--inspect-token", "a-token-of-twenty-chars"])
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("alma-cohort sim starts");
    let mut child = Running(child);
    // The banner comes once it listens; the port file is written before it.
    let mut stderr = BufReader::new(child.0.stderr.take().expect("stderr"));
    let mut banner = String::new();
    while !banner.contains("inspect:") {
        let mut line = String::new();
        if stderr.read_line(&mut line).expect("stderr") == 0 {
            panic!("the simulator stopped: {banner}");
        }
        banner.push_str(&line);
    }
    let port: u16 = std::fs::read_to_string(&port_file)
        .expect("the port file")
        .trim()
        .parse()
        .expect("a port number");
    assert!(
        banner.contains(&format!(":{port} (5 users")) && banner.contains("X-Sim-Token"),
        "{banner}"
    );
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let test = http
        .get(format!("{base}/almaws/v1/conf/test"))
        .header("Authorization", format!("apikey {KEY}"))
        .header("Accept", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(test.status(), 200);
    let state = http.get(format!("{base}/_sim/state")).send().await.unwrap();
    assert_eq!(state.status(), 200, "loopback may look inside");
    // A web page whose own name resolves to 127.0.0.1 (DNS rebinding) may not; the token may.
    let rebound = http
        .get(format!("{base}/_sim/outbox"))
        .header("Host", "evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(rebound.status(), 403);
    let with_token = http
        .get(format!("{base}/_sim/outbox"))
        .header("Host", "evil.example")
        .header("X-Sim-Token", "a-token-of-twenty-chars")
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 200);
    // A suite's `kill` (SIGTERM) stops it cleanly, and the port file goes with it.
    let term = Command::new("kill").arg(child.0.id().to_string()).status().unwrap();
    assert!(term.success());
    assert!(child.0.wait().unwrap().success(), "stopped cleanly");
    assert!(!port_file.exists(), "the port file is removed");
    drop(child);

    let short = Command::new(BIN)
        .args(["sim", "--port", "0", "--listen", "0.0.0.0", "--inspect-token", "short"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&short.stderr);
    assert_eq!(short.status.code(), Some(2), "{err}");
    assert!(err.contains("--inspect-token: give at least 16"), "{err}");
}
