//! What the simulator puts on the wire: content negotiation, replies, and Alma's two error shapes
//! (application errors with an error *list*, gateway errors with a single error object).

use axum::http::StatusCode;
use serde_json::{Value, json};

use super::xml::{XmlWriter, json_to_xml};

/// Response format chosen from the `Accept` header or the `format` query parameter. Alma
/// answers XML when nothing is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Xml,
    Json,
}

impl Format {
    pub fn negotiate(accept: Option<&str>, format_param: Option<&str>) -> Self {
        match format_param.map(str::to_ascii_lowercase).as_deref() {
            Some("json") => return Format::Json,
            Some("xml") => return Format::Xml,
            _ => {}
        }
        match accept {
            Some(a) if a.to_ascii_lowercase().contains("application/json") => Format::Json,
            _ => Format::Xml,
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xml => "application/xml;charset=UTF-8",
            Format::Json => "application/json;charset=UTF-8",
        }
    }
}

/// The body of a reply before it is rendered in the negotiated format.
#[derive(Debug, Clone)]
pub enum Body {
    /// A domain object: JSON as is, XML through Alma's mapping under `root`.
    Object {
        root: &'static str,
        value: Value,
    },
    /// Already rendered, with its content type (analytics pages, fixed-format gateway errors).
    Rendered {
        content_type: &'static str,
        text: String,
    },
    Empty,
}

#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub body: Body,
    /// An error reply's parts, for the recorded error shapes (`--quirk errors-recorded-shapes`).
    pub error: Option<ErrorInfo>,
}

impl Reply {
    pub fn ok(root: &'static str, value: Value) -> Self {
        Self {
            status: StatusCode::OK,
            body: Body::Object { root, value },
            error: None,
        }
    }

    pub fn rendered(status: StatusCode, content_type: &'static str, text: String) -> Self {
        Self {
            status,
            body: Body::Rendered { content_type, text },
            error: None,
        }
    }

    pub fn no_content() -> Self {
        Self {
            status: StatusCode::NO_CONTENT,
            body: Body::Empty,
            error: None,
        }
    }

    fn with_error(mut self, code: &str, message: &str, tracking_id: Option<&str>, gateway: bool) -> Self {
        self.error = Some(ErrorInfo {
            code: code.to_string(),
            message: message.to_string(),
            tracking_id: tracking_id.map(str::to_string),
            gateway,
        });
        self
    }

    /// Content type and bytes in the negotiated format.
    pub fn render(&self, format: Format) -> (Option<&'static str>, String) {
        match &self.body {
            Body::Object { root, value } => match format {
                Format::Json => (Some(format.content_type()), value.to_string()),
                Format::Xml => (Some(format.content_type()), json_to_xml(root, value)),
            },
            Body::Rendered { content_type, text } => (Some(content_type), text.clone()),
            Body::Empty => (None, String::new()),
        }
    }

    /// Content type and bytes in the negotiated format; with `recorded_errors` an error in the
    /// shapes institutions recorded (shared/real-alma §4): the gateway's JSON without trackingId,
    /// a space after the message, keys errorList, errorsExist, result (PER_SECOND_THRESHOLD);
    /// its XML with CRLF line ends, 12/24/36-space indentation and no trackingId (UNAUTHORIZED,
    /// XML whatever was asked, as always); Alma's own XML errors on one line, declared
    /// `encoding="utf-8"` in lower case (its JSON errors are the usual shape, which is recorded).
    pub fn render_with(&self, format: Format, recorded_errors: bool) -> (Option<&'static str>, String) {
        let Some(e) = self.error.as_ref().filter(|_| recorded_errors) else {
            return self.render(format);
        };
        let deep = |message: &str| web_service_result_xml(&e.code, message, None, "\r\n", "            ");
        let xml = Format::Xml.content_type();
        match (e.gateway, format) {
            (true, _) if e.code == "UNAUTHORIZED" => (Some(xml), deep(&e.message)),
            (true, Format::Json) => (
                Some(format.content_type()),
                json!({
                    "errorList": {"error": [{"errorCode": e.code, "errorMessage": format!("{} ", e.message)}]},
                    "errorsExist": true,
                    "result": null,
                })
                .to_string(),
            ),
            (true, Format::Xml) => (Some(xml), deep(&e.message)),
            (false, Format::Xml) => (
                Some(xml),
                web_service_result_xml(&e.code, &e.message, e.tracking_id.as_deref(), "", "").replacen(
                    super::xml::DECLARATION,
                    r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?>"#,
                    1,
                ),
            ),
            (false, Format::Json) => self.render(format),
        }
    }
}

