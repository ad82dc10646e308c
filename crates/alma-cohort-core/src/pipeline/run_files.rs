//! Per-run files in `<state-dir>/runs/<run_id>/`: `summary.json` (the run as the journal holds
//! it) and `report.md` (what a colleague reads: who ran what, on whom, with which result).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::journal::RunRecord;

/// The IDs Alma did not add to the run's set (it knows no user by them), beside the report.
pub const REFUSED_FILE: &str = "refused.csv";
/// The members left out because the letter cannot reach them (ID, reason, what Alma said).
pub const LEFT_OUT_FILE: &str = "left-out.csv";

/// Writes `refused.csv`: each ID Alma refused, with what to look for.
fn write_refused(file: &Path, r: &RunRecord) -> Result<(), Error> {
    let out = |source: std::io::Error| Error::Output {
        path: file.to_path_buf(),
        source,
    };
    let mut w = csv::Writer::from_writer(crate::files::create(file).map_err(out)?);
    let normalize = r
        .execution
        .normalize
        .as_ref()
        .map(|n| match n.pad_numeric_to {
            Some(width) => format!("padded to {width} digits by the plan"),
            None => "not padded by the plan (no pad_numeric_to)".into(),
        })
        .unwrap_or_default();
    w.write_record(["primary_id", "alma", "look_for"])
        .map_err(|e| out(e.into()))?;
    for id in &r.invalid_ids {
        let look_for = if id.bytes().all(|b| b.is_ascii_digit()) {
            format!("leading zeros lost in Excel ({normalize}); a purged user")
        } else {
            "an ID of another identifier type than the primary ID (barcode, email); a purged user".into()
        };
        w.write_record([
            &crate::text::spreadsheet_safe(id),
            "not added: no user with this primary ID",
            &look_for,
        ])
        .map_err(|e| out(e.into()))?;
    }
    w.flush().map_err(out)
}

/// The IDs that got no letter: refused by Alma, protected since the plan and taken out of the
/// set, or taken out of the set in Alma by staff.
pub fn not_mailed(r: &RunRecord) -> std::collections::HashSet<String> {
    r.invalid_ids
        .iter()
        .chain(&r.protected_ids)
        .chain(&r.taken_out)
        .map(|i| i.to_lowercase())
        .collect()
}

/// The reviewer's page of a run or saved plan.
pub const REPORT_HTML_FILE: &str = "report.html";

/// Writes `summary.json`, `report.md` and `report.html`; returns the report's path. A run whose
/// files were pruned (retention) gets none again: `None`.
pub fn write_run_files(state_dir: &Path, record: &RunRecord, cohort: &[String]) -> Result<Option<PathBuf>, Error> {
    if record.files_pruned_at.is_some() {
        return Ok(None);
    }
    let folder = state_dir.join("runs").join(&record.run_id);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Output { path, source }
    };
    crate::files::create_dir(&folder).map_err(io(&folder))?;
    let summary = folder.join("summary.json");
    let json = serde_json::to_string_pretty(record).map_err(|e| Error::Usage(e.to_string()))?;
    crate::files::write(&summary, json).map_err(io(&summary))?;
    let report = folder.join("report.md");
    crate::files::write(&report, markdown(record, cohort)).map_err(io(&report))?;
    let html = folder.join(REPORT_HTML_FILE);
    crate::files::write(&html, html_report(record, cohort)?).map_err(io(&html))?;
    if !record.invalid_ids.is_empty() {
        write_refused(&folder.join(REFUSED_FILE), record)?;
    }
    let left_out = left_out(record);
    if !left_out.is_empty() {
        super::eligibility::write_left_out(&folder.join(LEFT_OUT_FILE), &left_out)?;
    }
    if !folder.join("cohort.csv").exists() {
        let mut csv = String::from("primary_id\n");
        for id in cohort {
            let _ = writeln!(csv, "{id}");
        }
        crate::files::write(&folder.join("cohort.csv"), csv).map_err(io(&folder))?;
    }
    Ok(Some(report))
}

/// The IDs taken out of the set before the job because an exclusion file protects them now (not
/// those a fresh lookup left out).
pub fn protected_only(record: &RunRecord) -> Vec<String> {
    let ineligible = record
        .execution
        .eligibility
        .as_ref()
        .map(|c| super::eligibility::left_out_ids(&c.left_out))
        .unwrap_or_default();
    record
        .protected_ids
        .iter()
        .filter(|id| !ineligible.contains(&id.to_lowercase()))
        .cloned()
        .collect()
}

