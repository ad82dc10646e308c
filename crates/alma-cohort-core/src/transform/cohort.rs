//! Report → cohort: the `where` expression (polars SQL over the report's headings, dates compared
//! as dates), ID normalization, empty IDs, INTERNAL accounts only, exclusion files (normalized as
//! the cohort's IDs are), a case-insensitive dedupe keeping the first, and users without an email
//! address — every row that leaves counted by reason.

use std::collections::HashSet;

use polars::prelude::*;

use super::table::{Error, Table, report_into_frame};
use crate::query::{Case, Normalize};
use alma_client::Report;
use alma_client::rowset::ColumnKind;

const ROW: &str = "__alma_cohort_row";
const KEY: &str = "__alma_cohort_key";
const KEEP: &str = "__alma_cohort_keep";
/// The longest primary ID accepted; Alma's are far shorter.
pub use crate::text::MAX_ID_LENGTH;
/// Columns with at most this many distinct values are counted in the summary.
pub const LOW_CARDINALITY: usize = 20;

/// How a report becomes a cohort (from the query file's `[cohort]` and `[guard]`).
#[derive(Clone, Copy, Debug)]
pub struct CohortRules<'a> {
    pub id_column: &'a str,
    pub where_sql: Option<&'a str>,
    pub normalize: &'a Normalize,
    pub account_type_column: Option<&'a str>,
    /// IDs from the exclusion files as written there: they pass through the same normalization as
    /// the cohort's IDs and compare case-insensitively.
    pub exclusions: &'a [String],
    /// With it, rows without a usable address in this column leave (their letter cannot arrive).
    pub email_column: Option<&'a str>,
}

/// Why a row left the cohort.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The `where` expression was false (or null) for it.
    Where,
    EmptyId,
    NotInternal,
    Excluded,
    Duplicate,
    /// `email_column` is empty, null or not an address.
    NoEmail,
    /// Notified by a run (of any query) within `[guard] cooldown_days`.
    RecentlyReset,
    /// Alma (or the report, without lookups) says the letter cannot reach them: `left_out`
    /// names each with its reason.
    Ineligible,
}

impl DropReason {
    pub fn describe(self) -> &'static str {
        match self {
            DropReason::Where => "not matched by where",
            DropReason::EmptyId => "empty ID",
            DropReason::NotInternal => "not an INTERNAL account",
            DropReason::Excluded => "in an exclusion file",
            DropReason::Duplicate => "duplicate ID (case-insensitive)",
            DropReason::NoEmail => "no email address",
            DropReason::RecentlyReset => "notified by a run within the cooldown",
            DropReason::Ineligible => "not reachable in Alma (below)",
        }
    }
}

/// Counts of one low-cardinality column in the cohort: `(value, rows)`, most frequent first.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Breakdown {
    pub column: String,
    pub counts: Vec<(Option<String>, usize)>,
}

/// The cohort: normalized, de-duplicated primary IDs in report order, and how it came to be.
#[derive(Clone, Debug)]
pub struct Cohort {
    pub ids: Vec<String>,
    pub report_rows: usize,
    pub dropped: Vec<(DropReason, usize)>,
    pub breakdown: Vec<Breakdown>,
    /// The cohort's rows with every report column (the ID normalized), for `cohort.csv`.
    pub table: Table,
    /// The rows left out for having no email address (they keep their password), for
    /// `no-email.csv`; `None` without `email_column`.
    pub no_email: Option<Table>,
    /// Their IDs.
    pub no_email_ids: Vec<String>,
    /// The IDs left out for having been notified within the cooldown, in report order.
    pub recently_reset_ids: Vec<String>,
    /// The heading of the ID column in `table`.
    pub id_column: String,
}

/// The headings a query names must exist in the report: `id_column`, the columns in `where`,
/// `account_type_column`. A misspelt one is an error listing the real ones and the closest.
pub fn check_headings(headings: &[&str], rules: &CohortRules<'_>) -> Result<(), Error> {
    let mut named: Vec<(&'static str, String)> = vec![("cohort.id_column", rules.id_column.to_string())];
    if let Some(sql) = rules.where_sql {
        named.extend(where_columns(sql)?.into_iter().map(|c| ("cohort.where", c)));
    }
    if let Some(c) = rules.account_type_column {
        named.push(("guard.account_type_column", c.to_string()));
    }
    if let Some(c) = rules.email_column {
        named.push(("guard.email_column", c.to_string()));
    }
    for (key, heading) in named {
        if !headings.contains(&heading.as_str()) {
            return Err(Error::UnknownHeading {
                key,
                closest: closest(&heading, headings),
                heading,
                headings: headings.iter().map(|h| h.to_string()).collect(),
            });
        }
    }
    Ok(())
}

/// The report headings a `where` expression uses; an expression polars cannot parse is an error.
pub fn where_columns(sql: &str) -> Result<Vec<String>, Error> {
    let expr = parse_where(sql)?;
    let mut names: Vec<String> = Vec::new();
    for n in expr.meta().root_names() {
        if !names.iter().any(|m| m == n.as_str()) {
            names.push(n.to_string());
        }
    }
    Ok(names)
}

fn parse_where(sql: &str) -> Result<Expr, Error> {
    polars::sql::sql_expr(sql).map_err(|e| Error::BadWhere {
        sql: sql.to_string(),
        message: e.to_string(),
    })
}

fn closest(wanted: &str, headings: &[&str]) -> Option<String> {
    let wanted_l = wanted.to_lowercase();
    headings
        .iter()
        .map(|h| (strsim::jaro_winkler(&wanted_l, &h.to_lowercase()), *h))
        .filter(|(score, _)| *score >= 0.75)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, h)| h.to_string())
}

