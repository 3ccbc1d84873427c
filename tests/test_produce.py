"""``riverflink produce`` against a real broker: keyed by entity, per-key order kept, topics created."""

import gzip
import json
import subprocess
import sys

import pytest
from kafka import KafkaAdminClient

from tests.support import datagen
from tests.support.kafka import new_topic, read_topic
from tests.support.models import ROOT

pytestmark = pytest.mark.kafka


def produce(*args):
    return subprocess.run([sys.executable, "-m", "jobs.cli", "produce", *args], capture_output=True, text=True,
                          timeout=300, cwd=ROOT)


def test_produce_creates_the_topic_and_keeps_each_keys_order(kafka_bootstrap, tmp_path):
    events = datagen.to_lines(datagen.many_keys("regressor", n_keys=25, n_events=600))
    plain = datagen.write_lines(tmp_path / "a.jsonl", events[:400] + ["", "{not json"])
    with gzip.open(tmp_path / "b.jsonl.gz", "wt") as compressed:
        compressed.write("".join(line + "\n" for line in events[400:]))
    topic = "produced-events"

    done = produce("--kafka-bootstrap", kafka_bootstrap, "--topic", topic, "--partitions", "3",
                   plain, str(tmp_path / "b.jsonl.gz"))

    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (f"published 601 records from 2 file(s) to {topic} (created, 3 partitions); "
                                   "1 without a key")
    admin = KafkaAdminClient(bootstrap_servers=kafka_bootstrap)
    assert len(admin.describe_topics([topic])[0]["partitions"]) == 3
    admin.close()
    records = read_topic(kafka_bootstrap, topic)
    assert len(records) == 601
    by_key: dict = {}
    for record in sorted(records, key=lambda r: (r.partition, r.offset)):
        if record.key is None:
            assert record.value == b"{not json"
            continue
        assert json.loads(record.value)["key"] == record.key.decode()
        by_key.setdefault(record.key.decode(), []).append((record.partition, record.value.decode()))
    for key, sent in by_key.items():
        assert len({partition for partition, _ in sent}) == 1, key
        assert [value for _, value in sent] == [line for line in events if json.loads(line)["key"] == key]
    assert {partition for sent in by_key.values() for partition, _ in sent} == {0, 1, 2}


def test_produce_to_an_existing_topic_keeps_its_partitions(kafka_bootstrap, tmp_path):
    topic = new_topic(kafka_bootstrap, partitions=2)
    done = produce("--kafka-bootstrap", kafka_bootstrap, "--topic", topic, "--partitions", "5",
                   datagen.write_lines(tmp_path / "e.jsonl", ['{"key": 1, "x": {"a": 1}}']))
    assert done.returncode == 0, done.stderr
    assert f"to {topic} (2 partitions); 0 without a key" in done.stdout
