"""Alertmanager routing: which receivers exist is in the profile (reviewable), where they post is a secret.

Receiver URLs and keys come from the stack's secret `mlcluster:alertReceivers` (receiver name → Slack webhook
URL, webhook URL or PagerDuty routing key). They reach Alertmanager as files of a mounted Secret
(`api_url_file`, `url_file`, `routing_key_file`), so no URL is ever in Helm values, state outputs or a render.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from mlcluster.profiles.model import DnsLabel, Strict

RECEIVER_SECRET = "alertmanager-receivers"
SECRET_DIR = f"/etc/alertmanager/secrets/{RECEIVER_SECRET}"  # where alertmanagerSpec.secrets mounts it
STACK_KEY = "mlcluster:alertReceivers"


class Receiver(Strict):
    """Where alerts go. Its URL or key is `mlcluster:alertReceivers.<name>` in the stack (a secret)."""

    name: DnsLabel
    kind: Literal["slack", "webhook", "pagerduty"]
    channel: str | None = Field(None, description="slack: the channel, e.g. '#ml-platform'.")
    severities: list[Literal["critical", "warning"]] = Field(
        default_factory=lambda: ["critical", "warning"], min_length=1, description="Which alerts it receives.")


def _receiver(receiver: Receiver) -> dict[str, Any]:
    secret = f"{SECRET_DIR}/{receiver.name}"
    if receiver.kind == "slack":
        slack: dict[str, Any] = {"api_url_file": secret, "send_resolved": True,
                                 "title": '[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }}',
                                 "text": "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ end }}"}
        if receiver.channel:
            slack["channel"] = receiver.channel
        return {"name": receiver.name, "slack_configs": [slack]}
    if receiver.kind == "webhook":
        return {"name": receiver.name, "webhook_configs": [{"url_file": secret, "send_resolved": True}]}
    return {"name": receiver.name, "pagerduty_configs": [{"routing_key_file": secret, "send_resolved": True}]}


def config(receivers: list[Receiver]) -> dict[str, Any]:
    """The whole Alertmanager configuration (it replaces the chart's)."""
    routes: list[dict[str, Any]] = [{"receiver": "null", "matchers": ['alertname = "Watchdog"']}]
    routes += [{"receiver": r.name, "matchers": [f'severity =~ "{"|".join(r.severities)}"'], "continue": True}
               for r in receivers]
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {"receiver": "null", "group_by": ["alertname", "namespace"], "group_wait": "30s",
                  "group_interval": "5m", "repeat_interval": "12h", "routes": routes},
        "receivers": [{"name": "null"}, *[_receiver(r) for r in receivers]],
        "inhibit_rules": [{"source_matchers": ["severity = critical"], "target_matchers": ["severity = warning"],
                           "equal": ["alertname", "namespace"]}],
        "templates": ["/etc/alertmanager/config/*.tmpl"],
    }
