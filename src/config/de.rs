//! Lenient deserializers for config values.
//!
//! Values from environment variables always arrive as strings (so that a key like
//! `0123` keeps its leading zero), hence numbers and booleans must also accept their
//! string spelling; durations and sizes are written the human way (`10s`, `1MiB`).

use std::time::Duration;

use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn scalar<'de, D: Deserializer<'de>>(d: D) -> Result<Scalar, D::Error> {
    Scalar::deserialize(d)
}

/// A string, accepting numbers and booleans written without quotes.
pub fn string_like<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    struct V;
    impl Visitor<'_> for V {
        type Value = String;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a string")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
            Ok(v.to_string())
        }
        fn visit_bool<E: de::Error>(self, v: bool) -> Result<String, E> {
            Ok(v.to_string())
        }
    }
    d.deserialize_any(V)
}

pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
    match scalar(d)? {
        Scalar::Int(i) => Ok(i as f64),
        Scalar::Float(f) => Ok(f),
        Scalar::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("expected a number, found {s:?}"))),
        Scalar::Bool(b) => Err(de::Error::custom(format!("expected a number, found {b}"))),
    }
}

pub fn u32<'de, D: Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
    match scalar(d)? {
        Scalar::Int(i) => {
            u32::try_from(i).map_err(|_| de::Error::custom(format!("{i} is out of range")))
        }
        Scalar::Str(s) => s
            .trim()
            .parse()
            .map_err(|_| de::Error::custom(format!("expected a whole number, found {s:?}"))),
        Scalar::Float(f) => Err(de::Error::custom(format!(
            "expected a whole number, found {f}"
        ))),
        Scalar::Bool(b) => Err(de::Error::custom(format!(
            "expected a whole number, found {b}"
        ))),
    }
}

pub fn bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    match scalar(d)? {
        Scalar::Bool(b) => Ok(b),
        Scalar::Str(s) => match s.trim() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(de::Error::custom(format!(
                "expected true or false, found {other:?}"
            ))),
        },
        Scalar::Int(i) => Err(de::Error::custom(format!(
            "expected true or false, found {i}"
        ))),
        Scalar::Float(f) => Err(de::Error::custom(format!(
            "expected true or false, found {f}"
        ))),
    }
}

pub fn opt_f64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    f64(d).map(Some)
}

pub fn opt_u32<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    u32(d).map(Some)
}

pub fn opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    bool(d).map(Some)
}

/// `"10s"`, `"1m 30s"`, `"250ms"` (humantime), or a bare number of seconds.
pub fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    match scalar(d)? {
        Scalar::Str(s) => humantime::parse_duration(s.trim()).map_err(|e| {
            de::Error::custom(format!("invalid duration {s:?}: {e} (write e.g. \"10s\")"))
        }),
        Scalar::Int(i) if i >= 0 => Ok(Duration::from_secs(i as u64)),
        Scalar::Float(f) if f >= 0.0 && f.is_finite() => Duration::try_from_secs_f64(f)
            .map_err(|_| de::Error::custom(format!("{f} seconds is too long a duration"))),
        _ => Err(de::Error::custom("expected a duration such as \"10s\"")),
    }
}

pub fn opt_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d).map(Some)
}

/// `"1MiB"`, `"512KiB"`, `"2MB"`, or a bare number of bytes.
pub fn byte_size<'de, D: Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    match scalar(d)? {
        Scalar::Int(i) if i >= 0 => Ok(i as usize),
        Scalar::Str(s) => parse_byte_size(&s).map_err(de::Error::custom),
        _ => Err(de::Error::custom("expected a size such as \"1MiB\"")),
    }
}

pub fn parse_byte_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: usize = num
        .parse()
        .map_err(|_| format!("invalid size {s:?} (write e.g. \"1MiB\")"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "kib" | "k" => 1 << 10,
        "mb" => 1_000_000,
        "mib" | "m" => 1 << 20,
        "gb" => 1_000_000_000,
        "gib" | "g" => 1 << 30,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?} (use B, KiB, MiB, GiB, KB, MB, GB)"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("size {s:?} is too large"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_byte_size("1MiB").unwrap(), 1 << 20);
        assert_eq!(parse_byte_size("512 KiB").unwrap(), 512 << 10);
        assert_eq!(parse_byte_size("1000").unwrap(), 1000);
        assert!(parse_byte_size("1 parsec").is_err());
    }
}
