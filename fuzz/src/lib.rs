//! Shared setup for the fuzz targets: one pipeline with a source of every kind.

use roam_notify::config::Config;
use roam_notify::ingest::Pipeline;

/// A source of every kind (each with the secret its scheme needs) and a catch-all route.
pub const CONFIG: &str = r#"
[[sources]]
name = "github"
kind = "github"
secret = "s"
[[sources]]
name = "gitlab"
kind = "gitlab"
secret = "s"
[[sources]]
name = "gitlab-sw"
kind = "gitlab"
auth = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[sources]]
name = "alertmanager"
kind = "alertmanager"
secret = "u:p"
[[sources]]
name = "grafana"
kind = "grafana"
auth = "hmac-sha256"
secret = "s"
timestamp_header = "X-Grafana-Alerting-Timestamp"
[[sources]]
name = "pagerduty"
kind = "pagerduty"
secret = "s"
[[sources]]
name = "sentry"
kind = "sentry"
secret = "s"
[[sources]]
name = "circleci"
kind = "circleci"
secret = "s"
[[sources]]
name = "jenkins"
kind = "jenkins"
secret = "u:p"
[[sources]]
name = "stripe"
kind = "stripe"
secret = "whsec_x"
[[sources]]
name = "buildkite"
kind = "buildkite"
auth = "hmac-sha256"
secret = "s"
[[sources]]
name = "datadog"
kind = "datadog"
secret = "u:p"
[[sources]]
name = "hubspot"
kind = "hubspot"
secret = "s"
public_url = "https://h.example.com/hooks/hubspot"
[[sources]]
name = "salesforce"
kind = "salesforce"
organization_id = "012345678901234"
[[sources]]
name = "pipedrive"
kind = "pipedrive"
secret = "u:p"
[[sources]]
name = "standard"
kind = "standard-webhooks"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[sources]]
name = "slack"
kind = "slack"
secret = "t"
[[sources]]
name = "roam"
kind = "roam"
secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
[[sources]]
name = "generic"
kind = "generic"
auth = "hmac-sha256"
secret = "s"
event_field = "type"
delivery_id_field = "id"

[[routes]]
name = "all"
source = "github"
to = "G-88bebce7-6cbb-4666-96f9-5c02d73e6661"
"#;

pub fn pipeline() -> Pipeline {
    let cfg = Config::from_toml_str(CONFIG, "fuzz.toml").expect("fuzz config");
    Pipeline::compile(&cfg, Default::default()).expect("fuzz pipeline")
}
