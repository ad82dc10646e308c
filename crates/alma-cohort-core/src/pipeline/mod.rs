//! The pipeline, step by step as the design lists it: extract → transform → guards → (load →
//! follow, with the load issue). `plan` is the part that makes no write call to Alma.

pub mod approval;
pub mod digest;
pub mod eligibility;
pub mod execute;
pub mod flow;
pub mod ledger;
pub mod mailings;
mod members;
mod payload;
pub mod retention;
pub mod run_files;
pub mod signers;
pub mod state;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use rand::Rng;
use serde::Serialize;

use crate::error::Error;
use crate::journal::Journal;
use crate::output::Output;
use crate::query::{Origin, QuerySpec, ReportSpec};
use crate::transform::{self, Breakdown, Cohort, CohortRules, DropReason};
use alma_client::{AlmaClient, PagingPolicy, Progress, Report, ReportQuery};

/// A new run's id: UTC time and four random hex digits, e.g. `20261125T030101Z-3f2a`. It sorts by
/// time and goes into set names, so it is short and plain.
pub fn new_run_id() -> String {
    let now = chrono::Utc::now();
    format!(
        "{}-{:04x}",
        now.format("%Y%m%dT%H%M%SZ"),
        rand::rng().random_range(0..0x10000u32)
    )
}

/// The report part of a query as the Alma client wants it.
pub fn report_query(report: &ReportSpec) -> ReportQuery {
    ReportQuery {
        path: report.path.clone(),
        limit: report.limit,
        filter: report.filter.clone(),
    }
}

/// What a query's rows were read from.
pub struct Extracted {
    pub report: Report,
    /// Rows per partition, when the report was read in partitions.
    pub partitions: Vec<(String, usize)>,
    /// The list file, when the rows came from one.
    pub file: Option<FileRead>,
}

/// A list file as read: where, its hash, what `plan` says about it.
#[derive(Clone, Debug, Serialize)]
pub struct FileRead {
    pub path: String,
    pub sha256: String,
    pub notes: Vec<String>,
    pub numeric_ids: usize,
}

/// A guard's verdict.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GuardCheck {
    pub guard: &'static str,
    /// `None`: not checked (with the reason in `detail`).
    pub ok: Option<bool>,
    pub detail: String,
    #[serde(skip)]
    pub hint: String,
    /// `plan` only warns; `run --execute` refuses.
    pub execute_only: bool,
}

/// What `plan` found: the report, the cohort, the guards' verdicts, where the cohort was written.
pub struct Plan {
    pub run_id: String,
    pub spec: QuerySpec,
    pub report_rows: usize,
    pub pages: usize,
    pub requests: usize,
    pub headings: Vec<String>,
    pub cohort: Cohort,
    pub guards: Vec<GuardCheck>,
    pub cohort_file: PathBuf,
    /// The users left out for having no email address, with their report columns.
    pub no_email_file: Option<PathBuf>,
    pub previous: Option<Change>,
    /// Rows per partition, when the report was read in partitions.
    pub partitions: Vec<(String, usize)>,
    /// The list file, when the rows came from one.
    pub file: Option<FileRead>,
    /// Who was notified within `[guard] cooldown_days` (left out), and what the lookup cost.
    pub cooldown: ledger::Cooldown,
    /// `recently-reset.csv`: the users left out by the cooldown, with the run that notified them.
    pub recently_reset_file: Option<PathBuf>,
    /// The exclusion files as read (journaled with the run, read again before the job).
    pub exclusions: Vec<ExclusionFile>,
    /// Lines for the plan about how the exclusion files were read.
    pub exclusion_notes: Vec<String>,
    /// The letter that carries the password, as Alma holds it (`None` without Alma).
    pub letter: Option<eligibility::LetterSeen>,
    /// The letter's digest of the query's last completed run, when it differs from this one.
    pub letter_changed_since: Option<String>,
    /// The job, found before anything is written (`None` without Alma).
    pub job: Option<Result<eligibility::JobSeen, String>>,
    /// Who the letter cannot reach, left out of the cohort before the set.
    pub eligibility: eligibility::Checked,
    /// `left-out.csv`, when anyone was left out.
    pub left_out_file: Option<PathBuf>,
}

impl Plan {
    /// The first guard that refuses: for `plan` (`execute` false) the guards that only warn there
    /// are left out; for `run --execute` every one counts.
    pub fn refusal(&self, execute: bool) -> Option<&GuardCheck> {
        self.guards
            .iter()
            .find(|g| g.ok == Some(false) && (execute || !g.execute_only))
    }

    /// The refusal as the error that stops the run (exit 4).
    pub fn refusal_error(&self, execute: bool) -> Option<Error> {
        self.refusal(execute).map(|g| Error::Guard {
            guard: g.guard,
            detail: g.detail.clone(),
            hint: g.hint.clone(),
        })
    }
}

pub use crate::journal::ExclusionFile;

/// The exclusion files' IDs, and each file as read.
#[derive(Clone, Debug, Default)]
pub struct Exclusions {
    pub ids: Vec<String>,
    pub files: Vec<ExclusionFile>,
    /// Lines for the plan: files not in UTF-8.
    pub notes: Vec<String>,
}

