//! The Analytics `filter` parameter: a sawx XML expression (comparison, list, logical) parsed
//! against a report's prompted columns and evaluated row by row.

use std::cmp::Ordering;

use chrono::NaiveDate;

use super::columns::{ColType, ColumnDef};
use super::xml::{Node, parse_tree};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CmpOp {
    Equal,
    NotEqual,
    Greater,
    Less,
    GreaterOrEqual,
    LessOrEqual,
    Null,
    NotNull,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    Compare {
        op: CmpOp,
        col: usize,
        col_type: ColType,
        value: Option<String>,
    },
    In {
        col: usize,
        col_type: ColType,
        values: Vec<String>,
    },
    Like {
        col: usize,
        patterns: Vec<String>,
    },
    And(Vec<Filter>),
    Or(Vec<Filter>),
    Not(Box<Filter>),
}

/// Why a filter was refused; the analytics endpoint turns it into an Alma-shaped error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FilterError {
    Malformed(String),
    UnknownColumn(String),
    NotPrompted(String),
}

impl std::fmt::Display for FilterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FilterError::Malformed(m) => write!(f, "Invalid filter: {m}"),
            FilterError::UnknownColumn(c) => write!(f, "Invalid filter: column {c} is not in the report"),
            FilterError::NotPrompted(c) => {
                write!(
                    f,
                    "Invalid filter: column {c} has no \"is prompted\" filter in the report"
                )
            }
        }
    }
}

impl Filter {
    pub fn parse(xml: &str, columns: &[ColumnDef]) -> Result<Self, FilterError> {
        let root = parse_tree(xml.as_bytes()).map_err(FilterError::Malformed)?;
        parse_expr(&root, columns)
    }

    /// Does the row pass? `cell(col)` gives the row's cell text (`None` for null).
    pub fn matches(&self, cell: &dyn Fn(usize) -> Option<String>) -> bool {
        match self {
            Filter::Compare {
                op,
                col,
                col_type,
                value,
            } => {
                let actual = cell(*col);
                match op {
                    CmpOp::Null => actual.is_none(),
                    CmpOp::NotNull => actual.is_some(),
                    _ => {
                        let (Some(actual), Some(value)) = (actual, value) else {
                            return false;
                        };
                        let Some(ord) = compare(&actual, value, *col_type) else {
                            return false;
                        };
                        match op {
                            CmpOp::Equal => ord == Ordering::Equal,
                            CmpOp::NotEqual => ord != Ordering::Equal,
                            CmpOp::Greater => ord == Ordering::Greater,
                            CmpOp::Less => ord == Ordering::Less,
                            CmpOp::GreaterOrEqual => ord != Ordering::Less,
                            CmpOp::LessOrEqual => ord != Ordering::Greater,
                            CmpOp::Null | CmpOp::NotNull => unreachable!("handled above"),
                        }
                    }
                }
            }
            Filter::In { col, col_type, values } => cell(*col).is_some_and(|a| {
                values
                    .iter()
                    .any(|v| compare(&a, v, *col_type) == Some(Ordering::Equal))
            }),
            Filter::Like { col, patterns } => {
                cell(*col).is_some_and(|a| patterns.iter().any(|p| like(a.as_bytes(), p.as_bytes())))
            }
            Filter::And(items) => items.iter().all(|f| f.matches(cell)),
            Filter::Or(items) => items.iter().any(|f| f.matches(cell)),
            Filter::Not(inner) => !inner.matches(cell),
        }
    }
}

fn xsi_type(node: &Node) -> &str {
    let t = node.attr("type").unwrap_or("");
    t.rsplit(':').next().unwrap_or(t)
}

