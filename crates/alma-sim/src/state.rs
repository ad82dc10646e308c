//! The simulator's state and its front door: the API gateway's checks (key, area and write
//! permission, daily quota, 25 requests/s, injected faults), routing, and the request log.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use chrono::{DateTime, NaiveDate, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::catalog::{SavedReport, builtin_reports};
use super::clock::Clock;
use super::config::{Access, Area, DriftKind, Fault, FaultKind, Quirk, SimConfig, Target};
use super::institution::{JobDef, User, apply_seeds, jobs, named_users, users};
use super::letter_conf::LetterConf;
use super::records::{Instance, Session, SimSet};
use super::wire::{AppError, Format, GatewayError, Reply};

/// One request as the simulator saw it. The API key is never recorded, not even the
/// `apikey` query parameter.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct RequestRecord {
    pub seq: u64,
    pub time: DateTime<Utc>,
    pub method: String,
    pub path: String,
    pub query: String,
    pub target: Target,
    /// `None` while the request is in flight, or when the client gave up before the answer.
    pub status: Option<u16>,
    /// Set when the answer was cut off on purpose (a dropped-connection fault).
    pub dropped: bool,
}

/// One letter the Update/Notify Users job emailed (to the user's preferred address; a letter
/// that could not be emailed — no preferred address, the letter disabled or sent by SMS — is
/// not here, see [`Reset`]).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Letter {
    pub seq: u64,
    pub job_instance_id: String,
    pub user_primary_id: String,
    /// The preferred address it went to.
    pub email: Option<String>,
    pub notification_type: String,
    /// The password it carries: `None` when the letter has no password branch (or the
    /// notification is not Notify Password Change).
    pub temp_password: Option<String>,
    /// The letter's text carries the temporary password.
    pub carries_password: bool,
    pub sent_at: DateTime<Utc>,
}

/// One password the Update/Notify Users job reset (Notify Password Change, an INTERNAL
/// member), and whether the user can know it.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Reset {
    /// The same number as the [`Letter`] that carried it, if one did.
    pub seq: u64,
    pub job_instance_id: String,
    pub user_primary_id: String,
    pub temp_password: String,
    /// A letter carrying this password was emailed.
    pub letter: bool,
    /// The password changed and no letter told the user the new one.
    pub locked_out: bool,
    /// Why no letter carried it: "letter disabled", "letter sent by SMS", "no preferred email",
    /// "letter has no password branch".
    pub why: Option<String>,
    pub at: DateTime<Utc>,
}

/// A parsed request, owned, handed to the endpoint code.
#[derive(Debug)]
pub struct Req {
    pub method: Method,
    pub segs: Vec<String>,
    pub query: Vec<(String, String)>,
    pub format: Format,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
    /// `http://host:port` as the client addressed us, for absolute links.
    pub base: String,
}

