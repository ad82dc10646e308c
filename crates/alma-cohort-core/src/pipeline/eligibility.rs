//! Who can read the letter with the new password, decided before anything is written: the letter
//! that carries the password (enabled, sent by email, with a branch for the job's notification
//! type that prints `temp_password`), the job (found by id or name), and every cohort member as
//! Alma holds them now (internal, active, not expired, a preferred email, no role but Patron).
//! [`may_write`] is the one answer to "may this run write to Alma at all?": `run --execute` (in
//! its plan), `apply` and `resume` call it before their first write, and the job step calls it
//! again right before the submission.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::NaiveDate;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::GuardCheck;
use crate::error::Error;
use crate::journal::Execution;
pub use crate::journal::{Checked, LeftOut, LetterSeen, Reason, Rules};
use crate::query::EligibilityColumns;
use alma_client::{self as alma, AlmaClient, JobId, UserInfo};

/// Where in Alma a librarian fixes the letter.
pub const LETTER_HINT: &str = "in Alma: Configuration → General → Letters → Letters Configuration → User Notifications Letter: enable it, send it by Email, and keep the branch for the notification type that prints notification_data/temp_password; then run again";

/// Lookups in flight at once: enough to keep the institution's pace (25/s) with Alma's answer
/// times of up to about a second; the client's pacer spaces them.
pub const LOOKUPS_IN_FLIGHT: usize = 32;

/// The notification type a run's job sends, from the parameters it will send.
pub fn notification_of(execution: &Execution) -> Option<String> {
    let active = execution
        .job_parameters
        .iter()
        .find(|(k, _)| k == "SEND_Notification_To_User_Active")
        .is_some_and(|(_, v)| v.trim().eq_ignore_ascii_case("true"));
    execution
        .job_parameters
        .iter()
        .find(|(k, _)| k == "SEND_Notification_To_User_Value")
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| active && !v.is_empty())
}

/// Judges a letter as Alma returned it, for the job's notification type.
pub fn judge_letter(letter: &alma::Letter, code: &str, notification: &str) -> LetterSeen {
    let digest = crate::files::sha256_hex(
        format!(
            "code={}\nenabled={}\nchannel={}\nxsl=\n{}",
            letter.code, letter.enabled, letter.channel, letter.xsl
        )
        .as_bytes(),
    );
    let branch = password_branch(&letter.xsl, notification);
    let problem = if !letter.code.is_empty() && !letter.code.eq_ignore_ascii_case(code) {
        Some(format!("Alma answered with letter {:?}, not {code:?}", letter.code))
    } else if !letter.is_enabled() {
        Some(format!(
            "the letter is not enabled (enabled = {:?}): nobody would be told the new password",
            letter.enabled
        ))
    } else if !letter.channel.eq_ignore_ascii_case("EMAIL") {
        Some(format!(
            "the letter is sent by {} , not EMAIL: the password goes out by email only",
            if letter.channel.is_empty() {
                "no channel"
            } else {
                &letter.channel
            }
        ))
    } else {
        match &branch {
            Err(e) => Some(format!("its XSL cannot be read: {e}")),
            Ok(false) => Some(format!(
                "its XSL has no branch for notification type {notification} ([job] notification) that prints notification_data/temp_password: the letter would go out without the new password"
            )),
            Ok(true) => None,
        }
    };
    LetterSeen {
        code: code.to_string(),
        name: letter.name.clone(),
        enabled: letter.is_enabled(),
        channel: letter.channel.clone(),
        customized: letter.customized.clone(),
        updated_by: letter.updated_by.clone(),
        update_date: letter.update_date.clone(),
        notification: notification.to_string(),
        password_branch: branch.unwrap_or(false),
        digest,
        problem,
        checked_at: crate::journal::now(),
    }
}

/// The XSLT namespace: only elements in it are instructions, whatever their prefix.
const XSLT: &str = "http://www.w3.org/1999/XSL/Transform";

/// The largest XSL judged: real letters are a few tens of KB.
const MAX_XSL: usize = 4 << 20;

/// A `test` that is exactly `notification_data/notification_type = 'X'` (either side, either
/// quote, a leading `/` allowed): the literal `X`. Anything else (`and`, `or`, `not(…)`, `!=`,
/// `contains(…)`) is `None`: nobody can say without running it whether it picks the branch.
fn type_literal(test: &str) -> Option<String> {
    // Whitespace goes outside string literals only: `'X '` is not `'X'`.
    let mut t = String::with_capacity(test.len());
    let mut quote = None;
    for c in test.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            None if c == '\'' || c == '"' => quote = Some(c),
            None if c.is_whitespace() => continue,
            _ => {}
        }
        t.push(c);
    }
    let path = |p: &str| {
        matches!(
            p,
            "notification_data/notification_type" | "/notification_data/notification_type"
        )
    };
    let literal = |l: &str| {
        let q = l.chars().next()?;
        (matches!(q, '\'' | '"') && l.len() >= 2 && l.ends_with(q) && !l[1..l.len() - 1].contains(['\'', '"']))
            .then(|| l[1..l.len() - 1].to_string())
    };
    let (left, right) = t.split_once('=')?;
    if left.ends_with('!') || right.contains('=') {
        return None;
    }
    match (path(left), path(right)) {
        (true, false) => literal(right),
        (false, true) => literal(left),
        _ => None,
    }
}

