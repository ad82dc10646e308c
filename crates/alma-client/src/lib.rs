//! A client for Ex Libris Alma's REST APIs — the only code of alma-cohort that speaks HTTP to
//! Alma. One [`AlmaClient`] per institution ([`ClientConfig`]: base URL, API key, timeout, pace,
//! retries): it paces its calls under Alma's per-second threshold, retries what may succeed
//! later, and tells a write whose answer was lost ([`WriteFate`]) from one Alma refused.
//!
//! Its methods are spread over the files by API area: [`analytics`] reads a saved report to its
//! end, page by page ([`rowset`] parses the pages, whatever the namespace and layout); [`sets`]
//! creates an itemized set and adds or deletes members in batches; [`jobs`] finds a job, runs it
//! and follows its instance ([`PollPolicy`]); [`users`] looks a user up. Alma's answers are read
//! as leniently as real institutions' recorded shapes require, and no more; every error names the
//! call, the HTTP status and Alma's error code ([`Error`]). No polars, SQLite, axum or clap here.

pub mod analytics;
mod error;
pub mod http;
pub mod jobs;
pub mod letters;
mod list;
mod model;
pub mod probe;
pub mod rowset;
pub mod sets;
pub mod users;

pub use analytics::{PagingPolicy, Progress, Report, ReportQuery};
pub use error::{Call, Error, WriteFate};
pub use http::{AlmaClient, ClientConfig, RetryPolicy};
pub use jobs::{InstanceId, InstanceStatus, JobId, PollPolicy, Submitted};
pub use letters::Letter;
pub use sets::{SetId, SetInfo};
pub use users::UserInfo;
