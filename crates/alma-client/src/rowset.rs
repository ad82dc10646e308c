//! Parser of Analytics report pages (quick-xml `NsReader` over the page's bytes, events borrowed
//! from them, nothing copied but the cell text) into column-major buffers: headings from the
//! first page's xsd schema (trimmed, Column0 dropped), cells mapped by their `ColumnN` name,
//! omitted and self-closed cells null, entities decoded, `<rowset>` and `<rowset:rowset>` alike.
//! Namespaces are resolved for every element except the plain cells of a plain `<Row>` (no
//! prefix, no attributes), which by the XML namespace rules are in the row's namespace.

use std::collections::HashMap;

use quick_xml::NsReader;
use quick_xml::events::{BytesStart, Event};
use quick_xml::name::{Namespace, ResolveResult};

pub const ROWSET_NS: &str = "urn:schemas-microsoft-com:xml-analysis:rowset";
const XSD_NS: &str = "http://www.w3.org/2001/XMLSchema";
const SAW_SQL_NS: &str = "urn:saw-sql";

/// Why a page could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("malformed XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("the page ends before its document does (at byte {position})")]
    Truncated { position: u64 },
    #[error("<{element}> is in namespace {namespace:?}, expected {expected:?}")]
    WrongNamespace {
        element: String,
        namespace: String,
        expected: &'static str,
    },
    #[error("the page has no IsFinished element")]
    NoIsFinished,
    #[error("IsFinished is {0:?}, expected true or false")]
    BadIsFinished(String),
    #[error("the page has no rowset")]
    NoRowset,
    #[error("the page has rows but no column schema was seen on the first page")]
    NoSchema,
    #[error("row {row} has column {column}, which is not in the report's schema (columns: {known})")]
    UnknownColumn { row: usize, column: String, known: String },
    #[error("the heading {heading:?} appears twice ({first} and {second}); rename one column in the report")]
    DuplicateHeading {
        heading: String,
        first: String,
        second: String,
    },
    #[error("row {row} has column {column} twice")]
    DuplicateCell { row: usize, column: String },
    #[error("the schema on this page differs from the first page's")]
    SchemaChanged,
}

/// One column's cells: the text of every cell in one string, with end offsets and a null mask.
/// No allocation per cell.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ColumnBuffer {
    text: String,
    ends: Vec<usize>,
    valid: Vec<bool>,
}

impl ColumnBuffer {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, row: usize) -> Option<&str> {
        if !*self.valid.get(row)? {
            return None;
        }
        let start = if row == 0 { 0 } else { self.ends[row - 1] };
        Some(&self.text[start..self.ends[row]])
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = Option<&str>> + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    pub fn push_null(&mut self) {
        self.ends.push(self.text.len());
        self.valid.push(false);
    }

    pub fn push(&mut self, value: &str) {
        self.text.push_str(value);
        self.ends.push(self.text.len());
        self.valid.push(true);
    }

    fn truncate(&mut self, rows: usize) {
        if rows < self.len() {
            let keep = if rows == 0 { 0 } else { self.ends[rows - 1] };
            self.text.truncate(keep);
            self.ends.truncate(rows);
            self.valid.truncate(rows);
        }
    }

    /// Adds another buffer's cells after these.
    pub fn append(&mut self, other: &ColumnBuffer) {
        let offset = self.text.len();
        self.text.push_str(&other.text);
        self.ends.extend(other.ends.iter().map(|e| e + offset));
        self.valid.extend_from_slice(&other.valid);
    }

    /// Bytes of cell text held (for memory accounting).
    pub fn text_bytes(&self) -> usize {
        self.text.len()
    }
}

/// What a column holds, from the schema's `saw-sql:type`: the cells are always text, but a
/// date compares as a date and a number as a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Text,
    Date,
    Timestamp,
    Number,
}

impl ColumnKind {
    fn from_saw_type(t: &str) -> Self {
        match t.to_ascii_lowercase().as_str() {
            "date" => ColumnKind::Date,
            "timestamp" | "datetime" => ColumnKind::Timestamp,
            "integer" | "double" | "float" | "decimal" | "numeric" | "bigint" | "smallint" => ColumnKind::Number,
            _ => ColumnKind::Text,
        }
    }
}

/// One `xsd:element` of the schema.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SchemaEntry {
    name: String,
    heading: String,
    kind: ColumnKind,
}

/// A report column: Alma's `ColumnN` name, its heading, its kind, and its cells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    pub name: String,
    pub heading: String,
    pub kind: ColumnKind,
    pub cells: ColumnBuffer,
}

