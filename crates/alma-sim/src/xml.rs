//! XML for the simulator: a small escaping writer, a tolerant tree reader for request bodies, and
//! Alma's mapping of its JSON objects to XML (code fields as text + `desc`/`link` attributes,
//! arrays wrapped in a plural element).

use quick_xml::escape::escape;
use quick_xml::events::Event;
use serde_json::Value;

pub const DECLARATION: &str = r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?>"#;

/// An XML string builder that escapes every text and attribute value it is given.
#[derive(Default)]
pub struct XmlWriter {
    out: String,
}

impl XmlWriter {
    pub fn with_declaration() -> Self {
        let mut w = Self::default();
        w.out.push_str(DECLARATION);
        w
    }

    pub fn open(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.out.push('<');
        self.out.push_str(name);
        for (k, v) in attrs {
            self.out.push(' ');
            self.out.push_str(k);
            self.out.push_str("=\"");
            self.out.push_str(&escape(*v));
            self.out.push('"');
        }
        self.out.push('>');
        self
    }

    pub fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) -> &mut Self {
        self.open(name, attrs);
        self.out.pop();
        self.out.push_str("/>");
        self
    }

    pub fn close(&mut self, name: &str) -> &mut Self {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
        self
    }

    pub fn text(&mut self, text: &str) -> &mut Self {
        self.out.push_str(&escape(text));
        self
    }

    /// `<name>text</name>`
    pub fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name, &[]).text(text).close(name)
    }

    /// Layout whitespace (newlines and indentation), written as is.
    pub fn raw(&mut self, s: &str) -> &mut Self {
        self.out.push_str(s);
        self
    }

    pub fn finish(self) -> String {
        self.out
    }
}

/// One element of a parsed request body: local name, attributes, text and children.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Node>,
}

impl Node {
    pub fn child(&self, name: &str) -> Option<&Node> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Node> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// Trimmed text of a direct child.
    pub fn child_text(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| c.text.trim())
    }

    pub fn attr(&self, local: &str) -> Option<&str> {
        self.attrs.iter().find(|(k, _)| k == local).map(|(_, v)| v.as_str())
    }
}

