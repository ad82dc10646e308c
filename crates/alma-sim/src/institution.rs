//! The seeded institution: users, manual jobs and the saved reports over them. The same
//! `--users N --seed S` gives the same institution every time.

use std::collections::HashMap;

use chrono::NaiveDate;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::UserSeed;

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

/// A role in a user record: `role_type` code and description (recorded pairs).
pub type Role = (&'static str, &'static str);

/// Every user has it (`role_type` 200, recorded users in shared/real-alma).
pub const PATRON: Role = ("200", "Patron");

/// Staff roles the STAFF group holds besides Patron (codes and descriptions as recorded).
pub const STAFF_ROLES: &[Role] = &[
    ("221", "Circulation Desk Manager"),
    ("51", "Requests Operator"),
    ("204", "Cataloger"),
    ("215", "Fulfillment Services Manager"),
];

/// The institution every role is scoped to (operator roles are scoped to its main library).
pub const INSTITUTION: (&str, &str) = ("01EXAMPLE_INST", "Example University");
pub const MAIN_LIBRARY: (&str, &str) = ("MAIN", "Main Library");

#[derive(Clone, Debug)]
pub struct User {
    pub primary_id: String,
    pub first_name: String,
    pub last_name: String,
    /// The preferred email address (`preferred: true`; the reports' "Preferred Email"). `None`:
    /// no preferred address, though there may be a non-preferred one.
    pub email: Option<String>,
    /// A non-preferred address (`preferred: false`), beside the preferred one or instead of it.
    pub other_email: Option<String>,
    pub user_group: String,
    pub account_type: AccountType,
    pub active: bool,
    pub expiry_date: Option<NaiveDate>,
    /// Role types held: Patron (200) always, staff roles for the STAFF group.
    pub roles: Vec<Role>,
    pub id_rendering: IdRendering,
    /// Appears twice in join-based reports (duplicate rows come from report design).
    pub duplicated_in_joins: bool,
    /// Set by the Update/Notify Users job when it resets the password; never shown on GET.
    pub temp_password: Option<String>,
}

impl User {
    /// A role other than Patron: `record_type` STAFF.
    pub fn is_staff(&self) -> bool {
        self.roles.iter().any(|r| r.0 != PATRON.0)
    }

    /// Expired on `today`: the expiry date is before it.
    pub fn is_expired(&self, today: NaiveDate) -> bool {
        self.expiry_date.is_some_and(|d| d < today)
    }

    /// What a password reset under Notify Password Change should reach: internal, active, not
    /// expired, with a preferred address, Patron only.
    pub fn fully_eligible(&self, today: NaiveDate) -> bool {
        self.account_type == AccountType::Internal
            && self.active
            && !self.is_expired(today)
            && self.email.is_some()
            && !self.is_staff()
    }

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

/// The group's description; a group the simulator does not know (a library's own) is described
/// by its code.
pub fn group_desc(code: &str) -> &str {
    USER_GROUPS
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, d)| *d)
        .unwrap_or(code)
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

/// How many days before the simulator's start the seeded expiry dates begin (they spread over
/// the 1100 days from there): about 0.4 % of the users are expired whatever the date, and the
/// default manual clock (2026-01-05) gives the dates of earlier versions (2026-01-01 on).
pub const EXPIRY_LEAD_DAYS: i64 = 4;

/// `n` users: numeric IDs with leading zeros, alphanumeric IDs in mixed case, INTERNAL and
/// EXTERNAL accounts, six groups, ACTIVE/INACTIVE, expiry dates from a little before `start`
/// (the simulator's first day) to three years after, preferred and other emails (some missing),
/// roles, and a few awkward names and report renderings.
pub fn users(n: usize, seed: u64, start: NaiveDate) -> Vec<User> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut seen: HashMap<String, ()> = HashMap::with_capacity(n);
    let mut out = Vec::with_capacity(n);
    let base = start - chrono::Duration::days(EXPIRY_LEAD_DAYS);
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
        let user_group = USER_GROUPS[weighted(&mut rng, &[45, 20, 10, 12, 8, 5])].0.to_string();
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
            other_email: None,
            user_group,
            account_type,
            active: rng.random_range(0..100) < 90,
            expiry_date,
            roles: vec![PATRON],
            id_rendering,
            duplicated_in_joins: rng.random_range(0..1000) < 3,
            temp_password: None,
        });
    }
    contacts_and_roles(&mut out, seed);
    out
}

