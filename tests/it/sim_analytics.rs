//! The simulator's Analytics API, checked with a plain HTTP client against alma-api.md §2.

use std::collections::HashSet;
use std::time::Duration;

use alma_sim::{Fault, FaultKind, Target};

use crate::support::*;

fn rows(page: &str) -> usize {
    count(page, "<Row>")
}

/// Primary ids of a page of "All users" (Column1), trimmed.
fn ids(page: &str) -> Vec<String> {
    page.split("<Row>")
        .skip(1)
        .map(|r| between(r, "<Column1>", "</Column1>").expect("an id").trim().to_string())
        .collect()
}

#[tokio::test]
async fn pages_carry_token_and_schema_on_the_first_only_and_420033_after_the_end() {
    let sim = sim(config(60)).await;
    let first = sim.report(ALL_USERS, 25, "").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("content-type"), Some("application/xml;charset=UTF-8"));
    let token = between(&first.text, "<ResumptionToken>", "</ResumptionToken>")
        .unwrap()
        .to_string();
    assert_eq!(token.len(), 128);
    assert!(token.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_lowercase()));
    assert!(first.text.contains("<xsd:schema"));
    assert!(first.text.contains("<IsFinished>false</IsFinished>"));
    assert_eq!(rows(&first.text), 25);

    let second = sim.get(&format!("analytics/reports?token={token}")).await;
    assert!(!second.text.contains("ResumptionToken") && !second.text.contains("xsd:schema"));
    assert!(second.text.contains("<IsFinished>false</IsFinished>"));
    assert_eq!(rows(&second.text), 25);

    // The same token again, with path and limit too, as some clients send it.
    let third = sim
        .get(&format!(
            "analytics/reports?path={}&limit=25&token={token}",
            enc(ALL_USERS)
        ))
        .await;
    assert!(third.text.contains("<IsFinished>true</IsFinished>"));
    assert_eq!(rows(&third.text), 10);

    let mut all: Vec<String> = [&first.text, &second.text, &third.text]
        .iter()
        .flat_map(|p| ids(p))
        .collect();
    let expected: HashSet<String> = sim
        .handle
        .users()
        .into_iter()
        .map(|u| u.primary_id.to_lowercase())
        .collect();
    all.iter_mut().for_each(|id| *id = id.to_lowercase());
    assert_eq!(
        all.iter().cloned().collect::<HashSet<_>>(),
        expected,
        "every user exactly once"
    );
    assert_eq!(all.len(), 60);

    let after = sim.get(&format!("analytics/reports?token={token}")).await;
    assert_eq!(after.status, 500);
    assert_eq!(after.error_code(), "420033");
    assert!(after.text.contains("No more rows to fetch"));
    assert!(after.text.contains("<trackingId>E0"));
}

#[tokio::test]
async fn limits_are_served_in_blocks_of_25_up_to_1000() {
    let sim = sim(config(1200)).await;
    assert_eq!(rows(&sim.report(ALL_USERS, 30, "").await.text), 50);
    assert_eq!(rows(&sim.report(ALL_USERS, 5000, "").await.text), 1000);
    let default = sim.get(&format!("analytics/reports?path={}", enc(ALL_USERS))).await;
    assert_eq!(rows(&default.text), 25);
    // The first call's limit holds for the whole paging session.
    let pages = sim.all_pages(ALL_USERS, 1000).await;
    assert_eq!(pages.iter().map(|p| rows(p)).collect::<Vec<_>>(), [1000, 200]);
}