/// One open element while the XSL is read.
struct Open {
    /// An XSLT instruction, by local name (`None`: a literal result element, which always
    /// outputs what it holds).
    xsl: Option<String>,
    /// Its content is output whenever the template runs, for this notification type: a
    /// top-level `xsl:template` with a `match`, an `xsl:choose` on such a path, the branch.
    ok: bool,
    /// The `xsl:when`/`xsl:if` that tests exactly the notification type.
    branch: bool,
    /// For an `xsl:choose`: an earlier `when` may already pick the type.
    taken: bool,
    /// For a template: its `match`.
    matched: Option<String>,
}

/// Whether the XSL prints the temporary password for `notification`, for certain, without
/// running it: a top-level template with a `match` (the only one with that match) holds, through
/// literal result elements only, an `xsl:choose` whose first `xsl:when` that can pick the type
/// tests exactly `notification_data/notification_type = 'TYPE'` (every `when` before it tests
/// another type the same simple way), or such an `xsl:if`; and inside that branch, through
/// literal result elements only, `xsl:value-of select="notification_data/temp_password"`. A
/// branch under another condition, in a loop, a variable, an attribute, a comment or a message,
/// or in a named template, does not count. Empty, not XML, or too large is an error.
pub fn password_branch(xsl: &str, notification: &str) -> Result<bool, String> {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    if xsl.trim().is_empty() {
        return Err("it is empty".into());
    }
    if xsl.len() > MAX_XSL {
        return Err(format!(
            "it is {} bytes, more than a letter's XSL can be ({MAX_XSL})",
            xsl.len()
        ));
    }
    let mut reader = quick_xml::NsReader::from_str(xsl.trim_start_matches('\u{feff}'));
    let mut open: Vec<Open> = Vec::new();
    let mut elements = 0usize;
    // The match of the template where the password is printed, and how many templates have
    // each match.
    let mut found: Option<String> = None;
    let mut matches: HashMap<String, usize> = HashMap::new();
    loop {
        let at = reader.buffer_position();
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("not XML (near byte {at}): {e}"))?;
        let is_xsl = matches!(ns, ResolveResult::Bound(n) if n.as_ref() == XSLT);
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                elements += 1;
                // Attributes without a prefix only (`foo:test` is another attribute); one that
                // cannot be read, or twice the same, makes a letter Alma cannot render.
                let mut attrs: Vec<(String, String)> = Vec::new();
                for a in e.attributes() {
                    let a = a.map_err(|err| format!("not XML (near byte {at}): {err}"))?;
                    let key = a.key.as_ref().to_string();
                    let value = a
                        .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .map_err(|err| format!("not XML (near byte {at}): {err}"))?
                        .into_owned();
                    if attrs.iter().any(|(k, _)| *k == key) {
                        return Err(format!("not XML (near byte {at}): the attribute {key} twice"));
                    }
                    attrs.push((key, value));
                }
                let attr =
                    |name: &str| -> Option<String> { attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()) };
                let name = e.local_name().as_ref().to_string();
                // Everything open outputs unconditionally (for this type).
                let clear = !open.is_empty() && open.iter().all(|o| o.ok || o.xsl.is_none());
                let mut entry = Open {
                    xsl: is_xsl.then(|| name.clone()),
                    ok: false,
                    branch: false,
                    taken: false,
                    matched: None,
                };
                if is_xsl {
                    match name.as_str() {
                        "stylesheet" | "transform" => entry.ok = open.is_empty(),
                        "template" => {
                            if let Some(m) = attr("match") {
                                let m: String = m.chars().filter(|c| !c.is_whitespace()).collect();
                                let moded = attr("mode").is_some();
                                // Every template that can take the root (`/`, `/|x`), whatever its
                                // mode or priority: with two, which one runs is not certain.
                                if m.split('|').any(|alt| alt == "/") {
                                    *matches.entry("/".into()).or_insert(0) += 1;
                                }
                                entry.ok = m == "/" && !moded && open.len() == 1 && open[0].ok;
                                entry.matched = Some(m);
                            }
                        }
                        "choose" => entry.ok = clear,
                        "when" => {
                            if let Some(choose) = open.last_mut().filter(|o| o.xsl.as_deref() == Some("choose")) {
                                let literal = attr("test").as_deref().and_then(type_literal);
                                if !choose.taken {
                                    match literal {
                                        Some(l) if l == notification => {
                                            entry.branch = clear;
                                            entry.ok = clear;
                                            choose.taken = true;
                                        }
                                        Some(_) => {}
                                        // A test nobody can read here may pick the type first.
                                        None => choose.taken = true,
                                    }
                                }
                            }
                        }
                        "if" => {
                            let literal = attr("test").as_deref().and_then(type_literal);
                            entry.branch = clear && literal.as_deref() == Some(notification);
                            entry.ok = entry.branch;
                        }
                        "value-of" => {
                            let select: String = attr("select")
                                .unwrap_or_default()
                                .chars()
                                .filter(|c| !c.is_whitespace())
                                .collect();
                            let prints = matches!(
                                select.as_str(),
                                "notification_data/temp_password" | "/notification_data/temp_password"
                            );
                            // Up to the branch through literal result elements only.
                            let branch = open.iter().rposition(|o| o.xsl.is_some()).filter(|&i| open[i].branch);
                            if prints && clear && branch.is_some() {
                                found = open.iter().find_map(|o| o.matched.clone());
                            }
                        }
                        _ => {}
                    }
                }
                if !empty {
                    open.push(entry);
                }
            }
            Event::End(_) => {
                open.pop();
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if elements == 0 {
        return Err("it holds no XML element".into());
    }
    if !open.is_empty() {
        return Err(format!("not XML: {} element(s) not closed", open.len()));
    }
    // Another template with the same match may be the one that runs.
    Ok(found.is_some_and(|m| matches.get(&m).copied().unwrap_or(0) == 1))
}