/// Everyone a run left out, with the reason: the plan's (eligibility, cooldown), the lookups
/// since, and the protections since.
pub fn left_out(record: &RunRecord) -> Vec<super::eligibility::LeftOut> {
    use super::eligibility::{LeftOut, Reason};
    let mut all: Vec<LeftOut> = record
        .plan
        .get("left_out")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default();
    if let Some(checked) = &record.execution.eligibility {
        all.extend(checked.left_out.iter().filter(|l| l.since_plan).cloned());
    }
    all.extend(protected_only(record).into_iter().map(|id| LeftOut {
        id,
        reason: Reason::Protected,
        alma_said: "an exclusion file protects this ID since the plan".into(),
        since_plan: true,
    }));
    all.extend(record.taken_out.iter().map(|id| LeftOut {
        id: id.clone(),
        reason: Reason::RemovedInAlma,
        alma_said: "removed from the set in Alma after the run added it; not added again".into(),
        since_plan: true,
    }));
    all
}

/// The letter the run checked, in one line.
fn letter_line(r: &RunRecord) -> String {
    match &r.execution.letter {
        Some(l) => l.line(),
        None => format!("{} (not checked by this run)", r.execution.letter_code()),
    }
}

/// The users the plan left out for having no email address (they keep their password).
fn no_email_ids(r: &RunRecord) -> Vec<String> {
    r.plan
        .get("no_email_ids")
        .and_then(|v| serde_json::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// A section of the report: `## title`, then a table with one row a line (cells as given).
fn table<const N: usize>(s: &mut String, title: &str, headings: [&str; N], rows: impl Iterator<Item = [String; N]>) {
    let _ = writeln!(s, "\n## {title}\n\n| {} |\n|{}", headings.join(" | "), "---|".repeat(N));
    for row in rows {
        let _ = writeln!(s, "| {} |", row.join(" | "));
    }
}

/// Text for one Markdown table cell: no `|` that ends it, no line break that ends the row, no
/// control character.
fn cell(v: &str) -> String {
    v.trim()
        .replace('|', "\\|")
        .replace("\r\n", "<br>")
        .replace(['\n', '\r'], "<br>")
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

pub fn markdown(r: &RunRecord, cohort: &[String]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Password reset run {}\n", r.run_id);
    let _ = writeln!(s, "| | |\n|---|---|");
    let row = |s: &mut String, k: &str, v: &str| {
        let _ = writeln!(s, "| {k} | {} |", cell(v));
    };
    row(
        &mut s,
        "query",
        &format!(
            "{} (`{}`, sha256 {})",
            r.query,
            r.query_file,
            &r.query_hash[..r.query_hash.len().min(12)]
        ),
    );
    if let (Some(file), Some(hash)) = (&r.input_file, &r.input_hash) {
        row(
            &mut s,
            "IDs from",
            &format!("the file `{file}` (sha256 {})", &hash[..hash.len().min(12)]),
        );
    }
    let params: Vec<String> = r.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let params = if params.is_empty() {
        "none".to_string()
    } else {
        params.join(", ")
    };
    row(&mut s, "params", &params);
    row(&mut s, "period", r.period.as_deref().unwrap_or("none"));
    row(&mut s, "run by", &r.run_by);
    row(&mut s, "started", &r.started_at);
    row(&mut s, "finished", r.finished_at.as_deref().unwrap_or("not yet"));
    row(&mut s, "status", &r.status);
    row(&mut s, "state", &format!("{} (next: {})", r.state, r.state.next_step()));
    row(&mut s, "cohort", &format!("{} users", r.cohort_size));
    row(&mut s, "letter", &letter_line(r));
    if let Some(checked) = &r.execution.eligibility {
        row(&mut s, "eligibility", &checked.lines().join("; "));
    }
    row(
        &mut s,
        "set",
        &format!(
            "{} ({})",
            r.execution.set_name,
            r.set_id.as_deref().unwrap_or("not created")
        ),
    );
    row(
        &mut s,
        "members",
        &match r.members_added {
            Some(n) => {
                let mut line = format!("{n} added, {} not in Alma (no letter)", r.invalid_ids.len());
                if !r.protected_ids.is_empty() {
                    line.push_str(&format!(
                        ", {} protected since the plan and taken out",
                        r.protected_ids.len()
                    ));
                }
                if !r.taken_out.is_empty() {
                    line.push_str(&format!(
                        ", {} removed from the set in Alma (not added again, no letter)",
                        r.taken_out.len()
                    ));
                }
                line
            }
            None if r.batches.is_empty() => "not added yet".into(),
            None => format!(
                "{} added in {} batches before the run stopped (the set holds them); the refused were not counted yet",
                r.batches.iter().map(|b| b.2).sum::<usize>(),
                r.batches.len()
            ),
        },
    );
    row(
        &mut s,
        "job",
        &format!("{} {}", r.execution.job_name, r.job_id.as_deref().unwrap_or("")),
    );
    row(
        &mut s,
        "job instance",
        r.job_instance_id.as_deref().unwrap_or("not submitted"),
    );
    row(&mut s, "job status", r.job_status.as_deref().unwrap_or("unknown"));
    if let Some(e) = &r.error {
        row(&mut s, "last error", e);
    }
    if !r.counters.is_empty() {
        let _ = writeln!(s, "\n## Job counters\n\n| counter | value |\n|---|---|");
        for (code, desc, value) in &r.counters {
            let _ = writeln!(
                s,
                "| {} | {} |",
                cell(if desc.is_empty() { code } else { desc }),
                cell(value)
            );
        }
    }
    if !r.alerts.is_empty() {
        let _ = writeln!(s, "\n## Job alerts\n");
        for (code, desc) in &r.alerts {
            let _ = writeln!(s, "- {code}: {desc}");
        }
    }
    table(
        &mut s,
        "Steps",
        ["step", "started", "finished", "detail"],
        r.steps.iter().map(|st| {
            [
                st.step.to_string(),
                st.started_at.to_string(),
                st.finished_at.clone().unwrap_or_default(),
                cell(st.detail.as_deref().unwrap_or("")),
            ]
        }),
    );
    table(
        &mut s,
        "History",
        ["at", "from", "to", "by", "what"],
        r.events.iter().map(|e| {
            [
                e.at.to_string(),
                e.from.map(|f| f.as_str()).unwrap_or("").to_string(),
                e.to.to_string(),
                cell(&e.by),
                cell(&e.detail),
            ]
        }),
    );
    let left_out = left_out(r);
    if !left_out.is_empty() {
        table(
            &mut s,
            &format!(
                "Left out: the letter cannot reach them, or they were reset recently ({}; also in `{LEFT_OUT_FILE}`)",
                left_out.len()
            ),
            ["ID", "reason", "what Alma said"],
            left_out.iter().map(|l| {
                [
                    format!("`{}`", cell(&l.id)),
                    l.reason.as_str().to_string(),
                    cell(&l.alma_said),
                ]
            }),
        );
    }
    let no_email = no_email_ids(r);
    if !no_email.is_empty() {
        let _ = writeln!(
            s,
            "\n## Left out: no email address ({})\n\nTheir letter could not arrive, so they were not reset and keep their current password. The list with their report columns is `no-email.csv` beside this report.\n",
            no_email.len()
        );
        for id in &no_email {
            let _ = writeln!(s, "- `{id}`");
        }
    }
    if !r.invalid_ids.is_empty() {
        let _ = writeln!(
            s,
            "\n## Not in Alma: no letter ({})\n\nAlma knows no user by these IDs and did not add them to the set (lost leading zeros, another identifier type, purged users); `{REFUSED_FILE}` beside this report lists them.{}\n",
            r.invalid_ids.len(),
            match &r.refused_accepted {
                Some(by) => format!(" The operator let the run go on without them ({by})."),
                None => String::new(),
            }
        );
        for id in &r.invalid_ids {
            let _ = writeln!(s, "- `{id}`");
        }
    }
    if !r.protected_ids.is_empty() {
        let _ = writeln!(
            s,
            "\n## Protected since the plan: no letter ({})\n\nAn exclusion file named them after the plan; they were taken out of the set before the job.\n",
            r.protected_ids.len()
        );
        for id in &r.protected_ids {
            let _ = writeln!(s, "- `{id}`");
        }
    }
    if !r.taken_out.is_empty() {
        let _ = writeln!(
            s,
            "\n## Removed from the set in Alma: no letter ({})\n\nThe run added them to its set; someone took them out of it in Alma (Manage Sets) before the job. They were not added again.\n",
            r.taken_out.len()
        );
        for id in &r.taken_out {
            let _ = writeln!(s, "- `{id}`");
        }
    }
    let notified = r
        .counters
        .iter()
        .find(|(c, _, _)| c.contains("notified"))
        .map(|(_, _, v)| v.clone());
    let _ = writeln!(
        s,
        "\n## Cohort ({} IDs{})\n\nThe full list is in `cohort.csv` beside this report.",
        cohort.len(),
        notified
            .map(|n| format!("; the job reports {n} notified"))
            .unwrap_or_default()
    );
    s
}

const HTML_TEMPLATE: &str = include_str!("../../templates/report.html");

#[derive(serde::Serialize)]
struct Bar {
    label: String,
    value: usize,
    width: usize,
    y: usize,
}

#[derive(serde::Serialize)]
struct Chart {
    title: String,
    color: &'static str,
    height: usize,
    bars: Vec<Bar>,
}

/// Horizontal bars, the longest 180 units wide (labels take the first 210).
fn chart(title: String, color: &'static str, items: Vec<(String, usize)>) -> Chart {
    let max = items.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    let bars: Vec<Bar> = items
        .into_iter()
        .enumerate()
        .map(|(i, (label, value))| Bar {
            label,
            value,
            width: value * 180 / max,
            y: i * 22,
        })
        .collect();
    Chart {
        title,
        color,
        height: bars.len() * 22 + 4,
        bars,
    }
}

/// One self-contained page (no network, no scripts): the run, the cohort by group and the drops
/// by reason as inline SVG bars, the job's counters and alerts, and the IDs.
pub fn html_report(r: &RunRecord, cohort: &[String]) -> Result<String, Error> {
    let mut charts = Vec::new();
    if let Some(breakdown) = r.plan.get("breakdown").and_then(|b| b.as_array()) {
        for b in breakdown.iter().take(3) {
            let column = b.get("column").and_then(|c| c.as_str()).unwrap_or_default();
            let items = b
                .get("counts")
                .and_then(|c| c.as_array())
                .map(|counts| {
                    counts
                        .iter()
                        .map(|pair| {
                            let label = pair.get(0).and_then(|v| v.as_str()).unwrap_or("(empty)").to_string();
                            (label, pair.get(1).and_then(|n| n.as_u64()).unwrap_or(0) as usize)
                        })
                        .collect()
                })
                .unwrap_or_default();
            charts.push(chart(format!("By {column}"), "#3b6fd4", items));
        }
    }
    if let Some(dropped) = r.plan.get("dropped").and_then(|d| d.as_array()) {
        let items = dropped
            .iter()
            .map(|d| {
                let label = d
                    .get("description")
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                (label, d.get("rows").and_then(|n| n.as_u64()).unwrap_or(0) as usize)
            })
            .collect();
        charts.push(chart("Rows dropped, by reason".into(), "#c46a2b", items));
    }
    let invalid = not_mailed(r);
    let notified: Vec<&String> = cohort
        .iter()
        .filter(|id| !invalid.contains(&id.to_lowercase()))
        .collect();
    let counters: Vec<(String, String)> = r
        .counters
        .iter()
        .map(|(code, desc, v)| (if desc.is_empty() { code.clone() } else { desc.clone() }, v.clone()))
        .collect();
    let params = if r.params.is_empty() {
        "none".to_string()
    } else {
        r.params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut env = minijinja::Environment::new();
    env.add_template("report.html", HTML_TEMPLATE)
        .map_err(|e| Error::Usage(format!("report template: {e}")))?;
    let template = env
        .get_template("report.html")
        .map_err(|e| Error::Usage(format!("report template: {e}")))?;
    template
        .render(minijinja::context! {
            run => minijinja::Value::from(minijinja::value::Serde(r)),
            hash => &r.query_hash[..r.query_hash.len().min(12)],
            params => params,
            report_rows => r.plan.get("report").and_then(|p| p.get("rows")).and_then(|n| n.as_u64()).unwrap_or(0),
            charts => minijinja::Value::from(minijinja::value::Serde(&charts)),
            counters => minijinja::Value::from(minijinja::value::Serde(&counters)),
            notified => minijinja::Value::from(minijinja::value::Serde(&notified)),
            no_email => minijinja::Value::from(minijinja::value::Serde(&no_email_ids(r))),
            letter => letter_line(r),
            left_out => minijinja::Value::from(minijinja::value::Serde(&left_out(r))),
        })
        .map_err(|e| Error::Usage(format!("report template: {e}")))
}
