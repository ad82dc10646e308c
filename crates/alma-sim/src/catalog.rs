//! Saved Analytics reports: their columns (heading, formula, type, "is prompted"), their rows
//! over the seeded users or a user's CSV file, and evaluation into an ordered list of rows.

use std::path::Path;

use chrono::NaiveDate;

pub use super::columns::{Cell, ColType, ColumnDef};
use super::filter::Filter;
use super::institution::{AccountType, User};

pub const REPORTS_FOLDER: &str = "/shared/Example University/Reports/Password Resets";
pub const FIXTURES_FOLDER: &str = "/shared/Example University/Reports/Fixtures";

/// Which seeded users a report lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Population {
    All,
    Active,
    ActiveInternal,
    WithExpiryDate,
    /// No rows at all (for 0-row page shapes).
    Nobody,
    /// Exactly the first user (for 1-row page shapes).
    FirstUser,
}

#[derive(Clone, Debug)]
pub enum Source {
    Users {
        population: Population,
        /// Rows from users flagged `duplicated_in_joins` appear twice, as a join would make them.
        join_duplicates: bool,
        sort_by_group: bool,
    },
    Csv {
        rows: Vec<Vec<Option<String>>>,
    },
}

#[derive(Clone, Debug)]
pub struct SavedReport {
    pub path: String,
    pub columns: Vec<ColumnDef>,
    pub source: Source,
}

/// The report's result as the simulator pages it: row handles into the users or CSV rows.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub rows: Vec<u32>,
}

impl SavedReport {
    /// The text of a cell, `None` for a null (which Alma omits from the `Row`).
    pub fn cell(&self, users: &[User], row: u32, col: usize, as_of: NaiveDate) -> Option<String> {
        let def = &self.columns[col];
        if let Cell::Csv(i) = def.cell {
            return match &self.source {
                Source::Csv { rows } => rows.get(row as usize).and_then(|r| r.get(i).cloned().flatten()),
                Source::Users { .. } => None,
            };
        }
        let user = users.get(row as usize)?;
        match def.cell {
            Cell::PrimaryId => Some(user.report_id()),
            Cell::FirstName => Some(user.first_name.clone()),
            Cell::LastName => Some(user.last_name.clone()),
            Cell::UserGroup => Some(user.user_group.clone()),
            Cell::AccountType => Some(user.account_type.desc().to_string()),
            Cell::Status => Some(if user.active { "Active" } else { "Inactive" }.to_string()),
            Cell::Email => user.email.clone(),
            // NaiveDate's Display is YYYY-MM-DD, written directly (a strftime format per cell
            // was most of the time of a filtered first page).
            Cell::ExpiryDate => user.expiry_date.map(|d| d.to_string()),
            Cell::DaysUntilExpiry => user.expiry_date.map(|d| ((d - as_of).num_days() as f64).to_string()),
            Cell::Csv(_) => None,
        }
    }

    /// Runs the report: every row that passes `filter`, in the report's order.
    pub fn evaluate(&self, users: &[User], filter: Option<&Filter>, as_of: NaiveDate) -> Evaluated {
        let candidates: Vec<u32> = match &self.source {
            Source::Csv { rows } => (0..rows.len() as u32).collect(),
            Source::Users {
                population,
                join_duplicates,
                sort_by_group,
            } => {
                let mut rows: Vec<u32> = Vec::new();
                for (i, u) in users.iter().enumerate() {
                    let include = match population {
                        Population::All => true,
                        Population::Active => u.active,
                        Population::ActiveInternal => u.active && u.account_type == AccountType::Internal,
                        Population::WithExpiryDate => u.expiry_date.is_some(),
                        Population::Nobody => false,
                        Population::FirstUser => i == 0,
                    };
                    if include {
                        rows.push(i as u32);
                        if *join_duplicates && u.duplicated_in_joins {
                            rows.push(i as u32);
                        }
                    }
                }
                if *sort_by_group {
                    rows.sort_by(|a, b| {
                        let (ua, ub) = (&users[*a as usize], &users[*b as usize]);
                        (&ua.user_group, &ua.primary_id).cmp(&(&ub.user_group, &ub.primary_id))
                    });
                }
                rows
            }
        };
        let rows = match filter {
            None => candidates,
            Some(f) => candidates
                .into_iter()
                .filter(|r| f.matches(&|col| self.cell(users, *r, col, as_of)))
                .collect(),
        };
        Evaluated { rows }
    }

    /// Loads a user's CSV export as a report: the header row gives the headings, every column is
    /// text and prompted, empty cells are nulls.
    pub fn from_csv(report_path: &str, file: &Path) -> Result<Self, String> {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(file)
            .map_err(|e| format!("{}: {e}", file.display()))?;
        let headers = reader
            .headers()
            .map_err(|e| format!("{}: {e}", file.display()))?
            .clone();
        if headers.is_empty() {
            return Err(format!("{}: no header row", file.display()));
        }
        let columns = headers
            .iter()
            .enumerate()
            .map(|(i, h)| ColumnDef {
                heading: h.to_string(),
                table_heading: "CSV".to_string(),
                formula: format!("\"CSV\".\"{}\"", h.trim()),
                col_type: ColType::Varchar,
                prompted: true,
                cell: Cell::Csv(i),
            })
            .collect();
        let mut rows = Vec::new();
        for (n, record) in reader.records().enumerate() {
            let record = record.map_err(|e| format!("{}: record {}: {e}", file.display(), n + 1))?;
            rows.push(record.iter().map(|c| (!c.is_empty()).then(|| c.to_string())).collect());
        }
        Ok(Self {
            path: report_path.to_string(),
            columns,
            source: Source::Csv { rows },
        })
    }
}

