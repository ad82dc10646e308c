//! The command line (clap types only, no logic). The commands and flags are a contract: tests
//! outside this repository drive the tool exactly this way.

use std::path::PathBuf;

use alma_cohort_core::settings::{self, Region};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "alma-cohort",
    version,
    about = "Reset the passwords of a cohort of Alma users defined by an Analytics report",
    after_long_help = EXIT_CODES
)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// The exit codes, as README.md's table gives them (`--help` and the man page).
const EXIT_CODES: &str = "\
Exit codes:
  0  done: the job completed, every user of the cohort in the set
  1  the job failed, or completed with warnings (read the warning: lines and report.md)
  2  usage, an invalid query, list or exclusion file, no --yes without a terminal, standard
     output that cannot be written: nothing was written to Alma
  3  Alma or the network failed: `alma-cohort resume RUN_ID` when a run was recorded, else
     run the command again
  4  refused by a guard or the journal (already done, another run going, the letter cannot
     carry the password, …): the message says why and what to run";

/// The options of the Alma client and the journal, which `sim`, `completions` and `man` do not
/// use: accepted there (they are global), but not listed in those commands' help.
const UNUSED_BY_TOOLS: [&str; 11] = [
    "base_url",
    "region",
    "state_dir",
    "profile",
    "api_key_file",
    "request_timeout",
    "poll_interval",
    "job_deadline",
    "pace",
    "max_retries",
    "retry_delay",
];

/// The options given on the command line that a suggested command needs as well, as shell
/// words: `--profile main --state-dir /srv/alma-cohort`. (From the environment, they are there
/// for the suggested command too.)
pub fn given_options(matches: &clap::ArgMatches) -> String {
    let mut words = Vec::new();
    for id in ["profile", "state_dir", "base_url", "region", "api_key_file"] {
        let given = matches.value_source(id) == Some(clap::parser::ValueSource::CommandLine);
        if let (true, Some(value)) = (given, matches.get_raw(id).and_then(|mut v| v.next())) {
            words.push(format!("--{}", id.replace('_', "-")));
            words.push(alma_cohort_core::text::shell_word(&value.to_string_lossy()));
        }
    }
    words.join(" ")
}

impl Command {
    /// Whether the command writes to Alma or the journal: a standard output closed by its reader
    /// does not end it quietly as if it were done (exit 0), since it may stop before its work.
    pub fn writes(&self) -> bool {
        match self {
            Command::Run(a) => a.execute,
            Command::Apply(a) => a.execute,
            Command::Plan(a) => a.save,
            Command::Resume(_) | Command::Abandon(_) | Command::Approve(_) | Command::Withdraw(_) => true,
            _ => false,
        }
    }
}

/// The command line as parsed and as its help, completions and man page show it.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    // A subcommand's own argument of a global's name is not given the global one: a hidden copy
    // accepts the option there and keeps it out of the help.
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| UNUSED_BY_TOOLS.contains(&a.get_id().as_str()))
        .map(|a| a.clone().global(false).hide(true))
        .collect();
    for sub in ["sim", "completions", "man"] {
        cmd = cmd.mut_subcommand(sub, |s| s.args(hidden.clone()));
    }
    cmd
}