/// Builds the cohort from a report, taking it: the report's cells are freed column by column as
/// they become the table; each step runs once over the table of the step before and lets it go,
/// and a step that drops no row keeps the table as it is (see benches/README.md, "How `plan` is
/// made light").
pub fn build_cohort(report: Report, rules: &CohortRules<'_>) -> Result<Cohort, Error> {
    check_headings(&report.headings(), rules)?;
    let report_rows = report.rows();
    let typed: Vec<Expr> = report
        .rowset
        .columns
        .iter()
        .filter_map(|c| typed_column(&c.heading, c.kind))
        .collect();
    let mut df = report_into_frame(report)?
        .with_row_index(ROW.into(), Some(1))
        .map_err(Error::Frame)?;
    let mut dropped = Vec::new();

    // 1. where, over typed columns: a date compares as a date, a number as a number.
    if let Some(sql) = rules.where_sql {
        // Through a SQL context that knows the column types, so '2026-06-30' compared with a
        // date column is read as a date.
        let typed_frame = df.clone().lazy().with_columns(typed);
        let mut ctx = polars::sql::SQLContext::new();
        ctx.register("report", typed_frame);
        let mask = ctx
            .execute(&format!("SELECT COALESCE(({sql}), FALSE) AS {KEEP} FROM report"))
            .and_then(|lf| lf.collect())
            .map_err(|e| Error::BadWhere {
                sql: sql.to_string(),
                message: e.to_string(),
            })?;
        let keep = mask
            .column(KEEP)
            .map_err(Error::Frame)?
            .bool()
            .map_err(|_| Error::BadWhere {
                sql: sql.to_string(),
                message: "the expression is not true or false for each row".into(),
            })?;
        dropped.push((DropReason::Where, keep_rows(&mut df, keep)?));
    }

    // 2. ID normalization, then empty IDs out.
    let id = rules.id_column;
    let mut df = df
        .lazy()
        .with_column(normalized_id(id, rules.normalize).alias(id))
        .collect()
        .map_err(Error::Frame)?;
    let non_empty = col(id).is_not_null().and(col(id).neq(lit("")));
    dropped.push((DropReason::EmptyId, keep_where(&mut df, non_empty)?));
    check_ids(&df, id)?;

    // 3. INTERNAL accounts only.
    if let Some(at) = rules.account_type_column {
        let internal = col(at)
            .str()
            .strip_chars(lit(NULL))
            .str()
            .to_lowercase()
            .eq(lit("internal"));
        dropped.push((DropReason::NotInternal, keep_where(&mut df, internal)?));
    }

    // 4. Exclusions and 5. case-insensitive dedupe, on the lower-cased ID.
    let key = || col(id).str().to_lowercase();
    if !rules.exclusions.is_empty() {
        let excluded = normalized_exclusions(rules)?;
        let ids = df.column(id).map_err(Error::Frame)?.str().map_err(Error::Frame)?;
        let kept: BooleanChunked = ids.iter().map(|v| v.is_none_or(|i| !excluded.protects(i))).collect();
        dropped.push((DropReason::Excluded, keep_rows(&mut df, &kept)?));
    }
    // 5. No email address, no letter: Notify Password Change would reset a password nobody learns.
    // Checked before the dedupe (a user whose first row has no address but a later one does
    // stays), and both applied in one pass over the table.
    let has_address: Option<BooleanChunked> = match rules.email_column {
        None => None,
        Some(email) => Some(
            df.column(email)
                .map_err(Error::Frame)?
                .str()
                .map_err(Error::Frame)?
                .iter()
                .map(|v| v.is_some_and(is_address))
                .collect(),
        ),
    };
    let keys = df
        .clone()
        .lazy()
        .select([key().alias(KEY)])
        .collect()
        .map_err(Error::Frame)?;
    let keys = keys.column(KEY).map_err(Error::Frame)?.str().map_err(Error::Frame)?;
    let mut seen = HashSet::with_capacity(keys.len());
    let first: BooleanChunked = match &has_address {
        None => keys.iter().map(|k| seen.insert(k)).collect(),
        Some(ok) => keys
            .iter()
            .zip(ok.iter())
            .map(|(k, ok)| ok.unwrap_or(false) && seen.insert(k))
            .collect(),
    };
    let no_email = match &has_address {
        None => None,
        Some(ok) => {
            // Listed once each, and not when another row of the same user has an address.
            let mut listed = HashSet::new();
            let list: BooleanChunked = keys
                .iter()
                .zip(ok.iter())
                .map(|(k, ok)| !ok.unwrap_or(false) && !seen.contains(&k) && listed.insert(k))
                .collect();
            let no_email_rows = ok.len() - ok.num_trues();
            dropped.push((DropReason::NoEmail, no_email_rows));
            let mut gone = df.filter(&list).map_err(Error::Frame)?;
            let _ = gone.drop_in_place(ROW);
            Some(gone)
        }
    };
    let kept_before_dedupe = has_address.as_ref().map_or(df.height(), |ok| ok.num_trues());
    let duplicates = kept_before_dedupe - first.num_trues();
    drop(seen);
    keep_rows(&mut df, &first)?;
    dropped.push((DropReason::Duplicate, duplicates));
    let _ = df.drop_in_place(ROW);

    let ids = string_column(&df, id)?;
    let (no_email, no_email_ids) = match no_email {
        None => (None, Vec::new()),
        Some(gone) => {
            let ids = string_column(&gone, id)?;
            (Some(Table { df: gone }), ids)
        }
    };
    let breakdown = breakdown(&df, id)?;
    Ok(Cohort {
        ids,
        report_rows,
        dropped,
        breakdown,
        table: Table { df },
        no_email,
        no_email_ids,
        recently_reset_ids: Vec::new(),
        id_column: id.to_string(),
    })
}

