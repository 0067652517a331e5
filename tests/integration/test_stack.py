"""The monitoring stack for real: Prometheus (Debian's) scrapes a running `bentoml serve` with the project's
scrape config and alert rules, and Alertmanager routes what fires to a webhook with the project's routing.

Only what makes the test take seconds instead of minutes differs from monitoring/: 1 s scrape and
evaluation intervals, no `for:` waiting (promtool's tests in test_alerts.py cover every duration),
Alertmanager's group wait of 1 s, and the ports and the receiver's URL of this test.
"""

import json
import os
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tabpipe.deploy import image
from tabpipe.sandbox.servers import background, free_port
from tabpipe.serve import token
from tests.support.client import post
from tests.support.commands import needs
from tests.support.paths import BIN, ROOT
from tests.support.projects import Reproduced
from tests.support.servers import serving
from tests.support.webhook import Receiver, webhook_receiver

pytestmark = [
    pytest.mark.integration,
    needs("prometheus", "prometheus-alertmanager", "promtool", debian="prometheus prometheus-alertmanager"),
]
MONITORING = ROOT / "monitoring"
SERIES = '{__name__=~"tabpipe_.*|bentoml_service_request_total"}'
ROW = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


def alertmanager_config(webhook: str) -> dict[str, Any]:
    config = yaml.safe_load((MONITORING / "alertmanager.yml").read_text())
    for receiver in config["receivers"]:
        for hook in receiver["webhook_configs"]:
            hook["url"] = webhook
    config["route"].update(group_wait="1s", group_interval="1s")
    return config


def prometheus_config(service: str, alertmanager: str, rules: Path) -> dict[str, Any]:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    config["global"].update(scrape_interval="1s", evaluation_interval="1s")
    config["rule_files"] = [str(rules)]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [alertmanager]}]
    (job,) = config["scrape_configs"]
    job["static_configs"] = [{"targets": [service]}]
    return config


