//! The job's "API information" payload from Alma's Run a Job wizard (JSON `{"parameter":[…]}` or
//! XML `<job><parameters>…`), with `{set_id}` and `{job_name}` left for run time. The list a run
//! sends (payload or defaults, with `[job.parameters]` merged in) must send the notification the
//! query names, and may not change user fields unless the query allows it.

use std::path::Path;

use crate::error::Error;

/// Parameters from a payload file; `set_id` is filled in later by the run, `job_name` now (the
/// run's own instance name, whatever the file says, so a lost submission can be found again).
pub fn read_payload(file: &Path, instance_name: &str) -> Result<Vec<(String, String)>, Error> {
    let bad = |message: String| Error::Input {
        path: file.to_path_buf(),
        line: None,
        message,
    };
    let text = crate::text::read_text(file, crate::text::limit::SMALL).map_err(|e| bad(e.to_string()))?;
    let trimmed = text.trim_start();
    let mut params: Vec<(String, String)> = if trimmed.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(trimmed).map_err(|e| bad(format!("not JSON: {e}")))?;
        let list = v
            .get("parameter")
            .and_then(|p| p.as_array())
            .ok_or_else(|| bad("no \"parameter\" list".into()))?;
        list.iter()
            .map(|p| {
                let name = p
                    .get("name")
                    .and_then(|n| n.get("value").or(Some(n)))
                    .and_then(|n| n.as_str())
                    .unwrap_or_default();
                let value = match p.get("value") {
                    Some(serde_json::Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => String::new(),
                };
                (name.to_string(), value)
            })
            .collect()
    } else {
        let mut reader = quick_xml::Reader::from_str(trimmed);
        let mut out = Vec::new();
        let (mut name, mut value, mut field) = (String::new(), String::new(), "");
        loop {
            match reader.read_event().map_err(|e| bad(format!("not XML: {e}")))? {
                quick_xml::events::Event::Start(e) => match e.local_name().as_ref() {
                    "parameter" => (name, value) = (String::new(), String::new()),
                    "name" => field = "name",
                    "value" => field = "value",
                    _ => field = "",
                },
                quick_xml::events::Event::Text(t) => match field {
                    "name" => name.push_str(&t.xml10_content()),
                    "value" => value.push_str(&t.xml10_content()),
                    _ => {}
                },
                quick_xml::events::Event::End(e) => {
                    if e.local_name().as_ref() == "parameter" {
                        out.push((name.trim().to_string(), value.trim().to_string()));
                    }
                    field = "";
                }
                quick_xml::events::Event::Eof => break,
                _ => {}
            }
        }
        out
    };
    params.retain(|(k, _)| !k.is_empty() && k != "set_id");
    for (k, v) in &mut params {
        if k == "job_name" || v.contains("{job_name}") {
            *v = instance_name.to_string();
        }
    }
    if !params.iter().any(|(k, _)| k == "job_name") {
        params.push(("job_name".into(), instance_name.to_string()));
    }
    Ok(params)
}

/// Checks the parameter list a run will send: Notify Password Change (or the query's
/// notification) is sent, and no user field is changed unless the query allows it.
pub fn check_parameters(
    params: &[(String, String)],
    notification: &str,
    allow_user_updates: bool,
) -> Result<(), String> {
    let get = |k: &str| params.iter().rev().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("SEND_Notification_To_User_Active") != Some("true")
        || get("SEND_Notification_To_User_Value") != Some(notification)
    {
        return Err(format!(
            "the job parameters must send the notification {notification}: SEND_Notification_To_User_Active=true and SEND_Notification_To_User_Value={notification}"
        ));
    }
    if !allow_user_updates
        && let Some((k, _)) = params
            .iter()
            .find(|(k, v)| k.starts_with("UPDATE_") && k.ends_with("_Active") && v.trim().eq_ignore_ascii_case("true"))
    {
        return Err(format!(
            "the job parameters would also change user fields ({k}=true); set allow_user_updates = true in [job] if that is intended"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("payload-{}-{name}", std::process::id()));
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn json_and_xml_payloads() {
        let json = write(
            "p.json",
            r#"{"parameter":[{"name":{"value":"set_id"},"value":"{set_id}"},{"name":{"value":"job_name"},"value":"{job_name}"},
            {"name":{"value":"SEND_Notification_To_User_Active"},"value":"true"},{"name":{"value":"SEND_Notification_To_User_Value"},"value":"NOTIFY_PASSWORD_CHANGE"},
            {"name":{"value":"UPDATE_User_Information_Status_Active"},"value":"false"},{"name":{"value":"PRODUCT"},"value":"alma"}]}"#,
        );
        let p = read_payload(&json, "alma-cohort r1").unwrap();
        check_parameters(&p, "NOTIFY_PASSWORD_CHANGE", false).unwrap();
        assert!(p.contains(&("job_name".into(), "alma-cohort r1".into())));
        assert!(p.contains(&("PRODUCT".into(), "alma".into())));
        assert!(!p.iter().any(|(k, _)| k == "set_id"));
        let xml = write(
            "p.xml",
            "<job><parameters><parameter><name>SEND_Notification_To_User_Active</name><value>true</value></parameter><parameter><name>SEND_Notification_To_User_Value</name><value>NOTIFY_PASSWORD_CHANGE</value></parameter><parameter><name>UPDATE_User_Information_Status_Active</name><value>true</value></parameter></parameters></job>",
        );
        let x = read_payload(&xml, "alma-cohort r1").unwrap();
        let e = check_parameters(&x, "NOTIFY_PASSWORD_CHANGE", false).unwrap_err();
        assert!(e.contains("allow_user_updates"), "{e}");
        assert!(check_parameters(&x, "NOTIFY_PASSWORD_CHANGE", true).is_ok());
        let e = check_parameters(&x, "SOMETHING_ELSE", true).unwrap_err();
        assert!(e.contains("must send the notification SOMETHING_ELSE"), "{e}");
        // "TRUE" in any case and spacing counts as true.
        let shouted = [
            ("SEND_Notification_To_User_Active".to_string(), "true".to_string()),
            (
                "SEND_Notification_To_User_Value".to_string(),
                "NOTIFY_PASSWORD_CHANGE".to_string(),
            ),
            ("UPDATE_User_Group_Active".to_string(), " TRUE ".to_string()),
        ];
        assert!(check_parameters(&shouted, "NOTIFY_PASSWORD_CHANGE", false).is_err());
    }
}
