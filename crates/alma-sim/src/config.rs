//! How a simulator is set up: institution size and seed, extra CSV reports, API keys, limits,
//! latency, faults and job outcomes. Built from CLI flags or with the builder methods in tests.

use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use serde::Serialize;

/// An endpoint of the simulated Alma; faults aim at these, and the request log names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Any analytics report call (first page or later).
    Analytics,
    AnalyticsFirst,
    AnalyticsNext,
    AnalyticsPaths,
    SetList,
    SetCreate,
    SetGet,
    /// `POST /conf/sets/{id}?op=add_members|delete_members|replace_members`
    SetOp,
    SetDelete,
    SetMembers,
    JobList,
    JobGet,
    JobRun,
    JobInstances,
    /// `GET /conf/jobs/{id}/instances/{instance}`: job polling.
    JobInstance,
    UserGet,
    /// `GET /conf/letters`
    LetterList,
    /// `GET /conf/letters/{code}`
    LetterGet,
    Test,
    /// Matches every endpoint (for faults).
    Any,
    /// No such route.
    Unknown,
}

impl Target {
    /// Does a fault aimed at `self` hit a request for `actual`?
    pub fn covers(self, actual: Target) -> bool {
        self == actual
            || self == Target::Any
            || (self == Target::Analytics && matches!(actual, Target::AnalyticsFirst | Target::AnalyticsNext))
    }
}

impl FromStr for Target {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "analytics" => Target::Analytics,
            "analytics-first" => Target::AnalyticsFirst,
            "analytics-next" => Target::AnalyticsNext,
            "set-list" => Target::SetList,
            "set-create" => Target::SetCreate,
            "set-get" => Target::SetGet,
            "add-members" | "set-op" => Target::SetOp,
            "set-delete" => Target::SetDelete,
            "set-members" => Target::SetMembers,
            "job-list" => Target::JobList,
            "job-get" => Target::JobGet,
            "job-run" => Target::JobRun,
            "job-instances" => Target::JobInstances,
            "job-poll" | "job-instance" => Target::JobInstance,
            "user-get" => Target::UserGet,
            "letter-list" => Target::LetterList,
            "letter-get" => Target::LetterGet,
            "any" => Target::Any,
            other => {
                return Err(format!(
                    "unknown fault target {other:?}: expected analytics, analytics-first, analytics-next, set-list, \
                     set-create, set-get, add-members (or set-op), set-delete, set-members, job-list, job-get, job-run, \
                     job-instances, job-poll, user-get, letter-list, letter-get or any"
                ));
            }
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultKind {
    /// 503 GENERAL_ERROR from the gateway; nothing processed.
    ServerError,
    /// 429 PER_SECOND_THRESHOLD; nothing processed.
    TooManyRequests,
    /// The connection is cut before the request is processed.
    DropBefore,
    /// The request is processed (a set created, a job submitted), then the answer is cut off.
    DropAfter,
    /// The answer comes this much later (a client timeout leaves nothing processed).
    Slow(Duration),
    /// HTTP 500 with 420033 "No more rows to fetch" (an expired or lost report token).
    NoMoreRows,
    /// 429 DAILY_THRESHOLD: the institution's daily API quota is spent; nothing processed.
    DailyThreshold,
}

/// A fault injected into requests for `target`: requests `skip+1 ..= skip+count` (counted per
/// fault, in arrival order) get `kind`. With `after`, the fault is armed (and counts) only once a
/// request to that target was answered with success: "the job's instance list fails once the
/// members are in", whatever calls came before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub kind: FaultKind,
    pub target: Target,
    pub skip: u32,
    pub count: u32,
    pub after: Option<Target>,
}

impl Fault {
    pub fn new(kind: FaultKind, target: Target) -> Self {
        Self {
            kind,
            target,
            skip: 0,
            count: 1,
            after: None,
        }
    }
    /// Armed once a request to `target` was answered with success.
    pub fn after(mut self, target: Target) -> Self {
        self.after = Some(target);
        self
    }
    pub fn skip(mut self, n: u32) -> Self {
        self.skip = n;
        self
    }
    pub fn count(mut self, n: u32) -> Self {
        self.count = n;
        self
    }
}

