//! Jobs: find a manual job by name (paging through the list), run it on a set, and follow the
//! instance with growing waits until it ends. A run is never submitted twice by this module: after
//! an unclear failure the caller looks for the instance among the job's recent instances.

use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::{Value, json};

use super::error::Error;
use super::http::{AlmaClient, Repeat};

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct JobId(pub String);

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstanceId(pub String);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Statuses after which a job instance changes no more.
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

/// A job instance as Alma reports it.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct InstanceStatus {
    pub id: String,
    pub name: String,
    pub status: String,
    pub progress: f64,
    pub submit_time: Option<String>,
    pub end_time: Option<String>,
    /// `(type code, description, value)`
    pub counters: Vec<(String, String, String)>,
    /// `(code, description)`
    pub alerts: Vec<(String, String)>,
}

impl InstanceStatus {
    pub fn is_terminal(&self) -> bool {
        TERMINAL.contains(&self.status.as_str())
    }

    fn from_json(v: &Value) -> Self {
        let code = |x: Option<&Value>| -> String {
            match x {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Object(m)) => m.get("value").and_then(Value::as_str).unwrap_or_default().to_string(),
                Some(other) => other.to_string(),
                None => String::new(),
            }
        };
        let desc = |x: Option<&Value>| {
            x.and_then(|o| o.get("desc"))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let items = |k: &str| -> Vec<Value> {
            match v.get(k) {
                Some(Value::Array(a)) => a.clone(),
                Some(o @ Value::Object(_)) => vec![o.clone()],
                _ => Vec::new(),
            }
        };
        InstanceStatus {
            id: code(v.get("id")),
            name: code(v.get("name")),
            status: code(v.get("status")),
            progress: v
                .get("progress")
                .and_then(|p| p.as_f64().or_else(|| p.as_str()?.parse().ok()))
                .unwrap_or(0.0),
            submit_time: v.get("submit_time").and_then(Value::as_str).map(str::to_string),
            end_time: v.get("end_time").and_then(Value::as_str).map(str::to_string),
            counters: items("counter")
                .iter()
                .map(|c| (code(c.get("type")), desc(c.get("type")), code(c.get("value"))))
                .collect(),
            alerts: items("alert").iter().map(|a| (code(Some(a)), desc(Some(a)))).collect(),
        }
    }
}

/// A list answer's items under `key`: an array, or one object on its own.
fn list_items(v: &Value, key: &str) -> Vec<Value> {
    match v.get(key) {
        Some(Value::Array(a)) => a.clone(),
        Some(o @ Value::Object(_)) => vec![o.clone()],
        _ => Vec::new(),
    }
}

/// A list answer's `total_record_count`, a number or a string of digits (both seen); 0 if absent.
fn total_record_count(v: &Value) -> usize {
    v.get("total_record_count")
        .and_then(|t| t.as_u64().or_else(|| t.as_str()?.trim().parse().ok()))
        .unwrap_or(0) as usize
}

/// What Alma said when it took a job run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Submitted {
    /// The instance id, when the answer named it.
    pub instance: Option<InstanceId>,
    /// `additional_info`'s text, e.g. "Job no. 9563643080000561 triggered on …".
    pub message: Option<String>,
}

