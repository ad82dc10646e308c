//! A cohort from a file instead of a report — the manual workflow's options A and B: a Notepad
//! list (`.txt`, one ID a line, optionally headed `User name`), a CSV, or a spreadsheet (`.xlsx`,
//! `.xlsm`, `.xls`, `.ods`, read with calamine). The file becomes the same columns a report page
//! fills, so everything after it — normalization, exclusions, guards, the journal — is the
//! pipeline a report goes through. No Alma call is made to read it.

use std::path::Path;

mod bounds;

use calamine::{Data, Reader};

use crate::error::Error;
use crate::query::{FileFormat, FileSpec};
use alma_client::Report;
use alma_client::rowset::{Column, ColumnBuffer, ColumnKind, Rowset};

/// What was read from a list file, and what `plan` should say about it.
#[derive(Debug)]
pub struct ListFile {
    pub report: Report,
    /// The file's sha256, recorded with the run beside the query's.
    pub sha256: String,
    /// Lines for the plan: the format read, a heading line or none, IDs stored as numbers.
    pub notes: Vec<String>,
    /// IDs that a spreadsheet stored as numbers (their leading zeros are lost).
    pub numeric_ids: usize,
}

/// A person of a library's own list or exported report, for a rehearsal on the simulator
/// (`alma-cohort sim --users-from FILE`): the ID, and what the file says of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Person {
    pub id: String,
    pub user_group: Option<String>,
    /// From an "Account Type" or "User Type" column: `Some(true)` for Internal.
    pub internal: Option<bool>,
    /// From a "Status" column: `Some(true)` for Active.
    pub active: Option<bool>,
    /// `None`: the file has no email column; `Some("")`: it says the person has no address.
    pub email: Option<String>,
    pub expiry_date: Option<chrono::NaiveDate>,
}

