//! Plan, approve, apply exactly that. `plan --save` freezes a plan — the run it would start and
//! every ID of its cohort — in the journal; `approve` records who approved it; `apply` journals
//! that very run (the report is not read again) and takes it through the same state machine as
//! `run --execute`. A plan is refused when its query requires approvals it lacks, when it is
//! older than `[approval] max_age_hours`, applied or superseded, or when the query, list or an
//! exclusion file changed since (a new exclusion may protect someone: plan again).
//!
//! ```text
//!   plan --save ──► saved ──(approvals the query requires)──► approved ──apply──► applied
//!                     │                                          │
//!                     ├── a newer plan of the query and period ──┴──► superseded
//!                     ├── older than max_age_hours ──────────────────► expired
//!                     └── withdraw ──────────────────────────────────► withdrawn
//! ```

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::Error;
use crate::journal::{Approval, Journal, RunRecord, SavedPlan, now};
use crate::query::{ApprovalSpec, QuerySpec};

/// Where a saved plan is, as `plans` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PlanState {
    /// Saved, lacking approvals its query requires.
    Saved,
    /// Saved, with every approval its query requires: `apply` may run it.
    Approved,
    Applied,
    Expired,
    Superseded,
    /// Withdrawn by a person (`withdraw`): never applied.
    Withdrawn,
    /// Dated later than now (a journal edited by hand, or a clock set back): never applied.
    FutureDated,
}

impl PlanState {
    pub fn as_str(self) -> &'static str {
        match self {
            PlanState::Saved => "saved",
            PlanState::Approved => "approved",
            PlanState::Applied => "applied",
            PlanState::Expired => "expired",
            PlanState::Superseded => "superseded",
            PlanState::Withdrawn => "withdrawn",
            PlanState::FutureDated => "future-dated",
        }
    }
}

/// Who plans or approves ([`crate::journal::person`]: the one rule for who did it).
pub fn person() -> (String, String) {
    crate::journal::person()
}

/// A person's name as compared: trimmed, case folded.
fn same_person(a: &str, b: &str) -> bool {
    a.trim().to_lowercase() == b.trim().to_lowercase()
}

/// What binds a plan to the Alma it was made against: the address and a fingerprint of the key,
/// salted with the plan's id (the key cannot be read back from it).
pub fn alma_binding(base_url: &str, key: &secrecy::SecretString, plan_id: &str) -> String {
    use secrecy::ExposeSecret;
    let fingerprint =
        crate::files::sha256_hex(format!("alma-cohort plan {plan_id} {}", key.expose_secret()).as_bytes());
    format!("{} (key {})", base_url.trim_end_matches('/'), &fingerprint[..12])
}

/// The plan's canonical text as the journal holds it now ([`super::digest::canonical`]);
/// `letter` stands for the plan's letter digest (Alma's now, at apply).
pub fn plan_text(plan: &SavedPlan, letter: Option<&str>) -> String {
    super::digest::canonical(&super::digest::Facts {
        plan_id: &plan.plan_id,
        query: &plan.query,
        period: plan.period.as_deref(),
        planned_by: &plan.planned_by,
        planned_at: &plan.planned_at,
        alma: plan.alma.as_deref(),
        record: &plan.record,
        cohort: &plan.cohort,
        letter_digest: letter.or(plan.record.execution.letter.as_ref().map(|l| l.digest.as_str())),
    })
}

