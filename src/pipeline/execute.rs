//! `run --execute` and `resume`: set → members → job → follow → report, each step journaled
//! before the call that cannot be repeated and right after it. Whatever happened before — a
//! crash, a lost answer, a second attempt — the next step first asks Alma what is already there,
//! so a run never makes a second set, submits a second job, or sends a second letter.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::{Plan, report};
use crate::alma::{self, AlmaClient, InstanceId, InstanceStatus, JobId, PollPolicy, SetId};
use crate::error::Error;
use crate::journal::{Execution, Journal, RunRecord, now};
use crate::query::{Escape, QuerySpec, fill};

/// Refused IDs looked up one by one to say why.
const EXPLAIN_REFUSED: usize = 20;

/// How an executing run behaves (from the command line).
#[derive(Clone, Debug)]
pub struct ExecOptions {
    pub period: Option<String>,
    pub force: bool,
    pub poll: PollPolicy,
}

/// What `run --execute` or `resume` ended with.
#[derive(Clone, Debug, Serialize)]
pub struct RunResult {
    pub run_id: String,
    pub query: String,
    pub period: Option<String>,
    pub cohort_size: usize,
    pub set_id: Option<String>,
    pub set_name: Option<String>,
    pub members_added: Option<usize>,
    pub invalid_ids: Vec<String>,
    pub job_id: Option<String>,
    pub job_instance_id: Option<String>,
    pub job_status: Option<String>,
    pub resumed: bool,
    pub skipped: bool,
    /// completed | failed | skipped
    pub status: String,
    pub counters: Vec<(String, String, String)>,
    pub alerts: Vec<(String, String)>,
    pub report_file: Option<String>,
}

impl RunResult {
    pub fn skipped(query: &str, period: &str, previous: &str) -> Self {
        RunResult {
            run_id: previous.to_string(),
            query: query.to_string(),
            period: Some(period.to_string()),
            cohort_size: 0,
            set_id: None,
            set_name: None,
            members_added: None,
            invalid_ids: Vec::new(),
            job_id: None,
            job_instance_id: None,
            job_status: None,
            resumed: false,
            skipped: true,
            status: "skipped".into(),
            counters: Vec::new(),
            alerts: Vec::new(),
            report_file: None,
        }
    }

    pub fn job_failed(&self) -> bool {
        self.status == "failed"
    }
}

/// The name this run gives Alma's job instance, so a lost submit can be found again.
pub fn job_instance_name(run_id: &str) -> String {
    format!("alma-cohort {run_id}")
}

/// The Alma-side plan of a new run: set name and description filled in (the name always carries
/// the run id, so it is unique and can be found again), the job's parameters.
pub fn execution(spec: &QuerySpec, run_id: &str, period: Option<&str>) -> Result<Execution, Error> {
    let values: std::collections::BTreeMap<String, String> = [
        ("query", spec.name.clone()),
        ("period", period.unwrap_or("no-period").to_string()),
        ("date", chrono::Utc::now().format("%Y-%m-%d").to_string()),
        ("run_id", run_id.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let fill_set =
        |t: &str| fill(t, &values, Escape::Plain).map_err(|e| Error::Usage(format!("set name template: {e:?}")));
    let mut set_name = fill_set(&spec.set.name)?;
    if !set_name.contains(run_id) {
        set_name = format!("{set_name} ({run_id})");
    }
    let mut job_parameters = vec![
        ("job_name".to_string(), job_instance_name(run_id)),
        ("SEND_Notification_To_User_Active".to_string(), "true".to_string()),
        (
            "SEND_Notification_To_User_Value".to_string(),
            spec.job.notification.clone(),
        ),
    ];
    if let Some(file) = &spec.job.payload_file {
        job_parameters =
            super::payload::read_payload(file, &spec.job.notification, spec.job.allow_user_updates, run_id)?;
    }
    for (k, v) in &spec.job.parameters {
        job_parameters.retain(|(name, _)| name != k);
        job_parameters.push((k.clone(), v.clone()));
    }
    Ok(Execution {
        set_name,
        set_description: fill_set(&spec.set.description)?,
        set_private: spec.set.private,
        job_name: spec.job.name.clone(),
        job_id: spec.job.id.clone(),
        job_parameters,
    })
}

fn who() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into())
}

