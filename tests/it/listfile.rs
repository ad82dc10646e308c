//! Cohorts from a file (the manual workflow's options A and B): a Notepad list, an Excel sheet, a
//! semicolon CSV — through the same safe pipeline, against the simulator, with no Alma call to
//! read them.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use alma_sim::Target;

use crate::cli::temp_dir;
use crate::execute::{execute_run, last_json, run, sim_config};
use crate::support::*;

fn query(dir: &Path, file_section: &str, cohort: &str) -> PathBuf {
    write_query(
        dir,
        "list.toml",
        &format!(
            "name = \"registrar-list\"\n{file_section}\n[cohort]\nid_column = \"User name\"\n{cohort}\n[cohort.normalize]\npad_numeric_to = 7\n[guard]\nmax_members = 100\n"
        ),
    )
}

fn set_members(sim: &Sim) -> Vec<String> {
    let sets = sim.handle.sets();
    assert_eq!(sets.len(), 1, "one set: {sets:?}");
    sim.handle.set_members(&sets[0].id).unwrap()
}

/// No report call of any kind.
fn no_analytics(sim: &Sim) {
    assert!(
        sim.handle.requests().iter().all(|r| !matches!(
            r.target,
            Target::AnalyticsFirst | Target::AnalyticsNext | Target::AnalyticsPaths
        )),
        "a file source makes no Analytics call"
    );
}

/// The seed's own Option A file, exactly: `User name`, four IDs, CRLF.
#[tokio::test]
async fn the_seeds_notepad_file() {
    let ids = ["0123456", "0123457", "0234568", "0124066"];
    let sim = sim(sim_config().users(50).named_users(ids)).await;
    let dir = temp_dir("option-a");
    std::fs::write(
        dir.join("ids.txt"),
        "User name\r\n0123456\r\n0123457\r\n0234568\r\n0124066\r\n",
    )
    .unwrap();
    let q = query(&dir, "[file]\npath = \"ids.txt\"", "");
    let state = dir.join("state");

    let plan = run(&sim, &state, &["plan", q.to_str().unwrap()]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout
            .contains("line 1 is the heading \"User name\", 4 IDs below it")
            && plan.stdout.contains("no call to Alma"),
        "{}",
        plan.stdout
    );
    assert!(sim.handle.requests().is_empty(), "plan made no Alma call at all");

    let r = execute_run(
        &sim,
        &state,
        q.to_str().unwrap(),
        &["--json", "--period", "2027-spring"],
    )
    .await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v = last_json(&r.stdout);
    assert_eq!(
        (v["cohort_size"].as_u64(), v["members_added"].as_u64()),
        (Some(4), Some(4))
    );
    let mut members = set_members(&sim);
    members.sort();
    assert_eq!(members, ["0123456", "0123457", "0124066", "0234568"]);
    assert_eq!(sim.handle.outbox().len(), 4, "one letter each");
    no_analytics(&sim);
    // The file's sha256 is recorded with the run, beside the query's.
    let show = run(&sim, &state, &["show", v["run_id"].as_str().unwrap(), "--json"]).await;
    let record: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(record["input_hash"].as_str().map(str::len), Some(64), "{record}");
    assert!(record["input_file"].as_str().unwrap().ends_with("ids.txt"));
    // The schedule fires again: the period is done.
    let again = execute_run(&sim, &state, q.to_str().unwrap(), &["--period", "2027-spring"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);

    // extract writes the rows it read, without any Alma (no address, no key); doctor says why it
    // skips the report check.
    let out = dir.join("rows.csv");
    let extracted =
        crate::cli::alma_cohort(&["extract", q.to_str().unwrap(), "--out", out.to_str().unwrap()], None).await;
    assert_eq!(extracted.code, 0, "{}", extracted.stderr);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().lines().collect::<Vec<_>>(),
        ["User name", "0123456", "0123457", "0234568", "0124066"]
    );
    let doctor = run(&sim, &state, &["doctor", q.to_str().unwrap()]).await;
    assert!(
        doctor
            .stdout
            .contains("ok   report: not checked: the query reads its IDs from the file"),
        "{}",
        doctor.stdout
    );
}