impl FromStr for Fault {
    type Err = String;
    /// `KIND@TARGET[,skip=N][,count=N][,ms=N]`, e.g. `5xx@analytics-next,skip=2,count=3`,
    /// `drop-after@set-create`, `slow@analytics,ms=5000,count=1000`.
    fn from_str(s: &str) -> Result<Self, String> {
        let mut parts = s.split(',');
        let head = parts.next().unwrap_or_default();
        let (kind, target) = head
            .split_once('@')
            .ok_or_else(|| format!("fault {s:?}: expected KIND@TARGET[,skip=N][,count=N][,ms=N][,after=TARGET]"))?;
        let mut fault = Fault::new(FaultKind::ServerError, target.parse()?);
        let mut ms = None;
        for part in parts {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("fault {s:?}: {part:?} is not key=value"))?;
            if k == "after" {
                fault.after = Some(v.parse()?);
                continue;
            }
            let n: u32 = v
                .parse()
                .map_err(|_| format!("fault {s:?}: {k} needs a whole number, got {v:?}"))?;
            match k {
                "skip" => fault.skip = n,
                "count" => fault.count = n,
                "ms" => ms = Some(n),
                other => {
                    return Err(format!(
                        "fault {s:?}: unknown option {other:?} (skip, count, ms, after)"
                    ));
                }
            }
        }
        fault.kind = match kind {
            "5xx" => FaultKind::ServerError,
            "429" => FaultKind::TooManyRequests,
            "drop" => FaultKind::DropBefore,
            "drop-after" => FaultKind::DropAfter,
            "420033" => FaultKind::NoMoreRows,
            "daily" => FaultKind::DailyThreshold,
            "slow" => FaultKind::Slow(Duration::from_millis(
                ms.ok_or_else(|| format!("fault {s:?}: slow needs ms=N"))?.into(),
            )),
            other => {
                return Err(format!(
                    "fault {s:?}: unknown kind {other:?} (5xx, 429, daily, drop, drop-after, slow, 420033)"
                ));
            }
        };
        Ok(fault)
    }
}

/// An answer shape that real Alma sends (or plausibly sends) and our client must read, turned on
/// by name (`--quirk NAME`, may repeat). Each is one that institutions recorded (see
/// `fixtures/README.md` and `docs/simulator.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[cfg_attr(feature = "cli", derive(clap::ValueEnum))]
#[serde(rename_all = "kebab-case")]
#[cfg_attr(feature = "cli", value(rename_all = "kebab-case"))]
pub enum Quirk {
    /// Every list answer's `total_record_count` is a string ("439"), not a number
    TotalRecordCountString,
    /// `op=run` answers with `additional_info` as text only ("Job no. N triggered on …"), no link
    RunWithoutLink,
    /// `op=run` answers 200 with the job object and no `additional_info` at all
    RunWithoutInstance,
    /// `op=run` answers in XML whatever was asked (`<additional_info link="…">Job no. …`)
    RunAnswerXml,
    /// Every `link` is relative (`/almaws/v1/conf/jobs/…/instances/…`, recorded in instances),
    /// the run's too (plausible)
    RelativeLinks,
    /// Instances as recorded: progress 101.3 once ended (recorded on a failed run), a counter
    /// whose type is a sentence with an empty desc, `submitted_by` without desc
    InstanceRecordedShapes,
    /// 439 jobs with ids from `M3` to `M4664427330000561`, names with `/`, `&` and leading
    /// digits, pages of up to 400 whatever the limit, Update/Notify Users among the last
    JobListLong,
    /// Sets with `private` as a plain "true"/"false" and `number_of_members`' value as a string
    /// (plausible, not recorded: the recorded sets have `{"value": "true", "desc": "Yes"}`)
    SetPlainValues,
    /// Errors as recorded: the gateway's JSON without trackingId, a space after the message,
    /// keys errorList, errorsExist, result; its XML with CRLF and 12/24/36-space indentation;
    /// Alma's XML errors on one line declared `encoding="utf-8"`
    ErrorsRecordedShapes,
    /// "Still loading" answers as `<IsFinished>false</IsFinished><ResultXml/>` (with the token
    /// on a first page), and one such answer between the first and second data pages
    ResultXmlStillLoading,
    /// The rowset, its rows and cells in no XML namespace (Alma, October 2019)
    RowsetNoNamespace,
    /// The report's schema has no `saw-sql:columnHeading` (as if read without col_names)
    SchemaWithoutHeadings,
    /// A set's members list shows its first member without an id (plausible, not recorded)
    MemberWithoutId,
    /// The key test endpoints (`/analytics/test`, `/conf/test`, `/users/operation/test`) answer
    /// 200 with a plain-text body (their body is not documented)
    TestEndpointsText,
}