/// Each approval, and why it does not count (`None`: it counts). An approval counts when it
/// approved the digest of the plan's text as it is now, is signed by a key `allowed_signers`
/// lists (when the query has that file) over that very text, is not the planner's own where the
/// query says so, and is the first by its person (the principal, when signed).
pub fn judged<'a>(plan: &'a SavedPlan, spec: &ApprovalSpec) -> Vec<(&'a Approval, String, Option<String>)> {
    let text = plan_text(plan, None);
    let digest = super::digest::digest(&text);
    let signers = spec
        .allowed_signers
        .as_deref()
        .map(|path| super::signers::read(path).map_err(|e| format!("its allowed_signers file cannot be used: {e}")));
    let mut people: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for a in &plan.approvals {
        let mut who = a.approver.clone();
        let why = (|| {
            let Some(approved) = &a.digest else {
                return Some("recorded before approvals were bound to the plan's digest; approve it again".to_string());
            };
            if *approved != digest {
                return Some(format!(
                    "it approved {}, and the plan's text is {} now",
                    short(approved),
                    short(&digest)
                ));
            }
            if let Some(signers) = &signers {
                let signers = match signers {
                    Ok(s) => s,
                    Err(e) => return Some(e.clone()),
                };
                let Some(signature) = &a.signature else {
                    return Some("not signed, and the query's [approval] allowed_signers requires a signature".into());
                };
                match super::signers::verify(signature, text.as_bytes(), signers, Utc::now()) {
                    Ok(v) => {
                        if spec.approver_not_planner && v.is(&plan.planned_by) {
                            return Some(format!(
                                "{} is the planner, {} ([approval] approver_not_planner)",
                                v.principal, plan.planned_by
                            ));
                        }
                        who = v.principal;
                    }
                    Err(e) => return Some(e),
                }
            }
            if spec.approver_not_planner && same_person(&who, &plan.planned_by) {
                return Some(format!("{who} made the plan ([approval] approver_not_planner)"));
            }
            if people.iter().any(|p| same_person(p, &who)) {
                return Some(format!("{who} approved it already"));
            }
            people.push(who.clone());
            None
        })();
        out.push((a, who, why));
    }
    out
}

/// A digest as shown in a message: `sha256:` and its first 12 hex digits.
fn short(digest: &str) -> String {
    digest.chars().take("sha256:".len() + 12).collect()
}

/// The people whose approvals count ([`judged`]).
pub fn counted(plan: &SavedPlan, spec: &ApprovalSpec) -> Vec<String> {
    judged(plan, spec)
        .into_iter()
        .filter(|(_, _, why)| why.is_none())
        .map(|(_, who, _)| who)
        .collect()
}

/// How old a plan is, in hours, at `at`.
fn age_hours(plan: &SavedPlan, at: DateTime<Utc>) -> f64 {
    DateTime::parse_from_rfc3339(&plan.planned_at)
        .map(|t| (at - t.with_timezone(&Utc)).num_seconds() as f64 / 3600.0)
        .unwrap_or(f64::INFINITY)
}

/// The plan's state at `at` under its query's `[approval]`.
pub fn state(plan: &SavedPlan, spec: &ApprovalSpec, at: DateTime<Utc>) -> PlanState {
    match plan.state.as_str() {
        "applied" => PlanState::Applied,
        "superseded" => PlanState::Superseded,
        "withdrawn" => PlanState::Withdrawn,
        _ if age_hours(plan, at) > spec.max_age_hours => PlanState::Expired,
        // Five minutes of clock difference between two servers sharing a journal is allowed.
        _ if age_hours(plan, at) < -5.0 / 60.0 => PlanState::FutureDated,
        _ if counted(plan, spec).len() >= spec.required as usize => PlanState::Approved,
        _ => PlanState::Saved,
    }
}

/// The query a plan was made from, loaded with the plan's parameters. A query file that is gone
/// or changed since the plan is refused: the plan is not the query's any more.
pub fn plan_query(plan: &SavedPlan) -> Result<QuerySpec, Error> {
    let record = &plan.record;
    let path = Path::new(&record.query_file);
    let params = record.params.iter().cloned().collect();
    let spec = crate::query::load(path, &params).map_err(|e| Error::Refused {
        message: format!(
            "plan {} was made from the query file {}, which cannot be read now ({e}); nothing was done",
            plan.plan_id, record.query_file
        ),
        hint: "restore the query file, or plan again".into(),
    })?;
    Ok(spec)
}