#[derive(Debug, Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    /// Alma API base URL: scheme, host and port only (the client appends /almaws/v1/...)
    #[arg(
        long,
        global = true,
        env = "ALMA_BASE_URL",
        hide_env_values = true,
        conflicts_with = "region"
    )]
    pub base_url: Option<String>,
    /// Alma region, mapped to the official API host
    #[arg(long, global = true, value_parser = region_parser())]
    pub region: Option<Region>,
    /// Folder for the journal and per-run outputs [default: the per-user state folder, e.g. ~/.local/state/alma-cohort[/PROFILE]]
    #[arg(long, global = true, env = "ALMA_COHORT_STATE", hide_env_values = true)]
    pub state_dir: Option<PathBuf>,
    /// Institution profile from alma-cohort.toml (or the file in ALMA_COHORT_CONFIG); flags and env override it
    #[arg(long, global = true, env = "ALMA_COHORT_PROFILE", hide_env_values = true, value_parser = profile_name)]
    pub profile: Option<String>,
    /// File holding the API key (otherwise ALMA_API_KEY)
    #[arg(long, global = true)]
    pub api_key_file: Option<PathBuf>,
    /// More logging (-v debug, -vv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count, conflicts_with = "quiet")]
    pub verbose: u8,
    /// Less logging (warnings and errors only)
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Log line format on stderr
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Colour in the text logs: auto (only on a terminal, never with NO_COLOR set), always, never
    #[arg(
        long,
        global = true,
        value_enum,
        env = "ALMA_COHORT_COLOR",
        hide_env_values = true,
        default_value_t = ColorChoice::Auto
    )]
    pub color: ColorChoice,
    /// Seconds one HTTP request to Alma may take, answer included
    #[arg(
        long,
        global = true,
        env = "ALMA_COHORT_REQUEST_TIMEOUT",
        hide_env_values = true,
        default_value_t = 120.0
    )]
    pub request_timeout: f64,
    /// First wait between job-instance polls, in seconds (it grows from there up to a minute, and
    /// shortens to 2 s as the job's progress says its end is near)
    #[arg(
        long,
        global = true,
        env = "ALMA_COHORT_POLL_INTERVAL",
        hide_env_values = true,
        default_value_t = 5.0
    )]
    pub poll_interval: f64,
    /// Give up following a job after this many seconds (it keeps running in Alma; `resume` follows it again)
    #[arg(
        long,
        global = true,
        env = "ALMA_COHORT_JOB_DEADLINE",
        hide_env_values = true,
        default_value_t = 43_200.0
    )]
    pub job_deadline: f64,
    /// Requests per second to Alma (Alma allows 25 per institution, across all its clients) [default: 25]
    #[arg(long, global = true, env = "ALMA_COHORT_PACE", hide_env_values = true)]
    pub pace: Option<u32>,
    /// Repeats of a failed call that may succeed later (throttling, 5xx, network)
    #[arg(
        long,
        global = true,
        env = "ALMA_COHORT_MAX_RETRIES",
        hide_env_values = true,
        value_parser = max_retries,
        default_value_t = 6
    )]
    pub max_retries: usize,
    /// First wait before a repeat, in seconds; it doubles (with jitter) up to 30 s
    #[arg(
        long,
        global = true,
        env = "ALMA_COHORT_RETRY_DELAY",
        hide_env_values = true,
        default_value_t = 1.0
    )]
    pub retry_delay: f64,
}

/// `--region`: one of the library's region names, listed in `--help`.
/// A profile's name: it names a folder under the state folder, so letters, digits, `_`, `-` and
/// `.` only (not first), at most 64 — never `..`, a `/` or an empty name.
fn profile_name(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 64
        && !s.starts_with('.')
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(s.to_string())
    } else {
        Err("a profile name is 1-64 letters, digits, '_', '-' or '.' (not first), e.g. main".into())
    }
}

/// Repeats of a failed call: at most 100 (each waits longer; more would be days).
fn max_retries(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n <= 100 => Ok(n),
        _ => Err(format!("{s:?} is not a number of repeats from 0 to 100")),
    }
}

fn region_parser() -> impl clap::builder::TypedValueParser<Value = Region> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(settings::REGIONS).try_map(|s| s.parse::<Region>())
}

impl GlobalArgs {
    /// The flags and environment the library's settings are made from.
    pub fn options(&self) -> settings::Options {
        settings::Options {
            base_url: self.base_url.clone(),
            region: self.region,
            state_dir: self.state_dir.clone(),
            profile: self.profile.clone(),
            api_key_file: self.api_key_file.clone(),
            request_timeout: self.request_timeout,
            poll_interval: self.poll_interval,
            job_deadline: self.job_deadline,
            pace: self.pace,
            max_retries: self.max_retries,
            retry_delay: self.retry_delay,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour only when stderr is a terminal and NO_COLOR is not set
    Auto,
    Always,
    Never,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check a query file, and its report's headings when Alma is reachable
    Validate(ValidateArgs),
    /// Extract + transform, print the cohort summary; makes no write call to Alma
    Plan(PlanArgs),
    /// Without --execute, the same as plan; with --execute, the whole pipeline: set, members, job
    Run(RunArgs),
    /// Continue an interrupted run from the journal
    Resume(ResumeArgs),
    /// End an unfinished run on the operator's word (recorded in the journal with who and why)
    #[command(
        after_help = "The global Alma client options (--base-url, --api-key-file, --pace, …) do nothing here: abandon only writes the journal."
    )]
    Abandon(AbandonArgs),
    /// List the runs in the journal
    Runs(ListArgs),
    /// One run in full
    Show(ShowArgs),
    /// The simulator in-process + an example query, executed end to end
    Demo(DemoArgs),
    /// Preflight checklist: Alma reachable, key and its permissions, the query's report and job, state dir, quota
    Doctor(DoctorArgs),
    /// Print a shell completion script
    Completions(CompletionsArgs),
    /// Print the man page (roff), or with --dir write it and one page per command
    Man(ManArgs),
    /// Page a query's report to the end and write every row (CSV, Parquet, or CSV on stdout)
    Extract(ExtractArgs),
    /// Serve the local Alma simulator (analytics, sets, jobs, users) until interrupted
    #[command(
        after_help = "The global Alma client options (--base-url, --api-key-file, --pace, --state-dir, …) do nothing here: the simulator is the Alma they point at."
    )]
    Sim(Box<SimCommand>),
    /// Delete the files (cohort, reports) of runs that ended more than [retention] days ago; the
    /// journal keeps their record
    Prune(PruneArgs),
    /// List the saved plans (plan --save) and where each is: saved, approved, applied, expired, superseded, withdrawn
    Plans(PlansArgs),
    /// Approve a saved plan (recorded with who and when)
    Approve(ApproveArgs),
    /// Execute a saved plan exactly: its frozen cohort, without reading the report again
    Apply(ApplyArgs),
    /// Withdraw a saved plan (approved or not) so that it is never applied (recorded with who and why)
    Withdraw(WithdrawArgs),
}

