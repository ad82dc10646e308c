//! Answer shapes that real Alma institutions have recorded (see `fixtures/README.md`), sent by the
//! simulator with a quirk on, read by the real binary.

use alma_cohort::sim::Quirk;

use crate::cli::{alma_cohort, query_file, temp_dir};
use crate::execute::sim_config;
use crate::support::*;

/// `extract` of "All users" to a CSV: the exit code, stderr, and the rows written.
async fn extract_all(sim: &Sim, tag: &str) -> (i32, String, usize) {
    let dir = temp_dir(tag);
    let q = query_file(&dir, ALL_USERS, "");
    let out = dir.join("rows.csv");
    let base = sim.handle.base_url();
    let r = alma_cohort(
        &[
            "--base-url",
            &base,
            "extract",
            q.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        Some(KEY),
    )
    .await;
    let rows = std::fs::read_to_string(&out)
        .map(|t| t.lines().count().saturating_sub(1))
        .unwrap_or(0);
    (r.code, r.stderr, rows)
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