impl Quirk {
    /// Every quirk, in the order `--help` lists them (without clap: the crate builds without
    /// its `cli` feature; a test checks the two lists agree).
    pub fn all() -> &'static [Quirk] {
        &[
            Quirk::TotalRecordCountString,
            Quirk::RunWithoutLink,
            Quirk::RunWithoutInstance,
            Quirk::RunAnswerXml,
            Quirk::RelativeLinks,
            Quirk::InstanceRecordedShapes,
            Quirk::JobListLong,
            Quirk::SetPlainValues,
            Quirk::ErrorsRecordedShapes,
            Quirk::ResultXmlStillLoading,
            Quirk::RowsetNoNamespace,
            Quirk::SchemaWithoutHeadings,
            Quirk::MemberWithoutId,
            Quirk::TestEndpointsText,
        ]
    }

    /// The quirk's `--quirk` name.
    pub fn name(self) -> &'static str {
        match self {
            Quirk::TotalRecordCountString => "total-record-count-string",
            Quirk::RunWithoutLink => "run-without-link",
            Quirk::RunWithoutInstance => "run-without-instance",
            Quirk::RunAnswerXml => "run-answer-xml",
            Quirk::RelativeLinks => "relative-links",
            Quirk::InstanceRecordedShapes => "instance-recorded-shapes",
            Quirk::JobListLong => "job-list-long",
            Quirk::SetPlainValues => "set-plain-values",
            Quirk::ErrorsRecordedShapes => "errors-recorded-shapes",
            Quirk::ResultXmlStillLoading => "result-xml-still-loading",
            Quirk::RowsetNoNamespace => "rowset-no-namespace",
            Quirk::SchemaWithoutHeadings => "schema-without-headings",
            Quirk::MemberWithoutId => "member-without-id",
            Quirk::TestEndpointsText => "test-endpoints-text",
        }
    }
}

impl FromStr for Quirk {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Quirk::all().iter().copied().find(|q| q.name() == s).ok_or_else(|| {
            format!(
                "unknown quirk {s:?}: expected one of {}",
                Quirk::all().iter().map(|q| q.name()).collect::<Vec<_>>().join(", ")
            )
        })
    }
}

/// A time zone offset such as `-05:00`, `+13:00` or `Z`.
pub fn parse_offset(s: &str) -> Result<chrono::FixedOffset, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("z") || t.eq_ignore_ascii_case("utc") {
        return Ok(chrono::FixedOffset::east_opt(0).expect("UTC"));
    }
    let bad = || format!("time zone {s:?}: expected an offset like -05:00, +13:00 or Z");
    let (sign, rest) = match t.as_bytes().first() {
        Some(b'+') => (1, &t[1..]),
        Some(b'-') => (-1, &t[1..]),
        _ => return Err(bad()),
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if !(0..=14).contains(&h) || !(0..60).contains(&m) {
        return Err(bad());
    }
    chrono::FixedOffset::east_opt(sign * (h * 3600 + m * 60)).ok_or_else(bad)
}

/// How the Update/Notify Users job ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum JobOutcome {
    #[default]
    Success,
    /// COMPLETED_WARNING: letters sent, with a warning alert.
    Warning,
    /// COMPLETED_FAILED: ran to the end with errors; no letters.
    CompletedFailed,
    /// FAILED early; progress stays 0; no letters.
    Failed,
    /// Stays RUNNING for ever (for poll deadlines).
    NeverFinishes,
}

impl FromStr for JobOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "success" => JobOutcome::Success,
            "warning" => JobOutcome::Warning,
            "completed-failed" => JobOutcome::CompletedFailed,
            "failed" => JobOutcome::Failed,
            "never-finishes" => JobOutcome::NeverFinishes,
            other => {
                return Err(format!(
                    "unknown job outcome {other:?}: success, warning, completed-failed, failed, never-finishes"
                ));
            }
        })
    }
}

