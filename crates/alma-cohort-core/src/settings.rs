//! Command line + environment → validated settings for talking to Alma: base URL, key, timeouts,
//! pace. The key is read only when a command needs it, held as a secret, and never printed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

use alma_client::{ClientConfig, RetryPolicy};

/// An Alma region, mapped to its official API host by [`region_url`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Region {
    Na,
    Eu,
    Ap,
    Aps,
    Ca,
    Cn,
}

/// The regions' names, as `--region` and a profile's `region` take them.
pub const REGIONS: [&str; 6] = ["na", "eu", "ap", "aps", "ca", "cn"];

impl std::str::FromStr for Region {
    type Err = String;

    /// One of [`REGIONS`], in any case.
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "na" => Region::Na,
            "eu" => Region::Eu,
            "ap" => Region::Ap,
            "aps" => Region::Aps,
            "ca" => Region::Ca,
            "cn" => Region::Cn,
            _ => return Err(format!("region {s:?} is not one of {}", REGIONS.join(", "))),
        })
    }
}

/// What the caller (the command line: flags and environment) chose; [`Settings::from_options`]
/// adds the profile's and the defaults, and checks each.
#[derive(Clone, Debug, Default)]
pub struct Options {
    pub base_url: Option<String>,
    pub region: Option<Region>,
    pub state_dir: Option<PathBuf>,
    pub profile: Option<String>,
    pub api_key_file: Option<PathBuf>,
    /// Seconds; see [`Settings`].
    pub request_timeout: f64,
    pub poll_interval: f64,
    pub job_deadline: f64,
    pub pace: Option<u32>,
    pub max_retries: usize,
    pub retry_delay: f64,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Alma address\nhint: pass --base-url URL (or set ALMA_BASE_URL), or --region na|eu|ap|aps|ca|cn")]
    NoBaseUrl,
    #[error("no API key\nhint: set ALMA_API_KEY, or pass --api-key-file PATH (a file holding only the key)")]
    NoKey,
    #[error("cannot read the API key file {path}: {source}")]
    KeyFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the API key file {path} is empty")]
    EmptyKeyFile { path: PathBuf },
    #[error("the API key file {path} can be read by other users (mode {mode:o})\nhint: chmod 600 {path}")]
    KeyFileOpen { path: PathBuf, mode: u32 },
    #[error("--{flag} must be a number of seconds above 0 and at most 31622400 (a year), got {value}")]
    BadSeconds { flag: &'static str, value: f64 },
    #[error("--pace must be at least 1 request per second")]
    BadPace,
    #[error("cannot read the config file {path}: {message}")]
    Config { path: PathBuf, message: String },
    #[error(
        "{message}; nothing was done\nhint: ask whoever runs this installation (docs/scheduling.md, \"Two people\")"
    )]
    Service { message: String },
    #[error("{0}")]
    BadStateDir(String),
    #[error("no profile {name:?} in {path}\nhint: the profiles there are: {known}")]
    NoProfile { name: String, path: PathBuf, known: String },
    #[error(
        "--profile {name}: no config file (looked for {path} and /etc/alma-cohort/alma-cohort.toml)\nhint: create /etc/alma-cohort/alma-cohort.toml (or alma-cohort.toml here) with a [profiles.{name}] table, or set ALMA_COHORT_CONFIG"
    )]
    NoConfig { name: String, path: PathBuf },
    #[error(
        "no per-user state folder is known on this machine (no HOME?)\nhint: pass --state-dir DIR or set ALMA_COHORT_STATE"
    )]
    NoStateDir,
    #[error(
        "a journal of an earlier alma-cohort is in {legacy} (its default state dir was relative to the working folder), and the state dir {default} holds none; nothing was done\nhint: to go on with that journal, pass --state-dir {legacy_dir} (or set ALMA_COHORT_STATE, or state_dir in the profile); to make it the default, move it there: `mkdir -p {parent} && mv {legacy_dir} {default_dir}` (if {default_dir} exists, it holds no run: remove it first, rm -r {default_dir}) — one institution should have one journal (docs/operating.md, \"Where the journal lives\")",
        legacy = legacy_dir.join("journal.sqlite").display(),
        default = default_dir.display(),
        legacy_dir = legacy_dir.display(),
        default_dir = default_dir.display(),
        parent = default_dir.parent().map(|p| p.display().to_string()).unwrap_or_default()
    )]
    LegacyJournal { legacy_dir: PathBuf, default_dir: PathBuf },
}

