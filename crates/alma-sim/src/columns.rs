//! A saved report's columns as Alma describes them in a page's schema: heading, formula, type,
//! "is prompted", and where the cells come from.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColType {
    Varchar,
    Date,
    Double,
}

impl ColType {
    pub fn xsd(self) -> &'static str {
        match self {
            ColType::Varchar => "xsd:string",
            ColType::Date => "xsd:date",
            ColType::Double => "xsd:double",
        }
    }
    pub fn saw(self) -> &'static str {
        match self {
            ColType::Varchar => "varchar",
            ColType::Date => "date",
            ColType::Double => "double",
        }
    }
}

/// Where a column's cells come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    PrimaryId,
    FirstName,
    LastName,
    UserGroup,
    AccountType,
    Status,
    Email,
    ExpiryDate,
    /// A formula column: days from the report's "data as of" date to the expiry date.
    DaysUntilExpiry,
    /// Column `i` of a CSV-backed report.
    Csv(usize),
}

#[derive(Clone, Debug)]
pub struct ColumnDef {
    /// `saw-sql:columnHeading`, exactly as Alma sends it (formulas keep their leading space).
    pub heading: String,
    pub table_heading: String,
    /// `saw-sql:displayFormula`, e.g. `"User Details"."User Group"`; filters name columns by it.
    pub formula: String,
    pub col_type: ColType,
    /// Only columns with an "is prompted" filter in the saved report can be filtered by the API.
    pub prompted: bool,
    pub cell: Cell,
}

impl ColumnDef {
    pub(crate) fn user(heading: &str, cell: Cell, col_type: ColType, prompted: bool) -> Self {
        Self {
            heading: heading.to_string(),
            table_heading: "User Details".to_string(),
            formula: format!("\"User Details\".\"{heading}\""),
            col_type,
            prompted,
            cell,
        }
    }
}