impl Cohort {
    /// Leaves out the users another run notified within the cooldown (`recent`: lower-cased
    /// IDs), after the cohort was built and checked: counted as a drop, their IDs kept in
    /// `recently_reset_ids`, the table and the breakdown without them.
    pub fn leave_out_recent(&mut self, recent: &HashSet<String>) -> Result<(), Error> {
        self.recently_reset_ids = self.leave_out(recent, DropReason::RecentlyReset)?;
        Ok(())
    }

    /// Takes the IDs in `ids` (lower-cased) out of the cohort, counted under `reason`; the IDs
    /// taken out come back in report order.
    pub fn leave_out(&mut self, ids: &HashSet<String>, reason: DropReason) -> Result<Vec<String>, Error> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let kept: BooleanChunked = self.ids.iter().map(|i| !ids.contains(&i.to_lowercase())).collect();
        let gone = self.ids.len() - kept.num_trues();
        if gone == 0 {
            return Ok(Vec::new());
        }
        let (left, stay): (Vec<String>, Vec<String>) = std::mem::take(&mut self.ids)
            .into_iter()
            .partition(|i| ids.contains(&i.to_lowercase()));
        self.ids = stay;
        keep_rows(&mut self.table.df, &kept)?;
        self.breakdown = breakdown(&self.table.df, &self.id_column)?;
        self.dropped.push((reason, gone));
        Ok(left)
    }

    /// The cells of `headings` for each cohort member, in the order of `ids` (nulls as `None`,
    /// dates and numbers as text): what the eligibility rules read when the query turns the
    /// lookups off.
    pub fn cells(&self, headings: &[&str]) -> Result<Vec<Vec<Option<String>>>, Error> {
        let mut columns = Vec::with_capacity(headings.len());
        for h in headings {
            let col = self
                .table
                .df
                .column(h)
                .map_err(Error::Frame)?
                .cast(&DataType::String)
                .map_err(Error::Frame)?;
            let text = col.str().map_err(Error::Frame)?;
            columns.push(text.iter().map(|v| v.map(str::to_string)).collect::<Vec<_>>());
        }
        Ok((0..self.ids.len())
            .map(|row| columns.iter().map(|c| c.get(row).cloned().flatten()).collect())
            .collect())
    }
}

/// An address has text on both sides of one `@`, and no spaces (around it spaces are trimmed).
pub fn is_address(cell: &str) -> bool {
    let t = cell.trim();
    match t.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@') && !t.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

/// The values of a text column (nulls as "").
fn string_column(df: &DataFrame, name: &str) -> Result<Vec<String>, Error> {
    Ok(df
        .column(name)
        .map_err(Error::Frame)?
        .str()
        .map_err(Error::Frame)?
        .iter()
        .map(|v| v.unwrap_or_default().to_string())
        .collect())
}

/// How an exclusion and a cohort ID are compared, whatever `[cohort.normalize]` says: trimmed,
/// without Excel's apostrophe, all-digit IDs without their leading zeros, lower-cased. Broader
/// than the cohort's own normalization on purpose: protecting too many is the safe side. Borrowed
/// where nothing changes (the usual case, one lookup a row and no allocation).
fn exclusion_key(id: &str) -> std::borrow::Cow<'_, str> {
    let t = id.trim();
    let t = t.strip_prefix('\'').map(str::trim).unwrap_or(t);
    let t = if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        match t.trim_start_matches('0') {
            "" => "0",
            rest => rest,
        }
    } else {
        t
    };
    if t.chars().any(char::is_uppercase) {
        std::borrow::Cow::Owned(t.to_lowercase())
    } else {
        std::borrow::Cow::Borrowed(t)
    }
}