/// What the pages of one report add up to.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Rowset {
    pub columns: Vec<Column>,
    pub rows: usize,
    /// `ColumnN` → position in `columns`, by N (no hashing per cell).
    index: Vec<Option<usize>>,
}

impl Rowset {
    pub fn headings(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.heading.as_str())
    }

    /// A rowset from columns already in hand (tests, benchmarks, CSV rehearsals); the columns
    /// must be `Column1..ColumnN` of equal length.
    pub fn from_columns(columns: Vec<Column>) -> Result<Self, ParseError> {
        let rows = columns.first().map_or(0, |c| c.cells.len());
        let mut rowset = Rowset::default();
        let schema = columns
            .iter()
            .map(|c| SchemaEntry {
                name: c.name.clone(),
                heading: c.heading.clone(),
                kind: c.kind,
            })
            .collect();
        rowset.set_schema(schema)?;
        rowset.columns = columns;
        rowset.rows = rows;
        Ok(rowset)
    }

    /// Adds another rowset's rows after these (partitions of one report); the columns must be
    /// the same, by name and heading.
    pub fn append(&mut self, other: &Rowset) -> Result<(), String> {
        let same = self.columns.len() == other.columns.len()
            && self
                .columns
                .iter()
                .zip(&other.columns)
                .all(|(a, b)| a.name == b.name && a.heading == b.heading);
        if !same {
            let list = |r: &Rowset| {
                r.columns
                    .iter()
                    .map(|c| c.heading.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            return Err(format!("the columns differ: [{}] and [{}]", list(self), list(other)));
        }
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.cells.append(&b.cells);
        }
        self.rows += other.rows;
        Ok(())
    }

    /// Whether the schema named the columns' headings (not when the report was read without
    /// `col_names`: then every column is called by its `ColumnN`).
    pub fn has_headings(&self) -> bool {
        self.columns.iter().any(|c| !is_column_name(&c.heading))
    }

    pub fn has_schema(&self) -> bool {
        !self.index.is_empty() || !self.columns.is_empty()
    }

    fn set_schema(&mut self, schema: Vec<SchemaEntry>) -> Result<(), ParseError> {
        let mut seen: HashMap<&str, &str> = HashMap::new();
        for SchemaEntry { name, heading, .. } in &schema {
            if let Some(first) = seen.insert(heading.as_str(), name.as_str()) {
                return Err(ParseError::DuplicateHeading {
                    heading: heading.clone(),
                    first: first.to_string(),
                    second: name.clone(),
                });
            }
        }
        self.index = Vec::new();
        for (i, SchemaEntry { name, .. }) in schema.iter().enumerate() {
            // Reports have tens of columns; an absurd N is left out (its cells are then refused).
            if let Some(n) = column_number(name).filter(|n| *n <= 100_000) {
                if self.index.len() <= n {
                    self.index.resize(n + 1, None);
                }
                self.index[n] = Some(i);
            }
        }
        self.columns = schema
            .into_iter()
            .map(|e| Column {
                name: e.name,
                heading: e.heading,
                kind: e.kind,
                cells: ColumnBuffer::default(),
            })
            .collect();
        Ok(())
    }

    fn truncate(&mut self, rows: usize) {
        for c in &mut self.columns {
            c.cells.truncate(rows);
        }
        self.rows = rows.min(self.rows);
    }
}

/// What a page says about the paging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageInfo {
    pub token: Option<String>,
    pub is_finished: bool,
    pub rows: usize,
    pub had_schema: bool,
    /// The rowset, its rows and cells were in no namespace (as Alma sent them for some weeks in
    /// October 2019).
    pub unnamespaced: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Capture {
    None,
    Token,
    IsFinished,
    Cell(usize),
    Column0,
}

/// What a page says about the paging, known as soon as its first row begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageHead {
    pub token: Option<String>,
    pub is_finished: bool,
}

/// Parses one page from `input` into `rowset`. On error the rowset is left as it was before.
pub fn parse_page(input: &[u8], rowset: &mut Rowset) -> Result<PageInfo, ParseError> {
    parse_page_with_head(input, rowset, &mut |_| {})
}

/// [`parse_page`], telling `on_head` the token and `IsFinished` as soon as the page's first row
/// begins (not at all for a page with no rows, or one whose `IsFinished` comes after its rows),
/// so that the next page can be asked for while this one is still being parsed.
pub fn parse_page_with_head(
    input: &[u8],
    rowset: &mut Rowset,
    on_head: &mut dyn FnMut(&PageHead),
) -> Result<PageInfo, ParseError> {
    let rows_before = rowset.rows;
    let had_schema_before = rowset.has_schema();
    let result = PageParser::new(rowset).run(input, on_head);
    if result.is_err() {
        if had_schema_before {
            rowset.truncate(rows_before);
        } else {
            *rowset = Rowset::default();
        }
    }
    result
}

