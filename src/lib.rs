//! alma-cohort resets the passwords of a *cohort* of Alma users defined by a saved Alma
//! Analytics report, and has Alma email each of them a temporary password.
//!
//! The pipeline is extract (Analytics API) → transform (polars) → load (itemized USER set,
//! Update/Notify Users job) → follow (the job instance to its end), every step journaled. This
//! crate holds the library behind the `alma-cohort` binary; [`sim`] is the local Alma that the
//! tests, `demo` and rehearsals run against.

pub mod alma;
pub mod app;
pub mod cli;
pub mod demo;
pub mod doctor;
pub mod error;
pub mod files;
pub mod journal;
pub mod listfile;
pub mod output;
pub mod pipeline;
pub mod query;
pub mod settings;
pub mod sim;
pub mod text;
pub mod transform;
