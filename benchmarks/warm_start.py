"""The cold-start gain of ``--warm-start`` on a real data set: river's Phishing, one model per provider.

    PYTHONHASHSEED=0 .venv/bin/python -m benchmarks.warm_start

A base model (``examples/classifier.py``) learns from the providers with
even numbers and is saved as a ``.pkl``. The providers with odd numbers are
then new keys: ``riverflink evaluate`` replays their events (test-then-train,
per provider) once with every key starting from a blank clone of the base,
once with ``--warm-start`` (a copy of what the base has learned). It prints
the progressive accuracy of both, over all events and over each key's first
``--first`` events, where a cold model knows least.
"""

import argparse
import json
import pathlib
import tempfile

import cloudpickle

from jobs.cli.evaluate import evaluate
from jobs.model_spec import load_template
from jobs.settings import LifecycleSettings, OutputSettings, Settings
from state.destinations import read_records

ROOT = pathlib.Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "data" / "phishing.jsonl"


def _split(lines: list[str]) -> tuple[list[dict], list[str]]:
    """(events of even-numbered keys, lines of odd-numbered keys)."""
    events = [json.loads(line) for line in lines]
    even = [e for e in events if int(e["key"].rsplit("-", 1)[1]) % 2 == 0]
    odd = [json.dumps(e) for e in events if int(e["key"].rsplit("-", 1)[1]) % 2 == 1]
    return even, odd


def _accuracy_of_first(predictions_dir: str, truth: dict, first: int) -> tuple[float, int]:
    """Accuracy over each key's first ``first`` predictions (by model version), and how many there were."""
    right = [p["prediction"] == truth[p["id"]] for p in read_records(predictions_dir) if p["model_version"] < first]
    return sum(right) / len(right), len(right)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=f"{ROOT / 'examples' / 'classifier.py'}:model")
    parser.add_argument("--first", type=int, default=20, help="events per key counted as its cold start")
    args = parser.parse_args()
    base, _ = load_template(args.model)
    base = base.clone()
    training, new_keys = _split(DATA.read_text().splitlines())
    for event in training:
        base.learn_one(event["x"], event["y"])
    truth = {e["id"]: e["y"] for e in map(json.loads, new_keys)}
    with tempfile.TemporaryDirectory(prefix="riverflink-warm-start-") as scratch:
        work = pathlib.Path(scratch)
        (work / "base.pkl").write_bytes(cloudpickle.dumps(base))
        (work / "new.jsonl").write_text("\n".join(new_keys) + "\n")
        print(f"base model learned {len(training)} events of {len({e['key'] for e in training})} keys; "
              f"evaluating on {len(new_keys)} events of {len({json.loads(line)['key'] for line in new_keys})} new keys")
        for warm in (False, True):
            out = work / ("warm" if warm else "cold")
            settings = Settings(model=str(work / "base.pkl"), inputs=(str(work / "new.jsonl"),),
                                lifecycle=LifecycleSettings(warm_start=warm), job_name="riverflink-warm-start",
                                outputs=OutputSettings(predictions=str(out / "predictions"),
                                                       metrics=str(out / "metrics")))
            figures = evaluate(settings).models[0]
            early, count = _accuracy_of_first(settings.outputs.predictions, truth, args.first)
            start = "--warm-start" if warm else "blank clone "
            print(f"  {start}  {figures.metric} {figures.value:.4f} over {figures.n} events;  "
                  f"over each key's first {args.first} ({count} events): {early:.4f}")


if __name__ == "__main__":
    main()
