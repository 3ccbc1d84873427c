"""What ``riverflink run`` costs around its job: the command's wall clock against the job's own duration.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.client
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.client --events 100000 --repeat 5

Runs the real command (a new process each time, as a user does) on the
same generated events, with every output under ``--out``, on the embedded
mini-cluster and on a warm local cluster (``riverflink cluster start``,
started before the clock starts). The job's own duration is Flink's: the
runtime the summary's first line reports, which on a cluster is the REST
API's start-to-end time of the job. The rest is the client's: Python and
river imports, the JVM, building and submitting the job, waiting for its
result, the summary and the exit; on the mini-cluster also starting the
mini-cluster itself.
"""

import argparse
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

from benchmarks.generate import write
from jobs.local.cluster import start_cluster, stop_cluster
from jobs.local.processes import free_ports

ROOT = pathlib.Path(__file__).resolve().parent.parent
MODEL = "examples/classifier.py:model"
_RAN = re.compile(r"riverflink run finished: the job ran ([0-9.]+) s")


def timed_run(options: list[str], out: pathlib.Path) -> tuple[float, float]:
    """``riverflink run`` with ``options`` into ``out``: (command wall clock, job duration) in seconds.

    The command's output goes to a file and the clock stops when its process
    ends, as a shell sees it: PyFlink's client JVM ends a few tenths of a
    second later by itself, and a pipe would wait for that too.
    """
    command = [sys.executable, "-m", "jobs.cli", "run", "--model", MODEL, "--out", str(out), "--overwrite", *options]
    with tempfile.TemporaryFile("w+") as output:
        started = time.perf_counter()
        status = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT,
                                  env={**os.environ, "PYTHONHASHSEED": "0"}).wait(timeout=1800)
        wall = time.perf_counter() - started
        output.seek(0)
        printed = output.read()
    ran = _RAN.search(printed)
    if status != 0 or ran is None:
        raise SystemExit(f"riverflink run failed ({status}):\n{printed}")
    return wall, float(ran.group(1))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=400_000)
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3, help="runs per place; the median is reported")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="riverflink-client-") as workdir:
        work = pathlib.Path(workdir)
        data = work / "events.jsonl"
        write(data, args.events, args.keys)
        inputs = ["--input", str(data)]
        results = {"mini-cluster": [timed_run(inputs, work / "out") for _ in range(args.repeat)]}
        port, rpc_port = free_ports(2)
        start_cluster(1, 1, port, rpc_port, work / "cluster")
        try:
            cluster = [*inputs, "--jobmanager", f"127.0.0.1:{port}"]
            results["warm local cluster"] = [timed_run(cluster, work / "out") for _ in range(args.repeat)]
        finally:
            stop_cluster(port, work / "cluster")

    print(f"riverflink run, {args.events:,} events over up to {args.keys:,} keys, every output to files; "
          f"median of {args.repeat} runs")
    print(f"  {'where':<20} {'command s':>10} {'job s':>8} {'client s':>9}   client s of each run")
    for where, runs in results.items():
        overheads = [wall - job for wall, job in runs]
        each = ", ".join(f"{overhead:.2f}" for overhead in overheads)
        print(f"  {where:<20} {statistics.median(w for w, _ in runs):>10.2f} "
              f"{statistics.median(j for _, j in runs):>8.2f} {statistics.median(overheads):>9.2f}   {each}")


if __name__ == "__main__":
    main()
