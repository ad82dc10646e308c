//! Itemized USER sets: create, find by name, read, add members in batches of at most 1000, list
//! members. Creating is never repeated blindly: after a failure that leaves it unknown whether
//! Alma created the set, the caller looks it up by its (unique) name.

use std::ops::ControlFlow;

use reqwest::Method;
use serde_json::json;

use super::error::{Call, Error};
use super::http::{AlmaClient, Repeat};
use super::model::{Code, Count, lenient, list_page};

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
    /// The set's description as Alma holds it (empty when the answer has none).
    pub description: String,
    /// When and by whom Alma says the set was created (shown, never decided on).
    pub created_date: Option<String>,
    pub created_by: Option<String>,
}

/// A set in Alma's JSON (`POST /conf/sets`, `GET /conf/sets/{id}`, `op=add_members`, a list's
/// items). `number_of_members` is `{"value": n, "link": …}` (recorded), or the number or its
/// string on its own; absent or odd it is 0 — the pipeline then reads the members list, which
/// is the word whenever the count does not match.
#[derive(serde::Deserialize)]
struct SetAnswer {
    #[serde(default)]
    id: Code,
    #[serde(default)]
    name: Code,
    #[serde(default, deserialize_with = "lenient")]
    number_of_members: Count,
    #[serde(default, deserialize_with = "lenient")]
    description: Code,
    #[serde(default, deserialize_with = "lenient")]
    created_date: Code,
    #[serde(default, deserialize_with = "lenient")]
    created_by: Code,
}

list_page!(SetPage, "set", SetAnswer);

/// A member in the members list; only its id is read.
#[derive(serde::Deserialize)]
struct Member {
    #[serde(default)]
    id: Code,
}

list_page!(MemberPage, "member", Member);

impl SetAnswer {
    fn into_info(self, call: &Call) -> Result<SetInfo, Error> {
        let id = self.id.trimmed();
        if id.is_empty() {
            return Err(Error::Unexpected {
                call: call.clone(),
                status: 200,
                content_type: "application/json".into(),
                snippet: "a set without an id".into(),
            });
        }
        let shown = |c: Code| {
            let v = c.trimmed().to_string();
            let who = match c.desc.trim() {
                d if !d.is_empty() && !v.is_empty() && d != v => format!("{v} ({d})"),
                _ => v,
            };
            (!who.is_empty()).then_some(who)
        };
        Ok(SetInfo {
            id: SetId(id.to_string()),
            name: self.name.value,
            members: self.number_of_members.0.unwrap_or(0) as usize,
            description: self.description.value,
            created_date: shown(self.created_date),
            created_by: shown(self.created_by),
        })
    }
}

