//! Answer shapes that real Alma institutions have recorded (see `fixtures/README.md`), sent by the
//! simulator with a quirk on, read by the real binary.

use alma_sim::{Fault, FaultKind, Quirk, Target};

use crate::cli::{alma_cohort, query_file, temp_dir};
use crate::execute::{all_users_query, assert_done_once, execute_run, last_json, sim_config};
use crate::support::*;

/// How many calls of one kind the simulator saw.
fn calls(sim: &Sim, target: Target) -> usize {
    sim.handle.requests().iter().filter(|r| r.target == target).count()
}

/// `extract` of the report at `report_path` from `base` to a CSV with `key`: the exit code,
/// stderr, and the rows written (None: no output file).
async fn extract(base: &str, report_path: &str, tag: &str, key: &str) -> (i32, String, Option<usize>) {
    let dir = temp_dir(tag);
    let q = query_file(&dir, report_path, "");
    let out = dir.join("rows.csv");
    let args = [
        "--base-url",
        base,
        "extract",
        q.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ];
    let r = alma_cohort(&args, Some(key)).await;
    let rows = std::fs::read_to_string(&out)
        .ok()
        .map(|t| t.lines().count().saturating_sub(1));
    (r.code, r.stderr, rows)
}

/// `extract` of "All users" from the simulator: the exit code, stderr, and the rows written.
async fn extract_all(sim: &Sim, tag: &str) -> (i32, String, usize) {
    let (code, stderr, rows) = extract(&sim.handle.base_url(), ALL_USERS, tag, KEY).await;
    (code, stderr, rows.unwrap_or(0))
}

/// "Still loading" as `<ResultXml/>`: as the first answers (with the token) and between the
/// first and the second page of the report — waited out, every row read.
#[tokio::test]
async fn still_loading_as_an_empty_result_xml_first_and_between_pages() {
    let sim = sim(sim_config()
        .users(2600)
        .still_loading(2)
        .quirk(Quirk::ResultXmlStillLoading))
    .await;
    let (code, stderr, rows) = extract_all(&sim, "result-xml").await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows, 2600);
    assert!(stderr.contains("report still loading"), "{stderr}");
}

/// The rowset in no namespace (October 2019): read, with one warning naming the precedent.
#[tokio::test]
async fn a_rowset_in_no_namespace_is_read_with_one_warning() {
    let sim = sim(sim_config().users(2600).quirk(Quirk::RowsetNoNamespace)).await;
    let (code, stderr, rows) = extract_all(&sim, "no-ns").await;
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(rows, 2600);
    assert_eq!(stderr.matches("in no XML namespace").count(), 1, "{stderr}");
    assert!(stderr.contains("October 2019"), "{stderr}");
}

/// The key test endpoints answer with a body nobody documented (here plain text): any 2xx is "yes".
#[tokio::test]
async fn doctor_takes_any_2xx_from_the_key_test_endpoints() {
    let sim = sim(sim_config().users(20).quirk(Quirk::TestEndpointsText)).await;
    let dir = temp_dir("doctor-text");
    let base = sim.handle.base_url();
    let state = dir.join("state");
    let r = alma_cohort(
        &["--base-url", &base, "--state-dir", state.to_str().unwrap(), "doctor"],
        Some(KEY),
    )
    .await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    for line in [
        "ok   key may read Analytics: yes",
        "ok   key may write Configuration: yes",
        "ok   key may read Users: yes",
    ] {
        assert!(r.stdout.contains(line), "{line}: {}", r.stdout);
    }
}

/// Each key test endpoint tests its own area: a key for Analytics only reads Analytics and
/// nothing else; a key without Users is told so.
#[tokio::test]
async fn doctor_reports_what_each_key_may_do() {
    let sim = sim(sim_config()
        .users(20)
        .key("no-users=analytics:r,conf:rw".parse().unwrap()))
    .await;
    let dir = temp_dir("doctor-areas");
    let base = sim.handle.base_url();
    let state = dir.join("state");
    for (key, yes, no) in [
        (
            "sim-analytics-ro",
            &["key may read Analytics"][..],
            &["key may read Configuration", "key may read Users"][..],
        ),
        (
            "no-users",
            &["key may read Analytics", "key may write Configuration"][..],
            &["key may read Users"][..],
        ),
    ] {
        let r = alma_cohort(
            &["--base-url", &base, "--state-dir", state.to_str().unwrap(), "doctor"],
            Some(key),
        )
        .await;
        assert_eq!(r.code, 3, "{key}: {}{}", r.stdout, r.stderr);
        for line in yes {
            assert!(
                r.stdout.contains(&format!("ok   {line}: yes")),
                "{key} {line}: {}",
                r.stdout
            );
        }
        for line in no {
            assert!(r.stdout.contains(&format!("FAIL {line}")), "{key} {line}: {}", r.stdout);
        }
    }
}