fn parse_expr(node: &Node, columns: &[ColumnDef]) -> Result<Filter, FilterError> {
    if node.name != "expr" {
        return Err(FilterError::Malformed(format!(
            "expected sawx:expr, found <{}>",
            node.name
        )));
    }
    let op = node.attr("op").unwrap_or("");
    let kids: Vec<&Node> = node.children_named("expr").collect();
    match xsi_type(node) {
        "logical" => {
            let items = kids
                .iter()
                .map(|k| parse_expr(k, columns))
                .collect::<Result<Vec<_>, _>>()?;
            match op {
                "and" if !items.is_empty() => Ok(Filter::And(items)),
                "or" if !items.is_empty() => Ok(Filter::Or(items)),
                "not" if items.len() == 1 => Ok(Filter::Not(Box::new(items.into_iter().next().expect("one item")))),
                _ => Err(FilterError::Malformed(format!(
                    "logical op={op:?} with {} operands",
                    items.len()
                ))),
            }
        }
        "comparison" => {
            let (col, col_type) = column_of(kids.first().copied(), columns)?;
            let op = match op {
                "equal" => CmpOp::Equal,
                "notEqual" => CmpOp::NotEqual,
                "greater" => CmpOp::Greater,
                "less" => CmpOp::Less,
                "greaterOrEqual" => CmpOp::GreaterOrEqual,
                "lessOrEqual" => CmpOp::LessOrEqual,
                "null" => CmpOp::Null,
                "notNull" => CmpOp::NotNull,
                other => return Err(FilterError::Malformed(format!("unknown comparison op {other:?}"))),
            };
            let value = match op {
                CmpOp::Null | CmpOp::NotNull => None,
                _ => Some(
                    kids.get(1)
                        .map(|k| literal(k))
                        .transpose()?
                        .ok_or_else(|| FilterError::Malformed(format!("comparison {op:?} needs a value")))?,
                ),
            };
            Ok(Filter::Compare {
                op,
                col,
                col_type,
                value,
            })
        }
        "list" => {
            let (col, col_type) = column_of(kids.first().copied(), columns)?;
            let values = kids[1..].iter().map(|k| literal(k)).collect::<Result<Vec<_>, _>>()?;
            if values.is_empty() {
                return Err(FilterError::Malformed(format!(
                    "list op={op:?} needs at least one value"
                )));
            }
            match op {
                "in" => Ok(Filter::In { col, col_type, values }),
                "like" => Ok(Filter::Like { col, patterns: values }),
                other => Err(FilterError::Malformed(format!("unknown list op {other:?}"))),
            }
        }
        other => Err(FilterError::Malformed(format!("unsupported expression type {other:?}"))),
    }
}

fn literal(node: &Node) -> Result<String, FilterError> {
    match xsi_type(node) {
        "string" | "date" | "decimal" | "integer" | "double" | "dateTime" | "untypedLiteral" => {
            Ok(node.text.trim().to_string())
        }
        other => Err(FilterError::Malformed(format!("unsupported literal type {other:?}"))),
    }
}

/// The column a `sawx:sqlExpression` names: by its display formula (`"User Details"."Status"`),
/// or by its heading.
fn column_of(node: Option<&Node>, columns: &[ColumnDef]) -> Result<(usize, ColType), FilterError> {
    let node = node.ok_or_else(|| FilterError::Malformed("expression without a column".into()))?;
    if xsi_type(node) != "sqlExpression" {
        return Err(FilterError::Malformed(
            "the first operand must be a sawx:sqlExpression".into(),
        ));
    }
    let wanted = squash(&node.text);
    let found = columns.iter().position(|c| {
        squash(&c.formula) == wanted
            || squash(&c.heading) == wanted
            || squash(&format!("\"{}\"", c.heading.trim())) == wanted
    });
    match found {
        None => Err(FilterError::UnknownColumn(node.text.trim().to_string())),
        Some(i) if !columns[i].prompted => Err(FilterError::NotPrompted(node.text.trim().to_string())),
        Some(i) => Ok((i, columns[i].col_type)),
    }
}