/// What the institution's User Notifications Letter (`UserNotificationsLetter`, the letter
/// Update/Notify Users sends) looks like: whether the temporary password reaches the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum LetterState {
    /// Enabled, sent by email, its XSL prints `notification_data/temp_password` under
    /// `NOTIFY_PASSWORD_CHANGE`: the password arrives.
    #[default]
    Standard,
    /// Disabled: nothing is sent.
    Disabled,
    /// Its channel is SMS: no email, so no password by email.
    Sms,
    /// Rewritten by the institution as an overdue notice (as one institution's public copy is):
    /// emailed, but without the password anywhere.
    #[serde(rename = "no-password")]
    NoPasswordBranch,
    /// Saved half-edited: its XSL is not well-formed XML, so Alma cannot render it and nothing
    /// is sent (the simulator's assumption).
    #[serde(rename = "broken-xsl")]
    BrokenXsl,
    /// Reworded by staff (a new greeting) and saved: still emailed, still with the password —
    /// but not the letter a reviewer saw.
    Reworded,
}

impl LetterState {
    /// Its `--letter` name.
    pub fn name(self) -> &'static str {
        match self {
            LetterState::Standard => "standard",
            LetterState::Disabled => "disabled",
            LetterState::Sms => "sms",
            LetterState::NoPasswordBranch => "no-password",
            LetterState::BrokenXsl => "broken-xsl",
            LetterState::Reworded => "reworded",
        }
    }
}

impl std::fmt::Display for LetterState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for LetterState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "standard" => LetterState::Standard,
            "disabled" => LetterState::Disabled,
            "sms" => LetterState::Sms,
            "no-password" => LetterState::NoPasswordBranch,
            "broken-xsl" => LetterState::BrokenXsl,
            "reworded" => LetterState::Reworded,
            other => {
                return Err(format!(
                    "unknown letter state {other:?}: expected standard, disabled, sms, no-password or broken-xsl"
                ));
            }
        })
    }
}

/// How a user's record in Alma changed after the Analytics report was built (the report lags
/// Alma): the reports keep showing the user as before, `GET /users/{id}` and the job see this.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftKind {
    /// status INACTIVE
    Inactive,
    /// account_type EXTERNAL
    External,
    /// no preferred email (the address kept, not preferred)
    NoEmail,
    /// a staff role besides Patron, record_type STAFF
    Staff,
    /// expiry_date yesterday (the simulator's date)
    Expired,
}

impl DriftKind {
    /// Every kind, in the order `--drift` lists them.
    pub fn all() -> &'static [DriftKind] {
        &[
            DriftKind::Inactive,
            DriftKind::External,
            DriftKind::NoEmail,
            DriftKind::Staff,
            DriftKind::Expired,
        ]
    }

    /// Its `--drift` name.
    pub fn name(self) -> &'static str {
        match self {
            DriftKind::Inactive => "inactive",
            DriftKind::External => "external",
            DriftKind::NoEmail => "no_email",
            DriftKind::Staff => "staff",
            DriftKind::Expired => "expired",
        }
    }
}

impl std::fmt::Display for DriftKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for DriftKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "inactive" => DriftKind::Inactive,
            "external" => DriftKind::External,
            "no_email" | "no-email" => DriftKind::NoEmail,
            "staff" => DriftKind::Staff,
            "expired" => DriftKind::Expired,
            other => {
                return Err(format!(
                    "unknown drift {other:?}: expected inactive, external, no_email, staff or expired"
                ));
            }
        })
    }
}

/// One of a library's own people, for a rehearsal with its own list. A fact left `None` takes
/// the default: an internal, active UGRAD patron with a generated preferred email address and
/// an expiry date a year after the simulator's start. `email: Some("")` is a user with no
/// address at all.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserSeed {
    pub primary_id: String,
    /// Any code; one that is not among the simulator's groups is kept as given.
    pub user_group: Option<String>,
    pub internal: Option<bool>,
    pub active: Option<bool>,
    /// The preferred email address.
    pub email: Option<String>,
    pub expiry_date: Option<chrono::NaiveDate>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Area {
    Analytics,
    Configuration,
    Users,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    ReadWrite,
}

/// An API key the simulated institution knows, with its areas and permissions.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub key: String,
    pub grants: Vec<(Area, Access)>,
}

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKey")
            .field("key", &"<redacted>")
            .field("grants", &self.grants)
            .finish()
    }
}

