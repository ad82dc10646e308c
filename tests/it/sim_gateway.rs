//! The simulator's gateway (alma-api.md §3): keys with areas and write permission, the daily
//! quota with X-Exl-Api-Remaining, the per-second threshold, unknown routes, dropped
//! connections, and the inspection endpoints.

use std::time::Duration;

use alma_sim::{Access, ApiKey, Area, Fault, FaultKind, Target};
use serde_json::json;

use crate::support::*;

async fn with_key(sim: &Sim, key: Option<&str>, rb: reqwest::RequestBuilder) -> Resp {
    let rb = match key {
        Some(k) => rb.header("Authorization", format!("apikey {k}")),
        None => rb,
    };
    sim.send(rb.header("Accept", "application/json")).await
}

#[tokio::test]
async fn keys_need_the_area_and_write_permission() {
    let sim = sim(config(20)).await;
    let report = sim.url(&format!("analytics/reports?path={}", enc(ONE_ROW)));

    let none = with_key(&sim, None, sim.http.get(&report)).await;
    assert_eq!(none.status, 400);
    // The real gateway answers UNAUTHORIZED in XML, CRLF-indented, without trackingId, even to JSON clients.
    assert_eq!(none.header("content-type"), Some("application/xml;charset=UTF-8"));
    assert!(none.text.contains("\r\n  <errorsExist>true</errorsExist>"));
    assert_eq!(none.error_code(), "UNAUTHORIZED");
    assert!(
        none.text
            .contains("API-key not defined or not configured to allow this API.")
    );
    assert!(!none.text.contains("trackingId"));
    assert_eq!(
        with_key(&sim, Some("wrong"), sim.http.get(&report)).await.error_code(),
        "UNAUTHORIZED"
    );

    let ro = with_key(&sim, Some("sim-analytics-ro"), sim.http.get(&report)).await;
    assert_eq!(ro.status, 200);
    let body = json!({"name": "x", "type": "ITEMIZED", "content": "USER"}).to_string();
    let create = sim
        .http
        .post(sim.url("conf/sets"))
        .header("Content-Type", "application/json")
        .body(body.clone());
    let denied = with_key(&sim, Some("sim-analytics-ro"), create).await;
    assert_eq!((denied.status, denied.error_code()), (403, "UNAUTHORIZED".to_string()));
    let list = with_key(&sim, Some("sim-ro"), sim.http.get(sim.url("conf/sets"))).await;
    assert_eq!(list.status, 200);
    let create = sim
        .http
        .post(sim.url("conf/sets"))
        .header("Content-Type", "application/json")
        .body(body.clone());
    assert_eq!(
        with_key(&sim, Some("sim-ro"), create).await.status,
        403,
        "read-only configuration key"
    );
    assert!(sim.handle.sets().is_empty());

    // The query-parameter form of the key works too, and is never logged.
    let by_query = sim.send(sim.http.get(format!("{report}&apikey={KEY}"))).await;
    assert_eq!(by_query.status, 200);
    let log = serde_json::to_string(&sim.handle.requests()).unwrap();
    assert!(!log.contains(KEY) && !log.contains("sim-analytics-ro") && !log.contains("apikey"));
}

#[tokio::test]
async fn custom_keys_can_be_configured() {
    let key = ApiKey {
        key: "only-users".into(),
        grants: vec![(Area::Users, Access::Read)],
    };
    let sim = sim(config(20).key(key)).await;
    let id = sim.handle.users()[0].primary_id.clone();
    assert_eq!(
        with_key(&sim, Some("only-users"), sim.http.get(sim.url(&format!("users/{id}"))))
            .await
            .status,
        200
    );
    assert_eq!(
        with_key(&sim, Some("only-users"), sim.http.get(sim.url("conf/sets")))
            .await
            .status,
        403
    );
}

#[tokio::test]
async fn the_daily_quota_counts_down_and_resets_at_midnight() {
    let sim = sim(config(20).daily_quota(3)).await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = sim.get_json("conf/sets").await;
        assert_eq!(r.status, 200);
        remaining.push(r.header("x-exl-api-remaining").unwrap().to_string());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let over = sim.get_json("conf/sets").await;
    assert_eq!(over.status, 429);
    assert_eq!(
        over.json()["web_service_result"]["errorList"]["error"]["errorCode"],
        "DAILY_THRESHOLD"
    );
    assert_eq!(over.header("x-exl-api-remaining"), Some("0"));
    sim.handle.advance(Duration::from_secs(24 * 3600));
    assert_eq!(sim.get_json("conf/sets").await.status, 200);
}

#[tokio::test]
async fn more_than_the_per_second_threshold_gets_429() {
    let sim = sim(config(20).rate_limit(5)).await;
    let calls = (0..20).map(|_| sim.get_json("conf/sets"));
    let answers = futures_util::future::join_all(calls).await;
    let throttled: Vec<_> = answers.iter().filter(|r| r.status == 429).collect();
    assert!(throttled.len() >= 10, "{} of 20 throttled", throttled.len());
    let e = &throttled[0].json()["web_service_result"]["errorList"]["error"];
    assert_eq!(e["errorCode"], "PER_SECOND_THRESHOLD");
    assert_eq!(e["errorMessage"], "HTTP requests are more than allowed per second");
    assert!(
        throttled[0].header("retry-after").is_none(),
        "Alma sends no Retry-After"
    );
}

