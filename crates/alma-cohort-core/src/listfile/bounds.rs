//! What a spreadsheet may cost to read, decided before calamine allocates it. A workbook is a zip
//! of XML parts: 2 KB can declare a cell at `XFD1048576` (calamine then makes room for every cell
//! from `A1` to it: 17 billion), and 1.5 MB can unpack to a 1.5 GB cell. Both are measured here —
//! the bytes as they unpack, the sheet's extent by streaming its cells — and refused with what to
//! do, before the sheet is read into memory.

use std::io::{Read, Seek};

/// The most a workbook's parts may unpack to, together. A million rows of IDs, names and emails
/// unpack to about 150 MiB.
pub const UNPACKED_MAX: u64 = 512 << 20;

/// The most cells the rectangle from a sheet's first used cell to its last may hold: a million
/// rows of twenty columns.
pub const CELLS_MAX: u64 = 20_000_000;

/// Refuses a zip workbook (`.xlsx`, `.xlsm`, `.ods`) whose parts unpack to more than
/// [`UNPACKED_MAX`]. The sizes the zip declares are checked first, then the bytes are counted as
/// they unpack (a declared size can lie). Bytes that are not a zip (`.xls`) are left to calamine.
pub fn check_unpacked(bytes: &[u8], max: u64) -> Result<(), String> {
    let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return Ok(());
    };
    let too_big = |name: &str| {
        format!(
            "unpacks to more than {} (passed at its part {name}); a list of IDs is far smaller — is this the right file?",
            crate::text::size(max)
        )
    };
    let mut declared = 0u64;
    for i in 0..zip.len() {
        let entry = zip
            .by_index_raw(i)
            .map_err(|e| format!("part {} of the workbook cannot be read: {e}", i + 1))?;
        declared = declared.saturating_add(entry.size());
        if declared > max {
            return Err(too_big(&crate::text::shown(&entry.name().unwrap_or_default(), 80)));
        }
    }
    let mut total = 0u64;
    for i in 0..zip.len() {
        let mut entry = zip
            .by_index(i)
            .map_err(|e| format!("part {} of the workbook cannot be read: {e}", i + 1))?;
        let name = crate::text::shown(&entry.name().unwrap_or_default(), 80);
        let left = max - total;
        let n = std::io::copy(&mut (&mut entry).take(left + 1), &mut std::io::sink())
            .map_err(|e| format!("{name} cannot be unpacked: {e}"))?;
        total += n;
        if total > max {
            return Err(too_big(&name));
        }
    }
    Ok(())
}

/// The most text a sheet's cells may hold once read (a shared string or a repeated cell counted
/// for each cell it fills): a million rows of IDs, names and emails are under 100 MiB.
pub const TEXT_MAX: u64 = 256 << 20;

fn too_much_text() -> String {
    format!(
        "its cells hold more than {} of text once read (a long value repeated over many rows or cells); a list of IDs is far smaller — is this the right file?",
        crate::text::size(TEXT_MAX)
    )
}

/// The rectangle of used cells, 0-based and inclusive: rows then columns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extent {
    first: Option<(u64, u64)>,
    last: (u64, u64),
}

impl Extent {
    /// Takes in the cells from `(row, col)` over `rows` × `cols` (repeated cells count once each).
    fn add(&mut self, row: u64, col: u64, rows: u64, cols: u64) {
        let (end_row, end_col) = (row.saturating_add(rows.max(1) - 1), col.saturating_add(cols.max(1) - 1));
        let (r0, c0) = self.first.unwrap_or((row, col));
        self.first = Some((r0.min(row), c0.min(col)));
        self.last = (self.last.0.max(end_row), self.last.1.max(end_col));
    }

    fn cells(&self) -> u64 {
        match self.first {
            None => 0,
            Some((r0, c0)) => (self.last.0 - r0 + 1).saturating_mul(self.last.1 - c0 + 1),
        }
    }

    /// `Err` naming the corners when the rectangle holds more than [`CELLS_MAX`] cells.
    pub fn check(&self, sheet: &str) -> Result<(), String> {
        let Some((r0, c0)) = self.first else {
            return Ok(());
        };
        if self.cells() <= CELLS_MAX {
            return Ok(());
        }
        let cell = |r: u64, c: u64| {
            format!(
                "{}{}",
                super::column_letters(c.min(u64::from(u32::MAX)) as u32),
                r.saturating_add(1)
            )
        };
        Err(format!(
            "sheet {sheet:?} uses cells from {} to {}: {} cells, and alma-cohort reads at most {} million; delete what lies outside the list (Ctrl+End goes to the last used cell), save, and plan again",
            cell(r0, c0),
            cell(self.last.0, self.last.1),
            self.cells(),
            CELLS_MAX / 1_000_000
        ))
    }
}