impl FromStr for ApiKey {
    type Err = String;
    /// `KEY=analytics:r,conf:rw,users:r`
    fn from_str(s: &str) -> Result<Self, String> {
        let (key, grants) = s.split_once('=').ok_or("a key is KEY=area:r|rw[,area:r|rw...]")?;
        if key.is_empty() {
            return Err("the key is empty".into());
        }
        let grants = grants
            .split(',')
            .map(|g| {
                let (area, access) = g
                    .split_once(':')
                    .ok_or_else(|| format!("grant {g:?} is not area:r|rw"))?;
                let area = match area {
                    "analytics" => Area::Analytics,
                    "conf" | "configuration" => Area::Configuration,
                    "users" => Area::Users,
                    other => return Err(format!("unknown area {other:?} (analytics, conf, users)")),
                };
                let access = match access {
                    "r" => Access::Read,
                    "rw" => Access::ReadWrite,
                    other => return Err(format!("unknown access {other:?} (r, rw)")),
                };
                Ok((area, access))
            })
            .collect::<Result<_, String>>()?;
        Ok(ApiKey {
            key: key.to_string(),
            grants,
        })
    }
}

/// The keys every simulator accepts unless told otherwise.
pub fn default_keys() -> Vec<ApiKey> {
    vec![
        ApiKey {
            key: "sim-rw".into(),
            grants: vec![
                (Area::Analytics, Access::Read),
                (Area::Configuration, Access::ReadWrite),
                (Area::Users, Access::ReadWrite),
            ],
        },
        ApiKey {
            key: "sim-analytics-ro".into(),
            grants: vec![(Area::Analytics, Access::Read)],
        },
        ApiKey {
            key: "sim-ro".into(),
            grants: vec![
                (Area::Analytics, Access::Read),
                (Area::Configuration, Access::Read),
                (Area::Users, Access::Read),
            ],
        },
    ]
}

#[derive(Clone, Debug)]
pub struct SimConfig {
    pub users: usize,
    pub seed: u64,
    /// Extra reports: catalog path → CSV file.
    pub csv_reports: Vec<(String, PathBuf)>,
    pub keys: Vec<ApiKey>,
    pub first_page_latency: Duration,
    pub page_latency: Duration,
    /// Latency of `GET /users/{id}` (±50 % at random): Alma's answer time for one user.
    pub user_latency: Duration,
    /// How many "still loading" answers (no rows, IsFinished=false) a report gives before its rows.
    pub still_loading: u32,
    /// Say IsFinished=true after this many data pages, even with rows left (truncation).
    pub premature_finish_after: Option<u32>,
    pub faults: Vec<Fault>,
    pub job_outcome: JobOutcome,
    /// Simulated time from submission to a terminal status.
    pub job_duration: Duration,
    /// Requests per second per institution before 429 PER_SECOND_THRESHOLD; 0 turns it off.
    pub rate_limit: u32,
    pub daily_quota: u64,
    /// Start on a manual clock that only `advance` moves.
    pub manual_clock: bool,
    /// Pretty-print analytics pages (one element per line) as Alma does; off gives compact pages.
    pub pretty: bool,
    /// The institution's time zone: job instance names and `submit_date_from/to` are local.
    pub timezone: chrono::FixedOffset,
    /// A new job instance shows in instance lists only this long (sim clock) after submission.
    pub instance_listing_lag: Duration,
    /// A new set shows in `GET /conf/sets` (with or without `q=name~…`) only this long (sim
    /// clock) after its creation, as Alma's set list is read from an index that catches up
    /// later; `GET /conf/sets/{id}` and the name's uniqueness check (402263) see it at once.
    pub set_listing_lag: Duration,
    /// Answer shapes turned on (see [`Quirk`]).
    pub quirks: Vec<Quirk>,
    /// Finished instances of Update/Notify Users from the hours before start (other runs).
    pub past_instances: usize,
    /// Where a manual clock starts (default: Monday 2026-01-05 06:00 UTC).
    pub clock_start: Option<chrono::DateTime<chrono::Utc>>,
    /// Users with these primary IDs, beside the seeded ones (internal, active, with an email).
    pub named_users: Vec<String>,
    /// A library's own people ([`UserSeed`]): added, or replacing a seeded user of the same ID.
    pub user_seeds: Vec<UserSeed>,
    /// What the User Notifications Letter looks like at the start.
    pub letter: LetterState,
    /// When staff last edited the letter (its `update_date`, and `updated_by` another person).
    pub letter_edited_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Users whose live record changes after the reports were built: per kind, how many.
    pub drift: Vec<(DriftKind, usize)>,
    /// The token (header `X-Sim-Token`) that lets a client off this machine use `/_sim/*`;
    /// without one, `/_sim/*` answers only clients on loopback.
    pub inspect_token: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            users: 20_000,
            seed: 42,
            csv_reports: Vec::new(),
            keys: default_keys(),
            first_page_latency: Duration::ZERO,
            page_latency: Duration::ZERO,
            user_latency: Duration::ZERO,
            still_loading: 0,
            premature_finish_after: None,
            faults: Vec::new(),
            job_outcome: JobOutcome::Success,
            job_duration: Duration::from_secs(60),
            rate_limit: 25,
            daily_quota: 1_000_000,
            manual_clock: false,
            pretty: true,
            timezone: chrono::FixedOffset::east_opt(0).expect("UTC"),
            instance_listing_lag: Duration::ZERO,
            set_listing_lag: Duration::ZERO,
            quirks: Vec::new(),
            past_instances: 0,
            clock_start: None,
            named_users: Vec::new(),
            user_seeds: Vec::new(),
            letter: LetterState::Standard,
            letter_edited_at: None,
            drift: Vec::new(),
            inspect_token: None,
        }
    }
}

