//! Patron data kept no longer than needed: a run's files under `<state-dir>/runs/<run_id>/`
//! (the cohort with every report column, the users left out, the report) are deleted once the run
//! ended more than `[retention] days` ago — after each `run --execute` and with `alma-cohort
//! prune`. The journal keeps the run's record and its IDs (the period and cooldown checks need
//! them) and a line saying the files were pruned. An unfinished run's files are never deleted; a
//! plan's files (a run that never executed) count as ended when the plan was made.

use std::path::Path;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Serialize;

use crate::error::Error;
use crate::journal::{Journal, now};

pub use crate::settings::{DEFAULT_RETENTION_DAYS as DEFAULT_DAYS, MAX_RETENTION_DAYS as MAX_DAYS};

/// What a prune removed (or, with `--dry-run`, would remove).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Pruned {
    pub older_than_days: u32,
    pub dry_run: bool,
    /// Ended runs whose files went.
    pub runs: Vec<String>,
    /// Plans that never executed whose files went.
    pub plans: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    /// Unfinished runs older than the cut-off: their files are kept whatever their age.
    pub kept_unfinished: Vec<String>,
    /// Run folders the journal does not know that hold a run's record (`summary.json`): another
    /// journal's (restored from a backup, replaced), kept — they may be the only record of what a
    /// run did in Alma.
    pub kept_unknown: Vec<String>,
}

impl Pruned {
    /// One line for the operator (and for the log: counts and paths, never an ID of a user).
    pub fn summary(&self, state_dir: &Path) -> String {
        let verb = if self.dry_run { "would delete" } else { "deleted" };
        let mut s = format!(
            "prune: {verb} the files of {} ended runs and {} plans older than {} days under {} ({} files, {})",
            self.runs.len(),
            self.plans.len(),
            self.older_than_days,
            state_dir.join("runs").display(),
            self.files,
            bytes(self.bytes)
        );
        if !self.kept_unknown.is_empty() {
            s.push_str(&format!(
                "; kept {} run folders this journal does not know ({}: another journal's?)",
                self.kept_unknown.len(),
                self.kept_unknown.join(", ")
            ));
        }
        if !self.kept_unfinished.is_empty() {
            s.push_str(&format!(
                "; kept the files of {} unfinished runs ({})",
                self.kept_unfinished.len(),
                self.kept_unfinished.join(", ")
            ));
        }
        s
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{:.1} MiB", n as f64 / (1 << 20) as f64),
        n if n >= 10 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} bytes"),
    }
}

/// When a run id (`20261201T020000Z-1a2b`) was made.
fn id_time(run_id: &str) -> Option<DateTime<Utc>> {
    let (stamp, tail) = run_id.split_once('-')?;
    if tail.len() != 4 || !tail.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc())
}

/// Files and bytes under `dir` (regular files; links are not followed).
fn measure(dir: &Path) -> std::io::Result<(usize, u64)> {
    let (mut files, mut size) = (0, 0);
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        if kind.is_dir() {
            let (f, b) = measure(&entry.path())?;
            files += f;
            size += b;
        } else {
            files += 1;
            size += entry.metadata()?.len();
        }
    }
    Ok((files, size))
}

/// Deletes the files of runs that ended more than `days` ago (and of plans made that long ago),
/// unless `dry_run`. Creates nothing: a state dir without runs prunes nothing.
pub fn prune(state_dir: &Path, journal: &Journal, days: u32, dry_run: bool) -> Result<Pruned, Error> {
    let mut pruned = Pruned {
        older_than_days: days,
        dry_run,
        ..Pruned::default()
    };
    let runs_dir = state_dir.join("runs");
    let entries = match std::fs::read_dir(&runs_dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(pruned),
        Err(source) => return Err(Error::Output { path: runs_dir, source }),
    };
    let cutoff = Utc::now() - chrono::Duration::days(i64::from(days));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Output { path, source }
    };
    let mut folders: Vec<(String, std::path::PathBuf)> = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(&runs_dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // Only our own folders: anything else someone put here is not ours to delete.
        if entry.file_type().map_err(io(&entry.path()))?.is_dir() && id_time(&name).is_some() {
            folders.push((name, entry.path()));
        }
    }
    folders.sort();
    for (run_id, folder) in folders {
        let record = journal.find_run(&run_id)?;
        let saved = match record {
            None => journal.find_plan(&run_id)?,
            Some(_) => None,
        };
        let ended = match &record {
            Some(r) if !r.state.is_finished() => {
                let started = DateTime::parse_from_rfc3339(&r.started_at).ok();
                if started.is_some_and(|t| t.with_timezone(&Utc) < cutoff) {
                    pruned.kept_unfinished.push(run_id.clone());
                }
                continue;
            }
            Some(r) => r
                .finished_at
                .as_deref()
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc)),
            // A saved plan (plan --save) counts as ended when it was made — unless it can still
            // be applied: its reviewers' page stays.
            None if saved.is_some() => {
                let open = saved.as_ref().is_some_and(|plan| {
                    super::approval::plan_query(plan).is_ok_and(|spec| {
                        matches!(
                            super::approval::state(plan, &spec.approval, Utc::now()),
                            super::approval::PlanState::Saved | super::approval::PlanState::Approved
                        )
                    })
                });
                if open {
                    continue;
                }
                id_time(&run_id)
            }
            // A run's record beside it: a run this journal does not know, never a mere plan.
            None if folder.join("summary.json").exists() => {
                if id_time(&run_id).is_some_and(|t| t < cutoff) {
                    pruned.kept_unknown.push(run_id.clone());
                }
                continue;
            }
            None => id_time(&run_id),
        };
        if ended.is_none_or(|t| t >= cutoff) {
            continue;
        }
        let (files, size) = match measure(&folder) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(&folder)(e)),
        };
        pruned.files += files;
        pruned.bytes += size;
        if !dry_run {
            // Recorded first: a stop between the two leaves a run marked pruned whose files the
            // next prune deletes, never a pruned run whose files a later command writes again.
            if let Some(r) = &record {
                journal.note(
                    &run_id,
                    r.state,
                    &format!(
                        "files pruned: the run ended more than {days} days ago ([retention] days); {files} files, {} deleted from {}",
                        bytes(size),
                        folder.display()
                    ),
                    &[("files_pruned_at", &now())],
                )?;
            }
            match std::fs::remove_dir_all(&folder) {
                // Another prune got there first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.map_err(io(&folder))?,
            }
        }
        match record {
            Some(_) => pruned.runs.push(run_id),
            None => pruned.plans.push(run_id),
        }
    }
    Ok(pruned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_carry_their_time() {
        assert_eq!(
            id_time("20261201T020000Z-1a2b").map(|t| t.to_rfc3339()),
            Some("2026-12-01T02:00:00+00:00".into())
        );
        for not_ours in ["notes", "20261201T020000Z", "20261201T020000Z-xyz1", "2026-12-01-1a2b"] {
            assert_eq!(id_time(not_ours), None, "{not_ours}");
        }
        assert_eq!(bytes(512), "512 bytes");
        assert_eq!(bytes(3 << 20), "3072.0 KiB");
        assert_eq!(bytes(12 << 20), "12.0 MiB");
    }
}
