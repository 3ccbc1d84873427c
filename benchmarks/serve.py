"""Predictions/s and latency of ``riverflink serve`` under load, against answering the same requests in-process.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.serve
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.serve --keys 1000000 --distinct-models 500
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.serve --keys 1000 --seconds 3 --profile

A models folder is written as a job's ``--models-out`` would hold it: the
template record and one snapshot per key of ``examples/classifier.py``
(``--model``), each trained on its key's events of a Zipf stream
(``benchmarks.generate``), so a few keys have learned thousands of events and
most a handful. Training a million models would take most of an hour, so
``--distinct-models N`` trains N keys and gives key i the snapshot of the
(i mod N)-th: what the server holds (bytes per key, restores) is the same,
only the coefficients repeat.

The server is the real ``riverflink serve`` in a process of its own, loaded
from that folder (load time: from its start to ``GET /health`` answering
200, Python's start-up included). It is asked, in this order:

- by ``http.client``, one request at a time on one connection: first
  ``--sequential`` keys never asked before (each restores its model from the
  snapshot's bytes), then the same keys again (restored). These latencies
  include the client's own Python, a hundred microseconds or so;
- by ``wrk`` (``apt-get install wrk``), ``--connections`` connections
  POSTing bodies for random known keys from a Lua script, first
  ``--warm-up`` seconds unmeasured (the models of the bodies' keys get
  restored), then ``--seconds`` measured with ``--latency``. wrk keeps every
  connection busy, so its latency is that of a saturated server.

Two in-process figures answer the same requests without HTTP: the bare loop
(``predict_proba_one`` on live models, nothing restored, nothing parsed), the
floor of what any server can do; and the ASGI application called directly
(JSON in and out, validation, the served models, metrics), which tells the
server's own cost from uvicorn's. ``--profile`` prints where the
application's time goes (cProfile). The machine is shared and noisy:
compare the ratios, and the server's CPU time per request, more than the
absolute figures.
"""

import argparse
import asyncio
import cProfile
import http.client
import io
import json
import os
import pathlib
import pstats
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

from benchmarks.generate import zipf_stream
from benchmarks.memory import status_mib
from benchmarks.servers import ROOT, get, running_server
from benchmarks.stats import percentile
from jobs.local.processes import free_ports
from jobs.model_spec import load_template
from jobs.serve.app import ServeApp
from jobs.serve.followers import DirectoryFollower
from jobs.serve.models import ServedModels, Snapshot
from operators.records import model_snapshot_record, template_record
from state.envelope import dump_state

TARGET_RATE = 5_000  # predictions/s on the 2-core machine the benchmark is run on
TARGET_P99_MS = 5.0


def train_models(spec: str, n_models: int, events_per_key: int) -> tuple[object, list[tuple[object, int]]]:
    """The template, and ``(model, learn steps)`` of every key a Zipf stream over ``n_models`` keys reached."""
    template, _ = load_template(spec)
    models: dict[str, tuple[object, int]] = {}
    for event in zipf_stream(n_models * events_per_key, n_models):
        model, steps = models.get(event["key"]) or (template.clone(), 0)
        model.learn_one(event["x"], event["y"])
        models[event["key"]] = (model, steps + 1)
    return template, list(models.values())


def served_key(i: int) -> str:
    return f"user-{i}"


def write_models(folder: pathlib.Path, n_keys: int, template, trained: list[tuple[object, int]]) -> int:
    """A committed part file of the template and one snapshot per key, key i the (i mod len(trained))-th model.

    Returns
    -------
    int
        The file's size in bytes.
    """
    folder.mkdir(parents=True)
    blobs = [(dump_state(model), steps) for model, steps in trained]
    now_ms = time.time_ns() // 1_000_000
    path = folder / "part-0.jsonl"
    with path.open("w") as out:
        out.write(template_record(dump_state(template.clone()), now_ms) + "\n")
        for i in range(n_keys):
            blob, steps = blobs[i % len(blobs)]
            out.write(model_snapshot_record(served_key(i), steps, blob, now_ms) + "\n")
    return path.stat().st_size


def features(rng: random.Random) -> dict:
    return {f"f{j}": round(rng.gauss(0, 1), 6) for j in range(8)}