/// Reads the letter and judges it. Alma's refusal (a 4xx: no such letter, no permission) is a
/// problem of the letter, not a network failure: the run must not go on with a letter nobody
/// has seen. Other failures (network, 5xx after retries) are errors (exit 3).
pub async fn check_letter(client: &AlmaClient, code: &str, notification: &str) -> Result<LetterSeen, Error> {
    match client.get_letter(code).await {
        Ok(letter) => Ok(judge_letter(&letter, code, notification)),
        Err(e) if refused(&e) => Ok(unseen(code, notification, format!("Alma would not show it ({e})"))),
        Err(e) => Err(e.into()),
    }
}

/// A letter that could not be judged, and why: it cannot carry the password.
fn unseen(code: &str, notification: &str, problem: String) -> LetterSeen {
    LetterSeen {
        code: code.to_string(),
        name: String::new(),
        enabled: false,
        channel: String::new(),
        customized: String::new(),
        updated_by: String::new(),
        update_date: String::new(),
        notification: notification.to_string(),
        password_branch: false,
        digest: String::new(),
        problem: Some(problem),
        checked_at: crate::journal::now(),
    }
}

/// An answer from Alma that says no (4xx other than the pace's 429), or one that cannot be read.
fn refused(e: &alma::Error) -> bool {
    // A key Alma does not take (or that lacks Configuration) is the key's problem, not the
    // letter's: Alma's error (exit 3), never "the letter cannot carry the password".
    if e.alma_code().is_some_and(|(_, code)| code == "UNAUTHORIZED") {
        return false;
    }
    match e {
        alma::Error::Api { status, .. } => (400..500).contains(status) && *status != 429,
        alma::Error::Unexpected { status, .. } => *status < 500,
        _ => false,
    }
}

/// The job a run will submit, as found before anything is written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSeen {
    pub id: String,
    /// `[job] id` or `[job] name`, as the query gave it.
    pub found_by: String,
}

/// Finds the run's job: the fixed `[job] id` must exist, or the `[job] name` must name exactly one
/// MANUAL job. What Alma says no to is a problem naming the query's key; network failures are
/// errors.
pub async fn check_job(client: &AlmaClient, execution: &Execution) -> Result<Result<JobSeen, String>, Error> {
    match &execution.job_id {
        Some(id) => match client.job_exists(&JobId(id.clone())).await {
            Ok(()) => Ok(Ok(JobSeen {
                id: id.clone(),
                found_by: format!("[job] id = {id:?}"),
            })),
            Err(e) if refused(&e) => Ok(Err(format!("[job] id = {id:?} names no job Alma has ({e})"))),
            Err(e) => Err(e.into()),
        },
        None => match client.find_job_by_name(&execution.job_name).await {
            Ok(id) => Ok(Ok(JobSeen {
                id: id.0,
                found_by: format!("[job] name = {:?}", execution.job_name),
            })),
            Err(alma::Error::Report { message, .. }) => Ok(Err(format!("[job] name: {message}"))),
            Err(e) if refused(&e) => Ok(Err(format!("[job] name = {:?}: {e}", execution.job_name))),
            Err(e) => Err(e.into()),
        },
    }
}

/// What the checks before any write found: the letter and the job.
#[derive(Clone, Debug)]
pub struct Preflight {
    pub letter: LetterSeen,
    pub job: Result<JobSeen, String>,
}

impl Preflight {
    /// The checks as guards (both refuse `run --execute`; `plan` shows them).
    pub fn guards(&self) -> Vec<GuardCheck> {
        let letter = GuardCheck {
            guard: "letter",
            ok: Some(self.letter.problem.is_none()),
            detail: match &self.letter.problem {
                None => format!(
                    "{} is enabled, sent by EMAIL, and prints the temporary password for {}",
                    self.letter.code, self.letter.notification
                ),
                Some(p) => format!("letter {}: {p}; nothing was written to Alma", self.letter.code),
            },
            hint: LETTER_HINT.into(),
            execute_only: true,
        };
        let job = GuardCheck {
            guard: "job",
            ok: Some(self.job.is_ok()),
            detail: match &self.job {
                Ok(j) => format!("job {} found by {}", j.id, j.found_by),
                Err(p) => format!("{p}; nothing was written to Alma"),
            },
            hint: "check the job in Alma (Admin → Run a Job: Update/Notify Users; its id is in the API information) and fix [job] name or [job] id in the query file".into(),
            execute_only: true,
        };
        vec![letter, job]
    }

    /// The first check that refuses, as the error that stops the run (exit 4).
    pub fn refusal(&self) -> Option<Error> {
        self.guards()
            .into_iter()
            .find(|g| g.ok == Some(false))
            .map(|g| Error::Guard {
                guard: g.guard,
                detail: g.detail,
                hint: g.hint,
            })
    }
}

/// The letter and the job, read for a run's execution (its parameters as they will be sent).
pub async fn preflight(client: &AlmaClient, execution: &Execution) -> Result<Preflight, Error> {
    preflight_with(client, execution, None).await
}

