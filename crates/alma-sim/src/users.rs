//! Users API: `GET /almaws/v1/users/{id}` (primary ids matched case-insensitively; not found is
//! HTTP 400 with 401861, never 404; the password is always empty). The record carries what
//! decides whether a password reset reaches the user (alma-api.md §6, §8c; recorded users in
//! shared/real-alma): account type, record type, status, expiry date, emails with the preferred
//! flag, roles.

use serde_json::{Value, json};

use super::config::DriftKind;
use super::institution::{AccountType, INSTITUTION, MAIN_LIBRARY, PATRON, User, group_desc};
use super::state::{Outcome, Req, State};
use super::wire::{AppError, Format, Reply};

fn code(value: &str, desc: &str) -> Value {
    json!({"value": value, "desc": desc})
}

/// A user record as `GET /users/{id}` shows it; `format` decides whether a missing expiry date
/// is `null` (JSON, as recorded) or left out (XML).
pub fn user_json(user: &User, link: String, format: Format) -> Value {
    let segment = match user.account_type {
        AccountType::Internal => "Internal",
        AccountType::External => "External",
    };
    let mut emails = Vec::new();
    if let Some(e) = &user.email {
        emails.push(json!({"email_address": e, "preferred": true, "segment_type": segment,
                           "email_type": [code("school", "School")]}));
    }
    if let Some(e) = &user.other_email {
        emails.push(json!({"email_address": e, "preferred": false, "segment_type": segment,
                           "email_type": [code("personal", "Personal")]}));
    }
    let roles: Vec<Value> = user
        .roles
        .iter()
        .map(|(value, desc)| {
            let scope = if (*value, *desc) == PATRON {
                INSTITUTION
            } else {
                MAIN_LIBRARY
            };
            json!({
                "status": code("ACTIVE", "Active"),
                "scope": code(scope.0, scope.1),
                "role_type": code(value, desc),
                "parameter": [],
            })
        })
        .collect();
    let (record_type, record_desc) = if user.is_staff() {
        ("STAFF", "Staff")
    } else {
        ("PUBLIC", "Public")
    };
    let mut v = json!({
        "record_type": code(record_type, record_desc),
        "primary_id": user.primary_id,
        "first_name": user.first_name,
        "last_name": user.last_name,
        "full_name": user.full_name(),
        "user_group": code(&user.user_group, group_desc(&user.user_group)),
        "preferred_language": code("en", "English"),
    });
    match (user.expiry_date, format) {
        (Some(d), _) => v["expiry_date"] = format!("{}Z", d.format("%Y-%m-%d")).into(),
        (None, Format::Json) => v["expiry_date"] = Value::Null,
        (None, Format::Xml) => {}
    }
    v["account_type"] = code(user.account_type.code(), user.account_type.desc());
    if user.account_type == AccountType::External {
        v["external_id"] = "SIS".into();
    }
    // Alma never returns a password on GET.
    v["password"] = "".into();
    v["force_password_change"] = "".into();
    v["status"] = if user.active {
        code("ACTIVE", "Active")
    } else {
        code("INACTIVE", "Inactive")
    };
    v["status_date"] = "2025-09-01Z".into();
    v["contact_info"] = json!({ "email": emails });
    v["user_role"] = roles.into();
    v["link"] = link.into();
    v
}

impl State {
    pub fn get_user(&mut self, req: &Req) -> Outcome {
        let id = &req.segs[1];
        let user = self
            .user_index
            .get(&id.to_ascii_lowercase())
            .map(|i| &self.users[*i])
            .ok_or_else(|| AppError::bad_request("401861", format!("User with identifier {id} was not found.")))?;
        let link = req.link(&format!("users/{}", user.primary_id));
        Ok(Reply::ok("user", user_json(user, link, req.format)))
    }
}

impl State {
    /// A user's live record changes now (the reports do not).
    pub fn change_user(&mut self, id: &str, kind: DriftKind) -> Result<(), String> {
        let i = *self
            .user_index
            .get(&id.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("no user {id}"))?;
        let today = self.clock.now().date_naive();
        super::drift::change(&mut self.users[i], kind, today);
        self.drifted.push((self.users[i].primary_id.clone(), kind));
        Ok(())
    }
}
