//! The journal's runs: the SQLite file, its schema and migrations, the lock files, and each run's
//! record, cohort and events.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};

use super::run_state::RunState;

/// The schema this build writes; older journals are migrated on open.
pub const SCHEMA_VERSION: i64 = 7;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("journal {path}: {source}")]
    Sqlite {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },
    #[error(
        "journal {path} has schema version {found}, newer than this alma-cohort knows ({SCHEMA_VERSION})\nhint: use a newer alma-cohort with this state dir"
    )]
    TooNew { path: PathBuf, found: i64 },
    #[error(
        "cannot read the journal {path}: {source}\nhint: check that it is a file this account may read (ls -l {path}); an unreadable journal is never taken for an empty one"
    )]
    Unreadable {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot create the state dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another alma-cohort is running query {query:?} on this state dir (lock {path})\nhint: wait for it to finish; if none is running, the lock is released when its process ends"
    )]
    Locked { query: String, path: PathBuf },
    #[error("no run {0} in the journal\nhint: `alma-cohort runs` lists the runs")]
    NoSuchRun(String),
    #[error("no saved plan {0} in the journal\nhint: `alma-cohort plans` lists the saved plans")]
    NoSuchPlan(String),
    /// A saved plan was not in the state the step expected (applied, superseded): nothing written.
    #[error("plan {plan_id} is {state}; nothing was written\nhint: `alma-cohort plans` shows it")]
    PlanMoved { plan_id: String, state: String },
    #[error("journal record for run {run_id} is unreadable: {message}")]
    Corrupt { run_id: String, message: String },
    /// A transition the state machine does not have: a bug, never written.
    #[error("run {run_id}: no transition from {from} to {to}")]
    BadTransition {
        run_id: String,
        from: RunState,
        to: RunState,
    },
    /// The run was not in the state the step expected (another process moved it): nothing written.
    #[error(
        "run {run_id} is in state {found}, not {expected} as this step expected; nothing was written\nhint: another alma-cohort may have worked on it; `alma-cohort show {run_id}` tells where it is"
    )]
    StateMoved {
        run_id: String,
        expected: RunState,
        found: String,
    },
}

/// An exclusion file as read for a run: its content hash is journaled, so that the step before
/// the job can tell that it changed since the plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExclusionFile {
    pub path: String,
    pub sha256: String,
    pub ids: usize,
}

/// What a run will do in Alma, fixed when it starts, so `resume` never depends on the query file
/// having stayed the same.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub set_name: String,
    pub set_description: String,
    pub set_private: bool,
    pub job_name: String,
    pub job_id: Option<String>,
    /// Parameters of the run call (set_id is added when the set exists).
    pub job_parameters: Vec<(String, String)>,
    /// A `--period` run's set name before any `#n`: a function of its intent alone.
    #[serde(default)]
    pub set_base_name: Option<String>,
    /// Started with `--force`: the operator's word that the period runs again.
    #[serde(default)]
    pub forced: bool,
    /// `[guard] cooldown_days` of the run (0 with `--force`, and for runs journaled before it):
    /// checked again right before the job is submitted.
    #[serde(default)]
    pub cooldown_days: u32,
    /// `[guard] max_refused_ratio` of the run (none for runs journaled before it: no stop).
    #[serde(default)]
    pub max_refused_ratio: Option<f64>,
    /// The exclusion files as the plan read them: read again right before the job.
    #[serde(default)]
    pub exclusions: Vec<ExclusionFile>,
    /// The query's ID normalization, for the exclusions read again.
    #[serde(default)]
    pub normalize: Option<crate::query::Normalize>,
    /// `[job] letter`: the letter that carries the password (none for runs journaled before
    /// it: the default).
    #[serde(default)]
    pub letter_code: Option<String>,
    /// The letter as the plan saw it (code, state, digest): read again before the job.
    #[serde(default)]
    pub letter: Option<super::seen::LetterSeen>,
    /// Who the plan (or a later lookup) left out, and the rules: looked up again by `resume`
    /// and `apply` when older than the rules' max age.
    #[serde(default)]
    pub eligibility: Option<super::seen::Checked>,
    /// The letter's digest when an approved plan was applied: the job goes out with that letter
    /// or not at all.
    #[serde(default)]
    pub approved_letter: Option<String>,
}

impl Execution {
    /// The letter that carries the password.
    pub fn letter_code(&self) -> &str {
        self.letter_code.as_deref().unwrap_or(crate::query::DEFAULT_LETTER)
    }
}

/// A run as the journal holds it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub run_id: String,
    pub query: String,
    pub query_file: String,
    pub query_hash: String,
    /// The list file the cohort was read from (instead of a report), and its sha256.
    pub input_file: Option<String>,
    pub input_hash: Option<String>,
    pub params: Vec<(String, String)>,
    pub period: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// running | completed | failed | abandoned (follows `state`)
    pub status: String,
    /// Where the run is in its state machine.
    pub state: RunState,
    pub run_by: String,
    pub cohort_size: usize,
    pub execution: Execution,
    pub set_id: Option<String>,
    pub members_added: Option<usize>,
    pub invalid_ids: Vec<String>,
    pub job_id: Option<String>,
    pub job_submit_started_at: Option<String>,
    /// Job submissions that may have started a job in Alma (sent, and not refused by Alma for
    /// sure). Never lowered by anything but Alma's own refusal of that submission.
    pub job_submissions: u32,
    pub job_instance_id: Option<String>,
    pub job_status: Option<String>,
    pub counters: Vec<(String, String, String)>,
    pub alerts: Vec<(String, String)>,
    pub error: Option<String>,
    /// The plan's counts when the run started: report rows, drops by reason, breakdown.
    pub plan: serde_json::Value,
    /// Who let the run go on although Alma refused more of its cohort than `[guard]
    /// max_refused_ratio` allows, and when (`resume --accept-refused`).
    #[serde(default)]
    pub refused_accepted: Option<String>,
    /// Cohort IDs that an exclusion file protected after the plan: taken out of the set (and the
    /// job) before the job was submitted.
    #[serde(default)]
    pub protected_ids: Vec<String>,
    /// When the run's files (cohort, report, …) were deleted by the retention rule.
    #[serde(default)]
    pub files_pruned_at: Option<String>,
    pub steps: Vec<Step>,
    /// Batches of members recorded as added: `(batch, first, count)`.
    pub batches: Vec<(usize, usize, usize)>,
    /// Cohort IDs that Alma took into the set and that are no longer in it: taken out in Alma
    /// (Manage Sets) by staff. Never added again; no letter.
    #[serde(default)]
    pub taken_out: Vec<String>,
    /// Every change of state, and what the operator said, oldest first.
    pub events: Vec<Event>,
}