def split_keys(n_keys: int, sequential: int, seed: int = 7) -> tuple[list[str], list[str]]:
    """(keys asked one at a time, never by wrk; keys wrk asks about), disjoint, at random."""
    rng = random.Random(seed)
    first = rng.sample(range(n_keys), min(sequential, n_keys // 2))
    taken = set(first)
    return [served_key(i) for i in first], [served_key(i) for i in range(n_keys) if i not in taken]


def questions(keys: list[str], count: int, seed: int = 11) -> list[tuple[str, dict]]:
    """``count`` requests ``(key, x)``, keys drawn uniformly from ``keys``."""
    rng = random.Random(seed)
    return [(rng.choice(keys), features(rng)) for _ in range(count)]


def body(key: str, x: dict) -> str:
    return json.dumps({"key": key, "x": x}, separators=(",", ":"))


def live_model(key: str, trained: list[tuple[object, int]]):
    """The trained model ``write_models`` gave ``key``."""
    return trained[int(key.rsplit("-", 1)[1]) % len(trained)][0]


def bare_rate(asked: list[tuple[str, dict]], trained, seconds: float) -> float:
    """Predictions/s of ``predict_proba_one`` on live models over ``asked``, repeated for about ``seconds``."""
    models = {key: live_model(key, trained) for key, _ in asked}
    done, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        for key, x in asked:
            models[key].predict_proba_one(x)
        done += len(asked)
    return done / (time.perf_counter() - started)


def in_process_app(folder: pathlib.Path, asked: list[tuple[str, dict]], template, trained) -> ServeApp:
    """The server's ASGI application over the snapshots of the asked keys only (a million would not fit twice)."""
    served = ServedModels()
    served.offer_template(Snapshot(0, 1.0, dump_state(template.clone())))
    for key in {key for key, _ in asked}:
        served.offer(key, Snapshot(1, 1.0, dump_state(live_model(key, trained))))
    return ServeApp(served, DirectoryFollower(served.take_record, folder))


async def _ask_app(app: ServeApp, bodies: list[bytes], repeat: int) -> int:
    """POST every body ``repeat`` times straight into ``app``; returns how many answers were not 200."""
    statuses = []

    async def send(message):
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    for _ in range(repeat):
        for payload in bodies:
            scope = {"type": "http", "method": "POST", "path": "/predict",
                     "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]}

            async def receive(payload=payload):
                return {"type": "http.request", "body": payload, "more_body": False}

            await app(scope, receive, send)
    return sum(status != 200 for status in statuses)


def app_rate(app: ServeApp, asked: list[tuple[str, dict]], seconds: float, profile: bool) -> tuple[float, str | None]:
    """Predictions/s of the ASGI application called in-process, and its cProfile report when ``profile``."""
    bodies = [body(key, x).encode() for key, x in asked]
    asyncio.run(_ask_app(app, bodies, 1))  # restores every model once, as wrk's warm-up does
    started = time.perf_counter()
    repeat = 0
    while time.perf_counter() - started < seconds:
        if asyncio.run(_ask_app(app, bodies, 1)):
            raise SystemExit("the ASGI application answered a benchmark request with an error")
        repeat += 1
    rate = repeat * len(bodies) / (time.perf_counter() - started)
    if not profile:
        return rate, None
    profiler = cProfile.Profile()
    profiler.runcall(asyncio.run, _ask_app(app, bodies, min(max(1, repeat), 5)))
    report = io.StringIO()
    pstats.Stats(profiler, stream=report).sort_stats("tottime").print_stats(18)
    return rate, report.getvalue()


def lua_script(bodies: list[str]) -> str:
    """A wrk script POSTing ``/predict`` with one of ``bodies`` at random; each wrk thread seeds its own generator."""
    table = ",\n".join(f"[==[{text}]==]" for text in bodies)
    return f"""-- riverflink benchmarks/serve.py: POST /predict for random known keys
local bodies = {{
{table}
}}
local requests = {{}}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("seed", threads)
end

function init(args)
  math.randomseed(seed)
  for i, body in ipairs(bodies) do
    requests[i] = wrk.format("POST", "/predict", {{["Content-Type"] = "application/json"}}, body)
  end
end

function request()
  return requests[math.random(#requests)]
end
"""


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text).groups()
    return float(number) * _UNITS[unit]


def parse_wrk(output: str) -> dict:
    """Requests/s, p50/p90/p99/max in ms, requests, non-2xx answers and socket errors from ``wrk --latency``'s output."""
    percentiles = dict(re.findall(r"^\s+(50|75|90|99)%\s+(\S+)$", output, re.MULTILINE))
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    latency = re.search(r"^\s+Latency\s+(\S+)\s+(\S+)\s+(\S+)", output, re.MULTILINE)
    try:
        return {
            "rate": float(re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE).group(1)),
            "requests": int(re.search(r"^\s+(\d+) requests in", output, re.MULTILINE).group(1)),
            "p50": _ms(percentiles["50"]), "p90": _ms(percentiles["90"]), "p99": _ms(percentiles["99"]),
            "max": _ms(latency.group(3)),
            "non_2xx": int(non_2xx.group(1)) if non_2xx else 0,
            "socket_errors": sum(map(int, errors.groups())) if errors else 0,
        }
    except (AttributeError, KeyError) as exc:
        raise SystemExit(f"cannot read wrk's output ({exc!r}):\n{output}") from None


def wrk_command(port: int, script: pathlib.Path, args, seconds: float) -> list[str]:
    return ["wrk", f"-t{args.threads}", f"-c{args.connections}", f"-d{seconds:g}s", "--latency", "-s", str(script),
            f"http://127.0.0.1:{port}/predict"]


def run_wrk(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def cpu_seconds(pid: int) -> float:
    """User and system CPU time the process has used so far."""
    fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def metrics(port: int) -> dict[str, float]:
    """The server's ``/metrics`` series by name (labels included)."""
    status, text = get(port, "/metrics")
    if status != 200:
        raise SystemExit(f"GET /metrics answered {status}")
    return {name: float(value) for name, value in
            (line.rsplit(" ", 1) for line in text.decode().splitlines() if line and not line.startswith("#"))}


def sequential_latencies(port: int, keys: list[str], seed: int = 13) -> list[float]:
    """Milliseconds of each ``POST /predict`` for ``keys``, one at a time on one kept-alive connection."""
    rng = random.Random(seed)
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    latencies = []
    try:
        for key in keys:
            payload = body(key, features(rng))
            started = time.perf_counter()
            connection.request("POST", "/predict", body=payload, headers={"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies.append((time.perf_counter() - started) * 1e3)
            if response.status != 200:
                raise SystemExit(f"POST /predict for {key} answered {response.status}")
    finally:
        connection.close()
    return latencies


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=10_000, help="keys with a snapshot")
    parser.add_argument("--distinct-models", type=int, metavar="N",
                        help="train N keys' models and reuse them for the others (default: every key its own)")
    parser.add_argument("--events-per-key", type=int, default=20, help="mean learn steps per trained model")
    parser.add_argument("--model", default="examples/classifier.py:model")
    parser.add_argument("--seconds", type=float, default=20, help="measured wrk run")
    parser.add_argument("--warm-up", type=float, default=3, help="unmeasured wrk run first")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--bodies", type=int, default=4_000, help="distinct request bodies in the wrk script")
    parser.add_argument("--sequential", type=int, default=2_000,
                        help="keys asked one at a time, never asked before, then again")
    parser.add_argument("--live-models", type=int, help="the server's --live-models (default: its own)")
    parser.add_argument("--profile", action="store_true", help="print cProfile of the in-process ASGI application")
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk")
    if args.connections < args.threads:
        raise SystemExit("--connections must be at least --threads (each wrk thread needs a connection)")

    with tempfile.TemporaryDirectory(prefix="riverflink-bench-serve-") as workdir:
        work = pathlib.Path(workdir)
        started = time.perf_counter()
        template, trained = train_models(args.model, min(args.keys, args.distinct_models or args.keys),
                                         args.events_per_key)
        file_bytes = write_models(work / "models", args.keys, template, trained)
        build_seconds = time.perf_counter() - started
        sequential_keys, load_keys = split_keys(args.keys, args.sequential)
        asked = questions(load_keys, args.bodies)

        reference = bare_rate(asked, trained, 3.0)
        app_predictions, profile = app_rate(in_process_app(work / "models", asked, template, trained), asked, 3.0,
                                            args.profile)

        script = work / "predict.lua"
        script.write_text(lua_script([body(key, x) for key, x in asked]))
        port = free_ports(1)[0]
        serve = [sys.executable, "-m", "jobs.cli", "serve", "--models", str(work / "models"), "--port", str(port)]
        if args.live_models is not None:
            serve += ["--live-models", str(args.live_models)]
        load = wrk_command(port, script, args, args.seconds)
        with running_server(serve, work / "serve.log", timeout=600 + args.keys / 1_000) as (server, load_seconds):
            loaded_rss = status_mib(server.pid, "VmRSS")
            first = sequential_latencies(port, sequential_keys)
            repeat = sequential_latencies(port, sequential_keys, seed=17)
            run_wrk(wrk_command(port, script, args, args.warm_up))
            before, cpu_before = metrics(port), cpu_seconds(server.pid)
            measured = parse_wrk(run_wrk(load))
            after, cpu_after = metrics(port), cpu_seconds(server.pid)
            final_rss, peak_rss = status_mib(server.pid, "VmRSS"), status_mib(server.pid, "VmHWM")

    answered = after["riverflink_serve_predictions_total"] - before["riverflink_serve_predictions_total"]
    errors = sum(value - before.get(name, 0.0) for name, value in after.items()
                 if name.startswith('riverflink_serve_requests_total{route="/predict"') and 'status="200"' not in name)
    met = measured["rate"] >= TARGET_RATE and measured["p99"] <= TARGET_P99_MS

    print(f"{args.keys:,} keys, {len(trained):,} distinct trained models of {args.model} "
          f"({sum(steps for _, steps in trained) / len(trained):,.0f} learn steps on average, "
          f"{min(steps for _, steps in trained)} to {max(steps for _, steps in trained):,}); "
          f"models file {file_bytes / 2**20:,.0f} MiB, built in {build_seconds:.1f} s")
    print(f"  server loaded        {load_seconds:>10.2f} s to healthy (start-up included)   "
          f"RSS {loaded_rss:,.0f} MiB after loading, {final_rss:,.0f} MiB at the end (peak {peak_rss:,.0f})")
    print(f"  snapshot bytes       {after['riverflink_serve_snapshot_bytes']:>10,.0f} "
          f"({after['riverflink_serve_snapshot_bytes'] / args.keys:,.0f} per key), "
          f"{after['riverflink_serve_models_restored']:,.0f} models restored at the end")
    print(f"  first request        p50 {percentile(first, 0.5):6.3f} ms  p99 {percentile(first, 0.99):6.3f} ms  "
          f"max {max(first):6.3f} ms  ({len(first):,} keys never asked, sequential http.client)")
    print(f"  repeat request       p50 {percentile(repeat, 0.5):6.3f} ms  p99 {percentile(repeat, 0.99):6.3f} ms  "
          f"max {max(repeat):6.3f} ms  (the same keys again)")
    print(f"  bare in-process loop {reference:>10,.0f} predictions/s  (predict_proba_one on live models)")
    print(f"  ASGI app in-process  {app_predictions:>10,.0f} predictions/s  (JSON, validation, served models, metrics)")
    print(f"  riverflink serve     {measured['rate']:>10,.0f} predictions/s  p50 {measured['p50']:.3f} ms  "
          f"p90 {measured['p90']:.3f} ms  p99 {measured['p99']:.3f} ms  max {measured['max']:.1f} ms  "
          f"(wrk, {args.connections} connections, {args.threads} thread{'s' * (args.threads > 1)}, {args.seconds:g} s)")
    print(f"  non-2xx              {measured['non_2xx']:>10,} (wrk), {errors:,.0f} (server), "
          f"{measured['socket_errors']:,} socket errors; server counted {answered:,.0f} predictions "
          f"for wrk's {measured['requests']:,} requests")
    print(f"  server CPU           {(cpu_after - cpu_before) / max(answered, 1) * 1e6:>10.1f} µs per prediction "
          f"({(cpu_after - cpu_before) / args.seconds:.0%} of a core)")
    print(f"  target               {TARGET_RATE:,} predictions/s and p99 <= {TARGET_P99_MS:g} ms: "
          f"{'met' if met else 'MISSED'}")
    if profile is not None:
        print(profile)
    print("commands (the temporary folder is removed at the end):")
    print(f"  PYTHONHASHSEED=0 {shlex.join([os.path.relpath(sys.executable, ROOT), '-m', 'benchmarks.serve', *(argv or sys.argv[1:])])}")
    print(f"  {shlex.join(serve)}")
    print(f"  {shlex.join(load)}")
    if measured["non_2xx"] or errors:
        raise SystemExit("the server answered benchmark requests with errors")


if __name__ == "__main__":
    main()
