//! Jobs: find a manual job by name (paging through the list), run it on a set, and follow the
//! instance with growing waits until it ends. A run is never submitted twice by this module: after
//! an unclear failure the caller looks for the instance among the job's recent instances.

use std::ops::ControlFlow;
use std::time::Duration;

use futures_util::future::BoxFuture;
use reqwest::Method;
use serde_json::json;

use super::error::Error;
use super::http::{AlmaClient, Repeat};
use super::model::{Code, lenient, lenient_f64, list_page, one_or_many};

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
}

/// An instance in Alma's JSON (`GET …/instances/{id}`, a list's items). Recorded shapes:
/// `progress` 101.3, counters whose type is a sentence with an empty desc, `submitted_by`
/// without desc, relative links, timestamps with milliseconds. Counters, alerts and progress are
/// shown, not decided on: an odd one is read as empty rather than the instance as unreadable.
#[derive(serde::Deserialize)]
struct InstanceAnswer {
    #[serde(default)]
    id: Code,
    #[serde(default)]
    name: Code,
    #[serde(default)]
    status: Code,
    #[serde(default, deserialize_with = "lenient")]
    progress: Progress,
    #[serde(default)]
    submit_time: Option<Code>,
    #[serde(default)]
    end_time: Option<Code>,
    #[serde(default, deserialize_with = "lenient")]
    counter: List<CounterAnswer>,
    #[serde(default, deserialize_with = "lenient")]
    alert: List<Code>,
}