impl RunRecord {
    /// The job instance name this run gives Alma (the `job_name` parameter it sends).
    pub fn instance_name(&self) -> Option<&str> {
        self.execution
            .job_parameters
            .iter()
            .find(|(k, _)| k == "job_name")
            .map(|(_, v)| v.as_str())
    }
}

/// One entry of a run's history: a change of state, or a note in the same state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub at: String,
    pub from: Option<RunState>,
    pub to: RunState,
    pub by: String,
    pub detail: String,
}

/// Who is running this process, for the journal: [`person`]'s first name.
pub fn operator() -> String {
    person().0
}

/// The one rule for who did it, for every command that records a person (plan, approve,
/// withdraw, abandon, apply, run): the account sudo names (`SUDO_USER`) when the process runs as
/// the account sudo switched to (its real user id is not `SUDO_UID`'s, and `SUDO_UID` is that
/// account's), else the real user id's own account — never `$USER` or `$LOGNAME`, which anyone
/// sets. Returns `(person, os account)`. Whoever can act as the service account can still set
/// `SUDO_USER` and `SUDO_UID` by hand: this is a label, and a signed approval is the control
/// (docs/operating.md). Where the kernel knows who logged in (`/proc/self/loginuid`), `SUDO_UID`
/// must be that account too.
pub fn person() -> (String, String) {
    #[cfg(unix)]
    {
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        let account = account_name(uid).unwrap_or_else(|| uid.to_string());
        let sudo = std::env::var("SUDO_USER").ok().map(|u| u.trim().to_string());
        let sudo_uid = std::env::var("SUDO_UID")
            .ok()
            .and_then(|u| u.trim().parse::<u32>().ok());
        // The kernel's login uid (set at login, kept across sudo, not settable by the user): where
        // it is known, the person sudo names must be the one who logged in.
        let login_uid = std::fs::read_to_string("/proc/self/loginuid")
            .ok()
            .and_then(|u| u.trim().parse::<u32>().ok())
            .filter(|&u| u != u32::MAX);
        if let (Some(name), Some(from)) = (sudo, sudo_uid)
            && from != uid
            && login_uid.is_none_or(|login| login == from)
            && plain_name(&name)
            && account_name(from).as_deref() == Some(name.as_str())
        {
            return (name, account);
        }
        (account.clone(), account)
    }
    #[cfg(not(unix))]
    {
        let account = whoami::username();
        (account.clone(), account)
    }
}

/// Whether this process runs as an account sudo switched to from another (`SUDO_UID` set and not
/// the real user id).
pub fn switched_by_sudo() -> bool {
    #[cfg(unix)]
    {
        // SAFETY: getuid cannot fail and has no preconditions.
        let uid = unsafe { libc::getuid() };
        std::env::var("SUDO_UID")
            .ok()
            .and_then(|u| u.trim().parse::<u32>().ok())
            .is_some_and(|from| from != uid)
    }
    #[cfg(not(unix))]
    {
        false
    }
}

/// The name of the account with user id `uid` (`getpwuid_r`), if it has one.
#[cfg(unix)]
fn account_name(uid: u32) -> Option<String> {
    let mut buf = vec![0 as libc::c_char; 16 * 1024];
    // SAFETY: passwd is plain data, zeroed is a valid value for it.
    let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::passwd = std::ptr::null_mut();
    // SAFETY: every pointer is to live memory of the size given; getpwuid_r writes the entry's
    // strings into buf and sets found to &pwd, or to null when there is no entry.
    let rc = unsafe { libc::getpwuid_r(uid, &mut pwd, buf.as_mut_ptr(), buf.len(), &mut found) };
    if rc != 0 || found.is_null() || pwd.pw_name.is_null() {
        return None;
    }
    // SAFETY: pw_name points into buf, NUL-terminated by getpwuid_r.
    let name = unsafe { std::ffi::CStr::from_ptr(pwd.pw_name) };
    Some(name.to_string_lossy().into_owned()).filter(|n| plain_name(n))
}

/// Whether a user name from the environment can be recorded and printed as it is: not empty, at
/// most 64 characters, no control or invisible character (a newline in `SUDO_USER` would print
/// as a line of its own — a fake `error:` line in `plans`).
pub fn plain_name(name: &str) -> bool {
    !name.trim().is_empty()
        && name.chars().count() <= 64
        && !name.chars().any(|c| c.is_control() || crate::text::is_invisible(c))
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub step: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub detail: Option<String>,
}

pub fn now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub struct Journal {
    pub(super) conn: Connection,
    pub(super) path: PathBuf,
}

/// Held while a run of one query works on a state dir; released on drop (or process end).
#[derive(Debug)]
pub struct QueryLock {
    _file: std::fs::File,
}

