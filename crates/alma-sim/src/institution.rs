//! The seeded institution: users, manual jobs and the saved reports over them. The same
//! `--users N --seed S` gives the same institution every time.

use std::collections::HashMap;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountType {
    Internal,
    External,
}

impl AccountType {
    pub fn code(self) -> &'static str {
        match self {
            AccountType::Internal => "INTERNAL",
            AccountType::External => "EXTERNAL",
        }
    }
    pub fn desc(self) -> &'static str {
        match self {
            AccountType::Internal => "Internal",
            AccountType::External => "External",
        }
    }
}

/// How a user's ID is rendered in report cells: mostly as stored, a few the way real exports
/// mangle them (surrounding spaces, a different case).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdRendering {
    AsStored,
    PaddedWithSpaces,
    OtherCase,
}

#[derive(Clone, Debug)]
pub struct User {
    pub primary_id: String,
    pub first_name: String,
    pub last_name: String,
    pub email: Option<String>,
    pub user_group: &'static str,
    pub account_type: AccountType,
    pub active: bool,
    pub expiry_date: Option<NaiveDate>,
    pub id_rendering: IdRendering,
    /// Appears twice in join-based reports (duplicate rows come from report design).
    pub duplicated_in_joins: bool,
    /// Set by the Update/Notify Users job when it resets the password; never shown on GET.
    pub temp_password: Option<String>,
}

impl User {
    pub fn full_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name)
    }

    pub fn report_id(&self) -> String {
        match self.id_rendering {
            IdRendering::AsStored => self.primary_id.clone(),
            IdRendering::PaddedWithSpaces => format!(" {} ", self.primary_id),
            IdRendering::OtherCase => {
                if self.primary_id.chars().any(|c| c.is_ascii_uppercase()) {
                    self.primary_id.to_ascii_lowercase()
                } else {
                    self.primary_id.to_ascii_uppercase()
                }
            }
        }
    }
}

pub const USER_GROUPS: &[(&str, &str)] = &[
    ("UGRAD", "Undergraduate"),
    ("GRAD", "Graduate"),
    ("FACULTY", "Faculty"),
    ("STAFF", "Staff"),
    ("ALUMNI", "Alumni"),
    ("VISITOR", "Visitor"),
];

pub fn group_desc(code: &str) -> &'static str {
    USER_GROUPS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .unwrap_or("Unknown")
}

const FIRST_NAMES: &[&str] = &[
    "Ann", "Bob", "Chen", "Dana", "Eve", "Farid", "Grace", "Hiro", "Ines", "Jon", "Kemi", "Luis", "Mia", "Noor",
    "Olga", "Pat", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Vic", "Wen", "Xavi", "Yara", "Zoe", "Siobhán", "José",
    "Zoë",
];
const LAST_NAMES: &[&str] = &[
    "Lee",
    "Smith",
    "Garcia",
    "Okafor",
    "Nguyen",
    "Müller",
    "O'Brien",
    "D'Angelo",
    "van der Berg",
    "Kowalski",
    "Haddad",
    "Tanaka",
    "Silva",
    "Ivanova",
    "Brown",
    "Jensen",
    "Rossi",
    "Dubois",
    "Khan",
    "Murphy",
    "Smith & Jones",
    "Ó Súilleabháin",
];

/// A code-table value and its description, e.g. `("USERS", "Users")`.
pub type Code = (&'static str, &'static str);

/// A manual job as listed by `GET /conf/jobs`.
#[derive(Clone, Debug)]
pub struct JobDef {
    pub id: String,
    pub name: String,
    pub description: String,
    pub job_type: &'static str,
    pub category: Code,
    pub content: Code,
}

pub const UPDATE_NOTIFY_USERS: &str = "Update/Notify Users";

