//! Text files as people save them, and IDs as people type them. Every file alma-cohort reads goes
//! through here: its size is bounded before it is read (a query file is kilobytes, a list tens of
//! megabytes; `/dev/zero` is refused, not read until memory runs out), and its bytes become text
//! the way Windows tools write it — a byte-order mark decides (UTF-8, UTF-16 LE from Notepad's
//! "Unicode" and Excel's "Unicode Text", UTF-16 BE); without one the text is UTF-8 when it is valid
//! UTF-8, else Windows-1252 (Excel's default "CSV (Comma delimited)"). A file that is neither —
//! control bytes, a zip, an image — is refused by the callers' per-line checks ([`control_at`]).

use std::io::Read;
use std::path::Path;
use unicode_normalization::UnicodeNormalization;

/// The longest ID alma-cohort takes (Alma's primary IDs are far shorter).
pub const MAX_ID_LENGTH: usize = 255;

/// The byte-order mark, U+FEFF.
pub const BOM: char = '\u{feff}';

/// The largest file of each kind alma-cohort reads, checked before reading (docs/operating.md).
pub mod limit {
    /// A query file, a config file, a job parameters file: hand-written TOML or text.
    pub const SMALL: u64 = 1 << 20;
    /// An API key file.
    pub const KEY: u64 = 64 << 10;
    /// An exclusion file: one ID a line (64 MiB is several million IDs).
    pub const EXCLUSIONS: u64 = 64 << 20;
    /// A list file (text, CSV or spreadsheet): a million rows with names and emails fit.
    pub const LIST: u64 = 256 << 20;
}

/// Reads at most `max` bytes of `path`; a larger file (or an endless one such as `/dev/zero`) is
/// an error saying so, before its content is held.
pub fn read_bytes(path: &Path, max: u64) -> std::io::Result<Vec<u8>> {
    let too_big = || {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "larger than {} (the most alma-cohort reads from a file of this kind); is this the right file?",
                size(max)
            ),
        )
    };
    // Opening a named pipe waits for a writer, for ever: looked at (stat, which never waits)
    // before it is opened.
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        let kind = std::fs::metadata(path)?.file_type();
        if kind.is_fifo() || kind.is_socket() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "is a named pipe or a socket, not a file (reading it would wait for a writer for ever)",
            ));
        }
    }
    let file = std::fs::File::open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "is a folder, not a file",
        ));
    }
    if meta.is_file() && meta.len() > max {
        return Err(too_big());
    }
    let mut bytes = Vec::with_capacity(if meta.is_file() { meta.len() as usize } else { 0 });
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(too_big());
    }
    Ok(bytes)
}

/// `n` bytes in words: `1 MiB`, `64 KiB`.
pub fn size(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// How a file's bytes were read as text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Utf8Bom,
    Utf16Le,
    Utf16Be,
    Windows1252,
}

impl Encoding {
    /// The words `plan` prints.
    pub fn describe(self) -> &'static str {
        match self {
            Encoding::Utf8 => "UTF-8",
            Encoding::Utf8Bom => "UTF-8 (with a byte-order mark)",
            Encoding::Utf16Le => "UTF-16 LE (Windows \"Unicode\", from its byte-order mark)",
            Encoding::Utf16Be => "UTF-16 BE (from its byte-order mark)",
            Encoding::Windows1252 => "Windows-1252 (not valid UTF-8: read as Excel's \"CSV (Comma delimited)\" writes)",
        }
    }
}

