//! Standard output as the commands write it: a write that fails (a closed pipe, a full disk) is an
//! error the command returns, never a panic. `main` ends quietly on a closed pipe (`alma-cohort runs
//! | head`), as ripgrep does, and says any other failure in one `error:` line.

use std::io::Write;
use std::path::PathBuf;

use alma_cohort_core::error::Error;

pub use alma_cohort_core::output::STDOUT;

/// The options a command was given that a command it suggests needs as well (`--profile`,
/// `--state-dir`, `--base-url`, `--region`, `--api-key-file`), as shell words; set once by main.
static INVOCATION: std::sync::OnceLock<String> = std::sync::OnceLock::new();

pub fn set_invocation(options: String) {
    let _ = INVOCATION.set(options);
}

/// `text` with every suggested command (`` `alma-cohort resume R` ``) given the options this one
/// was given, so that it can be pasted as it is.
pub fn pasteable(text: &str) -> std::borrow::Cow<'_, str> {
    match INVOCATION.get() {
        Some(options) if !options.is_empty() && text.contains("`alma-cohort ") => text
            .replace("`alma-cohort ", &format!("`alma-cohort {options} "))
            .into(),
        _ => text.into(),
    }
}

/// A line for standard error, its suggested commands pasteable.
macro_rules! errln {
    ($($t:tt)*) => {
        eprintln!("{}", $crate::out::pasteable(&format!($($t)*)))
    };
}
pub(crate) use errln;

/// Writes `args` and a newline to standard output, flushed; its suggested commands pasteable.
pub fn line(args: std::fmt::Arguments) -> Result<(), Error> {
    write_all(pasteable(&format!("{args}\n")).as_bytes())
}

/// Writes `bytes` to standard output, flushed.
pub fn write_all(bytes: &[u8]) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes).and_then(|()| out.flush()).map_err(error)
}

pub fn error(source: std::io::Error) -> Error {
    Error::Output {
        path: PathBuf::from(STDOUT),
        source,
    }
}

/// Whether `e` is standard output closed by its reader (`| head`): the end of the command, not a
/// failure.
pub fn is_closed_pipe(e: &Error) -> bool {
    matches!(e, Error::Output { path, source } if path.as_os_str() == STDOUT && source.kind() == std::io::ErrorKind::BrokenPipe)
}

/// `println!` that returns the write's error: `outln!("…", x)?`.
macro_rules! outln {
    () => {
        $crate::out::line(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::out::line(format_args!($($t)*))
    };
}
pub(crate) use outln;
