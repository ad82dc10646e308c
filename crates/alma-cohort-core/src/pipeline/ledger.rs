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

use super::mailings::{
    INTENT_WINDOW_DAYS, Mailings, ToolRun, is_run_id, mailed_at, mailed_from_a_gone_set, names_set, tool_run,
};
use super::state::{RunState, job_may_have_run};
use crate::error::Error;
use crate::journal::{Journal, RunRecord};
use alma_client::sets::comparable;
use alma_client::{AlmaClient, InstanceStatus, JobId, SetId, SetInfo};

pub use super::mailings::MARKER;
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
/// none yet) and right before the set is created. With the job (`job`), its instances of the
/// last [`INTENT_WINDOW_DAYS`] too: a run of this intent that Alma shows a job for but whose set
/// it no longer shows (deleted, renamed) mailed users nobody can name — refused (exit 4) unless
/// `--force`.
#[allow(clippy::too_many_arguments)]
pub async fn check_intent(
    client: &AlmaClient,
    journal: &Journal,
    base: &str,
    query: &str,
    period: &str,
    this_run: Option<&str>,
    forced: bool,
    job: Option<&JobId>,
) -> Result<Verdict, Error> {
    let sets = intent_sets(client, base, query, period).await?;
    let verdict = judge(&sets, journal, this_run, forced, query, period)?;
    if let (false, Some(job)) = (forced, job) {
        let since = chrono::Utc::now() - chrono::Duration::days(INTENT_WINDOW_DAYS);
        let mailings = Mailings::read(client, job, since).await?;
        intent_mailed_from_a_gone_set(&mailings, &sets, journal, this_run, base, query, period)?;
    }
    Ok(verdict)
}

/// An instance of this intent's job whose set Alma no longer shows: the run it names is neither
/// this journal's nor the maker of a set listed, or (a job from Alma's UI) it names the period's
/// set and no such set is listed.
fn intent_mailed_from_a_gone_set(
    mailings: &Mailings,
    sets: &[IntentSet],
    journal: &Journal,
    this_run: Option<&str>,
    base: &str,
    query: &str,
    period: &str,
) -> Result<(), Error> {
    let listed_runs: HashSet<String> = sets
        .iter()
        .filter_map(|s| s.stamp.as_ref().map(|st| st.run.to_lowercase()))
        .collect();
    let period = period_key(period);
    for i in mailings.of_this_tool() {
        let what = match tool_run(&i.name) {
            Some(ToolRun {
                intent: Some((q, p)),
                run,
            }) if q == query && period_key(&p) == period => {
                if this_run.is_some_and(|r| r.eq_ignore_ascii_case(&run))
                    || listed_runs.contains(&run.to_lowercase())
                    || journal.find_run(&run)?.is_some()
                {
                    continue;
                }
                format!("run {run} of query {query:?} for period {period:?}")
            }
            Some(_) => continue,
            None => {
                // A job from Alma's UI on the period's set or a numbered one, none of them listed.
                let of_period = (1..=50).any(|n| names_set(&i.name, &numbered(base, n)));
                if base.trim().is_empty() || !of_period || sets.iter().any(|s| names_set(&i.name, &s.set.name)) {
                    continue;
                }
                format!("a job run from Alma's UI on a set of period {period:?} of query {query:?}")
            }
        };
        return Err(mailed_from_a_gone_set(
            i,
            &what,
            &format!("a set of this period ({base:?} or a numbered one)"),
            0,
        ));
    }
    Ok(())
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
        if let Some(stamp) = &own.stamp {
            this_installation(stamp, &own.set, journal)?;
        }
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

/// The path a stamp names this journal by: with symlinks and `..` resolved, so that one journal
/// reached by two paths is one journal.
pub fn journal_path(journal: &Journal) -> String {
    canonical(&journal.path().display().to_string())
}

fn canonical(path: &str) -> String {
    std::fs::canonicalize(path)
        .or_else(|_| std::path::absolute(path))
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| path.to_string())
}

/// A host name as compared: its first label, in lower case (`lib-server` and
/// `LIB-SERVER.example.edu` are one machine).
fn short_host(host: &str) -> String {
    host.trim().split('.').next().unwrap_or_default().to_lowercase()
}

/// In a run's history: the operator's `resume --take-over`.
pub const TAKE_OVER_NOTE: &str = "taken over";

/// How a take-over note names the installation that took the run over.
pub fn take_over_where(host: &str, journal: &str) -> String {
    format!("(host {:?}, journal {journal})", short_host(host))
}