/// The files a plan read, checked against their hashes then: the query file, the list file, the
/// exclusion files. The first that changed (or went) refuses the plan.
fn changed_since(record: &RunRecord, spec: &QuerySpec) -> Option<String> {
    if crate::files::sha256_hex(spec.source.as_bytes()) != record.query_hash {
        return Some(format!("the query file {} changed since the plan", record.query_file));
    }
    let differs = |path: &str, hash: &str, max: u64| {
        crate::text::read_bytes(Path::new(path), max)
            .map(|bytes| crate::files::sha256_hex(&bytes) != hash)
            .unwrap_or(true)
    };
    if let (Some(file), Some(hash)) = (&record.input_file, &record.input_hash)
        && differs(file, hash, crate::text::limit::LIST)
    {
        return Some(format!("the list file {file} changed (or went) since the plan"));
    }
    record
        .execution
        .exclusions
        .iter()
        .find(|f| differs(&f.path, &f.sha256, crate::text::limit::EXCLUSIONS))
        .map(|f| {
            format!(
                "the exclusion file {} changed (or went) since the plan: it may protect someone now",
                f.path
            )
        })
}

/// Why `apply` may not run this plan now, or `None`.
pub fn apply_refusal(plan: &SavedPlan, spec: &QuerySpec, at: DateTime<Utc>) -> Option<Error> {
    let id = &plan.plan_id;
    let refused = |message: String, hint: String| Some(Error::Refused { message, hint });
    // What was saved (and approved) against what the journal holds now, named, before the
    // approvals that no longer match it are counted.
    let edited = || {
        edited_since_saved(plan).and_then(|what| {
            refused(
                format!("plan {id} changed in the journal since it was saved: {what}; nothing was done"),
                format!(
                    "plan again: `alma-cohort plan {} --save{}`, and have that plan approved",
                    plan.record.query_file,
                    period_flag(plan)
                ),
            )
        })
    };
    match state(plan, &spec.approval, at) {
        PlanState::Applied => {
            return refused(
                format!(
                    "plan {id} was applied already ({}) as run {id}; nothing was done",
                    plan.applied_at.as_deref().unwrap_or("-")
                ),
                format!("`alma-cohort show {id}` shows that run"),
            );
        }
        PlanState::Superseded => {
            return refused(
                format!(
                    "plan {id} was superseded by plan {}, a newer plan of query {:?}{}; nothing was done",
                    plan.superseded_by.as_deref().unwrap_or("-"),
                    plan.query,
                    period_words(plan)
                ),
                "apply the newer plan (`alma-cohort plans`)".into(),
            );
        }
        PlanState::Withdrawn => {
            return refused(
                format!(
                    "plan {id} was withdrawn ({}); nothing was done",
                    plan.superseded_by.as_deref().unwrap_or("-")
                ),
                "plan again if the reset is still wanted".into(),
            );
        }
        PlanState::FutureDated => {
            return refused(
                format!(
                    "plan {id} is dated {}, {:.1} hours after this machine's clock ({}): the journal was changed by hand or the clock was set back; nothing was done",
                    plan.planned_at,
                    -age_hours(plan, at),
                    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
                format!(
                    "check this machine's clock (`date -u`), then plan again: `alma-cohort plan {} --save{}`",
                    plan.record.query_file,
                    period_flag(plan)
                ),
            );
        }
        PlanState::Expired => {
            return refused(
                format!(
                    "plan {id} was made {:.0} hours ago ({}), more than [approval] max_age_hours {} allows; nothing was done",
                    age_hours(plan, at),
                    plan.planned_at,
                    spec.approval.max_age_hours
                ),
                format!(
                    "plan again: `alma-cohort plan {} --save{}`",
                    plan.record.query_file,
                    period_flag(plan)
                ),
            );
        }
        PlanState::Saved => {
            if let Some(refusal) = edited() {
                return Some(refusal);
            }
            let have = counted(plan, &spec.approval);
            let not_counted: Vec<String> = judged(plan, &spec.approval)
                .into_iter()
                .filter_map(|(a, _, why)| why.map(|w| format!("{}'s approval does not count: {w}", a.approver)))
                .collect();
            return refused(
                format!(
                    "plan {id} has {} of the {} approvals its query requires{}{}; nothing was done",
                    have.len(),
                    spec.approval.required,
                    if spec.approval.approver_not_planner {
                        format!(" (by someone other than the planner, {})", plan.planned_by)
                    } else {
                        String::new()
                    },
                    if not_counted.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", not_counted.join("; "))
                    }
                ),
                match &spec.approval.allowed_signers {
                    Some(_) => format!(
                        "someone who reviewed `alma-cohort plans show {id}` and runs/{id}/report.html: `alma-cohort approve {id} --ssh-key ~/.ssh/id_ed25519`"
                    ),
                    None => format!("someone who reviewed runs/{id}/report.html: `alma-cohort approve {id}`"),
                },
            );
        }
        PlanState::Approved => {
            if let Some(refusal) = edited() {
                return Some(refusal);
            }
        }
    }
    changed_since(&plan.record, spec).and_then(|what| {
        refused(
            format!("plan {id} cannot be applied: {what}; nothing was done"),
            format!(
                "plan again from the files as they are: `alma-cohort plan {} --save{}`",
                plan.record.query_file,
                period_flag(plan)
            ),
        )
    })
}

