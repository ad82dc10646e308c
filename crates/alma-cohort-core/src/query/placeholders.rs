//! `{name}` placeholders in filter files, `where` expressions and set names: filled from a map,
//! each value escaped for the language it lands in, so a value can never change the structure
//! around it. `{{` and `}}` stand for literal braces.

use std::collections::BTreeMap;

/// How a value is written where a placeholder stood.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// XML character data (`&`, `<`, `>`, quotes escaped).
    XmlText,
    /// A complete SQL string literal: `'it''s'`.
    SqlLiteral,
    /// As is (set names, where the values are our own).
    Plain,
}

/// What went wrong while filling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FillError {
    Missing(String),
    Unbalanced(usize),
    BadName(String),
}

/// Fills every `{name}` in `text` from `values`.
pub fn fill(text: &str, values: &BTreeMap<String, String>, escape: Escape) -> Result<String, FillError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(i) = rest.find(['{', '}']) {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        if let Some(after) = tail.strip_prefix("{{") {
            out.push('{');
            rest = after;
            offset += i + 2;
            continue;
        }
        if let Some(after) = tail.strip_prefix("}}") {
            out.push('}');
            rest = after;
            offset += i + 2;
            continue;
        }
        if tail.starts_with('}') {
            return Err(FillError::Unbalanced(offset + i));
        }
        let close = tail.find('}').ok_or(FillError::Unbalanced(offset + i))?;
        let name = &tail[1..close];
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(FillError::BadName(name.to_string()));
        }
        let value = values.get(name).ok_or_else(|| FillError::Missing(name.to_string()))?;
        match escape {
            Escape::XmlText => out.push_str(&quick_xml::escape::escape(value.as_str())),
            Escape::SqlLiteral => {
                out.push('\'');
                out.push_str(&value.replace('\'', "''"));
                out.push('\'');
            }
            Escape::Plain => out.push_str(value),
        }
        rest = &tail[close + 1..];
        offset += i + close + 1;
    }
    out.push_str(rest);
    Ok(out)
}

/// The placeholder names used in `text` (for checking templates before values exist).
pub fn names(text: &str) -> Result<Vec<String>, FillError> {
    let mut found = Vec::new();
    let mut probe = BTreeMap::new();
    loop {
        match fill(text, &probe, Escape::Plain) {
            Ok(_) => return Ok(found),
            Err(FillError::Missing(name)) => {
                probe.insert(name.clone(), String::new());
                found.push(name);
            }
            Err(e) => return Err(e),
        }
    }
}

/// The first placeholder written inside a quoted SQL string or identifier (`'{g}'`, `"{g}"`).
/// Values are filled in as complete literals, so quoting them again is a mistake — and the shape
/// an injection attempt takes.
pub fn quoted_in_sql(text: &str) -> Option<String> {
    let mut quote: Option<char> = None;
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match quote {
            None if c == '\'' || c == '"' => quote = Some(c),
            Some(q) if c == q => {
                if chars.get(i + 1) == Some(&q) {
                    i += 1; // an escaped quote
                } else {
                    quote = None;
                }
            }
            Some(_) if c == '{' && chars.get(i + 1) == Some(&'{') => i += 1, // a literal brace
            Some(_) if c == '{' => {
                let name: String = chars[i + 1..].iter().take_while(|c| **c != '}').collect();
                if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                    return Some(name);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn fills_and_escapes() {
        let m = map(&[("a", "x<y"), ("b", "it's")]);
        assert_eq!(fill("<v>{a}</v>", &m, Escape::XmlText).unwrap(), "<v>x&lt;y</v>");
        assert_eq!(fill("g = {b}", &m, Escape::SqlLiteral).unwrap(), "g = 'it''s'");
        assert_eq!(fill("{{literal}} {a}", &m, Escape::Plain).unwrap(), "{literal} x<y");
        assert_eq!(fill("no placeholders", &m, Escape::Plain).unwrap(), "no placeholders");
    }

    #[test]
    fn refuses_missing_and_broken() {
        let m = map(&[]);
        assert_eq!(
            fill("{nope}", &m, Escape::Plain),
            Err(FillError::Missing("nope".into()))
        );
        assert_eq!(fill("x {open", &m, Escape::Plain), Err(FillError::Unbalanced(2)));
        assert_eq!(fill("x } y", &m, Escape::Plain), Err(FillError::Unbalanced(2)));
        assert_eq!(fill("{a b}", &m, Escape::Plain), Err(FillError::BadName("a b".into())));
        assert_eq!(names("{query} {period} {query}").unwrap(), ["query", "period"]);
        assert_eq!(quoted_in_sql(r#""User Group" = '{g}'"#), Some("g".into()));
        assert_eq!(quoted_in_sql(r#""{col}" = 1"#), Some("col".into()));
        assert_eq!(quoted_in_sql(r#""User Group" = {g} AND "N" = 'it''s {{x}}'"#), None);
    }
}
