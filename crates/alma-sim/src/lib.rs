//! A stateful local Ex Libris Alma for tests: Analytics reports paged with resumption tokens,
//! itemized sets and their members, jobs and their instances (Update/Notify Users resets each
//! internal member's password and emails it in the User Notifications Letter when the letter and
//! the user's preferred address allow — the outbox and the reset log say who is locked out),
//! letters, and users as full records — with Alma's shapes, error codes and quirks, behind a
//! gateway with API keys, a daily quota and a per-second threshold, and with knobs for latency,
//! faults, time zones, listing lag, the letter's state and users that changed after the report
//! (drift).
//!
//! Start one with [`SimConfig`] (builder methods for every knob) and [`SimConfig::start`]: the
//! [`SimHandle`] gives its base URL, moves its clock, and shows what it holds (sets, job runs,
//! the outbox, every request). Out of process, the `alma-sim` binary (feature `cli`) serves the
//! same on loopback; `/_sim/*` lets a test look inside, from this machine or with a token.
//!
//! Each behaviour comes from the wire facts of `shared/alma-api.md` and recorded answers of real
//! institutions (README.md lists them), never from a client: this crate depends on no crate of
//! the workspace, so the client and the simulator cannot agree by construction.

mod analytics;
mod catalog;
mod clock;
mod columns;
mod config;
mod drift;
mod filter;
mod institution;
mod jobs;
mod letter_conf;
mod letters;
mod records;
mod routes;
mod sets;
mod state;
#[cfg(test)]
mod testkit;
mod users;
mod wire;
mod xml;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde::Serialize;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

#[cfg(feature = "cli")]
pub mod cli;

pub use catalog::{FIXTURES_FOLDER, REPORTS_FOLDER};
pub use clock::Clock;
pub use config::{
    Access, ApiKey, Area, DriftKind, Fault, FaultKind, JobOutcome, LetterState, Quirk, SimConfig, Target, UserSeed,
    default_keys, parse_offset,
};
pub use institution::UPDATE_NOTIFY_USERS;
pub use letter_conf::USER_NOTIFICATIONS_LETTER;
pub use state::{Letter, RequestRecord, Reset};

use state::{Admission, Req, State as SimState, classify};
use wire::{Format, Reply};

type Shared = Arc<Mutex<SimState>>;

fn lock(shared: &Shared) -> MutexGuard<'_, SimState> {
    shared.lock().unwrap_or_else(|e| e.into_inner())
}

/// A set as the simulator holds it, for tests and `/_sim/state`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct SetSummary {
    pub id: String,
    pub name: String,
    pub description: String,
    pub private: bool,
    pub members: usize,
    /// When the set was created (RFC 3339, UTC; earlier after [`SimHandle::age_set`]).
    pub created: String,
}

impl SetSummary {
    fn of(s: &records::SimSet) -> Self {
        Self {
            id: s.id.clone(),
            name: s.name.clone(),
            description: s.description.clone(),
            private: s.private,
            members: s.members.len(),
            created: rfc3339(s.created),
        }
    }
}

/// A job run as the simulator holds it.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InstanceSummary {
    pub id: String,
    pub job_id: String,
    /// The name Alma lists it under, before the date.
    pub name: String,
    pub set_id: String,
    pub status: String,
    pub members: usize,
    pub parameters: Vec<(String, String)>,
    /// When the run was submitted (RFC 3339, UTC; earlier after [`SimHandle::age_set`]).
    pub submitted: String,
}

impl InstanceSummary {
    fn of(i: &records::Instance) -> Self {
        Self {
            id: i.id.clone(),
            job_id: i.job_id.clone(),
            name: i.name.clone(),
            set_id: i.set_id.clone(),
            status: i.status.to_string(),
            members: i.members.len(),
            parameters: i.parameters.clone(),
            submitted: rfc3339(i.submitted),
        }
    }
}

/// A time as the summaries and `/_sim/*` give it: `2026-01-05T06:00:00Z` (as serde writes one).
fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A seeded user, for tests that work out the expected cohort: [`SimHandle::users`] as Alma
/// holds them now, [`SimHandle::report_users`] as the reports show them (before any drift).
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct UserSummary {
    pub primary_id: String,
    pub user_group: String,
    pub internal: bool,
    pub active: bool,
    pub expiry_date: Option<String>,
    /// The preferred email address; `None`: no preferred address in Alma (there may be a
    /// non-preferred one, `other_email`).
    pub email: Option<String>,
    /// A non-preferred address.
    pub other_email: Option<String>,
    /// A role other than Patron (`record_type` STAFF).
    pub staff: bool,
    /// The `role_type` codes held (`"200"` Patron first).
    pub roles: Vec<String>,
}

impl UserSummary {
    fn of(u: &institution::User) -> Self {
        Self {
            primary_id: u.primary_id.clone(),
            user_group: u.user_group.clone(),
            internal: u.account_type == institution::AccountType::Internal,
            active: u.active,
            expiry_date: u.expiry_date.map(|d| d.to_string()),
            email: u.email.clone(),
            other_email: u.other_email.clone(),
            staff: u.is_staff(),
            roles: u.roles.iter().map(|r| r.0.to_string()).collect(),
        }
    }
}

