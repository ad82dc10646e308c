//! `GET /almaws/v1/analytics/reports`: token paging exactly as Alma does it — token and schema on
//! the first page only, `IsFinished` on every page, rows in blocks of 25, null cells omitted,
//! Column0 dummy, 420033 after the end — plus the `anies` JSON wrapper and the sawx filter.

use axum::http::StatusCode;
use chrono::NaiveDate;
use rand::Rng;
use serde_json::json;

use super::catalog::{ColType, SavedReport};
use super::filter::{Filter, FilterError};
use super::records::Session;
use super::state::{Outcome, Req, State};
use super::wire::{AppError, Format, Reply};
use super::xml::{DECLARATION, XmlWriter};

use super::config::Quirk;

const ROWSET_NS: &str = "urn:schemas-microsoft-com:xml-analysis:rowset";
/// How many paging sessions are kept (finished ones too, so a late call gets 420033).
const MAX_SESSIONS: usize = 2000;

fn no_more_rows() -> AppError {
    AppError::bad_request("420033", "No more rows to fetch").with_status(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Alma serves rows in blocks of 25: a limit is rounded up to a multiple of 25 within 25..=1000.
pub fn effective_limit(requested: Option<&str>) -> Result<usize, AppError> {
    let n = match requested {
        None | Some("") => 25,
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map_err(|_| AppError::bad_request("SIM_INVALID_LIMIT", format!("limit must be a number, got {v}")))?,
    };
    let n = n.clamp(25, 1000) as usize;
    Ok(n.div_ceil(25) * 25)
}

impl State {
    pub fn analytics_reports(&mut self, req: &Req) -> Outcome {
        match req.q("token").filter(|t| !t.is_empty()) {
            Some(token) => {
                let token = token.to_string();
                // Alma keeps the first call's limit (whether a later `limit` is honoured is unknown).
                self.serve_page(&token, false, req.format)
            }
            None => self.start_report(req),
        }
    }

    fn start_report(&mut self, req: &Req) -> Outcome {
        let path = req
            .q("path")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| AppError::bad_request("SIM_PATH_MISSING", "Either path or token must be given"))?;
        // The error for a wrong path is not documented; the simulator answers 400 with its own code.
        let report = self
            .reports
            .iter()
            .position(|r| r.path == path)
            // What real Alma answers for a wrong path (recorded, shared/real-alma §1): a 400 whose
            // errorCode is not a number.
            .ok_or_else(|| AppError::bad_request("INTERNAL_SERVER_ERROR", format!("Path not found ({path})")))?;
        let limit = effective_limit(req.q("limit"))?;
        let col_names = !matches!(req.q("col_names"), Some(v) if v.eq_ignore_ascii_case("false"));
        let filter = match req.q("filter").filter(|f| !f.trim().is_empty()) {
            None => None,
            Some(xml) => Some(Filter::parse(xml, &self.reports[report].columns).map_err(|e| {
                let code = match e {
                    FilterError::NotPrompted(_) => "SIM_FILTER_NOT_PROMPTED",
                    FilterError::UnknownColumn(_) | FilterError::Malformed(_) => "SIM_FILTER_INVALID",
                };
                AppError::bad_request(code, e.to_string())
            })?),
        };
        let as_of = self.clock.now().date_naive();
        let rows = self.reports[report]
            .evaluate(&self.report_users, filter.as_ref(), as_of)
            .rows;
        let token: String = (0..128)
            .map(|_| {
                char::from_digit(self.rng.random_range(0..16u32), 16)
                    .unwrap_or('0')
                    .to_ascii_uppercase()
            })
            .collect();
        let session = Session {
            report,
            rows,
            limit,
            cursor: 0,
            col_names,
            loading_left: self.cfg.still_loading,
            pause_after_first: self.cfg.has(Quirk::ResultXmlStillLoading),
            schema_sent: false,
            data_pages: 0,
            finished: false,
            as_of,
        };
        self.sessions.insert(token.clone(), session);
        self.session_order.push_back(token.clone());
        while self.session_order.len() > MAX_SESSIONS {
            if let Some(old) = self.session_order.pop_front() {
                self.sessions.remove(&old);
            }
        }
        self.serve_page(&token, true, req.format)
    }

    fn serve_page(&mut self, token: &str, first: bool, format: Format) -> Outcome {
        let premature = self.cfg.premature_finish_after;
        // An unknown or expired token is answered like a call after the end: the only token
        // failure ever observed is 500/420033.
        let session = self.sessions.get_mut(token).ok_or_else(no_more_rows)?;
        if session.finished {
            return Err(no_more_rows().into());
        }
        let pause = session.pause_after_first && session.data_pages == 1 && !session.finished;
        let loading = session.loading_left > 0 || pause;
        let range = if session.loading_left > 0 || pause {
            if pause {
                session.pause_after_first = false;
            } else {
                session.loading_left -= 1;
            }
            session.cursor..session.cursor
        } else {
            let end = (session.cursor + session.limit).min(session.rows.len());
            let range = session.cursor..end;
            session.cursor = end;
            session.data_pages += 1;
            if session.cursor >= session.rows.len() || premature == Some(session.data_pages) {
                session.finished = true;
            }
            range
        };
        let finished = session.finished;
        let empty_result = loading && self.cfg.has(Quirk::ResultXmlStillLoading);
        let schema = !session.schema_sent && !empty_result;
        session.schema_sent |= schema;
        let (report, col_names, as_of) = (session.report, session.col_names, session.as_of);
        let rows = &session.rows[range];
        let report = &self.reports[report];
        // When the whole result fits on the first page the token may be absent (seen in the wild).
        let token_shown = (first && !finished).then_some(token);
        let page = PageWriter {
            report,
            users: &self.report_users,
            as_of,
            pretty: self.cfg.pretty,
            // The quirk: a schema without headings, as if asked without col_names=true.
            col_names: col_names && !self.cfg.has(Quirk::SchemaWithoutHeadings),
            // Alma's "still loading": `<ResultXml/>` with nothing in it.
            empty_result,
            rowset_ns: !self.cfg.has(Quirk::RowsetNoNamespace),
        }
        .render(token_shown, finished, schema, rows, format);
        Ok(page)
    }

    pub fn analytics_paths(&mut self, req: &Req) -> Outcome {
        let prefix = format!("/{}", req.segs[2..].join("/"));
        let entries: Vec<_> = self
            .reports
            .iter()
            .filter(|r| prefix == "/" || r.path.starts_with(&prefix))
            .map(|r| {
                let name = r.path.rsplit('/').next().unwrap_or(&r.path);
                json!({"value": name, "type": "report", "path": r.path,
                       "link": format!("{}?path={}", req.link("analytics/reports"), r.path)})
            })
            .collect();
        Ok(Reply::ok("paths", json!({ "path": entries })))
    }
}

struct PageWriter<'a> {
    report: &'a SavedReport,
    users: &'a [super::institution::User],
    as_of: NaiveDate,
    pretty: bool,
    col_names: bool,
    empty_result: bool,
    /// The rowset in Alma's namespace (off: in none, as for some weeks in October 2019).
    rowset_ns: bool,
}

