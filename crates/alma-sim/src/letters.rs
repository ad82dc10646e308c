//! Letters (Configuration API, alma-api.md §8c): `GET /conf/letters?type=LETTER|COMPONENT` and
//! `GET /conf/letters/{code}`, shaped after `rest_letter.xsd`. The User Notifications Letter is
//! the one Update/Notify Users sends; what the institution did to it ([`LetterState`]) decides
//! whether a reset password reaches the user.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::config::LetterState;
use super::letter_conf::{OTHER_EDITOR, USER_NOTIFICATIONS_LETTER, USUAL_EDITOR};
use super::state::{Outcome, Req, State, list_json, paging};
use super::wire::{AppError, Reply};

/// A letter or component the institution has.
struct LetterDef {
    code: &'static str,
    name: &'static str,
    description: &'static str,
    /// `LETTER` or `COMPONENT`.
    kind: &'static str,
    xsl: &'static str,
}

const LETTERS: &[LetterDef] = &[
    LetterDef {
        code: USER_NOTIFICATIONS_LETTER,
        name: "User Notifications Letter",
        description: "Notifications to users sent by the Update/Notify Users job",
        kind: "LETTER",
        xsl: USER_NOTIFICATIONS_XSL,
    },
    LetterDef {
        code: "FulOverdueAndLostLoanLetter",
        name: "Ful Overdue and Lost Loan Letter",
        description: "Overdue and lost loan notices",
        kind: "LETTER",
        xsl: OVERDUE_XSL,
    },
    LetterDef {
        code: "FulPlaceOnHoldShelfLetter",
        name: "On Hold Shelf Letter",
        description: "A requested item is waiting on the hold shelf",
        kind: "LETTER",
        xsl: HOLD_SHELF_XSL,
    },
    LetterDef {
        code: "FulUserBorrowingActivityLetter",
        name: "Borrowing Activity Letter",
        description: "The user's loans and their due dates",
        kind: "LETTER",
        xsl: BORROWING_XSL,
    },
    LetterDef {
        code: "header",
        name: "header",
        description: "Header component",
        kind: "COMPONENT",
        xsl: HEADER_XSL,
    },
    LetterDef {
        code: "senderReceiver",
        name: "senderReceiver",
        description: "Sender and receiver component",
        kind: "COMPONENT",
        xsl: SENDER_RECEIVER_XSL,
    },
    LetterDef {
        code: "mailReason",
        name: "mailReason",
        description: "Mail reason component",
        kind: "COMPONENT",
        xsl: MAIL_REASON_XSL,
    },
    LetterDef {
        code: "footer",
        name: "footer",
        description: "Footer component",
        kind: "COMPONENT",
        xsl: FOOTER_XSL,
    },
    LetterDef {
        code: "style",
        name: "style",
        description: "Style component",
        kind: "COMPONENT",
        xsl: STYLE_XSL,
    },
];

fn date(d: NaiveDate) -> String {
    format!("{}Z", d.format("%Y-%m-%d"))
}