pub fn lock_query(state_dir: &Path, query: &str) -> Result<QueryLock, Error> {
    let (file, path) = lock_file(state_dir, &format!("{query}.lock"))?;
    match file.try_lock() {
        Ok(()) => Ok(QueryLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => Err(Error::Locked {
            query: query.to_string(),
            path,
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(Error::StateDir { path, source }),
    }
}

/// Held by a run of any query from its plan until its cohort is journaled: the cooldown of a
/// run planned meanwhile then sees that cohort (two cron lines at the same minute, two queries
/// over the same users). Waits for the other run's plan, however long its report takes.
pub fn lock_planning(state_dir: &Path) -> Result<QueryLock, Error> {
    let (file, path) = lock_file(state_dir, "planning.lock")?;
    match file.try_lock() {
        Ok(()) => return Ok(QueryLock { _file: file }),
        Err(std::fs::TryLockError::WouldBlock) => {
            tracing::warn!(lock = %path.display(), "another run on this journal is being planned; waiting for it, so that its cohort counts in this run's cooldown");
        }
        Err(std::fs::TryLockError::Error(source)) => return Err(Error::StateDir { path, source }),
    }
    file.lock().map_err(|source| Error::StateDir { path, source })?;
    Ok(QueryLock { _file: file })
}

fn lock_file(state_dir: &Path, name: &str) -> Result<(std::fs::File, PathBuf), Error> {
    let dir = state_dir.join("locks");
    crate::files::create_dir(&dir).map_err(|source| Error::StateDir {
        path: dir.clone(),
        source,
    })?;
    let path = dir.join(name);
    crate::files::touch(&path).map_err(|source| Error::StateDir {
        path: path.clone(),
        source,
    })?;
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .map_err(|source| Error::StateDir {
            path: path.clone(),
            source,
        })?;
    Ok((file, path))
}

/// Whether the journal in `state_dir` holds any run: `Some(false)` when there is none or it is
/// empty (a journal with no runs is no choice made), `None` when it cannot be read — each caller
/// then takes the side that stops a run.
pub fn holds_runs(state_dir: &Path) -> Option<bool> {
    let path = state_dir.join("journal.sqlite");
    if !path.is_file() {
        return Some(false);
    }
    Connection::open_with_flags(&path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.query_row("SELECT COUNT(*) FROM runs", [], |r| r.get::<_, i64>(0))
        })
        .ok()
        .map(|n| n > 0)
}

impl Journal {
    /// The journal in `state_dir` if there is one (read-only commands create nothing).
    pub fn open_existing(state_dir: &Path) -> Result<Option<Self>, Error> {
        let path = state_dir.join("journal.sqlite");
        // Only a journal that is not there is "no journal": one that cannot be looked at (a
        // folder it cannot enter, a symlink loop) or is not a file is an error, never "no runs".
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => Self::open(state_dir).map(Some),
            Ok(_) => Err(Error::Unreadable {
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file"),
                path,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Unreadable { path, source }),
        }
    }

    /// Opens (creating and migrating) `<state_dir>/journal.sqlite`.
    pub fn open(state_dir: &Path) -> Result<Self, Error> {
        crate::files::create_dir(state_dir).map_err(|source| Error::StateDir {
            path: state_dir.to_path_buf(),
            source,
        })?;
        let path = state_dir.join("journal.sqlite");
        // Created private before SQLite opens it: its -wal and -shm files take its permissions.
        crate::files::touch(&path).map_err(|source| Error::StateDir {
            path: path.clone(),
            source,
        })?;
        let sql = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let conn = Connection::open(&path).map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        let mut journal = Self { conn, path };
        journal.migrate()?;
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub(super) fn sql(&self) -> impl Fn(rusqlite::Error) -> Error + '_ {
        move |source| Error::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn schema_version(&self) -> Result<i64, Error> {
        self.conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(self.sql())
    }

    fn migrate(&mut self) -> Result<(), Error> {
        let found = self.schema_version()?;
        if found > SCHEMA_VERSION {
            return Err(Error::TooNew {
                path: self.path.clone(),
                found,
            });
        }
        let path = self.path.clone();
        let sql = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        if found < 1 {
            tx.execute_batch(
                "CREATE TABLE runs (
                    run_id TEXT PRIMARY KEY,
                    query TEXT NOT NULL,
                    query_file TEXT NOT NULL,
                    query_hash TEXT NOT NULL,
                    params TEXT NOT NULL,
                    period TEXT,
                    started_at TEXT NOT NULL,
                    finished_at TEXT,
                    status TEXT NOT NULL,
                    run_by TEXT NOT NULL,
                    cohort_size INTEGER NOT NULL,
                    execution TEXT NOT NULL,
                    set_id TEXT,
                    members_added INTEGER,
                    invalid_ids TEXT NOT NULL DEFAULT '[]',
                    job_id TEXT,
                    job_submit_started_at TEXT,
                    job_instance_id TEXT,
                    job_status TEXT,
                    counters TEXT NOT NULL DEFAULT '[]',
                    alerts TEXT NOT NULL DEFAULT '[]',
                    error TEXT
                 );
                 CREATE INDEX runs_by_query ON runs (query, period, status);
                 CREATE TABLE cohort (
                    run_id TEXT NOT NULL REFERENCES runs (run_id),
                    position INTEGER NOT NULL,
                    primary_id TEXT NOT NULL,
                    PRIMARY KEY (run_id, position)
                 );
                 CREATE TABLE steps (
                    run_id TEXT NOT NULL REFERENCES runs (run_id),
                    step TEXT NOT NULL,
                    started_at TEXT NOT NULL,
                    finished_at TEXT,
                    detail TEXT,
                    PRIMARY KEY (run_id, step)
                 );
                 CREATE TABLE batches (
                    run_id TEXT NOT NULL REFERENCES runs (run_id),
                    batch INTEGER NOT NULL,
                    first INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    done_at TEXT NOT NULL,
                    PRIMARY KEY (run_id, batch)
                 );",
            )
            .map_err(sql)?;
        }
        if found < 2 {
            // v2: the plan's counts (report rows, drops by reason, breakdown) for reports.
            tx.execute_batch("ALTER TABLE runs ADD COLUMN plan TEXT NOT NULL DEFAULT 'null';")
                .map_err(sql)?;
        }
        if found < 3 {
            // v3: the run's state, explicit, and its history. Runs written by v1/v2 get the state
            // their columns and steps imply; a submit that was started and never confirmed is
            // `job_submitting`, so it is looked up, never resubmitted.
            tx.execute_batch(
                "ALTER TABLE runs ADD COLUMN state TEXT NOT NULL DEFAULT 'planned';
                 UPDATE runs SET state = CASE
                    WHEN status = 'completed' THEN 'completed'
                    WHEN status = 'failed' THEN 'failed'
                    WHEN status = 'abandoned' THEN 'abandoned'
                    WHEN job_instance_id IS NOT NULL THEN 'job_submitted'
                    WHEN job_submit_started_at IS NOT NULL THEN 'job_submitting'
                    WHEN members_added IS NOT NULL THEN 'members_done'
                    WHEN set_id IS NOT NULL THEN 'set_created'
                    WHEN EXISTS (SELECT 1 FROM steps s WHERE s.run_id = runs.run_id AND s.step = 'set') THEN 'set_creating'
                    ELSE 'planned' END;
                 CREATE TABLE events (
                    seq INTEGER PRIMARY KEY AUTOINCREMENT,
                    run_id TEXT NOT NULL REFERENCES runs (run_id),
                    at TEXT NOT NULL,
                    from_state TEXT,
                    to_state TEXT NOT NULL,
                    by TEXT NOT NULL,
                    detail TEXT NOT NULL
                 );
                 CREATE INDEX events_by_run ON events (run_id, seq);
                 ALTER TABLE runs ADD COLUMN job_submissions INTEGER NOT NULL DEFAULT 0;
                 ALTER TABLE runs ADD COLUMN input_file TEXT;
                 ALTER TABLE runs ADD COLUMN input_hash TEXT;
                 UPDATE runs SET job_submissions = 1 WHERE job_submit_started_at IS NOT NULL OR job_instance_id IS NOT NULL;",
            )
            .map_err(sql)?;
            if found >= 1 {
                let at = now();
                tx.execute(
                    "INSERT INTO events (run_id, at, from_state, to_state, by, detail)
                     SELECT run_id, ?1, NULL, state, 'alma-cohort', ?2 FROM runs",
                    params![
                        at,
                        format!("journal migrated from schema {found}: state derived from the record")
                    ],
                )
                .map_err(sql)?;
                // Before schema 3 a new run could start over an unfinished one. An unfinished run
                // that a later run of the same query (and period) has since overtaken must never
                // be resumed: its job would reach users the later run already reset.
                let superseded = "state NOT IN ('completed', 'failed', 'abandoned') AND EXISTS (
                        SELECT 1 FROM runs later WHERE later.query = runs.query
                          AND later.period IS runs.period AND later.started_at > runs.started_at
                          AND (later.status IN ('completed', 'failed') OR later.job_submit_started_at IS NOT NULL))";
                tx.execute(
                    &format!(
                        "INSERT INTO events (run_id, at, from_state, to_state, by, detail)
                         SELECT run_id, ?1, state, 'abandoned', 'alma-cohort', ?2 FROM runs WHERE {superseded}"
                    ),
                    params![
                        at,
                        "abandoned by the schema 3 migration: a later run of this query and period went on to its job, so resuming this one could reset the same users twice"
                    ],
                )
                .map_err(sql)?;
                tx.execute(
                    &format!(
                        "UPDATE runs SET state = 'abandoned', status = 'abandoned', finished_at = ?1 WHERE {superseded}"
                    ),
                    [&at],
                )
                .map_err(sql)?;
            }
        }
        if found < 4 {
            // v4: who Alma refused and the operator accepted; IDs protected since the plan and
            // taken out of the set before the job; when the run's files were pruned.
            tx.execute_batch(
                "ALTER TABLE runs ADD COLUMN refused_accepted TEXT;
                 ALTER TABLE runs ADD COLUMN protected_ids TEXT NOT NULL DEFAULT '[]';
                 ALTER TABLE runs ADD COLUMN files_pruned_at TEXT;",
            )
            .map_err(sql)?;
        }
        if found < 5 {
            // v5: saved plans (plan --save), their frozen cohorts and their approvals.
            tx.execute_batch(PLANS_SCHEMA).map_err(sql)?;
        }
        if found < 6 {
            // v6: the IDs each add_members call sent and what Alma answered; the IDs staff took
            // out of a run's set in Alma.
            tx.execute_batch(SENDS_SCHEMA).map_err(sql)?;
        }
        if found < 7 {
            // v7: a saved plan's canonical text (what an approval approves); each approval's
            // digest of it, and an SSH signature over it with the principal and key that made it.
            tx.execute_batch(
                "ALTER TABLE plans ADD COLUMN canonical TEXT;
                 ALTER TABLE approvals ADD COLUMN digest TEXT;
                 ALTER TABLE approvals ADD COLUMN signature TEXT;
                 ALTER TABLE approvals ADD COLUMN principal TEXT;
                 ALTER TABLE approvals ADD COLUMN key TEXT;",
            )
            .map_err(sql)?;
        }
        tx.pragma_update(None, "user_version", SCHEMA_VERSION).map_err(sql)?;
        tx.commit().map_err(sql)
    }

    /// Records a new run and its whole cohort, in one transaction.
    pub fn create_run(&mut self, run: &RunRecord, cohort: &[String]) -> Result<(), Error> {
        let path = self.path.clone();
        let sql = |source| Error::Sqlite {
            path: path.clone(),
            source,
        };
        let tx = self.conn.transaction().map_err(sql)?;
        insert_run(&tx, run, cohort).map_err(sql)?;
        tx.commit().map_err(sql)
    }
}

/// The run's row, its first event and its cohort, inside the caller's transaction.
pub(super) fn insert_run(tx: &rusqlite::Transaction<'_>, run: &RunRecord, cohort: &[String]) -> rusqlite::Result<()> {
    tx.execute(
        "INSERT INTO runs (run_id, query, query_file, query_hash, params, period, started_at, status, run_by, cohort_size, execution, plan, state, input_file, input_hash)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        params![
            run.run_id,
            run.query,
            run.query_file,
            run.query_hash,
            json(&run.params),
            run.period,
            run.started_at,
            run.status,
            run.run_by,
            run.cohort_size as i64,
            json(&run.execution),
            json(&run.plan),
            run.state.as_str(),
            run.input_file,
            run.input_hash,
        ],
    )?;
    tx.execute(
        "INSERT INTO events (run_id, at, from_state, to_state, by, detail) VALUES (?1, ?2, NULL, ?3, ?4, ?5)",
        params![
            run.run_id,
            run.started_at,
            run.state.as_str(),
            run.run_by,
            format!("run recorded with its cohort of {} IDs", cohort.len())
        ],
    )?;
    let mut insert = tx.prepare("INSERT INTO cohort (run_id, position, primary_id) VALUES (?1, ?2, ?3)")?;
    for (i, id) in cohort.iter().enumerate() {
        insert.execute(params![run.run_id, i as i64, id])?;
    }
    Ok(())
}

