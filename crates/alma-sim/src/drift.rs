//! Drift: Alma changed after the Analytics report was built. The reports keep the users as they
//! were (`State::report_users`); the live records that `GET /users/{id}` and the job read change.
//! Analytics lags Alma (a consortium allows about 3 days, alma-api.md §8c), so a cohort read from
//! a report can hold users who since became inactive, external, staff, expired or lost their
//! preferred address.

use chrono::NaiveDate;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use super::config::DriftKind;
use super::institution::{AccountType, User};

/// The staff role a drifted user gains (a recorded pair).
pub const DRIFT_STAFF_ROLE: (&str, &str) = ("51", "Requests Operator");

/// Changes `n` users per kind in `users` (the live records), picked with a generator of their
/// own from the users fully eligible on `today` (internal, active, not expired, a preferred
/// address, Patron only) — those in the UGRAD and GRAD groups first (the "Active internal
/// users" report's students), each user one way only. An error when there are not enough.
pub fn drift_users(
    users: &mut [User],
    plan: &[(DriftKind, usize)],
    seed: u64,
    today: NaiveDate,
) -> Result<Vec<(String, DriftKind)>, String> {
    let wanted: usize = plan.iter().map(|(_, n)| n).sum();
    if wanted == 0 {
        return Ok(Vec::new());
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x6472_6966_7400);
    let (mut students, mut others): (Vec<usize>, Vec<usize>) = (0..users.len())
        .filter(|&i| users[i].fully_eligible(today))
        .partition(|&i| matches!(users[i].user_group.as_str(), "UGRAD" | "GRAD"));
    students.shuffle(&mut rng);
    others.shuffle(&mut rng);
    let available = students.len() + others.len();
    if wanted > available {
        return Err(format!(
            "--drift: {wanted} users asked to change, but only {available} are fully eligible (internal, active, \
             not expired, a preferred email, Patron only)"
        ));
    }
    let mut pool = students.into_iter().chain(others);
    let mut out = Vec::with_capacity(wanted);
    for &(kind, n) in plan {
        for i in pool.by_ref().take(n) {
            change(&mut users[i], kind, today);
            out.push((users[i].primary_id.clone(), kind));
        }
    }
    Ok(out)
}

