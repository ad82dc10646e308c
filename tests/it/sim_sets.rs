//! The simulator's sets API (alma-api.md §4): create, get, list, members, delete, and every
//! add_members rule with its error code.

use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn create_get_and_the_set_shape() {
    let sim = sim(config(20)).await;
    let r = sim
        .post_json(
            "conf/sets",
            &json!({"name": "User Password Reset (spring)", "description": "d", "type": {"value": "ITEMIZED"},
                    "content": {"value": "USER"}, "private": {"value": "false"}, "status": {"value": "ACTIVE"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    let id = v["id"].as_str().unwrap();
    assert!(id.len() >= 16 && id.chars().all(|c| c.is_ascii_digit()));
    assert_eq!(v["number_of_members"]["value"], 0, "a JSON number");
    assert_eq!(v["created_by"]["value"], "exl_api");
    assert_eq!(v["private"]["value"], "false");
    assert_eq!(v["type"], json!({"value": "ITEMIZED", "desc": "Itemized"}));
    assert_eq!(v["link"], format!("{}/almaws/v1/conf/sets/{id}", sim.handle.base_url()));

    let got = sim.get(&format!("conf/sets/{id}")).await;
    assert_eq!(got.status, 200);
    assert!(
        got.text.contains(r#"<type desc="Itemized">ITEMIZED</type>"#),
        "{}",
        got.text
    );
    assert!(got.text.contains("<number_of_members link="));

    let dup = sim.post_json("conf/sets", &json!({"name": "User Password Reset (spring)", "type": {"value": "ITEMIZED"}, "content": {"value": "USER"}})).await;
    assert_eq!((dup.status, dup.error_code()), (400, "402263".to_string()));
    assert!(
        dup.json()["errorList"]["error"][0]["trackingId"]
            .as_str()
            .unwrap()
            .starts_with("E0")
    );
    assert!(dup.json()["result"].is_null());

    let missing = sim.get("conf/sets/12345").await;
    assert_eq!((missing.status, missing.error_code()), (400, "60107".to_string()));
    // Alma's default is private=true.
    let default_private = sim
        .post_json(
            "conf/sets",
            &json!({"name": "p", "type": "ITEMIZED", "content": "USER"}),
        )
        .await;
    assert_eq!(default_private.json()["private"]["value"], "true");
}

#[tokio::test]
async fn create_accepts_xml_and_refuses_bad_bodies() {
    let sim = sim(config(20)).await;
    let ids = sim.ids(true, 2);
    let xml = format!(
        "<set><name>From XML &amp; more</name><type>ITEMIZED</type><content>USER</content><private>false</private>\
         <members><member><id>{}</id></member><member><id>{}</id></member></members></set>",
        ids[0], ids[1]
    );
    let r = sim.post_xml("conf/sets", &xml).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains("<name>From XML &amp; more</name>"));
    assert!(r.text.contains(">2</number_of_members>"));

    for (body, code) in [
        (
            json!({"name": "a", "type": {"value": "SMART"}, "content": {"value": "USER"}}),
            "402262",
        ),
        (
            json!({"name": "b", "type": {"value": "ITEMIZED"}, "content": {"value": "USER"}, "private": {"value": "maybe"}}),
            "60209",
        ),
        (
            json!({"name": "c", "type": {"value": "ITEMIZED"}, "content": {"value": "USER"}, "status": {"value": "GONE"}}),
            "60210",
        ),
        (
            json!({"type": {"value": "ITEMIZED"}, "content": {"value": "USER"}}),
            "402265",
        ),
    ] {
        let r = sim.post_json("conf/sets", &body).await;
        assert_eq!((r.status, r.error_code()), (400, code.to_string()), "{body}");
    }
    let broken = sim
        .send(
            sim.http
                .post(sim.url("conf/sets"))
                .header("Authorization", format!("apikey {KEY}"))
                .header("Content-Type", "application/json")
                .header("Accept", "application/json")
                .body("{\"name\": "),
        )
        .await;
    assert_eq!(broken.status, 400);
    assert_eq!(
        broken.json()["web_service_result"]["errorList"]["error"]["errorCode"],
        "BAD_REQUEST"
    );
    let broken_xml = sim.post_xml("conf/sets", "<set><name>x</set>").await;
    assert_eq!(
        (broken_xml.status, broken_xml.error_code()),
        (400, "BAD_REQUEST".to_string())
    );
    assert!(sim.handle.sets().len() == 1, "nothing but the good set was created");
}

#[tokio::test]
async fn list_sets_by_name_with_paging() {
    let sim = sim(config(5)).await;
    for i in 0..12 {
        sim.create_set(&format!("User Password Reset term-{i:02}")).await;
    }
    sim.create_set("Something else").await;
    let r = sim
        .get_json("conf/sets?content_type=USER&set_type=ITEMIZED&q=name~password%20reset&limit=5&offset=10")
        .await;
    let v = r.json();
    assert_eq!(v["total_record_count"], 12);
    assert_eq!(v["set"].as_array().unwrap().len(), 2);
    let none = sim.get_json("conf/sets?q=name~nothing-like-this").await.json();
    assert_eq!(none, json!({"total_record_count": 0}), "an empty list has no array");
    let default_limit = sim.get_json("conf/sets").await.json();
    assert_eq!(default_limit["set"].as_array().unwrap().len(), 10);
    let xml = sim.get("conf/sets?limit=2").await;
    assert!(
        xml.text.contains(r#"<sets total_record_count="13"><set link="#),
        "{}",
        xml.text
    );
    let too_many = sim.get_json("conf/sets?limit=101").await;
    assert_eq!(too_many.status, 400);
}

#[tokio::test]
async fn add_members_rules_and_codes() {
    let sim = sim(config(3000)).await;
    let set = sim.create_set("members").await;
    let internal = sim.ids(true, 5);
    let ids: Vec<&str> = internal.iter().map(String::as_str).collect();

    let over: Vec<String> = sim
        .handle
        .users()
        .iter()
        .take(1001)
        .map(|u| u.primary_id.clone())
        .collect();
    let over: Vec<&str> = over.iter().map(String::as_str).collect();
    let r = sim.add_members(&set, &over, None).await;
    assert_eq!((r.status, r.error_code()), (400, "60118".to_string()));
    let exactly: Vec<&str> = over[..1000].to_vec();
    let r = sim.add_members(&set, &exactly, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json()["number_of_members"]["value"], 1000);

    let set = sim.create_set("members 2").await;
    let upper = ids[0].to_uppercase();
    let lower = ids[0].to_lowercase();
    let dup_case = if upper != lower {
        vec![upper.as_str(), lower.as_str()]
    } else {
        vec![ids[0], ids[0]]
    };
    let r = sim.add_members(&set, &dup_case, None).await;
    assert_eq!((r.status, r.error_code()), (400, "60119".to_string()));

    let r = sim.add_members(&set, &[ids[0], "NO-SUCH-USER", ids[1]], None).await;
    assert_eq!((r.status, r.error_code()), (400, "60116".to_string()));
    assert_eq!(sim.handle.set_members(&set).unwrap().len(), 0, "the whole call failed");
    let r = sim
        .add_members(&set, &[ids[0], "NO-SUCH-USER", ids[1]], Some(true))
        .await;
    assert_eq!(r.error_code(), "60116");

    let r = sim
        .add_members(&set, &[ids[0], "NO-SUCH-USER", ids[1]], Some(false))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["number_of_members"]["value"], 2, "the unknown id was skipped");

    let r = sim
        .add_members(&set, &[ids[2], &ids[0].to_lowercase()], Some(false))
        .await;
    assert_eq!(
        (r.status, r.error_code()),
        (400, "60115".to_string()),
        "already in the set, in another case"
    );

    // IDs match case-insensitively; the set holds the user's id as stored.
    let r = sim.add_members(&set, &[&ids[3].to_lowercase()], None).await;
    assert_eq!(r.status, 200);
    let members = sim.handle.set_members(&set).unwrap();
    assert_eq!(
        members,
        vec![ids[0].to_string(), ids[1].to_string(), ids[3].to_string()]
    );

    let r = sim
        .post_json(
            &format!("conf/sets/{set}?op=add_members"),
            &json!({"members": {"member": []}}),
        )
        .await;
    assert_eq!(r.error_code(), "60113");
    let r = sim
        .post_json(
            &format!("conf/sets/{set}?op=add_members"),
            &json!({"members": {"member": [{"id": ""}]}}),
        )
        .await;
    assert_eq!(r.error_code(), "60114");
    let r = sim
        .post_json(
            &format!("conf/sets/{set}?op=sprinkle_members"),
            &json!({"members": {"member": [{"id": ids[4]}]}}),
        )
        .await;
    assert_eq!(r.error_code(), "60111");
    let r = sim
        .post_json(
            &format!("conf/sets/{set}"),
            &json!({"members": {"member": [{"id": ids[4]}]}}),
        )
        .await;
    assert_eq!(r.error_code(), "60111", "op is mandatory");
    let r = sim
        .post_json(
            "conf/sets/999?op=add_members",
            &json!({"members": {"member": [{"id": ids[4]}]}}),
        )
        .await;
    assert_eq!(r.error_code(), "60107");

    let xml = format!("<set><members><member><id>{}</id></member></members></set>", ids[4]);
    let r = sim.post_xml(&format!("conf/sets/{set}?op=add_members"), &xml).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(">4</number_of_members>"));

    let r = sim
        .post_json(
            &format!("conf/sets/{set}?op=delete_members"),
            &json!({"members": {"member": [{"id": ids[4]}]}}),
        )
        .await;
    assert_eq!(r.json()["number_of_members"]["value"], 3);
    let r = sim
        .post_json(
            &format!("conf/sets/{set}?op=delete_members"),
            &json!({"members": {"member": [{"id": ids[4]}]}}),
        )
        .await;
    assert_eq!(r.error_code(), "60117");
}

#[tokio::test]
async fn members_list_pages_and_delete_is_204() {
    let sim = sim(config(400)).await;
    let set = sim.create_set("paged").await;
    let ids = sim.ids(true, 25);
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    sim.add_members(&set, &refs, None).await;
    let page = sim
        .get_json(&format!("conf/sets/{set}/members?limit=10&offset=20"))
        .await
        .json();
    assert_eq!(page["total_record_count"], 25);
    let got: Vec<&str> = page["member"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(got, refs[20..]);
    assert!(
        page["member"][0]["description"].as_str().unwrap().contains(' '),
        "the full name"
    );
    let xml = sim.get(&format!("conf/sets/{set}/members?limit=1")).await;
    assert!(
        xml.text.contains(r#"<members total_record_count="25"><member link="#),
        "{}",
        xml.text
    );
    let empty_set = sim.create_set("empty").await;
    assert_eq!(
        sim.get_json(&format!("conf/sets/{empty_set}/members")).await.json(),
        json!({"total_record_count": 0})
    );

    let d = sim.delete(&format!("conf/sets/{set}")).await;
    assert_eq!((d.status, d.text.as_str(), d.header("content-type")), (204, "", None));
    let again = sim.delete(&format!("conf/sets/{set}")).await;
    assert_eq!((again.status, again.error_code()), (400, "402264".to_string()));
    // A trailing slash is tolerated.
    let r = sim
        .post_json(
            "conf/sets/",
            &json!({"name": "slash", "type": "ITEMIZED", "content": "USER"}),
        )
        .await;
    assert_eq!(r.status, 200);
}
