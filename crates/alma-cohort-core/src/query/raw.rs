//! The query file as written: serde structures that refuse unknown keys, and their validation
//! into a [`QuerySpec`](super::QuerySpec).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::placeholders::{Escape, FillError, fill, names};
use super::{
    CohortSpec, DEFAULT_ELIGIBILITY_MAX_AGE_HOURS, DEFAULT_LETTER, DEFAULT_NOTIFICATION, EligibilityColumns,
    EligibilitySpec, Error, FileFormat, FileSpec, GuardSpec, JobSpec, Normalize, Origin, Params, QuerySpec, ReportSpec,
    SetSpec,
};

pub const DEFAULT_SET_NAME: &str = "User Password Reset {query} {period}";
/// Users notified by any run within this many days are left out of a new one (`[guard] cooldown_days`).
pub const DEFAULT_COOLDOWN_DAYS: u32 = 7;
/// The share of the cohort Alma may refuse (IDs it does not know) before the run stops ahead of
/// the job (`[guard] max_refused_ratio`).
pub const DEFAULT_MAX_REFUSED_RATIO: f64 = 0.01;
/// How long a saved plan can be applied (`[approval] max_age_hours`).
pub const DEFAULT_MAX_PLAN_AGE_HOURS: f64 = 72.0;
pub const DEFAULT_SET_DESCRIPTION: &str = "Created by alma-cohort run {run_id}";
pub const DEFAULT_JOB_NAME: &str = "Update/Notify Users";
/// The placeholders a set name or description may use; the pipeline fills them.
pub const SET_PLACEHOLDERS: &[&str] = &["query", "period", "date", "run_id"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueryFile {
    name: String,
    #[serde(default)]
    description: String,
    report: Option<Report>,
    file: Option<FileRaw>,
    cohort: Cohort,
    #[serde(default)]
    set: Set,
    #[serde(default)]
    job: Job,
    guard: Guard,
    #[serde(default)]
    approval: ApprovalRaw,
    #[serde(default)]
    eligibility: EligibilityRaw,
}

/// `[eligibility]`: who may be reset, checked live in Alma before the set is made.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EligibilityRaw {
    lookup: Option<bool>,
    staff: Option<String>,
    require_email: Option<bool>,
    max_age_hours: Option<f64>,
    account_type_column: Option<String>,
    status_column: Option<String>,
    expiry_column: Option<String>,
    email_column: Option<String>,
    staff_column: Option<String>,
}

/// `[approval]`: whether a reviewed, approved saved plan is required before the run.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalRaw {
    required: Option<i64>,
    approver_not_planner: Option<bool>,
    max_age_hours: Option<f64>,
    allow_as: Option<bool>,
    allowed_signers: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Report {
    path: String,
    #[serde(default = "default_limit")]
    limit: i64,
    filter: Option<PathBuf>,
    #[serde(default)]
    partitions: Vec<PartitionRaw>,
}

/// `[file]`: a list of IDs instead of a report (the manual workflow's options A and B).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    path: PathBuf,
    sheet: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PartitionRaw {
    name: String,
    filter: PathBuf,
}

