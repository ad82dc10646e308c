//! The bad-input corpus (`fixtures/bad/cases.toml`): query files, report pages, ID values and
//! command lines that must each end with one clear error line, the right exit code, no panic and
//! no write call to Alma.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Deserialize;

use crate::cli::temp_dir;
use crate::support::*;

#[derive(Deserialize)]
struct Cases {
    case: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    kind: String,
    file: Option<String>,
    args: Option<Vec<String>>,
    exit: i32,
    message: String,
}

fn bad(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/bad").join(path)
}

/// Serves `body` as the answer to every report call; counts calls that are not GETs.
async fn upstream(
    body: Arc<Vec<u8>>,
    content_type: &'static str,
    status: StatusCode,
) -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new().route(
        "/almaws/v1/analytics/reports",
        get(move || {
            let body = body.clone();
            async move { (status, [(header::CONTENT_TYPE, content_type)], body.as_ref().clone()).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    (
        format!("http://{addr}"),
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
    )
}

struct Outcome {
    code: i32,
    stderr: String,
}

async fn alma_cohort(args: Vec<String>, base: &str, state: &Path) -> Outcome {
    let (base, state) = (base.to_string(), state.to_path_buf());
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_alma-cohort"))
            .args(&args)
            .env("ALMA_BASE_URL", base)
            .env("ALMA_COHORT_STATE", state)
            .env("ALMA_API_KEY", KEY)
            .env("ALMA_COHORT_RETRY_DELAY", "0")
            .env("ALMA_COHORT_MAX_RETRIES", "1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    Outcome {
        code: out.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn check(name: &str, o: &Outcome, exit: i32, message: &str) {
    assert_eq!(o.code, exit, "{name}: {}", o.stderr);
    let errors: Vec<&str> = o.stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{name}: exactly one error line: {}", o.stderr);
    assert!(
        o.stderr.contains(message),
        "{name}: expected {message:?} in {}",
        o.stderr
    );
    assert!(!o.stderr.contains("panicked"), "{name}: {}", o.stderr);
}

#[tokio::test]
async fn every_bad_input_gets_one_clear_error_and_no_write() {
    let cases: Cases = toml::from_str(&std::fs::read_to_string(bad("cases.toml")).unwrap()).unwrap();
    assert!(cases.case.len() >= 20);
    let sim = sim(config(50)).await;
    let dir = temp_dir("bad-input");
    let state = dir.join("state");
    let query = crate::cli::query_file(&dir, ALL_USERS, "");
    let excl_dir = dir.join("excl");
    std::fs::create_dir_all(&excl_dir).unwrap();
    std::fs::copy(
        bad("queries/binary-exclusions.txt"),
        excl_dir.join("binary-exclusions.txt"),
    )
    .unwrap();
    let exclusion_query = excl_dir.join("q.toml");
    std::fs::write(
        &exclusion_query,
        format!("name = \"x\"\n[report]\npath = \"{ALL_USERS}\"\n[cohort]\nid_column = \"Primary Identifier\"\nexclude_files = [\"binary-exclusions.txt\"]\n[guard]\nmax_members = 10\n"),
    )
    .unwrap();
    for case in &cases.case {
        let outcome = match case.kind.as_str() {
            "page" => {
                let file = case.file.as_deref().unwrap();
                let content_type = match Path::new(file).extension().and_then(|e| e.to_str()) {
                    Some("json") => "application/json",
                    Some("html") => "text/html",
                    _ => "application/xml",
                };
                let status = if content_type == "text/html" {
                    StatusCode::BAD_GATEWAY
                } else {
                    StatusCode::OK
                };
                let (base, task) = upstream(Arc::new(std::fs::read(bad(file)).unwrap()), content_type, status).await;
                let o = alma_cohort(vec!["plan".into(), query.to_str().unwrap().into()], &base, &state).await;
                task.abort();
                o
            }
            "query" => {
                alma_cohort(
                    vec![
                        "plan".into(),
                        bad(case.file.as_deref().unwrap()).to_str().unwrap().into(),
                    ],
                    &sim.handle.base_url(),
                    &state,
                )
                .await
            }
            _ => {
                let args = case
                    .args
                    .clone()
                    .unwrap()
                    .into_iter()
                    .map(|a| {
                        a.replace("{query}", query.to_str().unwrap())
                            .replace("{exclusion_query}", exclusion_query.to_str().unwrap())
                            .replace("{sim}", &sim.handle.base_url())
                            .replace("{lists}", bad("lists").to_str().unwrap())
                            .replace("{long_period}", &"x".repeat(10_000))
                    })
                    .collect();
                alma_cohort(args, &sim.handle.base_url(), &state).await
            }
        };
        check(&case.name, &outcome, case.exit, &case.message);
        assert!(!state.exists(), "{}: created {}", case.name, state.display());
    }
    assert!(
        sim.handle.requests().iter().all(|r| r.method == "GET"),
        "no write call to Alma"
    );
    assert!(sim.handle.sets().is_empty());
}

#[tokio::test]
async fn a_100_mb_cell() {
    let mut page = String::from(
        r#"<report><QueryResult><IsFinished>true</IsFinished><ResultXml><rowset xmlns="urn:schemas-microsoft-com:xml-analysis:rowset"><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:saw-sql="urn:saw-sql"><xsd:complexType name="Row"><xsd:sequence><xsd:element name="Column0" saw-sql:columnHeading="0"/><xsd:element name="Column1" saw-sql:columnHeading="Primary Identifier"/></xsd:sequence></xsd:complexType></xsd:schema><Row><Column0>0</Column0><Column1>"#,
    );
    page.push_str(&"x".repeat(100 * 1024 * 1024));
    page.push_str("</Column1></Row></rowset></ResultXml></QueryResult></report>");
    let (base, task) = upstream(Arc::new(page.into_bytes()), "application/xml", StatusCode::OK).await;
    let dir = temp_dir("big-cell");
    let query = crate::cli::query_file(&dir, ALL_USERS, "");
    let o = alma_cohort(
        vec!["plan".into(), query.to_str().unwrap().into()],
        &base,
        &dir.join("state"),
    )
    .await;
    task.abort();
    check("a 100 MB cell", &o, 4, "is 104857600 characters long (at most 255)");
}
