"""Events/s of riverflink against a bare Python loop, on the same generated data, in one run.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.throughput
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.throughput --parallelism 2 --cluster 2
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.throughput --snapshot-interval 1
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.throughput --parallelism 2 --global

The bare loop is what people run today: json.loads and a dict of river
models, predict_one then learn_one, no fault tolerance. The job is the full
riverflink graph (file in, predictions out, checkpoints on), on the embedded
mini-cluster or, with ``--cluster N``, on a local standalone cluster of N
TaskManagers with one slot each (started before the clock starts, like a
cluster that is already running: ``riverflink cluster start`` runs its
warm-up job, unless ``--cold-cluster``), timed by wall clock including the
job's start-up. The machines are shared and noisy: compare the ratio, not the
absolute figures.
"""

import argparse
import contextlib
import json
import pathlib
import resource
import tempfile
import time

from benchmarks.generate import write
from benchmarks.memory import java_descendants, peak_rss_mib
from jobs.learn_job import run_job
from jobs.local.cluster import cluster_processes, start_cluster, stop_cluster
from jobs.local.processes import free_ports
from jobs.model_spec import load_template
from jobs.profiles import PROFILE_NAMES
from jobs.settings import LifecycleSettings, OutputSettings, Settings, TuningSettings
from operators.learning_step import KeyState
from state.destinations import committed_files
from state.envelope import dump_state


def bare_loop(path: pathlib.Path, spec: str) -> tuple[int, dict]:
    """The baseline; returns the number of events and the final model of each key."""
    template, _ = load_template(spec)
    models = {}
    n = 0
    with path.open() as lines:
        for line in lines:
            event = json.loads(line)
            model = models.get(event["key"])
            if model is None:
                model = models[event["key"]] = template.clone()
            model.predict_one(event["x"])
            model.learn_one(event["x"], event["y"])
            n += 1
    return n, models


def model_state_bytes(models: dict) -> float:
    """Mean size of a key's envelope (model and counters) as the job stores it after the same events."""
    return sum(len(dump_state(KeyState(model=model))) for model in models.values()) / len(models)