/// Reads a list file or an exported report (the same reader as a query's `[file]`), and what
/// its usual headings say of each person. Blank and repeated IDs are skipped.
pub fn people(path: &std::path::Path, id_column: &str) -> Result<Vec<Person>, Error> {
    let format = FileFormat::of(path).ok_or_else(|| {
        input(
            path,
            None,
            "not a list file: use .txt, .csv, .tsv, .xlsx, .xls or .ods".into(),
        )
    })?;
    let spec = FileSpec {
        path: path.to_path_buf(),
        format,
        sheet: None,
    };
    let list = read(&spec, id_column, None)?;
    let columns = &list.report.rowset.columns;
    let find = |names: &[&str]| {
        columns
            .iter()
            .find(|c| names.iter().any(|n| c.heading.trim().eq_ignore_ascii_case(n)))
    };
    let id = find(&[id_column]).ok_or_else(|| input(path, None, format!("no column {id_column:?}")))?;
    let group = find(&["User Group"]);
    let account = find(&["Account Type", "User Type"]);
    let status = find(&["Status", "User Status"]);
    let email = find(&["Preferred Email", "Email", "Preferred Email Address"]);
    let expiry = find(&["Expiry Date", "User Expiry Date"]);
    let cell = |c: Option<&alma_client::rowset::Column>, row: usize| {
        c.and_then(|c| c.cells.get(row))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for row in 0..list.report.rows() {
        let Some(pid) = cell(Some(id), row).map(|v| v.trim_start_matches('\'').to_string()) else {
            continue;
        };
        if !seen.insert(pid.to_lowercase()) {
            continue;
        }
        out.push(Person {
            id: pid,
            user_group: cell(group, row),
            internal: cell(account, row).map(|v| v.eq_ignore_ascii_case("internal")),
            active: cell(status, row).map(|v| v.eq_ignore_ascii_case("active")),
            // A column with no usable address in it: the person has none (empty, not unknown).
            email: email.map(|_| {
                cell(email, row)
                    .filter(|v| crate::transform::is_address(v))
                    .unwrap_or_default()
            }),
            expiry_date: cell(expiry, row).and_then(|v| {
                v.get(..10)
                    .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
            }),
        });
    }
    if out.is_empty() {
        return Err(input(
            path,
            None,
            "names nobody: give one ID a line, or a column of IDs".into(),
        ));
    }
    Ok(out)
}

/// Reads `spec`'s file; `id_column` is the heading of the IDs (a `.txt` file's optional first
/// line). `pad_to` is the query's `pad_numeric_to`, for the note on numeric spreadsheet cells.
pub fn read(spec: &FileSpec, id_column: &str, pad_to: Option<usize>) -> Result<ListFile, Error> {
    let bytes = crate::text::read_bytes(&spec.path, crate::text::limit::LIST)
        .map_err(|e| input(&spec.path, None, e.to_string()))?;
    let sha256 = crate::files::sha256_hex(&bytes);
    let mut notes = Vec::new();
    let mut numeric_ids = 0;
    let decoded = || -> Result<(String, crate::text::Encoding), Error> {
        let (text, encoding) = crate::text::decode(&bytes).map_err(|m| input(&spec.path, None, m))?;
        // Every line must be text first: a binary file is refused with its line.
        for (i, line) in text.split('\n').enumerate() {
            if let Some(col) = crate::text::control_at(line) {
                return Err(input(
                    &spec.path,
                    Some(i + 1),
                    format!("not a text file (a control character at column {col}); give a list of IDs, one a line"),
                ));
            }
        }
        Ok((text, encoding))
    };
    let columns = match spec.format {
        FileFormat::Text => {
            let (text, encoding) = decoded()?;
            // Excel's "Unicode Text" is a .txt file of tab-separated columns.
            let tabbed = text
                .lines()
                .map(str::trim)
                .find(|l| !l.is_empty() && !l.starts_with('#'))
                .is_some_and(|l| l.contains('\t'));
            if tabbed {
                csv_file(&spec.path, &text, Some((b'\t', "tab")), encoding, id_column, &mut notes)?
            } else {
                text_list(&spec.path, &text, encoding, id_column, &mut notes)?
            }
        }
        FileFormat::Csv => {
            let (text, encoding) = decoded()?;
            csv_file(&spec.path, &text, None, encoding, id_column, &mut notes)?
        }
        FileFormat::Spreadsheet => {
            // Parsed from the bytes just hashed: the sha256 is of the very file that was read.
            let (columns, numeric) = spreadsheet(spec, &bytes, id_column, &mut notes)?;
            numeric_ids = numeric;
            if numeric > 0 {
                notes.push(match pad_to {
                    Some(w) => format!(
                        "{numeric} IDs were stored as numbers in the spreadsheet; Excel drops leading zeros from numbers, so they were padded to {w} digits (pad_numeric_to)"
                    ),
                    None => format!(
                        "{numeric} IDs were stored as numbers in the spreadsheet; Excel drops leading zeros from numbers — set [cohort.normalize] pad_numeric_to to your IDs' width to restore them"
                    ),
                });
            }
            columns
        }
    };
    let rowset = Rowset::from_columns(columns).map_err(|e| input(&spec.path, None, e.to_string()))?;
    let report = Report {
        path: spec.path.display().to_string(),
        rowset,
        pages: 0,
        requests: 0,
        restarts: 0,
    };
    // A file is not a report: no rows is a file that is not the list meant (exit 2).
    if report.rows() == 0 {
        return Err(input(
            &spec.path,
            None,
            "holds no IDs (a heading and nothing below it, or only blank and # lines); is this the list you meant?"
                .into(),
        ));
    }
    Ok(ListFile {
        report,
        sha256,
        notes,
        numeric_ids,
    })
}

fn input(path: &Path, line: Option<usize>, message: String) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        line,
        message,
    }
}

fn text_column(n: usize, heading: &str, cells: ColumnBuffer) -> Column {
    Column {
        name: format!("Column{n}"),
        heading: heading.to_string(),
        kind: ColumnKind::Text,
        cells,
    }
}

