//! `alma-cohort doctor`: a preflight checklist, one line per check, each failure with its fix —
//! before the first real run, and whenever something changed (a new key, a new report).

use std::time::Duration;

use crate::error::Error;
use crate::journal::{Journal, SCHEMA_VERSION};
use crate::pipeline;
use crate::query;
use crate::settings::Settings;
use alma_client::probe::Access;
use alma_client::{AlmaClient, ClientConfig, Error as AlmaError, RetryPolicy};

/// Fewer calls left today than this is a failed check: a run needs a few hundred at least.
const QUOTA_FLOOR: u64 = 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    /// Passed, with something the operator should fix (printed `warn`).
    pub warn: bool,
    pub detail: String,
    pub fix: Option<String>,
}

fn ok(name: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        warn: false,
        detail: detail.into(),
        fix: None,
    }
}

fn warn(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: true,
        warn: true,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

fn fail(name: &str, detail: impl Into<String>, fix: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        ok: false,
        warn: false,
        detail: detail.into(),
        fix: Some(fix.into()),
    }
}

/// Every check, in order: the profile, the state dir, the address, the key and its areas, the
/// query file (with `query` and its `--param` values) and its report, the day's API quota.
pub async fn checks(settings: &Settings, query: Option<&std::path::Path>, params: &[String]) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some((name, display)) = &settings.profile {
        out.push(ok(
            "profile",
            format!(
                "{name}{}",
                display.as_ref().map(|d| format!(" ({d})")).unwrap_or_default()
            ),
        ));
    }
    out.push(state_dir_check(settings));
    let Some(base) = settings.base_url.clone() else {
        out.push(fail(
            "Alma address",
            "none given",
            "pass --base-url URL or --region na|eu|ap|aps|ca|cn, or use a --profile",
        ));
        return out;
    };
    let key = settings.api_key();
    // Why there is no key: none given, or a key file refused (too open, missing, empty).
    let key_problem = key.as_ref().err().map(|e| match e {
        crate::settings::Error::NoKey => (
            "none given".to_string(),
            "set ALMA_API_KEY, pass --api-key-file PATH, or give key_file in the profile".to_string(),
        ),
        e => {
            let text = e.to_string();
            let (what, hint) = text.split_once("\nhint: ").unwrap_or((text.as_str(), ""));
            (
                what.to_string(),
                if hint.is_empty() {
                    "fix the key file, or set ALMA_API_KEY".to_string()
                } else {
                    hint.to_string()
                },
            )
        }
    });
    let mut config = ClientConfig::new(base.clone(), key.unwrap_or_else(|_| "no-key".to_string().into()));
    config.retry = RetryPolicy::immediate(1);
    config.request_timeout = settings.request_timeout.min(Duration::from_secs(30));
    config.pace_per_second = settings.pace;
    let client = match AlmaClient::new(config) {
        Ok(c) => c,
        Err(e) => {
            out.push(fail(
                "Alma address",
                e.to_string(),
                "give scheme, host and port only, e.g. https://api-eu.hosted.exlibrisgroup.com",
            ));
            return out;
        }
    };
    // Reachable: any HTTP answer at all counts, even a refusal of the key.
    let started = std::time::Instant::now();
    let reach = client.test_address().await;
    match &reach {
        Err(e @ AlmaError::Transport { .. }) => {
            out.push(fail(
                "Alma reachable",
                format!("{base}: {}", crate::error::chain(e)),
                "check --base-url/--region, the network and any proxy",
            ));
            return out;
        }
        _ => out.push(ok(
            "Alma reachable",
            format!("{base} answered in {:.2} s", started.elapsed().as_secs_f64()),
        )),
    }
    if let Some((what, hint)) = key_problem {
        out.push(fail("API key", what, hint));
        return out;
    }
    let areas = [
        ("key may read Analytics", Access::AnalyticsRead, "Analytics — Read-only"),
        (
            "key may read Configuration",
            Access::ConfigurationRead,
            "Configuration — Read-only (or Read/write)",
        ),
        (
            "key may write Configuration",
            Access::ConfigurationWrite,
            "Configuration — Read/write (sets and jobs need it)",
        ),
        ("key may read Users", Access::UsersRead, "Users — Read-only"),
    ];
    let mut area_checks = Vec::new();
    for (name, access, grant) in areas {
        let result = client.test_access(access).await;
        area_checks.push(match result {
            // The test endpoints' answer body is not documented: any 2xx says yes.
            Ok(_) => ok(name, "yes"),
            // …unless it is a web page: something other than Alma answers at this address.
            Err(AlmaError::Unexpected {
                status, content_type, ..
            }) if (200..300).contains(&status) && !content_type.contains("html") => ok(name, "yes"),
            Err(e) if e.alma_code().is_some_and(|(status, _)| status == 404)
                || matches!(e, AlmaError::Unexpected { status: 404, .. }) =>
            {
                fail(
                    name,
                    crate::error::chain(&e),
                    "Alma has no such endpoint at this address: the base URL looks wrong (give scheme and host only, e.g. https://api-eu.hosted.exlibrisgroup.com, or --region)",
                )
            }
            Err(e) => fail(
                name,
                crate::error::chain(&e),
                format!("in the Ex Libris Developer Network, give this key the API permission \"{grant}\" for the production environment"),
            ),
        });
    }
    let accepted = area_checks.iter().any(|c| c.ok);
    let all_missing = area_checks
        .iter()
        .all(|c| c.fix.as_deref().is_some_and(|f| f.contains("base URL looks wrong")));
    out.push(if accepted {
        ok("API key accepted", "Alma knows the key")
    } else if all_missing {
        fail(
            "API key accepted",
            "not checked: no Alma API answers at this address",
            "check --base-url or --region (scheme and host only, e.g. https://api-eu.hosted.exlibrisgroup.com)",
        )
    } else {
        fail(
            "API key accepted",
            "Alma refused the key for every area",
            "check the key (ALMA_API_KEY / key file) and that it belongs to this institution and region",
        )
    });
    out.extend(area_checks);
    match query {
        Some(path) => out.extend(query_checks(&client, path, params).await),
        // Without a query: the default letter, for the default notification.
        None => out.push(letter_check(&client, query::DEFAULT_LETTER, query::DEFAULT_NOTIFICATION).await),
    }
    out.push(match client.quota_remaining() {
        Some(n) if n >= QUOTA_FLOOR => ok("daily API quota", format!("{n} calls left today")),
        Some(n) => fail(
            "daily API quota",
            format!("only {n} calls left today"),
            "wait for the quota to reset at midnight (institution time), or lower other API use",
        ),
        None => ok("daily API quota", "not reported by this Alma"),
    });
    out
}