/// What differs between the plan's text as saved and as the journal holds it now, in words;
/// `None` when nothing does. A plan saved before it had a text is not comparable: `None`.
pub fn edited_since_saved(plan: &SavedPlan) -> Option<String> {
    let saved = plan.canonical.as_deref()?;
    // The run apply journals is the record's: its identity must be the plan's.
    let r = &plan.record;
    if r.run_id != plan.plan_id || r.query != plan.query || r.period != plan.period {
        return Some(format!(
            "its record says run {} of query {:?} for period {:?}, the plan is {} of {:?} for {:?}",
            r.run_id, r.query, r.period, plan.plan_id, plan.query, plan.period
        ));
    }
    let now = plan_text(plan, None);
    (saved != now).then(|| super::digest::changes(saved, &now).join("; "))
}

fn period_words(plan: &SavedPlan) -> String {
    plan.period
        .as_deref()
        .map(|p| format!(" and period {p:?}"))
        .unwrap_or_default()
}

fn period_flag(plan: &SavedPlan) -> String {
    plan.period
        .as_deref()
        .map(|p| format!(" --period {p}"))
        .unwrap_or_default()
}

/// What `apply` may do with a plan now.
pub enum Ready {
    /// Apply it: the plan (read now) and its frozen cohort.
    Go { plan: Box<SavedPlan>, cohort: Vec<String> },
    /// Its period was done meanwhile by a run: nothing to apply (exit 4, `"skipped": true`).
    Skip { why: String },
}

/// Every check `apply` makes before it journals the run, read from the journal now: the plan's
/// state, approvals, age and files ([`apply_refusal`]), the query's admission (an unfinished
/// run refuses, a done period skips), and the Alma it was planned against — `alma_now` is
/// [`alma_binding`] for the address and key this apply would use (`None`: none given).
/// Called under the query's lock, before the operator's confirmation and again after it.
pub fn ready(journal: &Journal, plan_id: &str, alma_now: Option<&str>) -> Result<Ready, Error> {
    let plan = journal.plan(plan_id)?;
    let spec = plan_query(&plan)?;
    if let Some(refusal) = apply_refusal(&plan, &spec, Utc::now()) {
        return Err(refusal);
    }
    if let super::state::Admission::Skip { previous } =
        super::state::admit(journal, &plan.query, plan.period.as_deref(), false)?
    {
        return Ok(Ready::Skip {
            why: format!(
                "query {:?} already completed for period {:?} in run {previous}",
                plan.query,
                plan.period.as_deref().unwrap_or_default()
            ),
        });
    }
    // A plan made on a sandbox (or another institution) is not applied here.
    if let Some(then) = &plan.alma
        && Some(then.as_str()) != alma_now
    {
        return Err(Error::Refused {
            message: format!(
                "plan {plan_id} was made against {then}, and this apply would reach {}: another Alma or another API key; nothing was done",
                alma_now.unwrap_or("no Alma")
            ),
            hint: "apply it with the profile (--base-url and key) it was planned with, or plan again against this Alma"
                .into(),
        });
    }
    let cohort = journal.plan_cohort(plan_id)?;
    Ok(Ready::Go {
        plan: Box::new(plan),
        cohort,
    })
}

