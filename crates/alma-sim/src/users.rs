//! Users API: `GET /almaws/v1/users/{id}` (primary ids matched case-insensitively; not found is
//! HTTP 400 with 401861, never 404; the password is always empty).

use serde_json::json;

use super::institution::{AccountType, group_desc};
use super::state::{Outcome, Req, State};
use super::wire::{AppError, Reply};

impl State {
    pub fn get_user(&mut self, req: &Req) -> Outcome {
        let id = &req.segs[1];
        let user = self
            .user_index
            .get(&id.to_ascii_lowercase())
            .map(|i| &self.users[*i])
            .ok_or_else(|| AppError::bad_request("401861", format!("User with identifier {id} was not found.")))?;
        let date = |d: Option<chrono::NaiveDate>| d.map(|d| format!("{}Z", d.format("%Y-%m-%d")));
        let emails: Vec<_> = user
            .email
            .iter()
            .map(|e| {
                json!({"email_address": e, "preferred": true, "segment_type": "Internal",
                            "email_type": [{"value": "school", "desc": "School"}]})
            })
            .collect();
        let mut v = json!({
            "record_type": {"value": "PUBLIC", "desc": "Public"},
            "primary_id": user.primary_id,
            "first_name": user.first_name,
            "last_name": user.last_name,
            "full_name": user.full_name(),
            "user_group": {"value": user.user_group, "desc": group_desc(user.user_group)},
            "account_type": {"value": user.account_type.code(), "desc": user.account_type.desc()},
            "status": {"value": if user.active { "ACTIVE" } else { "INACTIVE" }, "desc": if user.active { "Active" } else { "Inactive" }},
            "status_date": "2025-09-01Z",
            // Alma never returns a password on GET.
            "password": "",
            "force_password_change": "",
            "contact_info": {"email": emails},
            "link": req.link(&format!("users/{}", user.primary_id)),
        });
        if let Some(d) = date(user.expiry_date) {
            v["expiry_date"] = d.into();
        }
        if user.account_type == AccountType::External {
            v["external_id"] = "SIS".into();
        }
        Ok(Reply::ok("user", v))
    }
}