#[tokio::test]
async fn a_429_storm_and_unknown_routes() {
    let sim = sim(config(20).fault(Fault::new(FaultKind::TooManyRequests, Target::SetOp).count(3))).await;
    let set = sim.create_set("s").await;
    let id = sim.ids(true, 1).remove(0);
    for _ in 0..3 {
        assert_eq!(sim.add_members(&set, &[id.as_str()], None).await.status, 429);
    }
    assert_eq!(sim.add_members(&set, &[id.as_str()], None).await.status, 200);
    assert_eq!(sim.handle.set_members(&set).unwrap(), vec![id]);

    let nowhere = sim.get_json("conf/widgets").await;
    assert_eq!(nowhere.status, 404);
    let e = &nowhere.json()["web_service_result"]["errorList"]["error"];
    assert_eq!(
        (e["errorCode"].as_str(), e["trackingId"].as_str()),
        (Some("NOT_FOUND"), Some("unknown"))
    );
    assert!(
        e["errorMessage"].as_str().unwrap().contains("conf/widgets"),
        "the simulator names the route"
    );
    let outside = sim
        .send(sim.http.get(format!("{}/somewhere", sim.handle.base_url())))
        .await;
    assert_eq!(outside.status, 404);
}

#[tokio::test]
async fn dropped_connections_before_and_after_a_set_is_created() {
    let sim = sim(config(20)
        .fault(Fault::new(FaultKind::DropBefore, Target::SetCreate))
        .fault(Fault::new(FaultKind::DropAfter, Target::SetCreate).skip(1)))
    .await;
    let post = |name: &str| {
        sim.http
            .post(sim.url("conf/sets"))
            .header("Authorization", format!("apikey {KEY}"))
            .header("Content-Type", "application/json")
            .body(json!({"name": name, "type": "ITEMIZED", "content": "USER"}).to_string())
    };
    let before = async { post("first").send().await?.text().await }.await;
    assert!(before.is_err(), "{before:?}");
    assert!(sim.handle.sets().is_empty(), "dropped before: nothing created");
    let after = async { post("second").send().await?.text().await }.await;
    assert!(after.is_err(), "{after:?}");
    assert_eq!(
        sim.handle.sets().iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["second"],
        "dropped after: created"
    );
    let found = sim.get_json("conf/sets?q=name~second").await.json();
    assert_eq!(found["total_record_count"], 1);
    let log = sim.handle.requests();
    assert!(log.iter().filter(|r| r.target == Target::SetCreate).all(|r| r.dropped));
}

#[tokio::test]
async fn inspection_endpoints() {
    let sim = sim(config(50).job_duration(Duration::ZERO)).await;
    let set = sim.create_set("inspect").await;
    let ids = sim.ids(true, 2);
    sim.add_members(&set, &[ids[0].as_str(), ids[1].as_str()], None).await;
    sim.run_job(&set).await;
    let base = sim.handle.base_url();
    let outbox = sim.inspect("outbox").await;
    assert_eq!(outbox["total"], 2);
    assert_eq!(outbox["letters"][0]["notification_type"], "NOTIFY_PASSWORD_CHANGE");
    let members = sim.inspect(&format!("sets/{set}/members")).await;
    assert_eq!(members["members"], json!(ids));
    let requests = sim.inspect("requests").await;
    let first = &requests["requests"][0];
    assert_eq!(
        (
            first["method"].as_str(),
            first["path"].as_str(),
            first["status"].as_u64()
        ),
        (Some("POST"), Some("/almaws/v1/conf/sets"), Some(200))
    );
    let state = sim.inspect("state").await;
    assert_eq!(state["update_notify_users_job_id"], sim.job_id());
    assert_eq!(state["job_instances"][0]["status"], "COMPLETED_SUCCESS");
    let users = sim.inspect("users").await;
    assert_eq!(users["total"], 50);
    assert!(users["users"][0]["primary_id"].is_string());
    let advanced: serde_json::Value = sim
        .http
        .post(format!("{base}/_sim/clock/advance?seconds=60"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(advanced["now"].as_str().unwrap().starts_with("2026-01-05T06:01:00"));
    let bad = sim
        .http
        .post(format!("{base}/_sim/clock/advance?seconds=-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
}

#[tokio::test]
async fn error_shapes_match_the_golden_files() {
    let sim = sim(config(10).daily_quota(100)).await;
    let token_page = sim.report(ONE_ROW, 25, "").await;
    assert!(token_page.text.contains("<IsFinished>true</IsFinished>"));
    let mut app = sim.get_json("users/nobody").await.text;
    app = app.replace(&sim.handle.base_url(), "{base}");
    golden("sim/error-app.json", &app);
    golden("sim/error-app.xml", &sim.get("users/nobody").await.text);
    golden("sim/error-not-found.json", &sim.get_json("conf/nothing").await.text);
    let unauthorized = sim
        .send(sim.http.get(sim.url("conf/sets")).header("Accept", "application/json"))
        .await;
    golden("sim/error-unauthorized.xml", &unauthorized.text);
    let set = sim
        .post_json(
            "conf/sets",
            &json!({"name": "golden", "type": "ITEMIZED", "content": "USER", "private": "false"}),
        )
        .await;
    golden("sim/set.json", &set.text.replace(&sim.handle.base_url(), "{base}"));
}
