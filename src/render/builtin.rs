//! Templates compiled into the binary, so the image works without a templates directory.
//! Each entry: name, source, sample payload (rendered by `check` and the unit tests).

pub const TEMPLATES: &[(&str, &str, Option<&str>)] = &[
    (
        "default",
        include_str!("../../templates/default.hbs"),
        Some(include_str!("../../templates/default.sample.json")),
    ),
    (
        "generic/default",
        include_str!("../../templates/generic/default.hbs"),
        Some(include_str!("../../templates/generic/default.sample.json")),
    ),
    (
        "github/default",
        include_str!("../../templates/github/default.hbs"),
        Some(include_str!("../../templates/github/default.sample.json")),
    ),
    (
        "github/push",
        include_str!("../../templates/github/push.hbs"),
        Some(include_str!("../../templates/github/push.sample.json")),
    ),
    (
        "github/pull_request",
        include_str!("../../templates/github/pull_request.hbs"),
        Some(include_str!(
            "../../templates/github/pull_request.sample.json"
        )),
    ),
];
