//! The terminal side of a run: the progress bar while a report is read, the question before
//! users are reset, the plan's lines, and a run's result as text or one JSON object.

use std::io::{BufRead, IsTerminal};
use std::time::Duration;

use crate::out::outln;
use alma_client::Progress;
use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::pipeline::eligibility::LookupProgress;
use alma_cohort_core::pipeline::execute::RunResult;
use alma_cohort_core::pipeline::flow::{Ended, Operator, Stopped};
use alma_cohort_core::settings::Settings;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The one JSON object that ends stdout when a `--json` command stops before it has one of its
/// own (a bad `--period`, another alma-cohort running, a refusal before the plan): what a
/// scheduler reads — `status` (`refused`, `usage`, `error`), the exit code, the error's first line.
pub fn error_object(e: &Error) -> serde_json::Value {
    let exit = e.exit();
    let status = match exit {
        Exit::Refused => "refused",
        Exit::Usage => "usage",
        _ => "error",
    };
    let text = alma_cohort_core::error::chain(e);
    serde_json::json!({
        "status": status,
        "exit": exit as u8,
        "error": text.lines().next().unwrap_or_default(),
    })
}

/// The operator at a terminal (or cron): `--json` keeps stdout for the one final object.
pub struct Terminal {
    json: bool,
    quiet: bool,
    yes: bool,
    bar: Option<ProgressBar>,
}

impl Terminal {
    pub fn new(json: bool, quiet: bool, yes: bool) -> Self {
        Terminal {
            json,
            quiet,
            yes,
            bar: None,
        }
    }

    /// How a flow ended, printed; the exit code it means. A stopped flow's object (with
    /// `--json`) ends stdout; its error is the caller's `error:` line.
    pub fn finish(&self, ended: Result<Ended, Stopped>) -> Result<Exit, Error> {
        match ended {
            Ok(Ended::Ran(result)) => print_result(&result, self.json),
            Ok(Ended::Shown) => Ok(Exit::Done),
            Ok(Ended::Skipped(skip)) => {
                if self.json {
                    outln!("{}", skip.object)?;
                }
                crate::out::errln!("{}", skip.message);
                Ok(Exit::Refused)
            }
            Err(stopped) => {
                if self.json {
                    match &stopped.object {
                        Some(object) => outln!("{object}")?,
                        None => outln!("{}", error_object(&stopped.error))?,
                    }
                }
                Err(stopped.error)
            }
        }
    }
}

impl Operator for Terminal {
    fn say(&mut self, text: &str) -> Result<(), Error> {
        if self.json {
            crate::out::errln!("{text}");
            Ok(())
        } else {
            outln!("{text}")
        }
    }

    fn note(&mut self, text: &str) {
        crate::out::errln!("{text}");
    }

    fn reading(&mut self) {
        self.bar = Some(progress_bar(self.quiet));
    }

    fn page(&mut self, p: Progress) {
        if let Some(bar) = &self.bar {
            show_page(bar, p);
        }
    }

    fn read(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
    }

    fn lookups(&mut self, p: LookupProgress) {
        match p {
            LookupProgress::Start(total) => {
                self.read();
                self.bar = Some(lookup_bar(self.quiet, total));
            }
            LookupProgress::Done(n) => {
                if let Some(bar) = &self.bar {
                    bar.set_position(n as u64);
                }
            }
            LookupProgress::End => self.read(),
        }
    }

    /// Asks before a run resets `users` passwords (`--yes` skips the question; without a
    /// terminal it is required).
    fn confirm(&mut self, users: usize) -> Result<(), Error> {
        if self.yes {
            return Ok(());
        }
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage(
                "stdin is not a terminal, so nobody can confirm this run; pass --yes to run without asking (nothing was changed in Alma)".into(),
            ));
        }
        eprint!(
            "Reset the passwords of {users} users and have Alma email each of them a temporary password? Type yes to go on: "
        );
        let mut answer = String::new();
        let _ = std::io::stdin().lock().read_line(&mut answer);
        if answer.trim().eq_ignore_ascii_case("yes") {
            Ok(())
        } else {
            Err(Error::NotConfirmed("not confirmed; nothing was changed in Alma".into()))
        }
    }
}