/// An error reply's parts, kept for the recorded error shapes (`--quirk errors-recorded-shapes`).
#[derive(Debug, Clone)]
pub struct ErrorInfo {
    pub code: String,
    pub message: String,
    pub tracking_id: Option<String>,
    /// The gateway's error (string code, one error object), not Alma's.
    pub gateway: bool,
}

/// An application ("logical") error: HTTP 400 (sometimes 500) with `web_service_result`, an
/// error *list*, a trackingId and `"result": null`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub status: StatusCode,
    pub code: String,
    pub message: String,
}

impl AppError {
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: code.to_string(),
            message: message.into(),
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    pub fn into_reply(self, format: Format, tracking_id: &str) -> Reply {
        let text = match format {
            Format::Json => json!({
                "errorsExist": true,
                "errorList": {"error": [{
                    "errorCode": self.code,
                    "errorMessage": self.message,
                    "trackingId": tracking_id,
                }]},
                "result": null,
            })
            .to_string(),
            Format::Xml => web_service_result_xml(&self.code, &self.message, Some(tracking_id), "", ""),
        };
        Reply::rendered(self.status, format.content_type(), text).with_error(
            &self.code,
            &self.message,
            Some(tracking_id),
            false,
        )
    }
}

/// Errors raised by the API gateway in front of Alma, with string codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GatewayError {
    /// Unknown key, or a key without the area or write permission.
    Unauthorized {
        status: StatusCode,
    },
    PerSecondThreshold,
    DailyThreshold,
    /// No such URL path.
    NotFound,
    /// A request body the gateway could not read.
    BadRequest,
    /// "General error with the API Gateway – please retry later." (the 5xx fault)
    GeneralError {
        status: StatusCode,
    },
}

impl GatewayError {
    pub fn status(self) -> StatusCode {
        match self {
            GatewayError::Unauthorized { status } | GatewayError::GeneralError { status } => status,
            GatewayError::PerSecondThreshold | GatewayError::DailyThreshold => StatusCode::TOO_MANY_REQUESTS,
            GatewayError::NotFound => StatusCode::NOT_FOUND,
            GatewayError::BadRequest => StatusCode::BAD_REQUEST,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            GatewayError::Unauthorized { .. } => "UNAUTHORIZED",
            GatewayError::PerSecondThreshold => "PER_SECOND_THRESHOLD",
            GatewayError::DailyThreshold => "DAILY_THRESHOLD",
            GatewayError::NotFound => "NOT_FOUND",
            GatewayError::BadRequest => "BAD_REQUEST",
            GatewayError::GeneralError { .. } => "GENERAL_ERROR",
        }
    }

    fn default_message(self) -> &'static str {
        match self {
            GatewayError::Unauthorized { .. } => "API-key not defined or not configured to allow this API.",
            GatewayError::PerSecondThreshold => "HTTP requests are more than allowed per second",
            GatewayError::DailyThreshold => {
                "Daily API Request Threshold has been reached. For details see: https://developers.exlibrisgroup.com/alma/apis/#threshold"
            }
            GatewayError::NotFound => "",
            GatewayError::BadRequest => "Request body could not be read",
            GatewayError::GeneralError { .. } => "General error with the API Gateway - please retry later.",
        }
    }

    /// The gateway's body. UNAUTHORIZED is XML with CRLF indentation and no trackingId whatever
    /// the client asked for (as captured from a real gateway); the others follow `Accept`, and in
    /// JSON are wrapped in `web_service_result` with `error` as a single object.
    pub fn into_reply(self, format: Format, message: Option<&str>) -> Reply {
        let message = message.unwrap_or(self.default_message());
        if let GatewayError::Unauthorized { .. } = self {
            let text = web_service_result_xml(self.code(), message, None, "\r\n", "  ");
            return Reply::rendered(self.status(), Format::Xml.content_type(), text).with_error(
                self.code(),
                message,
                None,
                true,
            );
        }
        let text = match format {
            Format::Json => json!({"web_service_result": {
                "errorsExist": true,
                "errorList": {"error": {"errorCode": self.code(), "errorMessage": message, "trackingId": "unknown"}},
            }})
            .to_string(),
            Format::Xml => web_service_result_xml(self.code(), message, Some("unknown"), "", ""),
        };
        Reply::rendered(self.status(), format.content_type(), text).with_error(self.code(), message, None, true)
    }
}

