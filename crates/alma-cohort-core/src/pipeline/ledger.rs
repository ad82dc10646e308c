//! Alma as the ledger, the journal its cache. A journal knows what its own runs did; Alma knows
//! what every installation did. Before anything that starts something in Alma, the run asks Alma:
//!
//! - a `--period` run's set is named after its *intent* (the query's name + the normalized
//!   period) alone, so Alma refuses a second set for the same period with `402263`, and before
//!   creating it Alma's sets are searched for that name: a set this journal does not know is
//!   another installation's (or a lost journal's), and the run is refused (exit 4);
//! - every set carries a machine-readable stamp in its description (query, period, run, host,
//!   journal) so that what another installation made can be told from a set made by hand;
//! - before every job submission the job's instances are listed: one that names this intent but
//!   another run, or names this run's set, means letters went (or go) out already;
//! - a user whom any run notified within `[guard] cooldown_days` is left out of a new run,
//!   whatever the query: from this journal, and from the stamped sets in Alma that it does not know.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use super::state::{RunState, job_may_have_run};
use crate::error::Error;
use crate::journal::{Journal, RunRecord};
use alma_client::sets::comparable;
use alma_client::{AlmaClient, InstanceStatus, JobId, SetInfo};

/// In every set name this tool gives (Alma can search set names, not descriptions).
pub const MARKER: &str = "alma-cohort";
/// Starts the stamp in a set's description.
const STAMP_TAG: &str = "alma-cohort:";
/// The longest period accepted (it goes into set and instance names).
pub const MAX_PERIOD: usize = 40;

/// A period as typed, normalized: trimmed, lower-cased, each run of spaces, `_` and `-` one `-`.
/// Only letters, digits and `-` may remain (it goes into set names, journal rows and log lines);
/// anything else is refused naming the character.
pub fn normalize_period(raw: &str) -> Result<String, Error> {
    let shown: String = raw.chars().take(60).collect::<String>();
    if let Some(c) = raw.chars().find(|c| c.is_control()) {
        return Err(Error::Usage(format!(
            "--period {shown:?} holds the control character {c:?}: a period is letters a-z, digits and '-', e.g. 2027-spring; nothing was done"
        )));
    }
    let p = period_key(raw);
    if p.is_empty() {
        return Err(Error::Usage(format!(
            "--period {shown:?} is empty; give the term the run belongs to, e.g. --period 2027-spring"
        )));
    }
    if let Some(c) = p
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '-'))
    {
        return Err(Error::Usage(format!(
            "--period {shown:?} holds {c:?}: a period is letters a-z, digits and '-' (spaces and '_' count as '-'), e.g. 2027-spring; nothing was done"
        )));
    }
    if p.len() > MAX_PERIOD {
        return Err(Error::Usage(format!(
            "--period is {} characters long; at most {MAX_PERIOD} (e.g. 2027-spring); nothing was done",
            p.chars().count()
        )));
    }
    Ok(p)
}

pub use crate::text::period_key;

/// This machine's name, for the stamp.
pub fn host() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// Who made a set: the machine-readable line in its description.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<String>,
    pub run: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub journal: String,
}

impl Stamp {
    /// `alma-cohort:{"query":…,"period":…,"run":…,"host":…,"journal":…}`
    pub fn line(&self) -> String {
        format!("{STAMP_TAG}{}", serde_json::to_string(self).unwrap_or_default())
    }

    /// The stamp in a description, if it has one.
    /// The last stamp that reads (a human description may hold the tag too).
    pub fn find(description: &str) -> Option<Stamp> {
        description.rmatch_indices(STAMP_TAG).find_map(|(at, _)| {
            serde_json::Deserializer::from_str(&description[at + STAMP_TAG.len()..])
                .into_iter::<Stamp>()
                .next()?
                .ok()
        })
    }

    /// Whether this stamp is of the intent `query` + `period`.
    pub fn is_intent(&self, query: &str, period: &str) -> bool {
        self.query == query
            && self
                .period
                .as_deref()
                .is_some_and(|p| period_key(p) == period_key(period))
    }