/// The facts added after the first ones, from a generator of their own (the same seed keeps
/// giving the same IDs, groups, account types, statuses and preferred emails): about one user
/// in seven with an address also has a second, non-preferred one; of those without a preferred
/// address, half have a non-preferred one only; the STAFF group holds a staff role or two
/// besides Patron.
fn contacts_and_roles(users: &mut [User], seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x636f_6e74_6163_7473);
    for (i, u) in users.iter_mut().enumerate() {
        let local: String = format!("{}.{}", u.first_name, u.last_name)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect::<String>()
            .to_ascii_lowercase();
        let second = match u.email {
            Some(_) => rng.random_range(0..100) < 15,
            None => rng.random_range(0..100) < 50,
        };
        if second {
            u.other_email = Some(format!("{local}{i}@mail.example.com"));
        }
        if u.user_group == "STAFF" {
            let first = rng.random_range(0..STAFF_ROLES.len());
            u.roles.push(STAFF_ROLES[first]);
            if rng.random_range(0..100) < 30 {
                u.roles.push(STAFF_ROLES[(first + 1) % STAFF_ROLES.len()]);
            }
        }
    }
}

/// Users with the primary IDs a library gives (a rehearsal with its own list): internal, active
/// UGRAD accounts with an email address, expiring a year after `start`, added after the seeded
/// ones (an ID already there is skipped).
pub fn named_users(ids: &[String], existing: &[User], start: NaiveDate) -> Vec<User> {
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
            other_email: None,
            user_group: USER_GROUPS[0].0.to_string(),
            account_type: AccountType::Internal,
            active: true,
            expiry_date: Some(start + chrono::Duration::days(365)),
            roles: vec![PATRON],
            id_rendering: IdRendering::AsStored,
            duplicated_in_joins: false,
            temp_password: None,
        })
        .collect()
}

