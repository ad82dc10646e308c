//! Query files (`queries/*.toml`): the analyst's interface. Two stages, as the design asks: the
//! file as written ([`raw`], serde with unknown keys refused) and the validated [`QuerySpec`],
//! with relative paths resolved against the file's folder and `{name}` placeholders filled from
//! `--param` values, escaped for the language they land in.

mod placeholders;
mod raw;

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use placeholders::{Escape, fill, quoted_in_sql};

/// The notification type a run sends by default ("Notify Password Change").
pub const DEFAULT_NOTIFICATION: &str = "NOTIFY_PASSWORD_CHANGE";
/// The letter that carries the temporary password (`[job] letter`).
pub const DEFAULT_LETTER: &str = "UserNotificationsLetter";
/// How long a live lookup of the cohort stays good for `resume` and `apply`.
pub const DEFAULT_ELIGIBILITY_MAX_AGE_HOURS: f64 = 24.0;

/// Why a query file cannot be used. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read query file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}{}: {message}", at(*.line, *.column))]
    Syntax {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        message: String,
    },
    #[error("{path}: `{key}` {problem}\nhint: {hint}")]
    Invalid {
        path: PathBuf,
        key: String,
        problem: String,
        hint: String,
    },
    #[error("{path}: cannot read {what} {file}: {source}")]
    Referenced {
        path: PathBuf,
        what: &'static str,
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {what} uses the placeholder {{{name}}} but no value was given\nhint: pass --param {name}=VALUE")]
    MissingParam {
        path: PathBuf,
        what: &'static str,
        name: String,
    },
    #[error("{path}: {what}: {message}")]
    Placeholder {
        path: PathBuf,
        what: &'static str,
        message: String,
    },
    #[error("--param {0:?} is not NAME=VALUE (NAME: letters, digits, '_' or '-')")]
    BadParam(String),
    #[error("invalid setting: --param {0} is given twice; give each placeholder one value (nothing was done)")]
    ParamTwice(String),
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(":{l}:{c}"),
        (Some(l), None) => format!(":{l}"),
        _ => String::new(),
    }
}

/// `--param NAME=VALUE` pairs.
pub type Params = BTreeMap<String, String>;

pub fn parse_param(raw: &str) -> Result<(String, String), Error> {
    let (k, v) = raw.split_once('=').ok_or_else(|| Error::BadParam(raw.to_string()))?;
    if k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(Error::BadParam(raw.to_string()));
    }
    Ok((k.to_string(), v.to_string()))
}

/// The `--param NAME=VALUE` flags as the placeholders' values; a name given twice is refused.
pub fn parse_params(raw: &[String]) -> Result<Params, Error> {
    let mut params = Params::new();
    for p in raw {
        let (k, v) = parse_param(p)?;
        if params.contains_key(&k) {
            return Err(Error::ParamTwice(k));
        }
        params.insert(k, v);
    }
    Ok(params)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Case {
    Preserve,
    Upper,
    Lower,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Normalize {
    pub trim: bool,
    pub strip_apostrophe: bool,
    pub pad_numeric_to: Option<usize>,
    pub case: Case,
}

#[derive(Clone, Debug, PartialEq)]
pub struct ReportSpec {
    pub path: String,
    pub limit: u32,
    /// The sawx filter, read from its file with placeholders filled (XML-escaped).
    pub filter: Option<String>,
    pub filter_file: Option<PathBuf>,
    /// Disjoint slices of the report, paged concurrently (empty: the report in one go).
    pub partitions: Vec<Partition>,
}

/// Where a query's rows come from: an Analytics report, or a file of IDs.
#[derive(Clone, Debug, PartialEq)]
pub enum Origin {
    Report(ReportSpec),
    File(FileSpec),
}

/// `[file]`: a list of IDs made by hand or exported (Notepad, Excel, a registrar's CSV).
#[derive(Clone, Debug, PartialEq)]
pub struct FileSpec {
    /// Resolved against the query file's folder.
    pub path: PathBuf,
    pub format: FileFormat,
    /// Spreadsheets only: the sheet to read (default: the first).
    pub sheet: Option<String>,
}

/// The kinds of list file, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// One ID a line, an optional heading line.
    Text,
    /// Headings in the first row; `,`, `;` or tab.
    Csv,
    /// xlsx, xlsm, xls, ods (calamine).
    Spreadsheet,
}

impl FileFormat {
    pub fn of(path: &Path) -> Option<FileFormat> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "txt" => FileFormat::Text,
            "csv" => FileFormat::Csv,
            "xlsx" | "xlsm" | "xls" | "ods" => FileFormat::Spreadsheet,
            _ => return None,
        })
    }

    pub fn is_spreadsheet(self) -> bool {
        self == FileFormat::Spreadsheet
    }
}