/// Reads the exclusion files: one ID per line, `#` comments and blank lines skipped, text as
/// [`crate::text::decode`] reads it. The IDs come back as written (trimmed): the transform
/// normalizes them exactly as it normalizes the cohort's, and compares case-insensitively. A
/// file that is not text, or a line that is not one ID as a list would take it
/// ([`crate::text::id_problem`]: a lookalike protects nobody), is an error naming file and line.
pub fn read_exclusions(files: &[PathBuf]) -> Result<Exclusions, Error> {
    let mut read = Exclusions::default();
    for file in files {
        let before = read.ids.len();
        // IDs added beside the ones the file lists (the ID before a glued `#`).
        let mut extras = 0;
        let at = |line: Option<usize>, message: String| Error::Input {
            path: file.clone(),
            line,
            message,
        };
        let bytes =
            crate::text::read_bytes(file, crate::text::limit::EXCLUSIONS).map_err(|e| at(None, e.to_string()))?;
        let (text, encoding) = crate::text::decode(&bytes).map_err(|m| at(None, m))?;
        for (n, line) in text.split('\n').enumerate() {
            let not_text = |message: String| at(Some(n + 1), message);
            if let Some(col) = crate::text::control_at(line) {
                return Err(not_text(format!(
                    "not a text file (a control character at column {col}); give a list of IDs, one a line"
                )));
            }
            // A BOM starts a file joined to this one (`cat a.txt b.txt`).
            let line = crate::text::strip_bom(line);
            if let Some(what) = crate::text::excel_error(line) {
                return Err(not_text(format!("{:?} {what}; it would protect nobody", line.trim())));
            }
            // `#` starts a comment at the start of a line or after a space; inside an ID it is
            // part of the ID.
            let content = match line
                .char_indices()
                .find(|&(i, c)| c == '#' && (i == 0 || line[..i].ends_with(char::is_whitespace)))
            {
                Some((i, _)) => &line[..i],
                None => line,
            };
            let id = content.trim();
            if id.is_empty() {
                continue;
            }
            if let Some(problem) = crate::text::id_problem(id) {
                return Err(not_text(format!("{id:?} {problem}; it would protect nobody")));
            }
            // Outside ASCII, it protects what it looks like ([`crate::text::lookalike_key`]);
            // letters that look like no plain letter would protect nobody: refused.
            if !id.is_ascii() && !crate::text::lookalike_key(id).is_ascii() {
                return Err(not_text(format!(
                    "{id:?} holds letters outside plain ASCII that look like no plain letter; type the ID as Alma holds it (a protection that matches nobody protects nobody)"
                )));
            }
            read.ids.push(id.to_string());
            // `1235281#boss`: the ID before the `#` is protected too (safe side: a comment typed
            // without its space).
            if let Some((before, _)) = id.split_once('#')
                && !before.trim().is_empty()
            {
                read.ids.push(before.trim().to_string());
                extras += 1;
            }
        }
        if read.ids.len() == before {
            return Err(at(
                None,
                "names no ID (an empty or truncated exclusion file protects nobody); list one protected ID a line"
                    .into(),
            ));
        }
        if !matches!(encoding, crate::text::Encoding::Utf8 | crate::text::Encoding::Utf8Bom) {
            read.notes.push(format!(
                "exclusion file {} read as {}",
                file.display(),
                encoding.describe()
            ));
        }
        read.files.push(ExclusionFile {
            path: std::path::absolute(file)
                .unwrap_or_else(|_| file.clone())
                .display()
                .to_string(),
            sha256: crate::files::sha256_hex(&bytes),
            ids: read.ids.len() - before - extras,
        });
    }
    Ok(read)
}

/// The cohort rules of a query, with its exclusions read.
fn rules<'a>(spec: &'a QuerySpec, exclusions: &'a [String]) -> CohortRules<'a> {
    CohortRules {
        id_column: &spec.cohort.id_column,
        where_sql: spec.cohort.where_sql.as_deref(),
        normalize: &spec.cohort.normalize,
        account_type_column: spec.guard.account_type_column.as_deref(),
        exclusions,
        email_column: spec.guard.email_column.as_deref(),
    }
}

/// Checks a query against a report's headings (for `validate`).
pub fn check_report_headings(spec: &QuerySpec, headings: &[&str]) -> Result<(), Error> {
    transform::check_headings(headings, &rules(spec, &[]))?;
    Ok(())
}

/// Checks what can be checked without Alma: the `where` expression parses, the exclusion files
/// read, the job parameters a run would send pass their checks.
pub fn check_offline(spec: &QuerySpec) -> Result<(), Error> {
    if let Some(sql) = &spec.cohort.where_sql {
        transform::where_columns(sql)?;
    }
    read_exclusions(&spec.cohort.exclude_files)?;
    execute::execution(spec, "check", None)?;
    Ok(())
}

/// Checks a list file offline (for `validate`): readable, with the headings the query names. Its
/// rows and what was read, for the message.
pub fn check_list_file(spec: &QuerySpec, file: &crate::query::FileSpec) -> Result<(usize, Vec<String>), Error> {
    let list = crate::listfile::read(file, &spec.cohort.id_column, spec.cohort.normalize.pad_numeric_to)?;
    check_report_headings(spec, &list.report.headings())?;
    Ok((list.report.rows(), list.notes))
}

/// The period a run was given, normalized ([`ledger::normalize_period`]): refused (exit 2)
/// before the journal or Alma is touched.
pub fn run_period(raw: Option<&str>) -> Result<Option<String>, Error> {
    raw.map(ledger::normalize_period).transpose()
}

/// What a plan asks Alma besides the report, for `run --execute`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// The run's (normalized) period: Alma's sets are searched for the intent's name, and what
    /// this journal does not know refuses the run (exit 4).
    pub period: Option<String>,
    /// `--force`: the period runs again whatever Alma holds, and the cooldown is off.
    pub force: bool,
    /// For `run --execute` (or a plan to save): a letter or job that refuses stops the plan
    /// before the lookups.
    pub execute: bool,
}