/// Parses a whole document into a tree of local names (namespace prefixes dropped). Errors are
/// returned as text suitable for an Alma-shaped error message.
pub fn parse_tree(input: &[u8]) -> Result<Node, String> {
    let mut reader = quick_xml::Reader::from_reader(input);
    reader.config_mut().trim_text(false);
    let mut stack: Vec<Node> = Vec::new();
    let mut root: Option<Node> = None;
    let mut buf = Vec::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("malformed XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) | Event::Empty(e) if root.is_some() => {
                return Err(format!("content after the root element: <{}>", e.local_name().as_ref()));
            }
            Event::Start(e) => stack.push(start_node(&e)?),
            Event::Empty(e) => {
                let node = start_node(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::End(_) => {
                let node = stack.pop().ok_or("unbalanced end tag")?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => root = Some(node),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let resolved = match r.resolve_char_ref().map_err(|e| e.to_string())? {
                        Some(c) => c.to_string(),
                        None => {
                            let name = r.xml10_content();
                            quick_xml::escape::resolve_xml_entity(&name)
                                .ok_or_else(|| format!("unknown entity &{name};"))?
                                .to_string()
                        }
                    };
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    if !stack.is_empty() {
        return Err(format!("document ends inside <{}>", stack[stack.len() - 1].name));
    }
    root.ok_or_else(|| "no root element".to_string())
}

fn start_node(e: &quick_xml::events::BytesStart<'_>) -> Result<Node, String> {
    let name = e.local_name().as_ref().to_string();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|e| format!("bad attribute: {e}"))?;
        let key = a.key.local_name().as_ref().to_string();
        let value = a
            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
            .map_err(|e| format!("bad attribute value: {e}"))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

/// Renders one of Alma's JSON objects as Alma's XML: `{"value":..,"desc":..,"link":..}` becomes
/// text with attributes, `link`, a list's `total_record_count` and an email's `preferred` and
/// `segment_type` become attributes, and an
/// array under key `k` becomes `<ks><k>…</k></ks>` unless its parent is already `<ks>`.
pub fn json_to_xml(root: &str, value: &Value) -> String {
    let mut w = XmlWriter::with_declaration();
    write_value(&mut w, root, value);
    w.finish()
}

fn write_value(w: &mut XmlWriter, name: &str, value: &Value) {
    match value {
        Value::Null => {
            w.empty(name, &[]);
        }
        Value::Object(map) => {
            if is_code_field(map) {
                let attrs: Vec<(&str, String)> = ["desc", "link"]
                    .iter()
                    .filter_map(|k| map.get(*k).map(|v| (*k, scalar_text(v))))
                    .collect();
                let attrs: Vec<(&str, &str)> = attrs.iter().map(|(k, v)| (*k, v.as_str())).collect();
                w.open(name, &attrs).text(&scalar_text(&map["value"])).close(name);
                return;
            }
            // A user's `preferred` and `segment_type` are attributes of its email in Alma's XML
            // (`<email preferred="true" segment_type="Internal">`, recorded).
            let attr_values: Vec<(&str, String)> = ["link", "total_record_count", "preferred", "segment_type"]
                .iter()
                .filter_map(|k| map.get(*k).filter(|v| !v.is_object()).map(|v| (*k, scalar_text(v))))
                .collect();
            let attrs: Vec<(&str, &str)> = attr_values.iter().map(|(k, v)| (*k, v.as_str())).collect();
            w.open(name, &attrs);
            for (k, v) in map {
                if attr_values.iter().any(|(a, _)| a == k) {
                    continue;
                }
                match v {
                    Value::Array(items) => {
                        let plural = format!("{k}s");
                        let wrap = plural != name;
                        if wrap {
                            w.open(&plural, &[]);
                        }
                        for item in items {
                            write_value(w, k, item);
                        }
                        if wrap {
                            w.close(&plural);
                        }
                    }
                    _ => write_value(w, k, v),
                }
            }
            w.close(name);
        }
        Value::Array(items) => {
            for item in items {
                write_value(w, name, item);
            }
        }
        other => {
            w.leaf(name, &scalar_text(other));
        }
    }
}

fn is_code_field(map: &serde_json::Map<String, Value>) -> bool {
    map.contains_key("value")
        && !map["value"].is_object()
        && !map["value"].is_array()
        && map.keys().all(|k| matches!(k.as_str(), "value" | "desc" | "link"))
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn code_fields_lists_and_links_map_like_alma() {
        let set = json!({
            "id": "1",
            "type": {"value": "ITEMIZED", "desc": "Itemized"},
            "number_of_members": {"value": 0, "link": "http://x/members"},
            "link": "http://x"
        });
        let xml = json_to_xml("set", &set);
        assert!(xml.contains(r#"<set link="http://x"><id>1</id>"#), "{xml}");
        assert!(xml.contains(r#"<type desc="Itemized">ITEMIZED</type>"#));
        assert!(xml.contains(r#"<number_of_members link="http://x/members">0</number_of_members>"#));

        let members = json!({"member": [{"id": "a&b", "link": "l"}], "total_record_count": 1});
        let xml = json_to_xml("members", &members);
        assert!(
            xml.ends_with(r#"<members total_record_count="1"><member link="l"><id>a&amp;b</id></member></members>"#),
            "{xml}"
        );

        let job = json!({"parameter": [{"name": {"value": "set_id"}, "value": "9"}]});
        let xml = json_to_xml("job", &job);
        assert!(xml.contains("<parameters><parameter><name>set_id</name><value>9</value></parameter></parameters>"));
    }

    #[test]
    fn tree_reader_resolves_entities_and_drops_prefixes() {
        let node = parse_tree(b"<x:set xmlns:x='u'><name>A &amp; B &#233;</name><members><member><id>1</id></member><member><id>2</id></member></members></x:set>").unwrap();
        assert_eq!(node.name, "set");
        assert_eq!(node.child_text("name"), Some("A & B \u{e9}"));
        let ids: Vec<_> = node
            .child("members")
            .unwrap()
            .children_named("member")
            .map(|m| m.child_text("id").unwrap())
            .collect();
        assert_eq!(ids, ["1", "2"]);
    }

    #[test]
    fn tree_reader_rejects_broken_documents() {
        assert!(parse_tree(b"<set><name>x</set>").is_err());
        assert!(parse_tree(b"<set><name>x</name>").is_err());
        assert!(parse_tree(b"").is_err());
        assert!(parse_tree(b"not xml at all").is_err());
    }
}