/// The cohort IDs (as the journal holds them, normalized) that `exclusions` protect, compared
/// as the plan compares them ([`normalized_exclusions`]): for the exclusion files read again
/// before the job.
pub fn protected_among(cohort: &[String], exclusions: &[String], normalize: &Normalize) -> Result<Vec<String>, Error> {
    if exclusions.is_empty() {
        return Ok(Vec::new());
    }
    let rules = CohortRules {
        id_column: "id",
        where_sql: None,
        normalize,
        account_type_column: None,
        exclusions,
        email_column: None,
    };
    let keys = normalized_exclusions(&rules)?;
    Ok(cohort.iter().filter(|id| keys.protects(id)).cloned().collect())
}

/// What a query's exclusion files protect: IDs as the cohort's comparison key
/// ([`exclusion_key`]), and, for an exclusion written with any character outside ASCII, the key
/// its look-alikes share ([`crate::text::lookalike_key`]): `ІМ78646` (Cyrillic І and М), `тн26895`,
/// small capitals `ᴏᴍ87596` or a Greek `Ο` for the digit zero each protect the ID they look like.
/// Protecting one ID too many is the safe side; protecting nobody silently is not.
pub struct Protected {
    keys: HashSet<String>,
    lookalikes: HashSet<String>,
}

impl Protected {
    pub fn protects(&self, id: &str) -> bool {
        self.keys.contains(exclusion_key(id).as_ref())
            || (!self.lookalikes.is_empty() && self.lookalikes.contains(&crate::text::lookalike_key(id)))
    }
}

/// The exclusion IDs through the cohort's normalization ([`normalized_id`]) and then the
/// comparison key ([`exclusion_key`]): a protected `500006` matches the cohort's padded
/// `00500006`, `'0012345` matches `0012345`, also where the query pads or trims nothing.
fn normalized_exclusions(rules: &CohortRules<'_>) -> Result<Protected, Error> {
    let id = rules.id_column;
    let raw =
        DataFrame::new(rules.exclusions.len(), vec![Column::new(id.into(), rules.exclusions)]).map_err(Error::Frame)?;
    let out = raw
        .lazy()
        .select([normalized_id(id, rules.normalize)])
        .collect()
        .map_err(Error::Frame)?;
    let keys = out
        .column(id)
        .map_err(Error::Frame)?
        .str()
        .map_err(Error::Frame)?
        .iter()
        .flatten()
        .map(|i| exclusion_key(i).into_owned())
        .collect();
    let lookalikes = rules
        .exclusions
        .iter()
        .filter(|e| !e.is_ascii())
        .map(|e| crate::text::lookalike_key(e))
        .collect();
    Ok(Protected { keys, lookalikes })
}

/// Keeps the rows for which `keep` is true (null counts as false); the rows dropped.
fn keep_where(df: &mut DataFrame, keep: Expr) -> Result<usize, Error> {
    let mask = df
        .clone()
        .lazy()
        .select([keep.fill_null(lit(false)).alias(KEEP)])
        .collect()
        .map_err(Error::Frame)?;
    keep_rows(
        df,
        mask.column(KEEP).map_err(Error::Frame)?.bool().map_err(Error::Frame)?,
    )
}

/// Keeps the rows whose mask is true; the rows dropped. A table that loses no row is kept as it
/// is: filtering copies every column's cell views, and most steps drop nothing.
fn keep_rows(df: &mut DataFrame, keep: &BooleanChunked) -> Result<usize, Error> {
    let gone = df.height() - keep.num_trues();
    if gone > 0 {
        *df = df.filter(keep).map_err(Error::Frame)?;
    }
    Ok(gone)
}

/// The cast a column gets for `where`: dates to Date, numbers to Float64, text as is.
fn typed_column(heading: &str, kind: ColumnKind) -> Option<Expr> {
    match kind {
        ColumnKind::Text => None,
        ColumnKind::Date => Some(
            col(heading)
                .str()
                .strip_chars(lit(NULL))
                .str()
                .to_date(StrptimeOptions {
                    format: Some("%Y-%m-%d".into()),
                    strict: false,
                    exact: false,
                    cache: true,
                })
                .alias(heading),
        ),
        ColumnKind::Timestamp => Some(
            col(heading)
                .str()
                .strip_chars(lit(NULL))
                .str()
                .to_datetime(
                    Some(TimeUnit::Milliseconds),
                    None,
                    StrptimeOptions {
                        strict: false,
                        ..Default::default()
                    },
                    lit("raise"),
                )
                .alias(heading),
        ),
        ColumnKind::Number => Some(
            col(heading)
                .str()
                .strip_chars(lit(NULL))
                .cast(DataType::Float64)
                .alias(heading),
        ),
    }
}