#[derive(Debug, Args)]
pub struct WithdrawArgs {
    /// The saved plan's id (see `alma-cohort plans`)
    pub plan_id: String,
    /// Why (recorded with the plan: `plans --json`, and the refusal of a later apply)
    #[arg(long)]
    pub reason: String,
}

#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The saved plan's id (see `alma-cohort plans`)
    pub plan_id: String,
    /// Why, or what was checked (recorded with the approval)
    #[arg(long)]
    pub note: Option<String>,
    /// Record this name instead of the OS account (only where the query's [approval] allow_as = true)
    #[arg(long = "as", value_name = "NAME")]
    pub as_name: Option<String>,
    /// Sign the plan's canonical text with this SSH key (through ssh-keygen -Y sign, so an agent
    /// or a passphrase works): a private key, or a .pub whose key is in ssh-agent
    #[arg(long, value_name = "PATH", conflicts_with = "signature")]
    pub ssh_key: Option<PathBuf>,
    /// Record a signature made elsewhere (ssh-keygen -Y sign -n alma-cohort) over the text
    /// `alma-cohort plans show PLAN_ID` prints (`-`: standard input, e.g. `--signature - < plan.txt.sig` behind sudo)
    #[arg(long, value_name = "FILE")]
    pub signature: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// The saved plan's id (see `alma-cohort plans`); or --query and --period for the one
    /// approved plan of that query and period (for a timer)
    #[arg(required_unless_present = "query", conflicts_with = "query")]
    pub plan_id: Option<String>,
    /// With --period: the query file (or the query's name) whose approved plan to apply
    #[arg(long, requires = "period")]
    pub query: Option<String>,
    /// With --query: the plan's period
    #[arg(long, requires = "query")]
    pub period: Option<String>,
    /// Really do it: create the set, add the plan's members, run the job
    #[arg(long)]
    pub execute: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Delete the files of runs that ended more than DAYS days ago (default: the config file's
    /// [retention] days, else 90)
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub older_than: Option<u32>,
    /// Say what would be deleted, and delete nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
}