const OTHER_MANUAL_JOBS: &[(&str, Code, Code)] = &[
    ("Export Users", ("USERS", "Users"), ("USER", "User")),
    ("Delete Users", ("USERS", "Users"), ("USER", "User")),
    ("Update User Expiry Date", ("USERS", "Users"), ("USER", "User")),
    (
        "Export Physical Items",
        ("EXPORT", "Export"),
        ("ITEM", "Physical items"),
    ),
    (
        "Change Physical items information",
        ("PHYSICAL_INVENTORY", "Physical Inventory"),
        ("ITEM", "Physical items"),
    ),
    (
        "Export Bibliographic Records",
        ("EXPORT", "Export"),
        ("BIB_MMS", "All titles"),
    ),
    (
        "Withdraw items",
        ("PHYSICAL_INVENTORY", "Physical Inventory"),
        ("ITEM", "Physical items"),
    ),
    ("Add Users to Set", ("USERS", "Users"), ("USER", "User")),
    (
        "Recalculate Overdue and Lost Item Fines",
        ("FULFILLMENT", "Fulfillment"),
        ("ITEM", "Physical items"),
    ),
    (
        "Synchronize Holdings to OCLC",
        ("PUBLISHING", "Publishing"),
        ("BIB_MMS", "All titles"),
    ),
    ("Users Purge", ("USERS", "Users"), ("USER", "User")),
    (
        "Export Electronic Portfolios",
        ("EXPORT", "Export"),
        ("PORTFOLIO", "Electronic portfolios"),
    ),
];

/// 118 manual jobs (so a lookup by name must page with `limit=100`) and 10 scheduled ones; the
/// Update/Notify Users job sits on the second page, with an id that depends on the seed.
///
/// `long` (`--quirk job-list-long`) is the recorded list's shape instead (shared/real-alma §2,
/// an Esploro sandbox's 439 jobs): ids from `M3` to 16 digits (`M…0000561`), names with `/`,
/// `&` and leading digits, a look-alike "Update/Notify Users - 2019 copy", and Update/Notify
/// Users at position 423 (a 16-digit id), past the first 400.
pub fn jobs(seed: u64, long: bool) -> Vec<JobDef> {
    if long {
        return long_job_list(seed);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6a6f6273);
    let mut out = Vec::new();
    let mut used = std::collections::HashSet::new();
    let mut next_id = |rng: &mut ChaCha8Rng| loop {
        let id = format!("M{}", rng.random_range(10_000..99_999));
        if used.insert(id.clone()) {
            return id;
        }
    };
    for i in 0..118 {
        let (name, category, content) = if i == 104 {
            (UPDATE_NOTIFY_USERS.to_string(), ("USERS", "Users"), ("USER", "User"))
        } else {
            let (base, cat, con) = OTHER_MANUAL_JOBS[i % OTHER_MANUAL_JOBS.len()];
            let name = if i < OTHER_MANUAL_JOBS.len() {
                base.to_string()
            } else {
                format!("{base} - profile {i}")
            };
            (name, cat, con)
        };
        out.push(JobDef {
            id: next_id(&mut rng),
            description: format!("{name} (manual job)"),
            name,
            job_type: "MANUAL",
            category,
            content,
        });
    }
    for i in 0..10 {
        out.push(JobDef {
            id: format!("S{}", 1000 + i),
            name: format!("Scheduled maintenance {i}"),
            description: "Scheduled job".into(),
            job_type: "SCHEDULED",
            category: ("SYSTEM", "System"),
            content: ("NONE", "None"),
        });
    }
    out
}