/// A sheet's formulas by 0-based `(row, column)`.
pub type Formulas = std::collections::HashMap<(u32, u32), String>;

/// The used cells of an `.xlsx`/`.xlsm` sheet, streamed one at a time, and its formulas by
/// 0-based position (a list has few, if any).
pub fn xlsx_extent<RS: Read + Seek>(book: &mut calamine::Xlsx<RS>, sheet: &str) -> Result<(Extent, Formulas), String> {
    let mut reader = book
        .worksheet_cells_reader(sheet)
        .map_err(|e| format!("sheet {sheet:?} cannot be read: {e}"))?;
    let (mut extent, mut formulas, mut text) = (Extent::default(), std::collections::HashMap::new(), 0u64);
    while let Some(cell) = reader
        .next_cell_with_formula()
        .map_err(|e| format!("sheet {sheet:?} cannot be read: {e}"))?
    {
        if matches!(cell.value, calamine::DataRef::Empty) && cell.formula.as_deref().is_none_or(str::is_empty) {
            continue;
        }
        extent.add(u64::from(cell.pos.0), u64::from(cell.pos.1), 1, 1);
        // A shared string is held once in the file, and once per cell that uses it when read.
        text = text.saturating_add(match &cell.value {
            calamine::DataRef::SharedString(t) => t.len() as u64,
            calamine::DataRef::String(t) => t.len() as u64,
            _ => 0,
        });
        if text > TEXT_MAX {
            return Err(too_much_text());
        }
        if let Some(formula) = cell.formula.filter(|f| !f.trim().is_empty()) {
            formulas.insert(cell.pos, formula);
        }
    }
    Ok((extent, formulas))
}

