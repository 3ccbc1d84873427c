"""What a global model beside each key's own buys a key with little history, against blank clones and ``--warm-start``.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.global_local

A key's own model knows nothing at first; ``--warm-start`` gives it a copy of
a base model that never learns again, and a global model keeps learning from
every key and serves a key until the key's own model beats it. Which start
is worth its cost shows where a key has little history, so each row is
judged over each key's first ``--first`` labelled events as well as over
all of them, on two data sets:

- *synthetic*: a long tail of keys (Zipf popularity), each key's concept a
  shared one plus one of its own, so that a model of all keys is better for
  a key's first events and the key's own model, given history, later. The
  base learns the shared concept as it was; over the evaluated events it
  turns by ``--drift`` right angles (one table each, 0 for a world that
  stands still), which a base that never learns again cannot follow;
- *phishing*: river's Phishing data, one key per provider (ten providers,
  pages dealt to them in turn: no provider has a concept of its own).

In both, a base model (``examples/classifier.py``) learns from keys that are
not evaluated (held-out keys; the even-numbered providers) and is saved as a
``.pkl``; the evaluated keys are then replayed from a file through the job
(test-then-train per key) once per row: blank clones, ``--warm-start`` from
the base, the base as a global model that always serves (a promotion window
no key fills), the base as a global model beside blank clones that take
over after ``--window`` labelled events where better (promotion), the same
with ``--warm-start`` (a key's own model is then a copy of the global
version held at its first label, and serves from there), and the global
model blended with each key's own (``--global-blend``), with and without
that warm copy.

A backfill from files must not let a global version answer an event it has
learned from, or one later (by ``ts``): the evaluated events carry ``ts``,
and for the rows with a global model the global trace tells which events
each version had learned, so the table counts the predictions the global
model served that it had learned ahead of ("leaked", to be 0), and how far,
in ``ts`` seconds (events, in the synthetic set), the latest event their
version learned lay behind them ("lag s", the median): the price of not
leaking ("base only": every one was answered by the base as it is, the
learners having read their whole input before the first version reached them).
"""

import argparse
import functools
import json
import math
import pathlib
import statistics
import tempfile
import time

import cloudpickle

from benchmarks.generate import shared_concept_stream
from jobs.cli.tables import format_table
from jobs.learn_job import run_job
from jobs.model_spec import load_template
from jobs.settings import LifecycleSettings, OutputSettings, Settings
from operators.lifecycle import BLEND, GLOBAL
from state.destinations import read_records

ROOT = pathlib.Path(__file__).resolve().parent.parent
PHISHING = ROOT / "examples" / "data" / "phishing.jsonl"
MODEL = f"{ROOT / 'examples' / 'classifier.py'}:model"
NEVER = 10**9  # a promotion window no key fills: the global model serves every event
START_TS = 1_700_000_000


def synthetic(seed: int, drift: float) -> tuple[list[dict], list[dict]]:
    """(the base's training events, of held-out keys; the evaluated events, over which their shared concept turns)."""
    held_out = list(shared_concept_stream(20_000, 2_000, seed=seed + 1, first_key=1_000_000, concept_seed=seed))
    evaluated = list(shared_concept_stream(30_000, 3_000, seed=seed, concept_seed=seed, start_ts=START_TS,
                                           drift=drift))
    return held_out, evaluated


def _provider(event: dict) -> int:
    return int(event["key"].rsplit("-", 1)[1])


def phishing(seed: int) -> tuple[list[dict], list[dict]]:
    """(events of even-numbered providers, events of odd-numbered ones with ``ts`` by line order); no draws."""
    events = [json.loads(line) for line in PHISHING.read_text().splitlines()]
    even = [event for event in events if _provider(event) % 2 == 0]
    odd = [event | {"ts": START_TS + i} for i, event in enumerate(events) if _provider(event) % 2 == 1]
    return even, odd


def rows(base: str, window: int, every: int) -> list[tuple[str, LifecycleSettings]]:
    """Each way a new key may start, as lifecycle settings of a job whose own models are blank clones."""
    return [
        ("blank clones", LifecycleSettings()),
        ("--warm-start", LifecycleSettings(warm_start=True)),
        ("global only", LifecycleSettings(global_model=base, global_every=every, promotion_window=NEVER)),
        (f"global + local, promotion (window {window})", LifecycleSettings(
            global_model=base, global_every=every, promotion_window=window, promotion_margin=0.0)),
        ("global + local, promotion, --warm-start", LifecycleSettings(
            global_model=base, global_every=every, promotion_window=window, promotion_margin=0.0, warm_start=True)),
        ("global + local, --global-blend", LifecycleSettings(global_model=base, global_every=every, global_blend=True)),
        ("global + local, --global-blend --warm-start", LifecycleSettings(
            global_model=base, global_every=every, global_blend=True, warm_start=True)),
    ]


def staleness(predictions: list[dict], trace_dir: pathlib.Path, ts_of: dict) -> tuple[int, float]:
    """Of the predictions the global model made or had a share in: how many it had learned ahead of, and its lag.

    Leaked: answered by a version that had learned an event as late as the
    prediction or later. Lag: the median, in ``ts`` seconds, by which the
    latest event their version learned preceded them (NaN when every one was
    answered by the base as it is).
    """
    learned_until = {0: float("-inf")}  # version -> latest ts it has learned; version 0 is the base as it is
    for step in sorted(read_records(str(trace_dir)), key=lambda step: step["version"]):
        learned_until[step["version"]] = max(learned_until[step["version"] - 1], ts_of[step["id"]])
    lags = [ts_of[p["id"]] - learned_until[p["global_version"]] for p in predictions if _global_share(p) > 0]
    learned = [lag for lag in lags if lag != float("inf")]
    return sum(lag <= 0 for lag in lags), statistics.median(learned) if learned else float("nan")


