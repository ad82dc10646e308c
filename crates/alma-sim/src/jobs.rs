//! Jobs (Configuration API): list, get, `op=run` with its thresholds, and instances that move
//! QUEUED → INITIALIZING → RUNNING → FINALIZING → terminal on the simulator's clock. When Update/Notify
//! Users ends well with Notify Password Change, each INTERNAL member gets a temporary password
//! (the reset log) and, when the User Notifications Letter can carry it to a preferred address,
//! one letter in the outbox; EXTERNAL members get none and are counted.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use rand::Rng;
use serde_json::{Value, json};

use super::config::{JobOutcome, Quirk};
use super::institution::{AccountType, JobDef, UPDATE_NOTIFY_USERS};
use super::records::Instance;
use super::state::{
    Letter, Outcome, Parsed, Req, Reset, State, format_alma_date, json_code, list_json, paging, parse_body,
};
use super::wire::{AppError, Reply};

/// At most this many API-submitted jobs may run at once (else 402222).
pub const MAX_RUNNING_API_JOBS: usize = 3;
/// At most this many runs of one job in the previous hour (else 402223).
pub const MAX_RUNS_PER_HOUR: usize = 5;

/// Statuses after which an instance changes no more (alma-api.md). Written here apart from the
/// client's list on purpose: the simulator is built from the facts, not from the client.
pub const TERMINAL: &[&str] = &[
    "COMPLETED_SUCCESS",
    "COMPLETED_WARNING",
    "COMPLETED_FAILED",
    "COMPLETED_NO_BULKS",
    "FAILED",
    "SKIPPED",
    "SYSTEM_ABORTED",
    "USER_ABORTED",
    "MANUAL_HANDLING_REQUIRED",
];

fn status_desc(code: &str) -> &'static str {
    match code {
        "QUEUED" => "Queued",
        "PENDING" => "Pending",
        "INITIALIZING" => "Initializing",
        "RUNNING" => "Running",
        "FINALIZING" => "Finalizing",
        "COMPLETED_SUCCESS" => "Completed Successfully",
        "COMPLETED_WARNING" => "Completed with Warnings",
        "COMPLETED_FAILED" => "Completed with Errors",
        "COMPLETED_NO_BULKS" => "Completed - No Bulks",
        "FAILED" => "Failed",
        _ => "",
    }
}

impl Instance {
    pub fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status)
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.parameters.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// Where the run is at `now`: fractions of `duration` spent queued (10 %), initializing
    /// (10 %), running (60 %) and finalizing (20 %, with `end_time` already set in its second
    /// half, as Alma does).
    fn advance_to(&mut self, now: DateTime<Utc>) {
        if self.is_terminal() {
            return;
        }
        let elapsed = (now - self.submitted).to_std().unwrap_or_default().as_secs_f64();
        let total = self.duration.as_secs_f64();
        let f = if total <= 0.0 { 1.0 } else { elapsed / total };
        let at = |frac: f64| self.submitted + chrono::Duration::milliseconds((total * frac * 1000.0) as i64);
        if f >= 0.1 && self.start_time.is_none() {
            self.start_time = Some(at(0.1));
        }
        let (status, progress) = match self.outcome {
            JobOutcome::NeverFinishes => match f {
                f if f < 0.1 => ("QUEUED", 0.0),
                f if f < 0.2 => ("INITIALIZING", 0.0),
                f => ("RUNNING", (f * 10.0).min(99.0)),
            },
            JobOutcome::Failed => match f {
                f if f < 0.1 => ("QUEUED", 0.0),
                f if f < 0.3 => ("INITIALIZING", 0.0),
                _ => ("FAILED", 0.0),
            },
            _ => match f {
                f if f < 0.1 => ("QUEUED", 0.0),
                f if f < 0.2 => ("INITIALIZING", 0.0),
                f if f < 0.8 => ("RUNNING", ((f - 0.2) / 0.6 * 100.0 * 1000.0).round() / 1000.0),
                f if f < 1.0 => ("FINALIZING", 100.0),
                _ => (self.terminal_status(), 100.0),
            },
        };
        self.status = status;
        self.progress = progress;
        if (status == "FINALIZING" && f >= 0.9) || self.is_terminal() {
            let end = if status == "FAILED" {
                at(0.3)
            } else {
                at(f.clamp(0.9, 1.0))
            };
            self.end_time.get_or_insert(end);
        }
    }

    /// Every date of the run `by` earlier (see `State::age_set`).
    pub(crate) fn shift_back(&mut self, by: chrono::Duration) {
        self.submitted -= by;
        for t in [&mut self.start_time, &mut self.end_time].into_iter().flatten() {
            *t -= by;
        }
    }

    fn terminal_status(&self) -> &'static str {
        if self.members.is_empty() {
            return "COMPLETED_NO_BULKS";
        }
        match self.outcome {
            JobOutcome::Success => "COMPLETED_SUCCESS",
            JobOutcome::Warning => "COMPLETED_WARNING",
            JobOutcome::CompletedFailed => "COMPLETED_FAILED",
            JobOutcome::Failed => "FAILED",
            JobOutcome::NeverFinishes => "RUNNING",
        }
    }
}

