//! The crate's error type and the exit codes of the command-line contract.

use std::process::ExitCode;

/// Exit codes (DESIGN.md): 0 done; 1 the job ended failed or partial; 2 usage or invalid query
/// file; 3 Alma or network error; 4 refused by a guard or by the journal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    JobFailed = 1,
    Usage = 2,
    Alma = 3,
    Refused = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The simulator could not start (port taken, unreadable CSV report, ...).
    #[error("simulator could not start: {0}")]
    SimStart(String),
    #[error("invalid setting: {0}")]
    Settings(String),
}

impl Error {
    pub fn exit(&self) -> Exit {
        match self {
            Error::SimStart(_) | Error::Settings(_) => Exit::Usage,
        }
    }
}