impl State {
    /// A letter as `GET /conf/letters/{code}` shows it; with `full`, its labels' link and XSL.
    fn letter_json(&self, def: &LetterDef, req: &Req, full: bool) -> Value {
        let is_user_notifications = def.code == USER_NOTIFICATIONS_LETTER;
        let (state, update_date, updated_by) = if is_user_notifications {
            (self.letter.state, self.letter.update_date, self.letter.updated_by)
        } else {
            (LetterState::Standard, self.letter.others_updated, USUAL_EDITOR)
        };
        let enabled = state != LetterState::Disabled;
        let customized = is_user_notifications && (state != LetterState::Standard || updated_by == OTHER_EDITOR);
        let mut v = json!({
            "code": def.code,
            "name": def.name,
            "description": def.description,
            "enabled": {"value": enabled.to_string(), "desc": if enabled { "Enabled" } else { "Disabled" }},
        });
        if def.kind == "LETTER" {
            v["channel"] = if state == LetterState::Sms { "SMS" } else { "EMAIL" }.into();
            v["retention_period"] = "30".into();
        }
        v["customized"] = json!({"value": customized.to_string()});
        v["patron_facing"] = json!({"value": (def.kind == "LETTER").to_string()});
        v["updated_by"] = json!({"value": updated_by.0, "desc": updated_by.1});
        v["update_date"] = date(update_date).into();
        if full {
            v["labels"] = json!({"link": req.link(&format!("conf/code-tables/{}", def.code))});
            let xsl = match state {
                LetterState::NoPasswordBranch if is_user_notifications => OVERDUE_AS_USER_NOTIFICATIONS_XSL.to_string(),
                // Cut off in the middle of an edit.
                LetterState::BrokenXsl if is_user_notifications => {
                    USER_NOTIFICATIONS_XSL[..USER_NOTIFICATIONS_XSL.len() / 2].to_string()
                }
                LetterState::Reworded if is_user_notifications => USER_NOTIFICATIONS_XSL.replacen(
                    "<xsl:template",
                    "<!-- Reworded by library staff: a new greeting. -->\n<xsl:template",
                    1,
                ),
                _ => def.xsl.to_string(),
            };
            v["xsl"] = xsl.into();
        }
        v["link"] = req.link(&format!("conf/letters/{}", def.code)).into();
        v
    }

    /// `GET /conf/letters?type=LETTER|COMPONENT&limit&offset` (type LETTER when not given).
    pub fn list_letters(&mut self, req: &Req) -> Outcome {
        let (limit, offset) = paging(req)?;
        let kind = match req.q("type").map(str::trim).filter(|t| !t.is_empty()) {
            None => "LETTER",
            Some(t) if t.eq_ignore_ascii_case("LETTER") => "LETTER",
            Some(t) if t.eq_ignore_ascii_case("COMPONENT") => "COMPONENT",
            Some(_) => return Err(AppError::bad_request("402119", "General error.").into()),
        };
        let matching: Vec<&LetterDef> = LETTERS.iter().filter(|l| l.kind == kind).collect();
        let total = matching.len();
        Ok(Reply::ok(
            "letters",
            list_json("letter", matching.into_iter().skip(offset).take(limit), total, |l| {
                self.letter_json(l, req, false)
            }),
        ))
    }

    /// `GET /conf/letters/{code}`; an unknown code is 400 with 60344.
    pub fn get_letter(&mut self, req: &Req) -> Outcome {
        let code = &req.segs[2];
        let def = LETTERS
            .iter()
            .find(|l| l.code == code)
            .ok_or_else(|| AppError::bad_request("60344", "Problem retrieving letter data."))?;
        Ok(Reply::ok("letter", self.letter_json(def, req, true)))
    }
}

/// The opening the User Notifications Letter's XSLs share: the components, the root template,
/// the page's head and greeting (a macro, so that `concat!` can take it).
macro_rules! letter_head {
    () => {
        r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">

  <xsl:include href="header.xsl" />
  <xsl:include href="senderReceiver.xsl" />
  <xsl:include href="mailReason.xsl" />
  <xsl:include href="footer.xsl" />
  <xsl:include href="style.xsl" />

  <xsl:template match="/">
    <html>
      <head>
        <xsl:call-template name="generalStyle" />
      </head>
      <body>
        <xsl:attribute name="style">
          <xsl:call-template name="bodyStyleCss" />
        </xsl:attribute>
        <xsl:call-template name="head" />
        <xsl:call-template name="senderReceiver" />
        <br />
"#
    };
}

