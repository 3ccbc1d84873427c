"""Freshness of ``riverflink serve``: from producing an event to the server answering with the model that learned it.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.freshness --snapshot-interval 1 --checkpoint-interval 0.5
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.freshness --snapshot-interval 1 --kafka-delivery at-least-once

Starts its own Kafka broker, a streaming ``riverflink run`` that reads events
from a topic and writes snapshots to a compacted ``kafka://`` models topic,
and a ``riverflink serve`` that follows it. Labelled events for ``--keys``
keys are produced at a steady rate; each one is the next learn step of its
key, so the key's ``model_version`` says which events its served model has
learned. A poller asks the server for every key's version every
``--poll-ms`` (one ``POST /predict`` with a list) and, when a key's version
reaches v, records for each of its events up to the v-th the time since it
was sent.

The lag is bounded by the snapshot interval (a key's next snapshot
boundary), then the commit of the snapshot (the next checkpoint with
exactly-once, the sink's flush with at-least-once), then the follower's poll.
The poll interval adds up to its length to each figure.
"""

import argparse
import http.client
import json
import pathlib
import random
import sys
import tempfile
import threading
import time

from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.servers import running_server
from benchmarks.stats import percentile
from benchmarks.streaming import produce_steadily, streaming_job
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports

WARM_UP_S = 240  # the job's start-up: JVM, Python workers, first checkpoint


def _versions(port: int, keys: list[str]) -> dict[str, int | None]:
    """Every key's served model version; None before the job has written its template."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        body = json.dumps([{"key": key, "x": {"f0": 0.0}} for key in keys])
        connection.request("POST", "/predict", body=body)
        response = connection.getresponse()
        answer = json.loads(response.read())
    finally:
        connection.close()
    if response.status == 503:
        return dict.fromkeys(keys)
    if response.status != 200:
        raise RuntimeError(f"the server answered {response.status}: {answer}")
    return {item["key"]: item["model_version"] for item in answer}


def _events(keys: list[str], count: int, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    events = []
    for i in range(count):
        key = keys[i % len(keys)]
        x = {f"f{j}": rng.gauss(0, 1) for j in range(8)}
        events.append({"key": key, "id": f"e{i}", "x": x, "y": x["f0"] + x["f1"] > 0})
    return events


def measure(bootstrap: str, args, workdir: pathlib.Path) -> list[float]:
    """Lags in seconds from sending a key's v-th event to the server answering with version v."""
    topic, models = "events", "models"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1)])
    finally:
        admin.close()
    keys = [f"user-{i}" for i in range(args.keys)]
    options = ["--kafka-bootstrap", bootstrap, "--kafka-topic", topic, "--models-out", f"kafka://{models}",
               "--snapshot-interval", str(args.snapshot_interval), "--checkpoint-interval", str(args.checkpoint_interval),
               "--kafka-delivery", args.kafka_delivery, "--predictions", str(workdir / "predictions")]
    port = free_ports(1)[0]
    serve_log = workdir / "serve.log"
    with streaming_job(options, workdir / "job.log") as job:
        serve = [sys.executable, "-m", "jobs.cli", "serve", "--models", f"kafka://{models}",
                 "--kafka-bootstrap", bootstrap, "--port", str(port)]
        with running_server(serve, serve_log, timeout=60):
            produce_steadily(bootstrap, topic, [{"key": "warm-up", "x": {"f0": 1.0}, "y": True}], 1)
            deadline = time.monotonic() + WARM_UP_S
            while _versions(port, ["warm-up"])["warm-up"] != 1:
                if job.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the job wrote no snapshot; see {workdir / 'job.log'}")
                time.sleep(0.2)
            events = _events(keys, int(args.rate * args.seconds))
            sent: dict[str, list[float]] = {key: [] for key in keys}  # a key's send times, one per version
            producer = threading.Thread(target=produce_steadily, args=(bootstrap, topic, events, args.rate),
                                        kwargs={"on_send": lambda event: sent[event["key"]].append(time.time())})
            producer.start()
            lags, seen = [], dict.fromkeys(keys, 0)
            expected = {key: sum(1 for e in events if e["key"] == key) for key in keys}
            give_up = time.monotonic() + args.seconds + 30
            while seen != expected and time.monotonic() < give_up:
                now = time.time()
                for key, version in _versions(port, keys).items():
                    if version is not None and version > seen[key]:  # every learn step served now
                        lags += [now - at for at in sent[key][seen[key]:version]]
                        seen[key] = version
                time.sleep(args.poll_ms / 1000)
            producer.join()
    if seen != expected:
        print(f"  warning: {sum(expected.values()) - sum(seen.values())} learn steps never served", file=sys.stderr)
    return lags


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=100, help="events per second")
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--keys", type=int, default=50)
    parser.add_argument("--snapshot-interval", type=float, default=1.0)
    parser.add_argument("--checkpoint-interval", type=float, default=0.5)
    parser.add_argument("--kafka-delivery", default="exactly-once", choices=("exactly-once", "at-least-once"))
    parser.add_argument("--poll-ms", type=float, default=20, help="how often every key's version is asked")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riverflink-freshness-") as folder:
        workdir = pathlib.Path(folder)
        port, controller_port = free_ports(2)
        start_broker(port, controller_port, workdir / "broker")
        try:
            lags = measure(f"127.0.0.1:{port}", args, workdir)
        finally:
            stop_broker(port, workdir / "broker")
    print(f"{args.rate:.0f} events/s over {args.keys} keys for {args.seconds:.0f} s; snapshots every "
          f"{args.snapshot_interval:g} s, checkpoints every {args.checkpoint_interval:g} s, {args.kafka_delivery}; "
          f"versions asked every {args.poll_ms:g} ms")
    print(f"  freshness lag over {len(lags)} served versions: p50 {percentile(lags, 0.5) * 1000:.0f} ms, "
          f"p99 {percentile(lags, 0.99) * 1000:.0f} ms, max {max(lags) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
