"""The Docker deployment (Dockerfile, docker-compose.yml, docker/), tested without Docker.

The compose file and Dockerfile are checked for what they refer to; the scripts
the image runs (docker/install.sh at build time, docker/flink-entrypoint.sh at
start) run here for real; and the compose file's own `produce` and `job`
commands run against a Flink cluster started through the entry point and a
real Kafka broker, with only the host names swapped for local addresses.
"""

import base64
import collections
import contextlib
import importlib.util
import json
import os
import pathlib
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile

import pytest
import yaml
from kafka import KafkaConsumer
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from jobs.cli.parser import build_parser, settings_from_args
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports
from jobs.model_spec import load_template
from jobs.runtime.prometheus_reporter import FACTORY, REPORTER
from tests.support.models import ROOT
from tests.support.project import project_copy, user_environment
from tests.support.prometheus import free_port_pair, scrape, series_sum

COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
ENTRYPOINT = ROOT / "docker" / "flink-entrypoint.sh"
VENV_BIN = pathlib.Path(sys.executable).parent


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    lines = [line for line in (ROOT / "Dockerfile").read_text().splitlines() if not line.lstrip().startswith("#")]
    joined = "\n".join(lines).replace("\\\n", " ")
    return [tuple(line.strip().split(None, 1)) for line in joined.splitlines() if line.strip()]


def _instructions(name: str) -> list[str]:
    return [arguments for instruction, arguments in _dockerfile() if instruction == name]


def _dockerfile_env() -> dict[str, str]:
    return dict(pair.split("=", 1) for arguments in _instructions("ENV") for pair in shlex.split(arguments))


def _workdir() -> pathlib.PurePosixPath:
    return pathlib.PurePosixPath(_instructions("WORKDIR")[-1])


def _copied() -> set[str]:
    """Repository paths the Dockerfile copies into the image."""
    return {source for arguments in _instructions("COPY") for source in shlex.split(arguments)[:-1]}


def _flink_properties(service: str) -> dict[str, str]:
    text = SERVICES[service]["environment"]["FLINK_PROPERTIES"]
    return dict(line.split(": ", 1) for line in text.splitlines() if line.strip())


def _flatten(tree: dict, prefix: str = "") -> dict[str, str]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = str(value)
    return flat


def _program_args(service: str) -> list[str]:
    """What `flink run ... -pym jobs.cli` hands to riverflink."""
    command = SERVICES[service]["command"]
    return command[command.index("-pym") + 2:]


# --- the compose file and the Dockerfile, statically -------------------------------------------

@pytest.mark.unit
def test_compose_has_the_services_and_builds_them_from_the_dockerfile():
    assert set(SERVICES) == {"kafka", "jobmanager", "taskmanager", "produce", "job", "serve"}
    assert SERVICES["kafka"]["image"] == "apache/kafka:4.1.1"
    for name in ("jobmanager", "taskmanager", "produce", "job", "serve"):
        build = SERVICES[name]["build"]
        context = ROOT / (build if isinstance(build, str) else build["context"])
        dockerfile = "Dockerfile" if isinstance(build, str) else build.get("dockerfile", "Dockerfile")
        assert (context / dockerfile).is_file(), name
    assert SERVICES["jobmanager"]["command"] == "jobmanager"
    assert SERVICES["taskmanager"]["command"] == "taskmanager"