    /// For messages: "run R of query Q (period P) on host H, journal J".
    pub fn describe(&self) -> String {
        format!(
            "alma-cohort run {} of query {:?}{} on host {:?} (journal {})",
            self.run,
            self.query,
            self.period
                .as_deref()
                .map(|p| format!(" for period {p:?}"))
                .unwrap_or_default(),
            self.host,
            self.journal
        )
    }
}

/// The words before a period run's query and period in its set's name.
pub const PERIOD_SET_PREFIX: &str = "User Password Reset";

/// The name of a `--period` run's set (before any `#n`): a function of the query's name and the
/// normalized period alone — never of the `[set] name` template, which two servers' copies of a
/// query may word differently (the template goes to the description). Query names are
/// lowercase letters, digits and `-`, periods too: the name reads the same everywhere.
pub fn period_set_name(query: &str, period: &str) -> String {
    format!("{PERIOD_SET_PREFIX} {query} {} ({MARKER})", period_key(period))
}

/// The set name a run gives Alma, from its filled `[set] name` template: a period run's is the
/// template and the marker (the same for the same intent everywhere, `#n` from the second set
/// of a period on); any other run's carries its run id.
pub fn set_name(filled: &str, run_id: &str, period_run: bool) -> String {
    if period_run || filled.contains(run_id) {
        format!("{filled} ({MARKER})")
    } else {
        format!("{filled} ({MARKER} {run_id})")
    }
}

/// The `n`th set of an intent: the base name, then `base #2`, `base #3` …
pub fn numbered(base: &str, n: u32) -> String {
    if n <= 1 {
        base.to_string()
    } else {
        format!("{base} #{n}")
    }
}

/// Which of an intent's sets `name` is (1 for the base name), compared as Alma might store it.
pub fn number_in(base: &str, name: &str) -> Option<u32> {
    let (base, name) = (comparable(base), comparable(name));
    if name == base {
        return Some(1);
    }
    let n: u32 = name.strip_prefix(&base)?.strip_prefix(" #")?.parse().ok()?;
    (n >= 2).then_some(n)
}

/// The job instance name (`job_name`) of a run: a period run's names its intent, so that
/// another run of the same period is seen in the job's instance list.
pub fn instance_name(query: &str, period: Option<&str>, run_id: &str) -> String {
    match period {
        Some(p) => format!("{MARKER} {query} {p} {run_id}"),
        None => format!("{MARKER} {run_id}"),
    }
}

/// A set of this intent found in Alma, with its stamp.
#[derive(Clone, Debug)]
pub struct IntentSet {
    pub n: u32,
    pub set: SetInfo,
    pub stamp: Option<Stamp>,
}

/// Every set in Alma of this intent: named after it (the base name or `base #n`), or stamped with
/// its query and period whatever its name now is (renamed in Alma, or made under another `[set]
/// name`). Found through the marker every set of this tool carries (`q=name~alma-cohort`, every
/// page), so the search does not depend on how Alma reads spaces or brackets in `q`; each set
/// read in full when the list gave no description.
pub async fn intent_sets(client: &AlmaClient, base: &str, query: &str, period: &str) -> Result<Vec<IntentSet>, Error> {
    let mut out = Vec::new();
    for set in client.find_sets(MARKER).await? {
        let by_name = number_in(base, &set.name);
        let set = if set.description.trim().is_empty() {
            client.get_set(&set.id).await?
        } else {
            set
        };
        let stamp = Stamp::find(&set.description);
        let by_stamp = stamp.as_ref().is_some_and(|s| s.is_intent(query, period));
        if by_name.is_none() && !by_stamp {
            continue;
        }
        out.push(IntentSet {
            // A set of the intent under another name takes no number of the base name.
            n: by_name.unwrap_or(0),
            stamp,
            set,
        });
    }
    out.sort_by_key(|s| s.n);
    Ok(out)
}

impl IntentSet {
    /// With the stamp read from the set's description.
    pub fn stamped(mut self) -> Self {
        self.stamp = Stamp::find(&self.set.description);
        self
    }
}