/// extract + transform + guards; writes `<state_dir>/runs/<run_id>/cohort.csv`. No write call to
/// Alma, and no call at all for a list file (`client` may then be `None`). With a client, the
/// cooldown also reads Alma's sets of other installations (read-only calls).
pub async fn plan(
    client: Option<&AlmaClient>,
    spec: QuerySpec,
    state_dir: &Path,
    paging: &PagingPolicy,
    progress: &mut (dyn FnMut(Progress) + Send),
    lookups: &mut (dyn FnMut(eligibility::LookupProgress) + Send),
    options: &PlanOptions,
) -> Result<Plan, Error> {
    check_offline(&spec)?;
    let exclusions = read_exclusions(&spec.cohort.exclude_files)?;
    // The rows first: a bad file or report is said before any other call.
    let Extracted {
        report,
        partitions,
        file,
    } = extract(client, &spec, paging, progress).await?;
    let (report_rows, pages, requests) = (report.rows(), report.pages, report.requests);
    let headings: Vec<String> = report.headings().iter().map(|h| h.to_string()).collect();
    let mut cohort = transform::build_cohort(report, &rules(&spec, &exclusions.ids))?;
    // The journal only once the rows are read and checked: a plan refused for its file, its
    // report or its rows creates nothing.
    let journal = Journal::open(state_dir)?;
    // The letter and the job before the ledger and the lookups: a run that cannot send the
    // password stops here, before thousands of calls; the job's instances say when other runs'
    // letters went.
    let preflight = match client {
        Some(client) => {
            let probe = execute::execution(&spec, "check", options.period.as_deref())?;
            let found = eligibility::preflight(client, &probe).await?;
            if let (true, Some(refusal)) = (options.execute, found.refusal()) {
                return Err(refusal);
            }
            Some(found)
        }
        None => None,
    };
    let job = preflight
        .as_ref()
        .and_then(|p| p.job.as_ref().ok())
        .map(|j| alma_client::JobId(j.id.clone()));
    // Alma is the ledger: what another installation (or a lost journal) did for this period is
    // refused here, once the rows are read and checked; asked again right before the set is
    // created.
    if let (Some(period), Some(client)) = (&options.period, client) {
        let base = execute::period_set_base(&spec, period)?;
        ledger::check_intent(
            client,
            &journal,
            &base,
            &spec.name,
            period,
            None,
            options.force,
            job.as_ref(),
        )
        .await?;
    }
    let days = if options.force { 0 } else { spec.guard.cooldown_days };
    // Without a client (a list file's plan makes no call to Alma) the cooldown knows this
    // journal only, and says so.
    let cooldown = ledger::recently_reset(client, &journal, days, None, &HashMap::new(), job.as_ref()).await?;
    let recent: HashSet<String> = cooldown.users.keys().cloned().collect();
    cohort.leave_out_recent(&recent)?;
    let before_lookups = cohort.ids.len();
    let checked = check_eligibility(client, &spec, &cohort, &headings, lookups).await?;
    cohort.leave_out(&eligibility::left_out_ids(&checked.left_out), DropReason::Ineligible)?;
    let previous = match journal.last_completed(&spec.name)? {
        Some(run) => {
            let before: HashSet<String> = journal.cohort(&run.run_id)?.iter().map(|i| i.to_lowercase()).collect();
            let now: HashSet<String> = cohort.ids.iter().map(|i| i.to_lowercase()).collect();
            Some(Change {
                run_id: run.run_id,
                size: before.len(),
                added: now.difference(&before).count(),
                removed: before.difference(&now).count(),
            })
        }
        None => None,
    };
    let letter_changed_since = match (&preflight, journal.last_completed(&spec.name)?) {
        (Some(p), Some(run)) => run
            .execution
            .letter
            .filter(|then| then.digest != p.letter.digest || then.update_date != p.letter.update_date)
            .map(|then| {
                format!(
                    "run {} (digest {}, changed by {} on {})",
                    run.run_id,
                    &then.digest.chars().take(12).collect::<String>(),
                    p.letter.updated_by,
                    p.letter.update_date
                )
            }),
        _ => None,
    };
    let mut guards = guards(&spec, &cohort, previous.as_ref(), report_rows, &partitions);
    if let Some(p) = &preflight {
        guards.extend(p.guards());
    }
    if let Some(g) = not_in_alma_guard(&spec, &checked, before_lookups) {
        guards.push(g);
    }
    if !checked.rules.lookup && !checked.rules.staff_include && spec.eligibility.columns.staff.is_none() {
        guards.push(GuardCheck {
            guard: "staff_rule",
            ok: None,
            detail: "NOT CHECKED: without lookups the report must say who has a role other than Patron, and the query maps no [eligibility] staff_column: staff accounts in the cohort would be reset".into(),
            hint: String::new(),
            execute_only: false,
        });
    }
    let run_id = new_run_id();
    let folder = state_dir.join("runs").join(&run_id);
    crate::files::create_dir(&folder).map_err(|source| Error::Output {
        path: folder.clone(),
        source,
    })?;
    let cohort_file = folder.join("cohort.csv");
    // Review files are opened in spreadsheets: a cell that would run as a formula is text there.
    Output::Csv(cohort_file.clone()).write(&mut cohort.table.for_spreadsheets()?)?;
    let no_email_file = match cohort.no_email.as_mut() {
        Some(table) => {
            let file = folder.join("no-email.csv");
            Output::Csv(file.clone()).write(&mut table.for_spreadsheets()?)?;
            Some(file)
        }
        None => None,
    };
    let recently_reset_file = if cohort.recently_reset_ids.is_empty() {
        None
    } else {
        let file = folder.join("recently-reset.csv");
        write_recently_reset(&file, &cohort.recently_reset_ids, &cooldown)?;
        Some(file)
    };
    let left_out_file = if checked.left_out.is_empty() {
        None
    } else {
        let file = folder.join(run_files::LEFT_OUT_FILE);
        eligibility::write_left_out(&file, &checked.left_out)?;
        Some(file)
    };
    let (letter, job) = match preflight {
        Some(p) => (Some(p.letter), Some(p.job)),
        None => (None, None),
    };
    Ok(Plan {
        letter,
        letter_changed_since,
        job,
        eligibility: checked,
        left_out_file,
        exclusions: exclusions.files,
        exclusion_notes: exclusions.notes,
        cooldown,
        recently_reset_file,
        run_id,
        report_rows,
        pages,
        requests,
        headings,
        spec,
        cohort,
        guards,
        cohort_file,
        no_email_file,
        previous,
        partitions,
        file,
    })
}