/// A query file and the values for its placeholders.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// The query file (TOML)
    pub query: PathBuf,
    /// Fill a {NAME} placeholder in the query's filter or where: NAME=VALUE
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub query: QueryArgs,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Print the summary as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// The period this run belongs to (e.g. 2026-spring; compared trimmed, in lower case, with
    /// spaces and '_' as '-'); a query runs once per period, whichever machine or journal runs it
    #[arg(long)]
    pub period: Option<String>,
    /// Save the plan in the journal (its cohort frozen) for `approve` and `apply PLAN_ID`
    #[arg(long)]
    pub save: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Really do it: create the set, add the members, run the job
    #[arg(long)]
    pub execute: bool,
    /// Do not ask for confirmation (required when stdin is not a terminal)
    #[arg(long)]
    pub yes: bool,
    /// Run even if this query already completed for --period (or failed after its job ran, or
    /// Alma holds its set from another installation), and reset users notified within the
    /// cooldown; never over an unfinished run
    #[arg(long)]
    pub force: bool,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run's id (see `alma-cohort runs`)
    pub run_id: String,
    /// Accepted for symmetry with run; a resumed run was confirmed when it started
    #[arg(long)]
    pub yes: bool,
    /// Print the result as one JSON object on stdout
    #[arg(long)]
    pub json: bool,
    /// The operator looked in Alma's Monitor Jobs and found no instance of this run's job: submit
    /// it again if Alma still lists none (only for a run stopped with "Alma may have started the job")
    #[arg(long)]
    pub resubmit_job: bool,
    /// The operator looked in Alma's Manage Sets and found no set of this run's name: create it
    /// again if Alma still lists none (only for a run stopped with "Alma may have created the set")
    #[arg(long)]
    pub recreate_set: bool,
    /// The operator checked the IDs Alma refused (runs/RUN/refused.csv) and lets the run go on
    /// with the users in the set (only for a run stopped by [guard] max_refused_ratio)
    #[arg(long)]
    pub accept_refused: bool,
    /// This installation drives the run although its set's stamp names another host or journal
    /// (the machine renamed, a container's new hostname, the state dir moved): recorded in the
    /// journal; never for a copied journal whose original still runs
    #[arg(long)]
    pub take_over: bool,
}

#[derive(Debug, Args)]
pub struct AbandonArgs {
    /// The run's id (see `alma-cohort runs`)
    pub run_id: String,
    /// Why the run is abandoned (recorded in the journal, shown by `show`)
    #[arg(long)]
    pub reason: String,
    /// Say that you checked Alma's Monitor Jobs for this run's job instance (required once the
    /// job may have been submitted)
    #[arg(long)]
    pub i_checked_alma: bool,
}

/// `plans` (the list), or `plans show PLAN_ID`.
#[derive(Debug, Args)]
pub struct PlansArgs {
    #[command(flatten)]
    pub list: ListArgs,
    #[command(subcommand)]
    pub action: Option<PlansAction>,
}

#[derive(Debug, Subcommand)]
pub enum PlansAction {
    /// Print a saved plan's canonical text (what an approval approves and a signature signs):
    /// the intent, the files' hashes, the letter's digest, who planned it, every ID; then its
    /// digest, who approved it and with which key
    Show(PlanShowArgs),
}

#[derive(Debug, Args)]
pub struct PlanShowArgs {
    /// The saved plan's id (see `alma-cohort plans`)
    pub plan_id: String,
    /// Print JSON on stdout (the text, its digest and the approvals)
    #[arg(long)]
    pub json: bool,
    /// Print only the canonical text, exactly (to sign it elsewhere: `... | ssh-keygen -Y sign -n alma-cohort -f KEY`)
    #[arg(long)]
    pub text: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run's id (see `alma-cohort runs`)
    pub run_id: String,
    /// Print JSON on stdout
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// A query file whose report and job to check too
    pub query: Option<PathBuf>,
    /// Fill a {NAME} placeholder in the query's filter or where: NAME=VALUE
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write alma-cohort.1 and a page for each command (alma-cohort-plan.1, …) into this folder,
    /// e.g. ~/.local/share/man/man1, instead of printing alma-cohort.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seeded users in the demo institution (at most 2 000 000)
    #[arg(long, default_value_t = 20_000, value_parser = alma_sim::cli::user_count)]
    pub users: usize,
    /// Keep the demo's folder (query, journal, report.html) in the temp dir instead of removing it
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    #[command(flatten)]
    pub query: QueryArgs,
    /// Where to write: FILE.csv, FILE.parquet, or - for CSV on stdout
    #[arg(long)]
    pub out: PathBuf,
}

/// `alma-cohort sim`: the simulator's own flags, and the library's people to rehearse with.
#[derive(Debug, clap::Args)]
pub struct SimCommand {
    #[command(flatten)]
    pub sim: alma_sim::cli::SimArgs,
    /// Create these people in the simulator (a list file or an exported report: .txt, .csv,
    /// .xlsx, .xls, .ods, read as a query's [file] is), so that your own list or report can be
    /// rehearsed end to end; columns User Group, Account Type (or User Type), Status, Preferred
    /// Email and Expiry Date are used when present
    #[arg(long, value_name = "FILE")]
    pub users_from: Option<std::path::PathBuf>,
    /// The heading of the IDs' column in --users-from (a .txt file's optional first line)
    #[arg(
        long,
        value_name = "HEADING",
        default_value = "Primary Identifier",
        requires = "users_from"
    )]
    pub users_id_column: String,
}