/// The saved reports every simulated institution has.
pub fn builtin_reports() -> Vec<SavedReport> {
    use Cell::*;
    use ColType::*;
    let users = |population, join_duplicates, sort_by_group| Source::Users {
        population,
        join_duplicates,
        sort_by_group,
    };
    vec![
        SavedReport {
            path: format!("{REPORTS_FOLDER}/All users"),
            columns: vec![
                ColumnDef::user("Primary Identifier", PrimaryId, Varchar, false),
                ColumnDef::user("First Name", FirstName, Varchar, false),
                ColumnDef::user("Last Name", LastName, Varchar, false),
                ColumnDef::user("User Group", UserGroup, Varchar, true),
                ColumnDef::user("Account Type", AccountType, Varchar, true),
                ColumnDef::user("Status", Status, Varchar, true),
                ColumnDef::user("Preferred Email", Email, Varchar, false),
                ColumnDef::user("Expiry Date", ExpiryDate, Date, true),
                ColumnDef {
                    heading: " TIMESTAMPDIFF(SQL_TSI_DAY, CURRENT_DATE, \"User Details\".\"Expiry Date\")".to_string(),
                    table_heading: String::new(),
                    formula: "TIMESTAMPDIFF(SQL_TSI_DAY, CURRENT_DATE, \"User Details\".\"Expiry Date\")".to_string(),
                    col_type: Double,
                    prompted: false,
                    cell: DaysUntilExpiry,
                },
            ],
            source: users(Population::All, false, false),
        },
        SavedReport {
            path: format!("{REPORTS_FOLDER}/Active internal users"),
            columns: vec![
                ColumnDef::user("Primary Identifier", PrimaryId, Varchar, false),
                ColumnDef::user("User Group", UserGroup, Varchar, true),
                ColumnDef::user("Account Type", AccountType, Varchar, true),
                ColumnDef::user("Status", Status, Varchar, true),
                ColumnDef::user("Preferred Email", Email, Varchar, false),
            ],
            source: users(Population::ActiveInternal, false, false),
        },
        SavedReport {
            path: format!("{REPORTS_FOLDER}/Active users by group"),
            columns: vec![
                ColumnDef::user("User Group", UserGroup, Varchar, true),
                ColumnDef::user("Primary Identifier", PrimaryId, Varchar, false),
                ColumnDef::user("Account Type", AccountType, Varchar, true),
                ColumnDef::user("Last Name", LastName, Varchar, false),
            ],
            source: users(Population::Active, true, true),
        },
        SavedReport {
            path: format!("{REPORTS_FOLDER}/Users expiring in a date range"),
            columns: vec![
                ColumnDef::user("Primary Identifier", PrimaryId, Varchar, false),
                ColumnDef::user("Expiry Date", ExpiryDate, Date, true),
                ColumnDef::user("User Group", UserGroup, Varchar, true),
                ColumnDef::user("Account Type", AccountType, Varchar, true),
                ColumnDef::user("Status", Status, Varchar, true),
            ],
            source: users(Population::WithExpiryDate, false, false),
        },
        SavedReport {
            path: format!("{FIXTURES_FOLDER}/Empty"),
            columns: vec![ColumnDef::user("Primary Identifier", PrimaryId, Varchar, false)],
            source: users(Population::Nobody, false, false),
        },
        SavedReport {
            path: format!("{FIXTURES_FOLDER}/One row"),
            columns: vec![
                ColumnDef::user("Primary Identifier", PrimaryId, Varchar, false),
                ColumnDef::user("Last Name", LastName, Varchar, false),
            ],
            source: users(Population::FirstUser, false, false),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::institution::users;

    #[test]
    fn populations_select_the_right_users() {
        let us = users(2000, 3, NaiveDate::from_ymd_opt(2026, 1, 5).unwrap());
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let reports = builtin_reports();
        let all = reports[0].evaluate(&us, None, as_of);
        assert_eq!(all.rows.len(), us.len());
        let internal = reports[1].evaluate(&us, None, as_of);
        assert_eq!(
            internal.rows.len(),
            us.iter()
                .filter(|u| u.active && u.account_type == AccountType::Internal)
                .count()
        );
        let by_group = reports[2].evaluate(&us, None, as_of);
        let active = us.iter().filter(|u| u.active).count();
        assert!(by_group.rows.len() > active, "join duplicates appear");
        assert!(reports[4].evaluate(&us, None, as_of).rows.is_empty());
        assert_eq!(reports[5].evaluate(&us, None, as_of).rows, vec![0]);
    }

    #[test]
    fn null_cells_are_none() {
        let us = users(2000, 3, NaiveDate::from_ymd_opt(2026, 1, 5).unwrap());
        let as_of = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let r = &builtin_reports()[0];
        let missing = us.iter().position(|u| u.email.is_none()).unwrap() as u32;
        assert_eq!(r.cell(&us, missing, 6, as_of), None);
    }

    #[test]
    fn csv_reports_keep_text_and_nulls() {
        let dir = std::env::temp_dir().join(format!("sim-csv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("r.csv");
        std::fs::write(&file, "Primary Identifier,Group\n0012345,UGRAD\nAB1,\n").unwrap();
        let r = SavedReport::from_csv("/shared/x", &file).unwrap();
        assert_eq!(r.columns[0].heading, "Primary Identifier");
        assert_eq!(r.cell(&[], 0, 0, NaiveDate::MIN), Some("0012345".into()));
        assert_eq!(r.cell(&[], 1, 1, NaiveDate::MIN), None);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
