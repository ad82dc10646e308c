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
        let matching: Vec<&SimSet> = self
            .sets
            .values()
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
