"""``riverflink kafka start|stop``: a real single-node Kafka broker (KRaft) on 127.0.0.1, for development and tests.

Kafka's jars come from Maven Central through Maven on first use, at a pinned
version, and are cached under ``~/.cache/riverflink`` (``RIVERFLINK_CACHE``
overrides it). The broker runs broker and controller in one JVM; ``stop``
ends only the process whose pid ``start`` recorded, and only if it is still
that broker.
"""

import logging
import os
import pathlib
import signal
import socket
import subprocess
import time

from jobs.runtime.jars import cache_root, fetch_jars
from state.exceptions import RiverflinkError

__all__ = ["KAFKA_VERSION", "fetch_kafka", "start_broker", "stop_broker", "broker_dir", "free_ports"]

logger = logging.getLogger(__name__)

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # Kafka 4 logs through log4j2; its POM ships no slf4j binding
START_TIMEOUT_S = 90
STOP_TIMEOUT_S = 30

_SERVER_PROPERTIES = """process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT
log.dirs={data_dir}/log
num.partitions=1
# one broker: internal topics cannot have more replicas, or groups and transactions hang
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
# Flink's KafkaSink asks for 1 h transactions; the broker's default cap is 15 min
transaction.max.timeout.ms=3600000
"""

_LOG4J2 = """rootLogger.level=WARN
rootLogger.appenderRef.file.ref=file
appender.file.type=File
appender.file.name=file
appender.file.fileName={data_dir}/broker.log
appender.file.layout.type=PatternLayout
appender.file.layout.pattern=%d %p %c: %m%n
"""


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports, for a broker that must not collide with anything (tests, benchmarks)."""
    probes = [socket.socket() for _ in range(count)]  # held open together, so no port repeats
    try:
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in probes]
    finally:
        for probe in probes:
            probe.close()


def broker_dir(port: int) -> pathlib.Path:
    """Where the broker listening on ``port`` keeps its data, config, log and pid, by default."""
    return cache_root() / f"kafka-broker-{port}"


def fetch_kafka() -> pathlib.Path:
    """The directory of Kafka's jars, fetched with Maven on first use."""
    return fetch_jars(f"kafka-{KAFKA_VERSION}", [f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
                                                 f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}"])


def _java(lib: pathlib.Path, data_dir: pathlib.Path, *args: str) -> list[str]:
    return ["java", "-Xmx512m", f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp", f"{lib}/*", *args]


def _accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_broker(port: int = 9092, controller_port: int | None = None, data_dir: pathlib.Path | None = None) -> int:
    """Start a broker on 127.0.0.1:``port`` and return its pid once it answers requests."""
    controller_port = controller_port or port + 1
    data_dir = pathlib.Path(data_dir or broker_dir(port)).resolve()
    pid_file = data_dir / "broker.pid"
    if pid_file.exists() and _is_our_broker(int(pid_file.read_text()), data_dir):
        raise RiverflinkError(f"a broker started from {data_dir} is already running (pid {pid_file.read_text()})")
    for busy in (port, controller_port):
        if _accepts_connections(busy):
            raise RiverflinkError(f"port {busy} on 127.0.0.1 is already in use")
    lib = fetch_kafka()
    data_dir.mkdir(parents=True, exist_ok=True)
    properties = data_dir / "server.properties"
    properties.write_text(_SERVER_PROPERTIES.format(port=port, controller_port=controller_port, data_dir=data_dir))
    (data_dir / "log4j2.properties").write_text(_LOG4J2.format(data_dir=data_dir))
    if not (data_dir / "log" / "meta.properties").exists():
        cluster_id = subprocess.run(_java(lib, data_dir, "kafka.tools.StorageTool", "random-uuid"),
                                    capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
        subprocess.run(_java(lib, data_dir, "kafka.tools.StorageTool", "format", "-t", cluster_id, "-c", str(properties)),
                       capture_output=True, text=True, check=True)
    with (data_dir / "broker.out").open("ab") as out:
        broker = subprocess.Popen(_java(lib, data_dir, "kafka.Kafka", str(properties)),
                                  stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    pid_file.write_text(str(broker.pid))
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if broker.poll() is not None:
            pid_file.unlink()
            raise RiverflinkError(f"the Kafka broker exited with status {broker.returncode}; see {data_dir / 'broker.log'}")
        if _accepts_connections(port) and _answers(port):
            return broker.pid
        time.sleep(0.5)
    stop_broker(port, data_dir)
    raise RiverflinkError(f"the Kafka broker did not answer on 127.0.0.1:{port} within {START_TIMEOUT_S} s")


def _answers(port: int) -> bool:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    try:
        admin = KafkaAdminClient(bootstrap_servers=f"127.0.0.1:{port}", request_timeout_ms=3000)
    except KafkaError:
        return False
    try:
        admin.list_topics()
        return True
    except KafkaError:
        return False
    finally:
        admin.close()


def _is_our_broker(pid: int, data_dir: pathlib.Path) -> bool:
    """Whether ``pid`` is still the broker started from ``data_dir`` (pids get reused)."""
    try:
        command = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError):
        return False
    return b"kafka.Kafka" in command and str(data_dir / "server.properties").encode() in command


def stop_broker(port: int = 9092, data_dir: pathlib.Path | None = None) -> bool:
    """Stop the broker ``start_broker`` started from ``data_dir``; False if none was running."""
    data_dir = pathlib.Path(data_dir or broker_dir(port)).resolve()
    pid_file = data_dir / "broker.pid"
    if not pid_file.exists():
        return False
    pid = int(pid_file.read_text())
    running = _is_our_broker(pid, data_dir)
    if running:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while _is_our_broker(pid, data_dir) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _is_our_broker(pid, data_dir):
            logger.warning("Kafka broker %d did not stop within %d s; killing it", pid, STOP_TIMEOUT_S)
            os.kill(pid, signal.SIGKILL)
    pid_file.unlink()
    return running