fn long_job_list(seed: u64) -> Vec<JobDef> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6c6f6e67);
    let mut used = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(439);
    for i in 0..439usize {
        let id = loop {
            let id = match i % 4 {
                0 => format!("M{}", 3 + i),
                1 => format!("M5{:04}", rng.random_range(0..10_000)),
                2 => format!("M{}00000521", rng.random_range(100_000..999_999)),
                _ => format!("M{}0000561", rng.random_range(100_000_000..999_999_999)),
            };
            if used.insert(id.clone()) {
                break id;
            }
        };
        let (base, category, content) = OTHER_MANUAL_JOBS[i % OTHER_MANUAL_JOBS.len()];
        let name = match i {
            423 => UPDATE_NOTIFY_USERS.to_string(),
            17 => format!("{UPDATE_NOTIFY_USERS} - 2019 copy"),
            _ => match i % 5 {
                0 => format!("{i} {base}"),
                1 => format!("{base} / {} {i}", category.1),
                2 => format!("{base} & notify {i}"),
                _ => format!("{base} - profile {i}"),
            },
        };
        let (category, content) = if i == 423 {
            (("USERS", "Users"), ("USER", "User"))
        } else {
            (category, content)
        };
        out.push(JobDef {
            id,
            description: format!("{name} (manual job)"),
            name,
            job_type: "MANUAL",
            category,
            content,
        });
    }
    out
}

/// `n` users: numeric IDs with leading zeros, alphanumeric IDs in mixed case, INTERNAL and
/// EXTERNAL accounts, six groups, ACTIVE/INACTIVE, expiry dates, emails (some missing), and a
/// few awkward names and report renderings.
pub fn users(n: usize, seed: u64) -> Vec<User> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen: HashMap<String, ()> = HashMap::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let base = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap_or_default();
    while out.len() < n {
        let i = out.len();
        let first = FIRST_NAMES[rng.random_range(0..FIRST_NAMES.len())];
        let last = LAST_NAMES[rng.random_range(0..LAST_NAMES.len())];
        let id = match rng.random_range(0..100) {
            0..60 => format!("{:07}", rng.random_range(0..2_000_000u32)),
            60..85 => {
                let letters: String = (0..2).map(|_| (b'A' + rng.random_range(0..26u8)) as char).collect();
                format!("{letters}{:05}", rng.random_range(0..100_000u32))
            }
            85..95 => {
                let stem: String = format!("{}{}", &first[..first.len().min(1)], last)
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric())
                    .collect();
                format!("{}{}", stem.to_ascii_lowercase(), rng.random_range(1..1000u32))
            }
            _ => format!("Ext{:06}x", rng.random_range(0..1_000_000u32)),
        };
        if seen.insert(id.to_ascii_lowercase(), ()).is_some() {
            continue;
        }
        let user_group = USER_GROUPS[weighted(&mut rng, &[45, 20, 10, 12, 8, 5])].0;
        let account_type = if rng.random_range(0..100) < 78 {
            AccountType::Internal
        } else {
            AccountType::External
        };
        let email = (rng.random_range(0..100) >= 4).then(|| {
            let local: String = format!("{first}.{last}")
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            format!("{}{}@example.edu", local.to_ascii_lowercase(), i)
        });
        let expiry_date =
            (rng.random_range(0..100) >= 3).then(|| base + chrono::Duration::days(rng.random_range(0..1100)));
        let id_rendering = match rng.random_range(0..1000) {
            0..5 => IdRendering::PaddedWithSpaces,
            5..10 => IdRendering::OtherCase,
            _ => IdRendering::AsStored,
        };
        out.push(User {
            primary_id: id,
            first_name: first.to_string(),
            last_name: last.to_string(),
            email,
            user_group,
            account_type,
            active: rng.random_range(0..100) < 90,
            expiry_date,
            id_rendering,
            duplicated_in_joins: rng.random_range(0..1000) < 3,
            temp_password: None,
        });
    }
    out
}

/// Users with the primary IDs a library gives (a rehearsal with its own list): internal, active
/// UGRAD accounts with an email address, added after the seeded ones (an ID already there is
/// skipped).
pub fn named_users(ids: &[String], existing: &[User]) -> Vec<User> {
    let taken: std::collections::HashSet<String> = existing.iter().map(|u| u.primary_id.to_ascii_lowercase()).collect();
    let mut seen = std::collections::HashSet::new();
    ids.iter()
        .filter(|id| !taken.contains(&id.to_ascii_lowercase()) && seen.insert(id.to_ascii_lowercase()))
        .enumerate()
        .map(|(i, id)| User {
            primary_id: id.clone(),
            first_name: "Named".into(),
            last_name: format!("User {i}"),
            email: Some(format!("named{i}@example.edu")),
            user_group: USER_GROUPS[0].0,
            account_type: AccountType::Internal,
            active: true,
            expiry_date: NaiveDate::from_ymd_opt(2027, 6, 30),
            id_rendering: IdRendering::AsStored,
            duplicated_in_joins: false,
            temp_password: None,
        })
        .collect()
}

