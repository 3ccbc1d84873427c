"""Writes the event files in ``examples/data`` from data sets bundled with river.

Run ``python examples/make_data.py`` to regenerate them; the outputs are
committed so the quickstart needs nothing but the repository.
"""

import json
import pathlib
import random

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


def offers() -> list[dict]:
    """3,000 offers shown to 20 users by a uniformly random policy, and whether each was taken (a bandit log).

    Each user takes one of the four offers 60% of the time, the others 15%:
    a policy per user can learn what one policy for everybody cannot.
    """
    rng = random.Random(20)
    arms = ["discount", "free-shipping", "bundle", "gift"]
    favourite = {f"user-{i}": arms[i % len(arms)] for i in range(20)}
    events = []
    for i in range(3000):
        user = rng.choice(sorted(favourite))
        shown = rng.choice(arms)
        taken = rng.random() < (0.6 if shown == favourite[user] else 0.15)
        events.append({"key": user, "id": f"offer-{i}", "ts": 1_700_000_000 + 60 * i, "arms": arms, "arm": shown,
                       "y": float(taken)})
    return events


def write(name: str, events: list[dict]) -> None:
    DATA.mkdir(exist_ok=True)
    with (DATA / name).open("w") as file:
        for event in events:
            file.write(json.dumps(event) + "\n")


if __name__ == "__main__":
    write("chick_weights.jsonl", chick_weights())
    write("phishing.jsonl", phishing())
    write("offers.jsonl", offers())