impl PageWriter<'_> {
    fn render(&self, token: Option<&str>, finished: bool, schema: bool, rows: &[u32], format: Format) -> Reply {
        let (nl, ind) = if self.pretty { ("\n", "  ") } else { ("", "") };
        let mut w = XmlWriter::default();
        let query_result_attrs: &[(&str, &str)] = match format {
            Format::Json => &[("xmlns", ROWSET_NS)],
            Format::Xml => &[],
        };
        if format == Format::Xml {
            w.raw(DECLARATION).raw(nl).open("report", &[]).raw(nl);
        }
        w.open("QueryResult", query_result_attrs).raw(nl);
        if let Some(t) = token {
            w.raw(ind).leaf("ResumptionToken", t).raw(nl);
        }
        w.raw(ind)
            .leaf("IsFinished", if finished { "true" } else { "false" })
            .raw(nl);
        if self.empty_result {
            w.raw(ind).empty("ResultXml", &[]).raw(nl);
            w.close("QueryResult");
            return self.finish(w, nl, format);
        }
        w.raw(ind).open("ResultXml", &[]).raw(nl);
        let rowset_attrs: &[(&str, &str)] = if self.rowset_ns { &[("xmlns", ROWSET_NS)] } else { &[] };
        w.raw(ind).raw(ind).open("rowset", rowset_attrs).raw(nl);
        if schema {
            self.schema(&mut w, nl, ind);
        }
        for row in rows {
            w.raw(ind).raw(ind).raw(ind).open("Row", &[]).raw(nl);
            w.raw(ind).raw(ind).raw(ind).raw(ind).leaf("Column0", "0").raw(nl);
            for col in 0..self.report.columns.len() {
                let name = format!("Column{}", col + 1);
                match self.report.cell(self.users, *row, col, self.as_of) {
                    None => {}
                    Some(v) if v.is_empty() => {
                        w.raw(ind).raw(ind).raw(ind).raw(ind).empty(&name, &[]).raw(nl);
                    }
                    Some(v) => {
                        w.raw(ind).raw(ind).raw(ind).raw(ind).leaf(&name, &v).raw(nl);
                    }
                }
            }
            w.raw(ind).raw(ind).raw(ind).close("Row").raw(nl);
        }
        w.raw(ind).raw(ind).close("rowset").raw(nl);
        w.raw(ind).close("ResultXml").raw(nl);
        w.close("QueryResult");
        self.finish(w, nl, format)
    }

    fn finish(&self, mut w: XmlWriter, nl: &str, format: Format) -> Reply {
        match format {
            Format::Xml => {
                w.raw(nl).close("report").raw(nl);
                Reply::rendered(StatusCode::OK, format.content_type(), w.finish())
            }
            Format::Json => {
                // The embedded declaration says UTF-16 although the text is UTF-8, as Alma's does.
                let doc = format!("<?xml version=\"1.0\" encoding=\"UTF-16\"?>\n{}", w.finish());
                Reply::rendered(
                    StatusCode::OK,
                    format.content_type(),
                    json!({ "anies": [doc] }).to_string(),
                )
            }
        }
    }

    fn schema(&self, w: &mut XmlWriter, nl: &str, ind: &str) {
        let i3 = ind.repeat(3);
        w.raw(&i3)
            .open(
                "xsd:schema",
                &[
                    ("xmlns:xsd", "http://www.w3.org/2001/XMLSchema"),
                    ("xmlns:saw-sql", "urn:saw-sql"),
                    ("targetNamespace", if self.rowset_ns { ROWSET_NS } else { "" }),
                ],
            )
            .raw(nl);
        w.raw(&i3).raw(ind).open("xsd:complexType", &[("name", "Row")]).raw(nl);
        w.raw(&i3).raw(ind).raw(ind).open("xsd:sequence", &[]).raw(nl);
        let mut element =
            |name: &str, xsd: &str, min: &str, saw: &str, heading: &str, formula: &str, table: &str, date: bool| {
                let mut attrs = vec![
                    ("name", name),
                    ("type", xsd),
                    ("minOccurs", min),
                    ("maxOccurs", "1"),
                    ("saw-sql:type", saw),
                ];
                if self.col_names {
                    attrs.push(("saw-sql:columnHeading", heading));
                }
                attrs.extend([
                    ("saw-sql:displayFormula", formula),
                    ("saw-sql:tableHeading", table),
                    ("saw-sql:aggregationRule", "none"),
                    ("saw-sql:aggregationType", "nonAgg"),
                ]);
                // Dates carry precision/scale 4294967295, as seen in real pages.
                let (precision, scale) = if date {
                    ("4294967295", "4294967295")
                } else {
                    ("255", "0")
                };
                attrs.extend([("saw-sql:precision", precision), ("saw-sql:scale", scale)]);
                w.raw(&i3)
                    .raw(ind)
                    .raw(ind)
                    .raw(ind)
                    .empty("xsd:element", &attrs)
                    .raw(nl);
            };
        element("Column0", "xsd:int", "1", "integer", "0", "0", "", false);
        for (i, c) in self.report.columns.iter().enumerate() {
            let name = format!("Column{}", i + 1);
            element(
                &name,
                c.col_type.xsd(),
                "0",
                c.col_type.saw(),
                &c.heading,
                &c.formula,
                &c.table_heading,
                c.col_type == ColType::Date,
            );
        }
        w.raw(&i3).raw(ind).raw(ind).close("xsd:sequence").raw(nl);
        w.raw(&i3).raw(ind).close("xsd:complexType").raw(nl);
        w.raw(&i3).close("xsd:schema").raw(nl);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_round_up_to_blocks_of_25() {
        assert_eq!(effective_limit(None).unwrap(), 25);
        assert_eq!(effective_limit(Some("30")).unwrap(), 50);
        assert_eq!(effective_limit(Some("1")).unwrap(), 25);
        assert_eq!(effective_limit(Some("1000")).unwrap(), 1000);
        assert_eq!(effective_limit(Some("5000")).unwrap(), 1000);
        assert_eq!(effective_limit(Some("990")).unwrap(), 1000);
        assert!(effective_limit(Some("lots")).is_err());
    }
}
