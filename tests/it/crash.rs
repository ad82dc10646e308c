//! The crash harness: the real binary is killed (SIGKILL) at random points of an execute run —
//! while a request is in flight, or just after Alma answered it — then `resume` (or a new run,
//! if the journal has none yet) is repeated until the run is done. After each, the simulator must
//! hold one set with exactly the cohort, one job instance, and one letter per internal member.
//!
//! `ALMA_COHORT_CRASH_RUNS` (default 8) and `ALMA_COHORT_CRASH_SEED` set the count and the seed;
//! the full 50 is `ALMA_COHORT_CRASH_RUNS=50 cargo nextest run crash`.

use std::process::Stdio;
use std::time::Duration;

use alma_cohort::sim::{Fault, FaultKind, Target};
use rand::{Rng, SeedableRng};

use crate::cli::temp_dir;
use crate::execute::{all_users_query, assert_done_once, command, execute_run, run, runs_json, sim_config};
use crate::support::*;

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
        let k = rng.random_range(1..=11usize);
        let after_answer = rng.random_bool(0.5);
        let mut child = command(&sim, &state, &["run", q.to_str().unwrap(), "--execute", "--yes"])
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
        // Finish it: resume the journaled run, or start again if the kill came before the journal had one.
        let mut finished = false;
        for _ in 0..5 {
            let listed: serde_json::Value = runs_json(&sim, &state).await;
            let list = listed.as_array().cloned().unwrap_or_default();
            if list.iter().any(|r| r["status"] == "completed") {
                finished = true;
                break;
            }
            let r = match list.iter().find(|r| r["status"] == "running") {
                Some(r) => run(&sim, &state, &["resume", r["run_id"].as_str().unwrap()]).await,
                None => execute_run(&sim, &state, q.to_str().unwrap(), &[]).await,
            };
            assert!(r.code == 0 || r.code == 3, "#{i}: {}", r.stderr);
        }
        assert!(finished, "#{i} ({}) never finished", kills.last().unwrap());
        assert_done_once(&sim);
    }
    eprintln!("seed {seed}, {runs} kills:\n{}", kills.join("\n"));
}
