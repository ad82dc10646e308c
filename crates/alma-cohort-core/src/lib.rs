//! The library behind the `alma-cohort` binary: everything a run is, without the command line.
//!
//! A run is extract → transform → load → follow. [`query`] reads a query file (the report or
//! list file, the `where`, the guards, the job); [`pipeline`] plans the cohort — the Analytics
//! report read through [`alma_client`], or a list file read by [`listfile`] — and [`transform`]
//! (the only user of polars) filters and normalizes it into IDs. [`pipeline::flow`] takes a run
//! from the lock and the journal's admission through the plan and the operator's confirmation to
//! Alma's set, members and job, and [`pipeline::execute`] follows it to its end. Every step is
//! written first to the [`journal`] (SQLite), and Alma is asked before any write whose outcome is
//! unknown, so that a crash or a re-run never makes a second set, job or letter. [`settings`]
//! turns the caller's options into a client configuration and a state dir; [`doctor`] checks an
//! installation. The caller (the binary) parses flags, confirms, and prints.

pub mod doctor;
pub mod error;
pub mod files;
pub mod journal;
pub mod listfile;
pub mod output;
pub mod pipeline;
pub mod query;
pub mod settings;
pub mod text;
pub mod transform;