/// The recorded job and set shapes all at once: a job list of 439 with ids from `M3` to 16
/// digits and pages of 400 whatever the limit (the job found on the second page), `op=run`
/// answered in XML with a relative link (the instance read from it, no lookup), instances with
/// progress 101.3, a counter whose type is a sentence with an empty desc, `submitted_by` without
/// desc, sets with `private` and `number_of_members` as plain strings, totals as strings — one
/// set, one job, one letter each.
#[tokio::test]
async fn a_run_reads_every_recorded_job_and_set_shape() {
    let sim = sim(sim_config()
        .quirk(Quirk::JobListLong)
        .quirk(Quirk::RunAnswerXml)
        .quirk(Quirk::RelativeLinks)
        .quirk(Quirk::InstanceRecordedShapes)
        .quirk(Quirk::SetPlainValues)
        .quirk(Quirk::TotalRecordCountString))
    .await;
    let dir = temp_dir("recorded-jobs");
    let q = all_users_query(&dir, 5000);
    let r = execute_run(&sim, &dir.join("state"), q.to_str().unwrap(), &["--json"]).await;
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_done_once(&sim);
    let instance = sim.handle.job_instances()[0].clone();
    let result = last_json(&r.stdout);
    assert_eq!(
        result["job_instance_id"].as_str(),
        Some(instance.id.as_str()),
        "from the XML link"
    );
    assert_eq!(
        calls(&sim, Target::JobInstances),
        4,
        "the cooldown's at the plan and right before the job, Alma's listing before the checks and right before the submission (Alma as the ledger), no lookup after"
    );
    // Looked up twice: before anything is written (the plan) and for the submission.
    assert_eq!(calls(&sim, Target::JobList), 2 * 2, "the 439 jobs in pages of 400");
    assert!(
        result["job_id"].as_str().is_some_and(|id| id.len() == 17),
        "the job's 16-digit id: {result}"
    );
    let counters = result["counters"].to_string();
    assert!(counters.contains("Letters were queued for the users."), "{counters}");
    assert_eq!(result["job_status"].as_str(), Some("COMPLETED_SUCCESS"));
}

/// Errors in the recorded shapes: a 429 PER_SECOND_THRESHOLD with no trackingId and a space after
/// the message is waited out; an unknown key's gateway error (XML, `encoding="utf-8"`, CRLF,
/// deep indentation, no trackingId) is named with its code and trimmed message; a wrong report
/// path (400 `INTERNAL_SERVER_ERROR`, the code not a number) names the path.
#[tokio::test]
async fn errors_in_the_recorded_shapes_are_read() {
    let sim = sim(sim_config()
        .quirk(Quirk::ErrorsRecordedShapes)
        .fault(Fault::new(FaultKind::TooManyRequests, Target::JobRun).count(2)))
    .await;
    let dir = temp_dir("recorded-errors");
    let q = all_users_query(&dir, 5000);
    let r = execute_run(&sim, &dir.join("state"), q.to_str().unwrap(), &[]).await;
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_done_once(&sim);
    assert_eq!(calls(&sim, Target::JobRun), 3, "two 429s, then the run");

    let base = sim.handle.base_url();
    let (code, stderr, rows) = extract(&base, ALL_USERS, "recorded-errors-key", "no-such-key").await;
    assert_ne!(code, 0, "{stderr}");
    assert!(
        stderr.contains(" UNAUTHORIZED: API-key not defined or not configured to allow this API.\n"),
        "{stderr}"
    );
    assert!(!stderr.contains("trackingId"), "{stderr}");
    assert_eq!(rows, None, "no output file");

    let missing = "/shared/Example University/Reports/No such report";
    let (code, stderr, rows) = extract(&base, missing, "recorded-errors-path", KEY).await;
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("No such report"), "{stderr}");
    assert!(stderr.contains("check the report's path"), "{stderr}");
    assert_eq!(rows, None, "no output file");
}

/// A schema without headings (as if read without col_names): the columns are `ColumnN`, one
/// warning says so, and a plan naming headings is refused with the hint to use headings.
#[tokio::test]
async fn a_schema_without_headings_is_named_and_refused_with_a_hint() {
    let sim = sim(sim_config().quirk(Quirk::SchemaWithoutHeadings)).await;
    let dir = temp_dir("no-headings");
    let q = query_file(&dir, ALL_USERS, "");
    let base = sim.handle.base_url();
    let state = dir.join("state");
    let args = [
        "--base-url",
        &base,
        "--state-dir",
        state.to_str().unwrap(),
        "plan",
        q.to_str().unwrap(),
    ];
    let r = alma_cohort(&args, Some(KEY)).await;
    assert_eq!(r.code, 2, "{}", r.stderr);
    let stderr = &r.stderr;
    assert_eq!(
        stderr.matches("schema has no headings").count(),
        2,
        "the warning and the hint: {stderr}"
    );
    assert!(
        stderr.contains("\"Primary Identifier\", which is not in the report"),
        "{stderr}"
    );
    assert!(stderr.contains("\"Column1\""), "{stderr}");
    assert_eq!(calls(&sim, Target::SetCreate), 0);
}