/// The out-of-the-box shape: components included, one `xsl:choose` over the notification type,
/// the password branch printing `notification_data/temp_password` (alma-api.md §7).
const USER_NOTIFICATIONS_XSL: &str = concat!(
    letter_head!(),
    r#"        <table cellspacing="0" cellpadding="5" border="0">
          <tr>
            <td>
              <xsl:choose>
                <xsl:when test="notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE'">
                  <h3>@@password_changed@@</h3>
                  <p>@@temporary_password@@ <b><xsl:value-of select="notification_data/temp_password"/></b></p>
                  <p>@@change_it_when_you_sign_in@@</p>
                </xsl:when>
                <xsl:when test="notification_data/notification_type = 'SOCIAL_LOGIN_INVITAION'">
                  <p>@@social_login_invitation@@</p>
                  <a>
                    <xsl:attribute name="href"><xsl:value-of select="notification_data/social_login_url"/></xsl:attribute>
                    @@sign_in@@
                  </a>
                </xsl:when>
                <xsl:when test="notification_data/notification_type = 'ACCOUNT_EXPIRY_REMINDER'">
                  <p>@@account_expires_on@@ <xsl:value-of select="notification_data/user_for_printing/expiry_date"/></p>
                </xsl:when>
                <xsl:otherwise>
                  <p><xsl:value-of select="notification_data/message"/></p>
                </xsl:otherwise>
              </xsl:choose>
            </td>
          </tr>
        </table>
        <br />
        <xsl:call-template name="lastFooter" />
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
"#
);

/// The User Notifications Letter as one institution's public copy has it: rewritten as an
/// overdue notice, no `temp_password` anywhere (alma-api.md §8c).
const OVERDUE_AS_USER_NOTIFICATIONS_XSL: &str = concat!(
    letter_head!(),
    r#"        <p>@@overdue_items_intro@@</p>
        <table cellspacing="0" cellpadding="5" border="0">
          <tr>
            <th>@@title@@</th>
            <th>@@due_date@@</th>
            <th>@@library@@</th>
          </tr>
          <xsl:for-each select="notification_data/item_loans/item_loan">
            <tr>
              <td><xsl:value-of select="title"/></td>
              <td><xsl:value-of select="due_date"/></td>
              <td><xsl:value-of select="library_name"/></td>
            </tr>
          </xsl:for-each>
        </table>
        <p>@@return_or_renew@@</p>
        <xsl:call-template name="lastFooter" />
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
"#
);

/// A short letter: the components and the page around `body` (a macro, so that `concat!` can
/// take it).
macro_rules! simple_letter {
    ($body:literal) => {
        concat!(
            r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:include href="header.xsl" />
  <xsl:include href="senderReceiver.xsl" />
  <xsl:include href="footer.xsl" />
  <xsl:include href="style.xsl" />
  <xsl:template match="/">
    <html>
      <body>
        <xsl:call-template name="head" />
        <xsl:call-template name="senderReceiver" />
"#,
            $body,
            r#"        <xsl:call-template name="lastFooter" />
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
"#
        )
    };
}

const OVERDUE_XSL: &str = simple_letter!(
    r#"        <p>@@inform_you_item_below@@ @@is_overdue@@</p>
        <p><xsl:value-of select="notification_data/item_loan/title"/> (<xsl:value-of select="notification_data/item_loan/due_date"/>)</p>
"#
);

const HOLD_SHELF_XSL: &str = simple_letter!(
    r#"        <p>@@following_item_requested_on@@ <xsl:value-of select="notification_data/request/create_date"/></p>
        <p><xsl:value-of select="notification_data/phys_item_display/title"/></p>
        <p>@@can_picked_at@@ <xsl:value-of select="notification_data/request/assigned_unit_name"/></p>
"#
);

const BORROWING_XSL: &str = simple_letter!(
    r#"        <p>@@loans@@</p>
        <xsl:for-each select="notification_data/item_loans/item_loan">
          <p><xsl:value-of select="title"/> - <xsl:value-of select="due_date"/></p>
        </xsl:for-each>
"#
);

const HEADER_XSL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="head">
    <table cellspacing="0" cellpadding="5" border="0">
      <tr>
        <td><h1><xsl:value-of select="notification_data/general_data/letter_name"/></h1></td>
        <td align="right"><xsl:value-of select="notification_data/general_data/current_date"/></td>
      </tr>
    </table>
  </xsl:template>
</xsl:stylesheet>
"#;

const SENDER_RECEIVER_XSL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="senderReceiver">
    <table cellspacing="0" cellpadding="5" border="0">
      <tr>
        <td><xsl:value-of select="notification_data/receivers/receiver/user/first_name"/>&#160;<xsl:value-of select="notification_data/receivers/receiver/user/last_name"/></td>
        <td align="right"><xsl:value-of select="notification_data/organization_unit/name"/></td>
      </tr>
    </table>
  </xsl:template>
