//! `when`: a route's conditions on event fields, with operators and `all` / `any` / `not`.
//!
//! ```toml
//! [routes.when]
//! all = [
//!   { field = "workflow_run.conclusion", in = ["failure", "timed_out"] },
//!   { not = { field = "workflow_run.head_branch", regex = "^dependabot/" } },
//!   { field = "workflow_run.run_attempt", gt = 1 },
//!   { any = [ { field = "repository.private", equals = true }, { field = "sender.login", not_equals = "ci-bot" } ] },
//!   { field = "pull_request", exists = true },
//! ]
//! ```
//! A condition is a table with exactly one of `all`, `any`, `not`, or `field` plus one
//! operator: `text`, `equals`, `not_equals`, `regex`, `not_regex`, `in`, `not_in`,
//! `exists`, `gt`, `gte`, `lt`, `lte`.
//!
//! `match` tables (on routes and silences) are shorthand for `text` (the field's text is
//! exactly this) or, for a value written `/…/`, `regex` conditions: [`match_table`]. Compiled at load (paths parsed, regexes built, each problem named by
//! its key); evaluated to "holds" or the reason it does not, for `routes test` and the log.

use regex::Regex;
use serde_json::Value;

use crate::fieldpath::{FieldPath, scalar_text};

#[derive(Debug)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Field { path: FieldPath, op: Op },
}

#[derive(Debug)]
pub enum Op {
    /// The field's text is exactly this (`match`): `42` is "42", `true` is "true".
    Text(String),
    Equals(Value),
    NotEquals(Value),
    Regex(Regex),
    NotRegex(Regex),
    In(Vec<Value>),
    NotIn(Vec<Value>),
    Exists(bool),
    Gt(f64),
    Gte(f64),
    Lt(f64),
    Lte(f64),
}

const OPERATORS: &[&str] = &[
    "text",
    "equals",
    "not_equals",
    "regex",
    "not_regex",
    "in",
    "not_in",
    "exists",
    "gt",
    "gte",
    "lt",
    "lte",
];

/// A `match` table (`path = "value"` or `path = "/regex/"`, all must hold) as one
/// condition, None when empty; errors are `(key suffix, problem)`, the key being the
/// quoted path, as in `match."a.b"`.
pub fn match_table<'a>(
    entries: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Option<Cond>, (String, String)> {
    let mut all = Vec::new();
    for (path, v) in entries {
        let c = match_condition(path, v);
        all.push(compile(&c).map_err(|(_, p)| (format!("{path:?}"), p))?);
    }
    Ok(match all.len() {
        0 => None,
        1 => all.pop(),
        _ => Some(Cond::All(all)),
    })
}

/// One `match` entry as a `when` condition: `text`, or `regex` for a value written `/…/`.
pub fn match_condition(path: &str, v: &str) -> Value {
    if v.len() >= 2 && v.starts_with('/') && v.ends_with('/') {
        serde_json::json!({"field": path, "regex": &v[1..v.len() - 1]})
    } else {
        serde_json::json!({"field": path, "text": v})
    }
}

/// Compiles a condition; errors are `(key suffix, problem)`, the key relative to `when`.
pub fn compile(v: &Value) -> Result<Cond, (String, String)> {
    compile_at(v, String::new())
}