/// A library's own people ([`UserSeed`]) put into `users`: a seed whose ID is there (in any
/// case) replaces that user's facts in place, keeping the name; the others are added at the
/// end. Missing facts take the defaults (internal, active, UGRAD, a generated preferred email,
/// expiry a year after `start`); `email: Some("")` is no address at all. Seeds are patrons.
pub fn apply_seeds(users: &mut Vec<User>, seeds: &[UserSeed], start: NaiveDate) {
    let mut index: HashMap<String, usize> = users
        .iter()
        .enumerate()
        .map(|(i, u)| (u.primary_id.to_ascii_lowercase(), i))
        .collect();
    for (n, seed) in seeds.iter().enumerate() {
        let id = seed.primary_id.trim();
        if id.is_empty() {
            continue;
        }
        let slug: String = id
            .chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        let email = match seed.email.as_deref().map(str::trim) {
            Some("") => None,
            Some(e) => Some(e.to_string()),
            None => Some(format!("{slug}.seed{n}@example.edu")),
        };
        let facts = |u: &mut User| {
            u.user_group = seed.user_group.clone().unwrap_or_else(|| USER_GROUPS[0].0.to_string());
            u.account_type = if seed.internal.unwrap_or(true) {
                AccountType::Internal
            } else {
                AccountType::External
            };
            u.active = seed.active.unwrap_or(true);
            u.email = email.clone();
            u.other_email = None;
            u.expiry_date = Some(seed.expiry_date.unwrap_or(start + chrono::Duration::days(365)));
            u.roles = vec![PATRON];
            u.id_rendering = IdRendering::AsStored;
            u.duplicated_in_joins = false;
        };
        match index.get(&id.to_ascii_lowercase()) {
            Some(&i) => facts(&mut users[i]),
            None => {
                let mut u = User {
                    primary_id: id.to_string(),
                    first_name: "Library".into(),
                    last_name: format!("Person {n}"),
                    email: None,
                    other_email: None,
                    user_group: String::new(),
                    account_type: AccountType::Internal,
                    active: true,
                    expiry_date: None,
                    roles: vec![PATRON],
                    id_rendering: IdRendering::AsStored,
                    duplicated_in_joins: false,
                    temp_password: None,
                };
                facts(&mut u);
                index.insert(id.to_ascii_lowercase(), users.len());
                users.push(u);
            }
        }
    }
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

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn same_seed_same_institution() {
        let a = users(500, 7, day(2026, 1, 5));
        let b = users(500, 7, day(2026, 1, 5));
        let c = users(500, 8, day(2026, 1, 5));
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
        let us = users(5000, 1, day(2026, 1, 5));
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
    fn expiry_dates_follow_the_start_and_few_are_expired() {
        for start in [day(2026, 1, 5), day(2031, 7, 19)] {
            let us = users(20_000, 42, start);
            let dates: Vec<NaiveDate> = us.iter().filter_map(|u| u.expiry_date).collect();
            let first = start - chrono::Duration::days(EXPIRY_LEAD_DAYS);
            assert!(
                dates
                    .iter()
                    .all(|d| *d >= first && *d < first + chrono::Duration::days(1100))
            );
            let expired = us.iter().filter(|u| u.is_expired(start)).count();
            assert!((20..=150).contains(&expired), "{start}: {expired} expired of 20000");
        }
        // The default manual clock's start gives the dates earlier versions gave.
        let us = users(2000, 3, day(2026, 1, 5));
        let earliest = us.iter().filter_map(|u| u.expiry_date).min().unwrap();
        assert!((day(2026, 1, 1)..day(2026, 1, 10)).contains(&earliest), "{earliest}");
        // Another start moves every date by the same number of days, and nothing else.
        let later = users(2000, 3, day(2026, 3, 6));
        for (a, b) in us.iter().zip(&later) {
            assert_eq!(
                (&a.primary_id, &a.user_group, a.active),
                (&b.primary_id, &b.user_group, b.active)
            );
            assert_eq!(a.expiry_date.map(|d| d + chrono::Duration::days(60)), b.expiry_date);
        }
    }

    #[test]
    fn emails_and_roles_as_real_records_have_them() {
        let us = users(5000, 1, day(2026, 1, 5));
        let both = us
            .iter()
            .filter(|u| u.email.is_some() && u.other_email.is_some())
            .count();
        let other_only = us
            .iter()
            .filter(|u| u.email.is_none() && u.other_email.is_some())
            .count();
        let none = us
            .iter()
            .filter(|u| u.email.is_none() && u.other_email.is_none())
            .count();
        assert!(both > 400 && other_only > 40 && none > 40, "{both} {other_only} {none}");
        assert!(us.iter().all(|u| u.roles[0] == PATRON));
        for u in &us {
            assert_eq!(u.is_staff(), u.user_group == "STAFF", "{}", u.primary_id);
        }
        // The new facts come from their own generator: the seed's IDs and emails are unchanged
        // by them (email local parts still carry the user's position).
        assert!(us.iter().enumerate().all(|(i, u)| {
            u.email
                .as_deref()
                .is_none_or(|e| e.ends_with(&format!("{i}@example.edu")))
        }));
    }

    #[test]
    fn seeds_add_people_or_replace_a_seeded_user() {
        let start = day(2026, 1, 5);
        let mut us = users(50, 7, start);
        let taken = us[3].primary_id.to_ascii_lowercase();
        apply_seeds(
            &mut us,
            &[
                UserSeed {
                    primary_id: "LIB-0001".into(),
                    ..UserSeed::default()
                },
                UserSeed {
                    primary_id: taken.clone(),
                    user_group: Some("PHD".into()),
                    internal: Some(false),
                    active: Some(false),
                    email: Some(String::new()),
                    expiry_date: Some(day(2025, 12, 31)),
                },
            ],
            start,
        );
        assert_eq!(us.len(), 51, "one added, one replaced");
        let added = &us[50];
        assert_eq!(
            (
                added.primary_id.as_str(),
                added.user_group.as_str(),
                added.account_type,
                added.active
            ),
            ("LIB-0001", "UGRAD", AccountType::Internal, true)
        );
        assert_eq!(added.email.as_deref(), Some("lib0001.seed0@example.edu"));
        assert_eq!(added.expiry_date, Some(day(2027, 1, 5)));
        assert!(added.fully_eligible(start));
        let replaced = &us[3];
        assert_eq!(replaced.user_group, "PHD");
        assert_eq!(group_desc(&replaced.user_group), "PHD");
        assert_eq!((replaced.account_type, replaced.active), (AccountType::External, false));
        assert_eq!(
            (replaced.email.as_deref(), replaced.other_email.as_deref()),
            (None, None)
        );
        assert!(replaced.is_expired(start));
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
