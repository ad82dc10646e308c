//! The pieces of Alma's JSON that every endpoint shares, for the typed answers private to each
//! endpoint's file: a code field (`"X"` or `{"value": "X", "desc": …}`), a count (a number, a
//! string of digits, or `{"value": n, "link": …}`), a list that is an array or one object, and
//! the list page (items + `total_record_count`) that `AlmaClient::each_page` (in `list.rs`) walks.
//!
//! Each is read as leniently as real Alma's answers require (`fixtures/README.md` lists the
//! recorded shapes) and no more: a count that is not a number is an error, not a zero.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// A code field: a string, a number or a boolean on its own, or an object whose `value` is one
/// (its `desc` kept); `null` or an object without `value` is empty.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Code {
    pub value: String,
    pub desc: String,
}

impl Code {
    pub fn trimmed(&self) -> &str {
        self.value.trim()
    }
}

impl<'de> Deserialize<'de> for Code {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CodeVisitor)
    }
}

struct CodeVisitor;

impl<'de> Visitor<'de> for CodeVisitor {
    type Value = Code;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a code: a string, a number, or {\"value\": …, \"desc\": …}")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Code, E> {
        Ok(Code {
            value: v.to_string(),
            desc: String::new(),
        })
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Code, E> {
        Ok(Code {
            value: v,
            desc: String::new(),
        })
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Code, E> {
        self.visit_string(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Code, E> {
        self.visit_string(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Code, E> {
        self.visit_string(v.to_string())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Code, E> {
        self.visit_string(v.to_string())
    }
    fn visit_unit<E: de::Error>(self) -> Result<Code, E> {
        Ok(Code::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<Code, E> {
        Ok(Code::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Code, A::Error> {
        let mut code = Code::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "value" => code.value = map.next_value::<Code>()?.value,
                "desc" => code.desc = map.next_value::<Code>()?.value,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(code)
    }
}

/// A count: a number, a string of digits (`"439"`), or `{"value": n, "link": …}` (recorded for
/// `number_of_members`); `null` is absent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Count(pub Option<u64>);

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CountVisitor)
    }
}

struct CountVisitor;

impl<'de> Visitor<'de> for CountVisitor {
    type Value = Count;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a count: a number, a string of digits, or {\"value\": n}")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count, E> {
        Ok(Count(Some(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count, E> {
        u64::try_from(v)
            .map(|n| Count(Some(n)))
            .map_err(|_| E::custom(format!("a count of {v}")))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Count, E> {
        if v >= 0.0 && v.fract() == 0.0 && v < 1e15 {
            Ok(Count(Some(v as u64)))
        } else {
            Err(E::custom(format!("a count of {v}")))
        }
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Count, E> {
        let t = v.trim();
        if t.is_empty() {
            return Ok(Count(None));
        }
        t.parse()
            .map(|n| Count(Some(n)))
            .map_err(|_| E::custom(format!("a count of {v:?}, not a number")))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_none<E: de::Error>(self) -> Result<Count, E> {
        Ok(Count(None))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Count, A::Error> {
        let mut count = Count(None);
        while let Some(key) = map.next_key::<String>()? {
            if key == "value" {
                count = map.next_value()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(count)
    }
}

/// A field that no decision rests on (a progress, a display counter, a set's member count that
/// is checked against the members list anyway): read as `T` if it is one, else its default — an
/// odd value there must not make the whole answer unreadable.
pub(crate) fn lenient<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned + Default,
{
    let value = serde_json::Value::deserialize(d)?;
    Ok(T::deserialize(&value).unwrap_or_else(|e| {
        tracing::debug!(error = %e, "an odd value read as its default");
        T::default()
    }))
}

/// A number that may come as a string (`progress`: `101.3` recorded); absent is 0.
pub(crate) fn lenient_f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a number")
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            Ok(v)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            Ok(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            let t = v.trim();
            if t.is_empty() {
                return Ok(0.0);
            }
            t.parse().map_err(|_| E::custom(format!("{v:?} is not a number")))
        }
        fn visit_unit<E: de::Error>(self) -> Result<f64, E> {
            Ok(0.0)
        }
        fn visit_none<E: de::Error>(self) -> Result<f64, E> {
            Ok(0.0)
        }
    }
    d.deserialize_any(V)
}

/// A list field: an array, one object on its own (Alma's JSON for a one-item list), or `null`.
/// Use with `#[serde(default, deserialize_with = "one_or_many")]`.
pub(crate) fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct V<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list or one item")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1000));
            while let Some(item) = seq.next_element()? {
                out.push(item);
            }
            Ok(out)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Vec<T>, A::Error> {
            Ok(vec![T::deserialize(de::value::MapAccessDeserializer::new(map))?])
        }
        fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
            Ok(Vec::new())
        }
        // `"alert": ""`: an empty list written as an empty string.
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<T>, E> {
            if v.trim().is_empty() {
                Ok(Vec::new())
            } else {
                Err(E::invalid_type(de::Unexpected::Str(v), &self))
            }
        }
    }
    d.deserialize_any(V(std::marker::PhantomData))
}

/// One page of a list answer: its items and `total_record_count` (placed before or after the
/// items, a number or a string; absent when Alma leaves it out).
pub(crate) trait ListPage: DeserializeOwned {
    type Item;
    fn into_parts(self) -> (Vec<Self::Item>, Option<u64>);
}

/// Declares a list page type: `list_page!(SetPage, "set", SetAnswer)` reads
/// `{"set": [...], "total_record_count": n}`.
macro_rules! list_page {
    ($page:ident, $key:literal, $item:ty) => {
        #[derive(serde::Deserialize)]
        struct $page {
            #[serde(rename = $key, default, deserialize_with = "crate::model::one_or_many")]
            items: Vec<$item>,
            #[serde(default)]
            total_record_count: crate::model::Count,
        }

        impl crate::model::ListPage for $page {
            type Item = $item;
            fn into_parts(self) -> (Vec<$item>, Option<u64>) {
                (self.items, self.total_record_count.0)
            }
        }
    };
}
pub(crate) use list_page;

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Thing {
        #[serde(default)]
        id: Code,
    }
    list_page!(ThingPage, "thing", Thing);

    fn page(json: &str) -> (Vec<String>, Option<u64>) {
        let (items, total) = serde_json::from_str::<ThingPage>(json).expect("a page").into_parts();
        (items.into_iter().map(|t| t.id.value).collect(), total)
    }

    #[test]
    fn list_pages_in_every_recorded_shape() {
        // The total after the array (recorded: 400 jobs, then "total_record_count": 439).
        assert_eq!(
            page(r#"{"thing":[{"id":"M3"},{"id":"M4664427330000561"}],"total_record_count":439}"#),
            (vec!["M3".into(), "M4664427330000561".into()], Some(439))
        );
        // Before, as a string, one object on its own.
        assert_eq!(
            page(r#"{"total_record_count":"1","thing":{"id":{"value":"x","desc":"X"}}}"#),
            (vec!["x".into()], Some(1))
        );
        // An empty list: no key at all, or null.
        assert_eq!(page(r#"{"total_record_count":0}"#), (vec![], Some(0)));
        assert_eq!(page(r#"{"thing":null}"#), (vec![], None));
        assert!(serde_json::from_str::<ThingPage>(r#"{"total_record_count":"many"}"#).is_err());
    }

    #[test]
    fn codes_and_counts() {
        let code = |j: &str| serde_json::from_str::<Code>(j).unwrap();
        assert_eq!(code(r#""COMPLETED_SUCCESS""#).value, "COMPLETED_SUCCESS");
        let c = code(r#"{"value":"FTP has failed.","desc":""}"#);
        assert_eq!((c.value.as_str(), c.desc.as_str()), ("FTP has failed.", ""));
        assert_eq!(code(r#"{"desc":null,"value":null}"#), Code::default());
        assert_eq!(code("12").value, "12");
        assert_eq!(code("true").value, "true");
        let count = |j: &str| serde_json::from_str::<Count>(j).map(|c| c.0);
        assert_eq!(count("5").unwrap(), Some(5));
        assert_eq!(count(r#"" 439 ""#).unwrap(), Some(439));
        assert_eq!(count(r#"{"value":0,"link":"https://x/members"}"#).unwrap(), Some(0));
        assert_eq!(count(r#"{"value":"2"}"#).unwrap(), Some(2));
        assert_eq!(count("null").unwrap(), None);
        assert!(count("-1").is_err() && count("1.5").is_err() && count(r#""x""#).is_err());
    }
}