/// An ID from a list file, checked as a person meant it ([`crate::text::id_problem`]), naming
/// where it is.
fn check_id(path: &Path, line: Option<usize>, place: &str, id: &str) -> Result<(), Error> {
    match crate::text::id_problem(id.trim()) {
        Some(problem) => Err(input(path, line, format!("{place}the ID {:?} {problem}", id.trim()))),
        None => Ok(()),
    }
}

/// `.txt`: one ID a line, blank lines and `#` comments skipped; a first line equal to the
/// heading is the heading.
fn text_list(
    path: &Path,
    text: &str,
    encoding: crate::text::Encoding,
    id_column: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Column>, Error> {
    let mut ids = ColumnBuffer::default();
    let mut heading = None;
    let mut first = true;
    for (i, line) in text.split('\n').enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let content = line.trim();
        if let Some(what) = crate::text::excel_error(content) {
            return Err(input(path, Some(i + 1), format!("line {:?} {what}", content)));
        }
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if first {
            first = false;
            if content.eq_ignore_ascii_case(id_column.trim()) {
                heading = Some(i + 1);
                continue;
            }
        }
        check_id(path, Some(i + 1), "", content)?;
        ids.push(line);
    }
    notes.push(match heading {
        Some(n) => format!(
            "read {} as a text list ({}): line {n} is the heading {id_column:?}, {} IDs below it",
            path.display(),
            encoding.describe(),
            ids.len()
        ),
        None => format!(
            "read {} as a text list ({}): no heading line {id_column:?}, so every line is an ID ({} IDs)",
            path.display(),
            encoding.describe(),
            ids.len()
        ),
    });
    Ok(vec![text_column(1, id_column, ids)])
}

/// The delimiter of a CSV file, from its heading line: the most frequent of `,`, `;` and tab
/// outside quotes (a comma when there is none: one column).
fn detect_delimiter(first_line: &str) -> (u8, &'static str) {
    let (mut counts, mut quoted) = ([0usize; 3], false);
    for c in first_line.chars() {
        match c {
            '"' => quoted = !quoted,
            ',' if !quoted => counts[0] += 1,
            ';' if !quoted => counts[1] += 1,
            '\t' if !quoted => counts[2] += 1,
            _ => {}
        }
    }
    let candidates = [(b',', "comma"), (b';', "semicolon"), (b'\t', "tab")];
    let best = (0..3).max_by_key(|&i| (counts[i], 3 - i)).unwrap_or(0);
    if counts[best] == 0 {
        candidates[0]
    } else {
        candidates[best]
    }
}

/// The index of the heading a query names: exact, else ignoring case and surrounding spaces.
fn find_heading(headings: &[String], wanted: &str) -> Option<usize> {
    let wanted = wanted.trim();
    headings
        .iter()
        .position(|h| h == wanted)
        .or_else(|| headings.iter().position(|h| h.eq_ignore_ascii_case(wanted)))
}

fn no_heading(path: &Path, wanted: &str, headings: &[String], place: &str) -> Error {
    input(
        path,
        Some(1),
        format!(
            "no column headed {wanted:?} in {place} (the headings are {}); name the ID column's heading in [cohort] id_column",
            headings.iter().map(|h| format!("{h:?}")).collect::<Vec<_>>().join(", ")
        ),
    )
}

/// Columns from headings and rows of optional cells; the ID column takes the query's spelling.
fn columns_of(headings: &[String], id_index: usize, id_column: &str, cells: Vec<ColumnBuffer>) -> Vec<Column> {
    headings
        .iter()
        .zip(cells)
        .enumerate()
        .map(|(i, (h, c))| text_column(i + 1, if i == id_index { id_column } else { h }, c))
        .collect()
}

fn check_headings_unique(path: &Path, headings: &[String]) -> Result<(), Error> {
    // A set, not a scan of the headings before each: 120 000 columns are checked at once.
    let mut seen = std::collections::HashSet::with_capacity(headings.len());
    for (i, h) in headings.iter().enumerate() {
        if h.is_empty() {
            return Err(input(path, Some(1), format!("column {} has no heading", i + 1)));
        }
        if !seen.insert(h.as_str()) {
            return Err(input(path, Some(1), format!("the heading {h:?} is there twice")));
        }
    }
    Ok(())
}