/// Whether the query's approvals are a control: signed, against an `allowed_signers` file that
/// this account (the one applying plans) cannot change. `None` when the query needs no approval.
fn approval_check(spec: &query::ApprovalSpec) -> Option<Check> {
    if spec.required == 0 {
        return None;
    }
    let Some(file) = &spec.allowed_signers else {
        return Some(warn(
            "approvals",
            format!(
                "{} approval(s) required, recorded by OS account only: anyone who can act as this account can approve in another's name",
                spec.required
            ),
            "sign approvals: [approval] allowed_signers = \"/etc/alma-cohort/allowed_signers\" (owned by root, listing each approver's SSH key; docs/operating.md)",
        ));
    };
    if let Err(e) = crate::pipeline::signers::read(file) {
        return Some(fail(
            "approvals",
            crate::error::chain(&e),
            "fix the allowed_signers file",
        ));
    }
    if writable_by_me(file) {
        return Some(warn(
            "approvals",
            format!(
                "{} can be changed by this account: whoever runs as it could list their own key",
                file.display()
            ),
            format!(
                "give it to another owner: chown root:root {0} && chmod 644 {0}",
                file.display()
            ),
        ));
    }
    Some(ok(
        "approvals",
        format!(
            "{} signed approval(s) required; {} lists the keys and this account cannot change it",
            spec.required,
            file.display()
        ),
    ))
}

