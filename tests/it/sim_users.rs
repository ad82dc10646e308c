//! The simulator's users API (alma-api.md §6).

use crate::support::*;

#[tokio::test]
async fn users_are_found_case_insensitively_and_never_show_a_password() {
    let sim = sim(config(200)).await;
    let id = sim
        .handle
        .users()
        .into_iter()
        .find(|u| u.primary_id.chars().any(|c| c.is_ascii_alphabetic()))
        .unwrap()
        .primary_id;
    let r = sim.get_json(&format!("users/{}", id.to_lowercase())).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let v = r.json();
    assert_eq!(v["primary_id"], id.as_str());
    assert_eq!(v["password"], "");
    assert!(["INTERNAL", "EXTERNAL"].contains(&v["account_type"]["value"].as_str().unwrap()));
    let xml = sim.get(&format!("users/{id}")).await;
    assert!(xml.text.contains(&format!("<primary_id>{id}</primary_id>")));

    let missing = sim.get_json("users/nobody-here").await;
    assert_eq!(missing.status, 400, "not found is 400, never 404");
    assert_eq!(missing.error_code(), "401861");
    assert!(missing.text.contains("User with identifier nobody-here was not found."));
}
