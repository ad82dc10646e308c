//! Users: read one user (to say why Alma refused an ID). Not found is HTTP 400 with 401861 or
//! 401890, never 404.

use reqwest::Method;

use super::error::Error;
use super::http::{AlmaClient, Repeat};
use super::model::Code;

/// What the pipeline needs to know of a user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub primary_id: String,
    pub account_type: String,
    pub status: String,
}

/// A user in Alma's JSON (`view=brief`); only what the pipeline says is read.
#[derive(serde::Deserialize)]
struct UserAnswer {
    #[serde(default)]
    primary_id: Code,
    #[serde(default)]
    account_type: Code,
    #[serde(default)]
    status: Code,
}

impl AlmaClient {
    /// The user with this primary ID (or other unique identifier), or `None` if Alma has none.
    pub async fn get_user(&self, id: &str) -> Result<Option<UserInfo>, Error> {
        let path = format!(
            "users/{}",
            percent_encoding::utf8_percent_encode(id, percent_encoding::NON_ALPHANUMERIC)
        );
        match self
            .call_typed::<UserAnswer>(Method::GET, &path, &[("view", "brief")], None, Repeat::Always)
            .await
        {
            Ok(u) => Ok(Some(UserInfo {
                primary_id: u.primary_id.value,
                account_type: u.account_type.value,
                status: u.status.value,
            })),
            Err(e) if e.alma_code().is_some_and(|(_, c)| c == "401861" || c == "401890") => Ok(None),
            Err(e) => Err(e),
        }
    }
}
