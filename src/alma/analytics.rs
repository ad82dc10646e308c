//! The Analytics pager: every row of a saved report, in order, with nothing lost. The first
//! call carries `path`, `limit`, `col_names=true` and the filter; later calls the first page's
//! token, until `IsFinished` is true — and never once more. A page whose answer was lost after
//! Alma may have served it is not asked for again by token (it could be gone): the report is read
//! again from its first page instead.

use std::io::{BufReader, Read};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::error::{Call, Error};
use super::http::{AlmaClient, Repeat, snippet, transport};
use super::rowset::{ParseError, Rowset, parse_page};

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
        let mut empty_waits = policy.empty_page_waits.delays();
        loop {
            page += 1;
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
            let outcome = self.read_page(&params, repeat, rowset).await;
            let (returned, result) = match outcome {
                Ok(pair) => pair,
                Err(e) if token.is_some() && e.maybe_served() => return Ok(Attempt::Restart { page, error: e }),
                Err(e) => return Err(e),
            };
            rowset = returned;
            let info = match result {
                Ok(info) => info,
                Err(PageFailure::Transport(e)) => return Ok(Attempt::Restart { page, error: e }),
                Err(PageFailure::Parse(source)) => return Err(Error::Page { page, source }),
            };
            if token.is_none() {
                // Only the first answer carries the token; it is kept for every later call.
                token = info.token.clone();
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
            if token.is_none() {
                return Err(Error::Report {
                    path: query.path.clone(),
                    message: "the first page says IsFinished=false but carries no ResumptionToken".into(),
                });
            }
            if info.rows == 0 {
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
        let (rowset, result) = self.read_page(&params, Repeat::Always, Rowset::default()).await?;
        match result {
            Ok(_) => Ok(rowset.headings().map(str::to_string).collect()),
            Err(PageFailure::Transport(e)) => Err(e),
            Err(PageFailure::Parse(source)) => Err(Error::Page { page: 1, source }),
        }
    }

    /// One page: GET, then parse the body on a blocking thread as its chunks arrive. The rowset
    /// goes to the parser and comes back (rolled back to its previous rows if the page failed).
    async fn read_page(
        &self,
        params: &[(&str, &str)],
        repeat: Repeat,
        rowset: Rowset,
    ) -> Result<(Rowset, Result<super::rowset::PageInfo, PageFailure>), Error> {
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
        let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
        let parser = tokio::task::spawn_blocking(move || {
            let mut rowset = rowset;
            let reader = BufReader::with_capacity(
                64 * 1024,
                ChunkReader {
                    rx,
                    current: Bytes::new(),
                },
            );
            let result = parse_page(reader, &mut rowset);
            (rowset, result)
        });
        let mut transport_error = None;
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if tx.send(Ok(chunk)).await.is_err() {
                        break; // the parser stopped early (it found an error)
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(std::io::Error::other("the answer was cut off"))).await;
                    transport_error = Some(transport(&call, e));
                    break;
                }
            }
        }
        drop(tx);
        let (rowset, parsed) = parser.await.map_err(|e| Error::Report {
            path: String::new(),
            message: format!("the page parser stopped unexpectedly: {e}"),
        })?;
        let result = match (transport_error, parsed) {
            (Some(e), _) => Err(PageFailure::Transport(e)),
            (None, Ok(info)) => Ok(info),
            (None, Err(e)) => Err(PageFailure::Parse(e)),
        };
        Ok((rowset, result))
    }
}

enum PageFailure {
    Transport(Error),
    Parse(ParseError),
}

/// A `Read` over the body chunks that the async side receives.
struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        let _ = self.current.split_to(n);
        Ok(n)
    }
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
