//! Letters: read one letter's configuration (`GET /conf/letters/{code}`), so that a run can
//! check, before anything is written, that the letter carrying the temporary password is
//! enabled, sent by email, and prints the password.

use reqwest::Method;

use super::error::Error;
use super::http::{AlmaClient, Repeat};
use super::model::Code;

/// A letter as Alma describes it (`rest_letter.xsd`): what the pipeline checks and shows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Letter {
    pub code: String,
    pub name: String,
    /// `enabled` as Alma wrote it (`"true"`/`"false"`; empty when absent).
    pub enabled: String,
    /// The channel code (`EMAIL`, `SMS`, …); empty when absent.
    pub channel: String,
    pub customized: String,
    /// Who changed it last (the user name, then the display name when Alma gives one).
    pub updated_by: String,
    pub update_date: String,
    /// The letter's XSL, as text; empty when absent.
    pub xsl: String,
}

impl Letter {
    /// Alma's `enabled`, read strictly: only `true` is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled.trim().eq_ignore_ascii_case("true")
    }
}

/// A letter in Alma's JSON; every field optional, each a plain value or `{"value": …}`.
#[derive(serde::Deserialize)]
struct LetterAnswer {
    #[serde(default)]
    code: Code,
    #[serde(default)]
    name: Code,
    #[serde(default)]
    enabled: Code,
    #[serde(default)]
    channel: Code,
    #[serde(default)]
    customized: Code,
    #[serde(default)]
    updated_by: Code,
    #[serde(default)]
    update_date: Code,
    #[serde(default)]
    xsl: Code,
}

impl AlmaClient {
    /// `GET /conf/letters/{code}`. Any refusal (a letter Alma does not have is a 400) is an
    /// error: a run never goes on with a letter nobody has seen.
    pub async fn get_letter(&self, code: &str) -> Result<Letter, Error> {
        let path = format!(
            "conf/letters/{}",
            percent_encoding::utf8_percent_encode(code, percent_encoding::NON_ALPHANUMERIC)
        );
        let a = self
            .call_typed::<LetterAnswer>(Method::GET, &path, &[], None, Repeat::Always)
            .await?;
        let updated_by = match (a.updated_by.trimmed(), a.updated_by.desc.trim()) {
            (v, d) if !d.is_empty() && d != v && !v.is_empty() => format!("{v} ({d})"),
            (v, "") => v.to_string(),
            ("", d) => d.to_string(),
            (v, _) => v.to_string(),
        };
        Ok(Letter {
            code: a.code.trimmed().to_string(),
            name: a.name.trimmed().to_string(),
            enabled: a.enabled.trimmed().to_string(),
            channel: a.channel.trimmed().to_string(),
            customized: a.customized.trimmed().to_string(),
            updated_by,
            update_date: a.update_date.trimmed().to_string(),
            xsl: a.xsl.value,
        })
    }
}