struct PageParser<'a> {
    rowset: &'a mut Rowset,
    capture: Capture,
    text: String,
    token: Option<String>,
    is_finished: Option<bool>,
    schema: Option<Vec<SchemaEntry>>,
    in_schema: bool,
    saw_rowset: bool,
    /// `<ResultXml>` was there (empty when Alma is "still loading": `<ResultXml/>`).
    saw_result_xml: bool,
    /// The page's rowset is in no namespace (as for some weeks in October 2019), not in Alma's
    /// rowset namespace. Its rows and cells must be in the same one.
    rowset_unbound: bool,
    in_row: bool,
    /// The current row is unprefixed, has no attributes and is in the rowset namespace: its
    /// plain cells are too.
    plain_row: bool,
    /// For each column, whether the current row has filled it.
    filled: Vec<bool>,
    page_rows: usize,
}

impl<'a> PageParser<'a> {
    fn new(rowset: &'a mut Rowset) -> Self {
        Self {
            rowset,
            capture: Capture::None,
            text: String::new(),
            token: None,
            is_finished: None,
            schema: None,
            in_schema: false,
            saw_rowset: false,
            saw_result_xml: false,
            rowset_unbound: false,
            in_row: false,
            plain_row: false,
            filled: Vec::new(),
            page_rows: 0,
        }
    }

    fn run(mut self, input: &[u8], on_head: &mut dyn FnMut(&PageHead)) -> Result<PageInfo, ParseError> {
        let mut reader = NsReader::from_reader(input);
        reader.config_mut().trim_text(false);
        let mut depth = 0usize;
        let mut head_told = false;
        loop {
            let position = reader.buffer_position();
            let event = reader.read_event().map_err(|e| {
                let message = e.to_string();
                // A body cut off mid-tag is a truncation, not bad XML.
                if message.contains("end of input") {
                    ParseError::Truncated { position }
                } else {
                    ParseError::Xml { position, message }
                }
            })?;
            match event {
                Event::Start(e) => {
                    depth += 1;
                    let ns = self.namespace(&reader, &e);
                    self.start(&reader, &e, ns, false)?;
                    if !head_told
                        && self.in_row
                        && let Some(is_finished) = self.is_finished
                    {
                        head_told = true;
                        on_head(&PageHead {
                            token: self.token.clone(),
                            is_finished,
                        });
                    }
                }
                Event::Empty(e) => {
                    let ns = self.namespace(&reader, &e);
                    self.start(&reader, &e, ns, true)?;
                }
                Event::End(e) => {
                    depth = depth.saturating_sub(1);
                    self.end(local_name(e.name().0))?;
                }
                Event::Text(t) => self.text_piece(&t.xml10_content()),
                Event::CData(t) => self.text_piece(&t.xml10_content()),
                Event::GeneralRef(r) if self.capture != Capture::None => {
                    let resolved = match r.resolve_char_ref() {
                        Ok(Some(c)) => c.to_string(),
                        Ok(None) => {
                            let name = r.xml10_content();
                            quick_xml::escape::resolve_xml_entity(&name)
                                .ok_or_else(|| ParseError::Xml {
                                    position,
                                    message: format!("unknown entity &{name};"),
                                })?
                                .to_string()
                        }
                        Err(e) => {
                            return Err(ParseError::Xml {
                                position,
                                message: e.to_string(),
                            });
                        }
                    };
                    self.text_piece(&resolved);
                }
                Event::Eof => {
                    if depth > 0 {
                        return Err(ParseError::Truncated {
                            position: reader.buffer_position(),
                        });
                    }
                    break;
                }
                _ => {}
            }
        }
        let is_finished = self.is_finished.ok_or(ParseError::NoIsFinished)?;
        // Alma's "still loading" (also its "invalid 200"): IsFinished=false and an empty
        // <ResultXml/>, with or without a token, first or between two pages — a page of no rows.
        let still_loading = !is_finished && self.saw_result_xml;
        if !self.saw_rowset && self.page_rows == 0 && self.schema.is_none() && !still_loading {
            return Err(ParseError::NoRowset);
        }
        Ok(PageInfo {
            token: self.token,
            is_finished,
            rows: self.page_rows,
            had_schema: self.schema.is_some(),
            unnamespaced: self.saw_rowset && self.rowset_unbound,
        })
    }