def measure(predictions: list[dict], truth: dict, first: int) -> dict:
    """Accuracy over each key's first ``first`` labelled events and over all, and the global model's share."""
    early = [p["prediction"] == truth[p["id"]] for p in predictions if p["model_version"] < first]
    right = [p["prediction"] == truth[p["id"]] for p in predictions]
    return {"first": sum(early) / len(early), "n_first": len(early), "all": sum(right) / len(right),
            "n": len(right), "global": sum(map(_global_share, predictions)) / len(right)}


def _global_share(prediction: dict) -> float:
    """How much of a prediction the global model made: all, none, or its weight in a blend."""
    model = prediction.get("model")
    return prediction["global_weight"] if model == BLEND else float(model == GLOBAL)


def run_row(lifecycle: LifecycleSettings, work: pathlib.Path, out: pathlib.Path, events: list[dict], args) -> dict:
    """Replay the evaluated events through the job with ``lifecycle`` into ``out`` and measure its predictions."""
    shared = lifecycle.global_model is not None
    settings = Settings(model=str(work / "base.pkl"), inputs=(str(work / "evaluated.jsonl"),),
                        parallelism=args.parallelism, lifecycle=lifecycle, job_name="riverflink-global-local",
                        outputs=OutputSettings(predictions=str(out / "predictions"),
                                               global_trace=str(out / "trace") if shared else None))
    started = time.perf_counter()
    run_job(settings)
    seconds = time.perf_counter() - started
    predictions = list(read_records(settings.outputs.predictions))
    figures = measure(predictions, {e["id"]: e["y"] for e in events}, args.first)
    figures["seconds"] = seconds
    if shared:
        figures["leaked"], figures["lag"] = staleness(predictions, out / "trace", {e["id"]: e["ts"] for e in events})
    return figures


def table(results: list[tuple[str, dict]], first: int) -> str:
    """One line per row; the global model's share, leaks and lag only where there is one."""
    header = ("keys start from", f"first {first}", "n", "all", "n", "global's share", "leaked", "lag s", "job s")
    lines = []
    for name, r in results:
        shared = ("", "", "")
        if "leaked" in r:
            lag = "base only" if math.isnan(r["lag"]) else f"{r['lag']:.0f}"
            shared = (f"{r['global']:.1%}", str(r["leaked"]), lag)
        lines.append((name, f"{r['first']:.4f}", str(r["n_first"]), f"{r['all']:.4f}", str(r["n"]), *shared,
                      f"{r['seconds']:.1f}"))
    return format_table(header, lines, right=header[1:])


def benchmark(data_set: str, make, args) -> None:
    """Train the base on the data set's held-out keys, then run every row on its evaluated keys and print the table."""
    training, events = make(args.seed)
    template, _ = load_template(args.model)
    base = template.clone()
    for event in training:
        base.learn_one(event["x"], event["y"])
    with tempfile.TemporaryDirectory(prefix="riverflink-global-local-") as scratch:
        work = pathlib.Path(scratch)
        (work / "base.pkl").write_bytes(cloudpickle.dumps(base))
        (work / "evaluated.jsonl").write_text("".join(json.dumps(event) + "\n" for event in events))
        ways = rows(str(work / "base.pkl"), args.window, args.global_every)
        results = [(name, run_row(lifecycle, work, work / f"row-{row}", events, args))
                   for row, (name, lifecycle) in enumerate(ways)]
    print(f"\n{data_set}: base learned {len(training)} events of {len({e['key'] for e in training})} held-out keys; "
          f"evaluated on {len(events)} events of {len({e['key'] for e in events})} keys "
          f"(accuracy, progressive per key)")
    print(table(results, args.first))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=MODEL, help="the base model's spec, and the keys' own models'")
    parser.add_argument("--first", type=int, default=20, help="labelled events per key counted as its cold start")
    parser.add_argument("--window", type=int, default=10, help="--promotion-window of the global + local rows")
    parser.add_argument("--global-every", type=int, default=20, help="the global model's learn steps per version")
    parser.add_argument("--parallelism", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42, help="of the synthetic data set")
    parser.add_argument("--drift", type=float, nargs="+", default=[0.0, 1.0, 2.0],
                        help="how far the synthetic set's shared concept turns after the base learned it, in right "
                             "angles over the evaluated events: one table each")
    parser.add_argument("--data", choices=("synthetic", "phishing"), nargs="+", default=["synthetic", "phishing"])
    args = parser.parse_args()
    shown = {name: " ".join(map(str, value)) if isinstance(value, list) else value
             for name, value in vars(args).items()}
    print("options: " + " ".join(f"--{name.replace('_', '-')} {value}" for name, value in shown.items()))
    started = time.perf_counter()
    for data_set in args.data:
        if data_set == "phishing":
            benchmark(data_set, phishing, args)
            continue
        for drift in args.drift:
            benchmark(f"synthetic, drift {drift:g}", functools.partial(synthetic, drift=drift), args)
    print(f"\ntotal {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