/// The eligibility stage of a plan: live lookups in Alma, or the report's columns when the query
/// turns them off, or nothing (said so) for a list file's plan without Alma.
async fn check_eligibility(
    client: Option<&AlmaClient>,
    spec: &QuerySpec,
    cohort: &Cohort,
    headings: &[String],
    lookups: &mut (dyn FnMut(eligibility::LookupProgress) + Send),
) -> Result<eligibility::Checked, Error> {
    let rules = eligibility::Rules::of(&spec.eligibility);
    if !rules.lookup {
        let wanted = eligibility::report_headings(&spec.eligibility.columns);
        let keys = [
            "account_type_column",
            "status_column",
            "expiry_column",
            "email_column",
            "staff_column",
        ];
        for (key, heading) in keys.iter().zip(&wanted) {
            if let Some(h) = heading
                && !headings.iter().any(|x| x == h)
            {
                return Err(Error::Usage(format!(
                    "{}: [eligibility] {key} = {h:?} is not a heading of {}; its headings: {}",
                    spec.file.display(),
                    spec.origin_label(),
                    headings.join(", ")
                )));
            }
        }
        let present: Vec<&str> = wanted.iter().flatten().copied().collect();
        let staff_mapped = wanted[4].is_some();
        let read = cohort.cells(&present)?;
        // Back to the five places `from_report` reads, a column not mapped as empty.
        let rows: Vec<Vec<Option<String>>> = read
            .into_iter()
            .map(|row| {
                let mut it = row.into_iter();
                wanted.iter().map(|h| h.and_then(|_| it.next().flatten())).collect()
            })
            .collect();
        return Ok(eligibility::from_report(
            &cohort.ids,
            &rows,
            &rules,
            eligibility::today(client),
            staff_mapped,
        ));
    }
    let Some(client) = client else {
        return Ok(eligibility::not_checked(&rules, "none"));
    };
    // A cohort the max_members guard refuses anyway is not looked up: a report gone wrong would
    // cost a call per row, and the institution's daily quota with it.
    if cohort.ids.len() > spec.guard.max_members {
        return Ok(eligibility::not_checked(&rules, "skipped"));
    }
    // Nor one the daily quota left cannot cover (with a margin for the run's other calls).
    eligibility::check_quota(client, cohort.ids.len())?;
    eligibility::look_up(client, &cohort.ids, &rules, lookups).await
}

/// Alma knows no user by more of the cohort than `[guard] max_refused_ratio` allows: the cohort
/// may not be the one meant (lost zeros, another identifier type). Found before the set now.
fn not_in_alma_guard(spec: &QuerySpec, checked: &eligibility::Checked, cohort: usize) -> Option<GuardCheck> {
    let (unknown, share) = eligibility::not_in_alma(&checked.left_out, cohort)?;
    let max = spec.guard.max_refused_ratio;
    Some(GuardCheck {
        guard: "not_in_alma",
        ok: Some(share <= max),
        detail: format!(
            "Alma knows no user by {unknown} of the cohort's {cohort} IDs ({:.1}%; [guard] max_refused_ratio {max}): they are left out; the usual causes are leading zeros lost in Excel, IDs of another identifier type than the primary ID, or purged users",
            share * 100.0
        ),
        hint: format!(
            "look the IDs in {} up in Alma; if the cohort is right without them, raise [guard] max_refused_ratio in {}; otherwise fix the list or the query ([cohort.normalize] pad_numeric_to) and plan again",
            run_files::LEFT_OUT_FILE,
            spec.file.display()
        ),
        execute_only: true,
    })
}

/// `recently-reset.csv`: each user the cooldown left out, with the run that notified them.
fn write_recently_reset(file: &Path, ids: &[String], cooldown: &ledger::Cooldown) -> Result<(), Error> {
    let out = |source: std::io::Error| Error::Output {
        path: file.to_path_buf(),
        source,
    };
    let handle = crate::files::create(file).map_err(out)?;
    let mut w = csv::Writer::from_writer(handle);
    let row = |w: &mut csv::Writer<std::fs::File>, r: [&str; 5]| w.write_record(r).map_err(|e| out(e.into()));
    row(&mut w, ["primary_id", "run_id", "query", "notified_at", "source"])?;
    for id in ids {
        match cooldown.users.get(&id.to_lowercase()) {
            Some(r) => row(
                &mut w,
                [
                    &crate::text::spreadsheet_safe(id),
                    &r.run_id,
                    &r.query,
                    &r.at,
                    &r.source,
                ],
            )?,
            None => row(&mut w, [&crate::text::spreadsheet_safe(id), "", "", "", ""])?,
        }
    }
    w.flush().map_err(out)
}

