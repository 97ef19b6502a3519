//! Field paths into JSON payloads: `workflow_run.conclusion`, `alerts[0].labels.severity`.
//!
//! Parsed once (at config load) into segments, so a typo is a config error and lookups on
//! the request path are a few map probes.

use std::fmt;

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    Key(String),
    Index(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldPath {
    text: String,
    segments: Vec<Segment>,
}

impl FieldPath {
    /// Parses `a.b[2].c`. Keys are any characters except `.`, `[` and `]`.
    pub fn parse(text: &str) -> Result<FieldPath, String> {
        let mut segments = Vec::new();
        if text.is_empty() {
            return Err("empty field path".into());
        }
        for part in text.split('.') {
            let (key, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if key.is_empty() && (segments.is_empty() || rest.is_empty()) {
                return Err(format!("invalid field path {text:?}: empty name"));
            }
            if key.contains(']') {
                return Err(format!("invalid field path {text:?}: stray ']'"));
            }
            if !key.is_empty() {
                segments.push(Segment::Key(key.to_string()));
            }
            while !rest.is_empty() {
                let close = rest
                    .find(']')
                    .ok_or_else(|| format!("invalid field path {text:?}: missing ']'"))?;
                let idx: usize = rest[1..close]
                    .parse()
                    .map_err(|_| format!("invalid field path {text:?}: index must be a number"))?;
                segments.push(Segment::Index(idx));
                rest = &rest[close + 1..];
                if !rest.is_empty() && !rest.starts_with('[') {
                    return Err(format!(
                        "invalid field path {text:?}: expected '.' or '[' after ']'"
                    ));
                }
            }
        }
        Ok(FieldPath {
            text: text.to_string(),
            segments,
        })
    }

    pub fn lookup<'v>(&self, root: &'v Value) -> Option<&'v Value> {
        let mut cur = root;
        for seg in &self.segments {
            cur = match (seg, cur) {
                (Segment::Key(k), Value::Object(m)) => m.get(k)?,
                (Segment::Index(i), Value::Array(a)) => a.get(*i)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The text a scalar is compared as: strings as-is, numbers and booleans as written in
/// JSON, null as `null`. Objects and arrays have no scalar text.
pub fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Null => Some("null".into()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn parses_and_looks_up() {
        let v = json!({"a": {"b": [{"c": 1}, {"c": "x"}]}, "k-y": true});
        assert_eq!(
            FieldPath::parse("a.b[1].c").unwrap().lookup(&v),
            Some(&json!("x"))
        );
        assert_eq!(
            FieldPath::parse("k-y").unwrap().lookup(&v),
            Some(&json!(true))
        );
        assert_eq!(FieldPath::parse("a.b[5].c").unwrap().lookup(&v), None);
        assert_eq!(FieldPath::parse("a.zz").unwrap().lookup(&v), None);
    }

    #[test]
    fn rejects_malformed() {
        for bad in ["", "a..b", "a[", "a[x]", "a]b", "a[0]b", ".a"] {
            assert!(FieldPath::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    proptest! {
        // Any path built from safe keys and indices parses and finds the value placed there.
        #[test]
        fn built_paths_find_their_value(keys in proptest::collection::vec("[a-z_][a-z0-9_-]{0,8}", 1..5), idx in 0usize..3) {
            let mut value = json!("leaf");
            let mut text = String::new();
            for (n, k) in keys.iter().enumerate().rev() {
                let mut arr = vec![Value::Null; idx + 1];
                arr[idx] = value;
                value = json!({ k.clone(): arr });
                let seg = format!("{k}[{idx}]");
                text = if n == keys.len() - 1 { seg } else { format!("{seg}.{text}") };
            }
            let p = FieldPath::parse(&text).unwrap();
            prop_assert_eq!(p.lookup(&value), Some(&json!("leaf")));
        }

        #[test]
        fn parse_never_panics(s in ".{0,40}") {
            let _ = FieldPath::parse(&s);
        }
    }
}
