//! The one HTTP client for every Alma call: base URL, the key in the `Authorization` header
//! only, timeouts, a pace shared by all calls that backs off on 429 PER_SECOND_THRESHOLD,
//! retries with exponential backoff and jitter, Alma's two error shapes decoded, and the daily
//! quota watched through `X-Exl-Api-Remaining`.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder, Retryable};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::error::{Call, Error};

/// How failed calls are repeated. Tests set the delays to zero; nothing else changes.
#[derive(Clone, Debug, PartialEq)]
pub struct RetryPolicy {
    /// The first wait; each later one doubles, with jitter, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
    /// Repeats after the first attempt.
    pub max_retries: usize,
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
            max_retries: 6,
            jitter: true,
        }
    }
}

impl RetryPolicy {
    /// No waiting at all (tests).
    pub fn immediate(max_retries: usize) -> Self {
        Self {
            first_delay: Duration::ZERO,
            max_delay: Duration::ZERO,
            max_retries,
            jitter: false,
        }
    }

    pub fn delays(&self) -> impl Iterator<Item = Duration> {
        let mut b = ExponentialBuilder::default()
            .with_min_delay(self.first_delay)
            .with_max_delay(self.max_delay)
            .with_max_times(self.max_retries);
        if self.jitter {
            b = b.with_jitter();
        }
        b.build()
    }
}

/// Everything the client needs to reach one institution's Alma.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// Scheme, host and port only: `https://api-eu.hosted.exlibrisgroup.com`.
    pub base_url: String,
    pub api_key: SecretString,
    /// Bound on one HTTP request, answer body included.
    pub request_timeout: Duration,
    /// Requests per second for this institution (Alma allows 25 across all its clients).
    pub pace_per_second: u32,
    pub retry: RetryPolicy,
    /// Warn once when `X-Exl-Api-Remaining` falls below this.
    pub low_quota_warning: u64,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, api_key: SecretString) -> Self {
        Self {
            base_url: base_url.into(),
            api_key,
            request_timeout: Duration::from_secs(120),
            pace_per_second: 25,
            retry: RetryPolicy::default(),
            low_quota_warning: 5000,
        }
    }
}

/// Requests are spaced this much wider than `1 / pace` seconds.
const PACE_MARGIN: f64 = 1.02;

/// The pace shared by every call of one client: at most `n` requests a second, evenly spaced,
/// and a cool-down that grows with each 429 PER_SECOND_THRESHOLD and ends with the next success.
struct Pacer {
    limiter: DefaultDirectRateLimiter,
    cooldown_until: Mutex<Option<Instant>>,
    strikes: AtomicU32,
    retry: RetryPolicy,
}

impl Pacer {
    fn new(per_second: u32, retry: RetryPolicy) -> Self {
        // Burst 1: requests are spaced evenly, never 25 at once and 25 more a moment later; and
        // 2 % wider than 1/n s, because jitter on the way can bunch two requests, and Alma counts
        // arrivals in any one second (measured: at exactly 1/25 s, 8 concurrent partitions drew
        // one 429 per 100 requests; at 5 % wider the lookups, one call per user, ran at 94.7 %
        // of the pace — benches/results/2026-12-04-lookups.md).
        let spacing = Duration::from_secs_f64(PACE_MARGIN / f64::from(per_second.max(1)));
        let quota = Quota::with_period(spacing)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        Self {
            limiter: RateLimiter::direct(quota),
            cooldown_until: Mutex::new(None),
            strikes: AtomicU32::new(0),
            retry,
        }
    }

    async fn acquire(&self) {
        let until = *self.cooldown_until.lock().await;
        if let Some(until) = until {
            tokio::time::sleep_until(until).await;
        }
        self.limiter.until_ready().await;
    }

    async fn throttled(&self) {
        let strikes = self.strikes.fetch_add(1, Ordering::SeqCst) + 1;
        let wait = self
            .retry
            .delays()
            .nth(strikes.saturating_sub(1) as usize)
            .unwrap_or(self.retry.max_delay);
        if wait.is_zero() {
            return;
        }
        let mut until = self.cooldown_until.lock().await;
        let candidate = Instant::now() + wait;
        *until = Some(until.map_or(candidate, |u| u.max(candidate)));
        tracing::warn!(
            strikes,
            wait_ms = wait.as_millis() as u64,
            "Alma says too many requests per second; slowing down"
        );
    }

