"""Contact points (Slack, PagerDuty, webhook, llmrel's own actions webhook), the message template and the
notification policy tree.

Secrets never appear in files: provisioning files carry `$LLMREL_…` placeholders that Grafana
fills from its own environment when it reads them; `llmrel grafana push` fills them from
the values it is given and skips a contact point whose value is missing. Optional secrets
(`Receiver.optional`) are set when given; in files only top-level ones get a placeholder, since a
nested block such as `hmacConfig` with an empty secret would stop Grafana from sending at all.

`llmrel-actions` posts alerts labelled `llmrel_breaker` to llmrel (`POST /api/v1/alerts/grafana`),
where the label's value names the circuit breaker scope the alert opens, and its resolution closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from grafana_foundation_sdk.builders import alerting
from grafana_foundation_sdk.models import alerting as am

TEMPLATE_NAME = "llmrel"
ACTIONS_RECEIVER = "llmrel-actions"
BREAKER_LABEL = "llmrel_breaker"
# No `$` in the template: file provisioning would read it as an environment variable.
# Summaries carry sender-chosen names (control characters already replaced in the rule's template);
# Slack reads `<…>` as links and mentions (`<!channel>`, `<https://…|text>`) and `&` as an entity,
# so its message escapes the three characters as Slack documents.
TEMPLATE = """{{ define "llmrel.title" }}[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}{{ end }}
{{ define "llmrel.message" }}{{ range .Alerts }}{{ .Annotations.summary }}
{{ .Annotations.description }}
Runbook: {{ .Annotations.runbook_url }}
{{ if .DashboardURL }}Dashboard: {{ .DashboardURL }}{{ end }}{{ if .PanelURL }} Panel: {{ .PanelURL }}{{ end }}
{{ end }}{{ end }}
{{ define "llmrel.slack.escape" }}{{ . | reReplaceAll "&" "&amp;" | reReplaceAll "<" "&lt;" \
| reReplaceAll ">" "&gt;" }}{{ end }}
{{ define "llmrel.slack.message" }}{{ range .Alerts }}{{ template "llmrel.slack.escape" .Annotations.summary }}
{{ template "llmrel.slack.escape" .Annotations.description }}
Runbook: {{ .Annotations.runbook_url }}
{{ if .DashboardURL }}Dashboard: {{ .DashboardURL }}{{ end }}{{ if .PanelURL }} Panel: {{ .PanelURL }}{{ end }}
{{ end }}{{ end }}"""

_TITLE = '{{ template "llmrel.title" . }}'
_MESSAGE = '{{ template "llmrel.message" . }}'
_SLACK_MESSAGE = '{{ template "llmrel.slack.message" . }}'


@dataclass(frozen=True)
class Receiver:
    """A contact point whose secret comes from the environment variable `env`."""

    uid: str
    type: str
    env: str
    secret_key: str
    settings: Mapping[str, object]
    optional: Mapping[str, str] = field(default_factory=dict)  # dotted settings key -> env


RECEIVERS: tuple[Receiver, ...] = (
    Receiver("llmrel-slack", "slack", "LLMREL_SLACK_WEBHOOK_URL", "url", {"title": _TITLE, "text": _SLACK_MESSAGE}),
    Receiver("llmrel-pagerduty", "pagerduty", "LLMREL_PAGERDUTY_INTEGRATION_KEY", "integrationKey",
             {"severity": "critical", "summary": _TITLE, "class": "llmrel", "component": "llmrel"}),
    Receiver("llmrel-webhook", "webhook", "LLMREL_ALERT_WEBHOOK_URL", "url",
             {"httpMethod": "POST", "title": _TITLE, "message": _MESSAGE}),
    Receiver(ACTIONS_RECEIVER, "webhook", "LLMREL_ACTIONS_WEBHOOK_URL", "url",
             {"httpMethod": "POST", "maxAlerts": 0, "authorization_scheme": "Bearer"},
             {"authorization_credentials": "LLMREL_AUTH_TOKEN",
              "hmacConfig.secret": "LLMREL_GRAFANA_WEBHOOK_SECRET"}),
)
ACTIONS_HMAC_HEADER = "X-Grafana-Alerting-Signature"


def contact_points(secrets: Mapping[str, str] | None = None) -> list[am.ContactPoint]:
    """Contact points with `$ENV` placeholders, or with `secrets[env]` filled in (missing ones skipped)."""
    points = []
    for receiver in RECEIVERS:
        if secrets is None:
            value = f"${receiver.env}"
        elif secrets.get(receiver.env):
            value = secrets[receiver.env]
        else:
            continue
        settings: dict[str, Any] = {**receiver.settings, receiver.secret_key: value}
        for key, env in receiver.optional.items():
            if secrets is None and "." not in key:
                settings[key] = f"${env}"
            elif secrets is not None and secrets.get(env):
                _set_path(settings, key, secrets[env])
        if "hmacConfig" in settings:
            settings["hmacConfig"]["header"] = ACTIONS_HMAC_HEADER
        points.append(alerting.ContactPoint().uid(receiver.uid).name(receiver.uid).type(receiver.type)  # type: ignore[arg-type]
                      .settings(settings).disable_resolve_message(False).build())
    return points


def _set_path(settings: dict[str, Any], dotted: str, value: str) -> None:
    *parents, leaf = dotted.split(".")
    node = settings
    for name in parents:
        node = node.setdefault(name, {})
    node[leaf] = value


def policy_tree(receivers: set[str]) -> dict[str, object]:
    """The org's notification policy tree in Grafana's wire form (`object_matchers` as triples).

    Alerts labelled with a breaker scope go to llmrel's actions webhook first (grouped per scope,
    sent without delay, so a breaker opens within seconds of the alert), then on down the tree.
    Critical alerts page PagerDuty; every llmrel alert also goes to Slack and the webhook. The
    root receiver is Slack when configured (else the first available), so alerts of other
    products keep a destination. Routes to receivers not in `receivers` are left out.
    """
    product = [["product", "=", "llmrel"]]
    routes: list[dict[str, object]] = []
    if ACTIONS_RECEIVER in receivers:
        routes.append({"receiver": ACTIONS_RECEIVER, "object_matchers": [[BREAKER_LABEL, "=~", ".+"]],
                       "group_by": ["alertname", BREAKER_LABEL], "group_wait": "0s", "group_interval": "30s",
                       "repeat_interval": "1h", "continue": True})
    if "llmrel-pagerduty" in receivers:
        routes.append({"receiver": "llmrel-pagerduty", "object_matchers": [["severity", "=", "critical"], *product],
                       "continue": True})
    for uid in ("llmrel-webhook", "llmrel-slack"):
        if uid in receivers:
            routes.append({"receiver": uid, "object_matchers": product, "continue": True})
    root = "llmrel-slack" if "llmrel-slack" in receivers else sorted(receivers - {ACTIONS_RECEIVER} or receivers)[0]
    return {"receiver": root, "group_by": ["grafana_folder", "alertname", "service"], "group_wait": "30s",
            "group_interval": "5m", "repeat_interval": "4h", "routes": routes}


def template() -> am.NotificationTemplate:
    return alerting.NotificationTemplate().name(TEMPLATE_NAME).template(TEMPLATE).build()
