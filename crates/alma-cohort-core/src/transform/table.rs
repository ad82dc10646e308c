//! The report as a polars table: its columns as Series, its errors, and the CSV and Parquet
//! writers of `extract`.

use std::io::Write;

use polars::prelude::*;
use polars_io::SerWriter;
use polars_io::prelude::{CsvWriter, ParquetWriter};

use alma_client::Report;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(
        "{key} names the heading {heading:?}, which is not in the report{}\nhint: the report's headings are {}{}",
        closest.as_ref().map(|c| format!(" (did you mean {c:?}?)")).unwrap_or_default(),
        headings.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", "),
        no_headings_hint(headings)
    )]
    UnknownHeading {
        key: &'static str,
        heading: String,
        closest: Option<String>,
        headings: Vec<String>,
    },
    #[error(
        "cohort.where cannot be used: {message}\nhint: it is a SQL condition over the report's headings in double quotes, e.g. \"User Group\" IN ('UGRAD', 'GRAD'); it was: {sql}"
    )]
    BadWhere { sql: String, message: String },
    #[error("report row {row}: the ID in {column:?} ({preview}) {problem}; the cohort is refused")]
    InvalidId {
        row: usize,
        column: String,
        preview: String,
        problem: String,
    },
    #[error("cannot build a table from the report: {0}")]
    Frame(#[source] PolarsError),
    #[error("cannot write {format}: {source}")]
    Write {
        format: &'static str,
        #[source]
        source: PolarsError,
    },
}

/// When every heading is Alma's own column name (`Column0`, `Column1`, …), the report came
/// without its headings (as when read without `col_names=true`): say so.
fn no_headings_hint(headings: &[String]) -> &'static str {
    if !headings.is_empty() && headings.iter().all(|h| alma_client::rowset::is_column_name(h)) {
        "\nhint: the report's schema has no headings (saw-sql:columnHeading), so its columns are named Column0, Column1, …; give every column a heading in Alma Analytics (Criteria → Column Properties → Column Format) and name the headings in the query, not ColumnN"
    } else {
        ""
    }
}

/// A table of the report (or the cohort), held for the layers that must not see polars.
#[derive(Clone, Debug)]
pub struct Table {
    pub(super) df: DataFrame,
}

impl Table {
    pub fn height(&self) -> usize {
        self.df.height()
    }

    pub fn width(&self) -> usize {
        self.df.width()
    }

    /// Bytes the table's columns take in memory: for text, the 16-byte view of every cell, the
    /// buffers of the cells too long to sit in their view, and the validity bits (polars'
    /// `estimated_size` leaves the views out); other types by polars' estimate.
    pub fn memory_bytes(&self) -> usize {
        self.df
            .columns()
            .iter()
            .map(|c| match c.as_materialized_series().str() {
                Ok(text) => {
                    let views_and_buffers: usize = text
                        .downcast_iter()
                        .map(|a| a.views().len() * std::mem::size_of::<u128>() + a.total_buffer_len())
                        .sum();
                    let validity = if text.null_count() > 0 {
                        text.len().div_ceil(8)
                    } else {
                        0
                    };
                    views_and_buffers + validity
                }
                Err(_) => c.as_materialized_series().estimated_size(),
            })
            .sum()
    }

    pub fn write_csv<W: Write>(&mut self, out: W) -> Result<(), Error> {
        write_csv(&mut self.df, out)
    }

    /// The table as a review file shows it ([`crate::text::spreadsheet_safe`] on every text
    /// cell): for `cohort.csv` and `no-email.csv`, which reviewers open in a spreadsheet. The
    /// table itself is not changed.
    pub fn for_spreadsheets(&self) -> Result<Table, Error> {
        let mut columns = Vec::with_capacity(self.df.width());
        for c in self.df.columns() {
            match c.str() {
                Ok(text) if text.iter().flatten().any(|v| crate::text::spreadsheet_safe(v) != v) => {
                    let safe: StringChunked = text
                        .iter()
                        .map(|v| v.map(|v| crate::text::spreadsheet_safe(v).into_owned()))
                        .collect();
                    columns.push(safe.with_name(c.name().clone()).into_series().into_column());
                }
                _ => columns.push(c.clone()),
            }
        }
        Ok(Table {
            df: DataFrame::new(self.df.height(), columns).map_err(Error::Frame)?,
        })
    }