/// Text from a file's bytes, without its byte-order mark. `Err` says why the bytes are not text
/// in the encoding their byte-order mark names.
pub fn decode(bytes: &[u8]) -> Result<(String, Encoding), String> {
    let strict = |enc: &'static encoding_rs::Encoding, body: &[u8], name: Encoding| {
        enc.decode_without_bom_handling_and_without_replacement(body)
            .map(|t| (t.into_owned(), name))
            .ok_or_else(|| {
                format!(
                    "starts with the byte-order mark of {} but is not valid {0} text",
                    name.describe()
                )
            })
    };
    if let Some(body) = bytes.strip_prefix(b"\xef\xbb\xbf") {
        return strict(encoding_rs::UTF_8, body, Encoding::Utf8Bom);
    }
    if let Some(body) = bytes.strip_prefix(b"\xff\xfe") {
        return strict(encoding_rs::UTF_16LE, body, Encoding::Utf16Le);
    }
    if let Some(body) = bytes.strip_prefix(b"\xfe\xff") {
        return strict(encoding_rs::UTF_16BE, body, Encoding::Utf16Be);
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok((text.to_string(), Encoding::Utf8)),
        // Windows-1252 gives every byte a character: a binary file comes out full of control
        // characters (and its undefined bytes as C1 controls), which the line checks refuse.
        Err(_) => Ok((
            encoding_rs::WINDOWS_1252
                .decode_without_bom_handling(bytes)
                .0
                .into_owned(),
            Encoding::Windows1252,
        )),
    }
}

/// Reads a text file of at most `max` bytes, decoded ([`decode`]), refusing control characters
/// other than tab and line ends.
pub fn read_text(path: &Path, max: u64) -> std::io::Result<String> {
    let bad = |m: String| std::io::Error::new(std::io::ErrorKind::InvalidData, m);
    let (text, _) = decode(&read_bytes(path, max)?).map_err(bad)?;
    for (n, line) in text.split('\n').enumerate() {
        if let Some(col) = control_at(line) {
            return Err(bad(format!(
                "not a text file (a control character on line {}, column {col})",
                n + 1
            )));
        }
    }
    Ok(text)
}

/// `s` without a leading byte-order mark.
pub fn strip_bom(s: &str) -> &str {
    s.strip_prefix(BOM).unwrap_or(s)
}

/// The 1-based column of the first control character other than tab and carriage return: a line
/// of a binary file.
pub fn control_at(line: &str) -> Option<usize> {
    line.chars()
        .position(|c| c.is_control() && !matches!(c, '\t' | '\r'))
        .map(|i| i + 1)
}