impl Submitted {
    /// Reads a 2xx answer to `op=run`, JSON or XML, as leniently as it can.
    pub fn from_body(bytes: &[u8]) -> Submitted {
        let text = String::from_utf8_lossy(bytes);
        let (link, message) = match serde_json::from_slice::<Value>(bytes) {
            Ok(v) => {
                let info = v.get("additional_info");
                let link = info
                    .and_then(|a| a.get("link"))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                let message = match info {
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(a) => a.get("value").and_then(Value::as_str).map(str::to_string),
                    None => None,
                };
                (link, message)
            }
            Err(_) => {
                // XML: <additional_info link="…">Job no. … triggered on …</additional_info>
                let element = text.find("<additional_info").map(|i| &text[i..]);
                let link = element.and_then(|e| {
                    let head = &e[..e.find('>')?];
                    let at = head.find("link=\"")? + 6;
                    Some(head[at..at + head[at..].find('"')?].to_string())
                });
                let message = element.and_then(|e| {
                    let start = e.find('>')? + 1;
                    let end = e.find("</additional_info>")?;
                    (start <= end).then(|| e[start..end].trim().to_string())
                });
                (link, message)
            }
        };
        let from_link = link.as_deref().and_then(|l| {
            let (_, after) = l.split_once("/instances/")?;
            let id = after.trim_end_matches('/').split(['/', '?']).next()?;
            (!id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric())).then(|| id.to_string())
        });
        let from_text = message.as_deref().and_then(|m| {
            let after = &m[m.find("Job no.")? + "Job no.".len()..];
            let id: String = after.trim_start().chars().take_while(char::is_ascii_digit).collect();
            (!id.is_empty()).then_some(id)
        });
        Submitted {
            instance: from_link.or(from_text).map(InstanceId),
            message,
        }
    }
}

/// How to follow a job: the first wait, how it grows, its cap, and when to give up.
#[derive(Clone, Debug, PartialEq)]
pub struct PollPolicy {
    pub first: Duration,
    pub factor: f64,
    pub max: Duration,
    pub deadline: Duration,
    /// Failed polls in a row tolerated before giving up.
    pub max_failures: u32,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(15),
            factor: 1.5,
            max: Duration::from_secs(300),
            deadline: Duration::from_secs(12 * 3600),
            max_failures: 20,
        }
    }
}

impl AlmaClient {
    /// The id of the one MANUAL job called `name`, paging through the job list.
    pub async fn find_job_by_name(&self, name: &str) -> Result<JobId, Error> {
        let mut found = Vec::new();
        let mut seen = 0;
        loop {
            let off = seen.to_string();
            let v = self
                .call_json(
                    Method::GET,
                    "conf/jobs",
                    &[("type", "MANUAL"), ("limit", "100"), ("offset", off.as_str())],
                    None,
                    Repeat::Always,
                )
                .await?;
            let page = list_items(&v, "job");
            seen += page.len();
            for j in &page {
                if j.get("name").and_then(Value::as_str).map(str::trim) == Some(name.trim()) {
                    found.push(j.get("id").and_then(Value::as_str).unwrap_or_default().to_string());
                }
            }
            if page.is_empty() || seen >= total_record_count(&v) {
                break;
            }
        }
        match found.len() {
            1 => Ok(JobId(found.remove(0))),
            0 => Err(Error::Report {
                path: "conf/jobs".into(),
                message: format!(
                    "no MANUAL job is called {name:?} ({seen} manual jobs looked at); give [job] id = \"…\" in the query file, or check the name"
                ),
            }),
            n => Err(Error::Report {
                path: "conf/jobs".into(),
                message: format!(
                    "{n} MANUAL jobs are called {name:?} ({}); give [job] id = \"…\" in the query file",
                    found.join(", ")
                ),
            }),
        }
    }

