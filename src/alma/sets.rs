//! Itemized USER sets: create, find by name, read, add members in batches of at most 1000, list
//! members. Creating is never repeated blindly: after a failure that leaves it unknown whether
//! Alma created the set, the caller looks it up by its (unique) name.

use reqwest::Method;
use serde_json::{Value, json};

use super::error::{Call, Error};
use super::http::{AlmaClient, Repeat};

/// Most members Alma takes in one call.
pub const MAX_MEMBERS_PER_CALL: usize = 1000;
/// Page size of set and member lists.
const LIST_LIMIT: usize = 100;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SetId(pub String);

impl std::fmt::Display for SetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A set as Alma describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetInfo {
    pub id: SetId,
    pub name: String,
    pub members: usize,
}

fn set_info(v: &Value, call: &Call) -> Result<SetInfo, Error> {
    let id = v.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
    let Some(id) = id else {
        return Err(unexpected(call, v, "a set without an id"));
    };
    // `{"value": 5, "link": …}` (recorded), or the number (or its string) on its own.
    let count = v.get("number_of_members");
    let members = match count.and_then(|n| n.get("value")).or(count) {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    };
    Ok(SetInfo {
        id: SetId(id.to_string()),
        name: v.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
        members,
    })
}

/// A set name as compared with the one asked for: trimmed, runs of spaces as one, any case (in
/// case Alma normalizes what it stores).
fn comparable(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

pub(crate) fn unexpected(call: &Call, v: &Value, what: &str) -> Error {
    Error::Unexpected {
        call: call.clone(),
        status: 200,
        content_type: "application/json".into(),
        snippet: format!("{what}: {}", super::http::snippet(&v.to_string())),
    }
}

fn list<'v>(v: &'v Value, key: &str) -> Vec<&'v Value> {
    match v.get(key) {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    }
}

fn total(v: &Value) -> usize {
    match v.get("total_record_count") {
        Some(Value::Number(n)) => n.as_u64().unwrap_or(0) as usize,
        Some(Value::String(s)) => s.trim().parse().unwrap_or(0),
        _ => 0,
    }
}

impl AlmaClient {
    /// Creates an empty itemized USER set. Sent once (repeated only if Alma surely never got it).
    pub async fn create_set(&self, name: &str, description: &str, private: bool) -> Result<SetInfo, Error> {
        let body = json!({
            "name": name,
            "description": description,
            "type": {"value": "ITEMIZED"},
            "content": {"value": "USER"},
            "private": {"value": if private { "true" } else { "false" }},
            "status": {"value": "ACTIVE"},
        });
        let v = self
            .call_json(Method::POST, "conf/sets", &[], Some(&body), Repeat::OnlyIfNotReceived)
            .await?;
        set_info(
            &v,
            &Call {
                method: "POST",
                path: "/almaws/v1/conf/sets".into(),
            },
        )
    }

    pub async fn get_set(&self, id: &SetId) -> Result<SetInfo, Error> {
        let path = format!("conf/sets/{}", id.0);
        let v = self.call_json(Method::GET, &path, &[], None, Repeat::Always).await?;
        set_info(
            &v,
            &Call {
                method: "GET",
                path: format!("/almaws/v1/{path}"),
            },
        )
    }

    /// The itemized USER set with exactly this name, if there is one.
    pub async fn find_set_by_name(&self, name: &str) -> Result<Option<SetInfo>, Error> {
        let q = format!("name~{name}");
        let mut offset = 0;
        loop {
            let (limit, off) = (LIST_LIMIT.to_string(), offset.to_string());
            let query = [
                ("q", q.as_str()),
                ("content_type", "USER"),
                ("set_type", "ITEMIZED"),
                ("limit", limit.as_str()),
                ("offset", off.as_str()),
            ];
            let v = self
                .call_json(Method::GET, "conf/sets", &query, None, Repeat::Always)
                .await?;
            let call = Call {
                method: "GET",
                path: "/almaws/v1/conf/sets".into(),
            };
            let page = list(&v, "set");
            let wanted = comparable(name);
            for s in &page {
                if s.get("name").and_then(Value::as_str).map(comparable).as_deref() == Some(wanted.as_str()) {
                    return Ok(Some(set_info(s, &call)?));
                }
            }
            offset += page.len();
            if page.is_empty() || offset >= total(&v) {
                return Ok(None);
            }
        }
    }

    /// Adds up to 1000 members with `fail_on_invalid_id=false`; returns the set as Alma then
    /// describes it. Sent once: after an unclear failure, compare the members list.
    pub async fn add_members(&self, id: &SetId, ids: &[String]) -> Result<SetInfo, Error> {
        assert!(
            !ids.is_empty() && ids.len() <= MAX_MEMBERS_PER_CALL,
            "batches are 1..=1000 members"
        );
        let body = json!({"members": {"member": ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>()}});
        let path = format!("conf/sets/{}", id.0);
        let query = [("op", "add_members"), ("fail_on_invalid_id", "false")];
        let v = self
            .call_json(Method::POST, &path, &query, Some(&body), Repeat::OnlyIfNotReceived)
            .await?;
        set_info(
            &v,
            &Call {
                method: "POST",
                path: format!("/almaws/v1/{path}"),
            },
        )
    }

    /// Every member id of a set (paged by 100).
    pub async fn set_members(&self, id: &SetId) -> Result<Vec<String>, Error> {
        let path = format!("conf/sets/{}/members", id.0);
        let mut members = Vec::new();
        loop {
            let (limit, off) = (LIST_LIMIT.to_string(), members.len().to_string());
            let v = self
                .call_json(
                    Method::GET,
                    &path,
                    &[("limit", limit.as_str()), ("offset", off.as_str())],
                    None,
                    Repeat::Always,
                )
                .await?;
            let page = list(&v, "member");
            members.extend(
                page.iter()
                    .filter_map(|m| m.get("id").and_then(Value::as_str))
                    .map(str::to_string),
            );
            if page.is_empty() || members.len() >= total(&v) {
                return Ok(members);
            }
        }
    }
}