def rules_without_waiting() -> dict[str, Any]:
    rules = yaml.safe_load((MONITORING / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            rule["for"] = "0s"
    return rules


def write(path: Path, content: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(content))
    return path


@pytest.fixture
def stack(reproduced: Reproduced, tmp_path: Path) -> Iterator[tuple[str, str, Receiver]]:
    """A served project, Alertmanager and Prometheus on 127.0.0.1; (service URL, Prometheus URL, webhook)."""
    with webhook_receiver("/alerts") as hook, serving(reproduced.repo, reproduced.home) as service:
        am_port, prom_port = free_port(), free_port()
        am_config = write(tmp_path / "alertmanager.yml", alertmanager_config(hook.url))
        rules = write(tmp_path / "alerts.yml", rules_without_waiting())
        prom_config = prometheus_config(service.removeprefix("http://"), f"127.0.0.1:{am_port}", rules)
        alertmanager = [
            "prometheus-alertmanager",
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ]
        prometheus = [
            "prometheus",
            f"--config.file={write(tmp_path / 'prometheus.yml', prom_config)}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
        ]
        prom = f"http://127.0.0.1:{prom_port}"
        ready_am = f"http://127.0.0.1:{am_port}/-/ready"
        with (
            background(alertmanager, tmp_path, {}, ready_am, tmp_path / "alertmanager.log"),
            background(prometheus, tmp_path, {}, f"{prom}/-/ready", tmp_path / "prometheus.log"),
        ):
            yield service, prom, hook


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    url = f"{prom}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())["data"]["result"]


def last_evaluations(prom: str) -> list[float]:
    """When each rule group was last evaluated (Unix seconds), from Prometheus's rules API."""
    with urllib.request.urlopen(f"{prom}/api/v1/rules", timeout=10) as answer:
        groups = json.loads(answer.read())["data"]["groups"]
    return [datetime.fromisoformat(group["lastEvaluation"][:26].rstrip("Z") + "+00:00").timestamp() for group in groups]


def wait_for(check: Any, what: str, prom: str, timeout: float = 60) -> Any:
    """Poll `check` until it answers; on timeout, say what Prometheus had."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, (
            f"no {what} within {timeout} s; Prometheus: ALERTS {query(prom, 'ALERTS')}, series {query(prom, SERIES)}"
        )
        time.sleep(0.5)
    return found


def received_alerts(hook: Receiver) -> dict[str, str]:
    """alertname -> status of every alert Alertmanager has posted."""
    return {alert["labels"]["alertname"]: alert["status"] for r in hook.received for alert in r["body"]["alerts"]}


def alerted(hook: Receiver, name: str) -> dict[str, str]:
    """Every alert received so far, once `name` is among them; else nothing."""
    alerts = received_alerts(hook)
    return alerts if name in alerts else {}


def scraped(prom: str, expr: str, at_least: float) -> bool:
    return any(float(sample["value"][1]) >= at_least for sample in query(prom, expr))


def test_prometheus_scrapes_the_service_and_alerts_reach_the_webhook_only_when_they_should(
    stack: tuple[str, str, Receiver],
) -> None:
    service, prom, hook = stack

    # Ordinary traffic: scraped, evaluated, and nothing fires.
    for _ in range(20):
        assert post(service, {"rows": [ROW, ROW]})[0] == 200
    wait_for(lambda: scraped(prom, "sum(tabpipe_predictions_total)", 40), "scrape of the 40 answered rows", prom)
    # Three more rule evaluations over what was scraped, then Alertmanager's group wait.
    scraped_at = time.time()
    wait_for(lambda: min(last_evaluations(prom)) > scraped_at + 3, "three rule evaluations", prom)
    time.sleep(2)
    assert query(prom, "ALERTS") == [] and hook.received == []

    # A burst of rejected requests: TabpipeManyRejectedRequests reaches the webhook, firing.
    for _ in range(30):
        assert post(service, {"rows": [{**ROW, "petal_width": "wide"}]})[0] == 400
    alerts = wait_for(lambda: alerted(hook, "TabpipeManyRejectedRequests"), "alert", prom)
    assert alerts["TabpipeManyRejectedRequests"] == "firing"

    firing = {sample["metric"]["alertname"] for sample in query(prom, 'ALERTS{alertstate="firing"}')}
    assert firing == {"TabpipeManyRejectedRequests"}


def test_the_compose_stack_is_valid_and_wired_to_the_project_files() -> None:
    """compose.yaml is only validated (CI reaches no registry): podman-compose parses it, and each
    service finds the project file, service name and port the others expect of it. The API token
    passes from the host; unset there, the service is open."""

    def rendered(**host: str) -> dict[str, Any]:
        shell = {k: v for k, v in os.environ.items() if k not in (token.ENV, token.FILE_ENV)}
        args = [str(BIN / "podman-compose"), "-f", "compose.yaml", "config"]
        done = subprocess.run(args, cwd=ROOT, env={**shell, **host}, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return yaml.safe_load(done.stdout)["services"]

    services = rendered()
    assert token.configured(services["tabpipe"]["environment"]) is None
    given = rendered(**{token.ENV: "s3cr3t"})["tabpipe"]["environment"]
    assert token.configured(given) == b"s3cr3t"
    assert set(services) == {"tabpipe", "mlflow", "prometheus", "alertmanager", "grafana"}
    assert services["tabpipe"]["image"] == f"{image.REPOSITORY}:release"
    for name, service in services.items():
        assert service.get("image"), f"{name} has no image"
        assert set(service.get("depends_on", {})) <= set(services), f"{name} depends on an unknown service"
        for port in service.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond this machine"
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (ROOT / source).exists(), f"{name} mounts {source}, which is missing"

    def container_port(name: str) -> str:
        return services[name]["ports"][0].rsplit(":", 1)[1]

    # The service's prediction log lands on the named volume (the image's TABPIPE_PREDICTION_LOG folder).
    dockerfile = (ROOT / "deploy/Dockerfile.j2").read_text()
    log_dir = next(line.split()[1] for line in dockerfile.splitlines() if line.startswith("VOLUME "))
    assert any(v.split(":")[1] == log_dir for v in services["tabpipe"]["volumes"])
    # Prometheus scrapes the service and alerts Alertmanager by their compose names and ports.
    prometheus = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    (job,) = prometheus["scrape_configs"]
    assert job["static_configs"][0]["targets"] == [f"tabpipe:{container_port('tabpipe')}"]
    alertmanagers = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert alertmanagers == [f"alertmanager:{container_port('alertmanager')}"]
    mounted = {v.split(":")[1]: v.split(":")[0] for v in services["prometheus"]["volumes"]}
    rule_files = {f"/etc/prometheus/{rules}" for rules in prometheus["rule_files"]}
    assert mounted["/etc/prometheus/prometheus.yml"] == "./monitoring/prometheus.yml"
    assert rule_files <= set(mounted)
    # Grafana reads the stack's Prometheus and the project's dashboard.
    grafana = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    provisioning = ROOT / grafana["/etc/grafana/provisioning"]
    (source,) = yaml.safe_load((provisioning / "datasources/prometheus.yml").read_text())["datasources"]
    assert source["url"] == f"http://prometheus:{container_port('prometheus')}"
    (provider,) = yaml.safe_load((provisioning / "dashboards/tabpipe.yml").read_text())["providers"]
    dashboards = [target for target in grafana if target.startswith(provider["options"]["path"] + "/")]
    assert [grafana[target] for target in dashboards] == ["./monitoring/grafana-dashboard.json"]
    # Prometheus accepts the scrape config as the stack mounts it (rule file beside it).
    checked = subprocess.run(
        ["promtool", "check", "config", "prometheus.yml"], cwd=MONITORING, capture_output=True, text=True, timeout=60
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
