//! JSON text into a `serde_json::Value`, the tree routes and templates read, built with
//! fewer key comparisons than `serde_json::from_str` (docs/performance.md).
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
//!
//! [`from_str_reading`] builds only what a source's readers read (`crate::reads`): the
//! rest of the text is still read by the same deserializer, through the same visitor
//! calls, so it is checked exactly as before (a body `from_str` refuses is refused), but
//! nothing of it is allocated, sorted or dropped.

use std::borrow::Cow;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::reads::Reads;

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

/// Parses JSON text into the parts of the tree `from_str` gives that `reads` reads: an
/// object keeps only the keys read, an array its length with the elements nothing reads
/// as `null`; what is kept is equal to `from_str`'s. A root that is not an object is
/// built whole.
pub fn from_str_reading(text: &str, reads: &Reads) -> serde_json::Result<Value> {
    let mut stack = Vec::new();
    let mut de = serde_json::Deserializer::from_str(text);
    let value = match reads {
        Reads::All => Tree(&mut stack).deserialize(&mut de)?,
        _ => de.deserialize_any(Root(Projected {
            reads,
            stack: &mut stack,
        }))?,
    };
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

/// The scalar half of a visitor that builds a `Value` (`Tree`, `Root`, `Projected`):
/// a scalar is built whole. serde_json's `deserialize_any` calls only these.
macro_rules! scalars {
    () => {
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
    };
}

impl<'de> Visitor<'de> for Tree<'_> {
    type Value = Value;

    scalars!();

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

/// The root: an object is projected, anything else built whole (templates see a
/// non-object payload under `items`, and a sender reads it as it likes).
struct Root<'a>(Projected<'a>);

impl<'de> Visitor<'de> for Root<'_> {
    type Value = Value;

    scalars!();

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Value, A::Error> {
        self.0.visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Value, A::Error> {
        Tree(self.0.stack).visit_seq(seq)
    }
}

/// Builds the parts of one value that `reads` reads.
struct Projected<'a> {
    reads: &'a Reads,
    stack: &'a mut Vec<Entry>,
}

impl<'de> DeserializeSeed<'de> for Projected<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        match self.reads {
            Reads::All => Tree(self.stack).deserialize(d),
            Reads::Fields { .. } => d.deserialize_any(self),
        }
    }
}

impl<'de> Visitor<'de> for Projected<'_> {
    type Value = Value;

    // A scalar is kept whole, as `Tree` builds it.
    scalars!();

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let item = match self.reads.element(items.len()) {
                Some(r) => seq.next_element_seed(Projected {
                    reads: &r,
                    stack: &mut *self.stack,
                })?,
                None => seq.next_element_seed(Skip)?.map(|()| Value::Null),
            };
            match item {
                Some(v) => items.push(v),
                None => return Ok(Value::Array(items)),
            }
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let start = self.stack.len();
        let mut first = None;
        while let Some(key) = map.next_key_seed(Key)? {
            if first.is_none() && self.reads.keeps_nonempty() {
                first = Some(key.clone());
            }
            match self.reads.member(&key) {
                Some(r) => {
                    let value = map.next_value_seed(Projected {
                        reads: &r,
                        stack: &mut *self.stack,
                    })?;
                    let key = key.into_owned();
                    self.stack.push((prefix(&key), key, value));
                }
                None => map.next_value_seed(Skip)?,
            }
        }
        if self.stack.len() == start
            && let Some(key) = first
        {
            // Non-empty, as it was (`Reads::Fields`'s `nonempty`).
            let key = key.into_owned();
            self.stack.push((prefix(&key), key, Value::Null));
        }
        let entries = &mut self.stack[start..];
        entries.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        let object: Map<String, Value> =
            self.stack.drain(start..).map(|(_, k, v)| (k, v)).collect();
        Ok(Value::Object(object))
    }
}

/// An object's key, borrowed from the text unless it holds an escape.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_owned()))
    }
}

/// A value nothing reads: read through the same `deserialize_any` calls as `Tree`, so
/// the same text is refused with the same error, and nothing is kept.
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any valid JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{from_str, from_str_reading};
    use crate::reads::Reads;

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

    /// Whether `ours` is what `from_str_reading` must give: the whole tree cut down to
    /// what `reads` reads, an object that must stay non-empty keeping one of its keys
    /// as `null`.
    fn agrees(ours: &Value, whole: &Value, reads: &Reads) -> bool {
        match (whole, reads) {
            (_, Reads::All) => ours == whole,
            (Value::Object(m), _) => {
                let Value::Object(o) = ours else {
                    return false;
                };
                let kept: Vec<_> = m
                    .iter()
                    .filter_map(|(k, v)| reads.member(k).map(|r| (k, v, r)))
                    .collect();
                if kept.is_empty() && reads.keeps_nonempty() && !m.is_empty() {
                    return o.len() == 1 && o.iter().all(|(k, v)| m.contains_key(k) && v.is_null());
                }
                o.len() == kept.len()
                    && kept
                        .iter()
                        .all(|(k, v, r)| o.get(*k).is_some_and(|x| agrees(x, v, r)))
            }
            (Value::Array(a), _) => {
                let Value::Array(b) = ours else {
                    return false;
                };
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .enumerate()
                        .all(|(i, (w, o))| match reads.element(i) {
                            Some(r) => agrees(o, w, &r),
                            None => o.is_null(),
                        })
            }
            _ => ours == whole,
        }
    }

    fn reads() -> impl Strategy<Value = Reads> {
        let key = prop::sample::select(vec!["a", "b", "id", "0", "1", "followers_url", "é"]);
        let leaf = prop_oneof![Just(Reads::All), Just(Reads::nothing())];
        leaf.prop_recursive(4, 32, 4, move |inner| {
            (
                prop::collection::btree_map(
                    key.clone().prop_map(String::from),
                    inner.clone(),
                    0..4,
                ),
                prop::option::of(inner),
                any::<bool>(),
            )
                .prop_map(|(keys, each, nonempty)| Reads::Fields {
                    keys,
                    each: each.map(Box::new),
                    nonempty,
                })
        })
    }

    proptest! {
        #[test]
        fn builds_what_is_read_of_the_tree_serde_json_builds(text in text(), reads in reads()) {
            let ours = from_str_reading(&text, &reads).map_err(|e| e.to_string());
            let whole = serde_json::from_str::<Value>(&text).map_err(|e| e.to_string());
            match (ours, whole) {
                // A root that is not an object is built whole.
                (Ok(o), Ok(w)) if !w.is_object() => prop_assert_eq!(o, w),
                (Ok(o), Ok(w)) => prop_assert!(agrees(&o, &w, &reads), "{o} from {w}"),
                // The same texts are refused, with the same message.
                (o, w) => prop_assert_eq!(o.map(|_| ()), w.map(|_| ())),
            }
        }

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
            r#"{"skipped": [1, {"x": 1e400}]}"#,
            r#"{"skipped": "\ud800"}"#,
            deep.as_str(),
        ] {
            let ours = from_str(text).map(|_| ()).map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<Value>(text)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert!(ours.is_err(), "{text:?} parsed");
            assert_eq!(ours, theirs, "{text:?}");
            let read = from_str_reading(text, &Reads::nothing()).map(|_| ());
            assert_eq!(read.map_err(|e| e.to_string()), theirs, "{text:?}");
        }
    }
}
