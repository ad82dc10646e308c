//! Users: read one user (to say why Alma refused an ID). Not found is HTTP 400 with 401861 or
//! 401890, never 404.

use reqwest::Method;
use serde_json::Value;

use super::error::Error;
use super::http::{AlmaClient, Repeat};

/// What the pipeline needs to know of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub primary_id: String,
    pub account_type: String,
    pub status: String,
}

impl AlmaClient {
    /// The user with this primary ID (or other unique identifier), or `None` if Alma has none.
    pub async fn get_user(&self, id: &str) -> Result<Option<UserInfo>, Error> {
        let path = format!(
            "users/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        match self
            .call_json(Method::GET, &path, &[("view", "brief")], None, Repeat::Always)
            .await
        {
            Ok(v) => {
                let code = |k: &str| {
                    v.get(k)
                        .and_then(|f| f.get("value").or(Some(f)))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                Ok(Some(UserInfo {
                    primary_id: code("primary_id"),
                    account_type: code("account_type"),
                    status: code("status"),
                }))
            }
            Err(e) if e.alma_code().is_some_and(|(_, c)| c == "401861" || c == "401890") => Ok(None),
            Err(e) => Err(e),
        }
    }
}
