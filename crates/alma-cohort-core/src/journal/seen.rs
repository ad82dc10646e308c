//! What a run saw before it wrote to Alma, as the journal keeps it with the run and each saved
//! plan: the letter that carries the password ([`LetterSeen`]), and who the eligibility rules left
//! out and why ([`Checked`]). `pipeline::eligibility` makes them; `resume` and `apply` read them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::query::EligibilitySpec;

/// The letter as a run saw it before writing: journaled with the run and each saved plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LetterSeen {
    pub code: String,
    pub name: String,
    pub enabled: bool,
    pub channel: String,
    pub customized: String,
    pub updated_by: String,
    pub update_date: String,
    /// The notification type the job sends (`SEND_Notification_To_User_Value`).
    pub notification: String,
    /// The XSL has a branch for `notification` that prints `notification_data/temp_password`.
    pub password_branch: bool,
    /// SHA-256 of code, enabled, channel and the XSL.
    pub digest: String,
    /// Why the letter cannot carry the password; `None` when it can.
    pub problem: Option<String>,
    pub checked_at: String,
}

impl LetterSeen {
    /// One line for the plan and `doctor`.
    pub fn line(&self) -> String {
        let state = match &self.problem {
            None => "ok".to_string(),
            Some(p) => format!("CANNOT CARRY THE PASSWORD: {p}"),
        };
        let changed = match (self.updated_by.is_empty(), self.update_date.is_empty()) {
            (true, true) => String::new(),
            _ => format!(
                "; last changed by {} on {}",
                if self.updated_by.is_empty() {
                    "?"
                } else {
                    &self.updated_by
                },
                if self.update_date.is_empty() {
                    "?"
                } else {
                    &self.update_date
                }
            ),
        };
        format!(
            "{} ({}): {state}; enabled {}, channel {}, {} branch printing temp_password{changed}; digest {}",
            self.code,
            if self.name.is_empty() { "no name" } else { &self.name },
            self.enabled,
            if self.channel.is_empty() {
                "(none)"
            } else {
                &self.channel
            },
            if self.password_branch {
                format!("a {}", self.notification)
            } else {
                format!("no {}", self.notification)
            },
            short(&self.digest)
        )
    }
}

fn short(digest: &str) -> &str {
    &digest[..digest.len().min(12)]
}

/// Why a member is left out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Alma has no user by this ID.
    NotInAlma,
    /// Not an INTERNAL account: no password in Alma.
    External,
    /// Status not ACTIVE.
    Inactive,
    /// `expiry_date` before today.
    Expired,
    /// A role other than Patron (staff, vendor, Ex Libris accounts).
    StaffRole,
    /// No preferred email address: the letter cannot arrive.
    NoEmail,
    /// Notified by a run within `[guard] cooldown_days`.
    RecentlyReset,
    /// An exclusion file protects them since the plan.
    Protected,
    /// Alma would not show the user (a refusal other than "not found"): nobody can say whether
    /// the letter reaches them.
    Unreadable,
    /// Added to the run's set, then taken out of it in Alma (Manage Sets) by staff.
    RemovedInAlma,
}

impl Reason {
    pub fn describe(self) -> &'static str {
        match self {
            Reason::NotInAlma => "not in Alma (no such user)",
            Reason::External => "not INTERNAL (no password)",
            Reason::Inactive => "not ACTIVE",
            Reason::Expired => "expired",
            Reason::StaffRole => "a role other than Patron",
            Reason::NoEmail => "no preferred email",
            Reason::RecentlyReset => "notified within the cooldown",
            Reason::Protected => "protected since the plan",
            Reason::Unreadable => "Alma would not show them",
            Reason::RemovedInAlma => "removed from the set in Alma",
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NotInAlma => "not_in_alma",
            Reason::External => "external",
            Reason::Inactive => "inactive",
            Reason::Expired => "expired",
            Reason::StaffRole => "staff_role",
            Reason::NoEmail => "no_email",
            Reason::RecentlyReset => "recently_reset",
            Reason::Protected => "protected",
            Reason::Unreadable => "unreadable",
            Reason::RemovedInAlma => "removed_in_alma",
        }
    }
}

/// A member left out, with what Alma (or the report) said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeftOut {
    pub id: String,
    pub reason: Reason,
    pub alma_said: String,
    /// Left out by a lookup after the run started (`resume`, `apply`): taken out of the set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub since_plan: bool,
}

/// The rules a run applies, as the query set them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rules {
    pub lookup: bool,
    pub staff_include: bool,
    pub require_email: bool,
    pub max_age_hours: f64,
}

impl Rules {
    pub fn of(spec: &EligibilitySpec) -> Self {
        Rules {
            lookup: spec.lookup,
            staff_include: spec.staff_include,
            require_email: spec.require_email,
            max_age_hours: spec.max_age_hours,
        }
    }

    /// The rules that are on, in words.
    pub fn describe(&self) -> String {
        let mut on = vec!["in Alma", "INTERNAL", "ACTIVE", "not expired"];
        if self.require_email {
            on.push("a preferred email");
        }
        if !self.staff_include {
            on.push("no role but Patron");
        }
        let mut s = on.join(", ");
        if self.staff_include {
            s.push_str(" (staff included: [eligibility] staff = \"include\")");
        }
        if !self.require_email {
            s.push_str(" (no email required: [eligibility] require_email = false)");
        }
        s
    }
}

/// What the eligibility stage found: journaled with the run (`Execution::eligibility`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checked {
    pub rules: Rules,
    /// `alma` (live lookups), `report` (the report's columns), or `none` (not checked: a list
    /// file's plan without Alma).
    pub source: String,
    /// When the lookups were made (RFC 3339); `None` when nothing was checked.
    pub checked_at: Option<String>,
    pub looked_up: usize,
    /// HTTP requests the lookups took (retries included) and their wall time.
    pub calls: u64,
    pub seconds: f64,
    pub left_out: Vec<LeftOut>,
}

impl Checked {
    /// Counts per reason, in the reasons' order.
    pub fn counts(&self) -> BTreeMap<Reason, usize> {
        let mut counts = BTreeMap::new();
        for l in &self.left_out {
            *counts.entry(l.reason).or_insert(0) += 1;
        }
        counts
    }

    /// The plan's lines.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        let how = match self.source.as_str() {
            "alma" => format!(
                "each member looked up in Alma ({} users, {} calls, {:.1} s)",
                self.looked_up, self.calls, self.seconds
            ),
            "report" => {
                "from the report's columns ([eligibility] lookup = false): the report may lag Alma by days".into()
            }
            "skipped" => "NOT LOOKED UP: the cohort is larger than [guard] max_members, which refuses it".into(),
            _ => "NOT CHECKED: a list file's plan makes no call to Alma (plan --save and run --execute look every member up)".into(),
        };
        lines.push(format!("Eligibility {how}; rules: {}", self.rules.describe()));
        for (reason, n) in self.counts() {
            lines.push(format!("{:<44}{:>9}", format!("  left out: {}", reason.describe()), n));
        }
        lines
    }

    /// Older than `max_age_hours` (or never checked): `resume` and `apply` look up again. `now`
    /// is the later of this machine's clock and Alma's, so that neither clock being behind
    /// keeps old lookups.
    pub fn stale(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        match self
            .checked_at
            .as_deref()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        {
            Some(at) => {
                self.rules.max_age_hours <= 0.0
                    || (now - at.with_timezone(&chrono::Utc)).num_milliseconds() as f64 / 3_600_000.0
                        > self.rules.max_age_hours
            }
            None => self.rules.lookup,
        }
    }
}
