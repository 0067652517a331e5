"""Alerts tested by behaviour: promtool runs every rule on input series, amtool checks the routing."""

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.commands import needs
from tests.support.paths import ROOT

pytestmark = [pytest.mark.integration, needs("promtool", "amtool", debian="prometheus prometheus-alertmanager")]
MONITORING = ROOT / "monitoring"


def tool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """promtool or amtool (Debian's prometheus and prometheus-alertmanager packages; .ci/run installs them)."""
    return subprocess.run(args, cwd=MONITORING, input=stdin, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid_and_every_unit_test_passes() -> None:
    checked = tool("promtool", "check", "rules", "alerts.yml")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = tool("promtool", "test", "rules", "alerts.test.yml")
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def test_every_alert_is_tested_firing_and_quiet() -> None:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = [
        case
        for test in yaml.safe_load((MONITORING / "alerts.test.yml").read_text())["tests"]
        for case in test["alert_rule_test"]
    ]
    fires = {case["alertname"] for case in cases if case["exp_alerts"]}
    quiet = {case["alertname"] for case in cases if not case["exp_alerts"]}
    assert alerts - fires == set(), "alerts never shown to fire"
    assert alerts - quiet == set(), "alerts never shown to stay quiet"


def test_the_unit_tests_can_fail(tmp_path: Path) -> None:
    """The same tests against rules with one threshold changed: promtool reports the difference."""
    rules = (MONITORING / "alerts.yml").read_text().replace("> 0.01", "> 0.5")
    (tmp_path / "alerts.yml").write_text(rules)
    (tmp_path / "alerts.test.yml").write_text((MONITORING / "alerts.test.yml").read_text())
    result = subprocess.run(
        ["promtool", "test", "rules", "alerts.test.yml"], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "TabpipeServerErrors" in result.stdout + result.stderr


def test_alertmanager_routes_every_alert_to_a_webhook() -> None:
    checked = tool("amtool", "check-config", "alertmanager.yml")
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert receivers[config["route"]["receiver"]]["webhook_configs"][0]["url"].startswith("http")