/// Refuses an `.ods` workbook any of whose sheets reaches too far ([`Extent::check`]). calamine
/// reads every sheet of an `.ods` when it opens it, so this reads `content.xml` as it streams,
/// before: a row or cell repeated `n` times (`table:number-rows-repeated`,
/// `table:number-columns-repeated`) counts `n` times when it holds something. Bytes that are not
/// an OpenDocument zip are left alone.
pub fn check_ods(bytes: &[u8]) -> Result<(), String> {
    use quick_xml::events::Event;
    let Ok(mut zip) = zip::ZipArchive::new(std::io::Cursor::new(bytes)) else {
        return Ok(());
    };
    if zip.by_name("mimetype").is_err() {
        return Ok(());
    }
    let Ok(part) = zip.by_name("content.xml") else {
        return Ok(());
    };
    let mut reader = quick_xml::Reader::from_reader(std::io::BufReader::new(part));
    let attr = |e: &quick_xml::events::BytesStart, name: &str| -> Option<String> {
        e.attributes().flatten().find(|a| a.key.as_ref() == name).and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.into_owned())
        })
    };
    let repeat = |e: &quick_xml::events::BytesStart, name: &str| -> u64 {
        attr(e, name).and_then(|v| v.trim().parse().ok()).unwrap_or(1).max(1)
    };
    // The sheet being read: its name, its extent, and how deep inside it the reader is.
    let mut sheet: Option<(String, Extent, usize)> = None;
    let (mut row, mut rows, mut col) = (0u64, 1u64, 0u64);
    // The text the sheet's cells hold once repeats are expanded, and how many copies the cell
    // being read makes of its text.
    let (mut text, mut copies) = (0u64, 0u64);
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("content.xml cannot be read: {e}"))?;
        let empty = matches!(event, Event::Empty(_));
        match event {
            Event::Start(e) | Event::Empty(e) => {
                let name = e.name();
                let name = name.as_ref();
                match &mut sheet {
                    None if name == "table:table" && !empty => {
                        sheet = Some((attr(&e, "table:name").unwrap_or_default(), Extent::default(), 0));
                        (row, rows, col) = (0, 1, 0);
                    }
                    None => {}
                    Some((_, extent, _)) => {
                        if name == "table:table-row" {
                            rows = repeat(&e, "table:number-rows-repeated");
                            col = 0;
                            if empty {
                                row = row.saturating_add(rows);
                            }
                        } else if name == "table:table-cell" || name == "table:covered-table-cell" {
                            let cols = repeat(&e, "table:number-columns-repeated");
                            if !empty || attr(&e, "office:value-type").is_some() {
                                extent.add(row, col, rows, cols);
                                // Its text (an attribute's value or the text inside) counts
                                // once for each cell it is repeated into.
                                copies = rows.saturating_mul(cols);
                                let value = attr(&e, "office:string-value").map_or(0, |v| v.len() as u64);
                                text = text.saturating_add(value.saturating_mul(copies));
                            }
                            col = col.saturating_add(cols);
                        }
                    }
                }
                if let Some((_, _, depth)) = &mut sheet
                    && !empty
                {
                    *depth += 1;
                }
            }
            Event::Text(t) if sheet.is_some() => {
                text = text.saturating_add((t.len() as u64).saturating_mul(copies));
                if let Some((name, extent, _)) = &sheet {
                    // The sheet's reach is the better reason when both are passed.
                    extent.check(&crate::text::shown(name, 80))?;
                }
                if text > TEXT_MAX {
                    return Err(too_much_text());
                }
            }
            Event::End(e) => {
                if e.name().as_ref() == "table:table-cell" || e.name().as_ref() == "table:covered-table-cell" {
                    copies = 0;
                }
                if text > TEXT_MAX {
                    return Err(too_much_text());
                }
                if let Some((name, extent, depth)) = &mut sheet {
                    *depth = depth.saturating_sub(1);
                    if e.name().as_ref() == "table:table-row" {
                        row = row.saturating_add(rows);
                    }
                    if *depth == 0 {
                        extent.check(&crate::text::shown(name, 80))?;
                        // calamine (as Excel) reads 1 048 576 rows: what lies below is dropped
                        // without a word.
                        if extent.first.is_some() && extent.last.0 >= 1_048_576 {
                            return Err(format!(
                                "sheet {:?} has values below row 1 048 576, the last row a spreadsheet has (and the last one read): split the list, or save it as CSV",
                                crate::text::shown(name, 80)
                            ));
                        }
                        sheet = None;
                    }
                }
            }
            Event::Eof => return Ok(()),
            _ => {}
        }
        buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn zip_of(parts: &[(&str, usize)]) -> Vec<u8> {
        let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        for (name, len) in parts {
            out.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            out.write_all(&vec![b'a'; *len]).unwrap();
        }
        out.finish().unwrap().into_inner()
    }

    #[test]
    fn a_zip_that_unpacks_too_far_is_refused_also_when_it_lies() {
        let max = 1 << 20;
        assert!(check_unpacked(&zip_of(&[("a.xml", 600 << 10), ("b.xml", 400 << 10)]), max).is_ok());
        let honest = zip_of(&[("a.xml", 600 << 10), ("xl/sharedStrings.xml", 600 << 10)]);
        let message = check_unpacked(&honest, max).unwrap_err();
        assert!(
            message.contains("unpacks to more than 1 MiB (passed at its part xl/sharedStrings.xml"),
            "{message}"
        );
        // The central directory says 10 bytes; the part unpacks to 3 MiB.
        let mut liar = zip_of(&[("xl/worksheets/sheet1.xml", 3 << 20)]);
        let at = liar.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
        liar[at + 24..at + 28].copy_from_slice(&10u32.to_le_bytes());
        let message = check_unpacked(&liar, max).unwrap_err();
        assert!(message.contains("sheet1.xml"), "{message}");
        // Not a zip (an .xls): for calamine to read.
        assert!(check_unpacked(b"\xd0\xcf\x11\xe0 not a zip", max).is_ok());
    }

    #[test]
    fn extent_counts_the_rectangle_and_names_its_corners() {
        let mut e = Extent::default();
        assert_eq!(e.cells(), 0);
        e.add(0, 0, 1, 1);
        e.add(2, 3, 1, 1);
        assert_eq!(e.cells(), 12);
        assert!(e.check("Sheet1").is_ok());
        e.add(1_048_575, 16_383, 1, 1);
        let message = e.check("Sheet1").unwrap_err();
        assert!(message.contains("from A1 to XFD1048576"), "{message}");
        let mut repeated = Extent::default();
        repeated.add(5, 0, u64::MAX, 2);
        assert!(repeated.check("S").is_err());
    }
}
