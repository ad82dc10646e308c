//! Report → DataFrame → cohort, with polars. The only module that imports polars; pure functions,
//! no files or network (writers take any `Write`).

mod cohort;
mod table;

pub use cohort::{
    Breakdown, Cohort, CohortRules, DropReason, build_cohort, check_headings, is_address, protected_among,
    where_columns,
};
pub use table::*;
