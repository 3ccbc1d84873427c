"""A real Prometheus server scrapes a streaming job's Flink reporter (``--prometheus-port``) and ``serve``'s ``/metrics``
(requests, and the job's all-keys metric that serve follows);
a local cluster started with a reporter port range reports from every JVM.

Prometheus is Debian's ``prometheus`` package, which ``.ci/run`` installs;
where it is missing the test is skipped and says so. Everything runs on
loopback, and every process the test starts is stopped by its pid.
"""

import contextlib
import json
import shutil
import sys
import time
import urllib.parse
import urllib.request

import pytest

from jobs.local.cluster import start_cluster, stop_cluster
from jobs.local.processes import end, free_ports, launch
from jobs.runtime.prometheus_reporter import check_ports, client_jars
from jobs.settings import Settings
from state.exceptions import SettingsError
from tests.support import datagen
from tests.support.models import EXAMPLES, ROOT
from tests.support.prometheus import free_port_pair, scrape
from tests.support.serving import serve_process

CLASSIFIER = f"{EXAMPLES / 'classifier.py'}:model"


@pytest.mark.unit
@pytest.mark.parametrize("ports", ["0", "9249-", "a", "9250-9249", "1-2-3", "70000"])
def test_bad_ports_are_refused_naming_the_option(ports):
    with pytest.raises(SettingsError, match="--prometheus-port must be PORT or FIRST-LAST"):
        check_ports(ports)


@pytest.mark.unit
def test_the_reporter_is_the_mini_clusters_and_the_plugin_ships_with_flink(tmp_path):
    (tmp_path / "events.jsonl").write_text("")
    settings = Settings(model=CLASSIFIER, inputs=(str(tmp_path),), prometheus_port="9249")
    assert [jar.parent.name for jar in client_jars(settings)] == ["metrics-prometheus"]
    with pytest.raises(SettingsError, match="riverflink cluster start --prometheus-port"):
        Settings(model=CLASSIFIER, inputs=(str(tmp_path),), prometheus_port="9249", jobmanager="127.0.0.1:8081")


@contextlib.contextmanager
def _prometheus(tmp_path, targets: dict[str, int]):
    """A Prometheus server scraping ``job name -> port`` on 127.0.0.1 every second; yields its port."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("no prometheus on PATH: install Debian's prometheus package (.ci/run does)")
    port, = free_ports(1)
    config = tmp_path / "prometheus.yml"
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [{"job_name": name, "static_configs": [{"targets": [f"127.0.0.1:{target}"]}]}
                           for name, target in targets.items()],
    }))
    process = launch([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                      f"--web.listen-address=127.0.0.1:{port}"], tmp_path / "prometheus.log")
    try:
        yield port
    finally:
        end([process])


def _samples(port: int, expression: str) -> list[dict]:
    """The samples an instant query returns; none while Prometheus has none (or is starting)."""
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": expression})
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())["data"]["result"]
    except OSError:
        return []


def _query(port: int, expression: str) -> float | None:
    """The value of an instant query that returns one sample; None while Prometheus has none."""
    result = _samples(port, expression)
    return float(result[0]["value"][1]) if result else None


def _dashboard_queries() -> list[str]:
    dashboard = json.loads((ROOT / "docs" / "grafana" / "riverflink.json").read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


def _wait_for(port: int, expression: str, expected: float, timeout: float, log) -> None:
    deadline = time.monotonic() + timeout
    while (value := _query(port, expression)) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"Prometheus answered {value} to {expression}, not {expected}, after {timeout} s; "
                                 f"{log.name}: {log.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.mark.minicluster
def test_prometheus_scrapes_the_jobs_counters_and_the_servers_requests(tmp_path):
    lines = datagen.to_lines(datagen.many_keys("classifier", n_keys=12, n_events=300))
    (tmp_path / "input").mkdir()
    datagen.write_lines(tmp_path / "input" / "events.jsonl", lines)
    reporter, = free_ports(1)
    job_log = tmp_path / "job.log"
    job = launch([sys.executable, "-m", "jobs.cli", "run", "--model", CLASSIFIER, "--quiet",
                  "--input", str(tmp_path / "input"), "--watch-inputs", "0.5", "--out", str(tmp_path / "out"),
                  "--checkpoint-interval", "1", "--prometheus-port", str(reporter)], job_log, cwd=ROOT)
    try:
        with serve_process(tmp_path / "serve.log", "--out", str(tmp_path / "out")) as client, \
                _prometheus(tmp_path, {"flink": reporter, "serve": client.port}) as port:
            _wait_for(port, "sum(flink_taskmanager_job_task_operator_events_learned)", len(lines), 180, job_log)
            _wait_for(port, "sum(flink_taskmanager_job_task_operator_keys_live)", 12, 60, job_log)
            deadline = time.monotonic() + 60  # the job's first snapshots are committed with a checkpoint
            while client.request("GET", "/health")[1]["keys"] == 0:
                assert time.monotonic() < deadline, f"serve holds no snapshot: {job_log.read_text()[-3000:]}"
                time.sleep(0.2)
            x = json.loads(lines[0])["x"]
            for _ in range(5):
                assert client.predict({"key": "k0", "x": x})[0] == 200
            _wait_for(port, 'sum(riverflink_serve_requests_total{route="/predict"})', 5, 60, tmp_path / "serve.log")
            # serve follows the job's metrics too: its all-keys figure over every labelled event.
            labelled = sum(1 for line in lines if "y" in json.loads(line))
            _wait_for(port, 'riverflink_serve_model_metric_labelled_events{model="served"}', labelled, 60,
                      tmp_path / "serve.log")
            # Every query of the Grafana dashboard in docs/ finds its series in what Prometheus scraped.
            deadline = time.monotonic() + 60
            while empty := [query for query in _dashboard_queries() if not _samples(port, query)]:
                assert time.monotonic() < deadline, f"dashboard queries with no data: {empty}"
                time.sleep(1)
    finally:
        end([job], timeout=60)


@pytest.mark.cluster
def test_a_local_cluster_started_with_a_port_range_reports_from_every_jvm(tmp_path):
    first = free_port_pair()
    rest, rpc = free_ports(2)
    start_cluster(1, 1, rest, rpc, tmp_path / "cluster", warm=False, prometheus_ports=f"{first}-{first + 1}")
    try:
        deadline = time.monotonic() + 60
        while True:  # each JVM took the first free port of the range: which one got which is theirs to decide
            scraped = scrape(first, first + 1)
            if "flink_jobmanager_" in scraped and "flink_taskmanager_" in scraped:
                break
            assert time.monotonic() < deadline, f"the cluster's JVMs do not both report: {scraped[:2000]}"
            time.sleep(0.5)
    finally:
        stop_cluster(rest, tmp_path / "cluster")
