//! When letters went out, as Alma tells it: the job's instances. A set says who *may* be mailed
//! and when it was made; the instance of the job run on it says when the letters went. Runs of
//! this tool name their instances `alma-cohort [QUERY PERIOD] RUN` (Alma adds " - DATE"); a job
//! started from Alma's UI on a set is named after the set. One listing of the job's instances
//! serves every question a check asks (whose set mailed when, what ran on a set since deleted).

use chrono::{DateTime, NaiveDate, Utc};

use crate::error::Error;
use alma_client::sets::comparable;
use alma_client::{AlmaClient, InstanceStatus, JobId};

/// In every set name and job instance name this tool gives (Alma can search set names, not
/// descriptions).
pub const MARKER: &str = "alma-cohort";

/// How far back a period's runs are looked for in the job's instances: a period names a term,
/// and runs of one term more than a year and a month apart are not planned. Alma is asked once per
/// check (about one page of 100 instances per 100 runs of the job in that time).
pub const INTENT_WINDOW_DAYS: i64 = 400;

/// A run of this tool, read from its instance's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolRun {
    /// `(query, period)` of a `--period` run.
    pub intent: Option<(String, String)>,
    pub run: String,
}

/// Whether `token` has the shape of a run id (`20261201T010203Z-abcd`).
pub fn is_run_id(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 21
        && b[..8].iter().all(u8::is_ascii_digit)
        && b[8].eq_ignore_ascii_case(&b'T')
        && b[9..15].iter().all(u8::is_ascii_digit)
        && b[15].eq_ignore_ascii_case(&b'Z')
        && b[16] == b'-'
        && b[17..].iter().all(u8::is_ascii_hexdigit)
}

/// The run an instance name was given by this tool: `alma-cohort RUN …` or
/// `alma-cohort QUERY PERIOD RUN …` (what follows the run id is Alma's date).
pub fn tool_run(name: &str) -> Option<ToolRun> {
    let mut tokens = name.split_whitespace();
    if !tokens.next()?.eq_ignore_ascii_case(MARKER) {
        return None;
    }
    let first: Vec<&str> = tokens.take(3).collect();
    match first.as_slice() {
        [run, ..] if is_run_id(run) => Some(ToolRun {
            intent: None,
            run: run.to_string(),
        }),
        [query, period, run] if is_run_id(run) => Some(ToolRun {
            intent: Some((query.to_lowercase(), period.to_lowercase())),
            run: run.to_string(),
        }),
        _ => None,
    }
}

/// The job's instances from a date on, every page.
pub struct Mailings {
    pub instances: Vec<InstanceStatus>,
    /// The first local date listed.
    pub from: NaiveDate,
    /// Calls the listing made.
    pub calls: u64,
}

impl Mailings {
    /// Lists `job`'s instances submitted from the day before `since` (Alma lists by its local
    /// date) to the day after today.
    pub async fn read(client: &AlmaClient, job: &JobId, since: DateTime<Utc>) -> Result<Mailings, Error> {
        let before = client.requests_sent();
        let today = Utc::now().date_naive();
        let from = since.date_naive().pred_opt().unwrap_or(since.date_naive());
        let to = today.succ_opt().unwrap_or(today);
        let instances = client
            .job_instances_between(
                job,
                &from.format("%Y-%m-%d").to_string(),
                &to.format("%Y-%m-%d").to_string(),
            )
            .await?;
        Ok(Mailings {
            instances,
            from,
            calls: client.requests_sent() - before,
        })
    }

    /// Whether this listing covers everything submitted since `since`.
    pub fn covers(&self, since: DateTime<Utc>) -> bool {
        self.from < since.date_naive()
    }

    /// The instances of a set: its maker's run (by the instance name it gave, from the set's
    /// stamp), and any job run on it from Alma's UI (named after the set).
    pub fn of_set<'a>(&'a self, maker: Option<&str>, set_name: &str) -> Vec<&'a InstanceStatus> {
        let own = maker.map(comparable);
        self.instances
            .iter()
            .filter(|i| {
                let name = comparable(&i.name);
                own.as_ref()
                    .is_some_and(|o| name == *o || name.starts_with(&format!("{o} ")))
                    || names_set(&i.name, set_name)
            })
            .collect()
    }

    /// The instances that name this tool's runs or sets (`alma-cohort` anywhere in the name).
    pub fn of_this_tool(&self) -> impl Iterator<Item = &InstanceStatus> {
        self.instances.iter().filter(|i| comparable(&i.name).contains(MARKER))
    }
}

/// Whether a job instance's name names the set `set_name` (a job run on it from Alma's UI is
/// named "JOB - SET - DATE"): the set's whole name, compared as Alma may store it, followed by
/// the end or " - " — so that `base` is not found in `base #2`.
pub fn names_set(instance: &str, set_name: &str) -> bool {
    let (name, set) = (comparable(instance), comparable(set_name));
    !set.is_empty()
        && name.match_indices(set.as_str()).any(|(at, _)| {
            let rest = &name[at + set.len()..];
            rest.is_empty() || rest.starts_with(" -")
        })
}

/// When a set's letters went, from its instances: the latest submission, or `now` — with none
/// found, one not ended, or the latest one not a success (a job submitted again a moment ago
/// after a failure, or a rerun of an old set, is not listed yet: Alma lists new instances late),
/// so "may mail at any time" is read as "mails now".
pub fn mailed_at(instances: &[&InstanceStatus], now: &str) -> String {
    if instances.is_empty() || instances.iter().any(|i| !i.is_terminal()) {
        return now.to_string();
    }
    let latest = instances.iter().max_by_key(|i| i.submit_time.clone());
    match latest {
        Some(i) if matches!(i.status.as_str(), "COMPLETED_SUCCESS" | "COMPLETED_WARNING") => {
            // Ended, but no time given: the safe side.
            i.submit_time.clone().unwrap_or_else(|| now.to_string())
        }
        _ => now.to_string(),
    }
}

