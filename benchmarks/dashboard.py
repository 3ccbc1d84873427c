"""How fast the dashboard of ``riverflink serve`` loads with many keys' metrics behind it, in a real Chromium.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.dashboard
    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.dashboard --keys 1000000

A job's ``--out`` is written as a streaming job leaves it: ``--reports``
metrics reports of every key for the served predictions and one challenger
(a per-key record each, and the all-keys records), drift and promotion events
and dead letters. ``riverflink serve --out`` (a process of its own) reads it
all; the load time is from its start until the dashboard's overview counts
every record.

Then Chromium (Debian's package) opens the page ``--loads`` times, each a new
navigation, and each time reports from the page's own clock
(``performance.now()``, from the start of the navigation):

- ``first figures``: when the page has drawn its first overview (the
  ``data-loaded`` mark the page sets);
- ``load event``: the browser's load event (the static page).

Every other load follows a new metrics report of one key written while the
page was closed, so the page's request makes the server compute the overview
again (``recomputed``); the others find it unchanged (``cached``). The
server's own time to compute an overview (``seconds`` in its answer) and the
overview's size are printed too. The machine is shared and noisy.
"""

import argparse
import json
import pathlib
import random
import statistics
import tempfile
import time

from benchmarks.memory import status_mib
from benchmarks.servers import get, running_server
from jobs.local.processes import free_ports
from tests.support.chromium import NO_CHROMIUM, chromium, chromium_binary

CHALLENGER = "examples/models/challenger.py:model"


def write_outputs(out: pathlib.Path, keys: int, reports: int, seed: int = 7) -> int:
    """A job's outputs under ``out`` (no model snapshots: the page does not read them); returns the records written."""
    rng = random.Random(seed)
    for name in ("models-out", "metrics", "events", "dead-letters"):
        (out / name).mkdir(parents=True, exist_ok=True)
    records = 0
    now = time.time() - reports * 10
    for report in range(reports):
        ts = now + report * 10
        with (out / "metrics" / f"part-{report}").open("w") as part:
            for number in range(keys):
                n = (report + 1) * (1 + number % 7)
                for model in (None, CHALLENGER):
                    record = {"key": f"user-{number}", "metric": "Accuracy", "value": rng.random(), "n": n, "ts": ts}
                    if model is not None:
                        record["model"] = model
                    part.write(json.dumps(record) + "\n")
                    records += 1
            labelled = (report + 1) * keys * 4
            for model in (None, CHALLENGER):
                record = {"key": None, "metric": "Accuracy", "value": 0.6 + 0.1 * rng.random(), "n": labelled, "ts": ts}
                if model is not None:
                    record["model"] = model
                part.write(json.dumps(record) + "\n")
                records += 1
    with (out / "events" / "part-0").open("w") as part:
        for number in range(1000):
            key = f"user-{rng.randrange(keys)}"
            event = ({"key": key, "event": "promotion", "from": "champion", "to": CHALLENGER, "n": 100,
                      "ts": now + number, "metric": "Accuracy", "from_value": 0.5, "to_value": 0.7}
                     if number % 2 else {"key": key, "event": "drift", "model": "champion", "n": 80, "ts": now + number,
                                         "detector": "ADWIN", "action": "reset"})
            part.write(json.dumps(event) + "\n")
            records += 1
    with (out / "dead-letters" / "part-0").open("w") as part:
        for number in range(1000):
            reason = ("not_json", "missing_key", "invalid_features")[number % 3]
            part.write(json.dumps({"raw": "x", "reason": reason, "detail": "", "key": None}) + "\n")
            records += 1
    return records


def overview(port: int) -> dict:
    return json.loads(get(port, "/dashboard/overview", timeout=60)[1])


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--reports", type=int, default=3, help="metrics reports of every key")
    parser.add_argument("--loads", type=int, default=10, help="page loads measured")
    args = parser.parse_args(argv)
    if chromium_binary() is None:
        raise SystemExit(NO_CHROMIUM)
    with tempfile.TemporaryDirectory(prefix="riverflink-dashboard-") as scratch:
        scratch = pathlib.Path(scratch)
        out = scratch / "out"
        started = time.perf_counter()
        records = write_outputs(out, args.keys, args.reports)
        print(f"wrote {records:,} records ({args.keys:,} keys x {args.reports} reports x 2 models, "
              f"1,000 events, 1,000 dead letters) in {time.perf_counter() - started:.1f} s")
        port, = free_ports(1)
        command = [".venv/bin/python", "-m", "jobs.cli", "serve", "--out", str(out), "--port", str(port)]
        started = time.perf_counter()
        with running_server(command, scratch / "serve.log", timeout=60) as (process, _):
            while (seen := overview(port))["records"] < records:
                time.sleep(0.2)
            size = len(get(port, "/dashboard/overview")[1]) / 1024
            print(f"serve read every record {time.perf_counter() - started:.1f} s after its start "
                  f"(RSS {status_mib(process.pid, 'VmRSS'):,.0f} MiB); overview: {seen['spread']['keys']:,} keys, "
                  f"{size:.0f} KiB, computed in {seen['seconds'] * 1000:.0f} ms")
            loads = {"cached": [], "recomputed": []}
            extra = 0
            with chromium(scratch / "chromium") as page:
                for load in range(args.loads):
                    case = "recomputed" if load % 2 else "cached"
                    page.open("about:blank")
                    if case == "recomputed":  # one key reports again: the next overview must be computed anew
                        extra += 1
                        with (out / "metrics" / f"part-extra-{extra}").open("w") as part:
                            part.write(json.dumps({"key": "user-0", "metric": "Accuracy", "value": 0.5,
                                                   "n": 10_000 + extra, "ts": time.time()}) + "\n")
                        time.sleep(1.5)  # the follower has read it; asking now would compute the overview
                    page.open(f"http://127.0.0.1:{port}/")
                    shown = float(page.wait_for("document.body && document.body.dataset.loaded", 30, "figures"))
                    load_event = page.evaluate("performance.getEntriesByType('navigation')[0].loadEventEnd")
                    seen = json.loads(page.evaluate("fetch('dashboard/overview').then(r => r.text())"))
                    if seen["records"] != records + extra:
                        raise SystemExit(f"the page showed {seen['records']} records, not {records + extra}")
                    loads[case].append((shown, load_event, seen["seconds"]))
            for case, measured in loads.items():
                shown = [figures for figures, _, _ in measured]
                print(f"{case:>10}: first figures median {statistics.median(shown):.0f} ms, max {max(shown):.0f} ms; "
                      f"load event median {statistics.median(event for _, event, _ in measured):.0f} ms; "
                      f"server's overview {statistics.median(c for *_, c in measured) * 1000:.0f} ms "
                      f"({len(measured)} loads)")


if __name__ == "__main__":
    main()
