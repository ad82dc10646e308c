//! The Alma REST client — the only place that speaks HTTP to Alma. One [`AlmaClient`] per
//! institution; its methods are spread over the files here by API area.

pub mod analytics;
mod error;
pub mod http;
pub mod rowset;

pub use analytics::{PagingPolicy, Progress, Report, ReportQuery};
pub use error::{Call, Error};
pub use http::{AlmaClient, ClientConfig, RetryPolicy};