impl Journal {
    fn update(&self, run_id: &str, set: &str, values: &[&dyn rusqlite::ToSql]) -> Result<(), Error> {
        let mut all: Vec<&dyn rusqlite::ToSql> = values.to_vec();
        all.push(&run_id);
        let n = values.len() + 1;
        self.conn
            .execute(&format!("UPDATE runs SET {set} WHERE run_id = ?{n}"), all.as_slice())
            .map_err(self.sql())?;
        Ok(())
    }

    pub fn step_started(&self, run_id: &str, step: &str, detail: Option<&str>) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT INTO steps (run_id, step, started_at, detail) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (run_id, step) DO UPDATE SET detail = COALESCE(excluded.detail, detail)",
                params![run_id, step, now(), detail],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    pub fn step_finished(&self, run_id: &str, step: &str, detail: Option<&str>) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE steps SET finished_at = ?3, detail = COALESCE(?4, detail) WHERE run_id = ?1 AND step = ?2",
                params![run_id, step, now(), detail],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Moves a run from `from` to `to`, with the columns that go with the step, and writes the
    /// event — one transaction. Refused (nothing written) when the run is not in `from`.
    pub fn transition(
        &self,
        run_id: &str,
        from: RunState,
        to: RunState,
        detail: &str,
        fields: &[(&str, &dyn rusqlite::ToSql)],
    ) -> Result<(), Error> {
        if !from.can_go_to(to) {
            return Err(Error::BadTransition {
                run_id: run_id.to_string(),
                from,
                to,
            });
        }
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        let mut set = String::from("state = ?1, status = ?2");
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
        let (state, status) = (to.as_str(), to.status());
        values.push(&state);
        values.push(&status);
        let at = now();
        if to.is_finished() {
            set.push_str(", finished_at = ?3");
            values.push(&at);
        }
        for (column, value) in fields {
            values.push(*value);
            set.push_str(&format!(", {column} = ?{}", values.len()));
        }
        let from_s = from.as_str();
        values.push(&run_id);
        let id_n = values.len();
        values.push(&from_s);
        let from_n = values.len();
        let changed = tx
            .execute(
                &format!("UPDATE runs SET {set} WHERE run_id = ?{id_n} AND state = ?{from_n}"),
                values.as_slice(),
            )
            .map_err(self.sql())?;
        if changed != 1 {
            let found: Option<String> = tx
                .query_row("SELECT state FROM runs WHERE run_id = ?1", [run_id], |r| r.get(0))
                .optional()
                .map_err(self.sql())?;
            return Err(match found {
                None => Error::NoSuchRun(run_id.to_string()),
                Some(found) => Error::StateMoved {
                    run_id: run_id.to_string(),
                    expected: from,
                    found,
                },
            });
        }
        tx.execute(
            "INSERT INTO events (run_id, at, from_state, to_state, by, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![run_id, at, from.as_str(), to.as_str(), operator(), detail],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    pub fn batch_done(&self, run_id: &str, batch: usize, first: usize, count: usize) -> Result<(), Error> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO batches (run_id, batch, first, count, done_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![run_id, batch as i64, first as i64, count as i64, now()],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// Records an add_members call before it is made; returns its number (one more than the
    /// run's last).
    pub fn send_started(&self, run_id: &str, ids: &[String]) -> Result<usize, Error> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        let batch: i64 = tx
            .query_row(
                "SELECT COALESCE(MAX(batch) + 1, 0) FROM sends WHERE run_id = ?1",
                [run_id],
                |r| r.get(0),
            )
            .map_err(self.sql())?;
        let ids = serde_json::to_string(ids).unwrap_or_else(|_| "[]".into());
        tx.execute(
            "INSERT INTO sends (run_id, batch, ids, sent_at) VALUES (?1, ?2, ?3, ?4)",
            params![run_id, batch, ids, now()],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())?;
        Ok(batch as usize)
    }

    /// Records Alma's answer to an add_members call.
    pub fn send_answered(
        &self,
        run_id: &str,
        batch: usize,
        outcome: SendOutcome,
        members_after: Option<usize>,
    ) -> Result<(), Error> {
        self.conn
            .execute(
                "UPDATE sends SET outcome = ?3, members_after = ?4 WHERE run_id = ?1 AND batch = ?2",
                params![run_id, batch as i64, outcome.as_str(), members_after.map(|n| n as i64)],
            )
            .map_err(self.sql())?;
        Ok(())
    }

    /// The run's add_members calls, oldest first.
    pub fn sends(&self, run_id: &str) -> Result<Vec<Send>, Error> {
        let mut stmt = self
            .conn
            .prepare("SELECT batch, ids, outcome, members_after FROM sends WHERE run_id = ?1 ORDER BY batch")
            .map_err(self.sql())?;
        let rows = stmt
            .query_map([run_id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, Option<String>>(2)?,
                    r.get::<_, Option<i64>>(3)?,
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        rows.into_iter()
            .map(|(batch, ids, outcome, after)| {
                let outcome = match outcome.as_deref() {
                    None => SendOutcome::Unknown,
                    Some("accepted") => SendOutcome::Accepted,
                    Some("refused") => SendOutcome::Refused,
                    Some(other) => {
                        return Err(Error::Corrupt {
                            run_id: run_id.to_string(),
                            message: format!("batch {batch} has the outcome {other:?}"),
                        });
                    }
                };
                Ok(Send {
                    batch: batch.max(0) as usize,
                    ids: serde_json::from_str(&ids).map_err(|e| Error::Corrupt {
                        run_id: run_id.to_string(),
                        message: format!("batch {batch}: {e}"),
                    })?,
                    outcome,
                    members_after: after.map(|n| n.max(0) as usize),
                })
            })
            .collect()
    }

    /// Records cohort IDs that staff took out of the run's set in Alma (kept once each).
    pub fn take_out(&self, run_id: &str, ids: &[String]) -> Result<(), Error> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        let at = now();
        for id in ids {
            tx.execute(
                "INSERT OR IGNORE INTO taken_out (run_id, primary_id, at) VALUES (?1, ?2, ?3)",
                params![run_id, id, at],
            )
            .map_err(self.sql())?;
        }
        tx.commit().map_err(self.sql())
    }

    /// Records columns and a note without a change of state (e.g. the instance id found for a
    /// run already in `job_submitted`), in one transaction, if the run is still in `state`.
    pub fn note(
        &self,
        run_id: &str,
        state: RunState,
        detail: &str,
        fields: &[(&str, &dyn rusqlite::ToSql)],
    ) -> Result<(), Error> {
        let tx = self.conn.unchecked_transaction().map_err(self.sql())?;
        let current: Option<String> = tx
            .query_row("SELECT state FROM runs WHERE run_id = ?1", [run_id], |r| r.get(0))
            .optional()
            .map_err(self.sql())?;
        match current {
            None => return Err(Error::NoSuchRun(run_id.to_string())),
            Some(found) if found != state.as_str() => {
                return Err(Error::StateMoved {
                    run_id: run_id.to_string(),
                    expected: state,
                    found,
                });
            }
            Some(_) => {}
        }
        if !fields.is_empty() {
            let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
            let mut set = Vec::new();
            for (column, value) in fields {
                values.push(*value);
                set.push(format!("{column} = ?{}", values.len()));
            }
            values.push(&run_id);
            tx.execute(
                &format!("UPDATE runs SET {} WHERE run_id = ?{}", set.join(", "), values.len()),
                values.as_slice(),
            )
            .map_err(self.sql())?;
        }
        tx.execute(
            "INSERT INTO events (run_id, at, from_state, to_state, by, detail) VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
            params![run_id, now(), state.as_str(), operator(), detail],
        )
        .map_err(self.sql())?;
        tx.commit().map_err(self.sql())
    }

    pub fn job_progress(
        &self,
        run_id: &str,
        status: &str,
        counters: &[(String, String, String)],
        alerts: &[(String, String)],
    ) -> Result<(), Error> {
        self.update(
            run_id,
            "job_status = ?1, counters = ?2, alerts = ?3",
            &[&status, &json(&counters), &json(&alerts)],
        )
    }

    /// Notes an error without ending the run (it stays resumable).
    pub fn note_error(&self, run_id: &str, error: &str) -> Result<(), Error> {
        self.update(run_id, "error = ?1", &[&error])
    }

    pub fn cohort(&self, run_id: &str) -> Result<Vec<String>, Error> {
        self.strings(
            "SELECT primary_id FROM cohort WHERE run_id = ?1 ORDER BY position",
            [run_id],
        )
    }

    /// The first column of a query's rows, as text.
    pub(super) fn strings(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<String>, Error> {
        let mut stmt = self.conn.prepare(sql).map_err(self.sql())?;
        let rows = stmt.query_map(params, |r| r.get(0)).map_err(self.sql())?;
        rows.collect::<Result<_, _>>().map_err(self.sql())
    }

    /// A transaction that takes the write lock at once: the checks made in it and its writes see
    /// the same journal, whoever else writes.
    pub(super) fn immediate(&mut self) -> Result<rusqlite::Transaction<'_>, Error> {
        let path = self.path.clone();
        self.conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(|source| Error::Sqlite { path, source })
    }

    /// The oldest unfinished run of a query, if any.
    pub fn unfinished(&self, query: &str) -> Result<Option<RunRecord>, Error> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT run_id FROM runs WHERE query = ?1 AND status = 'running' ORDER BY started_at, run_id LIMIT 1",
                [query],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        id.map(|id| self.run(&id)).transpose()
    }

    /// The ended runs of a query for a period, newest first.
    /// The ended runs of a query for a period, newest first. Periods compare in their normalized
    /// form, also those journaled before periods were normalized.
    pub fn ended_for_period(&self, query: &str, period: &str) -> Result<Vec<RunRecord>, Error> {
        let key = crate::text::period_key(period);
        let mut stmt = self
            .conn
            .prepare(
                "SELECT run_id, period FROM runs WHERE query = ?1 AND period IS NOT NULL AND status != 'running' ORDER BY started_at DESC, run_id DESC",
            )
            .map_err(self.sql())?;
        let ids: Vec<(String, String)> = stmt
            .query_map(params![query], |r| Ok((r.get(0)?, r.get(1)?)))
            .map_err(self.sql())?
            .collect::<Result<_, _>>()
            .map_err(self.sql())?;
        ids.iter()
            .filter(|(_, p)| crate::text::period_key(p) == key)
            .map(|(id, _)| self.run(id))
            .collect()
    }

    /// The run whose set this is, if one of this journal's.
    pub fn run_of_set(&self, set_id: &str) -> Result<Option<RunRecord>, Error> {
        let id: Option<String> = self
            .conn
            .query_row("SELECT run_id FROM runs WHERE set_id = ?1 LIMIT 1", [set_id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(self.sql())?;
        id.map(|id| self.run(&id)).transpose()
    }

    /// The run, if this journal has it.
    pub fn find_run(&self, run_id: &str) -> Result<Option<RunRecord>, Error> {
        match self.run(run_id) {
            Ok(r) => Ok(Some(r)),
            Err(Error::NoSuchRun(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The last completed run of a query.
    pub fn last_completed(&self, query: &str) -> Result<Option<RunRecord>, Error> {
        let id: Option<String> = self
            .conn
            .query_row(
                "SELECT run_id FROM runs WHERE query = ?1 AND status = 'completed' ORDER BY started_at DESC LIMIT 1",
                [query],
                |r| r.get(0),
            )
            .optional()
            .map_err(self.sql())?;
        id.map(|id| self.run(&id)).transpose()
    }

    pub fn run(&self, run_id: &str) -> Result<RunRecord, Error> {
        let row = self
            .conn
            .query_row(
                "SELECT run_id, query, query_file, query_hash, params, period, started_at, finished_at, status, run_by,
                        cohort_size, execution, set_id, members_added, invalid_ids, job_id, job_submit_started_at,
                        job_instance_id, job_status, counters, alerts, error, plan, state, job_submissions,
                        input_file, input_hash, refused_accepted, protected_ids, files_pruned_at
                 FROM runs WHERE run_id = ?1",
                [run_id],
                |r| {
                    Ok((
                        (
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                        ),
                        (
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<String>>(5)?,
                            r.get::<_, String>(6)?,
                            r.get::<_, Option<String>>(7)?,
                        ),
                        (
                            r.get::<_, String>(8)?,
                            r.get::<_, String>(9)?,
                            r.get::<_, i64>(10)?,
                            r.get::<_, String>(11)?,
                        ),
                        (
                            r.get::<_, Option<String>>(12)?,
                            r.get::<_, Option<i64>>(13)?,
                            r.get::<_, String>(14)?,
                            r.get::<_, Option<String>>(15)?,
                        ),
                        (
                            r.get::<_, Option<String>>(16)?,
                            r.get::<_, Option<String>>(17)?,
                            r.get::<_, Option<String>>(18)?,
                        ),
                        (
                            r.get::<_, String>(19)?,
                            r.get::<_, String>(20)?,
                            r.get::<_, Option<String>>(21)?,
                            r.get::<_, String>(22)?,
                        ),
                        r.get::<_, String>(23)?,
                        r.get::<_, i64>(24)?,
                        (r.get::<_, Option<String>>(25)?, r.get::<_, Option<String>>(26)?),
                        (
                            r.get::<_, Option<String>>(27)?,
                            r.get::<_, String>(28)?,
                            r.get::<_, Option<String>>(29)?,
                        ),
                    ))
                },
            )
            .optional()
            .map_err(self.sql())?
            .ok_or_else(|| Error::NoSuchRun(run_id.to_string()))?;
        let corrupt = |e: serde_json::Error| Error::Corrupt {
            run_id: run_id.to_string(),
            message: e.to_string(),
        };
        let (
            (run_id, query, query_file, query_hash),
            (params, period, started_at, finished_at),
            (status, run_by, cohort_size, execution),
        ) = (row.0, row.1, row.2);
        let (
            (set_id, members_added, invalid_ids, job_id),
            (job_submit_started_at, job_instance_id, job_status),
            (counters, alerts, error, plan),
        ) = (row.3, row.4, row.5);
        let state = RunState::parse(&row.6).ok_or_else(|| Error::Corrupt {
            run_id: run_id.clone(),
            message: format!("unknown state {:?}", row.6),
        })?;
        let mut events_stmt = self
            .conn
            .prepare("SELECT at, from_state, to_state, by, detail FROM events WHERE run_id = ?1 ORDER BY seq")
            .map_err(self.sql())?;
        let events = events_stmt
            .query_map([&run_id], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<String>>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?
            .into_iter()
            .map(|(at, from, to, by, detail)| Event {
                at,
                from: from.as_deref().and_then(RunState::parse),
                to: RunState::parse(&to).unwrap_or(state),
                by,
                detail,
            })
            .collect();
        let mut steps_stmt = self
            .conn
            .prepare(
                "SELECT step, started_at, finished_at, detail FROM steps WHERE run_id = ?1 ORDER BY started_at, rowid",
            )
            .map_err(self.sql())?;
        let steps = steps_stmt
            .query_map([&run_id], |r| {
                Ok(Step {
                    step: r.get(0)?,
                    started_at: r.get(1)?,
                    finished_at: r.get(2)?,
                    detail: r.get(3)?,
                })
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        let mut batch_stmt = self
            .conn
            .prepare("SELECT batch, first, count FROM batches WHERE run_id = ?1 ORDER BY batch")
            .map_err(self.sql())?;
        let batches = batch_stmt
            .query_map([&run_id], |r| {
                Ok((
                    r.get::<_, i64>(0)? as usize,
                    r.get::<_, i64>(1)? as usize,
                    r.get::<_, i64>(2)? as usize,
                ))
            })
            .map_err(self.sql())?
            .collect::<Result<Vec<_>, _>>()
            .map_err(self.sql())?;
        let taken_out = self.strings(
            "SELECT primary_id FROM taken_out WHERE run_id = ?1 ORDER BY at, rowid",
            [&run_id],
        )?;
        Ok(RunRecord {
            run_id,
            query,
            query_file,
            query_hash,
            input_file: row.8.0,
            input_hash: row.8.1,
            params: serde_json::from_str(&params).map_err(corrupt)?,
            period,
            started_at,
            finished_at,
            status,
            state,
            run_by,
            cohort_size: cohort_size as usize,
            execution: serde_json::from_str(&execution).map_err(corrupt)?,
            set_id,
            members_added: members_added.map(|n| n as usize),
            invalid_ids: serde_json::from_str(&invalid_ids).map_err(corrupt)?,
            job_id,
            job_submit_started_at,
            job_submissions: row.7.max(0) as u32,
            job_instance_id,
            job_status,
            counters: serde_json::from_str(&counters).map_err(corrupt)?,
            alerts: serde_json::from_str(&alerts).map_err(corrupt)?,
            error,
            plan: serde_json::from_str(&plan).map_err(corrupt)?,
            refused_accepted: row.9.0,
            protected_ids: serde_json::from_str(&row.9.1).map_err(corrupt)?,
            files_pruned_at: row.9.2,
            steps,
            batches,
            taken_out,
            events,
        })
    }

    /// Every run, newest first.
    pub fn runs(&self) -> Result<Vec<RunRecord>, Error> {
        let ids = self.strings("SELECT run_id FROM runs ORDER BY started_at DESC, run_id DESC", [])?;
        ids.iter().map(|id| self.run(id)).collect()
    }
}

pub(super) fn json<T: Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

/// Tables of schema 5: saved plans (`journal/plans.rs`).
const SENDS_SCHEMA: &str = "CREATE TABLE sends (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        batch INTEGER NOT NULL,
        ids TEXT NOT NULL,
        sent_at TEXT NOT NULL,
        outcome TEXT,
        members_after INTEGER,
        PRIMARY KEY (run_id, batch)
     );
     CREATE TABLE taken_out (
        run_id TEXT NOT NULL REFERENCES runs (run_id),
        primary_id TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (run_id, primary_id)
     );";

/// One add_members call as the journal holds it: written before the call, answered after.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Send {
    pub batch: usize,
    /// The IDs as sent.
    pub ids: Vec<String>,
    pub outcome: SendOutcome,
    /// The set's number of members in Alma's answer.
    pub members_after: Option<usize>,
}

/// What became of an add_members call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendOutcome {
    /// No answer on record (lost, or the process stopped): Alma may or may not have it.
    Unknown,
    /// Alma answered 200: it took the IDs it knows.
    Accepted,
    /// Alma refused the call: nothing of it was applied.
    Refused,
}

impl SendOutcome {
    fn as_str(self) -> Option<&'static str> {
        match self {
            SendOutcome::Unknown => None,
            SendOutcome::Accepted => Some("accepted"),
            SendOutcome::Refused => Some("refused"),
        }
    }
}

const PLANS_SCHEMA: &str = "CREATE TABLE plans (
        plan_id TEXT PRIMARY KEY,
        query TEXT NOT NULL,
        period TEXT,
        planned_by TEXT NOT NULL,
        planned_at TEXT NOT NULL,
        record TEXT NOT NULL,
        state TEXT NOT NULL DEFAULT 'saved',
        applied_at TEXT,
        superseded_by TEXT,
        alma TEXT
     );
     CREATE INDEX plans_by_query ON plans (query, period);
     CREATE TABLE plan_cohort (
        plan_id TEXT NOT NULL REFERENCES plans (plan_id),
        position INTEGER NOT NULL,
        primary_id TEXT NOT NULL,
        PRIMARY KEY (plan_id, position)
     );
     CREATE TABLE approvals (
        plan_id TEXT NOT NULL REFERENCES plans (plan_id),
        approver TEXT NOT NULL,
        os_user TEXT NOT NULL,
        at TEXT NOT NULL,
        note TEXT
     );";

#[cfg(test)]
mod tests {
    use super::*;

    fn dir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "journal-{tag}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0)
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn record(run_id: &str, period: Option<&str>) -> RunRecord {
        RunRecord {
            run_id: run_id.into(),
            query: "q".into(),
            query_file: "q.toml".into(),
            query_hash: "abc".into(),
            input_file: None,
            input_hash: None,
            params: vec![("from".into(), "2026".into())],
            period: period.map(str::to_string),
            started_at: now(),
            finished_at: None,
            status: "running".into(),
            state: RunState::Planned,
            run_by: "me".into(),
            cohort_size: 3,
            execution: Execution {
                set_name: "S".into(),
                set_description: "D".into(),
                set_private: false,
                job_name: "Update/Notify Users".into(),
                job_id: None,
                job_parameters: vec![("job_name".into(), "alma-cohort r1".into())],
                set_base_name: None,
                forced: false,
                cooldown_days: 0,
                max_refused_ratio: None,
                exclusions: vec![],
                normalize: None,
                letter_code: None,
                letter: None,
                eligibility: None,
                approved_letter: None,
            },
            set_id: None,
            members_added: None,
            invalid_ids: vec![],
            job_id: None,
            job_submit_started_at: None,
            job_submissions: 0,
            job_instance_id: None,
            job_status: None,
            counters: vec![],
            alerts: vec![],
            error: None,
            plan: serde_json::Value::Null,
            refused_accepted: None,
            protected_ids: vec![],
            files_pruned_at: None,
            steps: vec![],
            batches: vec![],
            taken_out: vec![],
            events: vec![],
        }
    }

    #[test]
    fn a_run_is_recorded_step_by_step_and_read_back() {
        let d = dir("roundtrip");
        let mut j = Journal::open(&d).unwrap();
        assert_eq!(j.schema_version().unwrap(), SCHEMA_VERSION);
        j.create_run(
            &record("r1", Some("2026-spring")),
            &["a".into(), "b".into(), "c".into()],
        )
        .unwrap();
        j.step_started("r1", "set", None).unwrap();
        j.transition("r1", RunState::Planned, RunState::SetCreating, "creating", &[])
            .unwrap();
        j.transition(
            "r1",
            RunState::SetCreating,
            RunState::SetCreated,
            "created",
            &[("set_id", &"9501")],
        )
        .unwrap();
        j.step_finished("r1", "set", Some("9501")).unwrap();
        j.batch_done("r1", 0, 0, 3).unwrap();
        j.transition(
            "r1",
            RunState::SetCreated,
            RunState::MembersDone,
            "2 added",
            &[("members_added", &2i64), ("invalid_ids", &"[\"c\"]")],
        )
        .unwrap();
        // A step that expects another state writes nothing.
        let e = j
            .transition("r1", RunState::SetCreated, RunState::MembersDone, "again", &[])
            .unwrap_err();
        assert!(matches!(e, Error::StateMoved { .. }), "{e}");
        let e = j
            .transition("r1", RunState::MembersDone, RunState::Completed, "skip", &[])
            .unwrap_err();
        assert!(matches!(e, Error::BadTransition { .. }), "{e}");
        j.transition(
            "r1",
            RunState::MembersDone,
            RunState::JobSubmitting,
            "submitting",
            &[("job_id", &"M1"), ("job_submit_started_at", &"2026-01-05T06:00:00Z")],
        )
        .unwrap();
        assert_eq!(
            j.unfinished("q").unwrap().map(|r| r.state),
            Some(RunState::JobSubmitting)
        );
        j.transition(
            "r1",
            RunState::JobSubmitting,
            RunState::JobSubmitted,
            "took",
            &[("job_instance_id", &"9601")],
        )
        .unwrap();
        j.job_progress("r1", "COMPLETED_SUCCESS", &[("n".into(), "N".into(), "2".into())], &[])
            .unwrap();
        assert!(j.ended_for_period("q", "2026-spring").unwrap().is_empty());
        j.transition("r1", RunState::JobSubmitted, RunState::Completed, "ended", &[])
            .unwrap();
        drop(j);
        let j = Journal::open(&d).unwrap();
        let r = j.run("r1").unwrap();
        assert_eq!(
            (r.set_id.as_deref(), r.job_instance_id.as_deref(), r.status.as_str()),
            (Some("9501"), Some("9601"), "completed")
        );
        assert_eq!(r.invalid_ids, ["c"]);
        assert_eq!(r.batches, [(0, 0, 3)]);
        assert_eq!(r.steps[0].detail.as_deref(), Some("9501"));
        assert_eq!((r.state, r.finished_at.is_some()), (RunState::Completed, true));
        let path: Vec<RunState> = r.events.iter().map(|e| e.to).collect();
        // Every state from planned to completed, in order.
        assert_eq!(path, RunState::ALL[..7]);
        assert_eq!(j.cohort("r1").unwrap(), ["a", "b", "c"]);
        assert_eq!(j.unfinished("q").unwrap(), None);
        assert_eq!(j.ended_for_period("q", "2026-spring").unwrap()[0].run_id, "r1");
        assert_eq!(j.last_completed("q").unwrap().map(|r| r.run_id), Some("r1".into()));
        assert!(matches!(j.run("nope"), Err(Error::NoSuchRun(_))));
        assert_eq!(j.runs().unwrap().len(), 1);
    }

    #[test]
    fn a_version_1_journal_is_migrated_and_keeps_its_runs() {
        let d = dir("migrate");
        let mut j = Journal::open(&d).unwrap();
        j.create_run(&record("old", None), &["a".into()]).unwrap();
        // Make it look like a journal written by schema 1.
        j.conn
            .execute_batch(
                "DROP TABLE events; ALTER TABLE runs DROP COLUMN state; ALTER TABLE runs DROP COLUMN job_submissions; ALTER TABLE runs DROP COLUMN input_file; ALTER TABLE runs DROP COLUMN input_hash; ALTER TABLE runs DROP COLUMN plan; ALTER TABLE runs DROP COLUMN refused_accepted; ALTER TABLE runs DROP COLUMN protected_ids; ALTER TABLE runs DROP COLUMN files_pruned_at; DROP TABLE approvals; DROP TABLE plan_cohort; DROP TABLE plans; DROP TABLE sends; DROP TABLE taken_out; PRAGMA user_version = 1;",
            )
            .unwrap();
        drop(j);
        let j = Journal::open(&d).unwrap();
        assert_eq!(j.schema_version().unwrap(), SCHEMA_VERSION);
        let r = j.run("old").unwrap();
        assert_eq!((r.run_id.as_str(), r.plan.clone()), ("old", serde_json::Value::Null));
    }

    #[test]
    fn one_process_per_query_and_newer_schemas_refused() {
        let d = dir("lock");
        let held = lock_query(&d, "q").unwrap();
        let e = lock_query(&d, "q").unwrap_err().to_string();
        assert!(e.contains("another alma-cohort is running query \"q\""), "{e}");
        assert!(lock_query(&d, "other").is_ok());
        drop(held);
        assert!(lock_query(&d, "q").is_ok());

        let j = Journal::open(&d).unwrap();
        j.conn.pragma_update(None, "user_version", 99).unwrap();
        drop(j);
        assert!(matches!(Journal::open(&d), Err(Error::TooNew { found: 99, .. })));
    }
}