    /// The element's namespace: inherited without a lookup for a plain cell of a plain row.
    fn namespace<R>(&self, reader: &NsReader<R>, e: &BytesStart<'_>) -> NsKind {
        if self.in_row && self.plain_row && is_plain(e) {
            // A constant, not a clone: this runs for every cell.
            return if self.rowset_unbound {
                NsKind::Unbound
            } else {
                NsKind::Rowset
            };
        }
        NsKind::of(&reader.resolver().resolve_element(e.name()).0)
    }

    fn text_piece(&mut self, s: &str) {
        match self.capture {
            Capture::None | Capture::Column0 => {}
            Capture::Token | Capture::IsFinished => self.text.push_str(s),
            Capture::Cell(i) => self.rowset.columns[i].cells.text.push_str(s),
        }
    }

    fn start<R>(
        &mut self,
        reader: &NsReader<R>,
        e: &BytesStart<'_>,
        ns: NsKind,
        empty: bool,
    ) -> Result<(), ParseError> {
        let name = local_name(e.name().0);
        match name {
            "ResumptionToken" if !empty => {
                self.capture = Capture::Token;
                self.text.clear();
            }
            "IsFinished" => {
                if empty {
                    return Err(ParseError::BadIsFinished(String::new()));
                }
                self.capture = Capture::IsFinished;
                self.text.clear();
            }
            "ResultXml" => self.saw_result_xml = true,
            "rowset" => {
                // In Alma's namespace, or — as for some weeks in 2019 — in none; then its rows
                // and cells must be in none too.
                if ns != NsKind::Unbound {
                    ns.expect_rowset(name)?;
                }
                self.rowset_unbound = ns == NsKind::Unbound;
                self.saw_rowset = true;
            }
            "schema" if ns == NsKind::Xsd => self.in_schema = true,
            "element" if self.in_schema && ns == NsKind::Xsd => {
                let mut col = None;
                let mut heading = None;
                let mut kind = ColumnKind::Text;
                for a in e.attributes() {
                    let a = a.map_err(|err| ParseError::Xml {
                        position: 0,
                        message: err.to_string(),
                    })?;
                    let (attr_ns, local) = reader.resolver().resolve_attribute(a.key);
                    let value =
                        a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .map_err(|err| ParseError::Xml {
                                position: 0,
                                message: err.to_string(),
                            })?;
                    match (namespace_of(&attr_ns), local.as_ref()) {
                        (None, "name") => col = Some(value.into_owned()),
                        (Some(SAW_SQL_NS), "columnHeading") => heading = Some(value.trim().to_string()),
                        (Some(SAW_SQL_NS), "type") => kind = ColumnKind::from_saw_type(&value),
                        _ => {}
                    }
                }
                if let Some(col) = col.filter(|c| c != "Column0") {
                    let heading = heading.filter(|h| !h.is_empty()).unwrap_or_else(|| col.clone());
                    self.schema.get_or_insert_with(Vec::new).push(SchemaEntry {
                        name: col,
                        heading,
                        kind,
                    });
                }
            }
            "Row" => {
                self.expect_rowset_ns(&ns, name)?;
                self.begin_row()?;
                self.plain_row = is_plain(e);
                if empty {
                    self.end_row();
                }
            }
            column if self.in_row => {
                self.expect_rowset_ns(&ns, column)?;
                if column == "Column0" {
                    self.capture = if empty { Capture::None } else { Capture::Column0 };
                    return Ok(());
                }
                let row = self.rowset.rows + 1;
                let found = column_number(column).and_then(|n| self.rowset.index.get(n).copied().flatten());
                let Some(i) = found else {
                    let known = self
                        .rowset
                        .columns
                        .iter()
                        .map(|c| c.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ");
                    return Err(ParseError::UnknownColumn {
                        row,
                        column: column.to_string(),
                        known,
                    });
                };
                if self.filled[i] {
                    return Err(ParseError::DuplicateCell {
                        row,
                        column: column.to_string(),
                    });
                }
                self.filled[i] = true;
                if empty {
                    self.rowset.columns[i].cells.push_null();
                } else {
                    self.capture = Capture::Cell(i);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Rows and cells are in the rowset's own namespace: a mix is an error.
    fn expect_rowset_ns(&self, ns: &NsKind, element: &str) -> Result<(), ParseError> {
        match (ns, self.rowset_unbound) {
            (NsKind::Rowset, false) | (NsKind::Unbound, true) => return Ok(()),
            _ => {}
        }
        if self.rowset_unbound {
            return Err(ParseError::WrongNamespace {
                element: element.to_string(),
                namespace: match ns {
                    NsKind::Rowset => ROWSET_NS.to_string(),
                    NsKind::Xsd => XSD_NS.to_string(),
                    NsKind::Unbound => String::new(),
                    NsKind::Other(n) => n.clone(),
                },
                expected: "",
            });
        }
        ns.expect_rowset(element)
    }

    fn begin_row(&mut self) -> Result<(), ParseError> {
        if let Some(schema) = self.schema.take() {
            self.adopt_schema(schema)?;
        }
        if !self.rowset.has_schema() {
            return Err(ParseError::NoSchema);
        }
        self.in_row = true;
        self.filled.clear();
        self.filled.resize(self.rowset.columns.len(), false);
        Ok(())
    }

    /// The schema seen on this page becomes the report's (first page), or must match it.
    fn adopt_schema(&mut self, schema: Vec<SchemaEntry>) -> Result<(), ParseError> {
        if self.rowset.has_schema() {
            let same = schema.len() == self.rowset.columns.len()
                && schema
                    .iter()
                    .zip(&self.rowset.columns)
                    .all(|(e, c)| e.name == c.name && e.heading == c.heading);
            if !same {
                return Err(ParseError::SchemaChanged);
            }
        } else {
            self.rowset.set_schema(schema.clone())?;
        }
        // Keep it visible for `had_schema`.
        self.schema = Some(schema);
        Ok(())
    }

    fn end_row(&mut self) {
        for (i, filled) in self.filled.iter().enumerate() {
            if !filled {
                self.rowset.columns[i].cells.push_null();
            }
        }
        self.rowset.rows += 1;
        self.page_rows += 1;
        self.in_row = false;
    }

    fn end(&mut self, name: &str) -> Result<(), ParseError> {
        match (self.capture, name) {
            (Capture::Token, "ResumptionToken") => {
                let t = self.text.trim();
                self.token = (!t.is_empty()).then(|| t.to_string());
                self.capture = Capture::None;
            }
            (Capture::IsFinished, "IsFinished") => {
                self.is_finished = Some(match self.text.trim() {
                    "true" => true,
                    "false" => false,
                    other => return Err(ParseError::BadIsFinished(other.to_string())),
                });
                self.capture = Capture::None;
            }
            (Capture::Cell(i), _) => {
                let cells = &mut self.rowset.columns[i].cells;
                cells.ends.push(cells.text.len());
                cells.valid.push(true);
                self.capture = Capture::None;
            }
            (Capture::Column0, _) => self.capture = Capture::None,
            (_, "schema") => {
                self.in_schema = false;
                // A schema with no rows on the page (empty or still-loading first page) still counts.
                if let Some(schema) = self.schema.take() {
                    self.adopt_schema(schema)?;
                }
            }
            (_, "Row") if self.in_row => self.end_row(),
            _ => {}
        }
        Ok(())
    }
}

fn namespace_of<'n>(ns: &'n ResolveResult<'_>) -> Option<&'n str> {
    match ns {
        ResolveResult::Bound(Namespace(n)) => Some(n),
        _ => None,
    }
}

/// No prefix and no attributes (so no namespace declaration).
fn is_plain(e: &BytesStart<'_>) -> bool {
    prefix_end(e.name().0).is_none() && e.attributes_raw().trim_ascii().is_empty()
}

/// Where a qualified name's prefix ends (its `:`), by bytes: quick-xml's `local_name` and
/// `prefix` search with `str::find(char)`, which the compiler may leave out of line — measured at
/// 6.5 % of the parse's instructions (cachegrind, 2026-12-01) when it did.
#[inline]
fn prefix_end(name: &str) -> Option<usize> {
    name.bytes().position(|b| b == b':')
}

/// The local part of a qualified name (`xsd:element` → `element`).
#[inline]
fn local_name(name: &str) -> &str {
    match prefix_end(name) {
        Some(i) => &name[i + 1..],
        None => name,
    }
}

/// Whether a name is Alma's own column name (`ColumnN`), as a column without a heading is called.
pub fn is_column_name(name: &str) -> bool {
    column_number(name).is_some()
}

/// N of `ColumnN`.
fn column_number(name: &str) -> Option<usize> {
    name.strip_prefix("Column")
        .filter(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))?
        .parse()
        .ok()
}

/// The namespace of an element, as far as the parser cares (no allocation for the usual ones).
#[derive(Clone, Debug, PartialEq, Eq)]
enum NsKind {
    Rowset,
    Xsd,
    Unbound,
    Other(String),
}

impl NsKind {
    fn of(ns: &ResolveResult<'_>) -> Self {
        match namespace_of(ns) {
            Some(ROWSET_NS) => NsKind::Rowset,
            Some(XSD_NS) => NsKind::Xsd,
            Some(other) => NsKind::Other(other.to_string()),
            None => NsKind::Unbound,
        }
    }

    fn expect_rowset(&self, element: &str) -> Result<(), ParseError> {
        let namespace = match self {
            NsKind::Rowset => return Ok(()),
            NsKind::Xsd => XSD_NS.to_string(),
            NsKind::Unbound => String::new(),
            NsKind::Other(n) => n.clone(),
        };
        Err(ParseError::WrongNamespace {
            element: element.to_string(),
            namespace,
            expected: ROWSET_NS,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/analytics")
            .join(name);
        std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    fn parse(bytes: &[u8], rowset: &mut Rowset) -> Result<PageInfo, ParseError> {
        parse_page(bytes, rowset)
    }

    fn column(rowset: &Rowset, heading: &str) -> Vec<Option<String>> {
        let c = rowset.columns.iter().find(|c| c.heading == heading).expect("heading");
        c.cells.iter().map(|v| v.map(str::to_string)).collect()
    }

    #[test]
    fn still_loading_as_an_empty_result_xml_with_or_without_a_token() {
        let mut r = Rowset::default();
        let info = parse(&fixture("still-loading-empty.xml"), &mut r).unwrap();
        assert_eq!(
            (info.rows, info.is_finished, info.had_schema, info.token),
            (0, false, false, None)
        );
        // The token split over lines with indentation inside the element reads trimmed.
        let info = parse(&fixture("still-loading-with-token.xml"), &mut r).unwrap();
        assert_eq!(info.token.as_deref().map(str::len), Some(128));
        // Between two pages of a report: the rows so far are kept, nothing added.
        parse(&fixture("pretty-first.xml"), &mut r).unwrap();
        let info = parse(&fixture("still-loading-empty.xml"), &mut r).unwrap();
        assert_eq!((info.rows, r.rows), (0, 3));
        // Finished with no rowset at all is still no page.
        let finished = String::from_utf8(fixture("still-loading-empty.xml"))
            .unwrap()
            .replace("false", "true");
        assert!(matches!(parse(finished.as_bytes(), &mut r), Err(ParseError::NoRowset)));
    }

    #[test]
    fn a_rowset_in_no_namespace_is_read_and_a_mix_refused() {
        let mut plain = Rowset::default();
        let info = parse(&fixture("rowset-no-namespace.xml"), &mut plain).unwrap();
        assert!(info.unnamespaced && info.rows == 3, "{info:?}");
        let mut usual = Rowset::default();
        let info = parse(&fixture("pretty-first.xml"), &mut usual).unwrap();
        assert!(!info.unnamespaced);
        assert_eq!(plain, usual, "the same report either way");
        let err = parse(&fixture("rowset-mixed-namespace.xml"), &mut Rowset::default()).unwrap_err();
        assert!(
            matches!(&err, ParseError::WrongNamespace { element, .. } if element == "Row"),
            "{err}"
        );
    }

    #[test]
    fn pretty_printed_first_page_with_blank_lines() {
        let mut r = Rowset::default();
        let info = parse(&fixture("pretty-first.xml"), &mut r).unwrap();
        assert_eq!(info.token.as_deref().map(str::len), Some(128));
        assert!(!info.is_finished && info.had_schema);
        assert_eq!(info.rows, 3);
        assert_eq!(
            r.headings().collect::<Vec<_>>(),
            [
                "Primary Identifier",
                "User Group",
                "Expiry Date",
                "IFNULL(Preferred Email, 'none')"
            ]
        );
        assert_eq!(
            column(&r, "Primary Identifier"),
            [Some("0012345".into()), Some("JDOE01".into()), Some("ab12".into())]
        );
        assert_eq!(
            column(&r, "Expiry Date"),
            [Some("2027-06-30".into()), None, Some("2026-12-31".into())]
        );
        assert_eq!(
            column(&r, "User Group"),
            [Some("UGRAD".into()), Some("STAFF".into()), None],
            "self-closed is null"
        );
    }

    #[test]
    fn later_pages_append_and_map_by_column_name() {
        let mut r = Rowset::default();
        parse(&fixture("pretty-first.xml"), &mut r).unwrap();
        let info = parse(&fixture("compact-next.xml"), &mut r).unwrap();
        assert_eq!(
            (info.token, info.is_finished, info.rows, info.had_schema),
            (None, true, 2, false)
        );
        assert_eq!(r.rows, 5);
        // The compact page lists its cells out of order; they land by name.
        assert_eq!(
            column(&r, "Primary Identifier")[3..],
            [Some("0099999".into()), Some("Z&Z <1>".into())]
        );
        assert_eq!(column(&r, "User Group")[3..], [Some("GRAD".into()), None]);
    }

    #[test]
    fn prefixed_rowset_cdata_entities_and_non_ascii() {
        let mut r = Rowset::default();
        let info = parse(&fixture("prefixed-rowset.xml"), &mut r).unwrap();
        assert!(info.is_finished);
        assert_eq!(
            column(&r, "Last Name"),
            [
                Some("Ó Súilleabháin".into()),
                Some("O'Brien & Co".into()),
                Some("Müller <x>".into())
            ]
        );
        assert_eq!(
            column(&r, "Primary Identifier"),
            [Some("åäö-1".into()), Some("ID2".into()), Some("ID3".into())]
        );
    }

    #[test]
    fn empty_and_still_loading_pages_keep_the_schema() {
        let mut r = Rowset::default();
        let info = parse(&fixture("empty.xml"), &mut r).unwrap();
        assert_eq!((info.rows, info.is_finished, info.had_schema), (0, true, true));
        assert_eq!(r.headings().count(), 1);
    }

    #[test]
    fn errors_name_the_column_the_heading_and_leave_the_rowset_as_it_was() {
        let mut r = Rowset::default();
        parse(&fixture("pretty-first.xml"), &mut r).unwrap();
        let before = r.clone();
        let bad = br#"<report><QueryResult><IsFinished>false</IsFinished><ResultXml><rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset"><Row><Column0>0</Column0><Column1>A</Column1></Row><Row><Column0>0</Column0><Column9>x</Column9></Row></rowset></ResultXml></QueryResult></report>"#;
        let err = parse(bad, &mut r).unwrap_err();
        assert!(
            matches!(&err, ParseError::UnknownColumn { column, row: 5, .. } if column == "Column9"),
            "{err}"
        );
        assert_eq!(r, before, "rolled back");

        let mut fresh = Rowset::default();
        let err = parse(&fixture("duplicate-heading.xml"), &mut fresh).unwrap_err();
        assert!(
            err.to_string().contains("\"Primary Identifier\" appears twice"),
            "{err}"
        );
        assert_eq!(fresh, Rowset::default());
    }

    #[test]
    fn truncated_wrong_namespace_and_missing_is_finished() {
        let page = fixture("pretty-first.xml");
        let mut r = Rowset::default();
        let err = parse(&page[..page.len() / 2], &mut r).unwrap_err();
        assert!(
            matches!(err, ParseError::Truncated { .. } | ParseError::Xml { .. }),
            "{err}"
        );
        assert_eq!(r, Rowset::default());

        let wrong = String::from_utf8(page.clone())
            .unwrap()
            .replace("urn:schemas-microsoft-com:xml-analysis:rowset\"", "urn:example:other\"");
        let err = parse(wrong.as_bytes(), &mut Rowset::default()).unwrap_err();
        assert!(matches!(err, ParseError::WrongNamespace { .. }), "{err}");

        let no_flag = String::from_utf8(page)
            .unwrap()
            .replace("<IsFinished>false</IsFinished>", "");
        assert_eq!(
            parse(no_flag.as_bytes(), &mut Rowset::default()).unwrap_err(),
            ParseError::NoIsFinished
        );
        let html = b"<html><body><h1>502 Bad Gateway</h1></body></html>";
        assert!(parse(html, &mut Rowset::default()).is_err());
        assert!(parse(b"", &mut Rowset::default()).is_err());
    }

    #[test]
    fn a_cell_that_leaves_the_rowset_namespace_is_refused_even_in_a_plain_row() {
        let page = String::from_utf8(fixture("pretty-first.xml")).unwrap();
        let good = parse(page.as_bytes(), &mut Rowset::default()).unwrap();
        for (what, from, to) in [
            (
                "a default namespace on the cell",
                "<Column1>JDOE01",
                r#"<Column1 xmlns="urn:example:other">JDOE01"#,
            ),
            (
                "a prefix bound elsewhere",
                "<Column1>JDOE01</Column1>",
                r#"<o:Column1 xmlns:o="urn:example:other">JDOE01</o:Column1>"#,
            ),
            (
                "a row moved to another namespace",
                "<Row>\n<Column0>0</Column0>\n<Column1>JDOE01",
                "<Row xmlns=\"urn:example:other\">\n<Column0>0</Column0>\n<Column1>JDOE01",
            ),
        ] {
            assert!(page.contains(from), "{what}: the fixture changed");
            let bad = page.replacen(from, to, 1);
            let err = parse(bad.as_bytes(), &mut Rowset::default()).unwrap_err();
            assert!(matches!(err, ParseError::WrongNamespace { .. }), "{what}: {err}");
        }
        // A cell prefixed with the rowset's own namespace is a cell like any other.
        let prefixed = page.replacen(
            "<Column1>JDOE01</Column1>",
            r#"<r:Column1 xmlns:r="urn:schemas-microsoft-com:xml-analysis:rowset">JDOE01</r:Column1>"#,
            1,
        );
        let mut r = Rowset::default();
        assert_eq!(parse(prefixed.as_bytes(), &mut r).unwrap(), good);
        assert!(column(&r, "Primary Identifier").contains(&Some("JDOE01".into())));
    }

    #[test]
    fn the_head_is_told_at_the_first_row_and_only_for_a_page_with_rows() {
        let page = fixture("pretty-first.xml");
        let mut heads = Vec::new();
        let mut rowset = Rowset::default();
        let info = parse_page_with_head(&page, &mut rowset, &mut |h| heads.push((h.clone(), 0))).unwrap();
        assert_eq!(
            heads,
            [(
                PageHead {
                    token: info.token.clone(),
                    is_finished: false
                },
                0
            )]
        );
        assert!(info.token.is_some());

        // A still-loading page (no rows): nothing is told, so no next page is asked for early.
        let loading = br#"<report><QueryResult><ResumptionToken>T</ResumptionToken><IsFinished>false</IsFinished><ResultXml><rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset"/></ResultXml></QueryResult></report>"#;
        let mut told = 0;
        let info = parse_page_with_head(loading, &mut rowset, &mut |_| told += 1).unwrap();
        assert_eq!((told, info.rows, info.is_finished), (0, 0, false));

        // IsFinished after the rows: told only by the result.
        let late = String::from_utf8(page)
            .unwrap()
            .replace("<IsFinished>false</IsFinished>", "")
            .replace("</ResultXml>", "</ResultXml><IsFinished>true</IsFinished>");
        let info = parse_page_with_head(late.as_bytes(), &mut Rowset::default(), &mut |_| told += 1).unwrap();
        assert_eq!((told, info.is_finished), (0, true));
    }

    #[test]
    fn rowsets_of_one_report_append() {
        let mut a = Rowset::default();
        parse(&fixture("pretty-first.xml"), &mut a).unwrap();
        let b = a.clone();
        a.append(&b).unwrap();
        assert_eq!(a.rows, 6);
        assert_eq!(
            column(&a, "Primary Identifier")[3..],
            column(&b, "Primary Identifier")[..]
        );
        let mut other = Rowset::default();
        parse(&fixture("prefixed-rowset.xml"), &mut other).unwrap();
        assert!(a.append(&other).unwrap_err().contains("the columns differ"));
    }

    #[test]
    fn column_buffers_hold_text_without_per_cell_allocations() {
        let mut b = ColumnBuffer::default();
        b.push("abc");
        b.push_null();
        b.push("");
        b.push("d");
        assert_eq!(b.iter().collect::<Vec<_>>(), [Some("abc"), None, Some(""), Some("d")]);
        b.truncate(1);
        assert_eq!(b.iter().collect::<Vec<_>>(), [Some("abc")]);
        assert_eq!(b.text_bytes(), 3);
    }

    #[test]
    fn expression_headings_are_trimmed_and_keep_their_inner_spaces() {
        let page = concat!(
            r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><report><QueryResult>"#,
            r#"<ResumptionToken>T</ResumptionToken><IsFinished>true</IsFinished><ResultXml>"#,
            r#"<rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset"><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:saw-sql="urn:saw-sql">"#,
            r#"<xsd:complexType name="Row"><xsd:sequence>"#,
            r#"<xsd:element minOccurs="1" maxOccurs="1" name="Column0" type="xsd:int" saw-sql:type="integer" saw-sql:columnHeading="0"/>"#,
            r#"<xsd:element minOccurs="0" maxOccurs="1" name="Column1" type="xsd:string" saw-sql:type="varchar" saw-sql:columnHeading="  CASE WHEN  x THEN 1 END "/>"#,
            r#"</xsd:sequence></xsd:complexType></xsd:schema>"#,
            r#"<Row><Column0>0</Column0><Column1>1</Column1></Row></rowset></ResultXml></QueryResult></report>"#
        );
        let mut r = Rowset::default();
        let info = parse(page.as_bytes(), &mut r).unwrap();
        assert!(
            info.is_finished && info.token.as_deref() == Some("T"),
            "a token and IsFinished=true on one page"
        );
        assert_eq!(
            r.headings().collect::<Vec<_>>(),
            ["CASE WHEN  x THEN 1 END"],
            "Column0 left out"
        );
        assert!(r.has_headings());
        assert_eq!(column(&r, "CASE WHEN  x THEN 1 END"), [Some("1".to_string())]);
    }
}
