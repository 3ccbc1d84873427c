"""Latency from producing an event to reading its committed prediction, for both Kafka delivery guarantees.

    .venv/bin/python -m benchmarks.latency --rate 200 --seconds 60 --checkpoint-interval 2

Starts its own Kafka broker (``riverflink kafka start`` on free ports) and,
for each delivery guarantee, a streaming ``riverflink run`` reading a topic
and writing predictions to another. Events are produced at a steady rate;
a ``read_committed`` consumer stamps each prediction on arrival.

With exactly-once, predictions become visible only when the checkpoint that
covers them completes, so latency is bounded below by the wait for the next
checkpoint: about half the checkpoint interval on average, up to a whole
interval plus the checkpoint's own duration. At-least-once makes them visible
as soon as the sink flushes, at the price of duplicates after a failure.
"""

import argparse
import json
import pathlib
import sys
import tempfile
import threading
import time

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.generate import zipf_stream
from benchmarks.stats import percentile
from benchmarks.streaming import produce_steadily, streaming_job, wait_until_serving
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports
from jobs.settings import KAFKA_DELIVERIES


def _topics(bootstrap: str, *names: str) -> None:
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(name, 2, 1) for name in names])
    finally:
        admin.close()


def measure(bootstrap: str, delivery: str, rate: float, seconds: float, checkpoint_interval: float,
            workdir: str) -> list[float]:
    """Latencies in seconds of every prediction read for events produced at ``rate`` for ``seconds``."""
    events_topic, predictions_topic = f"events-{delivery}", f"predictions-{delivery}"
    _topics(bootstrap, events_topic, predictions_topic)
    consumer = KafkaConsumer(predictions_topic, bootstrap_servers=bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    stream = zipf_stream(int(rate * seconds) + 1, n_keys=1000, seed=7)
    warm_up = {**next(stream), "id": "warm-up"}
    options = ["--kafka-bootstrap", bootstrap, "--kafka-topic", events_topic, "--kafka-group", f"latency-{delivery}",
               "--predictions", f"kafka://{predictions_topic}", "--kafka-delivery", delivery,
               "--checkpoint-interval", str(checkpoint_interval), "--job-name", f"latency-{delivery}"]
    log = pathlib.Path(workdir) / f"job-{delivery}.log"
    with streaming_job(options, log) as job:
        produce_steadily(bootstrap, events_topic, [warm_up], rate)
        wait_until_serving(job, consumer, log)
        sent_at: dict = {}

        def stamp(event: dict) -> None:
            sent_at[event["id"]] = time.time()

        producer = threading.Thread(target=produce_steadily, args=(bootstrap, events_topic, list(stream), rate),
                                    kwargs={"on_send": stamp})
        producer.start()
        latencies = []
        quiet_until = time.monotonic() + seconds + 2 * checkpoint_interval + 10
        while time.monotonic() < quiet_until and (producer.is_alive() or len(latencies) < len(sent_at)):
            for records in consumer.poll(timeout_ms=200).values():
                arrived = time.time()
                for record in records:
                    event_id = json.loads(record.value)["id"]
                    if event_id in sent_at:
                        latencies.append(arrived - sent_at[event_id])
        producer.join()
    consumer.close()
    if len(latencies) < len(sent_at):
        print(f"  warning: {len(sent_at) - len(latencies)} of {len(sent_at)} predictions not seen", file=sys.stderr)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="events per second")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--checkpoint-interval", type=float, default=2.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riverflink-latency-") as workdir:
        port, controller_port = free_ports(2)
        start_broker(port, controller_port, pathlib.Path(workdir) / "broker")
        try:
            bootstrap = f"127.0.0.1:{port}"
            results = {delivery: measure(bootstrap, delivery, args.rate, args.seconds, args.checkpoint_interval, workdir)
                       for delivery in KAFKA_DELIVERIES}
        finally:
            stop_broker(port, pathlib.Path(workdir) / "broker")
    print(f"{args.rate:.0f} events/s for {args.seconds:.0f} s, checkpoints every {args.checkpoint_interval} s, "
          f"parallelism 1; latency from send to committed prediction read:")
    print(f"  {'delivery':<14} {'events':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for delivery, latencies in results.items():
        p50, p99 = percentile(latencies, 0.5) * 1000, percentile(latencies, 0.99) * 1000
        print(f"  {delivery:<14} {len(latencies):>7} {p50:>8.0f} {p99:>8.0f} {max(latencies) * 1000:>8.0f}")


if __name__ == "__main__":
    main()
