//! The simulator's jobs API (alma-api.md §5, §7): finding Update/Notify Users, running it with its
//! thresholds, instances walking through their states on the manual clock, and the outbox.

use std::collections::HashSet;
use std::time::Duration;

use alma_sim::{JobOutcome, UPDATE_NOTIFY_USERS};
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn the_job_is_found_by_name_on_the_second_page_of_manual_jobs() {
    let sim = sim(config(5)).await;
    let first = sim.get_json("conf/jobs?type=MANUAL&limit=100&offset=0").await.json();
    let total = first["total_record_count"].as_u64().unwrap();
    assert!(total > 100);
    assert_eq!(first["job"].as_array().unwrap().len(), 100);
    assert!(
        !first["job"]
            .as_array()
            .unwrap()
            .iter()
            .any(|j| j["name"] == UPDATE_NOTIFY_USERS)
    );
    let second = sim.get_json("conf/jobs?type=MANUAL&limit=100&offset=100").await.json();
    let found: Vec<_> = second["job"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|j| j["name"] == UPDATE_NOTIFY_USERS)
        .collect();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["id"], sim.job_id());
    assert_eq!(found[0]["type"]["value"], "MANUAL");
    assert!(
        second["job"]
            .as_array()
            .unwrap()
            .iter()
            .all(|j| j["type"]["value"] == "MANUAL")
    );

    let one = sim.get_json(&format!("conf/jobs/{}", sim.job_id())).await.json();
    assert_eq!(one["name"], UPDATE_NOTIFY_USERS);
    assert_eq!(sim.get_json("conf/jobs/not-a-job").await.error_code(), "402215");
    assert_eq!(sim.get_json("conf/jobs/M1").await.error_code(), "402216");
    assert_eq!(sim.get_json("conf/jobs?type=WEEKLY").await.error_code(), "40166410");
    // A different seed, a different id: the client must not hard-code it.
    let other = crate::support::sim(config(5).seed(8)).await;
    assert_ne!(other.job_id(), sim.job_id());
}

#[tokio::test]
async fn a_run_walks_queued_to_completed_and_letters_reach_internal_members_only() {
    let sim = sim(config(500).job_duration(Duration::from_secs(100))).await;
    let set = sim.create_set("reset").await;
    let mut ids = sim.ids(true, 7);
    ids.extend(sim.ids(false, 3));
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    sim.add_members(&set, &refs, None).await;

    let r = sim.run_job(&set).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let info = v["additional_info"]["value"].as_str().unwrap();
    assert!(
        info.starts_with("Job no. ") && info.contains(" triggered on ") && info.ends_with(" GMT"),
        "{info}"
    );
    let link = v["additional_info"]["link"].as_str().unwrap();
    assert!(link.starts_with(&format!(
        "{}/almaws/v1/conf/jobs/{}/instances/",
        sim.handle.base_url(),
        sim.job_id()
    )));
    let instance = link.rsplit('/').next().unwrap().to_string();
    assert!(info.contains(&instance));
    let params = v["parameter"].as_array().unwrap();
    assert!(
        params
            .iter()
            .any(|p| p["name"] == json!({"value": "set_id"}) && p["value"] == set.as_str())
    );

    let path = link.split("/almaws/v1/").nth(1).unwrap().to_string();
    let mut statuses = Vec::new();
    let mut last = json!(null);
    for _ in 0..30 {
        let poll = sim.get_json(&path).await.json();
        let status = poll["status"]["value"].as_str().unwrap().to_string();
        if statuses.last() != Some(&status) {
            statuses.push(status.clone());
        }
        last = poll;
        if status == "COMPLETED_SUCCESS" {
            break;
        }
        assert!(sim.handle.outbox().is_empty(), "no letter before the job ends");
        sim.handle.advance(Duration::from_secs(5));
    }
    assert_eq!(
        statuses,
        ["QUEUED", "INITIALIZING", "RUNNING", "FINALIZING", "COMPLETED_SUCCESS"]
    );
    assert_eq!(last["progress"], 100.0);
    assert!(last["end_time"].is_string() && last["start_time"].is_string());
    assert_eq!(last["alert"][0]["value"], "alert_general_success");
    let counters: Vec<(&str, &str)> = last["counter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["type"]["value"].as_str().unwrap(),
                c["value"].as_str().expect("counter values are strings"),
            )
        })
        .collect();
    assert!(counters.contains(&("users_notified", "7")));
    assert!(counters.contains(&("users_external_not_notified", "3")));

    let letters = sim.handle.outbox();
    assert_eq!(letters.len(), 7);
    let notified: HashSet<&str> = letters.iter().map(|l| l.user_primary_id.as_str()).collect();
    assert_eq!(notified, ids[..7].iter().map(String::as_str).collect());
    assert!(letters.iter().all(|l| l.notification_type == "NOTIFY_PASSWORD_CHANGE"
        && l.temp_password.as_ref().is_some_and(|p| p.len() == 10)
        && l.job_instance_id == instance));
    // Time passing does not send them again.
    sim.handle.advance(Duration::from_secs(3600));
    assert_eq!(sim.handle.outbox().len(), 7);

    let xml = sim.get(&path).await;
    assert!(xml.text.contains("<alerts><alert desc="), "{}", xml.text);
    assert!(xml.text.contains("<counters><counter><type desc="));
    let via_all = sim.get_json(&format!("conf/jobs/ALL/instances/{instance}")).await;
    assert_eq!(via_all.status, 200);
    let unknown = sim
        .get_json(&format!("conf/jobs/{}/instances/961234", sim.job_id()))
        .await;
    assert_eq!(unknown.error_code(), "402218");

    let list = sim
        .get_json(&format!(
            "conf/jobs/{}/instances?submit_date_from=2026-01-01&limit=10",
            sim.job_id()
        ))
        .await
        .json();
    assert_eq!(list["total_record_count"], 1);
    assert_eq!(list["job_instance"][0]["id"], instance.as_str());
    let bad = sim
        .get_json(&format!(
            "conf/jobs/{}/instances?submit_date_from=05/01/2026",
            sim.job_id()
        ))
        .await;
    assert_eq!(bad.error_code(), "402217");
    let bad = sim
        .get_json(&format!("conf/jobs/{}/instances?status=DONE", sim.job_id()))
        .await;
    assert_eq!(bad.error_code(), "40166410");
}