/// Alma's sets of the intent, judged ([`intent_sets`] then [`judge`]): at the plan (`this_run`
/// none yet) and right before the set is created.
pub async fn check_intent(
    client: &AlmaClient,
    journal: &Journal,
    base: &str,
    query: &str,
    period: &str,
    this_run: Option<&str>,
    forced: bool,
) -> Result<Verdict, Error> {
    let sets = intent_sets(client, base, query, period).await?;
    judge(&sets, journal, this_run, forced, query, period)
}

/// What a run may do about its intent's sets.
#[derive(Debug)]
pub enum Verdict {
    /// Create the `n`th set of the intent.
    Create { n: u32 },
    /// This run's own set is already there (an earlier attempt of this run made it).
    Ours(SetInfo),
}

/// Whether a run of this intent may create its set, given what Alma holds: this run's own set is
/// adopted; a set of this journal's run that was abandoned before its job stays and the next
/// number is taken; anything else — a set this journal does not know, or one of its runs that
/// went further — refuses the run (exit 4), unless `--force` (then the next number).
pub fn judge(
    sets: &[IntentSet],
    journal: &Journal,
    this_run: Option<&str>,
    forced: bool,
    query: &str,
    period: &str,
) -> Result<Verdict, Error> {
    if let Some(this) = this_run
        && let Some(own) = sets.iter().find(|s| s.stamp.as_ref().is_some_and(|st| st.run == this))
    {
        return Ok(Verdict::Ours(own.set.clone()));
    }
    for s in sets {
        let known = known_run(s, journal)?;
        let harmless = known
            .as_ref()
            .is_some_and(|r| r.state == RunState::Abandoned && !job_may_have_run(r));
        if harmless || forced {
            continue;
        }
        return Err(already_in_alma(s, known.as_ref(), journal, query, period));
    }
    Ok(Verdict::Create {
        n: sets.iter().map(|s| s.n).max().unwrap_or(0) + 1,
    })
}

/// The run of this journal that made the set, by its id or its stamp.
fn known_run(s: &IntentSet, journal: &Journal) -> Result<Option<RunRecord>, Error> {
    Ok(match journal.run_of_set(&s.set.id.0)? {
        Some(r) => Some(r),
        None => match &s.stamp {
            Some(st) => journal.find_run(&st.run)?,
            None => None,
        },
    })
}

/// The refusal for a set of this intent that is not the run's own (exit 4).
pub fn not_ours(s: &IntentSet, journal: &Journal, query: &str, period: &str) -> Result<Error, Error> {
    let known = known_run(s, journal)?;
    Ok(already_in_alma(s, known.as_ref(), journal, query, period))
}

fn already_in_alma(s: &IntentSet, known: Option<&RunRecord>, journal: &Journal, query: &str, period: &str) -> Error {
    let set = &s.set;
    let created = format!(
        "created {} by {}",
        set.created_date.as_deref().unwrap_or("(date not given)"),
        set.created_by.as_deref().unwrap_or("(not given)")
    );
    let maker = match (known, &s.stamp) {
        (Some(r), _) => format!(
            "by run {} of this journal (state {}); `alma-cohort show {}` tells what it did",
            r.run_id, r.state, r.run_id
        ),
        (None, Some(st)) => format!(
            "by {}, which this journal ({}) does not know: another installation, another state dir or a lost journal",
            st.describe(),
            journal.path().display()
        ),
        (None, None) => "by hand or by another tool: its description carries no alma-cohort stamp".to_string(),
    };
    let instances = match &s.stamp {
        Some(st) => format!(
            "look in Admin > Monitor Jobs for an instance named \"{}\"",
            instance_name(&st.query, st.period.as_deref(), &st.run)
        ),
        None => format!("look in Admin > Monitor Jobs for a job run on the set {:?}", set.name),
    };
    Error::Refused {
        message: format!(
            "Alma already holds the set {:?} (id {}) for query {query:?} period {period:?}, {created}, made {maker}; nothing was done",
            set.name, set.id
        ),
        hint: format!(
            "in Alma, open Admin > Manage Sets and search for {:?} ({} members); {instances}: if it ran, this period is done and nothing is needed. If this installation should know that run, use the state dir that holds its journal (--state-dir). To run the period again anyway (every member gets a second letter): --force. docs/operating.md, \"Alma already holds a set for this period\"",
            set.name, set.members
        ),
    }
}