impl SimConfig {
    pub fn users(mut self, n: usize) -> Self {
        self.users = n;
        self
    }
    pub fn seed(mut self, s: u64) -> Self {
        self.seed = s;
        self
    }
    pub fn csv_report(mut self, path: impl Into<String>, file: impl Into<PathBuf>) -> Self {
        self.csv_reports.push((path.into(), file.into()));
        self
    }
    pub fn key(mut self, key: ApiKey) -> Self {
        self.keys.push(key);
        self
    }
    pub fn first_page_latency(mut self, d: Duration) -> Self {
        self.first_page_latency = d;
        self
    }
    pub fn user_latency(mut self, d: Duration) -> Self {
        self.user_latency = d;
        self
    }
    pub fn page_latency(mut self, d: Duration) -> Self {
        self.page_latency = d;
        self
    }
    pub fn still_loading(mut self, n: u32) -> Self {
        self.still_loading = n;
        self
    }
    pub fn premature_finish_after(mut self, pages: u32) -> Self {
        self.premature_finish_after = Some(pages);
        self
    }
    pub fn fault(mut self, f: Fault) -> Self {
        self.faults.push(f);
        self
    }
    pub fn job_outcome(mut self, o: JobOutcome) -> Self {
        self.job_outcome = o;
        self
    }
    pub fn job_duration(mut self, d: Duration) -> Self {
        self.job_duration = d;
        self
    }
    pub fn rate_limit(mut self, per_second: u32) -> Self {
        self.rate_limit = per_second;
        self
    }
    pub fn daily_quota(mut self, n: u64) -> Self {
        self.daily_quota = n;
        self
    }
    pub fn manual_clock(mut self) -> Self {
        self.manual_clock = true;
        self
    }
    pub fn compact(mut self) -> Self {
        self.pretty = false;
        self
    }
    pub fn timezone(mut self, tz: chrono::FixedOffset) -> Self {
        self.timezone = tz;
        self
    }
    pub fn instance_listing_lag(mut self, d: Duration) -> Self {
        self.instance_listing_lag = d;
        self
    }
    /// A new set is listed (`GET /conf/sets`) only `d` after its creation (sim clock); it can
    /// be read by id, and its name is taken, at once. A client that looks a set up by name
    /// right after creating it (say, after a lost answer) must not take "not listed" for
    /// "not there".
    pub fn set_listing_lag(mut self, d: Duration) -> Self {
        self.set_listing_lag = d;
        self
    }
    pub fn quirk(mut self, q: Quirk) -> Self {
        if !self.quirks.contains(&q) {
            self.quirks.push(q);
        }
        self
    }
    pub fn past_instances(mut self, n: usize) -> Self {
        self.past_instances = n;
        self
    }
    /// A manual clock that starts at `t`.
    pub fn manual_clock_at(mut self, t: chrono::DateTime<chrono::Utc>) -> Self {
        self.manual_clock = true;
        self.clock_start = Some(t);
        self
    }
    /// Adds users with these primary IDs (a rehearsal with the library's own list).
    pub fn named_users(mut self, ids: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.named_users.extend(ids.into_iter().map(Into::into));
        self
    }
    /// A library's own people: each added as a user, or replacing the seeded user with its ID
    /// (the library's data wins). They appear in the reports like the other users.
    pub fn user_seeds(mut self, seeds: Vec<UserSeed>) -> Self {
        self.user_seeds.extend(seeds);
        self
    }
    /// The User Notifications Letter as the institution has it at the start.
    pub fn letter(mut self, state: LetterState) -> Self {
        self.letter = state;
        self
    }
    /// The letter was last edited at `t` (its `update_date`), by someone else than usual.
    pub fn letter_edited_at(mut self, t: chrono::DateTime<chrono::Utc>) -> Self {
        self.letter_edited_at = Some(t);
        self
    }
    /// After the reports were built, `n` eligible users changed in Alma this way (may repeat;
    /// each user drifts one way only). The reports keep showing them as they were.
    pub fn drift(mut self, kind: DriftKind, n: usize) -> Self {
        self.drift.push((kind, n));
        self
    }
    /// Lets clients off this machine use `/_sim/*` with this token (at least 16 characters,
    /// printable ASCII).
    pub fn inspect_token(mut self, token: &str) -> Result<Self, String> {
        if token.len() < 16 || !token.chars().all(|c| c.is_ascii_graphic()) {
            return Err("--inspect-token: give at least 16 printable ASCII characters, no spaces".into());
        }
        self.inspect_token = Some(token.to_string());
        Ok(self)
    }
    pub fn has(&self, q: Quirk) -> bool {
        self.quirks.contains(&q)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_specs_parse() {
        let f: Fault = "5xx@analytics-next,skip=2,count=3".parse().unwrap();
        assert_eq!(
            f,
            Fault::new(FaultKind::ServerError, Target::AnalyticsNext)
                .skip(2)
                .count(3)
        );
        let f: Fault = "slow@analytics,ms=1500".parse().unwrap();
        assert_eq!(f.kind, FaultKind::Slow(Duration::from_millis(1500)));
        assert!("slow@analytics".parse::<Fault>().is_err());
        assert!("boom@analytics".parse::<Fault>().is_err());
        assert!(
            "5xx@nowhere"
                .parse::<Fault>()
                .unwrap_err()
                .contains("unknown fault target")
        );
        assert!(Target::Analytics.covers(Target::AnalyticsNext));
        assert!(!Target::SetCreate.covers(Target::SetOp));
    }

    #[test]
    fn key_specs_parse_and_never_print_the_key() {
        let k: ApiKey = "secret-123=analytics:r,conf:rw".parse().unwrap();
        assert_eq!(
            k.grants,
            vec![
                (Area::Analytics, Access::Read),
                (Area::Configuration, Access::ReadWrite)
            ]
        );
        assert!(!format!("{k:?}").contains("secret-123"));
        assert!("k=bibs:r".parse::<ApiKey>().is_err());
    }

    #[test]
    fn quirks_and_offsets_parse() {
        assert_eq!(Quirk::all().len(), 14, "every quirk is listed");
        for &q in Quirk::all() {
            assert_eq!(q.name().parse::<Quirk>(), Ok(q));
        }
        #[cfg(feature = "cli")]
        {
            assert_eq!(
                Quirk::all(),
                <Quirk as clap::ValueEnum>::value_variants(),
                "as --help lists them"
            );
            for &q in Quirk::all() {
                let clap_name = clap::ValueEnum::to_possible_value(&q).expect("listed");
                assert_eq!(clap_name.get_name(), q.name(), "--help shows the name that parses");
            }
        }
        assert_eq!(Quirk::ResultXmlStillLoading.name(), "result-xml-still-loading");
        assert!("nope".parse::<Quirk>().unwrap_err().contains("run-without-link"));
        assert_eq!(parse_offset("-05:00").unwrap().local_minus_utc(), -5 * 3600);
        assert_eq!(parse_offset("+13:00").unwrap().local_minus_utc(), 13 * 3600);
        assert_eq!(parse_offset("+05:30").unwrap().local_minus_utc(), 5 * 3600 + 1800);
        assert_eq!(parse_offset("Z").unwrap().local_minus_utc(), 0);
        assert!(parse_offset("5").is_err() && parse_offset("+15:00").is_err());
    }
}