/// Whether this process could write `path` (or the folder it is in: a replaced file is a changed
/// one).
fn writable_by_me(path: &std::path::Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let can_write = |p: &std::path::Path| {
            std::ffi::CString::new(p.as_os_str().as_bytes())
                // SAFETY: a NUL-terminated path; access only reads it.
                .map(|c| unsafe { libc::access(c.as_ptr(), libc::W_OK) } == 0)
                .unwrap_or(false)
        };
        // (root may write anything: a service running as root can always change the file.)
        can_write(path) || path.parent().is_some_and(can_write)
    }
    #[cfg(not(unix))]
    {
        std::fs::metadata(path).is_ok_and(|m| !m.permissions().readonly())
    }
}

async fn query_checks(client: &AlmaClient, path: &std::path::Path, params: &[String]) -> Vec<Check> {
    let mut out = Vec::new();
    let spec = match query::parse_params(params)
        .and_then(|p| query::load(path, &p))
        .map_err(Error::from)
    {
        Ok(spec) => spec,
        Err(e) => {
            out.push(fail(
                "query file",
                crate::error::chain(&e),
                "fix the query file (alma-cohort validate shows the same)",
            ));
            return out;
        }
    };
    out.push(ok("query file", format!("{} is valid", path.display())));
    if let Some(check) = approval_check(&spec.approval) {
        out.push(check);
    }
    match &spec.origin {
        query::Origin::File(file) => out.push(ok(
            "report",
            format!(
                "not checked: the query reads its IDs from the file {}, not from an Analytics report (`validate` checks the file)",
                file.path.display()
            ),
        )),
        query::Origin::Report(report) => match client.report_headings(&pipeline::report_query(report)).await {
            Ok(headings) => {
                let refs: Vec<&str> = headings.iter().map(String::as_str).collect();
                out.push(match pipeline::check_report_headings(&spec, &refs) {
                    Ok(()) => ok("report", format!("{} has the headings the query names", report.path)),
                    Err(e) => fail(
                        "report",
                        crate::error::chain(&e),
                        "fix the heading in the query file, or add the column to the saved report",
                    ),
                });
            }
            Err(e) => out.push(fail(
                "report",
                format!("{}: {}", report.path, crate::error::chain(&e)),
                "check the report's path in Alma Analytics (Catalog → the report → Properties) and that the key may read Analytics",
            )),
        },
    }
    // The letter and the job, exactly as a run asks before its first write.
    let found = match pipeline::execute::execution(&spec, "check", None) {
        Ok(execution) => pipeline::eligibility::preflight(client, &execution).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(preflight) => {
            for g in preflight.guards() {
                out.push(match g.ok {
                    Some(false) => fail(g.guard, g.detail.replace("; nothing was written to Alma", ""), g.hint),
                    _ => ok(g.guard, g.detail),
                });
            }
        }
        Err(e) => out.push(fail(
            "letter",
            crate::error::chain(&e),
            "the letter and the job could not be read: check the network and that the key may read Configuration",
        )),
    }
    out
}

/// The letter that carries the password, for `notification`: enabled, by email, printing it.
async fn letter_check(client: &AlmaClient, code: &str, notification: &str) -> Check {
    match pipeline::eligibility::check_letter(client, code, notification).await {
        Ok(letter) => match &letter.problem {
            None => ok("letter", letter.line()),
            Some(p) => fail(
                "letter",
                format!("letter {code}: {p}"),
                pipeline::eligibility::LETTER_HINT,
            ),
        },
        Err(e) => fail(
            "letter",
            format!("letter {code}: {}", crate::error::chain(&e)),
            "check the network and that the key may read Configuration",
        ),
    }
}

