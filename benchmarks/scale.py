"""A million keys on RocksDB: events/s against the bare loop, checkpoints, state size, TaskManager memory, restore.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.scale
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.scale --keys 100000   # a quick look

Every key gets exactly ``--events-per-key`` events, spread at random over
the whole stream: almost every event's key has left the key cache since its
previous event, so the learner reads it back from RocksDB (the worst case
for the state backend, and the usual one with many more keys than a cache
holds). The bare loop keeps every model in one dict, as people do today.

The job runs on a local cluster of ``--taskmanagers`` TaskManagers, one slot
each, at that parallelism, reading the data from a watched input folder, so
it keeps running once the data is learned, as a live job would. The clock
runs from submission until every event is learned (the ``events_learned``
counters, from the REST API). Meanwhile it samples each TaskManager's
resident memory and every checkpoint (duration, incremental size, full
size). Then it stops the job with a savepoint and resumes from it, with a
small file of events of known keys: the restore time is the learner tasks'
INITIALIZING phase, and the time to their first events is printed beside.
"""

import argparse
import dataclasses
import itertools
import json
import pathlib
import random
import resource
import tempfile
import threading
import time

from benchmarks.memory import status_mib
from benchmarks.stats import percentile
from benchmarks.throughput import bare_loop, model_state_bytes
from jobs.cli.savepoints import stop_with_savepoint
from jobs.learn_job import run_job
from jobs.local.cluster import cluster_processes, rest_get, start_cluster, stop_cluster
from jobs.local.processes import free_ports
from jobs.settings import STATE_BACKENDS, OutputSettings, Settings, TuningSettings

LEARNER_METRIC = "events_learned"
SAMPLE_EVERY_S = 2.0
RESUMED_EVENTS = 10_000


def scattered_stream(n_keys: int, per_key: int, seed: int = 7, first_id: int = 0):
    """Yield ``per_key`` labelled events of each of ``n_keys`` keys, in a random order (8 features, a concept per key)."""
    rng = random.Random(seed)
    order = [key for key in range(n_keys) for _ in range(per_key)]
    rng.shuffle(order)
    for i, key in enumerate(order):
        concept = random.Random(seed * 1_000_003 + key)
        x = {f"f{j}": round(rng.gauss(0, 1), 4) for j in range(8)}
        y = sum(concept.uniform(-1, 1) * xj for xj in x.values()) + rng.gauss(0, 0.3) > 0
        yield {"key": f"user-{key}", "id": f"e{first_id + i}", "x": x, "y": y}


def write_events(path: pathlib.Path, events) -> int:
    """Write ``events`` as JSON lines; returns how many."""
    n = 0
    with path.open("w") as file:
        for event in events:
            file.write(json.dumps(event) + "\n")
            n += 1
    return n


@dataclasses.dataclass
class Sample:
    seconds: float  # since submission
    learned: int
    rss_mib: dict[str, float]  # TaskManager name -> resident memory