fn compile_at(v: &Value, key: String) -> Result<Cond, (String, String)> {
    let Value::Object(m) = v else {
        return Err((key, "a condition is a table: { field = ..., <operator> = ... } or { all | any | not = ... }".into()));
    };
    let k = |s: &str| {
        if key.is_empty() {
            s.to_string()
        } else {
            format!("{key}.{s}")
        }
    };
    let list = |name: &str, x: &Value| -> Result<Vec<Cond>, (String, String)> {
        let Value::Array(items) = x else {
            return Err((k(name), format!("`{name}` takes a list of conditions")));
        };
        if items.is_empty() {
            return Err((k(name), format!("`{name}` needs at least one condition")));
        }
        items
            .iter()
            .enumerate()
            .map(|(i, c)| compile_at(c, format!("{}[{i}]", k(name))))
            .collect()
    };
    let combinators: Vec<&str> = ["all", "any", "not"]
        .into_iter()
        .filter(|c| m.contains_key(*c))
        .collect();
    if !combinators.is_empty() {
        if m.len() != 1 {
            return Err((
                key,
                format!("`{}` must be alone in its table", combinators[0]),
            ));
        }
        return match combinators[0] {
            "all" => Ok(Cond::All(list("all", &m["all"])?)),
            "any" => Ok(Cond::Any(list("any", &m["any"])?)),
            _ => Ok(Cond::Not(Box::new(compile_at(&m["not"], k("not"))?))),
        };
    }
    let field = m.get("field").and_then(Value::as_str).ok_or_else(|| {
        (
            key.clone(),
            "missing `field` (or use all / any / not)".to_string(),
        )
    })?;
    let path = FieldPath::parse(field).map_err(|e| (k("field"), e))?;
    let ops: Vec<&String> = m.keys().filter(|x| *x != "field").collect();
    let [op_name] = ops.as_slice() else {
        return Err((
            key,
            format!(
                "give exactly one operator besides `field` ({})",
                OPERATORS.join(", ")
            ),
        ));
    };
    let arg = &m[op_name.as_str()];
    let num = |x: &Value| -> Result<f64, (String, String)> {
        x.as_f64()
            .ok_or_else(|| (k(op_name), format!("`{op_name}` takes a number")))
    };
    let scalar = |x: &Value| -> Result<Value, (String, String)> {
        if x.is_object() || x.is_array() {
            Err((
                k(op_name),
                format!("`{op_name}` takes a text, number or boolean"),
            ))
        } else {
            Ok(x.clone())
        }
    };
    let re = |x: &Value| -> Result<Regex, (String, String)> {
        let s = x
            .as_str()
            .ok_or_else(|| (k(op_name), "a regex is written as text".to_string()))?;
        Regex::new(s).map_err(|e| {
            (
                k(op_name),
                format!(
                    "invalid regex: {}",
                    e.to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            )
        })
    };
    let scalars = |x: &Value| -> Result<Vec<Value>, (String, String)> {
        let Value::Array(items) = x else {
            return Err((k(op_name), format!("`{op_name}` takes a list")));
        };
        items.iter().map(scalar).collect()
    };
    let op = match op_name.as_str() {
        "text" => Op::Text(
            scalar_text(&scalar(arg)?)
                .ok_or_else(|| (k(op_name), "`text` takes a text".to_string()))?,
        ),
        "equals" => Op::Equals(scalar(arg)?),
        "not_equals" => Op::NotEquals(scalar(arg)?),
        "regex" => Op::Regex(re(arg)?),
        "not_regex" => Op::NotRegex(re(arg)?),
        "in" => Op::In(scalars(arg)?),
        "not_in" => Op::NotIn(scalars(arg)?),
        "exists" => Op::Exists(
            arg.as_bool()
                .ok_or_else(|| (k(op_name), "`exists` takes true or false".to_string()))?,
        ),
        "gt" => Op::Gt(num(arg)?),
        "gte" => Op::Gte(num(arg)?),
        "lt" => Op::Lt(num(arg)?),
        "lte" => Op::Lte(num(arg)?),
        other => {
            return Err((
                k(other),
                format!("unknown operator (use {})", OPERATORS.join(", ")),
            ));
        }
    };
    Ok(Cond::Field { path, op })
}

/// Scalars are equal when both are numbers with the same value, or their texts are equal
/// (so `equals = 42` matches `42` and `"42"`, `equals = true` matches `true` and `"true"`).
fn same(actual: &Value, expected: &Value) -> bool {
    if let (Some(a), Some(b)) = (number(actual), expected.as_f64()) {
        return a == b;
    }
    match (scalar_text(actual), scalar_text(expected)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

/// A JSON number, or text that is one.
fn number(v: &Value) -> Option<f64> {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
}

fn show(v: &Value) -> String {
    v.to_string()
}

impl Cond {
    /// Every field path the condition reads.
    pub fn field_paths(&self) -> Vec<&FieldPath> {
        match self {
            Cond::All(cs) | Cond::Any(cs) => cs.iter().flat_map(Cond::field_paths).collect(),
            Cond::Not(c) => c.field_paths(),
            Cond::Field { path, .. } => vec![path],
        }
    }

    /// None when the condition holds, else why not.
    pub fn check(&self, payload: &Value) -> Option<String> {
        match self {
            Cond::All(cs) => cs.iter().find_map(|c| c.check(payload)),
            Cond::Any(cs) => {
                let mut why = Vec::with_capacity(cs.len());
                for c in cs {
                    match c.check(payload) {
                        None => return None,
                        Some(w) => why.push(w),
                    }
                }
                Some(format!("none of any[...] holds ({})", why.join("; ")))
            }
            Cond::Not(c) => match c.check(payload) {
                Some(_) => None,
                None => Some(format!("not[...] fails: {} holds", c.describe())),
            },
            Cond::Field { path, op } => {
                if let Op::Text(want) = op {
                    // As written in `match`: a null field is the text "null".
                    return text_differs(path, path.lookup(payload), want);
                }
                let v = path.lookup(payload).filter(|v| !v.is_null());
                let Some(v) = v else {
                    return match op {
                        Op::Exists(false) | Op::NotEquals(_) | Op::NotIn(_) | Op::NotRegex(_) => {
                            None
                        }
                        _ => Some(format!("field `{path}` is missing")),
                    };
                };
                let text = || scalar_text(v).unwrap_or_else(|| v.to_string());
                let cmp = |f: fn(f64, f64) -> bool, n: f64, sym: &str| match number(v) {
                    Some(x) if f(x, n) => None,
                    Some(x) => Some(format!("field `{path}` is {x}, not {sym} {n}")),
                    None => Some(format!("field `{path}` is {}, not a number", show(v))),
                };
                match op {
                    Op::Text(want) => text_differs(path, Some(v), want),
                    Op::Exists(true) => None,
                    Op::Exists(false) => Some(format!("field `{path}` exists")),
                    Op::Equals(e) if same(v, e) => None,
                    Op::Equals(e) => {
                        Some(format!("field `{path}` is {}, not {}", show(v), show(e)))
                    }
                    Op::NotEquals(e) if !same(v, e) => None,
                    Op::NotEquals(e) => Some(format!("field `{path}` is {}", show(e))),
                    Op::Regex(r) if r.is_match(&text()) => None,
                    Op::Regex(r) => Some(format!(
                        "field `{path}` is {}, which does not match /{}/",
                        show(v),
                        r.as_str()
                    )),
                    Op::NotRegex(r) if !r.is_match(&text()) => None,
                    Op::NotRegex(r) => Some(format!(
                        "field `{path}` is {}, which matches /{}/",
                        show(v),
                        r.as_str()
                    )),
                    Op::In(list) if list.iter().any(|e| same(v, e)) => None,
                    Op::In(list) => Some(format!(
                        "field `{path}` is {}, not one of {}",
                        show(v),
                        show(&Value::Array(list.clone()))
                    )),
                    Op::NotIn(list) if !list.iter().any(|e| same(v, e)) => None,
                    Op::NotIn(list) => Some(format!(
                        "field `{path}` is {}, one of {}",
                        show(v),
                        show(&Value::Array(list.clone()))
                    )),
                    Op::Gt(n) => cmp(|a, b| a > b, *n, ">"),
                    Op::Gte(n) => cmp(|a, b| a >= b, *n, ">="),
                    Op::Lt(n) => cmp(|a, b| a < b, *n, "<"),
                    Op::Lte(n) => cmp(|a, b| a <= b, *n, "<="),
                }
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Cond::All(_) => "all[...]".into(),
            Cond::Any(_) => "any[...]".into(),
            Cond::Not(c) => format!("not {}", c.describe()),
            Cond::Field { path, op } => format!("`{path}` {}", op_name(op)),
        }
    }
}

/// Why the field's text is not `want` (None: it is).
fn text_differs(path: &FieldPath, v: Option<&Value>, want: &str) -> Option<String> {
    let Some(v) = v else {
        return Some(format!("field `{path}` is missing"));
    };
    match scalar_text(v) {
        Some(t) if t == want => None,
        Some(t) => Some(format!("field `{path}` is {t:?}, not {want:?}")),
        None => Some(format!(
            "field `{path}` is an object or a list, not a value"
        )),
    }
}

fn op_name(op: &Op) -> String {
    match op {
        Op::Text(t) => format!("text {t:?}"),
        Op::Equals(v) => format!("equals {}", show(v)),
        Op::NotEquals(v) => format!("not_equals {}", show(v)),
        Op::Regex(r) => format!("regex /{}/", r.as_str()),
        Op::NotRegex(r) => format!("not_regex /{}/", r.as_str()),
        Op::In(l) => format!("in {}", show(&Value::Array(l.clone()))),
        Op::NotIn(l) => format!("not_in {}", show(&Value::Array(l.clone()))),
        Op::Exists(b) => format!("exists {b}"),
        Op::Gt(n) => format!("gt {n}"),
        Op::Gte(n) => format!("gte {n}"),
        Op::Lt(n) => format!("lt {n}"),
        Op::Lte(n) => format!("lte {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn cond(v: Value) -> Cond {
        compile(&v).unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn operators() {
        let p = json!({"run": {"conclusion": "failure", "attempt": 2, "branch": "dependabot/npm", "private": "true"}, "n": null});
        let holds = |c: Value| cond(c).check(&p).is_none();
        assert!(holds(
            json!({"field": "run.conclusion", "in": ["failure", "timed_out"]})
        ));
        assert!(!holds(
            json!({"field": "run.conclusion", "not_in": ["failure"]})
        ));
        assert!(holds(json!({"field": "run.attempt", "gt": 1})));
        assert!(!holds(json!({"field": "run.attempt", "lt": 2})));
        assert!(
            holds(json!({"field": "run.attempt", "equals": "2"})),
            "numbers compare as numbers"
        );
        assert!(
            holds(json!({"field": "run.private", "equals": true})),
            "\"true\" equals true"
        );
        assert!(holds(
            json!({"not": {"field": "run.branch", "regex": "^main$"}})
        ));
        assert!(holds(json!({"field": "run.branch", "not_regex": "^main$"})));
        assert!(holds(json!({"field": "missing", "exists": false})));
        assert!(
            holds(json!({"field": "n", "exists": false})),
            "null counts as absent"
        );
        assert!(!holds(json!({"field": "missing", "equals": "x"})));
        assert!(holds(json!({"field": "missing", "not_equals": "x"})));
        assert!(holds(
            json!({"any": [{"field": "run.attempt", "gt": 5}, {"field": "run.conclusion", "equals": "failure"}]})
        ));
        let why = cond(json!({"all": [{"field": "run.conclusion", "equals": "failure"}, {"field": "run.attempt", "gte": 3}]})).check(&p).unwrap();
        assert_eq!(why, "field `run.attempt` is 2, not >= 3");
        let why = cond(
            json!({"any": [{"field": "a", "exists": true}, {"field": "run.attempt", "gt": 9}]}),
        )
        .check(&p)
        .unwrap();
        assert!(
            why.starts_with("none of any[...] holds (field `a` is missing; "),
            "{why}"
        );
    }

    #[test]
    fn compile_errors_name_the_key() {
        let err = |v: Value| compile(&v).unwrap_err();
        assert_eq!(
            err(json!({"all": [{"field": "a", "regex": "("}]})).0,
            "all[0].regex"
        );
        assert_eq!(
            err(json!({"any": [{"field": "a", "equals": 1, "gt": 2}]})).0,
            "any[0]"
        );
        assert_eq!(err(json!({"field": "a", "between": 2})).0, "between");
        assert_eq!(err(json!({"field": "a..b", "equals": 1})).0, "field");
        assert_eq!(err(json!({"all": []})).0, "all");
        assert_eq!(err(json!({"not": {"field": "a", "gt": "x"}})).0, "not.gt");
    }

    proptest! {
        /// Numeric operators agree with f64 comparisons, for numbers and numeric text.
        #[test]
        fn numeric_ops_agree_with_f64(x in -1e6f64..1e6, n in -1e6f64..1e6, as_text in any::<bool>()) {
            let v = if as_text { json!({"x": x.to_string()}) } else { json!({"x": x}) };
            for (op, want) in [("gt", x > n), ("gte", x >= n), ("lt", x < n), ("lte", x <= n)] {
                let c = cond(json!({"field": "x", op: n}));
                prop_assert_eq!(c.check(&v).is_none(), want, "{} {} {}", x, op, n);
            }
        }

        /// not(not(c)) behaves as c; any and all of one condition behave as it.
        #[test]
        fn combinators_are_consistent(x in -100i64..100, n in -100i64..100) {
            let v = json!({"x": x});
            let base = json!({"field": "x", "gte": n});
            let plain = cond(base.clone()).check(&v).is_none();
            prop_assert_eq!(cond(json!({"not": {"not": base.clone()}})).check(&v).is_none(), plain);
            prop_assert_eq!(cond(json!({"any": [base.clone()]})).check(&v).is_none(), plain);
            prop_assert_eq!(cond(json!({"all": [base.clone()]})).check(&v).is_none(), plain);
            prop_assert_eq!(cond(json!({"not": base})).check(&v).is_none(), !plain);
        }
    }
}