/// The platform's per-user state folder for alma-cohort: `$XDG_STATE_HOME/alma-cohort` (else
/// `~/.local/state/alma-cohort`) on Linux, the local application data folder on macOS and
/// Windows; one folder a profile below it. Never the working folder.
pub fn default_state_dir(profile: Option<&str>) -> Result<PathBuf, Error> {
    let base = dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .ok_or(Error::NoStateDir)?
        .join("alma-cohort");
    Ok(match profile {
        Some(name) => base.join(name),
        None => base,
    })
}

/// Where earlier versions kept the journal by default: `./.alma-cohort[/PROFILE]`.
fn legacy_state_dir(profile: Option<&str>) -> PathBuf {
    let base = PathBuf::from(".alma-cohort");
    match profile {
        Some(name) => base.join(name),
        None => base,
    }
}

/// `[retention] days` when the config file says nothing.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;
/// The longest retention a config or `--older-than` may give (ten years).
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// The longest duration a flag takes, in seconds (a year).
pub const MAX_SECONDS: f64 = 366.0 * 24.0 * 3600.0;

/// `alma-cohort.toml`: one profile per institution, and how long run files are kept.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub profiles: std::collections::BTreeMap<String, Profile>,
    pub retention: Option<Retention>,
    pub service: Option<Service>,
}

/// `[service]`: this installation resets passwords only through signed, approved plans of the
/// queries in one folder. Whoever reaches the service account (through `sudo -u`, say) can then
/// neither run a query of their own nor point the service's key at another address: `run
/// --execute` is refused, `plan --save`, `approve` and `apply` take only queries in `queries_dir`
/// whose `[approval]` names an `allowed_signers` file, and `--base-url`, `--region`,
/// `--api-key-file` and `--state-dir` (and their environment variables) are refused — the profile
/// says them.
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Service {
    pub queries_dir: PathBuf,
}

/// `[retention]`: a run's files (cohort, reports) are deleted this many days after it ended.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Retention {
    pub days: i64,
}

fn read_config(path: &Path) -> Result<ConfigFile, Error> {
    let text = crate::text::read_text(path, crate::text::limit::SMALL).map_err(|e| Error::Config {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .and_then(|s| text.get(..s.start))
            .map(|before| before.matches('\n').count() + 1);
        let line_text = line.and_then(|l| text.lines().nth(l - 1));
        Error::Config {
            path: path.to_path_buf(),
            message: crate::text::plain_toml_message(e.message(), line_text),
        }
    })
}

/// `[retention] days` of the config file (when there is one), else
/// [`DEFAULT_RETENTION_DAYS`]; refused outside 1..=3650.
pub fn retention_days() -> Result<u32, Error> {
    use self::{DEFAULT_RETENTION_DAYS as DEFAULT_DAYS, MAX_RETENTION_DAYS as MAX_DAYS};
    let path = config_path();
    if !path.is_file() {
        return Ok(DEFAULT_DAYS);
    }
    match read_config(&path)?.retention {
        None => Ok(DEFAULT_DAYS),
        Some(Retention { days }) if (1..=i64::from(MAX_DAYS)).contains(&days) => Ok(days as u32),
        Some(Retention { days }) => Err(Error::Config {
            path,
            message: format!(
                "[retention] days is {days}; give a number of days from 1 to {MAX_DAYS} (run files are deleted that long after the run ended; default {DEFAULT_DAYS})"
            ),
        }),
    }
}

#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub display_name: Option<String>,
    pub region: Option<String>,
    pub base_url: Option<String>,
    pub key_file: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub pace: Option<u32>,
    /// A folder a reviewer group may read (setgid, mode 2750): `plan --save` copies each plan's
    /// `report.html` and canonical text (`plan.txt`) there, group-readable, and nothing else.
    pub review_dir: Option<PathBuf>,
}

/// The service account's config, in a fixed place: found whatever the working folder, also
/// behind `sudo -u`, which resets the environment.
pub const SYSTEM_CONFIG: &str = "/etc/alma-cohort/alma-cohort.toml";

/// The config file: `ALMA_COHORT_CONFIG`; else `alma-cohort.toml` in the working folder when
/// there is one; else [`SYSTEM_CONFIG`] when there is one; else (for the message that none was
/// found) `alma-cohort.toml`.
pub fn config_path() -> PathBuf {
    if let Some(path) = std::env::var_os("ALMA_COHORT_CONFIG") {
        return PathBuf::from(path);
    }
    let here = PathBuf::from("alma-cohort.toml");
    // Behind sudo the working folder is the caller's: a config there is not the service's.
    let system = Path::new(SYSTEM_CONFIG).is_file();
    if !system || (here.is_file() && !crate::journal::switched_by_sudo()) {
        here
    } else {
        PathBuf::from(SYSTEM_CONFIG)
    }
}