#[tokio::test]
async fn run_needs_op_and_a_set() {
    let sim = sim(config(50)).await;
    let job = sim.job_id();
    let set = sim.create_set("s").await;
    let body = |set_id: Option<&str>| match set_id {
        Some(id) => json!({"parameter": [{"name": {"value": "set_id"}, "value": id}]}),
        None => json!({"parameter": [{"name": {"value": "job_name"}, "value": "x"}]}),
    };
    assert_eq!(
        sim.post_json(&format!("conf/jobs/{job}"), &body(Some(&set)))
            .await
            .error_code(),
        "402220"
    );
    assert_eq!(
        sim.post_json(&format!("conf/jobs/{job}?op=stop"), &body(Some(&set)))
            .await
            .error_code(),
        "402221"
    );
    assert_eq!(
        sim.post_json(&format!("conf/jobs/{job}?op=run"), &body(None))
            .await
            .error_code(),
        "402228"
    );
    assert_eq!(
        sim.post_json(&format!("conf/jobs/{job}?op=run"), &body(Some(" ")))
            .await
            .error_code(),
        "402229"
    );
    assert_eq!(
        sim.post_json(&format!("conf/jobs/{job}?op=run"), &body(Some("123")))
            .await
            .error_code(),
        "60107"
    );
    let broken = sim
        .post_xml(&format!("conf/jobs/{job}?op=run"), "<job><parameters>")
        .await;
    assert_eq!((broken.status, broken.error_code()), (400, "BAD_REQUEST".to_string()));
    // The XML body form works too.
    let xml = format!(
        "<job><parameters><parameter><name>set_id</name><value>{set}</value></parameter>\
         <parameter><name>job_name</name><value>xml run</value></parameter></parameters></job>"
    );
    let ok = sim.post_xml(&format!("conf/jobs/{job}?op=run"), &xml).await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    assert!(ok.text.contains("<additional_info link="));
    assert!(ok.text.contains("<parameters><parameter><name>set_id</name>"));
    assert!(sim.handle.job_instances().len() == 1);
}

