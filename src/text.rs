//! Text files as people make them: a UTF-8 byte-order mark (Notepad, Excel's "CSV UTF-8") at the
//! start is not part of the text. Every text file alma-cohort reads goes through here.

use std::path::Path;

/// The byte-order mark, U+FEFF.
pub const BOM: char = '\u{feff}';

/// `s` without a leading byte-order mark.
pub fn strip_bom(s: &str) -> &str {
    s.strip_prefix(BOM).unwrap_or(s)
}

/// Reads a UTF-8 text file, without its byte-order mark.
pub fn read_text(path: &Path) -> std::io::Result<String> {
    let mut text = std::fs::read_to_string(path)?;
    if text.starts_with(BOM) {
        text.drain(..BOM.len_utf8());
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bom_is_not_text() {
        assert_eq!(strip_bom("\u{feff}0012345\r\n"), "0012345\r\n");
        assert_eq!(strip_bom("0012345"), "0012345");
        let p = std::env::temp_dir().join(format!("bom-{}.txt", std::process::id()));
        std::fs::write(&p, b"\xef\xbb\xbfname = \"q\"\n").unwrap();
        assert_eq!(read_text(&p).unwrap(), "name = \"q\"\n");
        std::fs::remove_file(p).unwrap();
    }
}