/// The config file's `[service]`, when the config file is there and has one.
pub fn service_policy() -> Result<Option<(PathBuf, Service)>, Error> {
    let path = config_path();
    if !path.is_file() {
        return Ok(None);
    }
    let file = read_config(&path)?;
    Ok(file.service.map(|mut service| {
        if service.queries_dir.is_relative() {
            let folder = path
                .parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            service.queries_dir = folder.join(&service.queries_dir);
        }
        (path, service)
    }))
}

/// The named profile, with relative paths resolved against the config file's folder.
pub fn load_profile(name: &str) -> Result<Profile, Error> {
    let path = config_path();
    if !path.is_file() {
        return Err(Error::NoConfig {
            name: name.to_string(),
            path,
        });
    }
    let file = read_config(&path)?;
    let mut profile = file.profiles.get(name).cloned().ok_or_else(|| Error::NoProfile {
        name: name.to_string(),
        path: path.clone(),
        known: file.profiles.keys().cloned().collect::<Vec<_>>().join(", "),
    })?;
    let folder = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    for (key, value) in [
        ("state_dir", &profile.state_dir),
        ("key_file", &profile.key_file),
        ("review_dir", &profile.review_dir),
    ] {
        if value.as_ref().is_some_and(|p| p.as_os_str().is_empty()) {
            return Err(Error::Config {
                path: path.clone(),
                message: format!("[profiles.{name}] {key} is empty; name a folder or file, or leave the key out"),
            });
        }
    }
    let resolve = |p: PathBuf| if p.is_absolute() { p } else { folder.join(p) };
    profile.key_file = profile.key_file.map(resolve);
    profile.state_dir = profile.state_dir.map(resolve);
    profile.review_dir = profile.review_dir.map(resolve);
    Ok(profile)
}

#[derive(Clone, Debug)]
pub struct Settings {
    pub base_url: Option<String>,
    pub state_dir: PathBuf,
    pub request_timeout: Duration,
    pub poll_interval: Duration,
    pub job_deadline: Duration,
    pub pace: u32,
    pub retry: RetryPolicy,
    /// The profile in use and its display name.
    pub profile: Option<(String, Option<String>)>,
    /// The state dir is the platform default (no --state-dir, ALMA_COHORT_STATE or profile's).
    pub state_dir_is_default: bool,
    /// The profile's `review_dir`: where a reviewer group reads saved plans.
    pub review_dir: Option<PathBuf>,
    /// The config's `[service]`: the config file and its `queries_dir`.
    pub service: Option<(PathBuf, PathBuf)>,
    key_file: Option<PathBuf>,
    profile_key_file: Option<PathBuf>,
}

