//! Alma's test endpoints: does anything answer at an address, and may a key read or write an API
//! area. `doctor` asks them before a first run.

use reqwest::Method;

use super::error::Error;
use super::http::{AlmaClient, Repeat};
use super::jobs::JobId;

/// An API area and the access a key may have to it, as a test endpoint tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    AnalyticsRead,
    ConfigurationRead,
    ConfigurationWrite,
    UsersRead,
}

impl Access {
    /// The test endpoint that answers for it.
    fn call(self) -> (Method, &'static str) {
        match self {
            Access::AnalyticsRead => (Method::GET, "analytics/test"),
            Access::ConfigurationRead => (Method::GET, "conf/test"),
            Access::ConfigurationWrite => (Method::POST, "conf/test"),
            Access::UsersRead => (Method::GET, "users/operation/test"),
        }
    }
}

impl AlmaClient {
    /// `GET conf/test`: any HTTP answer, even a refusal of the key, says something answers here;
    /// only a [`Error::Transport`] says nothing does.
    pub async fn test_address(&self) -> Result<(), Error> {
        self.call_json(Method::GET, "conf/test", &[], None, Repeat::Always)
            .await
            .map(drop)
    }

    /// May the key do this? Its answer body is not documented: any 2xx (JSON or not) is yes.
    pub async fn test_access(&self, access: Access) -> Result<(), Error> {
        let (method, path) = access.call();
        let body = (method == Method::POST).then(|| serde_json::json!({}));
        self.call_json(method, path, &[], body.as_ref(), Repeat::OnlyIfNotReceived)
            .await
            .map(drop)
    }

    /// `GET conf/jobs/{id}`: the job exists.
    pub async fn job_exists(&self, job: &JobId) -> Result<(), Error> {
        self.call_json(Method::GET, &format!("conf/jobs/{}", job.0), &[], None, Repeat::Always)
            .await
            .map(drop)
    }
}
