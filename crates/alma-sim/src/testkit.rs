//! Helpers for the unit tests: a simulator's state on a manual clock, requests run straight
//! through the gateway and the endpoints (no sockets), sets made directly.

use std::time::Instant;

use axum::http::{Method, StatusCode};

use crate::clock::Clock;
use crate::config::SimConfig;
use crate::records::SimSet;
use crate::state::{Admission, Req, State, classify};
use crate::wire::Format;

/// The state of a simulator with `cfg`, on the default manual clock (2026-01-05 06:00Z).
pub fn state(cfg: SimConfig) -> State {
    State::open(cfg.manual_clock(), Clock::manual_default()).expect("the simulator opens")
}

/// A request as the router hands it over, for `path_and_query` under `/almaws/v1/`.
pub fn req(method: Method, path_and_query: &str, format: Format) -> Req {
    let (path, query) = path_and_query.split_once('?').unwrap_or((path_and_query, ""));
    Req {
        method,
        segs: path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect(),
        query: form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
        format,
        content_type: None,
        body: Vec::new(),
        base: "http://127.0.0.1:8089".into(),
    }
}

/// A GET with `key` through the gateway: its status and rendered body.
pub fn get_with(st: &mut State, key: &str, path_and_query: &str, format: Format) -> (StatusCode, String) {
    let req = req(Method::GET, path_and_query, format);
    let target = classify(&req.method, &req.segs, &req.query);
    let (admission, _) = st.admit(&req, Some(key), target, Instant::now());
    let reply = match admission {
        Admission::Answer(reply) => reply,
        Admission::Proceed { .. } => st.process(&req, target),
        Admission::DropBefore => panic!("no fault was asked for"),
    };
    (reply.status, reply.render(format).1)
}

/// A GET with the read/write key.
pub fn get(st: &mut State, path_and_query: &str, format: Format) -> (StatusCode, String) {
    get_with(st, "sim-rw", path_and_query, format)
}

pub fn get_json(st: &mut State, path_and_query: &str) -> (StatusCode, serde_json::Value) {
    let (status, text) = get(st, path_and_query, Format::Json);
    (status, serde_json::from_str(&text).expect("JSON"))
}

/// An itemized USER set holding `members`; its id.
pub fn set_of(st: &mut State, members: &[String]) -> String {
    let id = format!("95{:08}0001021", st.next_seq());
    st.sets.insert(
        id.clone(),
        SimSet {
            id: id.clone(),
            name: format!("set {id}"),
            description: String::new(),
            content: "USER".into(),
            private: true,
            active: true,
            note: String::new(),
            created: st.clock.now(),
            members: members.to_vec(),
            member_keys: members.iter().map(|m| m.to_ascii_lowercase()).collect(),
        },
    );
    id
}

/// Update/Notify Users with Notify Password Change on `members`, run to its end.
pub fn notify(st: &mut State, members: &[String]) -> String {
    let set = set_of(st, members);
    let instance = st.run_from_ui(&set).expect("the job starts");
    st.clock.advance(std::time::Duration::from_secs(3600));
    st.refresh_jobs();
    instance
}