/// The plan `apply --query QUERY --period P` means: `query` is the query file the plans were
/// made from, or the query's name. A file that does not exist is an error, and so is an
/// unfinished run of the query (a person must see it); `None` when no plan is approved yet.
pub fn timer_plan(journal: &Journal, query: &str, period: &str) -> Result<(String, String, Option<SavedPlan>), Error> {
    let path = Path::new(query);
    let name = if path.is_file() {
        crate::query::name(path)?
    } else if query.contains('/') || query.ends_with(".toml") {
        return Err(Error::Usage(format!(
            "--query {query}: no such query file (give the file the plans were made from, or the query's name)"
        )));
    } else {
        query.to_string()
    };
    let period = super::ledger::normalize_period(period)?;
    super::state::admit(journal, &name, Some(&period), false)?;
    let plan = candidate(journal, &name, &period)?;
    Ok((name, period, plan))
}

/// How an approval is signed.
pub enum Signing<'a> {
    /// Not signed: the person is the OS account (or the person behind sudo).
    None,
    /// Signed here through `ssh-keygen -Y sign -f KEY`.
    SshKey(&'a Path),
    /// Signed elsewhere over `plans show PLAN_ID`'s text: the signature file.
    File(&'a Path),
}

/// Records an approval of the plan's text as the journal holds it now (its digest; with the
/// query's `allowed_signers`, a verified SSH signature over it, the approver being the principal
/// the file names). Nothing is recorded when the plan cannot be applied, changed since it was
/// saved, or the signature does not verify.
pub fn approve(
    journal: &mut Journal,
    plan_id: &str,
    note: Option<&str>,
    as_name: Option<&str>,
    signing: Signing<'_>,
) -> Result<SavedPlan, Error> {
    let plan = journal.plan(plan_id)?;
    let spec = plan_query(&plan)?;
    let (human, os_user) = person();
    if let (Some(_), Some(_)) = (as_name, &spec.approval.allowed_signers) {
        return Err(Error::Usage(format!(
            "--as: query {:?} takes signed approvals ([approval] allowed_signers): the approver is the principal its allowed_signers file names for the key; nothing was recorded",
            plan.query
        )));
    }
    let approver = match as_name.map(str::trim) {
        None => human.clone(),
        Some("") => return Err(Error::Usage("--as: give the approver's name".into())),
        Some(name) if spec.approval.allow_as => name.to_string(),
        Some(_) => {
            return Err(Error::Usage(format!(
                "--as: query {:?} does not allow approving under another name (its [approval] has no allow_as = true); approvals are recorded as the OS account, {os_user}; nothing was recorded",
                plan.query
            )));
        }
    };
    if let Some(bad) = approver
        .chars()
        .find(|c| c.is_control() || crate::text::is_invisible(*c))
    {
        return Err(Error::Usage(format!(
            "--as: the name holds the invisible or control character U+{:04X}; type the name",
            bad as u32
        )));
    }
    let at = Utc::now();
    match state(&plan, &spec.approval, at) {
        s @ (PlanState::Applied
        | PlanState::Superseded
        | PlanState::Expired
        | PlanState::Withdrawn
        | PlanState::FutureDated) => {
            return Err(Error::Refused {
                message: format!(
                    "plan {plan_id} is {}; an approval would change nothing; nothing was recorded",
                    s.as_str()
                ),
                hint: "`alma-cohort plans` lists the plans; plan again for a new one".into(),
            });
        }
        PlanState::Saved | PlanState::Approved => {}
    }
    if let Some(what) = changed_since(&plan.record, &spec) {
        return Err(Error::Refused {
            message: format!(
                "plan {plan_id}: {what}; approving it would approve a plan that cannot be applied; nothing was recorded"
            ),
            hint: "plan again from the files as they are, and approve that plan".into(),
        });
    }
    if plan.canonical.is_none() {
        return Err(Error::Refused {
            message: format!(
                "plan {plan_id} was saved by an earlier alma-cohort, before plans had a canonical text to approve; nothing was recorded"
            ),
            hint: format!(
                "plan again: `alma-cohort plan {} --save{}`, and approve that plan",
                plan.record.query_file,
                period_flag(&plan)
            ),
        });
    }
    if let Some(what) = edited_since_saved(&plan) {
        return Err(Error::Refused {
            message: format!("plan {plan_id} changed in the journal since it was saved: {what}; nothing was recorded"),
            hint: "plan again, and approve that plan".into(),
        });
    }
    let text = plan_text(&plan, None);
    let digest = super::digest::digest(&text);
    // A signature: made here or elsewhere, and verified before anything is recorded.
    let signed = match (&spec.approval.allowed_signers, signing) {
        (None, Signing::None) => None,
        (None, _) => {
            return Err(Error::Usage(format!(
                "query {:?} has no [approval] allowed_signers, so a signature could not be checked; approve without --ssh-key/--signature, or give the query an allowed_signers file; nothing was recorded",
                plan.query
            )));
        }
        (Some(_), Signing::None) => {
            return Err(Error::Refused {
                message: format!(
                    "query {:?} takes signed approvals only ([approval] allowed_signers); nothing was recorded",
                    plan.query
                ),
                hint: format!(
                    "read `alma-cohort plans show {plan_id}`, then sign it: `alma-cohort approve {plan_id} --ssh-key ~/.ssh/id_ed25519` (or ssh-keygen -Y sign -n alma-cohort elsewhere, and --signature FILE)"
                ),
            });
        }
        (Some(file), how) => {
            let signers = super::signers::read(file)?;
            let signature = match how {
                Signing::SshKey(key) => super::signers::sign_with_ssh_keygen(key, &text)?,
                Signing::File(path) => read_signature(path)?,
                Signing::None => unreachable!("matched above"),
            };
            if ssh_key::SshSig::from_pem(signature.trim()).is_err() {
                return Err(Error::Usage(
                    "the signature is not an SSH signature (-----BEGIN SSH SIGNATURE-----, as ssh-keygen -Y sign writes it); nothing was recorded".into(),
                ));
            }
            let verified = super::signers::verify(&signature, text.as_bytes(), &signers, at).map_err(|why| Error::Refused {
                message: format!("the signature does not approve plan {plan_id}: {why}; nothing was recorded"),
                hint: format!(
                    "sign the text `alma-cohort plans show {plan_id} --text` prints, in namespace alma-cohort, with a key {} lists",
                    file.display()
                ),
            })?;
            Some((signature, verified))
        }
    };
    let approver = signed.as_ref().map_or(approver, |(_, v)| v.principal.clone());
    // The name that approves is the one compared: with allow_as, the policy trusts the name given;
    // a signer is the planner when any principal of the key's line is the planner's account.
    let is_planner = match &signed {
        Some((_, v)) => v.is(&plan.planned_by),
        None => same_person(&approver, &plan.planned_by),
    };
    if spec.approval.approver_not_planner && is_planner {
        return Err(Error::Refused {
            message: format!(
                "{approver} made plan {plan_id}, and query {:?} requires an approver other than the planner ([approval] approver_not_planner); nothing was recorded",
                plan.query
            ),
            hint: match &spec.approval.allowed_signers {
                Some(_) => format!(
                    "ask a colleague whose key allowed_signers lists to review runs/{plan_id}/report.html and run `alma-cohort approve {plan_id} --ssh-key ~/.ssh/id_ed25519`"
                ),
                None => format!(
                    "ask a colleague to review runs/{plan_id}/report.html and run `alma-cohort approve {plan_id}`"
                ),
            },
        });
    }
    let already = judged(&plan, &spec.approval)
        .into_iter()
        .any(|(_, who, why)| why.is_none() && same_person(&who, &approver));
    if already {
        return Err(Error::Refused {
            message: format!("{approver} approved plan {plan_id} already; nothing was recorded"),
            hint: "each person approves once; another approver is needed for a second approval".into(),
        });
    }
    let (signature, principal, key) = match signed {
        Some((sig, v)) => (Some(sig), Some(v.principal), Some(v.fingerprint)),
        None => (None, None, None),
    };
    journal.approve_plan(
        plan_id,
        &Approval {
            approver,
            os_user,
            at: now(),
            note: note.map(|n| n.trim().to_string()).filter(|n| !n.is_empty()),
            digest: Some(digest),
            signature,
            principal,
            key,
        },
    )?;
    Ok(journal.plan(plan_id)?)
}

/// A signature file, or standard input for `-` (behind `sudo -u`, the service account cannot
/// read the approver's home: `--signature - < ~/plan.txt.sig`). At most 64 KiB either way.
fn read_signature(path: &Path) -> Result<String, Error> {
    let unreadable = |e: std::io::Error| Error::Input {
        path: path.to_path_buf(),
        line: None,
        message: format!("the signature cannot be read: {e}"),
    };
    if path != Path::new("-") {
        return crate::text::read_text(path, crate::text::limit::KEY).map_err(unreadable);
    }
    use std::io::{IsTerminal, Read};
    if std::io::stdin().is_terminal() {
        return Err(Error::Usage(
            "--signature -: standard input is a terminal; give the signature file on it (--signature - < plan.txt.sig)"
                .into(),
        ));
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .lock()
        .take(crate::text::limit::KEY + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    if bytes.len() as u64 > crate::text::limit::KEY {
        return Err(unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "standard input holds more than 64 KiB; an SSH signature is under 1 KiB",
        )));
    }
    String::from_utf8(bytes).map_err(|_| {
        unreadable(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "standard input is not text; give the .sig file ssh-keygen -Y sign wrote",
        ))
    })
}

