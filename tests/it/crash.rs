//! The crash harness: the real binary is killed (SIGKILL) at random points of a scheduled execute
//! run (`run --period P --execute --yes`) — while a request is in flight, or just after Alma
//! answered it. Then the next action is chosen at random, as a real operator or cron would take
//! it: `resume RUN_ID`, or the scheduled command again. When a run stops with "Alma may have
//! started the job" (or "… created the set"), the operator looks in Monitor Jobs (Manage Sets) —
//! here the simulator's state — and resumes with `--resubmit-job` (`--recreate-set`) only if
//! there is none. After each, the simulator must hold one set with
//! exactly the cohort, one job instance, and one letter per internal member.
//!
//! `ALMA_COHORT_CRASH_RUNS` (default 8) and `ALMA_COHORT_CRASH_SEED` set the count and the seed;
//! the full 50 is `ALMA_COHORT_CRASH_RUNS=50 cargo nextest run crash`.

use std::process::Stdio;
use std::time::Duration;

use alma_sim::{Fault, FaultKind, Target};
use rand::{Rng, SeedableRng};

use crate::cli::temp_dir;
use crate::execute::{all_users_query, assert_done_once, command, execute_run, run, runs_json, sim_config};
use crate::support::*;

const PERIOD: &str = "2027-spring";

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test]
async fn killed_at_random_points_then_resumed() {
    let runs = env_or("ALMA_COHORT_CRASH_RUNS", 8);
    let seed = env_or("ALMA_COHORT_CRASH_SEED", 20_261_125);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut kills = Vec::new();
    for i in 0..runs {
        // Every request takes 20 ms, so there is time to land inside it.
        let sim =
            sim(sim_config()
                .fault(Fault::new(FaultKind::Slow(Duration::from_millis(20)), Target::Any).count(1_000_000)))
            .await;
        let dir = temp_dir(&format!("crash-{i}"));
        let state = dir.join("state");
        let q = all_users_query(&dir, 5000);
        // Requests 1..=13 of a 2600-user run: 3 report pages, the set, 3 add-members batches, the job
        // list (2 pages), the set check, the job run, the first polls.
        let k = rng.random_range(1..=13usize);
        let after_answer = rng.random_bool(0.5);
        let scheduled = ["run", q.to_str().unwrap(), "--period", PERIOD, "--execute", "--yes"];
        let mut child = command(&sim, &state, &scheduled)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut killed = false;
        for _ in 0..4000 {
            let log = sim.handle.requests();
            let reached = log.get(k - 1).is_some_and(|r| !after_answer || r.status.is_some());
            if reached {
                child.kill().unwrap();
                killed = true;
                break;
            }
            if child.try_wait().unwrap().is_some() {
                break; // the run ended before request k: nothing to kill
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = child.wait();
        let at = sim
            .handle
            .requests()
            .get(k.saturating_sub(1))
            .map(|r| format!("{:?}", r.target))
            .unwrap_or_default();
        kills.push(format!(
            "#{i}: request {k} ({at}){}{}",
            if after_answer {
                " after its answer"
            } else {
                " in flight"
            },
            if killed { "" } else { " — run ended first" }
        ));
        // Finish it, one random next action at a time.
        let mut finished = false;
        let mut actions = Vec::new();
        for _ in 0..30 {
            let listed: serde_json::Value = runs_json(&sim, &state).await;
            let list = listed.as_array().cloned().unwrap_or_default();
            if list.iter().any(|r| r["status"] == "completed") {
                finished = true;
                break;
            }
            let open = list.iter().find(|r| r["status"] == "running");
            let r = match open {
                Some(open) if rng.random_bool(0.5) => {
                    let id = open["run_id"].as_str().unwrap().to_string();
                    let r = run(&sim, &state, &["resume", &id]).await;
                    actions.push("resume");
                    if r.code == 3 && r.stderr.contains("Alma may have") {
                        // The operator checks Alma (Manage Sets, Monitor Jobs) before going on.
                        let mut next = vec!["resume", id.as_str()];
                        next.extend(operator_flag(&sim, &r.stderr));
                        actions.push(match next.get(2) {
                            Some(&"--recreate-set") => "resume --recreate-set",
                            Some(_) => "resume --resubmit-job",
                            None => "resume (saw it in Alma)",
                        });
                        run(&sim, &state, &next).await
                    } else {
                        r
                    }
                }
                _ => {
                    actions.push("scheduled run");
                    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--period", PERIOD]).await;
                    if open.is_some() {
                        assert_eq!(
                            r.code, 4,
                            "#{i}: a scheduled run over an unfinished one is refused: {}",
                            r.stderr
                        );
                    }
                    r
                }
            };
            assert!(matches!(r.code, 0 | 3 | 4), "#{i}: {}", r.stderr);
        }
        let last = kills.last_mut().unwrap();
        last.push_str(&format!(" → {}", actions.join(", ")));
        assert!(finished, "#{i} ({}) never finished", kills.last().unwrap());
        assert_done_once(&sim);
    }
    eprintln!("seed {seed}, {runs} kills:\n{}", kills.join("\n"));
}
