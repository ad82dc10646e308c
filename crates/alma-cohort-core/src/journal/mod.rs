//! The journal: a SQLite file in the state dir that records every run — the query's content hash,
//! params, period, every cohort ID, each step's start and end, the set id as soon as Alma returns
//! it, each batch of members, the job instance as soon as Alma returns it, the final status. It is
//! the source of truth for `resume`, `runs` and `show`. Each write is one transaction.

mod plans;
mod run_state;
mod seen;
mod store;

pub use plans::{Approval, SavedPlan};
pub use run_state::RunState;
pub use seen::{Checked, LeftOut, LetterSeen, Reason, Rules};
pub use store::*;