/// One slice of a partitioned report: its own sawx filter over a prompted column.
#[derive(Clone, Debug, PartialEq)]
pub struct Partition {
    pub name: String,
    pub filter: String,
    pub filter_file: PathBuf,
}

#[derive(Clone, Debug, PartialEq)]
pub struct CohortSpec {
    pub id_column: String,
    /// SQL boolean expression over the report's headings, placeholders filled as SQL literals.
    pub where_sql: Option<String>,
    pub exclude_files: Vec<PathBuf>,
    pub normalize: Normalize,
}

#[derive(Clone, Debug, PartialEq)]
pub struct SetSpec {
    pub name: String,
    pub description: String,
    pub private: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct JobSpec {
    pub name: String,
    pub id: Option<String>,
    pub notification: String,
    /// The letter that carries the password (`[job] letter`).
    pub letter: String,
    pub parameters: BTreeMap<String, String>,
    pub payload_file: Option<PathBuf>,
    pub allow_user_updates: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub struct GuardSpec {
    pub max_members: usize,
    pub max_growth: Option<f64>,
    pub account_type_column: Option<String>,
    /// Users without an address in this column are left out (their letter could not arrive).
    pub email_column: Option<String>,
    /// Refuse a cohort smaller than this share of the last completed run (0 < x ≤ 1).
    pub min_ratio: Option<f64>,
    /// Users whom any run notified within this many days are left out (0: no cooldown).
    pub cooldown_days: u32,
    /// When Alma refuses a larger share of the cohort (IDs it does not know), the run stops
    /// before the job (0 ≤ x ≤ 1).
    pub max_refused_ratio: f64,
}

/// A validated query: everything the pipeline needs, nothing left to interpret.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySpec {
    pub file: PathBuf,
    pub name: String,
    pub description: String,
    /// Where the rows come from.
    pub origin: Origin,
    pub cohort: CohortSpec,
    pub set: SetSpec,
    pub job: JobSpec,
    pub guard: GuardSpec,
    pub approval: ApprovalSpec,
    pub eligibility: EligibilitySpec,
    /// The file's bytes, for the journal's content hash.
    pub source: String,
}

/// `[eligibility]`: who may be reset. Inactive, expired, external users and users Alma does not
/// know are always left out; staff and users without a preferred email as the query says.
#[derive(Clone, Debug, PartialEq)]
pub struct EligibilitySpec {
    /// Look every member up in Alma before the set (false only with the report's columns).
    pub lookup: bool,
    /// A staff reset: users with a role other than Patron stay in.
    pub staff_include: bool,
    /// Users without a preferred email address are left out.
    pub require_email: bool,
    /// `resume` and `apply` look up again when the lookups are older than this.
    pub max_age_hours: f64,
    /// The report's columns for the rules when `lookup` is false.
    pub columns: EligibilityColumns,
}

/// Report headings that carry what the lookups would ask Alma.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EligibilityColumns {
    pub account_type: Option<String>,
    pub status: Option<String>,
    pub expiry: Option<String>,
    pub email: Option<String>,
    pub staff: Option<String>,
}

/// `[approval]`: a run of this query goes through a saved plan that others approved.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalSpec {
    /// How many different people must approve a saved plan (0: `run --execute` is allowed).
    pub required: u32,
    /// The planner's own approval does not count.
    pub approver_not_planner: bool,
    /// A saved plan older than this is expired.
    pub max_age_hours: f64,
    /// `approve --as NAME` may record a name other than the OS account.
    pub allow_as: bool,
    /// An OpenSSH `allowed_signers` file: when set, an approval counts only with an SSH
    /// signature (namespace `alma-cohort`) over the plan's canonical text by a key it lists, and
    /// the approver is the principal it names.
    pub allowed_signers: Option<std::path::PathBuf>,
}

impl ApprovalSpec {
    /// What `plan` says the query requires.
    pub fn describe(&self) -> String {
        match self.required {
            0 => "no approval required".into(),
            n => format!(
                "{n} approval{} required{}, within {} hours of the plan",
                if n == 1 { "" } else { "s" },
                if self.approver_not_planner {
                    " by someone other than the planner"
                } else {
                    ""
                },
                self.max_age_hours
            ),
        }
    }

    /// What kind of approval counts, for `plan`.
    pub fn kind(&self) -> String {
        match (&self.allowed_signers, self.required) {
            (_, 0) => "none".into(),
            (Some(file), _) => format!(
                "signed: an SSH signature (namespace alma-cohort) by a key listed in {}",
                file.display()
            ),
            (None, _) => "recorded: the OS account (or the person behind sudo) that runs approve; not signed".into(),
        }
    }
}

