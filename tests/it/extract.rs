//! The Analytics client against the simulator: every row, in order, whatever Alma does on the way.

use std::time::Duration;

use alma_client::{AlmaClient, ClientConfig, Error, PagingPolicy, Report, ReportQuery, RetryPolicy};
use alma_sim::{Fault, FaultKind, SimConfig, Target};

use crate::support::*;

pub fn client(base_url: &str, key: &str) -> AlmaClient {
    let mut config = ClientConfig::new(base_url, key.to_string().into());
    config.pace_per_second = 10_000;
    config.retry = RetryPolicy::immediate(6);
    config.request_timeout = Duration::from_secs(20);
    AlmaClient::new(config).expect("client")
}

pub fn policy() -> PagingPolicy {
    PagingPolicy {
        max_empty_pages: 5,
        empty_page_waits: RetryPolicy::immediate(5),
        max_restarts: 3,
    }
}

pub async fn fetch(sim: &Sim, query: ReportQuery) -> Result<Report, Error> {
    client(&sim.handle.base_url(), KEY)
        .fetch_report(&query, &policy(), &mut |_| {})
        .await
}

fn column<'a>(report: &'a Report, heading: &str) -> Vec<Option<&'a str>> {
    let c = report
        .rowset
        .columns
        .iter()
        .find(|c| c.heading == heading)
        .unwrap_or_else(|| panic!("no {heading}"));
    c.cells.iter().collect()
}

/// Every user once, in the report's order, ids as Alma rendered them (trimmed, case-folded here).
fn assert_complete(sim: &Sim, report: &Report) {
    let expected: Vec<String> = sim
        .handle
        .users()
        .into_iter()
        .map(|u| u.primary_id.to_lowercase())
        .collect();
    let got: Vec<String> = column(report, "Primary Identifier")
        .into_iter()
        .map(|id| id.expect("an id").trim().to_lowercase())
        .collect();
    assert_eq!(got.len(), expected.len());
    assert!(got == expected, "rows complete and in order");
}

fn no_call_after_the_end(sim: &Sim) {
    let log = sim.handle.requests();
    assert!(
        log.iter().all(|r| r.status != Some(500)),
        "a call after IsFinished (420033)"
    );
}

#[tokio::test]
async fn reports_of_every_size_come_back_complete_and_in_order() {
    for n in [1usize, 999, 1000, 1001, 2600] {
        let sim = sim(config(n)).await;
        let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
        assert_complete(&sim, &report);
        assert_eq!(report.pages, n.div_ceil(1000).max(1), "{n} rows");
        assert_eq!(report.requests, report.pages);
        no_call_after_the_end(&sim);
    }
    let sim = sim(config(10)).await;
    let empty = fetch(&sim, ReportQuery::new(EMPTY)).await.unwrap();
    assert_eq!((empty.rows(), empty.headings()), (0, vec!["Primary Identifier"]));
    let one = fetch(&sim, ReportQuery::new(ONE_ROW)).await.unwrap();
    assert_eq!(one.rows(), 1, "a one-page report without a token");
    no_call_after_the_end(&sim);
}

#[tokio::test]
async fn a_hundred_thousand_rows() {
    let sim = sim(config(100_000)).await;
    let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
    assert_complete(&sim, &report);
    assert_eq!(report.pages, 100);
    no_call_after_the_end(&sim);
}

#[tokio::test]
async fn small_limits_round_to_blocks_of_25() {
    let sim = sim(config(130)).await;
    let report = fetch(
        &sim,
        ReportQuery {
            limit: 30,
            ..ReportQuery::new(ALL_USERS)
        },
    )
    .await
    .unwrap();
    assert_complete(&sim, &report);
    assert_eq!(report.pages, 3, "50 + 50 + 30");
    let first = &sim.handle.requests()[0];
    assert!(
        first.query.contains("limit=50") && first.query.contains("col_names=true"),
        "{}",
        first.query
    );
}

#[tokio::test]
async fn nulls_headings_and_a_filter() {
    let sim = sim(config(3000)).await;
    let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
    let headings = report.headings();
    assert!(
        headings.contains(&"TIMESTAMPDIFF(SQL_TSI_DAY, CURRENT_DATE, \"User Details\".\"Expiry Date\")"),
        "trimmed: {headings:?}"
    );
    let emails = column(&report, "Preferred Email");
    assert!(emails.iter().any(Option::is_none), "omitted cells are null");
    assert!(emails.iter().filter(|e| e.is_some()).count() > 2500);

    let filter = r#"<sawx:expr xsi:type="sawx:comparison" op="equal" xmlns:saw="com.siebel.analytics.web/report/v1.1" xmlns:sawx="com.siebel.analytics.web/expression/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema"><sawx:expr xsi:type="sawx:sqlExpression">"User Details"."User Group"</sawx:expr><sawx:expr xsi:type="xsd:string">STAFF</sawx:expr></sawx:expr>"#;
    let staff = fetch(
        &sim,
        ReportQuery {
            filter: Some(filter.into()),
            ..ReportQuery::new(ALL_USERS)
        },
    )
    .await
    .unwrap();
    let expected = sim.handle.users().iter().filter(|u| u.user_group == "STAFF").count();
    assert_eq!(staff.rows(), expected);
    assert!(column(&staff, "User Group").iter().all(|g| *g == Some("STAFF")));
}