    async fn succeeded(&self) {
        if self.strikes.swap(0, Ordering::SeqCst) > 0 {
            *self.cooldown_until.lock().await = None;
            tracing::info!("request pace back to normal");
        }
    }
}

/// The last `X-Exl-Api-Remaining` seen, with a one-time warning when it runs low.
struct QuotaWatch {
    remaining: AtomicU64,
    warned: AtomicBool,
    threshold: u64,
}

impl QuotaWatch {
    fn observe(&self, remaining: u64) {
        self.remaining.store(remaining, Ordering::Relaxed);
        if remaining < self.threshold && !self.warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(remaining, "Alma's daily API quota for this institution is running low");
        }
    }
}

/// Which calls may be repeated after a failure that left it unknown whether Alma acted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Repeat {
    /// Any retryable failure (a GET with no side effects).
    Always,
    /// Only failures where Alma surely did not act (an answer said so, or no connection was
    /// made): the GET of a report page by token, which Alma may have served.
    WhenSurelyNotServed,
    /// Only when Alma surely never received the request (no connection) or refused it for pace
    /// (429 PER_SECOND_THRESHOLD): POSTs that create things are never repeated blindly.
    OnlyIfNotReceived,
}

impl Repeat {
    fn allows(self, e: &Error) -> bool {
        match self {
            Repeat::Always => e.is_retryable(),
            Repeat::WhenSurelyNotServed => e.is_retryable() && !e.maybe_served(),
            Repeat::OnlyIfNotReceived => e.write_may_repeat(),
        }
    }
}

/// The Alma client. Cheap to clone; clones share the connection pool, pace and quota watch.
#[derive(Clone)]
pub struct AlmaClient {
    http: reqwest::Client,
    base: String,
    auth: HeaderValue,
    pacer: Arc<Pacer>,
    quota: Arc<QuotaWatch>,
    retry: RetryPolicy,
    sent: Arc<AtomicU64>,
    /// The `Date` header of Alma's last answer: Alma's clock, not this machine's.
    date: Arc<std::sync::Mutex<Option<String>>>,
}