impl QuerySpec {
    /// The Analytics report the rows come from, if they come from one.
    pub fn report(&self) -> Option<&ReportSpec> {
        match &self.origin {
            Origin::Report(r) => Some(r),
            Origin::File(_) => None,
        }
    }

    /// The file of IDs the rows come from, if they come from one.
    pub fn list_file(&self) -> Option<&FileSpec> {
        match &self.origin {
            Origin::File(f) => Some(f),
            Origin::Report(_) => None,
        }
    }

    /// What the rows come from, for summaries: the report's path or the file's.
    pub fn origin_label(&self) -> String {
        match &self.origin {
            Origin::Report(r) => r.path.clone(),
            Origin::File(f) => f.path.display().to_string(),
        }
    }
}

/// Reads and validates a query file, filling placeholders from `params`.
/// A query file's `name`, read without filling its placeholders (`apply --query FILE` needs
/// only the name, and has no `--param` to give).
pub fn name(path: &Path) -> Result<String, Error> {
    #[derive(serde::Deserialize)]
    struct Named {
        name: String,
    }
    let text = crate::text::read_text(path, crate::text::limit::SMALL).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let named: Named = toml::from_str(&text).map_err(|e| Error::Syntax {
        path: path.to_path_buf(),
        line: None,
        column: None,
        message: e.message().trim().to_string(),
    })?;
    Ok(named.name)
}

/// Another query file in the same folder (`*.toml`, plain files only, the first 1000 looked at)
/// with the name `name`: two queries of one name would give one period's set one name. Files
/// that are not query files (unreadable, other TOML) are passed over.
pub fn same_name_beside(path: &Path, name: &str) -> Result<Option<PathBuf>, Error> {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(None);
    };
    let this = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    let mut others: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .take(1000)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .filter(|p| std::fs::metadata(p).is_ok_and(|m| m.is_file()))
        .filter(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()) != this)
        .collect();
    others.sort();
    Ok(others.into_iter().find(|p| self::name(p).is_ok_and(|n| n == name)))
}

