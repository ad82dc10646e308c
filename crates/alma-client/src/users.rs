//! Users: read one user as Alma holds it now — to say why Alma refused an ID, and to check,
//! before a set is made, that each member can read the letter with the new password. Not found
//! is HTTP 400 with 401861 or 401890, never 404.

use reqwest::Method;

use super::error::Error;
use super::http::{AlmaClient, Repeat};
use super::model::{Code, one_or_many};

/// What the pipeline needs to know of a user: the facts that decide whether a reset reaches
/// them (the default view of `GET /users/{id}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    pub primary_id: String,
    /// `INTERNAL` | `EXTERNAL` (empty when Alma gave none).
    pub account_type: String,
    /// `ACTIVE` | `INACTIVE`.
    pub status: String,
    /// `PUBLIC` | `STAFF` | `CONTACT`.
    pub record_type: String,
    /// As Alma writes it (`2027-06-30Z`); empty when the user has none.
    pub expiry_date: String,
    /// The email addresses, each with Alma's `preferred` flag.
    pub emails: Vec<Email>,
    /// The roles' `role_type` codes (`200` is Patron), with their status.
    pub roles: Vec<Role>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Email {
    pub address: String,
    pub preferred: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Role {
    pub role_type: String,
    pub desc: String,
    pub status: String,
}

impl UserInfo {
    /// The preferred address, when there is one that is not blank.
    pub fn preferred_email(&self) -> Option<&str> {
        self.emails
            .iter()
            .find(|e| e.preferred && !e.address.trim().is_empty())
            .map(|e| e.address.trim())
    }
}

/// A user in Alma's JSON; only what the pipeline reads.
#[derive(serde::Deserialize)]
struct UserAnswer {
    #[serde(default)]
    primary_id: Code,
    #[serde(default)]
    account_type: Code,
    #[serde(default)]
    status: Code,
    #[serde(default)]
    record_type: Code,
    #[serde(default)]
    expiry_date: Code,
    #[serde(default)]
    contact_info: Option<ContactInfo>,
    #[serde(default, deserialize_with = "one_or_many")]
    user_role: Vec<RoleAnswer>,
}

#[derive(serde::Deserialize, Default)]
struct ContactInfo {
    #[serde(default, deserialize_with = "one_or_many")]
    email: Vec<EmailAnswer>,
}

#[derive(serde::Deserialize)]
struct EmailAnswer {
    #[serde(default)]
    email_address: Code,
    #[serde(default)]
    preferred: Code,
}

#[derive(serde::Deserialize)]
struct RoleAnswer {
    #[serde(default)]
    role_type: Code,
    #[serde(default)]
    status: Code,
}

impl AlmaClient {
    /// The user with this primary ID (or other unique identifier), or `None` if Alma has none.
    /// A GET: lost answers are asked again.
    pub async fn get_user(&self, id: &str) -> Result<Option<UserInfo>, Error> {
        let path = format!(
            "users/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        match self
            .call_typed::<UserAnswer>(Method::GET, &path, &[], None, Repeat::Always)
            .await
        {
            Ok(u) => Ok(Some(UserInfo {
                primary_id: u.primary_id.value,
                account_type: u.account_type.trimmed().to_ascii_uppercase(),
                status: u.status.trimmed().to_ascii_uppercase(),
                record_type: u.record_type.trimmed().to_ascii_uppercase(),
                expiry_date: u.expiry_date.trimmed().to_string(),
                emails: u
                    .contact_info
                    .unwrap_or_default()
                    .email
                    .into_iter()
                    .map(|e| Email {
                        address: e.email_address.value,
                        preferred: e.preferred.trimmed().eq_ignore_ascii_case("true"),
                    })
                    .collect(),
                roles: u
                    .user_role
                    .into_iter()
                    .map(|r| Role {
                        role_type: r.role_type.trimmed().to_string(),
                        desc: r.role_type.desc.trim().to_string(),
                        status: r.status.trimmed().to_ascii_uppercase(),
                    })
                    .collect(),
            })),
            Err(e) if e.alma_code().is_some_and(|(_, c)| c == "401861" || c == "401890") => Ok(None),
            Err(e) => Err(e.about_a_user()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_user_reads_with_its_emails_and_roles() {
        // The shape of a recorded user (pulibrary's patrons, the Swiss test user): codes as
        // objects, one role as an array, a preferred flag as a boolean.
        let json = r#"{"primary_id":"0012345","account_type":{"value":"INTERNAL","desc":"Internal"},
          "record_type":{"value":"PUBLIC"},"status":{"value":"ACTIVE","desc":"Active"},
          "expiry_date":"2027-06-30Z","contact_info":{"email":[
            {"email_address":"a@x.edu","preferred":false},{"email_address":" b@x.edu ","preferred":true}]},
          "user_role":[{"status":{"value":"ACTIVE"},"role_type":{"value":"200","desc":"Patron"}}]}"#;
        let u: UserAnswer = serde_json::from_str(json).unwrap();
        assert_eq!(u.user_role.len(), 1);
        assert_eq!(u.user_role[0].role_type.value, "200");
        let emails = u.contact_info.unwrap().email;
        assert_eq!(emails[1].preferred.value, "true");
        // One role as an object, no contact_info, null expiry.
        let json = r#"{"primary_id":"x","expiry_date":null,"user_role":{"role_type":{"value":"21"}}}"#;
        let u: UserAnswer = serde_json::from_str(json).unwrap();
        assert_eq!((u.user_role.len(), u.expiry_date.value.as_str()), (1, ""));
        assert!(u.contact_info.is_none());
    }
}