</xsl:stylesheet>
"#;

const MAIL_REASON_XSL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="toWhomIsConcerned">
    <p>@@dear@@ <xsl:value-of select="notification_data/receivers/receiver/user/first_name"/>,</p>
  </xsl:template>
</xsl:stylesheet>
"#;

const FOOTER_XSL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="lastFooter">
    <p>@@sincerely@@<br/><xsl:value-of select="notification_data/organization_unit/name"/></p>
  </xsl:template>
</xsl:stylesheet>
"#;

const STYLE_XSL: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template name="generalStyle">
    <style>body { font-family: Arial, sans-serif; font-size: 12pt; }</style>
  </xsl:template>
  <xsl:template name="bodyStyleCss">font-family: Arial, sans-serif; color: #333;</xsl:template>
</xsl:stylesheet>
"#;

#[cfg(test)]
mod tests {
    use crate::letter_conf::LetterConf;
    use axum::http::StatusCode;
    use serde_json::Value;

    use super::*;
    use crate::config::{Fault, FaultKind, SimConfig, Target};
    use crate::testkit::{get, get_json, get_with, state};
    use crate::wire::Format;
    use crate::xml::parse_tree;

    const PASSWORD_BRANCH: &str = "<xsl:when test=\"notification_data/notification_type = 'NOTIFY_PASSWORD_CHANGE'\">";
    const PRINTS_PASSWORD: &str = "<xsl:value-of select=\"notification_data/temp_password\"/>";

    fn letter(letter: LetterState) -> (Value, String) {
        let mut st = state(SimConfig::default().users(10).letter(letter));
        let (status, json) = get_json(&mut st, "conf/letters/UserNotificationsLetter");
        assert_eq!(status, StatusCode::OK, "{json}");
        let (status, xml) = get(&mut st, "conf/letters/UserNotificationsLetter", Format::Xml);
        assert_eq!(status, StatusCode::OK, "{xml}");
        (json, xml)
    }