/// One user's live record changed this way.
pub fn change(user: &mut User, kind: DriftKind, today: NaiveDate) {
    match kind {
        DriftKind::Inactive => user.active = false,
        DriftKind::External => user.account_type = AccountType::External,
        DriftKind::NoEmail => {
            // The address stays on the record, no longer preferred: "no preferred email" even
            // though an email exists.
            if let Some(old) = user.email.take()
                && user.other_email.is_none()
            {
                user.other_email = Some(old);
            }
        }
        DriftKind::Staff => {
            if !user.is_staff() {
                user.roles.push(DRIFT_STAFF_ROLE);
            }
        }
        DriftKind::Expired => user.expiry_date = Some(today - chrono::Duration::days(1)),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use axum::http::StatusCode;
    use serde_json::{Value, json};

    use super::*;
    use crate::config::SimConfig;
    use crate::state::State;
    use crate::testkit::{get, get_json, state};
    use crate::wire::Format;

    const ACTIVE_INTERNAL: &str = "/shared/Example University/Reports/Password Resets/Active internal users";

    fn every_kind(n: usize) -> SimConfig {
        DriftKind::all()
            .iter()
            .fold(SimConfig::default().users(300).seed(7), |c, &k| c.drift(k, n))
    }

    fn preferred(user: &Value) -> Vec<&str> {
        user["contact_info"]["email"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["preferred"] == true)
            .map(|e| e["email_address"].as_str().unwrap())
            .collect()
    }

    /// The rows of a report's first page, as the IDs it shows (trimmed, lower-cased).
    fn report_ids(st: &mut State, path: &str) -> HashSet<String> {
        let q = form_urlencoded::Serializer::new(String::new())
            .append_pair("path", path)
            .append_pair("limit", "1000")
            .finish();
        let (status, xml) = get(st, &format!("analytics/reports?{q}"), Format::Xml);
        assert_eq!(status, StatusCode::OK);
        assert!(xml.contains("<IsFinished>true</IsFinished>"), "one page");
        xml.split("<Column1>")
            .skip(1)
            .map(|cell| cell.split('<').next().unwrap().trim().to_ascii_lowercase())
            .collect()
    }

    #[test]
    fn drift_changes_the_live_records_and_not_the_reports() {
        let mut st = state(every_kind(2));
        let drifted = st.drifted.clone();
        assert_eq!(drifted.len(), 10);
        let distinct: HashSet<&str> = drifted.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(distinct.len(), 10, "each user drifts one way only");
        for &kind in DriftKind::all() {
            assert_eq!(drifted.iter().filter(|(_, k)| *k == kind).count(), 2, "{kind}");
        }
        let today = chrono::NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let in_report = report_ids(&mut st, ACTIVE_INTERNAL);
        for (id, kind) in &drifted {
            let i = st.user_index[&id.to_ascii_lowercase()];
            let before = st.report_users[i].clone();
            assert!(before.fully_eligible(today), "{id} was eligible");
            assert!(matches!(before.user_group.as_str(), "UGRAD" | "GRAD"), "students first");
            assert!(!st.users[i].fully_eligible(today), "{id} no longer is");
            // The report still lists the user, as before.
            assert!(in_report.contains(&id.to_ascii_lowercase()), "{id} in the report");
            let (status, user) = get_json(&mut st, &format!("users/{id}"));
            assert_eq!(status, StatusCode::OK);
            match kind {
                DriftKind::Inactive => {
                    assert_eq!(user["status"], json!({"value": "INACTIVE", "desc": "Inactive"}));
                    assert!(before.active);
                }
                DriftKind::External => {
                    assert_eq!(user["account_type"], json!({"value": "EXTERNAL", "desc": "External"}));
                    assert_eq!(user["external_id"], "SIS");
                }
                DriftKind::NoEmail => {
                    assert!(preferred(&user).is_empty(), "{user}");
                    let kept = user["contact_info"]["email"][0]["email_address"].as_str();
                    assert!(kept.is_some() && kept == before.email.as_deref().or(before.other_email.as_deref()));
                    assert_eq!(user["contact_info"]["email"][0]["preferred"], false);
                }
                DriftKind::Staff => {
                    assert_eq!(user["record_type"], json!({"value": "STAFF", "desc": "Staff"}));
                    let roles: Vec<&str> = user["user_role"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["role_type"]["value"].as_str().unwrap())
                        .collect();
                    assert_eq!(roles, ["200", "51"]);
                }
                DriftKind::Expired => assert_eq!(user["expiry_date"], "2026-01-04Z"),
            }
            if *kind != DriftKind::Inactive {
                assert_eq!(user["status"]["value"], "ACTIVE", "{id}: one way only");
            }
        }
        // The same seed drifts the same users; another seed others.
        assert_eq!(state(every_kind(2)).drifted, drifted);
        assert_ne!(state(every_kind(2).seed(8)).drifted, drifted);
        // Asking for more than there are is refused.
        let too_many = crate::state::State::open(every_kind(100).manual_clock(), crate::clock::Clock::manual_default());
        assert!(too_many.err().unwrap().contains("only"));
    }

    #[test]
    fn a_user_changed_at_run_time_changes_live_only() {
        let mut st = state(SimConfig::default().users(100).seed(7));
        let today = st.clock.now().date_naive();
        let i = (0..st.users.len())
            .find(|&i| st.users[i].fully_eligible(today))
            .unwrap();
        let id = st.users[i].primary_id.clone();
        let all_users = "/shared/Example University/Reports/Password Resets/All users";
        let before = st.reports[0].cell(&st.report_users, i as u32, 5, today);
        assert_eq!(st.reports[0].path, all_users);
        assert_eq!(before.as_deref(), Some("Active"));
        st.change_user(&id.to_ascii_uppercase(), DriftKind::Inactive).unwrap();
        assert_eq!(st.drifted, vec![(id.clone(), DriftKind::Inactive)]);
        let (_, user) = get_json(&mut st, &format!("users/{id}"));
        assert_eq!(user["status"]["value"], "INACTIVE");
        assert_eq!(
            st.reports[0].cell(&st.report_users, i as u32, 5, today),
            before,
            "the report lags"
        );
        assert!(st.change_user("nobody-here", DriftKind::Staff).is_err());
    }
}