@pytest.mark.unit
def test_every_dependency_exists_and_waits_for_what_it_needs():
    for name, service in SERVICES.items():
        for target, condition in service.get("depends_on", {}).items():
            assert target in SERVICES, f"{name} depends on unknown service {target}"
            if condition["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{name} waits for {target}'s health, which has no check"
            if condition["condition"] == "service_completed_successfully":
                assert SERVICES[target].get("restart", "no") == "no", f"{target} must run once"
    assert SERVICES["produce"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    job = SERVICES["job"]["depends_on"]
    assert job["kafka"]["condition"] == "service_healthy"
    assert job["jobmanager"]["condition"] == "service_healthy"
    assert job["produce"]["condition"] == "service_completed_successfully"
    assert "taskmanager" in job


@pytest.mark.unit
def test_kafka_is_one_broker_that_serves_flink_transactions():
    env = {key: str(value) for key, value in SERVICES["kafka"]["environment"].items()}
    for setting in ("OFFSETS_TOPIC_REPLICATION_FACTOR", "TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
                    "TRANSACTION_STATE_LOG_MIN_ISR", "SHARE_COORDINATOR_STATE_TOPIC_REPLICATION_FACTOR",
                    "SHARE_COORDINATOR_STATE_TOPIC_MIN_ISR"):
        assert env[f"KAFKA_{setting}"] == "1", setting
    assert int(env["KAFKA_TRANSACTION_MAX_TIMEOUT_MS"]) >= 3_600_000  # KafkaSink's default transaction timeout
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    # Kafka's cluster id is a UUID in URL-safe base64 without padding; a non-canonical one is rewritten.
    cluster_id = env["CLUSTER_ID"]
    assert base64.urlsafe_b64encode(base64.urlsafe_b64decode(cluster_id + "==")).decode().rstrip("=") == cluster_id
    for client in ("produce", "job"):
        command = SERVICES[client]["command"]
        assert command[command.index("--kafka-bootstrap") + 1] == "kafka:9092", client


@pytest.mark.unit
def test_checkpoints_are_on_a_volume_shared_by_the_cluster():
    assert "checkpoints" in COMPOSE["volumes"]
    for name in ("jobmanager", "taskmanager"):
        assert "checkpoints:/checkpoints" in SERVICES[name]["volumes"], name
        assert _flink_properties(name)["execution.checkpointing.dir"] == "file:///checkpoints"
    args = _program_args("job")
    assert args[args.index("--checkpoint-dir") + 1] == "/checkpoints"


@pytest.mark.unit
def test_every_flink_process_serves_its_metrics_to_prometheus():
    for name in ("jobmanager", "taskmanager"):
        properties = _flink_properties(name)
        assert properties[f"{REPORTER}.factory.class"] == FACTORY, name
        assert properties[f"{REPORTER}.port"] == "9249", name
    assert "9249:9249" in SERVICES["jobmanager"]["ports"] and "9249" in SERVICES["taskmanager"]["expose"]


@pytest.mark.unit
def test_flink_configuration_points_at_the_jobmanager():
    args = _program_args("job")
    parallelism = int(args[args.index("--parallelism") + 1])
    for name in ("jobmanager", "taskmanager", "job"):
        properties = _flink_properties(name)
        assert properties["jobmanager.rpc.address"] == "jobmanager", name
        assert int(properties["taskmanager.numberOfTaskSlots"]) >= parallelism, name
    command = SERVICES["job"]["command"]
    assert command[:2] == ["flink", "run"] and "--detached" in command  # a one-shot service must exit
    assert command[command.index("--jobmanager") + 1] == "jobmanager:8081"
    assert command[command.index("-pym") + 1] == "jobs.cli"


@pytest.mark.unit
def test_job_arguments_parse_and_validate_as_in_the_image(monkeypatch):
    monkeypatch.chdir(ROOT)  # the image's working directory holds the same relative paths
    args = build_parser().parse_args(_program_args("job"))
    assert args.command == "run"
    settings = settings_from_args(args)
    assert settings.kafka.bootstrap == "kafka:9092" and settings.kafka.topics == ("events",)
    assert settings.outputs.predictions == "kafka://predictions"
    model_file = args.model.split(":")[0]
    assert (ROOT / model_file).is_file() and model_file.split("/")[0] in _copied()
    load_template(args.model)


@pytest.mark.unit
def test_produce_arguments_parse_and_name_files_in_the_image():
    command = SERVICES["produce"]["command"]
    assert command[0] == "riverflink"
    args = build_parser().parse_args(command[1:])
    assert (args.command, args.topic, args.partitions) == ("produce", "events", 3)
    for path in args.files:
        assert (ROOT / path).is_file() and path.split("/")[0] in _copied(), path
    assert args.topic == _program_args("job")[_program_args("job").index("--kafka-topic") + 1]


@pytest.mark.unit
def test_serve_follows_the_jobs_models_topic_and_forwards_to_its_input():
    command = SERVICES["serve"]["command"]
    assert command[0] == "riverflink"
    args = build_parser().parse_args(command[1:])
    job = settings_from_args(build_parser().parse_args(_program_args("job")))
    assert (args.command, args.models, args.kafka_bootstrap) == ("serve", job.outputs.models_out, job.kafka.bootstrap)
    assert (args.metrics, args.dead_letters) == (job.outputs.metrics, job.outputs.dead_letters)  # for the dashboard
    assert args.kafka_topic in job.kafka.topics and args.host == "0.0.0.0"
    assert SERVICES["serve"]["ports"] == [f"{args.port}:{args.port}"]
    assert f"localhost:{args.port}/health" in SERVICES["serve"]["healthcheck"]["test"][-1]


@pytest.mark.unit
def test_dockerfile_installs_with_the_tested_script():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    base = _instructions("FROM")[0]
    python = base.removeprefix("python:").split("-")[0]
    assert Version(python) in SpecifierSet(pyproject["project"]["requires-python"]), base
    apt = " ".join(_instructions("RUN"))
    assert "openjdk-17-jre-headless" in apt and "maven" in apt
    copied = _copied()
    for source in copied:
        assert (ROOT / source).exists(), f"COPY {source}: no such path"
    needed = {"pyproject.toml", pyproject["project"]["readme"], "docker", "examples"}
    packages = pyproject["tool"]["setuptools"]["packages"]  # a list, or what setuptools finds: {"find": {"include"}}
    packages = packages["find"]["include"] if isinstance(packages, dict) else packages
    needed |= {package.split(".")[0].rstrip("*") for package in packages}
    assert needed <= copied, f"not copied into the image: {needed - copied}"
    assert any(f"docker/install.sh python3 {_workdir()}" in run for run in _instructions("RUN"))


@pytest.mark.unit
def test_dockerfile_paths_agree():
    env = _dockerfile_env()
    assert env["FLINK_HOME"] == "/usr/local/lib/python3.11/site-packages/pyflink"  # python:3.11 images' site-packages
    assert env["PYTHONHASHSEED"] == "0"
    assert env["RIVERFLINK_CACHE"].startswith("/opt/")
    assert json.loads(_instructions("ENTRYPOINT")[0]) == ["bash", str(_workdir() / "docker/flink-entrypoint.sh")]
    assert ENTRYPOINT.is_file()
    flink_dirs = {env[name] for name in ("FLINK_CONF_DIR", "FLINK_LIB_DIR", "FLINK_LOG_DIR")}
    owned = " ".join(_instructions("RUN"))
    assert all(path.startswith("/opt/flink/") for path in flink_dirs) and "chown -R flink: /opt/flink /checkpoints" in owned
    assert _instructions("USER") == ["flink"]


# --- the scripts the image runs, run here --------------------------------------------------------

def _entrypoint_env(tmp_path: pathlib.Path, properties: str, role: str) -> dict[str, str]:
    env = user_environment()
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env['PATH']}",  # the image's python3 is the one with riverflink
        FLINK_PROPERTIES=properties,
        FLINK_CONF_DIR=str(tmp_path / role / "conf"),
        FLINK_LIB_DIR=str(tmp_path / role / "lib"),
        FLINK_LOG_DIR=str(tmp_path / role / "log"),
    )
    return env