    #[test]
    fn the_user_notifications_letter_in_each_state_in_json_and_xml() {
        for (letter_state, enabled, desc, channel, has_password, customized) in [
            (LetterState::Standard, "true", "Enabled", "EMAIL", true, "false"),
            (LetterState::Disabled, "false", "Disabled", "EMAIL", true, "true"),
            (LetterState::Sms, "true", "Enabled", "SMS", true, "true"),
            (LetterState::NoPasswordBranch, "true", "Enabled", "EMAIL", false, "true"),
        ] {
            let (json, xml) = letter(letter_state);
            let name = letter_state.name();
            assert_eq!(json["code"], "UserNotificationsLetter", "{name}");
            assert_eq!(json["name"], "User Notifications Letter");
            assert_eq!(json["enabled"], json!({"value": enabled, "desc": desc}), "{name}");
            assert_eq!(json["channel"], channel, "{name}");
            assert_eq!(json["customized"], json!({"value": customized}), "{name}");
            assert_eq!(json["patron_facing"], json!({"value": "true"}));
            assert_eq!(json["retention_period"], "30");
            // The default manual clock starts 2026-01-05; the letter was edited 400 days before.
            assert_eq!(json["update_date"], "2024-12-01Z");
            assert_eq!(json["updated_by"], json!({"value": "jsmith", "desc": "Jane Smith"}));
            assert_eq!(
                json["labels"],
                json!({"link": "http://127.0.0.1:8089/almaws/v1/conf/code-tables/UserNotificationsLetter"})
            );
            let xsl = json["xsl"].as_str().unwrap();
            assert!(xsl.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<xsl:stylesheet version=\"1.0\""));
            assert_eq!(xsl.matches("<xsl:include href=").count(), 5, "{name}");
            assert_eq!(xsl.contains(PASSWORD_BRANCH), has_password, "{name}");
            assert_eq!(xsl.contains(PRINTS_PASSWORD), has_password, "{name}");
            assert_eq!(xsl.contains("temp_password"), has_password, "{name}: nowhere");
            if has_password {
                assert_eq!(
                    xsl.matches("<xsl:when test=\"notification_data/notification_type = '")
                        .count(),
                    3
                );
                let branch = &xsl[xsl.find(PASSWORD_BRANCH).unwrap()..];
                let branch = &branch[..branch.find("</xsl:when>").unwrap()];
                assert!(
                    branch.contains(PRINTS_PASSWORD),
                    "the password is printed in its branch"
                );
            } else {
                assert!(
                    xsl.contains("notification_data/item_loans/item_loan"),
                    "an overdue notice"
                );
            }

            assert!(
                xml.contains(&format!("<enabled desc=\"{desc}\">{enabled}</enabled>")),
                "{xml}"
            );
            assert!(xml.contains(&format!("<channel>{channel}</channel>")), "{xml}");
            assert!(
                xml.contains("<updated_by desc=\"Jane Smith\">jsmith</updated_by>"),
                "{xml}"
            );
            assert!(xml.contains("<update_date>2024-12-01Z</update_date>"), "{xml}");
            assert!(xml.contains("<labels link=\"http://127.0.0.1:8089/almaws/v1/conf/code-tables/"));
            assert!(!xml.contains("<xsl:"), "the XSL is escaped in the XML form");
            assert_eq!(
                xml.contains("&lt;xsl:value-of select=&quot;notification_data/temp_password&quot;/&gt;"),
                has_password
            );
            let tree = parse_tree(xml.as_bytes()).unwrap();
            assert_eq!(tree.name, "letter");
            assert_eq!(tree.child_text("code"), Some("UserNotificationsLetter"));
            assert_eq!(
                tree.child("xsl").unwrap().text,
                xsl,
                "{name}: the same XSL once unescaped"
            );
        }
    }

    #[test]
    fn an_edit_moves_the_date_and_the_editor() {
        let edited = chrono::DateTime::parse_from_rfc3339("2025-11-20T10:00:00Z")
            .unwrap()
            .to_utc();
        let mut st = state(SimConfig::default().users(10).letter_edited_at(edited));
        let (_, v) = get_json(&mut st, "conf/letters/UserNotificationsLetter");
        assert_eq!(v["update_date"], "2025-11-20Z");
        assert_eq!(v["updated_by"], json!({"value": "rlopez", "desc": "Rosa Lopez"}));
        assert_eq!(v["customized"]["value"], "true");
        // Another letter is untouched.
        let (_, other) = get_json(&mut st, "conf/letters/FulOverdueAndLostLoanLetter");
        assert_eq!(
            (other["update_date"].as_str(), other["updated_by"]["value"].as_str()),
            (Some("2024-12-01Z"), Some("jsmith"))
        );

        // Staff disable it while the simulator runs.
        st.clock.advance(std::time::Duration::from_secs(86_400 * 3));
        let now = st.clock.now();
        st.letter.set(LetterState::Disabled, now);
        let (_, v) = get_json(&mut st, "conf/letters/UserNotificationsLetter");
        assert_eq!(v["enabled"]["value"], "false");
        assert_eq!(v["update_date"], "2026-01-08Z");
        assert_eq!(v["updated_by"]["value"], "rlopez");
    }

    #[test]
    fn unknown_letters_are_60344_and_lists_page_by_type() {
        let mut st = state(SimConfig::default().users(10));
        for format in [Format::Json, Format::Xml] {
            let (status, text) = get(&mut st, "conf/letters/NoSuchLetter", format);
            assert_eq!(status, StatusCode::BAD_REQUEST);
            assert!(
                text.contains("60344") && text.contains("Problem retrieving letter data."),
                "{text}"
            );
        }
        let (_, err) = get_json(&mut st, "conf/letters/NoSuchLetter");
        assert_eq!(
            err["errorList"]["error"][0]["errorCode"], "60344",
            "an error list, as Alma's"
        );
        assert!(err["result"].is_null());

        let (status, list) = get_json(&mut st, "conf/letters");
        assert_eq!(status, StatusCode::OK);
        assert_eq!(list["total_record_count"], 4, "type LETTER by default");
        let codes: Vec<&str> = list["letter"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["code"].as_str().unwrap())
            .collect();
        assert_eq!(
            codes,
            [
                "UserNotificationsLetter",
                "FulOverdueAndLostLoanLetter",
                "FulPlaceOnHoldShelfLetter",
                "FulUserBorrowingActivityLetter"
            ]
        );
        assert!(list["letter"][0].get("xsl").is_none(), "the list is brief");
        assert_eq!(
            list["letter"][0]["link"],
            "http://127.0.0.1:8089/almaws/v1/conf/letters/UserNotificationsLetter"
        );
        let (_, page) = get_json(&mut st, "conf/letters?type=LETTER&limit=2&offset=1");
        assert_eq!(page["total_record_count"], 4);
        assert_eq!(page["letter"].as_array().unwrap().len(), 2);
        assert_eq!(page["letter"][0]["code"], "FulOverdueAndLostLoanLetter");
        let (_, components) = get_json(&mut st, "conf/letters?type=COMPONENT");
        assert_eq!(components["total_record_count"], 5);
        assert_eq!(components["letter"][0]["code"], "header");
        let (_, header) = get_json(&mut st, "conf/letters/header");
        assert!(header["xsl"].as_str().unwrap().contains("<xsl:template name=\"head\">"));
        let (status, text) = get(&mut st, "conf/letters?type=LETTER", Format::Xml);
        assert_eq!(status, StatusCode::OK);
        assert!(
            text.contains("<letters total_record_count=\"4\"><letter link=\"http://127.0.0.1:8089/almaws/v1/conf/letters/UserNotificationsLetter\"><code>UserNotificationsLetter</code>"),
            "{text}"
        );
        let (status, bad) = get_json(&mut st, "conf/letters?type=NOTICE");
        assert_eq!(
            (status, bad["errorList"]["error"][0]["errorCode"].as_str()),
            (StatusCode::BAD_REQUEST, Some("402119"))
        );
    }

    #[test]
    fn letters_need_configuration_read_and_faults_can_aim_at_them() {
        let mut st = state(
            SimConfig::default()
                .users(10)
                .fault(Fault::new(FaultKind::ServerError, "letter-get".parse().unwrap())),
        );
        assert_eq!("letter-list".parse::<Target>(), Ok(Target::LetterList));
        let (status, _) = get_with(&mut st, "sim-analytics-ro", "conf/letters", Format::Json);
        assert_eq!(status, StatusCode::FORBIDDEN, "an Analytics-only key");
        let (status, _) = get_with(&mut st, "sim-ro", "conf/letters", Format::Json);
        assert_eq!(status, StatusCode::OK, "Configuration read is enough");
        let (status, _) = get_with(&mut st, "sim-ro", "conf/letters/UserNotificationsLetter", Format::Json);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "the fault on letter-get");
        let (status, _) = get_with(&mut st, "sim-ro", "conf/letters/UserNotificationsLetter", Format::Json);
        assert_eq!(status, StatusCode::OK, "one fault only");
    }

    #[test]
    fn delivery_follows_the_letter_and_the_address() {
        let start = NaiveDate::from_ymd_opt(2026, 1, 5).unwrap();
        let conf = |s| LetterConf::new(s, None, start);
        assert_eq!(conf(LetterState::Standard).delivery(true, true), (true, true, None));
        assert_eq!(conf(LetterState::Standard).delivery(true, false), (true, false, None));
        assert_eq!(
            conf(LetterState::Standard).delivery(false, true),
            (false, false, Some("no preferred email"))
        );
        assert_eq!(
            conf(LetterState::Disabled).delivery(true, true),
            (false, false, Some("letter disabled"))
        );
        assert_eq!(
            conf(LetterState::Sms).delivery(true, true),
            (false, false, Some("letter sent by SMS"))
        );
        assert_eq!(
            conf(LetterState::NoPasswordBranch).delivery(true, true),
            (true, false, Some("letter has no password branch"))
        );
        assert_eq!(
            conf(LetterState::NoPasswordBranch).delivery(false, true),
            (false, false, Some("no preferred email"))
        );
        for s in ["standard", "disabled", "sms", "no-password"] {
            assert_eq!(s.parse::<LetterState>().unwrap().name(), s);
        }
        assert!("email".parse::<LetterState>().is_err());
    }
}