#[tokio::test]
async fn still_loading_first_pages_are_waited_out() {
    let sim = sim(config(2600).still_loading(3)).await;
    let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
    assert_complete(&sim, &report);
    assert_eq!(report.requests, 3 + 3);
    let sim = crate::support::sim(config(100).still_loading(20)).await;
    let err = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap_err();
    assert!(err.to_string().contains("still no rows"), "{err}");
}

#[tokio::test]
async fn a_429_storm_slows_us_down_and_loses_nothing() {
    let sim = sim(config(2600).fault(
        Fault::new(FaultKind::TooManyRequests, Target::Analytics)
            .skip(1)
            .count(4),
    ))
    .await;
    let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
    assert_complete(&sim, &report);
    assert_eq!(
        sim.handle.requests().iter().filter(|r| r.status == Some(429)).count(),
        4
    );
    no_call_after_the_end(&sim);
}

#[tokio::test]
async fn a_5xx_burst_on_page_3() {
    let sim = sim(config(4000).fault(
        Fault::new(FaultKind::ServerError, Target::AnalyticsNext)
            .skip(1)
            .count(3),
    ))
    .await;
    let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
    assert_complete(&sim, &report);
    assert_eq!(report.restarts, 0, "a 5xx answer is retried with the same token");
    assert_eq!(report.requests, 4 + 3);
}

#[tokio::test]
async fn a_connection_dropped_mid_page_after_alma_served_it() {
    // Page 3's answer is cut off after the simulator advanced its cursor: asking again by token
    // would skip the page, so the client reads the report again from page 1.
    let sim = sim(config(4000).fault(Fault::new(FaultKind::DropAfter, Target::AnalyticsNext).skip(1))).await;
    let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
    assert_complete(&sim, &report);
    assert_eq!(report.restarts, 1);
    no_call_after_the_end(&sim);

    let sim = crate::support::sim(
        config(4000).fault(
            Fault::new(FaultKind::DropBefore, Target::AnalyticsNext)
                .skip(2)
                .count(2),
        ),
    )
    .await;
    let report = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap();
    assert_complete(&sim, &report);

    let sim =
        crate::support::sim(config(4000).fault(Fault::new(FaultKind::DropAfter, Target::AnalyticsNext).count(100)))
            .await;
    let err = fetch(&sim, ReportQuery::new(ALL_USERS)).await.unwrap_err();
    assert!(err.to_string().contains("lost in transit 4 times"), "{err}");
}

#[tokio::test]
async fn a_page_slower_than_the_timeout() {
    let sim =
        sim(config(3000).fault(Fault::new(FaultKind::Slow(Duration::from_secs(30)), Target::AnalyticsNext).skip(1)))
            .await;
    let mut config = ClientConfig::new(sim.handle.base_url(), KEY.to_string().into());
    config.pace_per_second = 10_000;
    config.retry = RetryPolicy::immediate(3);
    config.request_timeout = Duration::from_millis(500);
    let client = AlmaClient::new(config).unwrap();
    let report = client
        .fetch_report(&ReportQuery::new(ALL_USERS), &policy(), &mut |_| {})
        .await
        .unwrap();
    assert_complete(&sim, &report);
    assert_eq!(report.restarts, 1);
}

#[tokio::test]
async fn refusals_are_typed_errors_with_status_and_code() {
    let sim = sim(config(50)).await;
    let err = fetch(&sim, ReportQuery::new("/shared/Example University/Reports/Nope"))
        .await
        .unwrap_err();
    assert_eq!(err.alma_code(), Some((400, "INTERNAL_SERVER_ERROR")));
    let err = client(&sim.handle.base_url(), "wrong")
        .fetch_report(&ReportQuery::new(ALL_USERS), &policy(), &mut |_| {})
        .await
        .unwrap_err();
    assert_eq!(err.alma_code(), Some((400, "UNAUTHORIZED")));
    assert!(err.to_string().contains("API-key not defined"), "{err}");

    let quota = crate::support::sim(config(3000).daily_quota(2)).await;
    let err = fetch(&quota, ReportQuery::new(ALL_USERS)).await.unwrap_err();
    assert!(matches!(err, Error::DailyThreshold { .. }), "{err}");
    assert!(err.to_string().contains("DAILY_THRESHOLD") && err.to_string().contains("hint:"));
}

#[tokio::test]
async fn our_pace_stays_under_the_threshold() {
    // The simulator allows 25 requests/s; a 25/s pace pages 30 pages without a single 429.
    let sim = sim(SimConfig::default().users(750).seed(7).manual_clock().rate_limit(25)).await;
    let mut config = ClientConfig::new(sim.handle.base_url(), KEY.to_string().into());
    config.retry = RetryPolicy::immediate(0);
    let client = AlmaClient::new(config).unwrap();
    let report = client
        .fetch_report(
            &ReportQuery {
                limit: 25,
                ..ReportQuery::new(ALL_USERS)
            },
            &policy(),
            &mut |_| {},
        )
        .await
        .unwrap();
    assert_eq!(report.rows(), 750);
    assert!(sim.handle.requests().iter().all(|r| r.status == Some(200)));
}