fn default_limit() -> i64 {
    1000
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cohort {
    id_column: String,
    #[serde(rename = "where")]
    where_sql: Option<String>,
    #[serde(default)]
    exclude_files: Vec<PathBuf>,
    #[serde(default)]
    normalize: NormalizeRaw,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NormalizeRaw {
    #[serde(default = "yes")]
    trim: bool,
    #[serde(default = "yes")]
    strip_apostrophe: bool,
    pad_numeric_to: Option<i64>,
    #[serde(default = "preserve")]
    case: String,
}

impl Default for NormalizeRaw {
    fn default() -> Self {
        Self {
            trim: true,
            strip_apostrophe: true,
            pad_numeric_to: None,
            case: preserve(),
        }
    }
}

fn yes() -> bool {
    true
}

fn preserve() -> String {
    "preserve".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Set {
    name: Option<String>,
    description: Option<String>,
    #[serde(default)]
    private: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Job {
    name: Option<String>,
    id: Option<String>,
    notification: Option<String>,
    letter: Option<String>,
    #[serde(default)]
    parameters: BTreeMap<String, toml::Value>,
    payload_file: Option<PathBuf>,
    allow_user_updates: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Guard {
    max_members: i64,
    max_growth: Option<f64>,
    account_type_column: Option<String>,
    email_column: Option<String>,
    min_ratio: Option<f64>,
    cooldown_days: Option<i64>,
    max_refused_ratio: Option<f64>,
}

impl QueryFile {
    pub fn validate(self, file: &Path, source: String, params: &Params) -> Result<QuerySpec, Error> {
        // The placeholders the query's texts name, for the check of the --param given.
        let used: std::cell::RefCell<Vec<String>> = std::cell::RefCell::new(Vec::new());
        let invalid = |key: &str, problem: String, hint: &str| Error::Invalid {
            path: file.to_path_buf(),
            key: key.to_string(),
            problem,
            hint: hint.to_string(),
        };
        let folder = file.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                folder.join(p)
            }
        };
        let fill_error = |what: &'static str, e: FillError| match e {
            FillError::Missing(name) => Error::MissingParam {
                path: file.to_path_buf(),
                what,
                name,
            },
            FillError::Unbalanced(at) => Error::Placeholder {
                path: file.to_path_buf(),
                what,
                message: format!("unbalanced brace at character {at}; write {{{{ or }}}} for a literal brace"),
            },
            FillError::BadName(n) => Error::Placeholder {
                path: file.to_path_buf(),
                what,
                message: format!("{{{n}}} is not a placeholder name (letters, digits, '_' or '-')"),
            },
        };

        // It names lock files and sets: at most 64 characters.
        if self.name.is_empty()
            || self.name.len() > 64
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(invalid(
                "name",
                format!("is {:?}", crate::text::shown(&self.name, 80)),
                "use 1 to 64 lowercase letters, digits and '-', e.g. \"term-start-students\"",
            ));
        }
        let origin = match (&self.report, &self.file) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "file",
                    "is given together with [report]".into(),
                    "a query takes its IDs from exactly one of [report] (an Analytics report) and [file] (a list of IDs)",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    "report",
                    "is missing, and so is [file]".into(),
                    "give [report] path = \"/shared/…\" (an Analytics report) or [file] path = \"ids.xlsx\" (a list of IDs: .txt, .csv, .xlsx, .xls, .ods)",
                ));
            }
            (None, Some(f)) => {
                let full = resolve(&f.path);
                let format = FileFormat::of(&full).ok_or_else(|| {
                    invalid(
                        "file.path",
                        format!("names {}, whose extension is not one alma-cohort reads", full.display()),
                        "use a .txt (one ID a line), .csv, .xlsx, .xlsm, .xls or .ods file",
                    )
                })?;
                if !full.is_file() {
                    return Err(invalid(
                        "file.path",
                        format!("names {}, which is not a file", full.display()),
                        "paths are relative to the query file's folder",
                    ));
                }
                if f.sheet.is_some() && !format.is_spreadsheet() {
                    return Err(invalid(
                        "file.sheet",
                        format!("is given for {}, which is not a spreadsheet", full.display()),
                        "sheet is for .xlsx, .xls and .ods files; leave it out",
                    ));
                }
                Origin::File(FileSpec {
                    path: full,
                    format,
                    sheet: f.sheet.clone().filter(|s| !s.trim().is_empty()),
                })
            }
            (Some(report), None) => {
                let report_path = report.path.trim().to_string();
                if !report_path.starts_with('/') {
                    return Err(invalid(
                        "report.path",
                        format!("is {report_path:?}"),
                        "give the report's full catalog path, e.g. \"/shared/<Institution>/Reports/<folder>/<report>\"",
                    ));
                }
                if !(25..=1000).contains(&report.limit) {
                    return Err(invalid(
                        "report.limit",
                        format!("is {}", report.limit),
                        "use 25..1000 (rows per page; Alma serves blocks of 25)",
                    ));
                }
                // A sawx filter file: read, placeholders filled (XML-escaped), layout whitespace removed.
                let read_filter = |p: &Path, what: &'static str| -> Result<(String, PathBuf), Error> {
                    let full = resolve(p);
                    let text = crate::text::read_text(&full, crate::text::limit::SMALL).map_err(|source| {
                        Error::Referenced {
                            path: file.to_path_buf(),
                            what: "the filter file",
                            file: full.clone(),
                            source,
                        }
                    })?;
                    used.borrow_mut()
                        .extend(super::placeholders::names(&text).unwrap_or_default());
                    let filled = fill(&text, params, Escape::XmlText).map_err(|e| fill_error(what, e))?;
                    Ok((filled.lines().map(str::trim).collect::<Vec<_>>().join(""), full))
                };
                let (filter, filter_file) = match &report.filter {
                    None => (None, None),
                    Some(p) => {
                        let (f, full) = read_filter(p, "the report filter")?;
                        (Some(f), Some(full))
                    }
                };
                if filter.is_some() && !report.partitions.is_empty() {
                    return Err(invalid(
                        "report.partitions",
                        "is given together with report.filter".into(),
                        "put the common condition into each partition's filter, or drop the partitions",
                    ));
                }
                let mut partitions = Vec::new();
                for part in &report.partitions {
                    if part.name.trim().is_empty() || partitions.iter().any(|p: &super::Partition| p.name == part.name)
                    {
                        return Err(invalid(
                            "report.partitions.name",
                            format!("is {:?}", part.name),
                            "give every partition its own non-empty name",
                        ));
                    }
                    let (f, full) = read_filter(&part.filter, "a partition filter")?;
                    partitions.push(super::Partition {
                        name: part.name.clone(),
                        filter: f,
                        filter_file: full,
                    });
                }
                if partitions.len() == 1 {
                    return Err(invalid(
                        "report.partitions",
                        "has one partition".into(),
                        "use report.filter for one filter; partitions are for two or more",
                    ));
                }
                Origin::Report(ReportSpec {
                    path: report_path,
                    limit: report.limit as u32,
                    filter,
                    filter_file,
                    partitions,
                })
            }
        };
        if self.cohort.id_column.trim().is_empty() {
            return Err(invalid(
                "cohort.id_column",
                "is empty".into(),
                "name the report heading that holds the user's primary ID",
            ));
        }
        if let Some(name) = self
            .cohort
            .where_sql
            .as_deref()
            .and_then(super::placeholders::quoted_in_sql)
        {
            return Err(invalid(
                "cohort.where",
                format!("puts the placeholder {{{name}}} inside quotes"),
                &format!(
                    "write {{{name}}} without quotes: its value is filled in as a complete SQL string, quotes included"
                ),
            ));
        }
        // A blank `where` is not "every row" by accident: leave the key out for that.
        if self.cohort.where_sql.as_deref().is_some_and(|w| w.trim().is_empty()) {
            return Err(invalid(
                "cohort.where",
                "is blank".into(),
                "write the condition the cohort's rows meet, or leave the key out to take every row of the report",
            ));
        }
        // The SQL parser recurses once per AND/OR and per parenthesis: a condition of hundreds
        // overflows its stack (an abort, no error line). A list of values is `IN (…)`.
        if let Some((ops, depth)) = self.cohort.where_sql.as_deref().map(where_shape)
            && (ops > MAX_WHERE_OPS || depth > MAX_WHERE_DEPTH)
        {
            return Err(invalid(
                "cohort.where",
                format!("joins {} conditions with AND/OR, {depth} parentheses deep", ops + 1),
                &format!(
                    "at most {} conditions and {MAX_WHERE_DEPTH} parentheses deep; for a list of values write \"Column\" IN ('a', 'b', …)",
                    MAX_WHERE_OPS + 1
                ),
            ));
        }
        let where_sql = match &self.cohort.where_sql {
            Some(w) if !w.trim().is_empty() => {
                used.borrow_mut()
                    .extend(super::placeholders::names(w.trim()).unwrap_or_default());
                Some(fill(w.trim(), params, Escape::SqlLiteral).map_err(|e| fill_error("cohort.where", e))?)
            }
            _ => None,
        };
        // A --param the query has no placeholder for is a typo, or a value meant for another query.
        let used = used.into_inner();
        if let Some(unknown) = params.keys().find(|k| !used.contains(*k)) {
            let mut known: Vec<&String> = used.iter().collect();
            known.sort();
            known.dedup();
            return Err(invalid(
                &format!("--param {unknown}"),
                "names no placeholder of this query".into(),
                &match known.is_empty() {
                    true => "this query has no placeholders: leave --param out".to_string(),
                    false => format!(
                        "its placeholders are {}",
                        known.iter().map(|k| format!("{{{k}}}")).collect::<Vec<_>>().join(", ")
                    ),
                },
            ));
        }
        let mut exclude_files = Vec::new();
        for p in &self.cohort.exclude_files {
            let full = resolve(p);
            if !full.is_file() {
                return Err(invalid(
                    "cohort.exclude_files",
                    format!("names {}, which is not a file", full.display()),
                    "paths are relative to the query file's folder",
                ));
            }
            exclude_files.push(full);
        }
        let n = &self.cohort.normalize;
        let case = match n.case.as_str() {
            "preserve" => super::Case::Preserve,
            "upper" => super::Case::Upper,
            "lower" => super::Case::Lower,
            other => {
                return Err(invalid(
                    "cohort.normalize.case",
                    format!("is {other:?}"),
                    "use \"preserve\", \"upper\" or \"lower\"",
                ));
            }
        };
        let pad_numeric_to = match n.pad_numeric_to {
            None => None,
            Some(w) if (1..=64).contains(&w) => Some(w as usize),
            Some(w) => {
                return Err(invalid(
                    "cohort.normalize.pad_numeric_to",
                    format!("is {w}"),
                    "use a width from 1 to 64, or leave it out",
                ));
            }
        };
        let set_name = self.set.name.unwrap_or_else(|| DEFAULT_SET_NAME.to_string());
        let set_description = self
            .set
            .description
            .unwrap_or_else(|| DEFAULT_SET_DESCRIPTION.to_string());
        for (key, template) in [("set.name", &set_name), ("set.description", &set_description)] {
            let used = names(template).map_err(|e| {
                fill_error(
                    if key == "set.name" {
                        "set.name"
                    } else {
                        "set.description"
                    },
                    e,
                )
            })?;
            if let Some(bad) = used.iter().find(|n| !SET_PLACEHOLDERS.contains(&n.as_str())) {
                return Err(invalid(
                    key,
                    format!("uses {{{bad}}}"),
                    "set names may use {query}, {period}, {date} and {run_id}",
                ));
            }
        }
        if set_name.trim().is_empty() {
            return Err(invalid(
                "set.name",
                "is empty".into(),
                "e.g. \"User Password Reset {query} {period}\"",
            ));
        }
        // They reach Alma as the set's name and description, and staff read them in Manage Sets:
        // one line of visible text, of a length Alma's UI shows.
        for (key, template, max) in [
            ("set.name", &set_name, 200),
            ("set.description", &set_description, 1000),
        ] {
            if let Some(c) = template
                .chars()
                .find(|c| c.is_control() || crate::text::is_invisible(*c))
            {
                return Err(invalid(
                    key,
                    format!(
                        "holds the character U+{:04X}, which no one sees in Alma (a control, direction or zero-width character)",
                        c as u32
                    ),
                    "write it as one line of visible text",
                ));
            }
            let length = template.chars().count();
            if length > max {
                return Err(invalid(
                    key,
                    format!("is {length} characters long"),
                    &format!("at most {max}"),
                ));
            }
        }
        let mut parameters = BTreeMap::new();
        let mut payload_file = self.job.payload_file.clone();
        let mut allow_user_updates = self.job.allow_user_updates;
        for (k, v) in self.job.parameters {
            if let Some(why) = reserved_job_parameter(&k) {
                return Err(invalid(
                    &format!("job.parameters.{k}"),
                    "may not be set here".into(),
                    why,
                ));
            }
            // The design shows payload_file under [job.parameters]; both places work.
            match (k.as_str(), &v) {
                ("payload_file", toml::Value::String(s)) if payload_file.is_none() => {
                    payload_file = Some(PathBuf::from(s))
                }
                ("allow_user_updates", toml::Value::Boolean(b)) if allow_user_updates.is_none() => {
                    allow_user_updates = Some(*b)
                }
                (_, toml::Value::String(s)) => {
                    parameters.insert(k, s.clone());
                }
                (_, toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_)) => {
                    parameters.insert(k, v.to_string());
                }
                _ => {
                    return Err(invalid(
                        &format!("job.parameters.{k}"),
                        "is not a string, number or boolean".into(),
                        "give each job parameter one value",
                    ));
                }
            }
        }
        let payload_file = match payload_file {
            None => None,
            Some(p) => {
                let full = resolve(&p);
                if !full.is_file() {
                    return Err(invalid(
                        "job.payload_file",
                        format!("names {}, which is not a file", full.display()),
                        "paths are relative to the query file's folder",
                    ));
                }
                Some(full)
            }
        };
        let notification = self
            .job
            .notification
            .unwrap_or_else(|| DEFAULT_NOTIFICATION.to_string());
        if notification.trim().is_empty() {
            return Err(invalid(
                "job.notification",
                "is empty".into(),
                "use NOTIFY_PASSWORD_CHANGE (Alma's \"Notify Password Change\")",
            ));
        }
        if !is_code(&notification) {
            return Err(invalid(
                "job.notification",
                format!("is {notification:?}, which is not a notification type code"),
                "use the code from Alma's User Notification Types table (capital letters, digits and '_'), e.g. NOTIFY_PASSWORD_CHANGE",
            ));
        }
        let letter = self.job.letter.unwrap_or_else(|| DEFAULT_LETTER.to_string());
        if !is_letter_code(&letter) {
            return Err(invalid(
                "job.letter",
                format!("is {letter:?}, which is not a letter code"),
                "use the letter's code as Alma lists it (letters, digits, '_', '-' or '.'), e.g. UserNotificationsLetter",
            ));
        }
        let eligibility = self.eligibility.validate(&invalid, &self.guard)?;
        if self.guard.max_members < 1 {
            return Err(invalid(
                "guard.max_members",
                format!("is {}", self.guard.max_members),
                "set the largest cohort this query may ever reset, e.g. 5000",
            ));
        }
        if let Some(g) = self.guard.max_growth
            && !(g.is_finite() && g > 0.0)
        {
            return Err(invalid(
                "guard.max_growth",
                format!("is {g}"),
                "use a factor above 0, e.g. 2.0 (refuse a cohort more than twice the last one)",
            ));
        }
        if let Some(c) = &self.guard.account_type_column
            && c.trim().is_empty()
        {
            return Err(invalid(
                "guard.account_type_column",
                "is empty".into(),
                "name the report heading with the account type, or leave it out",
            ));
        }
        if let Some(c) = &self.guard.email_column
            && c.trim().is_empty()
        {
            return Err(invalid(
                "guard.email_column",
                "is empty".into(),
                "name the report heading with the users' email address, e.g. \"Preferred Email\", or leave it out",
            ));
        }
        if let Some(r) = self.guard.min_ratio
            && !(r.is_finite() && r > 0.0 && r <= 1.0)
        {
            return Err(invalid(
                "guard.min_ratio",
                format!("is {r}"),
                "use a share above 0 and at most 1, e.g. 0.5 (refuse a cohort less than half the last one)",
            ));
        }
        let cooldown_days = match self.guard.cooldown_days {
            None => DEFAULT_COOLDOWN_DAYS,
            Some(d) if (0..=366).contains(&d) => d as u32,
            Some(d) => {
                return Err(invalid(
                    "guard.cooldown_days",
                    format!("is {d}"),
                    "use a number of days from 0 (no cooldown) to 366, e.g. 7",
                ));
            }
        };
        let max_refused_ratio = match self.guard.max_refused_ratio {
            None => DEFAULT_MAX_REFUSED_RATIO,
            Some(r) if r.is_finite() && (0.0..=1.0).contains(&r) => r,
            Some(r) => {
                return Err(invalid(
                    "guard.max_refused_ratio",
                    format!("is {r}"),
                    "use a share from 0 (stop before the job when Alma refuses anyone) to 1 (never stop), e.g. 0.01",
                ));
            }
        };
        let required = match self.approval.required {
            None => 0,
            Some(n) if (0..=10).contains(&n) => n as u32,
            Some(n) => {
                return Err(invalid(
                    "approval.required",
                    format!("is {n}"),
                    "give how many different people must approve a saved plan, from 0 (none) to 10, e.g. 1",
                ));
            }
        };
        // An id goes into the URL's path (`conf/jobs/{id}`): letters and digits only, as Alma's
        // are (`M15506`, `6156418970000121`) — never `../sets?op=delete`.
        let job_id = match self.job.id.as_deref().map(str::trim).filter(|i| !i.is_empty()) {
            None => None,
            Some(i) if i.len() <= 40 && i.bytes().all(|b| b.is_ascii_alphanumeric()) => Some(i.to_string()),
            Some(i) => {
                return Err(invalid(
                    "job.id",
                    format!("is {:?}", crate::text::shown(i, 60)),
                    "an Alma job id is letters and digits, e.g. M15506 (Admin > Monitor Jobs); or leave it out and name the job in [job] name",
                ));
            }
        };
        // Read when an approval is made or counted, not here: a validate elsewhere needs no copy.
        let allowed_signers = match &self.approval.allowed_signers {
            None => None,
            Some(p) if p.as_os_str().is_empty() => {
                return Err(invalid(
                    "approval.allowed_signers",
                    "is empty".into(),
                    "name an OpenSSH allowed_signers file (as git's gpg.ssh.allowedSignersFile), e.g. \"/etc/alma-cohort/allowed_signers\"",
                ));
            }
            Some(p) => {
                let full = resolve(p);
                if !full.is_file() {
                    return Err(invalid(
                        "approval.allowed_signers",
                        format!("names {}, which is not a file", full.display()),
                        "give the allowed_signers file that lists each approver's SSH key (paths are relative to the query file's folder)",
                    ));
                }
                Some(full)
            }
        };
        if allowed_signers.is_some() && required == 0 {
            return Err(invalid(
                "approval.allowed_signers",
                "is set, and approval.required is 0".into(),
                "set approval.required to the number of signed approvals a plan needs, e.g. 1",
            ));
        }
        let max_age_hours = match self.approval.max_age_hours {
            None => DEFAULT_MAX_PLAN_AGE_HOURS,
            Some(h) if h.is_finite() && h > 0.0 && h <= 24.0 * 366.0 => h,
            Some(h) => {
                return Err(invalid(
                    "approval.max_age_hours",
                    format!("is {h}"),
                    "give the hours a saved plan stays good for, above 0 and at most 8784 (a year), e.g. 72",
                ));
            }
        };
        Ok(QuerySpec {
            file: file.to_path_buf(),
            name: self.name,
            description: self.description,
            origin,
            cohort: CohortSpec {
                id_column: self.cohort.id_column.trim().to_string(),
                where_sql,
                exclude_files,
                normalize: Normalize {
                    trim: n.trim,
                    strip_apostrophe: n.strip_apostrophe,
                    pad_numeric_to,
                    case,
                },
            },
            set: SetSpec {
                name: set_name,
                description: set_description,
                private: self.set.private,
            },
            job: JobSpec {
                name: self.job.name.unwrap_or_else(|| DEFAULT_JOB_NAME.to_string()),
                id: job_id,
                notification,
                letter,
                parameters,
                payload_file,
                allow_user_updates: allow_user_updates.unwrap_or(false),
            },
            guard: GuardSpec {
                max_members: self.guard.max_members as usize,
                max_growth: self.guard.max_growth,
                account_type_column: self.guard.account_type_column,
                email_column: self.guard.email_column.map(|c| c.trim().to_string()),
                min_ratio: self.guard.min_ratio,
                cooldown_days,
                max_refused_ratio,
            },
            approval: super::ApprovalSpec {
                required,
                approver_not_planner: self.approval.approver_not_planner.unwrap_or(false),
                max_age_hours,
                allow_as: self.approval.allow_as.unwrap_or(false),
                allowed_signers,
            },
            eligibility,
            source,
        })
    }
}

