"""Keyed state under a stream of ever-new keys, with and without ``--key-ttl``.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.key_ttl --rate 300 --seconds 30 --key-ttl 2

Starts its own Kafka broker (``riverflink kafka start`` on free ports) and, for
each setting (no TTL, then ``--key-ttl``), a streaming ``riverflink run``
checkpointing every second to a directory of its own. Events of keys never
seen before are produced at a steady rate (a few events per key, then the key
falls silent for good). Once a second it reads the latest completed
checkpoint: its size in bytes, and how many distinct keys it holds (key names
found in its files: with the hashmap backend and no snapshot compression each
key's name is stored as plain text with each of its states and timers).

Without a TTL both grow with every key ever seen; with one they level off at
about ``rate / events_per_key * (ttl + up to one timer granularity)`` keys.
The key count is an upper bound: unaligned checkpoints also store in-flight
records, which name their keys too.
"""

import argparse
import contextlib
import pathlib
import random
import re
import tempfile
import threading
import time

from kafka import KafkaConsumer
from kafka.admin import KafkaAdminClient, NewTopic

from benchmarks.streaming import produce_steadily, streaming_job, wait_until_serving
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports

__all__ = ["latest_checkpoint", "keys_in_checkpoint", "checkpoint_bytes"]

KEY_NAME = re.compile(rb"nk\d{8}")


def latest_checkpoint(root: pathlib.Path) -> pathlib.Path | None:
    """The newest completed checkpoint (``<job id>/chk-N`` with its ``_metadata``) under ``root``."""
    done = []
    for metadata in root.glob("*/chk-*/_metadata"):
        with contextlib.suppress(ValueError):
            done.append((int(metadata.parent.name.removeprefix("chk-")), metadata.parent))
    return max(done)[1] if done else None


def _files(checkpoint: pathlib.Path) -> list[pathlib.Path]:
    return [path for path in checkpoint.rglob("*") if path.is_file()]


def checkpoint_bytes(checkpoint: pathlib.Path) -> int:
    return sum(path.stat().st_size for path in _files(checkpoint))


def keys_in_checkpoint(checkpoint: pathlib.Path, pattern: re.Pattern = KEY_NAME) -> set[bytes]:
    """Distinct key names written anywhere in a checkpoint's files."""
    found = set()
    for path in _files(checkpoint):
        found.update(pattern.findall(path.read_bytes()))
    return found


def new_key_events(rate: float, seconds: float, events_per_key: int, seed: int = 7):
    """Labelled events at ``rate``/s for ``seconds``: key ``nk<n>`` gets ``events_per_key`` events, then no more."""
    rng = random.Random(seed)
    for i in range(int(rate * seconds)):
        x = {f"f{j}": rng.gauss(0, 1) for j in range(8)}
        yield {"key": f"nk{i // events_per_key:08d}", "id": f"e{i}", "x": x, "y": x["f0"] + x["f1"] > 0}


def _job_options(bootstrap: str, topic: str, workdir: pathlib.Path, key_ttl: float | None) -> list[str]:
    options = ["--kafka-bootstrap", bootstrap, "--kafka-topic", topic, "--kafka-group", topic,
               "--predictions", f"kafka://{topic}-predictions", "--job-name", topic, "--checkpoint-interval", "1",
               "--checkpoint-dir", str(workdir / "checkpoints")]
    return options if key_ttl is None else options + ["--key-ttl", str(key_ttl)]


def measure(bootstrap: str, workdir: pathlib.Path, key_ttl: float | None, rate: float, seconds: float,
            events_per_key: int, report=print) -> list[tuple]:
    """Samples ``(elapsed s, keys sent, checkpoint, bytes, keys held)``, one a second while producing, and 5 s after."""
    workdir.mkdir(parents=True)
    topic = f"new-keys-{'ttl' if key_ttl else 'no-ttl'}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        admin.create_topics([NewTopic(topic, 2, 1), NewTopic(f"{topic}-predictions", 2, 1)])
    finally:
        admin.close()
    events = list(new_key_events(rate, seconds, events_per_key))
    samples = []
    consumer = KafkaConsumer(f"{topic}-predictions", bootstrap_servers=bootstrap, isolation_level="read_committed",
                             auto_offset_reset="earliest", enable_auto_commit=False)
    with streaming_job(_job_options(bootstrap, topic, workdir, key_ttl), workdir / "job.log") as job:
        produce_steadily(bootstrap, topic, [{"key": "warm-up", "x": {"f0": 0.0}, "y": True}], rate)
        wait_until_serving(job, consumer, workdir / "job.log")
        consumer.close()
        sent: list = []
        producer = threading.Thread(target=produce_steadily, args=(bootstrap, topic, events, rate),
                                    kwargs={"on_send": lambda event: sent.append(event["key"]), "linger_ms": 5})
        started = time.monotonic()
        producer.start()
        while producer.is_alive() or time.monotonic() < started + seconds + 5:
            time.sleep(1 - (time.monotonic() - started) % 1)
            checkpoint = latest_checkpoint(workdir / "checkpoints")
            with contextlib.suppress(FileNotFoundError):  # retired (deleted) while being read
                if checkpoint is not None:
                    sample = (round(time.monotonic() - started), len(set(sent)), checkpoint.name,
                              checkpoint_bytes(checkpoint), len(keys_in_checkpoint(checkpoint)))
                    samples.append(sample)
                    report("  {:>4} s  {:>6} keys sent  {:>8}  {:>10,} bytes  {:>6} keys held".format(*sample))
        producer.join()
        if job.poll() is not None:
            raise RuntimeError(f"the job ended early; see {workdir}/job.log")
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=300, help="events per second")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--events-per-key", type=int, default=3)
    parser.add_argument("--key-ttl", type=float, default=2.0)
    parser.add_argument("--workdir", help="keep checkpoints and job logs here (default: a temporary directory)")
    args = parser.parse_args()
    results = {}
    with contextlib.ExitStack() as cleanup:
        workdir = pathlib.Path(args.workdir or cleanup.enter_context(tempfile.TemporaryDirectory(prefix="riverflink-key-ttl-")))
        port, controller_port = free_ports(2)
        start_broker(port, controller_port, workdir / "broker")
        try:
            for key_ttl in (None, args.key_ttl):
                label = "no key TTL" if key_ttl is None else f"--key-ttl {key_ttl:g}"
                print(label, flush=True)
                results[label] = measure(f"127.0.0.1:{port}", workdir / label.replace(" ", "-"), key_ttl,
                                         args.rate, args.seconds, args.events_per_key)
        finally:
            stop_broker(port, workdir / "broker")
    print(f"\n{args.rate:.0f} events/s for {args.seconds:.0f} s, {args.events_per_key} events per new key, "
          f"checkpoints every 1 s, parallelism 1; latest completed checkpoint:")
    print(f"  {'':<14} {'keys sent':>10} {'keys held':>10} {'max held':>9} {'bytes':>12} {'max bytes':>12}")
    for label, samples in results.items():
        _, sent, _, size, held = samples[-1]
        print(f"  {label:<14} {sent:>10} {held:>10} {max(s[4] for s in samples):>9} {size:>12,} "
              f"{max(s[3] for s in samples):>12,}")


if __name__ == "__main__":
    main()