/// Reads the query's rows: from its list file (no Alma call at all), or its report in one go, or
/// — with `[[report.partitions]]` — each partition concurrently under the client's shared pace,
/// then concatenated in the order given. An ID in two partitions means they were not disjoint:
/// an error.
pub async fn extract(
    client: Option<&AlmaClient>,
    spec: &QuerySpec,
    paging: &PagingPolicy,
    progress: &mut (dyn FnMut(Progress) + Send),
) -> Result<Extracted, Error> {
    let report_spec = match &spec.origin {
        Origin::File(file) => {
            let list = crate::listfile::read(file, &spec.cohort.id_column, spec.cohort.normalize.pad_numeric_to)?;
            return Ok(Extracted {
                report: list.report,
                partitions: Vec::new(),
                file: Some(FileRead {
                    path: file.path.display().to_string(),
                    sha256: list.sha256,
                    notes: list.notes,
                    numeric_ids: list.numeric_ids,
                }),
            });
        }
        Origin::Report(r) => r,
    };
    let client = client.ok_or_else(|| {
        Error::Usage(format!(
            "reading the report {} needs Alma: give --base-url (or --region) and an API key",
            report_spec.path
        ))
    })?;
    if report_spec.partitions.is_empty() {
        return Ok(Extracted {
            report: client
                .fetch_report(&report_query(report_spec), paging, progress)
                .await?,
            partitions: Vec::new(),
            file: None,
        });
    }
    let shared = std::sync::Mutex::new((progress, vec![(0usize, 0usize); report_spec.partitions.len()]));
    let shared = &shared;
    let reads = report_spec.partitions.iter().enumerate().map(|(i, part)| async move {
        let query = ReportQuery {
            path: report_spec.path.clone(),
            limit: report_spec.limit,
            filter: Some(part.filter.clone()),
        };
        let mut on_page = |p: Progress| {
            let mut guard = shared.lock().unwrap_or_else(|e| e.into_inner());
            guard.1[i] = (p.pages, p.rows);
            let (pages, rows) = guard.1.iter().fold((0, 0), |acc, x| (acc.0 + x.0, acc.1 + x.1));
            (guard.0)(Progress {
                pages,
                rows,
                elapsed: p.elapsed,
            });
        };
        client
            .fetch_report(&query, paging, &mut on_page)
            .await
            .map(|r| (part.name.clone(), r))
    });
    let parts = futures_util::future::try_join_all(reads).await?;
    check_disjoint(&parts, &spec.cohort.id_column).map_err(|message| {
        Error::Usage(format!(
            "{message}: the partitions of {} are not disjoint; fix their filters",
            spec.file.display()
        ))
    })?;
    let counts: Vec<(String, usize)> = parts.iter().map(|(n, r)| (n.clone(), r.rows())).collect();
    let mut parts = parts.into_iter();
    let (_, mut report) = parts.next().ok_or_else(|| Error::Usage("no partitions".into()))?;
    for (name, part) in parts {
        report
            .rowset
            .append(&part.rowset)
            .map_err(|message| alma_client::Error::Report {
                path: report_spec.path.clone(),
                message: format!("partition {name:?}: {message}"),
            })?;
        report.pages += part.pages;
        report.requests += part.requests;
    }
    Ok(Extracted {
        report,
        partitions: counts,
        file: None,
    })
}

/// An ID (compared as Alma does, trimmed and case-insensitively) in two partitions: which one,
/// and where. A repeat within one partition is the report's own (joins repeat rows) and fine.
fn check_disjoint(parts: &[(String, Report)], id_column: &str) -> Result<(), String> {
    let mut seen: HashMap<String, &str> = HashMap::new();
    for (name, report) in parts {
        let Some(col) = report.rowset.columns.iter().find(|c| c.heading == id_column) else {
            continue;
        };
        for id in col.cells.iter().flatten() {
            let id = id.trim();
            if id.is_empty() {
                continue;
            }
            if let Some(other) = seen.insert(id.to_lowercase(), name.as_str())
                && other != name
            {
                return Err(format!("the ID {id:?} is in partitions {other:?} and {name:?}"));
            }
        }
    }
    Ok(())
}

/// The cohort against the last completed run of the same query.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Change {
    pub run_id: String,
    pub size: usize,
    pub added: usize,
    pub removed: usize,
}

/// A report that ends at exactly this many rows may have been cut off by Alma (alma-api.md §8b:
/// one source claims the Analytics API returns at most 500 000 rows).
pub const ROW_CEILING: usize = 500_000;

/// What ended at exactly [`ROW_CEILING`] rows: the report, or each partition on its own.
fn at_row_ceiling(report_rows: usize, partitions: &[(String, usize)]) -> Vec<String> {
    if partitions.is_empty() {
        (report_rows == ROW_CEILING)
            .then(|| "the report".to_string())
            .into_iter()
            .collect()
    } else {
        partitions
            .iter()
            .filter(|(_, n)| *n == ROW_CEILING)
            .map(|(name, _)| format!("partition {name:?}"))
            .collect()
    }
}

fn guards(
    spec: &QuerySpec,
    cohort: &Cohort,
    previous: Option<&Change>,
    report_rows: usize,
    partitions: &[(String, usize)],
) -> Vec<GuardCheck> {
    let size = cohort.ids.len();
    let max = spec.guard.max_members;
    let file = spec.file.display();
    // A list file is not a report: the words say which the rows came from.
    let (rows_in, source) = match spec.report() {
        Some(_) => ("rows in the report", "the report, its filter and the where expression"),
        None => (
            "rows in the list file",
            "the list file, the exclusion files and the where expression",
        ),
    };
    let check = |guard: &'static str, ok: Option<bool>, detail: String, hint: String| GuardCheck {
        guard,
        ok,
        detail,
        hint,
        execute_only: false,
    };
    let dropped: Vec<String> = cohort
        .dropped
        .iter()
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| format!("{n} {}", r.describe()))
        .collect();
    let mut checks = vec![
        check(
            "non_empty",
            Some(size > 0),
            if size > 0 {
                format!("the cohort has {size} members")
            } else {
                format!(
                    "the cohort is empty: {report_rows} {rows_in}{}",
                    if dropped.is_empty() {
                        String::new()
                    } else {
                        format!(", dropped: {}", dropped.join(", "))
                    }
                )
            },
            format!("check {source} in {file}: a reset with no one in it is never run"),
        ),
        check(
            "max_members",
            Some(size <= max),
            format!("the cohort has {size} members; the query allows at most {max}"),
            format!(
                "if {size} is right, raise [guard] max_members in {file}; otherwise narrow the report, its filter or where"
            ),
        ),
    ];
    let not_checked = |guard: &'static str| {
        check(
            guard,
            None,
            "not checked: no completed run of this query is on record yet".into(),
            String::new(),
        )
    };
    if let Some(factor) = spec.guard.max_growth {
        checks.push(match previous {
            None => not_checked("max_growth"),
            Some(p) => {
                let limit = (p.size as f64 * factor).floor() as usize;
                check(
                    "max_growth",
                    Some(size <= limit.max(1)),
                    format!(
                        "the cohort has {size} members; the last completed run ({}) had {}, and the query allows {factor}× that ({limit})",
                        p.run_id, p.size
                    ),
                    format!("if the growth is expected, raise [guard] max_growth in {file}; otherwise check the report and its filter"),
                )
            }
        });
    }
    if let Some(ratio) = spec.guard.min_ratio {
        checks.push(match previous {
            None => not_checked("min_ratio"),
            Some(p) => {
                let floor = (p.size as f64 * ratio).ceil() as usize;
                check(
                    "min_ratio",
                    Some(size >= floor),
                    format!(
                        "the cohort has {size} members; the last completed run ({}) had {}, and the query wants at least {ratio}× that ({floor})",
                        p.run_id, p.size
                    ),
                    format!(
                        "a report cut short (a timeout, a changed filter) shrinks the cohort silently: check the report; if the drop is expected, lower [guard] min_ratio in {file}"
                    ),
                )
            }
        });
    }
    // A list file has no API ceiling.
    let at_ceiling = match spec.report() {
        Some(_) => at_row_ceiling(report_rows, partitions),
        None => Vec::new(),
    };
    if !at_ceiling.is_empty() {
        checks.push(GuardCheck {
            execute_only: true,
            ..check(
                "row_ceiling",
                Some(false),
                format!(
                    "{} ended at exactly {ROW_CEILING} rows, a ceiling the Analytics API is said to have: rows past it may be missing",
                    at_ceiling.join(", ")
                ),
                format!(
                    "split the report into [[report.partitions]] in {file} so that each stays well under {ROW_CEILING} rows (queries/README.md, \"`[[report.partitions]]` — reading a large report in slices at once\")"
                ),
            )
        });
    }
    checks
}