fn squash(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn compare(actual: &str, value: &str, col_type: ColType) -> Option<Ordering> {
    match col_type {
        ColType::Varchar => Some(actual.cmp(value)),
        ColType::Date => {
            // chrono's ISO `FromStr` reads the same YYYY-MM-DD as "%Y-%m-%d", without building a
            // format for every row (the 8 partitions of benches/partitions.sh each filter every user).
            let day = |s: &str| s.get(..10).unwrap_or(s).parse::<NaiveDate>().ok();
            Some(day(actual)?.cmp(&day(value)?))
        }
        ColType::Double => actual
            .trim()
            .parse::<f64>()
            .ok()?
            .partial_cmp(&value.trim().parse::<f64>().ok()?),
    }
}

/// SQL LIKE: `%` any run, `_` one character; case-sensitive, as Oracle BI compares.
fn like(text: &[u8], pattern: &[u8]) -> bool {
    let text = String::from_utf8_lossy(text).chars().collect::<Vec<_>>();
    let pattern = String::from_utf8_lossy(pattern).chars().collect::<Vec<_>>();
    let (mut t, mut p) = (0, 0);
    let (mut star_p, mut star_t) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '_' || pattern[p] == text[t]) {
            t += 1;
            p += 1;
        } else if p < pattern.len() && pattern[p] == '%' {
            star_p = Some(p);
            star_t = t;
            p += 1;
        } else if let Some(sp) = star_p {
            p = sp + 1;
            star_t += 1;
            t = star_t;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '%')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::builtin_reports;

    const NS: &str = r#"xmlns:saw="com.siebel.analytics.web/report/v1.1" xmlns:sawx="com.siebel.analytics.web/expression/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema""#;

    fn cols() -> Vec<ColumnDef> {
        builtin_reports().remove(0).columns
    }

    fn row(values: &[(usize, &str)]) -> impl Fn(usize) -> Option<String> {
        let values: Vec<(usize, String)> = values.iter().map(|(i, v)| (*i, v.to_string())).collect();
        move |c| values.iter().find(|(i, _)| *i == c).map(|(_, v)| v.clone())
    }

    #[test]
    fn logical_list_and_comparison() {
        let xml = format!(
            r#"<sawx:expr xsi:type="sawx:logical" op="and" {NS}>
                 <sawx:expr xsi:type="sawx:comparison" op="equal">
                   <sawx:expr xsi:type="sawx:sqlExpression">"User Details"."Account Type"</sawx:expr>
                   <sawx:expr xsi:type="xsd:string">Internal</sawx:expr></sawx:expr>
                 <sawx:expr xsi:type="sawx:list" op="in">
                   <sawx:expr xsi:type="sawx:sqlExpression">"User Details"."User Group"</sawx:expr>
                   <sawx:expr xsi:type="xsd:string">UGRAD</sawx:expr>
                   <sawx:expr xsi:type="xsd:string">GRAD</sawx:expr></sawx:expr>
               </sawx:expr>"#
        );
        let f = Filter::parse(&xml, &cols()).unwrap();
        assert!(f.matches(&row(&[(4, "Internal"), (3, "GRAD")])));
        assert!(!f.matches(&row(&[(4, "External"), (3, "GRAD")])));
        assert!(!f.matches(&row(&[(4, "Internal"), (3, "STAFF")])));
        assert!(!f.matches(&row(&[(3, "GRAD")])), "null never equals");
    }

    #[test]
    fn dates_compare_as_dates_and_greater_is_strict() {
        let xml = format!(
            r#"<sawx:expr xsi:type="sawx:comparison" op="greater" {NS}><sawx:expr xsi:type="sawx:sqlExpression">"User Details"."Expiry Date"</sawx:expr><sawx:expr xsi:type="xsd:date">2026-06-30</sawx:expr></sawx:expr>"#
        );
        let f = Filter::parse(&xml, &cols()).unwrap();
        assert!(f.matches(&row(&[(7, "2026-07-01")])));
        assert!(!f.matches(&row(&[(7, "2026-06-30")])));
        let ge = Filter::parse(&xml.replace("\"greater\"", "\"greaterOrEqual\""), &cols()).unwrap();
        assert!(ge.matches(&row(&[(7, "2026-06-30")])));
        let le = Filter::parse(&xml.replace("\"greater\"", "\"lessOrEqual\""), &cols()).unwrap();
        assert!(le.matches(&row(&[(7, "2026-06-30")])));
        let ne = Filter::parse(&xml.replace("\"greater\"", "\"notEqual\""), &cols()).unwrap();
        assert!(!ne.matches(&row(&[(7, "2026-06-30")])));
    }

    #[test]
    fn like_and_or() {
        let xml = format!(
            r#"<sawx:expr xsi:type="sawx:logical" op="or" {NS}>
                <sawx:expr xsi:type="sawx:list" op="like"><sawx:expr xsi:type="sawx:sqlExpression">"User Details"."User Group"</sawx:expr><sawx:expr xsi:type="xsd:string">%GRAD</sawx:expr></sawx:expr>
                <sawx:expr xsi:type="sawx:comparison" op="less"><sawx:expr xsi:type="sawx:sqlExpression">"User Details"."Status"</sawx:expr><sawx:expr xsi:type="xsd:string">B</sawx:expr></sawx:expr>
            </sawx:expr>"#
        );
        let f = Filter::parse(&xml, &cols()).unwrap();
        assert!(f.matches(&row(&[(3, "UGRAD")])));
        assert!(f.matches(&row(&[(5, "Active")])));
        assert!(!f.matches(&row(&[(3, "STAFF"), (5, "Inactive")])));
        assert!(like(b"abc", b"a_c") && like(b"abc", b"%") && !like(b"abc", b"b%"));
    }

    #[test]
    fn refuses_unprompted_unknown_and_malformed() {
        let on = |col: &str| {
            format!(
                r#"<sawx:expr xsi:type="sawx:comparison" op="equal" {NS}><sawx:expr xsi:type="sawx:sqlExpression">{col}</sawx:expr><sawx:expr xsi:type="xsd:string">x</sawx:expr></sawx:expr>"#
            )
        };
        assert!(matches!(
            Filter::parse(&on(r#""User Details"."Primary Identifier""#), &cols()),
            Err(FilterError::NotPrompted(_))
        ));
        assert!(matches!(
            Filter::parse(&on(r#""User Details"."Shoe Size""#), &cols()),
            Err(FilterError::UnknownColumn(_))
        ));
        assert!(matches!(
            Filter::parse("<sawx:expr", &cols()),
            Err(FilterError::Malformed(_))
        ));
        assert!(matches!(
            Filter::parse(
                &on(r#""User Details"."Status""#).replace("\"equal\"", "\"between\""),
                &cols()
            ),
            Err(FilterError::Malformed(_))
        ));
    }
}
