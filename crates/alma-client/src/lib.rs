//! The Alma REST client — the only place that speaks HTTP to Alma. One [`AlmaClient`] per
//! institution; its methods are spread over the files here by API area.

pub mod analytics;
mod error;
pub mod http;
pub mod jobs;
mod list;
mod model;
pub mod rowset;
pub mod sets;
pub mod users;

pub use analytics::{PagingPolicy, Progress, Report, ReportQuery};
pub use error::{Call, Error, WriteFate};
pub use http::{AlmaClient, ClientConfig, RetryPolicy};
pub use jobs::{InstanceId, InstanceStatus, JobId, PollPolicy, Submitted};
pub use sets::{SetId, SetInfo};