fn job_json(job: &JobDef, req: &Req) -> Value {
    json!({
        "id": job.id,
        "name": job.name,
        "description": job.description,
        "type": {"value": job.job_type, "desc": if job.job_type == "MANUAL" { "Manual" } else { "Scheduled" }},
        "category": {"value": job.category.0, "desc": job.category.1},
        "content": {"value": job.content.0, "desc": job.content.1},
        "link": req.link(&format!("conf/jobs/{}", job.id)),
    })
}

/// An instance as Alma shows it. Its name carries the submission's date and time in the
/// institution's time zone (alma-api.md §5.3, §8b: submitted 09:11Z, named "… 4:11 AM").
/// With `recorded` (`--quirk instance-recorded-shapes`), the shapes institutions recorded
/// (shared/real-alma §2, Princeton's failed job): progress 101.3 once the run has ended, a
/// counter whose type is a sentence with an empty desc and whose value is text, `submitted_by`
/// without desc.
fn instance_json(inst: &Instance, job: Option<&JobDef>, req: &Req, tz: &chrono::FixedOffset, recorded: bool) -> Value {
    let local = inst.submitted.with_timezone(tz);
    let mut v = json!({
        "id": inst.id,
        "external_id": format!("97{}", &inst.id[2..]),
        "name": format!("{} - {}", inst.name, local.format("%Y-%m-%d %-I:%M %p")),
        "progress": inst.progress,
        "status": {"value": inst.status, "desc": status_desc(inst.status)},
        "submitted_by": {"value": "exl_api", "desc": "Ex Libris, API"},
        "submit_time": format_alma_date(inst.submitted),
        "status_date": format!("{}Z", local.format("%Y-%m-%d")),
        "link": req.link(&format!("conf/jobs/{}/instances/{}", inst.job_id, inst.id)),
    });
    if let Some(t) = inst.start_time {
        v["start_time"] = format_alma_date(t).into();
    }
    if let Some(t) = inst.end_time {
        v["end_time"] = format_alma_date(t).into();
    }
    if !inst.alerts.is_empty() {
        v["alert"] = inst
            .alerts
            .iter()
            .map(|(value, desc)| json!({"value": value, "desc": desc}))
            .collect();
    }
    if !inst.counters.is_empty() {
        // Counter values are strings in Alma's answers.
        v["counter"] = inst
            .counters
            .iter()
            .map(|(t, desc, n)| json!({"type": {"value": t, "desc": desc}, "value": n.to_string()}))
            .collect();
    }
    if recorded {
        v["submitted_by"] = json!({"value": "exl_api"});
        if inst.is_terminal() {
            v["progress"] = json!(101.3);
            let sentence = json!({"type": {"value": "Letters were queued for the users.", "desc": ""}, "value": "See the letter log."});
            match v.get_mut("counter").and_then(Value::as_array_mut) {
                Some(counters) => counters.push(sentence),
                None => v["counter"] = json!([sentence]),
            }
        }
    }
    if let Some(job) = job {
        v["job_info"] = json!({
            "id": job.id, "name": job.name,
            "type": {"value": job.job_type, "desc": "Manual"},
            "category": {"value": job.category.0, "desc": job.category.1},
            "link": req.link(&format!("conf/jobs/{}", job.id)),
        });
    }
    v
}

fn job_id_shape_ok(id: &str) -> bool {
    let mut chars = id.chars();
    matches!(chars.next(), Some('M' | 'S' | 'O')) && id.len() > 1 && chars.all(|c| c.is_ascii_digit())
}

impl State {
    fn find_job(&self, id: &str) -> Result<&JobDef, AppError> {
        if !job_id_shape_ok(id) {
            return Err(AppError::bad_request(
                "402215",
                format!("Job ID {id} is not in a valid format"),
            ));
        }
        self.jobs
            .iter()
            .find(|j| j.id == id)
            .ok_or_else(|| AppError::bad_request("402216", format!("Invalid job ID: {id}")))
    }