/// The run's own instances and the others that matter, from one listing of the job's instances.
pub struct Listing<'a> {
    pub ours: Vec<&'a InstanceStatus>,
    /// Instances that name this run's intent (another run) or its set: `(instance, why)`.
    pub strangers: Vec<(&'a InstanceStatus, String)>,
}

/// Sorts the job's instances into this run's own (by its instance name), and strangers: an
/// instance that names this intent but another run (allowed with `--force` once it has ended),
/// or that names this run's set (a job someone started on it, e.g. from Alma's UI).
pub fn sort_instances<'a>(instances: &'a [InstanceStatus], record: &RunRecord, set_made: &str) -> Listing<'a> {
    let own = record.instance_name().unwrap_or("");
    // Every set of this period carries the base name (`base`, `base #2` …): a job on any of them
    // (an earlier set of the period, abandoned before its own job, that staff ran from the UI)
    // mailed this period's users.
    let period_sets = record
        .execution
        .set_base_name
        .as_deref()
        .filter(|_| record.period.is_some())
        .map(comparable)
        .filter(|b| !b.is_empty());
    let forced = record.execution.forced;
    // With --force, a job that has ended and is older than this run's set was the operator's
    // reason to force; one on this run's own set, or still running, never is.
    let forced_past =
        |i: &InstanceStatus| forced && i.is_terminal() && i.submit_time.as_deref().is_some_and(|t| t < set_made);
    let intent = record
        .period
        .as_deref()
        .map(|p| format!("{MARKER} {} {} ", record.query, period_key(p)));
    let set = comparable(&record.execution.set_name);
    let mut listing = Listing {
        ours: Vec::new(),
        strangers: Vec::new(),
    };
    for i in instances {
        if !own.is_empty() && (i.name == own || i.name.starts_with(&format!("{own} "))) {
            listing.ours.push(i);
        } else if intent.as_ref().is_some_and(|p| i.name.starts_with(p.as_str())) {
            if !(record.execution.forced && i.is_terminal()) {
                listing.strangers.push((
                    i,
                    format!(
                        "it names this run's period {:?} of query {:?}",
                        record.period.as_deref().unwrap_or(""),
                        record.query
                    ),
                ));
            }
        } else if !set.is_empty() && comparable(&i.name).contains(&set) {
            if !forced_past(i) {
                listing
                    .strangers
                    .push((i, format!("it names this run's set {:?}", record.execution.set_name)));
            }
        } else if period_sets
            .as_ref()
            .is_some_and(|b| comparable(&i.name).contains(b.as_str()))
            && !forced_past(i)
        {
            listing.strangers.push((
                i,
                format!(
                    "it names a set of this run's period ({:?} or a numbered one)",
                    record.execution.set_base_name.as_deref().unwrap_or("")
                ),
            ));
        }
    }
    listing
}

/// The refusal for an instance that is not this run's but concerns its intent or its set.
pub fn stranger_refusal(record: &RunRecord, job: &JobId, stranger: &InstanceStatus, why: &str) -> Error {
    let run_id = &record.run_id;
    Error::Refused {
        message: format!(
            "Alma lists job {job} instance {} {:?} ({}, submitted {}) that is not run {run_id}'s, and {why}: its users may have been mailed already; run {run_id}'s job was not submitted",
            stranger.id,
            stranger.name,
            stranger.status,
            stranger.submit_time.as_deref().unwrap_or("at an unknown time")
        ),
        hint: format!(
            "in Alma, open Admin > Monitor Jobs and look at instance {} (its report says whom it mailed). If it did what run {run_id} was for, end this run: `alma-cohort abandon {run_id} --reason \"…\"{}`; if its users must be mailed again anyway, abandon this run and `run … --force` (docs/operating.md)",
            stranger.id,
            if job_may_have_run(record) {
                " --i-checked-alma"
            } else {
                ""
            }
        ),
    }
}