fn web_service_result_xml(code: &str, message: &str, tracking_id: Option<&str>, nl: &str, ind: &str) -> String {
    let mut w = XmlWriter::with_declaration();
    w.raw(nl).open(
        "web_service_result",
        &[("xmlns", "http://com/exlibris/urm/general/xmlbeans")],
    );
    w.raw(nl).raw(ind).leaf("errorsExist", "true");
    w.raw(nl).raw(ind).open("errorList", &[]);
    w.raw(nl).raw(ind).raw(ind).open("error", &[]);
    w.raw(nl).raw(ind).raw(ind).raw(ind).leaf("errorCode", code);
    w.raw(nl).raw(ind).raw(ind).raw(ind).leaf("errorMessage", message);
    if let Some(t) = tracking_id {
        w.raw(nl).raw(ind).raw(ind).raw(ind).leaf("trackingId", t);
    }
    w.raw(nl).raw(ind).raw(ind).close("error");
    w.raw(nl).raw(ind).close("errorList");
    w.raw(nl).close("web_service_result").raw(nl);
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negotiation_defaults_to_xml() {
        assert_eq!(Format::negotiate(None, None), Format::Xml);
        assert_eq!(Format::negotiate(Some("*/*"), None), Format::Xml);
        assert_eq!(Format::negotiate(Some("application/json"), None), Format::Json);
        assert_eq!(Format::negotiate(Some("application/json"), Some("xml")), Format::Xml);
        assert_eq!(Format::negotiate(None, Some("json")), Format::Json);
    }

    #[test]
    fn application_errors_are_lists_gateway_errors_single_objects() {
        let app =
            AppError::bad_request("401861", "User with identifier x was not found.").into_reply(Format::Json, "E01-1");
        let (_, text) = app.render(Format::Json);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert!(v["errorList"]["error"].is_array());
        assert!(v["result"].is_null());

        let gw = GatewayError::PerSecondThreshold.into_reply(Format::Json, None);
        assert_eq!(gw.status, StatusCode::TOO_MANY_REQUESTS);
        let (_, text) = gw.render(Format::Json);
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["web_service_result"]["errorList"]["error"]["errorCode"],
            "PER_SECOND_THRESHOLD"
        );

        let unauthorized = GatewayError::Unauthorized {
            status: StatusCode::BAD_REQUEST,
        }
        .into_reply(Format::Json, None);
        let (ct, text) = unauthorized.render(Format::Json);
        assert_eq!(ct, Some("application/xml;charset=UTF-8"));
        assert!(text.contains("\r\n  <errorsExist>true</errorsExist>"));
        assert!(!text.contains("trackingId"));
    }

    #[test]
    fn errors_in_the_recorded_shapes() {
        let gw = GatewayError::PerSecondThreshold.into_reply(Format::Json, None);
        let (_, json) = gw.render_with(Format::Json, true);
        assert!(
            json.starts_with(r#"{"errorList":{"error":[{"errorCode":"PER_SECOND_THRESHOLD""#),
            "{json}"
        );
        assert!(json.ends_with(r#" "}]},"errorsExist":true,"result":null}"#), "{json}");
        assert!(!json.contains("trackingId"));
        let (_, xml) = gw.render_with(Format::Xml, true);
        assert!(
            xml.contains("\r\n                                    <errorCode>PER_SECOND_THRESHOLD</errorCode>"),
            "{xml}"
        );
        assert!(!xml.contains("trackingId"));
        let unauthorized = GatewayError::Unauthorized {
            status: StatusCode::BAD_REQUEST,
        }
        .into_reply(Format::Json, None);
        let (ct, xml) = unauthorized.render_with(Format::Json, true);
        assert_eq!(ct, Some("application/xml;charset=UTF-8"), "XML whatever was asked");
        assert!(xml.contains("\r\n            <errorsExist>"), "{xml}");
        let app = AppError::bad_request("60107", "Invalid set ID: x").into_reply(Format::Xml, "E01-1");
        let (_, xml) = app.render_with(Format::Xml, true);
        assert!(
            xml.starts_with(r#"<?xml version="1.0" encoding="utf-8" standalone="yes"?><web_service_result"#),
            "{xml}"
        );
        assert!(
            xml.contains("<trackingId>E01-1</trackingId>") && !xml.contains('\n'),
            "{xml}"
        );
        // Without the quirk, the usual shape; Alma's JSON errors and replies that are no error
        // are never changed.
        assert_eq!(app.render_with(Format::Xml, false), app.render(Format::Xml));
        let app_json = AppError::bad_request("60107", "Invalid set ID: x").into_reply(Format::Json, "E01-1");
        assert_eq!(app_json.render_with(Format::Json, true), app_json.render(Format::Json));
        let ok = Reply::ok("x", json!({"a": 1}));
        assert_eq!(ok.render_with(Format::Json, true), ok.render(Format::Json));
    }
}
