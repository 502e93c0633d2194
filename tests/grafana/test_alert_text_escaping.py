"""Sender-chosen names in alert texts cannot forge lines or Slack links and mentions.

The committed rule annotations and notification templates are rendered with Go's text/template
(`gotemplate/main.go`, the engine Grafana uses; the few functions they call are implemented as
Grafana documents them), with a service name sent over OTLP that tries both.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RENDERER = Path(__file__).with_name("gotemplate") / "main.go"
EVIL = "checkout\nRunbook: https://evil.example <!channel> <https://evil.example|open dashboard> & co"

@pytest.fixture(scope="module")
def render(tmp_path_factory):
    binary = tmp_path_factory.mktemp("gotemplate") / "render"
    subprocess.run(["go", "build", "-o", str(binary), str(RENDERER)], check=True, capture_output=True,
                   env={**_go_env(), "GO111MODULE": "off"})

    def run(text: str, data: dict, templates: list[str] = (), rule: bool = False) -> str:
        payload = json.dumps({"templates": list(templates), "text": text, "data": data, "rule": rule})
        done = subprocess.run([str(binary)], input=payload, capture_output=True, text=True, check=True)
        return done.stdout
    return run


def _go_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k.startswith(("GO", "HOME", "PATH", "TMP", "XDG"))}


def _rules() -> list[dict]:
    groups = yaml.safe_load((ROOT / "grafana/provisioning/alerting/rules.yaml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def _templates() -> list[str]:
    return [t["template"] for t in yaml.safe_load((ROOT / "grafana/provisioning/alerting/templates.yaml")
                                                  .read_text())["templates"]]


def test_rule_summaries_keep_hostile_names_on_one_line(render):
    labels = dict.fromkeys(("service", "model", "rule", "metric", "operation"), EVIL)
    for rule in _rules():
        summary = render(rule["annotations"]["summary"], {"Labels": labels, "Values": {"B": {"Value": 0.25}},
                                                          "Value": "0.25"}, rule=True)
        assert "\n" not in summary, (rule["uid"], summary)


def test_slack_text_escapes_links_and_mentions(render):
    summary = EVIL.replace("\n", " ")  # as the rule template leaves it
    data = {"Status": "firing", "CommonLabels": {"alertname": "LLM error rate"},
            "Alerts": [{"Annotations": {"summary": summary, "description": "d", "runbook_url": "https://r"},
                        "DashboardURL": "", "PanelURL": ""}]}
    slack = next(p for p in yaml.safe_load((ROOT / "grafana/provisioning/alerting/contact-points.yaml")
                                           .read_text())["contactPoints"][0]["receivers"] if p["type"] == "slack")
    text = render(slack["settings"]["text"], data, _templates())
    assert "<" not in text and ">" not in text
    assert "&lt;!channel&gt;" in text and "&amp; co" in text
    lines = text.splitlines()
    assert lines[0].startswith("checkout Runbook:") and lines[1:3] == ["d", "Runbook: https://r"]  # no forged line


def test_plain_message_is_unchanged_for_ordinary_names(render):
    data = {"Status": "firing", "CommonLabels": {"alertname": "x"},
            "Alerts": [{"Annotations": {"summary": "checkout: 7% of LLM calls fail", "description": "d",
                                        "runbook_url": "https://r"}, "DashboardURL": "", "PanelURL": ""}]}
    text = render('{{ template "llmrel.message" . }}', data, _templates())
    assert text.startswith("checkout: 7% of LLM calls fail\n")
