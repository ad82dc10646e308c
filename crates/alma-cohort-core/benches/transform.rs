//! Transform of 1 000 000 report rows into a cohort: `where` over typed columns, ID
//! normalization with padding, INTERNAL only, an exclusion list, case-insensitive dedupe, counts —
//! without and with the email guard (`[guard] email_column`), alternating, in one run.
//!
//! First, the report's column buffers into a DataFrame alone.
//!
//! Run: `cargo bench -p alma-cohort-core --bench transform` (release profile).

use std::time::Instant;

use alma_client::Report;
use alma_client::rowset::{Column, ColumnBuffer, ColumnKind, Rowset};
use alma_cohort_core::query::{Case, Normalize};
use alma_cohort_core::transform::{CohortRules, build_cohort};

fn column(n: usize, heading: &str, kind: ColumnKind, cells: ColumnBuffer) -> Column {
    Column {
        name: format!("Column{n}"),
        heading: heading.into(),
        kind,
        cells,
    }
}

fn report(rows: usize) -> Report {
    let groups = ["UGRAD", "GRAD", "FACULTY", "STAFF", "ALUMNI", "VISITOR"];
    let (mut id, mut group, mut account, mut expiry, mut email) = (
        ColumnBuffer::default(),
        ColumnBuffer::default(),
        ColumnBuffer::default(),
        ColumnBuffer::default(),
        ColumnBuffer::default(),
    );
    for i in 0..rows {
        match i % 50 {
            0 => id.push(&format!(" {} ", i % 900_000)),
            1 => id.push(&format!("'{:07}", i % 900_000)),
            _ => id.push(&format!("{:07}", i % 900_000)),
        }
        group.push(groups[i % groups.len()]);
        account.push(if i % 5 == 0 { "External" } else { "Internal" });
        if i % 30 == 0 {
            expiry.push_null();
        } else {
            expiry.push(&format!("2026-{:02}-{:02}", 1 + i % 12, 1 + i % 28));
        }
        match i % 97 {
            0 => email.push_null(),
            1 => email.push(" "),
            2 => email.push("no address"),
            _ => email.push(&format!("user{i}@example.edu")),
        }
    }
    let columns = vec![
        column(1, "Primary Identifier", ColumnKind::Text, id),
        column(2, "User Group", ColumnKind::Text, group),
        column(3, "Account Type", ColumnKind::Text, account),
        column(4, "Expiry Date", ColumnKind::Date, expiry),
        column(5, "Preferred Email", ColumnKind::Text, email),
    ];
    Report {
        path: "/bench".into(),
        rowset: Rowset::from_columns(columns).expect("columns"),
        pages: 1000,
        requests: 1000,
        restarts: 0,
    }
}

fn main() {
    let rows = 1_000_000;
    let report = report(rows);
    let normalize = Normalize {
        trim: true,
        strip_apostrophe: true,
        pad_numeric_to: Some(7),
        case: Case::Preserve,
    };
    let exclusions: Vec<String> = (0..1000).map(|i| format!("{:07}", i * 7)).collect();
    let without = CohortRules {
        id_column: "Primary Identifier",
        where_sql: Some(r#""User Group" IN ('UGRAD', 'GRAD', 'STAFF') AND "Expiry Date" > '2026-03-15'"#),
        normalize: &normalize,
        account_type_column: Some("Account Type"),
        exclusions: &exclusions,
        email_column: None,
    };
    let with = CohortRules {
        email_column: Some("Preferred Email"),
        ..without
    };
    println!(
        "transform of {rows} rows x 5 columns (where over a date, pad 7, INTERNAL only, 1000 exclusions, dedupe), \
         without and with email_column, alternating"
    );
    for round in 1..=5 {
        let t = Instant::now();
        let table = alma_cohort_core::transform::report_to_table(&report).expect("a table");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(table.height(), rows);
        println!(
            "round {round} buffers -> DataFrame : {secs:.3} s = {:.0} rows/s",
            rows as f64 / secs
        );
    }
    for round in 1..=5 {
        for (name, rules) in [("without email guard", &without), ("with email guard", &with)] {
            let report = report.clone();
            let t = Instant::now();
            let cohort = build_cohort(report, rules).expect("a cohort");
            let secs = t.elapsed().as_secs_f64();
            println!(
                "round {round} {name:<20}: {secs:.3} s = {:.0} rows/s -> cohort of {} ({} without email)",
                rows as f64 / secs,
                cohort.ids.len(),
                cohort.no_email_ids.len()
            );
        }
    }
}