impl std::fmt::Debug for AlmaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlmaClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl AlmaClient {
    pub fn new(config: ClientConfig) -> Result<Self, Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let base = validate_base_url(&config.base_url)?;
        let mut auth = HeaderValue::from_str(&format!("apikey {}", config.api_key.expose_secret()))
            .map_err(|_| Error::Setting("the API key contains characters that cannot go in an HTTP header".into()))?;
        auth.set_sensitive(true);
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(30)))
            .user_agent(concat!("alma-cohort/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::Setting(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            auth,
            pacer: Arc::new(Pacer::new(config.pace_per_second, config.retry.clone())),
            quota: Arc::new(QuotaWatch {
                remaining: AtomicU64::new(u64::MAX),
                warned: AtomicBool::new(false),
                threshold: config.low_quota_warning,
            }),
            retry: config.retry,
            sent: Arc::new(AtomicU64::new(0)),
            date: Arc::new(std::sync::Mutex::new(None)),
        })
    }

    /// HTTP requests this client (and its clones) has sent, retries included.
    pub fn requests_sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The `Date` header of Alma's last answer (RFC 1123), if any: what time it is in Alma.
    pub fn alma_date(&self) -> Option<String> {
        self.date.lock().ok().and_then(|d| d.clone())
    }

    /// The last `X-Exl-Api-Remaining` Alma reported, if any.
    pub fn quota_remaining(&self) -> Option<u64> {
        Some(self.quota.remaining.load(Ordering::Relaxed)).filter(|n| *n != u64::MAX)
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// GET `/almaws/v1/{path}` and return the successful answer with its body unread, retrying
    /// as `repeat` allows.
    pub(crate) async fn get(
        &self,
        path: &str,
        query: &[(&str, &str)],
        accept: &'static str,
        repeat: Repeat,
    ) -> Result<reqwest::Response, Error> {
        self.request(Method::GET, path, query, None, accept, repeat).await
    }

    /// A JSON call: the answer's body as JSON (`Null` for an empty body).
    pub(crate) async fn call_json(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<serde_json::Value, Error> {
        self.call_typed(method, path, query, body, repeat).await
    }

    /// A JSON call whose answer is decoded into `T` (the typed answers private to each
    /// endpoint's file); an empty body reads as `null`. An answer that is not `T` is
    /// [`Error::Unexpected`] with its status, so that a write's 2xx stays "Alma took it"
    /// ([`Error::fate`]).
    pub(crate) async fn call_typed<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<T, Error> {
        let bytes = self.call_body(method, path, query, body, repeat).await?;
        let json: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
            b"null"
        } else {
            &bytes
        };
        serde_json::from_slice(json).map_err(|e| bytes.unreadable(&e))
    }

    /// The body of a successful JSON call, with what an error about it must name.
    async fn call_body(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        repeat: Repeat,
    ) -> Result<Answer, Error> {
        let response = self
            .request(method.clone(), path, query, body, "application/json", repeat)
            .await?;
        let call = Call {
            method: method_name(&method),
            path: format!("/almaws/v1/{path}"),
        };
        let (status, content_type) = (
            response.status().as_u16(),
            response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_string(),
        );
        let bytes = response.bytes().await.map_err(|e| transport(&call, e))?;
        Ok(Answer {
            call,
            status,
            content_type,
            bytes,
        })
    }

    pub(crate) async fn request(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        accept: &'static str,
        repeat: Repeat,
    ) -> Result<reqwest::Response, Error> {
        let call = Call {
            method: method_name(&method),
            path: format!("/almaws/v1/{path}"),
        };
        let attempt = || async { self.send_once(&call, method.clone(), path, query, body, accept).await };
        attempt
            .retry(RetryDelays(self.retry.clone()))
            .sleep(tokio::time::sleep)
            .when(|e: &Error| repeat.allows(e))
            .notify(|e: &Error, wait: Duration| {
                tracing::warn!(call = %call, wait_ms = wait.as_millis() as u64, error = %e, "retrying");
            })
            .await
    }

    async fn send_once(
        &self,
        call: &Call,
        method: Method,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&serde_json::Value>,
        accept: &'static str,
    ) -> Result<reqwest::Response, Error> {
        self.pacer.acquire().await;
        let url = format!("{}/almaws/v1/{}", self.base, path);
        tracing::debug!(call = %call, "request");
        self.sent.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .request(method, &url)
            .query(query)
            .header(AUTHORIZATION, self.auth.clone())
            .header(ACCEPT, accept);
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body.to_string());
        }
        let response = request.send().await.map_err(|e| transport(call, e))?;
        if let Some(n) = response
            .headers()
            .get("x-exl-api-remaining")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            self.quota.observe(n);
        }
        if let Some(date) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            && let Ok(mut last) = self.date.lock()
        {
            *last = Some(date.to_string());
        }
        let status = response.status();
        tracing::debug!(call = %call, status = status.as_u16(), "answer");
        if status.is_success() {
            self.pacer.succeeded().await;
            return Ok(response);
        }
        let error = decode_error(call, response).await;
        if let Error::Api { code, .. } = &error
            && code == "PER_SECOND_THRESHOLD"
        {
            self.pacer.throttled().await;
        }
        Err(error)
    }
}

/// A successful answer's body, with the call and status an error about it names.
struct Answer {
    call: Call,
    status: u16,
    content_type: String,
    bytes: bytes::Bytes,
}

impl std::ops::Deref for Answer {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Answer {
    /// The answer could not be read as what was asked for.
    fn unreadable(&self, e: &serde_json::Error) -> Error {
        Error::Unexpected {
            call: self.call.clone(),
            status: self.status,
            content_type: self.content_type.clone(),
            snippet: format!(
                "not the expected JSON ({e}): {}",
                snippet(&String::from_utf8_lossy(&self.bytes))
            ),
        }
    }
}

fn method_name(m: &Method) -> &'static str {
    match *m {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        _ => "HTTP",
    }
}

/// backon's view of our retry policy.
struct RetryDelays(RetryPolicy);

impl BackoffBuilder for RetryDelays {
    type Backoff = Box<dyn Iterator<Item = Duration> + Send + Sync>;
    fn build(self) -> Self::Backoff {
        Box::new(self.0.delays().collect::<Vec<_>>().into_iter())
    }
}

pub(crate) fn transport(call: &Call, e: reqwest::Error) -> Error {
    let (what, maybe_served) = if e.is_connect() {
        ("could not connect", false)
    } else if e.is_timeout() {
        ("no answer in time", true)
    } else if e.is_body() || e.is_decode() {
        ("the answer was cut off", true)
    } else {
        ("the request failed", true)
    };
    Error::Transport {
        call: call.clone(),
        what,
        maybe_served,
        source: e.without_url(),
    }
}