/// Someone notified within the cooldown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Recent {
    pub run_id: String,
    pub query: String,
    /// When the run submitted its job (or started, when it has not yet), or the set's creation.
    pub at: String,
    /// `journal` or `alma set <id> (host …)`.
    pub source: String,
}

/// Who is in the cooldown, and what finding out cost.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Cooldown {
    pub days: u32,
    /// Lower-cased primary ID → the run that notified them (the latest).
    #[serde(skip)]
    pub users: HashMap<String, Recent>,
    /// Whether Alma's sets were searched (no client: a file query's `plan`).
    pub alma_checked: bool,
    /// Stamped sets in Alma, unknown to this journal, whose members were read: `(id, members)`.
    pub alma_sets_read: Vec<(String, usize)>,
    /// Calls to Alma the lookup made.
    pub alma_calls: u64,
}

/// The users notified (or about to be: unfinished runs) within `days`, from this journal and —
/// with a client — from Alma's stamped sets that this journal does not know, but for those in
/// `already_read` whose number of members has not changed since (the recheck before a job).
/// Conservative where it cannot tell: a run unfinished in this journal counts, and a stamped set
/// in Alma counts whether or not its job ran (`--force` overrides).
pub async fn recently_reset(
    client: Option<&AlmaClient>,
    journal: &Journal,
    days: u32,
    except_run: Option<&str>,
    already_read: &HashMap<String, usize>,
) -> Result<Cooldown, Error> {
    let mut cooldown = Cooldown {
        days,
        ..Cooldown::default()
    };
    if days == 0 {
        return Ok(cooldown);
    }
    let since = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
    let since_text = since.format("%Y-%m-%dT%H:%M:%S").to_string();
    let mut known_sets = HashSet::new();
    let mut known_runs = HashSet::new();
    for run in journal.runs()? {
        known_runs.insert(run.run_id.clone());
        if let Some(s) = &run.set_id {
            known_sets.insert(s.clone());
        }
        if except_run == Some(run.run_id.as_str()) {
            continue;
        }
        let notifies = if run.state.is_finished() {
            job_may_have_run(&run)
        } else {
            true
        };
        let at = run
            .job_submit_started_at
            .clone()
            .unwrap_or_else(|| run.started_at.clone());
        if !notifies || at.as_str() < since_text.as_str() {
            continue;
        }
        let refused = super::run_files::not_mailed(&run);
        for id in journal.cohort(&run.run_id)? {
            let key = id.to_lowercase();
            if refused.contains(&key) {
                continue;
            }
            let recent = Recent {
                run_id: run.run_id.clone(),
                query: run.query.clone(),
                at: at.clone(),
                source: "journal".into(),
            };
            keep_latest(&mut cooldown.users, key, recent);
        }
    }
    let Some(client) = client else {
        return Ok(cooldown);
    };
    let before = client.requests_sent();
    cooldown.alma_checked = true;
    let since_date = since.format("%Y-%m-%d").to_string();
    let too_old = |set: &SetInfo| {
        set.created_date
            .as_deref()
            .and_then(|d| d.get(..10))
            .is_some_and(|day| day < since_date.as_str())
    };
    for set in client.find_sets(MARKER).await? {
        // Known here, or made before the window (by the list's own date): no call for it.
        if known_sets.contains(&set.id.0) || too_old(&set) {
            continue;
        }
        let set = if set.description.trim().is_empty() {
            client.get_set(&set.id).await?
        } else {
            set
        };
        // A set named with the marker but without a readable stamp (its description edited)
        // counts too: who it mailed cannot be told, so its members are the safe guess.
        let stamp = Stamp::find(&set.description).unwrap_or_else(|| Stamp {
            query: "(unknown: no stamp)".into(),
            period: None,
            run: "(unknown)".into(),
            host: "(unknown)".into(),
            journal: String::new(),
        });
        if known_runs.contains(&stamp.run) {
            continue;
        }
        // A set whose creation date cannot be read counts (the safe side).
        if too_old(&set) {
            continue;
        }
        let created = set.created_date.clone().unwrap_or_default();
        // Read at the plan with the same number of members: its users are out of the cohort
        // already, and reading it again could find no one new.
        let listed_members = set.members;
        // (A count Alma did not give, read as 0, proves nothing.)
        if listed_members > 0 && already_read.get(&set.id.0) == Some(&listed_members) {
            continue;
        }
        let members = client.set_members(&set.id).await.map_err(|e| Error::Refused {
            message: format!(
                "the members of set {:?} (id {}), made by {}, could not be read for the cooldown: {e}",
                set.name,
                set.id,
                stamp.describe()
            ),
            hint: "the cooldown reads other installations' sets to leave out users they mailed within [guard] cooldown_days; look at the set in Admin > Manage Sets. If its users may be reset again anyway, run the query with --force".into(),
        })?;
        let read = members.len();
        for id in members {
            let recent = Recent {
                run_id: stamp.run.clone(),
                query: stamp.query.clone(),
                at: created.clone(),
                source: format!("alma set {} (host {})", set.id, stamp.host),
            };
            keep_latest(&mut cooldown.users, id.to_lowercase(), recent);
        }
        // The members read, not the count listed: a count that lags makes the recheck read again.
        cooldown.alma_sets_read.push((set.id.0.clone(), read));
    }
    cooldown.alma_calls = client.requests_sent() - before;
    Ok(cooldown)
}