fn weighted(rng: &mut ChaCha8Rng, weights: &[u32]) -> usize {
    let total: u32 = weights.iter().sum();
    let mut pick = rng.random_range(0..total);
    for (i, w) in weights.iter().enumerate() {
        if pick < *w {
            return i;
        }
        pick -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_institution() {
        let a = users(500, 7);
        let b = users(500, 7);
        let c = users(500, 8);
        assert_eq!(
            a.iter().map(|u| &u.primary_id).collect::<Vec<_>>(),
            b.iter().map(|u| &u.primary_id).collect::<Vec<_>>()
        );
        assert_ne!(
            a.iter().map(|u| &u.primary_id).collect::<Vec<_>>(),
            c.iter().map(|u| &u.primary_id).collect::<Vec<_>>()
        );
        assert_eq!(
            jobs(7, false).iter().map(|j| &j.id).collect::<Vec<_>>(),
            jobs(7, false).iter().map(|j| &j.id).collect::<Vec<_>>()
        );
    }

    #[test]
    fn institution_has_the_awkward_cases() {
        let us = users(5000, 1);
        assert!(
            us.iter()
                .any(|u| u.primary_id.starts_with('0') && u.primary_id.bytes().all(|b| b.is_ascii_digit()))
        );
        assert!(us.iter().any(|u| u.primary_id.chars().any(|c| c.is_ascii_uppercase())
            && u.primary_id.chars().any(|c| c.is_ascii_lowercase())));
        assert!(us.iter().any(|u| u.account_type == AccountType::External));
        assert!(us.iter().any(|u| !u.active));
        assert!(us.iter().any(|u| u.email.is_none()));
        assert!(us.iter().any(|u| u.last_name.contains('\'')));
        assert!(us.iter().any(|u| u.id_rendering == IdRendering::PaddedWithSpaces));
        let mut lower: Vec<_> = us.iter().map(|u| u.primary_id.to_ascii_lowercase()).collect();
        lower.sort();
        lower.dedup();
        assert_eq!(lower.len(), us.len(), "IDs are unique case-insensitively");
    }

    #[test]
    fn update_notify_users_is_on_the_second_page_of_manual_jobs() {
        let js = jobs(42, false);
        let manual: Vec<_> = js.iter().filter(|j| j.job_type == "MANUAL").collect();
        assert!(manual.len() > 100);
        let pos = manual.iter().position(|j| j.name == UPDATE_NOTIFY_USERS).unwrap();
        assert!(pos >= 100);
        assert_eq!(manual.iter().filter(|j| j.name == UPDATE_NOTIFY_USERS).count(), 1);
    }

    #[test]
    fn the_long_job_list_has_the_recorded_shapes() {
        let js = jobs(42, true);
        assert_eq!(js.len(), 439);
        let lens: std::collections::BTreeSet<usize> = js.iter().map(|j| j.id.len()).collect();
        assert!(
            lens.contains(&2) && lens.contains(&15) && lens.contains(&17),
            "{lens:?}"
        );
        assert!(js.iter().any(|j| j.name.contains('/')) && js.iter().any(|j| j.name.contains('&')));
        assert!(js.iter().any(|j| j.name.starts_with(|c: char| c.is_ascii_digit())));
        let pos = js.iter().position(|j| j.name == UPDATE_NOTIFY_USERS).unwrap();
        assert!(pos >= 400, "past the first page of 400");
        assert_eq!(js.iter().filter(|j| j.name == UPDATE_NOTIFY_USERS).count(), 1);
    }
}
