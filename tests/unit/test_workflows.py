"""CI files: every GitHub workflow passes GitHub's workflow schema (check-jsonschema's vendored copy,
offline), and the scripts they call parse."""

import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.paths import BIN, ROOT

WORKFLOWS = sorted((ROOT / ".github/workflows").glob("*.yml"))


def check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.github-workflows", str(path)],
        capture_output=True,
        text=True,
    )


def test_there_is_a_pipeline_and_a_scheduled_monitor_workflow() -> None:
    names = {path.name for path in WORKFLOWS}
    assert {"pipeline.yml", "monitor.yml"} <= names
    monitor = yaml.safe_load((ROOT / ".github/workflows/monitor.yml").read_text())
    assert monitor[True]["schedule"][0]["cron"]  # PyYAML reads the key `on` as True
    steps = " ".join(str(step.get("run", "")) for step in monitor["jobs"]["monitor"]["steps"])
    assert "tabpipe monitor" in steps and "gh pr create" in steps and ".ci/pr-report" in steps
    assert "tabpipe notify" in steps


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_every_workflow_passes_githubs_schema(path: Path) -> None:
    result = check(path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path) -> None:
    workflow = yaml.safe_load((ROOT / ".github/workflows/monitor.yml").read_text())
    workflow["jobs"]["monitor"]["timeout-minutes"] = "two hours"
    workflow["jobs"]["monitor"]["runs_on"] = workflow["jobs"]["monitor"].pop("runs-on")
    broken = tmp_path / "broken.yml"
    broken.write_text(yaml.safe_dump({"on": workflow[True], **{k: v for k, v in workflow.items() if k is not True}}))
    result = check(broken)
    assert result.returncode == 1 and "broken.yml" in result.stdout


@pytest.mark.parametrize("script", [".ci/run", ".ci/pr-report"])
def test_the_ci_scripts_parse(script: str) -> None:
    assert subprocess.run(["bash", "-n", str(ROOT / script)], capture_output=True).returncode == 0
