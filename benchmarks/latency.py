"""Latency from producing an event to reading its committed prediction, per settings profile and delivery guarantee.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.latency --rate 200
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.latency --rate 2000 --delivery at-least-once
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.latency --profile "flink defaults=--batch-delay 0.01 \
        --flink-option execution.buffer-timeout.interval=100ms"

Starts its own Kafka broker (``riverflink kafka start`` on free ports) and,
for each profile and delivery guarantee, a streaming ``riverflink run``
reading a topic and writing predictions to another, at parallelism 1.
Events are produced at a steady rate; a ``read_committed`` consumer stamps
each prediction on arrival. The first ``--warm-up`` seconds of load are not
counted: the JVMs' JIT compilers are still at work then, and latencies of a
job that has run for a minute are two to ten times lower (the warm-up's p99
is printed beside). A profile is a label and more ``riverflink run``
options; ``defaults`` is riverflink's own.

With exactly-once, predictions become visible only when the checkpoint that
covers them completes, so latency is bounded below by the wait for the next
checkpoint: about half the checkpoint interval on average, up to a whole
interval plus the checkpoint's own duration. At-least-once makes them visible
as soon as the sink's producer sends them, at the price of duplicates after
a failure.
"""

import argparse
import dataclasses
import json
import pathlib
import tempfile
import threading
import time

from kafka import KafkaConsumer

from benchmarks.generate import zipf_stream
from benchmarks.servers import get
from benchmarks.stats import percentile
from benchmarks.streaming import create_topics, produce_steadily, streaming_job, wait_until_serving
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports
from jobs.settings import KAFKA_DELIVERIES


@dataclasses.dataclass
class Latencies:
    """What one job showed: seconds from send to read, after and during the warm-up."""

    measured: list[float]
    warm_up: list[float]
    missing: int  # predictions never read
    checkpoints: dict  # the job's completed checkpoints' end-to-end durations in ms (count, p50, p99, max)