fn keep_latest(users: &mut HashMap<String, Recent>, key: String, recent: Recent) {
    match users.get(&key) {
        Some(old) if old.at >= recent.at => {}
        _ => {
            users.insert(key, recent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_normalized_and_odd_ones_refused() {
        for (raw, want) in [
            ("2027-spring", "2027-spring"),
            ("2027-Spring", "2027-spring"),
            ("  2027-spring ", "2027-spring"),
            ("2027 spring", "2027-spring"),
            ("2027_SPRING", "2027-spring"),
            ("2027 -_ spring", "2027-spring"),
        ] {
            assert_eq!(normalize_period(raw).unwrap(), want, "{raw:?}");
        }
        for bad in [
            "",
            "   ",
            "../../etc",
            "2027/spring",
            "a\nb",
            "a\tb",
            "a\u{a0}b",
            "spring.2027",
            "vår-2027",
            "x'y",
        ] {
            let e = normalize_period(bad).unwrap_err().to_string();
            assert!(!e.contains('\n'), "one line: {e}");
            assert!(e.contains("--period"), "{e}");
        }
        assert!(
            normalize_period(&"a".repeat(10_000))
                .unwrap_err()
                .to_string()
                .contains("at most")
        );
    }

    #[test]
    fn stamps_round_trip_inside_a_description() {
        let stamp = Stamp {
            query: "everyone".into(),
            period: Some("2027-spring".into()),
            run: "20261201T010203Z-abcd".into(),
            host: "lib-server".into(),
            journal: "/var/lib/alma-cohort/journal.sqlite".into(),
        };
        let description = format!("Created by alma-cohort run x {} and text after", stamp.line());
        assert_eq!(Stamp::find(&description), Some(stamp.clone()));
        let edited = format!("alma-cohort: the staff's own words {}", stamp.line());
        assert_eq!(Stamp::find(&edited), Some(stamp));
        assert_eq!(Stamp::find("Created by hand"), None);
        assert_eq!(Stamp::find("alma-cohort:{not json"), None);
    }

    #[test]
    fn set_names_are_a_function_of_the_intent_and_numbered() {
        let base = set_name("User Password Reset everyone 2027-spring", "R1", true);
        assert_eq!(base, "User Password Reset everyone 2027-spring (alma-cohort)");
        assert_eq!(
            set_name("Reset everyone no-period", "R1", false),
            "Reset everyone no-period (alma-cohort R1)"
        );
        assert_eq!(number_in(&base, &base), Some(1));
        assert_eq!(number_in(&base, &numbered(&base, 3)), Some(3));
        assert_eq!(number_in(&base, &base.to_uppercase()), Some(1));
        assert_eq!(number_in(&base, &format!("{base} #x")), None);
        assert_eq!(number_in(&base, &format!("{base} extra")), None);
        assert_eq!(
            number_in(&base, "User Password Reset everyone 2027-spring-2 (alma-cohort)"),
            None
        );
    }
}