#[tokio::test]
async fn thresholds_three_running_five_an_hour_and_no_overlap() {
    let sim = sim(config(50).job_duration(Duration::from_secs(600))).await;
    let mut sets = Vec::new();
    for i in 0..4 {
        let set = sim.create_set(&format!("s{i}")).await;
        let ids = sim.ids(true, 1);
        sim.add_members(&set, &[ids[0].as_str()], None).await;
        sets.push(set);
    }
    for set in &sets[..3] {
        assert_eq!(sim.run_job(set).await.status, 200);
    }
    assert_eq!(
        sim.run_job(&sets[0]).await.error_code(),
        "60347",
        "the same job on the same set is running"
    );
    assert_eq!(
        sim.run_job(&sets[3]).await.error_code(),
        "402222",
        "three API jobs are running"
    );
    sim.handle.advance(Duration::from_secs(601));
    assert_eq!(sim.run_job(&sets[3]).await.status, 200);
    sim.handle.advance(Duration::from_secs(601));
    assert_eq!(sim.run_job(&sets[0]).await.status, 200);
    sim.handle.advance(Duration::from_secs(601));
    // Five runs within the last hour (all submitted 0..1803 s ago).
    let r = sim.run_job(&sets[1]).await;
    assert_eq!(r.error_code(), "402223", "{}", r.text);
    sim.handle.advance(Duration::from_secs(3600));
    assert_eq!(sim.run_job(&sets[1]).await.status, 200);
}

async fn run_to_end(sim: &Sim, set: &str) -> serde_json::Value {
    let r = sim.run_job(set).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let link = r.json()["additional_info"]["link"].as_str().unwrap().to_string();
    sim.handle.advance(Duration::from_secs(3600));
    sim.get_json(link.split("/almaws/v1/").nth(1).unwrap()).await.json()
}

#[tokio::test]
async fn failed_outcomes_send_no_letters_and_an_empty_set_has_no_bulks() {
    for (outcome, status) in [
        (JobOutcome::CompletedFailed, "COMPLETED_FAILED"),
        (JobOutcome::Failed, "FAILED"),
    ] {
        let sim = sim(config(50).job_outcome(outcome)).await;
        let set = sim.create_set("s").await;
        let ids = sim.ids(true, 3);
        sim.add_members(&set, &ids.iter().map(String::as_str).collect::<Vec<_>>(), None)
            .await;
        let end = run_to_end(&sim, &set).await;
        assert_eq!(end["status"]["value"], status);
        if status == "FAILED" {
            assert_eq!(end["progress"], 0.0, "progress stays 0 when FAILED");
        }
        assert!(sim.handle.outbox().is_empty());
    }
    let sim = sim(config(50)).await;
    let set = sim.create_set("empty").await;
    assert_eq!(run_to_end(&sim, &set).await["status"]["value"], "COMPLETED_NO_BULKS");

    let never = crate::support::sim(config(50).job_outcome(JobOutcome::NeverFinishes)).await;
    let set = never.create_set("s").await;
    never.add_members(&set, &[never.ids(true, 1)[0].as_str()], None).await;
    assert_eq!(run_to_end(&never, &set).await["status"]["value"], "RUNNING");

    let warn = crate::support::sim(config(50).job_outcome(JobOutcome::Warning)).await;
    let set = warn.create_set("s").await;
    warn.add_members(&set, &[warn.ids(true, 1)[0].as_str()], None).await;
    assert_eq!(run_to_end(&warn, &set).await["status"]["value"], "COMPLETED_WARNING");
    assert_eq!(warn.handle.outbox().len(), 1);
}

#[tokio::test]
async fn without_the_notification_parameters_nobody_gets_a_letter() {
    let sim = sim(config(50)).await;
    let set = sim.create_set("s").await;
    sim.add_members(&set, &[sim.ids(true, 1)[0].as_str()], None).await;
    let r = sim
        .post_json(
            &format!("conf/jobs/{}?op=run", sim.job_id()),
            &json!({"parameter": [{"name": {"value": "set_id"}, "value": set},
                                  {"name": {"value": "SEND_Notification_To_User_Active"}, "value": "false"}]}),
        )
        .await;
    assert_eq!(r.status, 200);
    sim.handle.advance(Duration::from_secs(3600));
    assert_eq!(sim.handle.job_instances()[0].status, "COMPLETED_SUCCESS");
    assert!(sim.handle.outbox().is_empty());
}