    pub fn list_jobs(&mut self, req: &Req) -> Outcome {
        let (limit, offset) = paging(req)?;
        // Recorded: 400 jobs on one page of 439.
        let limit = if self.cfg.has(Quirk::JobListLong) { 400 } else { limit };
        let job_type = req.q("type").filter(|t| !t.is_empty());
        if let Some(t) = job_type
            && !matches!(t, "MANUAL" | "SCHEDULED" | "OTHER")
        {
            return Err(AppError::bad_request("40166410", format!("Invalid job type: {t}")).into());
        }
        let category = req.q("category").filter(|c| !c.is_empty());
        let matching: Vec<&JobDef> = self
            .jobs
            .iter()
            .filter(|j| job_type.is_none_or(|t| j.job_type == t))
            .filter(|j| category.is_none_or(|c| j.category.0 == c))
            .collect();
        let total = matching.len();
        Ok(Reply::ok(
            "jobs",
            list_json("job", matching.into_iter().skip(offset).take(limit), total, |j| {
                job_json(j, req)
            }),
        ))
    }

    pub fn get_job(&mut self, req: &Req) -> Outcome {
        let job = self.find_job(&req.segs[2])?;
        Ok(Reply::ok("job", job_json(job, req)))
    }

    pub fn run_job(&mut self, req: &Req) -> Outcome {
        let job = self.find_job(&req.segs[2])?.clone();
        match req.q("op") {
            None | Some("") => return Err(AppError::bad_request("402220", "The op parameter is missing").into()),
            Some("run") => {}
            Some(other) => {
                return Err(AppError::bad_request("402221", format!("Operation {other} is not supported")).into());
            }
        }
        let parameters = read_parameters(req)?;
        let param = |name: &str| {
            parameters
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_string())
        };
        let set_id = match param("set_id") {
            None => return Err(AppError::bad_request("402228", "Mandatory parameter set_id is missing").into()),
            Some(v) if v.is_empty() => {
                return Err(AppError::bad_request("402229", "Mandatory parameter set_id has an empty value").into());
            }
            Some(v) => v,
        };
        let set = self
            .sets
            .get(&set_id)
            .ok_or_else(|| AppError::bad_request("60107", format!("Invalid set ID: {set_id}")))?;
        let members = set.members.clone();
        let now = self.clock.now();
        if self
            .instances
            .values()
            .any(|i| i.job_id == job.id && i.set_id == set_id && !i.is_terminal())
        {
            return Err(AppError::bad_request("60347", "The job overlaps with a running job on the same set").into());
        }
        if self.instances.values().filter(|i| !i.is_terminal()).count() >= MAX_RUNNING_API_JOBS {
            return Err(AppError::bad_request(
                "402222",
                format!("Execution threshold reached: {MAX_RUNNING_API_JOBS} API jobs are already running"),
            )
            .into());
        }
        let hour_ago = now - chrono::Duration::hours(1);
        if self
            .instances
            .values()
            .filter(|i| i.job_id == job.id && i.submitted > hour_ago)
            .count()
            >= MAX_RUNS_PER_HOUR
        {
            return Err(AppError::bad_request(
                "402223",
                format!(
                    "Execution threshold reached: job {} ran {MAX_RUNS_PER_HOUR} times in the last hour",
                    job.id
                ),
            )
            .into());
        }
        let name = param("job_name")
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| job.name.clone());
        let id = self.start_instance(&job, name, set_id, parameters.clone(), members);
        let mut v = job_json(&job, req);
        v["parameter"] = parameters
            .iter()
            .map(|(k, val)| json!({"name": {"value": k}, "value": val}))
            .collect();
        let text = format!("Job no. {id} triggered on {}", now.format("%a, %d %b %Y %H:%M:%S GMT"));
        if self.cfg.has(Quirk::RunWithoutInstance) {
            // A 200 with the job and nothing saying which instance it started.
        } else if self.cfg.has(Quirk::RunWithoutLink) {
            v["additional_info"] = json!({ "value": text });
        } else {
            v["additional_info"] = json!({
                "value": text,
                "link": req.link(&format!("conf/jobs/{}/instances/{id}", job.id)),
            });
        }
        if self.cfg.has(Quirk::RunAnswerXml) {
            return Ok(Reply::rendered(
                axum::http::StatusCode::OK,
                super::wire::Format::Xml.content_type(),
                super::xml::json_to_xml("job", &v),
            ));
        }
        Ok(Reply::ok("job", v))
    }

    pub fn get_instance(&mut self, req: &Req) -> Outcome {
        let (job_id, instance_id) = (&req.segs[2], &req.segs[4]);
        let inst = self
            .instances
            .get(instance_id)
            .filter(|i| job_id == "ALL" || &i.job_id == job_id)
            .ok_or_else(|| AppError::bad_request("402218", format!("Invalid job instance ID: {instance_id}")))?;
        let job = self.jobs.iter().find(|j| j.id == inst.job_id);
        Ok(Reply::ok(
            "job_instance",
            instance_json(
                inst,
                job,
                req,
                &self.cfg.timezone,
                self.cfg.has(Quirk::InstanceRecordedShapes),
            ),
        ))
    }

    pub fn list_instances(&mut self, req: &Req) -> Outcome {
        let job_id = &req.segs[2];
        if job_id != "ALL" {
            self.find_job(job_id)?;
        }
        let (limit, offset) = paging(req)?;
        let date = |name: &str| -> Result<Option<NaiveDate>, AppError> {
            match req.q(name).filter(|v| !v.is_empty()) {
                None => Ok(None),
                Some(v) => NaiveDate::parse_from_str(v, "%Y-%m-%d").map(Some).map_err(|_| {
                    AppError::bad_request("402217", format!("Invalid date {v} for {name}: use YYYY-MM-DD"))
                }),
            }
        };
        let (from, to) = (date("submit_date_from")?, date("submit_date_to")?);
        let status = req.q("status").filter(|s| !s.is_empty());
        if let Some(s) = status
            && !(TERMINAL.contains(&s) || matches!(s, "QUEUED" | "PENDING" | "INITIALIZING" | "RUNNING" | "FINALIZING"))
        {
            return Err(AppError::bad_request("40166410", format!("Invalid status: {s}")).into());
        }
        // The dates are the institution's local dates; a new instance is listed only after the
        // listing lag (the instance itself can be read by id at once).
        let tz = self.cfg.timezone;
        let listed_before =
            self.clock.now() - chrono::Duration::from_std(self.cfg.instance_listing_lag).unwrap_or_default();
        let matching: Vec<&Instance> = self
            .instances
            .values()
            .filter(|i| job_id == "ALL" || &i.job_id == job_id)
            .filter(|i| i.submitted <= listed_before)
            .filter(|i| from.is_none_or(|d| i.submitted.with_timezone(&tz).date_naive() >= d))
            .filter(|i| to.is_none_or(|d| i.submitted.with_timezone(&tz).date_naive() <= d))
            .filter(|i| status.is_none_or(|s| i.status == s))
            .collect();
        let total = matching.len();
        let jobs = &self.jobs;
        let recorded = self.cfg.has(Quirk::InstanceRecordedShapes);
        let value = list_json(
            "job_instance",
            matching.into_iter().skip(offset).take(limit),
            total,
            |i| instance_json(i, jobs.iter().find(|j| j.id == i.job_id), req, &tz, recorded),
        );
        Ok(Reply::ok("job_instances", value))
    }

    /// Update/Notify Users with Notify Password Change started by staff in Alma's UI (Admin >
    /// Run a Job) on a set — no API call, so no API threshold counts it. The instance is named as
    /// the UI names a run: the job's name, the set's name, then the date (a recorded sample:
    /// "Export Physical Items - war and love - 04/15/2015 16:07"; inferred, not documented).
    pub fn run_from_ui(&mut self, set_id: &str) -> Result<String, String> {
        let job = self
            .jobs
            .iter()
            .find(|j| j.name == UPDATE_NOTIFY_USERS)
            .cloned()
            .ok_or("no Update/Notify Users job")?;
        let set = self.sets.get(set_id).ok_or_else(|| format!("no set {set_id}"))?;
        let (set_name, members) = (set.name.clone(), set.members.clone());
        let parameters = vec![
            ("set_id".to_string(), set_id.to_string()),
            ("SEND_Notification_To_User_Active".to_string(), "true".to_string()),
            (
                "SEND_Notification_To_User_Value".to_string(),
                "NOTIFY_PASSWORD_CHANGE".to_string(),
            ),
        ];
        self.refresh_jobs();
        let name = format!("{} - {set_name}", job.name);
        Ok(self.start_instance(&job, name, set_id.to_string(), parameters, members))
    }

    /// A new run of `job` on a set, queued now with the configured duration and outcome; its id.
    fn start_instance(
        &mut self,
        job: &JobDef,
        name: String,
        set_id: String,
        parameters: Vec<(String, String)>,
        members: Vec<String>,
    ) -> String {
        let now = self.clock.now();
        let seq = self.next_seq();
        let id = format!("96{:08}0001021", seq);
        let mut inst = Instance {
            id: id.clone(),
            job_id: job.id.clone(),
            name,
            set_id,
            parameters,
            submitted: now,
            duration: self.cfg.job_duration,
            outcome: self.cfg.job_outcome,
            members,
            status: "QUEUED",
            progress: 0.0,
            start_time: None,
            end_time: None,
            counters: Vec::new(),
            alerts: Vec::new(),
            applied: false,
        };
        inst.advance_to(now);
        self.instances.insert(id.clone(), inst);
        self.refresh_jobs();
        id
    }

    /// `past_instances` finished runs of Update/Notify Users by other staff, 2 to 3 hours before
    /// the start (outside the per-hour threshold), so that a lookup has pages to read.
    pub fn seed_past_instances(&mut self) {
        let Some(job) = self.jobs.iter().find(|j| j.name == UPDATE_NOTIFY_USERS).cloned() else {
            return;
        };
        let now = self.clock.now();
        let n = self.cfg.past_instances;
        for k in 0..n {
            let seq = self.next_seq();
            let id = format!("96{:08}0001021", seq);
            let back = chrono::Duration::hours(2) + chrono::Duration::seconds(((n - k) * 3600 / n.max(1)) as i64);
            let submitted = now - back;
            let inst = Instance {
                id: id.clone(),
                job_id: job.id.clone(),
                name: format!("Patron notices batch {k}"),
                set_id: "past".into(),
                parameters: Vec::new(),
                submitted,
                duration: Duration::from_secs(60),
                outcome: JobOutcome::Success,
                members: Vec::new(),
                status: "COMPLETED_NO_BULKS",
                progress: 100.0,
                start_time: Some(submitted),
                end_time: Some(submitted + chrono::Duration::seconds(60)),
                counters: vec![("users_processed", "Number of users processed", 0)],
                alerts: vec![("alert_no_bulks", "The set is empty.")],
                applied: true,
            };
            self.instances.insert(id, inst);
        }
    }

    /// Moves every run to where the clock says it is, and applies the effects of runs that have
    /// just ended.
    pub fn refresh_jobs(&mut self) {
        let now = self.clock.now();
        let ids: Vec<String> = self
            .instances
            .iter()
            .filter(|(_, i)| !i.applied)
            .map(|(k, _)| k.clone())
            .collect();
        for id in ids {
            let Some(inst) = self.instances.get_mut(&id) else {
                continue;
            };
            inst.advance_to(now);
            if inst.is_terminal() && !inst.applied {
                inst.applied = true;
                let inst = inst.clone();
                let (counters, alerts) = self.apply_effects(&inst);
                if let Some(i) = self.instances.get_mut(&id) {
                    i.counters = counters;
                    i.alerts = alerts;
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn apply_effects(
        &mut self,
        inst: &Instance,
    ) -> (
        Vec<(&'static str, &'static str, u64)>,
        Vec<(&'static str, &'static str)>,
    ) {
        let job_name = self
            .jobs
            .iter()
            .find(|j| j.id == inst.job_id)
            .map(|j| j.name.clone())
            .unwrap_or_default();
        let total = inst.members.len() as u64;
        let failed_alert = vec![(
            "alert_general_failure",
            "The job failed. For more information view the report details.",
        )];
        match inst.status {
            "FAILED" => return (vec![], failed_alert),
            "COMPLETED_FAILED" => {
                return (
                    vec![
                        ("users_processed", "Number of users processed", total),
                        ("users_failed", "Number of users failed", total),
                    ],
                    vec![(
                        "alert_general_failure",
                        "The job completed with errors. For more information view the report details.",
                    )],
                );
            }
            "COMPLETED_NO_BULKS" => {
                return (
                    vec![("users_processed", "Number of users processed", 0)],
                    vec![("alert_no_bulks", "The set is empty.")],
                );
            }
            _ => {}
        }
        let notify = job_name == UPDATE_NOTIFY_USERS
            && inst
                .param("SEND_Notification_To_User_Active")
                .is_some_and(|v| v.eq_ignore_ascii_case("true"));
        let notification = inst.param("SEND_Notification_To_User_Value").unwrap_or("").to_string();
        let password_change = notification == "NOTIFY_PASSWORD_CHANGE";
        let (mut notified, mut external) = (0u64, 0u64);
        if notify && !notification.is_empty() {
            let when = inst.end_time.unwrap_or(inst.submitted);
            for member in &inst.members {
                let Some(&ui) = self.user_index.get(&member.to_ascii_lowercase()) else {
                    continue;
                };
                // Notify Password Change only touches INTERNAL users (external ones have no
                // Alma password; behaviour for them is not documented, so they get nothing).
                // Inactive, expired and staff internal users are reset like the others (not
                // documented either: docs/simulator.md, assumptions).
                if password_change && self.users[ui].account_type == AccountType::External {
                    external += 1;
                    continue;
                }
                let temp = password_change.then(|| {
                    (0..10)
                        .map(|_| {
                            let c = self.rng.random_range(0..62u8);
                            match c {
                                0..10 => (b'0' + c) as char,
                                10..36 => (b'a' + c - 10) as char,
                                _ => (b'A' + c - 36) as char,
                            }
                        })
                        .collect::<String>()
                });
                if temp.is_some() {
                    self.users[ui].temp_password = temp.clone();
                }
                let seq = self.next_seq();
                let user = &self.users[ui];
                let (emailed, carries_password, why) = self.letter.delivery(user.email.is_some(), password_change);
                if emailed {
                    self.outbox.push(Letter {
                        seq,
                        job_instance_id: inst.id.clone(),
                        user_primary_id: user.primary_id.clone(),
                        email: user.email.clone(),
                        notification_type: notification.clone(),
                        temp_password: temp.clone().filter(|_| carries_password),
                        carries_password,
                        sent_at: when,
                    });
                    notified += 1;
                }
                if let Some(temp) = temp {
                    self.resets.push(Reset {
                        seq,
                        job_instance_id: inst.id.clone(),
                        user_primary_id: user.primary_id.clone(),
                        temp_password: temp,
                        letter: carries_password,
                        locked_out: !carries_password,
                        why: why.map(str::to_string),
                        at: when,
                    });
                }
            }
        }
        let counters = vec![
            ("users_processed", "Number of users processed", total),
            ("users_notified", "Number of users notified", notified),
            (
                "users_external_not_notified",
                "Number of external users not notified",
                external,
            ),
        ];
        let alerts = if inst.status == "COMPLETED_WARNING" {
            vec![(
                "alert_general_warning",
                "The job completed with warnings. For more information view the report details.",
            )]
        } else {
            vec![(
                "alert_general_success",
                "The job completed successfully. For more information view the report details.",
            )]
        };
        (counters, alerts)
    }
}

/// Job parameters from a JSON (`{"parameter":[{"name":{"value":..},"value":..}]}`) or XML
/// (`<job><parameters><parameter><name/><value/>…`) body. An empty body has none.
fn read_parameters(req: &Req) -> Result<Vec<(String, String)>, super::state::Rejection> {
    if req.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Vec::new());
    }
    Ok(match parse_body(req)? {
        Parsed::Json(v) => {
            let list = match v.get("parameter") {
                Some(Value::Array(items)) => items.clone(),
                Some(one @ Value::Object(_)) => vec![one.clone()],
                _ => Vec::new(),
            };
            list.iter()
                .filter_map(|p| Some((json_code(p.get("name"))?, json_code(p.get("value")).unwrap_or_default())))
                .collect()
        }
        Parsed::Xml(node) => node
            .child("parameters")
            .map(|ps| {
                ps.children_named("parameter")
                    .filter_map(|p| {
                        Some((
                            p.child_text("name")?.to_string(),
                            p.child_text("value").unwrap_or("").to_string(),
                        ))
                    })
                    .collect()
            })
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(outcome: JobOutcome, members: usize) -> Instance {
        Instance {
            id: "960000000010001021".into(),
            job_id: "M1".into(),
            name: "x".into(),
            set_id: "s".into(),
            parameters: vec![],
            submitted: DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap(),
            duration: Duration::from_secs(100),
            outcome,
            members: vec!["a".into(); members],
            status: "QUEUED",
            progress: 0.0,
            start_time: None,
            end_time: None,
            counters: vec![],
            alerts: vec![],
            applied: false,
        }
    }

    mod resets {
        use axum::http::Method;

        use crate::config::{DriftKind, LetterState, SimConfig};
        use crate::institution::AccountType;
        use crate::state::State;
        use crate::testkit::{notify, req, state};
        use crate::wire::Format;

        /// Members of every kind: eligible, a non-preferred address only, no address, external,
        /// inactive, staff, expired (drifted at run time).
        fn members(st: &mut State) -> Vec<String> {
            let today = st.clock.now().date_naive();
            let find = |st: &State, what: &str, p: &dyn Fn(&crate::institution::User) -> bool| {
                st.users
                    .iter()
                    .find(|u| p(u))
                    .unwrap_or_else(|| panic!("no {what} user"))
                    .primary_id
                    .clone()
            };
            let internal = |u: &crate::institution::User| u.account_type == AccountType::Internal;
            let eligible = find(st, "eligible", &|u| u.fully_eligible(today));
            let other_only = find(st, "other-only", &|u| {
                internal(u) && u.email.is_none() && u.other_email.is_some()
            });
            let no_address = find(st, "address-less", &|u| {
                internal(u) && u.email.is_none() && u.other_email.is_none()
            });
            let external = find(st, "external", &|u| {
                u.account_type == AccountType::External && u.email.is_some()
            });
            let inactive = find(st, "inactive", &|u| internal(u) && !u.active && u.email.is_some());
            let staff = find(st, "staff", &|u| {
                internal(u) && u.is_staff() && u.active && u.email.is_some()
            });
            let expired = st
                .users
                .iter()
                .filter(|u| u.fully_eligible(today))
                .nth(1)
                .unwrap()
                .primary_id
                .clone();
            st.change_user(&expired, DriftKind::Expired).unwrap();
            vec![eligible, other_only, no_address, external, inactive, staff, expired]
        }

        fn counter(st: &State, instance: &str, name: &str) -> u64 {
            st.instances[instance]
                .counters
                .iter()
                .find(|c| c.0 == name)
                .map(|c| c.2)
                .unwrap()
        }

        #[test]
        fn the_standard_letter_reaches_everyone_with_a_preferred_address() {
            let mut st = state(SimConfig::default().users(2000).seed(7));
            let m = members(&mut st);
            let instance = notify(&mut st, &m);
            assert_eq!(st.instances[&instance].status, "COMPLETED_SUCCESS");
            let mailed: Vec<&str> = st.outbox.iter().map(|l| l.user_primary_id.as_str()).collect();
            assert_eq!(
                mailed,
                [&m[0], &m[4], &m[5], &m[6]],
                "eligible, inactive, staff, expired"
            );
            for l in &st.outbox {
                assert!(l.carries_password && l.temp_password.as_ref().is_some_and(|p| p.len() == 10));
                let u = &st.users[st.user_index[&l.user_primary_id.to_ascii_lowercase()]];
                assert_eq!(l.email, u.email, "to the preferred address");
                assert_eq!(u.temp_password, l.temp_password);
            }
            let reset: Vec<&str> = st.resets.iter().map(|r| r.user_primary_id.as_str()).collect();
            assert_eq!(
                reset,
                [&m[0], &m[1], &m[2], &m[4], &m[5], &m[6]],
                "every internal member, not the external one"
            );
            let locked: Vec<(&str, Option<&str>)> = st
                .resets
                .iter()
                .filter(|r| r.locked_out)
                .map(|r| (r.user_primary_id.as_str(), r.why.as_deref()))
                .collect();
            assert_eq!(
                locked,
                [
                    (m[1].as_str(), Some("no preferred email")),
                    (m[2].as_str(), Some("no preferred email"))
                ]
            );
            assert!(st.resets.iter().all(|r| r.letter != r.locked_out));
            assert_eq!(crate::locked_out_ids(&st.resets), [m[1].clone(), m[2].clone()]);
            // A letter and its reset share their number.
            let first = &st.resets[0];
            assert_eq!(
                (first.seq, Some(&first.temp_password)),
                (st.outbox[0].seq, st.outbox[0].temp_password.as_ref())
            );
            let external = &st.users[st.user_index[&m[3].to_ascii_lowercase()]];
            assert_eq!(external.temp_password, None, "external users are untouched");
            assert_eq!(counter(&st, &instance, "users_processed"), 7);
            assert_eq!(counter(&st, &instance, "users_notified"), 4);
            assert_eq!(counter(&st, &instance, "users_external_not_notified"), 1);
        }

        #[test]
        fn a_disabled_sms_or_rewritten_letter_locks_everyone_out() {
            for (letter, why, mailed) in [
                (LetterState::Disabled, "letter disabled", 0),
                (LetterState::Sms, "letter sent by SMS", 0),
                (LetterState::NoPasswordBranch, "letter has no password branch", 4),
            ] {
                let mut st = state(SimConfig::default().users(2000).seed(7).letter(letter));
                let m = members(&mut st);
                let instance = notify(&mut st, &m);
                assert_eq!(st.outbox.len(), mailed, "{letter}");
                assert!(
                    st.outbox
                        .iter()
                        .all(|l| !l.carries_password && l.temp_password.is_none()),
                    "{letter}: a letter without the password"
                );
                assert_eq!(counter(&st, &instance, "users_notified"), mailed as u64);
                assert_eq!(st.resets.len(), 6, "{letter}: the passwords are reset all the same");
                assert!(st.resets.iter().all(|r| r.locked_out && !r.letter), "{letter}");
                let whys: Vec<&str> = st.resets.iter().map(|r| r.why.as_deref().unwrap()).collect();
                let expected: Vec<&str> = if letter == LetterState::NoPasswordBranch {
                    vec![why, "no preferred email", "no preferred email", why, why, why]
                } else {
                    vec![why; 6]
                };
                assert_eq!(whys, expected, "{letter}");
                assert_eq!(crate::locked_out_ids(&st.resets).len(), 6);
            }
        }

        #[test]
        fn a_later_letter_with_the_new_password_lets_the_user_in_again() {
            let mut st = state(SimConfig::default().users(300).seed(7).letter(LetterState::Disabled));
            let today = st.clock.now().date_naive();
            let id = st
                .users
                .iter()
                .find(|u| u.fully_eligible(today))
                .unwrap()
                .primary_id
                .clone();
            notify(&mut st, std::slice::from_ref(&id));
            assert_eq!(crate::locked_out_ids(&st.resets), std::slice::from_ref(&id));
            let now = st.clock.now();
            st.letter.set(LetterState::Standard, now);
            notify(&mut st, std::slice::from_ref(&id));
            assert_eq!(st.resets.len(), 2);
            assert!(crate::locked_out_ids(&st.resets).is_empty());
            assert_ne!(st.resets[0].temp_password, st.resets[1].temp_password);
            assert_eq!(st.outbox.len(), 1);
        }

        #[test]
        fn another_notification_resets_nobody() {
            let mut st = state(SimConfig::default().users(2000).seed(7));
            let m = members(&mut st);
            let set = crate::testkit::set_of(&mut st, &m);
            let job = st
                .jobs
                .iter()
                .find(|j| j.name == super::UPDATE_NOTIFY_USERS)
                .unwrap()
                .id
                .clone();
            let mut run = req(Method::POST, &format!("conf/jobs/{job}?op=run"), Format::Json);
            run.content_type = Some("application/json".into());
            run.body = serde_json::json!({"parameter": [
                {"name": {"value": "set_id"}, "value": set},
                {"name": {"value": "SEND_Notification_To_User_Active"}, "value": "true"},
                {"name": {"value": "SEND_Notification_To_User_Value"}, "value": "ACCOUNT_EXPIRY_REMINDER"},
            ]})
            .to_string()
            .into_bytes();
            let reply = st.process(&run, crate::config::Target::JobRun);
            assert_eq!(reply.status, axum::http::StatusCode::OK);
            st.clock.advance(std::time::Duration::from_secs(3600));
            st.refresh_jobs();
            assert!(st.resets.is_empty());
            assert!(st.users.iter().all(|u| u.temp_password.is_none()));
            let mailed: Vec<&str> = st.outbox.iter().map(|l| l.user_primary_id.as_str()).collect();
            assert_eq!(
                mailed,
                [&m[0], &m[3], &m[4], &m[5], &m[6]],
                "everyone with a preferred address"
            );
            assert!(
                st.outbox
                    .iter()
                    .all(|l| !l.carries_password && l.notification_type == "ACCOUNT_EXPIRY_REMINDER")
            );
        }
    }

    #[test]
    fn lifecycle_walks_every_state() {
        let mut i = instance(JobOutcome::Success, 3);
        let mut seen = Vec::new();
        for s in (0..=100).step_by(5) {
            i.advance_to(i.submitted + chrono::Duration::seconds(s));
            if seen.last() != Some(&i.status) {
                seen.push(i.status);
            }
        }
        assert_eq!(
            seen,
            ["QUEUED", "INITIALIZING", "RUNNING", "FINALIZING", "COMPLETED_SUCCESS"]
        );
        assert!(i.end_time.is_some());
    }

    #[test]
    fn end_time_can_appear_while_finalizing_and_failed_keeps_progress_zero() {
        let mut i = instance(JobOutcome::Success, 3);
        i.advance_to(i.submitted + chrono::Duration::seconds(95));
        assert_eq!(i.status, "FINALIZING");
        assert!(i.end_time.is_some());
        let mut f = instance(JobOutcome::Failed, 3);
        f.advance_to(f.submitted + chrono::Duration::seconds(500));
        assert_eq!((f.status, f.progress), ("FAILED", 0.0));
        let mut e = instance(JobOutcome::Success, 0);
        e.advance_to(e.submitted + chrono::Duration::seconds(500));
        assert_eq!(e.status, "COMPLETED_NO_BULKS");
        let mut n = instance(JobOutcome::NeverFinishes, 3);
        n.advance_to(n.submitted + chrono::Duration::days(5));
        assert_eq!(n.status, "RUNNING");
    }
}
