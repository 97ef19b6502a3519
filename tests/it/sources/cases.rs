//! The senders' published fixtures (tests/fixtures), each with its source, signer,
//! event and the lines the posted message must contain.

use super::{Signer, headers, now, secret_of};
use crate::helpers::*;

pub(crate) struct Case {
    pub fixture: &'static str,
    pub source: &'static str,
    pub signer: Signer,
    pub extra_headers: &'static [(&'static str, &'static str)],
    pub event: &'static str,
    /// Lines the posted message must contain (as a user would read it in Roam).
    pub expect: &'static [&'static str],
}

impl Case {
    /// The fixture's bytes and the headers its sender would send with them, signed now.
    pub(crate) fn request(&self) -> (Vec<u8>, Vec<(String, String)>) {
        let body = fixture(self.fixture);
        let mut hdrs = headers(self.signer, secret_of(self.source), &body, now());
        hdrs.extend(
            self.extra_headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        (body, hdrs)
    }
}

pub(crate) const CASES: &[Case] = &[
    Case {
        fixture: "gitlab/push.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[("X-Gitlab-Event", "Push Hook")],
        event: "gitlab.push",
        expect: &[
            "⬆️ **John Smith** pushed 4 commits to **master** in [mike/diaspora](http://example.com/mike/diaspora)",
            "fixed readme · GitLab dev user",
        ],
    },
    Case {
        fixture: "gitlab/tag_push.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.tag_push",
        expect: &[
            "🏷️ **John Smith** pushed tag **v1.0.0** in [jsmith/example](http://example.com/jsmith/example)",
        ],
    },
    Case {
        fixture: "gitlab/merge_request.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.merge_request.open",
        expect: &[
            "🟢 Opened merge request [!1 MS-Viewport](http://example.com/diaspora/merge\\_requests/1) in **gitlabhq/gitlab-test**",
            "by User1 · ms-viewport → master",
        ],
    },
    Case {
        fixture: "gitlab/pipeline.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.pipeline.success",
        expect: &[
            "✅ Pipeline [#31](http://192.168.64.1:3005/gitlab-org/gitlab-test/-/pipelines/31) **success** on **master**",
            "after 63s",
        ],
    },
    Case {
        fixture: "gitlab/job.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.job.success",
        expect: &["✅ Job **auto\\_deploy:start** (coordinated:tag) **success** on **main**"],
    },
    Case {
        fixture: "gitlab/deployment.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.deployment.success",
        expect: &["✅ Deployment to **staging** **success** in [root/test-deployment-webhooks]"],
    },
    Case {
        fixture: "gitlab/release.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.release.create",
        expect: &[
            "📦 Release **[1.0.0](http://example.com/exm-namespace/example-project/-/releases/1.0.0)** (1.0.0) published",
        ],
    },
    Case {
        fixture: "gitlab/issue.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.issue.open",
        expect: &[
            "📝 **Administrator** opened issue [#23 New API: create/update/delete file](http://example.com/diaspora/issues/23)",
        ],
    },
    Case {
        fixture: "gitlab/note_merge_request.json",
        source: "gl",
        signer: Signer::GitLabToken,
        extra_headers: &[],
        event: "gitlab.note.mergerequest",
        expect: &[
            "💬 **Administrator** commented on merge request !1",
            "> This MR needs work.",
        ],
    },
    Case {
        fixture: "gitlab/pipeline.json",
        source: "gl-signed",
        signer: Signer::GitLabSigned,
        extra_headers: &[],
        event: "gitlab.pipeline.success",
        expect: &["✅ Pipeline [#31]"],
    },
    Case {
        fixture: "alertmanager/firing.am-0.21.wire.json",
        source: "am",
        signer: Signer::Basic,
        extra_headers: &[],
        event: "alertmanager.firing",
        expect: &[
            "🔥 **FIRING** **DemoAlert** · 1 firing, 0 resolved · severity critical",
            "• ❌ DemoAlert: This is a demo",
            "[Open Alertmanager](http://n3:9093)",
        ],
    },
    Case {
        fixture: "alertmanager/firing.two-alerts.zulip.json",
        source: "am",
        signer: Signer::Basic,
        extra_headers: &[],
        event: "alertmanager.firing",
        // One message per alert.
        expect: &["🔥 **FIRING** **High CPU Temperature** · 1 firing, 0 resolved"],
    },
    Case {
        fixture: "grafana/webhook.firing.docs.json",
        source: "graf",
        signer: Signer::GrafanaHmac,
        extra_headers: &[],
        event: "grafana.firing",
        expect: &[
            "🔥 **\\[FIRING:2\\]  (blue)** · 1 firing, 0 resolved",
            "• ❌ High memory usage: This alert was triggered for zone us-1",
        ],
    },
    Case {
        fixture: "grafana/webhook.resolved.v9.zulip.json",
        source: "graf-ts",
        signer: Signer::GrafanaHmacTs,
        extra_headers: &[],
        event: "grafana.resolved",
        expect: &["✅ **\\[RESOLVED\\]  (Test alert true)** · 0 firing, 1 resolved"],
    },
    Case {
        fixture: "pagerduty/incident.triggered.zulip.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.incident.triggered",
        expect: &[
            "🚨 Incident #9 [Test Incident 3](https://pig208.pagerduty.com/incidents/PFQZPSY) **triggered** · high urgency",
            "Assigned to PIG 208",
        ],
    },
    Case {
        fixture: "pagerduty/incident.resolved.zulip.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.incident.resolved",
        expect: &[
            "✅ Incident #6 [Test Incident](https://pig208.pagerduty.com/incidents/PCPZE64) **resolved**",
        ],
    },
    Case {
        fixture: "pagerduty/incident.priority_updated.docs.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.incident.priority_updated",
        expect: &[
            "Incident #2 [A little bump in the road](https://acme.pagerduty.com/incidents/PGR0VU2)",
            "· P1",
        ],
    },
    Case {
        fixture: "pagerduty/service.updated.docs.json",
        source: "pd",
        signer: Signer::PagerDuty,
        extra_headers: &[],
        event: "pagerduty.service.updated",
        expect: &[
            "🔔 **service.updated**: [testing service updates](https://acme.pagerduty.com/services/PF9KMXH)",
        ],
    },
    Case {
        fixture: "sentry/issue.created.zulip.json",
        source: "sentry",
        signer: Signer::Sentry,
        extra_headers: &[("Request-ID", "sentry-req-1")],
        event: "sentry.issue.created",
        expect: &[
            "🐞 New issue **ZULIP-INTEGRATION-TESTING-2** Exception: Custom exception! in **zulip-integration-testing**",
        ],
    },
    Case {
        fixture: "sentry/issue.resolved.zulip.json",
        source: "sentry",
        signer: Signer::Sentry,
        extra_headers: &[("Request-ID", "sentry-req-2")],
        event: "sentry.issue.resolved",
        expect: &["✅ Resolved", "by Hemanth V. Alluri"],
    },
    Case {
        fixture: "circleci/workflow-completed.github.zulip.json",
        source: "circle",
        signer: Signer::CircleCi,
        extra_headers: &[],
        event: "circleci.workflow-completed.success",
        expect: &[
            "✅ Workflow **[sample](https://app.circleci.com/pipelines/github/zulip-testing/circleci-webhook-test/4/workflows/7381218b-d04c-4aa3-b8b8-8c00a9319d1f)** **success**",
            ".circleci: Update Webhook URL. · Hari Prashant Bhimaraju",
        ],
    },
    Case {
        fixture: "stripe/invoice.payment_failed.zulip.json",
        source: "stripe",
        signer: Signer::Stripe,
        extra_headers: &[],
        event: "stripe.invoice.payment_failed",
        expect: &["🧾 Invoice in\\_00000000000000 · **invoice.payment\\_failed** · 0.00 AUD"],
    },
    Case {
        fixture: "stripe/customer.source.created.aspnet.json",
        source: "stripe",
        signer: Signer::Stripe,
        extra_headers: &[],
        event: "stripe.customer.source.created",
        expect: &["💳 **customer.source.created**"],
    },
    Case {
        fixture: "jenkins/notification-plugin.help-example.json",
        source: "jenkins",
        signer: Signer::Basic,
        extra_headers: &[],
        event: "jenkins.started.failed",
        expect: &["❌ Jenkins **JobName** #1 **FAILED**"],
    },
];
