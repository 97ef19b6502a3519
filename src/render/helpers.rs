//! The Handlebars helpers every template may use (README "Template helpers").

use handlebars::{Handlebars, HelperDef, handlebars_helper};

use super::money;

handlebars_helper!(first_line: |s: str| s.lines().next().unwrap_or("").to_string());
handlebars_helper!(short_sha: |s: str| s.chars().take(7).collect::<String>());
handlebars_helper!(ref_name: |s: str| {
    s.strip_prefix("refs/heads/").or_else(|| s.strip_prefix("refs/tags/")).unwrap_or(s).to_string()
});
handlebars_helper!(truncate: |s: str, n: u64| {
    let n = usize::try_from(n).unwrap_or(usize::MAX);
    if s.chars().count() <= n { s.to_string() } else { format!("{}…", s.chars().take(n.saturating_sub(1)).collect::<String>()) }
});
// For code blocks: a fence inside the data must not close the block early.
handlebars_helper!(to_json: |v: Json| serde_json::to_string_pretty(v).unwrap_or_default().replace("```", "'''"));
handlebars_helper!(upper: |s: str| s.to_uppercase());
// Amounts in minor units (Stripe: cents for USD, yen for JPY) as "1,234.56 USD".
handlebars_helper!(money_minor: |amount: i64, currency: str| money::minor(amount, currency));
// Amounts in major units (Pipedrive's value, HubSpot's amount; a number or numeric text)
// as "48,000 EUR"; anything else as it is.
handlebars_helper!(money_major: |value: Json, currency: str| {
    let n = value.as_f64().or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()));
    match n {
        Some(n) => money::major(n, currency),
        None => format!("{} {}", crate::fieldpath::scalar_text(value).unwrap_or_default(), currency.to_uppercase()),
    }
});
/// What a status word says about the outcome, for emoji and card colours alike.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Good,
    Bad,
    Warning,
    Neutral,
    Running,
    Unknown,
}

/// Classifies the status words senders use (CI results, alert states, incident and
/// payment events, deal stages).
pub fn outcome_of(status: &str) -> Outcome {
    let s = status.trim().to_ascii_lowercase().replace([' ', '-'], "_");
    match s.as_str() {
        "success"
        | "succeeded"
        | "successful"
        | "passed"
        | "ok"
        | "resolved"
        | "recovered"
        | "fixed"
        | "completed"
        | "merged"
        | "paid"
        | "succeeded_with_issues"
        | "closedwon"
        | "closed_won"
        | "won"
        | "published"
        | "released"
        | "active"
        | "up" => Outcome::Good,
        "failed"
        | "failure"
        | "error"
        | "errored"
        | "timed_out"
        | "timedout"
        | "infrastructure_fail"
        | "critical"
        | "firing"
        | "alerting"
        | "triggered"
        | "payment_failed"
        | "unstable"
        | "down"
        | "high"
        | "p1"
        | "sev1"
        | "fatal" => Outcome::Bad,
        "warning" | "warn" | "acknowledged" | "blocked" | "action_required" | "degraded"
        | "no_data" | "nodata" | "pending_payment" | "past_due" | "disputed" | "medium" => {
            Outcome::Warning
        }
        "canceled" | "cancelled" | "aborted" | "skipped" | "not_run" | "not_built" | "closed"
        | "stale" | "closedlost" | "closed_lost" | "lost" | "neutral" => Outcome::Neutral,
        "running" | "pending" | "started" | "created" | "queued" | "scheduled" | "in_progress"
        | "manual" | "waiting" | "requested" => Outcome::Running,
        _ => Outcome::Unknown,
    }
}

