//! `alma-cohort extract QUERY --out FILE`: the report (or list file) as CSV or Parquet, with no
//! filter and no write to Alma.

use alma_client::AlmaClient;
use alma_cohort_core::error::{Error, Exit};
use alma_cohort_core::output::Output;
use alma_cohort_core::pipeline::{self, flow};
use alma_cohort_core::settings::Settings;
use alma_cohort_core::transform;

use super::terminal::{progress_bar, show_page};
use crate::cli::ExtractArgs;

pub async fn extract(settings: Settings, args: ExtractArgs, quiet: bool) -> Result<Exit, Error> {
    let spec = flow::load_query(&args.query.query, &args.query.params)?;
    let output = Output::parse(&args.out)?;
    let client = match spec.report() {
        Some(_) => Some(AlmaClient::new(settings.client_config()?)?),
        None => None,
    };
    let bar = progress_bar(quiet);
    let started = std::time::Instant::now();
    let fetched = pipeline::extract(client.as_ref(), &spec, &settings.paging_policy(), &mut |p| {
        show_page(&bar, p)
    })
    .await;
    bar.finish_and_clear();
    let report = fetched?.report;
    let (rows, pages, requests, restarts) = (report.rows(), report.pages, report.requests, report.restarts);
    let mut table = transform::report_into_table(report)?;
    let target = output.write(&mut table)?;
    if !quiet {
        let secs = started.elapsed().as_secs_f64();
        eprintln!(
            "extracted {rows} rows × {} columns ({:.1} MB in memory) from {pages} pages in {secs:.1} s ({:.0} rows/s, {requests} requests{}) → {target}",
            table.width(),
            table.memory_bytes() as f64 / 1e6,
            rows as f64 / secs.max(1e-3),
            if restarts > 0 {
                format!(", {restarts} restarts")
            } else {
                String::new()
            },
        );
    }
    Ok(Exit::Done)
}
