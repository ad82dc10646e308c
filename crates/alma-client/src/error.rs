//! Errors of the Alma client: what was called, what Alma (or the network) answered.

use std::fmt;

use super::rowset::ParseError;

/// One call to Alma, as errors name it: method and path, never the query string (which can
/// carry an `apikey` in other clients, and long filters) and never the key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call {
    pub method: &'static str,
    pub path: String,
}

impl fmt::Display for Call {
    /// The method and path, a user's ID left out (`GET /almaws/v1/users/…`): calls are named in
    /// errors and logs, which must carry no patron's ID.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path.split_once("/users/") {
            Some((before, _)) => write!(f, "{} {before}/users/…", self.method),
            None => write!(f, "{} {}", self.method, self.path),
        }
    }
}

/// What a failed write left behind in Alma.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteFate {
    /// Alma surely did not act (it refused, or never got the request).
    NotApplied,
    /// Alma surely acted (a 2xx came back) though the answer could not be read.
    Applied,
    /// Alma may or may not have acted: look before doing anything else.
    Unknown,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Alma (or its gateway) answered with an error body: status, Alma code, message, trackingId.
    #[error("{call}: Alma answered HTTP {status} {code}: {message}{}", tracking(.tracking_id))]
    Api {
        call: Call,
        status: u16,
        code: String,
        message: String,
        tracking_id: Option<String>,
    },

    /// The institution's daily API quota is used up: nothing more can be done today.
    #[error(
        "{call}: Alma's daily API quota for this institution is used up (HTTP 429 DAILY_THRESHOLD)\n\
         hint: the quota resets at midnight (institution time); run again after that — a journaled run can be resumed"
    )]
    DailyThreshold { call: Call },

    /// The request did not get a whole answer: connection refused or dropped, timeout, body cut off.
    #[error("{call}: {what}: {source}")]
    Transport {
        call: Call,
        what: &'static str,
        /// False when Alma cannot have acted on the request (the connection was never made).
        maybe_served: bool,
        #[source]
        source: reqwest::Error,
    },

    /// An answer that is neither what was asked for nor one of Alma's error shapes (e.g. an HTML
    /// page from a proxy).
    #[error("{call}: unexpected answer (HTTP {status}, {content_type}): {snippet}")]
    Unexpected {
        call: Call,
        status: u16,
        content_type: String,
        snippet: String,
    },

    /// A report page that could not be read.
    #[error("report page {page} could not be read: {source}")]
    Page {
        page: usize,
        #[source]
        source: ParseError,
    },

    /// Alma does not find the report at this path (its answer: 400 `INTERNAL_SERVER_ERROR` "Path
    /// not found (…)", the code not a number).
    #[error(
        "report {path:?} was not found in Alma Analytics: {source}\nhint: check the report's path in Alma Analytics (Catalog → the report → Properties → Location) and that the key's institution has it; the query's [report] path must be the whole catalog path"
    )]
    ReportNotFound {
        path: String,
        #[source]
        source: Box<Error>,
    },

    /// A whole-report condition: still loading for too long, a first page without a token, …
    #[error("report {path:?}: {message}")]
    Report { path: String, message: String },

    /// A list (sets, members, job instances) that cannot be trusted whole: it ended before its
    /// `total_record_count`, or an item in it has no id or name. A decision made on part of a
    /// list (who was mailed, whose set is whose) could send a second letter.
    #[error(
        "the list GET {path} {message}\nhint: Alma's answer looks wrong or changed while it was read; nothing was decided on it. Try again in a few minutes; if it persists, look at the list in Alma (Admin > Manage Sets or Monitor Jobs) and ask Ex Libris"
    )]
    List { path: String, message: String },

    /// The base URL or the key cannot be used to build requests.
    #[error("invalid client setting: {0}")]
    Setting(String),
}

fn tracking(id: &Option<String>) -> String {
    match id {
        Some(t) => format!(" (trackingId {t})"),
        None => String::new(),
    }
}

impl Error {
    /// Whether repeating the same call may succeed: transport failures, 429
    /// PER_SECOND_THRESHOLD, and 5xx answers — except 420033 ("no more rows"), which Alma sends
    /// with HTTP 500 and which no retry can fix.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport { .. } => true,
            Error::Api { status, code, .. } => {
                (*status == 429 && code == "PER_SECOND_THRESHOLD") || (*status >= 500 && code != "420033")
            }
            Error::Unexpected { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }

    /// Whether Alma may have acted on the request although we got no (whole) answer. Such a
    /// GET of a report page must not be repeated with the same token: the page may be gone.
    pub fn maybe_served(&self) -> bool {
        matches!(self, Error::Transport { maybe_served: true, .. })
    }