impl Settings {
    pub fn from_options(g: &Options) -> Result<Self, Error> {
        let service = service_policy()?;
        if let Some((config, _)) = &service {
            let given = [
                ("--base-url (ALMA_BASE_URL)", g.base_url.is_some()),
                ("--region", g.region.is_some()),
                ("--api-key-file", g.api_key_file.is_some()),
                ("--state-dir (ALMA_COHORT_STATE)", g.state_dir.is_some()),
            ];
            if let Some((flag, _)) = given.iter().find(|(_, set)| *set) {
                return Err(Error::Service {
                    message: format!(
                        "{flag}: this installation's config {} has [service]: the Alma address, key and journal are its profile's, never a command's",
                        config.display()
                    ),
                });
            }
        }
        let seconds = |flag, value: f64| {
            // At most a year: a larger value (1e30) is a typo, and would not fit a Duration.
            if value.is_finite() && value > 0.0 && value <= MAX_SECONDS {
                Ok(Duration::from_secs_f64(value))
            } else {
                Err(Error::BadSeconds { flag, value })
            }
        };
        let profile = match &g.profile {
            Some(name) => Some((name.clone(), load_profile(name)?)),
            None => None,
        };
        let from_profile = profile.as_ref().map(|(_, p)| p.clone()).unwrap_or_default();
        let pace = g.pace.or(from_profile.pace).unwrap_or(25);
        if pace == 0 {
            return Err(Error::BadPace);
        }
        if !(g.retry_delay.is_finite() && g.retry_delay >= 0.0 && g.retry_delay <= MAX_SECONDS) {
            return Err(Error::BadSeconds {
                flag: "retry-delay",
                value: g.retry_delay,
            });
        }
        let first_delay = Duration::from_secs_f64(g.retry_delay);
        let retry = RetryPolicy {
            first_delay,
            // Zero means no waiting at all (tests); otherwise waits double up to 30 s.
            max_delay: if first_delay.is_zero() {
                Duration::ZERO
            } else {
                first_delay.max(Duration::from_secs(30))
            },
            max_retries: g.max_retries,
            jitter: !first_delay.is_zero(),
        };
        let profile_region = match from_profile.region.as_deref() {
            None => None,
            Some(r) => Some(r.parse::<Region>().map_err(|message| Error::Config {
                path: config_path(),
                message,
            })?),
        };
        let base_url = g
            .base_url
            .clone()
            .filter(|u| !u.trim().is_empty())
            .or_else(|| g.region.map(region_url))
            .or(from_profile.base_url.clone())
            .or_else(|| profile_region.map(region_url));
        let chosen = g
            .state_dir
            .clone()
            .filter(|d| !d.as_os_str().is_empty())
            .or(from_profile.state_dir.clone());
        // A state dir named with a control character (a newline from a script) is a mistake.
        if let Some(d) = &chosen
            && let Some(c) = d.to_string_lossy().chars().find(|c| c.is_control())
        {
            return Err(Error::BadStateDir(format!(
                "the state dir's name holds the control character U+{:04X}; check --state-dir, ALMA_COHORT_STATE or the profile's state_dir",
                c as u32
            )));
        }
        let state_dir_is_default = chosen.is_none();
        let state_dir = match chosen {
            Some(d) => d,
            // Each institution keeps its own journal.
            None => default_state_dir(profile.as_ref().map(|(n, _)| n.as_str()))?,
        };
        Ok(Self {
            base_url,
            state_dir,
            request_timeout: seconds("request-timeout", g.request_timeout)?,
            poll_interval: seconds("poll-interval", g.poll_interval)?,
            job_deadline: seconds("job-deadline", g.job_deadline)?,
            pace,
            retry,
            profile: profile.map(|(name, p)| (name, p.display_name)),
            state_dir_is_default,
            review_dir: from_profile.review_dir.clone(),
            service: service.map(|(config, service)| (config, service.queries_dir)),
            key_file: g.api_key_file.clone(),
            profile_key_file: from_profile.key_file,
        })
    }

    /// Under `[service]`: refuses `what` (`run --execute`) outright, or a query that is not in
    /// `queries_dir` or whose approvals are not signed. `None` for `what` checks a query only.
    pub fn service_allows(
        &self,
        what: Option<&str>,
        query: &Path,
        spec: Option<&crate::query::ApprovalSpec>,
    ) -> Result<(), Error> {
        let Some((config, dir)) = &self.service else {
            return Ok(());
        };
        if let Some(what) = what {
            return Err(Error::Service {
                message: format!(
                    "{what}: this installation's config {} has [service]: passwords are reset only through signed, approved plans (plan --save, approve, apply)",
                    config.display()
                ),
            });
        }
        let inside = match (query.canonicalize(), dir.canonicalize()) {
            (Ok(q), Ok(d)) => q.starts_with(&d),
            _ => false,
        };
        if !inside {
            return Err(Error::Service {
                message: format!(
                    "{}: this installation takes only the queries in {} ([service] queries_dir in {})",
                    query.display(),
                    dir.display(),
                    config.display()
                ),
            });
        }
        if let Some(spec) = spec
            && (spec.required == 0 || spec.allowed_signers.is_none())
        {
            return Err(Error::Service {
                message: format!(
                    "{}: under [service] ({}), a query needs signed approvals ([approval] required and allowed_signers)",
                    query.display(),
                    config.display()
                ),
            });
        }
        Ok(())
    }

    /// The key: from `--api-key-file` when given, else `ALMA_API_KEY`, else the profile's key file.
    pub fn api_key(&self) -> Result<SecretString, Error> {
        if let Some(path) = &self.key_file {
            return read_key_file(path);
        }
        match std::env::var("ALMA_API_KEY") {
            Ok(k) if !k.trim().is_empty() => Ok(SecretString::from(k.trim().to_string())),
            _ => match &self.profile_key_file {
                Some(path) => read_key_file(path),
                None => Err(Error::NoKey),
            },
        }
    }

