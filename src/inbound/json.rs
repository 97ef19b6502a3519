//! JSON text into a `serde_json::Value`, the tree routes and templates read, built with
//! fewer key comparisons than `serde_json::from_str` (README, Performance).
//!
//! serde_json's own `Value` builds each object by inserting its keys one at a time into a
//! `BTreeMap`: a search from the root and a node shift per key, every step a `memcmp`.
//! For a 7.3 KB GitHub push (~300 keys) that was ~43 % of the parse. Here an object's
//! entries are gathered on one scratch stack shared by the whole document, sorted once
//! (by an 8-byte prefix of the key first, so most comparisons are one integer compare),
//! and the map is built from the sorted run in one go. The same deserializer reads the
//! text, so errors, the nesting limit and number handling are serde_json's; the sort is
//! stable, so a repeated key keeps its last value, as `from_str` does. The one
//! difference: serde_json reads an object whose first key is its private
//! `$serde_json::private::RawValue` token as a raw value; here it is an ordinary key.

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// An object's entry while its object is being read: the key's first 8 bytes as a
/// big-endian integer (ordering as the key does, up to ties), the key, the value.
type Entry = (u64, String, Value);

/// Parses JSON text into a `Value` equal to what `serde_json::from_str` gives.
pub fn from_str(text: &str) -> serde_json::Result<Value> {
    let mut stack = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let value = Tree(&mut stack).deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// Builds one value; objects use the shared stack above the entries of their parents.
struct Tree<'a>(&'a mut Vec<Entry>);

fn prefix(key: &str) -> u64 {
    let mut buf = [0u8; 8];
    let n = key.len().min(8);
    buf[..n].copy_from_slice(&key.as_bytes()[..n]);
    u64::from_be_bytes(buf)
}

impl<'de> DeserializeSeed<'de> for Tree<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Tree<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: Error>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Tree(&mut *self.0))? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let start = self.0.len();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(Tree(&mut *self.0))?;
            self.0.push((prefix(&key), key, value));
        }
        let entries = &mut self.0[start..];
        entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        // `Map::from_iter` keeps the last of equal keys; it checks the run is sorted (one
        // comparison per key) and builds the tree bottom-up.
        let object: Map<String, Value> = self.0.drain(start..).map(|(_, k, v)| (k, v)).collect();
        Ok(Value::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::from_str;

    /// JSON text with repeated keys, keys sharing long prefixes, nesting and every kind
    /// of scalar, written by hand so that repeats survive (a `Value` cannot hold them).
    fn text() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "",
            "a",
            "b",
            "id",
            "url",
            "html_url",
            "followers_url",
            "following_url",
            "followers",
            "repository",
            "repository_id",
            "é",
            "ключ",
            "a\\\"b",
            "\\u00e9",
        ])
        .prop_map(|k| format!("\"{k}\""));
        let leaf = prop_oneof![
            Just("null".to_string()),
            Just("true".to_string()),
            Just("false".to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            Just("-0.0".to_string()),
            Just("1e400".to_string()),
            ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap_or_default()),
        ];
        leaf.prop_recursive(5, 64, 8, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((key.clone(), inner), 0..12).prop_map(|entries| {
                    let parts: Vec<String> =
                        entries.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                    format!("{{ {} }}", parts.join(" , "))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn builds_the_tree_serde_json_builds(text in text()) {
            let ours = from_str(&text).map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string());
            prop_assert_eq!(ours, theirs);
        }
    }

    #[test]
    fn a_repeated_key_keeps_its_last_value_as_serde_json_does() {
        let text =
            r#"{"a": 1, "followers_url": 2, "a": 3, "following_url": 4, "followers_url": 5}"#;
        let ours = from_str(text).unwrap();
        assert_eq!(ours, serde_json::from_str::<Value>(text).unwrap());
        assert_eq!(ours["a"], 3);
        assert_eq!(ours["followers_url"], 5);
        // A large object takes the sort's other path, where only a stable sort keeps
        // repeats in order.
        let keys = ["followers_url", "following_url", "a", "followers"];
        let entries: Vec<String> = (0..400)
            .map(|i| format!("\"{}\": {i}", keys[(i * 7 + i / 3) % keys.len()]))
            .collect();
        let text = format!("{{{}}}", entries.join(","));
        assert_eq!(
            from_str(&text).unwrap(),
            serde_json::from_str::<Value>(&text).unwrap()
        );
    }

    #[test]
    fn every_fixture_parses_to_the_same_tree() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut seen = 0;
        for sender in std::fs::read_dir(dir).unwrap() {
            let sender = sender.unwrap().path();
            if !sender.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(&sender).unwrap() {
                let file = file.unwrap().path();
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                if let Ok(theirs) = serde_json::from_str::<Value>(&text) {
                    assert_eq!(from_str(&text).unwrap(), theirs, "{}", file.display());
                    seen += 1;
                }
            }
        }
        assert!(seen >= 30, "only {seen} JSON fixtures found");
    }

    /// Errors are serde_json's own, at the same place: the same deserializer reads.
    #[test]
    fn malformed_text_fails_as_serde_json_fails() {
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        for text in [
            "",
            "{",
            r#"{"a": 1,}"#,
            r#"{"a" 1}"#,
            "[1, 2] x",
            r#""\ud800""#,
            r#"{"a": tru}"#,
            deep.as_str(),
        ] {
            let ours = from_str(text).map(|_| ()).map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<Value>(text)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert!(ours.is_err(), "{text:?} parsed");
            assert_eq!(ours, theirs, "{text:?}");
        }
    }
}