    /// What a failed write did in Alma: the one rule the pipeline and the HTTP layer use to decide
    /// whether a write may be sent again and whether its effect must be looked up.
    pub fn fate(&self) -> WriteFate {
        match self {
            // Alma answered with an error of its own (4xx, 429 thresholds): it did not act.
            Error::Api { status, .. } if *status < 500 => WriteFate::NotApplied,
            Error::DailyThreshold { .. } | Error::Setting(_) => WriteFate::NotApplied,
            Error::Transport {
                maybe_served: false, ..
            } => WriteFate::NotApplied,
            // A 2xx whose body we could not read: Alma took the request.
            Error::Unexpected { status, .. } if (200..300).contains(status) => WriteFate::Applied,
            // A 4xx page from something in front of Alma (a proxy refusing the request).
            Error::Unexpected { status, .. } if (400..500).contains(status) => WriteFate::NotApplied,
            // 5xx (Alma's or a gateway's), timeouts, dropped connections, cut-off bodies.
            _ => WriteFate::Unknown,
        }
    }

    /// Refusals of `op=run` known to mean Alma started no job: the execution thresholds, a missing
    /// or empty parameter, a bad job id or operation (Alma's codes, shared/alma-api.md §5.2), and the
    /// gateway's own refusals before Alma (no connection made, the per-second and daily thresholds,
    /// a key that may not do this).
    pub fn job_not_started(&self) -> bool {
        match self.alma_code() {
            Some((_, code)) => matches!(
                code,
                "402215"
                    | "402216"
                    | "402220"
                    | "402221"
                    | "402222"
                    | "402223"
                    | "402228"
                    | "402229"
                    | "402231"
                    | "PER_SECOND_THRESHOLD"
                    | "DAILY_THRESHOLD"
                    | "UNAUTHORIZED"
            ),
            None => matches!(
                self,
                Error::Transport {
                    maybe_served: false,
                    ..
                } | Error::DailyThreshold { .. }
                    | Error::Setting(_)
            ),
        }
    }

    /// May a write that failed this way be sent again as it is? Only when Alma surely did not act
    /// and a repeat can succeed (no connection made, 429 PER_SECOND_THRESHOLD).
    pub fn write_may_repeat(&self) -> bool {
        self.fate() == WriteFate::NotApplied && self.is_retryable()
    }

    /// The error of a call about one user, without what Alma wrote in it: its message or an
    /// answer's opening may name the user, and errors reach logs, the journal and reports.
    pub(crate) fn about_a_user(self) -> Self {
        match self {
            Error::Api {
                call,
                status,
                code,
                tracking_id,
                ..
            } => Error::Api {
                call,
                status,
                code,
                message: "(Alma's message not shown: it may name the user)".into(),
                tracking_id,
            },
            Error::Unexpected {
                call,
                status,
                content_type,
                ..
            } => Error::Unexpected {
                call,
                status,
                content_type,
                snippet: "(not shown: a user's record)".into(),
            },
            e => e,
        }
    }

    /// The HTTP status and Alma error code, where Alma gave them.
    pub fn alma_code(&self) -> Option<(u16, &str)> {
        match self {
            Error::Api { status, code, .. } => Some((*status, code)),
            Error::ReportNotFound { source, .. } => source.alma_code(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api(status: u16, code: &str) -> Error {
        Error::Api {
            call: Call {
                method: "GET",
                path: "/almaws/v1/x".into(),
            },
            status,
            code: code.into(),
            message: "m".into(),
            tracking_id: Some("E01-1".into()),
        }
    }

    #[test]
    fn retry_decisions() {
        assert!(api(429, "PER_SECOND_THRESHOLD").is_retryable());
        assert!(api(503, "GENERAL_ERROR").is_retryable());
        assert!(!api(500, "420033").is_retryable());
        assert!(!api(400, "402263").is_retryable());
        assert!(!api(429, "DAILY_THRESHOLD").is_retryable());
    }

    #[test]
    fn only_known_refusals_mean_the_job_did_not_start() {
        for code in [
            "402222",
            "402223",
            "402228",
            "402229",
            "402216",
            "PER_SECOND_THRESHOLD",
            "UNAUTHORIZED",
        ] {
            assert!(api(400, code).job_not_started(), "{code}");
        }
        // 60347: a job runs on the set — maybe this run's; any other 4xx: not known to mean "not started".
        for code in ["60347", "402224", "60107", "GENERAL_ERROR"] {
            assert!(!api(400, code).job_not_started(), "{code}");
        }
        assert!(!api(503, "GENERAL_ERROR").job_not_started());
    }

    #[test]
    fn messages_name_the_call_status_code_and_tracking_id() {
        let text = api(400, "60107").to_string();
        assert_eq!(
            text,
            "GET /almaws/v1/x: Alma answered HTTP 400 60107: m (trackingId E01-1)"
        );
    }
}