class JobWatch:
    """Polls a running job's learned events, its checkpoints and the TaskManagers' memory, in a thread."""

    def __init__(self, port: int, home: pathlib.Path, job_id: str, started: float):
        self.port, self.job_id, self.started = port, job_id, started
        self.started_epoch = time.time() - (time.perf_counter() - started)
        self.taskmanagers = {p.name: p.pid for p in cluster_processes(home) if p.role == "taskmanager"}
        self.samples: list[Sample] = []
        self.checkpoints: dict[int, dict] = {}  # id -> the REST API's record of a completed checkpoint
        self.failed: set[int] = set()  # ids of failed checkpoints
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="job-watch", daemon=True)
        self.learner = self._learner_vertex()
        self._thread.start()

    def _learner_vertex(self) -> str:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            for vertex in rest_get(self.port, f"/jobs/{self.job_id}")["vertices"]:
                metrics = rest_get(self.port, f"/jobs/{self.job_id}/vertices/{vertex['id']}/subtasks/metrics")
                names = [m["id"] for m in metrics if m["id"].endswith("." + LEARNER_METRIC)]
                if names:
                    self._metric = names[0]
                    return vertex["id"]
            time.sleep(0.5)
        raise RuntimeError(f"no vertex of job {self.job_id} reported {LEARNER_METRIC} within 120 s")

    def total(self, metric: str) -> int:
        """A learner metric summed over its subtasks (``events_learned``, ``keys_live``, ...)."""
        name = self._metric.removesuffix(LEARNER_METRIC) + metric
        answer = rest_get(self.port, f"/jobs/{self.job_id}/vertices/{self.learner}/subtasks/metrics"
                                     f"?get={name}&agg=sum")
        return int(float(answer[0]["sum"])) if answer else 0

    def learned(self) -> int:
        return self.total(LEARNER_METRIC)

    def _poll_checkpoints(self) -> None:
        answer = rest_get(self.port, f"/jobs/{self.job_id}/checkpoints")
        for record in answer["history"]:
            if record["status"] == "COMPLETED" and not record["is_savepoint"]:
                self.checkpoints.setdefault(record["id"], record)
            elif record["status"] == "FAILED":
                self.failed.add(record["id"])

    @property
    def failed_checkpoints(self) -> int:
        """Checkpoints that failed once one had completed: before the tasks run, triggers fail by design."""
        first = min(self.checkpoints, default=None)
        return 0 if first is None else sum(1 for failed in self.failed if failed > first)

    def sample(self) -> Sample:
        sample = Sample(time.perf_counter() - self.started, self.learned(),
                        {name: status_mib(pid, "VmRSS") for name, pid in self.taskmanagers.items()})
        self.samples.append(sample)
        return sample

    def _run(self) -> None:
        while not self._stop.wait(SAMPLE_EVERY_S):
            self.sample()
            self._poll_checkpoints()

    def wait_learned(self, n: int, timeout_s: float) -> float:
        """Seconds from submission until ``n`` events are learned."""
        deadline = time.monotonic() + timeout_s
        while (learned := self.learned()) < n:
            failures = rest_get(self.port, f"/jobs/{self.job_id}/exceptions")["exceptionHistory"]["entries"]
            if failures:  # a restart would make the figures those of a run that learned some events twice
                raise RuntimeError(f"job {self.job_id} failed after {learned:,} events learned: "
                                   f"{failures[0]['exceptionName']}: {failures[0]['stacktrace'].splitlines()[0]}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"job {self.job_id} learned {learned:,} of {n:,} events within {timeout_s:.0f} s")
            time.sleep(0.2)
        return time.perf_counter() - self.started

    def wait_checkpoint_after(self, seconds: float, timeout_s: float = 120) -> dict:
        """The first checkpoint triggered after ``seconds`` since submission: it holds every key as learned then."""
        after_ms = (self.started_epoch + seconds) * 1000
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self._poll_checkpoints()
            later = [c for c in self.checkpoints.values() if c["trigger_timestamp"] >= after_ms]
            if later:
                return min(later, key=lambda c: c["id"])
            time.sleep(0.5)
        raise RuntimeError(f"no checkpoint of job {self.job_id} completed within {timeout_s:.0f} s")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def restore_seconds(port: int, job_id: str, vertex: str) -> float:
    """The longest INITIALIZING phase (state restore) among a vertex's subtasks."""
    answer = rest_get(port, f"/jobs/{job_id}/vertices/{vertex}/subtasktimes")
    return max((s["timestamps"]["RUNNING"] - s["timestamps"]["INITIALIZING"]) / 1000 for s in answer["subtasks"])


def directory_mib(path: pathlib.Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2 ** 20


def submit(args, port: int, inputs: pathlib.Path, out: pathlib.Path, savepoint: str | None = None):
    """Submit the job detached, watching ``inputs`` (so it runs on once they are read); returns (job id, clock start)."""
    settings = Settings(
        model=args.model, inputs=(str(inputs),), watch_inputs=1.0,
        outputs=OutputSettings(predictions=str(out)),
        parallelism=args.taskmanagers, state_backend=args.state_backend, checkpoint_interval=args.checkpoint_interval,
        jobmanager=f"127.0.0.1:{port}", detached=True, from_savepoint=savepoint,
        tuning=TuningSettings(key_cache_mb=args.key_cache_mb),
    )
    started = time.perf_counter()
    job_id = str(run_job(settings).get_job_id())
    return job_id, started


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=1_000_000)
    parser.add_argument("--events-per-key", type=int, default=3)
    parser.add_argument("--model", default="examples/classifier.py:model")
    parser.add_argument("--taskmanagers", type=int, default=2, help="TaskManagers of one slot each; the parallelism")
    parser.add_argument("--checkpoint-interval", type=float, default=10.0)
    parser.add_argument("--state-backend", choices=STATE_BACKENDS, default="rocksdb",
                        help="hashmap: the same on the JVM heap, to see where it stops fitting")
    parser.add_argument("--key-cache-mb", type=float, default=TuningSettings.key_cache_mb)
    parser.add_argument("--timeout", type=float, default=3600, help="seconds the job may take to learn the data")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="riverflink-scale-") as workdir:
        work = pathlib.Path(workdir)
        inputs = work / "input"
        inputs.mkdir()
        data = inputs / "events.jsonl"
        n = write_events(data, scattered_stream(args.keys, args.events_per_key))

        started = time.perf_counter()
        bare_n, models = bare_loop(data, args.model)
        bare_rate = bare_n / (time.perf_counter() - started)
        bare_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        sample_keys = random.Random(0).sample(sorted(models), min(10_000, len(models)))
        envelope = model_state_bytes({key: models[key] for key in sample_keys})
        del models

        port, rpc_port = free_ports(2)
        home = work / "cluster"
        start_cluster(args.taskmanagers, 1, port, rpc_port, home)
        try:
            job_id, submitted = submit(args, port, inputs, work / "predictions")
            watch = JobWatch(port, home, job_id, submitted)
            try:
                job_seconds = watch.wait_learned(n, args.timeout)
                final = watch.wait_checkpoint_after(job_seconds)
                settled = watch.sample()
                keys_live = watch.total("keys_live")
            finally:
                watch.stop()
            stopping = time.perf_counter()
            savepoint = stop_with_savepoint(f"127.0.0.1:{port}", job_id, str(work / "savepoints"))
            savepoint_seconds = time.perf_counter() - stopping

            more = work / "input" / "more.jsonl"
            resumed_n = write_events(more.with_suffix(".tmp"), itertools.islice(
                scattered_stream(args.keys, args.events_per_key, seed=8, first_id=n), RESUMED_EVENTS))
            resumed_id, resumed_at = submit(args, port, inputs, work / "predictions-resumed", savepoint)
            more.with_suffix(".tmp").rename(more)  # the watched folder sees it whole
            resumed = JobWatch(port, home, resumed_id, resumed_at)
            try:
                first_seconds = resumed.wait_learned(1, 600)
                resumed_seconds = resumed.wait_learned(resumed_n, 600)
                resumed.wait_checkpoint_after(resumed_seconds)  # keys_live is reported by the barrier after
                resumed_keys_live = resumed.total("keys_live")
            finally:
                resumed.stop()
            restore = restore_seconds(port, resumed_id, resumed.learner)
            stop_with_savepoint(f"127.0.0.1:{port}", resumed_id, str(work / "savepoints"))
        finally:
            stop_cluster(port, home)
        savepoint_mib = directory_mib(pathlib.Path(savepoint.removeprefix("file:")))

    job_rate = n / job_seconds
    print(f"{n:,} events: {args.keys:,} keys x {args.events_per_key}, in random order; model {args.model}")
    print(f"job: local cluster of {args.taskmanagers} TaskManagers (1 slot each), parallelism {args.taskmanagers}, "
          + ("RocksDB state, incremental checkpoints" if args.state_backend == "rocksdb" else "hashmap state, checkpoints")
          + f" every {args.checkpoint_interval:g} s, "
          f"key cache {args.key_cache_mb:g} MB per learner")
    print(f"  bare river loop   {bare_rate:>10,.0f} events/s  peak RSS {bare_rss:>7,.0f} MiB (one dict of models)")
    print(f"  riverflink job    {job_rate:>10,.0f} events/s  {job_seconds:.1f} s from submission to the last event "
          f"learned")
    print(f"  ratio             {job_rate / bare_rate:>10.2f}")
    done = sorted(watch.checkpoints.values(), key=lambda c: c["id"])
    durations = [c["end_to_end_duration"] / 1000 for c in done]
    increments = [c["checkpointed_size"] / 2 ** 20 for c in done]  # what each uploaded: all of it on the heap
    uploaded = "incremental size" if args.state_backend == "rocksdb" else "size (full)"
    print(f"  checkpoints       {len(done)} completed, {watch.failed_checkpoints} failed after the first; "
          f"duration p50 {percentile(durations, 0.5):.2f} s, max {max(durations):.2f} s; {uploaded} p50 "
          f"{percentile(increments, 0.5):.1f} MiB, max {max(increments):.1f} MiB; {sum(increments):,.0f} MiB "
          f"uploaded in all ({sum(increments) * 2 ** 20 / n:,.0f} bytes per event)")
    print(f"  state             {final['state_size'] / 2 ** 20:,.0f} MiB in the checkpoint after the last event "
          f"({final['state_size'] / args.keys:,.0f} bytes per key; a model envelope alone is {envelope:,.0f}); "
          f"savepoint {savepoint_mib:,.0f} MiB, taken in {savepoint_seconds:.1f} s")
    print(f"  keys_live         {keys_live:,} after the last event; {resumed_keys_live:,} after resuming from the "
          f"savepoint and {resumed_n:,} more events of the same keys")
    print(f"  restore           {restore:.1f} s restoring the learners' state (counting their keys included); "
          f"first event learned {first_seconds:.1f} s after submission, {resumed_n:,} events "
          f"{resumed_seconds:.1f} s after")
    print("  TaskManager resident memory (MiB) as the keys came in:")
    names = sorted(watch.taskmanagers)
    print("    " + f"{'seconds':>8} {'learned':>10} " + " ".join(f"{name:>8}" for name in names))
    shown = set()
    for sample in watch.samples + [settled]:
        decile = min(10, int(10 * sample.learned / n))
        if decile in shown:
            continue
        shown.add(decile)
        print("    " + f"{sample.seconds:>8.0f} {sample.learned:>10,} "
              + " ".join(f"{sample.rss_mib.get(name, 0):>8,.0f}" for name in names))


if __name__ == "__main__":
    main()