impl Req {
    pub fn q(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn link(&self, path: &str) -> String {
        format!("{}/almaws/v1/{}", self.base, path)
    }
}

/// What the gateway decided before the request reaches "Alma".
pub enum Admission {
    /// Answer right away (gateway error or injected status fault).
    Answer(Reply),
    /// Process it after `delay`; cut the answer off if `drop_after`.
    Proceed { delay: Duration, drop_after: bool },
    /// Cut the connection without processing anything.
    DropBefore,
}

pub struct State {
    pub cfg: SimConfig,
    pub clock: Clock,
    pub rng: ChaCha8Rng,
    /// The users as Alma holds them now (`GET /users/{id}`, the job).
    pub users: Vec<User>,
    /// The users as the Analytics reports show them: taken before any drift (the reports lag
    /// Alma), same order as `users`.
    pub report_users: Vec<User>,
    /// Lower-cased primary id → index into `users` (Alma matches primary ids case-insensitively).
    pub user_index: HashMap<String, usize>,
    /// Users whose live record changed after the reports were built, and how.
    pub drifted: Vec<(String, DriftKind)>,
    /// The User Notifications Letter as the institution has it.
    pub letter: LetterConf,
    /// Every password reset, in order.
    pub resets: Vec<Reset>,
    pub reports: Vec<SavedReport>,
    pub sessions: HashMap<String, Session>,
    pub session_order: VecDeque<String>,
    pub sets: BTreeMap<String, SimSet>,
    pub jobs: Vec<JobDef>,
    pub instances: BTreeMap<String, Instance>,
    pub outbox: Vec<Letter>,
    pub requests: Vec<RequestRecord>,
    pub seq: u64,
    quota_remaining: u64,
    quota_day: NaiveDate,
    rate_window: VecDeque<Instant>,
    fault_seen: Vec<u32>,
}

impl State {
    pub fn new(cfg: SimConfig, clock: Clock) -> Result<Self, String> {
        // Seeded dates are relative to the simulator's first day, so the share of expired users
        // stays the same whenever the tests run.
        let start = clock.now().date_naive();
        let mut users = users(cfg.users, cfg.seed, start);
        let named = named_users(&cfg.named_users, &users, start);
        users.extend(named);
        apply_seeds(&mut users, &cfg.user_seeds, start);
        let report_users = users.clone();
        let drifted = super::drift::drift_users(&mut users, &cfg.drift, cfg.seed, start)?;
        let letter = LetterConf::new(cfg.letter, cfg.letter_edited_at, start);
        let user_index = users
            .iter()
            .enumerate()
            .map(|(i, u)| (u.primary_id.to_ascii_lowercase(), i))
            .collect();
        let mut reports = builtin_reports();
        for (path, file) in &cfg.csv_reports {
            let report = SavedReport::from_csv(path, file)?;
            reports.retain(|r| r.path != report.path);
            reports.push(report);
        }
        let quota_day = clock.now().date_naive();
        let state = Self {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed),
            jobs: jobs(cfg.seed, cfg.has(Quirk::JobListLong)),
            quota_remaining: cfg.daily_quota,
            fault_seen: vec![0; cfg.faults.len()],
            cfg,
            clock,
            users,
            report_users,
            user_index,
            drifted,
            letter,
            resets: Vec::new(),
            reports,
            sessions: HashMap::new(),
            session_order: VecDeque::new(),
            sets: BTreeMap::new(),
            instances: BTreeMap::new(),
            outbox: Vec::new(),
            requests: Vec::new(),
            seq: 0,
            quota_day,
            rate_window: VecDeque::new(),
        };
        Ok(state)
    }

    pub fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    /// An Alma-looking trackingId: `E0n-<ddMMHHmmss>-<5 alnum>-AWAE<digits>`.
    pub fn tracking_id(&mut self) -> String {
        let now = self.clock.now();
        let alnum: String = (0..5)
            .map(|_| {
                let c = self.rng.random_range(0..36u8);
                if c < 10 {
                    (b'0' + c) as char
                } else {
                    (b'A' + c - 10) as char
                }
            })
            .collect();
        format!(
            "E0{}-{}-{alnum}-AWAE{}",
            self.rng.random_range(1..4),
            now.format("%d%m%H%M%S"),
            self.rng.random_range(100_000_000..2_000_000_000u64)
        )
    }

    pub fn request_id(&mut self) -> String {
        (0..10)
            .map(|_| (b'a' + self.rng.random_range(0..26u8)) as char)
            .collect()
    }

    pub fn quota_remaining(&self) -> u64 {
        self.quota_remaining
    }

    pub fn set_quota_remaining(&mut self, n: u64) {
        self.quota_remaining = n;
    }

    pub fn add_fault(&mut self, fault: Fault) {
        self.cfg.faults.push(fault);
        self.fault_seen.push(0);
    }

    pub fn clear_faults(&mut self) {
        self.cfg.faults.clear();
        self.fault_seen.clear();
    }