/// The most AND/OR a `where` may join, and how deep its parentheses may nest.
const MAX_WHERE_OPS: usize = 100;
const MAX_WHERE_DEPTH: usize = 32;

/// A `where`'s AND/OR count and deepest parenthesis, outside quotes (`'…'`, `"…"`).
fn where_shape(sql: &str) -> (usize, usize) {
    let (mut ops, mut depth, mut deepest) = (0, 0usize, 0);
    let mut quote: Option<char> = None;
    let mut word = String::new();
    for c in sql.chars().chain(std::iter::once(' ')) {
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        if c.is_alphanumeric() || c == '_' {
            word.push(c);
            continue;
        }
        if word.eq_ignore_ascii_case("and") || word.eq_ignore_ascii_case("or") {
            ops += 1;
        }
        word.clear();
        match c {
            '\'' | '"' => quote = Some(c),
            '(' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    (ops, deepest)
}

/// A notification type code: capital letters, digits and `_` (Alma's code tables).
fn is_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
}

/// A letter code: ASCII letters, digits, `_`, `-` and `.`, as Alma names its letters.
fn is_letter_code(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 100
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

impl EligibilityRaw {
    fn validate(self, invalid: &dyn Fn(&str, String, &str) -> Error, guard: &Guard) -> Result<EligibilitySpec, Error> {
        let staff_include = match self.staff.as_deref().map(str::trim) {
            None | Some("exclude") => false,
            Some("include") => true,
            Some(other) => {
                return Err(invalid(
                    "eligibility.staff",
                    format!("is {other:?}"),
                    "use \"exclude\" (the default: users with a role other than Patron are left out) or \"include\" (a staff reset)",
                ));
            }
        };
        let max_age_hours = match self.max_age_hours {
            None => DEFAULT_ELIGIBILITY_MAX_AGE_HOURS,
            Some(h) if h.is_finite() && (0.0..=24.0 * 31.0).contains(&h) => h,
            Some(h) => {
                return Err(invalid(
                    "eligibility.max_age_hours",
                    format!("is {h}"),
                    "give the hours a lookup stays good for before resume or apply looks again, from 0 (look again every time) to 744, e.g. 24",
                ));
            }
        };
        let column = |key: &str, own: Option<String>, fallback: Option<&String>| -> Result<Option<String>, Error> {
            match own.or_else(|| fallback.cloned()) {
                Some(c) if c.trim().is_empty() => Err(invalid(
                    &format!("eligibility.{key}"),
                    "is empty".into(),
                    "name the report heading, or leave it out",
                )),
                c => Ok(c.map(|c| c.trim().to_string())),
            }
        };
        let columns = EligibilityColumns {
            account_type: column(
                "account_type_column",
                self.account_type_column,
                guard.account_type_column.as_ref(),
            )?,
            status: column("status_column", self.status_column, None)?,
            expiry: column("expiry_column", self.expiry_column, None)?,
            email: column("email_column", self.email_column, guard.email_column.as_ref())?,
            staff: column("staff_column", self.staff_column, None)?,
        };
        let lookup = self.lookup.unwrap_or(true);
        if !lookup {
            let missing: Vec<&str> = [
                ("account_type_column", columns.account_type.is_none()),
                ("status_column", columns.status.is_none()),
                ("expiry_column", columns.expiry.is_none()),
                ("email_column", columns.email.is_none()),
            ]
            .into_iter()
            .filter(|(_, m)| *m)
            .map(|(k, _)| k)
            .collect();
            if !missing.is_empty() {
                return Err(invalid(
                    "eligibility.lookup",
                    format!(
                        "is false, but the query maps no report column for {}",
                        missing.join(", ")
                    ),
                    "without lookups the rules read the report: name its headings for the account type, status, expiry date and preferred email in [eligibility] (or keep lookup = true)",
                ));
            }
        }
        Ok(EligibilitySpec {
            lookup,
            staff_include,
            require_email: self.require_email.unwrap_or(true),
            max_age_hours,
            columns,
        })
    }
}

/// Job parameters a query may not set: the run fills them in itself, and they carry its safety.
fn reserved_job_parameter(key: &str) -> Option<&'static str> {
    let k = key.trim().to_ascii_lowercase();
    if k == "set_id" {
        Some("the run sets set_id to the set it creates")
    } else if k == "job_name" {
        Some("the run names the job instance \"alma-cohort <run id>\" so that a lost submission can be found again")
    } else if k.starts_with("send_notification_to_user_") {
        Some("the notification is set by [job] notification (default NOTIFY_PASSWORD_CHANGE) and always sent")
    } else {
        None
    }
}