/// The run a saved plan becomes when it is applied: the frozen record, started now by whoever
/// applies it.
pub fn run_of(plan: &SavedPlan, journal: &Journal) -> RunRecord {
    let mut record = plan.record.clone();
    record.started_at = now();
    record.run_by = person().0;
    // The stamp in the set's description names who makes the set: this host and journal.
    let description = &record.execution.set_description;
    let human = match description.rfind(&format!("{}:{{", super::ledger::MARKER)) {
        Some(at) => description[..at].trim_end().to_string(),
        None => description.clone(),
    };
    let stamp = super::ledger::Stamp {
        query: record.query.clone(),
        period: record.period.clone(),
        run: record.run_id.clone(),
        host: super::ledger::host(),
        journal: std::path::absolute(journal.path())
            .unwrap_or_else(|_| journal.path().to_path_buf())
            .display()
            .to_string(),
    };
    record.execution.set_description = match human.as_str() {
        "" => stamp.line(),
        human => format!("{human} {}", stamp.line()),
    };
    record.events.clear();
    record.steps.clear();
    record.batches.clear();
    record
}

/// The one plan of `query` and `period` that `apply --query … --period …` may apply: approved,
/// unexpired, unapplied. `Ok(None)` when there is none (the timer fires again tomorrow); two are
/// refused (exit 4) naming them.
pub fn candidate(journal: &Journal, query: &str, period: &str) -> Result<Option<SavedPlan>, Error> {
    let at = Utc::now();
    let mut found = Vec::new();
    for plan in journal.plans()? {
        if plan.query != query || plan.period.as_deref() != Some(period) || plan.state != "saved" {
            continue;
        }
        // A plan whose query cannot be read now is a person's problem, not "none approved".
        let spec = plan_query(&plan)?;
        match state(&plan, &spec.approval, at) {
            PlanState::Approved => found.push(plan),
            // Approved once, and no longer counting (changed in the journal, a key removed from
            // allowed_signers, a file changed): a person must hear of it, not a quiet skip.
            PlanState::Saved if !plan.approvals.is_empty() => {
                if let Some(refusal) = apply_refusal(&plan, &spec, at) {
                    return Err(refusal);
                }
            }
            _ => {}
        }
    }
    match found.len() {
        0 | 1 => Ok(found.pop()),
        _ => Err(Error::Refused {
            message: format!(
                "{} approved plans of query {query:?} for period {period:?} wait to be applied ({}); which one is meant is for a person to say; nothing was done",
                found.len(),
                found.iter().map(|p| p.plan_id.as_str()).collect::<Vec<_>>().join(", ")
            ),
            hint: "apply the one meant by its id: `alma-cohort apply PLAN_ID --execute`".into(),
        }),
    }
}
