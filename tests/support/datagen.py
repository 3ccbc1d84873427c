"""Generated many-key event streams with interleaved keys, for every model kind."""

import json
import math
import random


def many_keys(kind: str, n_keys: int = 40, n_events: int = 1500, seed: int = 7) -> list[dict]:
    """Events of ``n_keys`` keys in random interleaving; each key has its own concept."""
    rng = random.Random(seed)
    concepts = {f"k{i}": [rng.uniform(-2, 2) for _ in range(4)] for i in range(n_keys)}
    steps = {key: 0 for key in concepts}
    keys = list(concepts)
    events = []
    for i in range(n_events):
        key = rng.choice(keys)
        w = concepts[key]
        t = steps[key]
        steps[key] += 1
        x = {f"x{j}": rng.gauss(0, 1) for j in range(4)}
        event = {"key": key, "id": f"e{i}", "ts": 1_700_000_000 + i}
        if kind == "classifier":
            event.update(x=x, y=sum(wj * xj for wj, xj in zip(w, x.values())) + rng.gauss(0, 0.5) > 0)
        elif kind == "regressor":
            event.update(x=x, y=sum(wj * xj for wj, xj in zip(w, x.values())) + rng.gauss(0, 0.1))
        elif kind == "anomaly_detector":
            anomaly = rng.random() < 0.05
            x = {name: (rng.uniform(0.9, 1.0) if anomaly else rng.uniform(0, 0.5)) for name in x}
            event.update(x=x, y=anomaly)
        elif kind == "clusterer":
            center = rng.choice(w[:3])
            event.update(x={name: center + rng.gauss(0, 0.2) for name in x})
        elif kind == "forecaster":
            event.update(x={"t": t}, y=10 + w[0] * math.sin(t / 3) + rng.gauss(0, 0.1))
        events.append(event)
    return events


def with_delayed_labels(events: list[dict], seed: int = 11, min_delay: int = 1, max_delay: int = 25) -> list[dict]:
    """Split each labelled event into a prediction now and its label 1-25 events later."""
    rng = random.Random(seed)
    slots: list[list[dict]] = [[] for _ in range(len(events) + max_delay + 1)]
    for i, event in enumerate(events):
        question = {k: v for k, v in event.items() if k != "y"}
        slots[i].insert(0, question)
        label = {"key": event["key"], "id": event["id"], "y": event["y"]}
        slots[i + rng.randint(min_delay, max_delay)].append(label)
    return [event for slot in slots for event in slot]


def to_lines(events: list[dict]) -> list[str]:
    return [json.dumps(event) for event in events]


def write_lines(path, lines: list[str]) -> str:
    path.write_text("".join(line + "\n" for line in lines))
    return str(path)