/// trim → strip Excel's leading apostrophe → pad all-digit IDs → case.
pub fn normalized_id(id_column: &str, n: &Normalize) -> Expr {
    let mut id = col(id_column);
    if n.trim {
        id = id.str().strip_chars(lit(NULL));
    }
    if n.strip_apostrophe {
        id = id.str().strip_prefix(lit("'"));
        if n.trim {
            id = id.str().strip_chars(lit(NULL));
        }
    }
    if let Some(width) = n.pad_numeric_to {
        let digits = id.clone().str().contains(lit("^[0-9]+$"), true).fill_null(lit(false));
        id = when(digits)
            .then(id.clone().str().pad_start(lit(width as u64), '0'))
            .otherwise(id);
    }
    match n.case {
        Case::Preserve => id,
        Case::Upper => id.str().to_uppercase(),
        Case::Lower => id.str().to_lowercase(),
    }
}

/// IDs with control characters or absurd lengths are refused, naming the report row.
fn check_ids(df: &DataFrame, id_column: &str) -> Result<(), Error> {
    let ids = df
        .column(id_column)
        .map_err(Error::Frame)?
        .str()
        .map_err(Error::Frame)?;
    let rows = df.column(ROW).map_err(Error::Frame)?.idx().map_err(Error::Frame)?;
    for (id, row) in ids.iter().zip(rows.iter()) {
        let Some(id) = id else { continue };
        let problem = if id.chars().count() > MAX_ID_LENGTH {
            Some(format!(
                "is {} characters long (at most {MAX_ID_LENGTH})",
                id.chars().count()
            ))
        } else {
            id.chars()
                .find(|c| c.is_control())
                .map(|c| format!("contains the control character U+{:04X}", c as u32))
        };
        if let Some(problem) = problem {
            let preview: String = id
                .chars()
                .take(40)
                .map(|c| if c.is_control() { '?' } else { c })
                .collect();
            return Err(Error::InvalidId {
                row: row.unwrap_or(0) as usize,
                column: id_column.to_string(),
                preview,
                problem,
            });
        }
    }
    Ok(())
}

/// Headings of columns that say who a person is: never counted in the plan, whatever their
/// number of values (a list of three has three names).
const PERSONAL: [&str; 13] = [
    "name",
    "surname",
    "username",
    "mail",
    "email",
    "address",
    "phone",
    "mobile",
    "birth",
    "identifier",
    "barcode",
    "note",
    "id",
];

/// Whether a column heading names something personal ([`PERSONAL`], as a word or a word's start).
fn is_personal(heading: &str) -> bool {
    heading
        .split(|c: char| !c.is_alphanumeric())
        .flat_map(split_camel)
        .any(|word| {
            let word = word.to_lowercase();
            PERSONAL
                .iter()
                .any(|p| word == *p || (p.len() > 2 && word.starts_with(p)))
        })
}

/// `FirstName` → `First`, `Name`.
fn split_camel(word: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, c) in word.char_indices().skip(1) {
        if c.is_uppercase() && !word[..i].ends_with(char::is_uppercase) {
            parts.push(&word[start..i]);
            start = i;
        }
    }
    parts.push(&word[start..]);
    parts
}

