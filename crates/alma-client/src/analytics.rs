//! The Analytics pager: every row of a saved report, in order, with nothing lost. The first
//! call carries `path`, `limit`, `col_names=true` and the filter; later calls the first page's
//! token, until `IsFinished` is true — and never once more. A page whose answer was lost after
//! Alma may have served it is not asked for again by token (it could be gone): the report is read
//! again from its first page instead. The next page is asked for as soon as this page's first
//! row shows `IsFinished=false` (one page ahead, the most token paging allows), so that parsing
//! a page overlaps Alma producing the next; page k+1 is asked for only once page k has arrived
//! whole, so Alma still sees one request after the other.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use super::error::{Call, Error};
use super::http::{AlmaClient, Repeat, snippet, transport};
use super::rowset::{PageHead, Rowset, parse_page, parse_page_with_head};

const ENDPOINT: &str = "analytics/reports";

/// Which report to read and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportQuery {
    /// The report's catalog path, e.g. `/shared/<Institution>/Reports/<folder>/<report>`.
    pub path: String,
    /// Rows per page; Alma serves blocks of 25, up to 1000.
    pub limit: u32,
    /// A sawx filter expression (XML), already filled in.
    pub filter: Option<String>,
}

impl ReportQuery {
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            limit: 1000,
            filter: None,
        }
    }

    /// The limit Alma will actually use: a multiple of 25 within 25..=1000.
    pub fn effective_limit(&self) -> u32 {
        self.limit.clamp(25, 1000).div_ceil(25) * 25
    }
}

/// How long to wait for a report that is still loading, and how often to start over.
#[derive(Clone, Debug, PartialEq)]
pub struct PagingPolicy {
    /// Pages with no rows and `IsFinished=false` tolerated in a row ("still loading").
    pub max_empty_pages: u32,
    /// Waits between such pages.
    pub empty_page_waits: super::http::RetryPolicy,
    /// Times the report is read again from page 1 after a page was lost in transit.
    pub max_restarts: u32,
}

impl Default for PagingPolicy {
    fn default() -> Self {
        Self {
            max_empty_pages: 10,
            empty_page_waits: super::http::RetryPolicy {
                first_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(30),
                max_retries: 10,
                jitter: true,
            },
            max_restarts: 3,
        }
    }
}

/// Progress after each page, for progress bars.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Progress {
    pub pages: usize,
    pub rows: usize,
    pub elapsed: Duration,
}

/// A whole report: headings and column-major cells, in Alma's row order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub path: String,
    pub rowset: Rowset,
    /// Pages that carried data or the end (still-loading pages not counted).
    pub pages: usize,
    /// HTTP requests made for this report, retries and restarts included.
    pub requests: usize,
    pub restarts: u32,
}

impl Report {
    pub fn rows(&self) -> usize {
        self.rowset.rows
    }

    pub fn headings(&self) -> Vec<&str> {
        self.rowset.headings().collect()
    }
}

/// How one attempt at reading the report ended.
enum Attempt {
    Done(Report),
    /// A page may have been served and lost: read the report again from the start.
    Restart {
        page: usize,
        error: Error,
    },
}

