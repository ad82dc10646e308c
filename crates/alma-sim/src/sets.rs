//! Sets (Configuration API): create an itemized set, get, list with `q=name~`, manage members
//! (`op=add_members|delete_members|replace_members`) with Alma's rules and codes, list members,
//! delete.

use serde_json::{Value, json};

use super::config::Quirk;
use super::records::SimSet;
use super::state::{
    Outcome, Parsed, Rejection, Req, State, format_alma_date, json_code, list_json, paging, parse_body,
};
use super::wire::{AppError, Reply};

/// Most members one call may carry.
pub const MAX_MEMBERS_PER_CALL: usize = 1000;

impl SimSet {
    fn set_members(&mut self, members: Vec<String>) {
        self.member_keys = members.iter().map(|m| m.to_ascii_lowercase()).collect();
        self.members = members;
    }
}

/// What a create or members request carried.
#[derive(Debug, Default)]
struct SetBody {
    name: Option<String>,
    description: Option<String>,
    set_type: Option<String>,
    content: Option<String>,
    private: Option<String>,
    status: Option<String>,
    note: Option<String>,
    /// `None` when the body has no `members` at all; each member's id (`None` if it has none).
    members: Option<Vec<Option<String>>>,
}

fn read_set_body(req: &Req) -> Result<SetBody, Rejection> {
    Ok(match parse_body(req)? {
        Parsed::Json(v) => SetBody {
            name: json_code(v.get("name")),
            description: json_code(v.get("description")),
            set_type: json_code(v.get("type")),
            content: json_code(v.get("content")),
            private: json_code(v.get("private")),
            status: json_code(v.get("status")),
            note: json_code(v.get("note")),
            members: v.get("members").map(|m| {
                let list = match m.get("member") {
                    Some(Value::Array(items)) => items.clone(),
                    Some(one @ Value::Object(_)) => vec![one.clone()],
                    _ => Vec::new(),
                };
                list.iter()
                    .map(|item| json_code(item.get("id")).filter(|s| !s.trim().is_empty()))
                    .collect()
            }),
        },
        Parsed::Xml(node) => SetBody {
            name: node.child_text("name").map(str::to_string),
            description: node.child_text("description").map(str::to_string),
            set_type: node.child_text("type").map(str::to_string),
            content: node.child_text("content").map(str::to_string),
            private: node.child_text("private").map(str::to_string),
            status: node.child_text("status").map(str::to_string),
            note: node.child_text("note").map(str::to_string),
            members: node.child("members").map(|m| {
                m.children_named("member")
                    .map(|member| member.child_text("id").filter(|s| !s.is_empty()).map(str::to_string))
                    .collect()
            }),
        },
    })
}

const CONTENT_TYPES: &[(&str, &str)] = &[
    ("USER", "User"),
    ("BIB_MMS", "All titles"),
    ("ITEM", "Physical items"),
    ("PORTFOLIO", "Electronic portfolios"),
    ("IEP", "Physical titles"),
];

/// With `recorded` (`--quirk set-plain-values`): `private` as a plain string and
/// `number_of_members`' value as a string.
fn set_json(set: &SimSet, req: &Req, recorded: bool) -> Value {
    let content_desc = CONTENT_TYPES
        .iter()
        .find(|(c, _)| *c == set.content)
        .map(|(_, d)| *d)
        .unwrap_or("");
    let mut v = json!({
        "id": set.id,
        "name": set.name,
        "description": set.description,
        "type": {"value": "ITEMIZED", "desc": "Itemized"},
        "content": {"value": set.content, "desc": content_desc},
        "private": {"value": set.private.to_string(), "desc": if set.private { "Yes" } else { "No" }},
        "status": {"value": if set.active { "ACTIVE" } else { "INACTIVE" }, "desc": if set.active { "Active" } else { "Inactive" }},
        "note": set.note,
        "origin": {"value": "UI", "desc": "Institution only"},
        "status_date": format_alma_date(set.created),
        "created_by": {"value": "exl_api", "desc": "Ex Libris, API"},
        "created_date": format_alma_date(set.created),
        "number_of_members": {"value": set.members.len(), "link": req.link(&format!("conf/sets/{}/members", set.id))},
        "link": req.link(&format!("conf/sets/{}", set.id)),
    });
    if recorded {
        v["private"] = set.private.to_string().into();
        v["number_of_members"]["value"] = set.members.len().to_string().into();
    }
    v
}

