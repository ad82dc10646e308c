//! What the simulated Alma keeps between requests, per area: a report's paging session, a job
//! run, a set. The State holds them; each area's file (analytics, jobs, sets) works on them.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};

use super::config::JobOutcome;
use super::institution::Code;

/// One report execution being paged through with its resumption token.
#[derive(Debug)]
pub struct Session {
    pub(crate) report: usize,
    pub(crate) rows: Vec<u32>,
    pub(crate) limit: usize,
    pub(crate) cursor: usize,
    pub(crate) col_names: bool,
    pub(crate) loading_left: u32,
    /// With the `result-xml-still-loading` quirk: one "still loading" answer after the first data
    /// page, as php-alma-client's recorded sequence has it (part1 → still loading → part2).
    pub(crate) pause_after_first: bool,
    /// The schema goes on the first answer that has a rowset (not on a `<ResultXml/>`).
    pub(crate) schema_sent: bool,
    pub(crate) data_pages: u32,
    pub(crate) finished: bool,
    pub(crate) as_of: NaiveDate,
}

/// A job counter: type code, description, value.
pub type Counter = (&'static str, &'static str, u64);

/// A job run.
#[derive(Clone, Debug)]
pub struct Instance {
    pub id: String,
    pub job_id: String,
    pub name: String,
    pub set_id: String,
    pub parameters: Vec<(String, String)>,
    pub submitted: DateTime<Utc>,
    pub duration: Duration,
    pub outcome: JobOutcome,
    /// The set's members when the job was submitted.
    pub members: Vec<String>,
    pub status: &'static str,
    pub progress: f64,
    pub start_time: Option<DateTime<Utc>>,
    pub end_time: Option<DateTime<Utc>>,
    pub counters: Vec<Counter>,
    pub alerts: Vec<Code>,
    /// Effects (passwords, letters) applied once, when the run reached its terminal status.
    pub applied: bool,
}

#[derive(Clone, Debug)]
pub struct SimSet {
    pub id: String,
    pub name: String,
    pub description: String,
    pub content: String,
    pub private: bool,
    pub active: bool,
    pub note: String,
    pub created: DateTime<Utc>,
    /// Member ids in the order they were added (users: the user's primary id as stored).
    pub members: Vec<String>,
    /// The members lower-cased, so that "already in the set" is one lookup (an institution's
    /// 91 000-member set is built 1000 at a time).
    pub member_keys: std::collections::HashSet<String>,
}
