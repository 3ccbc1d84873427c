"""Events/s of riverflink against a bare Python loop, on the same generated data, in one run.

    .venv/bin/python -m benchmarks.throughput --events 100000 --keys 10000

The bare loop is what people run today: json.loads and a dict of river
models, predict_one then learn_one, no fault tolerance. The job is the full
riverflink graph on the embedded mini-cluster (file in, predictions out,
checkpoints on), timed by wall clock including start-up. The machines are
shared and noisy: compare the ratio, not the absolute figures.
"""

import argparse
import json
import pathlib
import resource
import tempfile
import time

from benchmarks.generate import write
from jobs.learn_job import run_job
from jobs.model_spec import load_template
from jobs.settings import Settings
from state.destinations import committed_files


def bare_loop(path: pathlib.Path, spec: str) -> int:
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
    return n


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--model", default="examples/classifier.py:model")
    parser.add_argument("--parallelism", type=int, default=1)
    parser.add_argument("--state-backend", default="hashmap")
    parser.add_argument("--execution-mode", default="thread")
    parser.add_argument("--checkpoint-interval", type=float, default=10.0)
    args = parser.parse_args(argv)

    work = pathlib.Path(tempfile.mkdtemp(prefix="riverflink-bench-"))
    data = work / "events.jsonl"
    write(data, args.events, args.keys)

    started = time.perf_counter()
    n = bare_loop(data, args.model)
    bare_rate = n / (time.perf_counter() - started)

    settings = Settings(
        model=args.model, inputs=(str(data),), predictions=str(work / "predictions"),
        parallelism=args.parallelism, state_backend=args.state_backend,
        execution_mode=args.execution_mode, checkpoint_interval=args.checkpoint_interval,
    )
    started = time.perf_counter()
    run_job(settings)
    job_seconds = time.perf_counter() - started
    served = sum(sum(1 for _ in path.open()) for path in committed_files(settings.predictions))
    assert served == n, f"the job served {served} predictions for {n} events"
    job_rate = n / job_seconds

    print(f"events {n}, keys {args.keys}, model {args.model}, parallelism {args.parallelism}, "
          f"{args.execution_mode} mode, {args.state_backend} state, checkpoints every {args.checkpoint_interval:g} s")
    print(f"  bare river loop   {bare_rate:>10,.0f} events/s")
    print(f"  riverflink job    {job_rate:>10,.0f} events/s  ({job_seconds:.1f} s wall clock incl. start-up)")
    print(f"  ratio             {job_rate / bare_rate:>10.2f}")
    print(f"  client peak RSS   {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:>10,.0f} MiB")


if __name__ == "__main__":
    main()