fn invalid_set_id(id: &str) -> AppError {
    AppError::bad_request("60107", format!("Invalid set ID: {id}"))
}

impl State {
    pub fn create_set(&mut self, req: &Req) -> Outcome {
        let body = read_set_body(req)?;
        let name = body
            .name
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| AppError::bad_request("402265", "Failed to create set: the set name is mandatory"))?;
        match body.set_type.as_deref() {
            Some("ITEMIZED") => {}
            Some("LOGICAL") => {
                return Err(AppError::bad_request(
                    "402265",
                    "Failed to create set: the simulator creates itemized sets only",
                )
                .into());
            }
            other => {
                return Err(
                    AppError::bad_request("402262", format!("Invalid set type: {}", other.unwrap_or(""))).into(),
                );
            }
        }
        let content = body.content.unwrap_or_default();
        if !CONTENT_TYPES.iter().any(|(c, _)| *c == content) {
            return Err(AppError::bad_request(
                "402265",
                format!("Failed to create set: invalid content type {content:?}"),
            )
            .into());
        }
        // Alma's default is private=true.
        let private = match body.private.as_deref().map(str::to_ascii_lowercase).as_deref() {
            None | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(AppError::bad_request("60209", format!("Invalid private value: {other}")).into());
            }
        };
        let active = match body.status.as_deref() {
            None | Some("ACTIVE") => true,
            Some("INACTIVE") => false,
            Some(other) => return Err(AppError::bad_request("60210", format!("Invalid status value: {other}")).into()),
        };
        if self.sets.values().any(|s| s.name == name) {
            return Err(AppError::bad_request("402263", format!("Set name already exists: {name}")).into());
        }
        let seq = self.next_seq();
        let mut set = SimSet {
            id: format!("95{:08}0001021", seq),
            name,
            description: body.description.unwrap_or_default(),
            content,
            private,
            active,
            note: body.note.unwrap_or_default(),
            created: self.clock.now(),
            members: Vec::new(),
            member_keys: Default::default(),
        };
        if let Some(members) = body.members.filter(|m| !m.is_empty()) {
            // Members at create time are undocumented; the simulator applies add_members' rules.
            let added = self.checked_additions(&set.content, &set.member_keys, &members, true)?;
            set.set_members(added);
        }
        let reply = Reply::ok("set", set_json(&set, req, self.cfg.has(Quirk::SetPlainValues)));
        self.sets.insert(set.id.clone(), set);
        Ok(reply)
    }

    pub fn get_set(&mut self, req: &Req) -> Outcome {
        let id = &req.segs[2];
        let set = self.sets.get(id).ok_or_else(|| invalid_set_id(id))?;
        Ok(Reply::ok(
            "set",
            set_json(set, req, self.cfg.has(Quirk::SetPlainValues)),
        ))
    }

    pub fn list_sets(&mut self, req: &Req) -> Outcome {
        let (limit, offset) = paging(req)?;
        let name_query = match req.q("q").filter(|q| !q.is_empty()) {
            None => None,
            Some(q) => match q.split_once('~') {
                Some(("name", v)) => Some(v.to_lowercase()),
                _ => {
                    return Err(AppError::bad_request(
                        "SIM_INVALID_Q",
                        format!("unsupported q {q:?}: use name~<text>"),
                    )
                    .into());
                }
            },
        };
        let content = req.q("content_type").filter(|c| !c.is_empty());
        let set_type = req.q("set_type").filter(|c| !c.is_empty());
        // A new set is listed only after the listing lag (read by id, and its name taken, at
        // once); a lag too long for a date lists nothing new.
        let lag = chrono::Duration::from_std(self.cfg.set_listing_lag).unwrap_or(chrono::Duration::MAX);
        let listed_before = self.clock.now().checked_sub_signed(lag);
        let matching: Vec<&SimSet> = self
            .sets
            .values()
            .filter(|s| listed_before.is_some_and(|t| s.created <= t))
            .filter(|s| {
                name_query
                    .as_ref()
                    .is_none_or(|q| s.name.to_lowercase().contains(q.as_str()))
            })
            .filter(|s| content.is_none_or(|c| s.content == c))
            .filter(|_| set_type.is_none_or(|t| t == "ITEMIZED"))
            .collect();
        let total = matching.len();
        let recorded = self.cfg.has(Quirk::SetPlainValues);
        let value = list_json("set", matching.into_iter().skip(offset).take(limit), total, |s| {
            set_json(s, req, recorded)
        });
        Ok(Reply::ok("sets", value))
    }

    pub fn list_members(&mut self, req: &Req) -> Outcome {
        let id = &req.segs[2];
        let (limit, offset) = paging(req)?;
        let set = self.sets.get(id).ok_or_else(|| invalid_set_id(id))?;
        let first_without_id = self
            .cfg
            .has(Quirk::MemberWithoutId)
            .then(|| set.members.first())
            .flatten();
        let value = list_json(
            "member",
            set.members.iter().skip(offset).take(limit),
            set.members.len(),
            |m| {
                if first_without_id == Some(m) {
                    return json!({"description": "", "link": req.link("users/")});
                }
                let description = self
                    .user_index
                    .get(&m.to_ascii_lowercase())
                    .map(|i| self.users[*i].full_name());
                json!({"id": m, "description": description.unwrap_or_default(),
                   "link": req.link(&format!("users/{m}"))})
            },
        );
        Ok(Reply::ok("members", value))
    }

    pub fn delete_set(&mut self, req: &Req) -> Outcome {
        let id = &req.segs[2];
        match self.sets.remove(id) {
            Some(_) => Ok(Reply::no_content()),
            None => Err(AppError::bad_request("402264", format!("Invalid set ID: {id}")).into()),
        }
    }

    pub fn set_members_op(&mut self, req: &Req) -> Outcome {
        let id = req.segs[2].clone();
        let op = req.q("op").unwrap_or("");
        if !matches!(op, "add_members" | "delete_members" | "replace_members") {
            return Err(AppError::bad_request("60111", format!("Invalid operation: {op:?}")).into());
        }
        if !self.sets.contains_key(&id) {
            return Err(invalid_set_id(&id).into());
        }
        if let Some(t) = req.q("id_type").filter(|t| !t.is_empty()) {
            // The simulated users have primary ids only.
            return Err(AppError::bad_request("40166410", format!("Invalid identifier type: {t}")).into());
        }
        let fail_on_invalid = match req.q("fail_on_invalid_id").map(str::to_ascii_lowercase).as_deref() {
            None | Some("") | Some("true") => true,
            Some("false") => false,
            Some(other) => {
                return Err(AppError::bad_request(
                    "SIM_INVALID_BOOLEAN",
                    format!("fail_on_invalid_id must be true or false, got {other}"),
                )
                .into());
            }
        };
        let body = read_set_body(req)?;
        let members = body.members.unwrap_or_default();
        if members.is_empty() {
            return Err(AppError::bad_request("60113", "No members were given").into());
        }
        if members.len() > MAX_MEMBERS_PER_CALL {
            return Err(AppError::bad_request(
                "60118",
                format!(
                    "The member list exceeds the limit of {MAX_MEMBERS_PER_CALL} ({} given)",
                    members.len()
                ),
            )
            .into());
        }
        let set = &self.sets[&id];
        match op {
            "add_members" => {
                let added = self.checked_additions(&set.content, &set.member_keys, &members, fail_on_invalid)?;
                let set = self.sets.get_mut(&id).ok_or_else(|| invalid_set_id(&id))?;
                set.member_keys.extend(added.iter().map(|m| m.to_ascii_lowercase()));
                set.members.extend(added);
            }
            "replace_members" => {
                let none = std::collections::HashSet::new();
                let added = self.checked_additions(&set.content, &none, &members, fail_on_invalid)?;
                let set = self.sets.get_mut(&id).ok_or_else(|| invalid_set_id(&id))?;
                set.set_members(added);
            }
            _ => {
                let ids = distinct_ids(&members)?;
                let mut gone = std::collections::HashSet::new();
                for wanted in &ids {
                    let key = wanted.to_ascii_lowercase();
                    if set.member_keys.contains(&key) {
                        gone.insert(key);
                    } else if fail_on_invalid {
                        return Err(
                            AppError::bad_request("60117", format!("Member {wanted} is not in the set")).into(),
                        );
                    }
                }
                let set = self.sets.get_mut(&id).ok_or_else(|| invalid_set_id(&id))?;
                set.members.retain(|m| !gone.contains(&m.to_ascii_lowercase()));
                set.member_keys.retain(|k| !gone.contains(k));
            }
        }
        let set = &self.sets[&id];
        Ok(Reply::ok(
            "set",
            set_json(set, req, self.cfg.has(Quirk::SetPlainValues)),
        ))
    }

    /// Staff delete a set in Alma's UI (Admin > Manage Sets): it is gone for every API call;
    /// the job runs made on it stay in the instance lists.
    pub fn delete_set_as_staff(&mut self, set_id: &str) -> Result<(), String> {
        self.sets
            .remove(set_id)
            .map(|_| ())
            .ok_or_else(|| format!("no set {set_id}"))
    }

    /// Staff remove one member from a set in Alma's UI (the id in any case, as Alma matches
    /// primary ids).
    pub fn remove_member_as_staff(&mut self, set_id: &str, user_id: &str) -> Result<(), String> {
        let set = self.sets.get_mut(set_id).ok_or_else(|| format!("no set {set_id}"))?;
        let key = user_id.trim().to_ascii_lowercase();
        if !set.member_keys.remove(&key) {
            return Err(format!("{user_id} is not a member of set {set_id}"));
        }
        set.members.retain(|m| m.to_ascii_lowercase() != key);
        Ok(())
    }

    /// Staff rename a set in Alma's UI. The UI refuses an empty name and one another set has
    /// (the same rule as the API's 402263; assumed, not recorded).
    pub fn rename_set_as_staff(&mut self, set_id: &str, new_name: &str) -> Result<(), String> {
        if !self.sets.contains_key(set_id) {
            return Err(format!("no set {set_id}"));
        }
        if new_name.trim().is_empty() {
            return Err(format!("set {set_id}: a set's name cannot be empty"));
        }
        if self.sets.values().any(|s| s.id != set_id && s.name == new_name) {
            return Err(format!("set name already exists: {new_name}"));
        }
        if let Some(set) = self.sets.get_mut(set_id) {
            set.name = new_name.to_string();
        }
        Ok(())
    }

    /// Staff edit a set's description in Alma's UI (any text, empty too).
    pub fn set_description_as_staff(&mut self, set_id: &str, text: &str) -> Result<(), String> {
        let set = self.sets.get_mut(set_id).ok_or_else(|| format!("no set {set_id}"))?;
        set.description = text.to_string();
        Ok(())
    }

    /// Makes a set and what was done with it `days` days older, as if it had all happened that
    /// much earlier (a set left over from last week's run, without waiting a week): the set's
    /// creation, the submission, start and end of every job run on it, and the letters and
    /// password resets those runs produced. An instance's listed name ("… - <local date>") and
    /// its `status_date` follow, being computed from its submission. Runs due to end by now are
    /// moved on first, so that what they produce is dated with them. All or nothing.
    pub fn age_set(&mut self, set_id: &str, days: u32) -> Result<(), String> {
        if !self.sets.contains_key(set_id) {
            return Err(format!("no set {set_id}"));
        }
        self.refresh_jobs();
        let by = chrono::Duration::days(days.into());
        let runs: std::collections::HashSet<String> = self
            .instances
            .values()
            .filter(|i| i.set_id == set_id)
            .map(|i| i.id.clone())
            .collect();
        let earliest = std::iter::once(self.sets[set_id].created)
            .chain(
                self.instances
                    .values()
                    .filter(|i| runs.contains(&i.id))
                    .flat_map(|i| [Some(i.submitted), i.start_time, i.end_time])
                    .flatten(),
            )
            .chain(
                self.outbox
                    .iter()
                    .filter(|l| runs.contains(&l.job_instance_id))
                    .map(|l| l.sent_at),
            )
            .chain(
                self.resets
                    .iter()
                    .filter(|r| runs.contains(&r.job_instance_id))
                    .map(|r| r.at),
            )
            .min()
            .unwrap_or_else(|| self.clock.now());
        if earliest.checked_sub_signed(by).is_none() {
            return Err(format!(
                "cannot age set {set_id} by {days} days: its dates would fall out of range"
            ));
        }
        // Every date below is at or after `earliest`: none of the subtractions can overflow.
        if let Some(set) = self.sets.get_mut(set_id) {
            set.created -= by;
        }
        for inst in self.instances.values_mut().filter(|i| runs.contains(&i.id)) {
            inst.shift_back(by);
        }
        for letter in self.outbox.iter_mut().filter(|l| runs.contains(&l.job_instance_id)) {
            letter.sent_at -= by;
        }
        for reset in self.resets.iter_mut().filter(|r| runs.contains(&r.job_instance_id)) {
            reset.at -= by;
        }
        // A run that was still going may have ended by now, counted from its earlier start.
        self.refresh_jobs();
        Ok(())
    }

    /// The members `requested` would add to `set`, by add_members' rules: a member without an id
    /// (60114), the same id twice in one request (60119, case-insensitive), an id already in the
    /// set (60115), an id that is no user (60116, the whole call fails unless
    /// `fail_on_invalid_id=false`, when it is skipped).
    fn checked_additions(
        &self,
        content: &str,
        present: &std::collections::HashSet<String>,
        requested: &[Option<String>],
        fail_on_invalid: bool,
    ) -> Result<Vec<String>, Rejection> {
        let ids = distinct_ids(requested)?;
        let mut added = Vec::new();
        for id in ids {
            if present.contains(&id.to_ascii_lowercase()) {
                return Err(AppError::bad_request("60115", format!("Member {id} is already in the set")).into());
            }
            let canonical = if content == "USER" {
                self.user_index
                    .get(&id.to_ascii_lowercase())
                    .map(|i| self.users[*i].primary_id.clone())
            } else {
                Some(id.clone())
            };
            match canonical {
                Some(c) => added.push(c),
                None if fail_on_invalid => {
                    return Err(AppError::bad_request(
                        "60116",
                        format!("Member ID {id} is not valid for content type {content}"),
                    )
                    .into());
                }
                None => {}
            }
        }
        Ok(added)
    }
}

