"""Writes the event files in ``examples/data`` from data sets bundled with river.

Run ``python examples/make_data.py`` to regenerate them; the outputs are
committed so the quickstart needs nothing but the repository.
"""

import json
import pathlib

from river import datasets

DATA = pathlib.Path(__file__).parent / "data"


def chick_weights() -> list[dict]:
    """Weights of 50 chicks over 21 days: one series (one key) per chick."""
    events = []
    for x, y in datasets.ChickWeights():
        chick = int(x["chick"])
        events.append({
            "key": f"chick-{chick}",
            "id": f"chick-{chick}-day-{int(x['time'])}",
            "ts": 1_700_000_000 + int(x["time"]) * 86_400,
            "x": {"time": x["time"], "diet": str(x["diet"])},
            "y": y,
        })
    return events


def phishing() -> list[dict]:
    """1,250 web pages, phishing or not, spread over 10 hosting providers (the key)."""
    return [
        {"key": f"provider-{i % 10}", "id": f"page-{i}", "x": x, "y": bool(y)}
        for i, (x, y) in enumerate(datasets.Phishing())
    ]


def write(name: str, events: list[dict]) -> None:
    DATA.mkdir(exist_ok=True)
    with (DATA / name).open("w") as file:
        for event in events:
            file.write(json.dumps(event) + "\n")


if __name__ == "__main__":
    write("chick_weights.jsonl", chick_weights())
    write("phishing.jsonl", phishing())