    pub fn client_config(&self) -> Result<ClientConfig, Error> {
        let base = self.base_url.clone().ok_or(Error::NoBaseUrl)?;
        let mut config = ClientConfig::new(base, self.api_key()?);
        config.request_timeout = self.request_timeout;
        config.pace_per_second = self.pace;
        config.retry = self.retry.clone();
        Ok(config)
    }
}

impl Settings {
    /// A journal left in `./.alma-cohort` by an earlier version while the default state dir holds
    /// none: the folder, so that it is never silently ignored.
    pub fn legacy_journal(&self) -> Option<PathBuf> {
        if !self.state_dir_is_default {
            return None;
        }
        let legacy = legacy_state_dir(self.profile.as_ref().map(|(n, _)| n.as_str()));
        // The new default "holds a journal" once a run is in it: a journal that a read-only
        // command or a plan created there is no choice made.
        // Unreadable, the old journal counts as holding runs and the new one as holding none:
        // the side that stops a run.
        if !crate::journal::holds_runs(&legacy).unwrap_or(true)
            || crate::journal::holds_runs(&self.state_dir).unwrap_or(false)
        {
            return None;
        }
        let same = match (legacy.canonicalize(), self.state_dir.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        };
        (!same).then(|| std::path::absolute(&legacy).unwrap_or(legacy))
    }

    /// For the commands that write the journal: stop (exit 2) over a legacy journal.
    pub fn refuse_legacy_journal(&self) -> Result<(), Error> {
        match self.legacy_journal() {
            Some(legacy_dir) => Err(Error::LegacyJournal {
                legacy_dir,
                default_dir: self.state_dir.clone(),
            }),
            None => Ok(()),
        }
    }

    /// How reports are paged: a still-loading report is asked again after waits that start at
    /// twice --retry-delay (2 s by default) and double up to 30 s.
    pub fn paging_policy(&self) -> alma_client::PagingPolicy {
        let first = self.retry.first_delay * 2;
        alma_client::PagingPolicy {
            empty_page_waits: RetryPolicy {
                first_delay: first,
                max_delay: if first.is_zero() {
                    Duration::ZERO
                } else {
                    first.max(Duration::from_secs(30))
                },
                max_retries: 10,
                jitter: !first.is_zero(),
            },
            ..alma_client::PagingPolicy::default()
        }
    }

    /// How jobs are followed: the first wait is --poll-interval, growing 1.5× up to 5 minutes.
    pub fn poll_policy(&self) -> alma_client::PollPolicy {
        let defaults = alma_client::PollPolicy::default();
        alma_client::PollPolicy {
            first: self.poll_interval,
            max: self.poll_interval.max(defaults.max),
            deadline: self.job_deadline,
            near_end: self.poll_interval.min(defaults.near_end),
            ..defaults
        }
    }
}

pub fn region_url(region: Region) -> String {
    let host = match region {
        Region::Na => "api-na.hosted.exlibrisgroup.com",
        Region::Eu => "api-eu.hosted.exlibrisgroup.com",
        Region::Ap => "api-ap.hosted.exlibrisgroup.com",
        Region::Aps => "api-aps.hosted.exlibrisgroup.com",
        Region::Ca => "api-ca.hosted.exlibrisgroup.com",
        Region::Cn => "api-cn.hosted.exlibrisgroup.com.cn",
    };
    format!("https://{host}")
}

fn read_key_file(path: &Path) -> Result<SecretString, Error> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path).map_err(|source| Error::KeyFile {
            path: path.to_path_buf(),
            source,
        })?;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(Error::KeyFileOpen {
                path: path.to_path_buf(),
                mode,
            });
        }
    }
    let text = crate::text::read_text(path, crate::text::limit::KEY).map_err(|source| Error::KeyFile {
        path: path.to_path_buf(),
        source,
    })?;
    let key = text.trim();
    if key.is_empty() {
        return Err(Error::EmptyKeyFile {
            path: path.to_path_buf(),
        });
    }
    Ok(SecretString::from(key.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn regions_map_to_official_hosts() {
        assert_eq!(region_url(Region::Eu), "https://api-eu.hosted.exlibrisgroup.com");
        assert_eq!(region_url(Region::Cn), "https://api-cn.hosted.exlibrisgroup.com.cn");
    }

    #[cfg(unix)]
    #[test]
    fn key_files_must_be_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("keyfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key");
        std::fs::write(&path, "the-key\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = read_key_file(&path).unwrap_err().to_string();
        assert!(e.contains("chmod 600") && !e.contains("the-key"), "{e}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_key_file(&path).unwrap().expose_secret(), "the-key");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