fn state_dir_check(settings: &Settings) -> Check {
    let dir = &settings.state_dir;
    // First: an earlier version's journal, whether the new default is made yet or not.
    if let Some(legacy) = settings.legacy_journal() {
        return fail(
            "state dir",
            format!(
                "an earlier alma-cohort left a journal in {}, and the state dir {} holds none: run and resume stop until you choose",
                legacy.join("journal.sqlite").display(),
                dir.display()
            ),
            {
                let word = |p: &std::path::Path| crate::text::shell_word(&p.display().to_string());
                format!(
                    "pass --state-dir {} to go on with it, or move it: `mkdir -p {} && mv {} {}`",
                    word(&legacy),
                    dir.parent().map(word).unwrap_or_default(),
                    word(&legacy),
                    word(dir)
                )
            },
        );
    }
    // doctor creates nothing: a state dir not made yet is checked through the folder it would be
    // made in (a probe file written there and removed at once).
    if !dir.exists() {
        let Some(parent) = dir.ancestors().skip(1).find(|p| p.is_dir()) else {
            return fail(
                "state dir",
                format!("{} does not exist, nor any folder above it", dir.display()),
                "pass --state-dir to a folder you can write",
            );
        };
        let probe = parent.join(format!(".alma-cohort-doctor-{}", std::process::id()));
        return match crate::files::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe)) {
            Ok(()) => ok(
                "state dir",
                format!(
                    "{} does not exist yet: the first plan or run makes it (private, 0700) in {}, which is writable",
                    dir.display(),
                    parent.display()
                ),
            ),
            Err(e) => fail(
                "state dir",
                format!(
                    "{} does not exist, and {} is not writable: {e}",
                    dir.display(),
                    parent.display()
                ),
                "pass --state-dir to a folder you can write, or fix its permissions",
            ),
        };
    }
    let probe = dir.join(".doctor-write-test");
    let writable = crate::files::write(&probe, b"ok").and_then(|()| std::fs::remove_file(&probe));
    if let Err(e) = writable {
        return fail(
            "state dir",
            format!("{} is not writable: {e}", dir.display()),
            "pass --state-dir to a folder you can write, or fix its permissions",
        );
    }
    // Only a journal that is not there is "no journal yet": a folder or a link loop in its place
    // is opened below, and fails.
    if std::fs::metadata(dir.join("journal.sqlite")).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound) {
        return ok(
            "state dir",
            format!(
                "{} is writable; it holds no journal yet (the first plan or run makes it)",
                dir.display()
            ),
        );
    }
    match Journal::open(dir).and_then(|j| j.schema_version()) {
        Ok(v) if v == SCHEMA_VERSION => {
            // Patron data (cohort.csv, reports) and the journal: not for other accounts.
            let journal = dir.join("journal.sqlite");
            let open: Vec<String> = [dir.as_path(), journal.as_path()]
                .into_iter()
                .filter_map(|p| match crate::files::open_to_others(p) {
                    Ok(bits) if bits != 0 => Some(format!("{} (group/other bits {bits:03o})", p.display())),
                    _ => None,
                })
                .collect();
            if open.is_empty() {
                ok(
                    "state dir",
                    format!(
                        "{} is writable and private; its journal {} is at schema {v}",
                        dir.display(),
                        journal.display()
                    ),
                )
            } else {
                warn(
                    "state dir",
                    format!(
                        "{} is writable, its journal {} at schema {v}, but other accounts on this machine can read patron data in it: {}",
                        dir.display(),
                        journal.display(),
                        open.join(", ")
                    ),
                    format!("chmod -R go-rwx {}", dir.display()),
                )
            }
        }
        Ok(v) => fail(
            "state dir",
            format!("journal schema {v}, expected {SCHEMA_VERSION}"),
            "run a matching alma-cohort",
        ),
        Err(e) => fail(
            "state dir",
            crate::error::chain(&e),
            "use a state dir made by this or an older alma-cohort",
        ),
    }
}