    /// The gateway: route known? key known and allowed? quota left? under the per-second
    /// threshold? any fault to inject? Records the request in the log either way.
    pub fn admit(&mut self, req: &Req, key: Option<&str>, target: Target, now: Instant) -> (Admission, usize) {
        let seq = self.next_seq();
        let query = req
            .query
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case("apikey"))
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        self.requests.push(RequestRecord {
            seq,
            time: self.clock.now(),
            method: req.method.to_string(),
            path: format!("/almaws/v1/{}", req.segs.join("/")),
            query,
            target,
            status: None,
            dropped: false,
        });
        let log_index = self.requests.len() - 1;
        (self.gate(req, key, target, now), log_index)
    }

    fn gate(&mut self, req: &Req, key: Option<&str>, target: Target, now: Instant) -> Admission {
        if target == Target::Unknown {
            let message = format!(
                "simulator: no route for {} /almaws/v1/{}",
                req.method,
                req.segs.join("/")
            );
            return Admission::Answer(GatewayError::NotFound.into_reply(req.format, Some(&message)));
        }
        // A key test endpoint tests the area its path names.
        let area = match (target, req.segs.first().map(String::as_str)) {
            (Target::Test, Some("analytics")) => Area::Analytics,
            (Target::Test, Some("users")) => Area::Users,
            _ => target.area(),
        };
        let Some(grant) = key.and_then(|k| self.cfg.keys.iter().find(|g| g.key == k)) else {
            // Alma's status for UNAUTHORIZED is not settled (400 and 403 both seen); unknown keys get 400.
            return Admission::Answer(
                GatewayError::Unauthorized {
                    status: StatusCode::BAD_REQUEST,
                }
                .into_reply(req.format, None),
            );
        };
        let writes = req.method != Method::GET;
        let allowed = grant
            .grants
            .iter()
            .any(|(a, access)| *a == area && (!writes || *access == Access::ReadWrite));
        if !allowed {
            return Admission::Answer(
                GatewayError::Unauthorized {
                    status: StatusCode::FORBIDDEN,
                }
                .into_reply(req.format, None),
            );
        }
        let today = self.clock.now().date_naive();
        if today != self.quota_day {
            self.quota_day = today;
            self.quota_remaining = self.cfg.daily_quota;
        }
        if self.quota_remaining == 0 {
            return Admission::Answer(GatewayError::DailyThreshold.into_reply(req.format, None));
        }
        self.quota_remaining -= 1;
        if self.cfg.rate_limit > 0 {
            while self
                .rate_window
                .front()
                .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
            {
                self.rate_window.pop_front();
            }
            if self.rate_window.len() >= self.cfg.rate_limit as usize {
                return Admission::Answer(GatewayError::PerSecondThreshold.into_reply(req.format, None));
            }
            self.rate_window.push_back(now);
        }
        let mut delay = match target {
            Target::AnalyticsFirst => self.cfg.first_page_latency,
            Target::AnalyticsNext => self.cfg.page_latency,
            // A user read takes Alma a moment, and not always the same: ±50 %.
            Target::UserGet if !self.cfg.user_latency.is_zero() => {
                self.cfg.user_latency.mul_f64(self.rng.random_range(0.5..1.5))
            }
            _ => Duration::ZERO,
        };
        // Every fault counts every request to its target, whatever the other faults do; the
        // first fault that answers or cuts the connection wins.
        let mut drop_after = false;
        let mut answer: Option<Admission> = None;
        for (i, fault) in self.cfg.faults.iter().enumerate() {
            if !fault.target.covers(target) {
                continue;
            }
            if let Some(after) = fault.after
                && !self
                    .requests
                    .iter()
                    .any(|r| r.target == after && r.status.is_some_and(|s| (200..300).contains(&s)))
            {
                continue;
            }
            self.fault_seen[i] += 1;
            let n = self.fault_seen[i];
            if n <= fault.skip || n > fault.skip.saturating_add(fault.count) || answer.is_some() {
                continue;
            }
            match fault.kind {
                FaultKind::ServerError => {
                    let status = StatusCode::SERVICE_UNAVAILABLE;
                    answer = Some(Admission::Answer(
                        GatewayError::GeneralError { status }.into_reply(req.format, None),
                    ));
                }
                FaultKind::TooManyRequests => {
                    answer = Some(Admission::Answer(
                        GatewayError::PerSecondThreshold.into_reply(req.format, None),
                    ));
                }
                FaultKind::DailyThreshold => {
                    answer = Some(Admission::Answer(
                        GatewayError::DailyThreshold.into_reply(req.format, None),
                    ));
                }
                FaultKind::DropBefore => answer = Some(Admission::DropBefore),
                FaultKind::NoMoreRows => {
                    let tracking = format!("E01-fault-{n}");
                    let e = AppError::bad_request("420033", "No more rows to fetch")
                        .with_status(StatusCode::INTERNAL_SERVER_ERROR);
                    answer = Some(Admission::Answer(e.into_reply(req.format, &tracking)));
                }
                FaultKind::DropAfter => drop_after = true,
                FaultKind::Slow(d) => delay += d,
            }
        }
        if let Some(answer) = answer {
            return answer;
        }
        Admission::Proceed { delay, drop_after }
    }

    pub fn finish_log(&mut self, index: usize, status: Option<u16>, dropped: bool) {
        if let Some(r) = self.requests.get_mut(index) {
            r.status = status;
            r.dropped = dropped;
        }
    }
}

/// Why an endpoint refused a request.
#[derive(Debug)]
pub enum Rejection {
    App(AppError),
    Gateway(GatewayError, Option<String>),
}

impl From<AppError> for Rejection {
    fn from(e: AppError) -> Self {
        Rejection::App(e)
    }
}

pub type Outcome = Result<Reply, Rejection>;