fn distinct_ids(requested: &[Option<String>]) -> Result<Vec<String>, Rejection> {
    let mut seen = std::collections::HashSet::new();
    let mut ids = Vec::with_capacity(requested.len());
    for (n, m) in requested.iter().enumerate() {
        let id = m
            .as_deref()
            .map(str::trim)
            .ok_or_else(|| AppError::bad_request("60114", format!("Member number {} has no id", n + 1)))?;
        if !seen.insert(id.to_ascii_lowercase()) {
            return Err(
                AppError::bad_request("60119", format!("Member {id} appears more than once in the request")).into(),
            );
        }
        ids.push(id.to_string());
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::http::{Method, StatusCode};
    use serde_json::json;

    use crate::config::{SimConfig, Target};
    use crate::state::State;
    use crate::testkit::{get_json, notify, req, set_of, state};
    use crate::wire::Format;

    /// `POST /conf/sets` for an itemized USER set called `name`: status and body.
    fn create(st: &mut State, name: &str) -> (StatusCode, serde_json::Value) {
        let mut r = req(Method::POST, "conf/sets", Format::Json);
        r.content_type = Some("application/json".into());
        r.body = json!({"name": name, "type": {"value": "ITEMIZED"}, "content": {"value": "USER"}})
            .to_string()
            .into_bytes();
        let reply = st.process(&r, Target::SetCreate);
        let text = reply.render(Format::Json).1;
        (reply.status, serde_json::from_str(&text).unwrap())
    }

    fn listed(st: &mut State, query: &str) -> (Vec<String>, serde_json::Value) {
        let (status, v) = get_json(st, &format!("conf/sets{query}"));
        assert_eq!(status, StatusCode::OK, "{v}");
        let names = v["set"]
            .as_array()
            .map(|a| a.iter().map(|s| s["name"].as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        (names, v["total_record_count"].clone())
    }

    #[test]
    fn a_new_set_is_listed_only_after_the_lag_but_read_and_taken_at_once() {
        let mut st = state(
            SimConfig::default()
                .rate_limit(0)
                .users(50)
                .set_listing_lag(Duration::from_secs(300)),
        );
        let (status, old) = create(&mut st, "cohort old");
        assert_eq!(status, StatusCode::OK);
        st.clock.advance(Duration::from_secs(300));
        let (status, new) = create(&mut st, "cohort new");
        assert_eq!(status, StatusCode::OK);
        let new_id = new["id"].as_str().unwrap().to_string();

        // By id at once; in the list (with or without q) not yet, and not counted.
        let (status, got) = get_json(&mut st, &format!("conf/sets/{new_id}"));
        assert_eq!((status, got["name"].as_str()), (StatusCode::OK, Some("cohort new")));
        assert_eq!(listed(&mut st, ""), (vec!["cohort old".to_string()], json!(1)));
        assert_eq!(
            listed(&mut st, "?q=name~cohort"),
            (vec!["cohort old".to_string()], json!(1))
        );
        assert_eq!(listed(&mut st, "?q=name~new"), (vec![], json!(0)));
        // The name is taken at once, lag or not.
        let (status, refused) = create(&mut st, "cohort new");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(refused.to_string().contains("402263"), "{refused}");

        st.clock.advance(Duration::from_secs(299));
        assert_eq!(listed(&mut st, "?q=name~new").1, json!(0), "a second early");
        st.clock.advance(Duration::from_secs(1));
        assert_eq!(
            listed(&mut st, "?q=name~new"),
            (vec!["cohort new".to_string()], json!(1))
        );
        assert_eq!(listed(&mut st, "").1, json!(2));
        assert_eq!(old["id"], listed_ids(&mut st)[0]);
    }

    fn listed_ids(st: &mut State) -> Vec<serde_json::Value> {
        let (_, v) = get_json(st, "conf/sets");
        v["set"].as_array().unwrap().iter().map(|s| s["id"].clone()).collect()
    }

    #[test]
    fn without_a_lag_a_new_set_is_listed_at_once_and_a_huge_lag_lists_none() {
        let mut st = state(SimConfig::default().rate_limit(0).users(50));
        create(&mut st, "now");
        assert_eq!(listed(&mut st, "").1, json!(1));
        let mut st = state(
            SimConfig::default()
                .rate_limit(0)
                .users(50)
                .set_listing_lag(Duration::MAX),
        );
        create(&mut st, "never");
        assert_eq!(listed(&mut st, "").1, json!(0));
    }

    #[test]
    fn staff_delete_rename_describe_and_remove_members() {
        let mut st = state(SimConfig::default().rate_limit(0).users(50));
        let ids: Vec<String> = st.users[..3].iter().map(|u| u.primary_id.clone()).collect();
        let set = set_of(&mut st, &ids);
        let other = set_of(&mut st, &ids[..1]);

        st.remove_member_as_staff(&set, &ids[1].to_lowercase()).unwrap();
        assert_eq!(st.sets[&set].members, [ids[0].clone(), ids[2].clone()]);
        assert!(!st.sets[&set].member_keys.contains(&ids[1].to_ascii_lowercase()));
        let e = st.remove_member_as_staff(&set, &ids[1]).unwrap_err();
        assert_eq!(e, format!("{} is not a member of set {set}", ids[1]));
        assert_eq!(st.remove_member_as_staff("nope", &ids[0]).unwrap_err(), "no set nope");

        st.rename_set_as_staff(&set, "Renamed by staff").unwrap();
        st.set_description_as_staff(&set, "kept for the audit").unwrap();
        let (_, v) = get_json(&mut st, &format!("conf/sets/{set}"));
        assert_eq!(
            (v["name"].as_str(), v["description"].as_str()),
            (Some("Renamed by staff"), Some("kept for the audit"))
        );
        let taken = st.sets[&other].name.clone();
        assert_eq!(
            st.rename_set_as_staff(&set, &taken).unwrap_err(),
            format!("set name already exists: {taken}")
        );
        assert!(st.rename_set_as_staff(&set, " ").is_err());
        st.rename_set_as_staff(&set, "Renamed by staff").unwrap();
        assert!(st.rename_set_as_staff("nope", "x").is_err());
        assert!(st.set_description_as_staff("nope", "x").is_err());
        assert_eq!(create(&mut st, "Renamed by staff").0, StatusCode::BAD_REQUEST);

        // Deleted: 60107 by id, gone from the list; its runs stay.
        let run = st.run_from_ui(&set).unwrap();
        st.delete_set_as_staff(&set).unwrap();
        let (status, v) = get_json(&mut st, &format!("conf/sets/{set}"));
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(v.to_string().contains("60107"), "{v}");
        assert!(!listed_ids(&mut st).contains(&json!(set)));
        assert_eq!(st.delete_set_as_staff(&set).unwrap_err(), format!("no set {set}"));
        let (_, v) = get_json(&mut st, "conf/jobs/ALL/instances?limit=100");
        assert!(
            v["job_instance"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["id"] == json!(run)),
            "{v}"
        );
    }

    #[test]
    fn ageing_moves_the_set_its_runs_their_letters_and_resets() {
        let mut st = state(SimConfig::default().rate_limit(0).users(300).seed(7));
        let today = st.clock.now().date_naive();
        let eligible: Vec<String> = st
            .users
            .iter()
            .filter(|u| u.fully_eligible(today))
            .take(2)
            .map(|u| u.primary_id.clone())
            .collect();
        // A run of another set, which must not move.
        let bystander = notify(&mut st, &eligible[..1]);
        let set = set_of(&mut st, &eligible);
        let created = st.sets[&set].created;
        let run = st.run_from_ui(&set).unwrap();
        st.clock.advance(Duration::from_secs(3600));
        st.refresh_jobs();
        let before = st.instances[&run].clone();
        let (letters, resets) = (st.outbox.clone(), st.resets.clone());
        assert_eq!((letters.len(), resets.len()), (3, 3));
        let (_, v) = get_json(&mut st, &format!("conf/jobs/ALL/instances/{run}"));
        let name_before = v["name"].as_str().unwrap().to_string();

        st.age_set(&set, 3).unwrap();
        let days = chrono::Duration::days(3);
        assert_eq!(st.sets[&set].created, created - days);
        let after = &st.instances[&run];
        assert_eq!(after.submitted, before.submitted - days);
        assert_eq!(after.start_time, before.start_time.map(|t| t - days));
        assert_eq!(after.end_time, before.end_time.map(|t| t - days));
        assert_eq!(after.status, before.status);
        for (new, old) in st.outbox.iter().zip(&letters) {
            let moved = if new.job_instance_id == run {
                days
            } else {
                chrono::Duration::zero()
            };
            assert_eq!(new.sent_at, old.sent_at - moved);
        }
        for (new, old) in st.resets.iter().zip(&resets) {
            let moved = if new.job_instance_id == run {
                days
            } else {
                chrono::Duration::zero()
            };
            assert_eq!(new.at, old.at - moved);
        }
        assert_eq!(st.outbox.iter().filter(|l| l.job_instance_id == bystander).count(), 1);
        let (_, v) = get_json(&mut st, &format!("conf/jobs/ALL/instances/{run}"));
        assert_eq!(
            v["name"].as_str().unwrap(),
            name_before.replace("2026-01-05", "2026-01-02"),
            "the listed name's date"
        );
        assert_eq!(v["submit_time"], "2026-01-02T07:00:00.000Z");
        assert_eq!(v["status_date"], "2026-01-02Z");
        let (_, v) = get_json(&mut st, &format!("conf/sets/{set}"));
        assert_eq!(v["created_date"], "2026-01-02T07:00:00.000Z");

        assert_eq!(st.age_set("nope", 1).unwrap_err(), "no set nope");
        assert!(st.age_set(&set, u32::MAX).unwrap_err().contains("out of range"));
        assert_eq!(st.sets[&set].created, created - days, "nothing moved");
    }

    #[test]
    fn ageing_a_running_job_ends_it_in_the_past() {
        let mut st = state(SimConfig::default().rate_limit(0).users(300).seed(7));
        let today = st.clock.now().date_naive();
        let id = st
            .users
            .iter()
            .find(|u| u.fully_eligible(today))
            .unwrap()
            .primary_id
            .clone();
        let set = set_of(&mut st, std::slice::from_ref(&id));
        let run = st.run_from_ui(&set).unwrap();
        assert_eq!(st.instances[&run].status, "QUEUED");
        let submitted = st.instances[&run].submitted;
        st.age_set(&set, 1).unwrap();
        let inst = &st.instances[&run];
        assert_eq!(inst.status, "COMPLETED_SUCCESS");
        let ended = submitted - chrono::Duration::days(1) + chrono::Duration::from_std(st.cfg.job_duration).unwrap();
        assert_eq!(inst.end_time, Some(ended));
        assert_eq!((st.outbox[0].sent_at, st.resets[0].at), (ended, ended));
    }
}
