//! Alert kinds, one event per alert: what every Alertmanager user writes
//! (`group_by = ["alertname"]`) groups by the alert's label, and a storm of distinct
//! alerts is listed as distinct alerts with counts, never "×N".

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::noise::{am_route, post_alert};

/// One notification carrying `n` firing DiskFull alerts on distinct hosts, half of them
/// critical, as Alertmanager sends a group.
fn storm(n: usize) -> Vec<u8> {
    let alerts: Vec<Value> = (0..n)
        .map(|i| {
            let severity = if i % 2 == 0 { "critical" } else { "warning" };
            json!({
                "status": "firing",
                "labels": {"alertname": "DiskFull", "instance": format!("host-{i}"), "severity": severity},
                "annotations": {"summary": format!("disk 97% full on host-{i}")},
                "startsAt": "2026-11-29T10:00:00Z",
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus:9090/graph",
                "fingerprint": format!("{i:016x}"),
            })
        })
        .collect();
    serde_json::to_vec(&json!({
        "receiver": "ops", "status": "firing", "version": "4",
        "groupLabels": {"alertname": "DiskFull"},
        "commonLabels": {"alertname": "DiskFull"},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "groupKey": "{}:{alertname=\"DiskFull\"}",
        "truncatedAlerts": 0,
        "alerts": alerts,
    }))
    .unwrap()
}

#[tokio::test]
async fn a_storm_of_distinct_alerts_in_one_group_is_listed_with_counts() {
    let roam = FakeRoam::start().await;
    let dir = tempfile::tempdir().unwrap();
    // The bare label name, as Alertmanager users write it; and a silence by label.
    let extra = format!(
        "{}\n[[silences]]\ncomment = \"host-1 is being replaced\"\nends = \"2999-01-01T00:00:00Z\"\n[silences.match]\ninstance = \"host-1\"\n",
        am_route("storm", "group_by = [\"alertname\"]\ngroup_wait = \"1s\"\n")
    );
    let app = TestApp::spawn(&test_config(&roam.url, &dir.path().join("t.db"), &extra)).await;
    let r = post_alert(&app, storm(2000)).await;
    assert_eq!(r.status(), 202);
    let reply: Value = r.json().await.unwrap();
    assert_eq!(
        reply["events"].as_array().unwrap().len(),
        2000,
        "one event per alert"
    );
    wait_for("the digest", Duration::from_secs(20), || {
        roam.delivered().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        roam.delivered().len(),
        1,
        "one group: alertname resolved to the label"
    );
    let body = &roam.delivered()[0].body;
    let text = crate::blockkit::readable(body);
    assert_eq!(
        body["blocks"][0]["text"]["text"], "1,999 alerts on storm",
        "{text}"
    );
    assert!(
        text.contains("- ❌ DiskFull on host-0: disk 97% full on host-0\n"),
        "{text}"
    );
    assert!(
        text.contains("- ❌ DiskFull on host-2: disk 97% full on host-2\n"),
        "distinct hosts listed: {text}"
    );
    assert!(
        !text.contains("on host-1:"),
        "silenced by its label: {text}"
    );
    assert!(text.contains("… and 1,989 more"), "{text}");
    assert!(
        !text.contains('×'),
        "distinct alerts are never collapsed: {text}"
    );
    assert!(
        text.contains("**By severity:** critical 1,000 · warning 999"),
        "{text}"
    );
    assert!(text.contains("firing: 1,999"), "{text}");
    assert_eq!(body["color"], "danger");
    roam.assert_all_valid();
    app.stop().await;
}