/// Every quirk is accepted by name on the command line (and a wrong name is refused, listing them).
#[tokio::test]
async fn every_quirk_parses_on_the_command_line() {
    let bogus = alma_cohort(&["sim", "--quirk", "no-such-quirk"], None).await;
    assert_eq!(bogus.code, 2, "{}", bogus.stderr);
    for &q in Quirk::all() {
        assert!(bogus.stderr.contains(q.name()), "{} listed: {}", q.name(), bogus.stderr);
    }
}

/// Serves a recorded-shape sequence of report pages in order, byte for byte, then Alma's 420033
/// "no more rows" (HTTP 500) for any further call, as a real Alma does.
async fn replay(sequence: &str) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::http::{StatusCode, header};
    use axum::response::IntoResponse;

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/analytics/sequences");
    let mut pages = Vec::new();
    for n in 1.. {
        match std::fs::read(dir.join(sequence).join(format!("page-{n}.xml"))) {
            Ok(bytes) => pages.push(bytes),
            Err(_) => break,
        }
    }
    assert!(!pages.is_empty(), "no pages in {sequence}");
    let no_more_rows = std::fs::read(dir.join("no-more-rows-420033.xml")).unwrap();
    let served = Arc::new(AtomicUsize::new(0));
    let count = served.clone();
    let pages = Arc::new(pages);
    let app = axum::Router::new().route(
        "/almaws/v1/analytics/reports",
        axum::routing::get(move || {
            let (pages, count, no_more_rows) = (pages.clone(), count.clone(), no_more_rows.clone());
            async move {
                let i = count.fetch_add(1, Ordering::SeqCst);
                let xml = [(header::CONTENT_TYPE, "application/xml;charset=UTF-8")];
                match pages.get(i) {
                    Some(page) => (StatusCode::OK, xml, page.clone()).into_response(),
                    None => (StatusCode::INTERNAL_SERVER_ERROR, xml, no_more_rows).into_response(),
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), served)
}

/// `extract` of a replayed sequence: exit code, stderr, rows written (None: no output file),
/// and the calls made.
async fn extract_replayed(sequence: &str) -> (i32, String, Option<usize>, usize) {
    let (base, served) = replay(sequence).await;
    let (code, stderr, rows) = extract(&base, "/shared/Example University/Reports/Replayed", sequence, KEY).await;
    (code, stderr, rows, served.load(std::sync::atomic::Ordering::SeqCst))
}

/// Page sequences in the recorded shapes, replayed: a token and the schema repeated on a later
/// page, a single page with both a token and IsFinished=true, "still loading" between two pages
/// — every row read, and never a call after IsFinished=true.
#[tokio::test]
async fn recorded_page_sequences_are_read_whole() {
    for (sequence, rows, calls) in [
        ("repeated-token-and-schema", 60, 3),
        ("token-and-finished-on-one-page", 7, 1),
        ("still-loading-between-pages", 53, 4),
    ] {
        let (code, stderr, written, served) = extract_replayed(sequence).await;
        assert_eq!(code, 0, "{sequence}: {stderr}");
        assert_eq!(written, Some(rows), "{sequence}");
        assert_eq!(served, calls, "{sequence}: no call after IsFinished=true");
    }
}

/// A later page whose token or schema differs from the first's: one error line naming the page,
/// exit 3, no output file.
#[tokio::test]
async fn a_later_page_with_another_token_or_schema_is_refused() {
    for (sequence, message) in [
        (
            "token-changed",
            "page 2 carries a ResumptionToken that differs from the first page's",
        ),
        (
            "schema-changed",
            "report page 2 could not be read: the schema on this page differs",
        ),
    ] {
        let (code, stderr, written, _) = extract_replayed(sequence).await;
        assert_eq!(code, 3, "{sequence}: {stderr}");
        assert!(stderr.contains(message), "{sequence}: {stderr}");
        assert_eq!(
            stderr.matches("error:").count(),
            1,
            "{sequence}: one error line: {stderr}"
        );
        assert_eq!(written, None, "{sequence}: no output file");
    }
}

/// A list server for the client's list walker: `members(offset)` answers each call.
async fn list_server(
    answer: impl Fn(usize) -> serde_json::Value + Clone + Send + Sync + 'static,
) -> (alma_client::AlmaClient, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::collections::HashMap;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let calls = Arc::new(AtomicUsize::new(0));
    let count = calls.clone();
    let handler = move |axum::extract::Query(q): axum::extract::Query<HashMap<String, String>>| {
        let (answer, count) = (answer.clone(), count.clone());
        async move {
            count.fetch_add(1, Ordering::SeqCst);
            let offset = q.get("offset").and_then(|o| o.parse().ok()).unwrap_or(0);
            axum::Json(answer(offset))
        }
    };
    let app = axum::Router::new()
        .route("/almaws/v1/conf/sets/{id}/members", axum::routing::get(handler.clone()))
        .route("/almaws/v1/conf/jobs/{id}/instances", axum::routing::get(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut config = alma_client::ClientConfig::new(format!("http://{addr}"), KEY.to_string().into());
    config.pace_per_second = 100_000;
    (alma_client::AlmaClient::new(config).unwrap(), calls)
}

/// The list walker: pages shorter than the limit with a total (the offset moves by the items
/// received), an instance listed on two pages counted once, and a list without a total that
/// ignores the offset — given up after 1000 pages with an error, not asked for without end; and
/// a member without an id refused.
#[tokio::test(flavor = "multi_thread")]
async fn lists_are_walked_by_what_alma_sends() {
    use alma_client::{JobId, SetId};
    use serde_json::json;

    let (client, calls) = list_server(|offset| {
        let ids: Vec<_> = (offset..(offset + 7).min(20))
            .map(|i| json!({"id": format!("u{i}")}))
            .collect();
        json!({"member": ids, "total_record_count": "20"})
    })
    .await;
    let members = client.set_members(&SetId("1".into())).await.unwrap();
    assert_eq!(members.len(), 20);
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 3);

    let (client, _) = list_server(|offset| {
        // Two instances a page, the list shifting by one between calls: "b" is listed twice.
        let all = ["a", "b", "c"];
        let page: Vec<_> = all
            .iter()
            .skip(offset.saturating_sub(1))
            .take(2)
            .map(|id| json!({"id": id, "name": format!("job {id}"), "status": {"value": "COMPLETED_SUCCESS"}}))
            .collect();
        json!({"job_instance": page, "total_record_count": 4})
    })
    .await;
    let instances = client
        .job_instances_between(&JobId("M3".into()), "2026-11-30", "2026-12-02")
        .await
        .unwrap();
    let ids: Vec<&str> = instances.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(ids, ["a", "b", "c"]);

    let (client, calls) = list_server(|_| {
        let ids: Vec<_> = (0..100).map(|i| json!({"id": format!("u{i}")})).collect();
        json!({ "member": ids })
    })
    .await;
    let err = client.set_members(&SetId("1".into())).await.unwrap_err().to_string();
    assert!(
        err.contains("no total_record_count and has not ended after 1000 pages"),
        "{err}"
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 1000);

    // A member listed without an id: the set cannot be checked against the cohort — an error,
    // not a shorter list.
    let (client, _) = list_server(|_| json!({"member": [{"id": "u1"}, {"name": "x"}], "total_record_count": 2})).await;
    let err = client.set_members(&SetId("1".into())).await.unwrap_err().to_string();
    assert!(err.contains("1 of the set's members are listed without an id"), "{err}");
}

/// Alma's members list shows a member without an id while the run must read it (an add_members
/// answer was lost): the run stops before the job, saying to look at the set; the operator's
/// `resume` stops the same way, and `abandon` ends it — one set, no job, no letter.
#[tokio::test]
async fn a_member_without_an_id_stops_the_run_before_the_job() {
    use crate::execute::{run, runs_json};

    let sim = sim(sim_config()
        .quirk(Quirk::MemberWithoutId)
        .fault(Fault::new(FaultKind::DropAfter, Target::SetOp).count(1)))
    .await;
    let dir = temp_dir("member-without-id");
    let state = dir.join("state");
    let q = all_users_query(&dir, 5000);
    let first = execute_run(&sim, &state, q.to_str().unwrap(), &[]).await;
    assert_ne!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains("listed without an id"), "{}", first.stderr);
    let runs = runs_json(&sim, &state).await;
    let run_id = runs[0]["run_id"].as_str().unwrap().to_string();
    let resumed = run(&sim, &state, &["resume", &run_id]).await;
    assert_ne!(resumed.code, 0, "{}", resumed.stderr);
    assert!(resumed.stderr.contains("listed without an id"), "{}", resumed.stderr);
    let abandoned = run(
        &sim,
        &state,
        &["abandon", &run_id, "--reason", "a member without an id in Alma"],
    )
    .await;
    assert_eq!(abandoned.code, 0, "{}", abandoned.stderr);
    assert_eq!(sim.handle.sets().len(), 1, "one set");
    assert_eq!(calls(&sim, Target::JobRun), 0, "no job submitted");
    assert!(
        sim.handle.job_instances().is_empty() && sim.handle.outbox().is_empty(),
        "no job, no letter"
    );
}