/// The plan as JSON (`--json`).
#[derive(Serialize)]
pub struct PlanJson<'a> {
    pub run_id: &'a str,
    pub query: &'a str,
    pub query_file: String,
    pub report: ReportJson<'a>,
    pub cohort_size: usize,
    pub dropped: Vec<DroppedJson>,
    pub breakdown: &'a [Breakdown],
    pub sample_ids: &'a [String],
    pub guards: &'a [GuardCheck],
    pub previous_run: Option<&'a Change>,
    /// The list file the rows came from (instead of a report).
    pub file: Option<&'a FileRead>,
    pub cohort_file: String,
    /// Users left out for having no email address: they keep their current password.
    pub no_email_ids: &'a [String],
    pub no_email_file: Option<String>,
    /// Users left out for having been notified within the cooldown.
    pub recently_reset: RecentJson<'a>,
    /// The exclusion files as read (path, sha256, IDs), journaled with a run.
    pub exclusions: &'a [ExclusionFile],
    pub exclusion_notes: &'a [String],
    /// Each member left out, with its reason (the eligibility rules, the cooldown).
    pub left_out: Vec<eligibility::LeftOut>,
    pub left_out_file: Option<String>,
    /// Left out per reason.
    pub left_out_counts: BTreeMap<&'static str, usize>,
    pub eligibility: EligibilityJson<'a>,
    /// The letter that carries the password, as Alma holds it now.
    pub letter: Option<&'a eligibility::LetterSeen>,
    pub letter_changed_since: Option<&'a str>,
    pub job: Option<JobJson<'a>>,
    pub writes_to_alma: bool,
}

#[derive(Serialize)]
pub struct EligibilityJson<'a> {
    pub source: &'a str,
    pub rules: &'a eligibility::Rules,
    pub rules_text: String,
    pub checked_at: Option<&'a str>,
    pub looked_up: usize,
    pub calls: u64,
    pub seconds: f64,
}

#[derive(Serialize)]
pub struct JobJson<'a> {
    pub found: bool,
    pub id: Option<&'a str>,
    pub detail: String,
}

#[derive(Serialize)]
pub struct RecentJson<'a> {
    pub cooldown_days: u32,
    pub count: usize,
    pub ids: &'a [String],
    pub file: Option<String>,
    #[serde(flatten)]
    pub lookup: &'a ledger::Cooldown,
}

#[derive(Serialize)]
pub struct ReportJson<'a> {
    /// The report's path, or the list file's.
    pub path: String,
    pub rows: usize,
    pub pages: usize,
    pub requests: usize,
    pub headings: &'a [String],
    pub partitions: &'a [(String, usize)],
}

#[derive(Serialize)]
pub struct DroppedJson {
    pub reason: DropReason,
    pub description: &'static str,
    pub rows: usize,
}

impl Plan {
    /// What the cooldown did, in one line.
    pub fn cooldown_line(&self) -> String {
        let c = &self.cooldown;
        if c.days == 0 {
            return "Cooldown off ([guard] cooldown_days = 0, or --force): users notified recently are not left out"
                .into();
        }
        let n = self.cohort.recently_reset_ids.len();
        let left = match &self.recently_reset_file {
            Some(f) if n > 0 => format!(
                "{n} users notified by a run within them are left out (list: {})",
                f.display()
            ),
            _ => "no one in the cohort was notified by a run within them".into(),
        };
        let alma = if c.alma_checked && c.alma_instances_checked {
            format!(
                "; Alma's sets and the job's runs searched ({} calls, {} sets of other installations read)",
                c.alma_calls,
                c.alma_sets_read.len()
            )
        } else if c.alma_checked {
            format!(
                "; Alma's sets searched ({} calls, {} sets of other installations read; the job was not found, so each of their sets counts as mailing now)",
                c.alma_calls,
                c.alma_sets_read.len()
            )
        } else {
            "; this journal only (no call to Alma for a list file's plan)".into()
        };
        format!("Cooldown {} days: {left}{alma}", c.days)
    }
}

/// How many sample IDs a summary shows.
pub const SAMPLE: usize = 10;