def measure(bootstrap: str, delivery: str, rate: float, seconds: float, warm_up: float, checkpoint_interval: float,
            workdir: str, name: str, run_options: list[str]) -> Latencies:
    """Latencies of every prediction read for events produced at ``rate`` for ``warm_up`` then ``seconds`` seconds."""
    events_topic, predictions_topic = f"events-{name}", f"predictions-{name}"
    create_topics(bootstrap, events_topic, predictions_topic)
    consumer = KafkaConsumer(predictions_topic, bootstrap_servers=bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    stream = zipf_stream(int(rate * (warm_up + seconds)) + 1, n_keys=1000, seed=7)
    first = {**next(stream), "id": "first"}
    rest_port, = free_ports(1)  # the mini-cluster's REST API, for the checkpoints' durations
    options = ["--kafka-bootstrap", bootstrap, "--kafka-topic", events_topic, "--kafka-group", f"latency-{name}",
               "--predictions", f"kafka://{predictions_topic}", "--kafka-delivery", delivery,
               "--checkpoint-interval", str(checkpoint_interval), "--job-name", f"latency-{name}",
               "--flink-option", f"rest.port={rest_port}", *run_options]
    log = pathlib.Path(workdir) / f"job-{name}.log"
    with streaming_job(options, log) as job:
        produce_steadily(bootstrap, events_topic, [first], rate)
        wait_until_serving(job, consumer, log)
        sent_at: dict = {}

        def stamp(event: dict) -> None:
            sent_at[event["id"]] = time.time()

        producer = threading.Thread(target=produce_steadily, args=(bootstrap, events_topic, list(stream), rate),
                                    kwargs={"on_send": stamp})
        counted_from = time.time() + warm_up
        producer.start()
        read = Latencies([], [], 0, {})
        quiet_until = time.monotonic() + warm_up + seconds + 2 * checkpoint_interval + 10
        while time.monotonic() < quiet_until and (producer.is_alive() or len(read.measured) + len(read.warm_up) < len(sent_at)):
            for records in consumer.poll(timeout_ms=200).values():
                arrived = time.time()
                for record in records:
                    sent = sent_at.get(json.loads(record.value)["id"])
                    if sent is not None:
                        (read.measured if sent >= counted_from else read.warm_up).append(arrived - sent)
        producer.join()
        read.checkpoints = checkpoint_durations(rest_port)
    consumer.close()
    read.missing = len(sent_at) - len(read.measured) - len(read.warm_up)
    return read


def checkpoint_durations(rest_port: int) -> dict:
    """End-to-end durations of the completed checkpoints of the one job on the mini-cluster at ``rest_port``."""
    def answer(path: str) -> dict:
        status, body = get(rest_port, path)
        if status != 200:
            raise RuntimeError(f"GET {path} from the mini-cluster: {status} {body[:200]!r}")
        return json.loads(body)

    job, = answer("/jobs")["jobs"]
    statistics = answer(f"/jobs/{job['id']}/checkpoints")
    durations = statistics["summary"]["end_to_end_duration"]
    return {"count": statistics["counts"]["completed"], "p50": durations["p50"], "p99": durations["p99"],
            "max": durations["max"]}


def _profile(text: str) -> tuple[str, list[str]]:
    label, equals, options = text.partition("=")
    if not equals or not label:
        raise argparse.ArgumentTypeError("must be LABEL=OPTIONS")
    return label, options.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=200, help="events per second")
    parser.add_argument("--seconds", type=float, default=60, help="measured, after the warm-up")
    parser.add_argument("--warm-up", type=float, default=30, metavar="S", help="seconds of load not counted")
    parser.add_argument("--checkpoint-interval", type=float, default=1.0)
    parser.add_argument("--delivery", choices=KAFKA_DELIVERIES, action="append", help="only this guarantee; repeatable")
    parser.add_argument("--profile", type=_profile, action="append", metavar="LABEL=OPTIONS",
                        help="more riverflink run options under a label, repeatable (default: defaults=)")
    args = parser.parse_args()
    profiles = args.profile or [("defaults", [])]
    results = {}
    with tempfile.TemporaryDirectory(prefix="riverflink-latency-") as workdir:
        port, controller_port = free_ports(2)
        start_broker(port, controller_port, pathlib.Path(workdir) / "broker")
        try:
            bootstrap = f"127.0.0.1:{port}"
            for number, (label, options) in enumerate(profiles):
                for delivery in args.delivery or KAFKA_DELIVERIES:
                    results[label, delivery] = measure(bootstrap, delivery, args.rate, args.seconds, args.warm_up,
                                                       args.checkpoint_interval, workdir, f"{number}-{delivery}",
                                                       options)
        finally:
            stop_broker(port, pathlib.Path(workdir) / "broker")
    print(f"{args.rate:,.0f} events/s, {args.seconds:.0f} s measured after {args.warm_up:.0f} s of warm-up, "
          f"checkpoints every {args.checkpoint_interval:g} s, parallelism 1; from send to committed prediction read:")
    width = max(len(label) for label, _ in profiles)
    print(f"  {'profile':<{width}} {'delivery':<14} {'events':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7}"
          f"   {'warm-up p99 ms':>14}   checkpoints: n, p50, p99, max ms")
    for (label, delivery), read in results.items():
        latencies = read.measured or [float("nan")]
        warm = percentile(read.warm_up, 0.99) * 1000 if read.warm_up else float("nan")
        print(f"  {label:<{width}} {delivery:<14} {len(read.measured):>7} {percentile(latencies, 0.5) * 1000:>7.0f} "
              f"{percentile(latencies, 0.99) * 1000:>7.0f} {max(latencies) * 1000:>7.0f}   {warm:>14.0f}"
              f"   {read.checkpoints['count']}, {read.checkpoints['p50']:.0f}, {read.checkpoints['p99']:.0f}, "
              f"{read.checkpoints['max']:.0f}"
              + (f"   ({read.missing} never read)" if read.missing else ""))
    for label, options in profiles:
        print(f"  {label}: {' '.join(options) or 'riverflink run defaults'}")


if __name__ == "__main__":
    main()