/// A set whose stamp names this run is this run's only when the stamp also names this machine
/// and this journal: a journal copied or restored onto a second machine holds the same run ids,
/// and adopting the other's set would make two installations drive one run (exit 4) — unless the
/// operator said this installation drives it (`resume --take-over`, in the run's history). A
/// stamp without host or journal (written before they were stamped) is taken at its run id.
pub fn this_installation(stamp: &Stamp, set: &SetInfo, journal: &Journal) -> Result<(), Error> {
    let (host, path) = (host(), journal_path(journal));
    let other_host = !stamp.host.is_empty() && short_host(&stamp.host) != short_host(&host);
    let other_journal = !stamp.journal.is_empty() && stamp.journal != path && canonical(&stamp.journal) != path;
    if !(other_host || other_journal) {
        return Ok(());
    }
    // The operator's word holds for the installation that gave it: a copy of the journal made
    // since (restored elsewhere) carries the note, but not this host and path.
    let here = take_over_where(&host, &path);
    let taken_over = journal.find_run(&stamp.run)?.is_some_and(|r| {
        r.events
            .iter()
            .any(|e| e.detail.starts_with(TAKE_OVER_NOTE) && e.detail.contains(&here))
    });
    if taken_over {
        return Ok(());
    }
    Err(Error::Refused {
        message: format!(
            "Alma's set {:?} (id {}) carries the stamp of run {} but was made on host {:?} with journal {}, and this is host {host:?} with journal {path}: two installations hold this run (a copied or restored journal); nothing was done",
            set.name, set.id, stamp.run, stamp.host, stamp.journal
        ),
        hint: format!(
            "only one installation may drive a run: go on with run {0} where its stamp says (host {1:?}, journal {2}), and end it here with `alma-cohort abandon {0} --reason \"driven by the other installation\"`. If this is that installation (the machine renamed, a container's new hostname, the state dir moved) and no other copy of the journal runs: `alma-cohort resume {0} --take-over`",
            stamp.run, stamp.host, stamp.journal
        ),
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
            "in Alma, open Admin > Manage Sets and search for {:?} ({} members); {instances}: if it ran, this period is done and nothing is needed. If this installation should know that run, use the state dir that holds its journal (--state-dir). To run the period again anyway (every member gets a second letter): --force. docs/operating.md, \"Alma already holds the set … for query … period …\"",
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
    /// Whether the job's instances were read to date the sets' letters (without the job, every
    /// stamped set counts as mailing now).
    pub alma_instances_checked: bool,
}

/// The users notified (or about to be: unfinished runs) within `days`, from this journal and —
/// with a client — from Alma's stamped sets that this journal does not know, but for those in
/// `already_read` whose number of members has not changed since (the recheck before a job).
/// A set's letters are dated by the job run on it ([`Mailings`], the job `job`): the latest
/// instance's submission, or *now* when none is listed or one has not ended (a job submitted a
/// moment ago, or after the set stood for weeks, may not be listed yet) — never the set's
/// creation. A job of this tool within the cooldown whose set Alma no longer shows refuses the
/// run (exit 4): who it mailed cannot be told. Conservative where it cannot tell: a run
/// unfinished in this journal counts, and without the job every stamped set counts as mailing
/// now (`--force` overrides).
pub async fn recently_reset(
    client: Option<&AlmaClient>,
    journal: &Journal,
    days: u32,
    except_run: Option<&str>,
    already_read: &HashMap<String, usize>,
    job: Option<&JobId>,
) -> Result<Cooldown, Error> {
    let mut cooldown = Cooldown {
        days,
        ..Cooldown::default()
    };
    if days == 0 {
        return Ok(cooldown);
    }
    let now = chrono::Utc::now();
    let since = now - chrono::Duration::days(i64::from(days));
    let since_text = since.format("%Y-%m-%dT%H:%M:%S").to_string();
    let now_text = now.format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut known_sets = HashSet::new();
    let mut known_runs = HashSet::new();
    let mut known_names = Vec::new();
    let runs = journal.runs()?;
    for run in &runs {
        known_runs.insert(run.run_id.to_lowercase());
        if let Some(s) = &run.set_id {
            known_sets.insert(s.clone());
            known_names.push(comparable(&run.execution.set_name));
        }
        if except_run == Some(run.run_id.as_str()) {
            continue;
        }
        let notifies = if run.state.is_finished() {
            job_may_have_run(run)
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
        let refused = super::run_files::not_mailed(run);
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
    // Alma's `name~` may match more loosely than a substring: the marker is checked here too.
    let listed: Vec<SetInfo> = client
        .find_sets(MARKER)
        .await?
        .into_iter()
        .filter(|s| comparable(&s.name).contains(MARKER))
        .collect();
    search_sees_ours(client, &runs, &listed).await?;
    // The stamped sets this journal does not know; and its own, which staff may have run the job
    // on from Alma's UI.
    let mut strangers = Vec::new();
    let mut ours = Vec::new();
    let mut listed_runs = HashSet::new();
    let listed_names: Vec<String> = listed.iter().map(|s| comparable(&s.name)).collect();
    let mut unstamped_names = Vec::new();
    let except_set = except_run
        .and_then(|r| runs.iter().find(|x| x.run_id == r))
        .and_then(|r| r.set_id.clone());
    // A set made more than INTENT_WINDOW_DAYS ago is not read: a run resumed more than a year
    // after its set was made is not one anyone plans (an unreadable date counts).
    let window = (now - chrono::Duration::days(INTENT_WINDOW_DAYS))
        .format("%Y-%m-%d")
        .to_string();
    let ancient = |set: &SetInfo| {
        set.created_date
            .as_deref()
            .and_then(|d| d.get(..10))
            .is_some_and(|day| day < window.as_str())
    };
    for set in listed {
        if known_sets.contains(&set.id.0) {
            if except_set.as_deref() != Some(set.id.0.as_str()) {
                ours.push(set);
            }
            continue;
        }
        if ancient(&set) {
            continue;
        }
        let set = if set.description.trim().is_empty() {
            client.get_set(&set.id).await?
        } else {
            set
        };
        // A set named with the marker but without a readable stamp (its description edited)
        // counts too: who it mailed cannot be told, so its members are the safe guess.
        let stamp = Stamp::find(&set.description);
        match &stamp {
            Some(st) => {
                listed_runs.insert(st.run.to_lowercase());
                if known_runs.contains(&st.run.to_lowercase()) {
                    continue;
                }
            }
            None => unstamped_names.push(set.name.clone()),
        }
        strangers.push((set, stamp));
    }
    // The job's instances since the cooldown began, or since the oldest of those sets was made
    // (a set made weeks ago may have mailed yesterday).
    let oldest = strangers
        .iter()
        .filter_map(|(set, _)| set.created_date.as_deref().and_then(|d| d.get(..10)))
        .filter_map(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .min()
        .map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc());
    // (`oldest` is within INTENT_WINDOW_DAYS: older sets were passed over above.)
    let mailings = match job {
        Some(job) => Some(Mailings::read(client, job, oldest.map_or(since, |o| o.min(since))).await?),
        None => None,
    };
    cooldown.alma_instances_checked = mailings.is_some();
    // This journal's sets that a job from Alma's UI ran on within the cooldown: its members were
    // mailed by that job, whatever this journal's run did.
    if let Some(m) = &mailings {
        for set in &ours {
            let ui: Vec<&InstanceStatus> = m
                .of_set(None, &set.name)
                .into_iter()
                .filter(|i| tool_run(&i.name).is_none())
                .collect();
            if ui.is_empty() {
                continue;
            }
            let at = mailed_at(&ui, &now_text);
            if at.as_str() < since_text.as_str() {
                continue;
            }
            for id in client.set_members(&set.id).await? {
                let recent = Recent {
                    run_id: format!("(a job run from Alma's UI: instance {})", ui[0].id),
                    query: "(none)".into(),
                    at: at.clone(),
                    source: format!("alma set {} (this journal's, run from Alma's UI)", set.id),
                };
                keep_latest(&mut cooldown.users, id.to_lowercase(), recent);
            }
        }
    }
    for (set, stamp) in strangers {
        // The run that made it: its stamp's, or (the description edited) the run id in the name
        // of a set made without --period.
        let maker = match &stamp {
            Some(st) => Some(instance_name(&st.query, st.period.as_deref(), &st.run)),
            None => set
                .name
                .split(|c: char| c.is_whitespace() || c == '(' || c == ')')
                .find(|t| is_run_id(t))
                .map(|run| instance_name("", None, run)),
        };
        let at = match &mailings {
            Some(m) => mailed_at(&m.of_set(maker.as_deref(), &set.name), &now_text),
            None => now_text.clone(),
        };
        if at.as_str() < since_text.as_str() {
            continue;
        }
        let stamp = stamp.unwrap_or_else(|| Stamp {
            query: "(unknown: no stamp)".into(),
            period: None,
            run: "(unknown)".into(),
            host: "(unknown)".into(),
            journal: String::new(),
        });
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
                at: at.clone(),
                source: format!("alma set {} (host {})", set.id, stamp.host),
            };
            keep_latest(&mut cooldown.users, id.to_lowercase(), recent);
        }
        // The members read, not the count listed: a count that lags makes the recheck read again.
        cooldown.alma_sets_read.push((set.id.0.clone(), read));
    }
    // A job of this tool within the cooldown that no set listed and no run of this journal
    // accounts for: its set was deleted or renamed, and whom it mailed cannot be told.
    if let Some(m) = &mailings {
        for i in m.of_this_tool() {
            let recent = !i.is_terminal() || i.submit_time.as_deref().is_none_or(|t| t >= since_text.as_str());
            if !recent {
                continue;
            }
            let accounted = match tool_run(&i.name) {
                // Its own run: in this journal, or the maker of a set listed (by its stamp, the
                // run id in a set's name, or — a period set whose stamp cannot be read, already
                // counted above — the period's name).
                Some(run) => {
                    let key = run.run.to_lowercase();
                    known_runs.contains(&key)
                        || listed_runs.contains(&key)
                        || listed_names.iter().any(|n| n.contains(&key))
                        || run.intent.as_ref().is_some_and(|(q, p)| {
                            let base = period_set_name(q, p);
                            unstamped_names.iter().any(|n| number_in(&base, n).is_some())
                        })
                }
                // A job from Alma's UI: on a set listed, or one of this journal's — whose cohort
                // that job mailed, whatever the run did (its set may be deleted since).
                None => {
                    for run in runs
                        .iter()
                        .filter(|r| r.set_id.is_some() && except_run != Some(r.run_id.as_str()))
                    {
                        if !names_set(&i.name, &run.execution.set_name) {
                            continue;
                        }
                        let at = mailed_at(&[i], &now_text);
                        let refused = super::run_files::not_mailed(run);
                        for id in journal.cohort(&run.run_id)? {
                            let key = id.to_lowercase();
                            if refused.contains(&key) {
                                continue;
                            }
                            let recent = Recent {
                                run_id: run.run_id.clone(),
                                query: run.query.clone(),
                                at: at.clone(),
                                source: format!("journal, and a job run from Alma's UI on its set (instance {})", i.id),
                            };
                            keep_latest(&mut cooldown.users, key, recent);
                        }
                    }
                    listed_names.iter().chain(&known_names).any(|n| names_set(&i.name, n))
                }
            };
            if !accounted {
                let what = match tool_run(&i.name) {
                    Some(run) => format!("run {} of another installation", run.run),
                    None => "a job run from Alma's UI on a set of alma-cohort".to_string(),
                };
                return Err(mailed_from_a_gone_set(i, &what, "its set", days));
            }
        }
    }
    cooldown.alma_calls = client.requests_sent() - before;
    Ok(cooldown)
}

/// How long after its creation a set must be listed by Alma's set search (the list shows a new
/// set late).
const LISTING_GRACE_MINUTES: i64 = 15;

/// The set search must see this journal's own sets: a search that misses them misses every
/// installation's, and the cooldown would read nobody. The newest set of this journal that the
/// search did not list is read by its id: Alma holding it, made over [`LISTING_GRACE_MINUTES`]
/// ago by Alma's own clock, under a name with the marker, means the search is blind (exit 3);
/// gone (deleted) or renamed it proves nothing.
async fn search_sees_ours(client: &AlmaClient, runs: &[RunRecord], listed: &[SetInfo]) -> Result<(), Error> {
    let made = |r: &RunRecord| {
        r.steps
            .iter()
            .find(|s| s.step == "set")
            .map(|s| s.finished_at.clone().unwrap_or_else(|| s.started_at.clone()))
            .unwrap_or_else(|| r.started_at.clone())
    };
    let listed_ids: HashSet<&str> = listed.iter().map(|s| s.id.0.as_str()).collect();
    let newest = runs
        .iter()
        .filter(|r| r.set_id.as_deref().is_some_and(|id| !listed_ids.contains(id)))
        .max_by_key(|r| made(r));
    let Some(run) = newest else {
        return Ok(());
    };
    let id = run.set_id.clone().unwrap_or_default();
    let set = match client.get_set(&SetId(id.clone())).await {
        Ok(set) => set,
        // Deleted in Alma: nothing to see.
        Err(e)
            if e.alma_code()
                .is_some_and(|(status, c)| c == "60107" || c == "402264" || status == 404) =>
        {
            return Ok(());
        }
        Err(e) => return Err(e.into()),
    };
    let grace = super::eligibility::alma_now(Some(client)) - chrono::Duration::minutes(LISTING_GRACE_MINUTES);
    let old_enough = set
        .created_date
        .as_deref()
        .and_then(|d| chrono::DateTime::parse_from_rfc3339(d.split(' ').next().unwrap_or(d)).ok())
        .is_some_and(|d| d.with_timezone(&chrono::Utc) < grace);
    if !old_enough || !comparable(&set.name).contains(MARKER) {
        // New (not listed yet), or renamed without the marker: the search is not meant to see it.
        return Ok(());
    }
    Err(Error::Alma(alma_client::Error::List {
        path: format!("/almaws/v1/conf/sets?q=name~{MARKER}"),
        message: format!(
            "does not list set {id} ({:?}, created {}), which run {} of this journal made and Alma holds: a search that cannot see this journal's sets cannot see another installation's either",
            set.name,
            set.created_date.as_deref().unwrap_or("?"),
            run.run_id
        ),
    }))
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