/// Which endpoint a request is for (also what faults aim at and the request log shows).
pub fn classify(method: &Method, segs: &[String], query: &[(String, String)]) -> Target {
    let s: Vec<&str> = segs.iter().map(String::as_str).collect();
    let has_token = query.iter().any(|(k, v)| k == "token" && !v.is_empty());
    let m = method.clone();
    match (m, s.as_slice()) {
        (Method::GET, ["analytics", "reports"]) if has_token => Target::AnalyticsNext,
        (Method::GET, ["analytics", "reports"]) => Target::AnalyticsFirst,
        (Method::GET, ["analytics", "paths", ..]) => Target::AnalyticsPaths,
        (Method::GET, ["conf", "sets"]) => Target::SetList,
        (Method::POST, ["conf", "sets"]) => Target::SetCreate,
        (Method::GET, ["conf", "sets", _]) => Target::SetGet,
        (Method::POST, ["conf", "sets", _]) => Target::SetOp,
        (Method::DELETE, ["conf", "sets", _]) => Target::SetDelete,
        (Method::GET, ["conf", "sets", _, "members"]) => Target::SetMembers,
        (Method::GET, ["conf", "jobs"]) => Target::JobList,
        (Method::GET, ["conf", "jobs", _]) => Target::JobGet,
        (Method::POST, ["conf", "jobs", _]) => Target::JobRun,
        (Method::GET, ["conf", "jobs", _, "instances"]) => Target::JobInstances,
        (Method::GET, ["conf", "jobs", _, "instances", _]) => Target::JobInstance,
        (Method::GET | Method::POST, ["conf" | "analytics" | "bibs", "test"]) => Target::Test,
        (Method::GET | Method::POST, ["users", "operation", "test"]) => Target::Test,
        (Method::GET, ["users", _]) => Target::UserGet,
        (Method::GET, ["conf", "letters"]) => Target::LetterList,
        (Method::GET, ["conf", "letters", _]) => Target::LetterGet,
        _ => Target::Unknown,
    }
}

impl Target {
    pub fn area(self) -> Area {
        match self {
            Target::AnalyticsFirst | Target::AnalyticsNext | Target::AnalyticsPaths | Target::Analytics => {
                Area::Analytics
            }
            Target::UserGet => Area::Users,
            _ => Area::Configuration,
        }
    }
}

/// Reads `limit`/`offset` for list endpoints (limit 0..=100, default 10).
pub fn paging(req: &Req) -> Result<(usize, usize), AppError> {
    let limit = match req.q("limit") {
        None | Some("") => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| *n <= 100)
            .ok_or_else(|| AppError::bad_request("SIM_INVALID_LIMIT", format!("limit must be 0-100, got {v}")))?,
    };
    let offset = match req.q("offset") {
        None | Some("") => 0,
        Some(v) => v
            .parse::<usize>()
            .map_err(|_| AppError::bad_request("SIM_INVALID_OFFSET", format!("offset must be a number, got {v}")))?,
    };
    Ok((limit, offset))
}

/// A JSON list response: `{"<key>": [...], "total_record_count": N}`, the array omitted when empty.
pub fn list_json<T>(
    key: &str,
    items: impl Iterator<Item = T>,
    total: usize,
    f: impl Fn(T) -> serde_json::Value,
) -> serde_json::Value {
    let items: Vec<serde_json::Value> = items.map(f).collect();
    let mut map = serde_json::Map::new();
    if !items.is_empty() {
        map.insert(key.to_string(), serde_json::Value::Array(items));
    }
    map.insert("total_record_count".to_string(), total.into());
    serde_json::Value::Object(map)
}

/// Parses a request body as JSON or XML by its content type (or first character), or
/// refuses it the way the gateway does.
pub enum Parsed {
    Json(serde_json::Value),
    Xml(super::xml::Node),
}

pub fn parse_body(req: &Req) -> Result<Parsed, Rejection> {
    let ct = req.content_type.as_deref().unwrap_or("").to_ascii_lowercase();
    let first = req.body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let json = ct.contains("json") || (!ct.contains("xml") && first == Some(b'{'));
    if json {
        serde_json::from_slice(&req.body).map(Parsed::Json).map_err(|e| {
            Rejection::Gateway(
                GatewayError::BadRequest,
                Some(format!("Malformed JSON request body: {e}")),
            )
        })
    } else {
        super::xml::parse_tree(&req.body).map(Parsed::Xml).map_err(|e| {
            Rejection::Gateway(
                GatewayError::BadRequest,
                Some(format!("Malformed XML request body: {e}")),
            )
        })
    }
}

/// JSON fields arrive as `"x"` or `{"value": "x"}`; booleans as `true` or `"true"`.
pub fn json_code(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Object(m) => json_code(m.get("value")),
        _ => None,
    }
}

pub fn format_alma_date(d: DateTime<Utc>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}