/// Prints a run's result: its summary (first line: the outcome; then warnings, alerts and
/// counters) or one JSON object; the exit code it means.
pub fn print_result(result: &RunResult, json: bool) -> Result<Exit, Error> {
    let exit = if result.job_failed() {
        Exit::JobFailed
    } else {
        Exit::Done
    };
    // The run has ended: its exit code is its outcome's, whether or not its summary can be
    // written (a full disk must not say "nothing was written to Alma" after the letters went).
    match print_summary(result, json) {
        Ok(()) => Ok(exit),
        Err(e @ Error::Output { .. }) => {
            crate::out::errln!(
                "warning: run {} {}, and its summary could not be written to standard output ({}); `alma-cohort show {}` prints it",
                result.run_id,
                result.outcome(),
                alma_cohort_core::error::chain(&e),
                result.run_id
            );
            Ok(exit)
        }
        Err(e) => Err(e),
    }
}

fn print_summary(result: &RunResult, json: bool) -> Result<(), Error> {
    if json {
        outln!(
            "{}",
            serde_json::to_string(result).map_err(|e| Error::Usage(e.to_string()))?
        )?;
    } else {
        let protected = match result.protected_ids.len() {
            0 => String::new(),
            n => format!(", {n} protected since the plan and taken out"),
        };
        let left = match result.left_out.len() {
            0 => String::new(),
            n => {
                let mut counts = std::collections::BTreeMap::new();
                for l in &result.left_out {
                    *counts.entry(l.reason.as_str()).or_insert(0) += 1;
                }
                let parts: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
                format!(", {n} left out ({})", parts.join(", "))
            }
        };
        outln!(
            "run {} {}: set {} ({}), {} members added, {} not in Alma{protected}{left}; job {} instance {} ended {}",
            result.run_id,
            result.outcome(),
            result.set_name.as_deref().unwrap_or("-"),
            result.set_id.as_deref().unwrap_or("-"),
            result.members_added.unwrap_or(0),
            result.invalid_ids.len(),
            result.job_id.as_deref().unwrap_or("-"),
            result.job_instance_id.as_deref().unwrap_or("-"),
            result.job_status.as_deref().unwrap_or("-"),
        )?;
        for w in &result.warnings {
            outln!("  warning: {w}")?;
        }
        for (code, desc) in &result.alerts {
            outln!("  alert {code}: {desc}")?;
        }
        for (code, desc, value) in &result.counters {
            outln!("  {}: {value}", if desc.is_empty() { code } else { desc })?;
        }
        if let Some(r) = &result.report_file {
            outln!("report: {r}")?;
        }
    }
    Ok(())
}

/// Says which journal a read-only command reads (on stderr: stdout carries data), and a journal
/// an earlier version left in the working folder.
pub fn say_journal(settings: &Settings, path: &std::path::Path) {
    eprintln!("journal: {}", path.display());
    if let Some(legacy) = settings.legacy_journal() {
        eprintln!(
            "note: an earlier alma-cohort left a journal in {}; pass --state-dir {} to read it",
            legacy.join("journal.sqlite").display(),
            legacy.display()
        );
    }
}

/// A spinner with the elapsed time and the pages read; hidden with `--quiet`, and by indicatif
/// itself when stderr is not a terminal.
pub fn progress_bar(quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} {elapsed_precise} {msg}").unwrap_or(ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

/// A bar with the users looked up, the rate and the time left; hidden like the spinner.
fn lookup_bar(quiet: bool, total: usize) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template(
            "looking up in Alma {bar:30} {pos}/{len} users · {per_sec} · {elapsed_precise}, about {eta} left",
        )
        .unwrap_or(ProgressStyle::default_bar()),
    );
    bar.enable_steady_tick(Duration::from_millis(200));
    bar
}

pub fn show_page(bar: &ProgressBar, p: Progress) {
    let rate = p.rows as f64 / p.elapsed.as_secs_f64().max(1e-3);
    bar.set_message(format!("page {} · {} rows · {rate:.0} rows/s", p.pages, p.rows));
}

/// One JSON value on stdout.
pub fn print_json(value: &impl serde::Serialize) -> Result<(), Error> {
    outln!(
        "{}",
        serde_json::to_string(value).map_err(|e| Error::Usage(e.to_string()))?
    )?;
    Ok(())
}