/// Reads an error answer: Alma's application shape (`errorList.error[]`), the gateway's
/// (`web_service_result` with one `error`), in JSON or XML; anything else is `Unexpected`.
pub(crate) async fn decode_error(call: &Call, response: reqwest::Response) -> Error {
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type")
        .to_string();
    let body = match response.bytes().await {
        Ok(b) => b,
        Err(e) => return transport(call, e),
    };
    let text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]);
    match parse_alma_error(&text) {
        Some((code, message, tracking_id)) if code == "DAILY_THRESHOLD" => {
            let _ = (message, tracking_id);
            Error::DailyThreshold { call: call.clone() }
        }
        Some((code, message, tracking_id)) => Error::Api {
            call: call.clone(),
            status,
            code,
            message,
            tracking_id,
        },
        None => Error::Unexpected {
            call: call.clone(),
            status,
            content_type,
            snippet: snippet(&text),
        },
    }
}

/// An error answer in JSON: Alma's (`errorList.error` an array, `"result": null`, keys in any
/// order) or the gateway's (the same inside `web_service_result`, `error` one object).
#[derive(serde::Deserialize)]
struct ErrorAnswer {
    #[serde(default)]
    web_service_result: Option<Box<ErrorAnswer>>,
    #[serde(rename = "errorList", default)]
    error_list: Option<ErrorList>,
}

#[derive(serde::Deserialize)]
struct ErrorList {
    #[serde(default, deserialize_with = "super::model::one_or_many")]
    error: Vec<ErrorItem>,
}

#[derive(serde::Deserialize)]
struct ErrorItem {
    #[serde(rename = "errorCode", default)]
    error_code: super::model::Code,
    #[serde(rename = "errorMessage", default)]
    error_message: super::model::Code,
    #[serde(rename = "trackingId", default)]
    tracking_id: Option<super::model::Code>,
}

/// `(code, message, trackingId)` from either error shape, JSON or XML; the message trimmed (one
/// recorded gateway message ends in a space).
pub fn parse_alma_error(text: &str) -> Option<(String, String, Option<String>)> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') {
        let body: ErrorAnswer = serde_json::from_str(trimmed).ok()?;
        let list = match body.web_service_result {
            Some(gateway) => gateway.error_list,
            None => body.error_list,
        }?;
        let e = list.error.into_iter().next()?;
        let code = e.error_code.trimmed().to_string();
        if code.is_empty() {
            return None;
        }
        let tracking = e.tracking_id.map(|t| t.trimmed().to_string());
        let tracking = tracking.filter(|t| !t.is_empty() && t != "unknown");
        return Some((code, e.error_message.trimmed().to_string(), tracking));
    }
    if trimmed.starts_with('<') {
        let mut reader = quick_xml::Reader::from_str(trimmed);
        let (mut code, mut message, mut tracking) = (None, None, None);
        let mut current: Option<&'static str> = None;
        let mut text_acc = String::new();
        loop {
            match reader.read_event().ok()? {
                quick_xml::events::Event::Start(e) => {
                    current = match e.local_name().as_ref() {
                        "errorCode" => Some("code"),
                        "errorMessage" => Some("message"),
                        "trackingId" => Some("tracking"),
                        _ => None,
                    };
                    text_acc.clear();
                }
                quick_xml::events::Event::Text(t) if current.is_some() => text_acc.push_str(&t.xml10_content()),
                quick_xml::events::Event::GeneralRef(r) if current.is_some() => {
                    let name = r.xml10_content();
                    if let Some(s) = quick_xml::escape::resolve_xml_entity(&name) {
                        text_acc.push_str(s);
                    }
                }
                quick_xml::events::Event::End(_) => {
                    match current.take() {
                        Some("code") if code.is_none() => code = Some(text_acc.trim().to_string()),
                        Some("message") if message.is_none() => message = Some(text_acc.trim().to_string()),
                        Some("tracking") if tracking.is_none() => tracking = Some(text_acc.trim().to_string()),
                        _ => {}
                    }
                    text_acc.clear();
                }
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        let tracking = tracking.filter(|t| !t.is_empty() && t != "unknown");
        return Some((code.filter(|c| !c.is_empty())?, message.unwrap_or_default(), tracking));
    }
    None
}

/// The first 200 characters of a body, on one line.
pub(crate) fn snippet(text: &str) -> String {
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &one_line[..i]),
        None => one_line,
    }
}

