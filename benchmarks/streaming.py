"""What the streaming benchmarks share: a riverflink job run from the CLI, and a producer at a steady rate."""

import contextlib
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

from kafka import KafkaConsumer, KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

__all__ = ["ROOT", "MODEL", "create_topics", "streaming_job", "produce_steadily", "wait_until_serving"]

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = "examples/classifier.py:model"
WARM_UP_S = 120  # a job's start-up: JVM, Python workers, first checkpoint


def create_topics(bootstrap: str, *names: str) -> None:
    """Topics of two partitions each, for a benchmark's job to read and write."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 2, 1) for name in names])
    finally:
        admin.close()


@contextlib.contextmanager
def streaming_job(options: list[str], log: pathlib.Path, model: str = MODEL):
    """``riverflink run --model MODEL --quiet OPTIONS`` in its own process group, ended by pid when the block exits."""
    command = [sys.executable, "-m", "jobs.cli", "run", "--model", model, "--quiet", *options]
    with open(log, "wb") as out:
        job = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        yield job
    finally:
        os.killpg(job.pid, signal.SIGTERM)
        try:
            job.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(job.pid, signal.SIGKILL)
            job.wait()


def produce_steadily(bootstrap: str, topic: str, events: list[dict], rate: float, on_send=None,
                     linger_ms: int = 0) -> None:
    """Publish ``events`` keyed by entity at ``rate`` per second; ``on_send(event)`` just before each is sent."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, linger_ms=linger_ms)
    try:
        start = time.monotonic()
        for i, event in enumerate(events):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            if on_send is not None:
                on_send(event)
            producer.send(topic, key=event["key"].encode(), value=json.dumps(event).encode())
        producer.flush()
    finally:
        producer.close()


def wait_until_serving(job: subprocess.Popen, consumer: KafkaConsumer, log: pathlib.Path) -> None:
    """Wait until ``consumer`` reads a committed prediction (of a warm-up event sent before): the job runs."""
    deadline = time.monotonic() + WARM_UP_S
    while not any(consumer.poll(timeout_ms=1000).values()):
        if job.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the job did not start; see {log}")