/// A running simulator. Dropping it stops the server.
pub struct SimHandle {
    addr: SocketAddr,
    shared: Shared,
    clock: Clock,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl SimConfig {
    /// Starts the simulator on an ephemeral loopback port.
    pub async fn start(self) -> Result<SimHandle, String> {
        self.serve(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Starts the simulator on `addr`.
    pub async fn serve(self, addr: SocketAddr) -> Result<SimHandle, String> {
        let clock = if let Some(start) = self.clock_start.filter(|_| self.manual_clock) {
            Clock::manual(start)
        } else if self.manual_clock {
            Clock::manual_default()
        } else {
            Clock::real()
        };
        let token: Option<Arc<str>> = self.inspect_token.as_deref().map(Arc::from);
        let state = SimState::open(self, clock.clone())?;
        let shared: Shared = Arc::new(Mutex::new(state));
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let app = router(shared.clone(), token).into_make_service_with_connect_info::<SocketAddr>();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let server = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = rx.await;
            });
            if let Err(e) = server.await {
                tracing::error!(error = %e, "simulator server stopped");
            }
        });
        Ok(SimHandle {
            addr,
            shared,
            clock,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`: what a client takes as its base URL.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Moves simulated time forward (job lifecycles, the daily quota).
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
        lock(&self.shared).refresh_jobs();
    }

    pub fn outbox(&self) -> Vec<Letter> {
        let mut st = lock(&self.shared);
        st.refresh_jobs();
        st.outbox.clone()
    }

    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared).requests.clone()
    }

    /// Every set the simulator holds, listed or not yet (see [`SimConfig::set_listing_lag`]).
    pub fn sets(&self) -> Vec<SetSummary> {
        lock(&self.shared).sets.values().map(SetSummary::of).collect()
    }

    /// Makes a set and its job runs `days` days older, as if all had happened that much
    /// earlier: the set's creation; each run's submission, start and end (its listed name's
    /// date follows); the letters and password resets the runs produced. For a set "left over"
    /// from an earlier run without waiting days. `Err` for an unknown set.
    pub fn age_set(&self, set_id: &str, days: u32) -> Result<(), String> {
        lock(&self.shared).age_set(set_id, days)
    }

    /// Staff delete a set in Alma's UI: `GET /conf/sets/{id}` then answers 60107 and the list
    /// no longer shows it; the job runs made on it stay. `Err` for an unknown set.
    pub fn delete_set_as_staff(&self, set_id: &str) -> Result<(), String> {
        lock(&self.shared).delete_set_as_staff(set_id)
    }

    /// Staff remove a member from a set in Alma's UI (the id in any case). `Err` if the set or
    /// the member is not there.
    pub fn remove_member_as_staff(&self, set_id: &str, user_id: &str) -> Result<(), String> {
        lock(&self.shared).remove_member_as_staff(set_id, user_id)
    }

    /// Staff rename a set in Alma's UI. `Err` for an unknown set, an empty name or one another
    /// set has.
    pub fn rename_set_as_staff(&self, set_id: &str, new_name: &str) -> Result<(), String> {
        lock(&self.shared).rename_set_as_staff(set_id, new_name)
    }

    /// Staff edit a set's description in Alma's UI. `Err` for an unknown set.
    pub fn set_description_as_staff(&self, set_id: &str, text: &str) -> Result<(), String> {
        lock(&self.shared).set_description_as_staff(set_id, text)
    }

    pub fn set_members(&self, set_id: &str) -> Option<Vec<String>> {
        lock(&self.shared).sets.get(set_id).map(|s| s.members.clone())
    }

    pub fn job_instances(&self) -> Vec<InstanceSummary> {
        let mut st = lock(&self.shared);
        st.refresh_jobs();
        st.instances.values().map(InstanceSummary::of).collect()
    }

    /// The institution-specific id of the job called `name`.
    pub fn job_id(&self, name: &str) -> Option<String> {
        lock(&self.shared)
            .jobs
            .iter()
            .find(|j| j.name == name)
            .map(|j| j.id.clone())
    }

    /// The users as Alma holds them now (what `GET /users/{id}` and the job see).
    pub fn users(&self) -> Vec<UserSummary> {
        lock(&self.shared).users.iter().map(UserSummary::of).collect()
    }

    /// The users as the Analytics reports show them: as they were before any drift (the same
    /// as [`SimHandle::users`] without drift).
    pub fn report_users(&self) -> Vec<UserSummary> {
        lock(&self.shared).report_users.iter().map(UserSummary::of).collect()
    }

    /// The users whose live record changed after the reports were built (`--drift`,
    /// [`SimHandle::change_user`]), and how, in the order they changed.
    pub fn drifted(&self) -> Vec<(String, DriftKind)> {
        lock(&self.shared).drifted.clone()
    }

    /// Changes one user's live record now (`GET /users/{id}`, the job); the reports keep
    /// showing the user as before. `Err` for an unknown primary id.
    pub fn change_user(&self, id: &str, kind: DriftKind) -> Result<(), String> {
        lock(&self.shared).change_user(id, kind)
    }

    /// Staff change the User Notifications Letter now: its state, its `update_date` (the
    /// simulator's date) and `updated_by` (another person).
    pub fn set_letter(&self, state: LetterState) {
        let mut st = lock(&self.shared);
        let now = st.clock.now();
        st.letter.set(state, now);
    }

    /// The User Notifications Letter's state now.
    pub fn letter(&self) -> LetterState {
        lock(&self.shared).letter.state
    }

    /// Every password the job reset (Notify Password Change, internal members), in order.
    pub fn resets(&self) -> Vec<Reset> {
        let mut st = lock(&self.shared);
        st.refresh_jobs();
        st.resets.clone()
    }

    /// The users whose password was reset and who got no letter carrying it: by their last
    /// reset (a later letter with the new password lets them in again), in the order of that
    /// reset.
    pub fn locked_out(&self) -> Vec<String> {
        let mut st = lock(&self.shared);
        st.refresh_jobs();
        locked_out_ids(&st.resets)
    }

    pub fn quota_remaining(&self) -> u64 {
        lock(&self.shared).quota_remaining()
    }

    pub fn set_quota_remaining(&self, n: u64) {
        lock(&self.shared).set_quota_remaining(n);
    }

    /// Staff run Update/Notify Users (Notify Password Change) on a set from Alma's UI, as an
    /// operator might after a stop: an instance no API call made. Its id.
    pub fn run_job_from_ui(&self, set_id: &str) -> Result<String, String> {
        lock(&self.shared).run_from_ui(set_id)
    }

    /// Loads the report at `path` from a CSV file again while the simulator runs, as the data
    /// behind a saved report changes in Alma (the next page served has the new rows).
    pub fn load_csv_report(&self, path: &str, file: &std::path::Path) -> Result<(), String> {
        let report = catalog::SavedReport::from_csv(path, file)?;
        let mut st = lock(&self.shared);
        st.reports.retain(|r| r.path != report.path);
        st.reports.push(report);
        Ok(())
    }

    /// Adds a fault while the simulator runs (counted from now on).
    pub fn add_fault(&self, fault: Fault) {
        lock(&self.shared).add_fault(fault);
    }

    /// Takes every fault away (Alma works again).
    pub fn clear_faults(&self) {
        lock(&self.shared).clear_faults();
    }

    /// Stops the server and waits for it.
    pub async fn shutdown(mut self) {
        self.stop();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    /// Waits until the server stops (for `alma-cohort sim`).
    pub async fn wait(mut self) {
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Users whose last reset carried no letter with the password, in the order of that reset.
fn locked_out_ids(resets: &[Reset]) -> Vec<String> {
    let mut last: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (i, r) in resets.iter().enumerate() {
        last.insert(r.user_primary_id.to_ascii_lowercase(), i);
    }
    let mut ids: Vec<usize> = last.into_values().filter(|&i| resets[i].locked_out).collect();
    ids.sort_unstable();
    ids.into_iter().map(|i| resets[i].user_primary_id.clone()).collect()
}

fn router(shared: Shared, token: Option<Arc<str>>) -> Router {
    Router::new()
        .route("/_sim/outbox", get(inspect_outbox))
        .route("/_sim/resets", get(inspect_resets))
        .route("/_sim/letters", get(inspect_letter).post(inspect_set_letter))
        .route("/_sim/requests", get(inspect_requests))
        .route("/_sim/sets/{id}", delete(inspect_delete_set))
        .route("/_sim/sets/{id}/age", post(inspect_age_set))
        .route("/_sim/sets/{id}/members", get(inspect_set_members))
        .route("/_sim/sets/{id}/members/{user_id}", delete(inspect_remove_member))
        .route("/_sim/state", get(inspect_state))
        .route("/_sim/users", get(inspect_users))
        .route("/_sim/clock/advance", post(inspect_advance))
        .route("/_sim/faults/clear", post(inspect_clear_faults))
        .route("/_sim/jobs/run-from-ui", post(inspect_run_from_ui))
        .route_layer(axum::middleware::from_fn_with_state(token, inspection_allowed))
        .fallback(almaws)
        .with_state(shared)
}

/// `/_sim/*` shows the temporary passwords and the loaded report data: it answers a client on
/// loopback, and one elsewhere only with the token the simulator was started with.
async fn inspection_allowed(
    State(token): State<Option<Arc<str>>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let given = request.headers().get("x-sim-token").map(HeaderValue::as_bytes);
    let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok());
    if may_inspect(peer.ip(), host, token.as_deref(), given) {
        return next.run(request).await;
    }
    let message = if token.is_some() {
        "/_sim/* answers clients off this machine only with the header X-Sim-Token (the simulator's --inspect-token)"
    } else {
        "/_sim/* answers only clients on this machine that ask for it by address or as localhost; start the simulator with --inspect-token to let others in"
    };
    (StatusCode::FORBIDDEN, axum::Json(json!({ "error": message }))).into_response()
}

/// A client on loopback (IPv4, IPv6, or IPv4 mapped into IPv6) that asked for this machine by
/// address or as `localhost` may look inside — not a web page whose own name was made to resolve
/// to 127.0.0.1 (DNS rebinding); any client with the token the simulator was given may too.
fn may_inspect(peer: std::net::IpAddr, host: Option<&str>, token: Option<&str>, given: Option<&[u8]>) -> bool {
    if let (Some(token), Some(given)) = (token, given) {
        return same_bytes(token.as_bytes(), given);
    }
    peer.to_canonical().is_loopback() && host.is_none_or(names_this_machine)
}

/// A `Host` header that names this machine: an IP address or `localhost`, with or without a port.
fn names_this_machine(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<std::net::IpAddr>().is_ok()
}

/// Compares in time that does not depend on where the two differ.
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Every `/almaws/v1/...` request (and anything unknown): gateway, optional delay, processing,
/// and the answer with Alma's headers.
async fn almaws(State(shared): State<Shared>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let segs: Vec<String> = match uri.path().strip_prefix("/almaws/v1") {
        Some(rest) => rest
            .split('/')
            .filter(|s| !s.is_empty())
            .map(|s| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned())
            .collect(),
        None => vec![format!("..{}", uri.path())],
    };
    let query: Vec<(String, String)> = form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
        .into_owned()
        .collect();
    let header_str = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_string);
    let format_param = query.iter().find(|(k, _)| k == "format").map(|(_, v)| v.as_str());
    let format = Format::negotiate(header_str(header::ACCEPT).as_deref(), format_param);
    let key = header_str(header::AUTHORIZATION)
        .and_then(|a| {
            let (scheme, key) = a.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("apikey").then(|| key.trim().to_string())
        })
        .or_else(|| {
            query
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("apikey"))
                .map(|(_, v)| v.clone())
        });
    // Links are absolute, or relative (`/almaws/v1/…`) with the quirk.
    let base = if lock(&shared).cfg.has(Quirk::RelativeLinks) {
        String::new()
    } else {
        format!(
            "http://{}",
            header_str(header::HOST).unwrap_or_else(|| "127.0.0.1".into())
        )
    };
    let req = Req {
        method: method.clone(),
        segs,
        query,
        format,
        content_type: header_str(header::CONTENT_TYPE),
        body: body.to_vec(),
        base,
    };
    let target = classify(&method, &req.segs, &req.query);
    let (admission, log) = lock(&shared).admit(&req, key.as_deref(), target, Instant::now());
    match admission {
        Admission::Answer(reply) => respond(&shared, reply, format, log, false),
        Admission::DropBefore => {
            lock(&shared).finish_log(log, None, true);
            cut_off(StatusCode::OK, Vec::new())
        }
        Admission::Proceed { delay, drop_after } => {
            if !delay.is_zero() {
                // If the client gives up while we wait, this future is dropped and nothing is processed.
                tokio::time::sleep(delay).await;
            }
            let reply = lock(&shared).process(&req, target);
            respond(&shared, reply, format, log, drop_after)
        }
    }
}

fn respond(shared: &Shared, reply: Reply, format: Format, log: usize, drop_after: bool) -> Response {
    let (content_type, text, remaining, request_id, date) = {
        let mut st = lock(shared);
        let (content_type, text) = reply.render_with(format, st.cfg.has(Quirk::ErrorsRecordedShapes));
        st.finish_log(log, Some(reply.status.as_u16()), drop_after);
        // Alma's gateway dates its answers; here by the simulator's clock (manual or real), so
        // that a client that takes "today" from Alma agrees with the simulated institution.
        let date = st.clock.now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        (content_type, text, st.quota_remaining(), st.request_id(), date)
    };
    if drop_after {
        let mut bytes = text.into_bytes();
        bytes.truncate(bytes.len() / 2);
        return cut_off(reply.status, bytes);
    }
    let mut response = (reply.status, text).into_response();
    let h = response.headers_mut();
    match content_type {
        Some(ct) => {
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
        }
        None => {
            h.remove(header::CONTENT_TYPE);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&remaining.to_string()) {
        h.insert("x-exl-api-remaining", v);
    }
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        h.insert("x-request-id", v);
    }
    h.insert(header::SERVER, HeaderValue::from_static("Layer7-API-Gateway"));
    if let Ok(v) = HeaderValue::from_str(&date) {
        h.insert(header::DATE, v);
    }
    response
}

/// An answer whose connection breaks after `partial` bytes of body: the client sees a transport
/// error, exactly as when a connection drops mid-answer.
fn cut_off(status: StatusCode, partial: Vec<u8>) -> Response {
    let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(Bytes::from(partial)),
        Err(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "simulated dropped connection",
        )),
    ];
    let mut response = Response::new(Body::from_stream(futures_util::stream::iter(chunks)));
    *response.status_mut() = status;
    response
}

async fn inspect_outbox(State(shared): State<Shared>) -> Response {
    let mut st = lock(&shared);
    st.refresh_jobs();
    axum::Json(json!({"total": st.outbox.len(), "letters": st.outbox})).into_response()
}

async fn inspect_resets(State(shared): State<Shared>) -> Response {
    let mut st = lock(&shared);
    st.refresh_jobs();
    let locked = locked_out_ids(&st.resets);
    axum::Json(json!({
        "resets": st.resets.len(),
        "letters": st.resets.iter().filter(|r| r.letter).count(),
        "locked_out": locked.len(),
        "locked_out_ids": locked,
        "items": st.resets,
    }))
    .into_response()
}

fn letter_state_json(st: &SimState) -> serde_json::Value {
    json!({
        "code": USER_NOTIFICATIONS_LETTER,
        "state": st.letter.state,
        "update_date": format!("{}Z", st.letter.update_date.format("%Y-%m-%d")),
        "updated_by": st.letter.updated_by.0,
    })
}

async fn inspect_letter(State(shared): State<Shared>) -> Response {
    axum::Json(letter_state_json(&lock(&shared))).into_response()
}

#[derive(serde::Deserialize)]
struct LetterParams {
    state: String,
}

/// `POST /_sim/letters?state=standard|disabled|sms|no-password|broken-xsl|reworded`: [`SimHandle::set_letter`].
async fn inspect_set_letter(State(shared): State<Shared>, Query(p): Query<LetterParams>) -> Response {
    match p.state.parse::<LetterState>() {
        Ok(state) => {
            let mut st = lock(&shared);
            let now = st.clock.now();
            st.letter.set(state, now);
            axum::Json(letter_state_json(&st)).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    }
}

async fn inspect_requests(State(shared): State<Shared>) -> Response {
    let st = lock(&shared);
    axum::Json(json!({"total": st.requests.len(), "requests": st.requests})).into_response()
}

async fn inspect_set_members(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&shared).sets.get(&id) {
        Some(s) => axum::Json(json!({"set_id": id, "name": s.name, "members": s.members})).into_response(),
        None => (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": format!("no set {id}")})),
        )
            .into_response(),
    }
}

/// A `/_sim/*` refusal: 400 and its one line.
fn sim_error(message: String) -> Response {
    (StatusCode::BAD_REQUEST, axum::Json(json!({ "error": message }))).into_response()
}

/// `POST /_sim/sets/{id}/age?days=N`: [`SimHandle::age_set`]; the set's summary.
async fn inspect_age_set(
    State(shared): State<Shared>,
    Path(id): Path<String>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let days = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == "days")
        .map(|(_, v)| v.into_owned());
    let days = match days.as_deref().map(|v| (v, v.trim().parse::<u32>())) {
        Some((_, Ok(n))) => n,
        Some((v, Err(_))) => return sim_error(format!("days must be a whole number of days, 0 or more, got {v:?}")),
        None => return sim_error("days=N is missing: how many days older the set is to be".into()),
    };
    let mut st = lock(&shared);
    match st.age_set(&id, days) {
        Ok(()) => match st.sets.get(&id) {
            Some(set) => axum::Json(SetSummary::of(set)).into_response(),
            None => sim_error(format!("no set {id}")),
        },
        Err(e) => sim_error(e),
    }
}

/// `DELETE /_sim/sets/{id}`: [`SimHandle::delete_set_as_staff`].
async fn inspect_delete_set(State(shared): State<Shared>, Path(id): Path<String>) -> Response {
    match lock(&shared).delete_set_as_staff(&id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => sim_error(e),
    }
}

/// `DELETE /_sim/sets/{id}/members/{user_id}`: [`SimHandle::remove_member_as_staff`].
async fn inspect_remove_member(State(shared): State<Shared>, Path((id, user_id)): Path<(String, String)>) -> Response {
    match lock(&shared).remove_member_as_staff(&id, &user_id) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => sim_error(e),
    }
}

async fn inspect_state(State(shared): State<Shared>) -> Response {
    let mut st = lock(&shared);
    st.refresh_jobs();
    let sets: Vec<_> = st
        .sets
        .values()
        .map(|s| json!({"id": s.id, "name": s.name, "members": s.members.len(), "private": s.private, "created": rfc3339(s.created)}))
        .collect();
    let instances: Vec<_> = st
        .instances
        .values()
        .map(|i| json!({"id": i.id, "job_id": i.job_id, "set_id": i.set_id, "status": i.status, "members": i.members.len(), "submitted": rfc3339(i.submitted)}))
        .collect();
    let reports: Vec<_> = st
        .reports
        .iter()
        .map(|r| json!({"path": r.path, "columns": r.columns.len()}))
        .collect();
    let job = st
        .jobs
        .iter()
        .find(|j| j.name == UPDATE_NOTIFY_USERS)
        .map(|j| j.id.clone());
    axum::Json(json!({
        "now": st.clock.now(),
        "manual_clock": st.clock.is_manual(),
        "users": st.users.len(),
        "seed": st.cfg.seed,
        "quota_remaining": st.quota_remaining(),
        "update_notify_users_job_id": job,
        "reports": reports,
        "sets": sets,
        "job_instances": instances,
        "letters": st.outbox.len(),
        "letter": letter_state_json(&st),
        "resets": st.resets.len(),
        "drifted": drifted_json(&st.drifted),
    }))
    .into_response()
}

fn drifted_json(drifted: &[(String, DriftKind)]) -> Vec<serde_json::Value> {
    drifted
        .iter()
        .map(|(id, kind)| json!({"primary_id": id, "drift": kind}))
        .collect()
}

/// The live records (as Alma holds them now), and the users that drifted from the reports.
async fn inspect_users(State(shared): State<Shared>) -> Response {
    let st = lock(&shared);
    let users: Vec<_> = st
        .users
        .iter()
        .map(|u| {
            json!({"primary_id": u.primary_id, "user_group": u.user_group, "active": u.active,
                   "account_type": u.account_type.code(), "expiry_date": u.expiry_date,
                   "record_type": if u.is_staff() { "STAFF" } else { "PUBLIC" },
                   "preferred_email": u.email, "other_email": u.other_email})
        })
        .collect();
    axum::Json(json!({"total": users.len(), "users": users, "drifted": drifted_json(&st.drifted)})).into_response()
}

#[derive(serde::Deserialize)]
struct AdvanceParams {
    seconds: f64,
}

#[derive(serde::Deserialize)]
struct RunFromUiParams {
    set_id: String,
}

/// `POST /_sim/jobs/run-from-ui?set_id=…`: [`SimHandle::run_job_from_ui`] from outside.
async fn inspect_run_from_ui(State(shared): State<Shared>, Query(p): Query<RunFromUiParams>) -> Response {
    match lock(&shared).run_from_ui(&p.set_id) {
        Ok(id) => axum::Json(json!({"instance": id})).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(json!({"error": e}))).into_response(),
    }
}

async fn inspect_advance(State(shared): State<Shared>, Query(p): Query<AdvanceParams>) -> Response {
    if !(p.seconds.is_finite() && p.seconds >= 0.0) {
        return (
            StatusCode::BAD_REQUEST,
            axum::Json(json!({"error": "seconds must be a non-negative number"})),
        )
            .into_response();
    }
    let mut st = lock(&shared);
    st.clock.advance(Duration::from_secs_f64(p.seconds));
    st.refresh_jobs();
    axum::Json(json!({"now": st.clock.now()})).into_response()
}

/// `POST /_sim/faults/clear`: [`SimHandle::clear_faults`] from outside — Alma works again (the
/// quota spent between two batches is back, the instance list answers).
async fn inspect_clear_faults(State(shared): State<Shared>) -> Response {
    lock(&shared).clear_faults();
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    /// One HTTP/1.1 request over loopback (the crate has no HTTP client): status and body.
    async fn http(sim: &SimHandle, method: &str, path: &str, accept_json: bool) -> (u16, String) {
        use std::io::{Read, Write};
        let accept = if accept_json {
            "Accept: application/json\r\n"
        } else {
            ""
        };
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: apikey sim-rw\r\n{accept}Content-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let addr = sim.addr();
        // Blocking I/O on the blocking pool: the crate's tokio has no io-util.
        let raw = tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
            stream.write_all(request.as_bytes()).unwrap();
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).unwrap();
            raw
        })
        .await
        .unwrap();
        let text = String::from_utf8(raw).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, body.to_string())
    }

    async fn json_of(sim: &SimHandle, method: &str, path: &str) -> serde_json::Value {
        let (status, body) = http(sim, method, path, true).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    #[tokio::test]
    async fn users_are_full_records_over_the_wire() {
        let sim = SimConfig::default()
            .users(2000)
            .seed(7)
            .manual_clock()
            .rate_limit(0)
            .start()
            .await
            .unwrap();
        let users = sim.users();
        let pick = |p: &dyn Fn(&UserSummary) -> bool| users.iter().find(|u| p(u)).unwrap().primary_id.clone();
        let staff = pick(&|u| u.user_group == "STAFF");
        let v = json_of(&sim, "GET", &format!("/almaws/v1/users/{staff}")).await;
        assert_eq!(v["record_type"], json!({"value": "STAFF", "desc": "Staff"}));
        let roles = v["user_role"].as_array().unwrap();
        assert_eq!(
            roles[0],
            json!({"status": {"value": "ACTIVE", "desc": "Active"},
                   "scope": {"value": "01EXAMPLE_INST", "desc": "Example University"},
                   "role_type": {"value": "200", "desc": "Patron"}, "parameter": []})
        );
        assert!(roles.len() >= 2 && roles[1]["role_type"]["value"] != "200");

        let public = pick(&|u| u.email.is_some() && u.other_email.is_some() && u.internal && u.expiry_date.is_some());
        let v = json_of(&sim, "GET", &format!("/almaws/v1/users/{public}")).await;
        let summary = users.iter().find(|u| u.primary_id == public).unwrap();
        assert_eq!(v["record_type"]["value"], "PUBLIC");
        assert_eq!(v["user_role"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["expiry_date"],
            format!("{}Z", summary.expiry_date.as_deref().unwrap())
        );
        let emails = v["contact_info"]["email"].as_array().unwrap();
        assert_eq!(emails.len(), 2);
        assert_eq!(
            (
                emails[0]["email_address"].as_str(),
                &emails[0]["preferred"],
                emails[0]["segment_type"].as_str()
            ),
            (summary.email.as_deref(), &json!(true), Some("Internal"))
        );
        assert_eq!(
            (emails[1]["email_address"].as_str(), &emails[1]["preferred"]),
            (summary.other_email.as_deref(), &json!(false))
        );
        assert_eq!(
            emails[1]["email_type"][0],
            json!({"value": "personal", "desc": "Personal"})
        );

        let other_only = pick(&|u| u.email.is_none() && u.other_email.is_some());
        let v = json_of(&sim, "GET", &format!("/almaws/v1/users/{other_only}")).await;
        assert_eq!(v["contact_info"]["email"].as_array().unwrap().len(), 1);
        assert_eq!(
            v["contact_info"]["email"][0]["preferred"], false,
            "an address, none preferred"
        );
        let none = pick(&|u| u.email.is_none() && u.other_email.is_none());
        let v = json_of(&sim, "GET", &format!("/almaws/v1/users/{none}")).await;
        assert_eq!(v["contact_info"]["email"], json!([]));
        let never = pick(&|u| u.expiry_date.is_none());
        let v = json_of(&sim, "GET", &format!("/almaws/v1/users/{never}")).await;
        assert!(
            v["expiry_date"].is_null() && v.get("expiry_date").is_some(),
            "null in JSON"
        );
        let (_, xml) = http(&sim, "GET", &format!("/almaws/v1/users/{never}"), false).await;
        assert!(!xml.contains("expiry_date"), "left out in XML: {xml}");
        let (_, xml) = http(&sim, "GET", &format!("/almaws/v1/users/{staff}"), false).await;
        assert!(xml.contains("<record_type desc=\"Staff\">STAFF</record_type>"), "{xml}");
        assert!(
            xml.contains("<user_roles><user_role><status desc=\"Active\">ACTIVE</status>"),
            "{xml}"
        );
        let (_, xml) = http(&sim, "GET", &format!("/almaws/v1/users/{public}"), false).await;
        assert!(
            xml.contains(&format!(
                "<emails><email preferred=\"true\" segment_type=\"Internal\"><email_address>{}</email_address>",
                summary.email.as_deref().unwrap()
            )),
            "{xml}"
        );
        assert!(
            xml.contains("<email preferred=\"false\" segment_type=\"Internal\">"),
            "{xml}"
        );
        let (status, missing) = http(&sim, "GET", "/almaws/v1/users/nobody-here", true).await;
        assert_eq!(status, 400);
        assert!(missing.contains("401861"));
    }

    #[tokio::test]
    async fn resets_letters_and_drift_are_shown_under_sim() {
        let sim = SimConfig::default()
            .users(500)
            .seed(7)
            .manual_clock()
            .rate_limit(0)
            .drift(DriftKind::NoEmail, 2)
            .drift(DriftKind::Staff, 1)
            .start()
            .await
            .unwrap();
        let drifted = sim.drifted();
        assert_eq!(
            drifted.iter().map(|d| d.1).collect::<Vec<_>>(),
            [DriftKind::NoEmail, DriftKind::NoEmail, DriftKind::Staff]
        );
        let users = json_of(&sim, "GET", "/_sim/users").await;
        assert_eq!(
            users["drifted"][0],
            json!({"primary_id": drifted[0].0, "drift": "no_email"})
        );
        assert_eq!(users["drifted"][2]["drift"], "staff");
        let state = json_of(&sim, "GET", "/_sim/state").await;
        assert_eq!(state["drifted"].as_array().unwrap().len(), 3);
        assert_eq!(state["letter"]["state"], "standard");
        // The report users still have their address; the live ones do not.
        let live = sim.users();
        let report = sim.report_users();
        let at = |list: &[UserSummary], id: &str| list.iter().find(|u| u.primary_id == id).unwrap().clone();
        assert!(at(&report, &drifted[0].0).email.is_some() && at(&live, &drifted[0].0).email.is_none());
        assert!(!at(&report, &drifted[2].0).staff && at(&live, &drifted[2].0).staff);

        // Staff send Notify Password Change from the UI to the three and one eligible user.
        let today = sim.clock().now().date_naive().to_string();
        let eligible = live
            .iter()
            .find(|u| {
                u.internal
                    && u.active
                    && u.email.is_some()
                    && !u.staff
                    && u.expiry_date.as_deref().is_none_or(|d| d >= today.as_str())
            })
            .unwrap()
            .primary_id
            .clone();
        let mut members: Vec<String> = drifted.iter().map(|d| d.0.clone()).collect();
        members.push(eligible.clone());
        let set_id = {
            let mut st = lock(&sim.shared);
            crate::testkit::set_of(&mut st, &members)
        };
        sim.run_job_from_ui(&set_id).unwrap();
        sim.advance(Duration::from_secs(3600));
        let locked = sim.locked_out();
        assert_eq!(
            locked,
            [drifted[0].0.clone(), drifted[1].0.clone()],
            "the two without a preferred address"
        );
        assert_eq!(sim.resets().len(), 4);
        assert_eq!(sim.outbox().len(), 2, "the staff user and the eligible one");
        let resets = json_of(&sim, "GET", "/_sim/resets").await;
        assert_eq!(
            (
                resets["resets"].as_u64(),
                resets["letters"].as_u64(),
                resets["locked_out"].as_u64()
            ),
            (Some(4), Some(2), Some(2))
        );
        assert_eq!(resets["locked_out_ids"], json!(locked));
        assert_eq!(resets["items"][0]["why"], "no preferred email");
        assert_eq!(resets["items"][0]["temp_password"].as_str().unwrap().len(), 10);
        let outbox = json_of(&sim, "GET", "/_sim/outbox").await;
        assert_eq!(outbox["total"], 2);
        assert_eq!(outbox["letters"][0]["carries_password"], true);

        // The letter disabled through /_sim: dated today, by someone else.
        let letter = json_of(&sim, "POST", "/_sim/letters?state=disabled").await;
        assert_eq!(letter["state"], "disabled");
        assert_eq!(letter["update_date"], "2026-01-05Z");
        assert_eq!(sim.letter(), LetterState::Disabled);
        let got = json_of(&sim, "GET", "/almaws/v1/conf/letters/UserNotificationsLetter").await;
        assert_eq!(got["enabled"]["value"], "false");
        assert_eq!(got["updated_by"]["value"], "rlopez");
        let (status, _) = http(&sim, "POST", "/_sim/letters?state=fax", true).await;
        assert_eq!(status, 400);
        sim.set_letter(LetterState::Sms);
        let got = json_of(&sim, "GET", "/almaws/v1/conf/letters/UserNotificationsLetter").await;
        assert_eq!(got["channel"], "SMS");

        // A user changed at run time.
        sim.change_user(&eligible, DriftKind::Inactive).unwrap();
        let v = json_of(&sim, "GET", &format!("/almaws/v1/users/{eligible}")).await;
        assert_eq!(v["status"]["value"], "INACTIVE");
        assert!(at(&sim.report_users(), &eligible).active, "the report lags");
        assert_eq!(sim.drifted().last(), Some(&(eligible.clone(), DriftKind::Inactive)));
        assert!(sim.change_user("nobody-here", DriftKind::Inactive).is_err());
    }

    #[tokio::test]
    async fn seeds_join_the_reports_and_replace_seeded_users() {
        let probe = SimConfig::default()
            .users(50)
            .seed(7)
            .manual_clock()
            .start()
            .await
            .unwrap();
        let taken = probe.users()[0].primary_id.clone();
        let sim = SimConfig::default()
            .users(50)
            .seed(7)
            .manual_clock()
            .rate_limit(0)
            .user_seeds(vec![
                UserSeed {
                    primary_id: "LIB-7".into(),
                    user_group: Some("PHD".into()),
                    ..UserSeed::default()
                },
                UserSeed {
                    primary_id: taken.to_lowercase(),
                    internal: Some(false),
                    ..UserSeed::default()
                },
            ])
            .start()
            .await
            .unwrap();
        let users = sim.users();
        assert_eq!(users.len(), 51);
        assert_eq!(
            (
                users[50].primary_id.as_str(),
                users[50].user_group.as_str(),
                users[50].expiry_date.as_deref()
            ),
            ("LIB-7", "PHD", Some("2027-01-05"))
        );
        assert_eq!(
            (users[0].primary_id.as_str(), users[0].internal),
            (taken.as_str(), false)
        );
        let v = json_of(&sim, "GET", "/almaws/v1/users/lib-7").await;
        assert_eq!(v["user_group"], json!({"value": "PHD", "desc": "PHD"}));
        assert_eq!(v["contact_info"]["email"][0]["preferred"], true);
        let q = "/almaws/v1/analytics/reports?limit=1000&path=%2Fshared%2FExample%20University%2FReports%2FPassword%20Resets%2FAll%20users";
        let (status, page) = http(&sim, "GET", q, false).await;
        assert_eq!(status, 200);
        assert!(page.contains("LIB-7") && page.contains("PHD"), "in the report");
    }

    #[tokio::test]
    async fn staff_actions_and_ageing_under_sim() {
        let sim = SimConfig::default()
            .users(50)
            .seed(7)
            .manual_clock()
            .rate_limit(0)
            .set_listing_lag(Duration::from_secs(600))
            .start()
            .await
            .unwrap();
        let ids: Vec<String> = sim.users()[..3].iter().map(|u| u.primary_id.clone()).collect();
        let set = {
            let mut st = lock(&sim.shared);
            crate::testkit::set_of(&mut st, &ids)
        };
        let run = sim.run_job_from_ui(&set).unwrap();
        let summary = sim.sets().into_iter().find(|s| s.id == set).unwrap();
        assert_eq!(summary.created, "2026-01-05T06:00:00Z");
        let instance = |sim: &SimHandle| sim.job_instances().into_iter().find(|i| i.id == run).unwrap();
        assert_eq!(instance(&sim).submitted, "2026-01-05T06:00:00Z");
        // Read by id at once, listed only after the lag.
        json_of(&sim, "GET", &format!("/almaws/v1/conf/sets/{set}")).await;
        let list = json_of(&sim, "GET", "/almaws/v1/conf/sets").await;
        assert_eq!(list["total_record_count"], 0);

        // Two days older: the set, its run; listed now (the lag is long past).
        let aged = json_of(&sim, "POST", &format!("/_sim/sets/{set}/age?days=2")).await;
        assert_eq!(
            aged,
            json!({"id": set, "name": summary.name, "description": "", "private": true, "members": 3,
                   "created": "2026-01-03T06:00:00Z"})
        );
        assert_eq!(sim.sets()[0].created, "2026-01-03T06:00:00Z");
        assert_eq!(instance(&sim).submitted, "2026-01-03T06:00:00Z");
        assert_eq!(instance(&sim).status, "COMPLETED_SUCCESS", "it ended two days ago");
        let state = json_of(&sim, "GET", "/_sim/state").await;
        assert_eq!(state["sets"][0]["created"], "2026-01-03T06:00:00Z");
        assert_eq!(state["job_instances"][0]["submitted"], "2026-01-03T06:00:00Z");
        let list = json_of(&sim, "GET", "/almaws/v1/conf/sets").await;
        assert_eq!(list["total_record_count"], 1);
        sim.age_set(&set, 0).unwrap();
        assert_eq!(sim.sets()[0].created, "2026-01-03T06:00:00Z", "0 days: as it was");
        for (path, error) in [
            (format!("/_sim/sets/{set}/age?days=-1"), "whole number"),
            (format!("/_sim/sets/{set}/age?days=two"), "whole number"),
            (format!("/_sim/sets/{set}/age?days=1.5"), "whole number"),
            (format!("/_sim/sets/{set}/age"), "days=N is missing"),
            (format!("/_sim/sets/{set}/age?days=4294967295"), "out of range"),
            ("/_sim/sets/nope/age?days=1".to_string(), "no set nope"),
        ] {
            let (status, body) = http(&sim, "POST", &path, true).await;
            assert_eq!(status, 400, "{path}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            let message = v["error"].as_str().unwrap();
            assert!(message.contains(error) && !message.contains('\n'), "{path}: {message}");
        }
        assert_eq!(sim.sets()[0].created, "2026-01-03T06:00:00Z", "refusals move nothing");

        // A member removed by staff, the id in another case.
        let path = format!("/_sim/sets/{set}/members/{}", ids[1].to_lowercase());
        assert_eq!(http(&sim, "DELETE", &path, true).await, (204, String::new()));
        assert_eq!(sim.set_members(&set), Some(vec![ids[0].clone(), ids[2].clone()]));
        let (status, body) = http(&sim, "DELETE", &path, true).await;
        assert_eq!(status, 400);
        assert!(body.contains("is not a member of set"), "{body}");
        let (status, body) = http(&sim, "DELETE", &format!("/_sim/sets/nope/members/{}", ids[0]), true).await;
        assert_eq!((status, body.contains("no set nope")), (400, true), "{body}");
        assert!(sim.remove_member_as_staff(&set, &ids[1]).is_err());

        sim.rename_set_as_staff(&set, "Kept by staff").unwrap();
        sim.set_description_as_staff(&set, "do not delete").unwrap();
        let got = json_of(&sim, "GET", &format!("/almaws/v1/conf/sets/{set}")).await;
        assert_eq!(
            (got["name"].as_str(), got["description"].as_str()),
            (Some("Kept by staff"), Some("do not delete"))
        );

        // The set deleted by staff: 60107, not listed; its run stays.
        assert_eq!(
            http(&sim, "DELETE", &format!("/_sim/sets/{set}"), true).await,
            (204, String::new())
        );
        let (status, body) = http(&sim, "GET", &format!("/almaws/v1/conf/sets/{set}"), true).await;
        assert_eq!(status, 400);
        assert!(body.contains("60107"), "{body}");
        let list = json_of(&sim, "GET", "/almaws/v1/conf/sets").await;
        assert_eq!(list["total_record_count"], 0);
        let listed = json_of(&sim, "GET", "/almaws/v1/conf/jobs/ALL/instances").await;
        assert_eq!(listed["job_instance"][0]["id"], json!(run));
        assert_eq!(instance(&sim).set_id, set);
        let (status, body) = http(&sim, "DELETE", &format!("/_sim/sets/{set}"), true).await;
        assert_eq!((status, body.contains(&format!("no set {set}"))), (400, true), "{body}");
        assert!(sim.delete_set_as_staff(&set).is_err());
        assert!(sim.age_set(&set, 1).is_err());
    }

    #[test]
    fn inside_only_from_loopback_or_with_the_token() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let token = "0123456789abcdef-token";
        for local in ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"] {
            for host in [
                None,
                Some("127.0.0.1:8089"),
                Some("localhost"),
                Some("[::1]:8089"),
                Some("LOCALHOST:1"),
            ] {
                assert!(may_inspect(ip(local), host, None, None), "{local} {host:?}");
            }
            // A page of evil.example whose name resolves to 127.0.0.1.
            assert!(
                !may_inspect(ip(local), Some("evil.example:8089"), None, None),
                "{local}"
            );
            assert!(!may_inspect(
                ip(local),
                Some("evil.example"),
                Some(token),
                Some(b"wrong")
            ));
            assert!(may_inspect(
                ip(local),
                Some("sim.internal"),
                Some(token),
                Some(token.as_bytes())
            ));
        }
        for elsewhere in ["192.0.2.7", "10.0.0.1", "2001:db8::1", "::ffff:192.0.2.7"] {
            let host = Some("192.0.2.1:8089");
            assert!(!may_inspect(ip(elsewhere), host, None, None), "{elsewhere}");
            assert!(
                !may_inspect(ip(elsewhere), host, None, Some(token.as_bytes())),
                "no token set: {elsewhere}"
            );
            assert!(!may_inspect(ip(elsewhere), host, Some(token), None), "{elsewhere}");
            assert!(!may_inspect(
                ip(elsewhere),
                host,
                Some(token),
                Some(b"0123456789abcdef-tokeN")
            ));
            assert!(!may_inspect(
                ip(elsewhere),
                host,
                Some(token),
                Some(b"0123456789abcdef")
            ));
            assert!(
                may_inspect(ip(elsewhere), host, Some(token), Some(token.as_bytes())),
                "{elsewhere}"
            );
        }
        assert!(SimConfig::default().inspect_token("short").is_err());
        assert!(
            SimConfig::default().inspect_token("sixteen chars ok").is_err(),
            "a space"
        );
        assert!(SimConfig::default().inspect_token(token).is_ok());
    }
}