/// `scheme://host[:port]`, without a path: the client adds `/almaws/v1/...` itself.
pub fn validate_base_url(raw: &str) -> Result<String, Error> {
    let trimmed = raw.trim().trim_end_matches('/');
    // A refused URL is never echoed whole: a query string or user info can carry a key.
    let mut shown = redacted_url(trimmed);
    if shown.chars().count() > 100 {
        shown = format!("{}…", shown.chars().take(100).collect::<String>());
    }
    let url =
        reqwest::Url::parse(trimmed).map_err(|e| Error::Setting(format!("base URL {shown:?} is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::Setting(format!("base URL {shown:?}: use http:// or https://")));
    }
    // A host no resolver takes (over 253 characters, or a label over 63) is a typo to fix, not a
    // network failure to retry.
    let host = url.host_str().unwrap_or_default();
    if host.len() > 253 || host.split('.').any(|label| label.len() > 63) {
        return Err(Error::Setting(format!(
            "base URL {shown:?}: its host is {} characters long, or has a part over 63; a host name is at most 253 (e.g. api-eu.hosted.exlibrisgroup.com)",
            host.len()
        )));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Error::Setting(format!(
            "base URL {shown:?} carries a user name or password before the host; remove it (the API key goes in ALMA_API_KEY or --api-key-file, never in the URL)"
        )));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(Error::Setting(format!(
            "base URL {shown:?} has a query string (after '?'); remove it (the API key goes in ALMA_API_KEY or --api-key-file, never in the URL)"
        )));
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(Error::Setting(format!(
            "base URL {shown:?} has a path ({}); give scheme, host and port only, e.g. https://api-eu.hosted.exlibrisgroup.com",
            url.path()
        )));
    }
    Ok(trimmed.to_string())
}

/// A URL as an error may show it: no user info, no query string or fragment (cut at the first
/// `?` or `#`), whatever else is wrong with it.
pub fn redacted_url(raw: &str) -> String {
    let cut = raw.split(['?', '#']).next().unwrap_or_default();
    match cut.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, path) = match rest.find('/') {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            let host = authority
                .rsplit_once('@')
                .map(|(_, h)| format!("…@{h}"))
                .unwrap_or(authority.to_string());
            format!(
                "{scheme}://{host}{path}{}",
                if cut.len() < raw.len() { "?…" } else { "" }
            )
        }
        None => {
            let host = cut
                .rsplit_once('@')
                .map(|(_, h)| format!("…@{h}"))
                .unwrap_or(cut.to_string());
            format!("{host}{}", if cut.len() < raw.len() { "?…" } else { "" })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_base_urls_never_show_their_secrets() {
        for (raw, part) in [
            (
                "https://api-eu.hosted.exlibrisgroup.com/almaws/v1?apikey=l7xxSECRET",
                "query string",
            ),
            ("http://user:SECRET@127.0.0.1:8089", "user name or password"),
            ("http://SECRET@127.0.0.1:8089", "user name or password"),
            ("https//api-eu.example?apikey=SECRET", "not a URL"),
            ("ftp://host?SECRET", "http:// or https://"),
            ("https://host/almaws/v1#SECRET", "query string"),
        ] {
            let e = validate_base_url(raw).unwrap_err().to_string();
            assert!(!e.contains("SECRET"), "{e}");
            assert!(e.contains(part), "{raw}: {e}");
        }
        assert_eq!(redacted_url("http://u:k@h:1/p?apikey=k"), "http://…@h:1/p?…");
        assert_eq!(
            validate_base_url(" http://127.0.0.1:8089/ ").unwrap(),
            "http://127.0.0.1:8089"
        );
    }

    #[test]
    fn errors_in_every_recorded_shape() {
        macro_rules! fixture {
            ($name:literal) => {
                include_str!(concat!(
                    env!("CARGO_MANIFEST_DIR"),
                    "/../../fixtures/errors/",
                    $name
                ))
            };
        }
        let parsed = |text: &str| parse_alma_error(text).expect("an Alma error");
        let (code, message, tracking) = parsed(fixture!("app-error.json"));
        assert_eq!(
            (code.as_str(), tracking.as_deref()),
            ("401861", Some("E02-0112345678-ABCDE-AWAE1234567890"))
        );
        assert!(message.ends_with("was not found."));
        // No trackingId, a space after the message, keys errorList, errorsExist, result.
        let (code, message, tracking) = parsed(fixture!("per-second-no-tracking.json"));
        assert_eq!(code, "PER_SECOND_THRESHOLD");
        assert!(message.ends_with("/threshold"), "trimmed: {message:?}");
        assert_eq!(tracking, None);
        let (code, _, tracking) = parsed(fixture!("app-error-utf8-lower.xml"));
        assert_eq!((code.as_str(), tracking.is_some()), ("401652", true));
        let crlf = fixture!("gateway-unauthorized-crlf.xml");
        assert!(crlf.contains("\r\n"), "the fixture keeps its CRLF line ends");
        let (code, message, tracking) = parsed(crlf);
        assert_eq!(code, "UNAUTHORIZED");
        assert_eq!(message, "API-key not defined or not configured to allow this API.");
        assert_eq!(tracking, None);
        let (code, ..) = parsed(fixture!("app-error-blank-lines.json"));
        assert_eq!(code, "402203");
        // Not an Alma error: no code, or not an error shape at all.
        assert_eq!(
            parse_alma_error(r#"{"errorList":{"error":[{"errorMessage":"x"}]}}"#),
            None
        );
        assert_eq!(parse_alma_error("<html><body>Bad gateway</body></html>"), None);
        assert_eq!(parse_alma_error(r#"{"result":null}"#), None);
    }

    #[test]
    fn both_error_shapes_in_json_and_xml() {
        let app = r#"{"errorsExist":true,"errorList":{"error":[{"errorCode":"401861","errorMessage":"User with identifier x was not found.","trackingId":"E02-1"}]},"result":null}"#;
        assert_eq!(
            parse_alma_error(app),
            Some((
                "401861".into(),
                "User with identifier x was not found.".into(),
                Some("E02-1".into())
            ))
        );
        let gw = r#"{"web_service_result":{"errorsExist":true,"errorList":{"error":{"errorCode":"PER_SECOND_THRESHOLD","errorMessage":"HTTP requests are more than allowed per second","trackingId":"unknown"}}}}"#;
        assert_eq!(
            parse_alma_error(gw).map(|e| (e.0, e.2)),
            Some(("PER_SECOND_THRESHOLD".into(), None))
        );
        let xml = "<?xml version=\"1.0\"?>\r\n<web_service_result xmlns=\"http://com/exlibris/urm/general/xmlbeans\">\r\n  <errorsExist>true</errorsExist>\r\n  <errorList>\r\n    <error>\r\n      <errorCode>UNAUTHORIZED</errorCode>\r\n      <errorMessage>API-key not defined or not configured to allow this API.</errorMessage>\r\n    </error>\r\n  </errorList>\r\n</web_service_result>";
        assert_eq!(
            parse_alma_error(xml),
            Some((
                "UNAUTHORIZED".into(),
                "API-key not defined or not configured to allow this API.".into(),
                None
            ))
        );
        assert_eq!(parse_alma_error("<html><body>Bad Gateway</body></html>"), None);
        assert_eq!(parse_alma_error("Invalid API Key"), None);
    }

    #[test]
    fn base_urls_are_scheme_host_and_port_only() {
        assert_eq!(
            validate_base_url("https://api-eu.hosted.exlibrisgroup.com/").unwrap(),
            "https://api-eu.hosted.exlibrisgroup.com"
        );
        assert_eq!(
            validate_base_url("http://127.0.0.1:8089").unwrap(),
            "http://127.0.0.1:8089"
        );
        assert!(validate_base_url("https://api-eu.hosted.exlibrisgroup.com/almaws/v1").is_err());
        assert!(validate_base_url("ftp://x").is_err());
        assert!(validate_base_url("not a url").is_err());
    }

    #[test]
    fn retry_delays_grow_and_can_be_zero() {
        let p = RetryPolicy {
            jitter: false,
            ..RetryPolicy::default()
        };
        let d: Vec<_> = p.delays().take(4).collect();
        assert_eq!(d, [1, 2, 4, 8].map(Duration::from_secs));
        assert_eq!(p.delays().count(), 6);
        assert!(RetryPolicy::immediate(3).delays().all(|d| d.is_zero()));
        assert_eq!(RetryPolicy::immediate(3).delays().count(), 3);
    }

    #[test]
    fn the_key_never_prints() {
        let client = AlmaClient::new(ClientConfig::new(
            "http://127.0.0.1:1",
            SecretString::from("l7xx-secret-key"),
        ))
        .unwrap();
        assert!(!format!("{client:?}").contains("secret"));
        assert!(!format!("{:?}", client.auth).contains("secret"));
    }
}
