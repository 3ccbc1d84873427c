"""``riverflink kafka start|stop``: a real broker, fetched, started, used and stopped by pid."""

import json
import os
import subprocess
import sys

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic

from jobs.local.processes import free_ports
from tests.support.models import ROOT

pytestmark = pytest.mark.kafka


def riverflink_kafka(*args):
    return subprocess.run([sys.executable, "-m", "jobs.cli", "kafka", *args], capture_output=True, text=True,
                          timeout=600, cwd=ROOT)


def test_broker_starts_serves_and_stops(tmp_path):
    port, controller_port = free_ports(2)
    where = ["--port", str(port), "--controller-port", str(controller_port), "--data-dir", str(tmp_path / "broker")]
    started = riverflink_kafka("start", *where)
    assert started.returncode == 0, started.stderr
    pid = json.loads((tmp_path / "broker" / "processes.json").read_text())["broker"]
    try:
        assert f"running on 127.0.0.1:{port} (pid {pid})" in started.stdout
        bootstrap = f"127.0.0.1:{port}"
        KafkaAdminClient(bootstrap_servers=bootstrap).create_topics([NewTopic("events", 3, 1)])
        producer = KafkaProducer(bootstrap_servers=bootstrap)
        for i in range(30):
            producer.send("events", key=f"k{i % 4}".encode(), value=f"{i}".encode())
        producer.flush()
        consumer = KafkaConsumer("events", bootstrap_servers=bootstrap, auto_offset_reset="earliest",
                                 group_id="test", consumer_timeout_ms=10_000)
        assert sorted(int(record.value) for record in consumer) == list(range(30))
        consumer.close()
        again = riverflink_kafka("start", *where)
        assert again.returncode == 2 and "already running" in again.stderr
    finally:
        stopped = riverflink_kafka("stop", *where)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not os.path.exists(f"/proc/{pid}") or b"kafka.Kafka" not in open(f"/proc/{pid}/cmdline", "rb").read()
    assert "no Kafka broker" in riverflink_kafka("stop", *where).stdout