/// `word` as a POSIX shell reads it back: as it is when it holds only characters no shell treats
/// specially, else in single quotes (a `'` inside written `'\''`). For hints to paste.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | ',' | '=' | '@' | '%')
        });
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A name from a file (a zip part, a sheet) fit to show in one error line: control and
/// invisible characters escaped, at most `max` characters kept.
pub fn shown(name: &str, max: usize) -> String {
    let mut out: String = name
        .chars()
        .take(max)
        .flat_map(|c| {
            if c.is_control() || is_invisible(c) {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect();
    if name.chars().nth(max).is_some() {
        out.push('…');
    }
    out
}

/// Zero-width, direction and other format characters (Unicode category Cf) that no editor shows.
pub fn is_invisible(c: char) -> bool {
    matches!(c, '\u{00ad}' | '\u{034f}' | '\u{061c}' | '\u{115f}' | '\u{1160}' | '\u{17b4}' | '\u{17b5}' | '\u{180b}'..='\u{180f}' | '\u{200b}'..='\u{200f}' | '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{3164}' | '\u{fe00}'..='\u{fe0f}' | '\u{feff}' | '\u{ffa0}' | '\u{fff9}'..='\u{fffb}' | '\u{1d173}'..='\u{1d17a}' | '\u{e0000}'..='\u{e007f}')
}

/// Why `id` (trimmed, from a list or an exclusion file) is not one ID as a person meant it, or
/// `None`. The same rules for lists and exclusions, so that a protection matches what it
/// protects: no invisible or control characters, no spaces, separators or quotes inside, letters
/// of one script only (a Cyrillic `В` in a Latin ID is a lookalike), and not a number in the
/// form Excel gives long numbers (`1.23457E+11`, `12345.0`).
pub fn id_problem(id: &str) -> Option<String> {
    if let Some(what) = excel_error(id) {
        return Some(what);
    }
    let length = id.chars().count();
    if length > MAX_ID_LENGTH {
        return Some(format!(
            "is {length} characters long (at most {MAX_ID_LENGTH}): not an ID"
        ));
    }
    if let Some(c) = id.chars().find(|c| is_invisible(*c)) {
        return Some(format!(
            "holds an invisible character (U+{:04X}, {}); retype the ID",
            c as u32,
            invisible_name(c)
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_control()) {
        return Some(format!("holds a control character (U+{:04X}); retype the ID", c as u32));
    }
    if let Some(what) = excel_number(id) {
        return Some(what);
    }
    // Digits of another script (Arabic-Indic, Devanagari …) are not the ID's digits.
    if let Some(c) = id.chars().find(|c| c.is_numeric() && !c.is_ascii_digit()) {
        let folded: String = std::iter::once(c).nfkc().collect();
        if folded == c.to_string() {
            return Some(format!(
                "holds {c:?} (U+{:04X}), a digit of another script; write the ID with the digits 0-9",
                c as u32
            ));
        }
    }
    // Full-width or mathematical digits and letters, ligatures, accents typed as a separate mark:
    // the ID reads as another string, which is what Alma holds.
    let folded: String = id.nfkc().collect();
    if folded != id {
        return Some(format!(
            "is written with look-alike characters (full-width, mathematical or a separate accent); it reads as {folded:?}: write that"
        ));
    }
    // `.` and `..` are no one: as a URL path segment they are the folder itself or its parent.
    if id.chars().all(|c| c == '.') {
        return Some("is only dots, which names no user (in a URL it is a folder); write the ID".into());
    }
    // A mark that composes with nothing (an accent after a digit, an enclosing circle): what
    // it marks is another ID than the one Alma holds.
    if let Some(c) = id.chars().find(|&c| unicode_normalization::char::is_combining_mark(c)) {
        return Some(format!(
            "holds the combining mark U+{:04X} (an accent or enclosing mark typed on its own); write the ID without it",
            c as u32
        ));
    }
    if let Some(c) = id.chars().find(|c| c.is_whitespace() || matches!(c, ',' | ';')) {
        return Some(format!(
            "is not one ID (it holds {c:?}); write one ID a line (a comment after a space and #)"
        ));
    }
    // Excel's leading apostrophe ("store as text") is normalization's to strip; any other quote
    // is not part of an ID.
    let unmarked = id.strip_prefix('\'').unwrap_or(id);
    if let Some(c) = unmarked
        .chars()
        .find(|c| matches!(c, '"' | '\'' | '“' | '”' | '‘' | '’' | '`'))
    {
        return Some(format!("holds the quote {c:?}; write the ID without quotes"));
    }
    let scripts = scripts_of(id);
    if scripts.len() > 1 {
        return Some(format!(
            "mixes letters of {} scripts ({}): a lookalike (e.g. a Cyrillic В for a Latin B); retype the ID",
            scripts.len(),
            scripts.join(" and ")
        ));
    }
    None
}

/// A TOML reader's message as a librarian reads it: the Rust type it names (`expected i64`) said
/// in words, and the key of the line it points at (`line`, the file's line there) named first.
pub fn plain_toml_message(message: &str, line: Option<&str>) -> String {
    let mut text = message.trim().to_string();
    for (rust, words) in [
        ("i64", "a whole number"),
        ("u64", "a whole number (0 or more)"),
        ("u32", "a whole number (0 or more)"),
        ("usize", "a whole number (0 or more)"),
        ("i32", "a whole number"),
        ("u16", "a whole number (0 or more)"),
        ("u8", "a whole number (0 or more)"),
        ("f64", "a number"),
        ("bool", "true or false"),
    ] {
        text = text.replace(&format!("expected {rust}"), &format!("expected {words}"));
    }
    // Only a value of the wrong kind is about the key; a syntax error is about the text.
    let about_a_value = text.starts_with("invalid type") || text.starts_with("invalid value");
    match line
        .filter(|_| about_a_value)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim())
    {
        Some(key)
            if !key.is_empty()
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) =>
        {
            format!("`{key}`: {text}")
        }
        _ => text,
    }
}

/// A cell as a review file (`cohort.csv`, `left-out.csv` …) holds it: one that a spreadsheet would
/// run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return) gets a leading
/// `'`, which Excel and LibreOffice show as text and do not run (OWASP's CSV injection advice).
pub fn spreadsheet_safe(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => std::borrow::Cow::Owned(format!("'{cell}")),
        _ => std::borrow::Cow::Borrowed(cell),
    }
}

/// The key look-alike IDs share: NFKC, upper case, the UTS #39 skeleton, lower case. `ІМ78646`
/// (Cyrillic), `IM78646`, `тн26895` and `TH26895`, `Ο555972` (Greek) and `0555972` each share
/// theirs. Only for comparing an exclusion written outside ASCII with the cohort's IDs.
pub fn lookalike_key(id: &str) -> String {
    // Latin small capitals (ᴍ, ʀ, …) have no upper case and no skeleton of their own letter.
    const SMALL_CAPS: [(char, char); 25] = [
        ('ᴀ', 'A'),
        ('ʙ', 'B'),
        ('ᴄ', 'C'),
        ('ᴅ', 'D'),
        ('ᴇ', 'E'),
        ('ꜰ', 'F'),
        ('ɢ', 'G'),
        ('ʜ', 'H'),
        ('ɪ', 'I'),
        ('ᴊ', 'J'),
        ('ᴋ', 'K'),
        ('ʟ', 'L'),
        ('ᴍ', 'M'),
        ('ɴ', 'N'),
        ('ᴏ', 'O'),
        ('ᴘ', 'P'),
        ('ʀ', 'R'),
        ('ꜱ', 'S'),
        ('ᴛ', 'T'),
        ('ᴜ', 'U'),
        ('ᴠ', 'V'),
        ('ᴡ', 'W'),
        ('ʏ', 'Y'),
        ('ᴢ', 'Z'),
        ('ꞯ', 'Q'),
    ];
    let upper: String = id
        .trim()
        .nfkc()
        .map(|c| SMALL_CAPS.iter().find(|(s, _)| *s == c).map_or(c, |(_, l)| *l))
        .collect::<String>()
        .to_uppercase();
    unicode_security::skeleton(&upper).collect::<String>().to_lowercase()
}

fn invisible_name(c: char) -> &'static str {
    match c {
        '\u{200b}' => "zero width space",
        '\u{200c}' => "zero width non-joiner",
        '\u{200d}' => "zero width joiner",
        '\u{200e}' | '\u{200f}' | '\u{061c}' => "a direction mark",
        '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' => "a right-to-left or left-to-right override",
        '\u{00ad}' => "soft hyphen",
        '\u{feff}' | '\u{2060}' => "word joiner",
        _ => "a format character",
    }
}

/// The scripts of `id`'s letters (Common and Inherited characters — digits, punctuation,
/// combining marks — belong to none), in order of appearance.
fn scripts_of(id: &str) -> Vec<String> {
    use unicode_script::{Script, UnicodeScript};
    let mut seen: Vec<Script> = Vec::new();
    for c in id.chars().filter(|c| c.is_alphabetic()) {
        let s = c.script();
        if !matches!(s, Script::Common | Script::Inherited | Script::Unknown) && !seen.contains(&s) {
            seen.push(s);
        }
    }
    seen.iter().map(|s| s.full_name().to_string()).collect()
}

/// Excel's error values, as a CSV or text export writes a cell whose formula failed.
pub const EXCEL_ERRORS: [&str; 11] = [
    "#N/A",
    "#VALUE!",
    "#REF!",
    "#DIV/0!",
    "#NUM!",
    "#NAME?",
    "#NULL!",
    "#SPILL!",
    "#CALC!",
    "#GETTING_DATA",
    "#FIELD!",
];

/// `Some` when `text` is one of Excel's error values (`#N/A`): in a list or exclusion file it is
/// refused, not read as a `#` comment or an ID.
pub fn excel_error(text: &str) -> Option<String> {
    let t = text.trim();
    EXCEL_ERRORS.iter().any(|e| e.eq_ignore_ascii_case(t)).then(|| {
        format!("is Excel's error value {t}, not an ID (a formula or lookup failed for this row); fix the row in the source and export again")
    })
}

/// What Excel did to `id` when it is a number in Excel's display form: scientific notation
/// (`1.23457E+11`, `1,23457E+11`: a long number in a narrow column, its digits lost) or a whole
/// number written with decimals (`12345.0`).
pub fn excel_number(id: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (mantissa, exponent) = match id.split_once(['E', 'e']) {
        Some((m, e)) => (m, Some(e)),
        None => (id, None),
    };
    let (whole, fraction) = match mantissa.split_once(['.', ',']) {
        Some((w, f)) => (w, Some(f)),
        None => (mantissa, None),
    };
    if !digits(whole) || fraction.is_some_and(|f| !digits(f)) {
        return None;
    }
    match (fraction, exponent) {
        (_, Some(e)) if digits(e.trim_start_matches(['+', '-'])) => Some(
            "is a number in Excel's scientific notation: Excel kept only its first digits, so the real ID is lost; format the column as text in the source and export again".into(),
        ),
        (Some(f), None) if f.bytes().all(|b| b == b'0') => Some(
            "is a whole number written with decimals (as Excel writes a number formatted with decimal places); format the column as text or as a number with no decimals, and export again".into(),
        ),
        _ => None,
    }
}

/// The comparison form of a period (also for periods journaled before they were normalized).
pub fn period_key(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.trim().chars().flat_map(char::to_lowercase) {
        if c == ' ' || c == '_' || c == '-' {
            if !out.is_empty() && !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c);
        }
    }
    while out.ends_with('-') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_paste_back_as_they_were() {
        assert_eq!(shell_word("/srv/alma-cohort/main"), "/srv/alma-cohort/main");
        assert_eq!(shell_word("/tmp/My Lists/q.toml"), "'/tmp/My Lists/q.toml'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
        assert_eq!(shell_word("$HOME"), "'$HOME'");
    }

    #[test]
    fn a_bom_decides_else_utf8_else_windows_1252() {
        assert_eq!(strip_bom("\u{feff}0012345\r\n"), "0012345\r\n");
        assert_eq!(decode(b"\xef\xbb\xbfq\n").unwrap(), ("q\n".into(), Encoding::Utf8Bom));
        assert_eq!(decode(b"\xff\xfeq\0\n\0").unwrap(), ("q\n".into(), Encoding::Utf16Le));
        assert_eq!(decode(b"\xfe\xff\0q\0\n").unwrap(), ("q\n".into(), Encoding::Utf16Be));
        assert_eq!(decode("Renée".as_bytes()).unwrap(), ("Renée".into(), Encoding::Utf8));
        assert_eq!(decode(b"Ren\xe9e").unwrap(), ("Renée".into(), Encoding::Windows1252));
        assert!(decode(b"\xff\xfeq").is_err(), "half a UTF-16 unit");
        // A zip renamed .txt: control characters, refused by the line checks.
        let (zip, _) = decode(b"PK\x03\x04\x14\x00\x81").unwrap();
        assert!(control_at(&zip).is_some());
        let p = std::env::temp_dir().join(format!("bom-{}.txt", std::process::id()));
        std::fs::write(&p, b"\xef\xbb\xbfname = \"q\"\n").unwrap();
        assert_eq!(read_text(&p, limit::SMALL).unwrap(), "name = \"q\"\n");
        let e = read_text(&p, 4).unwrap_err().to_string();
        assert!(e.contains("larger than 4 bytes"), "{e}");
        std::fs::remove_file(p).unwrap();
        #[cfg(unix)]
        {
            let e = read_bytes(Path::new("/dev/zero"), limit::SMALL)
                .unwrap_err()
                .to_string();
            assert!(e.contains("larger than 1 MiB"), "{e}");
            let fifo = std::env::temp_dir().join(format!("fifo-{}", std::process::id()));
            let made = std::process::Command::new("mkfifo").arg(&fifo).status();
            if made.is_ok_and(|s| s.success()) {
                let e = read_bytes(&fifo, limit::SMALL).unwrap_err().to_string();
                assert!(e.contains("named pipe"), "{e}");
                std::fs::remove_file(&fifo).unwrap();
            }
        }
    }

    #[test]
    fn ids_as_people_meant_them() {
        for ok in ["'0012345", "0012345", "ab.cd@uni.edu", "Иванов", "12345.5", "E12", "1E"] {
            assert_eq!(id_problem(ok), None, "{ok}");
        }
        for (bad, says) in [
            ("173\u{200b}7788", "zero width space"),
            ("\u{202e}8877371", "override"),
            ("\"0012345\"", "quote"),
            ("0012345,0012346", "not one ID"),
            ("0012345;0012346", "not one ID"),
            ("0012 345", "not one ID"),
            ("\u{412}ROWN01", "Cyrillic and Latin"),
            ("1.23457E+11", "scientific notation"),
            ("1,23457E+11", "scientific notation"),
            ("12345E3", "scientific notation"),
            ("12345.0", "with decimals"),
            ("#N/A", "error value #N/A"),
            ("12345,00", "with decimals"),
        ] {
            let p = id_problem(bad).unwrap_or_default();
            assert!(p.contains(says), "{bad:?}: {p}");
        }
        assert_eq!(size(256 << 20), "256 MiB");
        for (bad, says) in [
            (
                "\u{ff11}\u{ff19}\u{ff10}\u{ff10}\u{ff15}\u{ff15}\u{ff10}",
                "\"1900550\"",
            ),
            ("\u{1d7cf}900550", "\"1900550\""),
            ("\u{661}\u{662}\u{663}", "a digit of another script"),
            ("jose\u{301}", "separate accent"),
        ] {
            let p = id_problem(bad).unwrap_or_default();
            assert!(p.contains(says), "{bad:?}: {p}");
        }
    }

    #[test]
    fn toml_messages_say_the_key_and_the_type_in_words() {
        assert_eq!(
            plain_toml_message("invalid type: string \"many\", expected i64", Some("limit = \"many\"")),
            "`limit`: invalid type: string \"many\", expected a whole number"
        );
        assert_eq!(plain_toml_message("expected bool", None), "expected true or false");
    }

    #[test]
    fn formula_cells_are_text_in_review_files() {
        for (cell, safe) in [
            ("=1+1", "'=1+1"),
            ("@SUM(1+1)", "'@SUM(1+1)"),
            ("-2+3", "'-2+3"),
            ("+1", "'+1"),
            ("0012345", "0012345"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_safe(cell), safe, "{cell}");
        }
    }

    #[test]
    fn lookalikes_share_a_key_with_what_they_look_like() {
        for (a, b) in [
            ("\u{406}\u{41c}78646", "IM78646"),
            ("\u{4c0}\u{41c}78646", "IM78646"),
            ("\u{442}\u{43d}26895", "TH26895"),
            ("\u{1d0f}\u{1d0d}87596", "OM87596"),
            ("\u{39f}555972", "0555972"),
            ("\u{41c}\u{422}60554", "MT60554"),
        ] {
            assert_eq!(lookalike_key(a), lookalike_key(b), "{a:?} and {b}");
        }
        assert_ne!(lookalike_key("MT60554"), lookalike_key("MT60555"));
    }
}