/// The plan's counts by category (user group, status): columns with few values, that repeat.
/// A column of names, emails or IDs is never one of them, nor a column whose every value is
/// its own when there are three or more (in a small list, that is a person's).
fn breakdown(df: &DataFrame, id_column: &str) -> Result<Vec<Breakdown>, Error> {
    let mut out = Vec::new();
    for c in df.columns() {
        let name = c.name().as_str();
        if name == id_column || df.height() == 0 || name.starts_with("__alma_cohort") || is_personal(name) {
            continue;
        }
        let distinct = c.n_unique().map_err(Error::Frame)?;
        if distinct > LOW_CARDINALITY || (distinct == df.height() && distinct >= 3) {
            continue;
        }
        if c.str()
            .is_ok_and(|values| values.iter().flatten().any(|v| v.contains('@')))
        {
            continue;
        }
        // One column's frame, not the whole table's: a table of 10 000 columns is counted in
        // time in proportion to its columns.
        let counts = c
            .clone()
            .into_frame()
            .lazy()
            .group_by_stable([col(name)])
            .agg([len().alias("n")])
            .sort(
                ["n"],
                SortMultipleOptions::default()
                    .with_order_descending(true)
                    .with_maintain_order(true),
            )
            .collect()
            .map_err(Error::Frame)?;
        let values = counts
            .column(name)
            .map_err(Error::Frame)?
            .str()
            .map_err(Error::Frame)?
            .clone();
        let ns = counts
            .column("n")
            .map_err(Error::Frame)?
            .idx()
            .map_err(Error::Frame)?
            .clone();
        let counts = values
            .iter()
            .zip(ns.iter())
            .map(|(v, n)| (v.map(str::to_string), n.unwrap_or(0) as usize))
            .collect();
        out.push(Breakdown {
            column: name.to_string(),
            counts,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alma_client::rowset::{Rowset, parse_page};

    #[test]
    fn personal_headings_are_never_counted() {
        for h in [
            "Name",
            "User name",
            "First Name",
            "FirstName",
            "Preferred Email",
            "E-mail",
            "Email Address",
            "Primary Identifier",
            "User ID",
            "Phone",
            "Date of Birth",
            "Barcode",
            "Notes",
            "Username",
        ] {
            assert!(is_personal(h), "{h}");
        }
        for h in [
            "User Group",
            "Status",
            "Account Type",
            "Expiry Date",
            "Program",
            "Identity Provider",
        ] {
            assert!(!is_personal(h), "{h}");
        }
    }

    /// A report from rows of `(ColumnN cells)`; headings and types given.
    fn report(columns: &[(&str, &str)], rows: &[&[Option<&str>]]) -> Report {
        let mut xml = String::from(
            r#"<report><QueryResult><IsFinished>true</IsFinished><ResultXml><rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset"><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:saw-sql="urn:saw-sql"><xsd:complexType name="Row"><xsd:sequence><xsd:element name="Column0" saw-sql:type="integer" saw-sql:columnHeading="0"/>"#,
        );
        for (i, (h, t)) in columns.iter().enumerate() {
            xml.push_str(&format!(
                r#"<xsd:element name="Column{}" saw-sql:type="{t}" saw-sql:columnHeading="{}"/>"#,
                i + 1,
                quick_xml::escape::escape(*h)
            ));
        }
        xml.push_str("</xsd:sequence></xsd:complexType></xsd:schema>");
        for row in rows {
            xml.push_str("<Row><Column0>0</Column0>");
            for (i, cell) in row.iter().enumerate() {
                if let Some(v) = cell {
                    xml.push_str(&format!(
                        "<Column{0}>{1}</Column{0}>",
                        i + 1,
                        quick_xml::escape::escape(*v)
                    ));
                }
            }
            xml.push_str("</Row>");
        }
        xml.push_str("</rowset></ResultXml></QueryResult></report>");
        let mut rowset = Rowset::default();
        parse_page(xml.as_bytes(), &mut rowset).unwrap();
        Report {
            path: "/t".into(),
            rowset,
            pages: 1,
            requests: 1,
            restarts: 0,
        }
    }

    fn normalize() -> Normalize {
        Normalize {
            trim: true,
            strip_apostrophe: true,
            pad_numeric_to: Some(7),
            case: Case::Preserve,
        }
    }

    fn rules<'a>(
        n: &'a Normalize,
        ex: &'a [String],
        where_sql: Option<&'a str>,
        at: Option<&'a str>,
    ) -> CohortRules<'a> {
        CohortRules {
            id_column: "Primary Identifier",
            where_sql,
            normalize: n,
            account_type_column: at,
            exclusions: ex,
            email_column: None,
        }
    }

    fn dropped(c: &Cohort, r: DropReason) -> usize {
        c.dropped.iter().find(|(d, _)| *d == r).map(|(_, n)| *n).unwrap_or(0)
    }

    const COLS: &[(&str, &str)] = &[
        ("Primary Identifier", "varchar"),
        ("User Group", "varchar"),
        ("Account Type", "varchar"),
        ("Expiry Date", "date"),
        ("Fines", "double"),
    ];

    #[test]
    fn awkward_ids_normalize_and_dedupe_case_insensitively() {
        let r = report(
            COLS,
            &[
                &[Some(" 0012345 "), Some("UGRAD"), Some("Internal"), None, None],
                &[Some("'0012345"), Some("UGRAD"), Some("Internal"), None, None],
                &[Some("12345"), Some("GRAD"), Some("INTERNAL"), None, None],
                &[Some("ab12"), Some("GRAD"), Some("internal"), None, None],
                &[Some("AB12"), Some("GRAD"), Some("Internal"), None, None],
                &[Some("   "), Some("GRAD"), Some("Internal"), None, None],
                &[None, Some("GRAD"), Some("Internal"), None, None],
                &[Some("'"), Some("GRAD"), Some("Internal"), None, None],
            ],
        );
        let n = normalize();
        let ex: Vec<String> = Vec::new();
        let c = build_cohort(r.clone(), &rules(&n, &ex, None, None)).unwrap();
        assert_eq!(c.ids, ["0012345", "ab12"]);
        assert_eq!(dropped(&c, DropReason::EmptyId), 3);
        assert_eq!(dropped(&c, DropReason::Duplicate), 3);
        assert_eq!(c.report_rows, 8);

        let upper = Normalize {
            case: Case::Upper,
            pad_numeric_to: None,
            ..normalize()
        };
        let c = build_cohort(r.clone(), &rules(&upper, &ex, None, None)).unwrap();
        assert_eq!(c.ids, ["0012345", "12345", "AB12"], "no padding: 12345 stays itself");
        let raw = Normalize {
            trim: false,
            strip_apostrophe: false,
            pad_numeric_to: None,
            case: Case::Preserve,
        };
        let c = build_cohort(r.clone(), &rules(&raw, &ex, None, None)).unwrap();
        assert!(c.ids.contains(&" 0012345 ".to_string()) && c.ids.contains(&"'0012345".to_string()));
    }

    #[test]
    fn internal_only_exclusions_and_counts_by_reason() {
        let r = report(
            COLS,
            &[
                &[Some("1"), Some("UGRAD"), Some("Internal"), None, None],
                &[Some("2"), Some("UGRAD"), Some("External"), None, None],
                &[Some("3"), Some("STAFF"), Some(" internal "), None, None],
                &[Some("4"), Some("STAFF"), None, None, None],
                &[Some("Prot1"), Some("STAFF"), Some("INTERNAL"), None, None],
            ],
        );
        let n = Normalize {
            pad_numeric_to: None,
            ..normalize()
        };
        let ex: Vec<String> = vec!["prot1".to_string()];
        let c = build_cohort(r.clone(), &rules(&n, &ex, None, Some("Account Type"))).unwrap();
        assert_eq!(c.ids, ["1", "3"]);
        assert_eq!(dropped(&c, DropReason::NotInternal), 2);
        assert_eq!(dropped(&c, DropReason::Excluded), 1);
        let groups = c.breakdown.iter().find(|b| b.column == "User Group").unwrap();
        assert_eq!(groups.counts, [(Some("UGRAD".into()), 1), (Some("STAFF".into()), 1)]);
        assert_eq!(c.table.height(), 2);
    }

    #[test]
    fn exclusions_pass_through_the_cohorts_normalization() {
        let r = report(
            COLS,
            &[
                &[Some("00500006"), Some("STAFF"), Some("Internal"), None, None],
                &[Some("0012345"), Some("STAFF"), Some("Internal"), None, None],
                &[Some("ab12"), Some("STAFF"), Some("Internal"), None, None],
                &[Some("00500007"), Some("UGRAD"), Some("Internal"), None, None],
            ],
        );
        let n = Normalize {
            pad_numeric_to: Some(8),
            ..normalize()
        };
        // As staff write them: zeros lost to Excel, an apostrophe, another case, spaces.
        let ex: Vec<String> = ["500006", "'12345", "AB12"].map(String::from).to_vec();
        let c = build_cohort(r.clone(), &rules(&n, &ex, None, None)).unwrap();
        assert_eq!(c.ids, ["00500007"]);
        assert_eq!(dropped(&c, DropReason::Excluded), 3);
        // The comparison does not depend on the query's normalization: nothing padded, trimmed
        // or stripped, and still protected.
        let bare = Normalize {
            trim: false,
            strip_apostrophe: false,
            pad_numeric_to: None,
            case: Case::Preserve,
        };
        let written: Vec<String> = [" 0500006 ", "'0012345", "ab12"].map(String::from).to_vec();
        let c = build_cohort(r, &rules(&bare, &written, None, None)).unwrap();
        assert_eq!(c.ids, ["00500007"]);
    }

    #[test]
    fn users_without_an_email_address_are_left_out_and_listed() {
        let cols: &[(&str, &str)] = &[("Primary Identifier", "varchar"), ("Preferred Email", "varchar")];
        let r = report(
            cols,
            &[
                &[Some("1"), Some("a@example.edu")],
                &[Some("2"), None],
                &[Some("3"), Some("  ")],
                &[Some("4"), Some("not an address")],
                &[Some("5"), Some("@example.edu")],
                &[Some("6"), Some("b@")],
                &[Some("7"), Some(" c@example.edu ")],
                // The same user again, this time with an address: in the cohort, not on the list.
                &[Some("2"), Some("d@example.edu")],
                &[Some("3"), None],
            ],
        );
        let n = normalize();
        let mut rules = rules(&n, &[], None, None);
        rules.email_column = Some("Preferred Email");
        let c = build_cohort(r, &rules).unwrap();
        assert_eq!(c.ids, ["0000001", "0000007", "0000002"]);
        assert_eq!(dropped(&c, DropReason::NoEmail), 6);
        assert_eq!(c.no_email_ids, ["0000003", "0000004", "0000005", "0000006"]);
        assert_eq!(c.no_email.as_ref().map(|t| t.height()), Some(4));
        rules.email_column = Some("Email");
        assert!(matches!(
            build_cohort(report(cols, &[]), &rules),
            Err(Error::UnknownHeading {
                key: "guard.email_column",
                ..
            })
        ));
    }

    #[test]
    fn where_with_in_like_and_or_nulls_dates_and_numbers() {
        let r = report(
            COLS,
            &[
                &[
                    Some("1"),
                    Some("UGRAD"),
                    Some("Internal"),
                    Some("2026-06-30"),
                    Some("0"),
                ],
                &[
                    Some("2"),
                    Some("GRAD"),
                    Some("Internal"),
                    Some("2026-07-01"),
                    Some("12.5"),
                ],
                &[Some("3"), Some("STAFF"), Some("Internal"), None, Some("3")],
                &[Some("4"), Some("FACULTY"), Some("External"), Some("2027-01-15"), None],
                &[Some("5"), None, Some("Internal"), Some("2026-12-31"), Some("100")],
            ],
        );
        let n = Normalize {
            pad_numeric_to: None,
            ..normalize()
        };
        let ex: Vec<String> = Vec::new();
        let ids = |sql: &str| build_cohort(r.clone(), &rules(&n, &ex, Some(sql), None)).unwrap().ids;
        assert_eq!(ids(r#""User Group" IN ('UGRAD', 'GRAD')"#), ["1", "2"]);
        assert_eq!(ids(r#""User Group" LIKE '%GRAD'"#), ["1", "2"]);
        assert_eq!(
            ids(r#""User Group" = 'STAFF' OR "Account Type" = 'External'"#),
            ["3", "4"]
        );
        assert_eq!(ids(r#""User Group" IS NULL"#), ["5"]);
        assert_eq!(
            ids(r#""User Group" <> 'STAFF' AND "Account Type" = 'Internal'"#),
            ["1", "2"],
            "NULL <> x is not true"
        );
        assert_eq!(
            ids(r#""Expiry Date" > '2026-06-30'"#),
            ["2", "4", "5"],
            "dates compare as dates"
        );
        assert_eq!(
            ids(r#""Expiry Date" BETWEEN '2026-07-01' AND '2026-12-31'"#),
            ["2", "5"]
        );
        assert_eq!(
            ids(r#""Fines" > 10"#),
            ["2", "5"],
            "numbers compare as numbers: '100' > 10"
        );
        let c = build_cohort(r.clone(), &rules(&n, &ex, Some(r#""User Group" = 'GRAD'"#), None)).unwrap();
        assert_eq!(dropped(&c, DropReason::Where), 4);
    }

    #[test]
    fn unknown_headings_bad_sql_and_bad_ids_are_errors() {
        let r = report(COLS, &[&[Some("1"), Some("UGRAD"), Some("Internal"), None, None]]);
        let n = normalize();
        let ex: Vec<String> = Vec::new();
        let e = build_cohort(r.clone(), &rules(&n, &ex, Some(r#""User Grop" = 'x'"#), None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"User Grop\"") && e.contains("did you mean \"User Group\"") && e.contains("Expiry Date"),
            "{e}"
        );
        let e = build_cohort(
            r.clone(),
            &CohortRules {
                id_column: "Primary ID",
                ..rules(&n, &ex, None, None)
            },
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("cohort.id_column") && e.contains("Primary Identifier"),
            "{e}"
        );
        let e = build_cohort(r.clone(), &rules(&n, &ex, Some("\"User Group\" = = 'x'"), None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("cohort.where"), "{e}");
        let e = build_cohort(r.clone(), &rules(&n, &ex, None, Some("Acount Type")))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("guard.account_type_column") && e.contains("Account Type"),
            "{e}"
        );

        let long = "x".repeat(10_000);
        let r = report(
            COLS,
            &[
                &[Some("1"), None, None, None, None],
                &[Some(&long), None, None, None, None],
            ],
        );
        let e = build_cohort(r.clone(), &rules(&n, &ex, None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("row 2") && e.contains("10000 characters"), "{e}");
        let r = report(COLS, &[&[Some("a\u{7}b"), None, None, None, None]]);
        let e = build_cohort(r.clone(), &rules(&n, &ex, None, None))
            .unwrap_err()
            .to_string();
        assert!(e.contains("U+0007") && e.contains("row 1"), "{e}");
    }

    #[test]
    fn where_columns_are_found() {
        assert_eq!(
            where_columns(r#""A" = 'x' AND ("B" IN (1, 2) OR "A" IS NULL)"#).unwrap(),
            ["A", "B"]
        );
        assert!(where_columns("SELECT").is_err());
    }
}
