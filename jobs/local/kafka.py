"""``riverflink kafka start|stop``: a real single-node Kafka broker (KRaft) on 127.0.0.1, for development and tests.

Kafka's jars come from Maven Central through Maven on first use, at a pinned
version, and are cached under ``~/.cache/riverflink`` (``RIVERFLINK_CACHE``
overrides it). The broker runs broker and controller in one JVM; ``stop``
ends only the process whose pid ``start`` recorded, and only if it is still
that broker (``jobs.local.processes``).
"""

import pathlib
import socket
import subprocess

from jobs.local.processes import PidFile, end, launch, wait_until_ready
from jobs.runtime.jars import cache_root, fetch_jars
from state.exceptions import RiverflinkError

__all__ = ["KAFKA_VERSION", "fetch_kafka", "start_broker", "stop_broker", "broker_dir"]

KAFKA_VERSION = "4.1.1"
LOG4J_VERSION = "2.24.3"  # Kafka 4 logs through log4j2; its POM ships no slf4j binding
START_TIMEOUT_S = 90

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


def broker_dir(port: int) -> pathlib.Path:
    """Where the broker listening on ``port`` keeps its data, config, log and pid, by default.

    Parameters
    ----------
    port
        The broker's port on 127.0.0.1.
    """
    return cache_root() / f"kafka-broker-{port}"


def fetch_kafka() -> pathlib.Path:
    """The folder of Kafka's jars (:data:`KAFKA_VERSION`), fetched with Maven on first use."""
    return fetch_jars(f"kafka-{KAFKA_VERSION}", [f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
                                                 f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}"])


def _java(lib: pathlib.Path, data_dir: pathlib.Path, *args: str) -> list[str]:
    return ["java", "-Xmx512m", f"-Dlog4j2.configurationFile={data_dir / 'log4j2.properties'}",
            "-cp", f"{lib}/*", *args]


def _accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def _pid_file(data_dir: pathlib.Path) -> PidFile:
    """The broker's pid, and the arguments that tell it is still the broker of ``data_dir``."""
    return PidFile(data_dir / "processes.json", ("kafka.Kafka", str(data_dir / "server.properties")))


def start_broker(port: int = 9092, controller_port: int | None = None, data_dir: pathlib.Path | None = None) -> int:
    """Start a broker on 127.0.0.1:``port`` and return its pid once it answers requests.

    Parameters
    ----------
    port
        The broker's port on 127.0.0.1 (``PLAINTEXT``).
    controller_port
        The KRaft controller's port; ``port + 1`` by default.
    data_dir
        Where the broker keeps its data, configuration, logs and pid; :func:`broker_dir` by default.
        A broker started again from the same folder keeps its topics.

    Returns
    -------
    int
        The broker's pid.

    Raises
    ------
    RiverflinkError
        If a broker of ``data_dir`` already runs, a port is taken, or the broker does not start.
    """
    controller_port = controller_port or port + 1
    data_dir = pathlib.Path(data_dir or broker_dir(port)).resolve()
    pid_file = _pid_file(data_dir)
    if running := pid_file.running():
        raise RiverflinkError(f"a broker started from {data_dir} is already running (pid {running['broker']})")
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
    broker = launch(_java(lib, data_dir, "kafka.Kafka", str(properties)), data_dir / "broker.out")
    pid_file.record({"broker": broker.pid})
    try:
        wait_until_ready(lambda: _accepts_connections(port) and _answers(port), {"the Kafka broker": broker},
                         START_TIMEOUT_S, f"the Kafka broker to answer on 127.0.0.1:{port}", data_dir / "broker.log",
                         poll=0.5)
    except RiverflinkError:
        end([broker])
        pid_file.remove()
        raise
    return broker.pid


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


def stop_broker(port: int = 9092, data_dir: pathlib.Path | None = None) -> bool:
    """Stop the broker ``start_broker`` started from ``data_dir``, by its recorded pid.

    Parameters
    ----------
    port
        The broker's port, which names its default folder.
    data_dir
        The folder the broker was started from; :func:`broker_dir` of ``port`` by default.

    Returns
    -------
    bool
        Whether that broker was running.
    """
    data_dir = pathlib.Path(data_dir or broker_dir(port)).resolve()
    return bool(_pid_file(data_dir).stop())