    /// Runs a job. Sent once (repeated only if Alma surely never got it). Any 2xx answer means
    /// Alma took the job: the instance id comes from `additional_info.link`, else from "Job no. N"
    /// in its text, else it is unknown (and the caller finds it by the instance name) — an answer
    /// we cannot read never turns a submitted job into a failed submit.
    pub async fn run_job(&self, job: &JobId, parameters: &[(String, String)]) -> Result<Submitted, Error> {
        let body = json!({"parameter": parameters.iter().map(|(k, v)| json!({"name": {"value": k}, "value": v})).collect::<Vec<_>>()});
        let path = format!("conf/jobs/{}", job.0);
        let response = self
            .request(
                Method::POST,
                &path,
                &[("op", "run")],
                Some(&body),
                "application/json",
                Repeat::OnlyIfNotReceived,
            )
            .await?;
        // From here on the job is submitted, whatever the body says.
        let bytes = match response.bytes().await {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(error = %e, "the job was accepted but its answer was cut off");
                return Ok(Submitted::default());
            }
        };
        Ok(Submitted::from_body(&bytes))
    }

    pub async fn job_instance(&self, job: &JobId, instance: &InstanceId) -> Result<InstanceStatus, Error> {
        let path = format!("conf/jobs/{}/instances/{}", job.0, instance.0);
        let v = self.call_json(Method::GET, &path, &[], None, Repeat::Always).await?;
        Ok(InstanceStatus::from_json(&v))
    }

    /// The job's instances submitted from `from` to `to` (YYYY-MM-DD, both included), every page.
    pub async fn job_instances_between(&self, job: &JobId, from: &str, to: &str) -> Result<Vec<InstanceStatus>, Error> {
        let path = format!("conf/jobs/{}/instances", job.0);
        let mut out = Vec::new();
        let mut offset = 0usize;
        loop {
            let off = offset.to_string();
            let query = [
                ("submit_date_from", from),
                ("submit_date_to", to),
                ("limit", "100"),
                ("offset", off.as_str()),
            ];
            let v = self.call_json(Method::GET, &path, &query, None, Repeat::Always).await?;
            let page = list_items(&v, "job_instance");
            offset += page.len();
            out.extend(page.iter().map(InstanceStatus::from_json));
            if page.is_empty() || offset >= total_record_count(&v) {
                return Ok(out);
            }
        }
    }

    /// Polls the instance with growing waits until it ends; `on_status` sees every poll. Failed
    /// polls are tolerated (up to `max_failures` in a row); the deadline ends the wait with an
    /// error, the instance untouched.
    pub async fn follow_job(
        &self,
        job: &JobId,
        instance: &InstanceId,
        policy: &PollPolicy,
        on_status: &mut dyn FnMut(&InstanceStatus),
    ) -> Result<InstanceStatus, Error> {
        self.follow_job_with_sleep(job, instance, policy, on_status, &|d| Box::pin(tokio::time::sleep(d)))
            .await
    }

    /// [`follow_job`](Self::follow_job) with the wait between polls done by `sleep` (tests move
    /// a simulated clock instead of sleeping). The deadline counts the time waited or the time
    /// passed, whichever is more.
    pub async fn follow_job_with_sleep(
        &self,
        job: &JobId,
        instance: &InstanceId,
        policy: &PollPolicy,
        on_status: &mut dyn FnMut(&InstanceStatus),
        sleep: &(dyn Fn(Duration) -> BoxFuture<'static, ()> + Send + Sync),
    ) -> Result<InstanceStatus, Error> {
        let started = tokio::time::Instant::now();
        let mut waited = Duration::ZERO;
        let mut wait = policy.first;
        let mut failures = 0;
        loop {
            match self.job_instance(job, instance).await {
                Ok(status) => {
                    failures = 0;
                    on_status(&status);
                    if status.is_terminal() {
                        return Ok(status);
                    }
                }
                Err(e) if matches!(e, Error::DailyThreshold { .. }) => return Err(e),
                Err(e) => {
                    failures += 1;
                    if failures > policy.max_failures {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, failures, "polling the job failed; trying again");
                }
            }
            let elapsed = started.elapsed().max(waited);
            if elapsed + wait > policy.deadline {
                return Err(Error::Report {
                    path: format!("conf/jobs/{job}/instances/{instance}"),
                    message: format!(
                        "the job has not ended after {:.0} s of waiting; it may still be running in Alma — follow it with `alma-cohort resume`",
                        elapsed.as_secs_f64()
                    ),
                });
            }
            sleep(wait).await;
            waited += wait;
            wait = wait.mul_f64(policy.factor).min(policy.max);
        }
    }
}