#[tokio::test]
async fn column0_is_a_dummy_nulls_are_omitted_and_formula_headings_keep_their_space() {
    let sim = sim(config(3000)).await;
    let pages = sim.all_pages(ALL_USERS, 1000).await;
    let page = &pages[0];
    assert!(page.contains(r#"saw-sql:columnHeading=" TIMESTAMPDIFF(SQL_TSI_DAY"#));
    assert!(page.contains(r#"name="Column0" type="xsd:int" minOccurs="1""#));
    let row_bodies: Vec<&str> = page.split("<Row>").skip(1).collect();
    assert!(row_bodies.iter().all(|r| r.contains("<Column0>0</Column0>")));
    assert!(
        row_bodies.iter().any(|r| !r.contains("<Column7>")),
        "a user without email has no Column7"
    );
    assert!(row_bodies.iter().all(|r| r.contains("<Column1>")));
    assert!(
        page.contains("O&apos;Brien")
            || page.contains("O'Brien")
            || page.contains("D'Angelo")
            || page.contains("D&apos;Angelo")
    );
    // Awkward renderings of ids exist in the data: surrounding spaces.
    assert!(pages.iter().any(|p| p.contains("<Column1> ")), "a padded id");
    // Without col_names the headings are left out.
    let bare = sim
        .get(&format!("analytics/reports?path={}&col_names=false", enc(ALL_USERS)))
        .await;
    assert!(bare.text.contains("<xsd:schema") && !bare.text.contains("columnHeading"));
}

#[tokio::test]
async fn zero_one_and_n_row_pages() {
    let sim = sim(config(50)).await;
    let empty = sim.report(EMPTY, 25, "").await;
    assert_eq!(rows(&empty.text), 0);
    assert!(empty.text.contains("<IsFinished>true</IsFinished>"));
    assert!(empty.text.contains("<xsd:schema"));
    assert!(
        !empty.text.contains("ResumptionToken"),
        "a one-page result may come without a token"
    );
    let one = sim.report(ONE_ROW, 25, "").await;
    assert_eq!(rows(&one.text), 1);
    assert!(one.text.contains("<IsFinished>true</IsFinished>"));
    let n = sim.report(ALL_USERS, 25, "").await;
    assert_eq!(rows(&n.text), 25);
}

#[tokio::test]
async fn json_is_the_anies_wrapper_around_a_utf16_declared_document() {
    let sim = sim(config(40)).await;
    let r = sim
        .get_json(&format!("analytics/reports?path={}&limit=25", enc(ALL_USERS)))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json;charset=UTF-8"));
    let v = r.json();
    let anies = v["anies"].as_array().expect("anies array");
    assert_eq!(anies.len(), 1);
    let doc = anies[0].as_str().unwrap();
    assert!(doc.starts_with(r#"<?xml version="1.0" encoding="UTF-16"?>"#));
    assert!(doc.contains("<QueryResult") && doc.contains("<ResumptionToken>"));
    assert_eq!(rows(doc), 25);
    // format=json works without an Accept header.
    let r = sim
        .get(&format!("analytics/reports?path={}&format=json", enc(ONE_ROW)))
        .await;
    assert!(r.json()["anies"].is_array());
    // JSON errors are JSON.
    let token = between(doc, "<ResumptionToken>", "</ResumptionToken>").unwrap();
    sim.get_json(&format!("analytics/reports?token={token}")).await;
    let after = sim.get_json(&format!("analytics/reports?token={token}")).await;
    assert_eq!(after.status, 500);
    assert!(after.json()["errorList"]["error"].is_array());
    assert_eq!(after.error_code(), "420033");
}

fn filter(body: &str) -> String {
    let ns = r#"xmlns:saw="com.siebel.analytics.web/report/v1.1" xmlns:sawx="com.siebel.analytics.web/expression/v1.1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsd="http://www.w3.org/2001/XMLSchema""#;
    body.replacen("<sawx:expr ", &format!("<sawx:expr {ns} "), 1)
}

fn col(name: &str) -> String {
    format!(r#"<sawx:expr xsi:type="sawx:sqlExpression">"User Details"."{name}"</sawx:expr>"#)
}

fn s(v: &str) -> String {
    format!(r#"<sawx:expr xsi:type="xsd:string">{v}</sawx:expr>"#)
}

async fn filtered_ids(sim: &Sim, report: &str, f: &str) -> Result<usize, String> {
    let r = sim
        .get(&format!(
            "analytics/reports?path={}&limit=1000&filter={}",
            enc(report),
            enc(&filter(f))
        ))
        .await;
    if r.status != 200 {
        return Err(r.error_code());
    }
    let mut n = rows(&r.text);
    let mut text = r.text.clone();
    let token = between(&r.text, "<ResumptionToken>", "</ResumptionToken>").map(str::to_string);
    while !text.contains("<IsFinished>true</IsFinished>") {
        text = sim
            .get(&format!("analytics/reports?token={}", token.as_deref().unwrap()))
            .await
            .text;
        n += rows(&text);
    }
    Ok(n)
}

#[tokio::test]
async fn the_filter_parameter_understands_comparison_list_and_logical() {
    let sim = sim(config(2000)).await;
    let users = sim.handle.users();
    let count_where = |p: &dyn Fn(&alma_sim::UserSummary) -> bool| users.iter().filter(|u| p(u)).count();

    let equal = format!(
        r#"<sawx:expr xsi:type="sawx:comparison" op="equal">{}{}</sawx:expr>"#,
        col("User Group"),
        s("STAFF")
    );
    assert_eq!(
        filtered_ids(&sim, ALL_USERS, &equal).await,
        Ok(count_where(&|u| u.user_group == "STAFF"))
    );

    let not_equal = equal.replace(r#"op="equal""#, r#"op="notEqual""#);
    assert_eq!(
        filtered_ids(&sim, ALL_USERS, &not_equal).await,
        Ok(count_where(&|u| u.user_group != "STAFF"))
    );

    let within = format!(
        r#"<sawx:expr xsi:type="sawx:logical" op="and"><sawx:expr xsi:type="sawx:comparison" op="greaterOrEqual">{d}<sawx:expr xsi:type="xsd:date">2026-03-01</sawx:expr></sawx:expr><sawx:expr xsi:type="sawx:comparison" op="less">{d}<sawx:expr xsi:type="xsd:date">2026-09-01</sawx:expr></sawx:expr></sawx:expr>"#,
        d = col("Expiry Date")
    );
    let expected = count_where(&|u| {
        u.expiry_date
            .as_deref()
            .is_some_and(|d| ("2026-03-01".."2026-09-01").contains(&d))
    });
    assert!(expected > 0);
    assert_eq!(filtered_ids(&sim, EXPIRING, &within).await, Ok(expected));

    let greater = format!(
        r#"<sawx:expr xsi:type="sawx:comparison" op="greater">{}<sawx:expr xsi:type="xsd:date">2027-06-30</sawx:expr></sawx:expr>"#,
        col("Expiry Date")
    );
    assert_eq!(
        filtered_ids(&sim, EXPIRING, &greater).await,
        Ok(count_where(&|u| u
            .expiry_date
            .as_deref()
            .is_some_and(|d| d > "2027-06-30")))
    );
    let le = greater.replace(r#"op="greater""#, r#"op="lessOrEqual""#);
    assert_eq!(
        filtered_ids(&sim, EXPIRING, &le).await,
        Ok(count_where(&|u| u
            .expiry_date
            .as_deref()
            .is_some_and(|d| d <= "2027-06-30")))
    );

    let list_in = format!(
        r#"<sawx:expr xsi:type="sawx:list" op="in">{}{}{}</sawx:expr>"#,
        col("User Group"),
        s("UGRAD"),
        s("GRAD")
    );
    let either = format!(
        r#"<sawx:expr xsi:type="sawx:logical" op="and"><sawx:expr xsi:type="sawx:comparison" op="equal">{}{}</sawx:expr>{list_in}</sawx:expr>"#,
        col("Account Type"),
        s("Internal")
    );
    assert_eq!(
        filtered_ids(&sim, ALL_USERS, &either).await,
        Ok(count_where(
            &|u| u.internal && (u.user_group == "UGRAD" || u.user_group == "GRAD")
        ))
    );

    let like = format!(
        r#"<sawx:expr xsi:type="sawx:list" op="like">{}{}</sawx:expr>"#,
        col("User Group"),
        s("%GRAD")
    );
    let or = format!(
        r#"<sawx:expr xsi:type="sawx:logical" op="or">{like}<sawx:expr xsi:type="sawx:comparison" op="equal">{}{}</sawx:expr></sawx:expr>"#,
        col("Status"),
        s("Inactive")
    );
    assert_eq!(
        filtered_ids(&sim, ALL_USERS, &or).await,
        Ok(count_where(&|u| u.user_group.ends_with("GRAD") || !u.active))
    );

    let unprompted = format!(
        r#"<sawx:expr xsi:type="sawx:comparison" op="equal">{}{}</sawx:expr>"#,
        col("Primary Identifier"),
        s("x")
    );
    assert_eq!(
        filtered_ids(&sim, ALL_USERS, &unprompted).await,
        Err("SIM_FILTER_NOT_PROMPTED".into())
    );
    assert_eq!(
        filtered_ids(&sim, ALL_USERS, "<sawx:expr xsi:type=").await,
        Err("SIM_FILTER_INVALID".into())
    );
}

#[tokio::test]
async fn unknown_report_paths_are_refused() {
    let sim = sim(config(10)).await;
    let r = sim.report("/shared/Example University/Reports/Nope", 25, "").await;
    assert_eq!(r.status, 400);
    assert_eq!(r.error_code(), "INTERNAL_SERVER_ERROR");
    assert!(
        r.text
            .contains("Path not found (/shared/Example University/Reports/Nope)"),
        "{}",
        r.text
    );
    let r = sim.get("analytics/reports").await;
    assert_eq!(r.status, 400);
}

#[tokio::test]
async fn still_loading_first_pages_then_rows() {
    let sim = sim(config(30).still_loading(2)).await;
    let first = sim.report(ALL_USERS, 25, "").await;
    assert_eq!(rows(&first.text), 0);
    assert!(first.text.contains("<IsFinished>false</IsFinished>") && first.text.contains("<xsd:schema"));
    let token = between(&first.text, "<ResumptionToken>", "</ResumptionToken>")
        .unwrap()
        .to_string();
    let again = sim.get(&format!("analytics/reports?token={token}")).await;
    assert_eq!(rows(&again.text), 0);
    let data = sim.get(&format!("analytics/reports?token={token}")).await;
    assert_eq!(rows(&data.text), 25);
    let last = sim.get(&format!("analytics/reports?token={token}")).await;
    assert_eq!(rows(&last.text), 5);
    assert!(last.text.contains("<IsFinished>true</IsFinished>"));
}

#[tokio::test]
async fn premature_is_finished_truncates() {
    let sim = sim(config(100).premature_finish_after(2)).await;
    let pages = sim.all_pages(ALL_USERS, 25).await;
    assert_eq!(pages.len(), 2);
    assert_eq!(
        pages.iter().map(|p| rows(p)).sum::<usize>(),
        50,
        "the report has 100 rows, Alma said finished at 50"
    );
}

#[tokio::test]
async fn join_reports_repeat_rows() {
    let sim = sim(config(3000)).await;
    let pages = sim.all_pages(BY_GROUP, 1000).await;
    let ids: Vec<String> = pages
        .iter()
        .flat_map(|p| {
            p.split("<Row>")
                .skip(1)
                .map(|r| between(r, "<Column2>", "</Column2>").unwrap().trim().to_lowercase())
        })
        .collect();
    let distinct: HashSet<&String> = ids.iter().collect();
    assert!(distinct.len() < ids.len(), "some users appear twice");
    assert_eq!(distinct.len(), sim.handle.users().iter().filter(|u| u.active).count());
}

#[tokio::test]
async fn csv_reports_are_served_like_saved_ones() {
    let dir = std::env::temp_dir().join(format!("it-csv-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("mine.csv");
    let mut csv = String::from("Primary Identifier,User Group,Note\n");
    for i in 0..30 {
        csv.push_str(&format!("{i:07},UGRAD,{}\n", if i % 2 == 0 { "a & b" } else { "" }));
    }
    std::fs::write(&file, csv).unwrap();
    let sim = sim(config(10).csv_report("/shared/Mine/Cohort", &file)).await;
    let pages = sim.all_pages("/shared/Mine/Cohort", 25).await;
    assert_eq!(pages.iter().map(|p| rows(p)).sum::<usize>(), 30);
    assert!(pages[0].contains("<Column1>0000000</Column1>"));
    assert!(pages[0].contains("<Column3>a &amp; b</Column3>"));
    assert_eq!(count(&pages[0], "<Column3>"), 13, "empty CSV cells are nulls");
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn a_5xx_burst_loses_no_page() {
    let sim = sim(config(75).fault(
        Fault::new(FaultKind::ServerError, Target::AnalyticsNext)
            .skip(1)
            .count(2),
    ))
    .await;
    let first = sim.report(ALL_USERS, 25, "").await;
    let token = between(&first.text, "<ResumptionToken>", "</ResumptionToken>")
        .unwrap()
        .to_string();
    let page2 = sim.get(&format!("analytics/reports?token={token}")).await;
    assert_eq!(rows(&page2.text), 25);
    for _ in 0..2 {
        let r = sim.get_json(&format!("analytics/reports?token={token}")).await;
        assert_eq!(r.status, 503);
        assert_eq!(
            r.json()["web_service_result"]["errorList"]["error"]["errorCode"],
            "GENERAL_ERROR"
        );
    }
    let page3 = sim.get(&format!("analytics/reports?token={token}")).await;
    assert_eq!(rows(&page3.text), 25);
    assert!(page3.text.contains("<IsFinished>true</IsFinished>"));
    let all: HashSet<String> = [&first.text, &page2.text, &page3.text]
        .iter()
        .flat_map(|p| ids(p))
        .collect();
    assert_eq!(all.len(), 75);
}

#[tokio::test]
async fn a_dropped_connection_mid_page_and_a_slow_page_past_the_timeout() {
    let sim = sim(config(60)
        .fault(Fault::new(FaultKind::DropBefore, Target::AnalyticsNext))
        .fault(Fault::new(FaultKind::Slow(Duration::from_secs(5)), Target::AnalyticsNext).skip(1)))
    .await;
    let first = sim.report(ALL_USERS, 25, "").await;
    let token = between(&first.text, "<ResumptionToken>", "</ResumptionToken>")
        .unwrap()
        .to_string();
    let url = sim.url(&format!("analytics/reports?token={token}"));
    let dropped = async {
        let r = sim
            .http
            .get(&url)
            .header("Authorization", format!("apikey {KEY}"))
            .send()
            .await?;
        r.text().await
    }
    .await;
    assert!(dropped.is_err(), "the connection breaks: {dropped:?}");
    let timed_out = sim
        .http
        .get(&url)
        .header("Authorization", format!("apikey {KEY}"))
        .timeout(Duration::from_millis(200))
        .send()
        .await;
    assert!(timed_out.is_err_and(|e| e.is_timeout()));
    // Neither lost a page: the next call gets page 2.
    let page2 = sim.get(&format!("analytics/reports?token={token}")).await;
    assert_eq!(rows(&page2.text), 25);
    assert_eq!(ids(&page2.text)[0], ids(&sim.all_pages(ALL_USERS, 25).await[1])[0]);
}

#[tokio::test]
async fn page_shapes_match_the_golden_files() {
    let sim = sim(config(30).seed(1)).await;
    let pages = sim.all_pages(ALL_USERS, 25).await;
    golden("sim/analytics-first-page.xml", &pages[0]);
    golden("sim/analytics-last-page.xml", &pages[1]);
    let json = sim.get_json(&format!("analytics/reports?path={}", enc(ONE_ROW))).await;
    golden("sim/analytics-one-row.json", &json.text);
    let empty = sim.report(EMPTY, 25, "").await;
    golden("sim/analytics-empty.xml", &empty.text);
    let compact = crate::support::sim(config(30).seed(1).compact()).await;
    golden(
        "sim/analytics-one-row-compact.xml",
        &compact.report(ONE_ROW, 25, "").await.text,
    );
}