@pytest.mark.minicluster  # Flink's configuration script runs Java
def test_entrypoint_writes_the_container_configuration_without_touching_the_wheel(tmp_path):
    flink_home = pathlib.Path(importlib.util.find_spec("pyflink").origin).parent
    wheel_config = (flink_home / "conf" / "config.yaml").read_bytes()
    env = _entrypoint_env(tmp_path, SERVICES["taskmanager"]["environment"]["FLINK_PROPERTIES"], "taskmanager")
    done = subprocess.run(["bash", str(ENTRYPOINT), "sh", "-c", "command -v flink; echo $FLINK_HOME"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    flink, home = done.stdout.split()
    assert pathlib.Path(home).resolve() == flink_home.resolve() and flink == f"{home}/bin/flink"

    config = _flatten(yaml.safe_load((tmp_path / "taskmanager" / "conf" / "config.yaml").read_text()))
    for key, value in _flink_properties("taskmanager").items():
        assert config[key] == value, key
    for key in ("jobmanager.bind-host", "taskmanager.bind-host", "rest.bind-address"):
        assert config[key] == "0.0.0.0", key
    assert "taskmanager.host" not in config  # a TaskManager advertises its own address, not "localhost"
    assert config["python.executable"] == config["python.client.executable"] == str(VENV_BIN / "python3")
    assert "--add-opens=java.base/java.util=ALL-UNNAMED" in config["env.java.opts.all"]  # Java 17 flags kept
    assert (tmp_path / "taskmanager" / "lib" / "flink-python-2.2.1.jar").exists()
    assert (tmp_path / "taskmanager" / "lib" / "flink-dist-2.2.1.jar").exists()
    assert (flink_home / "conf" / "config.yaml").read_bytes() == wheel_config


@pytest.mark.minicluster  # the install compiles the Java operators and fetches jars with Maven
def test_install_script_installs_a_working_riverflink_into_a_fresh_environment(tmp_path):
    project = project_copy(tmp_path / "project")
    venv = tmp_path / "venv"
    cache = tmp_path / "cache"
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
        env = user_environment()
        env["RIVERFLINK_CACHE"] = str(cache)
        started = time.monotonic()
        installed = subprocess.run(["bash", str(project / "docker/install.sh"), str(venv / "bin/python"), str(project)],
                                   env=env, capture_output=True, text=True, timeout=900)
        assert installed.returncode == 0, installed.stdout + installed.stderr
        print(f"docker/install.sh took {time.monotonic() - started:.0f} s")

        # env: earlier in-process jobs put the checkout on this process's PYTHONPATH (for Flink's workers).
        helped = subprocess.run([str(venv / "bin/riverflink"), "--help"], capture_output=True, text=True,
                                timeout=120, cwd=tmp_path, env=env)
        assert helped.returncode == 0 and "produce" in helped.stdout, helped.stderr
        where = subprocess.run([str(venv / "bin/python"), "-c", "import jobs, pyflink; print(jobs.__file__)"],
                               capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert pathlib.Path(where.stdout.strip()).is_relative_to(venv), where.stdout + where.stderr
        page = subprocess.run([str(venv / "bin/python"), "-c",
                               "from jobs.serve.dashboard.views import Dashboard; from jobs.serve.dashboard.board "
                               "import Board; print(len(Dashboard(Board(), {}, {}).page()))"],
                              capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env)
        assert page.returncode == 0 and int(page.stdout) > 1000, page.stdout + page.stderr  # package data installed
        jars = list(cache.glob("flink-kafka-connector-*/lib/flink-sql-connector-kafka-*.jar"))
        assert len(jars) == 1 and f"Kafka connector: {jars[0]}" in installed.stdout
        with zipfile.ZipFile(jars[0]) as jar:
            assert "org/apache/flink/connector/kafka/source/KafkaSource.class" in jar.namelist()
        # Compiled from the installed package's Java sources, by a compiler fetched into the same cache.
        operators = list(cache.glob("operators/riverflink-operators-*.jar"))
        assert len(operators) == 1 and f"riverflink operators: {operators[0]}" in installed.stdout
        with zipfile.ZipFile(operators[0]) as jar:
            assert "riverflink/BatchedPythonKeyedProcessOperator.class" in jar.namelist()
    finally:
        shutil.rmtree(venv, ignore_errors=True)  # a gigabyte; pytest keeps old tmp dirs around


# --- the compose commands against a real cluster and broker --------------------------------------

def _stop(process: subprocess.Popen) -> None:
    """Stops a process this test started and the process group it leads (the Flink client's Python child too)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def _run_in_image_env(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """Runs ``command`` through the entry point as a compose service would, in the image's working dir."""
    process = subprocess.Popen(["bash", str(ENTRYPOINT), *command], env=env, cwd=ROOT, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        _stop(process)
    return subprocess.CompletedProcess(command, process.returncode, output)


def _rest(port: int, path: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def _local_cluster(tmp_path: pathlib.Path):
    """A JobManager and a TaskManager started by the entry point, each with its own conf dir like a container."""
    rpc_port, rest_port = free_ports(2)
    reporters = free_port_pair()  # the containers' 9249 each, on one host here
    local = "\n".join([
        SERVICES["jobmanager"]["environment"]["FLINK_PROPERTIES"].replace(
            f"{REPORTER}.port: 9249", f"{REPORTER}.port: {reporters}-{reporters + 1}"),
        "jobmanager.rpc.address: 127.0.0.1", f"jobmanager.rpc.port: {rpc_port}",
        "rest.address: 127.0.0.1", f"rest.port: {rest_port}", "rest.bind-address: 127.0.0.1",
        "jobmanager.bind-host: 127.0.0.1", "taskmanager.bind-host: 127.0.0.1", "taskmanager.host: 127.0.0.1",
        f"execution.checkpointing.dir: {(tmp_path / 'checkpoints').as_uri()}",
    ])
    processes = []
    try:
        for role in ("jobmanager", "taskmanager"):
            with (tmp_path / f"{role}.out").open("w") as log:
                processes.append(subprocess.Popen(["bash", str(ENTRYPOINT), role], cwd=tmp_path, stdout=log,
                                                  stderr=subprocess.STDOUT, start_new_session=True,
                                                  env=_entrypoint_env(tmp_path, local, role)))
        deadline = time.monotonic() + 180
        while True:
            assert all(p.poll() is None for p in processes), "a Flink process exited; see its .out file"
            with contextlib.suppress(OSError):
                if _rest(rest_port, "/overview")["slots-total"] >= 2:
                    break
            assert time.monotonic() < deadline, "the local cluster did not offer 2 slots within 180 s"
            time.sleep(1)
        yield rest_port, local, reporters
    finally:
        for process in reversed(processes):
            _stop(process)


def _committed(bootstrap: str, topic: str, expected: int, timeout: float) -> list[dict]:
    consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                             isolation_level="read_committed", consumer_timeout_ms=2_000)
    records, deadline = [], time.monotonic() + timeout
    try:
        while len(records) < expected and time.monotonic() < deadline:
            records.extend(json.loads(record.value) for record in consumer)
    finally:
        consumer.close()
    return records


@pytest.mark.cluster
@pytest.mark.kafka
def test_compose_commands_run_the_job_on_a_cluster_started_by_the_entrypoint(tmp_path):
    kafka_port, controller_port = free_ports(2)
    bootstrap = f"127.0.0.1:{kafka_port}"
    start_broker(kafka_port, controller_port, tmp_path / "broker")
    try:
        with _local_cluster(tmp_path) as (rest_port, properties, reporters):
            local = {"kafka:9092": bootstrap, "jobmanager:8081": f"127.0.0.1:{rest_port}",
                     "/checkpoints": str(tmp_path / "checkpoints")}
            env = _entrypoint_env(tmp_path, properties, "client")
            for service in ("produce", "job"):
                command = [local.get(word, word) for word in SERVICES[service]["command"]]
                done = _run_in_image_env(command, env, timeout=300)
                assert done.returncode == 0, f"{service}: {done.stdout[-3000:]}"
            jobs = _rest(rest_port, "/jobs/overview")["jobs"]
            assert [(job["name"], job["state"]) for job in jobs] == [("riverflink-phishing", "RUNNING")]

            events = [json.loads(line) for line in (ROOT / "examples/data/phishing.jsonl").read_text().splitlines()]
            predictions = _committed(bootstrap, "predictions", len(events), timeout=240)
            # Flink's Prometheus reporter, as the compose file configures it, serves the learners' counters.
            learned = "flink_taskmanager_job_task_operator_events_learned"
            deadline = time.monotonic() + 60
            while series_sum(scrape(reporters, reporters + 1), learned) != len(events):
                assert time.monotonic() < deadline, scrape(reporters, reporters + 1)[-3000:]
                time.sleep(0.5)
    finally:
        stop_broker(kafka_port, tmp_path / "broker")
    # Every event predicted once, each key's model learning from its events in order (test-then-train).
    assert len(predictions) == len(events)
    versions = collections.defaultdict(list)
    for prediction in predictions:
        versions[prediction["key"]].append(prediction["model_version"])
    assert collections.Counter({key: len(v) for key, v in versions.items()}) == collections.Counter(
        str(event["key"]) for event in events)
    assert all(sorted(v) == list(range(len(v))) for v in versions.values())