fn sha256(text: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Records a confirmed plan as a new run in the journal.
pub fn start_run(
    journal: &mut Journal,
    plan: &Plan,
    params: &[(String, String)],
    period: Option<&str>,
) -> Result<RunRecord, Error> {
    let execution = execution(&plan.spec, &plan.run_id, period)?;
    let record = RunRecord {
        run_id: plan.run_id.clone(),
        query: plan.spec.name.clone(),
        query_file: plan.spec.file.display().to_string(),
        query_hash: sha256(&plan.spec.source),
        params: params.to_vec(),
        period: period.map(str::to_string),
        started_at: now(),
        finished_at: None,
        status: "running".into(),
        run_by: who(),
        cohort_size: plan.cohort.ids.len(),
        execution,
        set_id: None,
        members_added: None,
        invalid_ids: Vec::new(),
        job_id: None,
        job_submit_started_at: None,
        job_instance_id: None,
        job_status: None,
        counters: Vec::new(),
        alerts: Vec::new(),
        error: None,
        plan: serde_json::to_value(plan.to_json()).unwrap_or_default(),
        steps: Vec::new(),
        batches: Vec::new(),
    };
    journal.create_run(&record, &plan.cohort.ids)?;
    Ok(record)
}

/// Takes a journaled run from wherever it stopped to its end. Used by `run --execute` right after
/// `start_run`, and by `resume`.
pub async fn continue_run(
    client: &AlmaClient,
    journal: &Journal,
    state_dir: &Path,
    run_id: &str,
    resumed: bool,
    poll: &PollPolicy,
) -> Result<RunResult, Error> {
    if let Err(e) = drive(client, journal, run_id, poll).await {
        let _ = journal.note_error(run_id, &crate::error::chain(&e));
        return Err(match e {
            e @ Error::JobThreshold { .. } => e,
            e => Error::Interrupted {
                run_id: run_id.to_string(),
                source: Box::new(e),
            },
        });
    }
    let record = journal.run(run_id)?;
    let cohort = journal.cohort(run_id)?;
    let report_file = report::write_run_files(state_dir, &record, &cohort)?;
    Ok(result(&record, resumed, Some(report_file)))
}

pub fn result(record: &RunRecord, resumed: bool, report_file: Option<PathBuf>) -> RunResult {
    RunResult {
        run_id: record.run_id.clone(),
        query: record.query.clone(),
        period: record.period.clone(),
        cohort_size: record.cohort_size,
        set_id: record.set_id.clone(),
        set_name: Some(record.execution.set_name.clone()),
        members_added: record.members_added,
        invalid_ids: record.invalid_ids.clone(),
        job_id: record.job_id.clone(),
        job_instance_id: record.job_instance_id.clone(),
        job_status: record.job_status.clone(),
        resumed,
        skipped: false,
        status: record.status.clone(),
        counters: record.counters.clone(),
        alerts: record.alerts.clone(),
        report_file: report_file.map(|p| p.display().to_string()),
    }
}

async fn drive(client: &AlmaClient, journal: &Journal, run_id: &str, poll: &PollPolicy) -> Result<(), Error> {
    let record = journal.run(run_id)?;
    if record.status != "running" {
        return Ok(());
    }
    let cohort = journal.cohort(run_id)?;
    let set = ensure_set(client, journal, &record).await?;
    if record.members_added.is_none() {
        add_members(client, journal, &record, &set, &cohort).await?;
    }
    let record = journal.run(run_id)?;
    let (job, instance) = ensure_job(client, journal, &record, &set).await?;
    journal.step_started(run_id, "follow", Some(&format!("job {job} instance {instance}")))?;
    let mut on_status = |s: &InstanceStatus| {
        tracing::info!(status = %s.status, progress = s.progress, "job");
        let _ = journal.job_progress(run_id, &s.status, &s.counters, &s.alerts);
    };
    let end = client.follow_job(&job, &instance, poll, &mut on_status).await?;
    journal.job_progress(run_id, &end.status, &end.counters, &end.alerts)?;
    journal.step_finished(run_id, "follow", Some(&end.status))?;
    let ok = matches!(end.status.as_str(), "COMPLETED_SUCCESS" | "COMPLETED_WARNING");
    journal.finish(run_id, if ok { "completed" } else { "failed" }, None)?;
    Ok(())
}

/// The run's set: the one already recorded, or the one Alma has under the run's unique name (a
/// creation whose answer was lost), or a new one.
async fn ensure_set(client: &AlmaClient, journal: &Journal, record: &RunRecord) -> Result<SetId, Error> {
    if let Some(id) = &record.set_id {
        return Ok(SetId(id.clone()));
    }
    let name = &record.execution.set_name;
    let tried_before = record.steps.iter().any(|s| s.step == "set");
    journal.step_started(&record.run_id, "set", Some(name))?;
    if tried_before && let Some(found) = client.find_set_by_name(name).await? {
        tracing::info!(set_id = %found.id, "found the run's set from an earlier attempt");
        return adopt_set(journal, record, found.id);
    }
    match client
        .create_set(name, &record.execution.set_description, record.execution.set_private)
        .await
    {
        Ok(set) => {
            tracing::info!(set_id = %set.id, name = %name, "set created");
            adopt_set(journal, record, set.id)
        }
        Err(e) => {
            // Alma may have created it before the answer was lost: look before deciding.
            tracing::warn!(error = %e, "creating the set failed; checking whether Alma created it anyway");
            match client.find_set_by_name(name).await? {
                Some(found) => adopt_set(journal, record, found.id),
                None => Err(e.into()),
            }
        }
    }
}

fn adopt_set(journal: &Journal, record: &RunRecord, id: SetId) -> Result<SetId, Error> {
    journal.set_created(&record.run_id, &id.0)?;
    journal.step_finished(&record.run_id, "set", Some(&id.0))?;
    Ok(id)
}

/// Adds the cohort members the set does not hold yet, at most 1000 a call, then records who
/// Alma did not take.
async fn add_members(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    set: &SetId,
    cohort: &[String],
) -> Result<(), Error> {
    let run_id = &record.run_id;
    journal.step_started(run_id, "members", Some(&format!("{} IDs", cohort.len())))?;
    let fresh = record.batches.is_empty() && !record.steps.iter().any(|s| s.step == "members");
    let mut present: HashSet<String> = if fresh {
        HashSet::new()
    } else {
        client
            .set_members(set)
            .await?
            .into_iter()
            .map(|m| m.to_lowercase())
            .collect()
    };
    let mut attempts = 0;
    // Batches are numbered across attempts; `first` is how many IDs this run had in the set before.
    let mut batch_no = record.batches.len();
    let mut last_count = None;
    loop {
        let missing: Vec<String> = cohort
            .iter()
            .filter(|id| !present.contains(&id.to_lowercase()))
            .cloned()
            .collect();
        let mut failed = None;
        for batch in missing.chunks(alma::sets::MAX_MEMBERS_PER_CALL) {
            match client.add_members(set, batch).await {
                Ok(info) => {
                    let before = cohort.iter().filter(|id| present.contains(&id.to_lowercase())).count();
                    present.extend(batch.iter().map(|i| i.to_lowercase()));
                    last_count = Some(info.members);
                    journal.batch_done(run_id, batch_no, before, batch.len())?;
                    batch_no += 1;
                    tracing::info!(batch = batch_no, members = info.members, "members added");
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        match failed {
            None => break,
            Some(e) => {
                attempts += 1;
                // After a failure, Alma's members list says what actually landed.
                if attempts > 3
                    || !(e.maybe_served() || e.is_retryable() || e.alma_code().is_some_and(|(_, c)| c == "60115"))
                {
                    return Err(e.into());
                }
                tracing::warn!(error = %e, "adding members failed; reading the set's members before going on");
                present = client
                    .set_members(set)
                    .await?
                    .into_iter()
                    .map(|m| m.to_lowercase())
                    .collect();
                last_count = None;
            }
        }
    }
    // Alma skips IDs it does not know (fail_on_invalid_id=false): find out which.
    let count = match last_count {
        Some(n) => n,
        None => client.get_set(set).await?.members,
    };
    let invalid: Vec<String> = if count == cohort.len() {
        Vec::new()
    } else {
        let members: HashSet<String> = client
            .set_members(set)
            .await?
            .into_iter()
            .map(|m| m.to_lowercase())
            .collect();
        cohort
            .iter()
            .filter(|id| !members.contains(&id.to_lowercase()))
            .cloned()
            .collect()
    };
    // Say why, for the first few: usually the user does not exist in Alma.
    let mut unknown = 0;
    for id in invalid.iter().take(EXPLAIN_REFUSED) {
        if client.get_user(id).await?.is_none() {
            unknown += 1;
        }
    }
    if !invalid.is_empty() {
        tracing::warn!(
            refused = invalid.len(),
            not_found = unknown,
            "Alma did not add some IDs"
        );
    }
    journal.members_done(run_id, cohort.len() - invalid.len(), &invalid)?;
    let detail = match invalid.len() {
        0 => format!("{} added, 0 refused", cohort.len()),
        n => format!(
            "{} added, {n} refused ({unknown} of the first {} checked are not users in Alma)",
            cohort.len() - n,
            n.min(EXPLAIN_REFUSED)
        ),
    };
    journal.step_finished(run_id, "members", Some(&detail))?;
    Ok(())
}

/// The run's job instance: the one recorded, or the one Alma has under the run's instance name
/// (a submit whose answer was lost), or a new submission.
async fn ensure_job(
    client: &AlmaClient,
    journal: &Journal,
    record: &RunRecord,
    set: &SetId,
) -> Result<(JobId, InstanceId), Error> {
    let run_id = &record.run_id;
    let job = match (&record.job_id, &record.execution.job_id) {
        (Some(id), _) | (None, Some(id)) => JobId(id.clone()),
        (None, None) => client.find_job_by_name(&record.execution.job_name).await?,
    };
    if let Some(instance) = &record.job_instance_id {
        return Ok((job, InstanceId(instance.clone())));
    }
    let name = job_instance_name(run_id);
    if let Some(at) = &record.job_submit_started_at
        && let Some(found) = find_instance(client, &job, at, &name).await?
    {
        tracing::info!(instance = %found, "found the run's job instance from an earlier attempt");
        journal.job_submitted(run_id, &found.0)?;
        journal.step_finished(run_id, "job", Some(&found.0))?;
        return Ok((job, found));
    }
    let mut parameters = vec![("set_id".to_string(), set.0.clone())];
    parameters.extend(
        record
            .execution
            .job_parameters
            .iter()
            .filter(|(k, _)| k != "set_id")
            .cloned(),
    );
    let at = now();
    journal.step_started(run_id, "job", Some(&job.0))?;
    journal.job_submitting(run_id, &job.0, &at)?;
    match client.run_job(&job, &parameters).await {
        Ok(instance) => {
            tracing::info!(job = %job, instance = %instance, "job submitted");
            journal.job_submitted(run_id, &instance.0)?;
            journal.step_finished(run_id, "job", Some(&instance.0))?;
            Ok((job, instance))
        }
        Err(e) => {
            if let Some((_, code @ ("402222" | "402223" | "60347"))) = e.alma_code() {
                return Err(Error::JobThreshold {
                    code: code.to_string(),
                    run_id: run_id.clone(),
                    source: Box::new(e),
                });
            }
            tracing::warn!(error = %e, "submitting the job failed; checking whether Alma started it anyway");
            match find_instance(client, &job, &at, &name).await? {
                Some(found) => {
                    journal.job_submitted(run_id, &found.0)?;
                    journal.step_finished(run_id, "job", Some(&found.0))?;
                    Ok((job, found))
                }
                None => Err(e.into()),
            }
        }
    }
}

async fn find_instance(client: &AlmaClient, job: &JobId, since: &str, name: &str) -> Result<Option<InstanceId>, Error> {
    let date = since.get(..10).unwrap_or(since);
    let instances = client.job_instances_since(job, date).await?;
    Ok(instances
        .into_iter()
        .find(|i| i.name == name || i.name.starts_with(&format!("{name} ")))
        .map(|i| InstanceId(i.id)))
}