/// [`preflight`], the job already found (`known`) by the step that submits it.
async fn preflight_with(client: &AlmaClient, execution: &Execution, known: Option<&JobId>) -> Result<Preflight, Error> {
    let job = async || match known {
        Some(id) => Ok(Ok(JobSeen {
            id: id.0.clone(),
            found_by: "the run's job".into(),
        })),
        None => check_job(client, execution).await,
    };
    let code = execution.letter_code();
    let notification = match notification_of(execution) {
        Some(n) => n,
        None => {
            return Ok(Preflight {
                letter: unseen(
                    code,
                    "",
                    "the job's parameters send no notification (SEND_Notification_To_User_Active/Value): nobody would be told the new password".into(),
                ),
                job: job().await?,
            });
        }
    };
    let letter = check_letter(client, code, &notification).await?;
    let job = job().await?;
    Ok(Preflight { letter, job })
}

/// May this run write to Alma at all? The letter carries the password and the job exists —
/// otherwise the refusal (exit 4), before any write. Every command that writes calls it first.
pub async fn may_write(client: &AlmaClient, execution: &Execution) -> Result<Preflight, Error> {
    may_write_with(client, execution, None).await
}

/// [`may_write`] right before the submission, the job already found.
pub async fn may_write_with(
    client: &AlmaClient,
    execution: &Execution,
    job: Option<&JobId>,
) -> Result<Preflight, Error> {
    let preflight = preflight_with(client, execution, job).await?;
    if let Some(refusal) = preflight.refusal() {
        return Err(refusal);
    }
    Ok(preflight)
}

/// Today at the institution, without knowing its time zone: Alma's clock (the `Date` of its
/// last answer; this machine's clock when there is none), at the latest date anywhere (UTC+14),
/// so that a user whose account ends today somewhere is never counted as still valid.
pub fn today(client: Option<&AlmaClient>) -> NaiveDate {
    (alma_now(client) + chrono::Duration::hours(14)).date_naive()
}

/// What time it is in Alma: the `Date` of its last answer, this machine's clock without one. The
/// lookups' age is measured on it, so that a machine whose clock is off does not keep stale
/// lookups.
pub fn alma_now(client: Option<&AlmaClient>) -> chrono::DateTime<chrono::Utc> {
    client
        .and_then(AlmaClient::alma_date)
        .and_then(|d| chrono::DateTime::parse_from_rfc2822(d.trim()).ok())
        .map(|d| d.with_timezone(&chrono::Utc))
        .unwrap_or_else(chrono::Utc::now)
}

/// [`judge`] for the user Alma answered for `id`: a user found by another identifier (the ID is
/// someone's barcode or email, not a primary ID) is not the one the set will hold.
fn judge_as(id: &str, user: Option<&UserInfo>, rules: &Rules, today: NaiveDate) -> Option<(Reason, String)> {
    match user {
        Some(u) if !u.primary_id.trim().eq_ignore_ascii_case(id.trim()) => Some((
            Reason::NotInAlma,
            "no user has this primary ID (Alma found a user by another identifier)".into(),
        )),
        user => judge(user, rules, today),
    }
}

/// The first rule a user fails, with what Alma said; `None` when the letter can reach them.
pub fn judge(user: Option<&UserInfo>, rules: &Rules, today: NaiveDate) -> Option<(Reason, String)> {
    let Some(u) = user else {
        return Some((Reason::NotInAlma, "no user with this ID (401861)".into()));
    };
    if u.account_type != "INTERNAL" {
        return Some((Reason::External, format!("account_type {}", or_none(&u.account_type))));
    }
    // A contact is no patron: nobody logs in with it.
    if u.record_type == "CONTACT" {
        return Some((Reason::External, "record_type CONTACT".into()));
    }
    if u.status != "ACTIVE" {
        return Some((Reason::Inactive, format!("status {}", or_none(&u.status))));
    }
    let expiry = u.expiry_date.trim();
    if !expiry.is_empty() {
        match expiry
            .get(..10)
            .and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        {
            Some(d) if d < today => return Some((Reason::Expired, format!("expiry_date {expiry}"))),
            Some(_) => {}
            // A date nobody can read is not a date that is still valid.
            None => {
                return Some((
                    Reason::Expired,
                    format!("expiry_date {expiry:?} cannot be read as a date"),
                ));
            }
        }
    }
    if !rules.staff_include {
        let other: Vec<String> = u
            .roles
            .iter()
            .filter(|r| r.role_type != "200")
            .map(|r| match r.desc.is_empty() {
                true => r.role_type.clone(),
                false => format!("{} ({})", r.role_type, r.desc),
            })
            .collect();
        if !other.is_empty() || u.record_type == "STAFF" {
            let said = if other.is_empty() {
                "record_type STAFF".to_string()
            } else {
                format!("roles {}", other.join(", "))
            };
            return Some((Reason::StaffRole, said));
        }
    }
    if rules.require_email && !u.preferred_email().is_some_and(crate::transform::is_address) {
        let said = match u.emails.len() {
            0 => "no email address".to_string(),
            n => format!("{n} email address(es), none preferred"),
        };
        return Some((Reason::NoEmail, said));
    }
    None
}

fn or_none(s: &str) -> &str {
    if s.is_empty() { "(none)" } else { s }
}

/// Progress of the lookups, for the operator's bar.
#[derive(Clone, Copy, Debug)]
pub enum LookupProgress {
    Start(usize),
    Done(usize),
    End,
}