pub fn load(path: &Path, params: &Params) -> Result<QuerySpec, Error> {
    let source = crate::text::read_text(path, crate::text::limit::SMALL).map_err(|source| Error::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse(source, path, params)
}

/// Validates a query file's text; `path` names it in errors and anchors its relative paths.
pub fn parse(source: String, path: &Path, params: &Params) -> Result<QuerySpec, Error> {
    let raw: raw::QueryFile = toml::from_str(&source).map_err(|e| {
        let (line, column) = match e.span() {
            Some(span) => {
                let (l, c) = line_col(&source, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Error::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: crate::text::plain_toml_message(e.message(), line.and_then(|l| source.lines().nth(l - 1))),
        }
    })?;
    raw.validate(path, source, params)
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map(|l| l.chars().count()).unwrap_or(0) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("query-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    const MINIMAL: &str = r#"
name = "spring-ugrad"
[report]
path = "/shared/U/Reports/R"
[cohort]
id_column = "Primary Identifier"
[guard]
max_members = 100
"#;

    #[test]
    fn every_shipped_example_loads() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../queries");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                let mut params = Params::new();
                params.insert("from".into(), "2026-01-01".into());
                params.insert("to".into(), "2026-06-30".into());
                // With the dates for the queries that take them; a --param a query does not
                // take is refused, so the others load without.
                load(&path, &Params::new())
                    .or_else(|_| load(&path, &params))
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                n += 1;
            }
        }
        assert!(n >= 1);
    }

    #[test]
    fn defaults_fill_in() {
        let d = tempdir("defaults");
        let q = load(&write(&d, "q.toml", MINIMAL), &Params::new()).unwrap();
        assert_eq!(q.report().unwrap().limit, 1000);
        assert_eq!(
            q.cohort.normalize,
            Normalize {
                trim: true,
                strip_apostrophe: true,
                pad_numeric_to: None,
                case: Case::Preserve
            }
        );
        assert_eq!(q.job.name, "Update/Notify Users");
        assert_eq!(q.job.notification, "NOTIFY_PASSWORD_CHANGE");
        assert!(!q.set.private);
        assert!(q.set.name.contains("{run_id}") || q.set.name.contains("{query}"));
    }

    #[test]
    fn unknown_keys_and_syntax_errors_name_file_line_and_column() {
        let d = tempdir("unknown");
        let p = write(&d, "q.toml", &MINIMAL.replace("[guard]", "[guard]\nmax_member = 3"));
        let e = load(&p, &Params::new()).unwrap_err().to_string();
        assert!(
            e.contains("q.toml:8:1") && e.contains("max_member") && e.contains("expected one of"),
            "{e}"
        );
        let p = write(&d, "bad.toml", "name = \n");
        let e = load(&p, &Params::new()).unwrap_err().to_string();
        assert!(e.contains("bad.toml:1:"), "{e}");
    }

    #[test]
    fn validation_says_what_would_be_valid() {
        let d = tempdir("invalid");
        for (from, to, key) in [
            ("name = \"spring-ugrad\"", "name = \"Spring UGRAD\"", "name"),
            (
                "[guard]\nmax_members = 100",
                "[guard]\nmax_members = 0",
                "guard.max_members",
            ),
            ("[report]", "[report]\nlimit = 10", "report.limit"),
            (
                "[cohort]",
                "[cohort.normalize]\ncase = \"title\"\n[cohort]",
                "cohort.normalize.case",
            ),
        ] {
            let p = write(&d, "q.toml", &MINIMAL.replace(from, to));
            let e = load(&p, &Params::new()).unwrap_err().to_string();
            assert!(e.contains(key) && e.contains("hint:"), "{key}: {e}");
        }
    }

    #[test]
    fn filter_placeholders_are_filled_and_xml_escaped() {
        let d = tempdir("filter");
        write(&d, "f.xml", "<sawx:expr op=\"equal\"><v>{group}</v></sawx:expr>");
        let p = write(
            &d,
            "q.toml",
            &MINIMAL.replace("[report]", "[report]\nfilter = \"f.xml\""),
        );
        let mut params = Params::new();
        params.insert("group".into(), "A&B</v><x>".into());
        let q = load(&p, &params).unwrap();
        assert_eq!(
            q.report().unwrap().filter.as_deref(),
            Some("<sawx:expr op=\"equal\"><v>A&amp;B&lt;/v&gt;&lt;x&gt;</v></sawx:expr>")
        );
        let e = load(&p, &Params::new()).unwrap_err().to_string();
        assert!(e.contains("{group}") && e.contains("--param group="), "{e}");
    }

    #[test]
    fn where_placeholders_become_sql_literals() {
        let d = tempdir("where");
        let p = write(
            &d,
            "q.toml",
            &MINIMAL.replace("id_column", "where = '\"User Group\" = {g}'\nid_column"),
        );
        let mut params = Params::new();
        params.insert("g".into(), "x' OR '1'='1".into());
        let q = load(&p, &params).unwrap();
        assert_eq!(
            q.cohort.where_sql.as_deref(),
            Some("\"User Group\" = 'x'' OR ''1''=''1'")
        );
    }

    #[test]
    fn partitions_need_two_or_more_names_and_no_report_filter() {
        let d = tempdir("partitions");
        write(&d, "a.xml", "<sawx:expr>{g}</sawx:expr>");
        write(&d, "b.xml", "<sawx:expr>B</sawx:expr>");
        let two = "[report]\n[[report.partitions]]\nname = \"a\"\nfilter = \"a.xml\"\n[[report.partitions]]\nname = \"b\"\nfilter = \"b.xml\"\n[cohort]";
        let with_two = MINIMAL
            .replace("[report]", &two.replace("[report]\n", "[report]\npath = \"/x\"\n"))
            .replacen("path = \"/shared/U/Reports/R\"\n", "", 1);
        let mut params = Params::new();
        params.insert("g".into(), "A&A".into());
        let p = write(&d, "q.toml", &with_two.replace("[cohort]\n[cohort]", "[cohort]"));
        let q = load(&p, &params).unwrap();
        assert_eq!(
            q.report()
                .unwrap()
                .partitions
                .iter()
                .map(|p| p.name.as_str())
                .collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(
            q.report().unwrap().partitions[0].filter,
            "<sawx:expr>A&amp;A</sawx:expr>"
        );
        let refused = |name: &str, text: &str| {
            load(
                &write(&d, name, &text.replace("[cohort]\n[cohort]", "[cohort]")),
                &params,
            )
            .unwrap_err()
            .to_string()
        };
        let one = with_two.replace("[[report.partitions]]\nname = \"b\"\nfilter = \"b.xml\"\n", "");
        let e = refused("one.toml", &one);
        assert!(e.contains("has one partition"), "{e}");
        let e = refused("same.toml", &with_two.replace("name = \"b\"", "name = \"a\""));
        assert!(e.contains("report.partitions.name"), "{e}");
        let both = with_two.replace("path = \"/x\"\n", "path = \"/x\"\nfilter = \"b.xml\"\n");
        let e = refused("both.toml", &both);
        assert!(e.contains("together with report.filter"), "{e}");
    }

    #[test]
    fn params_parse() {
        assert_eq!(
            parse_param("from=2026-01-01").unwrap(),
            ("from".into(), "2026-01-01".into())
        );
        assert_eq!(parse_param("x=a=b").unwrap(), ("x".into(), "a=b".into()));
        assert!(parse_param("novalue").is_err());
        assert!(parse_param("bad key=1").is_err());
    }
}