impl AlmaClient {
    /// Reads every row of a report. `progress` is called after each page.
    pub async fn fetch_report(
        &self,
        query: &ReportQuery,
        policy: &PagingPolicy,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Report, Error> {
        let started = Instant::now();
        let sent_before = self.requests_sent();
        let mut restarts = 0;
        loop {
            match self.read_report_once(query, policy, started, progress).await? {
                Attempt::Done(mut report) => {
                    report.restarts = restarts;
                    report.requests = (self.requests_sent() - sent_before) as usize;
                    return Ok(report);
                }
                Attempt::Restart { page, error } => {
                    if restarts >= policy.max_restarts {
                        return Err(Error::Report {
                            path: query.path.clone(),
                            message: format!(
                                "page {page} was lost in transit {} times; gave up (last error: {error})",
                                restarts + 1
                            ),
                        });
                    }
                    restarts += 1;
                    tracing::warn!(page, restarts, error = %error, "a report page was lost in transit; reading the report again from page 1");
                }
            }
        }
    }

    async fn read_report_once(
        &self,
        query: &ReportQuery,
        policy: &PagingPolicy,
        started: Instant,
        progress: &mut (dyn FnMut(Progress) + Send),
    ) -> Result<Attempt, Error> {
        let limit = query.effective_limit().to_string();
        let mut rowset = Rowset::default();
        let mut token: Option<String> = None;
        let mut page = 0usize;
        let mut empty_streak = 0u32;
        let mut warned_unnamespaced = false;
        let mut warned_no_headings = false;
        let mut empty_waits = policy.empty_page_waits.delays();
        // The next page, asked for while this one was being parsed.
        let mut prefetched: Option<Fetched> = None;
        loop {
            page += 1;
            let fetched = match prefetched.take() {
                Some(fetched) => fetched,
                None => {
                    let mut params: Vec<(&str, &str)> = Vec::with_capacity(4);
                    let repeat = match &token {
                        None => {
                            params.extend([
                                ("path", query.path.as_str()),
                                ("limit", limit.as_str()),
                                ("col_names", "true"),
                            ]);
                            if let Some(f) = &query.filter {
                                params.push(("filter", f.as_str()));
                            }
                            Repeat::Always
                        }
                        Some(t) => {
                            params.push(("token", t.as_str()));
                            Repeat::WhenSurelyNotServed
                        }
                    };
                    match self.fetch_page(&query.path, &params, repeat).await {
                        Ok(fetched) => fetched,
                        Err(e) if token.is_some() && e.maybe_served() => {
                            return Ok(Attempt::Restart { page, error: e });
                        }
                        Err(e) if token.is_none() && is_path_not_found(&e) => {
                            return Err(Error::ReportNotFound {
                                path: query.path.clone(),
                                source: Box::new(e),
                            });
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            let body = match fetched {
                Fetched::Body(body) => body,
                Fetched::Lost(e) => return Ok(Attempt::Restart { page, error: e }),
            };
            // Parse on a blocking thread; as soon as it has seen IsFinished=false and a first
            // row, ask for the next page (the token is the same for every page), so that the
            // parse of this page overlaps the fetch of the next. Never after IsFinished=true,
            // and never for a page with no rows (the report may still be loading).
            let (head_tx, head_rx) = tokio::sync::oneshot::channel::<PageHead>();
            let parser = tokio::task::spawn_blocking(move || {
                let mut rowset = rowset;
                let mut head_tx = Some(head_tx);
                let result = parse_page_with_head(&body, &mut rowset, &mut |head| {
                    if let Some(tx) = head_tx.take() {
                        let _ = tx.send(head.clone());
                    }
                });
                (rowset, result)
            });
            let known_token = token.clone();
            let next = async {
                let head = head_rx.await.ok().filter(|h| !h.is_finished)?;
                let t = known_token.or(head.token)?;
                Some(
                    self.fetch_page(&query.path, &[("token", t.as_str())], Repeat::WhenSurelyNotServed)
                        .await,
                )
            };
            let (parsed, next) = tokio::join!(parser, next);
            let (returned, result) = parsed.map_err(|e| Error::Report {
                path: query.path.clone(),
                message: format!("the page parser stopped unexpectedly: {e}"),
            })?;
            rowset = returned;
            let info = result.map_err(|source| Error::Page { page, source })?;
            if !warned_no_headings && rowset.has_schema() && !rowset.has_headings() {
                warned_no_headings = true;
                tracing::warn!(
                    page,
                    "the report's schema has no headings (saw-sql:columnHeading): its columns are named Column0, Column1, …; a query should name columns by their headings — give the report's columns headings in Analytics"
                );
            }
            if info.unnamespaced && !warned_unnamespaced {
                warned_unnamespaced = true;
                tracing::warn!(
                    page,
                    "the report's rowset is in no XML namespace (Alma left it out for some weeks in October 2019, then put it back); its rows are read as they are"
                );
            }
            match (&token, &info.token) {
                // Only the first answer must carry the token; it is kept for every later call.
                (None, _) => token = info.token.clone(),
                // A later page may repeat it (real Alma has), but never change it.
                (Some(first), Some(this)) if first != this => {
                    return Err(Error::Report {
                        path: query.path.clone(),
                        message: format!(
                            "page {page} carries a ResumptionToken that differs from the first page's: the pages may belong to two reports"
                        ),
                    });
                }
                _ => {}
            }
            match next {
                Some(Ok(fetched)) => prefetched = Some(fetched),
                Some(Err(e)) if e.maybe_served() => {
                    return Ok(Attempt::Restart {
                        page: page + 1,
                        error: e,
                    });
                }
                Some(Err(e)) => return Err(e),
                None => {}
            }
            if info.is_finished {
                progress(Progress {
                    pages: page,
                    rows: rowset.rows,
                    elapsed: started.elapsed(),
                });
                return Ok(Attempt::Done(Report {
                    path: query.path.clone(),
                    rowset,
                    pages: page,
                    requests: 0,
                    restarts: 0,
                }));
            }
            if token.is_none() && info.rows > 0 {
                return Err(Error::Report {
                    path: query.path.clone(),
                    message: "the first page says IsFinished=false but carries no ResumptionToken".into(),
                });
            }
            if info.rows == 0 {
                // Still loading (without a token, the report is asked for by its path again).
                // Still loading: Alma answers with no rows until the report has run.
                empty_streak += 1;
                page -= 1;
                let wait = empty_waits.next();
                if empty_streak > policy.max_empty_pages || wait.is_none() {
                    return Err(Error::Report {
                        path: query.path.clone(),
                        message: format!(
                            "still no rows after {empty_streak} answers with IsFinished=false (the report may still be loading in Alma); try again later"
                        ),
                    });
                }
                let wait = wait.unwrap_or_default();
                tracing::info!(empty_streak, wait_ms = wait.as_millis() as u64, "report still loading");
                tokio::time::sleep(wait).await;
                continue;
            }
            empty_streak = 0;
            empty_waits = policy.empty_page_waits.delays();
            progress(Progress {
                pages: page,
                rows: rowset.rows,
                elapsed: started.elapsed(),
            });
        }
    }

    /// The report's headings, from its first page only (for checking a query against it).
    pub async fn report_headings(&self, query: &ReportQuery) -> Result<Vec<String>, Error> {
        let params = [("path", query.path.as_str()), ("limit", "25"), ("col_names", "true")];
        let mut params: Vec<(&str, &str)> = params.to_vec();
        if let Some(f) = &query.filter {
            params.push(("filter", f.as_str()));
        }
        let body = match self.fetch_page(&query.path, &params, Repeat::Always).await {
            Ok(Fetched::Body(body)) => body,
            Ok(Fetched::Lost(e)) => return Err(e),
            // The same words as the plan's for a report path Alma does not know.
            Err(e) if is_path_not_found(&e) => {
                return Err(Error::ReportNotFound {
                    path: query.path.clone(),
                    source: Box::new(e),
                });
            }
            Err(e) => return Err(e),
        };
        let mut rowset = Rowset::default();
        parse_page(&body, &mut rowset).map_err(|source| Error::Page { page: 1, source })?;
        Ok(rowset.headings().map(str::to_string).collect())
    }

    /// One page's body, whole (a page holds at most 1000 rows; a body over
    /// [`MAX_PAGE_BYTES`] is refused rather than held).
    async fn fetch_page(&self, report: &str, params: &[(&str, &str)], repeat: Repeat) -> Result<Fetched, Error> {
        let call = Call {
            method: "GET",
            path: format!("/almaws/v1/{ENDPOINT}"),
        };
        let mut response = self.get(ENDPOINT, params, "application/xml", repeat).await?;
        let content_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if !content_type.contains("xml") {
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            return Err(Error::Unexpected {
                call,
                status,
                content_type: if content_type.is_empty() {
                    "no content type".into()
                } else {
                    content_type
                },
                snippet: snippet(&body),
            });
        }
        let expected = response.content_length().unwrap_or(0).min(MAX_PAGE_BYTES as u64) as usize;
        let mut body = BytesMut::with_capacity(expected);
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if body.len() + chunk.len() > MAX_PAGE_BYTES {
                        return Err(Error::Report {
                            path: report.to_string(),
                            message: format!(
                                "a report page is larger than {} MiB; Alma's pages hold at most 1000 rows, so this is not a report page",
                                MAX_PAGE_BYTES >> 20
                            ),
                        });
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(Fetched::Body(body.freeze())),
                Err(e) => return Ok(Fetched::Lost(transport(&call, e))),
            }
        }
    }
}

/// The largest page body accepted.
pub const MAX_PAGE_BYTES: usize = 512 << 20;

/// A page's body, or the error that cut it off (the page may have been served).
enum Fetched {
    Body(Bytes),
    Lost(Error),
}

/// Alma's answer for a report path it does not know: 400 with the (non-numeric) code
/// `INTERNAL_SERVER_ERROR` and "Path not found (…)".
fn is_path_not_found(e: &Error) -> bool {
    matches!(e, Error::Api { status: 400, message, .. } if message.to_ascii_lowercase().contains("path not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_round_up_to_blocks_of_25() {
        let q = |limit| {
            ReportQuery {
                limit,
                ..ReportQuery::new("/x")
            }
            .effective_limit()
        };
        assert_eq!(
            [q(0), q(1), q(25), q(30), q(990), q(1000), q(5000)],
            [25, 25, 25, 50, 1000, 1000, 1000]
        );
    }
}