/// Looks every ID up in Alma, many in flight at once at the client's pace; lost answers are
/// asked again by the client (GETs). A failure after its retries stops the plan (nothing was
/// written). Logs carry counts, never IDs.
pub async fn look_up(
    client: &AlmaClient,
    ids: &[String],
    rules: &Rules,
    progress: &mut (dyn FnMut(LookupProgress) + Send),
) -> Result<Checked, Error> {
    let started = std::time::Instant::now();
    let calls_before = client.requests_sent();
    progress(LookupProgress::Start(ids.len()));
    let mut results: Vec<Option<(Reason, String)>> = vec![None; ids.len()];
    let mut stream = futures_util::stream::iter(ids.iter().enumerate())
        .map(|(i, id)| async move { (i, client.get_user(id).await) })
        .buffer_unordered(LOOKUPS_IN_FLIGHT);
    let mut done = 0;
    let mut today = None;
    while let Some((i, answer)) = stream.next().await {
        // Alma's date, from the first answers' Date header.
        let today = *today.get_or_insert_with(|| self::today(Some(client)));
        results[i] = match answer {
            Ok(user) => judge_as(&ids[i], user.as_ref(), rules, today),
            // Alma says no about this one user (a 4xx other than "not found", e.g. 401855 for
            // an account the API does not support): left out, never guessed.
            Err(e) if refused(&e) => Some((
                Reason::Unreadable,
                match e.alma_code() {
                    Some((status, code)) => format!("Alma would not show this user (HTTP {status} {code})"),
                    None => "Alma would not show this user".to_string(),
                },
            )),
            Err(e) => return Err(e.into()),
        };
        done += 1;
        if done % 25 == 0 || done == ids.len() {
            progress(LookupProgress::Done(done));
        }
    }
    progress(LookupProgress::End);
    let left_out: Vec<LeftOut> = ids
        .iter()
        .zip(results)
        .filter_map(|(id, r)| {
            r.map(|(reason, alma_said)| LeftOut {
                id: id.clone(),
                reason,
                alma_said,
                since_plan: false,
            })
        })
        .collect();
    let checked = Checked {
        rules: rules.clone(),
        source: "alma".into(),
        checked_at: Some(alma_now(Some(client)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        looked_up: ids.len(),
        calls: client.requests_sent() - calls_before,
        seconds: started.elapsed().as_secs_f64(),
        left_out,
    };
    let counts: Vec<String> = checked
        .counts()
        .iter()
        .map(|(r, n)| format!("{}={n}", r.as_str()))
        .collect();
    tracing::info!(
        looked_up = checked.looked_up,
        calls = checked.calls,
        seconds = format!("{:.1}", checked.seconds),
        left_out = checked.left_out.len(),
        reasons = counts.join(" "),
        "cohort looked up in Alma"
    );
    Ok(checked)
}

/// `resume` and `apply`: when the run's lookups are older than its rules' max age (or were never
/// made), `ids` are looked up again. Returns the run's eligibility with the new lookups' time,
/// and the members left out since (marked `since_plan`); `None` when the lookups are fresh, the
/// query turned them off, or the run was journaled before lookups existed.
pub async fn refresh(
    client: &AlmaClient,
    checked: Option<&Checked>,
    ids: &[String],
    progress: &mut (dyn FnMut(LookupProgress) + Send),
) -> Result<Option<(Checked, Vec<LeftOut>)>, Error> {
    // A run journaled before lookups existed is looked up under the strict rules.
    let strict = Checked {
        rules: Rules {
            lookup: true,
            staff_include: false,
            require_email: true,
            max_age_hours: crate::query::DEFAULT_ELIGIBILITY_MAX_AGE_HOURS,
        },
        source: "none".into(),
        checked_at: None,
        looked_up: 0,
        calls: 0,
        seconds: 0.0,
        left_out: Vec::new(),
    };
    let checked = checked.unwrap_or(&strict);
    if !checked.rules.lookup || !checked.stale(alma_now(Some(client)).max(chrono::Utc::now())) {
        return Ok(None);
    }
    check_quota(client, ids.len())?;
    let fresh = look_up(client, ids, &checked.rules, progress).await?;
    let newly: Vec<LeftOut> = fresh
        .left_out
        .into_iter()
        .map(|l| LeftOut { since_plan: true, ..l })
        .collect();
    let mut merged = checked.clone();
    merged.left_out.extend(newly.iter().cloned());
    merged.source = fresh.source;
    merged.checked_at = fresh.checked_at;
    merged.looked_up = fresh.looked_up;
    merged.calls = fresh.calls;
    merged.seconds = fresh.seconds;
    Ok(Some((merged, newly)))
}

/// How many of `cohort` IDs Alma knows no user by (or would not show), and their share; `None`
/// when there are none. The plan's guard and the lookups made again at `apply` and `resume`
/// judge it the same way against `[guard] max_refused_ratio`.
pub fn not_in_alma(left_out: &[LeftOut], cohort: usize) -> Option<(usize, f64)> {
    let unknown = left_out
        .iter()
        .filter(|l| matches!(l.reason, Reason::NotInAlma | Reason::Unreadable))
        .count();
    (unknown > 0).then(|| (unknown, unknown as f64 / cohort.max(1) as f64))
}

/// Refused when the daily quota left (as Alma last said) cannot cover `n` lookups and the run's
/// other calls: the quota is the institution's, and a run that stops half-way spends it again.
pub fn check_quota(client: &AlmaClient, n: usize) -> Result<(), Error> {
    let needed = n as u64 + n as u64 / 10 + 100;
    match client.quota_remaining() {
        Some(left) if left < needed => Err(Error::Refused {
            message: format!(
                "looking up {n} users takes about {needed} calls, and Alma's daily API quota for the institution has {left} left; nothing was written to Alma"
            ),
            hint: "run again after midnight (institution time), when the quota is renewed".into(),
        }),
        _ => Ok(()),
    }
}

/// Alma knows no user by more of a run's cohort (`cohort` IDs) than `[guard] max_refused_ratio`
/// allows, found by a lookup after the plan (`apply`, `resume`): refused (exit 4), as the plan's
/// guard refuses it — a list that lost its leading zeros is never applied to the few IDs that
/// happen to be other people's.
pub fn check_not_in_alma(newly: &[LeftOut], cohort: usize, max: Option<f64>, what: &str) -> Result<(), Error> {
    let Some(max) = max else { return Ok(()) };
    let Some((unknown, share)) = not_in_alma(newly, cohort).filter(|(_, share)| *share > max) else {
        return Ok(());
    };
    Err(Error::Guard {
        guard: "not_in_alma",
        detail: format!(
            "{what}: Alma knows no user by {unknown} of the {cohort} IDs ({:.1}%; [guard] max_refused_ratio {max}); nothing more was written to Alma",
            share * 100.0
        ),
        hint: "the cohort may not be the one meant (leading zeros lost in Excel, IDs of another identifier type, purged users): check the list, then plan again".into(),
    })
}

/// The rules over the report's columns (`[eligibility] lookup = false`): `cells` holds, per
/// member, account type, status, expiry, email and (when mapped) the staff flag.
pub fn from_report(
    ids: &[String],
    cells: &[Vec<Option<String>>],
    rules: &Rules,
    today: NaiveDate,
    staff_mapped: bool,
) -> Checked {
    let left_out = ids
        .iter()
        .zip(cells)
        .filter_map(|(id, row)| {
            let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default().trim().to_string();
            let staff = get(4);
            let user = UserInfo {
                primary_id: id.clone(),
                account_type: get(0).to_ascii_uppercase(),
                status: get(1).to_ascii_uppercase(),
                record_type: String::new(),
                expiry_date: get(2),
                emails: match crate::transform::is_address(&get(3)) {
                    true => vec![alma::users::Email {
                        address: get(3),
                        preferred: true,
                    }],
                    false => Vec::new(),
                },
                roles: match staff.to_ascii_lowercase().as_str() {
                    // An empty cell in a mapped column: the report does not say, so not Patron only.
                    "" if staff_mapped => vec![alma::users::Role {
                        role_type: "unknown".into(),
                        desc: "the report does not say".into(),
                        status: String::new(),
                    }],
                    "" | "no" | "n" | "false" | "0" => Vec::new(),
                    _ => vec![alma::users::Role {
                        role_type: "staff".into(),
                        desc: format!("report says {staff:?}"),
                        status: String::new(),
                    }],
                },
            };
            judge(Some(&user), rules, today).map(|(reason, said)| LeftOut {
                id: id.clone(),
                reason,
                alma_said: format!("the report: {said}"),
                since_plan: false,
            })
        })
        .collect();
    Checked {
        rules: rules.clone(),
        source: "report".into(),
        checked_at: Some(crate::journal::now()),
        looked_up: 0,
        calls: 0,
        seconds: 0.0,
        left_out,
    }
}

/// The report headings the rules read without lookups, in [`from_report`]'s order.
pub fn report_headings(columns: &EligibilityColumns) -> Vec<Option<&str>> {
    vec![
        columns.account_type.as_deref(),
        columns.status.as_deref(),
        columns.expiry.as_deref(),
        columns.email.as_deref(),
        columns.staff.as_deref(),
    ]
}

/// Nothing checked (`why`: `none`, a list file's plan with no Alma to ask; `skipped`, a cohort
/// the `max_members` guard refuses anyway).
pub fn not_checked(rules: &Rules, why: &str) -> Checked {
    Checked {
        rules: rules.clone(),
        source: why.into(),
        checked_at: None,
        looked_up: 0,
        calls: 0,
        seconds: 0.0,
        left_out: Vec::new(),
    }
}

/// The lower-cased IDs left out.
pub fn left_out_ids(left_out: &[LeftOut]) -> HashSet<String> {
    left_out.iter().map(|l| l.id.to_lowercase()).collect()
}

/// `left-out.csv`: each member left out, why, and what Alma said.
pub fn write_left_out(file: &Path, left_out: &[LeftOut]) -> Result<(), Error> {
    let out = |source: std::io::Error| Error::Output {
        path: file.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_writer(crate::files::create(file).map_err(out)?);
    w.write_record(["primary_id", "reason", "alma_said", "when"])
        .map_err(|e| out(e.into()))?;
    for l in left_out {
        let when = if l.since_plan { "since the plan" } else { "plan" };
        w.write_record([
            &crate::text::spreadsheet_safe(&l.id),
            l.reason.as_str(),
            &l.alma_said,
            when,
        ])
        .map_err(|e| out(e.into()))?;
    }
    w.flush().map_err(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alma::users::{Email, Role};

    const XSL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:include href="header.xsl"/>
  <xsl:template match="/">
    <xsl:choose>
      <xsl:when test="notification_data/notification_type = 'SOCIAL_LOGIN_INVITATION'">Hello</xsl:when>
      <xsl:when test="notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE'">
        <p>Your temporary password: <b><xsl:value-of select="notification_data/temp_password"/></b></p>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="notification_data/temp_password"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>"#;

    fn letter(enabled: &str, channel: &str, xsl: &str) -> alma::Letter {
        alma::Letter {
            code: "UserNotificationsLetter".into(),
            name: "User Notifications Letter".into(),
            enabled: enabled.into(),
            channel: channel.into(),
            xsl: xsl.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_password_branch_is_found_only_where_it_prints_the_password() {
        assert_eq!(password_branch(XSL, "NOTIFY_PASSWORD_CHANGE"), Ok(true));
        // A type with a branch that prints no password; the otherwise branch does not count.
        assert_eq!(password_branch(XSL, "SOCIAL_LOGIN_INVITATION"), Ok(false));
        assert_eq!(password_branch(XSL, "NOTIFY_PASSWORD_CHANG"), Ok(false));
        let overdue = r#"<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/">Your loans are overdue <xsl:value-of select="notification_data/item_loan/title"/></xsl:template></xsl:stylesheet>"#;
        assert_eq!(password_branch(overdue, "NOTIFY_PASSWORD_CHANGE"), Ok(false));
        let negated = XSL.replace("= 'NOTIFY_PASSWORD_CHANGE'", "!= 'NOTIFY_PASSWORD_CHANGE'");
        assert_eq!(password_branch(&negated, "NOTIFY_PASSWORD_CHANGE"), Ok(false));
        let with_if = r#"<t:stylesheet version="1.0" xmlns:t="http://www.w3.org/1999/XSL/Transform"><t:template match="/"><p><t:if test="notification_data/notification_type=&quot;NOTIFY_PASSWORD_CHANGE&quot;"><b><t:value-of select="/notification_data/temp_password"/></b></t:if></p></t:template></t:stylesheet>"#;
        assert_eq!(
            password_branch(with_if, "NOTIFY_PASSWORD_CHANGE"),
            Ok(true),
            "any prefix, an xsl:if"
        );
        // Looks right, is not: each of these letters goes out without the password.
        let wrong = |from: &str, to: &str| {
            let x = XSL.replace(from, to);
            assert_ne!(x, XSL, "{to}");
            assert_eq!(password_branch(&x, "NOTIFY_PASSWORD_CHANGE"), Ok(false), "{to}");
        };
        let branch = "notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE'";
        wrong(
            branch,
            "notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE' and notification_data/languageCode = 'fr'",
        );
        wrong(
            branch,
            "not (notification_data/notification_type != 'NOTIFY_PASSWORD_CHANGE')",
        );
        wrong(
            branch,
            "notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE_OLD'",
        );
        // An earlier branch that may catch the type first.
        wrong(
            "notification_data/notification_type = 'SOCIAL_LOGIN_INVITATION'",
            "contains(notification_data/notification_type, 'PASSWORD')",
        );
        // Printed somewhere nobody reads, or not the password itself.
        let value = r#"<xsl:value-of select="notification_data/temp_password"/>"#;
        wrong(value, &format!("<xsl:variable name=\"p\">{value}</xsl:variable>"));
        wrong(value, &format!("<xsl:comment>{value}</xsl:comment>"));
        wrong(
            value,
            &format!("<xsl:if test=\"notification_data/user_group = 'X'\">{value}</xsl:if>"),
        );
        wrong(
            value,
            r#"<xsl:value-of select="string-length(notification_data/temp_password)"/>"#,
        );
        wrong(value, r#"<xsl:value-of select="'notification_data/temp_password'"/>"#);
        // In a template that never runs by itself, or that another with the same match overrides.
        wrong(r#"<xsl:template match="/">"#, r#"<xsl:template name="unused">"#);
        wrong(
            "</xsl:stylesheet>",
            r#"<xsl:template match="/"><p>Another notice</p></xsl:template></xsl:stylesheet>"#,
        );
        // A space inside the literal is part of it; a template that is not the root's, or has a
        // mode, or another that may take the root; an attribute of another namespace.
        wrong(
            branch,
            "notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE '",
        );
        wrong(
            r#"<xsl:template match="/">"#,
            r#"<xsl:template match="notification_data">"#,
        );
        wrong(r#"<xsl:template match="/">"#, r#"<xsl:template match="/" mode="x">"#);
        wrong(
            "</xsl:stylesheet>",
            r#"<xsl:template match="/|foo" priority="2"><p/></xsl:template></xsl:stylesheet>"#,
        );
        wrong(
            &format!("test=\"{branch}\""),
            &format!("xmlns:f=\"urn:f\" f:test=\"{branch}\" test=\"false()\""),
        );
        assert!(
            password_branch(
                &XSL.replace("<xsl:choose>", "<xsl:choose a=\"1\" a=\"2\">"),
                "NOTIFY_PASSWORD_CHANGE"
            )
            .is_err()
        );
        // The spaces Ex Libris' own letters have around the literal are fine.
        let spaced = XSL.replace(
            branch,
            "notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE' ",
        );
        assert_eq!(password_branch(&spaced, "NOTIFY_PASSWORD_CHANGE"), Ok(true));
        // Under a condition around the whole choose.
        let x = XSL.replace("</xsl:choose>", "</xsl:choose></xsl:if>").replace(
            "<xsl:choose>",
            "<xsl:if test=\"notification_data/receivers\"><xsl:choose>",
        );
        assert_eq!(password_branch(&x, "NOTIFY_PASSWORD_CHANGE"), Ok(false));
        // Elements of another namespace named like XSLT's are not instructions.
        let other_ns = XSL.replace(
            r#"<xsl:value-of select="notification_data/temp_password"/></b>"#,
            r#"<x:value-of xmlns:x="urn:other" select="notification_data/temp_password"/></b>"#,
        );
        assert_eq!(password_branch(&other_ns, "NOTIFY_PASSWORD_CHANGE"), Ok(false));
        assert!(
            password_branch(&"x".repeat(MAX_XSL + 1), "X")
                .unwrap_err()
                .contains("more than")
        );
        assert!(password_branch("", "X").unwrap_err().contains("empty"));
        assert!(password_branch("<a><b></a>", "X").unwrap_err().contains("not XML"));
        assert!(password_branch("<a><b>", "X").unwrap_err().contains("not closed"));
        assert!(password_branch("just text", "X").is_err());
    }

    #[test]
    fn each_letter_state_is_judged() {
        let ok = judge_letter(
            &letter("true", "EMAIL", XSL),
            "UserNotificationsLetter",
            "NOTIFY_PASSWORD_CHANGE",
        );
        assert_eq!(ok.problem, None);
        assert!(ok.password_branch && ok.enabled);
        assert_eq!(ok.digest.len(), 64);
        let off = judge_letter(
            &letter("false", "EMAIL", XSL),
            "UserNotificationsLetter",
            "NOTIFY_PASSWORD_CHANGE",
        );
        assert!(off.problem.unwrap().contains("not enabled"));
        assert_ne!(off.digest, ok.digest, "enabled is part of the digest");
        let sms = judge_letter(
            &letter("true", "SMS", XSL),
            "UserNotificationsLetter",
            "NOTIFY_PASSWORD_CHANGE",
        );
        assert!(sms.problem.unwrap().contains("SMS"));
        let bad = judge_letter(
            &letter("true", "EMAIL", "<x"),
            "UserNotificationsLetter",
            "NOTIFY_PASSWORD_CHANGE",
        );
        assert!(bad.problem.unwrap().contains("cannot be read"));
        let typo = judge_letter(
            &letter("true", "EMAIL", XSL),
            "UserNotificationsLetter",
            "NOTIFY_PASSWORD_CHANG",
        );
        assert!(typo.problem.unwrap().contains("NOTIFY_PASSWORD_CHANG"));
    }

    fn user() -> UserInfo {
        UserInfo {
            primary_id: "0012345".into(),
            account_type: "INTERNAL".into(),
            status: "ACTIVE".into(),
            record_type: "PUBLIC".into(),
            expiry_date: "2030-06-30Z".into(),
            emails: vec![
                Email {
                    address: "old@x.edu".into(),
                    preferred: false,
                },
                Email {
                    address: "a@x.edu".into(),
                    preferred: true,
                },
            ],
            roles: vec![Role {
                role_type: "200".into(),
                desc: "Patron".into(),
                status: "ACTIVE".into(),
            }],
        }
    }

    #[test]
    fn each_rule_leaves_out_with_what_alma_said() {
        let rules = Rules {
            lookup: true,
            staff_include: false,
            require_email: true,
            max_age_hours: 24.0,
        };
        let today = NaiveDate::from_ymd_opt(2026, 12, 4).unwrap();
        assert_eq!(judge(Some(&user()), &rules, today), None);
        assert_eq!(judge(None, &rules, today).unwrap().0, Reason::NotInAlma);
        let with = |f: &dyn Fn(&mut UserInfo)| {
            let mut u = user();
            f(&mut u);
            judge(Some(&u), &rules, today)
        };
        assert_eq!(
            with(&|u| u.account_type = "EXTERNAL".into()).unwrap().0,
            Reason::External
        );
        assert_eq!(with(&|u| u.status = "INACTIVE".into()).unwrap().0, Reason::Inactive);
        let expired = with(&|u| u.expiry_date = "2026-12-03Z".into()).unwrap();
        assert_eq!(expired, (Reason::Expired, "expiry_date 2026-12-03Z".into()));
        assert_eq!(
            with(&|u| u.expiry_date = "2026-12-04Z".into()),
            None,
            "valid through today"
        );
        assert_eq!(with(&|u| u.expiry_date = "soon".into()).unwrap().0, Reason::Expired);
        assert_eq!(with(&|u| u.expiry_date = String::new()), None, "no expiry date");
        let staff = with(&|u| {
            u.roles.push(Role {
                role_type: "21".into(),
                desc: "Circulation Desk Operator".into(),
                status: "ACTIVE".into(),
            })
        })
        .unwrap();
        assert_eq!(
            staff,
            (Reason::StaffRole, "roles 21 (Circulation Desk Operator)".into())
        );
        let no_pref = with(&|u| u.emails[1].preferred = false).unwrap();
        assert_eq!(no_pref, (Reason::NoEmail, "2 email address(es), none preferred".into()));
        // Relaxed rules.
        let relaxed = Rules {
            staff_include: true,
            require_email: false,
            ..rules.clone()
        };
        // A user found by another identifier is not the one the set would hold; a contact is no
        // patron; a "preferred" address that is no address reaches nobody.
        assert_eq!(judge_as("0012345", Some(&user()), &rules, today), None);
        assert_eq!(judge_as("0012345 ", Some(&user()), &rules, today), None);
        assert_eq!(
            judge_as("BARCODE1", Some(&user()), &rules, today).unwrap().0,
            Reason::NotInAlma
        );
        assert_eq!(with(&|u| u.record_type = "CONTACT".into()).unwrap().0, Reason::External);
        assert_eq!(
            with(&|u| u.emails[1].address = "not an address".into()).unwrap().0,
            Reason::NoEmail
        );
        let mut u = user();
        u.emails.clear();
        u.record_type = "STAFF".into();
        assert_eq!(judge(Some(&u), &relaxed, today), None);
        assert_eq!(judge(Some(&u), &rules, today).unwrap().0, Reason::StaffRole);
    }
}