impl Plan {
    pub fn to_json(&self) -> PlanJson<'_> {
        PlanJson {
            run_id: &self.run_id,
            query: &self.spec.name,
            query_file: self.spec.file.display().to_string(),
            report: ReportJson {
                path: self.spec.origin_label(),
                rows: self.report_rows,
                pages: self.pages,
                requests: self.requests,
                headings: &self.headings,
                partitions: &self.partitions,
            },
            cohort_size: self.cohort.ids.len(),
            dropped: self
                .cohort
                .dropped
                .iter()
                .map(|(r, n)| DroppedJson {
                    reason: *r,
                    description: r.describe(),
                    rows: *n,
                })
                .collect(),
            breakdown: &self.cohort.breakdown,
            sample_ids: &self.cohort.ids[..self.cohort.ids.len().min(SAMPLE)],
            guards: &self.guards,
            previous_run: self.previous.as_ref(),
            file: self.file.as_ref(),
            cohort_file: self.cohort_file.display().to_string(),
            no_email_ids: &self.cohort.no_email_ids,
            no_email_file: self.no_email_file.as_ref().map(|f| f.display().to_string()),
            recently_reset: RecentJson {
                cooldown_days: self.cooldown.days,
                count: self.cohort.recently_reset_ids.len(),
                ids: &self.cohort.recently_reset_ids,
                file: self.recently_reset_file.as_ref().map(|f| f.display().to_string()),
                lookup: &self.cooldown,
            },
            exclusions: &self.exclusions,
            exclusion_notes: &self.exclusion_notes,
            left_out: self.left_out(),
            left_out_file: self.left_out_file.as_ref().map(|f| f.display().to_string()),
            left_out_counts: self.left_out().iter().fold(BTreeMap::new(), |mut m, l| {
                *m.entry(l.reason.as_str()).or_insert(0) += 1;
                m
            }),
            eligibility: EligibilityJson {
                source: &self.eligibility.source,
                rules: &self.eligibility.rules,
                rules_text: self.eligibility.rules.describe(),
                checked_at: self.eligibility.checked_at.as_deref(),
                looked_up: self.eligibility.looked_up,
                calls: self.eligibility.calls,
                seconds: self.eligibility.seconds,
            },
            letter: self.letter.as_ref(),
            letter_changed_since: self.letter_changed_since.as_deref(),
            job: self.job.as_ref().map(|j| match j {
                Ok(j) => JobJson {
                    found: true,
                    id: Some(&j.id),
                    detail: format!("found by {}", j.found_by),
                },
                Err(p) => JobJson {
                    found: false,
                    id: None,
                    detail: p.clone(),
                },
            }),
            writes_to_alma: false,
        }
    }

    /// Each member left out, with its reason: the eligibility rules, then the cooldown.
    pub fn left_out(&self) -> Vec<eligibility::LeftOut> {
        let mut all = self.eligibility.left_out.clone();
        all.extend(self.cohort.recently_reset_ids.iter().map(|id| eligibility::LeftOut {
            id: id.clone(),
            reason: eligibility::Reason::RecentlyReset,
            alma_said: match self.cooldown.users.get(&id.to_lowercase()) {
                Some(r) => format!("notified by run {} ({}) at {}", r.run_id, r.query, r.at),
                None => "notified within the cooldown".into(),
            },
            since_plan: false,
        }));
        all
    }

    /// The summary a librarian checks at a glance.
    pub fn summary(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "Plan for {:?} ({}) · run {}",
            self.spec.name,
            self.spec.file.display(),
            self.run_id
        );
        match &self.file {
            None => {
                let _ = writeln!(s, "Report   {}", self.spec.origin_label());
                let _ = writeln!(
                    s,
                    "{:<44}{:>9}   ({} pages, {} requests)",
                    "  rows in the report", self.report_rows, self.pages, self.requests
                );
            }
            Some(f) => {
                let _ = writeln!(s, "File     {} (sha256 {})", f.path, &f.sha256[..12]);
                for note in &f.notes {
                    let _ = writeln!(s, "  {note}");
                }
                let _ = writeln!(
                    s,
                    "{:<44}{:>9}   (no call to Alma)",
                    "  rows in the file", self.report_rows
                );
            }
        }
        for (name, rows) in &self.partitions {
            let _ = writeln!(s, "{:<44}{:>9}", format!("    partition {name}"), rows);
        }
        for note in &self.exclusion_notes {
            let _ = writeln!(s, "  {note}");
        }
        for (reason, n) in &self.cohort.dropped {
            let _ = writeln!(s, "{:<44}{:>9}", format!("  dropped: {}", reason.describe()), n);
        }
        let _ = writeln!(s, "{:<44}{:>9}", "Cohort", self.cohort.ids.len());
        for b in &self.cohort.breakdown {
            let parts: Vec<String> = b
                .counts
                .iter()
                .map(|(v, n)| format!("{} {n}", v.as_deref().unwrap_or("(empty)")))
                .collect();
            let _ = writeln!(s, "  by {}: {}", b.column, parts.join(" · "));
        }
        let sample = &self.cohort.ids[..self.cohort.ids.len().min(SAMPLE)];
        let _ = writeln!(
            s,
            "  sample IDs: {}",
            if sample.is_empty() {
                "(none)".to_string()
            } else {
                sample.join(", ")
            }
        );
        if let Some(file) = &self.no_email_file {
            let n = self.cohort.no_email_ids.len();
            if n > 0 {
                let _ = writeln!(
                    s,
                    "  {n} users have no email address: they are left out and keep their current password (list: {})",
                    file.display()
                );
            }
        }
        let _ = writeln!(s, "{}", self.cooldown_line());
        for line in self.eligibility.lines() {
            let _ = writeln!(s, "{line}");
        }
        if let Some(file) = &self.left_out_file {
            let _ = writeln!(
                s,
                "  {} left out by name, with what Alma said: {}",
                self.eligibility.left_out.len(),
                file.display()
            );
        }
        match &self.letter {
            Some(letter) => {
                let _ = writeln!(s, "Letter   {}", letter.line());
                if let Some(then) = &self.letter_changed_since {
                    let _ = writeln!(s, "  CHANGED since the last completed run of this query: {then}");
                }
            }
            None => {
                let _ = writeln!(
                    s,
                    "Letter   not checked (a list file's plan makes no call to Alma); plan --save and run --execute check it before anything is written"
                );
            }
        }
        for g in &self.guards {
            let verdict = match g.ok {
                Some(true) => "ok",
                Some(false) if g.execute_only => "WARNING (run --execute refuses)",
                Some(false) => "REFUSED",
                None => "note",
            };
            let _ = writeln!(s, "Guard {:<12} {verdict}: {}", g.guard, g.detail);
        }
        let _ = match &self.previous {
            Some(p) => writeln!(
                s,
                "Change since the last completed run ({}, {} members): {} added, {} removed",
                p.run_id, p.size, p.added, p.removed
            ),
            None => writeln!(
                s,
                "Change since the last completed run: no completed run of this query on record yet"
            ),
        };
        let _ = writeln!(s, "Cohort written to {}", self.cohort_file.display());
        let _ = write!(s, "Nothing was changed in Alma.");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_or_partition_ending_at_the_ceiling_is_flagged() {
        assert!(at_row_ceiling(499_999, &[]).is_empty());
        assert_eq!(at_row_ceiling(ROW_CEILING, &[]), ["the report"]);
        let parts = [("a".to_string(), ROW_CEILING), ("b".to_string(), 12)];
        assert_eq!(at_row_ceiling(ROW_CEILING + 12, &parts), ["partition \"a\""]);
        assert!(at_row_ceiling(ROW_CEILING, &[("a".into(), 250_000), ("b".into(), 250_000)]).is_empty());
    }

    #[test]
    fn run_ids_sort_by_time_and_are_plain() {
        let id = new_run_id();
        assert_eq!(id.len(), "20261125T030101Z-3f2a".len());
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'));
    }

    #[test]
    fn partitions_must_not_share_an_id_in_any_case() {
        use alma_client::rowset::{Column, ColumnBuffer, ColumnKind, Rowset};
        let part = |name: &str, ids: &[&str]| {
            let mut cells = ColumnBuffer::default();
            ids.iter().for_each(|id| cells.push(id));
            cells.push_null();
            let rowset = Rowset::from_columns(vec![Column {
                name: "Column1".into(),
                heading: "Primary Identifier".into(),
                kind: ColumnKind::Text,
                cells,
            }])
            .unwrap();
            let report = Report {
                path: "/r".into(),
                rowset,
                pages: 1,
                requests: 1,
                restarts: 0,
            };
            (name.to_string(), report)
        };
        let check = |parts: &[(String, Report)]| check_disjoint(parts, "Primary Identifier");
        // Repeats inside one partition, empty IDs and nulls are no overlap.
        let a = part("a", &["0012345", "AB12", "ab12", " ", ""]);
        assert_eq!(check(&[a.clone(), part("b", &["0012346", "Ab13"])]), Ok(()));
        let e = check(&[a.clone(), part("b", &["x1", " aB12 "])]).unwrap_err();
        assert_eq!(e, r#"the ID "aB12" is in partitions "a" and "b""#);
        let e = check(&[part("a", &["ÉCOLE1"]), part("b", &["école1"])]).unwrap_err();
        assert!(e.contains(r#""école1""#), "{e}");
        assert_eq!(
            check(&[a, part("b", &["0012345"])]).unwrap_err(),
            r#"the ID "0012345" is in partitions "a" and "b""#
        );
    }

    #[test]
    fn exclusion_files_skip_comments_and_refuse_bad_bytes() {
        let dir = std::env::temp_dir().join(format!("excl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("good.txt");
        std::fs::write(
            &good,
            "\u{feff}500006\r\n# protected staff\n0012345\n  AB12  # the dean\n\n'0099\n",
        )
        .unwrap();
        // As written (trimmed, BOM gone); the transform normalizes them like the cohort's IDs.
        let read = read_exclusions(&[good]).unwrap();
        assert_eq!(read.ids, ["500006", "0012345", "AB12", "'0099"]);
        assert_eq!((read.files.len(), read.files[0].ids, read.notes.len()), (1, 4, 0));
        let binary = dir.join("binary.txt");
        std::fs::write(&binary, b"0012345\n\x00\x01\x02PK\n").unwrap();
        let e = read_exclusions(&[binary]).unwrap_err().to_string();
        assert!(e.contains("binary.txt:2") && e.contains("not a text file"), "{e}");
        let bad = dir.join("bad.txt");
        std::fs::write(&bad, "ok\n0012\u{200b}345\n").unwrap();
        let e = read_exclusions(std::slice::from_ref(&bad)).unwrap_err().to_string();
        assert!(e.contains("bad.txt:2") && e.contains("invisible"), "{e}");
        std::fs::write(&bad, "ok\n\u{412}ROWN01\n").unwrap();
        let e = read_exclusions(std::slice::from_ref(&bad)).unwrap_err().to_string();
        assert!(
            e.contains("bad.txt:2") && e.contains("Cyrillic and Latin") && e.contains("protect nobody"),
            "{e}"
        );
        // Notepad's "Unicode": UTF-16 LE with its mark, said in the plan.
        let utf16: Vec<u8> = b"\xff\xfe"
            .iter()
            .copied()
            .chain("0012345\r\n".encode_utf16().flat_map(u16::to_le_bytes))
            .collect();
        std::fs::write(&bad, utf16).unwrap();
        let read = read_exclusions(&[bad]).unwrap();
        assert_eq!(read.ids, ["0012345"]);
        assert!(read.notes[0].contains("UTF-16 LE"), "{:?}", read.notes);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