/// A progress as a number or its string (101.3 recorded); odd, it is 0 (display only).
#[derive(Default, serde::Deserialize)]
struct Progress(#[serde(deserialize_with = "lenient_f64")] f64);

/// A display-only list (counters, alerts): odd, it is empty rather than the whole instance
/// unreadable.
#[derive(serde::Deserialize)]
#[serde(bound = "T: serde::de::DeserializeOwned")]
struct List<T>(#[serde(deserialize_with = "one_or_many")] Vec<T>);

impl<T> Default for List<T> {
    fn default() -> Self {
        List(Vec::new())
    }
}

#[derive(serde::Deserialize)]
struct CounterAnswer {
    #[serde(rename = "type", default)]
    kind: Code,
    #[serde(default)]
    value: Code,
}

list_page!(InstancePage, "job_instance", InstanceAnswer);

/// A job in the job list; only its id and name are read.
#[derive(serde::Deserialize)]
struct JobBrief {
    #[serde(default)]
    id: Code,
    #[serde(default)]
    name: Code,
}

list_page!(JobPage, "job", JobBrief);

impl From<InstanceAnswer> for InstanceStatus {
    fn from(a: InstanceAnswer) -> Self {
        let time = |t: Option<Code>| t.map(|c| c.value).filter(|v| !v.trim().is_empty());
        InstanceStatus {
            id: a.id.value,
            name: a.name.value,
            status: a.status.value,
            progress: a.progress.0,
            submit_time: time(a.submit_time),
            end_time: time(a.end_time),
            counters: a
                .counter
                .0
                .into_iter()
                .map(|c| (c.kind.value, c.kind.desc, c.value.value))
                .collect(),
            alerts: a.alert.0.into_iter().map(|c| (c.value, c.desc)).collect(),
        }
    }
}

/// `op=run`'s answer in JSON: the job, with `additional_info` as `{"value": "Job no. …",
/// "link": "…/instances/N"}` (recorded), as text alone, or absent.
#[derive(serde::Deserialize)]
struct RunAnswer {
    #[serde(default)]
    additional_info: Option<AdditionalInfo>,
}

#[derive(serde::Deserialize)]
#[serde(untagged)]
enum AdditionalInfo {
    Text(String),
    Linked {
        #[serde(default)]
        value: Code,
        #[serde(default)]
        link: Option<String>,
    },
}

/// The same in XML (recorded): `<job>…<additional_info link="…">Job no. …</additional_info></job>`.
#[derive(serde::Deserialize)]
struct RunAnswerXml {
    #[serde(default)]
    additional_info: Option<AdditionalInfoXml>,
}

#[derive(serde::Deserialize)]
struct AdditionalInfoXml {
    #[serde(rename = "@link", default)]
    link: Option<String>,
    #[serde(rename = "$text", default)]
    text: String,
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
        let (link, message) = match serde_json::from_slice::<RunAnswer>(bytes) {
            Ok(RunAnswer { additional_info }) => match additional_info {
                Some(AdditionalInfo::Text(text)) => (None, Some(text)),
                Some(AdditionalInfo::Linked { value, link }) => (link, Some(value.value)),
                None => (None, None),
            },
            Err(_) => match quick_xml::de::from_str::<RunAnswerXml>(&String::from_utf8_lossy(bytes)) {
                Ok(RunAnswerXml {
                    additional_info: Some(info),
                }) => (info.link, Some(info.text)),
                _ => (None, None),
            },
        };
        let message = message.map(|m| m.trim().to_string()).filter(|m| !m.is_empty());
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
///
/// The waits grow from `first` by `factor` up to `max`. They are shortened when the job's end is
/// near: while the instance is RUNNING its progress predicts when that ends, and once it says 100
/// (FINALIZING) the end is close. A shortened wait is never below `near_end`, nor below a fifth of
/// the time since the shortening began — so a progress that stalls at 99 costs a few dozen polls
/// an hour, not thousands. With the defaults a job is polled at most about 60 times an hour, and
/// at most about 130 times in its first hour (docs/operating.md).
#[derive(Clone, Debug, PartialEq)]
pub struct PollPolicy {
    pub first: Duration,
    pub factor: f64,
    pub max: Duration,
    pub deadline: Duration,
    /// Failed polls in a row tolerated before giving up.
    pub max_failures: u32,
    /// The shortest wait once the job's end is near.
    pub near_end: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        Self {
            first: Duration::from_secs(5),
            factor: 1.5,
            max: Duration::from_secs(60),
            deadline: Duration::from_secs(12 * 3600),
            max_failures: 20,
            near_end: Duration::from_secs(2),
        }
    }
}

/// When the job will end, as far as its polls tell: the progress of the RUNNING phase (two
/// samples give its rate), and FINALIZING (or a progress of 100) meaning the end is close.
#[derive(Debug, Default)]
struct EndForecast {
    first_running: Option<(Duration, f64)>,
    shortened_since: Option<Duration>,
}

impl EndForecast {
    /// The wait before the next poll at `now` (time since following began), given the status
    /// just read and the backoff's own wait.
    fn next_wait(
        &mut self,
        status: &InstanceStatus,
        now: Duration,
        backoff: Duration,
        policy: &PollPolicy,
    ) -> Duration {
        let finishing = status.status == "FINALIZING" || status.progress >= 100.0;
        let remaining = if finishing {
            Some(Duration::ZERO)
        } else if status.status == "RUNNING" && status.progress > 0.0 {
            match self.first_running {
                None => {
                    self.first_running = Some((now, status.progress));
                    None
                }
                Some((t0, p0)) if status.progress > p0 && now > t0 => {
                    let rate = (status.progress - p0) / (now - t0).as_secs_f64();
                    Duration::try_from_secs_f64((100.0 - status.progress) / rate).ok()
                }
                Some(_) => None,
            }
        } else {
            None
        };
        match remaining {
            Some(left) if left < backoff => {
                let since = *self.shortened_since.get_or_insert(now);
                let floor = policy.near_end.max((now - since) / 5);
                backoff.min(left.max(floor))
            }
            _ => backoff,
        }
    }
}

impl AlmaClient {
    /// The id of the one MANUAL job called `name`, paging through the job list.
    pub async fn find_job_by_name(&self, name: &str) -> Result<JobId, Error> {
        let mut found = Vec::new();
        let seen = self
            .each_page::<JobPage>("conf/jobs", &[("type", "MANUAL")], 100, |page| {
                found.extend(
                    page.into_iter()
                        .filter(|j| j.name.trimmed() == name.trim())
                        .map(|j| j.id.trimmed().to_string()),
                );
                ControlFlow::Continue(())
            })
            .await?;
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
        let answer: InstanceAnswer = self.call_typed(Method::GET, &path, &[], None, Repeat::Always).await?;
        Ok(answer.into())
    }

    /// The job's instances submitted from `from` to `to` (YYYY-MM-DD, both included), every page.
    pub async fn job_instances_between(&self, job: &JobId, from: &str, to: &str) -> Result<Vec<InstanceStatus>, Error> {
        let path = format!("conf/jobs/{}/instances", job.0);
        let query = [("submit_date_from", from), ("submit_date_to", to)];
        let mut out: Vec<InstanceStatus> = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut unnamed = None;
        self.each_page::<InstancePage>(&path, &query, 100, |page| {
            for i in page.into_iter().map(InstanceStatus::from) {
                // Whose run an instance is, is read from its name: one listed without an id or
                // a name is neither ours nor a stranger's, and cannot be passed over.
                if i.id.trim().is_empty() || i.name.trim().is_empty() {
                    unnamed = Some(i);
                    return ControlFlow::Break(());
                }
                // An instance listed twice (pages that overlap while the list grows) is one.
                if ids.insert(i.id.clone()) {
                    out.push(i);
                }
            }
            ControlFlow::Continue(())
        })
        .await?;
        if let Some(i) = unnamed {
            return Err(Error::List {
                path: format!("/almaws/v1/{path}?submit_date_from={from}&submit_date_to={to}"),
                message: format!(
                    "lists an instance without {} (status {:?}, submitted {})",
                    if i.id.trim().is_empty() { "an id" } else { "a name" },
                    i.status,
                    i.submit_time.as_deref().unwrap_or("at an unknown time")
                ),
            });
        }
        Ok(out)
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
        let mut backoff = policy.first;
        let mut failures = 0;
        let mut forecast = EndForecast::default();
        loop {
            let last = match self.job_instance(job, instance).await {
                Ok(status) => {
                    failures = 0;
                    on_status(&status);
                    if status.is_terminal() {
                        return Ok(status);
                    }
                    Some(status)
                }
                Err(e) if matches!(e, Error::DailyThreshold { .. }) => return Err(e),
                Err(e) => {
                    failures += 1;
                    if failures > policy.max_failures {
                        return Err(e);
                    }
                    tracing::warn!(error = %e, failures, "polling the job failed; trying again");
                    None
                }
            };
            // The time waited or the time passed, whichever is more (a test's clock does not
            // pass while it "sleeps").
            let elapsed = started.elapsed().max(waited);
            if elapsed >= policy.deadline {
                return Err(Error::Report {
                    path: format!("conf/jobs/{job}/instances/{instance}"),
                    message: format!(
                        "the job has not ended after {:.0} s of waiting (--job-deadline {:.0}); it may still be running in Alma, and `resume` with the run's id follows it",
                        elapsed.as_secs_f64(),
                        policy.deadline.as_secs_f64()
                    ),
                });
            }
            let wait = match &last {
                Some(status) => forecast.next_wait(status, elapsed, backoff, policy),
                None => backoff,
            };
            // The last poll falls on the deadline, not before it.
            let wait = wait.min(policy.deadline - elapsed);
            tracing::debug!(wait_ms = wait.as_millis() as u64, "next poll of the job");
            sleep(wait).await;
            waited += wait;
            backoff = backoff.mul_f64(policy.factor).min(policy.max);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    macro_rules! fixture {
        ($name:literal) => {
            include_bytes!(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../fixtures/jobs/",
                $name
            ))
        };
    }

    #[test]
    fn run_answers_in_json_xml_and_text_name_the_instance() {
        let json = Submitted::from_body(fixture!("run-answer.json"));
        assert_eq!(json.instance, Some(InstanceId("7100000000001234".into())));
        assert!(json.message.unwrap().starts_with("Job no. 7100000000001234 triggered"));
        let xml = Submitted::from_body(fixture!("run-answer.xml"));
        assert_eq!(xml.instance, Some(InstanceId("7100000000005678".into())));
        assert!(xml.message.unwrap().ends_with("09:15:42 GMT"));
        let text = Submitted::from_body(fixture!("run-answer-text-only.json"));
        assert_eq!(text.instance, Some(InstanceId("7100000000009999".into())));
        // A relative link, and answers that say nothing: no instance, never an error.
        let relative = br#"{"additional_info":{"value":"","link":"/almaws/v1/conf/jobs/M3/instances/42/"}}"#;
        assert_eq!(Submitted::from_body(relative).instance, Some(InstanceId("42".into())));
        for body in [
            &b"{}"[..],
            b"",
            b"<job/>",
            b"not an answer",
            br#"{"additional_info":7}"#,
        ] {
            assert_eq!(Submitted::from_body(body), Submitted::default(), "{body:?}");
        }
    }

    #[test]
    fn instances_in_the_recorded_shapes() {
        let failed: InstanceStatus =
            serde_json::from_slice::<InstanceAnswer>(fixture!("instance-failed-recorded.json"))
                .unwrap()
                .into();
        assert_eq!(failed.status, "COMPLETED_FAILED");
        assert!(failed.is_terminal());
        assert_eq!(failed.progress, 101.3);
        assert_eq!(failed.submit_time.as_deref(), Some("2026-06-11T17:00:11.594Z"));
        assert_eq!(
            failed.counters[1],
            (
                "Transfer has failed.".into(),
                String::new(),
                "Download the file by hand.".into()
            )
        );
        assert_eq!(failed.alerts[0].0, "alert_general_error");

        // One alert and one counter as objects on their own, progress a whole number.
        let ok: InstanceStatus = serde_json::from_slice::<InstanceAnswer>(fixture!("instance-success.json"))
            .unwrap()
            .into();
        assert_eq!((ok.status.as_str(), ok.progress), ("COMPLETED_SUCCESS", 100.0));
        assert_eq!(
            ok.counters,
            vec![(
                "users_processed".into(),
                "Number of users processed".into(),
                "2600".into()
            )]
        );
        assert_eq!(ok.alerts.len(), 1);
        let odd: InstanceStatus =
            serde_json::from_str::<InstanceAnswer>(r#"{"id":"1","status":"RUNNING","progress":"40","end_time":null}"#)
                .unwrap()
                .into();
        assert_eq!((odd.progress, odd.end_time), (40.0, None));
    }

    #[test]
    fn the_job_list_with_its_total_after_the_array() {
        use crate::model::ListPage;
        let (jobs, total) = serde_json::from_slice::<JobPage>(fixture!("job-list-total-after.json"))
            .unwrap()
            .into_parts();
        assert_eq!(total, Some(439));
        let ids: Vec<&str> = jobs.iter().map(|j| j.id.trimmed()).collect();
        assert_eq!(ids, ["M3", "M50999", "M12345600000521", "M1234567890000561"]);
        assert_eq!(
            jobs.iter()
                .filter(|j| j.name.trimmed() == "Update/Notify Users")
                .count(),
            1
        );
    }
}
