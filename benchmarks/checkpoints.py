"""Do checkpoints complete while the Python learner is the bottleneck? Aligned against unaligned barriers.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.checkpoints

Starts its own Kafka broker and a local Flink cluster (2 TaskManagers),
fills a topic with a backlog the learner cannot keep up with, so the source
is back-pressured from the first second, and runs the job for a while with
each barrier mode, checkpointing every 2 s. It prints how many checkpoints
completed and how long they took, from the JobManager's REST API.
"""

import argparse
import collections
import json
import pathlib
import tempfile
import time
import urllib.request

from benchmarks.generate import zipf_stream
from jobs.cli.produce import publish
from jobs.learn_job import run_job
from jobs.local.cluster import rest_get, start_cluster, stop_cluster
from jobs.local.kafka import start_broker, stop_broker
from jobs.local.processes import free_ports
from jobs.settings import KafkaSettings, OutputSettings, Settings
from state.destinations import read_records

MODES = {"unaligned": "true", "aligned": "false"}


def _cancel(port: int, job: str) -> None:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/jobs/{job}?mode=cancel", method="PATCH")
    urllib.request.urlopen(request, timeout=30).close()


def measure(port: int, bootstrap: str, topic: str, unaligned: str, seconds: float, out: pathlib.Path) -> dict:
    settings = Settings(
        model="examples/classifier.py:model", checkpoint_interval=2.0,
        kafka=KafkaSettings(bootstrap=bootstrap, topics=(topic,), group=f"checkpoints-{unaligned}"),
        outputs=OutputSettings(predictions=str(out / "predictions")),
        jobmanager=f"127.0.0.1:{port}", detached=True, parallelism=2,
        flink_options=(("execution.checkpointing.unaligned.enabled", unaligned),),
    )
    job = str(run_job(settings).get_job_id())
    # Count from the first completed checkpoint: before the tasks run, triggers fail by design.
    deadline = time.monotonic() + 120
    while (before := rest_get(port, f"/jobs/{job}/checkpoints"))["counts"]["completed"] == 0:
        if time.monotonic() > deadline:
            raise RuntimeError(f"no checkpoint of job {job} completed within 120 s")
        time.sleep(0.5)
    started = time.time() * 1000
    time.sleep(seconds)
    after = rest_get(port, f"/jobs/{job}/checkpoints")
    _cancel(port, job)
    # The REST history keeps the last few checkpoints only; the counts and the summary cover them all.
    recent_failures = [c for c in after["history"] if c["status"] == "FAILED" and c["trigger_timestamp"] >= started]
    return {
        "completed": after["counts"]["completed"] - before["counts"]["completed"],
        "failed": after["counts"]["failed"] - before["counts"]["failed"],
        "failures": collections.Counter(c.get("failure_message") for c in recent_failures),
        "duration": after["summary"]["end_to_end_duration"],
        "predictions": sum(1 for _ in read_records(out / "predictions")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=400_000, help="backlog in the topic before each run")
    parser.add_argument("--keys", type=int, default=5_000)
    parser.add_argument("--seconds", type=float, default=40, help="how long each mode runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="riverflink-checkpoints-") as workdir:
        work = pathlib.Path(workdir)
        kafka_port, controller_port, rest_port, rpc_port = free_ports(4)
        start_broker(kafka_port, controller_port, work / "broker")
        try:
            bootstrap = f"127.0.0.1:{kafka_port}"
            events = work / "events.jsonl"
            events.write_text("".join(json.dumps(e) + "\n" for e in zipf_stream(args.events, args.keys)))
            start_cluster(2, 1, rest_port, rpc_port, work / "cluster")
            try:
                results = {}
                for mode, unaligned in MODES.items():
                    topic = f"events-{mode}"
                    publish(bootstrap, topic, [events], partitions=2)
                    results[mode] = measure(rest_port, bootstrap, topic, unaligned, args.seconds, work / mode)
            finally:
                stop_cluster(rest_port, work / "cluster")
        finally:
            stop_broker(kafka_port, work / "broker")
    print(f"backlog of {args.events} events, checkpoints every 2 s, {args.seconds:.0f} s per mode, parallelism 2:")
    print(f"  {'barriers':<10} {'completed':>9} {'failed':>6} {'p50 ms':>7} {'max ms':>7} {'predictions':>11}")
    for mode, r in results.items():
        p50, worst = r["duration"]["p50"], r["duration"]["max"]
        print(f"  {mode:<10} {r['completed']:>9} {r['failed']:>6} {p50:>7.0f} {worst:>7.0f} {r['predictions']:>11}")
    for mode, r in results.items():
        for message, count in r["failures"].items():
            print(f"  {mode} failed {count}x: {message}")
        if r["predictions"] >= args.events:
            print(f"  {mode}: the backlog drained within the window, so the source was not back-pressured throughout")


if __name__ == "__main__":
    main()