@contextlib.contextmanager
def flink(args, work: pathlib.Path):
    """Yields (REST address or None for the mini-cluster, a function returning the JVMs' total peak RSS in MiB)."""
    if not args.cluster:
        yield None, lambda: sum(peak_rss_mib(pid) for pid in java_descendants())
        return
    port, rpc_port = free_ports(2)
    home = work / "cluster"
    start_cluster(args.cluster, 1, port, rpc_port, home, warm=not args.cold_cluster)
    try:
        yield f"127.0.0.1:{port}", lambda: sum(peak_rss_mib(p.pid) for p in cluster_processes(home))
    finally:
        stop_cluster(port, home)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--model", default="examples/classifier.py:model")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--state-backend", default="hashmap")
    parser.add_argument("--execution-mode", default="thread")
    parser.add_argument("--checkpoint-interval", type=float, default=10.0)
    parser.add_argument("--key-cache-mb", type=float, default=TuningSettings.key_cache_mb)
    parser.add_argument("--batch-lines", type=int, default=TuningSettings.batch_lines,
                        help="lines per call into the learner (thread mode); 1: PyFlink's operator, one call per line")
    parser.add_argument("--profile", choices=PROFILE_NAMES, default="auto",
                        help="riverflink run --profile; auto is throughput here: the input is bounded")
    parser.add_argument("--batch-delay", type=float, metavar="S",
                        help="how long a line waits at most for its batch to fill (thread mode; default: the profile's)")
    parser.add_argument("--flink-option", type=lambda text: tuple(text.split("=", 1)), action="append", default=[], metavar="KEY=VALUE",
                        help="a Flink option for the job, repeatable (e.g. execution.buffer-timeout.interval=100ms)")
    parser.add_argument("--snapshot-interval", type=float, metavar="S",
                        help="also write model snapshots (--models-out) every S seconds, as riverflink serve follows them")
    parser.add_argument("--global", dest="global_model", action="store_true",
                        help="with a global model (--global): its operator beside the learner, a candidate in each key")
    parser.add_argument("--global-blend", action="store_true",
                        help="with --global: each key serves a blend of its own and the global model (--global-blend)")
    parser.add_argument("--cluster", type=int, default=0, metavar="N",
                        help="run on a local cluster of N TaskManagers (one slot each); default: the mini-cluster")
    parser.add_argument("--cold-cluster", action="store_true",
                        help="with --cluster: no warm-up job first, so the job pays for the TaskManagers' Python start")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="riverflink-bench-") as workdir:
        work = pathlib.Path(workdir)
        data = work / "events.jsonl"
        write(data, args.events, args.keys)

        started = time.perf_counter()
        n, models = bare_loop(data, args.model)
        bare_rate = n / (time.perf_counter() - started)
        bare_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

        with flink(args, work) as (jobmanager, jvm_peak_rss):
            settings = Settings(
                model=args.model, inputs=(str(data),),
                outputs=OutputSettings(predictions=str(work / "predictions"),
                                       models_out=None if args.snapshot_interval is None else str(work / "models")),
                parallelism=args.parallelism, state_backend=args.state_backend,
                execution_mode=args.execution_mode, checkpoint_interval=args.checkpoint_interval, jobmanager=jobmanager,
                flink_options=tuple(args.flink_option),
                lifecycle=LifecycleSettings(global_model=args.model if args.global_model else None,
                                            global_blend=args.global_blend),
                tuning=TuningSettings(key_cache_mb=args.key_cache_mb, batch_lines=args.batch_lines,
                                      batch_delay=args.batch_delay, profile=args.profile,
                                      snapshot_interval=args.snapshot_interval or TuningSettings.snapshot_interval),
            )
            started = time.perf_counter()
            run_job(settings)
            job_seconds = time.perf_counter() - started
            job_rss = jvm_peak_rss()
        served = sum(sum(1 for _ in path.open()) for path in committed_files(settings.outputs.predictions))
        snapshots = 0 if args.snapshot_interval is None else sum(
            sum(1 for _ in path.open()) for path in committed_files(settings.outputs.models_out))
        if served != n:
            raise SystemExit(f"the job served {served} predictions for {n} events")
        job_rate = n / job_seconds

    where = "the mini-cluster"
    if args.cluster:
        where = f"a {'cold' if args.cold_cluster else 'warmed-up'} local cluster of {args.cluster} TaskManagers"
    print(f"{n:,} events, {len(models):,} keys seen of {args.keys:,}, model {args.model}")
    print(f"job: {where}, parallelism {args.parallelism}, {args.execution_mode} mode, {args.state_backend} state, "
          f"checkpoints every {args.checkpoint_interval:g} s, key cache {args.key_cache_mb:g} MB, "
          f"{settings.profile.name} profile, batches of {args.batch_lines} lines (waiting at most "
          f"{settings.batch_delay * 1000:g} ms)"
          + "".join(f", {key}={value}" for key, value in args.flink_option)
          + ("" if args.snapshot_interval is None else
             f", model snapshots every {args.snapshot_interval:g} s ({snapshots:,} written)"))
    print(f"  bare river loop   {bare_rate:>10,.0f} events/s  peak RSS {bare_rss:>7,.0f} MiB (this process)")
    print(f"  riverflink job    {job_rate:>10,.0f} events/s  peak RSS {job_rss:>7,.0f} MiB (Flink JVMs, Python "
          f"inside in thread mode)  {job_seconds:.1f} s wall clock incl. start-up")
    print(f"  ratio             {job_rate / bare_rate:>10.2f}")
    print(f"  state per key     {model_state_bytes(models):>10,.0f} bytes of model envelope, "
          f"plus {n / len(models):.1f} remembered event ids")


if __name__ == "__main__":
    main()
