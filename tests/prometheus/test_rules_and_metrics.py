"""promtool on bo's rules, its alert unit tests, the compose config, and every process's /metrics;
then a real Prometheus scraping `bo serve`, `bo ingest` and `bo project` and evaluating the rules."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bo.embedded import DevBroker
from bo.publish import publish, read_messages, topic_map
from tests.conftest import REPO, SAMPLES, free_port
from tests.stack import Stack, dev_token, running_stack, wait_until_projected
from tests.unit.test_dashboard import expressions

PROMETHEUS = REPO / "deploy" / "prometheus"


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=120)


def test_the_rules_are_valid(promtool: str) -> None:
    done = run(promtool, "check", "rules", str(PROMETHEUS / "rules" / "bo.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_fires_where_it_must_and_not_where_it_must_not(promtool: str) -> None:
    done = run(promtool, "test", "rules", str(PROMETHEUS / "tests" / "bo.test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    tested = {line.split("alertname:")[1].split()[0]
              for line in (PROMETHEUS / "tests" / "bo.test.yml").read_text().splitlines() if "alertname:" in line}
    declared = {line.split("alert:")[1].strip()
                for line in (PROMETHEUS / "rules" / "bo.yml").read_text().splitlines() if "- alert:" in line}
    assert declared and declared <= {t.rstrip(",") for t in tested}, "an alert without a unit test"


def test_the_compose_config_is_valid(promtool: str) -> None:
    done = run(promtool, "check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def stack(database_url: str, broker: DevBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with running_stack(database_url, broker, tmp_path_factory.mktemp("stack")) as stack:
        sent = publish(broker.bootstrap, read_messages(SAMPLES, topic_map(stack.topics)))
        wait_until_projected(database_url, sent)
        token = dev_token(stack.env, "ADMIN_READ")
        for path in ("/admin/tx/tx-1c", "/admin/tx/nobody", "/admin/payment-orders/ord-1", "/readyz"):
            get(stack.api + path, {"Authorization": f"Bearer {token}"})
        yield stack


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status), resp.read().decode()
    except urllib.error.HTTPError as err:
        return int(err.code), err.read().decode()


@pytest.mark.parametrize("process", ["serve", "ingest", "project", "api"])
def test_every_metrics_endpoint_passes_promtool(promtool: str, stack: Stack, process: str) -> None:
    url = stack.api + "/metrics" if process == "api" else stack.metrics_url(process)
    status, text = get(url)
    assert status == 200 and "# TYPE" in text
    done = run(promtool, "check", "metrics", stdin=text)
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stdout + done.stderr


@pytest.fixture(scope="module")
def prometheus(prometheus_server: str, stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Debian's Prometheus on loopback, scraping the three processes every second with bo's rules."""
    home = tmp_path_factory.mktemp("prometheus")
    (home / "rules").mkdir()
    (home / "rules" / "bo.yml").write_text((PROMETHEUS / "rules" / "bo.yml").read_text())
    jobs = {"bo-api": "serve", "bo-ingest": "ingest", "bo-project": "project"}
    config: dict[str, Any] = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": ["rules/*.yml"],
        "scrape_configs": [{"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{stack.ports[name]}"]}]}
                           for job, name in jobs.items()],
    }
    (home / "prometheus.yml").write_text(json.dumps(config))  # JSON is YAML
    port = free_port()
    log = (home / "prometheus.log").open("wb")
    server = subprocess.Popen([prometheus_server, f"--config.file={home / 'prometheus.yml'}",
                               f"--storage.tsdb.path={home / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
                              stdout=log, stderr=log)
    base = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: get(base + "/-/ready")[0] == 200, 60, "Prometheus did not become ready")
        yield base
    finally:
        server.terminate()
        server.wait(30)
        log.close()
        print(Path(home / "prometheus.log").read_text()[-3000:])


def wait(done: Any, timeout: float, message: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if done():
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, message
        time.sleep(0.5)


def query(base: str, promql: str) -> list[dict[str, Any]]:
    status, body = get(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
    assert status == 200, body
    result: list[dict[str, Any]] = json.loads(body)["data"]["result"]
    return result


def test_a_real_prometheus_scrapes_every_process_and_evaluates_the_rules(prometheus: str, stack: Stack) -> None:
    def all_up() -> bool:
        targets = json.loads(get(prometheus + "/api/v1/targets")[1])["data"]["activeTargets"]
        return len(targets) == 3 and all(t["health"] == "up" for t in targets)

    wait(all_up, 60, "not every target is up")
    up = {r["metric"]["job"]: r["value"][1] for r in query(prometheus, "up")}
    assert up == {"bo-api": "1", "bo-ingest": "1", "bo-project": "1"}
    # Recording rules have values: the consumer lag (caught up: 0) and the API's request rate.
    wait(lambda: query(prometheus, "bo:ingest_consumer_lag:sum"), 60, "no value for bo:ingest_consumer_lag:sum")
    lag = query(prometheus, "bo:ingest_consumer_lag:sum")
    assert {r["metric"]["topic"] for r in lag} == set(stack.topics) and all(r["value"][1] == "0" for r in lag)
    wait(lambda: query(prometheus, "bo:api_requests:rate5m"), 60, "no value for bo:api_requests:rate5m")
    routes = {r["metric"]["route"] for r in query(prometheus, "bo:api_requests:rate5m")}
    assert {"/admin/tx/{tx_id}", "/admin/payment-orders/{order_id}"} <= routes
    # The database's figures come from bo project's scrape, and no alert fires on a healthy stack.
    checkpoints = query(prometheus, 'bo_projector_checkpoint{job="bo-project"}')
    assert len(checkpoints) == 3
    firing = [a for a in json.loads(get(prometheus + "/api/v1/alerts")[1])["data"]["alerts"]
              if a["state"] == "firing"]
    assert firing == []


def test_every_dashboard_query_runs_on_the_real_prometheus(prometheus: str) -> None:
    for expr in expressions():
        query(prometheus, expr)  # a query Prometheus cannot parse or run answers 400