/// Option B: an Excel sheet with text IDs, numeric IDs that lost their zeros, an apostrophe
/// text ID, a duplicate, and a column used by `where`.
#[tokio::test]
async fn an_excel_sheet_with_numbers_apostrophes_duplicates_and_a_where() {
    let ids = ["0012345", "0012346", "0099001", "AB12345", "0500006", "0777777"];
    let sim = sim(sim_config().users(50).named_users(ids)).await;
    let dir = temp_dir("option-b");
    let path = dir.join("ids.xlsx");
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Users").unwrap();
    sheet.write_string(0, 0, "User name").unwrap();
    sheet.write_string(0, 1, "Program").unwrap();
    let rows: [(Option<&str>, Option<f64>, &str); 7] = [
        (Some("0012345"), None, "BA"),     // text, zeros kept
        (None, Some(12346.0), "BA"),       // a number: Excel dropped the zeros
        (Some("'0099001"), None, "MA"),    // Excel's apostrophe, typed into the text
        (Some("AB12345"), None, "BA"),     // letters
        (None, Some(500006.0), "PHD"),     // a number
        (Some("0012345"), None, "BA"),     // the same ID again
        (Some("0777777"), None, "ALUMNI"), // left out by where
    ];
    for (i, (text, number, program)) in rows.iter().enumerate() {
        let r = i as u32 + 1;
        match (text, number) {
            (Some(t), _) => sheet.write_string(r, 0, *t).unwrap(),
            (None, Some(n)) => sheet.write_number(r, 0, *n).unwrap(),
            _ => unreachable!(),
        };
        sheet.write_string(r, 1, *program).unwrap();
    }
    book.save(&path).unwrap();
    let q = query(
        &dir,
        "[file]\npath = \"ids.xlsx\"\nsheet = \"Users\"",
        "where = \"\\\"Program\\\" <> 'ALUMNI'\"",
    );
    let state = dir.join("state");
    let plan = run(&sim, &state, &["plan", q.to_str().unwrap(), "--json"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let v = last_json(&plan.stdout);
    let notes = v["file"]["notes"].to_string();
    assert!(
        notes.contains("2 IDs were stored as numbers in the spreadsheet; Excel drops leading zeros from numbers")
            && notes.contains("padded to 7 digits"),
        "{notes}"
    );
    assert!(sim.handle.requests().is_empty(), "plan made no Alma call at all");

    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--json"]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let members: HashSet<String> = set_members(&sim).into_iter().collect();
    let expected: HashSet<String> = ["0012345", "0012346", "0099001", "AB12345", "0500006"]
        .map(String::from)
        .into();
    assert_eq!(
        members, expected,
        "zeros restored, the apostrophe gone, the duplicate once, ALUMNI out"
    );
    assert_eq!(sim.handle.outbox().len(), 5);
    no_analytics(&sim);
}

#[tokio::test]
async fn a_semicolon_csv_with_a_bom() {
    let ids = ["0123456", "0123457", "XY00001"];
    let sim = sim(sim_config().users(50).named_users(ids)).await;
    let dir = temp_dir("csv");
    std::fs::write(
        dir.join("ids.csv"),
        "\u{feff}User name;Name;Email\r\n0123456;\"Smith; Jane\";jane@example.edu\r\n123457;Doe;j.doe@example.edu\r\nXY00001;Roe;\r\n",
    )
    .unwrap();
    let q = query(&dir, "[file]\npath = \"ids.csv\"", "");
    let state = dir.join("state");
    let plan = run(&sim, &state, &["plan", q.to_str().unwrap()]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(
        plan.stdout.contains("semicolon-separated, 3 columns, 3 rows"),
        "{}",
        plan.stdout
    );
    // Who the people are stays in cohort.csv (0600): the plan counts no names or emails.
    for private in ["by Name", "Smith", "Doe", "example.edu"] {
        assert!(!plan.stdout.contains(private), "{private}: {}", plan.stdout);
    }
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut members = set_members(&sim);
    members.sort();
    assert_eq!(members, ["0123456", "0123457", "XY00001"]);
    // The email column works like a report's.
    let dir2 = temp_dir("csv-email");
    std::fs::copy(dir.join("ids.csv"), dir2.join("ids.csv")).unwrap();
    let q2 = query(&dir2, "[file]\npath = \"ids.csv\"", "");
    let text = std::fs::read_to_string(&q2).unwrap() + "email_column = \"Email\"\n";
    std::fs::write(&q2, text).unwrap();
    let plan = run(&sim, &dir2.join("state"), &["plan", q2.to_str().unwrap(), "--json"]).await;
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert_eq!(last_json(&plan.stdout)["no_email_ids"], serde_json::json!(["XY00001"]));
}

/// An OpenDocument spreadsheet whose `office:spreadsheet` holds `tables`.
fn ods(tables: &str) -> Vec<u8> {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("mimetype", stored).unwrap();
    zip.write_all(b"application/vnd.oasis.opendocument.spreadsheet")
        .unwrap();
    zip.start_file("content.xml", stored).unwrap();
    write!(
        zip,
        r#"<?xml version="1.0" encoding="UTF-8"?><office:document-content xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" xmlns:table="urn:oasis:names:tc:opendocument:xmlns:table:1.0" xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0" office:version="1.2"><office:body><office:spreadsheet>{tables}</office:spreadsheet></office:body></office:document-content>"#
    )
    .unwrap();
    zip.finish().unwrap().into_inner()
}

fn utf16le(text: &str) -> Vec<u8> {
    [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect()
}

/// The files the manual workflow makes most often on Windows: Notepad's "Unicode" (UTF-16 LE with
/// its mark), Excel's "CSV (Comma delimited)" (Windows-1252, here with "Renée"), and Excel's
/// "Unicode Text" (UTF-16 LE, tab-separated, saved as .txt). Each makes a set holding exactly its
/// users, and the plan names the encoding it read.
#[tokio::test]
async fn lists_as_windows_saves_them() {
    let ids = ["0123456", "0123457", "0234568"];
    let mut windows_1252 = b"User name,Name\r\n0123456,Ren".to_vec();
    windows_1252.extend_from_slice(b"\xe9e Dupont\r\n0123457,Fran\xe7ois\r\n0234568,Zo\xeb\r\n");
    let files: [(&str, Vec<u8>, &str); 3] = [
        (
            "notepad.txt",
            utf16le("User name\r\n0123456\r\n0123457\r\n0234568\r\n"),
            "UTF-16 LE",
        ),
        ("excel.csv", windows_1252, "Windows-1252"),
        (
            "unicode-text.txt",
            utf16le("User name\tName\r\n0123456\tRenée\r\n0123457\tFrançois\r\n0234568\tZoë\r\n"),
            "tab-separated",
        ),
    ];
    for (name, bytes, says) in files {
        let sim = sim(sim_config().users(20).named_users(ids)).await;
        let dir = temp_dir("windows-lists");
        std::fs::write(dir.join(name), bytes).unwrap();
        let q = query(&dir, &format!("[file]\npath = \"{name}\""), "");
        let state = dir.join("state");
        let plan = run(&sim, &state, &["plan", q.to_str().unwrap()]).await;
        assert_eq!(plan.code, 0, "{name}: {}", plan.stderr);
        assert!(plan.stdout.contains(says), "{name}: {}", plan.stdout);
        let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--json"]).await;
        assert_eq!(r.code, 0, "{name}: {}", r.stderr);
        let mut members = set_members(&sim);
        members.sort();
        assert_eq!(members, ids, "{name}");
        assert_eq!(sim.handle.outbox().len(), 3, "{name}: one letter each");
        no_analytics(&sim);
    }
}

#[tokio::test]
async fn bad_list_files_are_refused_with_one_line_and_no_call() {
    let sim = sim(sim_config().users(20)).await;
    let dir = temp_dir("bad-lists");
    let state = dir.join("state");
    std::fs::write(dir.join("ids.csv"), "Primary ID,Email\n0012345,a@example.edu\n").unwrap();
    std::fs::write(dir.join("ids.docx"), "not a list").unwrap();
    std::fs::write(dir.join("binary.txt"), b"User name\n\x00\x01\x02\x03PK\x03\x04\n").unwrap();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name("Users").unwrap();
    sheet.write_string(0, 0, "User name").unwrap();
    for r in 1..16 {
        sheet.write_string(r, 0, format!("00123{r:02}")).unwrap();
    }
    let date = rust_xlsxwriter::ExcelDateTime::from_ymd(2024, 1, 5).unwrap();
    let format = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
    sheet.write_datetime_with_format(16, 0, &date, &format).unwrap();
    book.save(dir.join("dates.xlsx")).unwrap();
    let mut book = rust_xlsxwriter::Workbook::new();
    book.add_worksheet().write_string(0, 0, "ID").unwrap();
    book.save(dir.join("no-heading.xlsx")).unwrap();
    // Two sheets, the first hidden (an old list): the query must name one, and not the hidden one.
    let mut book = rust_xlsxwriter::Workbook::new();
    let old = book.add_worksheet();
    old.set_name("Old").unwrap().write_string(0, 0, "User name").unwrap();
    old.write_string(1, 0, "0000001").unwrap();
    old.set_hidden(true);
    let new = book.add_worksheet();
    new.set_name("Now").unwrap().write_string(0, 0, "User name").unwrap();
    new.write_string(1, 0, "0000002").unwrap();
    new.set_active(true);
    book.save(dir.join("two.xlsx")).unwrap();
    // A total under the IDs, as a formula.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "User name").unwrap();
    sheet.write_string(1, 0, "0012345").unwrap();
    sheet.write_formula(2, 0, "=COUNTA(A2:A2)").unwrap();
    book.save(dir.join("formula.xlsx")).unwrap();
    std::fs::write(dir.join("shifted.csv"), "Name,User name\nSmith, John,0012345\n").unwrap();
    std::fs::write(dir.join("semicolons.csv"), "User name\n0012345;Smith\n").unwrap();
    // Numbers as Excel shows them, and IDs that look like others.
    std::fs::write(dir.join("scientific.txt"), "User name\n0012345\n1.23457E+11\n").unwrap();
    std::fs::write(
        dir.join("scientific-comma.csv"),
        "User name;Name\n\"1,23457E+11\";Smith\n",
    )
    .unwrap();
    std::fs::write(dir.join("decimal.csv"), "User name,Name\n0012345,A\n12345.0,B\n").unwrap();
    std::fs::write(dir.join("zero-width.txt"), "1737788\n173\u{200b}7788\n").unwrap();
    std::fs::write(dir.join("rtl.txt"), "1737788\n\u{202e}8877371\n").unwrap();
    std::fs::write(dir.join("lookalike.txt"), "BROWN01\n\u{412}ROWN01\n").unwrap();
    std::fs::write(dir.join("quoted.txt"), "\"0012345\"\n").unwrap();
    std::fs::write(dir.join("joined.txt"), "0012345,0012346\n").unwrap();
    std::fs::write(dir.join("long.txt"), format!("0012345\n{}\n", "9".repeat(300))).unwrap();
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "User name").unwrap();
    sheet.write_string(1, 0, "0012345").unwrap();
    sheet.write_number(2, 0, 12345678901234567.0).unwrap();
    book.save(dir.join("seventeen.xlsx")).unwrap();
    // A filter or Hide Rows: Excel shows 2 of 4 IDs; the file holds 4.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "User name").unwrap();
    for r in 1..5 {
        sheet.write_string(r, 0, format!("001234{r}")).unwrap();
    }
    sheet.set_row_hidden(2).unwrap();
    sheet.set_row_hidden(4).unwrap();
    book.save(dir.join("filtered.xlsx")).unwrap();
    // Bombs: 10 KB that make room for 17 billion cells, or say they unpack to 3 GiB; an .ods
    // whose one row, repeated a million times, has a value in 100 columns.
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "User name").unwrap();
    sheet.write_string(1, 0, "0012345").unwrap();
    sheet.write_string(1_048_575, 16_383, "x").unwrap();
    book.save(dir.join("far.xlsx")).unwrap();
    let mut big = std::fs::read(dir.join("seventeen.xlsx")).unwrap();
    let at = big.windows(4).rposition(|w| w == [0x50, 0x4b, 0x01, 0x02]).unwrap();
    big[at + 24..at + 28].copy_from_slice(&(3u32 << 30).to_le_bytes());
    std::fs::write(dir.join("declared.xlsx"), big).unwrap();
    std::fs::write(dir.join("repeated.ods"), ods(
        "<table:table table:name=\"IDs\"><table:table-row><table:table-cell office:value-type=\"string\"><text:p>User name</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated=\"1000000\"><table:table-cell table:number-columns-repeated=\"100\" office:value-type=\"string\"><text:p>0012345</text:p></table:table-cell></table:table-row></table:table>")).unwrap();

    let long = "9".repeat(3000);
    std::fs::write(
        dir.join("long-repeated.ods"),
        ods(&format!(
            "<table:table table:name=\"IDs\"><table:table-row><table:table-cell office:value-type=\"string\"><text:p>User name</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated=\"9900000\"><table:table-cell office:value-type=\"string\"><text:p>{long}</text:p></table:table-cell></table:table-row></table:table>"
        )),
    )
    .unwrap();

    std::fs::write(
        dir.join("below.ods"),
        ods("<table:table table:name=\"IDs\"><table:table-row><table:table-cell office:value-type=\"string\"><text:p>User name</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated=\"1100000\"><table:table-cell/></table:table-row><table:table-row><table:table-cell office:value-type=\"string\"><text:p>0012345</text:p></table:table-cell></table:table-row></table:table>"),
    )
    .unwrap();

    let report = format!("[report]\npath = \"{ALL_USERS}\"\n");
    let cases: Vec<(String, &str)> = vec![
        (
            "[file]\npath = \"below.ods\"".into(),
            "sheet \"IDs\" has values below row 1 048 576",
        ),
        (
            "[file]\npath = \"long-repeated.ods\"".into(),
            "its cells hold more than 256 MiB of text once read",
        ),
        ("[file]\npath = \"missing.txt\"".into(), "missing.txt"),
        ("[file]\npath = \"ids.docx\"".into(), "ids.docx"),
        (
            "[file]\npath = \"dates.xlsx\"\nsheet = \"Students\"".into(),
            "no sheet named \"Students\"",
        ),
        ("[file]\npath = \"ids.csv\"".into(), "no column headed \"User name\""),
        (
            "[file]\npath = \"no-heading.xlsx\"".into(),
            "no column headed \"User name\"",
        ),
        (
            "[file]\npath = \"dates.xlsx\"".into(),
            "Users!A17: a date (2024-01-05) in the ID column",
        ),
        ("[file]\npath = \"binary.txt\"".into(), "binary.txt:2: not a text file"),
        (
            "[file]\npath = \"two.xlsx\"".into(),
            "the workbook has 2 sheets (\"Old\", \"Now\")",
        ),
        (
            "[file]\npath = \"two.xlsx\"\nsheet = \"Old\"".into(),
            "sheet \"Old\" is hidden",
        ),
        (
            "[file]\npath = \"formula.xlsx\"".into(),
            "Sheet1!A3: a formula (=COUNTA(A2:A2))",
        ),
        (
            "[file]\npath = \"shifted.csv\"".into(),
            "shifted.csv:2: 3 fields, but the heading row has 2",
        ),
        (
            "[file]\npath = \"semicolons.csv\"".into(),
            "semicolons.csv:2: the ID \"0012345;Smith\" holds ';'",
        ),
        (
            "[file]\npath = \"scientific.txt\"".into(),
            "scientific.txt:3: the ID \"1.23457E+11\" is a number in Excel's scientific notation",
        ),
        (
            "[file]\npath = \"scientific-comma.csv\"".into(),
            "scientific-comma.csv:2: the ID \"1,23457E+11\" is a number in Excel's scientific notation",
        ),
        (
            "[file]\npath = \"decimal.csv\"".into(),
            "decimal.csv:3: the ID \"12345.0\" is a whole number written with decimals",
        ),
        (
            "[file]\npath = \"zero-width.txt\"".into(),
            "zero-width.txt:2: the ID \"173\\u{200b}7788\" holds an invisible character (U+200B, zero width space)",
        ),
        (
            "[file]\npath = \"rtl.txt\"".into(),
            "rtl.txt:2: the ID \"\\u{202e}8877371\" holds an invisible character (U+202E",
        ),
        (
            "[file]\npath = \"lookalike.txt\"".into(),
            "lookalike.txt:2: the ID \"ВROWN01\" mixes letters of 2 scripts (Cyrillic and Latin)",
        ),
        (
            "[file]\npath = \"quoted.txt\"".into(),
            "quoted.txt:1: the ID \"\\\"0012345\\\"\" holds the quote",
        ),
        (
            "[file]\npath = \"joined.txt\"".into(),
            "joined.txt:1: the ID \"0012345,0012346\" is not one ID",
        ),
        ("[file]\npath = \"long.txt\"".into(), "long.txt:2: the ID \"999"),
        (
            "[file]\npath = \"seventeen.xlsx\"".into(),
            "Sheet1!A3: the number 12345678901234568 in the ID column \"User name\" has more than 15 digits",
        ),
        (
            "[file]\npath = \"filtered.xlsx\"".into(),
            "sheet \"Sheet1\": 2 rows with data are hidden (a filter or Hide Rows): rows 3, 5",
        ),
        (
            "[file]\npath = \"far.xlsx\"".into(),
            "sheet \"Sheet1\" uses cells from A1 to XFD1048576: 17179869184 cells, and alma-cohort reads at most 20 million",
        ),
        (
            "[file]\npath = \"declared.xlsx\"".into(),
            "unpacks to more than 512 MiB (passed at its part ",
        ),
        (
            "[file]\npath = \"repeated.ods\"".into(),
            "sheet \"IDs\" uses cells from A1 to CV1000001: 100000100 cells",
        ),
        (format!("{report}[file]\npath = \"ids.csv\""), "exactly one of [report]"),
        (String::new(), "is missing, and so is [file]"),
    ];
    for (section, wanted) in &cases {
        let q = query(&dir, section, "");
        for args in [
            vec!["validate", q.to_str().unwrap()],
            vec!["plan", q.to_str().unwrap()],
            vec!["run", q.to_str().unwrap(), "--execute", "--yes"],
        ] {
            let r = run(&sim, &state, &args).await;
            assert_eq!(r.code, 2, "{wanted}: {}", r.stderr);
            assert!(r.stderr.contains(wanted), "{wanted}: {}", r.stderr);
            assert_eq!(r.stderr.matches("error:").count(), 1, "{}", r.stderr);
            if !section.is_empty() && !section.starts_with("[report]") {
                let file = section.split('"').nth(1).unwrap();
                assert!(r.stderr.contains(file), "names the file {file}: {}", r.stderr);
            }
        }
    }
    assert!(sim.handle.requests().is_empty(), "no call to Alma");
}

/// 5 of 25 IDs are not in Alma: they are left out before the set (the query allows that share).
/// The run stops before the job with the set kept (Alma fails the instance listing). Meanwhile a
/// colleague protects one user; `resume` takes that user out of the set before the job: one job,
/// one letter for each known user except the protected one. A run whose exclusion file is gone
/// by then stops (exit 2) and submits nothing.
#[tokio::test]
async fn refused_ids_stop_the_run_and_a_protection_added_meanwhile_holds() {
    let known: Vec<String> = (0..20).map(|i| format!("00{:05}", 10000 + i)).collect();
    let sim = sim(sim_config().users(30).named_users(known.iter().map(String::as_str))).await;
    let dir = temp_dir("refused-then-protected");
    let mut list = String::from("User name\n");
    for id in &known {
        list.push_str(&format!("{id}\n"));
    }
    for i in 0..5 {
        list.push_str(&format!("99{:05}\n", i));
    }
    std::fs::write(dir.join("ids.txt"), list).unwrap();
    std::fs::write(dir.join("protected.txt"), "# protected staff\n0000001\n").unwrap();
    let q = query(
        &dir,
        "[file]\npath = \"ids.txt\"",
        "exclude_files = [\"protected.txt\"]",
    );
    let text = std::fs::read_to_string(&q).unwrap() + "max_refused_ratio = 0.25\n";
    std::fs::write(&q, text).unwrap();
    let state = dir.join("state");
    stop_before_the_job(&sim);
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--period", "2027-spring"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(
        r.stdout.contains("left out: not in Alma (no such user)"),
        "{}",
        r.stdout
    );
    assert_eq!((sim.handle.sets().len(), sim.handle.job_instances().len()), (1, 0));
    assert_eq!(set_members(&sim).len(), 20);
    let run_id = crate::execute::runs_json(&sim, &state).await[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();

    // cron fires again, here and from a second state dir (another machine): nothing new in Alma.
    let again = execute_run(&sim, &state, q.to_str().unwrap(), &["--period", "2027-spring"]).await;
    assert_eq!(again.code, 4, "{}", again.stderr);
    let elsewhere = execute_run(
        &sim,
        &dir.join("state-2"),
        q.to_str().unwrap(),
        &["--period", "2027-spring"],
    )
    .await;
    assert_eq!(
        elsewhere.code, 4,
        "the second installation finds the period's set in Alma: {}",
        elsewhere.stderr
    );
    assert!(elsewhere.stderr.contains("Alma already holds"), "{}", elsewhere.stderr);
    assert_eq!((sim.handle.sets().len(), sim.handle.job_instances().len()), (1, 0));
    sim.handle.clear_faults();

    // A protection added while the run waits, written the way it would be (another zero count).
    std::fs::write(dir.join("protected.txt"), "# protected staff\n0000001\n10003\n").unwrap();
    // The answer to the delete_members is lost: the run stops (exit 3), the operator's word kept;
    // a plain resume finds the user gone from the set and goes on.
    sim.handle
        .add_fault(alma_sim::Fault::new(alma_sim::FaultKind::DropAfter, Target::SetOp).count(1));
    let lost = run(&sim, &state, &["resume", &run_id, "--yes"]).await;
    assert_eq!(lost.code, 3, "{}", lost.stderr);
    assert_eq!(sim.handle.job_instances().len(), 0);
    let resumed = run(&sim, &state, &["resume", &run_id, "--json"]).await;
    assert_eq!(resumed.code, 0, "completed: {}", resumed.stderr);
    let v = last_json(&resumed.stdout);
    assert_eq!(v["state"], "completed");
    assert_eq!(v["protected_ids"], serde_json::json!(["0010003"]));
    assert_eq!(sim.handle.job_instances().len(), 1);
    let mut members = set_members(&sim);
    members.sort();
    let expected: Vec<String> = known.iter().filter(|id| *id != "0010003").cloned().collect();
    assert_eq!(members, expected, "the protected user left the set before the job");
    let mut letters: Vec<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
    letters.sort();
    assert_eq!(
        letters, expected,
        "one letter for each known user except the one protected since"
    );
    let show = run(&sim, &state, &["show", &run_id]).await;
    assert!(
        show.stdout.contains("protected since the plan") && show.stdout.contains("op=delete_members"),
        "{}",
        show.stdout
    );
    assert!(
        sim.handle
            .requests()
            .iter()
            .any(|r| r.query.contains("op=delete_members")),
        "the set was changed with delete_members"
    );

    // Another period: the run stops before its job, and the exclusion file is then deleted.
    stop_before_the_job(&sim);
    let r = execute_run(&sim, &state, q.to_str().unwrap(), &["--period", "2027-fall", "--force"]).await;
    assert_eq!(r.code, 3, "{}", r.stderr);
    sim.handle.clear_faults();
    let second = crate::execute::runs_json(&sim, &state).await[0]["run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(second, run_id);
    let kept = std::fs::read(dir.join("protected.txt")).unwrap();
    std::fs::remove_file(dir.join("protected.txt")).unwrap();
    let gone = run(&sim, &state, &["resume", &second, "--yes"]).await;
    assert_eq!(gone.code, 2, "{}", gone.stderr);
    assert!(
        gone.stderr.contains("protected.txt") && gone.stderr.contains("read again before the job"),
        "{}",
        gone.stderr
    );
    assert_eq!(gone.stderr.matches("error:").count(), 1, "{}", gone.stderr);
    assert_eq!(sim.handle.job_instances().len(), 1, "no second job");
    // The operator restores the file and resumes: one more job, one letter each for the second
    // period, the protected user still without one.
    std::fs::write(dir.join("protected.txt"), kept).unwrap();
    let restored = run(&sim, &state, &["resume", &second]).await;
    assert_eq!(restored.code, 0, "completed: {}", restored.stderr);
    assert_eq!((sim.handle.sets().len(), sim.handle.job_instances().len()), (2, 2));
    let letters: Vec<String> = sim.handle.outbox().into_iter().map(|l| l.user_primary_id).collect();
    assert_eq!(
        letters.len(),
        2 * expected.len(),
        "one letter a period for each known user"
    );
    assert!(!letters.iter().any(|l| l == "0010003"), "never the protected user");
}

/// IDs that a spreadsheet would run as formulas (`=1+1`, `@SUM(1+1)`, `-2+3`) reach the review
/// files as text (a leading `'`): a reviewer opening `cohort.csv` or `left-out.csv` runs nothing.
#[tokio::test]
async fn formula_ids_are_text_in_the_review_files() {
    let ids = ["0123456", "0123457"];
    let sim = sim(sim_config().users(50).named_users(ids)).await;
    let dir = temp_dir("formulas");
    std::fs::write(dir.join("ids.txt"), "User name\n0123456\n=1+1\n@SUM(1+1)\n-2+3\n").unwrap();
    let q = query(&dir, "[file]\npath = \"ids.txt\"", "");
    let state = dir.join("state");
    let plan = run(&sim, &state, &["plan", q.to_str().unwrap(), "--json"]).await;
    let json = last_json(&plan.stdout);
    let run_id = json["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("{}{}", plan.stdout, plan.stderr));
    let folder = state.join("runs").join(run_id);
    let mut all = String::new();
    for file in ["cohort.csv", "left-out.csv"] {
        let Ok(text) = std::fs::read_to_string(folder.join(file)) else {
            continue;
        };
        for line in text.lines().skip(1) {
            assert!(
                !line.starts_with(['=', '+', '-', '@']),
                "{file}: {line:?} would run as a formula"
            );
        }
        all.push_str(&text);
    }
    for id in ["'=1+1", "'@SUM(1+1)", "'-2+3"] {
        assert!(all.contains(id), "{id} in the review files: {all}");
    }
}