/// `.csv` (or a tab-separated `.txt`): headings in the first row; `,` `;` or tab (detected unless
/// given); quoted fields.
fn csv_file(
    path: &Path,
    text: &str,
    delimiter: Option<(u8, &'static str)>,
    encoding: crate::text::Encoding,
    id_column: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<Column>, Error> {
    let (delimiter, name) = delimiter.unwrap_or_else(|| detect_delimiter(text.lines().next().unwrap_or_default()));
    // A quote opened and never closed swallows every line after it into one cell: the reader
    // takes it, so it is found here (an odd number of quotes), naming where it opens.
    if text.matches('"').count() % 2 == 1 {
        let mut open = None;
        for (i, line) in text.split('\n').enumerate() {
            for _ in line.matches('"') {
                open = match open {
                    None => Some(i + 1),
                    Some(_) => None,
                };
            }
        }
        return Err(input(
            path,
            open,
            "a quote (\") opens a value here and is never closed, so every line after it would be one value; close it or remove it"
                .into(),
        ));
    }
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .has_headers(true)
        .from_reader(text.as_bytes());
    // The file's own line of a byte (the reader's count skips blank lines).
    let line_at = |byte: u64| {
        text.as_bytes()[..(byte as usize).min(text.len())]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    };
    let csv_error = |e: csv::Error| {
        let line = e.position().map(|p| line_at(p.byte()));
        input(path, line, format!("not a readable CSV file: {e}"))
    };
    let headings: Vec<String> = reader
        .headers()
        .map_err(csv_error)?
        .iter()
        .map(|h| h.trim().to_string())
        .collect();
    check_headings_unique(path, &headings)?;
    let id_index = find_heading(&headings, id_column)
        .ok_or_else(|| no_heading(path, id_column, &headings, "the CSV file's first row"))?;
    let mut cells: Vec<ColumnBuffer> = headings.iter().map(|_| ColumnBuffer::default()).collect();
    let mut rows = 0;
    let mut counted = (0usize, 1usize);
    for record in reader.records() {
        let record = record.map_err(csv_error)?;
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        // Counted on from the last record's line: one pass over the file in all.
        let line = record.position().map(|p| {
            // A record's position is where the blank lines before it begin.
            let mut byte = (p.byte() as usize).clamp(counted.0, text.len());
            while matches!(text.as_bytes().get(byte), Some(b'\n' | b'\r')) {
                byte += 1;
            }
            counted.1 += text.as_bytes()[counted.0..byte].iter().filter(|&&b| b == b'\n').count();
            counted.0 = byte;
            counted.1
        });
        // More fields than headings shifts every value after the extra one: a comma in a name.
        if record.iter().skip(headings.len()).any(|f| !f.trim().is_empty()) {
            return Err(input(
                path,
                line,
                format!(
                    "{} fields, but the heading row has {}: a value with a {name} in it needs quotes",
                    record.len(),
                    headings.len()
                ),
            ));
        }
        if let Some(id) = record.get(id_index)
            && let Some(what) = crate::text::excel_number(id.trim())
        {
            return Err(input(path, line, format!("the ID {:?} {what}", id.trim())));
        }
        if let Some(id) = record.get(id_index)
            && let Some(c) = id.trim().chars().find(|c| matches!(c, ',' | ';' | '\t'))
        {
            return Err(input(
                path,
                line,
                format!(
                    "the ID {id:?} holds {c:?}: the heading row says the file is {name}-separated; check the file's separator"
                ),
            ));
        }
        if let Some(id) = record.get(id_index) {
            check_id(path, line, "", id)?;
        }
        rows += 1;
        for (i, column) in cells.iter_mut().enumerate() {
            match record.get(i) {
                Some(v) if !v.trim().is_empty() => column.push(v),
                _ => column.push_null(),
            }
        }
    }
    notes.push(format!(
        "read {} as CSV ({}): {name}-separated, {} columns, {rows} rows",
        path.display(),
        encoding.describe(),
        headings.len()
    ));
    Ok(columns_of(&headings, id_index, id_column, cells))
}

/// `A`, `B`, … `Z`, `AA`, … for a 0-based column index.
fn column_letters(mut index: u32) -> String {
    let mut letters = Vec::new();
    loop {
        letters.push(b'A' + (index % 26) as u8);
        if index < 26 {
            break;
        }
        index = index / 26 - 1;
    }
    letters.reverse();
    String::from_utf8(letters).unwrap_or_default()
}

/// A number as the digits a person typed: no `.0`, no exponent; `None` if it is not whole.
fn integer_digits(f: f64) -> Option<String> {
    (f.is_finite() && f.fract() == 0.0 && f.abs() < 1e15).then(|| format!("{}", f as i64))
}

/// A non-ID cell as text.
fn cell_text(cell: &Data) -> Option<String> {
    match cell {
        Data::Empty => None,
        Data::String(s) => Some(s.clone()).filter(|s| !s.trim().is_empty()),
        Data::Int(i) => Some(i.to_string()),
        Data::Float(f) => Some(integer_digits(*f).unwrap_or_else(|| f.to_string())),
        Data::Bool(b) => Some(b.to_string()),
        Data::DateTime(d) => d.as_datetime().map(|t| {
            if t.time() == chrono::NaiveTime::MIN {
                t.format("%Y-%m-%d").to_string()
            } else {
                t.format("%Y-%m-%dT%H:%M:%S").to_string()
            }
        }),
        Data::DateTimeIso(s) | Data::DurationIso(s) => Some(s.clone()),
        Data::Error(_) => None,
    }
}

/// `.xlsx`/`.xlsm`/`.xls`/`.ods`: the first row of the sheet is the headings. In the ID column,
/// text stays as it is and whole numbers become their digits (counted); a date, a boolean, an
/// error or a fraction refuses the file, naming the cell.
fn spreadsheet(
    spec: &FileSpec,
    bytes: &[u8],
    id_column: &str,
    notes: &mut Vec<String>,
) -> Result<(Vec<Column>, usize), Error> {
    let path = &spec.path;
    bounds::check_unpacked(bytes, bounds::UNPACKED_MAX)
        .and_then(|()| bounds::check_ods(bytes))
        .map_err(|m| input(path, None, m))?;
    let mut book = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes.to_vec()))
        .map_err(|e| input(path, None, format!("not a spreadsheet alma-cohort can read: {e}")))?;
    let sheets = book.sheet_names();
    // Which sheet is "the first" is not what a person sees when sheets are hidden or reordered:
    // with more than one, the query must name it.
    if spec.sheet.is_none() && sheets.len() > 1 {
        return Err(input(
            path,
            None,
            format!(
                "the workbook has {} sheets ({}); name the one with the IDs in [file] sheet",
                sheets.len(),
                sheets.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    let sheet = match &spec.sheet {
        Some(wanted) => sheets
            .iter()
            .find(|s| s.as_str() == wanted.as_str())
            .or_else(|| sheets.iter().find(|s| s.eq_ignore_ascii_case(wanted)))
            .cloned()
            .ok_or_else(|| {
                input(
                    path,
                    None,
                    format!(
                        "no sheet named {wanted:?} (the sheets are {}); fix [file] sheet",
                        sheets.iter().map(|s| format!("{s:?}")).collect::<Vec<_>>().join(", ")
                    ),
                )
            })?,
        None => sheets
            .first()
            .cloned()
            .ok_or_else(|| input(path, None, "the workbook has no sheet".into()))?,
    };
    if let Some(meta) = book.sheets_metadata().iter().find(|m| m.name == sheet)
        && meta.visible != calamine::SheetVisible::Visible
    {
        return Err(input(
            path,
            None,
            format!("sheet {sheet:?} is hidden in the workbook; unhide it and check it, or name the sheet you see"),
        ));
    }
    // How far the sheet reaches, measured cell by cell before calamine makes room for all of it.
    let mut xlsx_formulas = None;
    let extent = match &mut book {
        calamine::Sheets::Xlsx(xlsx) => bounds::xlsx_extent(xlsx, &sheet).map(|(extent, formulas)| {
            xlsx_formulas = Some(formulas);
            extent
        }),
        // Measured before it was opened (calamine reads every sheet of an .ods at once).
        calamine::Sheets::Ods(_) => Ok(Default::default()),
        calamine::Sheets::Xlsb(_) => {
            Err("a binary workbook (.xlsb) under another name; save it as .xlsx (Excel Workbook) and plan again".into())
        }
        // .xls holds at most 65 536 rows of 256 columns.
        calamine::Sheets::Xls(_) => Ok(Default::default()),
    };
    extent.and_then(|e| e.check(&sheet)).map_err(|m| input(path, None, m))?;
    let range = book
        .worksheet_range(&sheet)
        .map_err(|e| input(path, None, format!("sheet {sheet:?} cannot be read: {e}")))?;
    // A formula in the ID column (a total, a lookup) is not an ID someone typed.
    // (An .xlsx's were read with its extent: the sheet is not parsed a third time.)
    let formulas: bounds::Formulas = match xlsx_formulas {
        Some(formulas) => formulas,
        None => book
            .worksheet_formula(&sheet)
            .map(|range| {
                range
                    .cells()
                    .filter(|(_, _, f)| !f.trim().is_empty())
                    .map(|(r, c, f)| {
                        let (top, left) = range.start().unwrap_or((0, 0));
                        ((top + r as u32, left + c as u32), f.clone())
                    })
                    .collect()
            })
            .unwrap_or_default(),
    };
    let (top, left) = range.start().unwrap_or((0, 0));
    let mut rows = range.rows();
    let headings: Vec<String> = rows
        .next()
        .unwrap_or_default()
        .iter()
        .map(|c| cell_text(c).unwrap_or_default().trim().to_string())
        .collect();
    let cell_ref = |row: usize, col: usize| {
        format!(
            "{sheet}!{}{}",
            column_letters(left + col as u32),
            top as usize + row + 1
        )
    };
    // Trailing columns with no heading and no data are not columns.
    let width = headings.iter().rposition(|h| !h.is_empty()).map_or(0, |i| i + 1);
    let headings = headings[..width].to_vec();
    check_headings_unique(path, &headings).map_err(|_| {
        input(
            path,
            None,
            format!("sheet {sheet:?}: every column needs its own heading in row {}", top + 1),
        )
    })?;
    let id_index = find_heading(&headings, id_column)
        .ok_or_else(|| no_heading(path, id_column, &headings, &format!("the first row of sheet {sheet:?}")))?;
    // A filtered sheet looks like the cohort it shows, not the one it holds.
    let hidden =
        hidden_rows(bytes, &sheet).map_err(|e| input(path, None, format!("sheet {sheet:?} cannot be read: {e}")))?;
    let hidden: Vec<u32> = hidden
        .unwrap_or_default()
        .into_iter()
        .filter(|&r| {
            r > top
                && range
                    .rows()
                    .nth((r - 1 - top) as usize)
                    .is_some_and(|row| row.iter().take(width).any(|c| cell_text(c).is_some()))
        })
        .collect();
    if !hidden.is_empty() {
        let shown: Vec<String> = hidden.iter().take(10).map(|r| r.to_string()).collect();
        return Err(input(
            path,
            None,
            format!(
                "sheet {sheet:?}: {} row{} with data {} hidden (a filter or Hide Rows): row{} {}{}; the sheet holds more than it shows — unhide or delete these rows, save, and plan again",
                hidden.len(),
                if hidden.len() == 1 { "" } else { "s" },
                if hidden.len() == 1 { "is" } else { "are" },
                if hidden.len() == 1 { "" } else { "s" },
                shown.join(", "),
                if hidden.len() > 10 { ", …" } else { "" }
            ),
        ));
    }
    let mut cells: Vec<ColumnBuffer> = headings.iter().map(|_| ColumnBuffer::default()).collect();
    let (mut numeric, mut count) = (0, 0);
    for (r, row) in rows.enumerate() {
        let row_no = r + 1;
        // An error cell (#N/A) is not an empty one: the row is refused below, not skipped.
        if row
            .iter()
            .take(width)
            .all(|c| cell_text(c).is_none() && !matches!(c, Data::Error(_)))
        {
            continue;
        }
        count += 1;
        for (i, column) in cells.iter_mut().enumerate() {
            let cell = row.get(i).unwrap_or(&Data::Empty);
            if i == id_index
                && let Some(f) = formulas.get(&(top + row_no as u32, left + i as u32))
            {
                return Err(input(
                    path,
                    None,
                    format!(
                        "{}: a formula (={f}) in the ID column {id_column:?}; IDs are typed or pasted as values",
                        cell_ref(row_no, i)
                    ),
                ));
            }
            if i != id_index {
                match cell_text(cell) {
                    Some(v) => column.push(&v),
                    None => column.push_null(),
                }
                continue;
            }
            let refuse = |what: String| {
                input(
                    path,
                    None,
                    format!(
                        "{}: {what} in the ID column {id_column:?}; IDs are text or whole numbers — format the column as text",
                        cell_ref(row_no, i)
                    ),
                )
            };
            match cell {
                Data::Empty => column.push_null(),
                Data::String(s) => {
                    check_id(path, None, &format!("{}: ", cell_ref(row_no, i)), s)?;
                    column.push(s)
                }
                Data::Float(f) if f.abs() >= 1e15 => {
                    return Err(input(
                        path,
                        None,
                        format!(
                            "{}: the number {f:.0} in the ID column {id_column:?} has more than 15 digits, and Excel keeps only 15 of a number: its last digits are lost; format the column as text and enter the IDs again",
                            cell_ref(row_no, i)
                        ),
                    ));
                }
                Data::Int(n) if *n > 0 => {
                    numeric += 1;
                    column.push(&n.to_string());
                }
                Data::Float(f) if *f >= 1.0 => {
                    let digits = integer_digits(*f).ok_or_else(|| refuse(format!("the number {f}")))?;
                    numeric += 1;
                    column.push(&digits);
                }
                Data::Int(n) => return Err(refuse(format!("the number {n}"))),
                Data::Float(f) => return Err(refuse(format!("the number {f}"))),
                Data::DateTime(_) | Data::DateTimeIso(_) => {
                    return Err(refuse(format!("a date ({})", cell_text(cell).unwrap_or_default())));
                }
                Data::DurationIso(d) => return Err(refuse(format!("a duration ({d})"))),
                Data::Bool(b) => return Err(refuse(format!("a {} cell", if *b { "TRUE" } else { "FALSE" }))),
                Data::Error(e) => return Err(refuse(format!("an error cell ({e})"))),
            }
        }
    }
    notes.push(format!(
        "read {} as a spreadsheet: sheet {sheet:?}, {} columns, {count} rows",
        path.display(),
        headings.len()
    ));
    Ok((columns_of(&headings, id_index, id_column, cells), numeric))
}

/// The rows (1-based, as Excel numbers them) that an `.xlsx`/`.xlsm` workbook marks hidden on
/// the sheet `sheet` — `<row r="5" hidden="1">` in the sheet's XML, written for rows hidden by
/// hand and for rows a filter leaves out; calamine reads their cells as if they were shown.
/// Other formats (`.xls`, `.ods`) say nothing here (`None`).
fn hidden_rows(bytes: &[u8], sheet: &str) -> Result<Option<Vec<u32>>, String> {
    use quick_xml::events::Event;
    let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return Ok(None);
    };
    if zip.by_name("xl/workbook.xml").is_err() {
        return Ok(None);
    }
    // Each element's attributes by local name, for the elements named `element`.
    fn each(
        zip: &mut zip::ZipArchive<std::io::Cursor<&[u8]>>,
        part: &str,
        element: &str,
        mut f: impl FnMut(&[(String, String)]) -> bool,
    ) -> Result<(), String> {
        let entry = zip.by_name(part).map_err(|e| format!("{part}: {e}"))?;
        let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(entry));
        let mut buf = Vec::new();
        loop {
            match reader.read_event_into(&mut buf).map_err(|e| format!("{part}: {e}"))? {
                Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == element => {
                    let attrs: Vec<(String, String)> = e
                        .attributes()
                        .flatten()
                        .map(|a| {
                            let value = a
                                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                                .map(|v| v.into_owned())
                                .unwrap_or_default();
                            (a.key.local_name().as_ref().to_string(), value)
                        })
                        .collect();
                    if !f(&attrs) {
                        return Ok(());
                    }
                }
                Event::Eof => return Ok(()),
                _ => {}
            }
            buf.clear();
        }
    }
    let get = |attrs: &[(String, String)], key: &str| attrs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let mut rel = None;
    each(&mut zip, "xl/workbook.xml", "sheet", |a| {
        if get(a, "name").as_deref() == Some(sheet) {
            rel = get(a, "id");
        }
        rel.is_none()
    })?;
    let Some(rel) = rel else { return Ok(None) };
    let mut target = None;
    each(&mut zip, "xl/_rels/workbook.xml.rels", "Relationship", |a| {
        if get(a, "Id").as_deref() == Some(rel.as_str()) {
            target = get(a, "Target");
        }
        target.is_none()
    })?;
    let Some(target) = target else { return Ok(None) };
    let part = match target.strip_prefix('/') {
        Some(absolute) => absolute.to_string(),
        None => format!("xl/{target}"),
    };
    let mut hidden = Vec::new();
    each(&mut zip, &part, "row", |a| {
        if matches!(get(a, "hidden").as_deref(), Some("1" | "true"))
            && let Some(r) = get(a, "r").and_then(|r| r.parse().ok())
        {
            hidden.push(r);
        }
        true
    })?;
    Ok(Some(hidden))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delimiters_columns_and_numbers() {
        assert_eq!(detect_delimiter("User name;Group;Email").1, "semicolon");
        assert_eq!(detect_delimiter("\"a;b\",c").1, "comma");
        assert_eq!(detect_delimiter("a\tb\tc").1, "tab");
        assert_eq!(detect_delimiter("User name").1, "comma");
        assert_eq!(
            [0, 25, 26, 27, 701, 702].map(column_letters),
            ["A", "Z", "AA", "AB", "ZZ", "AAA"]
        );
        assert_eq!(integer_digits(123456.0).as_deref(), Some("123456"));
        assert_eq!(integer_digits(1.23e5).as_deref(), Some("123000"));
        assert_eq!(integer_digits(123.5), None);
    }

    #[test]
    fn a_notepad_list_with_and_without_its_heading() {
        let dir = std::env::temp_dir().join(format!("listfile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spec = |name: &str, bytes: &[u8]| {
            let path = dir.join(name);
            std::fs::write(&path, bytes).unwrap();
            FileSpec {
                path,
                format: FileFormat::Text,
                sheet: None,
            }
        };
        let ids = |l: &ListFile| -> Vec<String> {
            l.report.rowset.columns[0]
                .cells
                .iter()
                .map(|c| c.unwrap_or_default().to_string())
                .collect()
        };
        let a = read(
            &spec(
                "a.txt",
                b"\xef\xbb\xbfUser name\r\n0123456\r\n\r\n# a comment\r\n0123457\r\n",
            ),
            "User name",
            None,
        )
        .unwrap();
        assert_eq!(ids(&a), ["0123456", "0123457"]);
        assert!(a.notes[0].contains("line 1 is the heading"), "{:?}", a.notes);
        let b = read(&spec("b.txt", b"0123456\n0123457\n"), "User name", None).unwrap();
        assert_eq!(ids(&b), ["0123456", "0123457"]);
        assert!(b.notes[0].contains("every line is an ID"), "{:?}", b.notes);
        let e = read(&spec("c.txt", b"0123456\nPK\x03\x04\x00\x00\n"), "User name", None).unwrap_err();
        assert!(
            e.to_string().contains("c.txt:2") && e.to_string().contains("not a text file"),
            "{e}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
