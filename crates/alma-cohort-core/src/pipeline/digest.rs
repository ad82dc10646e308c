//! A saved plan's canonical text and its digest: what an approval approves. The text names the
//! intent (query, period), who planned it and when, the Alma it was planned against, the query,
//! list and exclusion files by hash, the parameters, the set and job, the letter's digest, the
//! guards a run checks again, and every ID of the frozen cohort, one a line. `plan --save` prints
//! its digest, `plans show PLAN_ID` prints the text (what a reviewer reads and signs), and `apply`
//! builds it again from the journal, the files and the letter as they are then: any difference
//! refuses the plan, naming what changed.

use crate::journal::RunRecord;

/// The first line: which rules made the text.
pub const HEADER: &str = "alma-cohort plan, canonical text v1";

/// What the canonical text is made of.
pub struct Facts<'a> {
    pub plan_id: &'a str,
    pub query: &'a str,
    pub period: Option<&'a str>,
    pub planned_by: &'a str,
    pub planned_at: &'a str,
    /// The Alma the plan was made against ([`super::approval::alma_binding`]).
    pub alma: Option<&'a str>,
    pub record: &'a RunRecord,
    pub cohort: &'a [String],
    /// The letter's digest (the plan's, or Alma's now at apply); `None`: not checked.
    pub letter_digest: Option<&'a str>,
}

impl<'a> Facts<'a> {
    /// The facts as `plan --save` has them: the run record it freezes.
    pub fn of_record(record: &'a RunRecord, cohort: &'a [String], alma: Option<&'a str>) -> Self {
        Facts {
            plan_id: &record.run_id,
            query: &record.query,
            period: record.period.as_deref(),
            planned_by: &record.run_by,
            planned_at: &record.started_at,
            alma,
            record,
            cohort,
            letter_digest: record.execution.letter.as_ref().map(|l| l.digest.as_str()),
        }
    }
}

/// A value on one line: control and invisible characters written as `\u{…}`.
fn one_line(value: &str) -> String {
    value
        .chars()
        .flat_map(|c| {
            if c == '\\' {
                vec!['\\', '\\']
            } else if c.is_control() || crate::text::is_invisible(c) {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// The canonical text: `key: value` lines in a fixed order, then the cohort, one ID a line; every
/// line ends with `\n`.
pub fn canonical(f: &Facts<'_>) -> String {
    use std::fmt::Write;
    let r = f.record;
    let e = &r.execution;
    let mut s = String::new();
    let mut line = |key: &str, value: &str| {
        let _ = writeln!(s, "{key}: {}", one_line(value));
    };
    line("plan", f.plan_id);
    line("query", f.query);
    line("period", f.period.unwrap_or("-"));
    line("planned by", f.planned_by);
    line("planned at", f.planned_at);
    line("alma", f.alma.unwrap_or("-"));
    line("query file", &format!("{} sha256:{}", r.query_file, r.query_hash));
    line("params", &json(&r.params));
    match (&r.input_file, &r.input_hash) {
        (Some(file), Some(hash)) => line("list file", &format!("{file} sha256:{hash}")),
        _ => line("list file", "none"),
    }
    if e.exclusions.is_empty() {
        line("exclusion file", "none");
    }
    for x in &e.exclusions {
        line(
            "exclusion file",
            &format!("{} sha256:{} ({} IDs)", x.path, x.sha256, x.ids),
        );
    }
    line("set", &e.set_name);
    line("set description", &e.set_description);
    line("set private", &e.set_private.to_string());
    line(
        "job",
        &format!(
            "{} ({})",
            e.job_name,
            e.job_id.as_deref().unwrap_or("looked up by name")
        ),
    );
    line("job parameters", &json(&e.job_parameters));
    line(
        "letter",
        &format!(
            "{} digest {}",
            e.letter_code(),
            f.letter_digest.unwrap_or("not checked")
        ),
    );
    line("cooldown days", &e.cooldown_days.to_string());
    line(
        "max refused ratio",
        &e.max_refused_ratio.map_or("none".into(), |x| x.to_string()),
    );
    line("forced", &e.forced.to_string());
    line("id normalization", &json(&e.normalize));
    line("eligibility rules", &json(&e.eligibility.as_ref().map(|c| &c.rules)));
    line("cohort", &format!("{} IDs", f.cohort.len()));
    for id in f.cohort {
        let _ = writeln!(s, "{}", one_line(id));
    }
    format!("{HEADER}\n{s}")
}

/// A value as one JSON line: `[["a","1"],["b","2"]]` and `[["a","1, b=2"]]` read differently.
fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("(not writable: {e})"))
}

/// `sha256:` and the text's SHA-256 in hex.
pub fn digest(text: &str) -> String {
    format!("sha256:{}", crate::files::sha256_hex(text.as_bytes()))
}

/// What differs between two canonical texts, in words: `the letter (… then, … now)`, `the
/// cohort (2 IDs added, 1 taken out)`. Empty when they are the same.
pub fn changes(then: &str, now: &str) -> Vec<String> {
    fn split(text: &str) -> (Vec<(&str, &str)>, std::collections::BTreeSet<&str>) {
        let mut fields = Vec::new();
        let mut ids = std::collections::BTreeSet::new();
        let mut in_cohort = false;
        for l in text.lines().skip(1) {
            if in_cohort {
                ids.insert(l);
            } else if let Some((k, v)) = l.split_once(": ") {
                fields.push((k, v));
                in_cohort = k == "cohort";
            }
        }
        (fields, ids)
    }
    let (a, a_ids) = split(then);
    let (b, b_ids) = split(now);
    let mut out = Vec::new();
    let mut keys: Vec<&str> = a.iter().chain(&b).map(|(k, _)| *k).collect();
    keys.dedup();
    let mut seen = std::collections::BTreeSet::new();
    for key in keys {
        if key == "cohort" || !seen.insert(key) {
            continue;
        }
        let values = |f: &[(&str, &str)]| {
            f.iter()
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.to_string())
                .collect::<Vec<_>>()
        };
        let (x, y) = (values(&a), values(&b));
        if x != y {
            let name = match key {
                "letter" => "the letter",
                "exclusion file" => "an exclusion file",
                "list file" => "the list file",
                "query file" => "the query file",
                "alma" => "the Alma it reaches",
                other => other,
            };
            out.push(format!("{name} ({} then, {} now)", x.join("; "), y.join("; ")));
        }
    }
    let added = b_ids.difference(&a_ids).count();
    let removed = a_ids.difference(&b_ids).count();
    if added + removed > 0 {
        out.push(format!("the cohort ({added} IDs added, {removed} taken out)"));
    }
    if out.is_empty() && then != now {
        out.push("the plan's text (its order or form)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_name_the_letter_a_file_and_the_cohort() {
        let then = format!(
            "{HEADER}\nplan: P\nletter: L digest aaa\nexclusion file: x.txt sha256:1 (2 IDs)\ncohort: 2 IDs\n001\n002\n"
        );
        assert!(changes(&then, &then).is_empty());
        let now = then.replace("digest aaa", "digest bbb");
        assert_eq!(
            changes(&then, &now),
            ["the letter (L digest aaa then, L digest bbb now)"]
        );
        let now = then.replace("002\n", "003\n004\n").replace("sha256:1", "sha256:9");
        let said = changes(&then, &now);
        assert!(said[0].starts_with("an exclusion file (x.txt sha256:1"), "{said:?}");
        assert_eq!(said[1], "the cohort (2 IDs added, 1 taken out)");
        assert_eq!(digest("a").len(), "sha256:".len() + 64);
        assert_eq!(one_line("a\nb"), "a\\u{a}b");
    }
}
