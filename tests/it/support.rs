//! Test helpers: a simulator plus a plain reqwest client, responses as text/JSON/XML, and
//! golden files under `fixtures/` (set `BLESS=1` to rewrite them).

use std::path::PathBuf;
use std::time::Duration;

use alma_sim::{SimConfig, SimHandle};
use serde_json::Value;

pub const KEY: &str = "sim-rw";
pub const ALL_USERS: &str = "/shared/Example University/Reports/Password Resets/All users";
pub const BY_GROUP: &str = "/shared/Example University/Reports/Password Resets/Active users by group";
pub const EXPIRING: &str = "/shared/Example University/Reports/Password Resets/Users expiring in a date range";
pub const EMPTY: &str = "/shared/Example University/Reports/Fixtures/Empty";
pub const ONE_ROW: &str = "/shared/Example University/Reports/Fixtures/One row";

pub struct Sim {
    pub handle: SimHandle,
    pub http: reqwest::Client,
}

/// One HTTP answer, read in full.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The application error code of an Alma error body (JSON list form or XML).
    pub fn error_code(&self) -> String {
        if let Ok(v) = serde_json::from_str::<Value>(&self.text) {
            let err = &v["errorList"]["error"];
            let err = if err.is_array() {
                &err[0]
            } else {
                &v["web_service_result"]["errorList"]["error"]
            };
            return err["errorCode"].as_str().unwrap_or_default().to_string();
        }
        between(&self.text, "<errorCode>", "</errorCode>")
            .unwrap_or_default()
            .to_string()
    }
}

pub fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

pub fn count(text: &str, needle: &str) -> usize {
    text.matches(needle).count()
}

pub async fn sim(config: SimConfig) -> Sim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let handle = config.start().await.expect("simulator starts");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    Sim { handle, http }
}

/// A small institution on a manual clock, no rate limit: the usual test setup.
pub fn config(users: usize) -> SimConfig {
    SimConfig::default().users(users).seed(7).manual_clock().rate_limit(0)
}

impl Sim {
    pub fn url(&self, path_and_query: &str) -> String {
        format!(
            "{}/almaws/v1/{}",
            self.handle.base_url(),
            path_and_query.trim_start_matches('/')
        )
    }

    pub async fn send(&self, rb: reqwest::RequestBuilder) -> Resp {
        let r = rb.send().await.expect("request is answered");
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        Resp { status, headers, text }
    }

    /// GET with the read/write key, XML (no Accept header).
    pub async fn get(&self, path: &str) -> Resp {
        self.send(
            self.http
                .get(self.url(path))
                .header("Authorization", format!("apikey {KEY}")),
        )
        .await
    }