/// The refusal for a job that mailed from a set Alma no longer shows (deleted, or renamed so
/// that the search cannot see it): who was mailed cannot be told, so nobody is guessed.
pub fn mailed_from_a_gone_set(instance: &InstanceStatus, what: &str, set: &str, cooldown_days: u32) -> Error {
    let at = instance.submit_time.as_deref().unwrap_or("at an unknown time");
    let until = instance
        .submit_time
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| {
            (t.with_timezone(&Utc) + chrono::Duration::days(i64::from(cooldown_days)))
                .format("%Y-%m-%d")
                .to_string()
        })
        .unwrap_or_else(|| format!("{cooldown_days} days after it ran"));
    Error::Refused {
        message: format!(
            "{what} (job instance {} {:?}, {}, submitted {at}) mailed users from {set}, which Alma no longer shows (deleted or renamed — or made a moment ago and not listed yet); Alma cannot tell whom it mailed; nothing was done",
            instance.id, instance.name, instance.status
        ),
        hint: if cooldown_days == 0 {
            format!(
                "in Alma, open Admin > Monitor Jobs and look at instance {} (its report lists whom it mailed): if it did what this run is for, nothing is needed; if its users must be mailed again anyway, run with --force (docs/operating.md, \"… mailed users from …, which Alma no longer shows\")",
                instance.id
            )
        } else {
            format!(
                "in Alma, open Admin > Monitor Jobs and look at instance {} (its report lists whom it mailed). If those users must not get a second letter, wait until {until} (the cooldown after it), or leave them out with an exclusion file; if they may, run with --force (docs/operating.md, \"… mailed users from …, which Alma no longer shows\")",
                instance.id
            )
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(name: &str, status: &str, submitted: Option<&str>) -> InstanceStatus {
        InstanceStatus {
            id: "1".into(),
            name: name.into(),
            status: status.into(),
            submit_time: submitted.map(str::to_string),
            ..InstanceStatus::default()
        }
    }

    #[test]
    fn instance_names_give_the_run() {
        assert_eq!(
            tool_run("alma-cohort everyone 2027-spring 20261201T010203Z-abcd - 2026-12-01 4:11 AM"),
            Some(ToolRun {
                intent: Some(("everyone".into(), "2027-spring".into())),
                run: "20261201T010203Z-abcd".into()
            })
        );
        assert_eq!(
            tool_run("alma-cohort 20261201T010203Z-00ff - 12/01/2026 04:11"),
            Some(ToolRun {
                intent: None,
                run: "20261201T010203Z-00ff".into()
            })
        );
        assert_eq!(
            tool_run("ALMA-COHORT 20261201T010203Z-00ff").map(|r| r.run),
            Some("20261201T010203Z-00ff".into())
        );
        for other in [
            "Update/Notify Users - User Password Reset everyone 2027-spring (alma-cohort)",
            "alma-cohort",
            "alma-cohort everyone 2027-spring - 2026-12-01",
            "alma-cohort 20261201T010203Z-abc - 2026",
            "",
        ] {
            assert_eq!(tool_run(other), None, "{other:?}");
        }
    }

    #[test]
    fn a_set_mailed_when_its_last_instance_was_submitted_or_now() {
        let now = "2026-12-04T10:00:00Z";
        let a = instance("x", "COMPLETED_SUCCESS", Some("2026-11-20T09:00:00Z"));
        let b = instance("x", "COMPLETED_SUCCESS", Some("2026-11-27T09:00:00Z"));
        assert_eq!(mailed_at(&[&a, &b], now), "2026-11-27T09:00:00Z");
        assert_eq!(mailed_at(&[], now), now, "none listed yet: now");
        let running = instance("x", "RUNNING", Some("2026-11-01T09:00:00Z"));
        assert_eq!(mailed_at(&[&a, &running], now), now, "still running: now");
        let untimed = instance("x", "COMPLETED_SUCCESS", None);
        assert_eq!(mailed_at(&[&untimed], now), now);
        // The latest failed: it may be submitted again a moment ago, not listed yet.
        let failed = instance("x", "FAILED", Some("2026-11-28T09:00:00Z"));
        assert_eq!(mailed_at(&[&a, &failed], now), now);
    }

    #[test]
    fn an_instance_names_a_set_by_its_whole_name() {
        let base = "User Password Reset everyone 2027-spring (alma-cohort)";
        assert!(names_set(
            &format!("Update/Notify Users - {base} - 2027-01-05 02:00"),
            base
        ));
        assert!(names_set(
            &format!("Update/Notify Users - {}", base.to_uppercase()),
            base
        ));
        assert!(!names_set(
            &format!("Update/Notify Users - {base} #2 - 2027-01-05"),
            base
        ));
        assert!(names_set(
            &format!("Update/Notify Users - {base} #2 - 2027-01-05"),
            &format!("{base} #2")
        ));
        assert!(!names_set("anything", ""));
    }

    #[test]
    fn a_refusal_for_a_gone_set_names_the_instance_and_the_day_it_may_run_again() {
        let i = instance(
            "alma-cohort 20261201T010203Z-abcd - x",
            "COMPLETED_SUCCESS",
            Some("2026-12-01T01:02:03Z"),
        );
        let e = mailed_from_a_gone_set(&i, "run 20261201T010203Z-abcd", "its set", 7).to_string();
        assert!(
            e.contains("2026-12-08") && e.contains("Monitor Jobs") && e.contains("--force"),
            "{e}"
        );
    }
}