// One emoji for the status words senders use, so every CI and alert message reads alike.
handlebars_helper!(status_emoji: |s: str| {
    match outcome_of(s) {
        Outcome::Good => "✅",
        Outcome::Bad => "❌",
        Outcome::Neutral => "⚪",
        Outcome::Running => "🔄",
        Outcome::Warning => "⚠️",
        Outcome::Unknown => "🔔",
    }.to_string()
});
// A card colour for a status word: danger, warning, good, or nothing. Given several
// words, the first that says something decides (`{{outcome conclusion status}}`).
handlebars_helper!(outcome: |*args| {
    args.iter()
        .filter(|v| !v.is_null())
        .filter_map(|v| crate::fieldpath::scalar_text(v))
        .find_map(|w| match outcome_of(&w) {
            Outcome::Good => Some("good"),
            Outcome::Bad => Some("danger"),
            Outcome::Warning => Some("warning"),
            Outcome::Neutral | Outcome::Running => Some(""),
            Outcome::Unknown => None,
        })
        .unwrap_or("")
        .to_string()
});
// An integer with thousands separators: 1995 as "1,995".
handlebars_helper!(number: |n: u64| {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
});
handlebars_helper!(plural: |n: u64, one: str, many: str| if n == 1 { one.to_string() } else { many.to_string() });
// RFC 3339 as "2026-01-21 17:32 UTC"; anything else as it is.
handlebars_helper!(datetime: |s: str| {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|_| s.to_string())
});

/// handlebars' own helpers (`Registry::new`), which read only their arguments.
pub const BUILTIN: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte",
    "and", "or", "not", "len",
];

/// Ours, by name; each reads only its arguments (`handlebars_helper!`).
type Helpers = Vec<(&'static str, Box<dyn HelperDef + Send + Sync>)>;

pub fn ours() -> Helpers {
    vec![
        ("first_line", Box::new(first_line)),
        ("short_sha", Box::new(short_sha)),
        ("ref_name", Box::new(ref_name)),
        ("truncate", Box::new(truncate)),
        ("json", Box::new(to_json)),
        ("upper", Box::new(upper)),
        ("money", Box::new(money_minor)),
        ("amount", Box::new(money_major)),
        ("status_emoji", Box::new(status_emoji)),
        ("outcome", Box::new(outcome)),
        ("silence_url", Box::new(silence_url)),
        ("hubspot_record_url", Box::new(hubspot_record_url)),
        ("plural", Box::new(plural)),
        ("number", Box::new(number)),
        ("datetime", Box::new(datetime)),
    ]
}

pub fn register_helpers(hbs: &mut Handlebars<'static>) {
    for (name, helper) in ours() {
        hbs.register_helper(name, helper);
    }
}

// Alertmanager's "new silence" page, prefilled with these labels as matchers:
// `{{silence_url externalURL commonLabels}}`. Empty without a base URL.
handlebars_helper!(silence_url: |*args| {
    let base = args.first().and_then(|v| v.as_str()).unwrap_or("").trim_end_matches('/');
    let matchers: Vec<String> = args
        .get(1)
        .and_then(|v| v.as_object())
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| crate::fieldpath::scalar_text(v).map(|v| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\""))))
        .collect();
    if base.is_empty() {
        String::new()
    } else {
        let filter: String = form_urlencoded::byte_serialize(format!("{{{}}}", matchers.join(",")).as_bytes()).collect();
        format!("{base}/#/silences/new?filter={filter}")
    }
});

// A HubSpot record's page: `{{hubspot_record_url portalId subscriptionType objectId objectTypeId}}`
// (the object type from `objectTypeId`, else from the subscription: deal, contact, ...).
handlebars_helper!(hubspot_record_url: |*args| {
    let text = |i: usize| {
        args.get(i)
            .filter(|v| !v.is_null())
            .and_then(|v| crate::fieldpath::scalar_text(v))
            .unwrap_or_default()
    };
    let (portal, subscription, object) = (text(0), text(1), text(2));
    let object_type = match text(3) {
        t if !t.is_empty() => t,
        _ => match subscription.split('.').next().unwrap_or("") {
            "contact" => "0-1",
            "company" => "0-2",
            "deal" => "0-3",
            "ticket" => "0-5",
            _ => "",
        }
        .to_string(),
    };
    if portal.is_empty() || object.is_empty() || object_type.is_empty() {
        String::new()
    } else {
        format!("https://app.hubspot.com/contacts/{portal}/record/{object_type}/{object}")
    }
});