/// A set name as compared with the one asked for: trimmed, runs of spaces as one, any case (in
/// case Alma normalizes what it stores).
pub fn comparable(name: &str) -> String {
    name.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
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
        let set: SetAnswer = self
            .call_typed(Method::POST, "conf/sets", &[], Some(&body), Repeat::OnlyIfNotReceived)
            .await?;
        set.into_info(&Call {
            method: "POST",
            path: "/almaws/v1/conf/sets".into(),
        })
    }

    pub async fn get_set(&self, id: &SetId) -> Result<SetInfo, Error> {
        let path = format!("conf/sets/{}", id.0);
        let set: SetAnswer = self.call_typed(Method::GET, &path, &[], None, Repeat::Always).await?;
        set.into_info(&Call {
            method: "GET",
            path: format!("/almaws/v1/{path}"),
        })
    }

    /// The itemized USER set with exactly this name, if there is one.
    pub async fn find_set_by_name(&self, name: &str) -> Result<Option<SetInfo>, Error> {
        let wanted = comparable(name);
        Ok(self
            .find_sets(name)
            .await?
            .into_iter()
            .find(|s| comparable(&s.name) == wanted))
    }

    /// Every itemized USER set whose name holds `part` (Alma's `q=name~`, any case), every page.
    pub async fn find_sets(&self, part: &str) -> Result<Vec<SetInfo>, Error> {
        let q = format!("name~{part}");
        let query = [("q", q.as_str()), ("content_type", "USER"), ("set_type", "ITEMIZED")];
        let call = Call {
            method: "GET",
            path: "/almaws/v1/conf/sets".into(),
        };
        let mut found = Vec::new();
        let mut ids = std::collections::HashSet::new();
        let mut bad = None;
        self.each_page::<SetPage>("conf/sets", &query, LIST_LIMIT, |page| {
            for s in page {
                match s.into_info(&call) {
                    // Sets are told apart by their names: one listed without a name cannot be.
                    Ok(info) if info.name.trim().is_empty() => {
                        bad = Some(Error::List {
                            path: call.path.clone(),
                            message: format!("(q=name~{part}) lists set {} without a name", info.id),
                        });
                        return ControlFlow::Break(());
                    }
                    // A set listed twice (pages that shift while the list grows) is one set.
                    Ok(info) => {
                        if ids.insert(info.id.0.clone()) {
                            found.push(info);
                        }
                    }
                    Err(e) => {
                        bad = Some(e);
                        return ControlFlow::Break(());
                    }
                }
            }
            ControlFlow::Continue(())
        })
        .await?;
        match bad {
            Some(e) => Err(e),
            None => Ok(found),
        }
    }

    /// Adds up to 1000 members with `fail_on_invalid_id=false`; returns the set as Alma then
    /// describes it. Sent once: after an unclear failure, compare the members list.
    pub async fn add_members(&self, id: &SetId, ids: &[String]) -> Result<SetInfo, Error> {
        self.members_op(id, "add_members", ids).await
    }

    /// `op` (`add_members` or `delete_members`) on 1..=1000 members, invalid IDs ignored.
    async fn members_op(&self, id: &SetId, op: &str, ids: &[String]) -> Result<SetInfo, Error> {
        assert!(
            !ids.is_empty() && ids.len() <= MAX_MEMBERS_PER_CALL,
            "batches are 1..=1000 members"
        );
        let body = json!({"members": {"member": ids.iter().map(|i| json!({"id": i})).collect::<Vec<_>>()}});
        let path = format!("conf/sets/{}", id.0);
        let query = [("op", op), ("fail_on_invalid_id", "false")];
        let set: SetAnswer = self
            .call_typed(Method::POST, &path, &query, Some(&body), Repeat::OnlyIfNotReceived)
            .await?;
        set.into_info(&Call {
            method: "POST",
            path: format!("/almaws/v1/{path}"),
        })
    }

    /// Takes `ids` (1..=1000) out of a set (`op=delete_members`); IDs not in the set are
    /// ignored (`fail_on_invalid_id=false`), so a repeat after a lost answer is harmless.
    pub async fn delete_members(&self, id: &SetId, ids: &[String]) -> Result<SetInfo, Error> {
        self.members_op(id, "delete_members", ids).await
    }

    /// Every member id of a set (paged by 100).
    pub async fn set_members(&self, id: &SetId) -> Result<Vec<String>, Error> {
        let path = format!("conf/sets/{}/members", id.0);
        let mut members = Vec::new();
        let mut without_id = 0;
        self.each_page::<MemberPage>(&path, &[], LIST_LIMIT, |page| {
            for m in page {
                match m.id.trimmed() {
                    "" => without_id += 1,
                    id => members.push(id.to_string()),
                }
            }
            ControlFlow::Continue(())
        })
        .await?;
        if without_id > 0 {
            // Who they are cannot be told: the set cannot be checked against the cohort.
            return Err(Error::Report {
                path: format!("/almaws/v1/{path}"),
                message: format!(
                    "{without_id} of the set's members are listed without an id; look at the set in Alma (Admin > Manage Sets) before going on"
                ),
            });
        }
        Ok(members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(bytes: &[u8]) -> SetInfo {
        let call = Call {
            method: "POST",
            path: "/almaws/v1/conf/sets".into(),
        };
        serde_json::from_slice::<SetAnswer>(bytes)
            .unwrap()
            .into_info(&call)
            .unwrap()
    }

    #[test]
    fn sets_in_the_recorded_shapes() {
        let created = info(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/sets/create-answer.json"
        )));
        assert_eq!(created.id, SetId("7000000000001234".into()));
        assert_eq!(created.members, 0);
        // The add_members answer: the set, no members list.
        let added = info(include_bytes!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/sets/add-members-answer.json"
        )));
        assert_eq!(added.members, 2);
        assert_eq!(info(br#"{"id":"1","number_of_members":5}"#).members, 5);
        // Not recorded, plausible: `private` a plain string, the count (or its value) a string.
        assert_eq!(
            info(br#"{"id":"1","private":"true","number_of_members":"7"}"#).members,
            7
        );
        assert_eq!(info(br#"{"id":"1","number_of_members":{"value":"8"}}"#).members, 8);
        let call = Call {
            method: "GET",
            path: "/almaws/v1/conf/sets/x".into(),
        };
        let no_id = serde_json::from_str::<SetAnswer>(r#"{"name":"x"}"#)
            .unwrap()
            .into_info(&call);
        assert!(matches!(no_id, Err(Error::Unexpected { status: 200, .. })));
        // An odd count is 0: the pipeline then reads the members list.
        assert_eq!(info(br#"{"id":"1","number_of_members":"lots"}"#).members, 0);
        assert_eq!(info(br#"{"id":"1","number_of_members":{"value":-3}}"#).members, 0);
    }
}