    pub async fn get_json(&self, path: &str) -> Resp {
        self.send(
            self.http
                .get(self.url(path))
                .header("Authorization", format!("apikey {KEY}"))
                .header("Accept", "application/json"),
        )
        .await
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> Resp {
        self.send(
            self.http
                .post(self.url(path))
                .header("Authorization", format!("apikey {KEY}"))
                .header("Accept", "application/json")
                .header("Content-Type", "application/json")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn post_xml(&self, path: &str, body: &str) -> Resp {
        self.send(
            self.http
                .post(self.url(path))
                .header("Authorization", format!("apikey {KEY}"))
                .header("Content-Type", "application/xml")
                .body(body.to_string()),
        )
        .await
    }

    pub async fn delete(&self, path: &str) -> Resp {
        self.send(
            self.http
                .delete(self.url(path))
                .header("Authorization", format!("apikey {KEY}")),
        )
        .await
    }

    /// First page of a report (`limit` rows a page).
    pub async fn report(&self, path: &str, limit: usize, extra: &str) -> Resp {
        let q = format!("path={}&limit={limit}&col_names=true{extra}", enc(path));
        self.get(&format!("analytics/reports?{q}")).await
    }

    /// Pages a whole report; returns every page's text.
    pub async fn all_pages(&self, path: &str, limit: usize) -> Vec<String> {
        let first = self.report(path, limit, "").await;
        assert_eq!(first.status, 200, "{}", first.text);
        let token = between(&first.text, "<ResumptionToken>", "</ResumptionToken>").map(str::to_string);
        let mut pages = vec![first.text];
        while !pages.last().expect("a page").contains("<IsFinished>true</IsFinished>") {
            let t = token.as_deref().expect("a token while not finished");
            let next = self.get(&format!("analytics/reports?token={t}")).await;
            assert_eq!(next.status, 200, "{}", next.text);
            pages.push(next.text);
            assert!(pages.len() < 10_000, "paging never ends");
        }
        pages
    }

    /// Creates an itemized USER set; returns its id.
    pub async fn create_set(&self, name: &str) -> String {
        let r = self
            .post_json(
                "conf/sets",
                &serde_json::json!({"name": name, "type": {"value": "ITEMIZED"}, "content": {"value": "USER"},
                                    "private": {"value": "false"}}),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()["id"].as_str().expect("set id").to_string()
    }

    pub async fn add_members(&self, set_id: &str, ids: &[&str], fail_on_invalid: Option<bool>) -> Resp {
        let members: Vec<Value> = ids.iter().map(|id| serde_json::json!({"id": id})).collect();
        let flag = fail_on_invalid
            .map(|f| format!("&fail_on_invalid_id={f}"))
            .unwrap_or_default();
        self.post_json(
            &format!("conf/sets/{set_id}?op=add_members{flag}"),
            &serde_json::json!({"members": {"member": members}}),
        )
        .await
    }

    /// A simulator inspection endpoint (`/_sim/...`) as JSON.
    pub async fn inspect(&self, path: &str) -> Value {
        let url = format!("{}/_sim/{path}", self.handle.base_url());
        self.http
            .get(url)
            .send()
            .await
            .expect("inspection answers")
            .json()
            .await
            .expect("JSON")
    }

    pub fn job_id(&self) -> String {
        self.handle
            .job_id(alma_sim::UPDATE_NOTIFY_USERS)
            .expect("the job exists")
    }

    /// Runs Update/Notify Users on a set with Notify Password Change.
    pub async fn run_job(&self, set_id: &str) -> Resp {
        let body = serde_json::json!({"parameter": [
            {"name": {"value": "set_id"}, "value": set_id},
            {"name": {"value": "job_name"}, "value": "test reset"},
            {"name": {"value": "SEND_Notification_To_User_Active"}, "value": "true"},
            {"name": {"value": "SEND_Notification_To_User_Value"}, "value": "NOTIFY_PASSWORD_CHANGE"},
        ]});
        self.post_json(&format!("conf/jobs/{}?op=run", self.job_id()), &body)
            .await
    }

    /// Submits `n` runs of Update/Notify Users, each on a new one-member set.
    pub async fn busy_jobs(&self, n: usize) {
        for i in 0..n {
            let set = self.create_set(&format!("busy {i}")).await;
            self.add_members(&set, &[self.ids(true, 1)[0].as_str()], None).await;
            assert_eq!(self.run_job(&set).await.status, 200);
        }
    }

    /// Seeded primary ids the letter can reach ([`eligible`]) (resp. EXTERNAL).
    pub fn ids(&self, internal: bool, n: usize) -> Vec<String> {
        self.handle
            .users()
            .into_iter()
            .filter(|u| if internal { eligible(self, u) } else { !u.internal })
            .take(n)
            .map(|u| u.primary_id)
            .collect()
    }
}

/// When a run stops saying that Alma may have created its set or started its job, the operator
/// looks in Alma first (here: the simulator's sets and job instances). The `resume` flag they then
/// pass: `Some(flag)` when Alma shows nothing, `None` when it shows the set or instance (a plain
/// `resume` finds it) or the message is not one of these.
pub fn operator_flag(sim: &Sim, stderr: &str) -> Option<&'static str> {
    if stderr.contains("Alma may have created the set") && sim.handle.sets().is_empty() {
        Some("--recreate-set")
    } else if stderr.contains("Alma may have started the job") && sim.handle.job_instances().is_empty() {
        Some("--resubmit-job")
    } else {
        None
    }
}

/// Writes a query file `name` in `dir` with `text`; its path.
pub fn write_query(dir: &std::path::Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

pub fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

/// Compares `actual` with `fixtures/<name>`; with `BLESS=1` writes it instead.
pub fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures").join(name);
    if std::env::var_os("BLESS").is_some() {
        std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("golden file {} missing ({e}); run with BLESS=1", path.display()));
    assert!(
        expected == actual,
        "{} differs from the simulator's answer:\n{actual}",
        path.display()
    );
}

/// Whether the tool's eligibility rules let `u` be reset, as the simulator holds them now: an
/// INTERNAL, ACTIVE patron with a preferred email whose account has not expired by the
/// simulator's date (the tool takes today from Alma's `Date`, at the latest date anywhere).
pub fn eligible(sim: &Sim, u: &alma_sim::UserSummary) -> bool {
    reachable(sim, u, false)
}

/// [`eligible`], staff included when `staff` says so (`[eligibility] staff = "include"`).
pub fn reachable(sim: &Sim, u: &alma_sim::UserSummary, staff: bool) -> bool {
    let today = (sim.handle.clock().now() + chrono::Duration::hours(14)).date_naive();
    let expired = u
        .expiry_date
        .as_deref()
        .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
        .is_some_and(|d| d < today);
    u.internal && u.active && !expired && u.email.is_some() && (staff || !u.staff)
}

/// The eligible users' primary IDs, lower-cased.
pub fn eligible_ids(sim: &Sim) -> std::collections::HashSet<String> {
    sim.handle
        .users()
        .iter()
        .filter(|u| eligible(sim, u))
        .map(|u| u.primary_id.to_lowercase())
        .collect()
}

/// Nobody was reset without a letter that carries the new password.
pub fn assert_nobody_locked_out(sim: &Sim) {
    let locked = sim.handle.locked_out();
    assert!(locked.is_empty(), "locked out: {locked:?}");
}

/// The eligibility rules read from the list itself (`lookup = false`): the IDs of such a list
/// reach the set step, known to Alma or not — as when a user is purged between the plan and the
/// set, the one way an unknown ID still reaches Alma's refusal.
pub const RULES_FROM_FILE: &str = "[eligibility]\nlookup = false\naccount_type_column = \"Account Type\"\nstatus_column = \"Status\"\nexpiry_column = \"Expiry Date\"\nemail_column = \"Preferred Email\"\n";

/// A CSV list (heading `User name`) of `ids`, each said to be an active internal user with an
/// address, for a query with [`RULES_FROM_FILE`].
pub fn list_csv(ids: &[String]) -> String {
    let mut text = String::from("User name,Account Type,Status,Expiry Date,Preferred Email\n");
    for (i, id) in ids.iter().enumerate() {
        text.push_str(&format!("{id},Internal,Active,,listed{i}@example.edu\n"));
    }
    text
}

/// The one set's members, lower-cased (panics unless there is exactly one set).
pub fn the_set(sim: &Sim) -> std::collections::HashSet<String> {
    let sets = sim.handle.sets();
    assert_eq!(sets.len(), 1, "one set: {sets:?}");
    sim.handle
        .set_members(&sets[0].id)
        .unwrap()
        .into_iter()
        .map(|m| m.to_lowercase())
        .collect()
}

/// A report CSV of `n` users the letter can reach (their live facts as columns), for queries
/// whose rules read the report (`lookup = false`, [`RULES_FROM_FILE`]'s headings).
pub fn reachable_report_csv(sim: &Sim, n: usize) -> String {
    let mut text = String::from("Primary Identifier,Account Type,Status,Expiry Date,Preferred Email\n");
    for u in sim.handle.users().iter().filter(|u| eligible(sim, u)).take(n) {
        text.push_str(&format!(
            "{},Internal,Active,{},{}\n",
            u.primary_id,
            u.expiry_date.clone().unwrap_or_default(),
            u.email.clone().unwrap_or_default()
        ));
    }
    text
}

/// Alma fails its job-instance listing (the retries too), which comes before every submission:
/// a run stops with its set made and filled and no job — the state a scheduler's next `resume`
/// meets. `SimHandle::clear_faults` lets Alma work again.
pub fn stop_before_the_job(sim: &Sim) {
    sim.handle.add_fault(
        alma_sim::Fault::new(alma_sim::FaultKind::ServerError, alma_sim::Target::JobInstances)
            .count(100_000)
            .after(alma_sim::Target::SetOp),
    );
}

/// Whether `text` suggests, in backticks, the command `alma-cohort … ARGS` (with the options the
/// command it came from was given, such as `--state-dir`, before `ARGS`).
pub fn suggests(text: &str, args: &str) -> bool {
    text.lines()
        .flat_map(|line| line.split('`').skip(1).step_by(2))
        .any(|cmd| {
            cmd.starts_with("alma-cohort ")
                && (cmd.ends_with(&format!(" {args}")) || cmd.contains(&format!(" {args} ")))
        })
}

/// The environment sudo gives a command run by `user` (an account this machine has, e.g.
/// `daemon`, `bin`: the journal records such a person only when `SUDO_UID` is that account's).
pub fn sudo_env(user: &str) -> [(&'static str, String); 2] {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let uid = passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.first() == Some(&user)).then(|| f.get(2).unwrap_or(&"").to_string())
        })
        .unwrap_or_else(|| "4294967294".into());
    [("SUDO_USER", user.to_string()), ("SUDO_UID", uid)]
}