    pub fn write_parquet<W: Write>(&mut self, out: W) -> Result<(), Error> {
        write_parquet(&mut self.df, out)
    }
}

/// The report as a table of string columns named by heading.
pub fn report_to_table(report: &Report) -> Result<Table, Error> {
    Ok(Table {
        df: report_to_frame(report)?,
    })
}

/// [`report_to_table`], taking the report: each column's cells are freed as soon as they are
/// converted, so the report's data is held once, not twice, at the peak.
pub fn report_into_table(report: Report) -> Result<Table, Error> {
    Ok(Table {
        df: report_into_frame(report)?,
    })
}

/// [`report_to_frame`], taking the report and freeing each column's cells once converted.
pub(crate) fn report_into_frame(report: Report) -> Result<DataFrame, Error> {
    let rows = report.rows();
    let columns = report.rowset.columns.into_iter().map(|c| frame_column(&c)).collect();
    DataFrame::new(rows, columns).map_err(Error::Frame)
}

/// The report as a DataFrame of string columns named by heading, in Alma's row order. Cells
/// stay text, so IDs keep their leading zeros.
pub fn report_to_frame(report: &Report) -> Result<DataFrame, Error> {
    let columns = report.rowset.columns.iter().map(frame_column).collect();
    DataFrame::new(report.rows(), columns).map_err(Error::Frame)
}

fn frame_column(c: &alma_client::rowset::Column) -> Column {
    StringChunked::from_iter_options(c.heading.as_str().into(), c.cells.iter())
        .into_series()
        .into_column()
}

/// CSV with a header row, every value quoted only where needed.
fn write_csv<W: Write>(df: &mut DataFrame, out: W) -> Result<(), Error> {
    CsvWriter::new(out)
        .include_header(true)
        .finish(df)
        .map_err(|source| Error::Write { format: "CSV", source })
}

fn write_parquet<W: Write>(df: &mut DataFrame, out: W) -> Result<(), Error> {
    ParquetWriter::new(out)
        .finish(df)
        .map(|_| ())
        .map_err(|source| Error::Write {
            format: "Parquet",
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use alma_client::rowset::{Rowset, parse_page};

    fn report() -> Report {
        let page = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/analytics/pretty-first.xml"
        ))
        .unwrap();
        let mut rowset = Rowset::default();
        parse_page(page.as_slice(), &mut rowset).unwrap();
        Report {
            path: "/x".into(),
            rowset,
            pages: 1,
            requests: 1,
            restarts: 0,
        }
    }

    #[test]
    fn columns_are_named_by_heading_and_keep_text() {
        let df = report_to_frame(&report()).unwrap();
        assert_eq!(df.shape(), (3, 4));
        let names: Vec<&str> = df.get_column_names().iter().map(|n| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "Primary Identifier",
                "User Group",
                "Expiry Date",
                "IFNULL(Preferred Email, 'none')"
            ]
        );
        let ids = df.column("Primary Identifier").unwrap().str().unwrap();
        assert_eq!(ids.get(0), Some("0012345"));
        let group = df.column("User Group").unwrap().str().unwrap();
        assert_eq!(group.get(2), None);
    }

    #[test]
    fn csv_keeps_leading_zeros_and_nulls_empty() {
        let mut df = report_to_frame(&report()).unwrap();
        let mut out = Vec::new();
        write_csv(&mut df, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("Primary Identifier,User Group,Expiry Date,\"IFNULL(Preferred Email, 'none')\"\n"),
            "{text}"
        );
        assert!(text.contains("0012345,UGRAD,2027-06-30,ann.lee@example.edu\n"));
        assert!(text.contains("ab12,,2026-12-31,none\n"));
        let mut pq = Vec::new();
        write_parquet(&mut df, &mut pq).unwrap();
        assert_eq!(&pq[..4], b"PAR1");
    }
}
